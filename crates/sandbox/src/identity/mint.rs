//! Access tokens: signing one, minting one directly for tests ([`MintRequest`]), and the token
//! endpoint's success answer.

use axum::response::{IntoResponse, Response};

use crate::identity::jwt::AccessClaims;
use crate::state::AppState;
use crate::tenant::{ApiResource, Mailbox};

/// What kind of token [`crate::Admin::mint_token`] should mint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// A delegated token for a user with these scope names (e.g. `Mail.Read`).
    Delegated {
        /// User address, UPN or id.
        user: String,
        /// Scope names for the resource.
        scopes: Vec<String>,
    },
    /// An app-only token with these role names (e.g. `Mail.ReadWrite`, `full_access_as_app`).
    App {
        /// Role names for the resource.
        roles: Vec<String>,
    },
}

/// A request to mint an access token directly, bypassing the token endpoint (tests).
///
/// The token is signed like any other; consent is **not** checked when minting, but the
/// resource endpoints check current consent when the token is used.
///
/// ```
/// use sandbox::{ApiResource, MintRequest, TokenKind};
///
/// let app_only = TokenKind::App { roles: vec!["Mail.ReadWrite".into()] };
/// let req = MintRequest::new("app-id", app_only, ApiResource::Graph).with_lifetime_secs(60);
/// assert_eq!(req.lifetime_secs, Some(60));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MintRequest {
    /// Client id of the app the token is for (must exist to be accepted by resources).
    pub app_id: String,
    /// Delegated or app-only.
    pub kind: TokenKind,
    /// The audience.
    pub resource: ApiResource,
    /// Lifetime in seconds (default: the tenant's access token lifetime). To test expiry, mint
    /// and then move the clock with [`crate::Admin::advance_clock`].
    pub lifetime_secs: Option<u64>,
}

impl MintRequest {
    /// A `kind` token for the app `app_id` with the audience `resource`, living as long as the
    /// tenant's access tokens do.
    pub fn new(app_id: impl Into<String>, kind: TokenKind, resource: ApiResource) -> Self {
        MintRequest {
            app_id: app_id.into(),
            kind,
            resource,
            lifetime_secs: None,
        }
    }

    /// The same request, for a token that lives `secs` seconds.
    pub fn with_lifetime_secs(mut self, secs: u64) -> Self {
        self.lifetime_secs = Some(secs);
        self
    }
}

/// Signs an access token. `user` is `None` for app-only tokens.
pub(crate) fn issue_access_token(
    state: &AppState,
    app_id: &str,
    user: Option<&Mailbox>,
    resource: ApiResource,
    perms: &[String],
    lifetime_secs: u64,
) -> String {
    let now = state.clock().now_unix();
    let tid = state.tenant().info.id.clone();
    let claims = AccessClaims {
        aud: resource.uri().to_string(),
        iss: format!("{}/{tid}/v2.0", state.base_url()),
        iat: now,
        nbf: now,
        exp: now + lifetime_secs as i64,
        tid,
        sub: user
            .map(|u| u.id.clone())
            .unwrap_or_else(|| app_id.to_string()),
        appid: app_id.to_string(),
        azp: app_id.to_string(),
        oid: user.map(|u| u.id.clone()),
        upn: user.map(|u| u.upn.clone()),
        preferred_username: user.map(|u| u.upn.clone()),
        name: user.map(|u| u.display_name.clone()),
        scp: user.map(|_| perms.join(" ")),
        roles: if user.is_none() {
            Some(perms.to_vec())
        } else {
            None
        },
        idtyp: if user.is_some() {
            "user".into()
        } else {
            "app".into()
        },
        uti: super::random_token(16),
        ver: "2.0".into(),
        generation: REQUEST_GENERATION
            .try_with(|g| *g)
            .unwrap_or_else(|_| state.identity().token_generation()),
    };
    state.identity().key().sign(&claims)
}

/// Mints a token for a [`MintRequest`]; fails if the user does not exist.
pub(crate) fn mint(state: &AppState, req: &MintRequest) -> Result<String, String> {
    let lifetime = req
        .lifetime_secs
        .unwrap_or_else(|| state.tenant().identity.access_token_lifetime_secs);
    match &req.kind {
        TokenKind::Delegated { user, scopes } => {
            let now = state.clock().now_unix();
            let mb = state
                .tenant()
                .user(user, now)
                .cloned()
                .ok_or_else(|| format!("no user {user}"))?;
            Ok(issue_access_token(
                state,
                &req.app_id,
                Some(&mb),
                req.resource,
                scopes,
                lifetime,
            ))
        }
        TokenKind::App { roles } => Ok(issue_access_token(
            state,
            &req.app_id,
            None,
            req.resource,
            roles,
            lifetime,
        )),
    }
}

tokio::task_local! {
    /// The token generation when the token request being answered arrived. Its access token
    /// carries this one, not the generation at minting: a refresh whose refresh token was
    /// checked just before "revoke refresh tokens, then expire access tokens" must not come out
    /// with a token that outlives both (the chaos run saw a source keep working after both).
    pub(super) static REQUEST_GENERATION: u64;
}

pub(super) fn token_response(v: serde_json::Value) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store, no-cache"),
    );
    r.headers_mut().insert(
        http::header::PRAGMA,
        http::HeaderValue::from_static("no-cache"),
    );
    r
}
