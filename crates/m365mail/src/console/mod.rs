//! The web console: the operator's screens for connecting mailboxes, served by
//! `m365mail console` and available to integrators as an axum [`Router`] they mount in their own
//! application ([`router`]).
//!
//! Server-rendered HTML with plain forms and a few lines of inline CSS: no JavaScript, no build
//! chain. The pages:
//!
//! - **Sources** (`GET /console/`): every source of the configuration file with its status and
//!   messages waiting as the console's last PING saw them, and a **PING** button
//!   (`POST /console/sources/{name}/ping`) that shows the ping report with its connection log
//!   (what `m365mail ping NAME` prints).
//! - **Sign in with Microsoft** (`POST /console/signin`): authorization code with PKCE through
//!   the browser, back to `/console/callback`; the mailbox is the signed-in account's
//!   (`preferred_username` of the ID token the token endpoint returned), and the source is
//!   appended to the configuration file (see [Where new sources go](#where-new-sources-go)).
//! - When PING answers that the tenant has not consented, the report says so and offers the
//!   admin consent link (`msauth::admin_consent_url`, as `m365mail consent-url`), which comes
//!   back to `/console/consent`: a grant, a refusal (`error=access_denied` and the like), a
//!   consent given in another tenant and a `state` this console did not issue are each told
//!   apart.
//! - When sign-in answers AADSTS50105 (the user is not assigned to the enterprise application
//!   and *Assignment required* is on), the page names the fix and where in the Entra admin
//!   center to make it; the same user then signs in again.
//!
//! # Mounting it
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use m365mail::console::{ConsoleOptions, ConsoleState, OperatorToken};
//! let options = ConsoleOptions::new(
//!     "m365mail.toml".into(),
//!     OperatorToken::new(std::env::var("M365MAIL_CONSOLE_TOKEN").unwrap_or_default()),
//!     url::Url::parse("https://helpdesk.example").expect("a URL"),
//! );
//! let app = axum::Router::new()
//!     // your own routes ...
//!     .merge(m365mail::console::router(ConsoleState::new(options)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8765").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Merge it (do not `nest` it): its paths are `/console/...`, and `public_url` plus
//! `/console/callback` and `/console/consent` are the redirect URIs to register on the app
//! registration (Entra admin center > App registrations > the app > Authentication > Web).
//!
//! # Security
//!
//! - `m365mail console` listens on `127.0.0.1:8765` unless `--listen` says otherwise (an address
//!   beyond loopback needs `--allow-non-loopback`).
//! - Every page but the login form and the two identity callbacks needs the operator's sign-in:
//!   the operator token (`M365MAIL_CONSOLE_TOKEN`; generated and printed when unset), compared
//!   in constant time (SHA-256 digests), then a session cookie of 256 random bits, `HttpOnly`,
//!   `SameSite=Strict`, `Path=/console`, and `Secure` when `public_url` is `https`. Sessions end
//!   after 12 hours or at logout. A page asked for without a session redirects to the login
//!   form; any other request without one is `401`.
//! - Every state-changing request (`POST`) carries the session's CSRF token in a hidden field
//!   (checked in constant time; `403` when missing or wrong), and a request whose `Origin` is
//!   not the console's own, or whose `Host` is not one of its names (DNS rebinding), is `403`.
//! - The identity callbacks are cross-site top-level `GET`s from the identity platform, on which
//!   a `Strict` cookie is not sent: they need no cookie. A sign-in's PKCE verifier and a consent
//!   link's expectations are kept on the server under the random `state` they were issued with
//!   (one use; ten minutes for a sign-in, a day for a consent link), and the callbacks answer
//!   with a page that links back, so the operator's next request is same-site again.
//! - No secret is ever rendered: not the client secret, no token, not the operator token. The
//!   connection log is the scrubbed one `m365mail ping` prints. Pages are sent with
//!   `Cache-Control: no-store`, `Referrer-Policy: same-origin`, a `Content-Security-Policy` that
//!   allows no script and no framing.
//!
//! # Where new sources go
//!
//! Without a fleet's database, a source added by signing in is appended to the configuration
//! file itself, as one
//! `[[apps]]` and one `[[sources]]` table under a comment naming the account and the time: the
//! app is a copy of the sign-in app (`--app`, or the first app with `flow = "browser"`) with the
//! signed-in tenant, the signed-in person as its `account` (the token cache's key carries it)
//! and a token cache of its own (`m365mail-console-tokens/SOURCE.json` beside the file, mode
//! 0600), because each signed-in person needs their own cached sign-in. Appending
//! keeps the operator's text, comments and order untouched, and `m365mail run`, `ping` and
//! `doctor` see the source at once with nothing else to know. The whole new text is resolved by
//! [`Config::parse`](crate::config::Config::parse) before it replaces the file (atomically, with
//! its permissions), so a console never leaves a file the other commands refuse.
//!
//! - **Outbounds** (`GET /console/outbounds`): each outbound with what it may send as, and PING
//!   (`POST /console/outbounds/{name}/ping`), which also shows the right to send as the
//!   mailbox and as each alias of the sources that notify through it (and each `send_as`):
//!   each checked by the outbound's own probe, which sends nothing
//!   ([`connect::outbound_checking`](crate::connect::outbound_checking)). Graph and EWS: a send
//!   with that From and no recipient, which the service refuses for the From
//!   (`ErrorSendAsDenied`) or else for having no recipient (that the right is checked first is
//!   what the sandbox models). SMTP: `MAIL FROM` the address and `RCPT TO` the mailbox, then
//!   `RSET`, never `DATA`: the envelope sender is refused there (`550 5.7.60`, as Exchange
//!   Online is reported to do), but the From header is checked only in `DATA`, so an SMTP
//!   ALLOWED says only that `MAIL FROM` was accepted, and the page says so. A form
//!   (`POST /console/outbounds`) creates an outbound (name, kind, one of the configured apps,
//!   mailbox, `send_from_alias_enabled`), added where a signed-in source is (the file, or the
//!   fleet's database); a refused value changes nothing and is named.
//! - **Routing** (`GET /console/routing`): each source's addresses and rules in the order they
//!   are tried, and a box to test an address (what `m365mail route --address` prints). Each
//!   source's **Check addresses** (`POST /console/routing/{name}/check`) runs the doctor for that
//!   source alone (as `m365mail doctor --source NAME`, probes waited for 5 s) and shows its
//!   address findings with their fixes: the pickup address a group, plus addressing off, an
//!   alias that does not receive yet ("may take up to 24 hours").
//!
//! With the fleet's PostgreSQL database ([`ConsoleOptions::store`], `M365MAIL_STORE`), the
//! Sources page lists the fleet's sources (the file's and the database's, as
//! `m365mail sources list`), with the status, messages waiting, last pass and worker its workers
//! report, and PING signs in through the fleet's token cache.
//!
//! Signing in then adds the source to the fleet's database rather than the file: the copied
//! `[[apps]]` (with `account`, no `token_cache`) and the `[[sources]]` go through
//! [`Fleet::add`](crate::operate::Fleet::add), exactly what `m365mail sources add` stores, and
//! the sign-in goes to the fleet's token cache under the signed-in account, before the source
//! is stored, so a worker that picks the source up at its next tick finds its sign-in. An
//! outbound created on the Outbounds page is stored in the database the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use url::Url;

mod consent;
mod html;
mod microsoft;
mod pages;
mod security;
mod sources;

pub use security::OperatorToken;

/// What a console serves and how it is reached.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsoleOptions {
    /// The configuration file: its sources are listed, new ones are appended to it.
    pub config: PathBuf,
    /// The operator's token (the console's password).
    pub operator_token: OperatorToken,
    /// Where browsers reach the console (`http://127.0.0.1:8765`): the redirect URIs are
    /// `{public_url}/console/callback` and `{public_url}/console/consent`; `https` makes the
    /// session cookie `Secure`.
    pub public_url: Url,
    /// Further `Host` header values accepted besides `public_url`'s (an empty list and no
    /// `public_url` host would accept any).
    pub allowed_hosts: Vec<String>,
    /// The app a person signs in with to add a source (default: the first app with
    /// `flow = "browser"`).
    pub sign_in_app: Option<String>,
    /// The Graph base URL of sources added by sign-in (default: the one of an existing Graph
    /// source of the sign-in app, else the app's cloud's).
    pub graph_url: Option<String>,
    /// The EWS URL of sources added by sign-in (default as for `graph_url`).
    pub ews_url: Option<String>,
    /// The fleet's PostgreSQL database (`M365MAIL_STORE`): the sources are then the fleet's
    /// (the file's and the database's, as `m365mail sources list` shows them), with the status
    /// and last pass its workers report, and PING uses the fleet's token cache.
    pub store: Option<StoreUrl>,
}

/// The fleet database's URL (it may hold a password): never printed by `Debug`.
#[derive(Clone)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// The URL `postgres://user:password@host:port/database`.
    pub fn new(url: impl Into<String>) -> Self {
        StoreUrl(url.into())
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreUrl([redacted])")
    }
}

impl ConsoleOptions {
    /// A console for the configuration file `config`, signed in to with `operator_token`,
    /// reached at `public_url`.
    pub fn new(config: PathBuf, operator_token: OperatorToken, public_url: Url) -> Self {
        ConsoleOptions {
            config,
            operator_token,
            public_url,
            allowed_hosts: Vec::new(),
            sign_in_app: None,
            graph_url: None,
            ews_url: None,
            store: None,
        }
    }

    /// Read the fleet's sources from its PostgreSQL database at `url`.
    pub fn store(mut self, url: Option<StoreUrl>) -> Self {
        self.store = url;
        self
    }

    /// Also accept requests whose `Host` is `host` (`name:port`).
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// Sign people in with the app called `name`.
    pub fn sign_in_app(mut self, name: Option<String>) -> Self {
        self.sign_in_app = name;
        self
    }

    /// The Graph base URL and EWS URL of sources added by sign-in.
    pub fn service_urls(mut self, graph: Option<String>, ews: Option<String>) -> Self {
        self.graph_url = graph;
        self.ews_url = ews;
        self
    }

    /// The `Host` values the console answers to.
    fn hosts(&self) -> Vec<String> {
        let mut hosts = self.allowed_hosts.clone();
        if let Some(h) = self.public_url.host_str() {
            match self.public_url.port() {
                Some(p) => hosts.push(format!("{h}:{p}")),
                None => hosts.push(h.to_owned()),
            }
        }
        hosts
    }

    /// Whether the console is reached over TLS (cookies are then `Secure`).
    fn secure(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `{public_url}{path}`.
    fn url(&self, path: &str) -> Url {
        let mut u = self.public_url.clone();
        u.set_path(path);
        u.set_query(None);
        u.set_fragment(None);
        u
    }
}

/// A console's state: its options, sessions, sign-ins in progress and the last PING of each
/// source. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct ConsoleState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: ConsoleOptions,
    sessions: Mutex<security::Sessions>,
    pending: Mutex<microsoft::Pending>,
    pings: Mutex<std::collections::HashMap<String, sources::LastPing>>,
    /// One writer of the configuration file at a time.
    write: tokio::sync::Mutex<()>,
    /// The fleet's database, connected on first use.
    fleet: tokio::sync::OnceCell<crate::operate::Fleet>,
}

impl ConsoleState {
    /// The state of a console with `options`.
    pub fn new(options: ConsoleOptions) -> Self {
        ConsoleState {
            inner: Arc::new(Inner {
                options,
                sessions: Mutex::new(security::Sessions::default()),
                pending: Mutex::new(microsoft::Pending::default()),
                pings: Mutex::new(Default::default()),
                write: tokio::sync::Mutex::new(()),
                fleet: tokio::sync::OnceCell::new(),
            }),
        }
    }

    fn options(&self) -> &ConsoleOptions {
        &self.inner.options
    }

    /// The fleet, when the console reads one (`None`: the configuration file alone). A failed
    /// connection is tried again on the next request.
    async fn fleet(&self) -> Option<Result<&crate::operate::Fleet, String>> {
        let url = self.options().store.as_ref()?;
        Some(
            self.inner
                .fleet
                .get_or_try_init(|| crate::operate::Fleet::open(&self.options().config, &url.0))
                .await,
        )
    }
}

/// Locks a mutex, taking over a poisoned one (the data are maps that stay consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The console's routes (all under `/console`), to serve alone or merge into an application.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(sources::to_sources))
        .route("/console/", get(sources::sources_page))
        .route(
            "/console/login",
            get(security::login_page).post(security::login),
        )
        .route("/console/logout", post(security::logout))
        .route("/console/sources/{name}/ping", post(sources::ping))
        .route(
            "/console/outbounds",
            get(pages::outbounds).post(pages::create_outbound),
        )
        .route("/console/outbounds/{name}/ping", post(pages::ping_outbound))
        .route("/console/routing", get(pages::routing))
        .route(
            "/console/routing/{name}/check",
            post(pages::check_addresses),
        )
        .route("/console/signin", post(microsoft::start))
        .route("/console/callback", get(microsoft::callback))
        .route("/console/consent", get(microsoft::consent_callback))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}

/// Serves [`router`] on `listener` until the task is dropped or fails.
pub async fn serve(listener: tokio::net::TcpListener, state: ConsoleState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Whether `addr` is a loopback address (the console's default; anything else must be asked for).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
