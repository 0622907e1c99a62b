//! The Microsoft identity platform v2.0 endpoints, with Microsoft's paths and error shapes.
//!
//! | Path | What |
//! |---|---|
//! | `GET /{tenant}/v2.0/.well-known/openid-configuration` | OpenID discovery |
//! | `GET /{tenant}/discovery/v2.0/keys` | JWKS (the emulator's RS256 key) |
//! | `GET /common/discovery/instance` | MSAL instance discovery |
//! | `GET/POST /{tenant}/oauth2/v2.0/authorize` | sign-in + consent pages (HTML forms) |
//! | `POST /{tenant}/oauth2/v2.0/token` | authorization_code (PKCE), refresh_token, client_credentials, device_code |
//! | `POST /{tenant}/oauth2/v2.0/devicecode` | device authorization |
//! | `GET/POST /devicelogin` | page to enter a user code |
//! | `GET /{tenant}/v2.0/adminconsent`, `GET /{tenant}/adminconsent` | admin consent with callback |
//!
//! `{tenant}` is the tenant GUID, a verified domain, `organizations` or `common` (`consumers`
//! and unknown names answer AADSTS90002). Errors follow the AADSTS JSON shape
//! (`error`, `error_description` with trace/correlation ids and timestamp, `error_codes`,
//! `timestamp`, `trace_id`, `correlation_id`, `error_uri`).

pub(crate) mod jwt;

mod assertion;
mod authorize;
mod client;
mod delegated;
mod device;
mod errors;
pub(crate) mod grants;
pub(crate) mod mint;
mod token;

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use crate::tenant::{ApiResource, AppRegistration, Mailbox, Permission, Tenant};

pub(crate) use errors::AadError;
pub(crate) use mint::mint as token_mint;
// `MintRequest` and `TokenKind` are public at the crate root only (`sandbox::MintRequest`).
pub(crate) use mint::MintRequest;

/// OIDC scopes that need no consent and belong to no resource.
pub(crate) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub(crate) fn is_oidc(s: &str) -> bool {
    OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(s))
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    jwt::b64url(&b)
}

/// The tenant path segment resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Authority {
    /// The tenant's GUID or a verified domain.
    Tenant,
    /// `organizations`.
    Organizations,
    /// `common`.
    Common,
}

pub(crate) fn resolve_authority(tenant: &Tenant, name: &str) -> Option<Authority> {
    if tenant.is_named(name) {
        Some(Authority::Tenant)
    } else if name.eq_ignore_ascii_case("organizations") {
        Some(Authority::Organizations)
    } else if name.eq_ignore_ascii_case("common") {
        Some(Authority::Common)
    } else {
        None
    }
}

/// A parsed scope request: the resource it targets and the permission names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScopeRequest {
    pub(crate) resource: Option<ApiResource>,
    pub(crate) names: Vec<String>,
    pub(crate) default: bool,
    pub(crate) oidc: Vec<String>,
}

/// Parses a space-separated scope string for the token endpoint: one resource, `.default` not
/// mixed with named scopes of the same resource. Errors are AADSTS70011 descriptions.
/// With `multi_resource`, scopes of several resources are allowed (authorize); the first wins.
pub(crate) fn parse_scopes(s: &str, multi_resource: bool) -> Result<ScopeRequest, String> {
    let mut req = ScopeRequest::default();
    for raw in s.split_whitespace() {
        if is_oidc(raw) {
            req.oidc.push(raw.to_ascii_lowercase());
            continue;
        }
        let p = Permission::parse(raw).ok_or_else(|| {
            format!("The provided value for the input parameter 'scope' is not valid. The scope '{raw}' does not exist.")
        })?;
        match req.resource {
            None => req.resource = Some(p.resource),
            Some(r) if r != p.resource && !multi_resource => {
                return Err("The provided value for the input parameter 'scope' is not valid. Scopes for more than one resource were requested.".into());
            }
            Some(_) => {}
        }
        if p.name == ".default" {
            req.default = true;
        } else {
            req.names.push(p.name);
        }
    }
    if req.default && !req.names.is_empty() {
        return Err(format!(
            "The provided value for the input parameter 'scope' is not valid. The scope '{s}' is not valid. .default scope can't be combined with resource-specific scopes."
        ));
    }
    if req.resource.is_none() && req.oidc.is_empty() {
        return Err("The provided value for the input parameter 'scope' is not valid.".into());
    }
    Ok(req)
}

/// The delegated permissions a user would be granted for a scope request, and the ones still
/// needing consent. `.default` means the app's configured delegated permissions for the resource.
pub(crate) struct ConsentCheck {
    pub(crate) requested: BTreeSet<Permission>,
    pub(crate) missing: BTreeSet<Permission>,
    pub(crate) needs_admin: bool,
}

pub(crate) fn consent_check(
    tenant: &Tenant,
    app: &AppRegistration,
    user: &Mailbox,
    req: &ScopeRequest,
) -> ConsentCheck {
    let resource = req.resource;
    let requested: BTreeSet<Permission> = match resource {
        None => BTreeSet::new(),
        Some(r) if req.default => default_delegated(app, r).collect(),
        Some(r) => req
            .names
            .iter()
            .map(|n| Permission::new(r, n.clone()))
            .collect(),
    };
    let (missing, needs_admin) = missing_consent(tenant, app, user, &requested);
    ConsentCheck {
        requested,
        missing,
        needs_admin,
    }
}

/// What `.default` of `resource` means for a delegated request: the app's configured delegated
/// permissions for that resource, without the OIDC scopes.
pub(crate) fn default_delegated(
    app: &AppRegistration,
    resource: ApiResource,
) -> impl Iterator<Item = Permission> + '_ {
    app.delegated_permissions
        .iter()
        .filter(move |p| p.resource == resource && !is_oidc(&p.name))
        .cloned()
}

/// Which of `requested` the user has not consented to for `app`, and whether consenting to them
/// needs an admin (user consent is off for the organisation, or one of them is admin-only).
pub(crate) fn missing_consent(
    tenant: &Tenant,
    app: &AppRegistration,
    user: &Mailbox,
    requested: &BTreeSet<Permission>,
) -> (BTreeSet<Permission>, bool) {
    let granted = tenant.consents.delegated(&app.client_id, &user.id);
    let missing: BTreeSet<Permission> = requested
        .iter()
        .filter(|p| !granted.iter().any(|g| g.is(p.resource, &p.name)))
        .cloned()
        .collect();
    let needs_admin = !missing.is_empty()
        && (!tenant.org.users_can_consent
            || missing.iter().any(|m| {
                tenant
                    .org
                    .admin_only_scopes
                    .iter()
                    .any(|a| a.is(m.resource, &m.name))
            }));
    (missing, needs_admin)
}

async fn openid_configuration(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
) -> Response {
    let (tid, known) = {
        let t = state.tenant();
        (t.info.id.clone(), resolve_authority(&t, &tenant_name))
    };
    let Some(authority) = known else {
        return AadError::tenant_not_found(&state, &tenant_name).into_response();
    };
    let base = state.base_url();
    let issuer = match authority {
        Authority::Tenant => format!("{base}/{tid}/v2.0"),
        _ => format!("{base}/{{tenantid}}/v2.0"),
    };
    let t = &tenant_name;
    axum::Json(serde_json::json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "name", "tid", "ver", "email"],
        "tenant_region_scope": null,
        "cloud_instance_name": "sandbox.invalid",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>, Path(tenant_name): Path<String>) -> Response {
    let (tid, known) = {
        let t = state.tenant();
        (
            t.info.id.clone(),
            resolve_authority(&t, &tenant_name).is_some(),
        )
    };
    if !known {
        return AadError::tenant_not_found(&state, &tenant_name).into_response();
    }
    let issuer = format!("{}/{tid}/v2.0", state.base_url());
    axum::Json(state.identity().key().jwks(&issuer)).into_response()
}

/// MSAL's instance discovery (`/common/discovery/instance?api-version=1.1&authorization_endpoint=…`):
/// tells MSAL this host is a known authority, so real MSAL clients work without turning
/// authority validation off.
async fn instance_discovery(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
) -> Response {
    let base = state.base_url();
    let host = url::Url::parse(base)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant_name}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }))
    .into_response()
}

/// The identity routes (merged into the main router by [`crate::server`]).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/instance", get(instance_discovery))
        .merge(token::routes())
        .merge(authorize::routes())
        .merge(device::routes())
}
