//! Authorization code flow with PKCE (S256): the authorize URL, and reading the redirect.

use url::Url;

use crate::authority::Authority;
use crate::error::{AuthError, RedirectError};
use crate::secret::{AuthorizationCode, PkceVerifier};
use crate::token::{Grant, TokenRequest};

/// The parameters of a browser sign-in.
///
/// ```
/// use msauth::{Authority, AuthorizationRequest, Cloud, Tenant};
/// let authority = Authority::microsoft(Cloud::Global, Tenant::Organizations)?;
/// let redirect = url::Url::parse("http://localhost:53682/")?;
/// let (url, pending) = AuthorizationRequest::new("app-id", redirect, ["offline_access", "Mail.Read"])
///     .login_hint("alice@contoso.com")
///     .build(&authority);
/// assert!(url.as_str().contains("code_challenge_method=S256"));
/// // Later, with the URL the browser was sent to:
/// let back = format!("http://localhost:53682/?code=abc&state={}", pending.state());
/// let code = pending.parse_redirect(&back)?;
/// let token_request = pending.token_request(code);
/// # let _ = token_request;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    client_id: String,
    redirect_uri: Url,
    scopes: Vec<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
    domain_hint: Option<String>,
    claims: Option<String>,
}

impl AuthorizationRequest {
    /// A sign-in for `client_id`, returning to `redirect_uri`, asking for `scopes`.
    pub fn new(
        client_id: impl Into<String>,
        redirect_uri: Url,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        AuthorizationRequest {
            client_id: client_id.into(),
            redirect_uri,
            scopes: scopes.into_iter().map(Into::into).collect(),
            prompt: None,
            login_hint: None,
            domain_hint: None,
            claims: None,
        }
    }

    /// `prompt` (`login`, `none`, `consent`, `select_account`).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// `login_hint`: pre-fills the account.
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }

    /// `domain_hint`: skips home-realm discovery.
    pub fn domain_hint(mut self, hint: impl Into<String>) -> Self {
        self.domain_hint = Some(hint.into());
        self
    }

    /// `claims` (JSON), e.g. from a Conditional Access failure.
    pub fn claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Builds the authorize URL with a fresh random `state` and PKCE verifier.
    pub fn build(&self, authority: &Authority) -> (Url, PendingAuthorization) {
        // oauth2's generators: 32 random bytes, base64url, S256 challenge.
        let (_, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let state = oauth2::CsrfToken::new_random();
        // oauth2 generates 43 base64url characters: always a valid verifier.
        self.build_unchecked(
            authority,
            state.secret().clone(),
            PkceVerifier::new(verifier.secret().clone()),
        )
    }

    /// Builds the authorize URL with the given `state` and verifier (for tests and replays).
    /// The verifier must be 43–128 characters from `A-Z a-z 0-9 - . _ ~` (RFC 7636 §4.1).
    pub fn build_with(
        &self,
        authority: &Authority,
        state: String,
        verifier: PkceVerifier,
    ) -> Result<(Url, PendingAuthorization), AuthError> {
        let v = verifier.secret();
        let valid = (43..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !valid {
            return Err(AuthError::Config(
                "PKCE verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~".into(),
            ));
        }
        if state.is_empty() {
            return Err(AuthError::Config("state must not be empty".into()));
        }
        Ok(self.build_unchecked(authority, state, verifier))
    }

    fn build_unchecked(
        &self,
        authority: &Authority,
        state: String,
        verifier: PkceVerifier,
    ) -> (Url, PendingAuthorization) {
        // S256 computed here rather than with oauth2's `from_code_verifier_sha256`, which
        // panics on a verifier of the wrong length; `build_with` validates instead.
        use base64::Engine as _;
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.secret().as_bytes());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
        let mut url = authority.authorize_endpoint().clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id);
            q.append_pair("response_type", "code");
            q.append_pair("redirect_uri", self.redirect_uri.as_str());
            q.append_pair("response_mode", "query");
            q.append_pair("scope", &self.scopes.join(" "));
            q.append_pair("state", &state);
            q.append_pair("code_challenge", &challenge);
            q.append_pair("code_challenge_method", "S256");
            if let Some(p) = &self.prompt {
                q.append_pair("prompt", p);
            }
            if let Some(h) = &self.login_hint {
                q.append_pair("login_hint", h);
            }
            if let Some(h) = &self.domain_hint {
                q.append_pair("domain_hint", h);
            }
            if let Some(c) = &self.claims {
                q.append_pair("claims", c);
            }
        }
        let pending = PendingAuthorization {
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scopes: self.scopes.clone(),
            state,
            verifier,
        };
        (url, pending)
    }
}

/// A sign-in in progress: remembers `state` and the PKCE verifier until the redirect comes back.
#[derive(Clone, Debug)]
pub struct PendingAuthorization {
    client_id: String,
    redirect_uri: Url,
    scopes: Vec<String>,
    state: String,
    verifier: PkceVerifier,
}

impl PendingAuthorization {
    /// The `state` sent (not secret, but must match on return).
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The requested scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The redirect URI.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Reads the redirect: a full URL, a `?query`, or a bare query string (what a person pastes
    /// from the browser's address bar). Checks `state` first (nothing without this sign-in's state
    /// is acted on), then `error`, then takes `code`.
    pub fn parse_redirect(&self, redirect: &str) -> Result<AuthorizationCode, RedirectError> {
        let pairs = query_pairs(redirect)?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        // The state first (RFC 6749 §4.1.2.1: the service returns it with errors too): an error
        // that does not carry this sign-in's state was not sent by the service for it.
        match get("state") {
            Some(s) if connector::constant_time_eq(s.as_bytes(), self.state.as_bytes()) => {}
            _ => return Err(RedirectError::StateMismatch),
        }
        if let Some(error) = get("error") {
            return Err(RedirectError::Denied {
                error,
                description: get("error_description"),
            });
        }
        get("code")
            .filter(|c| !c.is_empty())
            .map(AuthorizationCode::new)
            .ok_or(RedirectError::MissingCode)
    }

    /// The token request that redeems `code`.
    pub fn token_request(&self, code: AuthorizationCode) -> TokenRequest {
        TokenRequest::new(
            self.client_id.clone(),
            Grant::AuthorizationCode {
                code,
                redirect_uri: self.redirect_uri.clone(),
                verifier: self.verifier.clone(),
            },
            self.scopes.clone(),
        )
    }

    /// [`parse_redirect`](Self::parse_redirect) then [`token_request`](Self::token_request).
    pub fn redeem(&self, redirect: &str) -> Result<TokenRequest, AuthError> {
        Ok(self.token_request(self.parse_redirect(redirect)?))
    }
}

/// Extracts query (or fragment) pairs from a URL, `?query` or bare query.
pub(crate) fn query_pairs(text: &str) -> Result<Vec<(String, String)>, RedirectError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RedirectError::Unparsable("empty input".into()));
    }
    let query = if let Ok(url) = Url::parse(text) {
        url.query().or(url.fragment()).unwrap_or("").to_owned()
    } else if let Some(q) = text.strip_prefix('?').or_else(|| text.strip_prefix('#')) {
        q.to_owned()
    } else if text.contains('=') && !text.contains(' ') {
        text.to_owned()
    } else {
        return Err(RedirectError::Unparsable(
            "expected the full address the browser ended on".into(),
        ));
    };
    Ok(url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}
