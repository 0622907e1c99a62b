//! EWS: every part of a request is applied or refused with Exchange's response code, never
//! skipped (issue #22 item 2). Each refusal names its code; each part applied shows its effect;
//! every answer validates against the EWS schema.

use crate::common::{EWS_NS, MEGAN, deliver_mime};
use crate::ews::{Ews, between, envelope, ids};

const MB: &str = MEGAN;

/// `<m:FindItem>` on the inbox with `inner` (restriction, sort, view) and `attrs`.
fn find(attrs: &str, inner: &str) -> String {
    format!(
        r#"<m:FindItem Traversal="Shallow"{attrs}><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/></t:AdditionalProperties></m:ItemShape>{inner}<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>"#
    )
}

fn is_eq(field: &str, value: &str) -> String {
    format!(
        r#"<t:IsEqualTo><t:FieldURI FieldURI="{field}"/><t:FieldURIOrConstant><t:Constant Value="{value}"/></t:FieldURIOrConstant></t:IsEqualTo>"#
    )
}

/// `<m:Restriction>` around `inner`.
fn restriction(inner: &str) -> String {
    format!("<m:Restriction>{inner}</m:Restriction>")
}

/// A comparison `op` of the time an item was received with `time`.
fn received(op: &str, time: &str) -> String {
    cmp(op, "item:DateTimeReceived", time)
}

fn cmp(op: &str, field: &str, value: &str) -> String {
    format!(
        r#"<t:{op}><t:FieldURI FieldURI="{field}"/><t:FieldURIOrConstant><t:Constant Value="{value}"/></t:FieldURIOrConstant></t:{op}>"#
    )
}

/// The `ResponseCode`s of an answer, in order (per message, or the fault's).
fn codes(doc: &str) -> Vec<String> {
    let mut out: Vec<String> = between(doc, "<m:ResponseCode>", "<")
        .into_iter()
        .map(str::to_string)
        .collect();
    out.extend(
        between(
            doc,
            "ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">",
            "<",
        )
        .into_iter()
        .map(str::to_string),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_item_applies_or_refuses_every_part() {
    let e = Ews::new().await;
    e.inject(4);

    // Refused parts, each with its code.
    for (inner, attrs, code) in [
        (
            format!("<m:Restriction><t:Or>{}{}</t:Or></m:Restriction>", is_eq("message:IsRead", "false"), is_eq("message:IsRead", "true")),
            "",
            "ErrorUnsupportedQueryFilter",
        ),
        (
            format!("<m:Restriction><t:Not>{}</t:Not></m:Restriction>", is_eq("message:IsRead", "false")),
            "",
            "ErrorUnsupportedQueryFilter",
        ),
        (
            r#"<m:Restriction><t:Contains ContainmentMode="Substring" ContainmentComparison="IgnoreCase"><t:FieldURI FieldURI="item:Subject"/><t:Constant Value="m1"/></t:Contains></m:Restriction>"#.to_string(),
            "",
            "ErrorUnsupportedQueryFilter",
        ),
        (
            format!("<m:Restriction>{}</m:Restriction>", is_eq("item:Subject", "m1")),
            "",
            "ErrorUnsupportedPathForQuery",
        ),
        (
            format!("<m:Restriction><t:And>{}{}</t:And></m:Restriction>", is_eq("message:IsRead", "false"), is_eq("message:From", "x")),
            "",
            "ErrorUnsupportedPathForQuery",
        ),
        (
            r#"<m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="item:Subject"/></t:FieldOrder></m:SortOrder>"#.to_string(),
            "",
            "ErrorUnsupportedPathForSortGroup",
        ),
        (
            r#"<m:CalendarView StartDate="2026-01-01T00:00:00Z" EndDate="2026-02-01T00:00:00Z"/>"#.to_string(),
            "",
            "ErrorCalendarFolderIsInvalidForCalendarView",
        ),
        (
            r#"<m:GroupBy Order="Ascending"><t:FieldURI FieldURI="item:Subject"/><t:AggregateOn Aggregate="Maximum"><t:FieldURI FieldURI="item:DateTimeReceived"/></t:AggregateOn></m:GroupBy>"#.to_string(),
            "",
            "ErrorInvalidRequest",
        ),
        (
            "<m:QueryString>subject:m1</m:QueryString>".to_string(),
            "",
            "ErrorInvalidRequest",
        ),
        (
            r#"<m:FractionalPageItemView MaxEntriesReturned="2" Numerator="3" Denominator="2"/>"#.to_string(),
            "",
            "ErrorInvalidFractionalPagingParameters",
        ),
    ] {
        let t = e.op(&find(attrs, &inner)).await;
        assert_eq!(codes(&t), [code], "{inner}: {t}");
    }
    let t = e.op(&find("", "").replace("Shallow", "SoftDeleted")).await;
    assert_eq!(codes(&t), ["ErrorInvalidRequest"], "{t}");
    // A zoneless time would be read in the TimeZoneContext: refused, not guessed.
    let zoneless = restriction(&received("IsGreaterThan", "2020-01-01T00:00:00"));
    let t = e.op(&find("", &zoneless)).await;
    assert_eq!(codes(&t), ["ErrorInvalidRestriction"], "{t}");

    // Applied parts.
    let after_2999 = restriction(&received("IsGreaterThan", "2999-01-01T00:00:00Z"));
    let t = e.op(&find("", &after_2999)).await;
    assert!(
        t.contains(r#"TotalItemsInView="0""#),
        "received after 2999: {t}"
    );
    let unread_since_2000 = restriction(&format!(
        "<t:And>{}{}</t:And>",
        is_eq("message:IsRead", "false"),
        received("IsGreaterThanOrEqualTo", "2000-01-01T00:00:00Z")
    ));
    let t = e.op(&find("", &unread_since_2000)).await;
    assert!(t.contains(r#"TotalItemsInView="4""#), "{t}");
    let t = e
        .op(&find(
            "",
            r#"<m:FractionalPageItemView MaxEntriesReturned="10" Numerator="1" Denominator="2"/>"#,
        ))
        .await;
    assert!(
        t.contains(r#"NumeratorOffset="4""#)
            && t.contains(r#"AbsoluteDenominator="4""#)
            && ids(&t).len() == 2,
        "the second half: {t}"
    );
    let t = e.op(&find("", "").replace("Shallow", "Associated")).await;
    assert!(
        t.contains(r#"TotalItemsInView="0""#),
        "no associated items: {t}"
    );
    // Two parent folders: one answer each.
    let t = e
        .op(&find("", "").replace(
            r#"<t:DistinguishedFolderId Id="inbox"/>"#,
            r#"<t:DistinguishedFolderId Id="inbox"/><t:DistinguishedFolderId Id="sentitems"/>"#,
        ))
        .await;
    assert_eq!(codes(&t), ["NoError", "NoError"], "{t}");
    assert!(t.contains(r#"TotalItemsInView="4""#) && t.contains(r#"TotalItemsInView="0""#));
    e.validate_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shapes_and_headers_are_applied_or_refused() {
    let e = Ews::new().await;
    deliver_mime(
        &e.sb,
        MB,
        &format!(
            "From: c@fabrikam.example\r\nTo: {MB}\r\nSubject: html\r\nX-Trace: 7\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hello &amp; <b>bye</b></p></body></html>\r\n"
        ),
    );
    let t = e.op(&find("", "")).await;
    let id = ids(&t)[0].clone();
    let get = |shape_extra: &str, props: &str| {
        format!(
            r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>{shape_extra}<t:AdditionalProperties>{props}</t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{id}"/></m:ItemIds></m:GetItem>"#
        )
    };
    // BodyType Text: the markup goes; HTML is the default for an HTML message.
    let t = e
        .op(&get(
            "<t:BodyType>Text</t:BodyType>",
            r#"<t:FieldURI FieldURI="item:Body"/>"#,
        ))
        .await;
    assert!(
        t.contains(r#"<t:Body BodyType="Text">Hello &amp; bye</t:Body>"#),
        "{t}"
    );
    let t = e
        .op(&get("", r#"<t:FieldURI FieldURI="item:Body"/>"#))
        .await;
    assert!(t.contains(r#"BodyType="HTML""#), "{t}");
    // PR_TRANSPORT_MESSAGE_HEADERS.
    let t = e
        .op(&get(
            "",
            r#"<t:ExtendedFieldURI PropertyTag="0x007D" PropertyType="String"/>"#,
        ))
        .await;
    assert!(
        t.contains("X-Trace: 7") && t.contains(r#"PropertyTag="0x7d""#),
        "{t}"
    );
    // A valid path the sandbox does not model is answered without a value.
    let t = e
        .op(&get(
            "",
            r#"<t:FieldURI FieldURI="calendar:Start"/><t:FieldURI FieldURI="item:Subject"/>"#,
        ))
        .await;
    assert!(
        t.contains("<t:Subject>html</t:Subject>") && !t.contains("Start"),
        "{t}"
    );
    // Refused: a path the schema does not know, indexed and other extended properties, shape
    // options not applied, no BaseShape.
    for (body, code) in [
        (
            get("", r#"<t:FieldURI FieldURI="item:Bogus"/>"#),
            "ErrorSchemaValidation",
        ),
        (
            get(
                "",
                r#"<t:IndexedFieldURI FieldURI="item:InternetMessageHeader" FieldIndex="X-Trace"/>"#,
            ),
            "ErrorInvalidPropertyRequest",
        ),
        (
            get(
                "",
                r#"<t:ExtendedFieldURI PropertyTag="0x1000" PropertyType="String"/>"#,
            ),
            "ErrorInvalidPropertyRequest",
        ),
        (
            get("<t:FilterHtmlContent>true</t:FilterHtmlContent>", ""),
            "ErrorInvalidRequest",
        ),
        (
            get("<t:MaximumBodySize>10</t:MaximumBodySize>", ""),
            "ErrorInvalidRequest",
        ),
        (
            get("", "").replace("<t:BaseShape>IdOnly</t:BaseShape>", ""),
            "ErrorSchemaValidation",
        ),
        (
            get("", "")
                .replace("<t:ItemId ", r#"<t:OccurrenceItemId InstanceIndex="1" "#)
                .replace(" Id=", " RecurringMasterId="),
            "ErrorInvalidRequest",
        ),
    ] {
        let (_, t) = e.as_app(envelope(Some(MB), &body)).await;
        assert_eq!(codes(&t), [code], "{body}: {t}");
    }

    // SOAP headers.
    let with_header = |h: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope {EWS_NS}><soap:Header><t:RequestServerVersion Version="Exchange2016"/><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{MB}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>{h}</soap:Header><soap:Body>{}</soap:Body></soap:Envelope>"#,
            find("", "")
        )
    };
    for (h, want) in [
        (
            r#"<t:TimeZoneContext><t:TimeZoneDefinition Id="W. Europe Standard Time"/></t:TimeZoneContext>"#,
            "NoError",
        ),
        ("<t:MailboxCulture>de-DE</t:MailboxCulture>", "NoError"),
        (
            "<t:DateTimePrecision>Seconds</t:DateTimePrecision>",
            "NoError",
        ),
        (
            "<t:DateTimePrecision>Milliseconds</t:DateTimePrecision>",
            "ErrorInvalidRequest",
        ),
        (
            "<t:ManagementRole><t:UserRoles><t:Role><t:Name>x</t:Name></t:Role></t:UserRoles></t:ManagementRole>",
            "ErrorInvalidManagementRoleHeader",
        ),
        (
            "<t:SerializedSecurityContext/>",
            "ErrorInvalidSerializedAccessToken",
        ),
        ("<t:BogusHeader/>", "ErrorSchemaValidation"),
    ] {
        let (_, t) = e.as_app(with_header(h)).await;
        assert_eq!(codes(&t), [want], "{h}: {t}");
    }
    e.validate_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_and_folder_operations_apply_or_refuse_every_part() {
    let e = Ews::new().await;
    e.inject(2);
    let message = |fields: &str| {
        format!(
            r#"<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:Subject>draft</t:Subject><t:Body BodyType="Text">hi</t:Body>{fields}<t:ToRecipients><t:Mailbox><t:EmailAddress>{MB}</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>"#
        )
    };
    // Applied: attachments, a custom header, importance, the read state of a saved draft.
    let t = e
        .op(&message(
            r#"<t:Attachments><t:FileAttachment><t:Name>a.txt</t:Name><t:ContentType>text/plain</t:ContentType><t:ContentId>a1</t:ContentId><t:IsInline>true</t:IsInline><t:Content>YWJj</t:Content></t:FileAttachment></t:Attachments><t:Importance>High</t:Importance><t:IsRead>false</t:IsRead><t:ExtendedProperty><t:ExtendedFieldURI DistinguishedPropertySetId="InternetHeaders" PropertyName="X-Ticket" PropertyType="String"/><t:Value>42</t:Value></t:ExtendedProperty>"#,
        ))
        .await;
    let draft = ids(&t)[0].clone();
    let stored = e.sb.admin().store().get(MB, &draft).unwrap();
    let mime = String::from_utf8_lossy(&stored.mime).into_owned();
    assert!(
        mime.contains("X-Ticket: 42")
            && mime.contains("Importance: high")
            && mime.contains("Content-ID: <a1>")
            && mime.contains("Content-Disposition: inline; filename=\"a.txt\""),
        "{mime}"
    );
    assert!(!stored.is_read);
    // item:Attachments lists the files of a message.
    let t = e
        .op(&format!(r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="item:Attachments"/></t:AdditionalProperties></m:ItemShape><m:ItemIds><t:ItemId Id="{draft}"/></m:ItemIds></m:GetItem>"#))
        .await;
    assert!(
        t.contains("<t:Name>a.txt</t:Name><t:ContentType>text/plain</t:ContentType><t:ContentId>a1</t:ContentId><t:Size>3</t:Size><t:IsInline>true</t:IsInline>"),
        "{t}"
    );
    // Refused fields of CreateItem.
    for (fields, code) in [
        (
            "<t:Categories><t:String>Red</t:String></t:Categories>",
            "ErrorInvalidRequest",
        ),
        (
            "<t:DateTimeSent>2026-01-01T00:00:00Z</t:DateTimeSent>",
            "ErrorInvalidPropertySet",
        ),
        (
            "<t:IsDeliveryReceiptRequested>true</t:IsDeliveryReceiptRequested>",
            "ErrorInvalidRequest",
        ),
        (
            "<t:Attachments><t:ItemAttachment><t:Name>x</t:Name></t:ItemAttachment></t:Attachments>",
            "ErrorInvalidRequest",
        ),
        (
            r#"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x0E07" PropertyType="Integer"/><t:Value>1</t:Value></t:ExtendedProperty>"#,
            "ErrorInvalidRequest",
        ),
    ] {
        let t = e.op(&message(fields)).await;
        assert_eq!(codes(&t), [code], "{fields}: {t}");
    }
    // A sent message's copy goes to Sent Items only.
    let t = e
        .op(&message("").replace("SaveOnly\">", "SendAndSaveCopy\"><m:SavedItemFolderId><t:DistinguishedFolderId Id=\"drafts\"/></m:SavedItemFolderId>"))
        .await;
    assert_eq!(codes(&t), ["ErrorInvalidRequest"], "{t}");
    let t = e
        .op(&format!(r#"<m:SendItem SaveItemToFolder="true"><m:ItemIds><t:ItemId Id="{draft}"/></m:ItemIds><m:SavedItemFolderId><t:DistinguishedFolderId Id="drafts"/></m:SavedItemFolderId></m:SendItem>"#))
        .await;
    assert_eq!(codes(&t), ["ErrorInvalidRequest"], "{t}");
    // SaveItemToFolder is required.
    let (_, t) = e
        .as_app(envelope(
            Some(MB),
            &format!(r#"<m:SendItem><m:ItemIds><t:ItemId Id="{draft}"/></m:ItemIds></m:SendItem>"#),
        ))
        .await;
    assert_eq!(codes(&t), ["ErrorSchemaValidation"], "{t}");
    // UpdateItem then send: refused.
    let t = e
        .op(&format!(r#"<m:UpdateItem MessageDisposition="SendAndSaveCopy" ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange><t:ItemId Id="{draft}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#))
        .await;
    assert_eq!(codes(&t), ["ErrorInvalidRequest"], "{t}");

    // SyncFolderItems: Ignore leaves the item out.
    let sync = |ignore: &str| {
        format!(
            r#"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>{ignore}<m:MaxChangesReturned>100</m:MaxChangesReturned></m:SyncFolderItems>"#
        )
    };
    let all = ids(&e.op(&sync("")).await);
    assert_eq!(all.len(), 2);
    let t = e
        .op(&sync(&format!(
            r#"<m:Ignore><t:ItemId Id="{}"/></m:Ignore>"#,
            all[0]
        )))
        .await;
    assert_eq!(ids(&t), [all[1].clone()], "{t}");
    // MaxChangesReturned above the schema's 512 is refused, not clamped.
    let (_, t) = e
        .as_app(envelope(Some(MB), &sync("").replace(">100<", ">1000<")))
        .await;
    assert_eq!(codes(&t), ["ErrorSchemaValidation"], "{t}");

    // Folders: shapes, restriction, paging, creation.
    let t = e.op(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#).await;
    assert!(
        t.contains("<t:FolderId ") && !t.contains("DisplayName"),
        "IdOnly: {t}"
    );
    let t = e.op(r#"<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="folder:UnreadCount"/></t:AdditionalProperties></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>"#).await;
    assert!(
        t.contains("<t:UnreadCount>2</t:UnreadCount>") && !t.contains("DisplayName"),
        "{t}"
    );
    let find_folder = |inner: &str| {
        format!(
            r#"<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>{inner}<m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>"#
        )
    };
    let t = e
        .op(&find_folder(&format!(
            "<m:Restriction>{}</m:Restriction>",
            is_eq("folder:DisplayName", "inbox")
        )))
        .await;
    assert!(
        t.contains(r#"TotalItemsInView="1""#) && t.contains("<t:DisplayName>Inbox<"),
        "{t}"
    );
    let t = e
        .op(&find_folder(
            r#"<m:IndexedPageFolderView MaxEntriesReturned="1" Offset="0" BasePoint="Beginning"/>"#,
        ))
        .await;
    assert!(
        t.matches("<t:Folder>").count() == 1
            && t.contains(r#"IncludesLastItemInRange="false""#)
            && t.contains(r#"IndexedPagingOffset="1""#),
        "{t}"
    );
    for (inner, code) in [
        (
            format!(
                "<m:Restriction>{}</m:Restriction>",
                is_eq("folder:TotalCount", "0")
            ),
            "ErrorUnsupportedPathForQuery",
        ),
        (
            format!(
                "<m:Restriction><t:Or>{0}{0}</t:Or></m:Restriction>",
                is_eq("folder:DisplayName", "x")
            ),
            "ErrorUnsupportedQueryFilter",
        ),
        (
            r#"<m:FractionalPageFolderView MaxEntriesReturned="1" Numerator="0" Denominator="1"/>"#
                .to_string(),
            "ErrorInvalidRequest",
        ),
    ] {
        let t = e.op(&find_folder(&inner)).await;
        assert_eq!(codes(&t), [code], "{inner}: {t}");
    }
    for (folder, code) in [
        (
            "<t:CalendarFolder><t:DisplayName>Cal</t:DisplayName></t:CalendarFolder>",
            "ErrorInvalidRequest",
        ),
        (
            "<t:Folder><t:FolderClass>IPF.Appointment</t:FolderClass><t:DisplayName>A</t:DisplayName></t:Folder>",
            "ErrorInvalidRequest",
        ),
        (
            "<t:Folder><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Fine</t:DisplayName></t:Folder>",
            "NoError",
        ),
    ] {
        let t = e
            .op(&format!(r#"<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderId><m:Folders>{folder}</m:Folders></m:CreateFolder>"#))
            .await;
        assert_eq!(codes(&t), [code], "{folder}: {t}");
    }
    // ResolveNames: ambiguous name resolution, one match or several (a warning).
    let resolve = |entry: &str| {
        format!(
            r#"<m:ResolveNames ReturnFullContactData="false"><m:UnresolvedEntry>{entry}</m:UnresolvedEntry></m:ResolveNames>"#
        )
    };
    let t = e.op(&resolve("megan")).await;
    assert!(
        t.contains("NoError") && t.contains(&format!("<t:EmailAddress>{MB}<")),
        "{t}"
    );
    let t = e.op(&resolve("a")).await;
    assert!(
        t.contains(r#"ResponseClass="Warning""#)
            && t.contains("ErrorNameResolutionMultipleResults")
            && t.matches("<t:Resolution>").count() >= 2,
        "{t}"
    );
    let t = e.op(&resolve("zz-nobody")).await;
    assert_eq!(codes(&t), ["ErrorNameResolutionNoResults"], "{t}");
    // ResolveNames with contact data: refused.
    let t = e
        .op(&format!(r#"<m:ResolveNames ReturnFullContactData="true"><m:UnresolvedEntry>{MB}</m:UnresolvedEntry></m:ResolveNames>"#))
        .await;
    assert_eq!(codes(&t), ["ErrorInvalidRequest"], "{t}");
    e.validate_all();
}
