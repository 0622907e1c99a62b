//! The thin I/O layer: an [`HttpClient`] trait, its reqwest implementation, and [`AuthClient`]
//! which runs the sans-IO requests of this crate.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use crate::authority::Authority;
use crate::device::{DeviceCodeFlow, DeviceCodeRequest, DevicePoll};
use crate::error::{AuthError, ResponseProblem, SendStage};
use crate::token::{ClientCredential, MAX_BODY, TokenRequest, TokenResponse, parse_token_response};

/// Sends one HTTP request and returns the whole response. Implement it to plug in another
/// client (or a replay in tests). Implementations must not follow redirects and must cap the
/// body (see [`MAX_BODY`]).
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync + fmt::Debug {
    /// Performs `request`.
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, AuthError>;
}

/// [`HttpClient`] over reqwest (rustls): no redirects, 30 s timeout, body capped at
/// [`MAX_BODY`].
#[derive(Clone, Debug)]
pub struct ReqwestClient {
    client: reqwest::Client,
    max_body: usize,
}

impl ReqwestClient {
    /// A client with the defaults.
    pub fn new() -> Result<Self, AuthError> {
        let client =
            httpcore::HttpClientBuilder::new(concat!("msauth/", env!("CARGO_PKG_VERSION")))
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| AuthError::Config(e.to_string()))?;
        Ok(ReqwestClient {
            client,
            max_body: MAX_BODY,
        })
    }

    /// Wraps an existing reqwest client. Make sure it does not follow redirects.
    pub fn from_client(client: reqwest::Client) -> Self {
        ReqwestClient {
            client,
            max_body: MAX_BODY,
        }
    }

    /// Changes the body limit.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

/// A failed exchange: never sent (refused, DNS) or maybe sent, described without the URL.
fn transport(e: &reqwest::Error) -> AuthError {
    AuthError::Transport {
        stage: if httpcore::log::never_sent(e) {
            SendStage::NotSent
        } else {
            SendStage::MaybeSent
        },
        message: httpcore::log::describe(e),
    }
}

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, AuthError> {
        let req = reqwest::Request::try_from(request).map_err(|e| AuthError::Transport {
            stage: SendStage::NotSent,
            message: httpcore::log::describe(&e),
        })?;
        let mut resp = self.client.execute(req).await.map_err(|e| transport(&e))?;
        let status = resp.status();
        let mut builder = http::Response::builder().status(status);
        for (k, v) in resp.headers() {
            builder = builder.header(k, v);
        }
        let body = match httpcore::read_capped(&mut resp, self.max_body).await {
            Ok(body) => body,
            Err(httpcore::BodyError::Transport(e)) if e.is_timeout() => return Err(transport(&e)),
            Err(e) => {
                return Err(AuthError::BadResponse {
                    status: status.as_u16(),
                    problem: match e {
                        httpcore::BodyError::TooLarge { .. } => {
                            ResponseProblem::TooLarge(self.max_body)
                        }
                        _ => ResponseProblem::Truncated,
                    },
                });
            }
        };
        builder.body(body).map_err(|e| AuthError::Transport {
            stage: SendStage::MaybeSent,
            message: e.to_string(),
        })
    }
}

/// Finds a custom authority's endpoints: `GET {issuer}/.well-known/openid-configuration`
/// (HTTPS, or HTTP on loopback), then [`Authority::from_openid_configuration`].
///
/// ```no_run
/// # async fn run() -> Result<(), msauth::AuthError> {
/// let http = msauth::ReqwestClient::new()?;
/// let authority = msauth::discover(&http, "https://idp.example/realms/mail").await?;
/// # let _ = authority; Ok(()) }
/// ```
pub async fn discover(http: &dyn HttpClient, issuer: &str) -> Result<Authority, AuthError> {
    let resp = http.execute(Authority::discovery_request(issuer)?).await?;
    let (parts, body) = resp.into_parts();
    let resp = http::Response::from_parts(parts, body.as_slice());
    if !resp.status().is_success() {
        return Err(crate::token::error_from_response(
            &resp,
            SystemTime::now(),
            None,
        ));
    }
    crate::token::check_json_body(&resp)?;
    Ok(Authority::from_openid_configuration(resp.body())?)
}

/// An application registration at one authority, able to run every flow.
///
/// Cheap to clone. Consent URLs in diagnoses are filled in from the configured scopes and
/// consent redirect URI.
///
/// ```no_run
/// use msauth::{AuthClient, Authority, ClientCredential, ClientSecret, Cloud, Tenant};
/// # async fn run() -> Result<(), msauth::AuthError> {
/// let authority = Authority::microsoft(Cloud::Global, Tenant::parse("contoso.onmicrosoft.com")?)?;
/// let client = AuthClient::new(authority, "app-id", ClientCredential::Secret(ClientSecret::new("value")))?;
/// let token = client.client_credentials(&["https://graph.microsoft.com/.default"]).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AuthClient {
    authority: Authority,
    client_id: String,
    credential: ClientCredential,
    http: Arc<dyn HttpClient>,
    consent_redirect: Option<Url>,
}

impl AuthClient {
    /// A client using [`ReqwestClient`].
    pub fn new(
        authority: Authority,
        client_id: impl Into<String>,
        credential: ClientCredential,
    ) -> Result<Self, AuthError> {
        Ok(Self::with_http(
            authority,
            client_id,
            credential,
            Arc::new(ReqwestClient::new()?),
        ))
    }

    /// A client using `http`.
    pub fn with_http(
        authority: Authority,
        client_id: impl Into<String>,
        credential: ClientCredential,
        http: Arc<dyn HttpClient>,
    ) -> Self {
        AuthClient {
            authority,
            client_id: client_id.into(),
            credential,
            http,
            consent_redirect: None,
        }
    }

    /// The redirect URI put into admin consent URLs of diagnoses.
    pub fn with_consent_redirect(mut self, redirect: Url) -> Self {
        self.consent_redirect = Some(redirect);
        self
    }

    /// The authority.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }
    /// The client (application) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The credential.
    pub fn credential(&self) -> &ClientCredential {
        &self.credential
    }
    /// The HTTP client.
    pub fn http(&self) -> &Arc<dyn HttpClient> {
        &self.http
    }

    /// The admin consent URL for `scopes`, if the authority has a consent endpoint.
    pub fn admin_consent_url(&self, scopes: &[&str]) -> Option<Url> {
        crate::consent::admin_consent_url(
            &self.authority,
            &self.client_id,
            scopes,
            self.consent_redirect.as_ref(),
            None,
        )
        .ok()
    }

    /// Sends a token request and parses the answer. `scopes_for_consent` go into the admin
    /// consent URL of consent-related diagnoses; `now` is read before sending (for assertions)
    /// and after the response arrives (for expiry).
    pub async fn request_token(
        &self,
        request: &TokenRequest,
        scopes_for_consent: &[&str],
        now: impl Fn() -> SystemTime,
    ) -> Result<TokenResponse, AuthError> {
        let http_req = request.to_http(&self.authority, &self.credential, now())?;
        let endpoint = endpoint_of(http_req.uri());
        let started = std::time::Instant::now();
        let result = match self.http.execute(http_req).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let consent = self.admin_consent_url(scopes_for_consent);
                parse_token_response(
                    http::Response::from_parts(parts, body.as_slice()),
                    now(),
                    consent.as_ref(),
                )
            }
            Err(e) => Err(e),
        }
        .map_err(|e| not_found(e, endpoint));
        crate::observe::note_token_request(&crate::TokenRequested::new(
            request.grant().grant_type(),
            result.is_ok(),
            started.elapsed(),
        ));
        result
    }

    /// Redeems the code of a browser sign-in (see [`PendingAuthorization`](crate::PendingAuthorization)).
    pub async fn redeem_code(
        &self,
        pending: &crate::PendingAuthorization,
        code: crate::AuthorizationCode,
    ) -> Result<TokenResponse, AuthError> {
        let req = pending.token_request(code);
        let scopes: Vec<&str> = pending.scopes().iter().map(String::as_str).collect();
        self.request_token(&req, &scopes, SystemTime::now).await
    }

    /// Refreshes: the response's refresh token (if any) replaces `refresh_token`.
    pub async fn refresh(
        &self,
        refresh_token: crate::RefreshToken,
        scopes: &[&str],
    ) -> Result<TokenResponse, AuthError> {
        let req = TokenRequest::refresh(
            self.client_id.clone(),
            refresh_token,
            scopes.iter().copied(),
        );
        self.request_token(&req, scopes, SystemTime::now).await
    }

    /// App-only token (client credentials).
    pub async fn client_credentials(&self, scopes: &[&str]) -> Result<TokenResponse, AuthError> {
        let req = TokenRequest::client_credentials(self.client_id.clone(), scopes.iter().copied());
        self.request_token(&req, scopes, SystemTime::now).await
    }

    /// Starts a device-code sign-in.
    pub async fn start_device_code(&self, scopes: &[&str]) -> Result<DeviceCodeFlow, AuthError> {
        let start = DeviceCodeRequest::new(self.client_id.clone(), scopes.iter().copied());
        let resp = self.http.execute(start.to_http(&self.authority)?).await?;
        let (parts, body) = resp.into_parts();
        start.parse_response(
            http::Response::from_parts(parts, body.as_slice()),
            SystemTime::now(),
        )
    }

    /// Polls a device-code flow until it ends, sleeping between polls as the flow says.
    pub async fn finish_device_code(
        &self,
        flow: &mut DeviceCodeFlow,
    ) -> Result<TokenResponse, AuthError> {
        loop {
            if let Ok(wait) = flow.next_poll_at().duration_since(SystemTime::now()) {
                tokio::time::sleep(wait).await;
            }
            let req = flow.poll_request(&self.authority, &self.credential, SystemTime::now())?;
            let resp = self.http.execute(req).await?;
            let (parts, body) = resp.into_parts();
            match flow.handle_response(
                http::Response::from_parts(parts, body.as_slice()),
                SystemTime::now(),
            )? {
                DevicePoll::Pending { .. } => continue,
                DevicePoll::Token(t) => return Ok(*t),
            }
        }
    }
}

/// The endpoint of a request, for a person: scheme, host, port and path (token endpoints take
/// their parameters in the body; a query string is left out all the same).
fn endpoint_of(uri: &http::Uri) -> String {
    let mut u = uri.clone().into_parts();
    u.path_and_query = uri.path().parse().ok();
    http::Uri::from_parts(u)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| uri.path().to_owned())
}

/// A 404 that is not the identity service's JSON error means there is no such endpoint there:
/// a configuration error naming the URL, not a bad response worth retrying.
fn not_found(e: AuthError, url: String) -> AuthError {
    match e {
        AuthError::BadResponse {
            status: 404,
            problem,
        } => AuthError::EndpointNotFound { url, problem },
        e => e,
    }
}
