//! What several of the handler's test binaries share (each declares `mod common;`).

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};

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
