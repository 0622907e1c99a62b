//! Where the XOAUTH2 access token comes from.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use connector::{AuthProblem, Error};

use crate::diagnosis::AuthChallenge;

/// The delegated scope for SMTP AUTH (`SMTP.Send`, on the Office 365 Exchange Online API).
pub const DELEGATED_SCOPE: &str = "https://outlook.office.com/SMTP.Send";

/// The app-only scope for SMTP AUTH (grants the `SMTP.SendAsApp` role the admin consented to).
pub const APP_SCOPE: &str = "https://outlook.office365.com/.default";

/// An access token for XOAUTH2. It never appears in `Debug` or `Display` output.
///
/// ```
/// let t = smtp_mail::SmtpToken::new("eyJ0eXAi.secret");
/// assert_eq!(format!("{t:?}"), "SmtpToken([redacted])");
/// assert_eq!(t.to_string(), "[redacted]");
/// assert_eq!(t.secret(), "eyJ0eXAi.secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpToken(String);

impl SmtpToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        SmtpToken(token.into())
    }

    /// The token itself, for the SASL response only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmtpToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpToken([redacted])")
    }
}

impl fmt::Display for SmtpToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A source of access tokens for SMTP AUTH.
///
/// `msauth`'s [`TokenProvider`](msauth::TokenProvider) implements it (configure it with
/// [`DELEGATED_SCOPE`] or [`APP_SCOPE`]); [`FnTokenSource`] wraps a closure for tests and for
/// tokens obtained elsewhere.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for the next sign-in (cached while it is fresh).
    async fn token(&self) -> Result<SmtpToken, Error>;

    /// A new token, bypassing any cache, after the server refused the current one.
    async fn refresh(&self) -> Result<SmtpToken, Error>;

    /// What a refusal means, for a person. The default has no identity-platform knowledge and
    /// returns `None` (the outbound then describes the refusal itself).
    fn diagnose(&self, challenge: &AuthChallenge) -> Option<AuthProblem> {
        let _ = challenge;
        None
    }
}

#[async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    async fn token(&self) -> Result<SmtpToken, Error> {
        (**self).token().await
    }

    async fn refresh(&self) -> Result<SmtpToken, Error> {
        (**self).refresh().await
    }

    fn diagnose(&self, challenge: &AuthChallenge) -> Option<AuthProblem> {
        (**self).diagnose(challenge)
    }
}

#[async_trait]
impl TokenSource for msauth::TokenProvider {
    async fn token(&self) -> Result<SmtpToken, Error> {
        self.access_token()
            .await
            .map(|t| SmtpToken::new(t.secret()))
            .map_err(Error::from)
    }

    async fn refresh(&self) -> Result<SmtpToken, Error> {
        self.force_refresh()
            .await
            .map(|t| SmtpToken::new(t.secret()))
            .map_err(Error::from)
    }

    /// Reads the challenge's bearer parameters with msauth's resource-challenge diagnosis, with
    /// this application's admin consent URL filled in.
    fn diagnose(&self, challenge: &AuthChallenge) -> Option<AuthProblem> {
        let header = challenge.www_authenticate();
        let value = http::HeaderValue::from_str(&header).ok()?;
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::WWW_AUTHENTICATE, value);
        let c = self.diagnose_resource_challenge(http::StatusCode::UNAUTHORIZED, &headers, b"");
        Some(c.diagnosis().into())
    }
}

type TokenFn = dyn Fn(bool) -> Result<String, Error> + Send + Sync;

/// A token source over a closure called with `true` when a fresh token is needed.
///
/// ```
/// use smtp_mail::{FnTokenSource, TokenSource};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let tokens = FnTokenSource::new(|fresh| Ok(if fresh { "new" } else { "cached" }.to_owned()));
/// assert_eq!(tokens.token().await?.secret(), "cached");
/// assert_eq!(tokens.refresh().await?.secret(), "new");
/// # Ok::<(), connector::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct FnTokenSource(Arc<TokenFn>);

impl FnTokenSource {
    /// A source calling `f(fresh)`.
    pub fn new(f: impl Fn(bool) -> Result<String, Error> + Send + Sync + 'static) -> Self {
        FnTokenSource(Arc::new(f))
    }
}

impl fmt::Debug for FnTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTokenSource")
    }
}

#[async_trait]
impl TokenSource for FnTokenSource {
    async fn token(&self) -> Result<SmtpToken, Error> {
        (self.0)(false).map(SmtpToken::new)
    }

    async fn refresh(&self) -> Result<SmtpToken, Error> {
        (self.0)(true).map(SmtpToken::new)
    }
}
