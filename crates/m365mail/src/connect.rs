//! From the resolved configuration to live connections: token providers, sources, outbounds.
//! Everything here reads the [`Config`](crate::config::Config) model; the only things read now
//! rather than at load are those a connection needs and a check must not: secrets (environment
//! and files), certificates, CA files and the delta state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow_lite::{Context, Result};
use connector::{MessageOutbound, MessageSource};
use httpcore::StateStore;
use msauth::{ClientCredential, ClientSecret, TokenProvider};

use crate::config::{
    App, CertificateSource, Credential, Flow, Outbound, SecretSource, Service, Source, scopes,
};

/// A tiny stand-in for `anyhow`: the binary's errors are messages for a person.
pub mod anyhow_lite {
    /// A message for a person.
    pub type Error = String;
    /// A result whose error is a message.
    pub type Result<T> = std::result::Result<T, Error>;

    /// Adds what was being done to an error.
    pub trait Context<T> {
        /// Prefixes the error with `what`.
        fn context(self, what: impl std::fmt::Display) -> Result<T>;
    }

    impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
        fn context(self, what: impl std::fmt::Display) -> Result<T> {
            self.map_err(|e| format!("{what}: {e}"))
        }
    }
}

/// The client secret of an app, from the environment, a file or (demos only) the file itself.
pub fn client_secret(app: &App) -> Result<Option<ClientSecret>> {
    let Credential::Secret(source) = &app.credential else {
        return Ok(None);
    };
    match source {
        SecretSource::Env(var) => {
            let v = std::env::var(var).map_err(|_| {
                format!(
                    "apps.{}: the environment variable {var} (client_secret_env) is not set",
                    app.name
                )
            })?;
            Ok(Some(ClientSecret::new(v.trim().to_owned())))
        }
        SecretSource::File(path) => {
            let v = std::fs::read_to_string(path).context(format!(
                "apps.{}.client_secret_file {}",
                app.name,
                path.display()
            ))?;
            Ok(Some(ClientSecret::new(v.trim().to_owned())))
        }
        SecretSource::Inline(secret) => Ok(Some(secret.clone())),
    }
}

/// The confidential-client credential of an app: its certificate (PEM or PKCS#12) or its secret,
/// or `None` for a public client.
pub fn client_credential(app: &App) -> Result<Option<ClientCredential>> {
    let Credential::Certificate(cert) = &app.credential else {
        return Ok(client_secret(app)?.map(ClientCredential::Secret));
    };
    let CertificateSource {
        file: path,
        key_file,
        password_env,
        algorithm,
    } = cert;
    let what = format!("apps.{}.certificate_file {}", app.name, path.display());
    let data = std::fs::read(path).context(&what)?;
    let pkcs12 = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"));
    let credential = if pkcs12 {
        let password = match password_env {
            Some(var) => std::env::var(var).map_err(|_| {
                format!(
                    "apps.{}: the environment variable {var} (certificate_password_env) is not set",
                    app.name
                )
            })?,
            None => String::new(),
        };
        msauth::CertificateCredential::from_pkcs12(&data, &msauth::Pkcs12Password::new(password))
            .context(&what)?
    } else {
        let key = match key_file {
            Some(key_path) => std::fs::read(key_path).context(format!(
                "apps.{}.certificate_key_file {}",
                app.name,
                key_path.display()
            ))?,
            None => data.clone(),
        };
        msauth::CertificateCredential::from_pem(&data, &key).context(&what)?
    };
    Ok(Some(ClientCredential::Certificate(
        credential.with_algorithm(*algorithm),
    )))
}

/// A token provider for `app` and one resource, its tokens cached under the app's `account`
/// when it names one (delegated flows).
pub fn provider(app: &App, scope: &str) -> Result<TokenProvider> {
    provider_with(app, scope, None)
}

/// [`provider`], keeping its tokens in `shared` (a fleet's store: one token request per app
/// and lifetime between all workers) instead of the app's own cache.
fn provider_with(
    app: &App,
    scope: &str,
    shared: Option<Arc<dyn msauth::TokenStore>>,
) -> Result<TokenProvider> {
    let mut builder = TokenProvider::builder(app.authority.clone(), app.client_id.clone())
        .scopes(scopes::requested(app.flow, scope));
    match app.flow {
        Flow::ClientCredentials => {
            let credential = client_credential(app)?.ok_or_else(|| {
                format!(
                    "apps.{}: client credentials need a secret or a certificate",
                    app.name
                )
            })?;
            builder = builder.credential(credential);
            if let Some(store) = shared {
                builder = builder.store(store);
            }
        }
        Flow::DeviceCode | Flow::Browser => {
            if let Some(credential) = client_credential(app)? {
                builder = builder.credential(credential);
            }
            // The signed-in person is part of the cache key: two people signed in through one
            // app registration keep two entries in a shared store (a fleet's database).
            if let Some(account) = &app.account {
                builder = builder.account(account.clone());
            }
            let store: Arc<dyn msauth::TokenStore> = match shared {
                Some(store) => store,
                None => Arc::new(msauth::FileStore::new(
                    app.token_cache.clone().unwrap_or_else(default_cache),
                )),
            };
            builder = builder.store(store);
        }
    }
    if let Some(path) = &app.ca_file {
        let pem = read_ca_file(&format!("apps.{}.ca_file", app.name), path)?;
        let http = https_client(&pem, "msauth", Duration::from_secs(30))
            .context(format!("apps.{}.ca_file", app.name))?;
        builder = builder.http(Arc::new(msauth::ReqwestClient::from_client(http)));
    }
    if let Some(url) = &app.redirect_uri {
        builder = builder.consent_redirect(url.clone());
    }
    builder.build().context(format!("apps.{}", app.name))
}

/// Who a sign-in is: the account and tenant its ID token names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedIn {
    /// `preferred_username` (else `upn`, else `email`), lower-case: an address.
    pub account: String,
    /// `tid`: the tenant's id.
    pub tenant: String,
}

/// The account and tenant of a sign-in, from the ID token of `response` (asked for with the
/// `openid` and `profile` scopes); `None` without one, or when it names no address or tenant.
/// The ID token came straight from the token endpoint over the connection the client checked
/// (OpenID Connect Core 3.1.3.7): its claims are read, not verified again.
pub fn signed_in(response: &msauth::TokenResponse) -> Option<SignedIn> {
    use base64::Engine as _;
    let token = response.id_token.as_ref()?;
    let payload = token.secret().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let account = claims["preferred_username"]
        .as_str()
        .or_else(|| claims["upn"].as_str())
        .or_else(|| claims["email"].as_str())?
        .trim()
        .to_ascii_lowercase();
    let tenant = claims["tid"].as_str()?.to_owned();
    (account.contains('@') && !tenant.is_empty()).then_some(SignedIn { account, tenant })
}

/// Where delegated tokens are cached by default.
pub fn default_cache() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".m365mail").join("tokens.json")
}

/// What connections share within one process: token providers per (app, resource), so every
/// connection of an app uses one token, and Graph delta and EWS sync state stores per file (a
/// file store must be opened once per process: each instance writes the whole file).
#[derive(Default)]
pub struct Providers {
    tokens: HashMap<(String, String), TokenProvider>,
    delta_stores: HashMap<PathBuf, Arc<dyn StateStore<graph_mail::delta::DeltaState>>>,
    sync_stores: HashMap<PathBuf, Arc<dyn StateStore<ews_mail::sync::SourceSyncState>>>,
    shared: Option<SharedStores>,
}

/// The token cache and the delta and sync state of a fleet, shared by all its workers
/// (`m365mail worker`): they replace each app's token cache and each source's `delta_state`
/// or `sync_state` file.
///
/// Non-exhaustive, since a fleet shares more as it grows (issue #20 added `ews_sync`): build one
/// with [`SharedStores::of_fleet`] or [`SharedStores::new`].
#[derive(Clone)]
#[non_exhaustive]
pub struct SharedStores {
    /// Every app's tokens.
    pub tokens: Arc<dyn msauth::TokenStore>,
    /// Every Graph source's delta state (for sources that configure `delta_state`).
    pub delta: Arc<dyn StateStore<graph_mail::delta::DeltaState>>,
    /// Every EWS source's sync state (for sources in push or delta mode, which configure
    /// `sync_state`).
    pub ews_sync: Arc<dyn StateStore<ews_mail::sync::SourceSyncState>>,
}

impl SharedStores {
    /// Shared stores of an integrator's own: tokens, Graph delta state and EWS sync state.
    pub fn new(
        tokens: Arc<dyn msauth::TokenStore>,
        delta: Arc<dyn StateStore<graph_mail::delta::DeltaState>>,
        ews_sync: Arc<dyn StateStore<ews_mail::sync::SourceSyncState>>,
    ) -> Self {
        SharedStores {
            tokens,
            delta,
            ews_sync,
        }
    }

    /// The shared stores of the fleet whose database is `store`.
    pub fn of_fleet(store: &fleet::PgStore) -> Self {
        Self::new(
            Arc::new(store.tokens()),
            Arc::new(store.delta()),
            Arc::new(store.ews_sync()),
        )
    }
}

impl Providers {
    /// Providers whose tokens and delta state live in `stores`.
    pub fn shared(stores: SharedStores) -> Self {
        Providers {
            shared: Some(stores),
            ..Providers::default()
        }
    }

    fn get(&mut self, app: &App, scope: &str) -> Result<TokenProvider> {
        let key = (app.name.clone(), scope.to_owned());
        if let Some(p) = self.tokens.get(&key) {
            return Ok(p.clone());
        }
        let shared = self.shared.as_ref().map(|s| s.tokens.clone());
        let p = provider_with(app, scope, shared)?;
        self.tokens.insert(key, p.clone());
        Ok(p)
    }

    /// The token provider every connection of `app` for `scope` shares (built on first use).
    pub fn token_provider(&mut self, app: &App, scope: &str) -> Result<TokenProvider> {
        self.get(app, scope)
    }

    /// The delta state store kept in `path`, opened on first use (its folder is created).
    fn delta_store(
        &mut self,
        source: &str,
        path: &Path,
    ) -> Result<Arc<dyn StateStore<graph_mail::delta::DeltaState>>> {
        if let Some(shared) = &self.shared {
            return Ok(shared.delta.clone());
        }
        if let Some(s) = self.delta_stores.get(path) {
            return Ok(s.clone());
        }
        let key = format!("sources.{source}.delta_state {}", path.display());
        private_parent(path, &key)?;
        let store: Arc<dyn StateStore<graph_mail::delta::DeltaState>> =
            Arc::new(graph_mail::delta::FileDeltaStore::open(path).context(&key)?);
        self.delta_stores.insert(path.to_path_buf(), store.clone());
        Ok(store)
    }

    /// The EWS sync state store kept in `path`, opened on first use (its folder is created);
    /// a fleet's shared store instead of the file when there is one.
    fn sync_store(
        &mut self,
        source: &str,
        path: &Path,
    ) -> Result<Arc<dyn StateStore<ews_mail::sync::SourceSyncState>>> {
        if let Some(shared) = &self.shared {
            return Ok(shared.ews_sync.clone());
        }
        if let Some(s) = self.sync_stores.get(path) {
            return Ok(s.clone());
        }
        let key = format!("sources.{source}.sync_state {}", path.display());
        private_parent(path, &key)?;
        let store: Arc<dyn StateStore<ews_mail::sync::SourceSyncState>> =
            Arc::new(ews_mail::sync::FileSourceSyncStore::open(path).context(&key)?);
        self.sync_stores.insert(path.to_path_buf(), store.clone());
        Ok(store)
    }
}

/// Creates the folder of a state file (owner-only), naming `key` when it cannot.
fn private_parent(path: &Path, key: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        httpcore::fs::create_private_dir_all(dir).context(key)?;
    }
    Ok(())
}

/// The token, endpoint and extra CA of one Graph or EWS connection (`ca_key` names the
/// `ca_file` key in messages).
struct Target<'a> {
    app: &'a App,
    scope: &'a str,
    mailbox: &'a str,
    ca_file: Option<&'a Path>,
    ca_key: String,
}

fn graph_client(
    providers: &mut Providers,
    endpoint: &graph_mail::Endpoint,
    t: &Target<'_>,
) -> Result<graph_mail::GraphClient> {
    let provider = providers.get(t.app, t.scope)?;
    let mut builder = graph_mail::GraphClient::builder(endpoint.clone(), Arc::new(provider));
    if let Some(path) = t.ca_file {
        let pem = read_ca_file(&t.ca_key, path)?;
        builder = builder
            .http_client(https_client(&pem, "graph-mail", GRAPH_TIMEOUT).context(&t.ca_key)?);
    }
    builder.build().map_err(|e| e.to_string())
}

fn ews_client(
    providers: &mut Providers,
    endpoint: &url::Url,
    t: &Target<'_>,
) -> Result<ews_mail::EwsClient> {
    let provider = providers.get(t.app, t.scope)?;
    let access = match t.app.flow {
        Flow::ClientCredentials => ews_mail::MailboxAccess::Impersonate(t.mailbox.to_owned()),
        Flow::DeviceCode | Flow::Browser => ews_mail::MailboxAccess::Shared(t.mailbox.to_owned()),
    };
    let cfg = ews_mail::EwsConfig::new(
        endpoint.clone(),
        ews_mail::Credentials::Bearer(Arc::new(provider)),
        access,
    );
    match t.ca_file {
        Some(path) => {
            let pem = read_ca_file(&t.ca_key, path)?;
            let http = https_client(&pem, "ews-mail", cfg.timeout).context(&t.ca_key)?;
            ews_mail::EwsClient::with_http(cfg, http).map_err(|e| e.to_string())
        }
        None => ews_mail::EwsClient::new(cfg).map_err(|e| e.to_string()),
    }
}

/// Graph's default request timeout in graph-mail, kept when a custom HTTP client is built here.
const GRAPH_TIMEOUT: Duration = Duration::from_secs(100);

/// An HTTPS client like the crates' own (httpcore's builder: no redirects followed, the same
/// timeout) that also trusts the CA certificates in `pem`. Built here because only the binary
/// reads CA files; the crates take a ready `reqwest::Client`.
fn https_client(pem: &str, agent: &str, timeout: Duration) -> Result<reqwest::Client> {
    let agent = format!("{agent} (m365mail/{})", env!("CARGO_PKG_VERSION"));
    httpcore::HttpClientBuilder::new(agent)
        .timeout(timeout)
        .extra_roots_pem(pem.as_bytes())
        .build()
        .map_err(|e| e.to_string())
}

impl<'a> Target<'a> {
    /// Where source `s` connects.
    fn of_source(s: &'a Source) -> Self {
        Target {
            app: &s.app,
            scope: &s.scope,
            mailbox: &s.mailbox,
            ca_file: s.ca_file.as_deref(),
            ca_key: format!("sources.{}.ca_file", s.name),
        }
    }
}

/// The Graph client of a Graph source (push mode's subscriptions use it beside the source);
/// its token provider is the source's, shared through `providers`.
pub fn source_graph_client(
    providers: &mut Providers,
    s: &Source,
) -> Result<graph_mail::GraphClient> {
    let Service::Graph(endpoint) = &s.service else {
        return Err(format!("sources.{}: not a Graph source", s.name));
    };
    let t = Target::of_source(s);
    graph_client(providers, endpoint, &t)
}

/// The EWS client of an EWS source (push mode's streaming notifications use it beside the
/// source); its token provider is the source's, shared through `providers`.
pub fn source_ews_client(providers: &mut Providers, s: &Source) -> Result<ews_mail::EwsClient> {
    let Service::Ews(endpoint) = &s.service else {
        return Err(format!("sources.{}: not an EWS source", s.name));
    };
    ews_client(providers, endpoint, &Target::of_source(s))
}

/// Builds a source; a fetch is as large as the handler's `batch_size` (fewer list requests per
/// message).
pub fn source(
    providers: &mut Providers,
    s: &Source,
    batch_size: usize,
) -> Result<Arc<dyn MessageSource>> {
    let t = Target::of_source(s);
    match &s.service {
        Service::Graph(endpoint) => {
            let client = graph_client(providers, endpoint, &t)?;
            let mut sc = graph_mail::SourceConfig::default().max_batch(batch_size);
            if let Some(f) = &s.folder {
                sc = sc.folder(f.clone());
            }
            if let Some(n) = s.requests_in_flight {
                sc = sc.use_batch(false).in_flight(n);
            }
            let source = graph_mail::GraphSource::new(client, sc);
            Ok(match &s.delta_state {
                None => Arc::new(source),
                Some(path) => Arc::new(source.with_delta(providers.delta_store(&s.name, path)?)),
            })
        }
        Service::Ews(endpoint) => {
            let client = ews_client(providers, endpoint, &t)?;
            let mut src = ews_mail::EwsSource::new(client).with_max_batch(batch_size);
            if let Some(f) = &s.folder {
                src = src.with_folder(f.clone());
            }
            if let Some(path) = &s.sync_state {
                src = src.with_sync_state(providers.sync_store(&s.name, path)?);
            }
            if let Some(n) = s.requests_in_flight {
                // Smaller requests, n at once: a fetch of `batch_size` in n pages.
                let n = n.clamp(1, ews_mail::MAX_FETCH_CONCURRENCY);
                src = src
                    .with_fetch_concurrency(n)
                    .with_item_chunk(batch_size.div_ceil(n));
            }
            Ok(Arc::new(src))
        }
        // Refused when the file was loaded; a model built by hand could still say so.
        Service::Smtp(_) => Err(format!(
            "sources.{}: kind \"smtp\" only sends; use it in [[outbounds]]",
            s.name
        )),
    }
}

/// A client for a source's own mailbox, over the source's connection (its endpoint, token and
/// extra CA): for what a source does not do itself, such as `m365mail doctor` sending probes
/// from the mailbox and finding and deleting them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum MailboxClient {
    /// Microsoft Graph, for the source's mailbox.
    Graph(graph_mail::GraphClient),
    /// Exchange Web Services, for the source's mailbox.
    Ews(ews_mail::EwsClient),
}

impl MailboxClient {
    /// An outbound that sends as the mailbox (or one of its aliases) over this client.
    pub fn outbound(&self) -> Arc<dyn MessageOutbound> {
        match self {
            MailboxClient::Graph(c) => Arc::new(graph_mail::GraphOutbound::new(c.clone())),
            MailboxClient::Ews(c) => Arc::new(ews_mail::EwsOutbound::new(c.clone())),
        }
    }
}

/// The [`MailboxClient`] of source `s`.
pub fn mailbox_client(providers: &mut Providers, s: &Source) -> Result<MailboxClient> {
    let t = Target::of_source(s);
    match &s.service {
        Service::Graph(endpoint) => {
            Ok(MailboxClient::Graph(graph_client(providers, endpoint, &t)?))
        }
        Service::Ews(endpoint) => Ok(MailboxClient::Ews(ews_client(providers, endpoint, &t)?)),
        Service::Smtp(_) => Err(format!(
            "sources.{}: kind \"smtp\" only sends; use it in [[outbounds]]",
            s.name
        )),
    }
}

/// The [`MailboxClient`] of a Graph or EWS outbound (`None` for SMTP).
pub fn outbound_client(providers: &mut Providers, o: &Outbound) -> Result<Option<MailboxClient>> {
    let t = target(o, format!("outbounds.{}.ca_file", o.name));
    match &o.service {
        Service::Graph(endpoint) => Ok(Some(MailboxClient::Graph(graph_client(
            providers, endpoint, &t,
        )?))),
        Service::Ews(endpoint) => Ok(Some(MailboxClient::Ews(ews_client(
            providers, endpoint, &t,
        )?))),
        Service::Smtp(_) => Ok(None),
    }
}

/// Builds an outbound.
pub fn outbound(providers: &mut Providers, o: &Outbound) -> Result<Arc<dyn MessageOutbound>> {
    outbound_with(providers, o, None)
}

/// [`outbound`], its `ping` also checking the right to send as `from` without sending
/// anything: Graph and EWS send a message with that `From` and no recipient, which the service
/// refuses for the `From` or else for having no recipient; SMTP goes as far as `MAIL FROM`
/// and `RCPT TO`, never `DATA` (so only the envelope sender is checked).
pub fn outbound_checking(
    providers: &mut Providers,
    o: &Outbound,
    from: &str,
) -> Result<Arc<dyn MessageOutbound>> {
    outbound_with(providers, o, Some(from))
}

fn outbound_with(
    providers: &mut Providers,
    o: &Outbound,
    probe_from: Option<&str>,
) -> Result<Arc<dyn MessageOutbound>> {
    let ca_key = format!("outbounds.{}.ca_file", o.name);
    match &o.service {
        Service::Graph(endpoint) => {
            let t = target(o, ca_key);
            let mut out = graph_mail::GraphOutbound::new(graph_client(providers, endpoint, &t)?);
            if let Some(from) = probe_from {
                out = out.ping_from(from);
            }
            Ok(Arc::new(out))
        }
        Service::Ews(endpoint) => {
            let t = target(o, ca_key);
            let mut out = ews_mail::EwsOutbound::new(ews_client(providers, endpoint, &t)?);
            if let Some(from) = probe_from {
                out = out.ping_from(from);
            }
            Ok(Arc::new(out))
        }
        Service::Smtp(smtp) => {
            // App-only: SMTP.SendAsApp via the Exchange resource's .default; delegated: SMTP.Send.
            let provider = providers.get(&o.app, &o.scope)?;
            let mut smtp = smtp.clone();
            if let Some(path) = &o.ca_file {
                smtp = smtp.with_root_certificate_pem(read_ca_file(&ca_key, path)?);
            }
            let mut out = smtp_mail::SmtpOutbound::new(smtp, Arc::new(provider))
                .context(format!("outbounds.{}", o.name))?;
            if let Some(from) = probe_from {
                out = out.ping_from(from);
            }
            Ok(Arc::new(out))
        }
    }
}

fn target(o: &Outbound, ca_key: String) -> Target<'_> {
    Target {
        app: &o.app,
        scope: &o.scope,
        mailbox: &o.mailbox,
        ca_file: o.ca_file.as_deref(),
        ca_key,
    }
}

/// The PEM text of a `ca_file` (`key` names it, e.g. `outbounds.smtp.ca_file`), refused early
/// when it cannot be read or holds no certificate, rather than at the first TLS handshake.
pub fn read_ca_file(key: &str, path: &Path) -> Result<String> {
    let key = format!("{key} {}", path.display());
    let pem = std::fs::read_to_string(path).context(&key)?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{key}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        ));
    }
    Ok(pem)
}
