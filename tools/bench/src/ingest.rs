//! Our side of the ingest job, with the same command line and result file as the peer scripts
//! (`scripts/bench/*_ingest.py`), so the driver measures every client the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use addressing::{InboundHeaders, MailboxConfig, PickupMailbox, Router, RouterOptions, RuleConfig};
use connector::{Acknowledgement, MessageSource};
use serde::{Deserialize, Serialize};

use crate::mail::Routes;
use crate::report::Protocol;

/// Graph's resource for app-only tokens.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Exchange Online's resource for EWS app-only tokens.
pub const EWS_SCOPE: &str = "https://outlook.office365.com/.default";

/// The command line of an ingest run (the peer contract's, plus the protocol and page size).
#[derive(Clone, Debug)]
pub struct IngestArgs {
    /// Graph or EWS.
    pub protocol: Protocol,
    /// The sandbox's base URL.
    pub base_url: String,
    /// Tenant id.
    pub tenant: String,
    /// App (client) id.
    pub client_id: String,
    /// Client secret (the sandbox demo app's).
    pub client_secret: msauth::ClientSecret,
    /// The pickup mailbox.
    pub mailbox: String,
    /// The routes file.
    pub routes: PathBuf,
    /// A CA certificate (PEM) to trust, for a sandbox with `--tls`.
    pub ca_bundle: Option<PathBuf>,
    /// Messages per fetch.
    pub page: usize,
    /// Graph: MIME downloads and acknowledgements as single requests, this many at once,
    /// instead of `$batch` (`None`). EWS: requests of a fetch or an acknowledgement in flight
    /// at once (`None`: ews-mail's default).
    pub in_flight: Option<usize>,
    /// EWS: items per request, listed in FindItem pages of this many in parallel (`None`: one
    /// FindItem a fetch, 100 items per GetItem and UpdateItem).
    pub item_chunk: Option<usize>,
}

/// The result file of the peer contract.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// `<name> <version>`.
    pub client: String,
    /// Messages fetched with their MIME.
    pub fetched: u64,
    /// Messages marked read.
    pub acknowledged: u64,
    /// Project to count.
    pub routed: BTreeMap<String, u64>,
    /// What went wrong (at most 50 kept).
    pub errors: Vec<String>,
    /// Wall seconds of the job.
    pub seconds: f64,
}

impl IngestOutcome {
    fn error(&mut self, e: impl std::fmt::Display) {
        if self.errors.len() < 50 {
            self.errors.push(e.to_string());
        }
    }
}

/// A router equivalent to the routes file: each address is an alias of the mailbox and routes
/// (with any sub-address) to its project; everything else to the default.
pub fn router_for(mailbox: &str, routes: &Routes) -> Result<Router, String> {
    let mut cfg = MailboxConfig::new(mailbox);
    let mut rules = Vec::new();
    for (address, project) in &routes.addresses {
        if !address.eq_ignore_ascii_case(mailbox) {
            cfg = cfg.alias(address.clone());
        }
        rules.push(
            serde_json::from_value::<RuleConfig>(serde_json::json!({
                "match": "alias", "alias": address, "project": project
            }))
            .map_err(|e| format!("routes: {address}: {e}"))?,
        );
    }
    rules.push(
        serde_json::from_value::<RuleConfig>(serde_json::json!({
            "match": "default", "project": routes.default
        }))
        .map_err(|e| format!("routes: default: {e}"))?,
    );
    let mb = PickupMailbox::from_config(&cfg).map_err(|e| format!("mailbox: {e}"))?;
    Router::new(mb, &rules, RouterOptions::default()).map_err(|e| format!("routes: {e}"))
}

/// The project of one raw message, or why it has none.
pub fn route_one(router: &Router, mime: &[u8]) -> Result<String, String> {
    let headers = InboundHeaders::from_mime(mime).map_err(|e| format!("headers: {e:?}"))?;
    router
        .route(&headers)
        .project
        .map(|p| p.as_str().to_owned())
        .ok_or_else(|| "no project".to_owned())
}

/// A reqwest client trusting `ca` (PEM) in addition to the system roots, never following
/// redirects.
pub fn http_client(ca: Option<&PathBuf>) -> Result<reqwest::Client, String> {
    let b = httpcore::HttpClientBuilder::new(concat!("m365-bench/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(120));
    let Some(path) = ca else {
        return b.build().map_err(|e| format!("HTTP client: {e}"));
    };
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    b.extra_roots_pem(&pem)
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// An app-only token provider for `scope` against the sandbox (or any Microsoft-layout
/// authority at `base_url`).
pub fn token_provider(
    base_url: &str,
    tenant: &str,
    client_id: &str,
    secret: msauth::ClientSecret,
    scope: &str,
    http: reqwest::Client,
) -> Result<msauth::TokenProvider, String> {
    let tenant = msauth::Tenant::parse(tenant).map_err(|e| format!("tenant: {e}"))?;
    let authority =
        msauth::Authority::microsoft_layout(base_url, tenant).map_err(|e| e.to_string())?;
    msauth::TokenProvider::builder(authority, client_id)
        .credential(msauth::ClientCredential::Secret(secret))
        .scopes([scope])
        .http(Arc::new(msauth::ReqwestClient::from_client(http)))
        .build()
        .map_err(|e| e.to_string())
}

/// Builds the source the arguments ask for.
pub fn source(args: &IngestArgs) -> Result<Arc<dyn MessageSource>, String> {
    let http = http_client(args.ca_bundle.as_ref())?;
    let base = args.base_url.trim_end_matches('/');
    let scope = match args.protocol {
        Protocol::Graph => GRAPH_SCOPE,
        Protocol::Ews => EWS_SCOPE,
    };
    let p = token_provider(
        base,
        &args.tenant,
        &args.client_id,
        args.client_secret.clone(),
        scope,
        http.clone(),
    )?;
    match args.protocol {
        Protocol::Graph => {
            let ep = graph_mail::Endpoint::custom(
                &format!("{base}/v1.0"),
                graph_mail::Mailbox::user(&args.mailbox),
            )
            .map_err(|e| e.to_string())?;
            let client = graph_mail::GraphClient::builder(ep, Arc::new(p))
                .http_client(http)
                .build()
                .map_err(|e| e.to_string())?;
            let mut cfg = graph_mail::SourceConfig::default().max_batch(args.page);
            if let Some(n) = args.in_flight {
                cfg = cfg.use_batch(false).in_flight(n);
            }
            Ok(Arc::new(graph_mail::GraphSource::new(client, cfg)))
        }
        Protocol::Ews => {
            let endpoint = url::Url::parse(&format!("{base}/EWS/Exchange.asmx"))
                .map_err(|e| format!("EWS url: {e}"))?;
            let cfg = ews_mail::EwsConfig::new(
                endpoint,
                ews_mail::Credentials::Bearer(Arc::new(p)),
                ews_mail::MailboxAccess::Impersonate(args.mailbox.clone()),
            );
            // One FindItem lists a whole page (up to 1,000 ids); MIME and acknowledgements go
            // 100 items per GetItem/UpdateItem: the protocol minimum of round trips.
            // With `item_chunk`, smaller requests, more of them at once (see
            // `EwsSource::with_item_chunk`).
            let mut src = ews_mail::EwsSource::new(
                ews_mail::EwsClient::with_http(cfg, http).map_err(|e| e.to_string())?,
            )
            .with_max_batch(args.page);
            if let Some(n) = args.in_flight {
                src = src.with_fetch_concurrency(n);
            }
            if let Some(n) = args.item_chunk {
                src = src.with_item_chunk(n);
            }
            Ok(Arc::new(src))
        }
    }
}

/// Runs the job: ping, then fetch (with MIME), parse, route and mark read until no unread
/// message is left. Transport and service errors are recorded in the outcome, not returned.
pub async fn ingest(args: &IngestArgs) -> Result<IngestOutcome, String> {
    let routes: Routes = serde_json::from_slice(
        &std::fs::read(&args.routes).map_err(|e| format!("{}: {e}", args.routes.display()))?,
    )
    .map_err(|e| format!("{}: {e}", args.routes.display()))?;
    let router = router_for(&args.mailbox, &routes)?;
    let src = source(args)?;
    let name = match args.protocol {
        Protocol::Graph => graph_mail::CRATE_NAME,
        Protocol::Ews => ews_mail::CRATE_NAME,
    };
    let mut out = IngestOutcome {
        client: format!("{name} {}", env!("CARGO_PKG_VERSION")),
        ..IngestOutcome::default()
    };
    let started = Instant::now();
    let ping = src.ping().await;
    if !ping.is_online() {
        out.error(format!(
            "ping: {}",
            ping.reason.unwrap_or_else(|| "offline".into())
        ));
        out.seconds = started.elapsed().as_secs_f64();
        return Ok(out);
    }
    let parser = mail_parser::MessageParser::default();
    // A pause the mailbox asked for (throttled, with a wait: a spent budget) is waited for
    // before anything more is asked of it, and acknowledgements it refused meanwhile are made
    // after it, so no message is downloaded twice.
    let mut pause: Option<Duration> = None;
    let mut paused = Duration::ZERO;
    let mut owed: Vec<(connector::MessageId, Acknowledgement)> = Vec::new();
    loop {
        if let Some(wait) = pause.take() {
            if paused + wait > MAX_PAUSE {
                out.error(format!(
                    "the mailbox asked for {} s more of pauses than the job waits; stopping",
                    wait.as_secs()
                ));
                break;
            }
            tokio::time::sleep(wait).await;
            paused += wait;
        }
        if !owed.is_empty() {
            let acks = std::mem::take(&mut owed);
            acknowledge(&*src, &acks, &mut out, &mut owed, &mut pause).await;
            continue;
        }
        let batch = match src.fetch(None, args.page).await {
            Ok(b) => b,
            Err(e) => {
                if let Some(wait) = e.throttled_for() {
                    pause = Some(wait);
                    continue;
                }
                out.error(format!("fetch: {e}"));
                break;
            }
        };
        for (id, e) in &batch.failed {
            match e.throttled_for() {
                Some(wait) => pause = Some(pause.map_or(wait, |p| p.max(wait))),
                None => out.error(format!("fetch {}: {e}", id.as_str())),
            }
        }
        if batch.messages.is_empty() {
            if pause.is_some() {
                continue;
            }
            break;
        }
        let mut acks = Vec::with_capacity(batch.messages.len());
        for m in &batch.messages {
            out.fetched += 1;
            // Parse the whole message as the handler does; a message mail-parser cannot read
            // is still routed by its headers and acknowledged.
            match parser.parse(&m.mime) {
                Some(p) => {
                    std::hint::black_box(p.body_text(0));
                }
                None => out.error(format!("parse {}: not a message", m.id.as_str())),
            }
            let project = route_one(&router, &m.mime).unwrap_or_else(|e| {
                out.error(format!("route {}: {e}", m.id.as_str()));
                routes.default.clone()
            });
            *out.routed.entry(project).or_insert(0) += 1;
            acks.push((m.id.clone(), Acknowledgement::MarkRead));
        }
        let before = out.acknowledged;
        acknowledge(&*src, &acks, &mut out, &mut owed, &mut pause).await;
        if out.acknowledged == before && owed.is_empty() {
            out.error("no message of the last page could be acknowledged; stopping");
            break;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The most the job waits for pauses the mailbox asks for, in all.
const MAX_PAUSE: Duration = Duration::from_secs(3_600);

/// Acknowledges `acks`: each refusal for throttling is owed (made after the pause, which
/// `pause` then holds); every other failure is the job's error.
async fn acknowledge(
    src: &dyn MessageSource,
    acks: &[(connector::MessageId, Acknowledgement)],
    out: &mut IngestOutcome,
    owed: &mut Vec<(connector::MessageId, Acknowledgement)>,
    pause: &mut Option<Duration>,
) {
    for (r, (id, ack)) in src.acknowledge_many(acks).await.into_iter().zip(acks) {
        match r {
            Ok(()) => out.acknowledged += 1,
            Err(e) => match e.throttled_for() {
                Some(wait) => {
                    *pause = Some(pause.map_or(wait, |p| p.max(wait)));
                    owed.push((id.clone(), ack.clone()));
                }
                None => out.error(format!("acknowledge {}: {e}", id.as_str())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{MixPlan, expected_routes, message};

    #[test]
    fn our_router_agrees_with_the_routes_contract() {
        let routes = Routes::bench();
        let router = router_for(crate::mail::MAILBOX, &routes).unwrap();
        let mut got = BTreeMap::new();
        for i in 0..200 {
            let m = message(
                3,
                i,
                MixPlan {
                    large_every: 1_000,
                    large_cap: 0,
                },
            );
            let p = route_one(&router, m.mime.as_bytes()).unwrap();
            assert_eq!(p, routes.project_of(&m.catch), "message {i} to {}", m.catch);
            *got.entry(p).or_insert(0u64) += 1;
        }
        assert_eq!(got, expected_routes(200, &routes));
    }
}
