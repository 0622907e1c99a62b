//! The fields of a `t:Message` that CreateItem reads, each applied to the MIME it builds or
//! refused: never skipped.
//!
//! Applied: `MimeContent` (then only the fields below that add nothing to the MIME), `ItemClass`
//! `IPM.Note`, `Subject`, `Body` (`BodyType` Text or HTML), `From`, `ToRecipients`,
//! `CcRecipients`, `BccRecipients`, `ReplyTo`, `Importance` (an `Importance` header when not
//! Normal), `Sensitivity` (a `Sensitivity` header when not Normal), `IsReadReceiptRequested`
//! (`Disposition-Notification-To`), `InReplyTo`, `References`, `Attachments` with
//! `FileAttachment`s (name, content type, content, `IsInline` and `ContentId`), `ExtendedProperty`
//! in the `InternetHeaders` property set (a custom header), and `IsRead` (a saved item's read
//! state; a sent copy is read). Accepted with their default values only, the state of every
//! sandbox message: `IsDeliveryReceiptRequested`, `IsResponseRequested` and `ReminderIsSet`
//! false, `ReminderMinutesBeforeStart`, `Categories` empty. Read-only properties (`DateTimeSent`,
//! `Size`, …) are refused with `ErrorInvalidPropertySet`, anything else with
//! `ErrorInvalidRequest`.

use base64::Engine as _;

use super::shared::{Msg, err, xs_bool};
use crate::ews::xml::Element;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What CreateItem builds from a `t:Message`'s fields besides the addresses, subject and body.
#[derive(Default)]
pub(super) struct Extras {
    /// Header lines to add (`Name: value`).
    pub(super) headers: Vec<(String, String)>,
    /// File attachments: name, content type, bytes, inline, content id.
    pub(super) attachments: Vec<Attachment>,
    /// `IsRead`, when given.
    pub(super) is_read: Option<bool>,
}

pub(super) struct Attachment {
    pub(super) name: String,
    pub(super) content_type: String,
    pub(super) data: Vec<u8>,
    pub(super) inline: bool,
    pub(super) content_id: Option<String>,
}

/// Properties the server computes: setting one is `ErrorInvalidPropertySet`.
const READ_ONLY: &[&str] = &[
    "ItemId",
    "ParentFolderId",
    "DateTimeReceived",
    "Size",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "DisplayCc",
    "DisplayTo",
    "DisplayBcc",
    "HasAttachments",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "NormalizedBody",
    "TextBody",
    "ConversationIndex",
    "ConversationTopic",
    "ReceivedBy",
    "ReceivedRepresenting",
];

fn not_implemented(what: String) -> Msg {
    err(
        "ErrorInvalidRequest",
        format!("The sandbox does not implement {what} on CreateItem."),
    )
}

fn flag(c: &Element) -> Result<bool, Msg> {
    xs_bool(&c.text).ok_or_else(|| {
        err(
            "ErrorSchemaValidation",
            format!("{} must be an xs:boolean.", c.name),
        )
    })
}

fn header_safe(v: &str) -> String {
    v.replace(['\r', '\n'], " ")
}

fn file_attachment(a: &Element) -> Result<Attachment, Msg> {
    if a.name != "FileAttachment" {
        return Err(not_implemented(format!("attachments of kind {}", a.name)));
    }
    let mut out = Attachment {
        name: "attachment".into(),
        content_type: "application/octet-stream".into(),
        data: Vec::new(),
        inline: false,
        content_id: None,
    };
    let mut content = false;
    for c in &a.children {
        match c.name.as_str() {
            "Name" => out.name = c.text.trim().replace(['"', '\r', '\n'], ""),
            "ContentType" => out.content_type = header_safe(c.text.trim()),
            "ContentId" => out.content_id = Some(header_safe(c.text.trim())),
            "IsInline" => out.inline = flag(c)?,
            "Content" => {
                let compact: String = c.text.chars().filter(|ch| !ch.is_whitespace()).collect();
                out.data = B64.decode(compact).map_err(|_| {
                    err(
                        "ErrorSchemaValidation",
                        "The attachment Content is not valid base64.",
                    )
                })?;
                content = true;
            }
            other => {
                return Err(not_implemented(format!("the attachment property {other}")));
            }
        }
    }
    if !content {
        return Err(err(
            "ErrorRequiredPropertyMissing",
            "A FileAttachment needs its Content.",
        ));
    }
    Ok(out)
}

/// Checks every child of a `t:Message` for CreateItem and collects what adds to the MIME.
pub(super) fn read(m: &Element) -> Result<Extras, Msg> {
    let mut x = Extras::default();
    let has_mime = m.child("MimeContent").is_some();
    for c in &m.children {
        let text = c.text.trim();
        match c.name.as_str() {
            "MimeContent" => {}
            "Subject"
            | "Body"
            | "From"
            | "ToRecipients"
            | "CcRecipients"
            | "BccRecipients"
            | "ReplyTo"
            | "Importance"
            | "Sensitivity"
            | "IsReadReceiptRequested"
            | "InReplyTo"
            | "References"
            | "Attachments"
            | "ExtendedProperty"
                if has_mime =>
            {
                return Err(not_implemented(format!(
                    "{} together with MimeContent (put it in the MIME)",
                    c.name
                )));
            }
            "Subject" | "From" | "ToRecipients" | "CcRecipients" | "BccRecipients" | "ReplyTo" => {}
            "Body" => match c.attr("BodyType") {
                Some("Text" | "HTML") => {}
                other => {
                    return Err(err(
                        "ErrorSchemaValidation",
                        format!("Body needs BodyType Text or HTML, not {other:?}."),
                    ));
                }
            },
            "ItemClass" if text == "IPM.Note" => {}
            "Importance" => match text {
                "Normal" => {}
                "Low" | "High" => x
                    .headers
                    .push(("Importance".into(), text.to_ascii_lowercase())),
                other => {
                    return Err(err(
                        "ErrorSchemaValidation",
                        format!("Invalid Importance '{other}'."),
                    ));
                }
            },
            "Sensitivity" => match text {
                "Normal" => {}
                "Personal" | "Private" => x.headers.push(("Sensitivity".into(), text.into())),
                "Confidential" => x
                    .headers
                    .push(("Sensitivity".into(), "Company-Confidential".into())),
                other => {
                    return Err(err(
                        "ErrorSchemaValidation",
                        format!("Invalid Sensitivity '{other}'."),
                    ));
                }
            },
            "IsReadReceiptRequested" => {
                if flag(c)? {
                    // The address is filled in with the From address by the caller.
                    x.headers
                        .push(("Disposition-Notification-To".into(), String::new()));
                }
            }
            "InReplyTo" => x.headers.push(("In-Reply-To".into(), header_safe(text))),
            "References" => x.headers.push(("References".into(), header_safe(text))),
            "IsRead" => x.is_read = Some(flag(c)?),
            "IsDeliveryReceiptRequested" | "IsResponseRequested" | "ReminderIsSet" => {
                if flag(c)? {
                    return Err(not_implemented(format!("{} = true", c.name)));
                }
            }
            "ReminderMinutesBeforeStart" => {}
            "Categories" if c.children.is_empty() => {}
            "Attachments" => {
                for a in &c.children {
                    x.attachments.push(file_attachment(a)?);
                }
            }
            "ExtendedProperty" => {
                let uri = c.child("ExtendedFieldURI");
                let attr = |n: &str| uri.and_then(|u| u.attr(n));
                let name = attr("PropertyName").unwrap_or("");
                let ok = attr("DistinguishedPropertySetId") == Some("InternetHeaders")
                    && attr("PropertyType") == Some("String")
                    && !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                let value = c.child("Value");
                match (ok, value) {
                    (true, Some(v)) => x
                        .headers
                        .push((name.to_string(), header_safe(v.text.trim()))),
                    _ => {
                        return Err(not_implemented(
                            "extended properties other than String headers of the InternetHeaders property set".into(),
                        ));
                    }
                }
            }
            other if READ_ONLY.contains(&other) => {
                return Err(err(
                    "ErrorInvalidPropertySet",
                    format!("The property {other} is read-only and cannot be set."),
                ));
            }
            other => {
                return Err(not_implemented(format!(
                    "the message property {other}{}",
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(" = '{text}'")
                    }
                )));
            }
        }
    }
    Ok(x)
}

/// Wraps a single-part message in `multipart/mixed` with the attachments, and adds the extra
/// headers (`head` is the header block without its final blank line, `part` the body part's
/// own headers and content).
pub(super) fn assemble(head: &str, part: &str, x: &Extras, from: &str) -> Vec<u8> {
    let mut out = String::from(head);
    for (n, v) in &x.headers {
        let v = if n == "Disposition-Notification-To" {
            from
        } else {
            v.as_str()
        };
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if x.attachments.is_empty() {
        out.push_str(part);
        return out.into_bytes();
    }
    let b = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n{part}"
    ));
    for a in &x.attachments {
        let disposition = if a.inline { "inline" } else { "attachment" };
        out.push_str(&format!(
            "--{b}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Disposition: {disposition}; filename=\"{}\"\r\n",
            a.content_type, a.name, a.name
        ));
        if let Some(id) = &a.content_id {
            out.push_str(&format!(
                "Content-ID: <{}>\r\n",
                id.trim_matches(['<', '>'])
            ));
        }
        let b64 = B64.encode(&a.data);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        out.push_str(&format!(
            "Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    out.push_str(&format!("--{b}--\r\n"));
    out.into_bytes()
}
