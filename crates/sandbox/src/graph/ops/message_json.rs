//! A Graph `message` JSON object (the body of `sendMail`'s `message`, of `POST messages`)
//! turned into RFC 822 MIME, every property either applied or refused, never skipped.
//!
//! Applied: `subject`, `body` (`contentType` text or html), `from`, `toRecipients`,
//! `ccRecipients`, `bccRecipients`, `replyTo`, `internetMessageHeaders` (custom `x-` headers;
//! another name is 400 `InvalidInternetMessageHeader`, as Graph answers), `importance`,
//! `isReadReceiptRequested` (`Disposition-Notification-To`), `internetMessageId` (`Message-ID`),
//! `attachments` of `#microsoft.graph.fileAttachment` (`name`, `contentType`, `contentBytes`,
//! `isInline`, `contentId`), `@odata.type` `#microsoft.graph.message`. Accepted at their default
//! values only, the state of every sandbox message: `categories` empty, `flag` not flagged,
//! `isDeliveryReceiptRequested` false, `inferenceClassification` focused, `isRead` true (a new
//! draft is read). Every other property of the type is refused with 400 `notSupported`, a name
//! the type does not have with 400 `RequestBodyRead`.

use base64::Engine as _;
use serde_json::Value;

use super::shared::{B64, is_type, not_supported, unknown_property, wrap76};
use crate::graph::{GResp, error, render};

/// Properties of `microsoft.graph.message` in the v1.0 CSDL besides [`render::MESSAGE_PROPS`].
pub(super) const OTHER_PROPS: &[&str] = &[
    "conversationIndex",
    "attachments",
    "extensions",
    "multiValueExtendedProperties",
    "singleValueExtendedProperties",
];

/// An attachment to put in a message.
pub(crate) struct FileAttachment {
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) data: Vec<u8>,
    pub(crate) inline: bool,
    pub(crate) content_id: Option<String>,
}

/// Reads a `fileAttachment` JSON object (for `sendMail`, drafts and `POST …/attachments`).
pub(crate) fn file_attachment(a: &Value) -> Result<FileAttachment, GResp> {
    let Some(o) = a.as_object() else {
        return Err(error(
            400,
            "BadRequest",
            "An attachment must be a JSON object.",
        ));
    };
    let mut out = FileAttachment {
        name: "attachment".into(),
        content_type: "application/octet-stream".into(),
        data: Vec::new(),
        inline: false,
        content_id: None,
    };
    let mut bytes = false;
    for (k, v) in o {
        let text = || {
            v.as_str()
                .map(|s| s.replace(['"', '\r', '\n'], ""))
                .ok_or_else(|| error(400, "BadRequest", &format!("'{k}' must be a string.")))
        };
        match k.as_str() {
            "@odata.type" if is_type(v, "fileAttachment") => {}
            "@odata.type" => {
                return Err(not_supported(&format!(
                    "attachments of type {}",
                    v.as_str().unwrap_or("?")
                )));
            }
            "name" => out.name = text()?,
            "contentType" => out.content_type = text()?,
            "contentId" => out.content_id = Some(text()?),
            "isInline" => {
                out.inline = v
                    .as_bool()
                    .ok_or_else(|| error(400, "BadRequest", "'isInline' must be a boolean."))?;
            }
            "contentBytes" => {
                out.data = v
                    .as_str()
                    .and_then(|b| B64.decode(b).ok())
                    .ok_or_else(|| error(400, "BadRequest", "contentBytes must be base64."))?;
                bytes = true;
            }
            "contentLocation" | "size" | "lastModifiedDateTime" | "id" => {
                return Err(not_supported(&format!("setting an attachment's '{k}'")));
            }
            k => return Err(unknown_property(k, "fileAttachment")),
        }
    }
    if !bytes {
        return Err(error(400, "BadRequest", "contentBytes must be base64."));
    }
    Ok(out)
}

/// The MIME part of an attachment (headers, blank line, base64 content, line break).
pub(crate) fn attachment_part(a: &FileAttachment) -> String {
    let disposition = if a.inline { "inline" } else { "attachment" };
    let cid = a
        .content_id
        .as_ref()
        .map(|c| format!("Content-ID: <{}>\r\n", c.trim_matches(['<', '>'])))
        .unwrap_or_default();
    format!(
        "Content-Type: {}; name=\"{}\"\r\nContent-Disposition: {disposition}; filename=\"{}\"\r\n{cid}Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        a.content_type,
        a.name,
        a.name,
        wrap76(&B64.encode(&a.data))
    )
}

fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        s.replace(['\r', '\n'], " ")
    } else {
        format!("=?utf-8?B?{}?=", B64.encode(s))
    }
}

/// The addresses of a recipient list (`[{"emailAddress": {"address", "name"}}]`).
fn addresses(v: Option<&Value>, key: &str) -> Result<Vec<String>, GResp> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) if key == "from" || key == "sender" => vec![v],
        Value::Null => Vec::new(),
        _ => {
            return Err(error(
                400,
                "BadRequest",
                &format!("'{key}' has the wrong shape."),
            ));
        }
    };
    list.into_iter()
        .map(|r| {
            let addr = r
                .pointer("/emailAddress/address")
                .and_then(Value::as_str)
                .map(|a| a.replace(['\r', '\n', ',', '<', '>'], ""))
                .ok_or_else(|| {
                    error(
                        400,
                        "ErrorInvalidRecipients",
                        &format!("A recipient of '{key}' has no emailAddress.address."),
                    )
                })?;
            Ok(
                match r.pointer("/emailAddress/name").and_then(Value::as_str) {
                    Some(n) if !n.is_empty() && n != addr => {
                        format!("\"{}\" <{addr}>", encode_word(n).replace('"', ""))
                    }
                    _ => addr,
                },
            )
        })
        .collect()
}

/// Checks a `message` object and builds its MIME (`default_from` when it names no `from`).
pub(super) fn mime(msg: &Value, default_from: &str) -> Result<Vec<u8>, GResp> {
    let Some(o) = msg.as_object() else {
        return Err(error(
            400,
            "BadRequest",
            "The message must be a JSON object.",
        ));
    };
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut attachments = Vec::new();
    for (k, v) in o {
        match k.as_str() {
            "subject" | "from" | "toRecipients" | "ccRecipients" | "bccRecipients" | "replyTo" => {}
            "@odata.type" if is_type(v, "message") => {}
            "body" => {
                let Some(b) = v.as_object() else {
                    return Err(error(
                        400,
                        "BadRequest",
                        "'body' must be an itemBody object.",
                    ));
                };
                for (bk, bv) in b {
                    match bk.as_str() {
                        "content" => {}
                        "contentType"
                            if bv.as_str().is_some_and(|c| {
                                c.eq_ignore_ascii_case("text") || c.eq_ignore_ascii_case("html")
                            }) => {}
                        "contentType" => {
                            return Err(error(
                                400,
                                "BadRequest",
                                &format!("Invalid body contentType {bv}: it must be text or html."),
                            ));
                        }
                        "@odata.type" if is_type(bv, "itemBody") => {}
                        other => return Err(unknown_property(other, "itemBody")),
                    }
                }
            }
            "internetMessageHeaders" => {
                for h in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                    let name = h.get("name").and_then(Value::as_str).unwrap_or("");
                    let value = h.get("value").and_then(Value::as_str).unwrap_or("");
                    let lower = name.to_ascii_lowercase();
                    if !lower.starts_with("x-") {
                        return Err(error(
                            400,
                            "InvalidInternetMessageHeader",
                            &format!(
                                "The internet message header name '{name}' should start with 'x-' or 'X-'."
                            ),
                        ));
                    }
                    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                        return Err(error(
                            400,
                            "InvalidInternetMessageHeader",
                            &format!("The internet message header name '{name}' is invalid."),
                        ));
                    }
                    extra.push((name.to_string(), encode_word(value)));
                }
            }
            "importance" => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("normal") => {}
                Some(i @ ("low" | "high")) => extra.push(("Importance".into(), i.to_string())),
                _ => {
                    return Err(error(
                        400,
                        "BadRequest",
                        &format!("Invalid importance {v}."),
                    ));
                }
            },
            "isReadReceiptRequested" => match v {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    extra.push(("Disposition-Notification-To".into(), String::new()))
                }
                _ => {
                    return Err(error(
                        400,
                        "BadRequest",
                        "isReadReceiptRequested must be a boolean.",
                    ));
                }
            },
            "internetMessageId" => {
                let id = v.as_str().unwrap_or("");
                if !(id.starts_with('<') && id.ends_with('>') && id.contains('@'))
                    || id.contains(['\r', '\n', ' '])
                {
                    return Err(error(
                        400,
                        "InvalidInternetMessageId",
                        &format!(
                            "The internetMessageId '{id}' is not a valid RFC 5322 message id."
                        ),
                    ));
                }
                extra.push(("Message-ID".into(), id.to_string()));
            }
            "attachments" => {
                for a in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                    attachments.push(file_attachment(a)?);
                }
            }
            "categories" if v.as_array().is_some_and(Vec::is_empty) => {}
            "flag"
                if v.pointer("/flagStatus").and_then(Value::as_str) == Some("notFlagged")
                    && v.as_object().is_some_and(|f| f.len() == 1) => {}
            "isDeliveryReceiptRequested" if *v == Value::Bool(false) => {}
            "inferenceClassification" if v == "focused" => {}
            "isRead" if *v == Value::Bool(true) => {}
            k if render::MESSAGE_PROPS.contains(&k) || OTHER_PROPS.contains(&k) => {
                return Err(not_supported(&format!("the message property '{k}' = {v}")));
            }
            k => return Err(unknown_property(k, "message")),
        }
    }
    let from = addresses(o.get("from"), "from")?
        .into_iter()
        .next()
        .unwrap_or_else(|| default_from.to_string());
    let mut h = format!("From: {from}\r\n");
    for (name, key) in [
        ("To", "toRecipients"),
        ("Cc", "ccRecipients"),
        ("Bcc", "bccRecipients"),
        ("Reply-To", "replyTo"),
    ] {
        let a = addresses(o.get(key), key)?;
        if !a.is_empty() {
            h.push_str(&format!("{name}: {}\r\n", a.join(", ")));
        }
    }
    let subject = o.get("subject").and_then(Value::as_str).unwrap_or("");
    h.push_str(&format!("Subject: {}\r\n", encode_word(subject)));
    let bare_from = from
        .rsplit_once('<')
        .map_or(from.as_str(), |(_, a)| a.trim_end_matches('>'));
    for (n, v) in &extra {
        let v = if n == "Disposition-Notification-To" {
            bare_from
        } else {
            v.as_str()
        };
        h.push_str(&format!("{n}: {v}\r\n"));
    }
    h.push_str("MIME-Version: 1.0\r\n");
    let html = msg
        .pointer("/body/contentType")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case("html"));
    let content = msg
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let body_part = format!(
        "Content-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        if html { "html" } else { "plain" },
        wrap76(&B64.encode(content))
    );
    if attachments.is_empty() {
        h.push_str(&body_part);
        return Ok(h.into_bytes());
    }
    let boundary = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    h.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{body_part}"
    ));
    for a in &attachments {
        h.push_str(&format!("--{boundary}\r\n{}", attachment_part(a)));
    }
    h.push_str(&format!("--{boundary}--\r\n"));
    Ok(h.into_bytes())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::MessageProps;

    #[test]
    fn json_messages_become_mime() {
        let m = json!({"subject":"Grüße","body":{"contentType":"Text","content":"hi"},
            "toRecipients":[{"emailAddress":{"address":"b@contoso.example"}}],
            "internetMessageHeaders":[{"name":"x-custom","value":"1"}],
            "importance":"High",
            "attachments":[{"@odata.type":"#microsoft.graph.fileAttachment","name":"a.txt","contentType":"text/plain","contentBytes":"YWJj"}]});
        let mime = mime(&m, "a@contoso.example").unwrap();
        let p = MessageProps::from_mime(&mime).unwrap();
        assert_eq!(p.subject, "Grüße");
        assert_eq!(p.from.unwrap().address, "a@contoso.example");
        assert_eq!(p.to[0].address, "b@contoso.example");
        assert!(p.has_attachments);
        assert!(p.headers.iter().any(|(n, v)| n == "x-custom" && v == "1"));
        assert!(
            p.headers
                .iter()
                .any(|(n, v)| n == "Importance" && v == "high")
        );
    }
}
