//! The admin API over HTTP: `POST /_sandbox/admin` (an [`AdminCommand`] as JSON) and the
//! `GET` views, behind the guards the module documentation lists.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::state::AppState;

use super::{Admin, AdminCommand, AdminError};

/// Whether a `Content-Type` value is `application/json` (parameters such as `charset` allowed).
fn is_json(content_type: Option<&http::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn post_admin(
    State(state): State<AppState>,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // A browser sends `text/plain`, form or multipart bodies cross-site without asking; JSON
    // needs a CORS preflight the sandbox never answers. So only JSON is an admin command.
    if !is_json(headers.get(http::header::CONTENT_TYPE)) {
        return crate::admin_guard::refuse(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "admin commands must be sent with `Content-Type: application/json`, not {}",
                headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| format!("{:?}", String::from_utf8_lossy(v.as_bytes())))
                    .unwrap_or_else(|| "none".into())
            ),
        );
    }
    let cmd: AdminCommand = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                http::StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"ok": false, "error": e.to_string()})),
            )
                .into_response();
        }
    };
    match Admin::new(state).apply(cmd) {
        Ok(o) => Json(o).into_response(),
        Err(e) => {
            let status = match e {
                AdminError::NotFound(_) => http::StatusCode::NOT_FOUND,
                AdminError::Conflict(_) => http::StatusCode::CONFLICT,
                AdminError::Invalid(_) => http::StatusCode::BAD_REQUEST,
            };
            (
                status,
                Json(serde_json::json!({"ok": false, "error": e.to_string()})),
            )
                .into_response()
        }
    }
}

async fn get_slots(State(state): State<AppState>) -> Response {
    Json(state.faults().slot_uses()).into_response()
}

async fn get_requests(State(state): State<AppState>) -> Response {
    let snap = state.reqlog().snapshot();
    Json(serde_json::json!({
        "total": snap.total(),
        "token_requests": snap.token_requests(),
        "graph_requests_as_counted": snap.graph_requests_as_counted(),
        "entries": snap.entries,
        "operations": snap.operations,
        "batch_items": snap.batch_items,
    }))
    .into_response()
}

async fn get_outbox(State(state): State<AppState>) -> Response {
    Json(state.outbox().clone()).into_response()
}

async fn get_subscriptions(State(state): State<AppState>) -> Response {
    let admin = Admin::new(state);
    Json(serde_json::json!({
        "subscriptions": admin.subscriptions(),
        "stats": admin.notification_stats(),
    }))
    .into_response()
}

async fn get_tenant(State(state): State<AppState>) -> Response {
    Json(state.tenant().clone()).into_response()
}

pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/_sandbox/admin", post(post_admin))
        .route("/_sandbox/requests", get(get_requests))
        .route("/_sandbox/slots", get(get_slots))
        .route("/_sandbox/outbox", get(get_outbox))
        .route("/_sandbox/tenant", get(get_tenant))
        .route("/_sandbox/subscriptions", get(get_subscriptions))
        // Host, Origin and admin token, before anything else (see `admin_guard`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.config().admin_access.clone(),
            crate::admin_guard::middleware,
        ))
        // `inject_mime` carries whole messages: allow Exchange Online's default 35 MB maximum
        // message size (base64 and JSON escaping included), not axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
}
