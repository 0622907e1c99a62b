//! The Outbounds page (each outbound with PING) and the Routing page (each source's addresses
//! and rules, and a box to test an address: what `m365mail route --address` prints).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use connector::PingReport;
use http::{HeaderMap, StatusCode};

use super::ConsoleState;
use super::html::{esc, page};
use super::security::{Session, for_page, for_post, post_form};
use super::sources::{encode, load, providers, report_html};
use crate::config::{Config, Kind};
use crate::connect;

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Graph => "Graph",
        Kind::Ews => "EWS",
        Kind::Smtp => "SMTP",
    }
}

fn outbounds_page(session: &Session, cfg: Result<Config, String>, extra: &str) -> Response {
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
    page(
        StatusCode::OK,
        "Outbounds",
        Some(&session.csrf),
        &format!("{extra}{body}"),
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, _) = match for_post(&state, &headers, &body) {
        Ok(s) => s,
        Err(r) => return r,
    };
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
                report_html(&o.name, &report, "")
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
    let session = match for_page(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let cfg = match load(&state).await {
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
    // The rules as written (their order is the order they are tried in).
    let doc: toml::Table = std::fs::read_to_string(&state.options().config)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let raw_sources = doc
        .get("sources")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let address = q.get("address").map(|a| a.trim().to_owned());
    let chosen = q.get("source").cloned();
    let mut body = String::new();
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
             <table><tr><th>#</th><th>Match</th><th>Condition</th><th>Project</th></tr>{rows}</table>",
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
