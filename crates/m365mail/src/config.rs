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
//!
//! [[sources]]
//! name = "helpdesk"
//! kind = "graph"                          # or "ews"
//! app = "helpdesk"
//! mailbox = "helpdesk@contoso.com"
//! acknowledge = "mark-read"               # or "delete", "move:Processed"
//! notify_through = "helpdesk-out"
//! mode = "unread"                         # Graph only: or "delta" (see SourceConfig::mode)
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
//! max_message_mib = 150                   # bigger messages are parked unparsed
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration file was refused. The message names the key and the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key is wrong (toml's message names the line and key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
    /// The values do not fit together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// App registrations.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// Where mail comes from.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Where mail goes out.
    #[serde(default)]
    pub outbounds: Vec<OutboundConfig>,
    /// What to do with routed mail.
    #[serde(default)]
    pub handler: HandlerConfig,
    /// The acknowledgement notification.
    #[serde(default)]
    pub notifications: NotificationConfig,
}

/// How an app signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// App-only: a daemon with a client secret.
    #[default]
    ClientCredentials,
    /// A user signs in on another device with a code.
    DeviceCode,
    /// A user signs in with a browser (authorization code with PKCE, loopback redirect).
    Browser,
}

/// The signature of a certificate's client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssertionAlgorithmName {
    /// RSASSA-PSS with SHA-256 and `x5t#S256` (Microsoft's current form).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and `x5t` (the legacy form).
    Rs256,
}

/// An app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// A name the sources refer to.
    pub name: String,
    /// Tenant id or verified domain (`organizations` for delegated multi-tenant apps).
    pub tenant: String,
    /// The Microsoft cloud the tenant lives in: `global` (default, also GCC), `us-gov-l4`
    /// (aliases `us-government`, `gcc-high`), `us-gov-l5` (alias `dod`) or `china`. It picks
    /// the sign-in host, the default Graph, EWS and SMTP endpoints of the app's connections and
    /// the audience of their tokens (msauth's `Cloud`). Read once, when the file is loaded; an
    /// unknown name is refused with its line and key.
    #[serde(default = "default_cloud", deserialize_with = "cloud_name")]
    pub cloud: msauth::Cloud,
    /// A custom login host (an emulator such as the sandbox): `http://127.0.0.1:8080`. It
    /// replaces the cloud's sign-in host; the tokens are still asked for the cloud's resources.
    #[serde(default)]
    pub authority_base: Option<String>,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret, inline. Only for demos: prefer `client_secret_env`. Redacted in
    /// `Debug`, and never shown in a configuration error.
    #[serde(default)]
    pub client_secret: Option<msauth::ClientSecret>,
    /// The environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A file holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// A certificate credential instead of a secret (RFC 7523 client assertion): a PEM file with
    /// the certificate (and the key, unless `certificate_key_file` is set), or a PKCS#12 file
    /// (`.pfx`/`.p12`, recognised by its extension) holding both.
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// The PEM private key (PKCS#8 or PKCS#1 RSA) for a PEM `certificate_file`.
    #[serde(default)]
    pub certificate_key_file: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 file's password (unset: an empty password).
    #[serde(default)]
    pub certificate_password_env: Option<String>,
    /// The client assertion's signature: `ps256` (default, `x5t#S256`) or `rs256` (`x5t`).
    #[serde(default)]
    pub assertion_algorithm: Option<AssertionAlgorithmName>,
    /// The sign-in flow.
    #[serde(default)]
    pub flow: Flow,
    /// Where delegated tokens are cached (JSON, mode 0600).
    #[serde(default)]
    pub token_cache: Option<PathBuf>,
    /// The redirect URI registered for admin consent and browser sign-in.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// A PEM file of one or more extra CA certificates to trust for the sign-in authority
    /// (its token and discovery endpoints), besides the public roots: an on-premises identity
    /// server with an internal CA, or the sandbox started with `--tls`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_cloud() -> msauth::Cloud {
    msauth::Cloud::Global
}

/// `apps.cloud`: a name [`msauth::Cloud::parse`] knows.
fn cloud_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<msauth::Cloud, D::Error> {
    let name = String::deserialize(d)?;
    msauth::Cloud::parse(&name).map_err(serde::de::Error::custom)
}

/// The kind of connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services.
    Ews,
    /// SMTP AUTH client submission with XOAUTH2 (outbounds only).
    Smtp,
}

/// A message source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Its name.
    pub name: String,
    /// Graph or EWS.
    pub kind: Kind,
    /// The app it signs in with.
    pub app: String,
    /// The pickup mailbox.
    pub mailbox: String,
    /// The folder to read (default `inbox`).
    #[serde(default)]
    pub folder: Option<String>,
    /// `mark-read` (default), `delete`, or `move:FOLDER`.
    #[serde(default)]
    pub acknowledge: Option<String>,
    /// Where poison messages are parked (default `Poison`).
    #[serde(default)]
    pub poison_folder: Option<String>,
    /// The outbound that sends notifications for this source.
    #[serde(default)]
    pub notify_through: Option<String>,
    /// A custom Graph base (`http://127.0.0.1:8080/v1.0`) or EWS URL (default: the app's
    /// cloud's Graph v1.0 root or Exchange Online EWS URL).
    #[serde(default)]
    pub url: Option<String>,
    /// Graph only: how new mail is found. `unread` (default) lists the unread messages of the
    /// folder each poll; `delta` follows the folder with Graph's delta query, so each poll asks
    /// only for what changed since the last one (cheaper on a large mailbox, and it finds new
    /// mail even if someone else read it first). The delta state is kept in `delta_state`.
    #[serde(default)]
    pub mode: SourceMode,
    /// Graph `delta` mode: the file the delta state is kept in (default `graph-delta.json` next
    /// to the ledger; several sources may share it). Losing it costs a full resync, which
    /// hands over only what is still unread, and the ledger keeps anything from being handled
    /// twice.
    #[serde(default)]
    pub delta_state: Option<PathBuf>,
    /// A PEM file of one or more extra CA certificates to trust for this connection's Graph or
    /// EWS endpoint, besides the public roots (on-premises Exchange with an internal CA, or the
    /// sandbox started with `--tls`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Routing: the mailbox's addresses and the project rules.
    pub routing: addressing::RoutingConfig,
}

/// How a Graph source finds new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    /// List the unread messages each poll.
    #[default]
    Unread,
    /// Graph's delta query, with its state kept in a file.
    Delta,
}

/// A message outbound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Its name.
    pub name: String,
    /// Graph or EWS.
    pub kind: Kind,
    /// The app it signs in with.
    pub app: String,
    /// The mailbox it sends as.
    pub mailbox: String,
    /// The tenant's `SendFromAliasEnabled`.
    #[serde(default)]
    pub send_from_alias_enabled: bool,
    /// Addresses this connection has Send As rights on.
    #[serde(default)]
    pub send_as: Vec<String>,
    /// A custom Graph base or EWS URL (default: the app's cloud's).
    #[serde(default)]
    pub url: Option<String>,
    /// For `kind = "smtp"`: the server (default: the app's cloud's, `smtp.office365.com` in
    /// the global cloud).
    #[serde(default)]
    pub host: Option<String>,
    /// For `kind = "smtp"`: the port (default 587, STARTTLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// A PEM file of one or more extra CA certificates to trust, besides the public roots: for
    /// `kind = "smtp"` the STARTTLS certificate (an on-premises server with an internal CA, or
    /// the sandbox: `m365mail sandbox --smtp-ca-out FILE`), for Graph and EWS the HTTPS
    /// endpoint in `url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// What to do with routed mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerConfig {
    /// Write each message and its routing record under this folder, one folder per project.
    #[serde(default = "default_output")]
    pub output_dir: PathBuf,
    /// Also POST each message as JSON to this URL.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The ledger file (default: `ledger.jsonl` in `output_dir`).
    #[serde(default)]
    pub ledger: Option<PathBuf>,
    /// Handler failures before a message is parked.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Seconds between polls.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Messages per fetch (1 to 1,000): also the sources' list page size, so a larger batch
    /// means fewer list requests per message (and more MIME held in memory at once).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// The largest message handed to the parser, in MiB (default 150, the largest message
    /// Microsoft 365 accepts); a bigger one is parked unparsed with the reason.
    #[serde(default = "default_max_message_mib")]
    pub max_message_mib: u32,
}

fn default_output() -> PathBuf {
    PathBuf::from("m365mail-out")
}
fn default_attempts() -> u32 {
    3
}
fn default_poll() -> u64 {
    30
}
fn default_batch() -> usize {
    50
}
fn default_max_message_mib() -> u32 {
    150
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            output_dir: default_output(),
            webhook: None,
            ledger: None,
            max_attempts: default_attempts(),
            poll_interval_secs: default_poll(),
            batch_size: default_batch(),
            max_message_mib: default_max_message_mib(),
        }
    }
}

/// The acknowledgement notification: its templates (`{project}`, `{subject}`, `{catch}`,
/// `{from}`) and who may be answered (see `handler::notify` for the rules).
///
/// ```toml
/// [notifications]
/// subject = "[{project}] We received your message"
/// subject_max_chars = 60                    # the most of the inbound subject {subject} shows
/// reply_to = "if-authenticated"             # or "from-only"
/// unauthenticated_reply_to = "answer-from"  # or "do-not-answer"
/// own_domains = ["contoso.com", "contoso.onmicrosoft.com"]  # never answered
/// per_recipient_max = 5                     # acknowledgements per recipient ...
/// per_recipient_period_secs = 3600          # ... in this window (max 0: no limit)
/// ```
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NotificationConfig {
    /// Subject template.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body template.
    #[serde(default)]
    pub body: Option<String>,
    /// The most characters of the inbound subject that `{subject}` shows (default 60).
    #[serde(default)]
    pub subject_max_chars: Option<usize>,
    /// When `Reply-To` disagrees with `From`: `if-authenticated` (default: answer `Reply-To`
    /// only when Exchange Online's `Authentication-Results` passed) or `from-only`.
    #[serde(default)]
    pub reply_to: Option<ReplyToName>,
    /// With `reply_to = "if-authenticated"` and an unauthenticated sender: `answer-from`
    /// (default) or `do-not-answer`.
    #[serde(default)]
    pub unauthenticated_reply_to: Option<UnauthenticatedName>,
    /// Domains never answered (the tenant's accepted domains). Default: the domains of each
    /// source's mailbox and aliases; `[]` answers colleagues at our own domains.
    #[serde(default)]
    pub own_domains: Option<Vec<String>>,
    /// Acknowledgements to one recipient per window (default 5; 0 turns the limit off).
    #[serde(default)]
    pub per_recipient_max: Option<u32>,
    /// The window of `per_recipient_max`, in seconds (default 3600).
    #[serde(default)]
    pub per_recipient_period_secs: Option<u64>,
}

/// `notifications.reply_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyToName {
    /// Answer `Reply-To` only for an authenticated sender.
    IfAuthenticated,
    /// Always answer `From`.
    FromOnly,
}

/// `notifications.unauthenticated_reply_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnauthenticatedName {
    /// Answer `From` instead.
    AnswerFrom,
    /// Answer nobody.
    DoNotAnswer,
}

impl NotificationConfig {
    /// The notification policy these settings describe (one for all sources, so that they
    /// share the per-recipient limit).
    pub fn policy(&self) -> handler::NotificationPolicy {
        let defaults = handler::NotificationTemplate::default();
        let mut template = handler::NotificationTemplate::new(
            self.subject.clone().unwrap_or(defaults.subject),
            self.body.clone().unwrap_or(defaults.body),
        );
        if let Some(max) = self.subject_max_chars {
            template = template.subject_max_chars(max);
        }
        let otherwise = match self.unauthenticated_reply_to {
            Some(UnauthenticatedName::DoNotAnswer) => handler::Unauthenticated::DoNotAnswer,
            _ => handler::Unauthenticated::AnswerFrom,
        };
        let reply_to = match self.reply_to {
            Some(ReplyToName::FromOnly) => handler::ReplyToPolicy::FromOnly,
            _ => handler::ReplyToPolicy::IfAuthenticated(otherwise),
        };
        let defaults = handler::RecipientLimit::default();
        let limit = match self.per_recipient_max {
            Some(0) => None,
            max => Some(handler::RecipientLimit::new(
                max.unwrap_or(defaults.max),
                self.per_recipient_period_secs
                    .map_or(defaults.per, std::time::Duration::from_secs),
            )),
        };
        let mut policy = handler::NotificationPolicy::new(template)
            .reply_to(reply_to)
            .per_recipient(limit);
        if let Some(domains) = &self.own_domains {
            policy = policy.own_domains(domains);
        }
        policy
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` is used in messages.
    ///
    /// A parse error names the line, column and key, but never quotes the file: toml's own
    /// message shows the offending line, which may hold an inline `client_secret`. Values of
    /// secret keys are also cut out of the message itself (a type error may quote a value).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_message(text, &e),
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut names = std::collections::HashSet::new();
        for app in &self.apps {
            if !names.insert(("app", app.name.clone())) {
                return Err(invalid(format!(
                    "apps: the name {:?} is used twice",
                    app.name
                )));
            }
            let has_secret = app.client_secret.is_some()
                || app.client_secret_env.is_some()
                || app.client_secret_file.is_some();
            if has_secret && app.certificate_file.is_some() {
                return Err(invalid(format!(
                    "apps.{}: give a client secret or certificate_file, not both",
                    app.name
                )));
            }
            if let Some(var) = &app.client_secret_env
                && !env_name_like(var)
            {
                // Most likely the secret itself, put in the wrong key: never repeat it.
                return Err(invalid(format!(
                    "apps.{}.client_secret_env: the value is not an environment variable's \
                     name (letters, digits and _); it names the variable that holds the \
                     secret, not the secret itself",
                    app.name
                )));
            }
            if app.certificate_file.is_none()
                && (app.certificate_key_file.is_some()
                    || app.certificate_password_env.is_some()
                    || app.assertion_algorithm.is_some())
            {
                return Err(invalid(format!(
                    "apps.{}: certificate_key_file, certificate_password_env and \
                     assertion_algorithm need certificate_file",
                    app.name
                )));
            }
            if app.flow == Flow::ClientCredentials && !has_secret && app.certificate_file.is_none()
            {
                return Err(invalid(format!(
                    "apps.{}: flow \"client-credentials\" needs client_secret_env, client_secret_file \
                     or certificate_file",
                    app.name
                )));
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            if !names.insert(("source", s.name.clone())) {
                return Err(invalid(format!(
                    "sources[{i}]: the name {:?} is used twice",
                    s.name
                )));
            }
            if !self.apps.iter().any(|a| a.name == s.app) {
                return Err(invalid(format!(
                    "sources[{i}] ({}): app {:?} is not defined in [[apps]]",
                    s.name, s.app
                )));
            }
            if s.kind == Kind::Smtp {
                return Err(invalid(format!(
                    "sources[{i}] ({}): kind \"smtp\" only sends; use it in [[outbounds]]",
                    s.name
                )));
            }
            if s.mode == SourceMode::Delta && s.kind != Kind::Graph {
                return Err(invalid(format!(
                    "sources[{i}] ({}).mode: \"delta\" is for kind = \"graph\" only",
                    s.name
                )));
            }
            if s.delta_state.is_some() && s.mode != SourceMode::Delta {
                return Err(invalid(format!(
                    "sources[{i}] ({}).delta_state: only with mode = \"delta\"",
                    s.name
                )));
            }
            if let Some(o) = &s.notify_through
                && !self.outbounds.iter().any(|x| &x.name == o)
            {
                return Err(invalid(format!(
                    "sources[{i}] ({}): notify_through {o:?} is not defined in [[outbounds]]",
                    s.name
                )));
            }
            parse_ack(s.acknowledge.as_deref())
                .map_err(|m| invalid(format!("sources[{i}] ({}).acknowledge: {m}", s.name)))?;
            addressing::Router::from_config(&s.routing)
                .map_err(|e| invalid(format!("sources[{i}] ({}).routing: {e}", s.name)))?;
        }
        for (i, o) in self.outbounds.iter().enumerate() {
            if !names.insert(("outbound", o.name.clone())) {
                return Err(invalid(format!(
                    "outbounds[{i}]: the name {:?} is used twice",
                    o.name
                )));
            }
            if !self.apps.iter().any(|a| a.name == o.app) {
                return Err(invalid(format!(
                    "outbounds[{i}] ({}): app {:?} is not defined in [[apps]]",
                    o.name, o.app
                )));
            }
            if o.kind != Kind::Smtp {
                for (key, set) in [("host", o.host.is_some()), ("port", o.port.is_some())] {
                    if set {
                        return Err(invalid(format!(
                            "outbounds[{i}] ({}).{key}: only for kind = \"smtp\" (Graph and EWS use `url`)",
                            o.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// The ledger file: `handler.ledger`, or `ledger.jsonl` in `handler.output_dir`.
    pub fn ledger_path(&self) -> PathBuf {
        self.handler
            .ledger
            .clone()
            .unwrap_or_else(|| self.handler.output_dir.join("ledger.jsonl"))
    }

    /// Where a `delta` source keeps its state: its `delta_state`, or `graph-delta.json` next to
    /// the ledger.
    pub fn delta_state_path(&self, source: &SourceConfig) -> PathBuf {
        source.delta_state.clone().unwrap_or_else(|| {
            self.ledger_path()
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
                .join("graph-delta.json")
        })
    }
}

/// Whether `s` can be an environment variable's name (`[A-Za-z_][A-Za-z0-9_]*`).
fn env_name_like(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// toml's error without its quote of the file: `line L, column C: message`, with the key the
/// line sets, and the values of secret-looking keys removed.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let mut message = e.message().trim().to_owned();
    for secret in secret_values(text) {
        message = message.replace(&secret, "[redacted]");
    }
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('[') && k.len() < 100);
    match key {
        Some(key) => format!("line {line}, column {column} (key `{key}`): {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// The literal values given to keys that hold secrets (`client_secret`, anything named like
/// a secret, password or token), as they appear in the file, quotes removed.
fn secret_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
        let key = key.rsplit('.').next().unwrap_or(&key);
        let secretish = ["secret", "password", "token", "credential", "private"]
            .iter()
            .any(|w| key.contains(w))
            && !key.ends_with("_env")
            && !key.ends_with("_file");
        if !secretish {
            continue;
        }
        let value = value
            .trim()
            .trim_matches(['"', '\'', ' ', '{', '}', '[', ']']);
        for piece in value.split(['"', '\'']) {
            let piece = piece.trim();
            if piece.len() >= 4 {
                out.push(piece.to_owned());
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// Parses an `acknowledge` value.
pub fn parse_ack(value: Option<&str>) -> Result<connector::Acknowledgement, String> {
    match value.unwrap_or("mark-read") {
        "mark-read" | "read" => Ok(connector::Acknowledgement::MarkRead),
        "delete" => Ok(connector::Acknowledgement::Delete),
        other => match other.strip_prefix("move:") {
            Some(folder) if !folder.trim().is_empty() => {
                Ok(connector::Acknowledgement::MoveTo(folder.trim().to_owned()))
            }
            _ => Err(format!(
                "{other:?} is not one of \"mark-read\", \"delete\", \"move:FOLDER\""
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[apps]]
name = "helpdesk"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_env = "HELPDESK_SECRET"

[[sources]]
name = "helpdesk"
kind = "graph"
app = "helpdesk"
mailbox = "helpdesk@contoso.com"
acknowledge = "move:Processed"
notify_through = "out"

[sources.routing.mailbox]
primary = "helpdesk@contoso.com"
aliases = ["billing@contoso.com"]

[[sources.routing.rules]]
match = "alias"
alias = "billing@contoso.com"
project = "BILL"

[[outbounds]]
name = "out"
kind = "graph"
app = "helpdesk"
mailbox = "helpdesk@contoso.com"
"#;

    #[test]
    fn a_complete_file_loads() {
        let c = Config::parse(GOOD, Path::new("m.toml")).unwrap();
        assert_eq!(c.sources[0].kind, Kind::Graph);
        assert_eq!(
            parse_ack(c.sources[0].acknowledge.as_deref()).unwrap(),
            connector::Acknowledgement::MoveTo("Processed".into())
        );
        assert_eq!(c.handler.max_attempts, 3);
    }

    #[test]
    fn the_cloud_is_parsed_when_the_file_is_loaded_and_a_wrong_one_names_its_key() {
        use msauth::Cloud;
        let c = Config::parse(GOOD, Path::new("m.toml")).unwrap();
        assert_eq!(c.apps[0].cloud, Cloud::Global);
        let secret = "client_secret_env = \"HELPDESK_SECRET\"";
        for (name, cloud) in [
            ("global", Cloud::Global),
            ("us-gov-l4", Cloud::UsGovL4),
            ("us-government", Cloud::UsGovL4),
            ("gcc-high", Cloud::UsGovL4),
            ("us-gov-l5", Cloud::UsGovL5),
            ("dod", Cloud::UsGovL5),
            ("china", Cloud::China),
        ] {
            let text = GOOD.replace(secret, &format!("{secret}\ncloud = \"{name}\""));
            let c = Config::parse(&text, Path::new("m.toml")).unwrap();
            assert_eq!(c.apps[0].cloud, cloud, "{name}");
        }
        let text = GOOD.replace(secret, &format!("{secret}\ncloud = \"germany\""));
        let e = Config::parse(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 7") && e.contains("key `cloud`"), "{e}");
        assert!(e.contains("\"germany\"") && e.contains("us-gov-l4"), "{e}");
    }

    #[test]
    fn smtp_is_an_outbound_kind_only() {
        let smtp = GOOD.replace(
            "[[outbounds]]\nname = \"out\"\nkind = \"graph\"",
            "[[outbounds]]\nname = \"out\"\nkind = \"smtp\"\nhost = \"smtp.office365.us\"\nport = 587",
        );
        let c = Config::parse(&smtp, Path::new("m.toml")).unwrap();
        assert_eq!(c.outbounds[0].kind, Kind::Smtp);
        assert_eq!(c.outbounds[0].host.as_deref(), Some("smtp.office365.us"));
        assert_eq!(c.outbounds[0].port, Some(587));

        let bad = GOOD.replace(
            "[[sources]]\nname = \"helpdesk\"\nkind = \"graph\"",
            "[[sources]]\nname = \"helpdesk\"\nkind = \"smtp\"",
        );
        let e = Config::parse(&bad, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only sends"), "{e}");
    }

    #[test]
    fn every_connection_takes_a_ca_file_but_only_smtp_takes_host_and_port() {
        let smtp = GOOD.replace(
            "[[outbounds]]\nname = \"out\"\nkind = \"graph\"",
            "[[outbounds]]\nname = \"out\"\nkind = \"smtp\"\nca_file = \"ca.pem\"",
        );
        let c = Config::parse(&smtp, Path::new("m.toml")).unwrap();
        assert_eq!(c.outbounds[0].ca_file.as_deref(), Some(Path::new("ca.pem")));

        let graph = GOOD.replace(
            "[[outbounds]]\nname = \"out\"\nkind = \"graph\"",
            "[[outbounds]]\nname = \"out\"\nkind = \"graph\"\nca_file = \"ca.pem\"",
        );
        let c = Config::parse(&graph, Path::new("m.toml")).unwrap();
        assert_eq!(c.outbounds[0].ca_file.as_deref(), Some(Path::new("ca.pem")));

        let source = GOOD.replace(
            "notify_through = \"out\"\n",
            "notify_through = \"out\"\nca_file = \"src.pem\"\n",
        );
        let c = Config::parse(&source, Path::new("m.toml")).unwrap();
        assert_eq!(c.sources[0].ca_file.as_deref(), Some(Path::new("src.pem")));
        assert_eq!(c.handler.max_message_mib, 150);

        let port = GOOD.replace(
            "[[outbounds]]\nname = \"out\"\nkind = \"graph\"",
            "[[outbounds]]\nname = \"out\"\nkind = \"graph\"\nport = 25",
        );
        let e = Config::parse(&port, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(out).port") && e.contains("only for kind"),
            "{e}"
        );
    }

    #[test]
    fn delta_mode_is_for_graph_sources_and_keeps_its_state_next_to_the_ledger() {
        let delta = GOOD.replace(
            "notify_through = \"out\"\n",
            "notify_through = \"out\"\nmode = \"delta\"\n",
        );
        let c = Config::parse(&delta, Path::new("m.toml")).unwrap();
        assert_eq!(c.sources[0].mode, SourceMode::Delta);
        assert_eq!(
            c.delta_state_path(&c.sources[0]),
            Path::new("m365mail-out/graph-delta.json")
        );
        let moved = format!("{delta}\n[handler]\nledger = \"/var/lib/m365mail/ledger.jsonl\"\n");
        let c = Config::parse(&moved, Path::new("m.toml")).unwrap();
        assert_eq!(
            c.delta_state_path(&c.sources[0]),
            Path::new("/var/lib/m365mail/graph-delta.json")
        );
        let own = delta.replace(
            "mode = \"delta\"\n",
            "mode = \"delta\"\ndelta_state = \"state/helpdesk.json\"\n",
        );
        let c = Config::parse(&own, Path::new("m.toml")).unwrap();
        assert_eq!(
            c.delta_state_path(&c.sources[0]),
            Path::new("state/helpdesk.json")
        );

        let ews = delta.replace(
            "[[sources]]\nname = \"helpdesk\"\nkind = \"graph\"",
            "[[sources]]\nname = \"helpdesk\"\nkind = \"ews\"",
        );
        let e = Config::parse(&ews, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(helpdesk).mode"), "{e}");
        let stray = GOOD.replace(
            "notify_through = \"out\"\n",
            "notify_through = \"out\"\ndelta_state = \"x.json\"\n",
        );
        let e = Config::parse(&stray, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("delta_state: only with mode"), "{e}");
        let typo = delta.replace("mode = \"delta\"", "mode = \"deltas\"");
        let e = Config::parse(&typo, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("deltas") && e.contains("line"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let bad = GOOD.replace(
            "kind = \"graph\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
            "kind = \"imap\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
        );
        let e = Config::parse(&bad, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 10"), "{e}");
        assert!(e.contains("imap"), "{e}");

        let typo = GOOD.replace("notify_through", "notify_thru");
        let e = Config::parse(&typo, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify_thru"), "{e}");
    }

    #[test]
    fn references_must_exist() {
        let e = Config::parse(
            &GOOD.replace("notify_through = \"out\"", "notify_through = \"nope\""),
            Path::new("m.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("notify_through \"nope\""), "{e}");
        let e = Config::parse(
            &GOOD.replace(
                "acknowledge = \"move:Processed\"",
                "acknowledge = \"archive\"",
            ),
            Path::new("m.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("acknowledge"), "{e}");
    }

    #[test]
    fn a_daemon_needs_a_secret_source() {
        let e = Config::parse(
            &GOOD.replace("client_secret_env = \"HELPDESK_SECRET\"", ""),
            Path::new("m.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("client_secret_env"), "{e}");
    }

    #[test]
    fn a_certificate_replaces_the_secret_and_its_settings_are_checked() {
        let parse = |text: &str| Config::parse(text, Path::new("m.toml"));
        let cert = GOOD.replace(
            "client_secret_env = \"HELPDESK_SECRET\"",
            "certificate_file = \"app.pfx\"\ncertificate_password_env = \"PFX\"\nassertion_algorithm = \"rs256\"",
        );
        let c = parse(&cert).unwrap();
        assert_eq!(
            c.apps[0].certificate_file.as_deref(),
            Some(Path::new("app.pfx"))
        );
        assert_eq!(
            c.apps[0].assertion_algorithm,
            Some(AssertionAlgorithmName::Rs256)
        );
        // Both a secret and a certificate: ambiguous, refused.
        let both = GOOD.replace(
            "client_secret_env = \"HELPDESK_SECRET\"",
            "client_secret_env = \"S\"\ncertificate_file = \"app.pfx\"",
        );
        let e = parse(&both).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        // Certificate settings without the certificate: refused, named.
        let stray = GOOD.replace(
            "client_secret_env = \"HELPDESK_SECRET\"",
            "client_secret_env = \"S\"\ncertificate_key_file = \"k.pem\"",
        );
        let e = parse(&stray).unwrap_err().to_string();
        assert!(e.contains("need certificate_file"), "{e}");
        // An algorithm we do not know: the key is named.
        let alg = cert.replace("\"rs256\"", "\"es256\"");
        let e = parse(&alg).unwrap_err().to_string();
        assert!(
            e.contains("es256") || e.contains("assertion_algorithm"),
            "{e}"
        );
    }

    #[test]
    fn an_inline_secret_stays_out_of_debug_and_parse_errors() {
        const SECRET: &str = "in-line~Secret.0123";
        let inline = GOOD.replace(
            "client_secret_env = \"HELPDESK_SECRET\"",
            &format!("client_secret = \"{SECRET}\""),
        );
        let c = Config::parse(&inline, Path::new("m.toml")).unwrap();
        assert_eq!(
            c.apps[0].client_secret.as_ref().map(|s| s.secret()),
            Some(SECRET)
        );
        let debug = format!("{c:?} {:?}", c.apps[0]);
        assert!(!debug.contains(SECRET), "{debug}");

        // toml quotes the offending line; ours names line, column and key instead.
        let typo = inline.replace("client_secret =", "client_secrt =");
        let e = Config::parse(&typo, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains(SECRET), "{e}");
        assert!(e.contains("line 6") && e.contains("client_secrt"), "{e}");
        // A type error may quote the value itself: cut out.
        let quoted = toml::from_str::<Config>("[[apps]]\nclient_secret = 5\n").unwrap_err();
        assert!(
            !parse_message("[[apps]]\nclient_secret = \"abcd1234\"\n", &quoted)
                .contains("abcd1234")
        );
        let e = Config::parse(
            &inline.replace(&format!("\"{SECRET}\""), &format!("\"{SECRET}")),
            Path::new("m.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains(SECRET) && e.contains("line 6"), "{e}");
        // The secret itself where the variable's name belongs: refused without repeating it.
        let misplaced = GOOD.replace("\"HELPDESK_SECRET\"", &format!("\"{SECRET}\""));
        let e = Config::parse(&misplaced, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains(SECRET) && e.contains("client_secret_env"),
            "{e}"
        );
    }

    #[test]
    fn secret_values_are_found_under_secret_keys_only() {
        let text = "client_secret = \"s3cr3t-value\"\napps.password = 'pw-value'\n\
                    client_secret_env = \"NAME_OF_VAR\"\nname = \"helpdesk\"\n";
        let found = secret_values(text);
        assert!(found.contains(&"s3cr3t-value".to_string()), "{found:?}");
        assert!(found.contains(&"pw-value".to_string()), "{found:?}");
        assert!(
            !found.iter().any(|v| v == "NAME_OF_VAR" || v == "helpdesk"),
            "{found:?}"
        );
    }

    #[test]
    fn the_notification_settings_build_the_policy() {
        let text = format!(
            "{GOOD}\n[notifications]\nreply_to = \"from-only\"\nsubject_max_chars = 10\n\
             own_domains = [\"contoso.com\"]\nper_recipient_max = 0\n"
        );
        let c = Config::parse(&text, Path::new("m.toml")).unwrap();
        assert_eq!(c.notifications.reply_to, Some(ReplyToName::FromOnly));
        let policy = c.notifications.policy();
        assert_eq!(policy.template().subject_max_chars, 10);
        // per_recipient_max = 0: no limit.
        assert!((0..50).all(|_| policy.admit("a@fabrikam.example")));
        let limited = Config::parse(GOOD, Path::new("m.toml"))
            .unwrap()
            .notifications
            .policy();
        assert_eq!(
            (0..50)
                .filter(|_| limited.admit("a@fabrikam.example"))
                .count(),
            5
        );
        let bad = format!("{GOOD}\n[notifications]\nreply_to = \"always\"\n");
        let e = Config::parse(&bad, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reply_to") && e.contains("always"), "{e}");
    }
}
