//! The Sources page, PING, and adding a signed-in source (or an outbound) to the configuration
//! file or the fleet's database.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use connector::PingReport;
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

use super::html::{esc, page, see_other};
use super::security::{Posted, Session, for_page, post_form};
use super::{ConsoleState, consent, lock};
use crate::config::{Config, Flow, Kind, Source};
use crate::connect::{self, Providers};

/// What the console's last PING of a source found.
#[derive(Debug, Clone)]
pub(super) struct LastPing {
    online: bool,
    waiting: Option<u64>,
    at: OffsetDateTime,
}

/// `GET /console`: the Sources page is `/console/`.
pub(super) async fn to_sources() -> Response {
    see_other("/console/")
}

/// `GET /console/`: the Sources page.
pub(super) async fn page_get(state: &ConsoleState, session: &Session, extra: &str) -> Response {
    let flash = lock(&state.inner.sessions).take_flash(&session.key);
    let body = match load(state).await {
        Ok(cfg) => {
            let fleet = match state.fleet().await {
                Some(Ok(f)) => f.status().await.ok(),
                _ => None,
            };
            sources_table(state, session, &cfg, fleet.as_ref())
        }
        Err(e) => format!(
            "<p class=\"box bad\" id=\"config-error\">The configuration cannot be read: {}</p>",
            esc(&e)
        ),
    };
    page(
        StatusCode::OK,
        "Sources",
        Some(&session.csrf),
        &format!(
            "{}{extra}{body}{}",
            flash.unwrap_or_default(),
            sign_in_box(&session.csrf)
        ),
    )
}

/// `GET /console/`.
pub(super) async fn sources_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Response {
    match for_page(&state, &headers) {
        Ok(session) => page_get(&state, &session, "").await,
        Err(r) => r,
    }
}

/// The configuration as the console sees it now (read again on each page: edits show), or
/// the fleet's (the file and the database's entries).
pub(super) async fn load(state: &ConsoleState) -> Result<Config, String> {
    match state.fleet().await {
        None => Config::load(&state.options().config).map_err(|e| e.to_string()),
        Some(fleet) => Ok(fleet?.config().await?.0),
    }
}

/// The connections' token providers: the apps' own caches, or the fleet's shared one.
pub(super) async fn providers(state: &ConsoleState) -> Result<Providers, String> {
    match state.fleet().await {
        None => Ok(Providers::default()),
        Some(fleet) => Ok(Providers::shared(fleet?.stores())),
    }
}

fn kind_name(s: &Source) -> &'static str {
    match s.service.kind() {
        Kind::Graph => "Graph",
        Kind::Ews => "EWS",
        Kind::Smtp => "SMTP",
    }
}

fn sources_table(
    state: &ConsoleState,
    session: &Session,
    cfg: &Config,
    fleet: Option<&fleet::FleetStatus>,
) -> String {
    if cfg.sources.is_empty() {
        return "<p class=\"box\" id=\"no-sources\">No source yet: sign in with Microsoft below to \
                add one.</p>"
            .to_owned();
    }
    let pings = lock(&state.inner.pings).clone();
    let mut rows = String::new();
    for s in &cfg.sources {
        let reported = fleet.and_then(|f| f.sources.iter().find(|r| r.source == s.name));
        let last_pass = match reported {
            None if fleet.is_none() => "<small>— (kept by a fleet's workers)</small>".to_owned(),
            None => "—".to_owned(),
            Some(r) => {
                let when = r.last_pass.1.map(|t| format_time(t.into()));
                let worker = r
                    .lease
                    .as_ref()
                    .map(|l| l.0.as_str())
                    .or(r.reported_by.as_deref());
                match (when, worker) {
                    (Some(w), Some(by)) => format!("{w}<br><small>{}</small>", esc(by)),
                    (Some(w), None) => w,
                    (None, Some(by)) => format!("—<br><small>{}</small>", esc(by)),
                    (None, None) => "—".to_owned(),
                }
            }
        };
        // A worker pings its source when a pass starts: that is when it last checked.
        let from_fleet = reported.and_then(|r| {
            let at = r.last_pass.0?;
            r.online.map(|online| LastPing {
                online,
                waiting: r.waiting,
                at: at.into(),
            })
        });
        let (status, waiting, checked) = match pings.get(&s.name).or(from_fleet.as_ref()) {
            Some(p) => (
                if p.online {
                    "<span class=\"online\">ONLINE</span>"
                } else {
                    "<span class=\"offline\">OFFLINE</span>"
                },
                p.waiting
                    .map(|w| w.to_string())
                    .unwrap_or_else(|| "—".into()),
                format_time(p.at),
            ),
            None => ("<small>not checked yet</small>", "—".into(), "—".into()),
        };
        // Paused by its service (a spent request budget), as its worker last reported.
        let status = match (reported.and_then(|r| r.paused_until), fleet) {
            (Some(until), Some(f)) if until > f.now => format!(
                "{status}<br><small class=\"paused\">paused until {}</small>",
                format_time(until.into())
            ),
            _ => status.to_owned(),
        };
        let ping = post_form(
            &session.csrf,
            &format!("/console/sources/{}/ping", encode(&s.name)),
            "",
            &format!(
                "<button class=\"ping\" id=\"ping-{}\">PING</button>",
                esc(&s.name)
            ),
        );
        rows.push_str(&format!(
            "<tr id=\"source-{n}\"><td>{n}</td><td>{k}</td><td>{m}</td><td>{status}</td>\
             <td class=\"waiting\">{waiting}</td><td>{checked}</td>\
             <td class=\"last-pass\">{last_pass}</td><td>{ping}</td></tr>",
            n = esc(&s.name),
            k = kind_name(s),
            m = esc(&s.mailbox),
        ));
    }
    format!(
        "<table id=\"sources\"><tr><th>Source</th><th>Kind</th><th>Mailbox</th><th>Status</th>\
         <th>Messages waiting</th><th>Last checked</th><th>Last pass</th><th></th></tr>{rows}</table>"
    )
}

fn sign_in_box(csrf: &str) -> String {
    format!(
        "<div class=\"box\" id=\"add-source\"><h2>Add a source</h2>{}</div>",
        post_form(
            csrf,
            "/console/signin",
            "<label>Connection <select name=\"kind\" id=\"kind\">\
             <option value=\"graph\">Microsoft Graph (recommended)</option>\
             <option value=\"ews\">Exchange Web Services (legacy)</option></select></label>\
             <label>Name <input name=\"name\" id=\"name\" placeholder=\"from the mailbox\"></label>",
            "<button class=\"primary\" id=\"sign-in\">Sign in with Microsoft</button>",
        )
    )
}

fn format_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A path segment, percent-encoded.
pub(super) fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `POST /console/sources/{name}/ping`: the ping report with its connection log, and the admin
/// consent link when consent is what is missing.
pub(super) async fn ping(
    State(state): State<ConsoleState>,
    UrlPath(name): UrlPath<String>,
    Posted { session, .. }: Posted,
) -> Response {
    let cfg = match load(&state).await {
        Ok(c) => c,
        Err(e) => {
            let note = format!("<p class=\"box bad\">{}</p>", esc(&e));
            return page_get(&state, &session, &note).await;
        }
    };
    let Some(source) = cfg.source(&name) else {
        let note = format!(
            "<p class=\"box bad\">There is no source called {} in the configuration.</p>",
            esc(&name)
        );
        return page_get(&state, &session, &note).await;
    };
    let built = providers(&state)
        .await
        .and_then(|mut p| connect::source(&mut p, source, cfg.handler.batch_size));
    let report = match built {
        Ok(src) => src.ping().await,
        Err(e) => PingReport::offline(e, connector::ConnectionLog::default()),
    };
    lock(&state.inner.pings).insert(
        source.name.clone(),
        LastPing {
            online: report.is_online(),
            waiting: report.waiting,
            at: report.checked_at,
        },
    );
    let consent = if needs_consent(&report) {
        consent::consent_offer(&state, &session, &cfg, source)
    } else {
        String::new()
    };
    let section = report_html(&source.name, &report, &consent);
    page_get(&state, &session, &section).await
}

/// Whether the report says the tenant has not consented (the cure is the admin consent link).
fn needs_consent(report: &PingReport) -> bool {
    report.auth.as_ref().is_some_and(|a| {
        let text = format!("{} {}", a.summary, a.remediation).to_ascii_lowercase();
        a.consent_url.is_some()
            || a.code.as_deref().is_some_and(|c| c.contains("65001"))
            || text.contains("admin consent")
            || text.contains("not consented")
            || text.contains("has not approved")
    })
}

pub(super) fn report_html(name: &str, report: &PingReport, consent: &str) -> String {
    let (class, status) = if report.is_online() {
        (
            "good",
            "<span class=\"online\" id=\"ping-status\">ONLINE</span>",
        )
    } else {
        (
            "bad",
            "<span class=\"offline\" id=\"ping-status\">OFFLINE</span>",
        )
    };
    let waiting = report
        .waiting
        .map(|w| {
            format!(
                ", <span id=\"ping-waiting\">{w}</span> message{} waiting",
                if w == 1 { "" } else { "s" }
            )
        })
        .unwrap_or_default();
    let reason = report
        .reason
        .as_ref()
        .map(|r| format!("<p id=\"ping-reason\">{}</p>", esc(r)))
        .unwrap_or_default();
    let remediation = report
        .auth
        .as_ref()
        .filter(|a| {
            !report
                .reason
                .as_deref()
                .is_some_and(|r| r.contains(&a.remediation))
        })
        .map(|a| format!("<p><small>{}</small></p>", esc(&a.remediation)))
        .unwrap_or_default();
    let log: String = report
        .log
        .iter()
        .map(|l| esc(&l.to_string()) + "\n")
        .collect();
    format!(
        "<section class=\"box {class}\" id=\"ping-report\"><h2>PING {n}: {status}{waiting}</h2>\
         {reason}{remediation}{consent}<h3>Connection log</h3><pre id=\"ping-log\">{log}</pre></section>",
        n = esc(name)
    )
}

/// A source signed in through the console, to add to the configuration.
#[derive(Debug)]
pub(super) struct NewSource {
    /// The sign-in app's `[[apps]]` table name.
    pub(super) template_app: String,
    /// Graph or EWS.
    pub(super) kind: Kind,
    /// The name asked for (empty: from the mailbox).
    pub(super) name: String,
    /// The signed-in account's mailbox (lower-case).
    pub(super) mailbox: String,
    /// The signed-in account's tenant id.
    pub(super) tenant: String,
}

/// What adding did: the source's name, the configuration with it and whether it existed
/// already (then its sign-in is only renewed).
#[derive(Debug)]
pub(super) struct Appended {
    pub(super) source: String,
    pub(super) config: Config,
    pub(super) existed: bool,
}

/// A name made of `[a-z0-9-]` from `s`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Where a console-added source's tokens are cached: beside the configuration file.
fn token_cache(config: &Path, source: &str) -> PathBuf {
    let dir = config
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    dir.join("m365mail-console-tokens")
        .join(format!("{source}.json"))
}

/// Where the console writes what it adds: the configuration file, or the fleet's database
/// (the `[[apps]]`, `[[sources]]` and `[[outbounds]]` entries `m365mail sources add` stores,
/// through the same [`Fleet::add`](crate::operate::Fleet::add)).
enum Writer<'a> {
    /// The configuration file, whose text was read.
    File(String),
    /// The fleet's database.
    Fleet(&'a crate::operate::Fleet),
}

/// The configuration as it is now, as a resolved model and as the TOML document it came from
/// (the file's, or the file's merged with the fleet's entries), and where additions go.
async fn current(state: &ConsoleState) -> Result<(Writer<'_>, Config, toml::Table), String> {
    if let Some(fleet) = state.fleet().await {
        let fleet = fleet?;
        let (cfg, doc) = fleet.config().await?;
        return Ok((Writer::Fleet(fleet), cfg, doc));
    }
    let path = &state.options().config;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg = Config::parse(&text, path).map_err(|e| e.to_string())?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("the configuration is not TOML: {}", e.message()))?;
    Ok((Writer::File(text), cfg, doc))
}

/// The configuration as written (the file's TOML, merged with the fleet's entries), empty when
/// it cannot be read (the page then says so from [`load`]).
pub(super) async fn written(state: &ConsoleState) -> toml::Table {
    current(state)
        .await
        .map(|(_, _, doc)| doc)
        .unwrap_or_default()
}

impl Writer<'_> {
    /// The text to [`commit`](Self::commit) to add `block` (TOML of `[[apps]]`, `[[sources]]`
    /// or `[[outbounds]]` tables, with a `comment` line for the file), and the configuration
    /// it makes, resolved by the same rules as the rest; nothing is written yet.
    async fn preview(
        &self,
        path: &Path,
        block: &str,
        comment: &str,
    ) -> Result<(String, Config), String> {
        match self {
            Writer::File(text) => {
                let mut new_text = text.clone();
                if !new_text.ends_with('\n') {
                    new_text.push('\n');
                }
                new_text.push_str(&format!(
                    "\n# {}\n{block}",
                    comment.replace(['\n', '\r'], "")
                ));
                let cfg = Config::parse(&new_text, path).map_err(|e| e.to_string())?;
                Ok((new_text, cfg))
            }
            Writer::Fleet(fleet) => Ok((block.to_owned(), fleet.preview(block).await?)),
        }
    }

    /// Writes what [`preview`](Self::preview) made: the file replaced atomically (keeping its
    /// permissions), or the entries stored in the fleet's database, where running workers pick
    /// them up at their next tick.
    async fn commit(&self, path: &Path, text: &str) -> Result<(), String> {
        match self {
            Writer::File(_) => write_keeping_mode(path, text.as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display())),
            Writer::Fleet(fleet) => fleet.add(text).await.map(|_| ()),
        }
    }

    /// The token providers of the connections it configures: the apps' own caches, or the
    /// fleet's shared store.
    fn providers(&self) -> Providers {
        match self {
            Writer::File(_) => Providers::default(),
            Writer::Fleet(fleet) => Providers::shared(fleet.stores()),
        }
    }
}

/// Keeps `response` (a sign-in of `source`'s account) where `source`'s connections look for
/// it: the token cache of its app, under its account.
async fn keep_sign_in(
    providers: &mut Providers,
    source: &Source,
    response: &msauth::TokenResponse,
) -> Result<(), String> {
    let provider = providers.token_provider(&source.app, &source.scope)?;
    provider
        .save_sign_in(response)
        .await
        .map_err(|e| format!("the sign-in could not be kept: {e}"))
}

/// Adds `new` (an `[[apps]]` copied from the sign-in app with the signed-in account, and the
/// `[[sources]]` reading its mailbox) to the configuration file or the fleet's database, unless
/// a delegated source of that kind already reads the mailbox, and keeps the sign-in
/// (`response`) in that source's token cache. The sign-in is kept before the source is written,
/// so a worker never sees the source without it; the new configuration is resolved before
/// either.
pub(super) async fn add_signed_in(
    state: &ConsoleState,
    new: &NewSource,
    response: &msauth::TokenResponse,
) -> Result<Appended, String> {
    let _writer = state.inner.write.lock().await;
    let path = &state.options().config;
    let (writer, cfg, doc) = current(state).await?;
    if let Some(existing) = cfg.sources.iter().find(|s| {
        s.mailbox.eq_ignore_ascii_case(&new.mailbox)
            && s.service.kind() == new.kind
            && s.app.flow != Flow::ClientCredentials
            && s.app
                .account
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case(&new.mailbox))
    }) {
        keep_sign_in(&mut writer.providers(), existing, response).await?;
        return Ok(Appended {
            source: existing.name.clone(),
            config: cfg.clone(),
            existed: true,
        });
    }
    let template = doc
        .get("apps")
        .and_then(toml::Value::as_array)
        .and_then(|apps| {
            apps.iter()
                .find(|a| a.get("name").and_then(toml::Value::as_str) == Some(&new.template_app))
        })
        .and_then(toml::Value::as_table)
        .ok_or_else(|| format!("no app called {:?} in the configuration", new.template_app))?;
    let base = match slug(&new.name) {
        s if !s.is_empty() => s,
        _ => slug(new.mailbox.split('@').next().unwrap_or("mailbox")),
    };
    let base = if base.is_empty() {
        "mailbox".into()
    } else {
        base
    };
    let taken = |n: &str| cfg.source(n).is_some() || cfg.app(&format!("console-{n}")).is_some();
    let mut name = base.clone();
    let mut i = 2;
    while taken(&name) {
        name = format!("{base}-{i}");
        i += 1;
    }
    let mut app = template.clone();
    let app_name = format!("console-{name}");
    app.insert("name".into(), app_name.clone().into());
    app.insert("tenant".into(), new.tenant.clone().into());
    app.insert("flow".into(), "browser".into());
    app.insert("account".into(), new.mailbox.clone().into());
    match writer {
        // Each signed-in person's sign-in in a file of its own.
        Writer::File(_) => {
            let cache = token_cache(path, &name);
            if let Some(dir) = cache.parent() {
                httpcore::fs::create_private_dir_all(dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            app.insert("token_cache".into(), cache.display().to_string().into());
        }
        // The fleet's shared token store, under the account: no file of its own.
        Writer::Fleet(_) => {
            app.remove("token_cache");
        }
    }
    let template_app = cfg
        .app(&new.template_app)
        .ok_or_else(|| format!("no app called {:?}", new.template_app))?;
    let (kind, url) = match new.kind {
        Kind::Ews => (
            "ews",
            state
                .options()
                .ews_url
                .clone()
                .or_else(|| url_of(&cfg, &template_app.name, Kind::Ews)),
        ),
        _ => (
            "graph",
            state
                .options()
                .graph_url
                .clone()
                .or_else(|| url_of(&cfg, &template_app.name, Kind::Graph)),
        ),
    };
    let mut source = toml::Table::new();
    source.insert("name".into(), name.clone().into());
    source.insert("kind".into(), kind.into());
    source.insert("app".into(), app_name.into());
    source.insert("mailbox".into(), new.mailbox.clone().into());
    if let Some(url) = url {
        source.insert("url".into(), url.into());
    }
    let mut mailbox = toml::Table::new();
    mailbox.insert("primary".into(), new.mailbox.clone().into());
    let mut rule = toml::Table::new();
    rule.insert("match".into(), "default".into());
    rule.insert("project".into(), name.clone().into());
    let mut routing = toml::Table::new();
    routing.insert("mailbox".into(), mailbox.into());
    routing.insert("rules".into(), toml::Value::Array(vec![rule.into()]));
    source.insert("routing".into(), routing.into());
    let mut added = toml::Table::new();
    added.insert("apps".into(), toml::Value::Array(vec![app.into()]));
    added.insert("sources".into(), toml::Value::Array(vec![source.into()]));
    let block = toml::to_string(&added).map_err(|e| e.to_string())?;
    let comment = format!(
        "Added by m365mail console on {}: {} signed in ({kind}).",
        format_time(OffsetDateTime::now_utc()),
        new.mailbox
    );
    let (text, config) = writer
        .preview(path, &block, &comment)
        .await
        .map_err(|e| format!("the source would make the configuration invalid: {e}"))?;
    let source = config
        .source(&name)
        .ok_or_else(|| format!("the source {name} is not in the new configuration"))?;
    keep_sign_in(&mut writer.providers(), source, response).await?;
    writer.commit(path, &text).await?;
    Ok(Appended {
        source: name,
        config,
        existed: false,
    })
}

/// An outbound created on the Outbounds page, to add to the configuration.
#[derive(Debug)]
pub(super) struct NewOutbound {
    /// Its name (not yet taken).
    pub(super) name: String,
    /// Graph, EWS or SMTP.
    pub(super) kind: Kind,
    /// The configured app it signs in with.
    pub(super) app: String,
    /// The mailbox it sends as.
    pub(super) mailbox: String,
    /// The tenant's `SendFromAliasEnabled`.
    pub(super) send_from_alias_enabled: bool,
}

/// Adds `new` as an `[[outbounds]]` table to the configuration file or the fleet's database,
/// as [`add_signed_in`] does a source: resolved by the same rules before it is written. Its
/// `url` (Graph, EWS) is the console's, else an existing connection's of that kind; an SMTP
/// outbound takes `host`, `port` and `ca_file` of an existing SMTP outbound, else the app's
/// cloud's defaults. The configuration with it is returned.
pub(super) async fn add_outbound(
    state: &ConsoleState,
    new: &NewOutbound,
) -> Result<Config, String> {
    let _writer = state.inner.write.lock().await;
    let path = &state.options().config;
    let (writer, cfg, doc) = current(state).await?;
    if cfg.outbound(&new.name).is_some() {
        return Err(format!("an outbound called {:?} exists already", new.name));
    }
    if cfg.app(&new.app).is_none() {
        return Err(format!("no app called {:?} in the configuration", new.app));
    }
    let mut outbound = toml::Table::new();
    outbound.insert("name".into(), new.name.clone().into());
    let kind = match new.kind {
        Kind::Graph => "graph",
        Kind::Ews => "ews",
        Kind::Smtp => "smtp",
    };
    outbound.insert("kind".into(), kind.into());
    outbound.insert("app".into(), new.app.clone().into());
    outbound.insert("mailbox".into(), new.mailbox.clone().into());
    outbound.insert(
        "send_from_alias_enabled".into(),
        new.send_from_alias_enabled.into(),
    );
    match new.kind {
        Kind::Smtp => {
            let existing = doc
                .get("outbounds")
                .and_then(toml::Value::as_array)
                .and_then(|all| {
                    all.iter()
                        .find(|o| o.get("kind").and_then(toml::Value::as_str) == Some("smtp"))
                })
                .and_then(toml::Value::as_table);
            for key in ["host", "port", "ca_file"] {
                if let Some(v) = existing.and_then(|o| o.get(key)) {
                    outbound.insert(key.into(), v.clone());
                }
            }
        }
        kind => {
            let configured = match kind {
                Kind::Ews => state.options().ews_url.clone(),
                _ => state.options().graph_url.clone(),
            };
            let url = configured
                .or_else(|| url_of(&cfg, &new.app, kind))
                .or_else(|| {
                    cfg.outbounds
                        .iter()
                        .find(|o| o.service.kind() == kind)
                        .map(|o| o.service.address())
                });
            if let Some(url) = url {
                outbound.insert("url".into(), url.into());
            }
        }
    }
    let mut added = toml::Table::new();
    added.insert(
        "outbounds".into(),
        toml::Value::Array(vec![outbound.into()]),
    );
    let block = toml::to_string(&added).map_err(|e| e.to_string())?;
    let comment = format!(
        "Added by m365mail console on {}: outbound {}.",
        format_time(OffsetDateTime::now_utc()),
        new.name
    );
    let (text, config) = writer
        .preview(path, &block, &comment)
        .await
        .map_err(|e| format!("the outbound would make the configuration invalid: {e}"))?;
    writer.commit(path, &text).await?;
    Ok(config)
}

/// The `url` of a source of `kind` signing in with `app`, if the file has one.
fn url_of(cfg: &Config, app: &str, kind: Kind) -> Option<String> {
    cfg.sources
        .iter()
        .find(|s| s.app.name == app && s.service.kind() == kind)
        .or_else(|| cfg.sources.iter().find(|s| s.service.kind() == kind))
        .map(|s| s.service.address())
}

/// Replaces `path` atomically, keeping its permissions (it may hold an inline secret).
fn write_keeping_mode(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let before = std::fs::metadata(path)?.permissions();
    httpcore::fs::write_atomic(path, bytes, httpcore::fs::FileMode::OwnerOnly)?;
    std::fs::set_permissions(path, before)
}
