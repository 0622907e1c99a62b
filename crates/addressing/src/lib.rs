//! Route mail from one pickup mailbox to many projects by the address it was sent to, and
//! answer from that address.
//!
//! A helpdesk reads one Microsoft 365 mailbox (`support@contoso.com`) that many addresses
//! deliver to: aliases (`billing@contoso.com`, Graph `proxyAddresses`) and plus addresses
//! (`support+payments@contoso.com`, RFC 5233). This crate, which does no I/O:
//!
//! 1. parses and normalizes addresses from header values ([`EmailAddress`],
//!    [`parse_address_list`]): display names, RFC 2047 encoded words, groups, quoted local
//!    parts, internationalized domains; domains compare case-insensitively, local parts as
//!    configured ([`LocalPartCase`], case-insensitive by default as in Exchange);
//! 2. splits sub-addresses ([`SubAddress`], [`Separator`]);
//! 3. knows the mailbox's addresses ([`PickupMailbox`], from [`MailboxConfig`] or from
//!    `proxyAddresses`);
//! 4. maps the *catch address* to a project with an ordered, validated rule table
//!    ([`RuleConfig`], [`Router`]), whose lookups cost the same for 10 or 10,000 rules;
//! 5. finds the catch address of an inbound message ([`Router::route`],
//!    [`Router::route_mime`]) in `To`, then `Cc`, then `Delivered-To`, `X-Original-To`,
//!    `Envelope-To`, `Resent-To` (which Exchange Online never writes, so a catch found there is
//!    marked untrusted), and says when it cannot be known ([`Undetermined`]: Bcc);
//! 6. chooses `From` and `Reply-To` for outbound mail ([`SenderPolicy`]) from what the
//!    connection can do ([`OutboundCapabilities`]), and says why ([`SenderBranch`]).
//!
//! # Worked example
//!
//! Load the mailbox and rules from configuration, route a raw message, choose the sender:
//!
//! ```
//! use addressing::{OutboundCapabilities, Router, RoutingConfig, RuleKind, SenderBranch};
//!
//! let config: RoutingConfig = toml::from_str(r#"
//!     [mailbox]
//!     primary = "support@contoso.com"
//!     aliases = ["billing@contoso.com"]
//!
//!     [[rules]]
//!     match = "detail"
//!     detail = "payments"
//!     project = "PAY"
//!
//!     [[rules]]
//!     match = "alias"
//!     alias = "billing@contoso.com"
//!     project = "BILL"
//!
//!     [[rules]]
//!     match = "default"
//!     project = "HELP"
//! "#)?;
//! let router = Router::from_config(&config)?;
//!
//! let raw = b"From: Customer <c@example.org>\r\n\
//!     To: =?utf-8?q?Contoso_Abrechnung?= <Billing+Payments@CONTOSO.com>\r\n\
//!     Cc: someone-else@example.org\r\n\
//!     Subject: invoice\r\n\r\nhello\r\n";
//! let route = router.route_mime(raw);
//!
//! assert_eq!(route.project.as_ref().map(|p| p.as_str()), Some("PAY"));
//! let rule = route.rule.unwrap();
//! assert_eq!((rule.index, rule.kind), (0, RuleKind::Detail));
//! let catch = route.catch.found().unwrap();
//! assert_eq!(catch.address.to_string(), "Billing+Payments@contoso.com");
//! assert_eq!(catch.own_address.to_string(), "billing@contoso.com");
//! assert!(catch.trusted);
//! println!("{}", route.explain());
//!
//! // The tenant left SendFromAliasEnabled off: answer from the primary address, and let
//! // replies come back to the address the customer used.
//! let choice = router.sender_policy().choose_for_route(&route, &OutboundCapabilities::new());
//! assert_eq!(choice.from.to_string(), "support@contoso.com");
//! assert_eq!(choice.reply_to.as_ref().unwrap().to_string(), "Billing+Payments@contoso.com");
//! assert!(matches!(choice.branch, SenderBranch::PrimaryWithReplyTo(_)));
//! println!("{}", choice.explain());
//!
//! // Bcc'd mail: the catch address is unknown; the default rule decides.
//! let route = router.route_mime(b"To: list@example.org\r\n\
//!     X-MS-Exchange-Organization-Recipient-P2-Type: Bcc\r\n\r\n");
//! assert_eq!(route.catch, addressing::CatchAddress::Undetermined(addressing::Undetermined::Bcc));
//! assert_eq!(route.project.unwrap().as_str(), "HELP");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Bad configuration is refused with every problem and its place:
//!
//! ```
//! use addressing::{MailboxConfig, PickupMailbox, Router, RuleConfig};
//!
//! let rules: Vec<RuleConfig> = serde_json::from_str(r#"[
//!     {"match": "alias", "alias": "support@contoso.com", "project": "A"},
//!     {"match": "address", "address": "support+x@contoso.com", "project": "B"},
//!     {"match": "domain", "domain": "fabrikam.com", "project": "C"}
//! ]"#)?;
//! let mailbox = PickupMailbox::from_config(&MailboxConfig::new("support@contoso.com"))?;
//! let err = Router::new(mailbox, &rules, Default::default()).unwrap_err();
//! let places: Vec<String> = err.problems().iter().map(|p| p.location.to_string()).collect();
//! assert_eq!(places, ["rules[1].address", "rules[2].domain"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What Exchange Online does (protocol reference §5)
//!
//! - Plus addressing is on for every tenant unless `DisablePlusAddressInRecipients` is set;
//!   plus addresses stay visible in `To`/`Cc`, which is how the detail is recovered.
//! - With `SendFromAliasEnabled` off (the default), aliases are rewritten to the primary
//!   address on mail sent *and received*, so an alias may not be recoverable from `To`, and a
//!   reply `From` an alias goes out from the primary address. [`SenderPolicy`] then sets
//!   `Reply-To`.
//! - No header on an Exchange Online mailbox copy names the envelope recipient; Bcc'd mail
//!   cannot be routed by address, only by a default rule (or a transport rule stamping a header
//!   of its own, which the caller can feed in with [`InboundHeaders::add_address`]).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod address;
mod config;
mod identity;
mod outcome;
mod route;
mod rules;
mod sender;
mod subaddress;

pub use address::{
    AddressError, AddressList, EmailAddress, LocalPartCase, MAX_ADDRESS_LEN, MAX_DOMAIN_LEN,
    MAX_HEADER_VALUE_LEN, MAX_LOCAL_PART_LEN, NamedAddress, parse_address_list,
};
pub use config::{ConfigError, ConfigProblem, Location, ProblemKind, RuleKind};
pub use identity::{
    AddressRole, GraphUserAddresses, MailboxConfig, MailboxMatch, PickupMailbox, ProxyAddressError,
};
pub use outcome::{Catch, CatchAddress, MatchedRule, RecipientSource, Route, Undetermined};
pub use route::{
    EXCHANGE_RECIPIENT_TYPE_HEADER, ExchangeRecipientType, HeaderProblem, InboundHeaders,
    MimeError, Router, RouterOptions, RoutingConfig,
};
pub use rules::{MAX_PATTERN_LEN, ProjectKey, RuleConfig};
pub use sender::{FallbackReason, OutboundCapabilities, SenderBranch, SenderChoice, SenderPolicy};
pub use subaddress::{InvalidSeparator, Separator, SubAddress};

/// The package's name on crates.io, used in logs and user agents.
pub const CRATE_NAME: &str = "m365mail-addressing";

#[cfg(test)]
mod tests {
    #[test]
    fn crate_name_matches_package() {
        assert_eq!(super::CRATE_NAME, env!("CARGO_PKG_NAME"));
    }
}
