//! Metrics and health of `m365mail worker`: a Prometheus `/metrics` endpoint, `/healthz` and
//! `/readyz`, served on loopback by default (`--metrics ADDR`, `--metrics off`).
//!
//! # The endpoints
//!
//! | path | answers |
//! |---|---|
//! | `/metrics` | the metrics below, in Prometheus's text format (0.0.4), or OpenMetrics when the scraper's `Accept` asks for `application/openmetrics-text` |
//! | `/healthz` | `200 ok`: the process is alive and its runtime answers (a liveness probe: restart the worker when it fails) |
//! | `/readyz` | `200` when the worker is in its fleet: its last heartbeat to the store succeeded, within the lease time; else `503` with the reason in the body (no heartbeat yet, the last one failed and why, the last success too long ago, or the worker has left the fleet) |
//!
//! Nothing on these pages is secret (source names, counts, timings), but they tell who reads
//! which mailboxes how busily, so the listener is bound to loopback unless the operator says
//! `--metrics-allow-non-loopback` (as `m365mail sandbox --allow-non-loopback`).
//!
//! # The metrics
//!
//! Per source (label `source`, the source's name in the configuration), from the pipeline's
//! [`Progress`] events ([`Pipeline::on_progress`]):
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `m365mail_messages_handled_total` | counter | messages handed to the handler, recorded and acknowledged (or owed) |
//! | `m365mail_messages_recovered_total` | counter | messages handled before a crash, acknowledged now without a second hand-over |
//! | `m365mail_messages_parked_total` | counter | poison messages parked (moved aside with the reason) |
//! | `m365mail_messages_failed_total` | counter | hand-overs the handler failed; retried on a later pass |
//! | `m365mail_message_errors_total` | counter | messages left waiting because the source or the ledger failed |
//! | `m365mail_source_offline` | gauge | 1 while the source is OFFLINE (its ping failed or its sign-in was refused), 0 once a pass starts; `sum()` counts the OFFLINE sources |
//! | `m365mail_source_waiting_messages` | gauge | messages waiting at the source's last ping (absent when the source cannot tell) |
//! | `m365mail_source_oldest_waiting_age_seconds` | gauge | how long the oldest message waiting had waited when the last pass listed the mailbox (from [`Progress::OldestWaiting`]; absent when nothing was waiting or the source does not say) |
//! | `m365mail_source_last_pass_age_seconds` | gauge | seconds since the source's last pass that finished ONLINE, computed when scraped: it grows while a source is OFFLINE or stuck |
//! | `m365mail_acknowledgements_owed` | gauge | acknowledgements the ledger owes the source (handled or parked, the source not yet told), as of the last pass's check |
//!
//! The per-source gauges cover the sources this worker serves: when it hands a source's lease
//! back (or loses it) their series go, and the worker that takes the source over reports them.
//! The counters count what this process did since it started.
//!
//! Acknowledgement debt costs no query of its own: at the end of every pass the pipeline reads
//! the ledger's [`LedgerStore::unacknowledged`] for the source (to make those acknowledgements
//! again), and [`TimedLedger`] keeps the count it returned. So the gauge is as fresh as the
//! last pass, which is what an alert on "acknowledgements owed for a long time" needs.
//!
//! Of the whole worker:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `m365mail_leases_held` | gauge | sources whose lease this worker holds |
//! | `m365mail_heartbeat_age_seconds` | gauge | seconds since the last successful heartbeat (absent before the first) |
//! | `m365mail_retry_waits_total{service,cause,basis}` | counter | waits before retrying a Graph or EWS request: `cause` `throttled` (429, EWS `ErrorServerBusy`) or `transient` (5xx, timeouts); `basis` `retry_after` when the service said how long (`Retry-After`, `BackOffMilliseconds`), `backoff` when the client chose |
//! | `m365mail_retry_wait_seconds{service,cause,basis}` | histogram | how long those waits were; `_sum{basis="retry_after"}` is the `Retry-After` seconds waited |
//! | `m365mail_token_requests_total{grant,outcome}` | counter | requests to the identity platform's token endpoint (`grant` `client_credentials`, `refresh_token`, `authorization_code`; `outcome` `ok` or `error`): one per app and token lifetime when all is well |
//! | `m365mail_store_operation_seconds{store,operation}` | histogram | latency of each PostgreSQL operation of the ledger (`get`, `append`, `unacknowledged`, `expire`) and the leases (`heartbeat`, `acquire`, `renew`, `release`, `leave`, `holders`) |
//! | `m365mail_store_errors_total{store,operation}` | counter | those operations that failed |
//!
//! The retry and token counters come from two process-wide hooks, installed by
//! [`Metrics::install_process_hooks`]: `connector::retry::set_wait_observer` (the Graph and EWS
//! executors call `connector::retry::note_wait` before each sleep between attempts) and
//! `msauth::set_token_observer` (`msauth::AuthClient::request_token` reports each request).
//! The store latency comes from [`TimedLedger`] and [`TimedLeases`], thin wrappers around the
//! store's [`LedgerStore`] and [`LeaseStore`], so the `fleet` crate knows nothing of metrics.
//!
//! # An example scrape
//!
//! ```text
//! $ curl -s 127.0.0.1:9464/metrics | grep -v '^#'
//! m365mail_messages_handled_total{source="helpdesk"} 1200
//! m365mail_messages_parked_total{source="helpdesk"} 2
//! m365mail_retry_waits_total{service="graph",cause="throttled",basis="retry_after"} 3
//! m365mail_retry_wait_seconds_sum{service="graph",cause="throttled",basis="retry_after"} 21.0
//! m365mail_token_requests_total{grant="client_credentials",outcome="ok"} 1
//! m365mail_store_operation_seconds_count{store="ledger",operation="append"} 24
//! m365mail_source_offline{source="helpdesk"} 0
//! m365mail_source_waiting_messages{source="helpdesk"} 0
//! m365mail_source_oldest_waiting_age_seconds{source="helpdesk"} 12.5
//! m365mail_source_last_pass_age_seconds{source="helpdesk"} 4.2
//! m365mail_acknowledgements_owed{source="helpdesk"} 0
//! m365mail_leases_held 1
//! m365mail_heartbeat_age_seconds 3.1
//! $ curl -si 127.0.0.1:9464/readyz | head -1
//! HTTP/1.1 200 OK
//! ```
//!
//! Alerts that follow: `sum(m365mail_source_offline) > 0` for 10 minutes;
//! `max(m365mail_source_last_pass_age_seconds) > 600`; `m365mail_acknowledgements_owed > 0`
//! for an hour; `rate(m365mail_retry_waits_total{cause="throttled"}[5m])` against the budget.
//!
//! # Why `prometheus-client`
//!
//! It is the Prometheus project's own Rust client (`prometheus/client_rust`), follows the
//! OpenMetrics data model, and is lean: with its default features off it adds two small crates
//! to the tree (`dtoa` and its derive macro; `itoa` and `parking_lot` were already there) and no
//! HTTP stack or protobuf, so the worker serves it with the axum it already has. Its
//! `Collector` lets the per-source gauges be computed when scraped (ages, and the series of
//! sources handed back simply absent). The `prometheus` crate (tikv) pulls protobuf by default
//! and keeps a process-global default registry; `metrics` with `metrics-exporter-prometheus` adds a facade,
//! its own HTTP listener and more dependencies than the few series here need. The crate
//! declares no `rust-version`; clippy's `incompatible_msrv` at the workspace's 1.89 finds no use
//! of a newer standard library in it, and `cargo deny check` accepts it and its dependencies.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use handler::{
    Entry, Fence, FleetView, LeaseError, LeaseStore, LedgerError, LedgerStore, MessageOutcome,
    Pipeline, Progress, Record,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod serve;
mod timed;

pub use serve::MetricsServer;
use serve::{healthz, readyz, scrape};
pub use timed::{TimedLeases, TimedLedger, timed};

/// The default `--metrics` address: loopback, on the port commonly left to exporters of this
/// kind (9464, as OpenTelemetry's Prometheus exporter).
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);

/// The `--metrics` value: `off`, or the address to serve on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// No metrics endpoint.
    Off,
    /// Serve `/metrics`, `/healthz` and `/readyz` here.
    At(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.parse::<SocketAddr>().map(Listen::At).map_err(|_| {
            format!("{s:?}: give an address with a port (127.0.0.1:9464, [::1]:9464) or `off`")
        })
    }
}

/// Why the metrics endpoint could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The address is not a loopback address and non-loopback was not allowed.
    #[error(
        "refusing to serve metrics on {0}: it is not a loopback address, and /metrics would be \
         reachable from other machines (which mailboxes this worker reads and how busily); \
         opt in explicitly with --metrics-allow-non-loopback, or use 127.0.0.1"
    )]
    NotLoopback(SocketAddr),
    /// Binding the address failed.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Refuses an address beyond loopback unless `allow_non_loopback`.
pub fn check_listen(addr: SocketAddr, allow_non_loopback: bool) -> Result<(), MetricsError> {
    if allow_non_loopback || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(MetricsError::NotLoopback(addr))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    service: &'static str,
    cause: &'static str,
    basis: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
    operation: &'static str,
}

/// Histogram buckets as a `Family` constructor (a plain `fn` pointer cannot capture them).
#[derive(Clone, Debug)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Retry waits: from the EWS back-off's tenths of a second to the longest `Retry-After` a
/// client honours (a minute) and its total-wait cap (two minutes).
const WAIT_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Store operations: doubling from half a millisecond (a prepared statement on loopback) to
/// eight seconds (a pool waiting out a broken connection).
const STORE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192,
];

/// What the per-source gauges are computed from.
#[derive(Debug, Default, Clone)]
struct SourceState {
    offline: Option<bool>,
    waiting: Option<u64>,
    /// Seconds the oldest waiting message had waited at the last pass's first listing.
    oldest_age: Option<f64>,
    last_pass: Option<Instant>,
    owed: Option<u64>,
}

#[derive(Debug, Clone)]
enum Heartbeat {
    /// None yet: still connecting, or the first one has not returned.
    Never,
    /// The last one succeeded at `at`, for a lease time of `ttl`.
    Ok { at: Instant, ttl: Duration },
    /// The last one failed with `error`; `last_ok` was the last success.
    Failed {
        error: String,
        last_ok: Option<Instant>,
    },
    /// The worker left the fleet (it is shutting down).
    Left,
    /// Not in a fleet: `m365mail run`, one process on local files.
    Alone,
}

#[derive(Debug)]
struct WorkerState {
    sources: BTreeMap<String, SourceState>,
    /// Held leases: source → epoch.
    leases: BTreeMap<String, u64>,
    /// Whether leases are followed ([`Metrics::leases`] was called): then only the sources
    /// held have per-source series.
    leased: bool,
    heartbeat: Heartbeat,
}

/// A gauge's value: a count, or seconds.
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Seconds(f64),
}

/// The gauges computed at scrape time from [`WorkerState`].
#[derive(Debug)]
struct StateCollector(Arc<Mutex<WorkerState>>);

fn lock(m: &Mutex<WorkerState>) -> MutexGuard<'_, WorkerState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // Copied out, so that a slow scraper never holds the pipeline's events up.
        let (sources, leases, heartbeat) = {
            let s = lock(&self.0);
            (s.sources.clone(), s.leases.len(), s.heartbeat.clone())
        };
        let now = Instant::now();
        type Pick = fn(&SourceState, Instant) -> Option<Value>;
        let per_source: [(&str, &str, Pick); 5] = [
            (
                "source_offline",
                "1 while the source is OFFLINE (its ping failed or its sign-in was refused), else 0.",
                |s, _| s.offline.map(|o| Value::Count(u64::from(o))),
            ),
            (
                "source_waiting_messages",
                "Messages waiting at the source's last ping.",
                |s, _| s.waiting.map(Value::Count),
            ),
            (
                "source_oldest_waiting_age_seconds",
                "How long the oldest waiting message had waited when the last pass listed the mailbox.",
                |s, _| s.oldest_age.map(Value::Seconds),
            ),
            (
                "source_last_pass_age_seconds",
                "Seconds since the source's last pass that finished ONLINE.",
                |s, now| {
                    s.last_pass
                        .map(|t| Value::Seconds(now.duration_since(t).as_secs_f64()))
                },
            ),
            (
                "acknowledgements_owed",
                "Acknowledgements the ledger owes the source, as of the last pass's check.",
                |s, _| s.owed.map(Value::Count),
            ),
        ];
        for (name, help, pick) in per_source {
            let values: Vec<(&String, Value)> = sources
                .iter()
                .filter_map(|(source, s)| pick(s, now).map(|v| (source, v)))
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (source, v) in values {
                let labels = [("source", source.as_str())];
                let family = metric.encode_family(&labels)?;
                match v {
                    Value::Count(n) => ConstGauge::new(n).encode(family)?,
                    Value::Seconds(x) => ConstGauge::new(x).encode(family)?,
                }
            }
        }
        #[allow(clippy::cast_possible_wrap)] // a worker holds far fewer than 2^63 leases
        let held = leases as i64;
        ConstGauge::new(held).encode(encoder.encode_descriptor(
            "leases_held",
            "Sources whose lease this worker holds.",
            None,
            MetricType::Gauge,
        )?)?;
        let last_ok = match heartbeat {
            Heartbeat::Ok { at, .. } => Some(at),
            Heartbeat::Failed { last_ok, .. } => last_ok,
            Heartbeat::Never | Heartbeat::Left | Heartbeat::Alone => None,
        };
        if let Some(at) = last_ok {
            ConstGauge::new(now.duration_since(at).as_secs_f64()).encode(
                encoder.encode_descriptor(
                    "heartbeat_age_seconds",
                    "Seconds since this worker's last successful heartbeat.",
                    None,
                    MetricType::Gauge,
                )?,
            )?;
        }
        Ok(())
    }
}

struct Inner {
    registry: Registry,
    handled: Family<SourceLabels, Counter>,
    recovered: Family<SourceLabels, Counter>,
    parked: Family<SourceLabels, Counter>,
    failed: Family<SourceLabels, Counter>,
    errors: Family<SourceLabels, Counter>,
    retry_waits: Family<RetryLabels, Counter>,
    retry_seconds: Family<RetryLabels, Histogram, Buckets>,
    token_requests: Family<TokenLabels, Counter>,
    store_seconds: Family<StoreLabels, Histogram, Buckets>,
    store_errors: Family<StoreLabels, Counter>,
    state: Arc<Mutex<WorkerState>>,
}

/// The metrics of one worker: fed by the pipeline's progress events, the process-wide retry and
/// token hooks, and the timed store wrappers; scraped as text. Cheap to clone (one `Arc`).
///
/// ```
/// use handler::{MessageOutcome, Progress};
/// use m365mail::metrics::Metrics;
///
/// let metrics = Metrics::new();
/// metrics.observe(&Progress::Started { source: "helpdesk".into(), waiting: Some(1) });
/// metrics.observe(&Progress::Message {
///     source: "helpdesk".into(),
///     outcome: MessageOutcome::Handled,
/// });
/// let text = metrics.encode();
/// assert!(text.contains("m365mail_messages_handled_total{source=\"helpdesk\"} 1\n"));
/// assert!(text.contains("m365mail_source_waiting_messages{source=\"helpdesk\"} 1\n"));
/// ```
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, no source known yet, not ready (no heartbeat).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("m365mail");
        let handled = Family::<SourceLabels, Counter>::default();
        let recovered = Family::<SourceLabels, Counter>::default();
        let parked = Family::<SourceLabels, Counter>::default();
        let failed = Family::<SourceLabels, Counter>::default();
        let errors = Family::<SourceLabels, Counter>::default();
        let retry_waits = Family::<RetryLabels, Counter>::default();
        let retry_seconds = Family::new_with_constructor(Buckets(WAIT_BUCKETS));
        let token_requests = Family::<TokenLabels, Counter>::default();
        let store_seconds = Family::new_with_constructor(Buckets(STORE_BUCKETS));
        let store_errors = Family::<StoreLabels, Counter>::default();
        registry.register(
            "messages_handled",
            "Messages handed to the handler, recorded and acknowledged (or owed)",
            handled.clone(),
        );
        registry.register(
            "messages_recovered",
            "Messages handled before a crash, acknowledged now without a second hand-over",
            recovered.clone(),
        );
        registry.register("messages_parked", "Poison messages parked", parked.clone());
        registry.register(
            "messages_failed",
            "Hand-overs the handler failed, retried on a later pass",
            failed.clone(),
        );
        registry.register(
            "message_errors",
            "Messages left waiting because the source or the ledger failed",
            errors.clone(),
        );
        registry.register(
            "retry_waits",
            "Waits before retrying a Graph or EWS request, by cause and by who chose the wait",
            retry_waits.clone(),
        );
        registry.register(
            "retry_wait_seconds",
            "Seconds waited before retrying a Graph or EWS request",
            retry_seconds.clone(),
        );
        registry.register(
            "token_requests",
            "Requests to the identity platform's token endpoint",
            token_requests.clone(),
        );
        registry.register(
            "store_operation_seconds",
            "Seconds each ledger or lease operation of the store took",
            store_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Ledger or lease operations of the store that failed",
            store_errors.clone(),
        );
        let state = Arc::new(Mutex::new(WorkerState {
            sources: BTreeMap::new(),
            leases: BTreeMap::new(),
            leased: false,
            heartbeat: Heartbeat::Never,
        }));
        registry.register_collector(Box::new(StateCollector(state.clone())));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                handled,
                recovered,
                parked,
                failed,
                errors,
                retry_waits,
                retry_seconds,
                token_requests,
                store_seconds,
                store_errors,
                state,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, WorkerState> {
        lock(&self.inner.state)
    }

    /// Feeds `pipeline`'s progress events to these metrics.
    pub fn attach(&self, pipeline: &mut Pipeline) {
        let metrics = self.clone();
        pipeline.on_progress(move |event: &Progress| metrics.observe(event));
    }

    /// Takes one progress event into account.
    pub fn observe(&self, event: &Progress) {
        match event {
            Progress::Started { source, waiting } => {
                let mut s = self.state();
                let st = s.sources.entry(source.clone()).or_default();
                st.offline = Some(false);
                st.waiting = *waiting;
            }
            Progress::Message { source, outcome } => {
                let family = match outcome {
                    MessageOutcome::Handled => &self.inner.handled,
                    MessageOutcome::Recovered => &self.inner.recovered,
                    MessageOutcome::Parked => &self.inner.parked,
                    MessageOutcome::Failed => &self.inner.failed,
                    MessageOutcome::Error => &self.inner.errors,
                    // A new outcome counts nowhere until it is given a series.
                    _ => return,
                };
                family
                    .get_or_create(&SourceLabels {
                        source: source.clone(),
                    })
                    .inc();
            }
            Progress::OldestWaiting { source, received } => {
                let age = received.map(|r| {
                    (time::OffsetDateTime::now_utc() - r)
                        .as_seconds_f64()
                        .max(0.0)
                });
                self.state()
                    .sources
                    .entry(source.clone())
                    .or_default()
                    .oldest_age = age;
            }
            Progress::Finished { source } => {
                let mut s = self.state();
                let st = s.sources.entry(source.clone()).or_default();
                // A pass the sign-in refused midway reported Offline before it finished.
                if st.offline != Some(true) {
                    st.last_pass = Some(Instant::now());
                }
            }
            Progress::Offline { source, .. } => {
                self.state()
                    .sources
                    .entry(source.clone())
                    .or_default()
                    .offline = Some(true);
            }
            _ => {}
        }
    }

    /// Counts one wait of a client before a retry (what the process-wide hook calls).
    pub fn observe_wait(&self, wait: &connector::retry::RetryWait) {
        let labels = RetryLabels {
            service: wait.service,
            cause: match wait.kind {
                connector::ErrorKind::Throttled => "throttled",
                _ => "transient",
            },
            basis: if wait.retry_after.is_some() {
                "retry_after"
            } else {
                "backoff"
            },
        };
        self.inner.retry_waits.get_or_create(&labels).inc();
        self.inner
            .retry_seconds
            .get_or_create(&labels)
            .observe(wait.wait.as_secs_f64());
    }

    /// Counts one token request (what the process-wide hook calls).
    pub fn observe_token_request(&self, request: &msauth::TokenRequested) {
        let grant = match request.grant {
            "client_credentials" | "refresh_token" | "authorization_code" => request.grant,
            _ => "other",
        };
        let outcome = if request.ok { "ok" } else { "error" };
        self.inner
            .token_requests
            .get_or_create(&TokenLabels { grant, outcome })
            .inc();
    }

    /// Makes these metrics the process's observer of retry waits
    /// (`connector::retry::set_wait_observer`) and of token requests
    /// (`msauth::set_token_observer`), replacing any other. Once per process.
    pub fn install_process_hooks(&self) {
        let m = self.clone();
        connector::retry::set_wait_observer(Some(Arc::new(move |w| m.observe_wait(w))));
        let m = self.clone();
        msauth::set_token_observer(Some(Arc::new(move |r| m.observe_token_request(r))));
    }

    fn time_store<T, E>(
        &self,
        store: &'static str,
        operation: &'static str,
        started: Instant,
        result: &Result<T, E>,
    ) {
        let labels = StoreLabels { store, operation };
        self.inner
            .store_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.inner.store_errors.get_or_create(&labels).inc();
        }
    }

    /// `ledger`, timed into these metrics, its acknowledgement debt counted.
    pub fn ledger(&self, ledger: Arc<dyn LedgerStore>) -> Arc<dyn LedgerStore> {
        Arc::new(TimedLedger {
            inner: ledger,
            metrics: self.clone(),
        })
    }

    /// `leases`, timed into these metrics, which follow the leases held and the heartbeat.
    pub fn leases(&self, leases: Arc<dyn LeaseStore>) -> Arc<dyn LeaseStore> {
        self.state().leased = true;
        Arc::new(TimedLeases {
            inner: leases,
            metrics: self.clone(),
        })
    }

    /// The metrics in Prometheus's text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; a collector of ours could only by a bug.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// The metrics in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// Marks these metrics as those of `m365mail run`, one process without a fleet: ready as
    /// long as it serves (there is no heartbeat to go by).
    pub fn single_process(&self) {
        self.state().heartbeat = Heartbeat::Alone;
    }

    /// `Ok` with a line about the worker when it is ready (its last heartbeat succeeded, within
    /// the lease time), `Err` with the reason when not.
    pub fn readiness(&self) -> Result<String, String> {
        let s = self.state();
        match &s.heartbeat {
            Heartbeat::Never => {
                Err("not ready: no heartbeat yet (connecting to the store, or joining)".into())
            }
            Heartbeat::Ok { at, ttl } => {
                let age = at.elapsed();
                if age > *ttl {
                    Err(format!(
                        "not ready: the last successful heartbeat was {:.1} s ago, longer than \
                         the lease time ({} s)",
                        age.as_secs_f64(),
                        ttl.as_secs()
                    ))
                } else {
                    Ok(format!(
                        "ready: last heartbeat {:.1} s ago, {} leases held",
                        age.as_secs_f64(),
                        s.leases.len()
                    ))
                }
            }
            Heartbeat::Failed { error, last_ok } => Err(match last_ok {
                Some(at) => format!(
                    "not ready: the last heartbeat failed ({error}); the last success was {:.1} s ago",
                    at.elapsed().as_secs_f64()
                ),
                None => format!("not ready: the heartbeat failed ({error})"),
            }),
            Heartbeat::Left => Err("not ready: this worker has left the fleet (stopping)".into()),
            Heartbeat::Alone => Ok("ready: one process on local files (no fleet)".into()),
        }
    }

    fn leases_changed(&self, f: impl FnOnce(&mut WorkerState)) {
        f(&mut self.state());
    }

    /// The lease of `fence` is no longer ours: the source's series go (also when a renewal
    /// already found the lease lost, and the source's last events came after that).
    fn drop_source(s: &mut WorkerState, fence: &Fence) {
        if s.leases
            .get(&fence.source)
            .is_none_or(|e| *e == fence.epoch)
        {
            s.leases.remove(&fence.source);
            s.sources.remove(&fence.source);
        }
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the returned server is
    /// dropped (or the runtime ends).
    pub fn serve(&self, listener: tokio::net::TcpListener) -> MetricsServer {
        let addr = listener.local_addr().ok();
        let app = axum::Router::new()
            .route("/metrics", get(scrape))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(self.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
        MetricsServer { addr, task }
    }

    /// Starts the endpoint for a worker's `--metrics` value: `None` (not given) serves on
    /// [`DEFAULT_ADDR`] and, should that port be taken (another worker on the same machine),
    /// warns and goes on without; an address given is checked against loopback (see
    /// [`check_listen`]) and must bind.
    pub async fn start(
        &self,
        listen: Option<Listen>,
        allow_non_loopback: bool,
    ) -> Result<Option<MetricsServer>, MetricsError> {
        let (addr, given) = match listen {
            Some(Listen::Off) => return Ok(None),
            Some(Listen::At(addr)) => (addr, true),
            None => (DEFAULT_ADDR, false),
        };
        check_listen(addr, allow_non_loopback)?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => Ok(Some(self.serve(listener))),
            Err(source) if given => Err(MetricsError::Bind { addr, source }),
            Err(e) => {
                tracing::warn!(
                    "no metrics endpoint: {addr} (the default) is not free ({e}); give each \
                     worker on this machine its own --metrics ADDR, or --metrics off"
                );
                Ok(None)
            }
        }
    }
}
