//! The operator's sign-in, sessions, CSRF tokens and the `Host`/`Origin` checks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use connector::constant_time_eq;
use http::{HeaderMap, Method, StatusCode, header};
use sha2::{Digest, Sha256};

use super::html::{csrf_field, esc, page, refuse, see_other};
use super::{ConsoleState, lock};

/// How long a session lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
const COOKIE: &str = "m365mail_console";

/// The operator's token: the console's password. Never printed by `Debug`.
#[derive(Clone)]
pub struct OperatorToken(String);

impl OperatorToken {
    /// The token `value` (leading and trailing white space removed).
    pub fn new(value: impl Into<String>) -> Self {
        OperatorToken(value.into().trim().to_owned())
    }

    /// A fresh random token (256 bits, base64url), for a console started without one.
    pub fn generate() -> Self {
        OperatorToken(random())
    }

    /// The token's value, to tell the operator once (`m365mail console` prints a generated one).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token: SHA-256 digests compared in constant time, so neither the
    /// content nor the length leaks through timing. An empty token matches nothing.
    fn matches(&self, given: &str) -> bool {
        !self.0.is_empty() && constant_time_eq(&digest(&self.0), &digest(given.trim()))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken([redacted])")
    }
}

/// 256 random bits, base64url.
pub(super) fn random() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// One operator's session.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The token forms carry.
    pub(super) csrf: String,
    /// The session's key in [`Sessions`] (the SHA-256 of the cookie's value).
    pub(super) key: String,
    created: Instant,
}

/// The live sessions, by the SHA-256 of their cookie (a memory dump holds no usable cookie),
/// each with what to show on its next page.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    live: HashMap<String, Session>,
    flash: HashMap<String, String>,
}

impl Sessions {
    /// Leaves a message (HTML) for the session `key`'s next Sources page.
    pub(super) fn flash(&mut self, key: &str, html: String) {
        if self.live.contains_key(key) {
            self.flash.insert(key.to_owned(), html);
        }
    }

    /// Takes the message left for `key`.
    pub(super) fn take_flash(&mut self, key: &str) -> Option<String> {
        self.flash.remove(key)
    }
}

fn key_of(cookie: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest(cookie))
}

/// The session the request's cookie names, if it is live.
pub(super) fn session(state: &ConsoleState, headers: &HeaderMap) -> Option<Session> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())?;
    let key = key_of(&cookie);
    let mut sessions = lock(&state.inner.sessions);
    let s = sessions.live.get(&key)?.clone();
    if s.created.elapsed() > SESSION_LIFETIME {
        sessions.live.remove(&key);
        sessions.flash.remove(&key);
        return None;
    }
    Some(s)
}

/// The session of a page request, or the redirect to the login form.
// The error is the answer itself; boxing it would only add noise.
#[allow(clippy::result_large_err)]
pub(super) fn for_page(state: &ConsoleState, headers: &HeaderMap) -> Result<Session, Response> {
    session(state, headers).ok_or_else(|| see_other("/console/login"))
}

/// The session and form of a state-changing request: `401` without a session, `403` without
/// the session's CSRF token (or with another).
#[allow(clippy::result_large_err)]
pub(super) fn for_post(
    state: &ConsoleState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Session, HashMap<String, String>), Response> {
    let Some(session) = session(state, headers) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "Sign in to the console first",
        ));
    };
    let form = form(body);
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), session.csrf.as_bytes()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Refused: the form's CSRF token is missing or wrong (reload the page and try again)",
        ));
    }
    Ok((session, form))
}

/// A console form `POST` that passed [`for_post`]: the signed-in session and the form's fields.
/// A request that does not pass is refused with `for_post`'s answer before the handler runs.
pub(super) struct Posted {
    /// The session of the console user.
    pub(super) session: Session,
    /// The form's fields (the first of each name).
    pub(super) form: HashMap<String, String>,
}

impl FromRequest<ConsoleState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &ConsoleState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let (session, form) = for_post(state, &headers, &body)?;
        Ok(Posted { session, form })
    }
}

/// A form body's fields (the first of each name).
pub(super) fn form(body: &Bytes) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// Every request: a `Host` the console answers to (else DNS rebinding could make a hostile
/// page same-origin), and for anything but `GET`/`HEAD` an `Origin`, when sent, that is the
/// console's own.
pub(super) async fn guard(State(state): State<ConsoleState>, req: Request, next: Next) -> Response {
    let hosts = state.options().hosts();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !hosts.is_empty() && !hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        // Also a browser that opened `localhost` instead of `127.0.0.1`: one name only, as
        // the session cookie and the redirect URIs belong to one host.
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "Refused: unknown Host. Open the console at {}",
                state.options().url("/console/")
            ),
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(origin) = req.headers().get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or_default();
        let own = state.options().public_url.origin().ascii_serialization();
        let same_host = url::Url::parse(origin).is_ok_and(|o| {
            let scheme = state.options().public_url.scheme();
            let h = match (o.host_str(), o.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => String::new(),
            };
            o.scheme() == scheme && h.eq_ignore_ascii_case(&host)
        });
        if origin != own && !same_host {
            return refuse(StatusCode::FORBIDDEN, "Refused: cross-origin request");
        }
    }
    next.run(req).await
}

/// `GET /console/login`.
pub(super) async fn login_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if session(&state, &headers).is_some() {
        return see_other("/console/");
    }
    login_form(StatusCode::OK, "")
}

fn login_form(status: StatusCode, note: &str) -> Response {
    page(
        status,
        "Sign in to the console",
        None,
        &format!(
            "{note}<form method=\"post\" action=\"/console/login\" class=\"box\">\
             <p><label>Operator token <input type=\"password\" name=\"token\" id=\"token\" \
             autocomplete=\"current-password\" autofocus></label>\
             <button class=\"primary\" id=\"login\">Sign in</button></p>\
             <p><small>The token is the value of M365MAIL_CONSOLE_TOKEN where the console runs \
             (or the one it printed when started without it).</small></p></form>"
        ),
    )
}

/// `POST /console/login`: the operator token in, a session cookie out.
pub(super) async fn login(State(state): State<ConsoleState>, body: Bytes) -> Response {
    let form = form(&body);
    let given = form.get("token").map(String::as_str).unwrap_or_default();
    if !state.options().operator_token.matches(given) {
        // A pause makes guessing slow; the answer does not say what was wrong.
        tokio::time::sleep(Duration::from_millis(400)).await;
        return login_form(
            StatusCode::UNAUTHORIZED,
            "<p class=\"box bad\" id=\"login-error\">That is not the operator token.</p>",
        );
    }
    let cookie = random();
    let key = key_of(&cookie);
    {
        let mut sessions = lock(&state.inner.sessions);
        sessions
            .live
            .retain(|_, s| s.created.elapsed() <= SESSION_LIFETIME);
        sessions.live.insert(
            key.clone(),
            Session {
                csrf: random(),
                key,
                created: Instant::now(),
            },
        );
    }
    let secure = if state.options().secure() {
        "; Secure"
    } else {
        ""
    };
    let mut r = see_other("/console/");
    if let Ok(v) = http::HeaderValue::from_str(&format!(
        "{COOKIE}={cookie}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_LIFETIME.as_secs()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /console/logout`.
pub(super) async fn logout(
    State(state): State<ConsoleState>,
    Posted { session, .. }: Posted,
) -> Response {
    {
        let mut sessions = lock(&state.inner.sessions);
        sessions.live.remove(&session.key);
        sessions.flash.remove(&session.key);
    }
    let mut r = see_other("/console/login");
    if let Ok(v) = http::HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// A form that posts to `action` with the CSRF token and `fields` (HTML), behind `button`.
pub(super) fn post_form(csrf: &str, action: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" style=\"display:inline\">{}{fields}{button}</form>",
        esc(action),
        csrf_field(csrf)
    )
}
