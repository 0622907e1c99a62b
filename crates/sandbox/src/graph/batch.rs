//! JSON batching: `POST /v1.0/$batch` with up to 20 requests, `dependsOn`, and inner statuses
//! (each inner request is admitted and throttled on its own; a failed dependency gives 424).
//!
//! As Graph counts them, each item is one request against the app's and mailbox's limits: it
//! takes a concurrency slot while it runs and one unit of the window's budget, and is
//! answered 429 inside the batch when either is used up; the envelope itself costs nothing.
//! Each item is also counted in the request log ([`crate::reqlog`]'s `batch_items`). As Graph
//! documents for Outlook resources, up to [`PARALLEL_ITEMS`] items of a batch without
//! `dependsOn` run at once (each holding its own concurrency slot, so items beyond the mailbox's
//! free slots are answered 429 inside the batch); a batch with `dependsOn` runs one item at a
//! time.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value, json};

use super::{GBody, GReq, GResp, authenticated, dispatch, error};
use crate::state::AppState;

/// Most requests in one batch.
const MAX: usize = 20;

pub(super) async fn handle(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let st = &st;
    authenticated(st, headers, |who, headers| async move {
        run(st, &who, &headers, &body).await
    })
    .await
}

struct Item {
    id: String,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
    depends_on: Vec<String>,
}

fn parse(outer: &HeaderMap, body: &[u8]) -> Result<Vec<Item>, GResp> {
    let bad = |m: &str| error(400, "BadRequest", m);
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("Invalid batch payload format."))?;
    let reqs = v
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("Invalid batch payload format."))?;
    if reqs.is_empty() || reqs.len() > MAX {
        return Err(bad(&format!(
            "Number of batch requests must be between 1 and {MAX}; got {}.",
            reqs.len()
        )));
    }
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for r in reqs {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("Batch request id is missing."))?;
        // A member Graph's batch format does not have is refused, never skipped; except
        // msgraph-core's `depends_on`, which Graph serves without applying it (as here), so
        // that the official Python SDK's batches work.
        if let Some(k) = r.as_object().and_then(|o| {
            o.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "id" | "method" | "url" | "headers" | "body" | "dependsOn" | "depends_on"
                )
            })
        }) {
            return Err(bad(&format!(
                "Batch request '{id}' has the property '{k}', which the batch format does not have."
            )));
        }
        if !ids.insert(id.to_string()) {
            return Err(bad(&format!("Batch request id '{id}' is not unique.")));
        }
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or_else(|| bad("Batch request method is missing or invalid."))?;
        let url = r
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("Batch request url is missing."))?;
        let mut headers = HeaderMap::new();
        // The outer request's preferences apply to every item unless it sets its own.
        for v in outer.get_all("prefer") {
            headers.append("prefer", v.clone());
        }
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    if n == "prefer" {
                        headers.remove("prefer");
                    }
                    headers.append(n, v);
                }
            }
        }
        let body = match r.get("body") {
            None | Some(Value::Null) => Bytes::new(),
            Some(b) => {
                if !headers.contains_key(http::header::CONTENT_TYPE) {
                    return Err(bad(&format!(
                        "Batch request '{id}' has a body but no Content-Type header."
                    )));
                }
                match b {
                    Value::String(s)
                        if !headers
                            .get(http::header::CONTENT_TYPE)
                            .is_some_and(|c| c.to_str().unwrap_or("").contains("json")) =>
                    {
                        Bytes::from(
                            base64::engine::general_purpose::STANDARD
                                .decode(s)
                                .map_err(|_| bad("Batch request body is not base64."))?,
                        )
                    }
                    other => Bytes::from(other.to_string()),
                }
            }
        };
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let depends_on = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        out.push(Item {
            id: id.to_string(),
            method,
            url: url.to_string(),
            headers,
            body,
            depends_on,
        });
    }
    for i in &out {
        if let Some(d) = i.depends_on.iter().find(|d| !ids.contains(*d)) {
            return Err(bad(&format!(
                "Batch request '{}' depends on unknown request '{d}'.",
                i.id
            )));
        }
    }
    Ok(out)
}

/// Items of a batch without `dependsOn` that Graph runs at once on Outlook resources (the
/// per-mailbox concurrency limit; protocol.md §2.10).
pub(crate) const PARALLEL_ITEMS: usize = 4;

/// An item's answer being made.
type ItemFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (usize, GResp)> + Send + 'a>>;

/// The answer to one item whose dependencies are done (`failed_dep`: one of them failed).
async fn answer(
    st: &AppState,
    who: &crate::auth::Principal,
    outer: &HeaderMap,
    item: &Item,
    failed_dep: bool,
) -> GResp {
    if failed_dep {
        return error(
            424,
            "FailedDependency",
            "The request failed because a request it depends on failed.",
        );
    }
    let (path, query) = match item.url.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (item.url.clone(), None),
    };
    let path = path
        .strip_prefix("/v1.0")
        .map(str::to_string)
        .unwrap_or(path);
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let req = GReq {
        method: item.method.clone(),
        path,
        query,
        headers: item.headers.clone(),
        body: item.body.clone(),
        base: crate::graph::request_base(st, outer),
    };
    dispatch(st, who, &req).await
}

async fn run(st: &AppState, who: &crate::auth::Principal, outer: &HeaderMap, body: &[u8]) -> GResp {
    let items = match parse(outer, body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    // Graph runs a batch's items in parallel unless one depends on another.
    let parallel = if items.iter().any(|i| !i.depends_on.is_empty()) {
        1
    } else {
        PARALLEL_ITEMS
    };
    let mut status: HashMap<String, u16> = HashMap::new();
    let mut responses: Vec<Value> = Vec::new();
    // Run items whose dependencies are done, until all are (or a cycle remains).
    let mut left: Vec<&Item> = items.iter().collect();
    while !left.is_empty() {
        let (ready, rest): (Vec<&Item>, Vec<&Item>) = left
            .into_iter()
            .partition(|it| it.depends_on.iter().all(|d| status.contains_key(d)));
        left = rest;
        if ready.is_empty() {
            return error(
                400,
                "BadRequest",
                "Batch requests have circular dependencies.",
            );
        }
        let failed: Vec<bool> = ready
            .iter()
            .map(|item| {
                item.depends_on
                    .iter()
                    .any(|d| status.get(d).is_some_and(|s| *s >= 400))
            })
            .collect();
        // Started in the order of the batch, `parallel` at a time: each item that ends makes
        // room for the next at once (a pool, not rounds: a slow item does not hold back the
        // start of those after it). Answers are put back in the batch's order. (The futures
        // are boxed and collected first: a stream mapping borrowed items to futures is not
        // `Send` for axum.)
        use futures_util::StreamExt as _;
        let futures: Vec<ItemFuture<'_>> = ready
            .iter()
            .zip(failed)
            .enumerate()
            .map(|(i, (item, f))| {
                Box::pin(async move { (i, answer(st, who, outer, item, f).await) })
                    as ItemFuture<'_>
            })
            .collect();
        let mut answers: Vec<(usize, GResp)> = futures_util::stream::iter(futures)
            .buffer_unordered(parallel)
            .collect()
            .await;
        answers.sort_by_key(|(i, _)| *i);
        let answers = answers.into_iter().map(|(_, r)| r);
        for (item, r) in ready.into_iter().zip(answers) {
            st.reqlog()
                .record_batch_item(item.method.as_str(), &item.url, r.status);
            status.insert(item.id.clone(), r.status);
            responses.push(render(&item.id, r));
        }
    }
    // Moved in, not `json!`: that would serialize a copy of every answer (the MIME of a batch).
    let mut out = Map::new();
    out.insert("responses".into(), Value::Array(responses));
    GResp::json(200, Value::Object(out))
}

fn render(id: &str, r: GResp) -> Value {
    let mut headers = Map::new();
    for (k, v) in &r.headers {
        headers.insert(k.clone(), json!(v));
    }
    let (status, body) = match r.body {
        GBody::Empty => (r.status, Value::Null),
        GBody::Json(mut v) => {
            headers.insert("Content-Type".into(), json!("application/json"));
            if let Some(Value::Object(e)) = v.get_mut("error") {
                e.insert(
                    "innerError".into(),
                    json!({ "request-id": uuid::Uuid::new_v4().to_string() }),
                );
            }
            (r.status, v)
        }
        GBody::Text(b) => {
            headers.insert("Content-Type".into(), json!("text/plain"));
            (
                r.status,
                Value::String(base64::engine::general_purpose::STANDARD.encode(&b)),
            )
        }
        // A connection cannot be reset inside a batch: the item fails as unavailable.
        GBody::Reset => {
            headers.insert("Content-Type".into(), json!("application/json"));
            (
                503,
                json!({ "error": { "code": "ServiceUnavailable", "message": "Service Unavailable" } }),
            )
        }
    };
    let mut v = json!({ "id": id, "status": status, "headers": headers });
    if !body.is_null() {
        v["body"] = body;
    }
    v
}
