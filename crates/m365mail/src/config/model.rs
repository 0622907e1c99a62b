//! The resolved configuration: every value parsed, every reference followed, every default
//! filled in. Built once by [`Config::parse`](super::Config::parse); the commands read only
//! this.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::file::Flow;

/// An app registration, resolved: its cloud, its authority and where its credential is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct App {
    /// The name sources and outbounds refer to (`apps.name`).
    pub name: String,
    /// The Microsoft cloud (`apps.cloud`): the sign-in host, the endpoints and the audience of
    /// every token of this app.
    pub cloud: msauth::Cloud,
    /// Where the app signs in: the cloud's login host for its tenant, or `authority_base`.
    pub authority: msauth::Authority,
    /// The application (client) id.
    pub client_id: String,
    /// Where the credential comes from (read when a connection is built, not when the file is
    /// loaded, so that `route` needs no secret).
    pub credential: Credential,
    /// The sign-in flow.
    pub flow: Flow,
    /// Where delegated tokens are cached (`None`: `~/.m365mail/tokens.json`).
    pub token_cache: Option<PathBuf>,
    /// The account a delegated flow signs in as (`apps.account`, lower-case): the token
    /// cache's key carries it. `None`: the app's one sign-in; always `None` for app-only.
    pub account: Option<String>,
    /// The redirect URI registered for admin consent and browser sign-in.
    pub redirect_uri: Option<Url>,
    /// Extra CA certificates (PEM) for the authority.
    pub ca_file: Option<PathBuf>,
}

/// Where an app's credential comes from. Holds an inline secret only as msauth's redacting
/// [`ClientSecret`](msauth::ClientSecret); nothing here prints a secret.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// None: a public client (delegated flows without a secret).
    None,
    /// A client secret.
    Secret(SecretSource),
    /// A certificate (RFC 7523 client assertion).
    Certificate(CertificateSource),
}

/// Where a client secret is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SecretSource {
    /// In the file itself (`client_secret`; demos only).
    Inline(msauth::ClientSecret),
    /// In this environment variable (`client_secret_env`).
    Env(String),
    /// In this file (`client_secret_file`).
    File(PathBuf),
}

/// Where a certificate credential is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertificateSource {
    /// The PEM or PKCS#12 (`.pfx`/`.p12`) file (`certificate_file`).
    pub file: PathBuf,
    /// The PEM private key, when not in `file` (`certificate_key_file`).
    pub key_file: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 password (`certificate_password_env`).
    pub password_env: Option<String>,
    /// The client assertion's signature (`assertion_algorithm`, default PS256).
    pub algorithm: msauth::AssertionAlgorithm,
}

/// Where a connection's requests go, checked (https, or http only on loopback) when the file
/// was loaded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Service {
    /// Microsoft Graph: the base URL and the mailbox.
    Graph(graph_mail::Endpoint),
    /// Exchange Web Services: the URL.
    Ews(Url),
    /// SMTP client submission (outbounds only): host, port and mailbox.
    Smtp(smtp_mail::SmtpConfig),
}

impl Service {
    /// The kind of connection, as the file names it.
    pub fn kind(&self) -> super::Kind {
        match self {
            Service::Graph(_) => super::Kind::Graph,
            Service::Ews(_) => super::Kind::Ews,
            Service::Smtp(_) => super::Kind::Smtp,
        }
    }

    /// Where requests go, as text: the Graph base URL, the EWS URL, or SMTP's `host:port`.
    pub fn address(&self) -> String {
        match self {
            Service::Graph(e) => e.base().to_string(),
            Service::Ews(url) => url.to_string(),
            Service::Smtp(smtp) => format!("{}:{}", smtp.host, smtp.port),
        }
    }
}

/// A message source, resolved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Source {
    /// Its name.
    pub name: String,
    /// The app it signs in with.
    pub app: Arc<App>,
    /// The pickup mailbox.
    pub mailbox: String,
    /// Graph or EWS, and where (never SMTP: the file is refused).
    pub service: Service,
    /// The scope its token provider is keyed by: the Graph or Exchange `.default` of the app's
    /// cloud.
    pub scope: String,
    /// The folder to read (`None`: the inbox).
    pub folder: Option<String>,
    /// `requests_in_flight`. Graph: single requests in flight at once instead of `$batch`
    /// (`None`: `$batch`). EWS: a fetch of `batch_size` messages in that many FindItem pages,
    /// listed, downloaded and acknowledged that many requests at once, at most 27
    /// (`EwsSource::with_item_chunk`; `None`: one FindItem a fetch, 100 items per request).
    pub requests_in_flight: Option<usize>,
    /// Graph `delta` mode: the file its state is kept in (`delta_state`, or `graph-delta.json`
    /// next to the ledger). `None`: the unread messages are listed each poll.
    pub delta_state: Option<PathBuf>,
    /// Graph `push` mode (`delta_state` is then set too): the listener and the safety timer.
    pub push: Option<Push>,
    /// EWS `push` mode (streaming notifications): the safety timer.
    pub streaming: Option<Duration>,
    /// EWS `delta` and `push` modes: the file the SyncFolderItems state is kept in
    /// (`sync_state`, or `ews-sync.json` next to the ledger). `None`: the unread messages are
    /// listed each poll.
    pub sync_state: Option<PathBuf>,
    /// What is done to a handled message.
    pub acknowledge: connector::Acknowledgement,
    /// Where poison messages are parked (default `Poison`).
    pub poison_folder: String,
    /// The outbound that sends its notifications.
    pub notify_through: Option<Arc<Outbound>>,
    /// Extra CA certificates (PEM) for its endpoint.
    pub ca_file: Option<PathBuf>,
    /// The mailbox's addresses and the project rules, built.
    pub router: addressing::Router,
}

/// `[sources.push]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Push {
    /// Where Graph sends notifications (https, or http to loopback).
    pub public_url: Url,
    /// Where the listener binds.
    pub listen: std::net::SocketAddr,
    /// The pause between delta rounds when no notification comes.
    pub safety_interval: Duration,
    /// Where the subscription is recorded.
    pub subscriptions: PathBuf,
}

/// A message outbound, resolved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outbound {
    /// Its name.
    pub name: String,
    /// The app it signs in with.
    pub app: Arc<App>,
    /// The mailbox it sends as.
    pub mailbox: String,
    /// Graph, EWS or SMTP, and where.
    pub service: Service,
    /// The scope its token provider is keyed by (Exchange's `.default` for app-only SMTP,
    /// `…/SMTP.Send` for delegated).
    pub scope: String,
    /// What the sender policy may assume: `send_from_alias_enabled` and `send_as`.
    pub capabilities: addressing::OutboundCapabilities,
    /// Extra CA certificates (PEM): the HTTPS endpoint's, or SMTP's STARTTLS certificate's.
    pub ca_file: Option<PathBuf>,
}

/// `[handler]`, resolved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Handler {
    /// Where each message and its routing record are written, one folder per project.
    pub output_dir: PathBuf,
    /// Where each message is also POSTed: https, or http to loopback only.
    pub webhook: Option<Url>,
    /// The ledger file (`handler.ledger`, or `ledger.jsonl` in `output_dir`).
    pub ledger: PathBuf,
    /// Handler failures before a message is parked.
    pub max_attempts: u32,
    /// The pause between polls.
    pub poll_interval: Duration,
    /// Messages per fetch (also the sources' list page size).
    pub batch_size: usize,
    /// Messages of one source handled at once (`handler.concurrency`, 1 to 64).
    pub concurrency: usize,
    /// How long in all `run --once` waits for throttled sources (`handler.throttle_wait_secs`).
    pub throttle_wait: Duration,
    /// The largest message handed to the parser, in bytes.
    pub max_message_bytes: usize,
    /// The subject token's prefix (`handler.subject_token`).
    pub subject_token: Option<String>,
}

impl Handler {
    /// The pipeline's options.
    pub fn options(&self) -> handler::Options {
        let options = handler::Options::default()
            .batch_size(self.batch_size)
            .concurrency(self.concurrency)
            .max_attempts(self.max_attempts)
            .poll_interval(self.poll_interval)
            .max_mime(self.max_message_bytes)
            .throttle_wait(self.throttle_wait);
        match &self.subject_token {
            Some(prefix) => options.subject_token(prefix.clone()),
            None => options,
        }
    }
}

/// Where one source or outbound goes and what its token is for: read off the resolved
/// configuration without any network (for checking a configuration, and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl ConnectionPlan {
    fn new(app: &App, scope: &str, service: &Service) -> ConnectionPlan {
        ConnectionPlan {
            token_endpoint: app.authority.token_endpoint().clone(),
            scope: scope.to_owned(),
            requested_scopes: super::scopes::requested(app.flow, scope),
            endpoint: service.address(),
        }
    }
}

impl Source {
    /// Where this source goes and what its token is for.
    pub fn plan(&self) -> ConnectionPlan {
        ConnectionPlan::new(&self.app, &self.scope, &self.service)
    }
}

impl Outbound {
    /// Where this outbound goes and what its token is for.
    pub fn plan(&self) -> ConnectionPlan {
        ConnectionPlan::new(&self.app, &self.scope, &self.service)
    }
}
