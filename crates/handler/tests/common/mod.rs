//! What several of the handler's test binaries share (each declares `mod common;` and uses
//! what it needs).
#![allow(dead_code)]

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};

/// The pickup mailbox of most tests.
pub(crate) const PICKUP: &str = "helpdesk@contoso.example";

/// The routing of the pickup mailbox `pickup` with one rule: everything belongs to `DESK`.
pub(crate) fn desk_router(pickup: &str) -> Router {
    let config = RoutingConfig::new(
        MailboxConfig::new(pickup),
        vec![RuleConfig::Default {
            project: "DESK".into(),
        }],
    );
    Router::from_config(&config).expect("routing")
}

/// [`desk_router`] of [`PICKUP`].
pub(crate) fn router() -> Router {
    desk_router(PICKUP)
}
