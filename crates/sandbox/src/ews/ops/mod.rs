//! The EWS operations of the sandbox. Each handler reads the operation element and writes the
//! `{Op}Response` element; per-item failures are `ResponseClass="Error"` messages in place.
//!
//! One module per kind of operation: [`folders`] (GetFolder, FindFolder, CreateFolder),
//! [`find`] (GetItem, FindItem), [`change`] (UpdateItem, MoveItem, CopyItem, DeleteItem),
//! [`create`] (CreateItem, SendItem), [`sync`] (SyncFolderItems), [`streaming`] (Subscribe,
//! GetStreamingEvents, Unsubscribe: streaming notifications) and [`lookup`] (ResolveNames,
//! ConvertId); [`shape`] writes items in a requested shape and [`shared`] holds the helpers
//! they share.

mod change;
mod create;
mod field_uris;
mod find;
mod folders;
mod item_fields;
mod lookup;
mod shape;
mod shared;
mod streaming;
mod sync;

use super::xml::Element;
use super::{Ctx, Fault};

pub(super) use self::streaming::get_streaming_events;

pub(super) fn dispatch(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    match op.name.as_str() {
        "FindItem" => find::find_item(ctx, op),
        "GetItem" => find::get_item(ctx, op),
        "GetFolder" => folders::get_folder(ctx, op),
        "UpdateItem" => change::update_item(ctx, op),
        "MoveItem" => change::move_or_copy(ctx, op, false),
        "CopyItem" => change::move_or_copy(ctx, op, true),
        "DeleteItem" => change::delete_item(ctx, op),
        "CreateItem" => create::create_item(ctx, op),
        "SendItem" => create::send_item(ctx, op),
        "SyncFolderItems" => sync::sync_folder_items(ctx, op),
        "FindFolder" => folders::find_folder(ctx, op),
        "CreateFolder" => folders::create_folder(ctx, op),
        "ResolveNames" => lookup::resolve_names(ctx, op),
        "ConvertId" => Ok(lookup::convert_id(ctx, op)),
        "Subscribe" => streaming::subscribe(ctx, op),
        "Unsubscribe" => Ok(streaming::unsubscribe(ctx, op)),
        other => Err(Fault::new(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement the EWS operation {other}."),
        )),
    }
}
