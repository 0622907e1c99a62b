//! `/token`: every grant.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::HeaderMap;

use super::client::{Client, Form, authenticate_client, read_form};
use super::delegated::{check_user, issue_delegated};
use super::grants::DeviceStatus;
use super::mint::{REQUEST_GENERATION, issue_access_token, token_response};
use super::{
    AadError, Authority, ScopeRequest, consent_check, is_oidc, parse_scopes, resolve_authority,
};
use crate::state::AppState;
use crate::tenant::{ApiResource, Permission};

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
    match state
        .admit(
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
    let invalid = |msg: &str| AadError::invalid_grant(state, 70000, msg.to_string());
    let Some(grant) = grant else {
        return Err(AadError::invalid_grant(
            state,
            9002313,
            "Invalid request. Request is malformed or invalid: the authorization code is not valid.",
        ));
    };
    if grant.redeemed {
        return Err(AadError::invalid_grant(
            state,
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if grant.expires_at <= now {
        return Err(AadError::invalid_grant(
            state,
            70008,
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
        let mismatch = || {
            AadError::invalid_grant(
                state,
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        };
        let verifier = form.get("code_verifier").ok_or_else(mismatch)?;
        let computed = if method.eq_ignore_ascii_case("S256") {
            super::jwt::b64url(
                ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref(),
            )
        } else {
            verifier.to_string()
        };
        if &computed != challenge {
            return Err(mismatch());
        }
    }
    if let Some(g) = state.identity().inner().codes.get_mut(code) {
        g.redeemed = true;
    }
    let user = check_user(state, &client.app, &grant.user_id)?;
    let (_, req) = redeemed_scopes(state, form, &grant.scopes)?;
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

/// The scopes a code or refresh token is redeemed for: the form's `scope`, else the grant's;
/// parsed, and kept to the first resource's.
fn redeemed_scopes(
    state: &AppState,
    form: &Form,
    grant_scopes: &[String],
) -> Result<(String, ScopeRequest), AadError> {
    let scopes_str = match form.get("scope") {
        Some(s) => s.to_string(),
        None => grant_scopes.join(" "),
    };
    let req = parse_scopes(&scopes_str, true).map_err(|m| invalid_scope(state, m))?;
    let req = first_resource(req, &scopes_str);
    Ok((scopes_str, req))
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
        return Err(AadError::invalid_grant(
            state,
            9002313,
            "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
        ));
    };
    if grant.revoked {
        return Err(AadError::invalid_grant(
            state,
            70008,
            "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on a date before the grant was revoked.",
        ));
    }
    if grant.expires_at <= now {
        return Err(AadError::invalid_grant(
            state,
            700082,
            "The refresh token has expired due to inactivity. The token was issued and was inactive for longer than the configured lifetime.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.app.client_id) {
        return Err(AadError::invalid_grant(
            state,
            70000,
            "The refresh token was issued to a different client.",
        ));
    }
    let user = check_user(state, &client.app, &grant.user_id)?;
    let (scopes_str, req) = redeemed_scopes(state, form, &grant.scopes)?;
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
        DeviceStatus::Redeemed => Err(AadError::invalid_grant(
            state,
            54005,
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

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token))
}
