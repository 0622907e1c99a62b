//! The request log: how many requests each endpoint (method + route template) got, per status.
//!
//! Filled by a middleware on the main router (admin routes under `/_sandbox` are not counted) and
//! by the SMTP listener (method `SMTP`, path `DATA`, status 250/5xx). Read it with
//! [`crate::Sandbox::request_log`] or `GET /_sandbox/requests`.
//!
//! EWS has one URL for every operation, so EWS requests are also counted per SOAP operation
//! (`POST /EWS/Exchange.asmx FindItem`) in [`RequestLogSnapshot::operations`]; token requests are
//! counted by [`RequestLogSnapshot::token_requests`].
//!
//! Graph counts each request inside a `$batch` against the app's and mailbox's limits as one
//! request (the `$batch` POST itself is only the envelope), so the items are counted too, per
//! method and route template, in [`RequestLogSnapshot::batch_items`];
//! [`RequestLogSnapshot::graph_requests_as_counted`] is what Graph's limits see.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::locks::lock;

/// The `path` recorded for requests that matched no route.
pub const UNMATCHED: &str = "(unmatched)";

/// The `operation` recorded for EWS requests whose SOAP body names no operation we could read,
/// and for operation names past [`MAX_OPERATIONS`] distinct ones.
pub const OTHER_OPERATION: &str = "(other)";

/// How many distinct EWS operation names the log keeps apart (hostile bodies cannot grow it).
pub const MAX_OPERATIONS: usize = 64;

/// The largest EWS request body the middleware buffers to read the operation name (the EWS
/// endpoint's own limit is the same); larger bodies are answered 413.
const MAX_EWS_BODY: usize = 64 * 1024 * 1024;

/// How many distinct `$batch` item templates the log keeps apart; past it, new ones are pooled
/// as [`OTHER_OPERATION`] (hostile batches cannot grow it).
pub const MAX_BATCH_TEMPLATES: usize = 64;

/// The segments of a Graph path under a mailbox that are names, not ids, in a `$batch` item's
/// route template.
const GRAPH_LITERALS: &[&str] = &[
    "mailFolders",
    "childFolders",
    "messages",
    "delta",
    "delta()",
    "$value",
    "move",
    "copy",
    "send",
    "sendMail",
    "attachments",
    "createUploadSession",
];

type OpKey = (String, String, String, u16);

/// Counts per endpoint and status.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    counts: Mutex<BTreeMap<(String, String, u16), u64>>,
    operations: Mutex<BTreeMap<OpKey, u64>>,
    batch_items: Mutex<BTreeMap<(String, String, u16), u64>>,
}

/// One row of [`RequestLogSnapshot::operations`]: requests of one EWS SOAP operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OperationCount {
    /// HTTP method (`POST`).
    pub method: String,
    /// Route template (`/EWS/Exchange.asmx`).
    pub path: String,
    /// The SOAP operation: the first element in the SOAP `Body` (`FindItem`, `GetItem`, ...),
    /// or [`OTHER_OPERATION`].
    pub operation: String,
    /// Response status.
    pub status: u16,
    /// Number of requests.
    pub count: u64,
}

/// One row of a [`RequestLogSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EndpointCount {
    /// HTTP method (or `SMTP`).
    pub method: String,
    /// Route template, e.g. `/v1.0/users/{user}/messages`, or [`UNMATCHED`].
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Number of requests.
    pub count: u64,
}

/// A copy of the request log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RequestLogSnapshot {
    /// Rows ordered by method, path, status.
    pub entries: Vec<EndpointCount>,
    /// EWS requests split by SOAP operation, ordered by method, path, operation, status. Each
    /// request here is also counted once in `entries`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<OperationCount>,
    /// The requests inside Graph `$batch` POSTs, per method, route template as the item
    /// named it (`/users/{user}/messages/{id}/$value`) and the item's own status; ordered by
    /// method, path, status. The `$batch` POST carrying them is counted once in `entries`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub batch_items: Vec<EndpointCount>,
}

impl RequestLogSnapshot {
    /// Total number of requests.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.count).sum()
    }

    /// Requests to `method` + `path` (route template), any status.
    pub fn count(&self, method: &str, path: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.method.eq_ignore_ascii_case(method) && e.path == path)
            .map(|e| e.count)
            .sum()
    }

    /// Requests answered with `status`, any endpoint.
    pub fn count_status(&self, status: u16) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.status == status)
            .map(|e| e.count)
            .sum()
    }

    /// EWS requests of SOAP operation `operation` (e.g. `FindItem`), any status.
    pub fn count_operation(&self, operation: &str) -> u64 {
        self.operations
            .iter()
            .filter(|e| e.operation == operation)
            .map(|e| e.count)
            .sum()
    }

    /// Requests to the token endpoints (`/{tenant}/oauth2/v2.0/token` and the v1
    /// `/{tenant}/oauth2/token`), any status.
    pub fn token_requests(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| is_token_path(&e.path))
            .map(|e| e.count)
            .sum()
    }

    /// Requests whose route template starts with `prefix` (e.g. `/v1.0`).
    pub fn count_prefix(&self, prefix: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.path.starts_with(prefix))
            .map(|e| e.count)
            .sum()
    }

    /// Requests inside `$batch` POSTs, any status.
    pub fn batch_item_total(&self) -> u64 {
        self.batch_items.iter().map(|e| e.count).sum()
    }

    /// Graph requests as Graph's throttling counts them: every Graph request except the
    /// `$batch` envelopes, plus every item inside them; any status.
    pub fn graph_requests_as_counted(&self) -> u64 {
        self.count_prefix("/v1.0") - self.count("POST", BATCH_PATH) + self.batch_item_total()
    }
}

/// The route template of Graph's `$batch` endpoint.
pub const BATCH_PATH: &str = "/v1.0/$batch";

/// The route template of a `$batch` item's URL (relative, with or without `/v1.0`, query
/// dropped): the mailbox becomes `{user}` (or stays `/me`), and every segment after it that is
/// not one of Graph's resource or action names becomes `{id}`.
pub(crate) fn batch_item_template(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix("/v1.0").unwrap_or(path);
    let mut segs = path.trim_start_matches('/').split('/');
    let mut out = String::new();
    match segs.next() {
        Some("users") => {
            out.push_str("/users/{user}");
            segs.next();
        }
        Some("me") => out.push_str("/me"),
        _ => return UNMATCHED.to_string(),
    }
    for seg in segs {
        out.push('/');
        out.push_str(if GRAPH_LITERALS.contains(&seg) {
            seg
        } else {
            "{id}"
        });
    }
    out
}

fn is_token_path(path: &str) -> bool {
    path.ends_with("/oauth2/v2.0/token") || path.ends_with("/oauth2/token")
}

impl RequestLog {
    /// Records one request.
    pub(crate) fn record(&self, method: &str, path: &str, status: u16) {
        *lock(&self.counts)
            .entry((method.to_string(), path.to_string(), status))
            .or_insert(0) += 1;
    }

    /// Records one EWS request of SOAP operation `operation` (also counted by [`Self::record`]).
    /// Past [`MAX_OPERATIONS`] distinct names, new names are pooled as [`OTHER_OPERATION`].
    pub(crate) fn record_operation(&self, method: &str, path: &str, operation: &str, status: u16) {
        let mut ops = lock(&self.operations);
        let known = operation == OTHER_OPERATION || ops.keys().any(|k| k.2 == operation);
        let distinct = if known {
            0
        } else {
            ops.keys()
                .map(|k| k.2.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        let op = if known || distinct < MAX_OPERATIONS {
            operation
        } else {
            OTHER_OPERATION
        };
        *ops.entry((method.to_string(), path.to_string(), op.to_string(), status))
            .or_insert(0) += 1;
    }

    /// Records one request inside a Graph `$batch` (its URL as the item gave it, its status).
    /// Past [`MAX_BATCH_TEMPLATES`] distinct templates, new ones are pooled as
    /// [`OTHER_OPERATION`].
    pub(crate) fn record_batch_item(&self, method: &str, url: &str, status: u16) {
        let template = batch_item_template(url);
        let mut items = lock(&self.batch_items);
        let known = items.keys().any(|k| k.1 == template);
        let path = if known
            || items
                .keys()
                .map(|k| k.1.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                < MAX_BATCH_TEMPLATES
        {
            template
        } else {
            OTHER_OPERATION.to_string()
        };
        *items.entry((method.to_string(), path, status)).or_insert(0) += 1;
    }

    /// A copy of the counts.
    pub(crate) fn snapshot(&self) -> RequestLogSnapshot {
        RequestLogSnapshot {
            entries: endpoint_counts(&self.counts),
            operations: lock(&self.operations)
                .iter()
                .map(|((m, p, o, s), c)| OperationCount {
                    method: m.clone(),
                    path: p.clone(),
                    operation: o.clone(),
                    status: *s,
                    count: *c,
                })
                .collect(),
            batch_items: endpoint_counts(&self.batch_items),
        }
    }

    /// Forgets everything counted so far.
    pub(crate) fn clear(&self) {
        lock(&self.counts).clear();
        lock(&self.operations).clear();
        lock(&self.batch_items).clear();
    }
}

/// The SOAP operation of an EWS request body: the local name of the first element inside the
/// SOAP `Body`, if it is a plausible operation name (ASCII letters, at most 64). quick-xml reads
/// only up to that element.
pub(crate) fn ews_operation(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut in_body = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                let name = name.as_ref();
                if in_body {
                    let valid = !name.is_empty()
                        && name.len() <= 64
                        && name.iter().all(|b| b.is_ascii_alphabetic());
                    return valid.then(|| String::from_utf8_lossy(name).into_owned());
                }
                if name == b"Body" {
                    in_body = true;
                }
            }
            Ok(Event::End(e)) if in_body && e.local_name().as_ref() == b"Body" => return None,
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
        buf.clear();
    }
}

fn is_ews_path(path: &str) -> bool {
    path.eq_ignore_ascii_case("/EWS/Exchange.asmx")
}

/// Middleware recording each request's method, route template and final status.
pub(crate) async fn middleware(
    State(log): State<Arc<RequestLog>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let req_path_is_admin = req.uri().path().starts_with("/_sandbox");
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        // Unmatched paths are pooled so a scan of random URLs cannot grow the log without bound.
        .unwrap_or_else(|| UNMATCHED.to_string());
    // EWS: read the body once to learn the SOAP operation, then hand it on unchanged.
    let (req, operation) = if method == "POST" && is_ews_path(&path) {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, MAX_EWS_BODY).await {
            Ok(bytes) => {
                let op = ews_operation(&bytes).unwrap_or_else(|| OTHER_OPERATION.to_string());
                (
                    Request::from_parts(parts, axum::body::Body::from(bytes)),
                    Some(op),
                )
            }
            Err(_) => {
                log.record(&method, &path, 413);
                log.record_operation(&method, &path, OTHER_OPERATION, 413);
                return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
            }
        }
    } else {
        (req, None)
    };
    let resp = next.run(req).await;
    if !path.starts_with("/_sandbox") && !req_path_is_admin {
        let status = resp.status().as_u16();
        log.record(&method, &path, status);
        if let Some(op) = operation {
            log.record_operation(&method, &path, &op, status);
        }
    }
    resp
}

/// The counts of `map` (method, path template, status) as the snapshot lists them.
fn endpoint_counts(map: &Mutex<BTreeMap<(String, String, u16), u64>>) -> Vec<EndpointCount> {
    lock(map)
        .iter()
        .map(|((m, p, s), c)| EndpointCount {
            method: m.clone(),
            path: p.clone(),
            status: *s,
            count: *c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_operation_inside_the_soap_body() {
        let body = br#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header><soap:Body><m:FindItem Traversal="Shallow"><m:ItemShape/></m:FindItem></soap:Body></soap:Envelope>"#;
        assert_eq!(ews_operation(body).as_deref(), Some("FindItem"));
        let empty = br#"<Envelope><Body/></Envelope>"#;
        assert_eq!(ews_operation(empty), None);
        assert_eq!(ews_operation(b"not xml <<<"), None);
        let odd = br#"<Envelope><Body><x:Get-Item1/></Body></Envelope>"#;
        assert_eq!(ews_operation(odd), None);
    }

    #[test]
    fn operations_are_counted_apart_and_bounded() {
        let log = RequestLog::default();
        let ews = "/EWS/Exchange.asmx";
        log.record("POST", ews, 200);
        log.record_operation("POST", ews, "FindItem", 200);
        log.record("POST", ews, 200);
        log.record_operation("POST", ews, "GetItem", 200);
        log.record("POST", ews, 200);
        log.record_operation("POST", ews, "GetItem", 500);
        log.record("POST", "/{tenant}/oauth2/v2.0/token", 200);
        log.record("POST", "/{tenant}/oauth2/token", 400);
        let snap = log.snapshot();
        assert_eq!(snap.count("POST", ews), 3);
        assert_eq!(snap.count_operation("FindItem"), 1);
        assert_eq!(snap.count_operation("GetItem"), 2);
        assert_eq!(snap.token_requests(), 2);
        for i in 0..(MAX_OPERATIONS + 10) {
            log.record_operation("POST", ews, &format!("Op{i}"), 200);
        }
        let snap = log.snapshot();
        let distinct: std::collections::BTreeSet<_> = snap
            .operations
            .iter()
            .map(|o| o.operation.clone())
            .collect();
        assert!(distinct.len() <= MAX_OPERATIONS + 1, "{}", distinct.len());
        assert!(snap.count_operation(OTHER_OPERATION) > 0);
        log.clear();
        assert!(log.snapshot().operations.is_empty());
    }

    #[test]
    fn batch_items_are_counted_by_template_and_bounded() {
        assert_eq!(
            batch_item_template("/users/a@b.example/messages/AAMk=/$value"),
            "/users/{user}/messages/{id}/$value"
        );
        assert_eq!(
            batch_item_template("/v1.0/users/x/mailFolders/inbox/messages?$top=5"),
            "/users/{user}/mailFolders/{id}/messages"
        );
        assert_eq!(
            batch_item_template("me/messages/1/move"),
            "/me/messages/{id}/move"
        );
        assert_eq!(batch_item_template("/groups/1"), UNMATCHED);
        let log = RequestLog::default();
        log.record("POST", BATCH_PATH, 200);
        log.record("GET", "/v1.0/users/{user}/mailFolders/{folder}", 200);
        log.record_batch_item("GET", "/users/a/messages/1/$value", 200);
        log.record_batch_item("GET", "/users/a/messages/2/$value", 200);
        log.record_batch_item("PATCH", "/users/a/messages/2", 429);
        let snap = log.snapshot();
        assert_eq!(snap.batch_item_total(), 3);
        assert_eq!(
            snap.total(),
            2,
            "the items are not requests of their own here"
        );
        assert_eq!(snap.graph_requests_as_counted(), 4, "1 GET + 3 items");
        for i in 0..(MAX_BATCH_TEMPLATES + 10) {
            let url = format!("/users/a/messages/{}", "x/".repeat(i));
            log.record_batch_item("GET", &url, 200);
        }
        let distinct: std::collections::BTreeSet<_> = log
            .snapshot()
            .batch_items
            .iter()
            .map(|e| e.path.clone())
            .collect();
        assert!(
            distinct.len() <= MAX_BATCH_TEMPLATES + 1,
            "{}",
            distinct.len()
        );
        log.clear();
        assert!(log.snapshot().batch_items.is_empty());
    }
}
