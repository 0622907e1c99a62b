//! The worker's metrics and health (`m365mail::metrics`): the exact series that progress events,
//! retry waits, token requests and store operations become; readiness from the heartbeat; the
//! process-wide hooks through real Graph and EWS clients against the sandbox; and, end to end,
//! `m365mail worker --metrics` on PostgreSQL (skipped with a message without
//! `M365MAIL_TEST_POSTGRES`, failing under `CI=true`), and the loopback guard of `--metrics`.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use connector::ErrorKind;
use connector::retry::RetryWait;
use handler::{
    Entry, Fence, FleetView, LeaseError, LeaseStore, Ledger, LocalLeases, MessageOutcome, Progress,
};
use m365mail::metrics::{Listen, Metrics, MetricsError, check_listen};
use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol, Sandbox, Seed};

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");

/// The samples of a scrape: series (name and labels, as written) → value. Comments skipped.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// The samples whose series starts with one of `prefixes`.
fn only(text: &str, prefixes: &[&str]) -> BTreeMap<String, f64> {
    samples(text)
        .into_iter()
        .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
        .collect()
}

/// The value of the one series of `family` in `text`, which must be the helpdesk source's.
fn helpdesk_only(text: &str, family: &str) -> f64 {
    let series = only(text, &[family]);
    let want = format!("{family}{{source=\"helpdesk\"}}");
    assert_eq!(series.keys().collect::<Vec<_>>(), [&want], "{text}");
    series[&want]
}

fn map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn started(source: &str, waiting: Option<u64>) -> Progress {
    Progress::Started {
        source: source.into(),
        waiting,
    }
}

fn message(source: &str, outcome: MessageOutcome) -> Progress {
    Progress::Message {
        source: source.into(),
        outcome,
    }
}

#[test]
fn progress_events_become_exactly_these_series() {
    let m = Metrics::new();
    m.observe(&started("helpdesk", Some(7)));
    for outcome in [
        MessageOutcome::Handled,
        MessageOutcome::Handled,
        MessageOutcome::Handled,
        MessageOutcome::Recovered,
        MessageOutcome::Parked,
        MessageOutcome::Failed,
        MessageOutcome::Error,
    ] {
        m.observe(&message("helpdesk", outcome));
    }
    // The first listing's oldest message arrived 90 s ago.
    m.observe(&Progress::OldestWaiting {
        source: "helpdesk".into(),
        received: Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(90)),
    });
    m.observe(&Progress::Finished {
        source: "helpdesk".into(),
    });
    // A source that never answered its ping: OFFLINE, nothing waiting known, no pass.
    m.observe(&Progress::Offline {
        source: "projects".into(),
        reason: Some("the admin must consent".into()),
    });
    // One that cannot count what is waiting.
    m.observe(&started("quiet", None));

    let text = m.encode();
    assert_eq!(
        only(&text, &["m365mail_message"]),
        map(&[
            ("m365mail_message_errors_total{source=\"helpdesk\"}", 1.0),
            ("m365mail_messages_failed_total{source=\"helpdesk\"}", 1.0),
            ("m365mail_messages_handled_total{source=\"helpdesk\"}", 3.0),
            ("m365mail_messages_parked_total{source=\"helpdesk\"}", 1.0),
            (
                "m365mail_messages_recovered_total{source=\"helpdesk\"}",
                1.0
            ),
        ]),
        "{text}"
    );
    assert_eq!(
        only(
            &text,
            &[
                "m365mail_source_offline",
                "m365mail_source_waiting",
                "m365mail_leases",
                "m365mail_acknowledgements",
                "m365mail_heartbeat",
            ]
        ),
        map(&[
            ("m365mail_leases_held", 0.0),
            ("m365mail_source_offline{source=\"helpdesk\"}", 0.0),
            ("m365mail_source_offline{source=\"projects\"}", 1.0),
            ("m365mail_source_offline{source=\"quiet\"}", 0.0),
            ("m365mail_source_waiting_messages{source=\"helpdesk\"}", 7.0),
        ]),
        "{text}"
    );
    // Only the source whose pass finished has an age, and it is fresh.
    let age = helpdesk_only(&text, "m365mail_source_last_pass_age_seconds");
    assert!((0.0..5.0).contains(&age), "{text}");
    let oldest = helpdesk_only(&text, "m365mail_source_oldest_waiting_age_seconds");
    assert!((90.0..95.0).contains(&oldest), "{text}");
    // Prometheus's text format: TYPE lines, counters with `_total`.
    assert!(
        text.contains("# TYPE m365mail_messages_handled_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE m365mail_source_offline gauge\n"),
        "{text}"
    );

    // The source comes back: ONLINE again, its waiting count replaced.
    m.observe(&started("projects", Some(0)));
    let s = samples(&m.encode());
    assert_eq!(s["m365mail_source_offline{source=\"projects\"}"], 0.0);
    assert_eq!(
        s["m365mail_source_waiting_messages{source=\"projects\"}"],
        0.0
    );
    // A pass the sign-in refused midway (OFFLINE, then finished) is no finished pass.
    m.observe(&Progress::Offline {
        source: "projects".into(),
        reason: None,
    });
    m.observe(&Progress::Finished {
        source: "projects".into(),
    });
    // Nothing waiting at the next listing: no oldest age.
    m.observe(&Progress::OldestWaiting {
        source: "helpdesk".into(),
        received: None,
    });
    let s = samples(&m.encode());
    assert!(!s.contains_key("m365mail_source_last_pass_age_seconds{source=\"projects\"}"));
    assert!(
        !s.keys().any(|k| k.starts_with("m365mail_source_oldest")),
        "{s:?}"
    );
    assert_eq!(s["m365mail_source_offline{source=\"projects\"}"], 1.0);
}

#[test]
fn retry_waits_and_token_requests_are_counted_with_their_seconds() {
    let m = Metrics::new();
    let graph_429 = RetryWait::new(
        "graph",
        ErrorKind::Throttled,
        Some(Duration::from_secs(2)),
        Duration::from_secs(2),
    );
    m.observe_wait(&graph_429);
    m.observe_wait(&graph_429);
    m.observe_wait(&RetryWait::new(
        "ews",
        ErrorKind::Transient,
        None,
        Duration::from_millis(750),
    ));
    m.observe_token_request(&msauth::TokenRequested::new(
        "client_credentials",
        true,
        Duration::from_millis(40),
    ));
    m.observe_token_request(&msauth::TokenRequested::new(
        "refresh_token",
        false,
        Duration::from_millis(40),
    ));
    let text = m.encode();
    let graph = "service=\"graph\",cause=\"throttled\",basis=\"retry_after\"";
    let ews = "service=\"ews\",cause=\"transient\",basis=\"backoff\"";
    assert_eq!(
        only(
            &text,
            &[
                "m365mail_retry_waits_total",
                "m365mail_retry_wait_seconds_sum",
                "m365mail_retry_wait_seconds_count",
                "m365mail_token_requests_total",
            ]
        ),
        map(&[
            (&format!("m365mail_retry_wait_seconds_count{{{ews}}}"), 1.0),
            (
                &format!("m365mail_retry_wait_seconds_count{{{graph}}}"),
                2.0
            ),
            (&format!("m365mail_retry_wait_seconds_sum{{{ews}}}"), 0.75),
            (&format!("m365mail_retry_wait_seconds_sum{{{graph}}}"), 4.0),
            (&format!("m365mail_retry_waits_total{{{ews}}}"), 1.0),
            (&format!("m365mail_retry_waits_total{{{graph}}}"), 2.0),
            (
                "m365mail_token_requests_total{grant=\"client_credentials\",outcome=\"ok\"}",
                1.0
            ),
            (
                "m365mail_token_requests_total{grant=\"refresh_token\",outcome=\"error\"}",
                1.0
            ),
        ]),
        "{text}"
    );
    // The histogram's buckets are cumulative: both 2 s waits fall in le="2", none below.
    let s = samples(&text);
    assert_eq!(
        s[&format!("m365mail_retry_wait_seconds_bucket{{{graph},le=\"1\"}}")],
        0.0,
        "{text}"
    );
    assert_eq!(
        s[&format!("m365mail_retry_wait_seconds_bucket{{{graph},le=\"2\"}}")],
        2.0,
        "{text}"
    );
    assert_eq!(
        s[&format!("m365mail_retry_wait_seconds_bucket{{{graph},le=\"+Inf\"}}")],
        2.0,
        "{text}"
    );
}

/// A lease store whose heartbeat fails, as a database that went away.
#[derive(Debug)]
struct Unreachable;

#[async_trait]
impl LeaseStore for Unreachable {
    async fn heartbeat(&self, _: &str, _: Duration) -> Result<FleetView, LeaseError> {
        Err(LeaseError::Unavailable {
            backend: "test",
            reason: "connection refused".into(),
        })
    }
    async fn acquire(&self, _: &str, _: &str, _: Duration) -> Result<Option<Fence>, LeaseError> {
        Ok(None)
    }
    async fn renew(&self, _: &Fence, _: Duration) -> Result<bool, LeaseError> {
        Ok(false)
    }
    async fn release(&self, _: &Fence) -> Result<(), LeaseError> {
        Ok(())
    }
    async fn leave(&self, _: &str) -> Result<(), LeaseError> {
        Ok(())
    }
    async fn holders(&self) -> Result<Vec<Fence>, LeaseError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn the_timed_stores_follow_leases_debt_latency_and_readiness() {
    let m = Metrics::new();
    let local = Arc::new(LocalLeases::new());
    let leases = m.leases(local.clone());
    let ledger = m.ledger(Arc::new(Ledger::in_memory()));
    let ttl = Duration::from_secs(30);

    let not_yet = m.readiness().unwrap_err();
    assert!(not_yet.contains("no heartbeat yet"), "{not_yet}");
    leases.heartbeat("w1", ttl).await.unwrap();
    let ready = m.readiness().unwrap();
    assert!(ready.starts_with("ready"), "{ready}");

    let a = leases.acquire("a", "w1", ttl).await.unwrap().unwrap();
    let b = leases.acquire("b", "w1", ttl).await.unwrap().unwrap();
    m.observe(&started("a", Some(2)));
    m.observe(&started("b", Some(1)));
    // Two handled messages of `a`, one since acknowledged; the pass's check finds one owed.
    ledger
        .append(
            vec![
                ("a|1".into(), Entry::Handled { project: None }),
                ("a|2".into(), Entry::Handled { project: None }),
                ("a|2".into(), Entry::Acknowledged),
            ],
            Some(&a),
        )
        .await
        .unwrap();
    assert_eq!(ledger.unacknowledged("a|").await.unwrap().len(), 1);
    assert_eq!(ledger.unacknowledged("b|").await.unwrap().len(), 0);
    let text = m.encode();
    assert_eq!(
        only(
            &text,
            &[
                "m365mail_leases_held",
                "m365mail_acknowledgements_owed",
                "m365mail_source_waiting",
            ]
        ),
        map(&[
            ("m365mail_acknowledgements_owed{source=\"a\"}", 1.0),
            ("m365mail_acknowledgements_owed{source=\"b\"}", 0.0),
            ("m365mail_leases_held", 2.0),
            ("m365mail_source_waiting_messages{source=\"a\"}", 2.0),
            ("m365mail_source_waiting_messages{source=\"b\"}", 1.0),
        ]),
        "{text}"
    );
    // Every operation is timed, by store and operation.
    let counts = only(&text, &["m365mail_store_operation_seconds_count"]);
    assert_eq!(
        counts,
        map(&[
            (
                "m365mail_store_operation_seconds_count{store=\"leases\",operation=\"acquire\"}",
                2.0
            ),
            (
                "m365mail_store_operation_seconds_count{store=\"leases\",operation=\"heartbeat\"}",
                1.0
            ),
            (
                "m365mail_store_operation_seconds_count{store=\"ledger\",operation=\"append\"}",
                1.0
            ),
            (
                "m365mail_store_operation_seconds_count{store=\"ledger\",operation=\"unacknowledged\"}",
                2.0
            ),
        ]),
        "{text}"
    );
    assert!(
        samples(&text)
            .keys()
            .any(|k| k.starts_with("m365mail_heartbeat_age_seconds")),
        "{text}"
    );
    assert!(!text.contains("m365mail_store_errors_total{"), "{text}");

    // `b` is handed back: its series go, `a`'s stay; a late pass of `b` does not bring its
    // debt back.
    leases.release(&b).await.unwrap();
    ledger.unacknowledged("b|").await.unwrap();
    let s = samples(&m.encode());
    assert_eq!(s["m365mail_leases_held"], 1.0);
    assert!(!s.keys().any(|k| k.contains("source=\"b\"")), "{s:?}");
    assert_eq!(s["m365mail_source_waiting_messages{source=\"a\"}"], 2.0);

    // A lease found lost at renewal (freed behind this worker's back) is no longer held.
    local.release(&a).await.unwrap();
    assert!(!leases.renew(&a, ttl).await.unwrap());
    assert_eq!(samples(&m.encode())["m365mail_leases_held"], 0.0);

    // Leaving the fleet: not ready, nothing held.
    leases.leave("w1").await.unwrap();
    let left = m.readiness().unwrap_err();
    assert!(left.contains("left the fleet"), "{left}");

    // A heartbeat that failed: not ready, with the store's reason, and counted as an error.
    let m = Metrics::new();
    let down = m.leases(Arc::new(Unreachable));
    assert!(down.heartbeat("w1", ttl).await.is_err());
    let why = m.readiness().unwrap_err();
    assert!(why.contains("connection refused"), "{why}");
    assert_eq!(
        samples(&m.encode())["m365mail_store_errors_total{store=\"leases\",operation=\"heartbeat\"}"],
        1.0
    );
    // A heartbeat that succeeded longer ago than the lease time: not ready either.
    let m = Metrics::new();
    let leases = m.leases(Arc::new(LocalLeases::new()));
    leases
        .heartbeat("w1", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stale = m.readiness().unwrap_err();
    assert!(stale.contains("longer than the lease time"), "{stale}");
}

#[test]
fn the_metrics_address_is_loopback_unless_allowed() {
    assert_eq!("off".parse::<Listen>(), Ok(Listen::Off));
    assert_eq!(
        "127.0.0.1:9464".parse::<Listen>(),
        Ok(Listen::At("127.0.0.1:9464".parse().unwrap()))
    );
    assert!("localhost".parse::<Listen>().is_err());
    assert!(check_listen("127.0.0.1:9464".parse().unwrap(), false).is_ok());
    assert!(check_listen("[::1]:9464".parse().unwrap(), false).is_ok());
    let refused = check_listen("0.0.0.0:9464".parse().unwrap(), false).unwrap_err();
    assert!(matches!(refused, MetricsError::NotLoopback(_)));
    assert!(
        refused.to_string().contains("--metrics-allow-non-loopback"),
        "{refused}"
    );
    assert!(check_listen("0.0.0.0:9464".parse().unwrap(), true).is_ok());
}

/// The only test of this binary that installs the process-wide hooks: real Graph and EWS
/// clients, throttled once each by the sandbox, and their token requests.
#[tokio::test]
async fn the_process_hooks_count_real_throttling_waits_and_token_requests() {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = m365mail::demo::demo_config(&sb, dir.path()).unwrap();
    let m = Metrics::new();
    m.install_process_hooks();
    sb.admin().set_faults(
        FaultPlan::new([
            FaultRule::next(
                Protocol::Graph,
                1,
                FaultKind::Throttle {
                    retry_after_secs: 1,
                },
            ),
            FaultRule::next(Protocol::Ews, 1, FaultKind::ServerBusy { back_off_ms: 10 }),
        ])
        .with_seed(1),
    );
    let mut providers = m365mail::connect::Providers::default();
    for s in &cfg.sources {
        let source = m365mail::connect::source(&mut providers, s, 10).unwrap();
        let report = source.ping().await;
        assert!(report.is_online(), "{}: {report}", s.name);
    }
    let text = m.encode();
    let graph = "service=\"graph\",cause=\"throttled\",basis=\"retry_after\"";
    let ews = "service=\"ews\",cause=\"throttled\",basis=\"retry_after\"";
    assert_eq!(
        only(
            &text,
            &[
                "m365mail_retry_waits_total",
                "m365mail_retry_wait_seconds_sum",
                "m365mail_token_requests_total",
            ]
        ),
        map(&[
            (&format!("m365mail_retry_wait_seconds_sum{{{ews}}}"), 0.01),
            (&format!("m365mail_retry_wait_seconds_sum{{{graph}}}"), 1.0),
            (&format!("m365mail_retry_waits_total{{{ews}}}"), 1.0),
            (&format!("m365mail_retry_waits_total{{{graph}}}"), 1.0),
            // One token per resource (Graph, EWS), as the sandbox saw.
            (
                "m365mail_token_requests_total{grant=\"client_credentials\",outcome=\"ok\"}",
                sb.request_log().token_requests() as f64
            ),
        ]),
        "{text}"
    );
    assert_eq!(sb.request_log().token_requests(), 2);
    connector::retry::set_wait_observer(None);
    msauth::set_token_observer(None);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_endpoint_serves_metrics_health_and_readiness() {
    let m = Metrics::new();
    let server = m
        .start(Some(Listen::At("127.0.0.1:0".parse().unwrap())), false)
        .await
        .unwrap()
        .unwrap();
    let base = format!("http://{}", server.addr().unwrap());
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("no heartbeat yet"));

    m.leases(Arc::new(LocalLeases::new()))
        .heartbeat("w1", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    m.observe(&message("helpdesk", MessageOutcome::Handled));
    let scrape = get("/metrics").await.unwrap();
    assert_eq!(
        scrape.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = scrape.text().await.unwrap();
    assert_eq!(
        samples(&text)["m365mail_messages_handled_total{source=\"helpdesk\"}"],
        1.0
    );
    // OpenMetrics when the scraper asks for it.
    let om = http
        .get(format!("{base}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(
        om.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.text().await.unwrap().ends_with("# EOF\n"));
    // Scrapes are read-only: anything but GET is refused.
    let post = http.post(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(post.status(), 405);

    // An address given explicitly must bind: the one in use is an error, not a warning.
    let taken = server.addr().unwrap();
    let err = Metrics::new()
        .start(Some(Listen::At(taken)), false)
        .await
        .unwrap_err();
    assert!(matches!(err, MetricsError::Bind { .. }), "{err}");
    assert!(
        Metrics::new()
            .start(Some(Listen::Off), false)
            .await
            .unwrap()
            .is_none()
    );
}

#[path = "metrics/worker.rs"]
mod worker;
