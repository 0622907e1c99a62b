//! Reading items: GetItem (by id) and FindItem (a folder's items, paged, with an `IsRead`
//! restriction and a sort order).

use super::folders::folder_ref;
use super::shape::{parse_shape, write_item};
use super::shared::{Msg, item_ids, locate, response, store_err, xs_bool};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};
use crate::store::{ListQuery, Order};

pub(super) fn get_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
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

pub(super) fn find_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
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
