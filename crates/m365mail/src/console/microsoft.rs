//! Sign in with Microsoft (authorization code with PKCE, back to `/console/callback`), the
//! admin consent link and its callback (`/console/consent`), and the fix for AADSTS50105.
//!
//! Both callbacks arrive as cross-site top-level `GET`s, so they need no session cookie: what
//! they must match is kept here under the random `state` it was issued with, used once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;

use super::consent::{ConsentLink, one_tenant};
use super::html::{esc, page_with_head, see_other};
use super::security::Posted;
use super::sources::{self, NewSource};
use super::{ConsoleState, lock};
use crate::config::{App, Config, Flow, Kind, scopes};
use crate::connect::{self, SignedIn};

/// How long a sign-in may take, from the button to the callback.
const SIGN_IN_LIFETIME: Duration = Duration::from_secs(600);
/// How long an admin consent link stays good (it is often sent to an administrator).
const CONSENT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A browser sign-in in progress.
#[derive(Debug)]
struct SignIn {
    pending: msauth::PendingAuthorization,
    client_id: String,
    template_app: String,
    kind: Kind,
    scope: String,
    name: String,
    session: String,
    created: Instant,
}

/// Sign-ins and consent links in progress, by their `state`.
#[derive(Debug, Default)]
pub(super) struct Pending {
    sign_ins: HashMap<String, SignIn>,
    pub(super) consents: HashMap<String, ConsentLink>,
}

impl Pending {
    pub(super) fn purge(&mut self) {
        self.sign_ins
            .retain(|_, s| s.created.elapsed() <= SIGN_IN_LIFETIME);
        self.consents
            .retain(|_, c| c.created.elapsed() <= CONSENT_LIFETIME);
    }
}

/// The app people sign in with: `--app`, or the first with `flow = "browser"`.
fn sign_in_app<'a>(state: &ConsoleState, cfg: &'a Config) -> Result<&'a App, String> {
    match &state.options().sign_in_app {
        Some(name) => cfg
            .app(name)
            .map(|a| &**a)
            .ok_or_else(|| format!("the sign-in app {name:?} is not in the configuration")),
        None => cfg
            .apps
            .iter()
            .find(|a| a.flow == Flow::Browser)
            .map(|a| &**a)
            .ok_or_else(|| {
                "no app with flow = \"browser\" in the configuration: add one (its redirect \
                 URIs must include the console's /console/callback) or start the console with \
                 --app NAME"
                    .to_owned()
            }),
    }
}

/// `POST /console/signin`: off to the tenant's sign-in page.
pub(super) async fn start(
    State(state): State<ConsoleState>,
    Posted { session, form }: Posted,
) -> Response {
    let fail = |why: String| {
        let note = format!("<p class=\"box bad\" id=\"signin-error\">{}</p>", esc(&why));
        (note, session.clone())
    };
    let cfg = match sources::load(&state).await {
        Ok(c) => c,
        Err(e) => {
            let (note, s) = fail(e);
            return sources::page_get(&state, &s, &note).await;
        }
    };
    let app = match sign_in_app(&state, &cfg) {
        Ok(a) => a,
        Err(e) => {
            let (note, s) = fail(e);
            return sources::page_get(&state, &s, &note).await;
        }
    };
    let kind = match form.get("kind").map(String::as_str) {
        Some("ews") => Kind::Ews,
        _ => Kind::Graph,
    };
    let scope = match kind {
        Kind::Ews => app.ews_scope(),
        _ => app.graph_scope(),
    };
    let mut asked = scopes::delegated(scope);
    asked.extend(["openid".to_owned(), "profile".to_owned()]);
    let redirect = state.options().url("/console/callback");
    let (url, pending) = msauth::AuthorizationRequest::new(app.client_id.clone(), redirect, asked)
        .prompt("select_account")
        .build(&app.authority);
    {
        let mut p = lock(&state.inner.pending);
        p.purge();
        p.sign_ins.insert(
            pending.state().to_owned(),
            SignIn {
                pending,
                client_id: app.client_id.clone(),
                template_app: app.name.clone(),
                kind,
                scope: scope.to_owned(),
                name: form.get("name").cloned().unwrap_or_default(),
                session: session.key.clone(),
                created: Instant::now(),
            },
        );
    }
    see_other(url.as_str())
}

/// The first line of an identity platform's description (the rest is trace ids).
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

/// The fix for AADSTS50105, for the app `client_id`.
fn fix_50105(client_id: &str, user: Option<&str>) -> String {
    let who = user
        .map(|u| format!("<strong>{}</strong>", esc(u)))
        .unwrap_or_else(|| "this user".into());
    format!(
        "<div class=\"box bad\" id=\"fix-50105\"><h2>Sign-in refused: the user is not assigned to \
         the app (AADSTS50105)</h2><p>The tenant's administrator has set <em>Assignment \
         required</em> on this app's enterprise application, and {who} is not assigned to it, \
         directly or through a group.</p><p><strong>The fix</strong>, by an administrator, either \
         of:</p><ol><li>Assign the user (or a group the user is in) to the app: <em>Microsoft \
         Entra admin center &gt; Enterprise applications &gt; the app (application id \
         <code>{id}</code>) &gt; Users and groups &gt; Add user/group</em>.</li><li>Or let every \
         user of the tenant in: <em>Microsoft Entra admin center &gt; Enterprise applications &gt; \
         the app &gt; Properties &gt; Assignment required?</em> set to <em>No</em>, then Save.</li>\
         </ol><p>Then the same user signs in again with <em>Sign in with Microsoft</em> \
         below.</p></div>",
        id = esc(client_id)
    )
}

/// The page a callback answers with: its message, and (for the operator's own browser) the way
/// back to the Sources page, where the message waits as well. With `refresh` the browser goes
/// there at once: a same-site navigation from here carries the `SameSite=Strict` session cookie,
/// which the cross-site redirect that brought the browser here did not.
fn continue_page(status: StatusCode, title: &str, html: &str, refresh: bool) -> Response {
    let head = if refresh {
        "<meta http-equiv=\"refresh\" content=\"0;url=/console/\">"
    } else {
        ""
    };
    page_with_head(
        status,
        title,
        head,
        &format!("{html}<p><a id=\"continue\" href=\"/console/\">Continue to the console</a></p>"),
    )
}

/// `GET /console/callback`: the browser back from the tenant's sign-in page.
pub(super) async fn callback(State(state): State<ConsoleState>, RawQuery(q): RawQuery) -> Response {
    let query = q.unwrap_or_default();
    let state_param = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let sign_in = {
        let mut p = lock(&state.inner.pending);
        p.purge();
        p.sign_ins.remove(&state_param)
    };
    let Some(sign_in) = sign_in else {
        return continue_page(
            StatusCode::BAD_REQUEST,
            "Sign-in not recognised",
            "<p class=\"box bad\" id=\"signin-error\">This answer does not belong to a sign-in \
             started here (state mismatch), or it was already used or is older than ten minutes. \
             Nothing was changed. Start again with <em>Sign in with Microsoft</em>.</p>",
            false,
        );
    };
    let (title, html) = finish_sign_in(&state, &sign_in, &query).await;
    lock(&state.inner.sessions).flash(&sign_in.session, html.clone());
    continue_page(StatusCode::OK, &title, &html, true)
}

/// Redeems the code and adds (or renews) the source: the title and message for the operator.
async fn finish_sign_in(state: &ConsoleState, s: &SignIn, query: &str) -> (String, String) {
    let bad = |title: &str, why: &str| {
        (
            title.to_owned(),
            format!("<p class=\"box bad\" id=\"signin-error\">{}</p>", esc(why)),
        )
    };
    let client_id = s.client_id.clone();
    let code = match s.pending.parse_redirect(query) {
        Ok(c) => c,
        Err(msauth::RedirectError::Denied { error, description }) => {
            let d = description.unwrap_or_default();
            if d.contains("AADSTS50105") {
                return ("Sign-in refused".into(), fix_50105(&client_id, None));
            }
            return bad(
                "Sign-in refused",
                &format!("The sign-in was refused ({error}): {}", first_line(&d)),
            );
        }
        Err(e) => return bad("Sign-in failed", &e.to_string()),
    };
    let cfg = match sources::load(state).await {
        Ok(c) => c,
        Err(e) => return bad("Sign-in failed", &e),
    };
    let Some(app) = cfg.app(&s.template_app) else {
        return bad("Sign-in failed", "the sign-in app left the configuration");
    };
    let response = match connect::provider(app, &s.scope) {
        Ok(p) => p.client().redeem_code(&s.pending, code).await,
        Err(e) => return bad("Sign-in failed", &e),
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            let text = e.diagnosis().explain();
            if text.contains("50105") {
                return ("Sign-in refused".into(), fix_50105(&client_id, None));
            }
            return bad("Sign-in failed", &first_line(&text));
        }
    };
    let Some(SignedIn {
        account: mailbox,
        tenant,
    }) = connect::signed_in(&response)
    else {
        return bad(
            "Sign-in failed",
            "the token endpoint returned no ID token naming the account (preferred_username) \
             and its tenant (tid): the app must be allowed the openid and profile scopes",
        );
    };
    if let Some(expected) = one_tenant(app)
        && !expected.eq_ignore_ascii_case(&tenant)
    {
        return bad(
            "Sign-in refused",
            &format!(
                "{mailbox} belongs to the tenant {tenant}, but the app signs in to {expected}"
            ),
        );
    }
    let added = sources::add_signed_in(
        state,
        &NewSource {
            template_app: s.template_app.clone(),
            kind: s.kind,
            name: s.name.clone(),
            mailbox: mailbox.clone(),
            tenant,
        },
        &response,
    )
    .await;
    let added = match added {
        Ok(a) => a,
        Err(e) => return bad("The source could not be added", &e),
    };
    let Some(source) = added.config.source(&added.source) else {
        return bad(
            "The source could not be added",
            "it is not in the configuration",
        );
    };
    let what = if added.existed {
        "signed in again"
    } else {
        "added"
    };
    (
        "Signed in".into(),
        format!(
            "<p class=\"box good\" id=\"signin-ok\">Signed in as <strong>{}</strong>: source \
             <strong id=\"added-source\">{}</strong> {what}. PING it to see whether it works.</p>",
            esc(&mailbox),
            esc(&source.name)
        ),
    )
}

/// `GET /console/consent`: back from the admin consent page (in the operator's browser or the
/// administrator's, which may have no session here).
pub(super) async fn consent_callback(
    State(state): State<ConsoleState>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = q.unwrap_or_default();
    let link_state = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let link = {
        let mut p = lock(&state.inner.pending);
        p.purge();
        p.consents.remove(&link_state)
    };
    let Some(link) = link else {
        return continue_page(
            StatusCode::BAD_REQUEST,
            "Consent answer not recognised",
            "<p class=\"box bad\" id=\"consent-error\" data-reason=\"state\">This answer does \
             not belong to a consent link of this console (state mismatch), or the link was \
             already used or is more than a day old. Whatever the administrator did at Microsoft \
             stands: PING the source to see whether consent is there now, and ask for a new link \
             if not.</p>",
            false,
        );
    };
    let (status, reason, html) = match msauth::parse_admin_consent_callback(&query, &link_state) {
        Err(msauth::RedirectError::Denied { error, description }) => (
            StatusCode::OK,
            "denied",
            format!(
                "<p class=\"box bad\" id=\"consent-error\" data-reason=\"denied\">Consent for \
                 source <strong>{s}</strong> was not granted ({e}): {d}. Nothing changed; PING \
                 the source for a new link to try again.</p>",
                s = esc(&link.source),
                e = esc(&error),
                d = esc(&first_line(&description.unwrap_or_default())),
            ),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "<p class=\"box bad\" id=\"consent-error\" data-reason=\"invalid\">The consent \
                 answer cannot be used: {}</p>",
                esc(&e.to_string())
            ),
        ),
        Ok(granted) => {
            let got = granted.tenant.clone().unwrap_or_default();
            match &link.tenant {
                Some(expected) if !expected.eq_ignore_ascii_case(&got) => (
                    StatusCode::OK,
                    "tenant",
                    format!(
                        "<p class=\"box bad\" id=\"consent-error\" data-reason=\"tenant\">\
                         Consent was granted in another tenant ({g}) than the one app {a} signs \
                         in to ({x}): source <strong>{s}</strong> still has none. The \
                         administrator must sign in with an account of tenant {x}.</p>",
                        g = esc(&got),
                        a = esc(&link.app),
                        x = esc(expected),
                        s = esc(&link.source),
                    ),
                ),
                _ => (
                    StatusCode::OK,
                    "granted",
                    format!(
                        "<p class=\"box good\" id=\"consent-ok\">Admin consent granted for the \
                         organization{t}. PING source <strong>{s}</strong> again: it should now be \
                         ONLINE.</p>",
                        t = if got.is_empty() {
                            String::new()
                        } else {
                            format!(" (tenant {})", esc(&got))
                        },
                        s = esc(&link.source),
                    ),
                ),
            }
        }
    };
    let _ = reason;
    lock(&state.inner.sessions).flash(&link.session, html.clone());
    continue_page(status, "Admin consent", &html, false)
}
