//! The endpoint: `/metrics`, `/healthz`, `/readyz`.

use super::*;

/// A running metrics endpoint; dropping it stops it.
#[derive(Debug)]
pub struct MetricsServer {
    pub(super) addr: Option<SocketAddr>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Where it listens.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

pub(super) async fn scrape(State(metrics): State<Metrics>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            metrics.encode_openmetrics(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            metrics.encode(),
        )
            .into_response()
    }
}

pub(super) async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, TEXT)], "ok\n").into_response()
}

pub(super) async fn readyz(State(metrics): State<Metrics>) -> Response {
    match metrics.readiness() {
        Ok(line) => (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], line + "\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            reason + "\n",
        )
            .into_response(),
    }
}
