//! Delegated sign-in shared by the token endpoint and the `/authorize` and device pages: may the
//! user sign in to the app, the delegated token response, and recording user consent.

use std::collections::BTreeSet;

use axum::response::Response;

use super::client::{Client, Form};
use super::grants::RefreshGrant;
use super::mint::{issue_access_token, token_response};
use super::{AadError, ScopeRequest, consent_check, is_oidc, random_token};
use crate::state::AppState;
use crate::tenant::{ApiResource, AppRegistration, Permission};

/// AADSTS65001 as `error` (`invalid_grant` at the token endpoint, `consent_required` in a
/// redirect): the user has not consented to `app`.
pub(crate) fn not_consented(
    state: &AppState,
    app: &AppRegistration,
    error: &'static str,
) -> AadError {
    AadError::new(
        state,
        400,
        error,
        Some(65001),
        format!(
            "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
            app.client_id, app.display_name
        ),
    )
}

fn consent_required(state: &AppState, app: &AppRegistration) -> AadError {
    not_consented(state, app, "invalid_grant").with_suberror("consent_required")
}

pub(crate) fn not_assigned(state: &AppState, app: &AppRegistration, user: &str) -> AadError {
    AadError::invalid_grant(
        state,
        50105,
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
        return Err(AadError::invalid_grant(
            state,
            50034,
            format!(
                "The user account {user_id} does not exist in the {} directory.",
                t.info.display_name
            ),
        ));
    };
    if !user.enabled {
        return Err(AadError::invalid_grant(
            state,
            50057,
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
        .map(|n| Permission::new(resource, n.clone()).response_scope())
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
