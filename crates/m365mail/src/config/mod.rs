//! The configuration file: app registrations, sources, outbounds, routing and the handler.
//!
//! ```toml
//! [[apps]]
//! name = "helpdesk"
//! tenant = "contoso.onmicrosoft.com"      # tenant id or verified domain
//! client_id = "00000000-0000-0000-0000-000000000001"
//! client_secret_env = "HELPDESK_SECRET"   # or client_secret_file; never inline in production
//! # or a certificate: certificate_file = "app.pfx" + certificate_password_env = "PFX_PASSWORD",
//! # or certificate_file = "app.pem" (+ certificate_key_file = "key.pem"); assertion_algorithm = "ps256"
//! flow = "client-credentials"             # or "device-code", "browser"
//! cloud = "global"                        # or "us-gov-l4" (GCC High), "us-gov-l5" (DoD), "china"
//! # authority_base = "http://127.0.0.1:8080"  # Microsoft's URL layout elsewhere (the sandbox), or
//! # [apps.endpoints]                      # any identity provider, endpoint by endpoint:
//! # authorize = "https://id.example/authorize"
//! # token = "https://id.example/token"
//! # device = "https://id.example/device"  # optional, for flow = "device-code"
//! # admin_consent = "..."                 # optional, for `m365mail consent-url`
//!
//! [[sources]]
//! name = "helpdesk"
//! kind = "graph"                          # or "ews"
//! app = "helpdesk"
//! mailbox = "helpdesk@contoso.com"
//! acknowledge = "mark-read"               # or "delete", "move:Processed", "keep" (delta only)
//! notify_through = "helpdesk-out"
//! mode = "unread"                         # Graph: or "delta", "push"; EWS: "push" (SourceConfig::mode)
//! requests_in_flight = 4                  # Graph: single requests, 4 at once, instead of $batch;
//!                                         # EWS: smaller requests, that many at once (at most 27;
//!                                         # with batch_size about 25 × this; a large backlog
//!                                         # drains fastest with batch_size up to 10000 and
//!                                         # [handler] concurrency = 16: BENCHMARKS.md)
//!
//! # With mode = "push" (see PushConfig):
//! # [sources.push]
//! # public_url = "https://mail.contoso.com/graph-notifications"   # Graph only
//! # safety_interval_secs = 900
//!
//! [sources.routing.mailbox]
//! primary = "helpdesk@contoso.com"
//! aliases = ["billing@contoso.com"]
//!
//! [[sources.routing.rules]]
//! match = "alias"
//! alias = "billing@contoso.com"
//! project = "BILL"
//!
//! [[outbounds]]
//! name = "helpdesk-out"
//! kind = "graph"                          # or "ews", or "smtp" (outbounds only; see below)
//! app = "helpdesk"
//! mailbox = "helpdesk@contoso.com"
//! send_from_alias_enabled = false
//!
//! [[outbounds]]
//! name = "helpdesk-smtp"
//! kind = "smtp"                           # SMTP AUTH XOAUTH2 with STARTTLS
//! app = "helpdesk"
//! mailbox = "helpdesk@contoso.com"
//! host = "smtp.office365.com"             # the app's cloud's host is the default; port 587
//! # ca_file = "internal-ca.pem"           # extra CA(s) to trust (on-premises, the sandbox);
//! #                                         # apps, sources and Graph/EWS outbounds take it too
//!
//! [handler]
//! output_dir = "m365mail-out"
//! batch_size = 50
//! # concurrency = 4                       # messages of one source handled at once (1 to 64)
//! # throttle_wait_secs = 0                # run --once: wait this long in all for throttled sources
//! max_message_mib = 150                   # bigger messages are parked unparsed
//! # subject_token = "HELP"                # a ticket system's [HELP-123] in subjects
//! ```
//!
//! The file is read once, into a [`File`] (serde's shape of it), and resolved at once into a
//! [`Config`]: apps with their cloud, authority and credential source, sources with their
//! acknowledgement, router and checked endpoint, outbounds with their capabilities, the
//! handler's paths and webhook, and the notification policy. Every command receives that
//! [`Config`]; nothing is parsed or built from the text again. A value that is refused names its
//! key and its line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod file;
mod model;
mod notifications;
mod resolve;
pub mod scopes;
#[cfg(test)]
mod tests;

pub use file::{
    AppConfig, AssertionAlgorithmName, EndpointsConfig, File, Flow, HandlerConfig, Kind,
    OutboundConfig, PushConfig, SourceConfig, SourceMode,
};
pub use model::{
    App, CertificateSource, ConnectionPlan, Credential, Handler, Outbound, Push, SecretSource,
    Service, Source,
};
pub use notifications::{NotificationConfig, ReplyToName, UnauthenticatedName};

/// Why a configuration file was refused. The message names the key and the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key is wrong (the message names the line, column and key,
    /// but never quotes the file, which may hold an inline secret).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
    /// A value is refused, or the values do not fit together.
    #[error("{path}: {}{key}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, as a person finds it: `sources[0] (helpdesk).acknowledge`.
        key: String,
        /// The line of the value (or of its table, when the key is not written), 1-based.
        line: Option<usize>,
        /// What is wrong (never the value of a secret).
        message: String,
    },
}

impl ConfigError {
    /// The line the problem is on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => *line,
            ConfigError::Read { .. } | ConfigError::Parse { .. } => None,
        }
    }
}

/// The resolved configuration: what every command runs on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// App registrations, in file order (see [`Config::app`]).
    pub apps: Vec<Arc<App>>,
    /// Where mail comes from.
    pub sources: Vec<Source>,
    /// Where mail goes out.
    pub outbounds: Vec<Arc<Outbound>>,
    /// What to do with routed mail.
    pub handler: Handler,
    /// Who may get an acknowledgement, and what it says: one policy for every source, so that
    /// they share the per-recipient limit.
    pub notifications: handler::NotificationPolicy,
}

/// What the command line changes in a file before it is resolved (so that the paths that
/// follow from it, such as the ledger's, follow the change).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Overrides {
    /// `--out`: replaces `handler.output_dir`.
    pub output_dir: Option<PathBuf>,
}

impl Overrides {
    /// `--out`: `handler.output_dir` replaced by `dir` (`None`: as the file says).
    pub fn output_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.output_dir = dir;
        self
    }
}

impl Config {
    /// Reads and resolves a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// Reads a configuration file, applies `overrides` and resolves it.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse_with(&text, path, overrides)
    }

    /// Parses and resolves configuration text; `path` is used in messages.
    ///
    /// A parse error names the line, column and key, but never quotes the file: toml's own
    /// message shows the offending line, which may hold an inline `client_secret`. Values of
    /// secret keys are also cut out of the message itself (a type error may quote a value).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, &Overrides::default())
    }

    /// [`Config::parse`] with `overrides` applied before resolving.
    pub fn parse_with(
        text: &str,
        path: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        resolve::parse(text, path, overrides)
    }

    /// The app called `name`.
    pub fn app(&self, name: &str) -> Option<&Arc<App>> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The scopes an admin consents to for `app`: one `{resource}/.default` per resource the
    /// app is used with by a source or an outbound (Graph; Exchange Online for EWS and SMTP),
    /// in file order, in the app's cloud. A delegated SMTP outbound's `SMTP.Send` becomes
    /// Exchange Online's `.default` (protocol.md §4.2: SMTP consent is asked for with it; a
    /// `.default` and a named scope of one resource cannot be mixed). An app no source or
    /// outbound uses gets Graph's, the default connection type.
    pub fn consent_scopes(&self, app: &App) -> Vec<String> {
        let used = self
            .sources
            .iter()
            .filter(|s| s.app.name == app.name)
            .map(|s| s.scope.as_str())
            .chain(
                self.outbounds
                    .iter()
                    .filter(|o| o.app.name == app.name)
                    .map(|o| o.scope.as_str()),
            );
        let mut scopes: Vec<String> = Vec::new();
        for scope in used {
            let scope = if scope.ends_with("/.default") {
                scope
            } else {
                app.ews_scope()
            };
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.is_empty() {
            scopes.push(app.graph_scope().to_owned());
        }
        scopes
    }

    /// The source called `name`.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The outbound called `name`.
    pub fn outbound(&self, name: &str) -> Option<&Arc<Outbound>> {
        self.outbounds.iter().find(|o| o.name == name)
    }
}

/// Parses an `acknowledge` value.
pub fn parse_ack(value: Option<&str>) -> Result<connector::Acknowledgement, String> {
    match value.unwrap_or("mark-read") {
        "mark-read" | "read" => Ok(connector::Acknowledgement::MarkRead),
        "delete" => Ok(connector::Acknowledgement::Delete),
        "keep" => Ok(connector::Acknowledgement::Keep),
        other => match other.strip_prefix("move:") {
            Some(folder) if !folder.trim().is_empty() => {
                Ok(connector::Acknowledgement::MoveTo(folder.trim().to_owned()))
            }
            _ => Err(format!(
                "{other:?} is not one of \"mark-read\", \"delete\", \"move:FOLDER\", \"keep\""
            )),
        },
    }
}
