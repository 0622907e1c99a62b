//! Helpers shared by the integration tests and the unit tests in `src/tests/`.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::Value;

pub(crate) const DEMO_APP: &str = "00000000-0000-0000-0000-00000000d3e0";
pub(crate) const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";
pub(crate) const TENANT: &str = "contoso.example";
pub(crate) const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
pub(crate) const REDIRECT: &str = "http://localhost";

pub(crate) async fn start() -> sandbox::Sandbox {
    sandbox::Sandbox::builder()
        .start()
        .await
        .expect("sandbox starts")
}

/// A client that does not follow redirects (so tests can read `Location`).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub(crate) async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = client().post(url).form(form).send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

pub(crate) async fn get_json(url: &str) -> (u16, Value) {
    let resp = client().get(url).send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts the AADSTS error shape and returns the body.
pub(crate) fn assert_aad(status: u16, body: &Value, want_status: u16, error: &str, code: u64) {
    assert_eq!(status, want_status, "status; body: {body}");
    assert_eq!(body["error"], error, "error; body: {body}");
    assert_eq!(body["error_codes"][0], code, "code; body: {body}");
    let desc = body["error_description"].as_str().expect("description");
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(
        desc.contains("\r\nTrace ID: ")
            && desc.contains("\r\nCorrelation ID: ")
            && desc.contains("\r\nTimestamp: "),
        "{desc}"
    );
    assert!(
        body["trace_id"].is_string()
            && body["correlation_id"].is_string()
            && body["timestamp"].is_string()
    );
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

/// The claims of a JWT (unverified).
pub(crate) fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("jwt");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

pub(crate) fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// (verifier, S256 challenge)
pub(crate) fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge =
        b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

pub(crate) fn bearer(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    h
}

/// Query parameters of a redirect `Location`.
pub(crate) fn location_params(
    resp: &reqwest::Response,
) -> std::collections::HashMap<String, String> {
    let loc = resp
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("str");
    let url = url::Url::parse(loc).expect("url");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Drives `/authorize` with form posts: sign in as `login`, then post `then` (e.g. `consent`)
/// if given. Returns the final response (redirect or page).
pub(crate) async fn authorize(
    sb: &sandbox::Sandbox,
    client_id: &str,
    scope: &str,
    login: &str,
    challenge: &str,
    action: &str,
) -> reqwest::Response {
    let url = format!("{}/{TENANT}/oauth2/v2.0/authorize", sb.base_url());
    let form = [
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("login", login),
        ("action", action),
    ];
    client()
        .post(&url)
        .form(&form)
        .send()
        .await
        .expect("authorize")
}

/// Full auth-code + PKCE sign-in for a public client; returns the token response.
pub(crate) async fn sign_in(
    sb: &sandbox::Sandbox,
    client_id: &str,
    scope: &str,
    login: &str,
) -> (u16, Value) {
    let (verifier, challenge) = pkce();
    let resp = authorize(sb, client_id, scope, login, &challenge, "consent").await;
    assert_eq!(
        resp.status().as_u16(),
        302,
        "authorize should redirect: {:?}",
        resp.text().await
    );
    let params = location_params(&resp);
    assert_eq!(params.get("state").map(String::as_str), Some("st-123"));
    let code = params.get("code").expect("code").clone();
    post_form(
        &sb.token_url(TENANT),
        &[
            ("client_id", client_id),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("scope", scope),
        ],
    )
    .await
}

/// A public-client app registration with the given delegated permissions.
pub(crate) fn public_app(id: &str, delegated: &[&str]) -> sandbox::tenant::AppRegistration {
    let mut app = sandbox::tenant::AppRegistration::new(id);
    app.display_name = format!("test app {id}");
    app.redirect_uris = vec![REDIRECT.into()];
    app.allow_public_client_flows = true;
    app.delegated_permissions = delegated
        .iter()
        .map(|p| sandbox::tenant::Permission::parse(p).expect("perm"))
        .collect();
    app
}

/// The messages in `mailbox`'s Inbox.
pub(crate) fn inbox(sb: &sandbox::Sandbox, mailbox: &str) -> Vec<sandbox::store::Message> {
    sb.admin()
        .store()
        .list(
            mailbox,
            Some("inbox"),
            &sandbox::store::ListQuery::default(),
        )
        .unwrap()
        .items
}

/// Header (name, value) pairs of a stored message, in order, as they are in its MIME.
pub(crate) fn headers(mime: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(mime);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.to_string(), v.trim_start().to_string()));
        }
    }
    out
}

/// The `Authentication-Results` values among `h`, topmost first.
pub(crate) fn auth_results(h: &[(String, String)]) -> Vec<&str> {
    h.iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, v)| v.as_str())
        .collect()
}
