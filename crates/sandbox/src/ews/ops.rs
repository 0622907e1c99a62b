//! The EWS operations of the sandbox. Each handler reads the operation element and writes the
//! `{Op}Response` element; per-item failures are `ResponseClass="Error"` messages in place.

use std::collections::HashSet;

use base64::Engine as _;
use time::OffsetDateTime;

use super::xml::{Element, Writer};
use super::{Ctx, Fault, NS_MESSAGES, NS_TYPES};
use crate::auth::AccessDeniedKind;
use crate::delivery::{self, DeliveryError};
use crate::store::{DeleteMode, FolderInfo, InsertOptions, ListQuery, Message, Order, StoreError};

/// One response message: a payload (already-written XML) or an error.
enum Msg {
    Ok(String),
    Err(String, String),
}

fn err(code: &str, text: impl Into<String>) -> Msg {
    Msg::Err(code.to_string(), text.into())
}

fn store_err(e: &StoreError) -> Msg {
    match e {
        StoreError::ItemNotFound(_) => err(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        StoreError::FolderNotFound(_) => err(
            "ErrorFolderNotFound",
            "The specified folder could not be found in the store.",
        ),
        StoreError::MailboxNotFound(_) => err(
            "ErrorNonExistentMailbox",
            "The SMTP address has no mailbox associated with it.",
        ),
        StoreError::ChangeKeyMismatch(_) => err(
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        ),
        StoreError::FolderExists(_) => err(
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        ),
        _ => err("ErrorInternalServerError", e.to_string()),
    }
}

fn response(op: &str, msgs: Vec<Msg>) -> String {
    let payload: usize = msgs
        .iter()
        .map(|m| match m {
            Msg::Ok(p) => p.len() + 200,
            Msg::Err(..) => 400,
        })
        .sum();
    let mut w = Writer::with_capacity(payload + 300);
    w.start(
        &format!("m:{op}Response"),
        &[("xmlns:m", NS_MESSAGES), ("xmlns:t", NS_TYPES)],
    );
    w.start("m:ResponseMessages", &[]);
    for m in msgs {
        let tag = format!("m:{op}ResponseMessage");
        match m {
            Msg::Ok(payload) => {
                w.start(&tag, &[("ResponseClass", "Success")]);
                w.text_element("m:ResponseCode", "NoError");
                w.raw(&payload);
                w.end();
            }
            Msg::Err(code, text) => {
                w.start(&tag, &[("ResponseClass", "Error")]);
                w.text_element("m:MessageText", &text);
                w.text_element("m:ResponseCode", &code);
                w.text_element("m:DescriptiveLinkKey", "0");
                // ItemInfoResponseMessageType requires `Items`, even on errors (as Exchange
                // answers: `<m:Items />`).
                if matches!(
                    op,
                    "GetItem" | "UpdateItem" | "CreateItem" | "MoveItem" | "CopyItem"
                ) {
                    w.empty("m:Items", &[]);
                }
                w.end();
            }
        }
    }
    w.end();
    w.end();
    w.finish()
}

pub(super) fn dispatch(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    match op.name.as_str() {
        "FindItem" => find_item(ctx, op),
        "GetItem" => get_item(ctx, op),
        "GetFolder" => get_folder(ctx, op),
        "UpdateItem" => update_item(ctx, op),
        "MoveItem" => move_or_copy(ctx, op, false),
        "CopyItem" => move_or_copy(ctx, op, true),
        "DeleteItem" => delete_item(ctx, op),
        "CreateItem" => create_item(ctx, op),
        "SendItem" => send_item(ctx, op),
        "SyncFolderItems" => sync_folder_items(ctx, op),
        "FindFolder" => find_folder(ctx, op),
        "CreateFolder" => create_folder(ctx, op),
        "ResolveNames" => resolve_names(ctx, op),
        "ConvertId" => Ok(convert_id(ctx, op)),
        other => Err(Fault::new(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement the EWS operation {other}."),
        )),
    }
}

/// An `xs:boolean`: `true`/`1` or `false`/`0` (exchangelib writes `1`).
fn xs_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn now(ctx: &Ctx) -> OffsetDateTime {
    ctx.state.clock().now()
}

fn dt(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---------- folders ----------

/// A resolved folder: the mailbox (primary address) and the folder (id or well-known name).
struct FolderRef {
    mailbox: String,
    folder: String,
}

fn well_known(id: &str) -> String {
    // Exchange's `root` is the hidden root above `msgfolderroot`; the sandbox has one tree.
    let id = id.to_ascii_lowercase();
    if id == "root" {
        "msgfolderroot".into()
    } else {
        id
    }
}

fn folder_ref(ctx: &Ctx, el: &Element, write: bool) -> Result<FolderRef, Msg> {
    match el.name.as_str() {
        "DistinguishedFolderId" => {
            let id = el.attr("Id").unwrap_or("");
            let mailbox = match el
                .path(&["Mailbox", "EmailAddress"])
                .map(|e| e.text.trim())
                .filter(|s| !s.is_empty())
            {
                None => ctx.mailbox.clone(),
                Some(addr) => {
                    let r = if write {
                        ctx.principal.may_write(addr)
                    } else {
                        ctx.principal.may_read(addr)
                    };
                    match r {
                        Ok(p) => p,
                        Err(d) if d.kind == AccessDeniedKind::MailboxNotFound => {
                            return Err(err(
                                "ErrorNonExistentMailbox",
                                format!(
                                    "The SMTP address has no mailbox associated with it: {addr}"
                                ),
                            ));
                        }
                        Err(d) => return Err(err("ErrorAccessDenied", d.message)),
                    }
                }
            };
            Ok(FolderRef {
                mailbox,
                folder: well_known(id),
            })
        }
        "FolderId" => {
            // A folder id names its mailbox (as Exchange's do): a folder of a shared mailbox
            // reached with delegated access is in that mailbox, not the caller's.
            let id = el.attr("Id").unwrap_or("").to_string();
            let mailbox = match ctx.state.store().locate_folder(&id) {
                Some(mb) if !mb.eq_ignore_ascii_case(&ctx.mailbox) && !ctx.principal.is_app() => {
                    let r = if write {
                        ctx.principal.may_write(&mb)
                    } else {
                        ctx.principal.may_read(&mb)
                    };
                    r.map_err(|d| err("ErrorAccessDenied", d.message))?
                }
                _ => ctx.mailbox.clone(),
            };
            Ok(FolderRef {
                mailbox,
                folder: id,
            })
        }
        other => Err(err(
            "ErrorInvalidRequest",
            format!("Unsupported folder reference {other}."),
        )),
    }
}

fn write_folder(w: &mut Writer, f: &FolderInfo) {
    w.start("t:Folder", &[]);
    w.empty(
        "t:FolderId",
        &[("Id", &f.id), ("ChangeKey", "AQAAABYAAAA=")],
    );
    if let Some(p) = &f.parent_id {
        w.empty("t:ParentFolderId", &[("Id", p), ("ChangeKey", "AQAAAA==")]);
    }
    // Well-known mail folders are `IPF.Note`; a folder created without a class has none
    // (the sandbox does not store classes), so clients keep the class they created it with.
    if f.well_known
        .is_some_and(|w| w != crate::store::WellKnownFolder::MsgFolderRoot)
    {
        w.text_element("t:FolderClass", "IPF.Note");
    }
    w.text_element("t:DisplayName", &f.display_name);
    w.text_element("t:TotalCount", &f.total_count.to_string());
    w.text_element("t:ChildFolderCount", &f.child_folder_count.to_string());
    w.text_element("t:UnreadCount", &f.unread_count.to_string());
    w.end();
}

fn get_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let ids = op
        .child("FolderIds")
        .map(|f| f.children.clone())
        .unwrap_or_default();
    let msgs = ids
        .iter()
        .map(|el| match folder_ref(ctx, el, false) {
            Err(m) => m,
            Ok(r) => match ctx.state.store().folder(&r.mailbox, &r.folder) {
                Ok(f) => {
                    let mut w = Writer::new();
                    w.start("m:Folders", &[]);
                    write_folder(&mut w, &f);
                    w.end();
                    Msg::Ok(w.finish())
                }
                Err(e) => store_err(&e),
            },
        })
        .collect();
    Ok(response("GetFolder", msgs))
}

fn find_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let deep = op.attr("Traversal") == Some("Deep");
    let parents = op
        .child("ParentFolderIds")
        .map(|f| f.children.clone())
        .unwrap_or_default();
    let msgs = parents
        .iter()
        .map(|el| match folder_ref(ctx, el, false) {
            Err(m) => m,
            Ok(r) => {
                let mut found = Vec::new();
                let mut queue = vec![r.folder.clone()];
                while let Some(parent) = queue.pop() {
                    match ctx
                        .state
                        .store()
                        .list_folders(&r.mailbox, Some(&parent), false)
                    {
                        Ok(children) => {
                            for c in children {
                                if deep {
                                    queue.push(c.id.clone());
                                }
                                found.push(c);
                            }
                        }
                        Err(e) => return store_err(&e),
                    }
                }
                let mut w = Writer::new();
                let n = found.len().to_string();
                w.start(
                    "m:RootFolder",
                    &[
                        ("TotalItemsInView", &n),
                        ("IncludesLastItemInRange", "true"),
                    ],
                );
                w.start("t:Folders", &[]);
                for f in &found {
                    write_folder(&mut w, f);
                }
                w.end();
                w.end();
                Msg::Ok(w.finish())
            }
        })
        .collect();
    Ok(response("FindFolder", msgs))
}

fn create_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let Some(parent_el) = op.child("ParentFolderId").and_then(|p| p.children.first()) else {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "CreateFolder needs a ParentFolderId.",
        ));
    };
    let folders = op
        .child("Folders")
        .map(|f| f.children.clone())
        .unwrap_or_default();
    let parent = folder_ref(ctx, parent_el, true);
    let msgs = folders
        .iter()
        .map(|f| match &parent {
            Err(Msg::Err(c, t)) => err(c, t.clone()),
            Err(Msg::Ok(_)) => err("ErrorInternalServerError", "unexpected"),
            Ok(r) => {
                let name = f.child_text("DisplayName").unwrap_or("");
                if name.is_empty() {
                    return err("ErrorInvalidFolderId", "A folder needs a display name.");
                }
                match ctx
                    .state
                    .store()
                    .create_folder(&r.mailbox, Some(&r.folder), name)
                {
                    Ok(info) => {
                        let mut w = Writer::new();
                        w.start("m:Folders", &[]);
                        w.start("t:Folder", &[]);
                        w.empty(
                            "t:FolderId",
                            &[("Id", &info.id), ("ChangeKey", "AQAAABYAAAA=")],
                        );
                        w.end();
                        w.end();
                        Msg::Ok(w.finish())
                    }
                    Err(e) => store_err(&e),
                }
            }
        })
        .collect();
    Ok(response("CreateFolder", msgs))
}

// ---------- items ----------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    IdOnly,
    Default,
    All,
}

struct Shape {
    base: Base,
    mime: bool,
    props: HashSet<String>,
}

fn parse_shape(el: Option<&Element>) -> Shape {
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
    fn wants_mime(&self) -> bool {
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

fn write_item(w: &mut Writer, m: &Message, shape: &Shape) {
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
                .raw(&super::xml_escape(html))
                .end(),
            None => w
                .start("t:Body", &[("BodyType", "Text")])
                .raw(&super::xml_escape(&p.body_text))
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
                .raw(&super::xml_escape(v))
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

/// Finds an item's mailbox and checks the caller's right on it.
fn locate(ctx: &Ctx, id: &str, write: bool) -> Result<String, Msg> {
    let looks_like_id = !id.is_empty()
        && id.len() >= 8
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b));
    if !looks_like_id {
        return Err(err("ErrorInvalidIdMalformed", "Id is malformed."));
    }
    let Some(mb) = ctx.state.store().locate(id) else {
        return Err(err(
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ));
    };
    let r = if write {
        ctx.principal.may_write(&mb)
    } else {
        ctx.principal.may_read(&mb)
    };
    match r {
        Ok(primary) if ctx.principal.is_app() && !primary.eq_ignore_ascii_case(&ctx.mailbox) => {
            // An impersonating app sees only the impersonated mailbox.
            Err(err(
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ))
        }
        Ok(primary) => Ok(primary),
        Err(_) => Err(err(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )),
    }
}

fn item_ids(op: &Element, tag: &str) -> Vec<Element> {
    op.child(tag)
        .map(|i| {
            i.children
                .iter()
                .filter(|c| c.name == "ItemId")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// ConvertId, as far as clients need it: one response message per source id, with the error
/// Exchange gives for a malformed or unknown id. exchangelib's version probe sends
/// `ConvertId` of a dummy id and reads the version from the header of the (error) answer; a
/// SOAP fault instead makes it retry with every older schema version down to Exchange2007.
/// The sandbox does not convert real ids between formats (a per-id `ErrorInvalidRequest`).
fn convert_id(ctx: &Ctx, op: &Element) -> String {
    let msgs = op
        .child("SourceIds")
        .map(|s| s.children.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|el| match locate(ctx, el.attr("Id").unwrap_or(""), false) {
            Err(m) => m,
            Ok(_) => err(
                "ErrorInvalidRequest",
                "The sandbox does not convert item ids between formats.",
            ),
        })
        .collect();
    response("ConvertId", msgs)
}

fn get_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_shape(op.child("ItemShape"));
    let msgs = item_ids(op, "ItemIds")
        .iter()
        .map(|el| {
            let id = el.attr("Id").unwrap_or("");
            match locate(ctx, id, false) {
                Err(m) => m,
                Ok(mb) => match ctx.state.store().get(&mb, id) {
                    Ok(m) => {
                        let mime = if shape.wants_mime() { m.mime.len() } else { 0 };
                        let mut w = Writer::with_capacity(mime.div_ceil(3) * 4 + 2048);
                        w.start("m:Items", &[]);
                        write_item(&mut w, &m, &shape);
                        w.end();
                        Msg::Ok(w.finish())
                    }
                    Err(e) => store_err(&e),
                },
            }
        })
        .collect();
    Ok(response("GetItem", msgs))
}

/// The `message:IsRead` condition of a restriction, if it has one.
fn is_read_filter(r: &Element) -> Option<bool> {
    for (tag, negate) in [("IsEqualTo", false), ("IsNotEqualTo", true)] {
        if let Some(c) = std::iter::once(r)
            .chain(r.children.iter())
            .find_map(|e| e.child(tag).or((e.name == tag).then_some(e)))
            && c.child("FieldURI").and_then(|f| f.attr("FieldURI")) == Some("message:IsRead")
        {
            let v = c
                .path(&["FieldURIOrConstant", "Constant"])
                .and_then(|k| k.attr("Value"))?;
            return xs_bool(v).map(|b| b != negate);
        }
    }
    r.children.iter().find_map(is_read_filter)
}

fn find_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_shape(op.child("ItemShape"));
    let Some(parent) = op.child("ParentFolderIds").and_then(|p| p.children.first()) else {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "FindItem needs ParentFolderIds.",
        ));
    };
    let r = match folder_ref(ctx, parent, false) {
        Ok(r) => r,
        Err(m) => return Ok(response("FindItem", vec![m])),
    };
    let is_read = op.child("Restriction").and_then(is_read_filter);
    let order = match op
        .path(&["SortOrder", "FieldOrder"])
        .and_then(|f| f.attr("Order"))
    {
        Some("Ascending") => Order::ReceivedAsc,
        _ => Order::ReceivedDesc,
    };
    let view = op.child("IndexedPageItemView");
    let max: usize = view
        .and_then(|v| v.attr("MaxEntriesReturned"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let offset: usize = view
        .and_then(|v| v.attr("Offset"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let from_end = view.and_then(|v| v.attr("BasePoint")) == Some("End");
    // Only the page is taken from the store (cloning every message of a large folder to slice
    // it showed in profiles). From the end: the same page, read in the opposite order.
    let q = ListQuery {
        is_read,
        order: if from_end { order.reversed() } else { order },
        skip: offset,
        top: Some(max),
        ..ListQuery::default()
    };
    let mut page = match ctx.state.store().list(&r.mailbox, Some(&r.folder), &q) {
        Ok(p) => p,
        Err(e) => return Ok(response("FindItem", vec![store_err(&e)])),
    };
    let total = page.total;
    let (start, end) = if from_end {
        page.items.reverse();
        let end = total.saturating_sub(offset);
        (end.saturating_sub(max), end)
    } else {
        (offset.min(total), (offset + max).min(total))
    };
    let items = &page.items;
    let mut w = Writer::new();
    let (next, total_s) = ((end).to_string(), total.to_string());
    let last = if from_end { start == 0 } else { end >= total };
    w.start(
        "m:RootFolder",
        &[
            ("IndexedPagingOffset", &next),
            ("TotalItemsInView", &total_s),
            (
                "IncludesLastItemInRange",
                if last { "true" } else { "false" },
            ),
        ],
    );
    w.start("t:Items", &[]);
    for m in items {
        write_item(&mut w, m, &shape);
    }
    w.end();
    w.end();
    Ok(response("FindItem", vec![Msg::Ok(w.finish())]))
}

fn update_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let overwrite = op.attr("ConflictResolution") == Some("AlwaysOverwrite");
    let disposition = op.attr("MessageDisposition");
    let changes: Vec<Element> = op
        .child("ItemChanges")
        .map(|c| c.children.clone())
        .unwrap_or_default();
    let msgs = changes
        .iter()
        .map(|ch| {
            let Some(idel) = ch.child("ItemId") else {
                return err("ErrorInvalidIdEmpty", "The item change has no ItemId.");
            };
            let id = idel.attr("Id").unwrap_or("");
            let mb = match locate(ctx, id, true) {
                Ok(mb) => mb,
                Err(m) => return m,
            };
            if disposition.is_none() {
                return err("ErrorMessageDispositionRequired", "MessageDisposition is required for message items.");
            }
            let updates: Vec<&Element> = ch.child("Updates").map(|u| u.children.iter().collect()).unwrap_or_default();
            let mut read: Option<bool> = None;
            for u in updates {
                let field = u.child("FieldURI").and_then(|f| f.attr("FieldURI"));
                match (u.name.as_str(), field) {
                    ("SetItemField", Some("message:IsRead")) => {
                        read = u.path(&["Message", "IsRead"]).and_then(|v| xs_bool(&v.text));
                    }
                    (kind, f) => {
                        return err(
                            "ErrorInvalidPropertySet",
                            format!("The sandbox supports only SetItemField on message:IsRead (got {kind} {f:?})."),
                        );
                    }
                }
            }
            let Some(read) = read else {
                return err("ErrorInvalidPropertySet", "No update was given.");
            };
            let ck = if overwrite { None } else { idel.attr("ChangeKey").filter(|c| !c.is_empty()) };
            match ctx.state.store().set_read(&mb, id, read, ck, now(ctx)) {
                Ok(m) => {
                    let mut w = Writer::new();
                    w.start("m:Items", &[]);
                    w.start("t:Message", &[]);
                    w.empty("t:ItemId", &[("Id", &m.id), ("ChangeKey", &m.change_key)]);
                    w.end();
                    w.end();
                    w.start("m:ConflictResults", &[]);
                    w.text_element("t:Count", "0");
                    w.end();
                    Msg::Ok(w.finish())
                }
                Err(e) => store_err(&e),
            }
        })
        .collect();
    Ok(response("UpdateItem", msgs))
}

fn move_or_copy(ctx: &Ctx, op: &Element, copy: bool) -> Result<String, Fault> {
    let name = if copy { "CopyItem" } else { "MoveItem" };
    let Some(to_el) = op.child("ToFolderId").and_then(|t| t.children.first()) else {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            format!("{name} needs a ToFolderId."),
        ));
    };
    let to = folder_ref(ctx, to_el, true);
    let return_ids = op.child_text("ReturnNewItemIds").and_then(xs_bool) != Some(false);
    let msgs = item_ids(op, "ItemIds")
        .iter()
        .map(|el| {
            let id = el.attr("Id").unwrap_or("");
            let to = match &to {
                Ok(t) => t,
                Err(Msg::Err(c, t)) => return err(c, t.clone()),
                Err(Msg::Ok(_)) => return err("ErrorInternalServerError", "unexpected"),
            };
            let mb = match locate(ctx, id, true) {
                Ok(mb) => mb,
                Err(m) => return m,
            };
            if !mb.eq_ignore_ascii_case(&to.mailbox) {
                return err(
                    "ErrorMoveCopyFailed",
                    "Moving or copying between mailboxes is not supported by the sandbox.",
                );
            }
            let r = if copy {
                ctx.state.store().copy_to(&mb, id, &to.folder, now(ctx))
            } else {
                ctx.state.store().move_to(&mb, id, &to.folder, now(ctx))
            };
            match r {
                Ok(m) => {
                    let mut w = Writer::new();
                    w.start("m:Items", &[]);
                    if return_ids {
                        w.start("t:Message", &[]);
                        w.empty("t:ItemId", &[("Id", &m.id), ("ChangeKey", &m.change_key)]);
                        w.end();
                    }
                    w.end();
                    Msg::Ok(w.finish())
                }
                Err(e) => store_err(&e),
            }
        })
        .collect();
    Ok(response(name, msgs))
}

fn delete_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let mode = match op.attr("DeleteType") {
        Some("HardDelete") => DeleteMode::HardDelete,
        Some("SoftDelete") => DeleteMode::SoftDelete,
        Some("MoveToDeletedItems") => DeleteMode::MoveToDeletedItems,
        other => {
            return Err(Fault::new(
                "ErrorSchemaValidation",
                format!("The DeleteType attribute is invalid: {other:?}."),
            ));
        }
    };
    let msgs = item_ids(op, "ItemIds")
        .iter()
        .map(|el| {
            let id = el.attr("Id").unwrap_or("");
            match locate(ctx, id, true) {
                Err(m) => m,
                Ok(mb) => match ctx.state.store().delete(&mb, id, mode, now(ctx)) {
                    Ok(_) => Msg::Ok(String::new()),
                    Err(e) => store_err(&e),
                },
            }
        })
        .collect();
    Ok(response("DeleteItem", msgs))
}

fn encode_header(v: &str) -> String {
    if v.is_ascii() {
        v.replace(['\r', '\n'], " ")
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v)
        )
    }
}

fn addresses(el: Option<&Element>) -> Vec<String> {
    el.map(|e| {
        e.children_named("Mailbox")
            .filter_map(|m| {
                let addr = m.child_text("EmailAddress")?;
                Some(match m.child_text("Name") {
                    Some(n) => format!("\"{}\" <{addr}>", encode_header(n).replace('"', "")),
                    None => addr.to_string(),
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The MIME of a `t:Message`: its `MimeContent`, or one built from the structured fields.
fn message_mime(ctx: &Ctx, m: &Element) -> Result<Vec<u8>, Msg> {
    if let Some(mc) = m.child("MimeContent") {
        let compact: String = mc.text.chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| {
                err(
                    "ErrorMimeContentConversionFailed",
                    "The MimeContent is not valid base64.",
                )
            });
    }
    let mut out = String::new();
    let from = addresses(m.child("From"))
        .into_iter()
        .next()
        .unwrap_or_else(|| ctx.mailbox.clone());
    out.push_str(&format!("From: {from}\r\n"));
    for (h, tag) in [
        ("To", "ToRecipients"),
        ("Cc", "CcRecipients"),
        ("Bcc", "BccRecipients"),
    ] {
        let list = addresses(m.child(tag));
        if !list.is_empty() {
            out.push_str(&format!("{h}: {}\r\n", list.join(", ")));
        }
    }
    let reply = addresses(m.child("ReplyTo"));
    if !reply.is_empty() {
        out.push_str(&format!("Reply-To: {}\r\n", reply.join(", ")));
    }
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_header(m.child_text("Subject").unwrap_or(""))
    ));
    let body = m.child("Body");
    let html = body.and_then(|b| b.attr("BodyType")) == Some("HTML");
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(if html {
        "Content-Type: text/html; charset=utf-8\r\n"
    } else {
        "Content-Type: text/plain; charset=utf-8\r\n"
    });
    out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    out.push_str(
        &body
            .map(|b| b.text.replace("\r\n", "\n").replace('\n', "\r\n"))
            .unwrap_or_default(),
    );
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

fn ensure_from(mime: Vec<u8>, mailbox: &str) -> Vec<u8> {
    let head_end = mime
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| mime.windows(2).position(|w| w == b"\n\n"));
    let head =
        String::from_utf8_lossy(&mime[..head_end.unwrap_or(mime.len())]).to_ascii_lowercase();
    if head.starts_with("from:") || head.contains("\nfrom:") {
        return mime;
    }
    let mut out = format!("From: {mailbox}\r\n").into_bytes();
    out.extend_from_slice(&mime);
    out
}

fn send(ctx: &Ctx, mailbox: &str, mime: Vec<u8>, save: bool) -> Msg {
    let mime = ensure_from(mime, mailbox);
    let from = crate::store::MessageProps::from_mime(&mime)
        .ok()
        .and_then(|p| p.from.map(|f| f.address))
        .unwrap_or_else(|| mailbox.to_string());
    if let Err(d) = ctx.principal.may_send_as(mailbox, &from) {
        return err(
            if d.kind == AccessDeniedKind::SendAsDenied {
                "ErrorSendAsDenied"
            } else {
                "ErrorAccessDenied"
            },
            d.message,
        );
    }
    match delivery::submit(&ctx.state, mailbox, &mime, save) {
        Ok(_) => Msg::Ok("<m:Items/>".to_string()),
        Err(DeliveryError::TooLarge(n)) => err(
            "ErrorMessageSizeExceeded",
            format!("The message exceeds the maximum size of {n} bytes."),
        ),
        Err(DeliveryError::NoRecipients) => err(
            "ErrorInvalidRecipients",
            "At least one recipient is required.",
        ),
        Err(DeliveryError::InvalidMime) => err(
            "ErrorMimeContentConversionFailed",
            "The MIME content could not be read.",
        ),
        Err(e) => err("ErrorInternalServerError", e.to_string()),
    }
}

fn create_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let disposition = op.attr("MessageDisposition");
    let saved = op
        .child("SavedItemFolderId")
        .and_then(|s| s.children.first())
        .map(|f| folder_ref(ctx, f, true));
    let items: Vec<Element> = op
        .child("Items")
        .map(|i| i.children.clone())
        .unwrap_or_default();
    let msgs = items
        .iter()
        .map(|m| {
            if m.name != "Message" {
                return err(
                    "ErrorInvalidItemForOperationCreateItem",
                    format!("The sandbox creates only messages, not {}.", m.name),
                );
            }
            let saved = match &saved {
                Some(Err(Msg::Err(c, t))) => return err(c, t.clone()),
                Some(Ok(r)) => Some(r),
                _ => None,
            };
            let mailbox = saved
                .map(|r| r.mailbox.clone())
                .unwrap_or_else(|| ctx.mailbox.clone());
            if let Err(d) = ctx.principal.may_write(&mailbox) {
                return err("ErrorAccessDenied", d.message);
            }
            let mime = match message_mime(ctx, m) {
                Ok(x) => x,
                Err(e) => return e,
            };
            match disposition {
                Some("SaveOnly") => {
                    let folder = saved
                        .map(|r| r.folder.clone())
                        .unwrap_or_else(|| "drafts".into());
                    let opts = InsertOptions {
                        is_read: true,
                        is_draft: true,
                        received: now(ctx),
                    };
                    match ctx.state.store().insert(&mailbox, &folder, mime, opts) {
                        Ok(msg) => {
                            let mut w = Writer::new();
                            w.start("m:Items", &[]);
                            w.start("t:Message", &[]);
                            w.empty(
                                "t:ItemId",
                                &[("Id", &msg.id), ("ChangeKey", &msg.change_key)],
                            );
                            w.end();
                            w.end();
                            Msg::Ok(w.finish())
                        }
                        Err(e) => store_err(&e),
                    }
                }
                Some("SendOnly") => send(ctx, &mailbox, mime, false),
                Some("SendAndSaveCopy") => send(ctx, &mailbox, mime, true),
                _ => err(
                    "ErrorMessageDispositionRequired",
                    "MessageDisposition is required for message items.",
                ),
            }
        })
        .collect();
    Ok(response("CreateItem", msgs))
}

fn send_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let save = op.attr("SaveItemToFolder").and_then(xs_bool) != Some(false);
    let msgs = item_ids(op, "ItemIds")
        .iter()
        .map(|el| {
            let id = el.attr("Id").unwrap_or("");
            let mb = match locate(ctx, id, true) {
                Ok(mb) => mb,
                Err(m) => return m,
            };
            let draft = match ctx.state.store().get(&mb, id) {
                Ok(d) => d,
                Err(e) => return store_err(&e),
            };
            if let Some(ck) = el.attr("ChangeKey").filter(|c| !c.is_empty())
                && ck != draft.change_key
            {
                return store_err(&StoreError::ChangeKeyMismatch(id.to_string()));
            }
            match send(ctx, &mb, draft.mime.to_vec(), save) {
                Msg::Ok(_) => {
                    match ctx
                        .state
                        .store()
                        .delete(&mb, id, DeleteMode::HardDelete, now(ctx))
                    {
                        Ok(_) => Msg::Ok(String::new()),
                        Err(e) => store_err(&e),
                    }
                }
                e => e,
            }
        })
        .collect();
    Ok(response("SendItem", msgs))
}

const SYNC_PREFIX: &str = "sandbox-sync:";

fn sync_folder_items(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_shape(op.child("ItemShape"));
    let Some(fel) = op.child("SyncFolderId").and_then(|s| s.children.first()) else {
        return Err(Fault::new(
            "ErrorSchemaValidation",
            "SyncFolderItems needs a SyncFolderId.",
        ));
    };
    let r = match folder_ref(ctx, fel, false) {
        Ok(r) => r,
        Err(m) => return Ok(response("SyncFolderItems", vec![m])),
    };
    let since = match op.child_text("SyncState") {
        None => 0,
        Some(s) => match base64::engine::general_purpose::STANDARD
            .decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| {
                t.strip_prefix(SYNC_PREFIX)
                    .and_then(|n| n.parse::<u64>().ok())
            }) {
            Some(n) => n,
            None => {
                return Ok(response(
                    "SyncFolderItems",
                    vec![err(
                        "ErrorInvalidSyncStateData",
                        "Synchronization state data is corrupt or otherwise invalid.",
                    )],
                ));
            }
        },
    };
    let max: usize = op
        .child_text("MaxChangesReturned")
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
        .clamp(1, 512);
    let changes = match ctx
        .state
        .store()
        .changes_since(&r.mailbox, &r.folder, since)
    {
        Ok(c) => c,
        Err(e) => return Ok(response("SyncFolderItems", vec![store_err(&e)])),
    };
    let truncated = changes.changes.len() > max;
    let taken = &changes.changes[..changes.changes.len().min(max)];
    let new_seq = if truncated {
        taken.last().map(|c| c.seq).unwrap_or(since)
    } else {
        changes.latest_seq
    };
    let state = base64::engine::general_purpose::STANDARD.encode(format!("{SYNC_PREFIX}{new_seq}"));
    let mut w = Writer::new();
    w.text_element("m:SyncState", &state);
    w.text_element(
        "m:IncludesLastItemInRange",
        if truncated { "false" } else { "true" },
    );
    w.start("m:Changes", &[]);
    for c in taken {
        match (c.kind, &c.message) {
            (crate::store::ChangeKind::Created, Some(m)) => {
                w.start("t:Create", &[]);
                write_item(&mut w, m, &shape);
                w.end();
            }
            (crate::store::ChangeKind::Updated, Some(m)) => {
                w.start("t:Update", &[]);
                write_item(&mut w, m, &shape);
                w.end();
            }
            _ => {
                w.start("t:Delete", &[]);
                w.empty("t:ItemId", &[("Id", &c.id)]);
                w.end();
            }
        }
    }
    w.end();
    Ok(response("SyncFolderItems", vec![Msg::Ok(w.finish())]))
}

fn resolve_names(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let entry = op
        .child_text("UnresolvedEntry")
        .unwrap_or("")
        .trim_start_matches("smtp:")
        .trim_start_matches("SMTP:");
    let found = {
        let tenant = ctx.state.tenant();
        tenant
            .mailbox(entry, ctx.state.clock().now_unix())
            .map(|m| (m.display_name.clone(), m.mail.clone()))
    };
    let msg = match found {
        None => err("ErrorNameResolutionNoResults", "No results were found."),
        Some((name, mail)) => {
            let mut w = Writer::new();
            w.start(
                "m:ResolutionSet",
                &[
                    ("TotalItemsInView", "1"),
                    ("IncludesLastItemInRange", "true"),
                ],
            );
            w.start("t:Resolution", &[]);
            w.start("t:Mailbox", &[]);
            w.text_element("t:Name", &name);
            w.text_element("t:EmailAddress", &mail);
            w.text_element("t:RoutingType", "SMTP");
            w.text_element("t:MailboxType", "Mailbox");
            w.end();
            w.end();
            w.end();
            Msg::Ok(w.finish())
        }
    };
    Ok(response("ResolveNames", vec![msg]))
}
