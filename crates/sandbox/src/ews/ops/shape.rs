//! Item shapes (`ItemShape`: base shape, MIME, additional properties) and writing a message as
//! a `t:Message` in a shape.

use std::collections::HashSet;

use super::shared::{dt, xs_bool};
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
}

pub(super) fn parse_shape(el: Option<&Element>) -> Shape {
    let base = match el.and_then(|e| e.child_text("BaseShape")) {
        Some("Default") => Base::Default,
        Some("AllProperties") => Base::All,
        _ => Base::IdOnly,
    };
    let mime = el
        .and_then(|e| e.child_text("IncludeMimeContent"))
        .and_then(xs_bool)
        == Some(true);
    let props = el
        .and_then(|e| e.child("AdditionalProperties"))
        .map(|a| {
            a.children_named("FieldURI")
                .filter_map(|f| f.attr("FieldURI"))
                .filter_map(|u| u.split_once(':').map(|(_, n)| n.to_string()))
                .collect()
        })
        .unwrap_or_default();
    Shape { base, mime, props }
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
        match &p.body_html {
            Some(html) => w
                .start("t:Body", &[("BodyType", "HTML")])
                .raw(&crate::ews::xml_escape(html))
                .end(),
            None => w
                .start("t:Body", &[("BodyType", "Text")])
                .raw(&crate::ews::xml_escape(&p.body_text))
                .end(),
        };
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
