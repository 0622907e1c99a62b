//! [`TokenProvider`]: access tokens for the mail crates, cached, refreshed ahead of expiry,
//! single-flight.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use url::Url;

use crate::authority::Authority;
use crate::cache::{CacheKey, CachedToken, MemoryStore, StoreGuard, TokenStore};
use crate::diagnosis::{Problem, ResourceChallenge};
use crate::error::{AuthError, CacheError};
use crate::http::{AuthClient, HttpClient, ReqwestClient};
use crate::secret::AccessToken;
use crate::token::{ClientCredential, Grant, TokenRequest, TokenResponse};

/// Default refresh-ahead margin: a token within 5 minutes of expiry is refreshed.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(300);

/// The time source of a provider. Tests use [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: SystemTime) -> Self {
        ManualClock(Arc::new(Mutex::new(t)))
    }
    /// Sets the time.
    pub fn set(&self, t: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
    /// Moves the time forward.
    pub fn advance(&self, d: Duration) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *g = crate::token::later(*g, d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Builds a [`TokenProvider`].
#[derive(Debug)]
#[must_use]
pub struct TokenProviderBuilder {
    authority: Authority,
    client_id: String,
    credential: ClientCredential,
    scopes: Vec<String>,
    account: Option<String>,
    store: Option<Arc<dyn TokenStore>>,
    clock: Arc<dyn Clock>,
    skew: Duration,
    http: Option<Arc<dyn HttpClient>>,
    consent_redirect: Option<Url>,
    capabilities: Vec<String>,
}

impl TokenProviderBuilder {
    /// Client capabilities to declare on every token request, e.g. `["cp1"]` to receive
    /// Continuous Access Evaluation claims challenges (and longer-lived tokens). Declaring `cp1`
    /// obliges the caller to handle claims challenges from every resource
    /// ([`TokenProvider::diagnose_resource_challenge`] and
    /// [`TokenProvider::refresh_with_claims`]).
    pub fn client_capabilities(
        mut self,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// The client credential (default: none, a public client).
    pub fn credential(mut self, credential: ClientCredential) -> Self {
        self.credential = credential;
        self
    }
    /// The scopes of the tokens (one resource).
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// The signed-in account (delegated tokens). Without an account, with a confidential
    /// credential and a `{resource}/.default` scope, the provider uses client credentials
    /// (app-only); otherwise it needs a saved sign-in ([`TokenProvider::save_sign_in`]).
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }
    /// The token store (default: a fresh [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Refresh-ahead margin (default [`DEFAULT_SKEW`]).
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }
    /// The HTTP client (default: [`ReqwestClient`]).
    pub fn http(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }
    /// Redirect URI used in admin consent URLs of diagnoses.
    pub fn consent_redirect(mut self, redirect: Url) -> Self {
        self.consent_redirect = Some(redirect);
        self
    }

    /// Builds the provider.
    pub fn build(self) -> Result<TokenProvider, AuthError> {
        if self.scopes.is_empty() {
            return Err(AuthError::Config(
                "a token provider needs at least one scope".into(),
            ));
        }
        // Catch this common scope mistake here, with a clear message, instead of as AADSTS70011
        // from the service. (Tenant and app-only checks are left to the service: a confidential
        // client without an account may also hold a delegated sign-in.)
        let resource_scopes: Vec<&str> = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !is_oidc_scope(s))
            .collect();
        let has_default = resource_scopes
            .iter()
            .any(|s| s.ends_with("/.default") || *s == ".default");
        if has_default && resource_scopes.len() > 1 {
            return Err(AuthError::Config(format!(
                "'{{resource}}/.default' cannot be combined with other scopes: {}",
                resource_scopes.join(" ")
            )));
        }
        let http = match self.http {
            Some(h) => h,
            None => Arc::new(ReqwestClient::new()?),
        };
        let mut client = AuthClient::with_http(
            self.authority.clone(),
            self.client_id.clone(),
            self.credential,
            http,
        );
        if let Some(r) = self.consent_redirect {
            client = client.with_consent_redirect(r);
        }
        let key = CacheKey::new(
            &self.authority,
            &self.client_id,
            self.account.as_deref(),
            &self.scopes,
        );
        Ok(TokenProvider {
            inner: Arc::new(Inner {
                client,
                key,
                scopes: self.scopes,
                // App-only (client credentials) needs a confidential client, no account and a
                // `{resource}/.default` scope; anything else without a saved sign-in asks for one.
                app_only: self.account.is_none() && has_default,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                clock: self.clock,
                skew: self.skew,
                memory: Mutex::new(None),
                flight: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                last_claims: Mutex::new(None),
                capabilities: self.capabilities,
            }),
        })
    }
}

/// Hands out access tokens: from memory while fresh, otherwise under the store's lock it reloads
/// the cache (another process may have refreshed), and only then asks the identity service —
/// once, however many callers are waiting (single-flight).
///
/// Cheap to clone; clones share cache and single-flight.
///
/// * A refresh token that the service declares dead (expired, revoked) is removed from the store,
///   so the next call reports [`AuthError::SignInRequired`] without a hopeless request.
/// * If a refresh *ahead of expiry* fails for a retryable reason, the still-valid token is
///   returned and the refresh is tried again on a later call.
/// * The provider never sleeps or retries by itself: a retryable error carries `retry_after`.
/// * Refresh tokens belong to an account and client, not a resource: without one of its own, a
///   provider borrows the newest refresh token of the same account saved under other scopes in
///   the same store, so one sign-in serves Graph and EWS.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
/// use msauth::*;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), AuthError> {
/// let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let provider = TokenProvider::builder(Authority::microsoft(Cloud::Global, Tenant::Organizations)?, "app")
///     .scopes(["offline_access", "Mail.Read"])
///     .account("alice@contoso.com")
///     .clock(Arc::new(clock.clone()))
///     .build()?;
/// // Without a sign-in there is nothing to hand out:
/// let err = provider.access_token().await.unwrap_err();
/// assert_eq!(err.diagnosis().action(), Action::SignIn);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: AuthClient,
    key: CacheKey,
    scopes: Vec<String>,
    app_only: bool,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    skew: Duration,
    memory: Mutex<Option<CachedToken>>,
    flight: tokio::sync::Mutex<()>,
    /// Bumped after every token obtained from the network.
    generation: AtomicU64,
    /// The claims sent with the newest network token.
    last_claims: Mutex<Option<String>>,
    capabilities: Vec<String>,
}

impl TokenProvider {
    /// Starts a builder for `client_id` at `authority`.
    pub fn builder(authority: Authority, client_id: impl Into<String>) -> TokenProviderBuilder {
        TokenProviderBuilder {
            authority,
            client_id: client_id.into(),
            credential: ClientCredential::None,
            scopes: Vec::new(),
            account: None,
            store: None,
            clock: Arc::new(SystemClock),
            skew: DEFAULT_SKEW,
            http: None,
            consent_redirect: None,
            capabilities: Vec::new(),
        }
    }

    /// The cache key of this provider's tokens.
    pub fn cache_key(&self) -> &CacheKey {
        &self.inner.key
    }

    /// The underlying client.
    pub fn client(&self) -> &AuthClient {
        &self.inner.client
    }

    /// A valid access token: cached, or refreshed if within the skew of expiry.
    pub async fn access_token(&self) -> Result<AccessToken, AuthError> {
        self.obtain(false, None).await
    }

    /// A new access token regardless of the cache (e.g. after a 401). Callers that were waiting
    /// while another caller got a new token share that token instead of asking again.
    pub async fn force_refresh(&self) -> Result<AccessToken, AuthError> {
        self.obtain(true, None).await
    }

    /// A new access token requested with `claims` (the decoded JSON of a claims challenge),
    /// merged with the declared client capabilities. Concurrent callers with the same claims
    /// share one request.
    pub async fn refresh_with_claims(&self, claims: &str) -> Result<AccessToken, AuthError> {
        self.obtain(true, Some(claims)).await
    }

    /// Stores the result of an interactive sign-in (auth code or device code) so that later
    /// [`access_token`](Self::access_token) calls use and refresh it.
    pub async fn save_sign_in(&self, response: &TokenResponse) -> Result<(), AuthError> {
        let _flight = self.inner.flight.lock().await;
        let entry = CachedToken::from_response(response, None);
        let (store, key, e2) = (
            self.inner.store.clone(),
            self.inner.key.clone(),
            entry.clone(),
        );
        blocking(move || {
            let _g = store.lock()?;
            store.save(&key, &e2)
        })
        .await?;
        *self.memory() = Some(entry);
        Ok(())
    }

    /// Runs a device-code sign-in for this provider's scopes and saves the result: `show` gets
    /// the flow once, to display [`DeviceCodeFlow::message`](crate::DeviceCodeFlow::message) (or the user code and
    /// verification URI) to the person. Polls at the server's interval until done.
    pub async fn sign_in_with_device_code(
        &self,
        show: impl FnOnce(&crate::DeviceCodeFlow),
    ) -> Result<AccessToken, AuthError> {
        let scopes: Vec<&str> = self.inner.scopes.iter().map(String::as_str).collect();
        let mut flow = self.inner.client.start_device_code(&scopes).await?;
        show(&flow);
        let token = self.inner.client.finish_device_code(&mut flow).await?;
        self.save_sign_in(&token).await?;
        Ok(token.access_token)
    }

    /// Forgets the cached tokens (memory and store).
    pub async fn sign_out(&self) -> Result<(), AuthError> {
        let _flight = self.inner.flight.lock().await;
        *self.memory() = None;
        let (store, key) = (self.inner.store.clone(), self.inner.key.clone());
        blocking(move || {
            let _g = store.lock()?;
            store.remove(&key)
        })
        .await
    }

    /// The scopes an administrator consents to: the configured ones without the OpenID Connect
    /// scopes, which need no consent.
    fn consent_scopes(&self) -> Vec<&str> {
        self.inner
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !is_oidc_scope(s))
            .collect()
    }

    /// The admin consent URL for this provider's scopes, if the authority supports it.
    pub fn admin_consent_url(&self) -> Option<Url> {
        self.inner.client.admin_consent_url(&self.consent_scopes())
    }

    /// [`diagnose_resource_challenge`](crate::diagnose_resource_challenge) with this
    /// application's admin consent URL filled in.
    pub fn diagnose_resource_challenge(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> ResourceChallenge {
        let c = crate::diagnosis::diagnose_resource_challenge(status, headers, body);
        match self.admin_consent_url() {
            Some(url) => c.with_consent_url(&url),
            None => c,
        }
    }

    fn last_claims(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.inner
            .last_claims
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Option<CachedToken>> {
        self.inner.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh_in_memory(&self) -> Option<AccessToken> {
        let now = self.inner.clock.now();
        self.memory()
            .as_ref()
            .and_then(|t| t.fresh_access_token(now, self.inner.skew).cloned())
    }

    async fn obtain(&self, force: bool, claims: Option<&str>) -> Result<AccessToken, AuthError> {
        if !force && let Some(t) = self.fresh_in_memory() {
            return Ok(t);
        }
        let generation_before = self.inner.generation.load(Ordering::SeqCst);
        let _flight = self.inner.flight.lock().await;
        if !force && let Some(t) = self.fresh_in_memory() {
            return Ok(t);
        }
        if force
            && self.inner.generation.load(Ordering::SeqCst) != generation_before
            && self.last_claims().as_deref() == claims
            && let Some(t) = self.memory().as_ref().and_then(|t| t.access_token.clone())
        {
            // Someone obtained a new token (with the same claims) while we waited: share it.
            return Ok(t);
        }
        let (store, key) = (self.inner.store.clone(), self.inner.key.clone());
        let (guard, cached, sibling_rt) = blocking(move || {
            let guard = store.lock()?;
            let cached = store.load(&key)?;
            let sibling = match cached.as_ref().and_then(|c| c.refresh_token.as_ref()) {
                Some(_) => None,
                None => store.find_refresh_token(&key)?,
            };
            Ok((guard, cached, sibling))
        })
        .await?;
        if !force
            && let Some(t) = cached
                .as_ref()
                .and_then(|c| c.fresh_access_token(self.inner.clock.now(), self.inner.skew))
                .cloned()
        {
            *self.memory() = cached;
            return Ok(t);
        }
        // No refresh token for these scopes: one of the same account and client (another
        // resource) works too.
        let sibling_key = sibling_rt.as_ref().map(|(k, _)| k.clone());
        let previous_rt = cached
            .as_ref()
            .and_then(|c| c.refresh_token.clone())
            .or(sibling_rt.map(|(_, rt)| rt));
        let client_id = self.inner.client.client_id().to_owned();
        let grant = match (
            &previous_rt,
            self.inner.app_only && self.inner.client.credential().is_confidential(),
        ) {
            (Some(rt), _) => Grant::RefreshToken(rt.clone()),
            (None, true) => Grant::ClientCredentials,
            (None, false) => {
                return Err(AuthError::SignInRequired(
                    "no saved sign-in for this account and scopes".into(),
                ));
            }
        };
        let is_refresh = matches!(grant, Grant::RefreshToken(_));
        let mut request = TokenRequest::new(client_id, grant, self.inner.scopes.clone());
        let caps: Vec<&str> = self.inner.capabilities.iter().map(String::as_str).collect();
        if let Some(c) = crate::diagnosis::merge_claims(claims, &caps)? {
            request = request.with_claims(c);
        }
        let consent_scopes = self.consent_scopes();
        let clock = self.inner.clock.clone();
        tracing::debug!(
            client_id = %self.inner.client.client_id(),
            authority = %self.inner.key.authority,
            grant = if is_refresh { "refresh_token" } else { "client_credentials" },
            with_claims = claims.is_some(),
            "requesting a token"
        );
        let result = self
            .inner
            .client
            .request_token(&request, &consent_scopes, || clock.now())
            .await;
        match result {
            Ok(resp) => {
                tracing::debug!(
                    client_id = %self.inner.client.client_id(),
                    rotated = resp.refresh_token.is_some(),
                    expires_at = crate::cache::unix_secs(resp.expires_at),
                    "token obtained"
                );
                let entry = CachedToken::from_response(&resp, previous_rt);
                self.save_under(guard, entry.clone()).await?;
                *self.memory() = Some(entry);
                *self.last_claims() = claims.map(str::to_owned);
                self.inner.generation.fetch_add(1, Ordering::SeqCst);
                Ok(resp.access_token)
            }
            Err(e) => {
                let d = e.diagnosis();
                tracing::warn!(
                    client_id = %self.inner.client.client_id(),
                    code = ?d.code(),
                    error = %d.error(),
                    problem = ?d.problem(),
                    trace_id = ?d.trace_id(),
                    correlation_id = ?d.correlation_id(),
                    "token request failed: {}",
                    d.summary()
                );
                // Refreshing ahead of expiry failed for a passing reason: the current token is
                // still valid, so hand it out and try again on a later call.
                if !force
                    && e.is_retryable()
                    && let Some(t) = cached
                        .as_ref()
                        .and_then(|c| c.fresh_access_token(self.inner.clock.now(), Duration::ZERO))
                        .cloned()
                {
                    return Ok(t);
                }
                *self.memory() = None;
                if is_refresh && matches!(e.diagnosis().problem(), Problem::SignInExpired) {
                    // The refresh token is dead: drop it so that the next call asks for a sign-in
                    // instead of repeating a request that cannot succeed.
                    // If it was borrowed from another resource's entry, that entry holds the same
                    // dead token: drop it too.
                    let (store, key) = (self.inner.store.clone(), self.inner.key.clone());
                    let _ = blocking(move || {
                        let _g = guard;
                        if let Some(k) = sibling_key {
                            store.remove(&k)?;
                        }
                        store.remove(&key)
                    })
                    .await;
                }
                Err(e)
            }
        }
    }

    async fn save_under(&self, guard: StoreGuard, entry: CachedToken) -> Result<(), AuthError> {
        let (store, key) = (self.inner.store.clone(), self.inner.key.clone());
        blocking(move || {
            let _g = guard;
            store.save(&key, &entry)
        })
        .await
    }
}

fn is_oidc_scope(s: &str) -> bool {
    matches!(s, "openid" | "profile" | "email" | "offline_access")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, AuthError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(AuthError::from),
        Err(e) => Err(AuthError::Cache(CacheError::Io {
            path: String::new(),
            reason: format!("cache task failed: {e}"),
        })),
    }
}
