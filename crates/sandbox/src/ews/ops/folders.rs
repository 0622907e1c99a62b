//! Folders: GetFolder, FindFolder and CreateFolder, and the folder references (distinguished
//! or by id) every operation that names a folder resolves.

use super::shape::{FolderShape, parse_folder_shape};
use super::shared::{Msg, err, repeated, response, store_err};
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

fn write_folder(w: &mut Writer, f: &FolderInfo, shape: &FolderShape) {
    w.start("t:Folder", &[]);
    w.empty(
        "t:FolderId",
        &[("Id", &f.id), ("ChangeKey", "AQAAABYAAAA=")],
    );
    if shape.has("ParentFolderId")
        && let Some(p) = &f.parent_id
    {
        w.empty("t:ParentFolderId", &[("Id", p), ("ChangeKey", "AQAAAA==")]);
    }
    // Well-known mail folders are `IPF.Note`; a folder created without a class has none
    // (the sandbox does not store classes), so clients keep the class they created it with.
    if shape.has("FolderClass")
        && f.well_known
            .is_some_and(|w| w != crate::store::WellKnownFolder::MsgFolderRoot)
    {
        w.text_element("t:FolderClass", "IPF.Note");
    }
    if shape.has("DisplayName") {
        w.text_element("t:DisplayName", &f.display_name);
    }
    if shape.has("TotalCount") {
        w.text_element("t:TotalCount", &f.total_count.to_string());
    }
    if shape.has("ChildFolderCount") {
        w.text_element("t:ChildFolderCount", &f.child_folder_count.to_string());
    }
    if shape.has("UnreadCount") {
        w.text_element("t:UnreadCount", &f.unread_count.to_string());
    }
    w.end();
}

pub(super) fn get_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_folder_shape(op.child("FolderShape"))?;
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
                    write_folder(&mut w, &f, &shape);
                    w.end();
                    Msg::Ok(w.finish())
                }
                Err(e) => store_err(&e),
            },
        })
        .collect();
    Ok(response("GetFolder", msgs))
}

/// A FindFolder restriction: `IsEqualTo` on `folder:DisplayName` (case-insensitive, as
/// Exchange compares strings); anything else is refused.
fn folder_name_filter(op: &Element) -> Result<Option<String>, Msg> {
    let Some(r) = op.child("Restriction") else {
        return Ok(None);
    };
    let [e] = r.children.as_slice() else {
        return Err(err(
            "ErrorInvalidRestriction",
            "The restriction is invalid: it must hold exactly one search expression.",
        ));
    };
    let path = e
        .child("FieldURI")
        .and_then(|f| f.attr("FieldURI"))
        .unwrap_or("");
    if e.name != "IsEqualTo" {
        return Err(err(
            "ErrorUnsupportedQueryFilter",
            format!(
                "The sandbox restricts FindFolder with IsEqualTo on folder:DisplayName only, not {}.",
                e.name
            ),
        ));
    }
    if path != "folder:DisplayName" {
        return Err(err(
            "ErrorUnsupportedPathForQuery",
            format!("The sandbox restricts FindFolder on folder:DisplayName only, not '{path}'."),
        ));
    }
    e.path(&["FieldURIOrConstant", "Constant"])
        .and_then(|c| c.attr("Value"))
        .map(|v| Some(v.to_string()))
        .ok_or_else(|| {
            err(
                "ErrorUnsupportedQueryFilter",
                "The sandbox compares folder:DisplayName with a constant only.",
            )
        })
}

/// `IndexedPageFolderView` (or none: every folder): `(max, offset, from_end)`.
fn folder_view(op: &Element) -> Result<(usize, usize, bool), Msg> {
    if let Some(v) = op
        .children
        .iter()
        .find(|c| c.name == "FractionalPageFolderView")
    {
        return Err(err(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement {} for FindFolder.", v.name),
        ));
    }
    let Some(v) = op.child("IndexedPageFolderView") else {
        return Ok((usize::MAX, 0, false));
    };
    let num = |n: &str| v.attr(n).and_then(|x| x.trim().parse::<usize>().ok());
    let (Some(offset), Some(base)) = (num("Offset"), v.attr("BasePoint")) else {
        return Err(err(
            "ErrorInvalidIndexedPagingParameters",
            "IndexedPageFolderView needs an Offset and a BasePoint.",
        ));
    };
    let from_end = match base {
        "Beginning" => false,
        "End" => true,
        _ => {
            return Err(err(
                "ErrorInvalidIndexedPagingParameters",
                "BasePoint must be Beginning or End.",
            ));
        }
    };
    Ok((
        num("MaxEntriesReturned").unwrap_or(usize::MAX),
        offset,
        from_end,
    ))
}

pub(super) fn find_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_folder_shape(op.child("FolderShape"))?;
    let deep = match op.attr("Traversal") {
        Some("Shallow") => Ok(false),
        Some("Deep") => Ok(true),
        Some(other) => Err(err(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement the {other} traversal of FindFolder."),
        )),
        None => {
            return Err(Fault::schema("FindFolder needs the Traversal attribute."));
        }
    };
    let prepared = deep.and_then(|d| Ok((d, folder_name_filter(op)?, folder_view(op)?)));
    let parents = op
        .child("ParentFolderIds")
        .map(|f| f.children.clone())
        .unwrap_or_default();
    let msgs = parents
        .iter()
        .map(|el| {
            let (deep, name, (max, offset, from_end)) = match &prepared {
                Ok(p) => p,
                Err(refusal) => return repeated(refusal),
            };
            match folder_ref(ctx, el, false) {
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
                                    if *deep {
                                        queue.push(c.id.clone());
                                    }
                                    found.push(c);
                                }
                            }
                            Err(e) => return store_err(&e),
                        }
                    }
                    if let Some(n) = name {
                        found.retain(|f| f.display_name.eq_ignore_ascii_case(n));
                    }
                    let total = found.len();
                    let (start, end) = if *from_end {
                        let end = total.saturating_sub(*offset);
                        (end.saturating_sub(*max), end)
                    } else {
                        ((*offset).min(total), offset.saturating_add(*max).min(total))
                    };
                    let last = if *from_end { start == 0 } else { end >= total };
                    let mut w = Writer::new();
                    let (n, next) = (total.to_string(), end.to_string());
                    let mut attrs = vec![
                        ("TotalItemsInView", n.as_str()),
                        (
                            "IncludesLastItemInRange",
                            if last { "true" } else { "false" },
                        ),
                    ];
                    if op.child("IndexedPageFolderView").is_some() {
                        attrs.insert(0, ("IndexedPagingOffset", next.as_str()));
                    }
                    w.start("m:RootFolder", &attrs);
                    w.start("t:Folders", &[]);
                    for f in &found[start..end] {
                        write_folder(&mut w, f, &shape);
                    }
                    w.end();
                    w.end();
                    Msg::Ok(w.finish())
                }
            }
        })
        .collect();
    Ok(response("FindFolder", msgs))
}

/// The display name of a folder to create: a `t:Folder` (mail folder) with a `DisplayName` and
/// at most the class `IPF.Note`; other folder kinds and properties are refused.
fn new_folder_name(f: &Element) -> Result<&str, Msg> {
    if f.name != "Folder" {
        return Err(err(
            "ErrorInvalidRequest",
            format!(
                "The sandbox creates mail folders (t:Folder) only, not {}.",
                f.name
            ),
        ));
    }
    for c in &f.children {
        match c.name.as_str() {
            "DisplayName" => {}
            "FolderClass"
                if c.text.trim() == "IPF.Note" || c.text.trim().starts_with("IPF.Note.") => {}
            other => {
                return Err(err(
                    "ErrorInvalidRequest",
                    format!(
                        "The sandbox does not implement setting {other}{} on a new folder.",
                        if other == "FolderClass" {
                            format!(" '{}'", c.text.trim())
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
        }
    }
    match f.child_text("DisplayName") {
        Some(n) => Ok(n),
        None => Err(err(
            "ErrorInvalidFolderId",
            "A folder needs a display name.",
        )),
    }
}

pub(super) fn create_folder(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let Some(parent_el) = op.child("ParentFolderId").and_then(|p| p.children.first()) else {
        return Err(Fault::schema("CreateFolder needs a ParentFolderId."));
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
                let name = match new_folder_name(f) {
                    Ok(n) => n,
                    Err(m) => return m,
                };
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
