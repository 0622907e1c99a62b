//! Exchange Web Services (`POST /EWS/Exchange.asmx`, SOAP 1.1).

use axum::Router;

use crate::state::AppState;

/// The EWS routes, merged into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
