//! Item and folder shapes (`ItemShape`, `FolderShape`: base shape, MIME, body type, additional
//! properties) and writing a message as a `t:Message` in a shape.
//!
//! What a shape may ask for is checked before anything is read: a `FieldURI` the schema does not
//! know is `ErrorSchemaValidation` (as Exchange validates requests against the schema); a valid
//! path the sandbox does not model is answered without a value, as Exchange leaves out a
//! property an item has none of (see [`crate::fidelity`]); options that would change what is
//! returned and that the sandbox does not apply are refused with `ErrorInvalidPropertyRequest`
//! or `ErrorInvalidRequest`.

use std::collections::HashSet;

use super::field_uris::FIELD_URIS;
use super::shared::{dt, xs_bool};
use crate::bodies::{BodyKind, body};
use crate::ews::Fault;
use crate::ews::xml::{Element, Writer};
use crate::store::Message;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    IdOnly,
    Default,
    All,
}

pub(super) struct Shape {
    base: Base,
    mime: bool,
    props: HashSet<String>,
    body: BodyKind,
    /// `ExtendedFieldURI PropertyTag="0x007D"` (`PR_TRANSPORT_MESSAGE_HEADERS`) was asked for.
    transport_headers: bool,
}

fn base_shape(el: &Element) -> Result<Base, Fault> {
    match el.child_text("BaseShape") {
        Some("IdOnly") => Ok(Base::IdOnly),
        Some("Default") => Ok(Base::Default),
        Some("AllProperties") => Ok(Base::All),
        Some(other) => Err(Fault::new(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement the base shape '{other}'."),
        )),
        None => Err(Fault::schema(format!(
            "The {} element needs a BaseShape.",
            el.name
        ))),
    }
}

/// The `FieldURI`s of an `AdditionalProperties` element, each checked against the schema, and
/// whether `PR_TRANSPORT_MESSAGE_HEADERS` was asked for; other kinds of paths are refused.
fn additional(el: Option<&Element>, items: bool) -> Result<(HashSet<String>, bool), Fault> {
    let mut props = HashSet::new();
    let mut transport = false;
    for p in el.map(|a| a.children.as_slice()).unwrap_or_default() {
        match p.name.as_str() {
            "FieldURI" => {
                let uri = p.attr("FieldURI").unwrap_or("");
                if FIELD_URIS.binary_search(&uri).is_err() {
                    return Err(Fault::schema(format!(
                        "The 'FieldURI' attribute is invalid - The value '{uri}' is invalid according to its datatype 'http://schemas.microsoft.com/exchange/services/2006/types:UnindexedFieldURIType'."
                    )));
                }
                if let Some((_, name)) = uri.split_once(':') {
                    props.insert(name.to_string());
                }
            }
            "ExtendedFieldURI"
                if items
                    && p.attr("PropertyTag").and_then(|t| {
                        let t = t.trim();
                        t.strip_prefix("0x")
                            .or_else(|| t.strip_prefix("0X"))
                            .map_or_else(|| t.parse().ok(), |h| u32::from_str_radix(h, 16).ok())
                    }) == Some(0x7D)
                    && p.attr("PropertyType") == Some("String")
                    && p.attrs.len() == 2 =>
            {
                transport = true;
            }
            "ExtendedFieldURI" => {
                return Err(Fault::new(
                    "ErrorInvalidPropertyRequest",
                    "The sandbox implements one extended property: PropertyTag 0x007D (PR_TRANSPORT_MESSAGE_HEADERS), PropertyType String.",
                ));
            }
            "IndexedFieldURI" => {
                return Err(Fault::new(
                    "ErrorInvalidPropertyRequest",
                    format!(
                        "The sandbox does not implement indexed properties ({}).",
                        p.attr("FieldURI").unwrap_or("")
                    ),
                ));
            }
            other => {
                return Err(Fault::schema(format!(
                    "Unexpected element '{other}' in AdditionalProperties."
                )));
            }
        }
    }
    Ok((props, transport))
}

/// Reads an `ItemShape` (required by the schema wherever it appears).
pub(super) fn parse_shape(el: Option<&Element>) -> Result<Shape, Fault> {
    let Some(el) = el else {
        return Err(Fault::schema("The request needs an ItemShape."));
    };
    let base = base_shape(el)?;
    let mut mime = false;
    let mut body_kind = BodyKind::Best;
    for c in &el.children {
        let text = c.text.trim();
        let flag = || {
            xs_bool(text).ok_or_else(|| Fault::schema(format!("{} must be an xs:boolean.", c.name)))
        };
        match c.name.as_str() {
            "BaseShape" | "AdditionalProperties" => {}
            "IncludeMimeContent" => mime = flag()?,
            "BodyType" => {
                body_kind = match text {
                    "Best" => BodyKind::Best,
                    "HTML" => BodyKind::Html,
                    "Text" => BodyKind::Text,
                    other => return Err(Fault::schema(format!("Invalid BodyType '{other}'."))),
                }
            }
            // They format item:UniqueBody and item:NormalizedBody, which the sandbox answers
            // without a value.
            "UniqueBodyType" | "NormalizedBodyType" => {}
            // Bodies are UTF-8 already.
            "ConvertHtmlCodePageToUTF8" if flag()? => {}
            "FilterHtmlContent" | "BlockExternalImages" | "AddBlankTargetToLinks" if !flag()? => {}
            other => {
                return Err(Fault::new(
                    "ErrorInvalidRequest",
                    format!(
                        "The sandbox does not implement the item shape option {other} = '{text}'."
                    ),
                ));
            }
        }
    }
    let (props, transport_headers) = additional(el.child("AdditionalProperties"), true)?;
    Ok(Shape {
        base,
        mime,
        props,
        body: body_kind,
        transport_headers,
    })
}

impl Shape {
    /// `IncludeMimeContent`, or `item:MimeContent` among the additional properties.
    pub(super) fn wants_mime(&self) -> bool {
        self.mime || self.props.contains("MimeContent")
    }

    fn has(&self, name: &str) -> bool {
        const DEFAULT: &[&str] = &[
            "ParentFolderId",
            "ItemClass",
            "Subject",
            "DateTimeReceived",
            "Size",
            "HasAttachments",
            "From",
            "Sender",
            "ToRecipients",
            "CcRecipients",
            "IsRead",
        ];
        const ALL: &[&str] = &[
            "Body",
            "DateTimeSent",
            "DateTimeCreated",
            "InternetMessageId",
            "ReplyTo",
            "BccRecipients",
        ];
        self.props.contains(name)
            || (self.base != Base::IdOnly && DEFAULT.contains(&name))
            || (self.base == Base::All && ALL.contains(&name))
    }
}

/// A `FolderShape`: which folder properties to write.
pub(super) struct FolderShape {
    base: Base,
    props: HashSet<String>,
}

/// Reads a `FolderShape` (required by the schema).
pub(super) fn parse_folder_shape(el: Option<&Element>) -> Result<FolderShape, Fault> {
    let Some(el) = el else {
        return Err(Fault::schema("The request needs a FolderShape."));
    };
    let base = base_shape(el)?;
    if let Some(c) = el
        .children
        .iter()
        .find(|c| !matches!(c.name.as_str(), "BaseShape" | "AdditionalProperties"))
    {
        return Err(Fault::schema(format!(
            "Unexpected element '{}' in FolderShape.",
            c.name
        )));
    }
    let (props, _) = additional(el.child("AdditionalProperties"), false)?;
    Ok(FolderShape { base, props })
}

impl FolderShape {
    /// Whether folder property `name` (`folder:{name}`) is written.
    pub(super) fn has(&self, name: &str) -> bool {
        const DEFAULT: &[&str] = &[
            "DisplayName",
            "TotalCount",
            "ChildFolderCount",
            "UnreadCount",
        ];
        const ALL: &[&str] = &["ParentFolderId", "FolderClass"];
        self.props.contains(name)
            || (self.base != Base::IdOnly && DEFAULT.contains(&name))
            || (self.base == Base::All && ALL.contains(&name))
    }
}

fn write_mailbox(w: &mut Writer, name: &str, address: &str) {
    w.start("t:Mailbox", &[]);
    if !name.is_empty() {
        w.text_element("t:Name", name);
    }
    w.text_element("t:EmailAddress", address);
    w.text_element("t:RoutingType", "SMTP");
    w.text_element("t:MailboxType", "OneOff");
    w.end();
}

/// A file attachment of a message, as `item:Attachments` lists it.
struct AttachmentInfo {
    name: String,
    content_type: String,
    content_id: Option<String>,
    size: usize,
    inline: bool,
}

/// The attachments of a MIME message (none when mail-parser cannot read it, or panics on it).
fn attachments_of(mime: &[u8]) -> Vec<AttachmentInfo> {
    use mail_parser::MimeHeaders as _;
    std::panic::catch_unwind(|| {
        let msg = mail_parser::MessageParser::default().parse(mime)?;
        Some(
            msg.attachments()
                .map(|p| AttachmentInfo {
                    name: p.attachment_name().unwrap_or("attachment").to_string(),
                    content_type: p
                        .content_type()
                        .map(|c| match c.subtype() {
                            Some(sub) => format!("{}/{sub}", c.ctype()),
                            None => c.ctype().to_string(),
                        })
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    content_id: p.content_id().map(str::to_string),
                    size: p.contents().len(),
                    inline: p.content_disposition().is_some_and(|d| d.is_inline()),
                })
                .collect(),
        )
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// The header block of a MIME message, as `PR_TRANSPORT_MESSAGE_HEADERS` holds it.
fn header_block(mime: &[u8]) -> String {
    let end = mime
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| mime.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
        .unwrap_or(mime.len());
    String::from_utf8_lossy(&mime[..end]).into_owned()
}

pub(super) fn write_item(w: &mut Writer, m: &Message, shape: &Shape) {
    let p = &m.props;
    w.start("t:Message", &[]);
    if shape.wants_mime() {
        w.base64_element("t:MimeContent", &m.mime);
        // (CharacterSet is optional; Exchange ignores it on input.)
    }
    w.empty("t:ItemId", &[("Id", &m.id), ("ChangeKey", &m.change_key)]);
    if shape.has("ParentFolderId") {
        w.empty(
            "t:ParentFolderId",
            &[("Id", &m.folder_id), ("ChangeKey", "AQAAAA==")],
        );
    }
    if shape.has("ItemClass") {
        w.text_element("t:ItemClass", "IPM.Note");
    }
    if shape.has("Subject") {
        w.text_element("t:Subject", &p.subject);
    }
    if shape.has("Body") {
        let (html, content) = body(p, shape.body);
        w.start(
            "t:Body",
            &[("BodyType", if html { "HTML" } else { "Text" })],
        )
        .raw(&crate::ews::xml_escape(&content))
        .end();
    }
    // Inline-only messages have no `hasAttachments` but still list their (inline) files.
    if shape.has("Attachments")
        && (p.has_attachments
            || m.mime
                .windows(17)
                .any(|w| w.eq_ignore_ascii_case(b"multipart/related"))
            || m.mime
                .windows(11)
                .any(|w| w.eq_ignore_ascii_case(b"Content-ID:")))
    {
        let list = attachments_of(&m.mime);
        if !list.is_empty() {
            w.start("t:Attachments", &[]);
            for (i, a) in list.iter().enumerate() {
                w.start("t:FileAttachment", &[]);
                w.empty("t:AttachmentId", &[("Id", &format!("{}ATT{i}", m.id))]);
                w.text_element("t:Name", &a.name);
                w.text_element("t:ContentType", &a.content_type);
                if let Some(cid) = &a.content_id {
                    w.text_element("t:ContentId", cid);
                }
                w.text_element("t:Size", &a.size.to_string());
                w.text_element("t:IsInline", if a.inline { "true" } else { "false" });
                w.end();
            }
            w.end();
        }
    }
    if shape.has("DateTimeReceived") {
        w.text_element("t:DateTimeReceived", &dt(m.received));
    }
    if shape.has("Size") {
        w.text_element("t:Size", &p.size.to_string());
    }
    if shape.has("InternetMessageHeaders") {
        w.start("t:InternetMessageHeaders", &[]);
        for (n, v) in &p.headers {
            w.start("t:InternetMessageHeader", &[("HeaderName", n)])
                .raw(&crate::ews::xml_escape(v))
                .end();
        }
        w.end();
    }
    if shape.has("DateTimeSent") {
        w.text_element("t:DateTimeSent", &dt(p.sent.unwrap_or(m.received)));
    }
    if shape.has("DateTimeCreated") {
        w.text_element("t:DateTimeCreated", &dt(m.received));
    }
    if shape.has("HasAttachments") {
        w.text_element(
            "t:HasAttachments",
            if p.has_attachments { "true" } else { "false" },
        );
    }
    if shape.transport_headers {
        w.start("t:ExtendedProperty", &[]);
        w.empty(
            "t:ExtendedFieldURI",
            &[("PropertyTag", "0x7d"), ("PropertyType", "String")],
        );
        w.text_element("t:Value", &header_block(&m.mime));
        w.end();
    }
    if shape.has("Sender")
        && let Some(s) = &p.sender
    {
        w.start("t:Sender", &[]);
        write_mailbox(w, &s.name, &s.address);
        w.end();
    }
    for (prop, list) in [
        ("ToRecipients", &p.to),
        ("CcRecipients", &p.cc),
        ("BccRecipients", &p.bcc),
    ] {
        if shape.has(prop) && !list.is_empty() {
            w.start(
                if prop == "ToRecipients" {
                    "t:ToRecipients"
                } else if prop == "CcRecipients" {
                    "t:CcRecipients"
                } else {
                    "t:BccRecipients"
                },
                &[],
            );
            for a in list {
                write_mailbox(w, &a.name, &a.address);
            }
            w.end();
        }
    }
    if shape.has("From")
        && let Some(f) = &p.from
    {
        w.start("t:From", &[]);
        write_mailbox(w, &f.name, &f.address);
        w.end();
    }
    if shape.has("InternetMessageId")
        && let Some(id) = &p.internet_message_id
    {
        w.text_element("t:InternetMessageId", id);
    }
    if shape.has("IsRead") {
        w.text_element("t:IsRead", if m.is_read { "true" } else { "false" });
    }
    if shape.has("ReplyTo") && !p.reply_to.is_empty() {
        w.start("t:ReplyTo", &[]);
        for a in &p.reply_to {
            write_mailbox(w, &a.name, &a.address);
        }
        w.end();
    }
    w.end();
}
