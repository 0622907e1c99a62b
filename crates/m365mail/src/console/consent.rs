//! The admin consent link a PING report offers when the tenant has not consented to a
//! source's app; `microsoft.rs` takes the answer (`GET /console/consent`).

use std::time::Instant;

use super::html::esc;
use super::security::{Session, random};
use super::{ConsoleState, lock};
use crate::config::{App, Config, Source};

/// An admin consent link handed out.
#[derive(Debug)]
pub(super) struct ConsentLink {
    pub(super) source: String,
    pub(super) app: String,
    /// The tenant the app signs in to, when it is one tenant's id.
    pub(super) tenant: Option<String>,
    pub(super) session: String,
    pub(super) created: Instant,
}

/// The tenant id an app signs in to, when its authority names one tenant by its id (a domain
/// name cannot be compared with a callback's tenant id without asking the directory).
pub(super) fn one_tenant(app: &App) -> Option<String> {
    let t = match app.authority.tenant() {
        Some(t) => t.as_str().to_owned(),
        // Microsoft's layout on another host (`authority_base`): `{base}/{tenant}/oauth2/…`.
        None => {
            let segments: Vec<&str> = app.authority.token_endpoint().path_segments()?.collect();
            let at = segments.iter().position(|s| *s == "oauth2")?;
            (*segments.get(at.checked_sub(1)?)?).to_owned()
        }
    };
    uuid_like(&t).then(|| t.to_ascii_lowercase())
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The part of a PING report that offers the admin consent link for `source`'s app (a fresh
/// `state`, good for a day), or says why there is none.
pub(super) fn consent_offer(
    state: &ConsoleState,
    session: &Session,
    cfg: &Config,
    source: &Source,
) -> String {
    let app = &source.app;
    let scopes = cfg.consent_scopes(app);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let link_state = random();
    let redirect = state.options().url("/console/consent");
    let url = match msauth::admin_consent_url(
        &app.authority,
        &app.client_id,
        &scopes,
        Some(&redirect),
        Some(&link_state),
    ) {
        Ok(u) => u,
        Err(e) => {
            return format!(
                "<div class=\"box bad\" id=\"consent\"><p>The tenant has not consented to \
                 this app, and no admin consent link can be made for it: {}</p></div>",
                esc(&e.to_string())
            );
        }
    };
    {
        let mut p = lock(&state.inner.pending);
        p.purge();
        p.consents.insert(
            link_state,
            ConsentLink {
                source: source.name.clone(),
                app: app.name.clone(),
                tenant: one_tenant(app),
                session: session.key.clone(),
                created: Instant::now(),
            },
        );
    }
    format!(
        "<div class=\"box bad\" id=\"consent\"><h3>The tenant has not consented to this app \
         (401)</h3><p>Until an administrator of the tenant grants consent, every request of this \
         source is refused. An administrator opens this link, signs in and accepts \
         (<em>{scopes}</em>): <a id=\"consent-link\" href=\"{href}\">Grant admin consent for \
         the organization</a>.</p><p><small>You may copy the link and send it to the \
         administrator; it comes back to this console within a day. Or, in the Microsoft Entra \
         admin center: Enterprise applications &gt; the app (<code>{id}</code>) &gt; \
         Permissions &gt; Grant admin consent.</small></p></div>",
        scopes = esc(&scopes.join(" ")),
        href = esc(url.as_str()),
        id = esc(&app.client_id),
    )
}
