//! `/authorize` (sign-in and consent pages) and `/adminconsent`.
//!
//! The pages are minimal HTML forms that a person or a test can drive with plain form posts:
//! every original query parameter travels in hidden fields, plus `login` (the account) and
//! `action` (`signin`, `consent`, `decline`, `back`). For example, after
//! `GET /{tenant}/oauth2/v2.0/authorize?client_id=…&redirect_uri=…&scope=…&code_challenge=…`,
//! post the same parameters with `login=adele.vance@contoso.example&action=signin` to the same
//! path; the answer is a `302` to the redirect URI with `code` and `state`, a consent page
//! (post again with `action=consent`), or the "Need admin approval" page (AADSTS90094).

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};

use super::client::{find_app, read_form};
use super::delegated::record_user_consent;
use super::grants::AuthCode;
use super::{AadError, Authority, is_oidc, random_token, resolve_authority};
use crate::state::AppState;
use crate::tenant::{AppRegistration, Permission};

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1>{body}<p><small>m365 sandbox (local emulator, not Microsoft)</small></p></body></html>",
        t = esc(title)
    );
    (status, Html(html)).into_response()
}

pub(crate) fn error_page(e: &AadError) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let desc = e.description(&trace, &corr);
    page(
        e.status,
        "Sorry, but we're having trouble signing you in.",
        &format!(
            "<p id=\"error\" data-error=\"{}\">{}</p>",
            esc(e.error),
            esc(&desc).replace("\r\n", "<br>")
        ),
    )
}

fn hidden_input(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

fn hidden(params: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = params
        .keys()
        .filter(|k| !matches!(k.as_str(), "login" | "action"))
        .collect();
    keys.sort();
    keys.iter().map(|k| hidden_input(k, &params[*k])).collect()
}

/// Redirect to the client with `params`, honouring `response_mode`.
fn redirect_to(redirect_uri: &str, mode: Option<&str>, params: &[(&str, &str)]) -> Response {
    if mode == Some("form_post") {
        let fields: String = params.iter().map(|(k, v)| hidden_input(k, v)).collect();
        return page(
            StatusCode::OK,
            "Working...",
            &format!(
                "<form method=\"POST\" name=\"hiddenform\" action=\"{}\">{fields}<noscript><input type=\"submit\" value=\"Continue\"></noscript></form><script>document.forms[0].submit()</script>",
                esc(redirect_uri)
            ),
        );
    }
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "Bad redirect URI", "");
    };
    if mode == Some("fragment") {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        url.set_fragment(Some(&q));
    } else {
        url.query_pairs_mut().extend_pairs(params.iter());
    }
    // Entra answers with 302 Found.
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = http::HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

fn redirect_error(
    state: &AppState,
    p: &HashMap<String, String>,
    error: &str,
    e: &AadError,
) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let desc = e.description(&trace, &corr);
    let _ = state;
    let mut params = vec![("error", error), ("error_description", desc.as_str())];
    if let Some(s) = p.get("state") {
        params.push(("state", s.as_str()));
    }
    redirect_to(
        p.get("redirect_uri")
            .map(String::as_str)
            .unwrap_or_default(),
        p.get("response_mode").map(String::as_str),
        &params,
    )
}

/// Validations that show an error page (nothing is trusted enough to redirect to).
// The error is the error page itself (an axum Response); boxing it would only add noise.
#[allow(clippy::result_large_err)]
fn validate_client(
    state: &AppState,
    tenant_name: &str,
    p: &HashMap<String, String>,
) -> Result<(AppRegistration, Authority), Response> {
    let authority = {
        let t = state.tenant();
        resolve_authority(&t, tenant_name)
    }
    .ok_or_else(|| error_page(&AadError::tenant_not_found(state, tenant_name)))?;
    let client_id = p
        .get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            error_page(&AadError::invalid_request(
                state,
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            ))
        })?;
    let app = find_app(state, client_id).map_err(|e| error_page(&e))?;
    let redirect = p
        .get("redirect_uri")
        .map(String::as_str)
        .unwrap_or_default();
    if !app
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect))
    {
        return Err(error_page(&AadError::invalid_request(
            state,
            50011,
            format!(
                "The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.",
                app.client_id
            ),
        )));
    }
    Ok((app, authority))
}

/// Delegated permissions requested by a scope string (several resources allowed; `.default`
/// expands to the app's configured delegated permissions for that resource).
fn requested_perms(app: &AppRegistration, scope: &str) -> Result<BTreeSet<Permission>, String> {
    let mut out = BTreeSet::new();
    for raw in scope.split_whitespace() {
        if is_oidc(raw) {
            continue;
        }
        let p = Permission::parse(raw).ok_or_else(|| format!("The provided value for the input parameter 'scope' is not valid. The scope '{raw}' does not exist."))?;
        if p.name == ".default" {
            out.extend(super::default_delegated(app, p.resource));
        } else {
            out.insert(p);
        }
    }
    Ok(out)
}

async fn authorize_get(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    authorize_flow(&state, &tenant_name, p).await
}

async fn authorize_post(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match read_form(&state, &headers, body).await {
        Ok(f) => authorize_flow(&state, &tenant_name, f.0).await,
        Err(e) => error_page(&e),
    }
}

async fn authorize_flow(
    state: &AppState,
    tenant_name: &str,
    p: HashMap<String, String>,
) -> Response {
    let (app, _authority) = match validate_client(state, tenant_name, &p) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("response_type") != Some("code") {
        let e = AadError::new(
            state,
            400,
            "unsupported_response_type",
            Some(900144),
            "The provided value for the input parameter 'response_type' is not allowed for this request. Expected value: 'code'.",
        );
        return redirect_error(state, &p, "unsupported_response_type", &e);
    }
    let Some(scope) = get("scope") else {
        let e = AadError::invalid_request(
            state,
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
        return redirect_error(state, &p, "invalid_request", &e);
    };
    let requested = match requested_perms(&app, scope) {
        Ok(r) => r,
        Err(m) => {
            return redirect_error(
                state,
                &p,
                "invalid_scope",
                &AadError::new(state, 400, "invalid_scope", Some(70011), m),
            );
        }
    };
    if let Some(m) = get("code_challenge_method")
        && !m.eq_ignore_ascii_case("S256")
        && !m.eq_ignore_ascii_case("plain")
    {
        let e =
            AadError::invalid_request(state, 5001481, "Invalid code_challenge_method: use S256.");
        return redirect_error(state, &p, "invalid_request", &e);
    }
    let prompt_none = get("prompt") == Some("none");
    let action = get("action");
    let login = get("login").or(if prompt_none { get("login_hint") } else { None });
    let Some(login) = login else {
        if prompt_none {
            let e = AadError::new(
                state,
                400,
                "login_required",
                Some(50058),
                "A silent sign-in request was sent but no user is signed in.",
            );
            return redirect_error(state, &p, "login_required", &e);
        }
        return sign_in_page(&p, &app);
    };
    let now = state.clock().now_unix();
    let user = state.tenant().user(login, now).cloned();
    let Some(user) = user else {
        let t = state.tenant().info.display_name.clone();
        return error_page(&AadError::invalid_request(
            state,
            50034,
            format!(
                "The user account {login} does not exist in the {t} directory. To sign into this application, the account must be added to the directory."
            ),
        ));
    };
    if !user.enabled {
        return error_page(&AadError::invalid_request(
            state,
            50057,
            "The user account is disabled.",
        ));
    }
    if app.user_assignment_required && !state.tenant().is_assigned(&app, &user) {
        let e = super::delegated::not_assigned(state, &app, &user.upn);
        return redirect_error(state, &p, "access_denied", &e);
    }
    let (missing, needs_admin) = {
        let t = state.tenant();
        super::missing_consent(&t, &app, &user, &requested)
    };
    match action {
        Some("decline") => {
            let e = AadError::new(
                state,
                400,
                "access_denied",
                Some(65004),
                "User declined to consent to access the app.",
            );
            return redirect_error(state, &p, "access_denied", &e);
        }
        Some("back") => {
            let e = super::delegated::not_consented(state, &app, "consent_required");
            return redirect_error(state, &p, "consent_required", &e);
        }
        _ => {}
    }
    if needs_admin {
        if prompt_none {
            let e = AadError::new(
                state,
                400,
                "interaction_required",
                Some(90094),
                "Admin consent is required for the permissions requested by this application.",
            );
            return redirect_error(state, &p, "interaction_required", &e);
        }
        return permissions_page(
            "Need admin approval",
            &format!(
                "<p id=\"error\" data-code=\"90094\">AADSTS90094: {} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.</p><ul>",
                esc(&app.display_name)
            ),
            &missing,
            &p,
            login,
            "<button name=\"action\" value=\"back\">Return to the application without granting consent</button>",
        );
    }
    let wants_consent_page = !missing.is_empty() || get("prompt") == Some("consent");
    if wants_consent_page && action != Some("consent") {
        if prompt_none {
            let e = super::delegated::not_consented(state, &app, "consent_required");
            return redirect_error(state, &p, "consent_required", &e);
        }
        return permissions_page(
            "Permissions requested",
            &format!(
                "<p>{} would like to:</p><ul id=\"permissions\">",
                esc(&app.display_name)
            ),
            &requested,
            &p,
            login,
            "<button name=\"action\" value=\"consent\">Accept</button><button name=\"action\" value=\"decline\">Cancel</button>",
        );
    }
    if !missing.is_empty() {
        record_user_consent(state, &app.client_id, &user.id, missing);
    }
    let code = random_token(48);
    let lifetime = state.tenant().identity.auth_code_lifetime_secs as i64;
    let challenge = get("code_challenge").map(|c| {
        (
            c.to_string(),
            get("code_challenge_method").unwrap_or("plain").to_string(),
        )
    });
    state.identity().inner().codes.insert(
        code.clone(),
        AuthCode {
            client_id: app.client_id.clone(),
            redirect_uri: get("redirect_uri").unwrap_or_default().to_string(),
            user_id: user.id.clone(),
            scopes: scope.split_whitespace().map(str::to_string).collect(),
            challenge,
            nonce: get("nonce").map(str::to_string),
            expires_at: now + lifetime,
            redeemed: false,
        },
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = get("state") {
        params.push(("state", s));
    }
    let redirect = get("redirect_uri").unwrap_or_default().to_string();
    redirect_to(&redirect, get("response_mode"), &params)
}

/// A page: `intro` (ending in an opened `<ul>`), the `permissions` as its items, and a form that
/// posts the request back as `login` with one of `buttons`.
fn permissions_page(
    title: &str,
    intro: &str,
    permissions: &BTreeSet<Permission>,
    p: &HashMap<String, String>,
    login: &str,
    buttons: &str,
) -> Response {
    let list: String = permissions
        .iter()
        .map(|m| format!("<li>{}</li>", esc(&m.to_string())))
        .collect();
    page(
        StatusCode::OK,
        title,
        &format!(
            "{intro}{list}</ul><form method=\"POST\">{}{}{buttons}</form>",
            hidden(p),
            hidden_input("login", login)
        ),
    )
}

fn sign_in_page(p: &HashMap<String, String>, app: &AppRegistration) -> Response {
    let hint = p.get("login_hint").map(String::as_str).unwrap_or_default();
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<p>to continue to {}</p><form method=\"POST\">{}<label>Account <input name=\"login\" value=\"{}\"></label><button name=\"action\" value=\"signin\">Sign in</button></form>",
            esc(&app.display_name),
            hidden(p),
            esc(hint)
        ),
    )
}

/// `GET` of the admin consent endpoint: v2.0 (`/{tenant}/v2.0/adminconsent`) when `V2`, else
/// v1 (`/{tenant}/adminconsent`).
async fn admin_consent_get<const V2: bool>(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    admin_consent_flow(&state, &tenant_name, p, V2)
}

/// `POST` of the admin consent endpoint, as [`admin_consent_get`].
async fn admin_consent_post<const V2: bool>(
    State(state): State<AppState>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    match read_form(&state, &headers, body).await {
        Ok(f) => admin_consent_flow(&state, &tenant_name, f.0, V2),
        Err(e) => error_page(&e),
    }
}

fn admin_consent_flow(
    state: &AppState,
    tenant_name: &str,
    p: HashMap<String, String>,
    v2: bool,
) -> Response {
    let (app, authority) = match validate_client(state, tenant_name, &p) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if authority == Authority::Common {
        return error_page(&AadError::invalid_request(
            state,
            90130,
            "Admin consent is not supported over the /common endpoint. Use /organizations or the tenant-specific endpoint.",
        ));
    }
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let tid = state.tenant().info.id.clone();
    let redirect = get("redirect_uri").unwrap_or_default().to_string();
    let scope = get("scope");
    if v2 && scope.is_none() {
        return error_page(&AadError::invalid_request(
            state,
            900144,
            "The request body must contain the following parameter: 'scope'.",
        ));
    }
    // What would be granted.
    let (mut delegated, mut application) = (BTreeSet::new(), BTreeSet::new());
    match scope {
        Some(scope) => {
            for raw in scope.split_whitespace().filter(|s| !is_oidc(s)) {
                let Some(perm) = Permission::parse(raw) else {
                    return error_page(&AadError::new(
                        state,
                        400,
                        "invalid_scope",
                        Some(70011),
                        format!(
                            "The provided value for the input parameter 'scope' is not valid. The scope '{raw}' does not exist."
                        ),
                    ));
                };
                if perm.name == ".default" {
                    application.extend(
                        app.application_permissions
                            .iter()
                            .filter(|a| a.resource == perm.resource)
                            .cloned(),
                    );
                    delegated.extend(super::default_delegated(&app, perm.resource));
                } else {
                    delegated.insert(perm);
                }
            }
        }
        None => {
            application.extend(app.application_permissions.iter().cloned());
            delegated.extend(
                app.delegated_permissions
                    .iter()
                    .filter(|a| !is_oidc(&a.name))
                    .cloned(),
            );
        }
    }
    let state_param = get("state").unwrap_or_default().to_string();
    let fail = |error: &str, e: AadError| {
        let desc = e.description(
            &uuid::Uuid::new_v4().to_string(),
            &uuid::Uuid::new_v4().to_string(),
        );
        redirect_to(
            &redirect,
            None,
            &[
                ("error", error),
                ("error_description", &desc),
                ("admin_consent", "True"),
                ("tenant", &tid),
                ("state", &state_param),
            ],
        )
    };
    match get("action") {
        Some("decline") => {
            return fail(
                "consent_required",
                AadError::new(
                    state,
                    400,
                    "consent_required",
                    Some(65004),
                    "The resource owner or authorization server denied the request.",
                ),
            );
        }
        Some("consent") => {}
        _ => {
            let list: String = delegated
                .iter()
                .chain(application.iter())
                .map(|m| format!("<li>{}</li>", esc(&m.to_string())))
                .collect();
            return page(
                StatusCode::OK,
                "Permissions requested — Accept for your organization",
                &format!(
                    "<p>{} would like these permissions for the whole organization:</p><ul id=\"permissions\">{list}</ul><form method=\"POST\">{}<label>Admin account <input name=\"login\"></label><button name=\"action\" value=\"consent\">Accept</button><button name=\"action\" value=\"decline\">Cancel</button></form>",
                    esc(&app.display_name),
                    hidden(&p)
                ),
            );
        }
    }
    let login = get("login").unwrap_or_default();
    let now = state.clock().now_unix();
    let is_admin = {
        let t = state.tenant();
        t.user(login, now)
            .map(|u| t.org.admins.is_empty() || t.org.admins.iter().any(|a| u.answers_to(a, now)))
    };
    match is_admin {
        None => {
            let dn = state.tenant().info.display_name.clone();
            return error_page(&AadError::invalid_request(
                state,
                50034,
                format!("The user account {login} does not exist in the {dn} directory."),
            ));
        }
        Some(false) => {
            return fail(
                "access_denied",
                AadError::new(
                    state,
                    400,
                    "access_denied",
                    Some(90094),
                    "The grant requires admin permission.",
                ),
            );
        }
        Some(true) => {}
    }
    let granted: Vec<String> = delegated
        .iter()
        .chain(application.iter())
        .map(ToString::to_string)
        .collect();
    {
        let mut t = state.tenant_mut();
        let g = t.consents.admin.entry(app.client_id.clone()).or_default();
        g.delegated.extend(delegated);
        g.application.extend(application);
    }
    let scope_out = scope
        .map(str::to_string)
        .unwrap_or_else(|| granted.join(" "));
    let mut params = vec![("admin_consent", "True"), ("tenant", tid.as_str())];
    if v2 {
        params.push(("scope", scope_out.as_str()));
    }
    params.push(("state", state_param.as_str()));
    redirect_to(&redirect, None, &params)
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize_get).post(authorize_post),
        )
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(admin_consent_get::<true>).post(admin_consent_post::<true>),
        )
        .route(
            "/{tenant}/adminconsent",
            get(admin_consent_get::<false>).post(admin_consent_post::<false>),
        )
}

/// Whether a requested redirect URI matches a registered one. Exact match, except that for
/// `http` loopback addresses (`localhost`, `127.0.0.1`, `[::1]`) the port is ignored, as Microsoft
/// does for native apps whose loopback listener takes an ephemeral port; an empty path and `/`
/// are the same.
pub(crate) fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &url::Url| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    reg.scheme() == "http"
        && req.scheme() == "http"
        && loopback(&reg)
        && reg.host_str() == req.host_str()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && reg.port().is_none()
}

#[cfg(test)]
mod redirect_tests {
    use super::redirect_matches;

    #[test]
    fn loopback_ports_are_ignored_and_nothing_else() {
        assert!(redirect_matches(
            "http://localhost",
            "http://localhost:51234/"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8400/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8400/other"
        ));
        assert!(!redirect_matches(
            "http://localhost",
            "http://127.0.0.1:51234/"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(!redirect_matches(
            "http://localhost",
            "http://localhost.evil.example:80/"
        ));
        assert!(redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
    }
}
