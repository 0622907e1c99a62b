//! Reading items: GetItem (by id) and FindItem (a folder's items, paged, with a restriction on
//! `message:IsRead` and `item:DateTimeReceived` and a sort order on `item:DateTimeReceived`).
//!
//! Whatever part of a FindItem the sandbox does not implement is refused with the response
//! code Exchange uses for that kind of part, never skipped: another property in a restriction
//! is `ErrorUnsupportedPathForQuery`, another kind of expression (`Or`, `Not`, `Contains`, …)
//! `ErrorUnsupportedQueryFilter`, another sort property `ErrorUnsupportedPathForSortGroup`, a
//! calendar view `ErrorCalendarFolderIsInvalidForCalendarView`, grouping, contacts views, AQS
//! query strings and other traversals `ErrorInvalidRequest`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::folders::folder_ref;
use super::shape::{parse_shape, write_item};
use super::shared::{Msg, err, locate, per_item, repeated, response, store_err, xs_bool};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};
use crate::store::{ListQuery, Order};

pub(super) fn get_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_shape(op.child("ItemShape"))?;
    let msgs = per_item(op, "ItemIds", |id| match locate(ctx, id, false) {
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
    });
    Ok(response("GetItem", msgs))
}

/// The value of a comparison's `FieldURIOrConstant/Constant`; comparing two properties is not
/// implemented.
fn constant(e: &Element) -> Result<&str, Msg> {
    e.path(&["FieldURIOrConstant", "Constant"])
        .and_then(|k| k.attr("Value"))
        .ok_or_else(|| {
            err(
                "ErrorUnsupportedQueryFilter",
                format!(
                    "The sandbox compares properties with constants only ({}).",
                    e.name
                ),
            )
        })
}

/// An `xs:dateTime` with its zone (`Z` or an offset). Exchange reads a zoneless time in the
/// request's `TimeZoneContext`; the sandbox refuses it rather than guess.
fn parse_time(v: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.trim(), &Rfc3339).ok()
}

/// Adds one search expression to the listing query: `IsEqualTo`/`IsNotEqualTo` on
/// `message:IsRead`, comparisons on `item:DateTimeReceived`, and `And` of those.
fn restrict(e: &Element, q: &mut ListQuery) -> Result<(), Msg> {
    let path = || {
        e.child("FieldURI")
            .and_then(|f| f.attr("FieldURI"))
            .unwrap_or("")
    };
    let invalid = |what: &str| {
        err(
            "ErrorInvalidRestriction",
            format!("The restriction is invalid: {what}."),
        )
    };
    match e.name.as_str() {
        "And" => {
            if e.children.is_empty() {
                return Err(invalid("And has no expressions"));
            }
            e.children.iter().try_for_each(|c| restrict(c, q))
        }
        "IsEqualTo" | "IsNotEqualTo" if path() == "message:IsRead" => {
            let v = xs_bool(constant(e)?).ok_or_else(|| invalid("IsRead takes a boolean"))?;
            let v = v == (e.name == "IsEqualTo");
            if q.is_read.is_some_and(|old| old != v) {
                return Err(err(
                    "ErrorUnsupportedQueryFilter",
                    "The sandbox does not implement contradicting conditions on message:IsRead.",
                ));
            }
            q.is_read = Some(v);
            Ok(())
        }
        "IsEqualTo"
        | "IsGreaterThan"
        | "IsGreaterThanOrEqualTo"
        | "IsLessThan"
        | "IsLessThanOrEqualTo"
            if path() == "item:DateTimeReceived" =>
        {
            let v = constant(e)?;
            let t = parse_time(v)
                .ok_or_else(|| invalid(&format!("'{v}' is not an xs:dateTime with a zone (the sandbox does not read times in the TimeZoneContext)")))?;
            let slot = match e.name.as_str() {
                "IsGreaterThan" => &mut q.received_gt,
                "IsGreaterThanOrEqualTo" => &mut q.received_ge,
                "IsLessThan" => &mut q.received_lt,
                "IsLessThanOrEqualTo" => &mut q.received_le,
                _ => {
                    q.received_ge = Some(q.received_ge.map_or(t, |o| o.max(t)));
                    &mut q.received_le
                }
            };
            // Two bounds of one kind: the tighter one holds.
            *slot = Some(match (*slot, e.name.as_str()) {
                (Some(o), "IsGreaterThan" | "IsGreaterThanOrEqualTo") => o.max(t),
                (Some(o), _) => o.min(t),
                (None, _) => t,
            });
            Ok(())
        }
        "IsEqualTo"
        | "IsNotEqualTo"
        | "IsGreaterThan"
        | "IsGreaterThanOrEqualTo"
        | "IsLessThan"
        | "IsLessThanOrEqualTo"
        | "Exists"
        | "Contains"
        | "Excludes"
            if e.child("FieldURI").is_none() =>
        {
            Err(err(
                "ErrorUnsupportedPathForQuery",
                "The sandbox restricts on FieldURI message:IsRead and item:DateTimeReceived only (not extended or indexed properties).",
            ))
        }
        "IsEqualTo"
        | "IsNotEqualTo"
        | "IsGreaterThan"
        | "IsGreaterThanOrEqualTo"
        | "IsLessThan"
        | "IsLessThanOrEqualTo"
            if !matches!(path(), "message:IsRead" | "item:DateTimeReceived") =>
        {
            Err(err(
                "ErrorUnsupportedPathForQuery",
                format!("The sandbox does not implement restrictions on {}.", path()),
            ))
        }
        other => Err(err(
            "ErrorUnsupportedQueryFilter",
            format!(
                "The sandbox does not implement the search expression {other}{}.",
                if path().is_empty() {
                    String::new()
                } else {
                    format!(" on {}", path())
                }
            ),
        )),
    }
}

/// The sort order: one `FieldOrder` on `item:DateTimeReceived`, or none (newest first).
fn sort_order(op: &Element) -> Result<Order, Msg> {
    let Some(s) = op.child("SortOrder") else {
        return Ok(Order::ReceivedDesc);
    };
    let unsupported = |what: String| err("ErrorUnsupportedPathForSortGroup", what);
    let [f] = s.children.as_slice() else {
        return Err(unsupported(
            "The sandbox sorts by one FieldOrder (item:DateTimeReceived) only.".into(),
        ));
    };
    let path = f
        .child("FieldURI")
        .and_then(|u| u.attr("FieldURI"))
        .unwrap_or("");
    if path != "item:DateTimeReceived" {
        return Err(unsupported(format!(
            "The sandbox sorts by item:DateTimeReceived only, not '{path}'."
        )));
    }
    match f.attr("Order") {
        Some("Ascending") => Ok(Order::ReceivedAsc),
        Some("Descending") => Ok(Order::ReceivedDesc),
        other => Err(err(
            "ErrorInvalidRequest",
            format!("Invalid FieldOrder Order {other:?}."),
        )),
    }
}

/// The paging of a FindItem: an indexed or a fractional view, or none.
enum View {
    Indexed {
        max: usize,
        offset: usize,
        from_end: bool,
    },
    Fractional {
        max: usize,
        numerator: usize,
        denominator: usize,
    },
}

fn attr_num(v: &Element, name: &str) -> Result<Option<usize>, Fault> {
    v.attr(name)
        .map(|s| {
            s.trim().parse::<usize>().map_err(|_| {
                Fault::schema(format!("{} {name} '{s}' is not a valid number.", v.name))
            })
        })
        .transpose()
}

fn view(op: &Element) -> Result<Result<View, Msg>, Fault> {
    let max_of = |v: &Element| -> Result<usize, Fault> {
        Ok(attr_num(v, "MaxEntriesReturned")?.unwrap_or(1000).min(1000))
    };
    if let Some(v) = op.child("IndexedPageItemView") {
        let from_end = match v.attr("BasePoint") {
            Some("Beginning") => false,
            Some("End") => true,
            other => {
                return Err(Fault::schema(format!(
                    "IndexedPageItemView needs BasePoint Beginning or End, not {other:?}."
                )));
            }
        };
        let Some(offset) = attr_num(v, "Offset")? else {
            return Err(Fault::schema("IndexedPageItemView needs an Offset."));
        };
        return Ok(Ok(View::Indexed {
            max: max_of(v)?,
            offset,
            from_end,
        }));
    }
    if let Some(v) = op.child("FractionalPageItemView") {
        let (Some(numerator), Some(denominator)) =
            (attr_num(v, "Numerator")?, attr_num(v, "Denominator")?)
        else {
            return Err(Fault::schema(
                "FractionalPageItemView needs a Numerator and a Denominator.",
            ));
        };
        if denominator == 0 || numerator > denominator {
            return Ok(Err(err(
                "ErrorInvalidFractionalPagingParameters",
                "The fractional paging parameters are invalid.",
            )));
        }
        return Ok(Ok(View::Fractional {
            max: max_of(v)?,
            numerator,
            denominator,
        }));
    }
    if op.child("CalendarView").is_some() {
        return Ok(Err(err(
            "ErrorCalendarFolderIsInvalidForCalendarView",
            "The sandbox holds mail folders only: a CalendarView needs a calendar folder.",
        )));
    }
    if let Some(v) = op.children.iter().find(|c| {
        matches!(
            c.name.as_str(),
            "ContactsView" | "SeekToConditionPageItemView"
        )
    }) {
        return Ok(Err(err(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement the {} paging.", v.name),
        )));
    }
    Ok(Ok(View::Indexed {
        max: 1000,
        offset: 0,
        from_end: false,
    }))
}

pub(super) fn find_item(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let shape = parse_shape(op.child("ItemShape"))?;
    let traversal = op.attr("Traversal");
    if traversal.is_none() {
        return Err(Fault::schema("FindItem needs the Traversal attribute."));
    }
    let parents: Vec<&Element> = op
        .child("ParentFolderIds")
        .map(|p| p.children.iter().collect())
        .unwrap_or_default();
    if parents.is_empty() {
        return Err(Fault::schema("FindItem needs ParentFolderIds."));
    }
    let view = view(op)?;
    let mut q = ListQuery::default();
    let prepared = prepare(op, traversal, &mut q, view);
    let msgs = parents
        .iter()
        .map(|parent| {
            let (order, view) = match &prepared {
                Ok(p) => p,
                Err(refusal) => return repeated(refusal),
            };
            let r = match folder_ref(ctx, parent, false) {
                Ok(r) => r,
                Err(m) => return m,
            };
            // Associated (folder-associated) items: the sandbox's folders have none.
            let associated = traversal == Some("Associated");
            find_in(
                ctx, &r.mailbox, &r.folder, &q, *order, view, &shape, associated,
            )
        })
        .collect();
    Ok(response("FindItem", msgs))
}

/// Everything of a FindItem but its folders: refused parts (for every folder), the restriction
/// (into `q`), the sort order and the view.
fn prepare(
    op: &Element,
    traversal: Option<&str>,
    q: &mut ListQuery,
    view: Result<View, Msg>,
) -> Result<(Order, View), Msg> {
    if let Some(c) = op.children.iter().find(|c| {
        matches!(
            c.name.as_str(),
            "GroupBy" | "DistinguishedGroupBy" | "QueryString"
        )
    }) {
        return Err(err(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement FindItem's {}.", c.name),
        ));
    }
    if let Some(t) = traversal.filter(|t| !matches!(*t, "Shallow" | "Associated")) {
        return Err(err(
            "ErrorInvalidRequest",
            format!("The sandbox does not implement the {t} traversal of FindItem."),
        ));
    }
    if let Some(r) = op.child("Restriction") {
        let [e] = r.children.as_slice() else {
            return Err(err(
                "ErrorInvalidRestriction",
                "The restriction must hold exactly one search expression.",
            ));
        };
        restrict(e, q)?;
    }
    let order = sort_order(op)?;
    Ok((order, view?))
}

#[allow(clippy::too_many_arguments)]
fn find_in(
    ctx: &Ctx,
    mailbox: &str,
    folder: &str,
    q: &ListQuery,
    order: Order,
    view: &View,
    shape: &super::shape::Shape,
    associated: bool,
) -> Msg {
    // The total first for a fractional view (its offset is a fraction of the total).
    let (max, offset, from_end) = match *view {
        View::Indexed {
            max,
            offset,
            from_end,
        } => (max, offset, from_end),
        View::Fractional {
            max,
            numerator,
            denominator,
        } => {
            let probe = ListQuery {
                top: Some(0),
                ..q.clone()
            };
            let total = match ctx.state.store().list(mailbox, Some(folder), &probe) {
                Ok(p) => p.total,
                Err(e) => return store_err(&e),
            };
            (max, total * numerator / denominator, false)
        }
    };
    // Only the page is taken from the store (cloning every message of a large folder to slice
    // it showed in profiles). From the end: the same page, read in the opposite order.
    let lq = ListQuery {
        order: if from_end { order.reversed() } else { order },
        skip: offset,
        top: Some(if associated { 0 } else { max }),
        ..q.clone()
    };
    let mut page = match ctx.state.store().list(mailbox, Some(folder), &lq) {
        Ok(p) => p,
        Err(e) => return store_err(&e),
    };
    if associated {
        page.items.clear();
        page.total = 0;
    }
    let total = page.total;
    let (start, end) = if from_end {
        page.items.reverse();
        let end = total.saturating_sub(offset);
        (end.saturating_sub(max), end)
    } else {
        (offset.min(total), (offset + max).min(total))
    };
    let mut w = Writer::new();
    let last = if from_end { start == 0 } else { end >= total };
    let total_s = total.to_string();
    let last_s = if last { "true" } else { "false" };
    match *view {
        View::Fractional { .. } => {
            let (num, den) = (end.to_string(), total.max(1).to_string());
            w.start(
                "m:RootFolder",
                &[
                    ("NumeratorOffset", &num),
                    ("AbsoluteDenominator", &den),
                    ("TotalItemsInView", &total_s),
                    ("IncludesLastItemInRange", last_s),
                ],
            );
        }
        View::Indexed { .. } => {
            let next = end.to_string();
            w.start(
                "m:RootFolder",
                &[
                    ("IndexedPagingOffset", &next),
                    ("TotalItemsInView", &total_s),
                    ("IncludesLastItemInRange", last_s),
                ],
            );
        }
    }
    w.start("t:Items", &[]);
    for m in &page.items {
        write_item(&mut w, m, shape);
    }
    w.end();
    w.end();
    Msg::Ok(w.finish())
}
