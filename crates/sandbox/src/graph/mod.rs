//! Microsoft Graph v1.0 mail endpoints (`/v1.0/...`).
//!
//! Every mailbox path exists under `/v1.0/me/…` (delegated tokens) and
//! `/v1.0/users/{id|upn}/…`. A request goes through, in order: token validation
//! ([`crate::auth::authenticate`], 401 with `WWW-Authenticate`), the mailbox and permission check
//! (403 `ErrorAccessDenied` / 404 `ErrorInvalidUser`), throttling and fault injection
//! ([`AppState::admit`](crate::AppState::admit), 429 with `Retry-After`, 503, 504, reset), then the operation.
//! Every answer carries `request-id` and `client-request-id`; errors use Graph's error JSON.
//!
//! The routes are registered one per endpoint template (so the request log counts per
//! endpoint) but share one dispatcher, which `$batch` also uses for its inner requests.

mod batch;
mod directory;
mod ops;
pub(crate) mod render;

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::response::Response;
use axum::routing::{any, post, put};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{AccessDenied, Principal, Resource, authenticate};
use crate::faults::{Admission, FaultKind, Protocol};
use crate::state::AppState;

/// Mailbox-relative endpoint templates.
const TEMPLATES: &[&str] = &[
    "mailFolders",
    "mailFolders/{folder}",
    "mailFolders/{folder}/childFolders",
    "mailFolders/{folder}/messages",
    "mailFolders/{folder}/messages/delta",
    "mailFolders/{folder}/messages/delta()",
    "messages",
    "messages/{id}",
    "messages/{id}/$value",
    "messages/{id}/move",
    "messages/{id}/send",
    "messages/{id}/attachments",
    "messages/{id}/attachments/createUploadSession",
    "sendMail",
];

/// The Graph routes, merged into the main router.
pub(crate) fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/v1.0/$batch", post(batch::handle))
        .route("/v1.0/groups", axum::routing::get(directory::list_groups))
        .route("/v1.0/_upload/{session}", put(ops::upload_put))
        .route("/v1.0/subscriptions", any(handle_subscriptions))
        .route("/v1.0/subscriptions/{id}", any(handle_subscriptions))
        .route(
            "/v1.0/subscriptions/{id}/reauthorize",
            any(handle_subscriptions),
        )
        .route("/v1.0/{*rest}", any(unknown_route));
    for t in TEMPLATES {
        r = r
            .route(&format!("/v1.0/me/{t}"), any(handle))
            .route(&format!("/v1.0/users/{{user}}/{t}"), any(handle));
    }
    // Graph takes request bodies up to about 4 MB (upload chunks, base64 MIME); larger ones get
    // 413.
    r.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// The largest request body the Graph endpoints read.
const MAX_BODY: usize = 4 * 1024 * 1024 + 64 * 1024;

/// One request, from HTTP or from a `$batch` item.
#[derive(Debug, Clone)]
pub(crate) struct GReq {
    pub(crate) method: Method,
    /// Path after `/v1.0`, starting with `/`.
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The base URL the client called (`scheme://host[:port]`), for links in answers.
    pub(crate) base: String,
}

impl GReq {
    pub(crate) fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All `Prefer` values, split on commas.
    pub(crate) fn prefers(&self) -> Vec<String> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    }

    /// `Prefer: outlook.body-content-type="text"|"html"`: the body kind asked for, if any;
    /// another value is refused.
    pub(crate) fn body_kind(&self) -> Result<Option<crate::bodies::BodyKind>, GResp> {
        for p in self.prefers() {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("outlook.body-content-type") {
                continue;
            }
            let v = v.trim().trim_matches('"');
            return if v.eq_ignore_ascii_case("text") {
                Ok(Some(crate::bodies::BodyKind::Text))
            } else if v.eq_ignore_ascii_case("html") {
                Ok(Some(crate::bodies::BodyKind::Html))
            } else {
                Err(error(
                    400,
                    "BadRequest",
                    &format!(
                        "Invalid outlook.body-content-type preference '{v}': it must be text or html."
                    ),
                ))
            };
        }
        Ok(None)
    }

    pub(crate) fn immutable_ids(&self) -> bool {
        self.prefers().iter().any(|p| {
            p.replace(' ', "")
                .eq_ignore_ascii_case("IdType=\"ImmutableId\"")
        })
    }

    pub(crate) fn content_type(&self) -> String {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// An answer, before it becomes HTTP (or a `$batch` item).
#[derive(Debug)]
pub(crate) struct GResp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: GBody,
}

#[derive(Debug)]
pub(crate) enum GBody {
    Empty,
    Json(Value),
    Text(Bytes),
    /// Drop the connection mid-answer (injected fault; a batch item renders it as 503).
    Reset,
}

impl GResp {
    pub(crate) fn json(status: u16, v: Value) -> Self {
        GResp {
            status,
            headers: Vec::new(),
            body: GBody::Json(v),
        }
    }

    pub(crate) fn empty(status: u16) -> Self {
        GResp {
            status,
            headers: Vec::new(),
            body: GBody::Empty,
        }
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

/// Graph's error JSON.
pub(crate) fn error(status: u16, code: &str, message: &str) -> GResp {
    GResp::json(
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

pub(crate) fn denied(d: &AccessDenied) -> GResp {
    error(d.http_status(), d.code(), &d.message)
}

/// What a request needs on its mailbox.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Write,
    Send,
}

/// Validates the token; `Err` is the 401 to send.
pub(crate) fn authenticate_graph(st: &AppState, headers: &HeaderMap) -> Result<Principal, GResp> {
    authenticate(st, headers, Resource::Graph).map_err(|f| {
        error(401, f.graph_code(), &f.description).header("WWW-Authenticate", f.www_authenticate)
    })
}

/// The base URL of the request with `headers`: the configured scheme with the host the client
/// named in `Host` (so a client that called `127.0.0.1` gets links to `127.0.0.1`, not
/// `localhost`, and keeps its token on the next page), else the configured base URL.
pub(crate) fn request_base(st: &AppState, headers: &HeaderMap) -> String {
    let configured = st.base_url();
    if !st.config().links_follow_host {
        return configured.to_string();
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .filter(|a| !a.as_str().contains('@'));
    match (host, configured.split_once("://")) {
        (Some(a), Some((scheme, _))) => format!("{scheme}://{}", a.as_str()),
        _ => configured.to_string(),
    }
}

/// The decoded segments of a Graph path (after `/v1.0`) and where its mailbox-relative part
/// starts (after `me` or `users/{id}`); `None` when the path names no mailbox.
fn mailbox_segments(path: &str) -> (Vec<String>, Option<usize>) {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let start = match segs.first().map(String::as_str) {
        Some("me") => Some(1),
        Some("users") if segs.len() >= 2 => Some(2),
        _ => None,
    };
    (segs, start)
}

/// Whether the segments `rest` follow `template`'s (a `{…}` segment takes any value).
fn fits(template: &[&str], rest: &[String]) -> bool {
    template
        .iter()
        .zip(rest)
        .all(|(t, s)| t.starts_with('{') || t == s)
}

/// Whether `path` (after `/v1.0`) is one of the served templates: `None` when it is, else the
/// first segment that names nothing.
fn unknown_segment_of(path: &str) -> Option<String> {
    let (segs, start) = mailbox_segments(path);
    let Some(start) = start else {
        return Some(unknown_segment(path));
    };
    let rest = &segs[start..];
    let whole = TEMPLATES.iter().any(|t| {
        let ts: Vec<&str> = t.split('/').collect();
        ts.len() == rest.len() && fits(&ts, rest)
    });
    if whole {
        None
    } else {
        Some(unknown_segment(path))
    }
}

/// The first segment of a Graph path (after `/v1.0`) that names no endpoint the sandbox
/// serves, for Graph's "Resource not found for the segment" answer.
fn unknown_segment(path: &str) -> String {
    let (segs, start) = mailbox_segments(path);
    let Some(start) = start else {
        return segs.first().cloned().unwrap_or_default();
    };
    let rest = &segs[start..];
    for i in 0..rest.len() {
        let known = TEMPLATES.iter().any(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() > i && fits(&ts[..=i], &rest[..=i])
        });
        if !known {
            return rest[i].clone();
        }
    }
    rest.last().cloned().unwrap_or_default()
}

/// Any `/v1.0/…` path no endpoint serves: Graph's JSON error (400 `BadRequest`, "Resource not
/// found for the segment '…'", as Graph answers a segment it does not know), after the token
/// check like every Graph request, never an empty 404.
async fn unknown_route(State(st): State<AppState>, call: GraphCall) -> Response {
    let st = &st;
    call.answer(st, |who, mut req| async move {
        // A trailing slash names the same resource (Graph's own samples write
        // `messages/{id}/?$select=…`).
        let trimmed = req.path.trim_end_matches('/');
        if trimmed.len() < req.path.len()
            && !trimmed.is_empty()
            && unknown_segment_of(trimmed).is_none()
        {
            req.path = trimmed.to_string();
            return dispatch(st, &who, &req).await;
        }
        let seg = unknown_segment(&req.path);
        error(
            400,
            "BadRequest",
            &format!("Resource not found for the segment '{seg}'."),
        )
    })
    .await
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Runs one request for an authenticated principal.
pub(crate) async fn dispatch(st: &AppState, who: &Principal, req: &GReq) -> GResp {
    let segs: Vec<String> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let (mailbox_ref, rest): (String, &[String]) = match segs.first().map(String::as_str) {
        Some("me") => match who.user() {
            Some(u) => (u.to_string(), &segs[1..]),
            None => {
                return error(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                );
            }
        },
        Some("users") if segs.len() >= 2 => (segs[1].clone(), &segs[2..]),
        _ => return error(400, "BadRequest", "Resource not found for the segment."),
    };
    let rest: Vec<&str> = rest.iter().map(|s| function_name(s)).collect();
    let need = match (&req.method, rest.as_slice()) {
        (&Method::GET, _) => Need::Read,
        (&Method::POST, ["sendMail"]) | (&Method::POST, ["messages", _, "send"]) => Need::Send,
        _ => Need::Write,
    };
    let checked = match need {
        Need::Read => who.may_read(&mailbox_ref),
        Need::Write => who.may_write(&mailbox_ref),
        // Mail.Send on the mailbox; the right to the From address is checked by the operation.
        Need::Send => who
            .may_send_as(&mailbox_ref, &mailbox_ref)
            .map(|s| s.mailbox),
    };
    let mailbox = match checked {
        Ok(m) => m,
        Err(d) => return denied(&d),
    };
    let _guard = match st.admit(Protocol::Graph, &who.app_id, &mailbox).await {
        Admission::Proceed(g) => g,
        Admission::Throttled { retry_after } => return throttled(retry_after),
        Admission::Fault(f) => return fault(f),
    };
    ops::run(st, who, req, &mailbox, &rest).await
}

/// A segment calling a function without parameters names it with or without OData's
/// parentheses: Graph serves `messages/delta()` (as Microsoft's SDKs write it) as `messages/delta`.
fn function_name(segment: &str) -> &str {
    match segment {
        "delta()" => "delta",
        other => other,
    }
}

/// A request the throttling refused: 429 with `Retry-After` in whole seconds. The code and
/// message are what Exchange Online was observed to send (`[obs]`: clients branch on the
/// status), for a spent request budget as for too many requests at once.
pub(crate) fn throttled(retry_after: std::time::Duration) -> GResp {
    error(
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    )
    .header("Retry-After", retry_after.as_secs().max(1).to_string())
}

pub(crate) fn fault(f: FaultKind) -> GResp {
    match f {
        FaultKind::Throttle { retry_after_secs } => {
            error(429, "TooManyRequests", "Please retry again later.")
                .header("Retry-After", retry_after_secs.to_string())
        }
        FaultKind::ServerError503 => error(503, "ServiceUnavailable", "Service Unavailable"),
        FaultKind::GatewayTimeout504 => error(504, "GatewayTimeout", "Gateway Timeout"),
        FaultKind::ServerBusy { back_off_ms } => error(
            503,
            "ErrorServerBusy",
            "The server is busy. Try again later.",
        )
        .header("Retry-After", back_off_ms.div_ceil(1000).max(1).to_string()),
        FaultKind::ResetConnection => GResp {
            status: 200,
            headers: Vec::new(),
            body: GBody::Reset,
        },
        FaultKind::Slow { .. } => error(503, "ServiceUnavailable", "Service Unavailable"),
    }
}

pub(crate) fn request_ids(headers: &HeaderMap) -> (String, String) {
    let rid = uuid::Uuid::new_v4().to_string();
    let cid = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 100)
        .map(str::to_string)
        .unwrap_or_else(|| rid.clone());
    (rid, cid)
}

/// Turns an answer into HTTP, with request ids (also inside error JSON, as Graph does).
pub(crate) fn into_http(st: &AppState, mut r: GResp, rid: &str, cid: &str) -> Response {
    if let GBody::Json(Value::Object(o)) = &mut r.body
        && let Some(Value::Object(e)) = o.get_mut("error")
    {
        e.insert(
            "innerError".into(),
            json!({ "date": render::datetime(st.clock().now()).trim_end_matches('Z'), "request-id": rid, "client-request-id": cid }),
        );
    }
    let mut resp = match r.body {
        GBody::Reset => return crate::faults::reset_response(),
        GBody::Empty => Response::new(Body::empty()),
        GBody::Json(v) => {
            // Straight into bytes (`to_string` goes through `fmt::Write`, slower on a page of
            // 1,000 messages or a batch of MIME). Serializing a `Value` cannot fail.
            let mut resp = Response::new(Body::from(serde_json::to_vec(&v).unwrap_or_default()));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"),
            );
            resp
        }
        GBody::Text(b) => {
            let mut resp = Response::new(Body::from(b));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
            resp
        }
    };
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(k, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(cid) {
        h.insert("client-request-id", v);
    }
    resp
}

async fn handle(State(st): State<AppState>, call: GraphCall) -> Response {
    let st = &st;
    call.answer(st, |who, req| async move { dispatch(st, &who, &req).await })
        .await
}

/// A Graph call as its handlers take it: the method, the URI as the client sent it, the headers
/// and the body.
struct GraphCall {
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for GraphCall {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let uri = match req.extensions().get::<OriginalUri>() {
            Some(OriginalUri(u)) => u.clone(),
            None => req.uri().clone(),
        };
        let method = req.method().clone();
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        Ok(GraphCall {
            method,
            uri,
            headers,
            body,
        })
    }
}

impl GraphCall {
    /// Answers the call in the frame of [`authenticated`]: `op` gets the caller and the request
    /// as the operations see it.
    async fn answer<F, Fut>(self, st: &AppState, op: F) -> Response
    where
        F: FnOnce(Principal, GReq) -> Fut,
        Fut: std::future::Future<Output = GResp>,
    {
        let GraphCall {
            method,
            uri,
            headers,
            body,
        } = self;
        authenticated(st, headers, |who, headers| async move {
            op(who, graph_request(st, method, &uri, headers, body)).await
        })
        .await
    }
}

/// The frame of every authenticated Graph handler: the request ids, the bearer token checked
/// (its refusal is the answer), then `op`'s answer for the caller; both answers carry the ids.
pub(crate) async fn authenticated<F, Fut>(st: &AppState, headers: HeaderMap, op: F) -> Response
where
    F: FnOnce(Principal, HeaderMap) -> Fut,
    Fut: std::future::Future<Output = GResp>,
{
    let (rid, cid) = request_ids(&headers);
    let r = match authenticate_graph(st, &headers) {
        Ok(who) => op(who, headers).await,
        Err(r) => r,
    };
    into_http(st, r, &rid, &cid)
}

/// An HTTP request as the operations see it: the path after `/v1.0`.
fn graph_request(
    st: &AppState,
    method: Method,
    uri: &http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> GReq {
    GReq {
        method,
        path: uri
            .path()
            .strip_prefix("/v1.0")
            .unwrap_or(uri.path())
            .to_string(),
        query: uri.query().map(str::to_string),
        base: request_base(st, &headers),
        headers,
        body,
    }
}

/// `/v1.0/subscriptions…`: change-notification subscriptions (see [`crate::notify`]).
async fn handle_subscriptions(State(st): State<AppState>, call: GraphCall) -> Response {
    let st = &st;
    call.answer(st, |who, req| async move {
        ops::subscriptions(st, &who, &req).await
    })
    .await
}
