//! The EWS endpoint: behaviour of each operation, and every response valid against the EWS
//! schema (`testdata/reference/ews`, checked with xmllint through validate-ews.py).

use std::sync::Mutex;

use sandbox::{ApiResource, FaultKind, FaultPlan, FaultRule, Protocol, Sandbox};

use crate::common::{DEMO_APP, EWS_NS, MEGAN, delegated_token, ews_app_token, post_soap, start};

const MB: &str = MEGAN;

pub(crate) struct Ews {
    pub(crate) sb: Sandbox,
    http: reqwest::Client,
    /// Every 200/500 SOAP body received, for schema validation.
    seen: Mutex<Vec<(String, String)>>,
}

pub(crate) fn user_token(sb: &Sandbox, user: &str) -> String {
    delegated_token(sb, user, &["EWS.AccessAsUser.All"], ApiResource::Exchange)
}

pub(crate) fn envelope(impersonate: Option<&str>, body: &str) -> String {
    let imp = impersonate
        .map(|m| format!("<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{m}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope {EWS_NS}><soap:Header><t:RequestServerVersion Version="Exchange2016"/>{imp}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

impl Ews {
    pub(crate) async fn new() -> Self {
        let sb = start().await;
        Ews {
            sb,
            http: reqwest::Client::new(),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub(crate) async fn raw(&self, token: &str, doc: String) -> (u16, String) {
        let (status, text) = post_soap(&self.http, &self.sb, token, Some(MB), doc).await;
        if status == 200 || status == 500 {
            let mut seen = self.seen.lock().unwrap();
            let n = seen.len();
            seen.push((format!("response-{n}"), text.clone()));
        }
        (status, text)
    }

    /// [`Ews::raw`] with the app's token.
    pub(crate) async fn as_app(&self, doc: String) -> (u16, String) {
        self.raw(&ews_app_token(&self.sb), doc).await
    }

    /// An operation as the app impersonating `MB`.
    pub(crate) async fn op(&self, body: &str) -> String {
        let (s, t) = self.as_app(envelope(Some(MB), body)).await;
        assert_eq!(s, 200, "{t}");
        t
    }

    pub(crate) fn inject(&self, n: usize) {
        for i in 0..n {
            self.sb
                .admin()
                .inject("c@fabrikam.example", &[MB.to_string()], format!("Message-ID: <e{i}@x>\r\nFrom: C <c@fabrikam.example>\r\nTo: {MB}\r\nReply-To: a@x.example, b@x.example\r\nSubject: m{i}\r\n\r\nbody {i}\r\n").as_bytes())
                .unwrap();
        }
    }

    /// Adds a SOAP document (a request of ours, a streamed envelope) to those validated.
    pub(crate) fn remember(&self, doc: String) {
        let mut seen = self.seen.lock().unwrap();
        let n = seen.len();
        seen.push((format!("document-{n}"), doc));
    }

    /// The HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn validate_all(&self) {
        let docs = self.seen.lock().unwrap().clone();
        test_support::reference::assert_valid_ews(&docs);
    }
}

pub(crate) fn between<'a>(s: &'a str, a: &str, b: &str) -> Vec<&'a str> {
    s.split(a)
        .skip(1)
        .filter_map(|x| x.split(b).next())
        .collect()
}

pub(crate) fn ids(doc: &str) -> Vec<String> {
    between(doc, "<t:ItemId Id=\"", "\"")
        .into_iter()
        .map(str::to_string)
        .collect()
}

const FIND_UNREAD: &str = r#"<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:DateTimeReceived"/><t:FieldURI FieldURI="item:Subject"/></t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="2" Offset="OFFSET" BasePoint="Beginning"/><m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"/><t:FieldURIOrConstant><t:Constant Value="false"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction><m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_behave_and_every_response_is_schema_valid() {
    let e = Ews::new().await;
    e.inject(5);

    // GetFolder with counts, also through DistinguishedFolderId/Mailbox.
    let t = e.op(&format!(r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>{MB}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId><t:DistinguishedFolderId Id="nosuchfolder"/></m:FolderIds></m:GetFolder>"#)).await;
    assert!(
        t.contains("<t:TotalCount>5</t:TotalCount>")
            && t.contains("<t:UnreadCount>5</t:UnreadCount>"),
        "{t}"
    );
    assert!(t.contains("ErrorFolderNotFound"), "per-item error: {t}");

    // FindItem: paging, unread restriction, ascending order.
    let p1 = e.op(&FIND_UNREAD.replace("OFFSET", "0")).await;
    assert!(
        p1.contains(r#"IndexedPagingOffset="2""#)
            && p1.contains(r#"TotalItemsInView="5""#)
            && p1.contains(r#"IncludesLastItemInRange="false""#),
        "{p1}"
    );
    assert!(p1.find("<t:Subject>m0</t:Subject>") < p1.find("<t:Subject>m1</t:Subject>"));
    let p3 = e.op(&FIND_UNREAD.replace("OFFSET", "4")).await;
    assert!(
        p3.contains(r#"IncludesLastItemInRange="true""#) && p3.contains("m4"),
        "{p3}"
    );
    let first = ids(&p1);

    // GetItem: many ids, MIME, routing properties, one unknown id answered in place.
    let t = e.op(&format!(r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent><t:AdditionalProperties><t:FieldURI FieldURI="message:InternetMessageId"/><t:FieldURI FieldURI="message:ToRecipients"/><t:FieldURI FieldURI="message:From"/><t:FieldURI FieldURI="message:ReplyTo"/><t:FieldURI FieldURI="item:InternetMessageHeaders"/><t:FieldURI FieldURI="item:Body"/><t:FieldURI FieldURI="message:IsRead"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{}"/><t:ItemId Id="AAMkAGdvbmUtMDAwMDAwMDA="/><t:ItemId Id="{}"/></m:ItemIds></m:GetItem>"#, first[0], first[1])).await;
    assert_eq!(t.matches("ResponseClass=\"Success\"").count(), 2, "{t}");
    assert!(t.contains("ErrorItemNotFound"));
    assert!(
        t.contains("<t:MimeContent>")
            && t.contains("<t:InternetMessageId>&lt;e0@x&gt;</t:InternetMessageId>"),
        "{t}"
    );
    assert_eq!(t.matches("<t:ReplyTo>").count(), 2);

    // UpdateItem: a stale change key conflicts; AlwaysOverwrite ignores it.
    let upd = |id: &str, ck: &str, mode: &str| {
        format!(
            r#"<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="{mode}"><m:ItemChanges><t:ItemChange><t:ItemId Id="{id}" ChangeKey="{ck}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#
        )
    };
    let t = e.op(&upd(&first[0], "CQAAAstale", "AutoResolve")).await;
    assert!(t.contains("ErrorIrresolvableConflict"), "{t}");
    let t = e.op(&upd(&first[0], "CQAAAstale", "AlwaysOverwrite")).await;
    assert!(
        t.contains("NoError") && t.contains("<m:ConflictResults>"),
        "{t}"
    );

    // xs:boolean `1` (exchangelib writes it) works like `true`.
    let t = e
        .op(&upd(&first[1], "", "AlwaysOverwrite").replace("<t:IsRead>true<", "<t:IsRead>1<"))
        .await;
    assert!(t.contains("NoError"), "{t}");
    let inbox = e.sb.admin().store().folder(MB, "inbox").unwrap();
    assert_eq!(inbox.unread_count, 3);

    // CreateFolder, FindFolder, MoveItem (new id), CopyItem, DeleteItem with every DeleteType.
    let t = e.op(r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Processed</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#).await;
    let folder = between(&t, "<t:FolderId Id=\"", "\"")[0].to_string();
    let t = e.op(r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Processed</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"#).await;
    assert!(t.contains("ErrorFolderExists"));
    let t = e.op(r#"<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>"#).await;
    assert!(
        t.contains("<t:DisplayName>Processed</t:DisplayName>")
            && t.contains("<t:DisplayName>Inbox</t:DisplayName>")
    );
    let t = e.op(&format!(r#"<m:MoveItem><m:ToFolderId><t:FolderId Id="{folder}"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{}"/></m:ItemIds><m:ReturnNewItemIds>true</m:ReturnNewItemIds></m:MoveItem>"#, first[1])).await;
    let moved = ids(&t);
    assert_eq!(moved.len(), 1);
    assert_ne!(moved[0], first[1], "ids change on move");
    let t = e.op(&format!(r#"<m:CopyItem><m:ToFolderId><t:DistinguishedFolderId Id="archive"/></m:ToFolderId><m:ItemIds><t:ItemId Id="{}"/></m:ItemIds></m:CopyItem>"#, moved[0])).await;
    assert!(t.contains("NoError"));
    let rest = ids(&e
        .op(&FIND_UNREAD
            .replace("OFFSET", "0")
            .replace("MaxEntriesReturned=\"2\"", "MaxEntriesReturned=\"10\""))
        .await);
    assert_eq!(rest.len(), 3);
    for (id, t) in rest
        .iter()
        .zip(["HardDelete", "SoftDelete", "MoveToDeletedItems"])
    {
        let r = e.op(&format!(r#"<m:DeleteItem DeleteType="{t}"><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:DeleteItem>"#)).await;
        assert!(r.contains("NoError"), "{t}: {r}");
    }
    let deleted = e.sb.admin().store().folder(MB, "deleteditems").unwrap();
    assert_eq!(deleted.total_count, 1);

    // CreateItem: SaveOnly returns an id; SendItem sends it; SendAndSaveCopy with MIME and
    // SendOnly with structured fields deliver.
    let t = e.op(r#"<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:DistinguishedFolderId Id="drafts"/></m:SavedItemFolderId><m:Items><t:Message><t:Subject>draft</t:Subject><t:Body BodyType="Text">hello</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>adele.vance@contoso.example</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#).await;
    let draft = ids(&t);
    assert_eq!(draft.len(), 1);
    let t = e.op(&format!(r#"<m:SendItem SaveItemToFolder="true"><m:ItemIds><t:ItemId Id="{}"/></m:ItemIds><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId></m:SendItem>"#, draft[0])).await;
    assert!(t.contains("NoError"), "{t}");
    let mime = base64_encode(format!("From: {MB}\r\nTo: adele.vance@contoso.example\r\nSubject: mime send\r\nMessage-ID: <sent-1@x>\r\n\r\nhi\r\n").as_bytes());
    let t = e.op(&format!(r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId><t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items><t:Message><t:MimeContent>{mime}</t:MimeContent></t:Message></m:Items></m:CreateItem>"#)).await;
    assert!(t.contains("NoError"), "{t}");
    let t = e.op(r#"<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:Subject>structured</t:Subject><t:Body BodyType="Text">x</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>adele.vance@contoso.example</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#).await;
    assert!(t.contains("NoError"), "{t}");
    let adele =
        e.sb.admin()
            .store()
            .folder("adele.vance@contoso.example", "inbox")
            .unwrap();
    assert_eq!(adele.total_count, 3);
    let sent = e.sb.admin().store().folder(MB, "sentitems").unwrap();
    assert_eq!(
        sent.total_count, 2,
        "SendItem and SendAndSaveCopy keep a copy, SendOnly does not"
    );
    let t = e.op(r#"<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message><t:Subject>as someone else</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>adele.vance@contoso.example</t:EmailAddress></t:Mailbox></t:ToRecipients><t:From><t:Mailbox><t:EmailAddress>nobody@fabrikam.example</t:EmailAddress></t:Mailbox></t:From></t:Message></m:Items></m:CreateItem>"#).await;
    assert!(t.contains("ErrorSendAsDenied"), "{t}");

    // SyncFolderItems: first call without state, then incremental; a bad state is refused.
    let sync = |state: &str| {
        format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>{state}<m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>"#
        )
    };
    let t = e.op(&sync("")).await;
    assert!(t.contains("<t:Create>"), "{t}");
    let state = between(&t, "<m:SyncState>", "<")[0].to_string();
    e.inject(1);
    let t = e
        .op(&sync(&format!("<m:SyncState>{state}</m:SyncState>")))
        .await;
    assert_eq!(t.matches("<t:Create>").count(), 1, "{t}");
    let t = e.op(&sync("<m:SyncState>Z2FyYmFnZQ==</m:SyncState>")).await;
    assert!(t.contains("ErrorInvalidSyncStateData"));

    // ResolveNames (exchangelib probes the version with it).
    let t = e.op(r#"<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>DUMMY</m:UnresolvedEntry></m:ResolveNames>"#).await;
    assert!(t.contains("ErrorNameResolutionNoResults"));
    let t = e.op(&format!(r#"<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>{MB}</m:UnresolvedEntry></m:ResolveNames>"#)).await;
    assert!(t.contains("<t:Resolution>"), "{t}");
    assert!(t.contains("ServerVersionInfo"));

    // Throttling as a SOAP fault with BackOffMilliseconds.
    e.sb.admin().set_faults(
        FaultPlan::new([FaultRule::next(
            Protocol::Ews,
            1,
            FaultKind::ServerBusy { back_off_ms: 1234 },
        )])
        .with_seed(1),
    );
    let (s, t) = e
        .as_app(envelope(Some(MB), &FIND_UNREAD.replace("OFFSET", "0")))
        .await;
    assert_eq!(s, 500);
    assert!(
        t.contains("ErrorServerBusy")
            && t.contains(r#"<t:Value Name="BackOffMilliseconds">1234</t:Value>"#),
        "{t}"
    );

    e.validate_all();
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_impersonation_consent_and_policy() {
    let e = Ews::new().await;
    let get = r#"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#;
    // App-only tokens must impersonate.
    let (s, t) = e.as_app(envelope(None, get)).await;
    assert_eq!(s, 500);
    assert!(t.contains("ErrorInvalidExchangeImpersonationHeaderData"));
    // Delegated tokens may not impersonate.
    let (s, t) = e
        .raw(
            &user_token(&e.sb, MB),
            envelope(Some("adele.vance@contoso.example"), get),
        )
        .await;
    assert_eq!(s, 500);
    assert!(t.contains("ErrorImpersonateUserDenied"));
    // Unknown mailbox.
    let (_, t) = e.as_app(envelope(Some("ghost@contoso.example"), get)).await;
    assert!(t.contains("ErrorNonExistentMailbox"));
    // A bad server version.
    let (s, t) = e
        .as_app(envelope(Some(MB), get).replace("Exchange2016", "Exchange207_SP1"))
        .await;
    assert_eq!(s, 500);
    assert!(t.contains("ErrorInvalidServerVersion"));
    // A DOCTYPE is refused.
    let (s, _) = e
        .as_app(format!(
            "<!DOCTYPE x [<!ENTITY a \"b\">]>{}",
            envelope(Some(MB), get)
                .trim_start_matches("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        ))
        .await;
    assert_eq!(s, 500);
    // Delegated: works with admin consent, 401 with user consent only.
    let (s, _) = e.raw(&user_token(&e.sb, MB), envelope(None, get)).await;
    assert_eq!(s, 200);
    e.sb.admin().revoke_admin_consent(DEMO_APP).unwrap();
    e.sb.admin()
        .grant_user_consent(
            DEMO_APP,
            MB,
            &["https://outlook.office365.com/EWS.AccessAsUser.All"],
        )
        .unwrap();
    let r = e
        .http
        .post(e.sb.ews_url())
        .bearer_auth(user_token(&e.sb, MB))
        .body(envelope(None, get))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("AADSTS65001")
    );
    // EwsAllowedAppIDs without this app but EwsEnabled unset: the list has no effect
    // (protocol.md §3: "with $null the list has no effect").
    let e2 = Ews::new().await;
    e2.sb.admin().update_org(|o| {
        o.ews_enabled = None;
        o.ews_allowed_app_ids = Some(vec!["11111111-1111-1111-1111-111111111111".into()]);
    });
    let (s, _) = e2.as_app(envelope(Some(MB), get)).await;
    assert_eq!(
        s, 200,
        "EwsAllowedAppIDs applies only when EwsEnabled is set"
    );
    // EwsEnabled + EwsAllowedAppIDs without this app: 403.
    e2.sb.admin().update_org(|o| {
        o.ews_enabled = Some(true);
        o.ews_allowed_app_ids = Some(vec!["11111111-1111-1111-1111-111111111111".into()]);
    });
    let (s, _) = e2.as_app(envelope(Some(MB), get)).await;
    assert_eq!(s, 403);
    e2.sb
        .admin()
        .update_org(|o| o.ews_allowed_app_ids = Some(vec![DEMO_APP.into()]));
    let (s, _) = e2.as_app(envelope(Some(MB), get)).await;
    assert_eq!(s, 200);
    e.validate_all();
}

/// `IndexedPageItemView BasePoint="End"`: the page counted back from the end of the view, its
/// items still in the view's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_item_pages_from_the_end() {
    let e = Ews::new().await;
    e.inject(5);
    let find = |offset: usize, max: usize, order: &str| {
        FIND_UNREAD
            .replace(r#"Offset="OFFSET""#, &format!(r#"Offset="{offset}""#))
            .replace(
                r#"MaxEntriesReturned="2""#,
                &format!(r#"MaxEntriesReturned="{max}""#),
            )
            .replace(r#"BasePoint="Beginning""#, r#"BasePoint="End""#)
            .replace(r#"Order="Ascending""#, &format!(r#"Order="{order}""#))
    };
    let subjects = |t: &str| -> Vec<String> {
        t.split("<t:Subject>")
            .skip(1)
            .filter_map(|s| s.split_once("</t:Subject>").map(|(a, _)| a.to_string()))
            .collect()
    };
    let t = e.op(&find(1, 2, "Ascending")).await;
    assert_eq!(subjects(&t), ["m2", "m3"], "{t}");
    assert!(
        t.contains(r#"IndexedPagingOffset="4""#)
            && t.contains(r#"TotalItemsInView="5""#)
            && t.contains(r#"IncludesLastItemInRange="false""#),
        "{t}"
    );
    let t = e.op(&find(4, 2, "Ascending")).await;
    assert_eq!(subjects(&t), ["m0"], "{t}");
    assert!(t.contains(r#"IncludesLastItemInRange="true""#), "{t}");
    let t = e.op(&find(0, 2, "Descending")).await;
    assert_eq!(subjects(&t), ["m1", "m0"], "{t}");
    let t = e.op(&find(9, 2, "Ascending")).await;
    assert!(subjects(&t).is_empty(), "{t}");
}

/// `Admin::set_ews_time_per_kib`: an EWS request holds its concurrency slot for the time its
/// request and answer weigh, on top of the drawn latency, so that a FindItem of 40 items holds
/// it longer than one of 2; without it (the default) neither does.
#[tokio::test]
async fn ews_requests_hold_their_slot_for_what_they_carry() {
    let e = Ews::new().await;
    e.inject(40);
    let find = |max: usize| {
        FIND_UNREAD
            .replace(r#"Offset="OFFSET""#, r#"Offset="0""#)
            .replace(
                r#"MaxEntriesReturned="2""#,
                &format!(r#"MaxEntriesReturned="{max}""#),
            )
    };
    let per_kib = 40.0;
    e.sb.admin().set_ews_time_per_kib(Some(per_kib));
    for max in [2, 40] {
        e.sb.admin().record_slots(true);
        let request = envelope(Some(MB), &find(max));
        let (status, answer) = e.as_app(request.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer.matches("<t:Message>").count(), max, "{answer}");
        let uses = e.sb.admin().slot_uses();
        assert_eq!(uses.len(), 1, "{uses:?}");
        let held_ms = (uses[0].end_us - uses[0].start_us) as f64 / 1000.0;
        let weight_ms = per_kib * (request.len() + answer.len()) as f64 / 1024.0;
        assert!(
            held_ms >= weight_ms,
            "{max} items: held {held_ms} ms, less than the {weight_ms} ms they weigh"
        );
    }
    e.sb.admin().set_ews_time_per_kib(None);
    e.sb.admin().record_slots(false);
    e.sb.shutdown().await;
}
