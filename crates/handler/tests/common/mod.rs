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

/// The routing of [`PICKUP`] with the alias `billing@contoso.example` and plus addressing: mail
/// to the alias belongs to `BILL`, then `rules`, then the rest to `DESK`.
pub(crate) fn billing_router(rules: Vec<RuleConfig>) -> Router {
    let mut all = vec![RuleConfig::Alias {
        alias: "billing@contoso.example".into(),
        project: "BILL".into(),
    }];
    all.extend(rules);
    all.push(RuleConfig::Default {
        project: "DESK".into(),
    });
    let mailbox = MailboxConfig::new(PICKUP)
        .alias("billing@contoso.example")
        .plus_addressing(true);
    Router::from_config(&RoutingConfig::new(mailbox, all)).expect("routing")
}
