//! `/devicecode` (RFC 8628 device authorization) and the `/devicelogin` page where a user enters
//! the code. A test can approve with the admin API ([`crate::Admin::approve_device_code`]) or
//! post `user_code`, `login` and `action=approve|decline` to `/devicelogin`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};

use super::authorize::{esc, page};
use super::client::{find_app, read_form};
use super::delegated::record_user_consent;
use super::grants::{DeviceGrant, DeviceStatus};
use super::{AadError, parse_scopes, random_token, resolve_authority};
use crate::state::AppState;

fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 9];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

async fn devicecode(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match devicecode_inner(&state, &tenant_name, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn devicecode_inner(
    state: &AppState,
    tenant_name: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Response, AadError> {
    {
        let t = state.tenant();
        resolve_authority(&t, tenant_name)
    }
    .ok_or_else(|| AadError::tenant_not_found(state, tenant_name))?;
    let form = read_form(state, headers, body).await?;
    let client_id = form.require(state, "client_id")?.to_string();
    let app = find_app(state, &client_id)?;
    let scope = form.require(state, "scope")?.to_string();
    parse_scopes(&scope, true)
        .map_err(|m| AadError::new(state, 400, "invalid_scope", Some(70011), m))?;
    let (life, interval) = {
        let t = state.tenant();
        (
            t.identity.device_code_lifetime_secs,
            t.identity.device_code_interval_secs,
        )
    };
    let device_code = random_token(48);
    let code = user_code();
    state.identity().inner().devices.insert(
        device_code.clone(),
        DeviceGrant {
            client_id: app.client_id.clone(),
            user_code: code.clone(),
            scopes: scope.split_whitespace().map(str::to_string).collect(),
            expires_at: state.clock().now_unix() + life as i64,
            status: DeviceStatus::Pending,
            last_poll: None,
        },
    );
    let uri = format!("{}/devicelogin", state.base_url());
    Ok(axum::Json(serde_json::json!({
        "user_code": code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": life,
        "interval": interval,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {code} to authenticate."),
    }))
    .into_response())
}

async fn devicelogin_get() -> Response {
    page(
        StatusCode::OK,
        "Enter code",
        "<form method=\"POST\"><label>Code <input name=\"user_code\"></label><label>Account <input name=\"login\"></label><button name=\"action\" value=\"approve\">Continue</button><button name=\"action\" value=\"decline\">Cancel</button></form>",
    )
}

async fn devicelogin_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let form = match read_form(&state, &headers, body).await {
        Ok(f) => f,
        Err(e) => return super::authorize::error_page(&e),
    };
    let p: &HashMap<String, String> = &form.0;
    let get = |k: &str| {
        p.get(k)
            .map(String::as_str)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let (code, login, action) = (
        get("user_code").to_ascii_uppercase(),
        get("login"),
        get("action"),
    );
    let now = state.clock().now_unix();
    let grant = state
        .identity()
        .inner()
        .devices
        .iter()
        .find(|(_, g)| {
            g.user_code == code && g.status == DeviceStatus::Pending && g.expires_at > now
        })
        .map(|(k, g)| (k.clone(), g.clone()));
    let Some((device_code, grant)) = grant else {
        return page(
            StatusCode::BAD_REQUEST,
            "Code not recognised",
            "<p id=\"error\">That code didn't work. Check the code and try again.</p>",
        );
    };
    let set = |s: DeviceStatus| {
        if let Some(g) = state.identity().inner().devices.get_mut(&device_code) {
            g.status = s;
        }
    };
    if action == "decline" {
        set(DeviceStatus::Declined);
        return page(
            StatusCode::OK,
            "Sign-in declined",
            "<p>You have declined to sign in to the application.</p>",
        );
    }
    let Some(user) = state.tenant().user(&login, now).cloned() else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown account",
            &format!(
                "<p id=\"error\">AADSTS50034: The user account {} does not exist in this directory.</p>",
                esc(&login)
            ),
        );
    };
    let Ok(app) = find_app(&state, &grant.client_id) else {
        return page(StatusCode::BAD_REQUEST, "Unknown application", "");
    };
    let raw = grant.scopes.join(" ");
    let Ok(mut req) = parse_scopes(&raw, true) else {
        return page(StatusCode::BAD_REQUEST, "Invalid scope", "");
    };
    if req.resource.is_none() {
        req.resource = Some(crate::tenant::ApiResource::Graph);
        req.default = true;
    }
    let check = {
        let t = state.tenant();
        super::consent_check(&t, &app, &user, &req)
    };
    if check.needs_admin {
        return page(
            StatusCode::OK,
            "Need admin approval",
            &format!(
                "<p id=\"error\" data-code=\"90094\">AADSTS90094: {} needs permission to access resources in your organization that only an admin can grant.</p>",
                esc(&app.display_name)
            ),
        );
    }
    if !check.missing.is_empty() {
        record_user_consent(&state, &app.client_id, &user.id, check.missing);
    }
    set(DeviceStatus::Approved(user.id.clone()));
    page(
        StatusCode::OK,
        "You're signed in",
        &format!(
            "<p>You have signed in to {} on your device. You may now close this window.</p>",
            esc(&app.display_name)
        ),
    )
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode))
        .route("/devicelogin", get(devicelogin_get).post(devicelogin_post))
}
