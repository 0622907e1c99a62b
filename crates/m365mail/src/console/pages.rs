//! The Outbounds page (each outbound with PING) and the Routing page (each source's addresses
//! and rules, and a box to test an address: what `m365mail route --address` prints).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use connector::PingReport;
use http::{HeaderMap, StatusCode};

use super::ConsoleState;
use super::html::{esc, page};
use super::security::{Posted, Session, for_page, post_form};
use super::sources::{NewOutbound, add_outbound, encode, load, providers, report_html, written};
use crate::config::{Config, Kind, Outbound};
use crate::connect;
use crate::doctor::{self, Check};

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Graph => "Graph",
        Kind::Ews => "EWS",
        Kind::Smtp => "SMTP",
    }
}

fn outbounds_page(session: &Session, cfg: Result<Config, String>, extra: &str) -> Response {
    let apps = &app_names(&cfg);
    let body = match cfg {
        Err(e) => format!(
            "<p class=\"box bad\" id=\"config-error\">The configuration cannot be read: {}</p>",
            esc(&e)
        ),
        Ok(cfg) if cfg.outbounds.is_empty() => {
            "<p class=\"box\" id=\"no-outbounds\">No outbound in the configuration.</p>".to_owned()
        }
        Ok(cfg) => {
            let mut rows = String::new();
            for o in &cfg.outbounds {
                let ping = post_form(
                    &session.csrf,
                    &format!("/console/outbounds/{}/ping", encode(&o.name)),
                    "",
                    &format!(
                        "<button class=\"ping\" id=\"ping-outbound-{}\">PING</button>",
                        esc(&o.name)
                    ),
                );
                let send_as: Vec<String> = o
                    .capabilities
                    .send_as
                    .iter()
                    .map(|a| esc(&a.to_string()))
                    .collect();
                rows.push_str(&format!(
                    "<tr id=\"outbound-{n}\"><td>{n}</td><td>{k}</td><td>{m}</td><td>{a}</td>\
                     <td>{s}</td><td>{ping}</td></tr>",
                    n = esc(&o.name),
                    k = kind_name(o.service.kind()),
                    m = esc(&o.mailbox),
                    a = if o.capabilities.send_from_alias_enabled {
                        "on"
                    } else {
                        "off"
                    },
                    s = if send_as.is_empty() {
                        "—".to_owned()
                    } else {
                        send_as.join(", ")
                    },
                ));
            }
            format!(
                "<table id=\"outbounds\"><tr><th>Outbound</th><th>Kind</th><th>Sends as</th>\
                 <th>SendFromAliasEnabled</th><th>Send As</th><th></th></tr>{rows}</table>"
            )
        }
    };
    let form = create_form(&session.csrf, apps);
    page(
        StatusCode::OK,
        "Outbounds",
        Some(&session.csrf),
        &format!("{extra}{body}{form}"),
    )
}

/// The form that creates an outbound: name, kind, one of the configured `apps`, mailbox and
/// `send_from_alias_enabled`.
fn create_form(csrf: &str, apps: &[String]) -> String {
    let options: String = apps
        .iter()
        .map(|a| format!("<option value=\"{a}\">{a}</option>", a = esc(a)))
        .collect();
    format!(
        "<div class=\"box\" id=\"add-outbound\"><h2>Create an outbound</h2>{}</div>",
        post_form(
            csrf,
            "/console/outbounds",
            &format!(
                "<label>Name <input name=\"name\" id=\"outbound-name\" \
                 placeholder=\"helpdesk-out\"></label><label>Kind <select name=\"kind\" \
                 id=\"outbound-kind\"><option value=\"graph\">Microsoft Graph</option>\
                 <option value=\"ews\">Exchange Web Services</option>\
                 <option value=\"smtp\">SMTP</option></select></label><label>App \
                 <select name=\"app\" id=\"outbound-app\">{options}</select></label>\
                 <label>Mailbox <input name=\"mailbox\" id=\"outbound-mailbox\" size=\"30\" \
                 placeholder=\"helpdesk@contoso.com\"></label><label><input type=\"checkbox\" \
                 name=\"send_from_alias_enabled\" value=\"true\" id=\"outbound-sfae\"> \
                 SendFromAliasEnabled (the tenant keeps an alias as From)</label>"
            ),
            "<button class=\"primary\" id=\"create-outbound\">Create</button>",
        )
    )
}

/// The names of the configured apps (for the creation form).
fn app_names(cfg: &Result<Config, String>) -> Vec<String> {
    cfg.as_ref()
        .map(|c| c.apps.iter().map(|a| a.name.clone()).collect())
        .unwrap_or_default()
}

/// Whether `name` may name an outbound: 1 to 64 of `[A-Za-z0-9._-]`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `POST /console/outbounds`: creates an outbound from the form and adds it to the
/// configuration file or the fleet's database; a refused value changes nothing and is named (`400`).
pub(super) async fn create_outbound(
    State(state): State<ConsoleState>,
    Posted { session, form }: Posted,
) -> Response {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let name = field("name");
    let app = field("app");
    let mailbox = field("mailbox");
    let checked = matches!(field("send_from_alias_enabled").as_str(), "true" | "on");
    let kind = match field("kind").as_str() {
        "graph" => Ok(Kind::Graph),
        "ews" => Ok(Kind::Ews),
        "smtp" => Ok(Kind::Smtp),
        other => Err(format!("unknown kind {other:?} (graph, ews or smtp)")),
    };
    let cfg = load(&state).await;
    let apps = app_names(&cfg);
    let result = if !valid_name(&name) {
        Err(format!(
            "the name {name:?} is not 1 to 64 letters, digits, '.', '_' or '-'"
        ))
    } else if !apps.contains(&app) {
        Err(format!("no app called {app:?} in the configuration"))
    } else if let Err(e) = addressing::EmailAddress::parse(&mailbox) {
        Err(format!("the mailbox {mailbox:?} is not an address: {e}"))
    } else {
        match kind {
            Err(e) => Err(e),
            Ok(kind) => {
                let new = NewOutbound {
                    name: name.clone(),
                    kind,
                    app,
                    mailbox,
                    send_from_alias_enabled: checked,
                };
                add_outbound(&state, &new).await
            }
        }
    };
    match result {
        Ok(cfg) => {
            let place = if state.options().store.is_some() {
                "stored in the fleet's database"
            } else {
                "added to the configuration file"
            };
            let note = format!(
                "<p class=\"box good\" id=\"outbound-created\">Outbound {} created and \
                 {place}: PING it to check its rights.</p>",
                esc(&name)
            );
            outbounds_page(&session, Ok(cfg), &note)
        }
        Err(e) => {
            let note = format!(
                "<p class=\"box bad\" id=\"create-error\">Not created: {}</p>",
                esc(&e)
            );
            let mut r = outbounds_page(&session, load(&state).await, &note);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
    }
}

/// The addresses an outbound must be able to send as besides its mailbox: the aliases of the
/// sources that notify through it, and its `send_as`.
fn addresses_of(cfg: &Config, o: &Outbound) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let aliases = cfg
        .sources
        .iter()
        .filter(|s| s.notify_through.as_ref().is_some_and(|n| n.name == o.name))
        .flat_map(|s| s.router.mailbox().aliases().iter().map(|a| a.to_string()));
    let send_as = o.capabilities.send_as.iter().map(|a| a.to_string());
    for a in aliases.chain(send_as) {
        if !a.eq_ignore_ascii_case(&o.mailbox) && !out.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
            out.push(a);
        }
    }
    out
}

/// The right to send as the mailbox and as each of [`addresses_of`], each checked by the
/// outbound's own probe ([`connect::outbound_checking`]): Graph and EWS send a message with that
/// From and no recipient, which the service refuses for the From or else for having no
/// recipient; SMTP goes as far as `MAIL FROM` and `RCPT TO`, never `DATA`. Nothing is sent.
async fn send_as_section(
    state: &ConsoleState,
    cfg: &Config,
    o: &Outbound,
    mailbox_ok: bool,
) -> String {
    let addresses = addresses_of(cfg, o);
    let mut rows = format!(
        "<tr class=\"send-as\" data-address=\"{m}\"><td>{m} (its mailbox)</td><td>{v}</td>\
         <td>the PING above</td></tr>",
        m = esc(&o.mailbox),
        v = if mailbox_ok {
            "<span class=\"online\">ALLOWED</span>"
        } else {
            "<span class=\"offline\">REFUSED</span>"
        }
    );
    let mut providers = providers(state).await;
    for a in &addresses {
        let built = match &mut providers {
            Ok(p) => connect::outbound_checking(p, o, a),
            Err(e) => Err(e.clone()),
        };
        let report = match built {
            Ok(out) => out.ping().await,
            Err(e) => PingReport::offline(e, connector::ConnectionLog::default()),
        };
        let (verdict, why) = if report.is_online() {
            let why = match o.service.kind() {
                // Only the envelope was checked; the From header is checked after DATA.
                Kind::Smtp => "MAIL FROM accepted (the From header is checked only when a \
                               message is sent)"
                    .to_owned(),
                Kind::Graph | Kind::Ews => String::new(),
            };
            ("<span class=\"online\">ALLOWED</span>", why)
        } else {
            (
                "<span class=\"offline\">REFUSED</span>",
                report.reason.unwrap_or_default(),
            )
        };
        rows.push_str(&format!(
            "<tr class=\"send-as\" data-address=\"{a}\"><td>{a}</td><td>{verdict}</td>\
             <td>{w}</td></tr>",
            a = esc(a),
            w = esc(&why),
        ));
    }
    format!(
        "<section class=\"box\" id=\"send-as\"><h3>May send as</h3><p><small>Checked: the \
         mailbox, each alias of the sources that notify through this outbound, and each \
         <code>send_as</code> address, without sending anything. A Graph or EWS outbound is \
         asked to send a message with that From and no recipient: the service checks the \
         sign-in, the mailbox and the right to send as the address, then refuses the message \
         for having no recipient. An SMTP outbound says <code>MAIL FROM</code> with the address \
         and <code>RCPT TO</code> the mailbox, then <code>RSET</code>, never <code>DATA</code>: \
         Exchange Online is reported to refuse an envelope sender the mailbox may not \
         send as there (550 5.7.60), but checks the From header only in <code>DATA</code>, so an SMTP \
         ALLOWED is the envelope's.</small></p><table><tr><th>Address</th><th>Send as</th>\
         <th>Detail</th></tr>{rows}</table></section>"
    )
}

/// `GET /console/outbounds`.
pub(super) async fn outbounds(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    match for_page(&state, &headers) {
        Ok(session) => outbounds_page(&session, load(&state).await, ""),
        Err(r) => r,
    }
}

/// `POST /console/outbounds/{name}/ping`: the outbound's ping report and connection log.
pub(super) async fn ping_outbound(
    State(state): State<ConsoleState>,
    UrlPath(name): UrlPath<String>,
    Posted { session, .. }: Posted,
) -> Response {
    let cfg = load(&state).await;
    let section = match &cfg {
        Err(_) => String::new(),
        Ok(cfg) => match cfg.outbound(&name) {
            None => format!(
                "<p class=\"box bad\">There is no outbound called {} in the configuration.</p>",
                esc(&name)
            ),
            Some(o) => {
                let built = providers(&state)
                    .await
                    .and_then(|mut p| connect::outbound(&mut p, o));
                let report = match built {
                    Ok(out) => out.ping().await,
                    Err(e) => PingReport::offline(e, connector::ConnectionLog::default()),
                };
                let send_as = send_as_section(&state, cfg, o, report.is_online()).await;
                report_html(&o.name, &report, &send_as)
            }
        },
    };
    outbounds_page(&session, cfg, &section)
}

/// `GET /console/routing?source=NAME&address=ADDR`: the rules of each source, and where
/// `address` would go and be answered from.
pub(super) async fn routing(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match for_page(&state, &headers) {
        Ok(session) => routing_page(&state, &session, &q, "").await,
        Err(r) => r,
    }
}

/// The checks of the doctor's that are about a source's addresses (what the Routing page warns
/// about).
const ADDRESS_CHECKS: [Check; 3] = [
    Check::MailboxNotGroup,
    Check::PlusAddressing,
    Check::AliasReceives,
];

/// How long "Check addresses" waits for the doctor's probes to arrive.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// `POST /console/routing/{name}/check`: the doctor's address checks of one source (the pickup
/// address is a mailbox, plus addressing delivers, each alias receives), with their fixes.
pub(super) async fn check_addresses(
    State(state): State<ConsoleState>,
    UrlPath(name): UrlPath<String>,
    Posted { session, .. }: Posted,
) -> Response {
    let mut q = HashMap::new();
    q.insert("source".to_owned(), name.clone());
    let section = match load(&state).await {
        Err(_) => String::new(),
        Ok(cfg) if cfg.source(&name).is_none() => format!(
            "<p class=\"box bad\">There is no source called {} in the configuration.</p>",
            esc(&name)
        ),
        Ok(cfg) => {
            let options = doctor::Options::default()
                .source(Some(name.clone()))
                .probe_wait(PROBE_WAIT);
            match doctor::run_doctor(&cfg, &options).await {
                Err(e) => format!("<p class=\"box bad\" id=\"check-error\">{}</p>", esc(&e)),
                Ok(report) => address_findings(&name, &report),
            }
        }
    };
    routing_page(&state, &session, &q, &section).await
}

/// The address findings of `source` in `report`, as a section of the Routing page.
fn address_findings(source: &str, report: &doctor::Report) -> String {
    let target = format!("source {source}");
    let ours: Vec<&doctor::Finding> = report
        .findings
        .iter()
        .filter(|f| f.target == target)
        .collect();
    let mut shown: Vec<&doctor::Finding> = ours
        .iter()
        .copied()
        .filter(|f| ADDRESS_CHECKS.contains(&f.check))
        .collect();
    if shown.is_empty() {
        // The addresses could not be checked: say what stopped the doctor (sign-in, consent...).
        shown = ours
            .into_iter()
            .filter(|f| f.status != doctor::Status::Pass)
            .collect();
    }
    let mut rows = String::new();
    let mut failed = false;
    for f in shown {
        let class = match f.status {
            doctor::Status::Pass => "online",
            _ => {
                failed = true;
                "offline"
            }
        };
        let fix = f
            .fix
            .as_deref()
            .map(|x| format!("<br><small class=\"fix\">fix: {}</small>", esc(x)))
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr class=\"finding\" data-check=\"{c}\"><td>{c}</td><td>{a}</td>\
             <td class=\"{class}\">{s}</td><td>{d}{fix}</td></tr>",
            c = f.check.name(),
            a = esc(f.about.as_deref().unwrap_or("—")),
            s = f.status.as_str().to_ascii_uppercase(),
            d = esc(&f.detail),
        ));
    }
    if rows.is_empty() {
        rows.push_str(
            "<tr><td colspan=\"4\">No address check could run (see m365mail doctor).</td></tr>",
        );
    }
    format!(
        "<section class=\"box {b}\" id=\"address-check\"><h2>Addresses of {n}: {v}</h2>\
         <p><small>What <code>m365mail doctor --source {n}</code> checks of the addresses: the \
         pickup address is a mailbox (not a group), plus addressing delivers and each alias \
         receives (a recognisable probe message to each, deleted afterwards; waited for up to \
         {w} s).</small></p><table><tr><th>Check</th><th>Address</th><th>Result</th>\
         <th>Detail</th></tr>{rows}</table></section>",
        b = if failed { "bad" } else { "good" },
        n = esc(source),
        v = if failed {
            "<span class=\"offline\" id=\"address-status\">WARNINGS</span>"
        } else {
            "<span class=\"online\" id=\"address-status\">PASS</span>"
        },
        w = PROBE_WAIT.as_secs(),
    )
}

/// The Routing page with `extra` above the rule tables.
async fn routing_page(
    state: &ConsoleState,
    session: &Session,
    q: &HashMap<String, String>,
    extra: &str,
) -> Response {
    let cfg = match load(state).await {
        Ok(c) => c,
        Err(e) => {
            return page(
                StatusCode::OK,
                "Routing",
                Some(&session.csrf),
                &format!(
                    "<p class=\"box bad\" id=\"config-error\">The configuration cannot be read: {}</p>",
                    esc(&e)
                ),
            );
        }
    };
    // The rules as written (their order is the order they are tried in), the database's too.
    let doc = written(state).await;
    let raw_sources = doc
        .get("sources")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let address = q.get("address").map(|a| a.trim().to_owned());
    let chosen = q.get("source").cloned();
    let mut body = extra.to_owned();
    let options: String = cfg
        .sources
        .iter()
        .map(|s| {
            let selected = if chosen.as_deref() == Some(s.name.as_str()) {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{n}\"{selected}>{n}</option>",
                n = esc(&s.name)
            )
        })
        .collect();
    body.push_str(&format!(
        "<form method=\"get\" action=\"/console/routing\" class=\"box\"><label>Source \
         <select name=\"source\" id=\"route-source\">{options}</select></label><label>Address \
         <input name=\"address\" id=\"route-address\" size=\"40\" value=\"{}\" \
         placeholder=\"support+printer@contoso.com\"></label><button class=\"primary\" \
         id=\"route-test\">Test</button></form>",
        esc(address.as_deref().unwrap_or_default())
    ));
    if let Some(address) = address.filter(|a| !a.is_empty()) {
        let s = match &chosen {
            Some(n) => cfg.source(n),
            None => cfg.sources.first(),
        };
        match s {
            None => body.push_str("<p class=\"box bad\">No such source.</p>"),
            Some(s) => {
                let clean: String = address.chars().filter(|c| !c.is_control()).collect();
                let mime = format!(
                    "From: customer@example.net\r\nTo: {clean}\r\nSubject: (route check)\r\n\r\n"
                );
                let route = s.router.route_mime(mime.as_bytes());
                let caps = s
                    .notify_through
                    .as_ref()
                    .map(|o| o.capabilities.clone())
                    .unwrap_or_default();
                let choice = s.router.sender_policy().choose_for_route(&route, &caps);
                body.push_str(&format!(
                    "<section class=\"box good\" id=\"route-result\"><h2>{a} at source {n}</h2>\
                     <p>project: <strong id=\"route-project\">{p}</strong></p><p>route: {r}</p>\
                     <p>answer: {c}</p></section>",
                    a = esc(&clean),
                    n = esc(&s.name),
                    p = esc(route
                        .project
                        .as_ref()
                        .map(|p| p.as_str())
                        .unwrap_or("(none)")),
                    r = esc(&route.explain()),
                    c = esc(&choice.explain()),
                ));
            }
        }
    }
    for s in &cfg.sources {
        let raw = raw_sources
            .iter()
            .find(|r| r.get("name").and_then(toml::Value::as_str) == Some(s.name.as_str()));
        let routing = raw.and_then(|r| r.get("routing"));
        let mailbox = routing.and_then(|r| r.get("mailbox"));
        let aliases: Vec<String> = mailbox
            .and_then(|m| m.get("aliases"))
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(toml::Value::as_str).map(esc).collect())
            .unwrap_or_default();
        let check = post_form(
            &session.csrf,
            &format!("/console/routing/{}/check", encode(&s.name)),
            "",
            &format!(
                "<button id=\"check-{}\">Check addresses</button>",
                esc(&s.name)
            ),
        );
        let mut rows = String::new();
        let rules = routing
            .and_then(|r| r.get("rules"))
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, rule) in rules.iter().enumerate() {
            let Some(t) = rule.as_table() else { continue };
            let get = |k: &str| t.get(k).and_then(toml::Value::as_str).unwrap_or_default();
            let condition: Vec<String> = t
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "match" | "project"))
                .map(|(k, v)| format!("{} = {}", esc(k), esc(&v.to_string())))
                .collect();
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                esc(get("match")),
                condition.join(", "),
                esc(get("project"))
            ));
        }
        body.push_str(&format!(
            "<h2 id=\"routing-{n}\">{n}</h2><p>Mailbox <strong>{m}</strong>{a}</p>\
             {check}<table><tr><th>#</th><th>Match</th><th>Condition</th><th>Project</th></tr>{rows}</table>",
            n = esc(&s.name),
            m = esc(&s.mailbox),
            a = if aliases.is_empty() {
                String::new()
            } else {
                format!(", aliases {}", aliases.join(", "))
            },
        ));
    }
    page(StatusCode::OK, "Routing", Some(&session.csrf), &body)
}
