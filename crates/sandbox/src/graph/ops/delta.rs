//! Per-folder delta queries: `mailFolders/{folder}/messages/delta` with skip and delta tokens.

use serde_json::{Value, json};

use super::shared::{Op, collection, link, select};
use crate::graph::{GReq, GResp, error, render};
use crate::state::AppState;

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
    let size = req
        .prefers()
        .iter()
        .find_map(|p| {
            p.strip_prefix("odata.maxpagesize=")
                .and_then(|n| n.parse::<usize>().ok())
        })
        .unwrap_or(10)
        .clamp(1, 1000);
    let changes: Vec<_> = st
        .store()
        .changes_since(mailbox, folder, since)?
        .changes
        .into_iter()
        .filter(|c| c.seq <= upto)
        .collect();
    let imm = req.immutable_ids();
    let value: Vec<Value> = changes
        .iter()
        .skip(offset)
        .take(size)
        .map(|c| match &c.message {
            Some(m) => {
                let mut v = render::message(m, imm, sel.as_deref());
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
    if let Some(s) = req.param("$select") {
        pairs.push(("$select".into(), s));
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
    Ok(GResp::json(200, out))
}
