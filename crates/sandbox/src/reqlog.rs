//! The request log: how many requests each endpoint (method + route template) got, per status.
//!
//! Filled by a middleware on the main router (admin routes under `/_sandbox` are not counted) and
//! by the SMTP listener (method `SMTP`, path `DATA`, status 250/5xx). Read it with
//! [`crate::Sandbox::request_log`] or `GET /_sandbox/requests`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::state::{AppState, lock};

/// The `path` recorded for requests that matched no route.
pub const UNMATCHED: &str = "(unmatched)";

/// Counts per endpoint and status.
#[derive(Debug, Default)]
pub struct RequestLog {
    counts: Mutex<BTreeMap<(String, String, u16), u64>>,
}

/// One row of a [`RequestLogSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
pub struct RequestLogSnapshot {
    /// Rows ordered by method, path, status.
    pub entries: Vec<EndpointCount>,
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

    /// Requests whose route template starts with `prefix` (e.g. `/v1.0`).
    pub fn count_prefix(&self, prefix: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.path.starts_with(prefix))
            .map(|e| e.count)
            .sum()
    }
}

impl RequestLog {
    /// Records one request.
    pub fn record(&self, method: &str, path: &str, status: u16) {
        *lock(&self.counts)
            .entry((method.to_string(), path.to_string(), status))
            .or_insert(0) += 1;
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> RequestLogSnapshot {
        RequestLogSnapshot {
            entries: lock(&self.counts)
                .iter()
                .map(|((m, p, s), c)| EndpointCount {
                    method: m.clone(),
                    path: p.clone(),
                    status: *s,
                    count: *c,
                })
                .collect(),
        }
    }

    /// Forgets everything counted so far.
    pub fn clear(&self) {
        lock(&self.counts).clear();
    }
}

/// Middleware recording each request's method, route template and final status.
pub(crate) async fn middleware(
    State(state): State<AppState>,
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
    let resp = next.run(req).await;
    if !path.starts_with("/_sandbox") && !req_path_is_admin {
        state
            .reqlog()
            .record(&method, &path, resp.status().as_u16());
    }
    resp
}
