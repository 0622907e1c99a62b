//! Creating and sending: CreateItem (save, send, send and save a copy) and SendItem, with the
//! MIME taken from `MimeContent` or built from the structured fields.

use base64::Engine as _;

use super::folders::folder_ref;
use super::item_fields;
use super::shared::{Msg, err, item_id, item_ids, locate, now, response, store_err, xs_bool};
use crate::auth::AccessDeniedKind;
use crate::delivery::{self, DeliveryError};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};
use crate::store::{DeleteMode, InsertOptions, StoreError, WellKnownFolder};

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

/// The MIME of a `t:Message`: its `MimeContent`, or one built from the structured fields
/// ([`item_fields`] checks every field), and the `IsRead` it asks for.
fn message_mime(ctx: &Ctx, m: &Element) -> Result<(Vec<u8>, Option<bool>), Msg> {
    let extras = item_fields::read(m)?;
    if let Some(mc) = m.child("MimeContent") {
        let compact: String = mc.text.chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map(|mime| (mime, extras.is_read))
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
    let mut part = String::from(if html {
        "Content-Type: text/html; charset=utf-8\r\n"
    } else {
        "Content-Type: text/plain; charset=utf-8\r\n"
    });
    part.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    part.push_str(
        &body
            .map(|b| b.text.replace("\r\n", "\n").replace('\n', "\r\n"))
            .unwrap_or_default(),
    );
    part.push_str("\r\n");
    let from_addr = m
        .path(&["From", "Mailbox", "EmailAddress"])
        .map(|e| e.text.trim().to_string())
        .unwrap_or_else(|| ctx.mailbox.clone());
    Ok((
        item_fields::assemble(&out, &part, &extras, &from_addr),
        extras.is_read,
    ))
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
    let right = match ctx.principal.may_send_as(mailbox, &from) {
        Ok(r) => r,
        Err(d) => {
            return err(
                if d.kind == AccessDeniedKind::SendAsDenied {
                    "ErrorSendAsDenied"
                } else {
                    "ErrorAccessDenied"
                },
                d.message,
            );
        }
    };
    // Send on Behalf: the sending mailbox goes in `Sender`.
    let mime = right.stamp(&mime);
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

pub(super) fn create_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
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
            let (mime, is_read) = match message_mime(ctx, m) {
                Ok(x) => x,
                Err(e) => return e,
            };
            // A sent message's copy goes to Sent Items; another SavedItemFolderId is not
            // implemented (refused, not ignored).
            if matches!(disposition, Some("SendOnly" | "SendAndSaveCopy"))
                && let Some(r) = saved
                && !ctx
                    .state
                    .store()
                    .folder(&r.mailbox, &r.folder)
                    .is_ok_and(|f| f.well_known == Some(WellKnownFolder::SentItems))
            {
                return err(
                    "ErrorInvalidRequest",
                    "The sandbox saves sent messages to Sent Items only: another SavedItemFolderId is not implemented.",
                );
            }
            match disposition {
                Some("SaveOnly") => {
                    let folder = saved
                        .map(|r| r.folder.clone())
                        .unwrap_or_else(|| "drafts".into());
                    let opts = InsertOptions {
                        is_read: is_read.unwrap_or(true),
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

pub(super) fn send_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    // Required by the schema: a missing or malformed value is refused, not read as true.
    let Some(save) = op.attr("SaveItemToFolder").and_then(xs_bool) else {
        return Err(Fault::schema(
            "SendItem needs the SaveItemToFolder attribute (xs:boolean).",
        ));
    };
    // The copy goes to Sent Items: another SavedItemFolderId is refused, not ignored.
    let other_folder = op
        .child("SavedItemFolderId")
        .and_then(|s| s.children.first())
        .is_some_and(|f| {
            !(f.name == "DistinguishedFolderId"
                && f.attr("Id")
                    .is_some_and(|i| i.eq_ignore_ascii_case("sentitems")))
        });
    let msgs = item_ids(op, "ItemIds")
        .iter()
        .map(|el| {
            if other_folder {
                return err(
                    "ErrorInvalidRequest",
                    "The sandbox saves sent messages to Sent Items only: another SavedItemFolderId is not implemented.",
                );
            }
            let id = match item_id(el) {
                Ok(id) => id,
                Err(m) => return m,
            };
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
