//! From text to [`Config`], once: toml's document (kept for the lines of the values), serde's
//! [`File`] read from that same document, then every value parsed and every reference followed.
//! The first problem found is returned with its key and line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeTable;
use url::Url;

use super::file::{File, Kind, OutboundConfig};
use super::file::{SourceConfig, SourceMode};
use super::model::{App, Handler, Outbound, Push, Service, Source};
use super::{Config, ConfigError, Overrides, parse_ack};

mod apps;
mod document;

use document::{At, Document};

/// The most messages of one source `handler.concurrency` lets the handler handle at once.
const MAX_CONCURRENCY: usize = 64;

/// The longest `handler.throttle_wait_secs`: an hour, six of Exchange Online's budget windows.
const MAX_THROTTLE_WAIT_SECS: u64 = 3_600;

/// Parses `text`, applies `overrides` and resolves it.
pub(super) fn parse(text: &str, path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
    let parse_error = |e: toml::de::Error| ConfigError::Parse {
        path: path.to_path_buf(),
        message: parse_message(text, &e),
    };
    let root = DeTable::parse(text).map_err(parse_error)?;
    let mut file =
        File::deserialize(toml::de::Deserializer::from(root.clone())).map_err(parse_error)?;
    if let Some(out) = &overrides.output_dir {
        file.handler.output_dir = out.clone();
    }
    let doc = Document {
        text,
        root: root.into_inner(),
    };
    Resolver { path, doc: &doc }.config(file)
}

struct Resolver<'a> {
    path: &'a Path,
    doc: &'a Document<'a>,
}

impl Resolver<'_> {
    fn invalid(
        &self,
        key: impl Into<String>,
        at: &[At<'_>],
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            line: self.doc.line(at),
            message: message.into(),
        }
    }

    fn config(&self, file: File) -> Result<Config, ConfigError> {
        let mut names = HashSet::new();
        let mut apps: Vec<Arc<App>> = Vec::with_capacity(file.apps.len());
        for (i, a) in file.apps.iter().enumerate() {
            if !names.insert(("app", a.name.clone())) {
                return Err(self.invalid(
                    "apps",
                    &[At::Key("apps"), At::Index(i), At::Key("name")],
                    format!("the name {:?} is used twice", a.name),
                ));
            }
            apps.push(Arc::new(self.app(i, a)?));
        }
        let find_app = |name: &str| apps.iter().find(|a| a.name == name).cloned();

        let mut outbounds: Vec<Arc<Outbound>> = Vec::with_capacity(file.outbounds.len());
        for (i, o) in file.outbounds.iter().enumerate() {
            let at = |k| [At::Key("outbounds"), At::Index(i), At::Key(k)];
            if !names.insert(("outbound", o.name.clone())) {
                return Err(self.invalid(
                    format!("outbounds[{i}]"),
                    &at("name"),
                    format!("the name {:?} is used twice", o.name),
                ));
            }
            let app = find_app(&o.app).ok_or_else(|| {
                self.invalid(
                    format!("outbounds[{i}] ({})", o.name),
                    &at("app"),
                    format!("app {:?} is not defined in [[apps]]", o.app),
                )
            })?;
            outbounds.push(Arc::new(self.outbound(i, o, app)?));
        }

        let ledger = file
            .handler
            .ledger
            .clone()
            .unwrap_or_else(|| file.handler.output_dir.join("ledger.jsonl"));
        let mut sources = Vec::with_capacity(file.sources.len());
        for (i, s) in file.sources.iter().enumerate() {
            let at = |k| [At::Key("sources"), At::Index(i), At::Key(k)];
            if !names.insert(("source", s.name.clone())) {
                return Err(self.invalid(
                    format!("sources[{i}]"),
                    &at("name"),
                    format!("the name {:?} is used twice", s.name),
                ));
            }
            let app = find_app(&s.app).ok_or_else(|| {
                self.invalid(
                    format!("sources[{i}] ({})", s.name),
                    &at("app"),
                    format!("app {:?} is not defined in [[apps]]", s.app),
                )
            })?;
            sources.push(self.source(i, s, app, &outbounds, &ledger)?);
        }

        let handler = self.handler(&file, ledger)?;
        Ok(Config {
            apps,
            sources,
            outbounds,
            handler,
            notifications: file.notifications.policy(),
        })
    }

    fn outbound(
        &self,
        i: usize,
        o: &OutboundConfig,
        app: Arc<App>,
    ) -> Result<Outbound, ConfigError> {
        let at = |k| [At::Key("outbounds"), At::Index(i), At::Key(k)];
        let key = |k: &str| format!("outbounds[{i}] ({}){k}", o.name);
        let unused: &[(&str, bool)] = match o.kind {
            Kind::Smtp => &[("url", o.url.is_some())],
            Kind::Graph | Kind::Ews => &[("host", o.host.is_some()), ("port", o.port.is_some())],
        };
        if let Some((k, _)) = unused.iter().find(|(_, set)| *set) {
            let why = match o.kind {
                Kind::Smtp => "only for Graph and EWS (SMTP uses `host` and `port`)",
                Kind::Graph | Kind::Ews => "only for kind = \"smtp\" (Graph and EWS use `url`)",
            };
            return Err(self.invalid(key(&format!(".{k}")), &at(k), why));
        }
        let mut capabilities = addressing::OutboundCapabilities::new()
            .send_from_alias_enabled(o.send_from_alias_enabled);
        for (j, a) in o.send_as.iter().enumerate() {
            let address = addressing::EmailAddress::parse(a).map_err(|e| {
                self.invalid(
                    key(&format!(".send_as[{j}]")),
                    &[
                        At::Key("outbounds"),
                        At::Index(i),
                        At::Key("send_as"),
                        At::Index(j),
                    ],
                    format!("{a:?}: {e}"),
                )
            })?;
            capabilities = capabilities.send_as(address);
        }
        let (service, scope) = match o.kind {
            Kind::Smtp => {
                let defaults = smtp_mail::SmtpConfig::exchange_online(app.cloud, o.mailbox.clone());
                let smtp = defaults.clone().with_server(
                    o.host.clone().unwrap_or(defaults.host),
                    o.port.unwrap_or(defaults.port),
                );
                (Service::Smtp(smtp), app.smtp_scope())
            }
            kind => self.http_service(
                kind,
                &app,
                o.url.as_deref(),
                &o.mailbox,
                &key(".url"),
                &at("url"),
            )?,
        };
        Ok(Outbound {
            name: o.name.clone(),
            app,
            mailbox: o.mailbox.clone(),
            service,
            scope,
            capabilities,
            ca_file: o.ca_file.clone(),
        })
    }

    fn source(
        &self,
        i: usize,
        s: &SourceConfig,
        app: Arc<App>,
        outbounds: &[Arc<Outbound>],
        ledger: &Path,
    ) -> Result<Source, ConfigError> {
        let at = |k| [At::Key("sources"), At::Index(i), At::Key(k)];
        let key = |k: &str| format!("sources[{i}] ({}){k}", s.name);
        if s.kind == Kind::Smtp {
            return Err(self.invalid(
                key(""),
                &at("kind"),
                "kind \"smtp\" only sends; use it in [[outbounds]]",
            ));
        }
        if s.push.is_some() && s.mode != SourceMode::Push {
            return Err(self.invalid(
                key(".push"),
                &at("push"),
                "[sources.push] is only read with mode = \"push\"",
            ));
        }
        let graph_push = s.mode == SourceMode::Push && s.kind == Kind::Graph;
        let incremental = matches!(s.mode, SourceMode::Delta | SourceMode::Push);
        let delta_like = incremental && s.kind == Kind::Graph;
        let ews_sync = incremental && s.kind == Kind::Ews;
        let streaming = self.streaming(s, &key, &at)?;
        let push = if graph_push {
            self.push(s, ledger, &key, &at)?
        } else {
            None
        };
        if s.delta_state.is_some() && !delta_like {
            return Err(self.invalid(
                key(".delta_state"),
                &at("delta_state"),
                "only with mode = \"delta\" or \"push\" on a Graph source (an EWS source \
                 keeps its state in sync_state)",
            ));
        }
        if s.sync_state.is_some() && !ews_sync {
            return Err(self.invalid(
                key(".sync_state"),
                &at("sync_state"),
                "only with mode = \"delta\" or \"push\" on an EWS source (a Graph source \
                 keeps its state in delta_state)",
            ));
        }
        let notify_through = match &s.notify_through {
            Some(name) => Some(
                outbounds
                    .iter()
                    .find(|o| &o.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        self.invalid(
                            key(""),
                            &at("notify_through"),
                            format!("notify_through {name:?} is not defined in [[outbounds]]"),
                        )
                    })?,
            ),
            None => None,
        };
        let acknowledge = parse_ack(s.acknowledge.as_deref())
            .map_err(|m| self.invalid(key(".acknowledge"), &at("acknowledge"), m))?;
        if acknowledge == connector::Acknowledgement::Keep && !incremental {
            return Err(self.invalid(
                key(".acknowledge"),
                &at("acknowledge"),
                "\"keep\" leaves each message as it is, which only a source with \
                 mode = \"delta\" or \"push\" can do (the deltaLink or SyncState moves past \
                 it); listing unread mail would hand the same message out on every pass",
            ));
        }
        if s.requests_in_flight == Some(0) {
            return Err(self.invalid(
                key(".requests_in_flight"),
                &at("requests_in_flight"),
                "requests_in_flight is at least 1",
            ));
        }
        let router = addressing::Router::from_config(&s.routing)
            .map_err(|e| self.routing_error(i, &key(".routing"), &e))?;
        let (service, scope) = self.http_service(
            s.kind,
            &app,
            s.url.as_deref(),
            &s.mailbox,
            &key(".url"),
            &at("url"),
        )?;
        let delta_state = delta_like.then(|| {
            s.delta_state
                .clone()
                .unwrap_or_else(|| beside_ledger(ledger, "graph-delta.json"))
        });
        let sync_state = ews_sync.then(|| {
            s.sync_state
                .clone()
                .unwrap_or_else(|| beside_ledger(ledger, "ews-sync.json"))
        });
        Ok(Source {
            name: s.name.clone(),
            app,
            mailbox: s.mailbox.clone(),
            service,
            scope,
            folder: s.folder.clone(),
            requests_in_flight: s.requests_in_flight,
            delta_state,
            push,
            streaming,
            sync_state,
            acknowledge,
            poison_folder: s.poison_folder.clone().unwrap_or_else(|| "Poison".into()),
            notify_through,
            ca_file: s.ca_file.clone(),
            router,
        })
    }

    /// EWS `mode = "push"`: the safety timer (`[sources.push] safety_interval_secs`, default 900
    /// seconds); the table's Graph keys are refused. `None` for other sources.
    fn streaming<'a>(
        &self,
        s: &SourceConfig,
        key: &dyn Fn(&str) -> String,
        at: &dyn Fn(&'a str) -> [At<'a>; 3],
    ) -> Result<Option<Duration>, ConfigError> {
        if s.kind != Kind::Ews || s.mode != SourceMode::Push {
            return Ok(None);
        }
        let p = s.push.as_ref();
        if p.is_some_and(|p| {
            p.public_url.is_some() || p.listen.is_some() || p.subscriptions.is_some()
        }) {
            return Err(self.invalid(
                key(".push"),
                &at("push"),
                "an EWS source streams its notifications: of [sources.push] only \
                 safety_interval_secs applies (public_url, listen and subscriptions are Graph's)",
            ));
        }
        match p.and_then(|p| p.safety_interval_secs).unwrap_or(900) {
            0 => Err(self.invalid(
                key(".push.safety_interval_secs"),
                &at("push"),
                "must be at least 1: the safety timer catches up lost notifications",
            )),
            secs => Ok(Some(Duration::from_secs(secs))),
        }
    }

    /// `[sources.push]` of a Graph source in push mode (required); the public URL
    /// checked (https, or http to loopback), the defaults filled in.
    fn push<'a>(
        &self,
        s: &SourceConfig,
        ledger: &Path,
        key: &dyn Fn(&str) -> String,
        at: &dyn Fn(&'a str) -> [At<'a>; 3],
    ) -> Result<Option<Push>, ConfigError> {
        let Some(p) = &s.push else {
            return Err(self.invalid(
                key(".mode"),
                &at("mode"),
                "\"push\" on a Graph source needs a [sources.push] table with public_url (the \
                 https URL Graph sends change notifications to)",
            ));
        };
        let Some(public) = &p.public_url else {
            return Err(self.invalid(
                key(".push.public_url"),
                &at("push"),
                "a Graph source in push mode needs public_url: the https URL Graph sends change \
                 notifications to",
            ));
        };
        let public_url = Url::parse(public)
            .ok()
            .filter(|u| {
                u.scheme() == "https" || (u.scheme() == "http" && connector::is_loopback(u))
            })
            .ok_or_else(|| {
                self.invalid(
                    key(".push.public_url"),
                    &at("push"),
                    format!(
                        "{public:?} must be an https URL (Graph sends notifications over https \
                         only; http is allowed to loopback, for the sandbox)"
                    ),
                )
            })?;
        let safety = p.safety_interval_secs.unwrap_or(900);
        if safety == 0 {
            return Err(self.invalid(
                key(".push.safety_interval_secs"),
                &at("push"),
                "must be at least 1: the safety timer catches up lost notifications",
            ));
        }
        Ok(Some(Push {
            public_url,
            listen: p
                .listen
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8425))),
            safety_interval: std::time::Duration::from_secs(safety),
            subscriptions: p
                .subscriptions
                .clone()
                .unwrap_or_else(|| beside_ledger(ledger, "graph-subscriptions.json")),
        }))
    }

    /// A Graph or EWS endpoint (`url`, or the app's cloud's) with its scope, checked as the
    /// client crates check it: https, or http only on loopback.
    fn http_service(
        &self,
        kind: Kind,
        app: &App,
        url: Option<&str>,
        mailbox: &str,
        key: &str,
        at: &[At<'_>],
    ) -> Result<(Service, String), ConfigError> {
        let invalid = |m: String| self.invalid(key, at, m);
        match kind {
            Kind::Graph => {
                let mailbox = graph_mail::Mailbox::user(mailbox);
                let endpoint = match url {
                    Some(u) => graph_mail::Endpoint::custom(u, mailbox)
                        .map_err(|e| invalid(e.to_string()))?,
                    None => graph_mail::Endpoint::cloud(app.cloud, mailbox),
                };
                Ok((Service::Graph(endpoint), app.graph_scope().to_owned()))
            }
            Kind::Ews => {
                let endpoint = match url {
                    Some(u) => {
                        let parsed = Url::parse(u).map_err(|e| invalid(format!("{u:?}: {e}")))?;
                        ews_mail::check_endpoint(&parsed).map_err(|e| invalid(e.to_string()))?;
                        parsed
                    }
                    None => ews_mail::exchange_online(app.cloud),
                };
                Ok((Service::Ews(endpoint), app.ews_scope().to_owned()))
            }
            Kind::Smtp => Err(invalid("kind \"smtp\" only sends".into())),
        }
    }

    /// A routing error: each problem with its own key and line.
    fn routing_error(&self, i: usize, key: &str, e: &addressing::ConfigError) -> ConfigError {
        let located: Vec<(String, Option<usize>, String)> = e
            .problems()
            .iter()
            .map(|p| {
                let mut at = vec![At::Key("sources"), At::Index(i), At::Key("routing")];
                let field = match &p.location {
                    addressing::Location::Mailbox { field } => {
                        at.push(At::Key("mailbox"));
                        field.as_str()
                    }
                    addressing::Location::Rule { index, field } => {
                        at.extend([At::Key("rules"), At::Index(*index)]);
                        field
                    }
                    _ => "",
                };
                match field.split_once('[') {
                    Some((name, index)) => {
                        at.push(At::Key(name));
                        if let Ok(n) = index.trim_end_matches(']').parse() {
                            at.push(At::Index(n));
                        }
                    }
                    None if !field.is_empty() => at.push(At::Key(field)),
                    None => {}
                }
                (
                    format!("{key}.{}", p.location),
                    self.doc.line(&at),
                    p.kind.to_string(),
                )
            })
            .collect();
        match located.as_slice() {
            [(key, line, message)] => ConfigError::Invalid {
                path: self.path.to_path_buf(),
                key: key.clone(),
                line: *line,
                message: message.clone(),
            },
            many => {
                let mut message = format!("{} problems:", many.len());
                for (key, line, what) in many {
                    let line = line.map(|l| format!("line {l}: ")).unwrap_or_default();
                    message += &format!("\n  {line}{key}: {what}");
                }
                ConfigError::Invalid {
                    path: self.path.to_path_buf(),
                    key: key.to_owned(),
                    line: many.first().and_then(|(_, line, _)| *line),
                    message,
                }
            }
        }
    }

    fn handler(&self, file: &File, ledger: PathBuf) -> Result<Handler, ConfigError> {
        let h = &file.handler;
        let at = [At::Key("handler"), At::Key("webhook")];
        let webhook = match &h.webhook {
            Some(u) => {
                // The URL itself is not repeated: it may carry a token in its query.
                let url = Url::parse(u)
                    .map_err(|e| self.invalid("handler.webhook", &at, format!("not a URL: {e}")))?;
                // The handler's own rule (https, or http to loopback only), applied now.
                handler::WebhookHandler::check_url(&url)
                    .map_err(|e| self.invalid("handler.webhook", &at, e.to_string()))?;
                Some(url)
            }
            None => None,
        };
        if !(1..=MAX_CONCURRENCY).contains(&h.concurrency) {
            return Err(self.invalid(
                "handler.concurrency",
                &[At::Key("handler"), At::Key("concurrency")],
                format!(
                    "{} messages handled at once: give 1 to {MAX_CONCURRENCY}",
                    h.concurrency
                ),
            ));
        }
        if h.throttle_wait_secs > MAX_THROTTLE_WAIT_SECS {
            return Err(self.invalid(
                "handler.throttle_wait_secs",
                &[At::Key("handler"), At::Key("throttle_wait_secs")],
                format!(
                    "{} s of waiting for throttled sources: give 0 to {MAX_THROTTLE_WAIT_SECS}",
                    h.throttle_wait_secs
                ),
            ));
        }
        Ok(Handler {
            output_dir: h.output_dir.clone(),
            webhook,
            ledger,
            max_attempts: h.max_attempts,
            poll_interval: Duration::from_secs(h.poll_interval_secs),
            batch_size: h.batch_size,
            concurrency: h.concurrency,
            throttle_wait: Duration::from_secs(h.throttle_wait_secs),
            max_message_bytes: usize::try_from(h.max_message_mib)
                .map_or(usize::MAX, |m| m.saturating_mul(1 << 20)),
            subject_token: h.subject_token.clone().filter(|p| !p.trim().is_empty()),
        })
    }
}

/// toml's error without its quote of the file: `line L, column C: message`, with the key the
/// line sets, and the values of secret-looking keys removed.
pub(super) fn parse_message(text: &str, e: &toml::de::Error) -> String {
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
pub(super) fn secret_values(text: &str) -> Vec<String> {
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

/// A state file's default place: `name` in the ledger's folder.
fn beside_ledger(ledger: &Path, name: &str) -> PathBuf {
    ledger
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join(name)
}
