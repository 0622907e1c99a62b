//! SyncFolderItems: a folder's changes since a sync state.

use base64::Engine as _;

use super::folders::folder_ref;
use super::shape::{parse_shape, write_item};
use super::shared::{Msg, err, item_id, response, store_err};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};

const SYNC_PREFIX: &str = "sandbox-sync:";

pub(super) fn sync_folder_items(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_shape(op.child("ItemShape"))?;
    // `SyncScope`: `NormalItems` or `NormalAndAssociatedItems` come to the same, as the
    // sandbox's folders hold no associated items.
    if let Some(s) = op.child_text("SyncScope")
        && !matches!(s, "NormalItems" | "NormalAndAssociatedItems")
    {
        return Err(Fault::schema(format!("Invalid SyncScope '{s}'.")));
    }
    // `Ignore`: changes to these items are left out of the answer.
    let mut ignore = Vec::new();
    for el in op
        .child("Ignore")
        .map(|i| i.children.as_slice())
        .unwrap_or_default()
    {
        match item_id(el) {
            Ok(id) => ignore.push(id.to_string()),
            Err(m) => return Ok(response("SyncFolderItems", vec![m])),
        }
    }
    let Some(fel) = op.child("SyncFolderId").and_then(|s| s.children.first()) else {
        return Err(Fault::schema("SyncFolderItems needs a SyncFolderId."));
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
    // Required, 1–512 (the schema's MaxSyncChangesReturnedType): never clamped in silence.
    let max: usize = match op
        .child_text("MaxChangesReturned")
        .map(|v| v.parse::<usize>())
    {
        Some(Ok(n)) if (1..=512).contains(&n) => n,
        other => {
            return Err(Fault::schema(format!(
                "MaxChangesReturned must be a number from 1 to 512{}.",
                if other.is_none() {
                    " and is required"
                } else {
                    ""
                }
            )));
        }
    };
    let changes = match ctx
        .state
        .store()
        .changes_since(&r.mailbox, &r.folder, since)
    {
        Ok(c) => c,
        Err(e) => return Ok(response("SyncFolderItems", vec![store_err(&e)])),
    };
    let all: Vec<&crate::store::FolderChange> = changes
        .changes
        .iter()
        .filter(|c| !ignore.iter().any(|i| *i == c.id || *i == c.immutable_id))
        .collect();
    let truncated = all.len() > max;
    let taken = &all[..all.len().min(max)];
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
