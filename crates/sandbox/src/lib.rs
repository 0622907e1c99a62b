//! `sandbox`: a local emulator of a Microsoft 365 tenant — the identity platform (Entra ID v2.0),
//! Microsoft Graph mail, Exchange Web Services and SMTP delivery — for tests and demos.
//!
//! No machine here reaches Microsoft; the sandbox behaves like a tenant closely enough that real
//! clients work against it unchanged: Microsoft's paths, parameters, response shapes, AADSTS
//! error codes, throttling and id semantics.
//!
//! # In process (tests)
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sandbox::{Sandbox, Seed};
//!
//! let sb = Sandbox::builder().seed(Seed::demo()).start().await?; // 127.0.0.1, ephemeral ports
//! let token_url = sb.token_url("contoso.example");  // {base}/contoso.example/oauth2/v2.0/token
//! let graph = sb.graph_url();                        // {base}/v1.0
//! let ews = sb.ews_url();                            // {base}/EWS/Exchange.asmx
//! let smtp = sb.smtp_addr();                         // deliver mail with any SMTP client
//!
//! // Change the tenant while tests run: the stand-in for the Azure portal / Exchange PowerShell.
//! let admin = sb.admin();
//! admin.add_alias("helpdesk@contoso.example", "newproject@contoso.example")?;
//! admin.inject_mime("billing@contoso.example", "Subject: hi\r\n\r\nbody\r\n")?;
//! admin.revoke_admin_consent("00000000-0000-0000-0000-00000000d3e0")?;
//! println!("{} requests so far", sb.request_log().total());
//! sb.shutdown().await;
//! # let _ = (token_url, graph, ews, smtp);
//! # Ok(()) }
//! ```
//!
//! # Seeds
//!
//! A seed (TOML or JSON, see [`Seed`]) describes the tenant: domains, users and their aliases,
//! shared mailboxes, groups, mailbox permissions (`full_access`, `send_as`, `send_on_behalf` on
//! each mailbox), organisation settings (plus addressing, `SendFromAliasEnabled`,
//! `EwsEnabled`/`EwsAllowedAppIDs`, alias propagation delay, user consent), app registrations
//! (secrets with expiry, certificates, redirect URIs, public client flows, permissions, user
//! assignment), consent grants, service principals registered in Exchange
//! (`[[service_principals]]` with `app_id`, optional `object_id`, and the mailboxes they get
//! `full_access` and `send_as` on) and initial messages. [`Seed::demo`] is a helpdesk tenant
//! whose pickup mailbox `helpdesk@contoso.example` has project aliases (`billing@`, `support@`,
//! `sales@`, ...) and whose app `00000000-0000-0000-0000-00000000d3e0` has the **public, demo-only**
//! client secret `demo-secret-do-not-use-in-production`.
//!
//! # Standalone, with TLS
//!
//! ```text
//! cargo run -p m365mail-sandbox -- --port 8443 --seed tenant.toml --tls --ca-out sandbox-ca.pem
//! ```
//!
//! serves HTTPS with a freshly generated CA and server certificate (for `localhost` and
//! `127.0.0.1`) and writes the CA certificate to `sandbox-ca.pem` so real clients (MSAL,
//! exchangelib) can trust it. The admin API is then available over HTTP as JSON, see
//! [Admin API over HTTP](#admin-api-over-http). `m365mail sandbox` takes the same options: both
//! are `sandbox::cli::ServeArgs` (the `cli` feature, on by default; a library user who does not
//! need the command line can turn it off and leave clap out).
//!
//! # Recipes for tests
//!
//! - **A token without a sign-in dance**: [`Admin::mint_token`] with a [`MintRequest`] (signed
//!   like any other token; consent is checked when it is *used*). For the real flows, POST to
//!   [`Sandbox::token_url`] (client credentials with the demo secret, authorization code + PKCE
//!   driven through the `/authorize` form pages, refresh, device code approved with
//!   [`Admin::approve_device_code`]); see the [`identity`] module.
//! - **Consent and assignment**: [`Admin::grant_admin_consent`], [`Admin::revoke_admin_consent`]
//!   (a live token stops working at once), [`Admin::grant_user_consent`],
//!   `AdminCommand::AssignUser`, [`Admin::update_org`] (`users_can_consent`, `admin_only_scopes`).
//! - **Sending as another mailbox**: as in Exchange Online, every token — app-only included —
//!   needs Exchange's right to put another mailbox in `From`: Send As or Send on Behalf held by
//!   the sending mailbox (or the signed-in user), else Graph `403 ErrorSendAsDenied`, EWS
//!   `ErrorSendAsDenied`, SMTP `550 5.7.60` (`MAIL FROM`) / `554 5.2.252` (`From`). Aliases of
//!   the mailbox itself need nothing. Grant with [`Admin::add_mailbox_permission`]
//!   ([`tenant::MailboxRight`]: FullAccess, Send As, Send on Behalf), withdraw with
//!   [`Admin::remove_mailbox_permission`]. SMTP AUTH with an app-only token (`SMTP.SendAsApp`)
//!   also needs [`Admin::register_service_principal`] (`New-ServicePrincipal`) and FullAccess
//!   for the service principal (its app id as `user`) on the mailbox in `user=`, else
//!   `535 5.7.3`.
//! - **Mail in**: [`Admin::inject_mime`] or any SMTP client against [`Sandbox::smtp_addr`];
//!   mail out to other domains lands in [`Admin::outbox`].
//! - **Failures**: [`Admin::set_faults`] with a [`FaultPlan`] ("the next 3 Graph requests get
//!   429", "10 % of EWS requests get ServerBusy", seeded and deterministic),
//!   [`Admin::set_throttle`], [`Admin::expire_access_tokens`], [`Admin::revoke_refresh_tokens`],
//!   [`Admin::set_latency`] (Exchange Online's pace: each request holds its concurrency slot
//!   for a drawn [`Latency`]; [`Admin::record_slots`] and [`busy_fraction`] tell how busy the
//!   slots were),
//!   `update_org(|o| o.ews_enabled = Some(false))`.
//! - **Counting requests**: [`Sandbox::request_log`] (per method + route template + status).
//! - **The misconfigurations `m365mail doctor` looks for**, each switched on and off at run
//!   time: consent ([`Admin::grant_admin_consent`] / [`Admin::revoke_admin_consent`]),
//!   *assignment required* ([`Admin::set_assignment_required`], [`Admin::assign_user`] /
//!   [`Admin::unassign_user`]: AADSTS50105 at sign-in and at every refresh), EWS blocked
//!   (`update_org`: `ews_enabled`, `ews_allowed_app_ids`), plus addressing off
//!   (`disable_plus_address_in_recipients`), an alias that does not receive yet
//!   (`alias_propagation_delay_secs`, then [`Admin::add_alias`]; [`Admin::advance_clock`] or
//!   [`Admin::remove_alias`]), a group where a mailbox is needed ([`Admin::add_group`] /
//!   [`Admin::remove_group`]; Graph's `GET /v1.0/groups?$filter=mail eq '…'` finds it for a token
//!   with `GroupMember.Read.All`), `SendFromAliasEnabled` off (`send_from_alias_enabled`) and
//!   application access policies ([`Admin::add_app_access_policy`] /
//!   [`Admin::remove_app_access_policies`]). Over HTTP: `set_org`, `set_assignment_required`,
//!   `assign_user`, `unassign_user`, `add_alias`, `remove_alias`, `add_group`, `remove_group`,
//!   `add_app_access_policy`, `remove_app_access_policies`.
//!
//! # Admin API over HTTP
//!
//! The standalone server takes the same operations as JSON on `POST /_sandbox/admin`, tagged by
//! `op` ([`AdminCommand`]: `add_mailbox`, `add_group`, `add_alias`, `set_user_enabled`,
//! `add_mailbox_permission`, `remove_mailbox_permission`, `register_service_principal`,
//! `remove_service_principal`, `add_app`, `add_secret`, `assign_user`, `grant_admin_consent`,
//! `revoke_admin_consent`, `grant_user_consent`, `revoke_user_consent`, `set_org`,
//! `set_sender_authentication`, `set_identity`, `inject_mime`, `set_faults`, `set_throttle`,
//! `set_latency`, `record_slots`,
//! `approve_device_code`, `decline_device_code`, `expire_access_tokens`,
//! `revoke_refresh_tokens`, `advance_clock`, `clear_request_log`), and serves
//! `GET /_sandbox/requests`, `/_sandbox/slots`, `/_sandbox/outbox` and `/_sandbox/tenant`
//! (secrets redacted).
//! Example:
//!
//! ```text
//! curl -X POST localhost:8080/_sandbox/admin -H 'Content-Type: application/json' \
//!   -d '{"op":"set_faults","plan":{"seed":1,"rules":[
//!   {"protocol":"graph","trigger":{"next":3},"fault":{"kind":"throttle","retry_after_secs":2}}]}}'
//! ```
//!
//! The admin API refuses what a web page in the developer's browser could send: commands that
//! are not `Content-Type: application/json` (`415`), a `Host` that is not the sandbox's own
//! address (DNS rebinding, `403`), a foreign `Origin` (`403`). With an admin token
//! ([`SandboxBuilder::admin_token`]; always when bound beyond loopback, which needs
//! [`SandboxBuilder::allow_non_loopback`]) every `/_sandbox/*` request needs
//! `Authorization: Bearer <token>` (`401` otherwise); add `-H "Authorization: Bearer $TOKEN"`.
//!
//! # Time
//!
//! Expiry (tokens, secrets, codes), alias propagation and throttling windows read the sandbox
//! clock, which tests move with [`Admin::advance_clock`] instead of sleeping.
//!
//! # Where things are
//!
//! What a test or demo needs is at the crate root: [`Sandbox`] and its builder, [`Seed`], the
//! [`Admin`] handle and its [`AdminCommand`]s, fault plans ([`FaultPlan`], [`ThrottleConfig`]) and
//! [`MintRequest`]. Four modules hold what an integrator reads back: [`store`] (the mail store
//! behind Graph and EWS), [`tenant`] (the tenant model), [`delivery`] (what a delivery reports
//! and what it stamps on a message) and [`reqlog`] (the request log); [`identity`] documents the
//! identity endpoints. Each public type has exactly one path. [`fidelity`] lists, per Graph route
//! and EWS operation, what the sandbox implements and what it refuses (it never skips part of a
//! request).
//!
//! # Keys
//!
//! Tokens are RS256 JWTs signed with a fixed RSA key embedded in this crate. It is a public,
//! non-secret emulator key: anyone can mint tokens the sandbox accepts, which is the point.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// One path per public type (see "Where things are" above). The private modules are the
// emulator's insides; tests that reach into them are unit tests (`src/tests/`).
mod admin;
mod admin_guard;
mod auth;
mod bodies;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
pub mod delivery;
mod faults;
pub mod fidelity;
pub mod identity;
mod locks;
mod notify;
mod outbox;
pub mod reqlog;
mod server;
mod smtp;
mod state;
pub mod store;
pub mod tenant;

mod ews;
mod graph;

pub use admin::{Admin, AdminCommand, AdminError, AdminOutcome};
pub use faults::{
    FaultKind, FaultPlan, FaultRule, Latency, Protocol, SlotUse, ThrottleConfig, Trigger,
    busy_fraction, most_in_flight,
};
pub use identity::mint::{MintRequest, TokenKind};
pub use notify::{LifecycleEvent, NotificationFaults, NotificationStats, SubscriptionSummary};
pub use server::{Sandbox, SandboxBuilder, StartError, TlsOptions};
pub use tenant::apps::ApiResource;
pub use tenant::org::SenderAuthVerdict;
pub use tenant::seed::{Seed, SeedError};

/// The package's name on crates.io, used in logs and user agents.
pub const CRATE_NAME: &str = "m365mail-sandbox";

// Lets the integration tests' helpers (`tests/it/common.rs`, shared with the unit tests in
// `src/tests/`) name this crate `sandbox` from inside it.
#[cfg(test)]
extern crate self as sandbox;

#[cfg(test)]
mod tests;
