//! Messages: list (`$filter`, `$orderby`, `$top`, `$skip`, `$count`, `$select`), get
//! (`$select`), `PATCH` (`isRead`) and move, with bodies in the kind `Prefer:
//! outlook.body-content-type` asks for (answered with `Preference-Applied`).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::query;
use super::shared::{
    Op, action_param, bad, collection, context, json_body, link, not_supported, only_params,
    select, unknown_property,
};
use crate::bodies::BodyKind;
use crate::graph::{GReq, GResp, error, render};
use crate::state::AppState;
use crate::store::{ListQuery, Order};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prop {
    IsRead,
    Received,
}

fn parse_time(v: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.trim_matches('\''), &Rfc3339).ok()
}

/// Parses `$filter` (conjunctions of `isRead eq|ne bool` and `receivedDateTime op datetime`)
/// into the query, returning the properties in filter order.
fn parse_filter(f: &str, q: &mut ListQuery) -> Result<Vec<Prop>, String> {
    let mut props = Vec::new();
    let lower = f.replace(" AND ", " and ");
    for term in lower.split(" and ") {
        let t: Vec<&str> = term.split_whitespace().collect();
        let [prop, op, value] = t.as_slice() else {
            return Err(format!("Invalid filter clause: '{term}'."));
        };
        match (prop.to_ascii_lowercase().as_str(), *op) {
            ("isread", "eq" | "ne") => {
                let v = match *value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("Invalid filter clause: '{term}'.")),
                };
                q.is_read = Some(if *op == "eq" { v } else { !v });
                props.push(Prop::IsRead);
            }
            ("receiveddatetime", op) => {
                let t = parse_time(value)
                    .ok_or_else(|| format!("Invalid date-time in filter: '{value}'."))?;
                match op {
                    "ge" => q.received_ge = Some(t),
                    "gt" => q.received_gt = Some(t),
                    "le" => q.received_le = Some(t),
                    "lt" => q.received_lt = Some(t),
                    "eq" => {
                        q.received_ge = Some(t);
                        q.received_le = Some(t);
                    }
                    _ => return Err(format!("Invalid filter clause: '{term}'.")),
                }
                props.push(Prop::Received);
            }
            _ => return Err(format!("Invalid filter clause: '{term}'.")),
        }
    }
    Ok(props)
}

/// What a message answer shows: the `$select`ed properties and the body kind `Prefer` asks
/// for, with the `Preference-Applied` value that goes back.
type AnswerShape = (Option<Vec<String>>, BodyKind, Option<String>);

fn answer_shape(req: &GReq) -> Result<AnswerShape, GResp> {
    let sel = select(req)?;
    let (kind, applied) = body_pref(req)?;
    Ok((sel, kind, applied))
}

/// The body kind asked for, and the `Preference-Applied` header that says so.
fn body_pref(req: &GReq) -> Result<(BodyKind, Option<String>), GResp> {
    Ok(match req.body_kind()? {
        None => (BodyKind::Best, None),
        Some(k) => (
            k,
            Some(format!(
                "outlook.body-content-type=\"{}\"",
                if k == BodyKind::Text { "text" } else { "html" }
            )),
        ),
    })
}

fn with_pref(r: GResp, applied: Option<String>) -> GResp {
    match applied {
        Some(p) => r.header("Preference-Applied", p),
        None => r,
    }
}

pub(super) fn list(st: &AppState, req: &GReq, mailbox: &str, folder: Option<&str>) -> Op {
    let (sel, kind, applied) = match answer_shape(req) {
        Ok(shape) => shape,
        Err(r) => return Ok(r),
    };
    let count = match query::count(req) {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let mut q = ListQuery::default();
    let filter_props = match req.param("$filter") {
        Some(f) => match parse_filter(&f, &mut q) {
            Ok(p) => p,
            Err(m) => return bad(&m),
        },
        None => Vec::new(),
    };
    if let Some(o) = req.param("$orderby") {
        let t: Vec<&str> = o.split_whitespace().collect();
        let (prop, dir) = match t.as_slice() {
            [p] => (*p, "asc"),
            [p, d] => (*p, *d),
            _ => return bad("Invalid $orderby."),
        };
        if !prop.eq_ignore_ascii_case("receivedDateTime") {
            return bad(&format!(
                "The sandbox sorts by receivedDateTime only, not '{prop}'."
            ));
        }
        q.order = match dir.to_ascii_lowercase().as_str() {
            "asc" => Order::ReceivedAsc,
            "desc" => Order::ReceivedDesc,
            _ => return bad("Invalid $orderby direction."),
        };
        // Graph: every $orderby property must come first in $filter, in the same order.
        if !filter_props.is_empty() && filter_props[0] != Prop::Received {
            return Ok(error(
                400,
                "InefficientFilter",
                "The restriction or sort order is too complex for this operation.",
            ));
        }
    }
    let (top, skip) = match query::paging(req) {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    q.skip = skip;
    q.top = Some(top);
    let page = st.store().list(mailbox, folder, &q)?;
    let imm = req.immutable_ids();
    let value: Vec<Value> = page
        .items
        .iter()
        .map(|m| render::message_as(m, imm, sel.as_deref(), kind))
        .collect();
    let mut out = collection(context(st, mailbox, "messages"), value);
    if count {
        out["@odata.count"] = json!(page.total);
    }
    if skip + page.items.len() < page.total {
        let mut pairs: Vec<(String, String)> = req
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skip"))
            .collect();
        pairs.push(("$skip".into(), (skip + page.items.len()).to_string()));
        out["@odata.nextLink"] = json!(link(req, &pairs));
    }
    Ok(with_pref(GResp::json(200, out), applied))
}

pub(super) fn get(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let (sel, kind, applied) = match answer_shape(req) {
        Ok(shape) => shape,
        Err(r) => return Ok(r),
    };
    let m = st.store().get(mailbox, id)?;
    Ok(with_pref(
        GResp::json(
            200,
            render::message_as(&m, req.immutable_ids(), sel.as_deref(), kind),
        ),
        applied,
    ))
}

/// Checks a `PATCH` body: `isRead` is applied; the other properties of a message are refused
/// (`notSupported`), names a message does not have are `RequestBodyRead`.
fn patch_fields(body: &Value) -> Result<(), GResp> {
    let Some(o) = body.as_object() else {
        return Err(error(
            400,
            "BadRequest",
            "The request body must be a JSON object.",
        ));
    };
    for (k, v) in o {
        match k.as_str() {
            "isRead" => {}
            "@odata.type" if super::shared::is_type(v, "message") => {}
            k if render::MESSAGE_PROPS.contains(&k)
                || super::message_json::OTHER_PROPS.contains(&k) =>
            {
                return Err(not_supported(&format!(
                    "updating the message property '{k}'"
                )));
            }
            k => return Err(unknown_property(k, "message")),
        }
    }
    Ok(())
}

pub(super) fn patch(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let sel = match select(req) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    if let Err(r) = patch_fields(&body) {
        return Ok(r);
    }
    let m = match body.get("isRead") {
        Some(Value::Bool(b)) => st
            .store()
            .set_read(mailbox, id, *b, None, st.clock().now())?,
        Some(_) => return bad("isRead must be a boolean."),
        None => st.store().get(mailbox, id)?,
    };
    Ok(GResp::json(
        200,
        render::message(&m, req.immutable_ids(), sel.as_deref()),
    ))
}

pub(super) fn move_message(st: &AppState, req: &GReq, mailbox: &str, id: &str) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    if let Err(r) = only_params(&body, &["destinationId"], "move") {
        return Ok(r);
    }
    let Some(dest) = action_param(&body, "destinationId").and_then(Value::as_str) else {
        return bad("destinationId is required.");
    };
    // The destination must exist before the item is looked at (Graph: ErrorItemNotFound either
    // way, but a missing folder must not move anything).
    st.store().folder(mailbox, dest)?;
    let m = st.store().move_to(mailbox, id, dest, st.clock().now())?;
    Ok(GResp::json(
        201,
        render::message(&m, req.immutable_ids(), None),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_refuse() {
        let mut q = ListQuery::default();
        let p = parse_filter(
            "receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false",
            &mut q,
        )
        .unwrap();
        assert!(p == vec![Prop::Received, Prop::IsRead]);
        assert_eq!(q.is_read, Some(false));
        assert!(q.received_ge.is_some());
        assert!(parse_filter("subject eq 'x'", &mut q).is_err());
        assert!(parse_filter("isRead eq maybe", &mut q).is_err());
        assert!(parse_filter("receivedDateTime ge yesterday", &mut q).is_err());
    }
}
