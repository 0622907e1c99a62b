//! Folders: GetFolder, FindFolder and CreateFolder, and the folder references (distinguished
//! or by id) every operation that names a folder resolves.

use super::shared::{Msg, err, response, store_err};
use crate::auth::AccessDeniedKind;
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};
use crate::store::FolderInfo;

/// A resolved folder: the mailbox (primary address) and the folder (id or well-known name).
pub(super) struct FolderRef {
    pub(super) mailbox: String,
    pub(super) folder: String,
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

pub(super) fn folder_ref(ctx: &Ctx, el: &Element, write: bool) -> Result<FolderRef, Msg> {
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

pub(super) fn get_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
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

pub(super) fn find_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
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

pub(super) fn create_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
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
