//! Changing items: UpdateItem (`IsRead`), MoveItem / CopyItem and DeleteItem.

use super::folders::folder_ref;
use super::shared::{
    Msg, err, item_id, locate, now, per_item, repeated, response, store_err, xs_bool,
};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};
use crate::store::DeleteMode;

pub(super) fn update_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let overwrite = op.attr("ConflictResolution") == Some("AlwaysOverwrite");
    let disposition = op.attr("MessageDisposition");
    // Updating and then sending a draft in one request is not implemented: refused for every
    // item, never done halfway. (`SuppressReadReceipts` and the meeting attributes need no
    // action: the sandbox sends no read receipts and holds no meetings.)
    let refused = match disposition {
        Some("SendOnly" | "SendAndSaveCopy") => Some(format!(
            "The sandbox does not implement UpdateItem with MessageDisposition {}: save with SaveOnly, then SendItem.",
            disposition.unwrap_or("")
        )),
        _ if op.child("SavedItemFolderId").is_some() => Some(
            "The sandbox does not implement UpdateItem's SavedItemFolderId (it applies to sending).".into(),
        ),
        _ => None,
    };
    let changes: Vec<Element> = op
        .child("ItemChanges")
        .map(|c| c.children.clone())
        .unwrap_or_default();
    let msgs = changes
        .iter()
        .map(|ch| {
            if let Some(text) = &refused {
                return err("ErrorInvalidRequest", text.clone());
            }
            let Some(idel) = ch.child("ItemId") else {
                if let Some(other) = ch.children.first().filter(|c| c.name != "Updates") {
                    return match item_id(other) {
                        Err(m) => m,
                        Ok(_) => err("ErrorInvalidIdEmpty", "The item change has no ItemId."),
                    };
                }
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

pub(super) fn move_or_copy(ctx: &Ctx, op: &Element, copy: bool) -> Result<String, Fault> {
    let name = if copy { "CopyItem" } else { "MoveItem" };
    let Some(to_el) = op.child("ToFolderId").and_then(|t| t.children.first()) else {
        return Err(Fault::schema(format!("{name} needs a ToFolderId.")));
    };
    let to = folder_ref(ctx, to_el, true);
    let return_ids = op.child_text("ReturnNewItemIds").and_then(xs_bool) != Some(false);
    let msgs = per_item(op, "ItemIds", |id| {
        let to = match &to {
            Ok(t) => t,
            Err(refusal) => return repeated(refusal),
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
    });
    Ok(response(name, msgs))
}

pub(super) fn delete_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let mode = match op.attr("DeleteType") {
        Some("HardDelete") => DeleteMode::HardDelete,
        Some("SoftDelete") => DeleteMode::SoftDelete,
        Some("MoveToDeletedItems") => DeleteMode::MoveToDeletedItems,
        other => {
            return Err(Fault::schema(format!(
                "The DeleteType attribute is invalid: {other:?}."
            )));
        }
    };
    let msgs = per_item(op, "ItemIds", |id| match locate(ctx, id, true) {
        Err(m) => m,
        Ok(mb) => match ctx.state.store().delete(&mb, id, mode, now(ctx)) {
            Ok(_) => Msg::Ok(String::new()),
            Err(e) => store_err(&e),
        },
    });
    Ok(response("DeleteItem", msgs))
}
