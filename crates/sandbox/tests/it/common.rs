//! Helpers shared by the integration tests and the unit tests in `src/tests/`.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::Value;

pub(crate) const DEMO_APP: &str = "00000000-0000-0000-0000-00000000d3e0";
pub(crate) const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";
pub(crate) const TENANT: &str = "contoso.example";
pub(crate) const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
pub(crate) const REDIRECT: &str = "http://localhost";
pub(crate) const ALEX: &str = "alex.wilber@contoso.example";
pub(crate) const MEGAN: &str = "megan.bowen@contoso.example";
pub(crate) const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

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

/// Posts a JSON command to the sandbox's HTTP admin API.
pub(crate) async fn admin_json(sb: &sandbox::Sandbox, command: &str) -> reqwest::Response {
    client()
        .post(format!("{}/_sandbox/admin", sb.base_url()))
        .header("content-type", "application/json")
        .body(command.to_owned())
        .send()
        .await
        .expect("admin request")
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

/// `/authorize` for one app with one PKCE challenge, posted as different users and actions.
pub(crate) struct AuthorizeForm<'a> {
    pub(crate) sb: &'a sandbox::Sandbox,
    pub(crate) client_id: &'a str,
    pub(crate) challenge: String,
}

impl<'a> AuthorizeForm<'a> {
    /// The form of `client_id` with `challenge`.
    pub(crate) fn new(sb: &'a sandbox::Sandbox, client_id: &'a str, challenge: String) -> Self {
        AuthorizeForm {
            sb,
            client_id,
            challenge,
        }
    }

    /// [`authorize`] with this form's app and challenge.
    pub(crate) async fn post(&self, scope: &str, login: &str, action: &str) -> reqwest::Response {
        authorize(
            self.sb,
            self.client_id,
            scope,
            login,
            &self.challenge,
            action,
        )
        .await
    }
}

/// Asserts that `resp` redirects back with `error` and a description starting with `aadsts`
/// (`AADSTS65004`); returns the redirect's parameters.
pub(crate) fn assert_redirect_error(
    resp: &reqwest::Response,
    error: &str,
    aadsts: &str,
) -> std::collections::HashMap<String, String> {
    let p = location_params(resp);
    assert_eq!(p["error"], error, "{p:?}");
    assert!(
        p["error_description"].starts_with(aadsts),
        "{}",
        p["error_description"]
    );
    p
}

/// A client-credentials token request with the secret in the form.
pub(crate) async fn client_credentials(
    url: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    post_form(
        url,
        &[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ],
    )
    .await
}

/// Redeems an authorization code with its PKCE verifier (a public client, no scope).
pub(crate) async fn redeem_code(
    url: &str,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    post_form(
        url,
        &[
            ("client_id", client_id),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// One poll of the device-code grant.
pub(crate) async fn poll_device_code(
    url: &str,
    client_id: &str,
    device_code: &str,
) -> (u16, Value) {
    post_form(
        url,
        &[
            ("client_id", client_id),
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code),
        ],
    )
    .await
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

/// The namespaces of an EWS SOAP envelope (`soap:`, `t:`, `m:`).
pub(crate) const EWS_NS: &str = r#"xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages""#;

/// An app-only Exchange token of the demo app with `full_access_as_app`.
pub(crate) fn ews_app_token(sb: &sandbox::Sandbox) -> String {
    app_token(sb, &["full_access_as_app"], sandbox::ApiResource::Exchange)
}

/// POSTs SOAP document `doc` to the EWS endpoint with `token` (and `X-AnchorMailbox` when
/// `anchor` is given); returns the status and the body.
pub(crate) async fn post_soap(
    http: &reqwest::Client,
    sb: &sandbox::Sandbox,
    token: &str,
    anchor: Option<&str>,
    doc: String,
) -> (u16, String) {
    let mut req = http
        .post(sb.ews_url())
        .bearer_auth(token)
        .header("Content-Type", "text/xml; charset=utf-8");
    if let Some(a) = anchor {
        req = req.header("X-AnchorMailbox", a);
    }
    let r = req.body(doc).send().await.expect("the sandbox answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// The XOAUTH2 SASL string of `user` with bearer token `tok`, base64-encoded.
pub(crate) fn sasl(user: &str, tok: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {tok}\x01\x01"))
}

/// The SMTP command that signs `user` in with the bearer token `tok` (`AUTH XOAUTH2 ...`).
pub(crate) fn xoauth2(user: &str, tok: &str) -> String {
    format!("AUTH XOAUTH2 {}", sasl(user, tok))
}

/// A line-oriented SMTP client over any stream (TCP, or TLS after `STARTTLS`).
pub(crate) struct SmtpClient<S> {
    pub(crate) s: tokio::io::BufReader<S>,
}

impl SmtpClient<tokio::net::TcpStream> {
    /// Connects to the sandbox's SMTP listener and reads its 220 greeting.
    pub(crate) async fn connect(sb: &sandbox::Sandbox) -> Self {
        let s = tokio::net::TcpStream::connect(sb.smtp_addr().unwrap())
            .await
            .unwrap();
        let mut c = SmtpClient::new(s);
        assert!(c.reply().await.starts_with("220 "));
        c
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> SmtpClient<S> {
    pub(crate) fn new(s: S) -> Self {
        SmtpClient {
            s: tokio::io::BufReader::new(s),
        }
    }

    /// Reads a (possibly multi-line) reply.
    pub(crate) async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt as _;
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.s.read_line(&mut line).await.unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    /// Writes `bytes` as they are (a message ending in `\r\n.\r\n`) and reads the reply.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> String {
        use tokio::io::AsyncWriteExt as _;
        self.s.get_mut().write_all(bytes).await.unwrap();
        self.reply().await
    }

    /// Sends command `c` and reads the reply.
    pub(crate) async fn cmd(&mut self, c: &str) -> String {
        self.write(format!("{c}\r\n").as_bytes()).await
    }

    /// Sends command `c` and asserts that the reply starts with `want`; returns the reply.
    pub(crate) async fn expect(&mut self, c: &str, want: &str) -> String {
        let reply = self.cmd(c).await;
        assert!(reply.starts_with(want), "{c:?} → {reply:?}, want {want}");
        reply
    }
}

/// An app-only Graph token of the demo app with `roles`.
pub(crate) fn graph_token(sb: &sandbox::Sandbox, roles: &[&str]) -> String {
    app_token(sb, roles, sandbox::ApiResource::Graph)
}

/// A token of the demo app for `resource` of `kind` (app-only roles or a person's scopes),
/// minted by the sandbox's own key.
pub(crate) fn demo_token(
    sb: &sandbox::Sandbox,
    kind: sandbox::TokenKind,
    resource: sandbox::ApiResource,
) -> String {
    sb.admin()
        .mint_token(&sandbox::MintRequest::new(DEMO_APP, kind, resource))
        .expect("mint")
}

/// An app-only token of the demo app for `resource` with `roles`.
pub(crate) fn app_token(
    sb: &sandbox::Sandbox,
    roles: &[&str],
    resource: sandbox::ApiResource,
) -> String {
    let roles = roles.iter().map(|r| r.to_string()).collect();
    demo_token(sb, sandbox::TokenKind::App { roles }, resource)
}

/// `user`'s token of the demo app for `resource` with the delegated `scopes`.
pub(crate) fn delegated_token(
    sb: &sandbox::Sandbox,
    user: &str,
    scopes: &[&str],
    resource: sandbox::ApiResource,
) -> String {
    let kind = sandbox::TokenKind::Delegated {
        user: user.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    demo_token(sb, kind, resource)
}

/// `user`'s token for SMTP AUTH (`SMTP.Send`), the demo app admin-consented for it first.
pub(crate) fn smtp_send_token(sb: &sandbox::Sandbox, user: &str) -> String {
    sb.admin()
        .grant_admin_consent(DEMO_APP, &["https://outlook.office365.com/SMTP.Send"], &[])
        .unwrap();
    delegated_token(sb, user, &["SMTP.Send"], sandbox::ApiResource::Exchange)
}

/// Sends `r` with the JSON `body`, if any: the status, the headers and the JSON answered
/// (`Null` when the answer is not JSON).
pub(crate) async fn send_json(
    mut r: reqwest::RequestBuilder,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Delivers `mime` to `to`, from c@fabrikam.example.
pub(crate) fn deliver_mime(sb: &sandbox::Sandbox, to: &str, mime: &str) {
    sb.admin()
        .inject("c@fabrikam.example", &[to.to_string()], mime.as_bytes())
        .unwrap();
}

/// How many messages are in `mailbox`'s `folder` (an id or a well-known name).
pub(crate) fn folder_count(sb: &sandbox::Sandbox, mailbox: &str, folder: &str) -> usize {
    sb.admin()
        .store()
        .folder(mailbox, folder)
        .expect("the folder")
        .total_count
}

/// An app-only Graph token of the demo app that reads, writes and sends mail
/// (`Mail.ReadWrite`, `Mail.Send`).
pub(crate) fn graph_token_rw(sb: &sandbox::Sandbox) -> String {
    graph_token(sb, &["Mail.ReadWrite", "Mail.Send"])
}
