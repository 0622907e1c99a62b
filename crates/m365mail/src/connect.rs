//! From configuration to live connections: token providers, sources, outbounds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow_lite::{Context, Result};
use connector::{MessageOutbound, MessageSource};
use msauth::{Authority, ClientCredential, ClientSecret, Cloud, Tenant, TokenProvider};
use url::Url;

use crate::config::{
    AppConfig, AssertionAlgorithmName, Config, Flow, Kind, OutboundConfig, SourceConfig, SourceMode,
};

/// The scope an app's Graph tokens are asked for: its cloud's `{graph}/.default` (for
/// delegated flows, [`delegated_scopes`] turns it into the permissions a person consents to).
pub fn graph_scope(app: &AppConfig) -> &'static str {
    app.cloud.graph().app_scope()
}

/// The scope an app's EWS tokens are asked for: its cloud's Exchange Online `.default`.
pub fn ews_scope(app: &AppConfig) -> &'static str {
    app.cloud.ews().app_scope()
}

/// The scope an app's SMTP tokens are asked for in its cloud: app-only, `SMTP.SendAsApp` via
/// Exchange Online's `.default`; delegated, `SMTP.Send`.
pub fn smtp_scope(app: &AppConfig) -> String {
    match app.flow {
        Flow::ClientCredentials => app.cloud.smtp().app_scope().to_owned(),
        _ => app.cloud.smtp().delegated_scope("SMTP.Send"),
    }
}

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

/// The authority of an app: its cloud's login host, or a custom one (an emulator).
pub fn authority(app: &AppConfig) -> Result<Authority> {
    let tenant = Tenant::parse(&app.tenant).context(format!("apps.{}.tenant", app.name))?;
    match &app.authority_base {
        Some(base) => Authority::microsoft_layout(base, tenant)
            .context(format!("apps.{}.authority_base", app.name)),
        None => Authority::microsoft(app.cloud, tenant).context(format!("apps.{}", app.name)),
    }
}

/// The client secret of an app, from the environment, a file or (demos only) the file itself.
pub fn client_secret(app: &AppConfig) -> Result<Option<ClientSecret>> {
    if let Some(var) = &app.client_secret_env {
        let v = std::env::var(var).map_err(|_| {
            format!(
                "apps.{}: the environment variable {var} (client_secret_env) is not set",
                app.name
            )
        })?;
        return Ok(Some(ClientSecret::new(v.trim().to_owned())));
    }
    if let Some(path) = &app.client_secret_file {
        let v = std::fs::read_to_string(path).context(format!(
            "apps.{}.client_secret_file {}",
            app.name,
            path.display()
        ))?;
        return Ok(Some(ClientSecret::new(v.trim().to_owned())));
    }
    Ok(app.client_secret.clone())
}

/// The confidential-client credential of an app: its certificate (PEM or PKCS#12) or its secret,
/// or `None` for a public client.
pub fn client_credential(app: &AppConfig) -> Result<Option<ClientCredential>> {
    let Some(path) = &app.certificate_file else {
        return Ok(client_secret(app)?.map(ClientCredential::Secret));
    };
    let what = format!("apps.{}.certificate_file {}", app.name, path.display());
    let data = std::fs::read(path).context(&what)?;
    let pkcs12 = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"));
    let credential = if pkcs12 {
        let password = match &app.certificate_password_env {
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
        let key = match &app.certificate_key_file {
            Some(key_path) => std::fs::read(key_path).context(format!(
                "apps.{}.certificate_key_file {}",
                app.name,
                key_path.display()
            ))?,
            None => data.clone(),
        };
        msauth::CertificateCredential::from_pem(&data, &key).context(&what)?
    };
    let algorithm = match app.assertion_algorithm {
        Some(AssertionAlgorithmName::Rs256) => msauth::AssertionAlgorithm::Rs256,
        Some(AssertionAlgorithmName::Ps256) | None => msauth::AssertionAlgorithm::Ps256,
    };
    Ok(Some(ClientCredential::Certificate(
        credential.with_algorithm(algorithm),
    )))
}

/// A token provider for `app` and one resource.
pub fn provider(app: &AppConfig, scope: &str) -> Result<TokenProvider> {
    let authority = authority(app)?;
    let mut builder = TokenProvider::builder(authority, app.client_id.clone());
    match app.flow {
        Flow::ClientCredentials => {
            let credential = client_credential(app)?.ok_or_else(|| {
                format!(
                    "apps.{}: client credentials need a secret or a certificate",
                    app.name
                )
            })?;
            builder = builder
                .credential(credential)
                .scopes(requested_scopes(app, scope));
        }
        Flow::DeviceCode | Flow::Browser => {
            builder = builder.scopes(requested_scopes(app, scope));
            if let Some(credential) = client_credential(app)? {
                builder = builder.credential(credential);
            }
            let cache = app.token_cache.clone().unwrap_or_else(default_cache);
            let store = msauth::FileStore::new(cache);
            builder = builder.store(Arc::new(store));
        }
    }
    if let Some(path) = &app.ca_file {
        let pem = read_ca_file(&format!("apps.{}.ca_file", app.name), path)?;
        let http = https_client(&pem, "msauth", Duration::from_secs(30))
            .context(format!("apps.{}.ca_file", app.name))?;
        builder = builder.http(Arc::new(msauth::ReqwestClient::from_client(http)));
    }
    if let Some(uri) = &app.redirect_uri {
        let url = url::Url::parse(uri).context(format!("apps.{}.redirect_uri", app.name))?;
        builder = builder.consent_redirect(url);
    }
    builder.build().context(format!("apps.{}", app.name))
}

/// The scopes `app`'s provider for `scope` asks for: `scope` itself for app-only tokens, the
/// [`delegated_scopes`] otherwise.
pub fn requested_scopes(app: &AppConfig, scope: &str) -> Vec<String> {
    match app.flow {
        Flow::ClientCredentials => vec![scope.to_owned()],
        Flow::DeviceCode | Flow::Browser => delegated_scopes(scope),
    }
}

/// The delegated scopes a person consents to for a resource (`{resource}/.default` in, or an
/// SMTP `…/SMTP.Send`), in the resource's own cloud. The global cloud's Graph permissions stay
/// bare (`Mail.ReadWrite`: bare means global Graph, and cached sign-ins keep their key); other
/// clouds' carry their Graph root.
pub fn delegated_scopes(resource_default_scope: &str) -> Vec<String> {
    if resource_default_scope.ends_with("/SMTP.Send") {
        return vec![resource_default_scope.to_owned(), "offline_access".into()];
    }
    let graph = Cloud::ALL
        .into_iter()
        .map(Cloud::graph)
        .find(|g| g.app_scope() == resource_default_scope);
    if let Some(graph) = graph {
        let permission = |p: &str| match graph.cloud() {
            Cloud::Global => p.to_owned(),
            _ => graph.delegated_scope(p),
        };
        vec![
            permission("Mail.ReadWrite"),
            permission("Mail.Send"),
            "offline_access".into(),
        ]
    } else {
        let resource = resource_default_scope.replace("/.default", "");
        vec![
            format!("{resource}/EWS.AccessAsUser.All"),
            "offline_access".into(),
        ]
    }
}

/// Where delegated tokens are cached by default.
pub fn default_cache() -> std::path::PathBuf {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    home.join(".m365mail").join("tokens.json")
}

fn app<'a>(config: &'a Config, name: &str) -> Result<&'a AppConfig> {
    config
        .apps
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| format!("no app called {name:?}"))
}

/// What connections share within one process: token providers per (app, resource), so every
/// connection of an app uses one token, and Graph delta state stores per file (a file store
/// must be opened once per process: each instance writes the whole file).
#[derive(Default)]
pub struct Providers {
    tokens: HashMap<(String, String), TokenProvider>,
    delta_stores: HashMap<PathBuf, Arc<dyn graph_mail::delta::DeltaStore>>,
}

impl Providers {
    fn get(&mut self, config: &Config, app_name: &str, scope: &str) -> Result<TokenProvider> {
        let key = (app_name.to_owned(), scope.to_owned());
        if let Some(p) = self.tokens.get(&key) {
            return Ok(p.clone());
        }
        let p = provider(app(config, app_name)?, scope)?;
        self.tokens.insert(key, p.clone());
        Ok(p)
    }

    /// The delta state store kept in `path`, opened on first use (its folder is created).
    fn delta_store(
        &mut self,
        source: &str,
        path: &Path,
    ) -> Result<Arc<dyn graph_mail::delta::DeltaStore>> {
        if let Some(s) = self.delta_stores.get(path) {
            return Ok(s.clone());
        }
        let key = format!("sources.{source}.delta_state {}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).context(&key)?;
        }
        let store: Arc<dyn graph_mail::delta::DeltaStore> =
            Arc::new(graph_mail::delta::FileDeltaStore::open(path).context(&key)?);
        self.delta_stores.insert(path.to_path_buf(), store.clone());
        Ok(store)
    }
}

/// The Graph endpoint of a connection: its `url`, or the v1.0 root of the app's cloud.
fn graph_endpoint(
    app: &AppConfig,
    url: Option<&str>,
    mailbox: &str,
) -> Result<graph_mail::Endpoint> {
    let mb = graph_mail::Mailbox::user(mailbox);
    match url {
        Some(u) => graph_mail::Endpoint::custom(u, mb).map_err(|e| e.to_string()),
        None => Ok(graph_mail::Endpoint::cloud(app.cloud, mb)),
    }
}

/// The EWS URL of a connection: its `url`, or Exchange Online's in the app's cloud.
fn ews_url(app: &AppConfig, url: Option<&str>) -> Result<Url> {
    match url {
        Some(u) => Url::parse(u).context("EWS url"),
        None => Ok(ews_mail::exchange_online(app.cloud)),
    }
}

/// The SMTP server of an outbound: its `host` and `port`, or the app's cloud's on 587.
fn smtp_config(app: &AppConfig, o: &OutboundConfig) -> smtp_mail::SmtpConfig {
    let defaults = smtp_mail::SmtpConfig::exchange_online(app.cloud, o.mailbox.clone());
    defaults.clone().with_server(
        o.host.clone().unwrap_or(defaults.host),
        o.port.unwrap_or(defaults.port),
    )
}

/// Where one source or outbound goes and what its token is for, resolved from the
/// configuration without any network: what `source` and `outbound` build, for checking a
/// configuration (and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPlan {
    /// The token endpoint of the app (its cloud's login host, or `authority_base`).
    pub token_endpoint: Url,
    /// The scope the token provider is keyed by (`{resource}/.default`, or SMTP's delegated
    /// `…/SMTP.Send`).
    pub scope: String,
    /// The scopes the token provider asks for.
    pub requested_scopes: Vec<String>,
    /// Where requests go: the Graph base URL, the EWS URL, or SMTP's `host:port`.
    pub endpoint: String,
}

/// The plan of a source.
pub fn plan_source(config: &Config, s: &SourceConfig) -> Result<ConnectionPlan> {
    plan(config, &s.app, s.kind, &source_target(s), None)
}

/// The plan of an outbound.
pub fn plan_outbound(config: &Config, o: &OutboundConfig) -> Result<ConnectionPlan> {
    plan(config, &o.app, o.kind, &outbound_target(o), Some(o))
}

fn plan(
    config: &Config,
    app_name: &str,
    kind: Kind,
    t: &Target<'_>,
    outbound: Option<&OutboundConfig>,
) -> Result<ConnectionPlan> {
    let a = app(config, app_name)?;
    let (scope, endpoint) = match (kind, outbound) {
        (Kind::Graph, _) => (
            graph_scope(a).to_owned(),
            graph_endpoint(a, t.url, t.mailbox)?.base().to_string(),
        ),
        (Kind::Ews, _) => (ews_scope(a).to_owned(), ews_url(a, t.url)?.to_string()),
        (Kind::Smtp, Some(o)) => {
            let smtp = smtp_config(a, o);
            (smtp_scope(a), format!("{}:{}", smtp.host, smtp.port))
        }
        (Kind::Smtp, None) => return Err("kind \"smtp\" only sends".into()),
    };
    Ok(ConnectionPlan {
        token_endpoint: authority(a)?.token_endpoint().clone(),
        requested_scopes: requested_scopes(a, &scope),
        scope,
        endpoint,
    })
}

/// Where a Graph or EWS connection goes: its URL, mailbox and extra CA (`ca_key` names the
/// `ca_file` key in messages).
struct Target<'a> {
    url: Option<&'a str>,
    mailbox: &'a str,
    ca_file: Option<&'a Path>,
    ca_key: String,
}

fn graph_client(
    providers: &mut Providers,
    config: &Config,
    app_name: &str,
    t: &Target<'_>,
) -> Result<graph_mail::GraphClient> {
    let a = app(config, app_name)?;
    let provider = providers.get(config, app_name, graph_scope(a))?;
    let mut builder =
        graph_mail::GraphClient::builder(graph_endpoint(a, t.url, t.mailbox)?, Arc::new(provider));
    if let Some(path) = t.ca_file {
        let pem = read_ca_file(&t.ca_key, path)?;
        builder = builder
            .http_client(https_client(&pem, "graph-mail", GRAPH_TIMEOUT).context(&t.ca_key)?);
    }
    builder.build().map_err(|e| e.to_string())
}

fn ews_client(
    providers: &mut Providers,
    config: &Config,
    app_name: &str,
    t: &Target<'_>,
) -> Result<ews_mail::EwsClient> {
    let (url, mailbox) = (t.url, t.mailbox);
    let a = app(config, app_name)?;
    let provider = providers.get(config, app_name, ews_scope(a))?;
    let endpoint = ews_url(a, url)?;
    let access = match a.flow {
        Flow::ClientCredentials => ews_mail::MailboxAccess::Impersonate(mailbox.to_owned()),
        _ => ews_mail::MailboxAccess::Shared(mailbox.to_owned()),
    };
    let cfg = ews_mail::EwsConfig::new(
        endpoint,
        ews_mail::Credentials::Bearer(Arc::new(provider)),
        access,
    );
    match t.ca_file {
        Some(path) => {
            let pem = read_ca_file(&t.ca_key, path)?;
            let http = https_client(&pem, "ews-mail", cfg.timeout).context(&t.ca_key)?;
            ews_mail::EwsClient::try_with_http(cfg, http).map_err(|e| e.to_string())
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

/// Builds a source.
pub fn source(
    providers: &mut Providers,
    config: &Config,
    s: &SourceConfig,
) -> Result<Arc<dyn MessageSource>> {
    match s.kind {
        Kind::Graph => {
            let client = graph_client(providers, config, &s.app, &source_target(s))?;
            // A fetch as large as the handler's batch: fewer list requests per message.
            let mut sc = graph_mail::SourceConfig::default().max_batch(config.handler.batch_size);
            if let Some(f) = &s.folder {
                sc = sc.folder(f.clone());
            }
            let source = graph_mail::GraphSource::new(client, sc);
            Ok(match s.mode {
                SourceMode::Unread => Arc::new(source),
                SourceMode::Delta => {
                    let store = providers.delta_store(&s.name, &config.delta_state_path(s))?;
                    Arc::new(source.with_delta(store))
                }
            })
        }
        Kind::Smtp => Err(format!(
            "sources.{}: kind \"smtp\" only sends; use it in [[outbounds]]",
            s.name
        )),
        Kind::Ews => {
            let client = ews_client(providers, config, &s.app, &source_target(s))?;
            // A fetch as large as the handler's batch: fewer FindItems per message.
            let mut src =
                ews_mail::EwsSource::new(client).with_max_batch(config.handler.batch_size);
            if let Some(f) = &s.folder {
                src = src.with_folder(f.clone());
            }
            Ok(Arc::new(src))
        }
    }
}

/// Builds an outbound.
pub fn outbound(
    providers: &mut Providers,
    config: &Config,
    o: &OutboundConfig,
) -> Result<Arc<dyn MessageOutbound>> {
    match o.kind {
        Kind::Graph => {
            let client = graph_client(providers, config, &o.app, &outbound_target(o))?;
            Ok(Arc::new(graph_mail::GraphOutbound::new(client)))
        }
        Kind::Ews => {
            let client = ews_client(providers, config, &o.app, &outbound_target(o))?;
            Ok(Arc::new(ews_mail::EwsOutbound::new(client)))
        }
        Kind::Smtp => {
            // App-only: SMTP.SendAsApp via the Exchange resource's .default; delegated: SMTP.Send.
            let a = app(config, &o.app)?;
            let provider = providers.get(config, &o.app, &smtp_scope(a))?;
            let mut smtp = smtp_config(a, o);
            if let Some(path) = &o.ca_file {
                smtp = smtp.with_root_certificate_pem(read_ca_file(
                    &format!("outbounds.{}.ca_file", o.name),
                    path,
                )?);
            }
            Ok(Arc::new(
                smtp_mail::SmtpOutbound::new(smtp, Arc::new(provider))
                    .context(format!("outbounds.{}", o.name))?,
            ))
        }
    }
}

fn source_target(s: &SourceConfig) -> Target<'_> {
    Target {
        url: s.url.as_deref(),
        mailbox: &s.mailbox,
        ca_file: s.ca_file.as_deref(),
        ca_key: format!("sources.{}.ca_file", s.name),
    }
}

fn outbound_target(o: &OutboundConfig) -> Target<'_> {
    Target {
        url: o.url.as_deref(),
        mailbox: &o.mailbox,
        ca_file: o.ca_file.as_deref(),
        ca_key: format!("outbounds.{}.ca_file", o.name),
    }
}

/// The PEM text of a `ca_file` (`key` names it, e.g. `outbounds.smtp.ca_file`), refused early
/// when it cannot be read or holds no certificate, rather than at the first TLS handshake.
pub fn read_ca_file(key: &str, path: &std::path::Path) -> Result<String> {
    let key = format!("{key} {}", path.display());
    let pem = std::fs::read_to_string(path).context(&key)?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "{key}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        ));
    }
    Ok(pem)
}

/// What the sender policy may assume about an outbound.
pub fn outbound_caps(o: &OutboundConfig) -> Result<addressing::OutboundCapabilities> {
    let mut caps =
        addressing::OutboundCapabilities::new().send_from_alias_enabled(o.send_from_alias_enabled);
    for a in &o.send_as {
        let addr = addressing::EmailAddress::parse(a)
            .map_err(|e| format!("outbounds.{}.send_as {a:?}: {e}", o.name))?;
        caps = caps.send_as(addr);
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A daemon and a delegated app in `cloud` (a name as a person writes it), each with a Graph
    /// and an EWS source and an SMTP outbound, every endpoint left to its default.
    fn config(cloud: &str) -> Config {
        let mut text = String::new();
        for (app, flow) in [("daemon", "client-credentials"), ("person", "device-code")] {
            text += &format!(
                "[[apps]]\nname = \"{app}\"\ntenant = \"contoso.example\"\nclient_id = \"c\"\n\
                 client_secret_env = \"SECRET\"\nflow = \"{flow}\"\ncloud = \"{cloud}\"\n\n"
            );
        }
        for app in ["daemon", "person"] {
            for kind in ["graph", "ews"] {
                text += &format!(
                    "[[sources]]\nname = \"{app}-{kind}\"\nkind = \"{kind}\"\napp = \"{app}\"\n\
                     mailbox = \"helpdesk@contoso.example\"\n\
                     [sources.routing.mailbox]\nprimary = \"helpdesk@contoso.example\"\n\
                     [[sources.routing.rules]]\nmatch = \"default\"\nproject = \"P\"\n\n"
                );
            }
            text += &format!(
                "[[outbounds]]\nname = \"{app}-smtp\"\nkind = \"smtp\"\napp = \"{app}\"\n\
                 mailbox = \"helpdesk@contoso.example\"\n\n"
            );
        }
        Config::parse(&text, Path::new("clouds.toml")).unwrap()
    }

    fn source<'a>(c: &'a Config, name: &str) -> &'a SourceConfig {
        c.sources.iter().find(|s| s.name == name).unwrap()
    }

    fn outbound<'a>(c: &'a Config, name: &str) -> &'a OutboundConfig {
        c.outbounds.iter().find(|o| o.name == name).unwrap()
    }

    /// The host a scope's resource names (`https://graph.microsoft.us/.default` → the host).
    fn audience(scope: &str) -> String {
        Url::parse(scope).unwrap().host_str().unwrap().to_owned()
    }

    /// The last two labels of a host name: the domain a service is run under.
    fn domain(host: &str) -> String {
        let labels: Vec<&str> = host.rsplitn(3, '.').take(2).collect();
        format!("{}.{}", labels[1], labels[0])
    }

    /// Per cloud name as written in the file: (login host, Graph base, Graph scope, EWS URL,
    /// EWS scope, SMTP host, delegated SMTP scope). Written out here rather than read from
    /// msauth's table, so a wrong entry there fails.
    const CLOUDS: [(&str, [&str; 7]); 4] = [
        (
            "global",
            [
                "login.microsoftonline.com",
                "https://graph.microsoft.com/v1.0/",
                "https://graph.microsoft.com/.default",
                "https://outlook.office365.com/EWS/Exchange.asmx",
                "https://outlook.office365.com/.default",
                "smtp.office365.com:587",
                "https://outlook.office.com/SMTP.Send",
            ],
        ),
        (
            "us-government",
            [
                "login.microsoftonline.us",
                "https://graph.microsoft.us/v1.0/",
                "https://graph.microsoft.us/.default",
                "https://outlook.office365.us/EWS/Exchange.asmx",
                "https://outlook.office365.us/.default",
                "smtp.office365.us:587",
                "https://outlook.office365.us/SMTP.Send",
            ],
        ),
        (
            "dod",
            [
                "login.microsoftonline.us",
                "https://dod-graph.microsoft.us/v1.0/",
                "https://dod-graph.microsoft.us/.default",
                "https://outlook-dod.office365.us/EWS/Exchange.asmx",
                "https://outlook-dod.office365.us/.default",
                "outlook-dod.office365.us:587",
                "https://outlook-dod.office365.us/SMTP.Send",
            ],
        ),
        (
            "china",
            [
                "login.partner.microsoftonline.cn",
                "https://microsoftgraph.chinacloudapi.cn/v1.0/",
                "https://microsoftgraph.chinacloudapi.cn/.default",
                "https://partner.outlook.cn/EWS/Exchange.asmx",
                "https://partner.outlook.cn/.default",
                "smtp.partner.outlook.cn:587",
                "https://partner.outlook.cn/SMTP.Send",
            ],
        ),
    ];

    /// Issue #16: the regression. `cloud = "us-government"` used to sign in at the US login
    /// host and then ask for a *global* Graph token and call global Graph.
    #[test]
    fn a_us_government_app_reads_graph_in_its_own_cloud() {
        let c = config("us-government");
        let plan = plan_source(&c, source(&c, "daemon-graph")).unwrap();
        assert_eq!(plan.endpoint, "https://graph.microsoft.us/v1.0/");
        assert_eq!(plan.scope, "https://graph.microsoft.us/.default");
        assert_eq!(
            plan.requested_scopes,
            ["https://graph.microsoft.us/.default"]
        );
        assert_eq!(
            plan.token_endpoint.as_str(),
            "https://login.microsoftonline.us/contoso.example/oauth2/v2.0/token"
        );
    }

    /// Per cloud: each connection's token is asked at the cloud's login host, for a resource of
    /// the cloud, and sent to that resource's endpoint in the same cloud.
    #[test]
    fn each_cloud_signs_in_asks_and_sends_in_the_same_cloud() {
        for (
            name,
            [
                login,
                graph,
                graph_scope,
                ews,
                ews_scope,
                smtp,
                smtp_delegated,
            ],
        ) in CLOUDS
        {
            let c = config(name);
            let plans = [
                plan_source(&c, source(&c, "daemon-graph")).unwrap(),
                plan_source(&c, source(&c, "daemon-ews")).unwrap(),
                plan_outbound(&c, outbound(&c, "daemon-smtp")).unwrap(),
            ];
            for p in &plans {
                assert_eq!(p.token_endpoint.host_str(), Some(login), "{name}: {p:?}");
                assert_eq!(p.requested_scopes, std::slice::from_ref(&p.scope), "{name}");
            }
            let [g, e, s] = plans;
            assert_eq!(
                (g.endpoint.as_str(), g.scope.as_str()),
                (graph, graph_scope)
            );
            assert_eq!((e.endpoint.as_str(), e.scope.as_str()), (ews, ews_scope));
            // SMTP.SendAsApp: Exchange Online's .default, the same token as EWS.
            assert_eq!((s.endpoint.as_str(), s.scope.as_str()), (smtp, ews_scope));

            // The audience and the endpoint belong together: Graph and EWS tokens go to the
            // very host they name, SMTP's to a host of the same Exchange Online domain.
            let host = |u: &str| Url::parse(u).unwrap().host_str().unwrap().to_owned();
            assert_eq!(audience(&g.scope), host(&g.endpoint), "{name}");
            assert_eq!(audience(&e.scope), host(&e.endpoint), "{name}");
            let smtp_host = s.endpoint.split(':').next().unwrap();
            assert_eq!(domain(&audience(&s.scope)), domain(smtp_host), "{name}");
            // ... and to the cloud the app signs in to (msauth's table agrees).
            let cloud = c.apps[0].cloud;
            assert_eq!(cloud.login_host(), login);
            for scope in [&g.scope, &e.scope, &s.scope] {
                let owner: Vec<_> = msauth::Cloud::ALL
                    .into_iter()
                    .filter(|o| [o.graph(), o.ews()].iter().any(|r| r.app_scope() == *scope))
                    .collect();
                assert_eq!(owner, [cloud], "{name}: {scope}");
            }

            // Delegated: the same endpoints, permissions of the same resources.
            let g = plan_source(&c, source(&c, "person-graph")).unwrap();
            let e = plan_source(&c, source(&c, "person-ews")).unwrap();
            let s = plan_outbound(&c, outbound(&c, "person-smtp")).unwrap();
            assert_eq!((g.endpoint.as_str(), e.endpoint.as_str()), (graph, ews));
            assert_eq!(s.endpoint, smtp);
            assert_eq!(s.requested_scopes, [smtp_delegated, "offline_access"]);
            let ews_resource = ews_scope.trim_end_matches("/.default");
            assert_eq!(
                e.requested_scopes,
                [
                    format!("{ews_resource}/EWS.AccessAsUser.All"),
                    "offline_access".into()
                ]
            );
            let graph_resource = graph_scope.trim_end_matches("/.default");
            let prefix = if name == "global" {
                String::new() // bare permissions are global Graph's
            } else {
                format!("{graph_resource}/")
            };
            assert_eq!(
                g.requested_scopes,
                [
                    format!("{prefix}Mail.ReadWrite"),
                    format!("{prefix}Mail.Send"),
                    "offline_access".into()
                ]
            );
        }
    }

    /// A custom `url`, `host` or `authority_base` (the sandbox) still wins over the cloud; the
    /// token is still for the cloud's resource.
    #[test]
    fn custom_endpoints_override_the_cloud() {
        let mut c = config("china");
        c.apps[0].authority_base = Some("http://127.0.0.1:9/".into());
        let graph = c
            .sources
            .iter_mut()
            .find(|s| s.name == "daemon-graph")
            .unwrap();
        graph.url = Some("http://127.0.0.1:9/v1.0".into());
        let ews = c
            .sources
            .iter_mut()
            .find(|s| s.name == "daemon-ews")
            .unwrap();
        ews.url = Some("http://127.0.0.1:9/EWS/Exchange.asmx".into());
        let smtp = c
            .outbounds
            .iter_mut()
            .find(|o| o.name == "daemon-smtp")
            .unwrap();
        (smtp.host, smtp.port) = (Some("127.0.0.1".into()), Some(2525));

        let g = plan_source(&c, source(&c, "daemon-graph")).unwrap();
        assert_eq!(
            g.token_endpoint.as_str(),
            "http://127.0.0.1:9/contoso.example/oauth2/v2.0/token"
        );
        assert_eq!(g.endpoint, "http://127.0.0.1:9/v1.0/");
        assert_eq!(g.scope, "https://microsoftgraph.chinacloudapi.cn/.default");
        let e = plan_source(&c, source(&c, "daemon-ews")).unwrap();
        assert_eq!(e.endpoint, "http://127.0.0.1:9/EWS/Exchange.asmx");
        assert_eq!(e.scope, "https://partner.outlook.cn/.default");
        let s = plan_outbound(&c, outbound(&c, "daemon-smtp")).unwrap();
        assert_eq!(s.endpoint, "127.0.0.1:2525");
    }
}
