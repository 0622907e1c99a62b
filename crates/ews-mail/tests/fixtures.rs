//! Fixture tests: every request the crate writes is valid against Microsoft's EWS schema, and
//! Microsoft's documented response samples parse. Schema, validator and samples are the committed
//! copies in `testdata/reference/`; a missing one fails the test.

use ews_mail::ops::*;
use ews_mail::soap::{Operation, RequestHeader, ServerVersion, envelope, parse_envelope};
use ews_mail::types::{FolderId, ItemId};
use ews_mail::{EwsError, ResponseClass};
use test_support::reference::{assert_valid_ews as validate, read as read_reference};

fn ids() -> Vec<ItemId> {
    vec![
        ItemId::new("AAMkAGI0=").with_change_key("CQAAABYA"),
        ItemId::new("AAMkAGI1="),
    ]
}

fn all_requests() -> Vec<(String, String)> {
    let shared_inbox = FolderId::distinguished_in("inbox", "shared@contoso.example");
    let imp = RequestHeader::new(ServerVersion::Exchange2016)
        .with_impersonation("helpdesk@contoso.example");
    let old = RequestHeader::new(ServerVersion::Exchange2013Sp1);
    let mut v = vec![
        (
            "FindItem".to_string(),
            envelope(&FindItem::unread(shared_inbox.clone(), 100, 50), &imp),
        ),
        (
            // A whole page, as EwsSource::with_max_batch(MAX_PAGE) lists it.
            "FindItemFullPage".into(),
            envelope(
                &FindItem::unread(
                    FolderId::distinguished("inbox"),
                    0,
                    ews_mail::MAX_PAGE as u32,
                ),
                &imp,
            ),
        ),
        (
            "GetItemChunk".into(),
            envelope(
                &GetItem::with_mime(
                    (0..ews_mail::ITEM_CHUNK)
                        .map(|i| ItemId::new(format!("AAMkAGI{i}=")))
                        .collect(),
                ),
                &imp,
            ),
        ),
        (
            "FindItemAll".into(),
            envelope(
                &FindItem::all(FolderId::distinguished("inbox"), 0, 10)
                    .with_sort(SortDirection::Descending),
                &old,
            ),
        ),
        ("GetItem".into(), envelope(&GetItem::with_mime(ids()), &imp)),
        (
            "GetItemIds".into(),
            envelope(&GetItem::ids_only(ids()), &old),
        ),
        (
            "GetFolder".into(),
            envelope(
                &GetFolder::new(vec![shared_inbox.clone(), FolderId::id("AQMkAD=")]),
                &imp,
            ),
        ),
        (
            "UpdateItem".into(),
            envelope(&UpdateItem::mark_read(ids()), &imp),
        ),
        (
            "UpdateItemOverwrite".into(),
            envelope(
                &UpdateItem::mark_unread(ids()).with_conflict(ConflictResolution::AlwaysOverwrite),
                &old,
            ),
        ),
        (
            "MoveItem".into(),
            envelope(
                &MoveItem::new(FolderId::distinguished("archive"), ids()),
                &imp,
            ),
        ),
        (
            "SyncFolderItems".into(),
            envelope(
                &SyncFolderItems::new(shared_inbox.clone(), Some("H4sIAAA=".into()), 512),
                &imp,
            ),
        ),
        (
            "SyncFolderItemsFirst".into(),
            envelope(
                &SyncFolderItems::new(FolderId::distinguished("inbox"), None, 10),
                &old,
            ),
        ),
        (
            "FindFolder".into(),
            envelope(
                &FindFolder::new(FolderId::distinguished("msgfolderroot")),
                &imp,
            ),
        ),
        (
            "CreateFolder".into(),
            envelope(
                &CreateFolder::new(
                    FolderId::distinguished_in("msgfolderroot", "shared@contoso.example"),
                    "Processed <&> tickets",
                ),
                &imp,
            ),
        ),
        (
            "SendItem".into(),
            envelope(
                &SendItem::new(ids(), Some(FolderId::distinguished("sentitems"))),
                &imp,
            ),
        ),
        (
            "SendItemNoCopy".into(),
            envelope(&SendItem::new(ids(), None), &old),
        ),
    ];
    for t in [
        DeleteType::HardDelete,
        DeleteType::SoftDelete,
        DeleteType::MoveToDeletedItems,
    ] {
        v.push((
            format!("DeleteItem{}", t.as_str()),
            envelope(&DeleteItem::new(ids(), t), &imp),
        ));
    }
    for (n, d, f) in [
        (
            "CreateItemSend",
            MessageDisposition::SendAndSaveCopy,
            Some(shared_inbox.clone()),
        ),
        ("CreateItemSendOnly", MessageDisposition::SendOnly, None),
        (
            "CreateItemSave",
            MessageDisposition::SaveOnly,
            Some(FolderId::distinguished("drafts")),
        ),
    ] {
        v.push((
            n.into(),
            envelope(
                &CreateItem::new(b"Subject: hi\r\n\r\nbody\r\n".to_vec(), d, f),
                &imp,
            ),
        ));
    }
    v
}

#[test]
fn every_request_is_valid_against_the_ews_schema() {
    validate(&all_requests());
}

#[test]
// Refused for the bogus element (the validator's report), not because it could not run.
#[should_panic(expected = "element Bogus: Schemas validity error")]
fn an_invalid_request_is_caught_by_the_validator() {
    // Guard against a validator that accepts everything.
    let bad = envelope(&GetFolder::new(vec![]), &RequestHeader::default()).replace(
        "<m:FolderIds></m:FolderIds>",
        "<m:FolderIds><t:Bogus/></m:FolderIds>",
    );
    validate(&[("bad".into(), bad)]);
}

fn sample(name: &str) -> Vec<u8> {
    read_reference(&format!("samples/ews/messages/{name}"))
}

fn body_of(name: &str) -> ews_mail::xml::Element {
    parse_envelope(&sample(name), 1 << 24)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .body
}

#[test]
fn sample_finditem_pages() {
    let page = FindItem::parse(&body_of(
        "FindItemResponse__finditem-operation__caac20001d.xml",
    ))
    .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.total, Some(10));
    assert!(page.includes_last);
    assert_eq!(
        page.items[0].id.as_ref().unwrap().change_key.as_deref(),
        Some("fsVU4==")
    );
}

#[test]
fn sample_getitem_error_keeps_message_xml() {
    let r = GetItem::parse(&body_of(
        "GetItemResponse__getitem-operation-email-message__2f4b8a71eb.xml",
    ))
    .unwrap();
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.class, ResponseClass::Error);
    assert_eq!(e.code, "ErrorInvalidPropertyRequest");
    assert_eq!(e.text, "Property is not valid for this object type.");
}

#[test]
fn sample_getfolder_counts() {
    let r = GetFolder::parse(&body_of(
        "GetFolderResponse__getfolder-operation__31988a9e84.xml",
    ))
    .unwrap();
    let f = r[0].as_ref().unwrap();
    assert_eq!(
        (f.total_count, f.unread_count, f.child_folder_count),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(f.display_name.as_deref(), Some("Inbox"));
}

#[test]
fn sample_updateitem_moveitem_deleteitem_createitem_senditem() {
    let u = UpdateItem::parse(&body_of(
        "UpdateItemResponse__updateitem-operation__40d69fe042.xml",
    ))
    .unwrap();
    assert_eq!(u[0].as_ref().unwrap().as_ref().unwrap().id, "AAAtAEFkbW...");
    // Microsoft's own sample writes `ItemID`; it is read anyway.
    let m = MoveItem::parse(&body_of(
        "MoveItemResponse__moveitem-operation__13a83d6830.xml",
    ))
    .unwrap();
    assert_eq!(m[0].as_ref().unwrap().as_ref().unwrap().id, "AAMkAd");
    let d = DeleteItem::parse(&body_of(
        "DeleteItemResponse__deleteitem-operation__4ccdbde1ac.xml",
    ))
    .unwrap();
    assert_eq!(d.len(), 1);
    assert!(d[0].is_ok());
    let c = CreateItem::parse(&body_of(
        "CreateItemResponse__createitem-operation-email-message__5aac6c6dd9.xml",
    ))
    .unwrap();
    assert_eq!(c[0].as_ref().unwrap(), &None, "a send returns no item id");
    let s = SendItem::parse(&body_of(
        "SendItemResponse__senditem-operation__96550101bd.xml",
    ))
    .unwrap();
    assert!(s[0].is_ok());
}

#[test]
fn sample_folders_and_sync() {
    let f = FindFolder::parse(&body_of(
        "FindFolderResponse__findfolder-operation__2a289505e5.xml",
    ))
    .unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].display_name.as_deref(), Some("TestFolder"));
    let c = CreateFolder::parse(&body_of(
        "CreateFolderResponse__createfolder-operation__1a26b18657.xml",
    ))
    .unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[1].as_ref().unwrap().id,
        Some(FolderId::Id {
            id: "AS4AUn==".into(),
            change_key: None
        })
    );
    let s = SyncFolderItems::parse(&body_of(
        "SyncFolderItemsResponse__syncfolderitems-operation__274041206c.xml",
    ))
    .unwrap();
    assert_eq!(s.sync_state, "H4sIAAAAA=");
    assert!(s.includes_last);
    match &s.changes[0] {
        SyncChange::Create(item) => {
            assert_eq!(item.kind, "MeetingRequest");
            assert_eq!(item.subject.as_deref(), Some("Budget Q3"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sample_faults_are_typed() {
    match parse_envelope(
        &sample("Fault__updateitem-operation-contact__fe3931966c.xml"),
        1 << 20,
    ) {
        Err(EwsError::Fault { error, .. }) => {
            assert_eq!(error.code, "ErrorSchemaValidation");
            assert!(error.text.contains("EmailAddress4"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_wellformed_response_sample_parses_or_fails_cleanly() {
    // Robustness: the reader never panics on Microsoft's documented responses, and every
    // envelope whose body is one of our operations' responses parses with that operation.
    let index: serde_json::Value =
        serde_json::from_slice(&read_reference("samples/ews/index.json")).expect("index is JSON");
    let mut ours = 0;
    for s in index["samples"].as_array().unwrap() {
        let file = s["file"].as_str().unwrap();
        // Every indexed sample is committed: a missing one fails rather than shrinking the test.
        let doc = read_reference(&format!("samples/ews/{file}"));
        let env = match parse_envelope(&doc, 1 << 24) {
            Ok(e) => e,
            Err(_) => continue,
        };
        // A typed error response (ResponseClass="Error" on a single-message operation) counts
        // as read; only an unreadable shape fails.
        fn read<T>(r: Result<T, EwsError>) -> bool {
            matches!(r, Ok(_) | Err(EwsError::Response(_)))
        }
        let ok = match env.body.name.as_str() {
            "FindItemResponse" => read(FindItem::parse(&env.body)),
            "GetItemResponse" => read(GetItem::parse(&env.body)),
            "GetFolderResponse" => read(GetFolder::parse(&env.body)),
            "UpdateItemResponse" => read(UpdateItem::parse(&env.body)),
            "DeleteItemResponse" => read(DeleteItem::parse(&env.body)),
            "CreateItemResponse" => read(CreateItem::parse(&env.body)),
            "SendItemResponse" => read(SendItem::parse(&env.body)),
            "SyncFolderItemsResponse" => read(SyncFolderItems::parse(&env.body)),
            "FindFolderResponse" => read(FindFolder::parse(&env.body)),
            "CreateFolderResponse" => read(CreateFolder::parse(&env.body)),
            "MoveItemResponse" => read(MoveItem::parse(&env.body)),
            _ => continue,
        };
        if s["elided"].as_bool() != Some(true) {
            assert!(ok, "{file} did not parse");
        }
        ours += 1;
    }
    assert!(
        ours >= 60,
        "only {ours} samples of our operations were found"
    );
}
