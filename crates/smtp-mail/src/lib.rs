//! `smtp-mail`: send Microsoft 365 mail through SMTP AUTH client submission, with OAuth.
//!
//! Many tenants still allow SMTP client submission (`smtp.office365.com:587`, `STARTTLS`, SASL
//! `XOAUTH2`), and for a mail handler that only needs to *send* it is the simplest outbound:
//! the message goes out exactly as built (raw MIME), Exchange saves a copy in Sent Items, and
//! the only permission needed is `SMTP.Send` (delegated) or `SMTP.SendAsApp` (app-only).
//!
//! [`SmtpOutbound`] implements [`connector::MessageOutbound`] on lettre's async SMTP
//! connection. Each ping or send:
//!
//! 1. connects and upgrades with `STARTTLS`, which is **required** ([`Security::StartTls`],
//!    the default): a server that does not offer it never sees the token;
//! 2. signs in with `AUTH XOAUTH2`, the initial response being base64 of
//!    `user=<mailbox>\x01auth=Bearer <token>\x01\x01`, with a token from a [`TokenSource`]
//!    (the workspace's one token seam, in `connector`: `msauth`'s `TokenProvider` for
//!    [`DELEGATED_SCOPE`] or [`APP_SCOPE`]); a token endpoint that is throttled or unreachable
//!    is a retryable error, a refused sign-in an `Authentication` one;
//! 3. on `535 5.7.3`, or on Office 365's *error challenge* (a `334` reply carrying base64
//!    JSON, which lettre's own `auth` would answer blindly and lose), asks the token source
//!    **once** for a fresh token and signs in again; if that fails too, the error carries the
//!    decoded challenge as an [`AuthProblem`](connector::AuthProblem), diagnosed by msauth
//!    when the token source is an msauth provider;
//! 4. on `535 5.7.139` reports at once that *SMTP AUTH is disabled for this mailbox or
//!    tenant*, with the PowerShell that enables it;
//! 5. sends (`MAIL FROM`, `RCPT TO`, `DATA`) and quits; [`ping`](connector::MessageOutbound::ping)
//!    stops after signing in, or, with [`SmtpOutbound::ping_from`], after `MAIL FROM:<alias>`,
//!    `RCPT TO` and `RSET` (a check of the right to send as the alias at the envelope, where
//!    Exchange Online is reported to refuse it; the `From` header is checked only after
//!    `DATA`, which a ping never sends).
//!
//! Tokens never appear in `Debug`, `Display`, logs or errors: [`AccessToken`] is redacted, and
//! the connection log records verbs, reply codes and durations only.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use connector::{Envelope, MessageOutbound, OutgoingMessage};
//! use msauth::{Authority, ClientCredential, ClientSecret, Cloud, Tenant, TokenProvider};
//! use smtp_mail::{SmtpConfig, SmtpOutbound, APP_SCOPE};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // App-only: SMTP.SendAsApp, admin consent, and the service principal registered in Exchange.
//! let authority = Authority::microsoft(Cloud::Global, Tenant::parse("contoso.com")?)?;
//! let tokens = TokenProvider::builder(authority, "<client id>")
//!     .credential(ClientCredential::Secret(ClientSecret::new("<secret>")))
//!     .scopes([APP_SCOPE])
//!     .build()?;
//! let out = SmtpOutbound::new(SmtpConfig::office365("helpdesk@contoso.com"), Arc::new(tokens))?;
//!
//! let report = out.ping().await; // connects, STARTTLS, AUTH XOAUTH2, QUIT
//! println!("{report}");
//!
//! let mime = b"From: helpdesk@contoso.com\r\nTo: customer@fabrikam.com\r\n\
//!              Subject: Ticket 42\r\n\r\nWe are on it.\r\n".to_vec();
//! let msg = OutgoingMessage::raw(
//!     Envelope::new("helpdesk@contoso.com", vec!["customer@fabrikam.com".into()]),
//!     mime,
//! );
//! match out.send(&msg).await {
//!     Ok(receipt) => println!("queued: {:?}", receipt.id),
//!     Err(e) if e.auth_problem().is_some() => {
//!         // e.g. "5.7.139: SMTP AUTH is disabled for this mailbox or tenant. an Exchange
//!         // administrator must allow SMTP client submission: Set-CASMailbox ..."
//!         eprintln!("{}", e.auth_problem().map(|p| p.to_string()).unwrap_or_default());
//!     }
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Other servers
//!
//! Sovereign clouds use other hosts and other token audiences, both from msauth's `Cloud`:
//! [`SmtpConfig::exchange_online`] (`smtp.office365.us` for GCC High, for example) with a token
//! for `cloud.smtp().app_scope()` or `cloud.smtp().delegated_scope("SMTP.Send")`
//! ([`APP_SCOPE`] and [`DELEGATED_SCOPE`] are the global cloud's). On-premises Exchange:
//! [`SmtpConfig::with_server`],
//! [`SmtpConfig::with_root_certificate_pem`] for a private CA, and [`Security::ImplicitTls`]
//! for port 465. [`Security::DangerousPlaintext`] (no TLS, the token in clear) is refused by
//! [`SmtpOutbound::new`] unless the host is loopback (`localhost`, `127.0.0.0/8`, `::1`). The sandbox (`sandbox::Sandbox::smtp_addr`) offers `STARTTLS` with a
//! certificate for `127.0.0.1` issued by `Sandbox::smtp_ca_pem`, so tests run the same path as
//! production.
//!
//! # Refusals and what they become
//!
//! | Server says | [`connector::ErrorKind`] | Retried? |
//! |---|---|---|
//! | `334 <base64 JSON>` then `535 5.7.3` | `Authentication`, with the decoded challenge | once, with a fresh token |
//! | `535 5.7.3` to an app-only token | `Authentication`: [`app_token_refused`] — the service principal must be registered in Exchange (`New-ServicePrincipal`) and hold FullAccess on the mailbox (`Add-MailboxPermission`) | once, with a fresh token |
//! | `535 5.7.139` | `Authentication`: SMTP AUTH disabled | no |
//! | `550 5.7.60` (`MAIL FROM`), `554 5.2.252 SendAsDenied` (`From`) | `Refused`: which mailbox lacks Send As on which address, and the `Add-RecipientPermission` that grants it ([`connector::send_as_denied`]) | no |
//! | `4xx` | `Transient` (not taken effect) | by the caller |
//! | connection lost during `DATA` | `Transient`, `may_have_taken_effect` | not blindly |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod diagnosis;
mod outbound;
mod token;

pub use config::{Security, SmtpConfig};
pub use diagnosis::{AuthChallenge, Reply, app_token_refused, smtp_auth_disabled, token_refused};
pub use outbound::SmtpOutbound;
pub use token::{APP_SCOPE, AccessToken, DELEGATED_SCOPE, FnTokenSource, StaticToken, TokenSource};
