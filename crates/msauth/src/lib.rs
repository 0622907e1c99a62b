//! # msauth: the Microsoft identity platform for mail integrations
//!
//! Sign-in flows, tokens, consent and — above all — diagnosis of every failure in terms a person
//! can act on.
//!
//! ## Design
//!
//! * **Sans-IO core.** Every call to an identity endpoint is a value that builds an
//!   `http::Request<Vec<u8>>` ([`TokenRequest`], [`DeviceCodeRequest`],
//!   [`Authority::discovery_request`]) and a function that parses an `http::Response<&[u8]>`
//!   ([`parse_token_response`], [`DeviceCodeRequest::parse_response`]). Time is an argument.
//!   Multi-step flows are explicit state machines ([`DeviceCodeFlow`], [`PendingAuthorization`]).
//! * **Thin I/O.** [`HttpClient`] (implemented by [`ReqwestClient`]: no redirects, body capped
//!   at 1 MiB) and [`AuthClient`] run those values.
//! * **Tokens for the mail crates.** [`TokenProvider`] hands out access tokens from a
//!   [`TokenStore`] ([`MemoryStore`], [`FileStore`]), refreshes ahead of expiry, single-flight.
//! * **Diagnosis.** Every [`AuthError`] has a [`Diagnosis`]; a 401/403 from Graph or EWS is
//!   diagnosed by [`diagnose_resource_challenge`]. See `TROUBLESHOOTING.md` for the code table.
//!   See the [`troubleshooting`] table.
//! * **Secrets** ([`ClientSecret`], [`AccessToken`], [`RefreshToken`], …) print as `[redacted]`.
//! * **Workspace vocabulary.** `From` conversions turn a [`Diagnosis`] into a
//!   `connector::AuthProblem` and an [`AuthError`] into a `connector::Error` of the right kind.
//! * **MSAL interop.** [`MsalCache`] reads MSAL's unified token cache (and writes a rotated refresh
//!   token back), so a person signed in with an MSAL-based tool keeps that sign-in.
//! * **National clouds.** [`Cloud`] (Global, UsGovL4, UsGovL5, China) carries the sign-in
//!   host and, per [`Service`] (Graph, EWS, SMTP), the endpoint and the token scopes, so a
//!   request and its token always name the same cloud (the table and its sources are on
//!   [`Cloud`]).
//! * **Emulators and other servers.** [`Authority::microsoft_layout`] (Microsoft's URL layout on
//!   another host, e.g. the sandbox), [`discover`] (OpenID Connect discovery) and
//!   [`Authority::custom`] (explicit endpoints). HTTPS is required except on loopback.
//!
//! * **Certificates.** [`CertificateCredential`] signs client assertions with an RSA key from PEM
//!   (PKCS#8 or PKCS#1) or from a password-protected PKCS#12 file (`.pfx`/`.p12`: PBES2 with
//!   AES-256-CBC and PBKDF2, as Windows and Azure export today, and the legacy 3DES and RC2 bags).
//!
//! Not supported: EC (ECDSA) certificate keys, the on-behalf-of and password grants.
//!
//! ## Getting a token for a daemon
//!
//! ```no_run
//! use msauth::{Authority, ClientCredential, ClientSecret, Cloud, Tenant, TokenProvider};
//! # async fn run() -> Result<(), msauth::AuthError> {
//! let authority = Authority::microsoft(Cloud::Global, Tenant::parse("contoso.onmicrosoft.com")?)?;
//! let provider = TokenProvider::builder(authority, "00000000-0000-0000-0000-000000000001")
//!     .credential(ClientCredential::Secret(ClientSecret::new("secret value")))
//!     .scopes(["https://graph.microsoft.com/.default"])
//!     .build()?;
//! match provider.access_token().await {
//!     Ok(token) => { let _header = msauth::AuthorizationHeader::authorization_header(&token); }
//!     Err(e) => eprintln!("{}", e.diagnosis().explain()),
//! }
//! # Ok(()) }
//! ```
//!
//! ## Signing a person in (device code) and keeping the sign-in
//!
//! ```no_run
//! use std::sync::Arc;
//! use msauth::{Authority, Cloud, FileStore, Tenant, TokenProvider};
//! # async fn run() -> Result<(), msauth::AuthError> {
//! let provider = TokenProvider::builder(Authority::microsoft(Cloud::Global, Tenant::Organizations)?, "app-id")
//!     .scopes(["offline_access", "https://graph.microsoft.com/Mail.ReadWrite"])
//!     .account("helpdesk@contoso.com")
//!     .store(Arc::new(FileStore::new("/var/lib/helpdesk/tokens.json")))
//!     .build()?;
//! if provider.access_token().await.is_err() {
//!     provider
//!         .sign_in_with_device_code(|flow| println!("{}", flow.message().unwrap_or(flow.user_code())))
//!         .await?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Reacting to a 401 from Graph or EWS
//!
//! ```no_run
//! # async fn run(provider: msauth::TokenProvider, status: http::StatusCode, headers: http::HeaderMap, body: Vec<u8>) -> Result<(), msauth::AuthError> {
//! let challenge = provider.diagnose_resource_challenge(status, &headers, &body);
//! if challenge.should_refresh() {
//!     // Once: a new token (with the claims of a CAE challenge), then retry the request.
//!     let _token = match challenge.claims() {
//!         Some(claims) => provider.refresh_with_claims(claims).await?,
//!         None => provider.force_refresh().await?,
//!     };
//! } else {
//!     eprintln!("{}", challenge.diagnosis().explain());
//! }
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod authcode;
mod authority;
mod cache;
mod cert;
mod cloud;
mod connector_glue;
mod consent;
mod device;
mod diagnosis;
mod error;
mod http;
mod loopback;
mod msal;
mod observe;
mod provider;
mod secret;
mod token;

pub use authcode::{AuthorizationRequest, PendingAuthorization};
pub use authority::{Authority, AuthorityError, Endpoints, Tenant, check_endpoint};
pub use cache::{CacheKey, CachedToken, FileStore, MemoryStore, StoreGuard, TokenStore};
pub use cert::{ASSERTION_LIFETIME, AssertionAlgorithm, CertificateCredential};
pub use cloud::{Cloud, Service, ServiceEndpoint, UnknownCloud};
pub use consent::{AdminConsentGranted, admin_consent_url, parse_admin_consent_callback};
pub use device::{DEFAULT_INTERVAL, DeviceCodeFlow, DeviceCodeRequest, DevicePoll, SLOW_DOWN_STEP};
pub use diagnosis::{
    Action, BearerChallenge, Diagnosis, HANDLED_CODES, Problem, ResourceChallenge, diagnose,
    diagnose_resource_challenge, merge_claims,
};
pub use error::{
    AuthError, CacheError, DeviceFlowError, ErrorResponse, Pkcs12Error, RedirectError,
    ResponseProblem, SendStage, ServiceError,
};
pub use http::{AuthClient, HttpClient, ReqwestClient, discover};
pub use loopback::LoopbackListener;
pub use msal::{MsalAccessToken, MsalAccount, MsalCache, MsalRefreshToken, same_environment};
pub use observe::{TokenObserver, TokenRequested, set_token_observer};
pub use provider::{
    Clock, DEFAULT_SKEW, ManualClock, SystemClock, TokenProvider, TokenProviderBuilder,
};
pub use secret::{
    AccessToken, AuthorizationCode, AuthorizationHeader, ClientAssertion, ClientSecret, DeviceCode,
    IdToken, PkceVerifier, Pkcs12Password, RefreshToken,
};
pub use token::{
    ClientCredential, Grant, MAX_BODY, TokenRequest, TokenResponse, parse_retry_after,
    parse_token_response,
};

/// The AADSTS code table: meaning, what the library does, what the person should do.
#[doc = include_str!("../TROUBLESHOOTING.md")]
pub mod troubleshooting {}

/// The package's name on crates.io, used in logs and user agents.
pub const CRATE_NAME: &str = "m365mail-msauth";
