//! From configuration to live connections: token providers, sources, outbounds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow_lite::{Context, Result};
use connector::{MessageOutbound, MessageSource};
use msauth::{Authority, ClientCredential, ClientSecret, Cloud, Tenant, TokenProvider};

use crate::config::{
    AppConfig, AssertionAlgorithmName, Config, Flow, Kind, OutboundConfig, SourceConfig, SourceMode,
};

/// Graph's resource for app-only tokens.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Exchange Online's resource for EWS app-only tokens.
pub const EWS_DEFAULT_SCOPE: &str = "https://outlook.office365.com/.default";

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

/// The authority of an app: a cloud's login host, or a custom one (an emulator).
pub fn authority(app: &AppConfig) -> Result<Authority> {
    let tenant = Tenant::parse(&app.tenant).context(format!("apps.{}.tenant", app.name))?;
    match &app.authority_base {
        Some(base) => Authority::microsoft_layout(base, tenant)
            .context(format!("apps.{}.authority_base", app.name)),
        None => {
            let cloud = match app.cloud.as_deref().unwrap_or("global") {
                "global" => Cloud::Global,
                "us-government" | "usgov" => Cloud::UsGovernment,
                "china" => Cloud::China,
                other => {
                    return Err(format!(
                        "apps.{}.cloud: {other:?} is not one of \"global\", \"us-government\", \"china\"",
                        app.name
                    ));
                }
            };
            Authority::microsoft(cloud, tenant).context(format!("apps.{}", app.name))
        }
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
            builder = builder.credential(credential).scopes([scope.to_owned()]);
        }
        Flow::DeviceCode | Flow::Browser => {
            builder = builder.scopes(delegated_scopes(scope));
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

/// The delegated scopes a person consents to for a resource (`{resource}/.default` in).
pub fn delegated_scopes(resource_default_scope: &str) -> Vec<String> {
    if resource_default_scope == smtp_mail::DELEGATED_SCOPE {
        return vec![resource_default_scope.to_owned(), "offline_access".into()];
    }
    if resource_default_scope == GRAPH_DEFAULT_SCOPE {
        vec![
            "Mail.ReadWrite".into(),
            "Mail.Send".into(),
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

fn graph_endpoint(url: Option<&str>, mailbox: &str) -> Result<graph_mail::Endpoint> {
    let mb = graph_mail::Mailbox::user(mailbox);
    match url {
        Some(u) => graph_mail::Endpoint::custom(u, mb).map_err(|e| e.to_string()),
        None => Ok(graph_mail::Endpoint::cloud(graph_mail::Cloud::Global, mb)),
    }
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
    let provider = providers.get(config, app_name, GRAPH_DEFAULT_SCOPE)?;
    let mut builder =
        graph_mail::GraphClient::builder(graph_endpoint(t.url, t.mailbox)?, Arc::new(provider));
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
    let provider = providers.get(config, app_name, EWS_DEFAULT_SCOPE)?;
    let endpoint = url::Url::parse(url.unwrap_or(ews_mail::EXCHANGE_ONLINE)).context("EWS url")?;
    let access = match a.flow {
        Flow::ClientCredentials => ews_mail::MailboxAccess::Impersonate(mailbox.to_owned()),
        _ => ews_mail::MailboxAccess::Shared(mailbox.to_owned()),
    };
    let cfg = ews_mail::EwsConfig::new(
        endpoint,
        ews_mail::Credentials::Bearer(Arc::new(ews_mail::MsauthTokens(provider))),
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

/// An HTTPS client like the crates' own (no redirects followed, the same timeout) that also
/// trusts the CA certificates in `pem`. Hand-written here rather than in each crate because
/// only the binary reads CA files; the crates take a ready `reqwest::Client`.
fn https_client(pem: &str, agent: &str, timeout: Duration) -> Result<reqwest::Client> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(format!("{agent} (m365mail/{})", env!("CARGO_PKG_VERSION")));
    for c in certs {
        builder = builder.add_root_certificate(c);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
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
            let scope = match app(config, &o.app)?.flow {
                Flow::ClientCredentials => smtp_mail::APP_SCOPE,
                _ => smtp_mail::DELEGATED_SCOPE,
            };
            let provider = providers.get(config, &o.app, scope)?;
            let defaults = smtp_mail::SmtpConfig::office365(o.mailbox.clone());
            let mut smtp = defaults.clone().with_server(
                o.host.clone().unwrap_or(defaults.host),
                o.port.unwrap_or(defaults.port),
            );
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
