//! Microsoft Graph v1.0 mail endpoints (`/v1.0/...`).

use axum::Router;

use crate::state::AppState;

/// The Graph routes, merged into the main router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
