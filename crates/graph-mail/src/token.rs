//! Where access tokens come from, and what a 401 means.
//!
//! The client asks a [`TokenSource`] for a bearer token before each request, asks it once for a
//! fresh one when Graph answers 401, and asks it to [`diagnose`](TokenSource::diagnose) the 401
//! when the fresh token is refused too. `msauth`'s [`TokenProvider`](msauth::TokenProvider)
//! implements the trait (delegated and app-only alike); [`FnTokenSource`] wraps a closure, for
//! tests and for tokens obtained elsewhere.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use connector::{AuthProblem, Error};

/// An access token. It never appears in `Debug` or `Display` output.
///
/// ```
/// let t = graph_mail::BearerToken::new("eyJ0eXAiOi.secret.value");
/// assert_eq!(format!("{t:?}"), "BearerToken([redacted])");
/// assert_eq!(t.secret(), "eyJ0eXAiOi.secret.value");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

impl fmt::Display for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a 401 from Graph means and whether a fresh token may cure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// What a person must do if a fresh token does not help.
    pub problem: AuthProblem,
    /// Whether asking for a fresh token may help (expired token, claims challenge).
    pub refresh: bool,
    /// A claims challenge to pass to the next token request (Conditional Access, CAE).
    pub claims: Option<String>,
}

/// A source of access tokens for Graph.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for the next request (cached while it is fresh).
    async fn token(&self) -> Result<BearerToken, Error>;

    /// A new token, bypassing any cache, after Graph refused the current one; `claims` is the
    /// claims challenge Graph sent, if any.
    async fn refresh(&self, claims: Option<&str>) -> Result<BearerToken, Error>;

    /// What a 401 (or a 403 with a bearer challenge) means. The default reads the
    /// `WWW-Authenticate` header's `error`, `error_description` and `claims` parameters.
    fn diagnose(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> Challenge {
        diagnose_minimal(status, headers, body)
    }
}

/// Reads a bearer challenge without `msauth`: enough to say "sign-in was refused" and why.
pub fn diagnose_minimal(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Challenge {
    let header = headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let param = |name: &str| bearer_param(header, name);
    let error = param("error");
    let description = param("error_description")
        .or_else(|| crate::api::GraphError::parse(status, headers, body).message)
        .unwrap_or_else(|| format!("Graph refused the access token (HTTP {status})"));
    let claims = param("claims");
    let refresh = status == 401;
    let mut problem = AuthProblem::new(
        description,
        "sign in again; if this persists, check that an administrator granted the application its Mail permissions",
    );
    if let Some(e) = error {
        problem = problem.with_code(e);
    }
    if let Some(c) = &claims {
        problem = problem.with_claims(c.clone());
    }
    Challenge {
        problem,
        refresh,
        claims,
    }
}

/// One `name="value"` (or `name=value`) parameter of a `WWW-Authenticate` header.
fn bearer_param(header: &str, name: &str) -> Option<String> {
    // Hand-written: the header grammar (RFC 7235 auth-params) is small, and msauth's full
    // parser is used whenever an msauth provider is the token source.
    let mut rest = header;
    while let Some(pos) = rest.find(name) {
        let before_ok = pos == 0
            || rest[..pos]
                .chars()
                .next_back()
                .is_some_and(|c| c == ' ' || c == ',');
        let after = &rest[pos + name.len()..];
        if before_ok && let Some(v) = after.trim_start().strip_prefix('=') {
            let v = v.trim_start();
            return Some(if let Some(q) = v.strip_prefix('"') {
                q.split('"').next().unwrap_or("").to_owned()
            } else {
                v.split(',').next().unwrap_or("").trim().to_owned()
            });
        }
        rest = after;
    }
    None
}

type TokenFn = dyn Fn(bool) -> Result<String, Error> + Send + Sync;

/// A token source over a closure called with `true` when a fresh token is needed.
///
/// ```
/// use graph_mail::{FnTokenSource, TokenSource};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let tokens = FnTokenSource::new(|_fresh| Ok("token-from-elsewhere".to_owned()));
/// assert_eq!(tokens.token().await?.secret(), "token-from-elsewhere");
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
    async fn token(&self) -> Result<BearerToken, Error> {
        (self.0)(false).map(BearerToken::new)
    }

    async fn refresh(&self, _claims: Option<&str>) -> Result<BearerToken, Error> {
        (self.0)(true).map(BearerToken::new)
    }
}

fn from_auth_error(e: &msauth::AuthError) -> Error {
    let d = e.diagnosis();
    if e.is_retryable() {
        let mut err = Error::transient(format!("getting a token: {}", d.summary()));
        if let Some(after) = d.retry_after() {
            err = err.with_retry_after(after);
        }
        return err.with_delivery(connector::Delivery::NotSent);
    }
    Error::auth(AuthProblem::from(&d)).with_delivery(connector::Delivery::NotSent)
}

#[async_trait]
impl TokenSource for msauth::TokenProvider {
    async fn token(&self) -> Result<BearerToken, Error> {
        self.access_token()
            .await
            .map(|t| BearerToken::new(t.secret()))
            .map_err(|e| from_auth_error(&e))
    }

    async fn refresh(&self, claims: Option<&str>) -> Result<BearerToken, Error> {
        let t = match claims {
            Some(c) => self.refresh_with_claims(c).await,
            None => self.force_refresh().await,
        };
        t.map(|t| BearerToken::new(t.secret()))
            .map_err(|e| from_auth_error(&e))
    }

    fn diagnose(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> Challenge {
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::UNAUTHORIZED);
        let c = self.diagnose_resource_challenge(status, headers, body);
        Challenge {
            problem: AuthProblem::from(c.diagnosis()),
            refresh: c.should_refresh(),
            claims: c.claims().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted() {
        let t = BearerToken::new("abc.def.ghi");
        assert!(!format!("{t:?} {t}").contains("abc"));
    }

    #[test]
    fn minimal_diagnosis_reads_the_bearer_challenge() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(
                "Bearer realm=\"\", authorization_uri=\"https://login.example/common/oauth2/authorize\", client_id=\"00000003\", error=\"invalid_token\", error_description=\"Consent for Mail.Read was withdrawn\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnt9fQ==\"",
            ),
        );
        let c = diagnose_minimal(401, &h, b"");
        assert_eq!(c.problem.code.as_deref(), Some("invalid_token"));
        assert_eq!(c.problem.summary, "Consent for Mail.Read was withdrawn");
        assert_eq!(c.claims.as_deref(), Some("eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="));
        assert!(c.refresh);
    }

    #[test]
    fn minimal_diagnosis_without_header_uses_the_graph_error() {
        let body = br#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}"#;
        let c = diagnose_minimal(401, &http::HeaderMap::new(), body);
        assert_eq!(c.problem.summary, "Access token has expired.");
        assert_eq!(c.problem.code, None);
    }

    #[test]
    fn param_names_must_stand_alone() {
        assert_eq!(
            bearer_param("Bearer suberror=\"x\", error=\"y\"", "error").as_deref(),
            Some("y")
        );
        assert_eq!(
            bearer_param("Bearer error=plain, a=b", "error").as_deref(),
            Some("plain")
        );
        assert_eq!(bearer_param("Bearer", "error"), None);
    }
}
