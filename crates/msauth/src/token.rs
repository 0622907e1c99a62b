//! Token-endpoint requests and responses as values: build an `http::Request`, parse an
//! `http::Response`. No I/O here; [`crate::HttpClient`] performs them.

use std::fmt;
use std::time::{Duration, SystemTime};

use url::Url;

use crate::authority::Authority;
use crate::cert::CertificateCredential;
use crate::diagnosis::diagnose;
use crate::error::{AuthError, ErrorResponse, ResponseProblem, ServiceError};
use crate::secret::{
    AccessToken, AuthorizationCode, ClientSecret, DeviceCode, IdToken, PkceVerifier, RefreshToken,
};

/// `t + d`, saturating at a far-future time instead of panicking on overflow (lifetimes come
/// from servers and files).
pub(crate) fn later(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d)
        .or_else(|| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(1 << 33)))
        .unwrap_or(t)
}

/// Largest response body accepted from identity endpoints.
pub const MAX_BODY: usize = 1024 * 1024;

/// How the application proves who it is at the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientCredential {
    /// A public client (desktop, CLI, device): no secret.
    None,
    /// A client secret, sent as `client_secret` in the form body.
    Secret(ClientSecret),
    /// A certificate: a signed JWT client assertion (RFC 7523).
    Certificate(CertificateCredential),
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::None => f.write_str("ClientCredential::None"),
            ClientCredential::Secret(s) => write!(f, "ClientCredential::Secret({s:?})"),
            ClientCredential::Certificate(c) => write!(f, "ClientCredential::Certificate({c:?})"),
        }
    }
}

impl ClientCredential {
    /// Whether this is a confidential client (secret or certificate).
    pub fn is_confidential(&self) -> bool {
        !matches!(self, ClientCredential::None)
    }
}

/// The grant of a token request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Grant {
    /// Redeem an authorization code (with its PKCE verifier and the same redirect URI).
    AuthorizationCode {
        /// The code from the redirect.
        code: AuthorizationCode,
        /// The redirect URI used in the authorization request.
        redirect_uri: Url,
        /// The PKCE verifier.
        verifier: PkceVerifier,
    },
    /// Use a refresh token.
    RefreshToken(RefreshToken),
    /// App-only token (client credentials); needs a confidential client.
    ClientCredentials,
    /// Poll the device-code flow.
    DeviceCode(DeviceCode),
}

impl Grant {
    pub(crate) fn grant_type(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
            Grant::DeviceCode(_) => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

/// One call to the token endpoint.
///
/// ```
/// use msauth::{Authority, ClientCredential, ClientSecret, Cloud, Tenant, TokenRequest};
/// let authority = Authority::microsoft(Cloud::Global, Tenant::parse("contoso.com")?)?;
/// let req = TokenRequest::client_credentials("app-id", ["https://graph.microsoft.com/.default"])
///     .to_http(&authority, &ClientCredential::Secret(ClientSecret::new("s")), std::time::SystemTime::now())?;
/// assert_eq!(req.method(), http::Method::POST);
/// assert_eq!(
///     req.body().as_slice(),
///     b"client_id=app-id&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=s"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenRequest {
    client_id: String,
    grant: Grant,
    scopes: Vec<String>,
    claims: Option<String>,
}

impl TokenRequest {
    /// A request with any grant.
    pub fn new(
        client_id: impl Into<String>,
        grant: Grant,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        TokenRequest {
            client_id: client_id.into(),
            grant,
            scopes: scopes.into_iter().map(Into::into).collect(),
            claims: None,
        }
    }

    /// Client credentials (app-only). Scope must be `{resource}/.default`.
    pub fn client_credentials(
        client_id: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self::new(client_id, Grant::ClientCredentials, scopes)
    }

    /// Refresh. The response's refresh token (if any) replaces this one.
    pub fn refresh(
        client_id: impl Into<String>,
        refresh_token: RefreshToken,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self::new(client_id, Grant::RefreshToken(refresh_token), scopes)
    }

    /// Adds a `claims` request (JSON), e.g. from a claims challenge.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// The grant.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The form body. Field order is fixed so tests can compare bytes.
    pub fn form_body(
        &self,
        authority: &Authority,
        credential: &ClientCredential,
        now: SystemTime,
    ) -> Result<Vec<u8>, AuthError> {
        if matches!(self.grant, Grant::ClientCredentials) && !credential.is_confidential() {
            return Err(AuthError::Config(
                "client credentials need a client secret or certificate".into(),
            ));
        }
        let mut f = url::form_urlencoded::Serializer::new(String::new());
        f.append_pair("client_id", &self.client_id);
        f.append_pair("grant_type", self.grant.grant_type());
        match &self.grant {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                f.append_pair("code", code.secret());
                f.append_pair("redirect_uri", redirect_uri.as_str());
                f.append_pair("code_verifier", verifier.secret());
            }
            Grant::RefreshToken(rt) => {
                f.append_pair("refresh_token", rt.secret());
            }
            Grant::ClientCredentials => {}
            Grant::DeviceCode(dc) => {
                f.append_pair("device_code", dc.secret());
            }
        }
        if !self.scopes.is_empty() {
            f.append_pair("scope", &self.scopes.join(" "));
        }
        if let Some(c) = &self.claims {
            f.append_pair("claims", c);
        }
        append_client_auth(&mut f, &self.client_id, authority, credential, now)?;
        Ok(f.finish().into_bytes())
    }

    /// The HTTP request: `POST {token endpoint}`, form-encoded.
    pub fn to_http(
        &self,
        authority: &Authority,
        credential: &ClientCredential,
        now: SystemTime,
    ) -> Result<http::Request<Vec<u8>>, AuthError> {
        let body = self.form_body(authority, credential, now)?;
        form_post(authority.token_endpoint(), body)
    }
}

pub(crate) fn append_client_auth(
    f: &mut url::form_urlencoded::Serializer<'_, String>,
    client_id: &str,
    authority: &Authority,
    credential: &ClientCredential,
    now: SystemTime,
) -> Result<(), AuthError> {
    match credential {
        ClientCredential::None => {}
        ClientCredential::Secret(s) => {
            f.append_pair("client_secret", s.secret());
        }
        ClientCredential::Certificate(c) => {
            let jwt = c.assertion(
                client_id,
                authority.token_endpoint(),
                now,
                uuid::Uuid::new_v4(),
            )?;
            f.append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            );
            f.append_pair("client_assertion", jwt.secret());
        }
    }
    Ok(())
}

pub(crate) fn form_post(url: &Url, body: Vec<u8>) -> Result<http::Request<Vec<u8>>, AuthError> {
    http::Request::post(url.as_str())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| AuthError::Config(format!("cannot build request: {e}")))
}

/// A successful token response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// `Bearer` (as sent).
    pub token_type: String,
    /// When the access token expires (`now + expires_in`).
    pub expires_at: SystemTime,
    /// Microsoft's extended lifetime for outages (`ext_expires_in`), if sent.
    pub ext_expires_at: Option<SystemTime>,
    /// The new refresh token, if sent (only with `offline_access`; never for app-only).
    pub refresh_token: Option<RefreshToken>,
    /// Granted scopes, if sent.
    pub scope: Option<String>,
    /// ID token, if `openid` was requested.
    pub id_token: Option<IdToken>,
    /// Microsoft `client_info` (base64url JSON with `uid` and `utid`), if sent.
    pub client_info: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawToken {
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    ext_expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    client_info: Option<String>,
}

fn seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks status-independent things about a response body: size, content type, HTML.
pub(crate) fn check_json_body(resp: &http::Response<&[u8]>) -> Result<(), AuthError> {
    let status = resp.status().as_u16();
    let body = *resp.body();
    let bad = |problem| Err(AuthError::BadResponse { status, problem });
    if body.len() > MAX_BODY {
        return bad(ResponseProblem::TooLarge(MAX_BODY));
    }
    if resp.status().is_redirection() {
        return bad(ResponseProblem::Redirect);
    }
    let ct = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let trimmed = body.trim_ascii_start();
    if ct.contains("html") || trimmed.starts_with(b"<") {
        return bad(ResponseProblem::Html);
    }
    if body.trim_ascii().is_empty() {
        return bad(ResponseProblem::Empty);
    }
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !(mime.is_empty()
        || mime == "application/json"
        || mime.ends_with("+json")
        || mime == "text/json")
    {
        return bad(ResponseProblem::WrongContentType(mime.to_owned()));
    }
    Ok(())
}

/// Checks a response body ([`check_json_body`]) and reads it as `T`: the one reader of the
/// identity provider's JSON answers (tokens, device codes, OAuth errors).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    resp: &http::Response<&[u8]>,
) -> Result<T, AuthError> {
    check_json_body(resp)?;
    serde_json::from_slice(resp.body()).map_err(|e| AuthError::BadResponse {
        status: resp.status().as_u16(),
        problem: json_problem(&e),
    })
}

/// A readable JSON answer that lacks or misstates a member (`no access_token`).
pub(crate) fn malformed(status: u16, what: &str) -> AuthError {
    AuthError::BadResponse {
        status,
        problem: ResponseProblem::Malformed(what.into()),
    }
}

pub(crate) fn json_problem(e: &serde_json::Error) -> ResponseProblem {
    if e.is_eof() {
        ResponseProblem::Truncated
    } else {
        ResponseProblem::Malformed(e.to_string())
    }
}

/// Parses `Retry-After`: the workspace's one reader ([`httpcore::retry_after`]: delta seconds,
/// integer or decimal, or an HTTP date relative to `now`, capped at a day).
pub use httpcore::retry_after as parse_retry_after;

/// Turns a non-success response into an [`AuthError`]: a [`ServiceError`] with a diagnosis when
/// the body is an OAuth error (or the status is 429/5xx), otherwise a [`AuthError::BadResponse`].
pub(crate) fn error_from_response(
    resp: &http::Response<&[u8]>,
    now: SystemTime,
    consent_url: Option<&Url>,
) -> AuthError {
    let status = resp.status().as_u16();
    let retry_after = parse_retry_after(resp.headers(), now);
    let parsed = json_body::<ErrorResponse>(resp);
    match parsed {
        Ok(body) if !body.error.is_empty() => service_error(status, body, retry_after, consent_url),
        Ok(_) | Err(_) if status == 429 || status >= 500 => service_error(
            status,
            ErrorResponse::new(format!("http_{status}")),
            retry_after,
            consent_url,
        ),
        Ok(_) => AuthError::BadResponse {
            status,
            problem: ResponseProblem::Malformed("error response without an `error` member".into()),
        },
        Err(e) => e,
    }
}

fn service_error(
    status: u16,
    body: ErrorResponse,
    retry_after: Option<Duration>,
    consent_url: Option<&Url>,
) -> AuthError {
    let diagnosis = diagnose(status, &body, retry_after, consent_url);
    AuthError::Service(Box::new(ServiceError {
        status,
        response: body,
        retry_after,
        diagnosis,
    }))
}

/// Parses a token-endpoint response.
///
/// `now` is when the response arrived; `expires_at = now + expires_in`. `consent_url`, if
/// given, is attached to consent-related diagnoses.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let resp = http::Response::builder()
///     .status(200)
///     .header("content-type", "application/json; charset=utf-8")
///     .body(&br#"{"token_type":"Bearer","expires_in":"3599","access_token":"at"}"#[..])?;
/// let token = msauth::parse_token_response(resp, now, None)?;
/// assert_eq!(token.expires_at, now + Duration::from_secs(3599));
/// assert!(token.refresh_token.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_token_response(
    resp: http::Response<&[u8]>,
    now: SystemTime,
    consent_url: Option<&Url>,
) -> Result<TokenResponse, AuthError> {
    if !resp.status().is_success() {
        return Err(error_from_response(&resp, now, consent_url));
    }
    let status = resp.status().as_u16();
    let raw: RawToken = json_body(&resp)?;
    let malformed = |m: &str| malformed(status, m);
    let access_token = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no access_token"))?;
    let expires_in = match &raw.expires_in {
        Some(v) => seconds(v).ok_or_else(|| malformed("expires_in is not a number"))?,
        // RFC 6749 makes expires_in RECOMMENDED; assume the common one hour if absent.
        None => 3600,
    };
    let ext = raw.ext_expires_in.as_ref().and_then(seconds);
    Ok(TokenResponse {
        access_token: AccessToken::new(access_token),
        token_type: raw.token_type.unwrap_or_else(|| "Bearer".into()),
        expires_at: later(now, Duration::from_secs(expires_in)),
        ext_expires_at: ext.map(|s| later(now, Duration::from_secs(s))),
        refresh_token: raw
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(RefreshToken::new),
        scope: raw.scope,
        id_token: raw.id_token.map(IdToken::new),
        client_info: raw.client_info,
    })
}
