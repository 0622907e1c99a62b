//! The AADSTS error response shape (see `samples/identity/aadsts-samples.json`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::state::AppState;

/// An identity-platform error: OAuth `error`, AADSTS code and message.
#[derive(Clone, Debug)]
pub(crate) struct AadError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) code: Option<u32>,
    pub(crate) message: String,
    pub(crate) suberror: Option<&'static str>,
    pub(crate) timestamp: String,
}

fn timestamp(state: &AppState) -> String {
    let now = state.clock().now();
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    now.format(&fmt).unwrap_or_default()
}

impl AadError {
    pub(crate) fn new(
        state: &AppState,
        status: u16,
        error: &'static str,
        code: Option<u32>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            error,
            code,
            message: message.into(),
            suberror: None,
            timestamp: timestamp(state),
        }
    }

    pub(crate) fn with_suberror(mut self, s: &'static str) -> Self {
        self.suberror = Some(s);
        self
    }

    pub(crate) fn tenant_not_found(state: &AppState, name: &str) -> Self {
        Self::new(
            state,
            400,
            "invalid_request",
            Some(90002),
            format!(
                "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub(crate) fn invalid_request(state: &AppState, code: u32, message: impl Into<String>) -> Self {
        Self::new(state, 400, "invalid_request", Some(code), message)
    }

    pub(crate) fn invalid_grant(state: &AppState, code: u32, message: impl Into<String>) -> Self {
        Self::new(state, 400, "invalid_grant", Some(code), message)
    }

    /// The `error_description` text: `AADSTSnnnnn: message` + trace lines.
    pub(crate) fn description(&self, trace: &str, correlation: &str) -> String {
        let head = match self.code {
            Some(c) => format!("AADSTS{c}: {}", self.message),
            None => self.message.clone(),
        };
        format!(
            "{head}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {}",
            self.timestamp
        )
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let mut v = serde_json::json!({
            "error": self.error,
            "error_description": self.description(&trace, &correlation),
            "error_codes": self.code.map(|c| vec![c]).unwrap_or_default(),
            "timestamp": self.timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
        });
        if let Some(c) = self.code {
            v["error_uri"] = format!("https://login.microsoftonline.com/error?code={c}").into();
        }
        if let Some(s) = self.suberror {
            v["suberror"] = s.into();
        }
        v
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        let h = resp.headers_mut();
        h.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store, no-cache"),
        );
        h.insert(
            http::header::PRAGMA,
            http::HeaderValue::from_static("no-cache"),
        );
        resp
    }
}
