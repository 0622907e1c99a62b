//! JSON shapes of Graph mail resources, following Microsoft's documented samples.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bodies::{BodyKind, body};
use crate::store::{EmailAddress, FolderInfo, Message};

/// Properties of `microsoft.graph.message` the sandbox knows (the names of the v1.0 CSDL).
pub(crate) const MESSAGE_PROPS: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "uniqueBody",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
];

/// Graph's date-time form (`2026-03-02T10:00:00Z`).
pub(crate) fn datetime(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

fn recipient(a: &EmailAddress) -> Value {
    json!({ "emailAddress": { "name": if a.name.is_empty() { &a.address } else { &a.name }, "address": a.address } })
}

fn recipients(v: &[EmailAddress]) -> Value {
    Value::Array(v.iter().map(recipient).collect())
}

/// One property of a message (a name of [`MESSAGE_PROPS`]); `None` for a name it does not
/// know. Only the properties asked for are built: a listing page of 1,000 messages with a short
/// `$select` must not copy every body (that was most of the time of a Graph list page).
fn property(m: &Message, id: &str, name: &str, kind: BodyKind) -> Option<Value> {
    let p = &m.props;
    let body_json = || match body(p, kind) {
        (true, html) => json!({ "contentType": "html", "content": html }),
        (false, text) => json!({ "contentType": "text", "content": text }),
    };
    Some(match name {
        "id" => json!(id),
        "createdDateTime" | "receivedDateTime" => json!(datetime(m.received)),
        "lastModifiedDateTime" => json!(datetime(m.last_modified)),
        "changeKey" => json!(m.change_key),
        "categories" => json!([]),
        "sentDateTime" => json!(datetime(p.sent.unwrap_or(m.received))),
        "hasAttachments" => json!(p.has_attachments),
        "internetMessageId" => json!(p.internet_message_id),
        "subject" => json!(p.subject),
        "bodyPreview" => json!(p.body_preview),
        "importance" => json!("normal"),
        "parentFolderId" => json!(m.folder_id),
        "conversationId" => json!(format!("AAQkA{}", &m.immutable_id.get(6..20).unwrap_or(""))),
        "isDeliveryReceiptRequested" | "isReadReceiptRequested" => json!(false),
        "isRead" => json!(m.is_read),
        "isDraft" => json!(m.is_draft),
        "webLink" => json!(format!(
            "https://outlook.office365.com/owa/?ItemID={id}&exvsurl=1&viewmodel=ReadMessageItem"
        )),
        "inferenceClassification" => json!("focused"),
        "body" | "uniqueBody" => body_json(),
        "sender" => p.sender.as_ref().map(recipient).unwrap_or(Value::Null),
        "from" => p.from.as_ref().map(recipient).unwrap_or(Value::Null),
        "toRecipients" => recipients(&p.to),
        "ccRecipients" => recipients(&p.cc),
        "bccRecipients" => recipients(&p.bcc),
        "replyTo" => recipients(&p.reply_to),
        "flag" => json!({ "flagStatus": "notFlagged" }),
        "internetMessageHeaders" => p
            .headers
            .iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect(),
        _ => return None,
    })
}

/// A message, with only the `$select`ed properties when `select` is given (`id` always).
/// `internetMessageHeaders` appears only when selected, as in Graph.
pub(crate) fn message(m: &Message, immutable: bool, select: Option<&[String]>) -> Value {
    message_as(m, immutable, select, BodyKind::Best)
}

/// [`message`] with `body` and `uniqueBody` in the kind asked for
/// (`Prefer: outlook.body-content-type`).
pub(crate) fn message_as(
    m: &Message,
    immutable: bool,
    select: Option<&[String]>,
    kind: BodyKind,
) -> Value {
    let id = if immutable { &m.immutable_id } else { &m.id };
    let mut out = Map::new();
    out.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", m.change_key)),
    );
    let mut put = |name: &str| {
        if let Some(v) = property(m, id, name, kind) {
            out.insert(name.to_string(), v);
        }
    };
    match select {
        None => MESSAGE_PROPS
            .iter()
            .filter(|n| **n != "internetMessageHeaders")
            .for_each(|n| put(n)),
        Some(sel) => {
            put("id");
            sel.iter()
                .filter(|s| s.as_str() != "id")
                .for_each(|s| put(s));
        }
    }
    Value::Object(out)
}

/// Properties of `microsoft.graph.mailFolder` the sandbox knows (the names of the v1.0 CSDL).
pub(crate) const FOLDER_PROPS: &[&str] = &[
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
];

/// A mail folder.
pub(crate) fn folder(f: &FolderInfo) -> Value {
    json!({
        "id": f.id,
        "displayName": f.display_name,
        "parentFolderId": f.parent_id,
        "childFolderCount": f.child_folder_count,
        "unreadItemCount": f.unread_count,
        "totalItemCount": f.total_count,
        "isHidden": f.is_hidden,
    })
}

/// A mail folder with only the `$select`ed properties (`id` always) when `select` is given.
pub(crate) fn folder_selected(f: &FolderInfo, select: Option<&[String]>) -> Value {
    let mut v = folder(f);
    if let (Some(sel), Value::Object(o)) = (select, &mut v) {
        o.retain(|k, _| k == "id" || sel.iter().any(|s| s == k));
    }
    v
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MessageProps;

    fn sample() -> Message {
        let mime = b"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: Hi\r\n\
Message-ID: <m1@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\
Content-Type: text/html\r\n\r\n<p>Hello</p>\r\n";
        let props = MessageProps::from_mime(mime).expect("sample MIME parses");
        let t = time::macros::datetime!(2026-03-02 10:05 UTC);
        Message {
            id: "AAMkAGid0001".into(),
            immutable_id: "AAkALgimm0000001xyz".into(),
            change_key: "CQAAAA1".into(),
            folder_id: "folder-inbox".into(),
            mime: bytes::Bytes::from_static(mime),
            props: Arc::new(props),
            is_read: false,
            is_draft: false,
            received: t,
            last_modified: t,
            seq: 1,
        }
    }

    #[test]
    fn full_rendering_has_every_property_but_headers() {
        let m = sample();
        let v = message(&m, false, None);
        let o = v.as_object().expect("an object");
        for p in MESSAGE_PROPS {
            assert_eq!(
                o.contains_key(*p),
                *p != "internetMessageHeaders",
                "property {p}"
            );
        }
        assert_eq!(o["@odata.etag"], json!("W/\"CQAAAA1\""));
        assert_eq!(
            o["body"],
            json!({"contentType": "html", "content": "<p>Hello</p>\r\n"})
        );
        assert_eq!(o["uniqueBody"], o["body"]);
        assert_eq!(
            o["toRecipients"][0]["emailAddress"]["address"],
            "bob@example.com"
        );
    }

    #[test]
    fn selection_renders_the_same_values_and_only_those() {
        let m = sample();
        let full = message(&m, true, None);
        let sel: Vec<String> = ["subject", "id", "internetMessageHeaders", "from"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = message(&m, true, Some(&sel));
        let o = v.as_object().expect("an object");
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "@odata.etag",
                "from",
                "id",
                "internetMessageHeaders",
                "subject"
            ]
        );
        assert_eq!(
            o["id"],
            json!("AAkALgimm0000001xyz"),
            "immutable id asked for"
        );
        for k in ["@odata.etag", "from", "id", "subject"] {
            assert_eq!(o[k], full[k], "{k}");
        }
        let headers = o["internetMessageHeaders"].as_array().expect("headers");
        assert!(
            headers
                .iter()
                .any(|h| h["name"] == "Subject" && h["value"] == "Hi")
        );
    }
}
