//! Per-folder delta queries: `mailFolders/{folder}/messages/delta` with skip and delta tokens,
//! `$select`, `$top` and `Prefer: odata.maxpagesize` (page size), `$filter` on
//! `receivedDateTime ge|gt` (the only filter Graph documents for message delta; removals are
//! always reported) and `changeType` (`created`, `updated` or `deleted`), all carried into the
//! next and delta links. Bodies come in the kind `Prefer: outlook.body-content-type` asks for.

use serde_json::{Value, json};

use super::shared::{Op, collection, link, select};
use crate::graph::{GReq, GResp, error, render};
use crate::state::AppState;
use crate::store::ChangeKind;

pub(super) fn delta(st: &AppState, req: &GReq, mailbox: &str, folder: &str) -> Op {
    let sel = match select(req) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let gone = || {
        Ok(error(
            410,
            "syncStateNotFound",
            "The sync state generation is not found. Please do a full sync.",
        ))
    };
    let current = st.store().current_seq();
    let (since, upto, offset) = if let Some(t) = req.param("$deltatoken") {
        match t.parse::<u64>() {
            Ok(s) if s <= current => (s, current, 0usize),
            _ => return gone(),
        }
    } else if let Some(t) = req.param("$skiptoken") {
        let parts: Vec<&str> = t.split('.').collect();
        match parts.as_slice() {
            [a, b, c] => match (a.parse::<u64>(), b.parse::<u64>(), c.parse::<usize>()) {
                (Ok(a), Ok(b), Ok(c)) if a <= b && b <= current => (a, b, c),
                _ => return gone(),
            },
            _ => return gone(),
        }
    } else {
        (0, current, 0)
    };
    let max_page = req.prefers().iter().find_map(|p| {
        p.strip_prefix("odata.maxpagesize=")
            .and_then(|n| n.parse::<usize>().ok())
    });
    let top = match req.param("$top").map(|t| t.parse::<usize>()) {
        None => None,
        Some(Ok(t)) if t >= 1 => Some(t),
        Some(_) => return Ok(error(400, "BadRequest", "Invalid $top.")),
    };
    let size = top.or(max_page).unwrap_or(10).clamp(1, 1000);
    let applied = max_page
        .filter(|_| top.is_none())
        .map(|_| format!("odata.maxpagesize={size}"));
    let kind = match req.body_kind() {
        Ok(k) => k.unwrap_or(crate::bodies::BodyKind::Best),
        Err(r) => return Ok(r),
    };
    // `$filter`: `receivedDateTime ge|gt {time}` only.
    let received_from = match req.param("$filter") {
        None => None,
        Some(f) => {
            let t: Vec<&str> = f.split_whitespace().collect();
            let parsed = match t.as_slice() {
                [p, op @ ("ge" | "gt"), v] if p.eq_ignore_ascii_case("receivedDateTime") => {
                    time::OffsetDateTime::parse(
                        v.trim_matches('\''),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .ok()
                    .map(|t| (t, *op == "gt"))
                }
                _ => None,
            };
            match parsed {
                Some(p) => Some(p),
                None => {
                    return Ok(error(
                        400,
                        "ErrorInvalidUrlQueryFilter",
                        &format!(
                            "The filter '{f}' is not supported with change tracking over messages: only receivedDateTime ge|gt {{date-time}}."
                        ),
                    ));
                }
            }
        }
    };
    let change_type = match req.param("changeType").map(|c| c.to_ascii_lowercase()) {
        None => None,
        Some(c) => match c.as_str() {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "deleted" => Some(ChangeKind::Deleted),
            _ => {
                return Ok(error(
                    400,
                    "BadRequest",
                    &format!("Invalid changeType '{c}': it must be created, updated or deleted."),
                ));
            }
        },
    };
    let changes: Vec<_> = st
        .store()
        .changes_since(mailbox, folder, since)?
        .changes
        .into_iter()
        .filter(|c| c.seq <= upto)
        .filter(|c| change_type.is_none_or(|k| k == c.kind))
        .filter(|c| match (&c.message, received_from) {
            (Some(m), Some((t, strict))) => {
                if strict {
                    m.received > t
                } else {
                    m.received >= t
                }
            }
            _ => true,
        })
        .collect();
    let imm = req.immutable_ids();
    let value: Vec<Value> = changes
        .iter()
        .skip(offset)
        .take(size)
        .map(|c| match &c.message {
            Some(m) => {
                let mut v = render::message_as(m, imm, sel.as_deref(), kind);
                v["@odata.type"] = json!("#microsoft.graph.message");
                v
            }
            None => json!({
                "@odata.type": "#microsoft.graph.message",
                "id": if imm { &c.immutable_id } else { &c.id },
                "@removed": { "reason": "deleted" },
            }),
        })
        .collect();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for name in ["$select", "$top", "$filter", "changeType"] {
        if let Some(v) = req.param(name) {
            pairs.push((name.into(), v));
        }
    }
    let mut out = collection(
        format!("{}/v1.0/$metadata#Collection(message)", st.base_url()),
        value,
    );
    if offset + size < changes.len() {
        pairs.push((
            "$skiptoken".into(),
            format!("{since}.{upto}.{}", offset + size),
        ));
        out["@odata.nextLink"] = json!(link(req, &pairs));
    } else {
        pairs.push(("$deltatoken".into(), upto.to_string()));
        out["@odata.deltaLink"] = json!(link(req, &pairs));
    }
    let r = GResp::json(200, out);
    Ok(match applied {
        Some(p) => r.header("Preference-Applied", p),
        None => r,
    })
}
