//! JSON shapes of Graph mail resources, following Microsoft's documented samples.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

/// A message, with only the `$select`ed properties when `select` is given (`id` always).
/// `internetMessageHeaders` appears only when selected, as in Graph.
pub(crate) fn message(m: &Message, immutable: bool, select: Option<&[String]>) -> Value {
    let p = &m.props;
    let id = if immutable { &m.immutable_id } else { &m.id };
    let body = match &p.body_html {
        Some(html) => json!({ "contentType": "html", "content": html }),
        None => json!({ "contentType": "text", "content": p.body_text }),
    };
    let mut all = Map::new();
    let mut put = |k: &str, v: Value| {
        all.insert(k.to_string(), v);
    };
    put("id", json!(id));
    put("createdDateTime", json!(datetime(m.received)));
    put("lastModifiedDateTime", json!(datetime(m.last_modified)));
    put("changeKey", json!(m.change_key));
    put("categories", json!([]));
    put("receivedDateTime", json!(datetime(m.received)));
    put(
        "sentDateTime",
        json!(datetime(p.sent.unwrap_or(m.received))),
    );
    put("hasAttachments", json!(p.has_attachments));
    put("internetMessageId", json!(p.internet_message_id));
    put("subject", json!(p.subject));
    put("bodyPreview", json!(p.body_preview));
    put("importance", json!("normal"));
    put("parentFolderId", json!(m.folder_id));
    put(
        "conversationId",
        json!(format!("AAQkA{}", &m.immutable_id.get(6..20).unwrap_or(""))),
    );
    put("isDeliveryReceiptRequested", json!(false));
    put("isReadReceiptRequested", json!(false));
    put("isRead", json!(m.is_read));
    put("isDraft", json!(m.is_draft));
    put(
        "webLink",
        json!(format!(
            "https://outlook.office365.com/owa/?ItemID={}&exvsurl=1&viewmodel=ReadMessageItem",
            id
        )),
    );
    put("inferenceClassification", json!("focused"));
    put("body", body.clone());
    put("uniqueBody", body);
    put(
        "sender",
        p.sender.as_ref().map(recipient).unwrap_or(Value::Null),
    );
    put(
        "from",
        p.from.as_ref().map(recipient).unwrap_or(Value::Null),
    );
    put("toRecipients", recipients(&p.to));
    put("ccRecipients", recipients(&p.cc));
    put("bccRecipients", recipients(&p.bcc));
    put("replyTo", recipients(&p.reply_to));
    put("flag", json!({ "flagStatus": "notFlagged" }));
    let headers: Value = p
        .headers
        .iter()
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect();
    let mut out = Map::new();
    out.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", m.change_key)),
    );
    match select {
        None => {
            out.extend(all);
        }
        Some(sel) => {
            if let Some(v) = all.remove("id") {
                out.insert("id".into(), v);
            }
            for s in sel {
                if s == "internetMessageHeaders" {
                    out.insert(s.clone(), headers.clone());
                } else if let Some(v) = all.get(s.as_str()) {
                    out.insert(s.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(out)
}

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
