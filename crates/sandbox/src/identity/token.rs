//! `/token`: every grant, and access-token minting.

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use http::HeaderMap;

use super::{
    AadError, Authority, DeviceStatus, RefreshGrant, ScopeRequest, consent_check, is_oidc,
    parse_scopes, random_token, resolve_authority,
};
use crate::tenant::{ApiResource, AppRegistration, Permission, Tenant};

use crate::identity::jwt::AccessClaims;
use crate::state::AppState;
use crate::tenant::Mailbox;

/// What kind of token [`crate::Admin::mint_token`] should mint.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A parsed `application/x-www-form-urlencoded` body. Repeated parameters are an error.
pub(crate) struct Form(pub(crate) HashMap<String, String>);

impl Form {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(crate) fn require(&self, state: &AppState, k: &str) -> Result<&str, AadError> {
        self.get(k).ok_or_else(|| {
            AadError::invalid_request(
                state,
                900144,
                format!("The request body must contain the following parameter: '{k}'."),
            )
        })
    }
}

/// Reads and parses a form body with the tenant's size cap; errors are AADSTS-shaped.
pub(crate) async fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Form, AadError> {
    let limit = state.tenant().identity.max_form_bytes;
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        let mut e = AadError::invalid_request(
            state,
            9002313,
            "Invalid request. Request is malformed or invalid: the request body is too large.",
        );
        e.status = http::StatusCode::PAYLOAD_TOO_LARGE;
        e
    })?;
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(AadError::invalid_request(
            state,
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ));
    }
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(AadError::invalid_request(
                state,
                9002313,
                format!(
                    "Invalid request. Request is malformed or invalid: parameter '{k}' is repeated."
                ),
            ));
        }
    }
    Ok(Form(map))
}

/// The authenticated client of a token request.
pub(crate) struct Client {
    pub(crate) app: AppRegistration,
}

/// Constant-time comparison of secrets (ring's helper is deprecated for external use; this is the
/// usual fold over all bytes).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn app_not_found(state: &AppState, client_id: &str, tenant: &Tenant) -> AadError {
    AadError::new(
        state,
        400,
        "unauthorized_client",
        Some(700016),
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            tenant.info.display_name
        ),
    )
}

pub(crate) fn find_app(state: &AppState, client_id: &str) -> Result<AppRegistration, AadError> {
    let t = state.tenant();
    match t.app(client_id) {
        None => Err(app_not_found(state, client_id, &t)),
        Some(a) if !a.enabled => Err(AadError::new(
            state,
            400,
            "unauthorized_client",
            Some(7000112),
            format!("Application '{client_id}'({}) is disabled.", a.display_name),
        )),
        Some(a) => Ok(a.clone()),
    }
}

/// Authenticates the client: secret (form or HTTP Basic), client assertion, or none (public).
/// `needs_credential`: the grant requires a confidential client (client_credentials).
fn authenticate_client(
    state: &AppState,
    form: &Form,
    headers: &HeaderMap,
    token_url: &str,
    needs_credential: bool,
) -> Result<Client, AadError> {
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((dec(id), dec(secret)))
        });
    let client_id = match (form.get("client_id"), &basic) {
        (Some(id), _) => id.to_string(),
        (None, Some((id, _))) => id.clone(),
        (None, None) => form.require(state, "client_id")?.to_string(),
    };
    let app = find_app(state, &client_id)?;
    let secret = form
        .get("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, s)| s));
    let assertion = form.get("client_assertion");
    let now = state.clock().now();
    if (secret.is_some() || assertion.is_some()) && !app.is_confidential() {
        return Err(AadError::new(
            state,
            401,
            "invalid_client",
            Some(700025),
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        ));
    }
    if let Some(secret) = secret {
        let matching = app
            .secrets
            .iter()
            .find(|s| ct_eq(s.value.expose().as_bytes(), secret.as_bytes()));
        return match matching {
            Some(s) if s.expires.is_some_and(|e| e <= now) => Err(AadError::new(
                state,
                401,
                "invalid_client",
                Some(7000222),
                format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                    app.client_id
                ),
            )),
            Some(_) => Ok(Client { app }),
            None => Err(AadError::new(
                state,
                401,
                "invalid_client",
                Some(7000215),
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            )),
        };
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(AadError::invalid_request(
                state,
                700022,
                "The client_assertion_type parameter must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            ));
        }
        super::assertion::verify(state, &app, assertion, token_url)?;
        return Ok(Client { app });
    }
    if needs_credential || !app.allow_public_client_flows {
        return Err(AadError::new(
            state,
            401,
            "invalid_client",
            Some(7000218),
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    Ok(Client { app })
}

tokio::task_local! {
    /// The token generation when the token request being answered arrived. Its access token
    /// carries this one, not the generation at minting: a refresh whose refresh token was
    /// checked just before "revoke refresh tokens, then expire access tokens" must not come out
    /// with a token that outlives both (the chaos run saw a source keep working after both).
    static REQUEST_GENERATION: u64;
}

async fn token(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let generation = state.identity().token_generation();
    let answer = REQUEST_GENERATION
        .scope(
            generation,
            token_inner(&state, &tenant_name, &headers, body),
        )
        .await;
    match answer {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    state: &AppState,
    tenant_name: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Response, AadError> {
    let authority = {
        let t = state.tenant();
        resolve_authority(&t, tenant_name)
    }
    .ok_or_else(|| AadError::tenant_not_found(state, tenant_name))?;
    let form = read_form(state, headers, body).await?;
    match crate::faults::admit(
        state,
        crate::faults::Protocol::Token,
        form.get("client_id").unwrap_or_default(),
        "",
    )
    .await
    {
        crate::faults::Admission::Proceed(_) => {}
        crate::faults::Admission::Throttled { retry_after } => {
            let mut r = AadError::new(
                state,
                429,
                "temporarily_unavailable",
                Some(50196),
                "The server is temporarily unable to service the request.",
            )
            .into_response();
            if let Ok(v) = http::HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
        crate::faults::Admission::Fault(crate::faults::FaultKind::ResetConnection) => {
            return Ok(crate::faults::reset_response());
        }
        crate::faults::Admission::Fault(f) => {
            let status = match f {
                crate::faults::FaultKind::GatewayTimeout504 => 504,
                _ => 503,
            };
            return Err(AadError::new(
                state,
                status,
                "temporarily_unavailable",
                Some(90033),
                "A transient error has occurred. Please try again.",
            ));
        }
    }
    let grant = form.require(state, "grant_type")?.to_string();
    let token_url = format!("{}/{tenant_name}/oauth2/v2.0/token", state.base_url());
    match grant.as_str() {
        "client_credentials" => {
            if authority != Authority::Tenant {
                return Err(AadError::invalid_request(
                    state,
                    9001023,
                    "The grant type isn't supported over the /common or /organizations endpoints. Please use the tenant-specific endpoint.",
                ));
            }
            let client = authenticate_client(state, &form, headers, &token_url, true)?;
            client_credentials(state, &client, &form)
        }
        "authorization_code" => {
            let client = authenticate_client(state, &form, headers, &token_url, false)?;
            authorization_code(state, &client, &form)
        }
        "refresh_token" => {
            let client = authenticate_client(state, &form, headers, &token_url, false)?;
            refresh_token(state, &client, &form)
        }
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => {
            let client = authenticate_client(state, &form, headers, &token_url, false)?;
            device_code(state, &client, &form)
        }
        other => Err(AadError::new(
            state,
            400,
            "unsupported_grant_type",
            Some(70003),
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn invalid_scope(state: &AppState, msg: String) -> AadError {
    if msg.contains("does not exist") && msg.contains("://") {
        return AadError::new(state, 400, "invalid_resource", Some(500011), msg);
    }
    AadError::new(state, 400, "invalid_scope", Some(70011), msg)
}

fn client_credentials(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<Response, AadError> {
    let scope = form.require(state, "scope")?;
    let req = parse_scopes(scope, false).map_err(|m| invalid_scope(state, m))?;
    let Some(resource) = req.resource.filter(|_| req.default) else {
        return Err(AadError::new(
            state,
            400,
            "invalid_scope",
            Some(1002012),
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let roles: Vec<String> = state
        .tenant()
        .consents
        .application(&client.app.client_id)
        .into_iter()
        .filter(|p| p.resource == resource)
        .map(|p| p.name)
        .collect();
    let lifetime = state.tenant().identity.access_token_lifetime_secs;
    let at = issue_access_token(
        state,
        &client.app.client_id,
        None,
        resource,
        &roles,
        lifetime,
    );
    Ok(token_response(serde_json::json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": at,
    })))
}

fn token_response(v: serde_json::Value) -> Response {
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

fn consent_required(state: &AppState, app: &AppRegistration) -> AadError {
    AadError::new(
        state,
        400,
        "invalid_grant",
        Some(65001),
        format!("The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.", app.client_id, app.display_name),
    )
    .with_suberror("consent_required")
}

pub(crate) fn not_assigned(state: &AppState, app: &AppRegistration, user: &str) -> AadError {
    AadError::new(
        state,
        400,
        "invalid_grant",
        Some(50105),
        format!(
            "Your administrator has configured the application {} ('{}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{user}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application.",
            app.display_name, app.client_id
        ),
    )
}

/// Checks that `user` may sign in to `app` (enabled, assigned if required).
pub(crate) fn check_user(
    state: &AppState,
    app: &AppRegistration,
    user_id: &str,
) -> Result<crate::tenant::Mailbox, AadError> {
    let t = state.tenant();
    let Some(user) = t.user(user_id, i64::MAX) else {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(50034),
            format!(
                "The user account {user_id} does not exist in the {} directory.",
                t.info.display_name
            ),
        ));
    };
    if !user.enabled {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(50057),
            "The user account is disabled.",
        ));
    }
    if app.user_assignment_required && !t.is_assigned(app, user) {
        return Err(not_assigned(state, app, &user.upn));
    }
    Ok(user.clone())
}

/// Issues a delegated token response for `user`, resource and scopes from `req`. The scopes must
/// already be consented; unconsented named scopes give 65001.
pub(crate) fn issue_delegated(
    state: &AppState,
    client: &Client,
    user: &crate::tenant::Mailbox,
    req: &ScopeRequest,
    grant_scopes: &[String],
    nonce: Option<&str>,
    form: &Form,
) -> Result<Response, AadError> {
    let mut req = req.clone();
    if req.resource.is_none() {
        req.resource = Some(ApiResource::Graph);
        req.default = true;
    }
    let resource = req.resource.unwrap_or(ApiResource::Graph);
    let check = {
        let t = state.tenant();
        consent_check(&t, &client.app, user, &req)
    };
    if !check.missing.is_empty() {
        return Err(consent_required(state, &client.app));
    }
    let granted = state
        .tenant()
        .consents
        .delegated(&client.app.client_id, &user.id);
    let names: Vec<String> = if req.default {
        granted
            .iter()
            .filter(|p| p.resource == resource)
            .map(|p| p.name.clone())
            .collect()
    } else {
        check.requested.iter().map(|p| p.name.clone()).collect()
    };
    let lifetime = state.tenant().identity.access_token_lifetime_secs;
    let at = issue_access_token(
        state,
        &client.app.client_id,
        Some(user),
        resource,
        &names,
        lifetime,
    );
    let mut scope_out: Vec<String> = names
        .iter()
        .map(|n| Permission::new(resource, n.clone()).to_string())
        .collect();
    let offline = grant_scopes
        .iter()
        .any(|s| s.eq_ignore_ascii_case("offline_access"));
    let openid = grant_scopes
        .iter()
        .any(|s| s.eq_ignore_ascii_case("openid"));
    scope_out.extend(grant_scopes.iter().filter(|s| is_oidc(s)).cloned());
    let mut v = serde_json::json!({
        "token_type": "Bearer",
        "scope": scope_out.join(" "),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": at,
    });
    let now = state.clock().now_unix();
    let tid = state.tenant().info.id.clone();
    if offline {
        let rt = random_token(48);
        let rt_life = state.tenant().identity.refresh_token_lifetime_secs as i64;
        state.identity().inner().refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: client.app.client_id.clone(),
                user_id: user.id.clone(),
                scopes: grant_scopes.to_vec(),
                expires_at: now + rt_life,
                revoked: false,
            },
        );
        v["refresh_token"] = rt.into();
    }
    if openid {
        let claims = serde_json::json!({
            "aud": client.app.client_id,
            "iss": format!("{}/{tid}/v2.0", state.base_url()),
            "iat": now, "nbf": now, "exp": now + lifetime as i64,
            "sub": user.id, "oid": user.id, "tid": tid,
            "preferred_username": user.upn, "name": user.display_name,
            "nonce": nonce,
            "ver": "2.0",
        });
        v["id_token"] = state.identity().key().sign(&claims).into();
    }
    if form.get("client_info") == Some("1") {
        let ci = serde_json::json!({"uid": user.id, "utid": tid});
        v["client_info"] = super::jwt::b64url(ci.to_string().as_bytes()).into();
    }
    Ok(token_response(v))
}

fn authorization_code(
    state: &AppState,
    client: &Client,
    form: &Form,
) -> Result<Response, AadError> {
    let code = form.require(state, "code")?;
    let redirect_uri = form.require(state, "redirect_uri")?;
    let now = state.clock().now_unix();
    let grant = {
        let inner = state.identity().inner();
        inner.codes.get(code).cloned()
    };
    let invalid =
        |msg: &str| AadError::new(state, 400, "invalid_grant", Some(70000), msg.to_string());
    let Some(grant) = grant else {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(9002313),
            "Invalid request. Request is malformed or invalid: the authorization code is not valid.",
        ));
    };
    if grant.redeemed {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(54005),
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if grant.expires_at <= now {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(70008),
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.app.client_id) {
        return Err(invalid(
            "The provided value for the 'code' parameter was issued to a different client.",
        ));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(invalid(
            "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code.",
        ));
    }
    if let Some((challenge, method)) = &grant.challenge {
        let verifier = form.get("code_verifier").ok_or_else(|| {
            AadError::new(state, 400, "invalid_grant", Some(501481), "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
        })?;
        let computed = if method.eq_ignore_ascii_case("S256") {
            super::jwt::b64url(
                ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref(),
            )
        } else {
            verifier.to_string()
        };
        if &computed != challenge {
            return Err(AadError::new(
                state,
                400,
                "invalid_grant",
                Some(501481),
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    if let Some(g) = state.identity().inner().codes.get_mut(code) {
        g.redeemed = true;
    }
    let user = check_user(state, &client.app, &grant.user_id)?;
    let scopes_str = match form.get("scope") {
        Some(s) => s.to_string(),
        None => grant.scopes.join(" "),
    };
    let req = parse_scopes(&scopes_str, true).map_err(|m| invalid_scope(state, m))?;
    let req = first_resource(req, &scopes_str);
    issue_delegated(
        state,
        client,
        &user,
        &req,
        &grant.scopes,
        grant.nonce.as_deref(),
        form,
    )
}

/// Keeps only the first resource's scopes (a token is for one resource; the first wins).
fn first_resource(mut req: ScopeRequest, raw: &str) -> ScopeRequest {
    let Some(first) = req.resource else {
        return req;
    };
    req.names = raw
        .split_whitespace()
        .filter_map(Permission::parse)
        .filter(|p| p.resource == first && p.name != ".default" && !is_oidc(&p.name))
        .map(|p| p.name)
        .collect();
    req.default = req.names.is_empty();
    req
}

fn refresh_token(state: &AppState, client: &Client, form: &Form) -> Result<Response, AadError> {
    let rt = form.require(state, "refresh_token")?.to_string();
    let now = state.clock().now_unix();
    let grant = state.identity().inner().refresh.get(&rt).cloned();
    let Some(grant) = grant else {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(9002313),
            "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
        ));
    };
    if grant.revoked {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(70008),
            "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on a date before the grant was revoked.",
        ));
    }
    if grant.expires_at <= now {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(700082),
            "The refresh token has expired due to inactivity. The token was issued and was inactive for longer than the configured lifetime.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.app.client_id) {
        return Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(70000),
            "The refresh token was issued to a different client.",
        ));
    }
    let user = check_user(state, &client.app, &grant.user_id)?;
    let scopes_str = match form.get("scope") {
        Some(s) => s.to_string(),
        None => grant.scopes.join(" "),
    };
    let req = parse_scopes(&scopes_str, true).map_err(|m| invalid_scope(state, m))?;
    let req = first_resource(req, &scopes_str);
    // Keep the grant's OIDC scopes (offline_access) so rotation continues.
    let mut grant_scopes = grant.scopes.clone();
    for s in scopes_str.split_whitespace() {
        if !grant_scopes.iter().any(|g| g.eq_ignore_ascii_case(s)) {
            grant_scopes.push(s.to_string());
        }
    }
    let resp = issue_delegated(state, client, &user, &req, &grant_scopes, None, form)?;
    if state.tenant().identity.revoke_rotated_refresh_tokens
        && let Some(g) = state.identity().inner().refresh.get_mut(&rt)
    {
        g.revoked = true;
    }
    Ok(resp)
}

fn device_code(state: &AppState, client: &Client, form: &Form) -> Result<Response, AadError> {
    let code = form.require(state, "device_code")?.to_string();
    let now = state.clock().now_unix();
    let grant = state.identity().inner().devices.get(&code).cloned();
    let Some(grant) = grant.filter(|g| g.client_id.eq_ignore_ascii_case(&client.app.client_id))
    else {
        return Err(AadError::new(
            state,
            400,
            "bad_verification_code",
            Some(70000),
            "The provided value for the 'device_code' parameter is not valid.",
        ));
    };
    if grant.expires_at <= now {
        return Err(AadError::new(
            state,
            400,
            "expired_token",
            Some(70019),
            "Verification code expired.",
        ));
    }
    let (enforce, interval) = {
        let t = state.tenant();
        (
            t.identity.enforce_device_poll_interval,
            t.identity.device_code_interval_secs as i64,
        )
    };
    let previous = state
        .identity()
        .inner()
        .devices
        .get_mut(&code)
        .and_then(|g| g.last_poll.replace(now));
    if enforce
        && grant.status == DeviceStatus::Pending
        && previous.is_some_and(|p| now - p < interval)
    {
        return Err(AadError::new(
            state,
            400,
            "slow_down",
            Some(70016),
            "OAuth 2.0 device flow error. Polling too fast: wait for the interval before polling again.",
        ));
    }
    match grant.status {
        DeviceStatus::Pending => Err(AadError::new(
            state,
            400,
            "authorization_pending",
            Some(70016),
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )),
        DeviceStatus::Declined => Err(AadError::new(
            state,
            400,
            "authorization_declined",
            Some(70000),
            "The user declined the authorization request.",
        )),
        DeviceStatus::Redeemed => Err(AadError::new(
            state,
            400,
            "invalid_grant",
            Some(54005),
            "The device code was already redeemed.",
        )),
        DeviceStatus::Approved(user_id) => {
            let user = check_user(state, &client.app, &user_id)?;
            let raw = grant.scopes.join(" ");
            let req = parse_scopes(&raw, true).map_err(|m| invalid_scope(state, m))?;
            let req = first_resource(req, &raw);
            // Approving on the device page includes the user's consent where they may give it.
            {
                let mut t = state.tenant_mut();
                let mut full = req.clone();
                if full.resource.is_none() {
                    full.resource = Some(ApiResource::Graph);
                    full.default = true;
                }
                let check = consent_check(&t, &client.app, &user, &full);
                if !check.missing.is_empty() && !check.needs_admin {
                    t.consents
                        .user
                        .entry(client.app.client_id.clone())
                        .or_default()
                        .entry(user.id.clone())
                        .or_default()
                        .extend(check.missing);
                }
            }
            let resp = issue_delegated(state, client, &user, &req, &grant.scopes, None, form)?;
            if let Some(g) = state.identity().inner().devices.get_mut(&code) {
                g.status = DeviceStatus::Redeemed;
            }
            Ok(resp)
        }
    }
}

/// Records a user's consent to the missing permissions of a request.
pub(crate) fn record_user_consent(
    state: &AppState,
    client_id: &str,
    user_id: &str,
    perms: BTreeSet<Permission>,
) {
    state
        .tenant_mut()
        .consents
        .user
        .entry(client_id.to_string())
        .or_default()
        .entry(user_id.to_string())
        .or_default()
        .extend(perms);
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token))
}
