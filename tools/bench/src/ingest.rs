//! Our side of the ingest job, with the same command line and result file as the peer scripts
//! (`scripts/bench/*_ingest.py`), so the driver measures every client the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use addressing::{InboundHeaders, MailboxConfig, PickupMailbox, Router, RouterOptions, RuleConfig};
use connector::{Acknowledgement, Batch, MessageSource};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
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
    let out = IngestOutcome {
        client: format!("{name} {}", env!("CARGO_PKG_VERSION")),
        ..IngestOutcome::default()
    };
    Ok(drain(src, &router, &routes, args.page, out).await)
}

/// The job's loop on `src`: ping, then fetch pages of `page` until none is left, recording
/// into `out`.
async fn drain(
    src: Arc<dyn MessageSource>,
    router: &Router,
    routes: &Routes,
    page: usize,
    mut out: IngestOutcome,
) -> IngestOutcome {
    let started = Instant::now();
    let ping = src.ping().await;
    if !ping.is_online() {
        out.error(format!(
            "ping: {}",
            ping.reason.unwrap_or_else(|| "offline".into())
        ));
        out.seconds = started.elapsed().as_secs_f64();
        return out;
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
        // The page comes in parts as its downloads answer (`fetch_in_parts`): each part is
        // parsed, routed and acknowledged while the rest are still downloading, as the
        // handler does, so the acknowledgements do not wait for the page's slowest download.
        let (tx, mut parts) = tokio::sync::mpsc::unbounded_channel::<Batch>();
        let fetching = {
            let src = Arc::clone(&src);
            async move {
                let hand_over = move |part: Batch| {
                    // The receiver lives until this future has ended.
                    let _ = tx.send(part);
                };
                src.fetch_in_parts(None, page, &hand_over).await
            }
        };
        let (before, mut seen) = (out.acknowledged, 0usize);
        let handling = async {
            let mut acking = FuturesUnordered::new();
            let mut open = true;
            loop {
                tokio::select! {
                    part = parts.recv(), if open => {
                        let Some(part) = part else {
                            open = false;
                            continue;
                        };
                        seen += part.messages.len();
                        let acks = handle_part(&part, &parser, router, routes, &mut out, &mut pause);
                        if !acks.is_empty() {
                            let src = Arc::clone(&src);
                            acking.push(async move {
                                let results = src.acknowledge_many(&acks).await;
                                (acks, results)
                            });
                        }
                    }
                    Some((acks, results)) = acking.next(), if !acking.is_empty() => {
                        record_acks(&acks, results, &mut out, &mut owed, &mut pause);
                    }
                    else => break,
                }
            }
        };
        let (fetched, ()) = tokio::join!(fetching, handling);
        if let Err(e) = fetched {
            if let Some(wait) = e.throttled_for() {
                pause = Some(pause.map_or(wait, |p| p.max(wait)));
                continue;
            }
            out.error(format!("fetch: {e}"));
            break;
        }
        if seen == 0 {
            if pause.is_some() {
                continue;
            }
            break;
        }
        if out.acknowledged == before && owed.is_empty() {
            out.error("no message of the last page could be acknowledged; stopping");
            break;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    out
}

/// The most the job waits for pauses the mailbox asks for, in all.
const MAX_PAUSE: Duration = Duration::from_secs(3_600);

/// Parses and routes the messages of one part as the handler does, records its failed
/// downloads (a throttled one pauses the job), and returns its acknowledgements.
fn handle_part(
    part: &Batch,
    parser: &mail_parser::MessageParser,
    router: &Router,
    routes: &Routes,
    out: &mut IngestOutcome,
    pause: &mut Option<Duration>,
) -> Vec<(connector::MessageId, Acknowledgement)> {
    for (id, e) in &part.failed {
        match e.throttled_for() {
            Some(wait) => *pause = Some(pause.map_or(wait, |p| p.max(wait))),
            None => out.error(format!("fetch {}: {e}", id.as_str())),
        }
    }
    let mut acks = Vec::with_capacity(part.messages.len());
    for m in &part.messages {
        out.fetched += 1;
        // Parse the whole message as the handler does; a message mail-parser cannot read
        // is still routed by its headers and acknowledged.
        match parser.parse(&m.mime) {
            Some(p) => {
                std::hint::black_box(p.body_text(0));
            }
            None => out.error(format!("parse {}: not a message", m.id.as_str())),
        }
        let project = route_one(router, &m.mime).unwrap_or_else(|e| {
            out.error(format!("route {}: {e}", m.id.as_str()));
            routes.default.clone()
        });
        *out.routed.entry(project).or_insert(0) += 1;
        acks.push((m.id.clone(), Acknowledgement::MarkRead));
    }
    acks
}

/// Acknowledges `acks` and records the results.
async fn acknowledge(
    src: &dyn MessageSource,
    acks: &[(connector::MessageId, Acknowledgement)],
    out: &mut IngestOutcome,
    owed: &mut Vec<(connector::MessageId, Acknowledgement)>,
    pause: &mut Option<Duration>,
) {
    let results = src.acknowledge_many(acks).await;
    record_acks(acks, results, out, owed, pause);
}

/// Records the results of acknowledging `acks`: each refusal for throttling is owed (made
/// after the pause, which `pause` then holds); every other failure is the job's error.
fn record_acks(
    acks: &[(connector::MessageId, Acknowledgement)],
    results: Vec<Result<(), connector::Error>>,
    out: &mut IngestOutcome,
    owed: &mut Vec<(connector::MessageId, Acknowledgement)>,
    pause: &mut Option<Duration>,
) {
    for (r, (id, ack)) in results.into_iter().zip(acks) {
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

    use connector::SourceCapabilities;
    use connector::{ConnectionLog, Cursor, Error, MessageId, PingReport, RawMessage};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source whose only page comes in two parts, the second handed over only once a
    /// message of the first is acknowledged: a job that acknowledges after the whole page
    /// waits for it forever.
    #[derive(Default)]
    struct TwoParts {
        fetches: AtomicUsize,
        first_acked: tokio::sync::Notify,
        acked: Mutex<Vec<String>>,
    }

    fn part(ids: &[&str]) -> Batch {
        let messages = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let m = message(3, i, MixPlan::default());
                RawMessage::new(MessageId::new(*id), m.mime.into_bytes())
            })
            .collect();
        Batch::new(messages, None)
    }

    #[async_trait::async_trait]
    impl MessageSource for TwoParts {
        fn name(&self) -> String {
            "two-parts".into()
        }
        fn capabilities(&self) -> SourceCapabilities {
            SourceCapabilities::unread_polling(100)
        }
        async fn ping(&self) -> PingReport {
            PingReport::online(None, ConnectionLog::default())
        }
        async fn count_waiting(&self) -> Result<Option<u64>, Error> {
            Ok(None)
        }
        async fn fetch(&self, _: Option<&Cursor>, _: usize) -> Result<Batch, Error> {
            Ok(Batch::new(Vec::new(), None))
        }
        async fn fetch_in_parts(
            &self,
            _: Option<&Cursor>,
            _: usize,
            hand_over: &(dyn Fn(Batch) + Send + Sync),
        ) -> Result<Option<Cursor>, Error> {
            if self.fetches.fetch_add(1, Ordering::SeqCst) > 0 {
                return Ok(None);
            }
            hand_over(part(&["a1", "a2"]));
            self.first_acked.notified().await;
            hand_over(part(&["b1"]));
            Ok(None)
        }
        async fn acknowledge(&self, id: &MessageId, _: &Acknowledgement) -> Result<(), Error> {
            self.acked.lock().unwrap().push(id.as_str().to_owned());
            if id.as_str().starts_with('a') {
                self.first_acked.notify_one();
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_part_is_acknowledged_while_the_rest_of_its_page_downloads() {
        let src = Arc::new(TwoParts::default());
        let routes = Routes::bench();
        let router = router_for(crate::mail::MAILBOX, &routes).unwrap();
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            drain(src.clone(), &router, &routes, 10, IngestOutcome::default()),
        )
        .await
        .expect("the first part was not acknowledged before the page's last part came");
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!((out.fetched, out.acknowledged), (3, 3));
        assert_eq!(out.routed.values().sum::<u64>(), 3);
        let mut acked = src.acked.lock().unwrap().clone();
        acked.sort();
        assert_eq!(acked, ["a1", "a2", "b1"]);
        // The second fetch found nothing and ended the job.
        assert_eq!(src.fetches.load(Ordering::SeqCst), 2);
    }

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
