//! Integration tests for `addressing`: table tests per feature, hostile inputs, properties.

mod address;
mod mailbox;
mod route;
mod rules;
mod samples;
mod sender;
mod subaddress;

use addressing::{EmailAddress, MailboxConfig, PickupMailbox, Router, RouterOptions, RuleConfig};

/// Parses a valid test address.
pub(crate) fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

/// The mailbox most tests use: support@ with two aliases, plus addressing on.
pub(crate) fn contoso() -> PickupMailbox {
    PickupMailbox::from_config(
        &MailboxConfig::new("support@contoso.com")
            .alias("billing@contoso.com")
            .alias("hilfe@contoso.de"),
    )
    .unwrap()
}

/// Rules from JSON (the same serde shape as TOML).
pub(crate) fn rules(json: &str) -> Vec<RuleConfig> {
    serde_json::from_str(json).unwrap()
}

/// A router over [`contoso`] with `rules_json`.
pub(crate) fn router(rules_json: &str) -> Router {
    Router::new(contoso(), &rules(rules_json), RouterOptions::default()).unwrap()
}
