//! Helpers the EWS operations share: response messages, per-item errors, `xs:boolean`, times,
//! and finding an item's mailbox with the caller's right on it.

use time::OffsetDateTime;

use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, NS_MESSAGES, NS_TYPES};
use crate::store::StoreError;

/// One response message: a payload (already-written XML) or an error.
pub(super) enum Msg {
    Ok(String),
    Err(String, String),
}

pub(super) fn err(code: &str, text: impl Into<String>) -> Msg {
    Msg::Err(code.to_string(), text.into())
}

/// A refusal worked out once for a whole request (its target folder, its view), answered again
/// in each item's place; a success standing there would be the sandbox's own mistake.
pub(super) fn repeated(refusal: &Msg) -> Msg {
    match refusal {
        Msg::Err(c, t) => err(c, t.clone()),
        Msg::Ok(_) => err("ErrorInternalServerError", "unexpected"),
    }
}

pub(super) fn store_err(e: &StoreError) -> Msg {
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

pub(super) fn response(op: &str, msgs: Vec<Msg>) -> String {
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

/// An `xs:boolean`: `true`/`1` or `false`/`0` (exchangelib writes `1`).
pub(super) fn xs_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

pub(super) fn now(ctx: &Ctx) -> OffsetDateTime {
    ctx.state.clock().now()
}

pub(super) fn dt(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Finds an item's mailbox and checks the caller's right on it.
pub(super) fn locate(ctx: &Ctx, id: &str, write: bool) -> Result<String, Msg> {
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

/// Every item reference under `op/tag`, of any kind: [`item_id`] reads one.
pub(super) fn item_ids(op: &Element, tag: &str) -> Vec<Element> {
    op.child(tag)
        .map(|i| i.children.clone())
        .unwrap_or_default()
}

/// One response message per item reference under `tag`, in order: `f` answers a reference
/// that names a message, given its id; any other reference is refused in its place
/// ([`item_id`]).
pub(super) fn per_item(op: &Element, tag: &str, mut f: impl FnMut(&str) -> Msg) -> Vec<Msg> {
    item_ids(op, tag)
        .iter()
        .map(|el| match item_id(el) {
            Ok(id) => f(id),
            Err(m) => m,
        })
        .collect()
}

/// The id of an item reference: an `ItemId`'s `Id`. Occurrence and recurring-master references
/// name calendar items, which the sandbox does not hold: refused, never skipped.
pub(super) fn item_id(el: &Element) -> Result<&str, Msg> {
    match el.name.as_str() {
        "ItemId" => Ok(el.attr("Id").unwrap_or("")),
        other => Err(err(
            "ErrorInvalidRequest",
            format!(
                "The sandbox holds messages only and does not implement item references of kind {other}."
            ),
        )),
    }
}
