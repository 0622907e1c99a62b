//! Push mode against the sandbox (issue #20): mail is handled as it arrives without waiting
//! for a poll, forged notifications are ignored, a dropped notification is caught up by the
//! safety timer, a removed subscription is made again, and a restart reuses the recorded
//! subscription. Each test's poll interval (and, where it is not under test, the safety
//! timer) is an hour: only push can bring the mail within the tests' bounds.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use handler::{Ledger, MessageOutcome, Progress, Shutdown};
use m365mail::config::Config;
use m365mail::connect::Providers;
use sandbox::Sandbox;
use test_support::config::{Config as ConfigText, toml_string};

const HELPDESK: &str = "helpdesk@contoso.example";

fn config(sb: &Sandbox, dir: &Path, port: u16, safety_secs: u64) -> Config {
    let out = dir.join("out");
    let record = toml_string(&dir.join("subscriptions.json").display().to_string());
    let delta = toml_string(&dir.join("delta.json").display().to_string());
    let text = ConfigText::demo(sb)
        .helpdesk_graph(sb, &format!("mode = \"push\"\ndelta_state = {delta}"))
        .section(&format!(
            "[sources.push]\npublic_url = \"http://127.0.0.1:{port}/graph/notify\"\n\
             listen = \"127.0.0.1:{port}\"\nsafety_interval_secs = {safety_secs}\n\
             subscriptions = {record}"
        ))
        .mailbox(HELPDESK, &[])
        .default_rule("DESK")
        .handler(&out, "poll_interval_secs = 3600")
        .text();
    Config::parse(&text, &dir.join("m365mail.toml")).expect("configuration")
}

/// One running handler in push mode.
struct Running {
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<handler::Summary>,
    push: m365mail::push::Running,
    listen: SocketAddr,
    handled: Arc<AtomicUsize>,
    passes: Arc<AtomicUsize>,
}

async fn start(cfg: &Config) -> Running {
    let mut providers = Providers::default();
    let (mut pipeline, push) =
        m365mail::handling::pipeline_with_push(cfg, Arc::new(Ledger::in_memory()), &mut providers)
            .expect("pipeline");
    let handled = Arc::new(AtomicUsize::new(0));
    let passes = Arc::new(AtomicUsize::new(0));
    pipeline.on_progress({
        let (handled, passes) = (handled.clone(), passes.clone());
        move |e: &Progress| match e {
            Progress::Message {
                outcome: MessageOutcome::Handled,
                ..
            } => {
                handled.fetch_add(1, Ordering::SeqCst);
            }
            Progress::Finished { .. } => {
                passes.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    });
    let shutdown = Shutdown::new();
    let push = push.start(&shutdown).await.expect("push starts");
    // An EWS source has no listener: its `listen` is a placeholder no test asks about.
    let listen = cfg.sources[0]
        .push
        .as_ref()
        .map(|p| p.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { pipeline.run(&stop).await });
    Running {
        shutdown,
        task,
        push,
        listen,
        handled,
        passes,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("stops")
            .unwrap();
    }
}

/// Waits until `f` holds (a generous bound, so a broken build fails instead of hanging).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..3000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn deliver(sb: &Sandbox, subject: &str) {
    let mime =
        format!("From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n\r\nbody\r\n");
    sb.admin()
        .inject(
            "c@fabrikam.example",
            &[HELPDESK.to_string()],
            mime.as_bytes(),
        )
        .unwrap();
}

/// The subjects of the messages written to the `DESK` project under `dir/out`, sorted, each as
/// often as it was written.
fn written(dir: &Path) -> Vec<String> {
    let mut subjects: Vec<String> = std::fs::read_dir(dir.join("out/DESK"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .filter_map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
        })
        .collect();
    subjects.sort();
    subjects
}

/// Delivers a message and waits until the handler has handled it.
async fn delivered_and_handled(sb: &Sandbox, r: &Running, subject: &str) {
    let before = r.handled.load(Ordering::SeqCst);
    deliver(sb, subject);
    eventually(subject, || r.handled.load(Ordering::SeqCst) == before + 1).await;
}

/// A sandbox, a directory for the handler's output and records, and a configuration over both
/// with the helpdesk in Graph push mode on a free port, its safety timer `safety_secs`.
async fn graph_push(safety_secs: u64) -> (Sandbox, tempfile::TempDir, Config) {
    let sb = Sandbox::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &sb,
        dir.path(),
        test_support::process::free_port(),
        safety_secs,
    );
    (sb, dir, cfg)
}

/// Started, subscribed, and the first pass (the demo mail) over.
async fn started(sb: &Sandbox, cfg: &Config) -> (Running, String) {
    let r = start(cfg).await;
    eventually("subscribed", || sb.admin().subscriptions().len() == 1).await;
    eventually("the first pass ended", || {
        r.passes.load(Ordering::SeqCst) >= 1
    })
    .await;
    let id = sb.admin().subscriptions()[0].id.clone();
    (r, id)
}

#[tokio::test]
async fn new_mail_is_handled_as_it_arrives_without_waiting_for_a_poll() {
    let (sb, _dir, cfg) = graph_push(3600).await;
    let (r, _) = started(&sb, &cfg).await;
    delivered_and_handled(&sb, &r, "pushed 1").await;
    delivered_and_handled(&sb, &r, "pushed 2").await;
    let stats = r.push.stats(r.listen).unwrap();
    assert!(stats.hints >= 2, "{stats:?}");
    assert_eq!(stats.forged, 0);
    r.stop().await;
}

#[tokio::test]
async fn forged_notifications_are_ignored() {
    let (sb, _dir, cfg) = graph_push(3600).await;
    let (r, id) = started(&sb, &cfg).await;
    let forged = serde_json::json!({"value": [{
        "subscriptionId": id, "clientState": "a guess", "changeType": "created",
        "resource": "Users/x/Messages/y", "resourceData": {"id": "y"},
    }]});
    let resp = reqwest::Client::new()
        .post(format!("http://{}/graph/notify", r.listen))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "answered like any notification");
    let stats = r.push.stats(r.listen).unwrap();
    assert_eq!((stats.forged, stats.hints), (1, 0), "{stats:?}");
    // Genuine ones still work.
    delivered_and_handled(&sb, &r, "genuine").await;
    r.stop().await;
}

#[tokio::test]
async fn a_dropped_notification_is_caught_up_by_the_safety_timer() {
    let (sb, _dir, cfg) = graph_push(1).await;
    let (r, _) = started(&sb, &cfg).await;
    let mut faults = sandbox::NotificationFaults::default();
    faults.drop_rate = 1.0;
    sb.admin().set_notification_faults(faults);
    delivered_and_handled(&sb, &r, "never announced").await;
    assert!(sb.admin().notification_stats().dropped >= 1);
    assert_eq!(
        r.push.stats(r.listen).unwrap().hints,
        0,
        "no notification came"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_removed_subscription_is_made_again() {
    let (sb, _dir, cfg) = graph_push(3600).await;
    let (r, first) = started(&sb, &cfg).await;
    sb.admin()
        .lifecycle_event(&first, sandbox::LifecycleEvent::SubscriptionRemoved)
        .unwrap();
    eventually("subscribed again", || {
        let subs = sb.admin().subscriptions();
        subs.len() == 1 && subs[0].id != first
    })
    .await;
    assert_eq!(r.push.stats(r.listen).unwrap().lifecycle, 1);
    delivered_and_handled(&sb, &r, "after the removal").await;
    r.stop().await;
}

#[tokio::test]
async fn a_restart_reuses_the_recorded_subscription() {
    let (sb, _dir, cfg) = graph_push(3600).await;
    let (r, id) = started(&sb, &cfg).await;
    let expiry = sb.admin().subscriptions()[0].expiration;
    r.stop().await;

    // Later, the same configuration again: the subscription is renewed, not made anew.
    sb.admin().advance_clock(60);
    let r = start(&cfg).await;
    eventually("renewed", || {
        let subs = sb.admin().subscriptions();
        subs.len() == 1 && subs[0].expiration > expiry
    })
    .await;
    let subs = sb.admin().subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].id, id, "the recorded subscription was reused");
    eventually("the first pass ended", || {
        r.passes.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Its recorded clientState still matches what Graph sends.
    delivered_and_handled(&sb, &r, "after the restart").await;
    assert_eq!(r.push.stats(r.listen).unwrap().forged, 0);
    r.stop().await;
}

#[test]
fn push_mode_is_refused_where_it_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    // The error of a source of `kind` at `url` with `source_extra` and the `push` section.
    let refused_source = |kind: &str, url: &str, source_extra: &str, push: &str| {
        let text = ConfigText::new()
            .app(
                "demo",
                "contoso.example",
                "http://127.0.0.1:9",
                test_support::config::SECRET_LINE,
            )
            .source("s", kind, "demo", HELPDESK, url, source_extra)
            .section(push)
            .mailbox(HELPDESK, &[])
            .default_rule("DESK")
            .text();
        Config::parse(&text, &dir.path().join("m.toml"))
            .expect_err("refused")
            .to_string()
    };
    let refused = |source_extra: &str, push: &str| {
        refused_source("graph", "http://127.0.0.1:9/v1.0", source_extra, push)
    };
    let table = "[sources.push]\npublic_url = \"https://mail.example.com/n\"";
    let e = refused("mode = \"push\"", "");
    assert!(e.contains("[sources.push]"), "{e}");
    let e = refused("mode = \"delta\"", table);
    assert!(e.contains("only read with mode = \"push\""), "{e}");
    let e = refused(
        "mode = \"push\"",
        "[sources.push]\npublic_url = \"http://mail.example.com/n\"",
    );
    assert!(e.contains("https"), "{e}");
    let e = refused(
        "mode = \"push\"",
        &format!("{table}\nsafety_interval_secs = 0"),
    );
    assert!(e.contains("safety"), "{e}");
    // EWS streams its notifications: Graph's keys are refused there.
    let e = refused_source(
        "ews",
        "http://127.0.0.1:9/EWS/Exchange.asmx",
        "mode = \"push\"",
        table,
    );
    assert!(e.contains("streams"), "{e}");
}

/// The subscriber on its own (graph_mail::push behind m365mail's listener): renewed before it
/// expires.
#[tokio::test]
async fn the_subscription_is_renewed_before_it_expires() {
    let sb = Sandbox::builder().start().await.unwrap();
    let hub = graph_mail::push::PushHub::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = m365mail::push::router(hub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tokens = test_support::SandboxTokens::graph_app(&sb);
    let ep =
        graph_mail::Endpoint::custom(&sb.graph_url(), graph_mail::Mailbox::user(HELPDESK)).unwrap();
    let client = graph_mail::GraphClient::builder(ep, tokens)
        .build()
        .unwrap();
    let url = url::Url::parse(&format!("http://{addr}/n")).unwrap();
    let wake = Arc::new(tokio::sync::Notify::new());
    // A four-second lifetime, renewed when half of it is left.
    let subscriber = graph_mail::push::PushSubscriber::builder(client, "s", "inbox", url)
        .lifetime(Duration::from_secs(4))
        .renew_before(Duration::from_secs(2))
        .build(&hub, wake);
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    tokio::spawn(subscriber.run(async move { stop.stopped().await }));
    eventually("subscribed", || sb.admin().subscriptions().len() == 1).await;
    let first = sb.admin().subscriptions()[0].clone();
    eventually("renewed", || {
        sb.admin().subscriptions()[0].expiration > first.expiration
    })
    .await;
    assert_eq!(sb.admin().subscriptions()[0].id, first.id);
    shutdown.trigger();
}

/// Under every notification fault at once — dropped, duplicated, delayed, reordered — and a
/// subscription removed half-way, each message is handed over exactly once: notifications only
/// wake the delta round, the safety timer catches up the dropped ones, the ledger and the
/// deltaLink keep repeats out.
#[tokio::test]
async fn every_message_is_handed_over_once_under_notification_faults() {
    let (sb, dir, cfg) = graph_push(1).await;
    let (r, first) = started(&sb, &cfg).await;
    let before = r.handled.load(Ordering::SeqCst);
    let mut faults = sandbox::NotificationFaults::default();
    faults.drop_rate = 0.3;
    faults.duplicate_rate = 0.3;
    faults.max_delay_ms = 300;
    faults.reorder = true;
    faults.seed = 20;
    sb.admin().set_notification_faults(faults);
    const N: usize = 40;
    for i in 0..N {
        deliver(&sb, &format!("faulty {i}"));
        if i == N / 2 {
            sb.admin()
                .lifecycle_event(&first, sandbox::LifecycleEvent::SubscriptionRemoved)
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually("all handled", || {
        r.handled.load(Ordering::SeqCst) >= before + N
    })
    .await;
    // Two more safety rounds and the notifications still in flight: nothing comes twice.
    let passes = r.passes.load(Ordering::SeqCst);
    eventually("two more passes", || {
        r.passes.load(Ordering::SeqCst) >= passes + 2
    })
    .await;
    assert_eq!(r.handled.load(Ordering::SeqCst), before + N);
    let stats = sb.admin().notification_stats();
    assert!(stats.dropped > 0 && stats.duplicated > 0, "{stats:?}");
    let subs = sb.admin().subscriptions();
    assert!(subs.len() == 1 && subs[0].id != first, "made again");
    let mut subjects: Vec<String> = written(dir.path())
        .into_iter()
        .filter(|s| s.starts_with("faulty "))
        .collect();
    subjects.dedup();
    assert_eq!(subjects.len(), N, "every message written once");
    r.stop().await;
}

#[tokio::test]
async fn reauthorization_required_renews_the_subscription() {
    let (sb, _dir, cfg) = graph_push(3600).await;
    let (r, id) = started(&sb, &cfg).await;
    let expiry = sb.admin().subscriptions()[0].expiration;
    sb.admin().advance_clock(60);
    sb.admin()
        .lifecycle_event(&id, sandbox::LifecycleEvent::ReauthorizationRequired)
        .unwrap();
    eventually("renewed", || {
        let subs = sb.admin().subscriptions();
        subs.len() == 1 && subs[0].expiration > expiry
    })
    .await;
    assert_eq!(
        sb.admin().subscriptions()[0].id,
        id,
        "the same subscription"
    );
    r.stop().await;
}

/// An EWS source in push mode, its safety timer and poll interval an hour: only the stream
/// (and its catch-ups) can bring mail within the tests' bounds.
fn ews_config(sb: &Sandbox, dir: &Path) -> Config {
    let text = ConfigText::ews_push(sb, "helpdesk-ews", HELPDESK, &dir.join("out")).text();
    Config::parse(&text, &dir.join("m365mail.toml")).expect("configuration")
}

/// A sandbox, a directory, the [`ews_config`] over both, and the handler started on it, its
/// first two passes over (the first, and the one the new streaming connection asks for).
async fn ews_started() -> (Sandbox, tempfile::TempDir, Config, Running) {
    let sb = Sandbox::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ews_config(&sb, dir.path());
    let r = start(&cfg).await;
    eventually("two passes", || r.passes.load(Ordering::SeqCst) >= 2).await;
    (sb, dir, cfg, r)
}

/// EWS in push mode with the stream broken: mail delivered while every streaming subscription
/// is lost and refused (the sandbox's failover fault) is caught up through SyncFolderItems
/// when the stream is back, and mail delivered while the handler is stopped is handed over
/// after the restart from the saved sync state (`ews-sync.json` beside the ledger); each
/// message once. Each start has a new in-memory ledger, so a message handed over again after
/// the restart would be handled again and counted.
#[tokio::test]
async fn an_ews_push_source_hands_over_mail_from_a_broken_stream_once() {
    let (sb, dir, cfg, r) = ews_started().await;
    eventually("subscribed", || sb.admin().ews_subscriptions() == 1).await;
    let before = r.handled.load(Ordering::SeqCst);
    sb.admin().set_ews_streaming_down(true);
    for i in 0..3 {
        deliver(&sb, &format!("dark {i}"));
    }
    assert_eq!(
        sb.admin().ews_subscriptions(),
        0,
        "no subscription saw them"
    );
    sb.admin().set_ews_streaming_down(false);
    eventually("caught up", || {
        r.handled.load(Ordering::SeqCst) >= before + 3
    })
    .await;
    eventually("subscribed again", || sb.admin().ews_subscriptions() == 1).await;
    delivered_and_handled(&sb, &r, "after the outage").await;
    assert_eq!(r.handled.load(Ordering::SeqCst), before + 4);
    r.stop().await;
    assert!(dir.path().join("out/ews-sync.json").is_file());

    deliver(&sb, "while stopped 0");
    deliver(&sb, "while stopped 1");
    let r = start(&cfg).await;
    eventually("the mail of the stop", || {
        r.handled.load(Ordering::SeqCst) >= 2
    })
    .await;
    delivered_and_handled(&sb, &r, "after the restart").await;
    assert_eq!(
        r.handled.load(Ordering::SeqCst),
        3,
        "nothing handled before the stop came again"
    );
    r.stop().await;
    let subjects: Vec<String> = written(dir.path())
        .into_iter()
        .filter(|s| s.starts_with("dark") || s.starts_with("after") || s.starts_with("while"))
        .collect();
    assert_eq!(
        subjects,
        [
            "after the outage",
            "after the restart",
            "dark 0",
            "dark 1",
            "dark 2",
            "while stopped 0",
            "while stopped 1"
        ],
        "each written once"
    );
}

/// EWS in push mode: streaming notifications wake the source (no listener, no public URL).
#[tokio::test]
async fn an_ews_source_in_push_mode_handles_mail_as_it_arrives() {
    let (sb, _dir, _cfg, r) = ews_started().await;
    delivered_and_handled(&sb, &r, "streamed").await;
    r.stop().await;
}
