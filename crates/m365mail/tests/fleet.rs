//! `m365mail worker`: three worker processes on one PostgreSQL database drain several mailboxes
//! (Graph and EWS) of the sandbox while one is SIGKILLed and one is SIGSTOPped past its lease:
//! every message is handled and acknowledged once in the ledger, nothing is recorded under a
//! stale epoch, the workers share one token per resource, the database dropping every
//! connection twice is survived, and a clean stop hands the leases back. And push mode in a
//! fleet (issue #20): a notification reaching the worker that does not hold the source wakes
//! the one that does, the next holder reuses the recorded subscription, a removed source's
//! subscription is deleted, and an EWS source's streaming watcher runs on its lease holder.
//!
//! Needs a PostgreSQL server: `M365MAIL_TEST_POSTGRES` (set by `cargo xtask ci`, which starts a
//! throw-away one). Without it the test says it was skipped, and fails under `CI=true`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Sandbox, Seed};
use test_support::config::Config;
use test_support::postgres::TestDatabase;
use test_support::process::Reaped;

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");
const MAILBOXES: usize = 6;
const PER_MAILBOX: usize = 100;
/// Messages per mailbox that wait before the workers start; the rest arrive after the faults.
const FIRST_WAVE: usize = 30;

fn config(sb: &Sandbox, out: &Path) -> String {
    let mut cfg = Config::demo(sb);
    for i in 0..MAILBOXES {
        let mailbox = format!("fleet{i}@contoso.example");
        // Every third source reads through EWS, the others through Graph (delta state in the
        // database).
        let (kind, url, extra) = if i % 3 == 2 {
            (
                "ews",
                sb.ews_url(),
                "acknowledge = \"move:Processed\"".to_owned(),
            )
        } else {
            (
                "graph",
                sb.graph_url(),
                "acknowledge = \"move:Processed\"\nmode = \"delta\"".to_owned(),
            )
        };
        cfg = cfg
            .source(&format!("box{i}"), kind, "demo", &mailbox, &url, &extra)
            .mailbox(&mailbox, &[])
            .default_rule(&format!("P{i}"));
    }
    cfg.handler(out, "batch_size = 5\npoll_interval_secs = 1")
        .text()
}

fn spawn_worker(cfg: &Path, url: &str, name: &str) -> Child {
    let log = std::fs::File::create(cfg.with_file_name(format!("{name}.log"))).unwrap();
    Command::new(BIN)
        .args(["worker", "--lease-secs", "3", "--name", name, "--config"])
        .arg(cfg)
        .env("M365MAIL_STORE", url)
        .env("M365MAIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The workers' logs, for a failure's message.
fn logs(dir: &Path) -> String {
    ["w1", "w2", "w3"]
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            format!(
                "--- {n}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn signal(child: &Child, sig: &str) {
    assert!(test_support::process::signal(child, sig), "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_drain_the_mailboxes_once_through_a_kill_and_a_pause() {
    let Some(db) = TestDatabase::create("m365mail_fleet").await else {
        return;
    };
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let admin = sb.admin();
    // Mail arrives in two waves: the first before the workers start, the second once the
    // faults have struck, so that whatever the machine's speed the faults always meet mail
    // still waiting (a fast machine drained the whole of one wave in under two seconds).
    let inject = |range: std::ops::Range<usize>| {
        for i in 0..MAILBOXES {
            let mailbox = format!("fleet{i}@contoso.example");
            for j in range.clone() {
                let mime = format!(
                    "From: c{j}@fabrikam.example\r\nTo: {mailbox}\r\nSubject: fleet {i}/{j}\r\n\
                     Message-ID: <fleet-{i}-{j}@fabrikam.example>\r\n\r\nbody\r\n"
                );
                admin.inject_mime(&mailbox, &mime).unwrap();
            }
        }
    };
    for i in 0..MAILBOXES {
        admin
            .add_shared_mailbox(&format!("fleet{i}@contoso.example"), &[])
            .unwrap();
    }
    inject(0..FIRST_WAVE);
    let total = MAILBOXES * PER_MAILBOX;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, config(&sb, &dir.path().join("out"))).unwrap();
    // The schema, as the first worker would create it (so the test can watch the ledger from
    // the start).
    fleet::PgStore::connect(db.url()).await.unwrap();
    admin.clear_request_log();

    let mut workers: Vec<Reaped> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| Reaped(spawn_worker(&cfg, db.url(), n)))
        .collect();
    let acknowledged = || async {
        db.query_i64("SELECT count(*) FROM fleet_ledger WHERE acknowledged")
            .await
    };
    // Once some mail has flowed: SIGKILL one worker, and SIGSTOP another for longer than its
    // lease, then let it go on (it must notice it lost its sources and not record anything).
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged().await < 20 {
        assert!(
            Instant::now() < deadline,
            "no progress\n{}",
            logs(dir.path())
        );
        for w in &mut workers {
            let exited = w.try_wait().unwrap();
            assert!(
                exited.is_none(),
                "a worker exited: {exited:?}\n{}",
                logs(dir.path())
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers[0].kill().unwrap();
    let _ = workers[0].wait();
    signal(&workers[1], "-STOP");
    // Meanwhile the database drops every connection, as a restart or a failover would: the
    // workers keep going through their pools' new connections.
    inject(FIRST_WAVE..PER_MAILBOX);
    tokio::time::sleep(Duration::from_secs(2)).await;
    db.terminate_connections().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(&workers[1], "-CONT");
    db.terminate_connections().await;
    while acknowledged().await < total as i64 {
        assert!(
            Instant::now() < deadline,
            "{} of {total} acknowledged\n{}",
            acknowledged().await,
            logs(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A clean stop hands the leases back.
    for w in &workers[1..] {
        signal(w, "-TERM");
    }
    for w in &mut workers[1..] {
        let status = w.wait().unwrap();
        assert!(status.success(), "{status}");
    }
    let held = db
        .query_i64("SELECT count(*) FROM fleet_leases WHERE worker IS NOT NULL")
        .await;
    assert_eq!(held, 0, "leases left behind after a clean stop");

    // Every message handled and acknowledged once, by the ledger.
    assert_eq!(
        db.query_i64("SELECT count(*) FROM fleet_ledger WHERE handled AND acknowledged")
            .await,
        total as i64
    );
    let twice = handled_twice(&db).await;
    assert_eq!(twice, 0, "a message recorded as handled twice");
    // No entry was recorded under an epoch older than one already used for its source before
    // it: the log, in order, never goes back in epoch per source.
    let stale = db
        .query_i64(
            "SELECT count(*) FROM (SELECT source, epoch, max(epoch) OVER (PARTITION BY source \
             ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before \
             FROM fleet_ledger_log) AS t WHERE epoch < before",
        )
        .await;
    assert_eq!(stale, 0, "an entry recorded under a stale epoch");
    // The kill and the pause moved sources: some source was served at more than one epoch.
    let moved = db
        .query_i64("SELECT count(*) FROM fleet_leases WHERE epoch > 1")
        .await;
    assert!(moved > 0, "no source changed hands");
    // One token per resource (Graph, EWS) for the whole fleet, the killed worker included.
    let log = admin.request_log();
    assert_eq!(log.token_requests(), 2, "token requests across the fleet");
    // The mailboxes are empty: everything was moved to Processed.
    let mut left: HashMap<String, usize> = HashMap::new();
    for i in 0..MAILBOXES {
        let mailbox = format!("fleet{i}@contoso.example");
        let n = test_support::harness::inbox_count(&admin, &mailbox);
        if n > 0 {
            left.insert(mailbox, n);
        }
    }
    assert!(left.is_empty(), "{left:?}");
    sb.shutdown().await;
}

/// Messages recorded as handled more than once in the fleet's ledger log.
async fn handled_twice(db: &TestDatabase) -> i64 {
    db.query_i64(
        "SELECT count(*) FROM (SELECT key FROM fleet_ledger_log \
         WHERE entry->>'state' = 'handled' GROUP BY key HAVING count(*) > 1) AS t",
    )
    .await
}

/// A worker started while the database is down waits for it (and says so) instead of exiting,
/// and still stops cleanly; a URL that cannot be right fails at once. No database needed.
#[test]
fn a_worker_waits_for_an_unreachable_database_and_refuses_a_bad_url() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, "[handler]\noutput_dir = \"out\"\n").unwrap();
    let log = dir.path().join("w.log");
    // Port 1 on loopback: nothing listens there.
    let mut worker = Reaped(
        Command::new(BIN)
            .args(["worker", "--metrics", "off", "--config"])
            .arg(&cfg)
            .env("M365MAIL_STORE", "postgres://postgres@127.0.0.1:1/fleet")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("trying again")
    {
        assert!(Instant::now() < deadline, "no retry said");
        assert!(worker.try_wait().unwrap().is_none(), "the worker exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(worker.try_wait().unwrap().is_none(), "the worker exited");
    signal(&worker, "-TERM");
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status}");
    let bad = Command::new(BIN)
        .args(["worker", "--metrics", "off", "--config"])
        .arg(&cfg)
        .env(
            "M365MAIL_STORE",
            "postgres://u:secret-pw@127.0.0.1:notaport/db",
        )
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("--store"), "{said}");
    assert!(!said.contains("secret-pw"), "{said}");
}

/// The sandbox's helpdesk mailbox (the push tests').
const HELPDESK: &str = "helpdesk@contoso.example";

/// The sandbox's helpdesk mailbox as the Graph source `helpdesk` in push mode, listening on
/// `listen_port`, its notifications sent to `public_port`, its safety timer an hour.
fn push_source(cfg: Config, sb: &Sandbox, public_port: u16, listen_port: u16) -> Config {
    cfg.helpdesk_graph(sb, "mode = \"push\"")
        .section(&format!(
            "[sources.push]\npublic_url = \"http://127.0.0.1:{public_port}/graph/notify\"\n\
         listen = \"127.0.0.1:{listen_port}\"\nsafety_interval_secs = 3600"
        ))
        .mailbox(HELPDESK, &[])
        .default_rule("DESK")
}

/// The "load balancer" in front of the workers' listeners: forwards each POST to the worker
/// listening on `target`, and counts what it forwarded to each.
#[derive(Default)]
struct Balancer {
    target: std::sync::atomic::AtomicU16,
    forwarded: std::sync::Mutex<HashMap<u16, usize>>,
}

async fn balance(
    axum::extract::State(b): axum::extract::State<std::sync::Arc<Balancer>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let port = b.target.load(std::sync::atomic::Ordering::SeqCst);
    *b.forwarded.lock().unwrap().entry(port).or_default() += 1;
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graph/notify{query}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let Ok(answer) = answer else {
        return http::StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = answer.text().await.unwrap_or_default();
    let status = http::StatusCode::from_u16(status).unwrap();
    match content_type {
        Some(ct) => (status, [(http::header::CONTENT_TYPE, ct)], text).into_response(),
        None => (status, text).into_response(),
    }
}

/// Two workers and a Graph source in push mode (issue #20), behind one public URL that a
/// balancer sends to the worker NOT holding the source: each message is handed over once,
/// brought by its notification (the poll interval and the safety timer are an hour), which the
/// other worker checks against the subscription recorded in PostgreSQL and passes on with
/// NOTIFY; when the holder stops, the other takes the lease and reuses the recorded
/// subscription, so the sandbox ends with exactly one live subscription for the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_serve_a_push_source_woken_through_whichever_worker_got_the_notification() {
    let Some(db) = TestDatabase::create("m365mail_fleet_push").await else {
        return;
    };
    let sb = Sandbox::builder().start().await.unwrap();
    let admin = sb.admin();
    let balancer = std::sync::Arc::new(Balancer::default());
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_port = front.local_addr().unwrap().port();
    let app = axum::Router::new()
        .fallback(balance)
        .with_state(balancer.clone());
    tokio::spawn(async move { axum::serve(front, app).await });
    let dir = tempfile::tempdir().unwrap();
    let (port1, port2) = (
        test_support::process::free_port(),
        test_support::process::free_port(),
    );
    // The workers' files differ only in where each listens.
    let config_for = |name: &str, port: u16| {
        let text = push_source(Config::demo(&sb), &sb, front_port, port)
            .handler(&dir.path().join("out"), "poll_interval_secs = 3600")
            .text();
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let (cfg1, cfg2) = (config_for("w1", port1), config_for("w2", port2));
    fleet::PgStore::connect(db.url()).await.unwrap();
    let logs = || {
        ["w1", "w2"]
            .iter()
            .map(|n| {
                std::fs::read_to_string(dir.path().join(format!("{n}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    macro_rules! wait_until {
        ($what:expr, $cond:expr) => {
            while !$cond {
                assert!(
                    Instant::now() < deadline,
                    "timed out: {}\n{}",
                    $what,
                    logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
    }
    let holder = || async {
        db.client()
            .await
            .query_opt(
                "SELECT worker FROM fleet_leases WHERE source = 'helpdesk'",
                &[],
            )
            .await
            .unwrap()
            .and_then(|r| r.get::<_, Option<String>>(0))
    };
    let recorded = || async {
        db.client()
            .await
            .query(
                "SELECT id, client_state FROM fleet_subscriptions WHERE key = 'helpdesk'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    let handled = || async {
        db.query_i64("SELECT count(*) FROM fleet_ledger WHERE handled AND acknowledged")
            .await
    };
    let passes_done = |worker: &'static str| {
        let db = &db;
        async move {
            db.query_i64(&format!(
                "SELECT count(*) FROM fleet_source_status WHERE source = 'helpdesk' \
                 AND worker = '{worker}' AND last_pass_finished IS NOT NULL \
                 AND last_pass_finished >= last_pass_started"
            ))
            .await
        }
    };
    let deliver = |subject: &str| {
        let mime = format!(
            "From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n\
             Message-ID: <{}@fabrikam.example>\r\n\r\nbody\r\n",
            subject.replace(' ', "-")
        );
        admin.inject_mime(HELPDESK, &mime).unwrap();
    };

    // w1 alone: it takes the source and subscribes (validated through the balancer at w1).
    balancer
        .target
        .store(port1, std::sync::atomic::Ordering::SeqCst);
    let mut w1 = Reaped(spawn_worker(&cfg1, db.url(), "w1"));
    wait_until!(
        "w1 subscribed",
        holder().await.as_deref() == Some("w1")
            && admin.subscriptions().len() == 1
            && recorded().await.len() == 1
    );
    let first = admin.subscriptions()[0].clone();
    assert_eq!(
        recorded().await[0].0,
        first.id,
        "the subscription is recorded in PostgreSQL"
    );
    wait_until!("w1's first pass", passes_done("w1").await == 1);

    // w2 joins; the balancer now sends every notification to w2, which does not hold the source.
    let mut w2 = Reaped(spawn_worker(&cfg2, db.url(), "w2"));
    wait_until!(
        "w2 joined",
        db.query_i64("SELECT count(*) FROM fleet_workers WHERE worker = 'w2'")
            .await
            == 1
    );
    balancer
        .target
        .store(port2, std::sync::atomic::Ordering::SeqCst);
    for i in 0..3 {
        let before = handled().await;
        deliver(&format!("pushed via w2 {i}"));
        wait_until!(
            "handled through w2's notification",
            handled().await == before + 1
        );
    }
    assert_eq!(
        holder().await.as_deref(),
        Some("w1"),
        "w1 served the source throughout"
    );
    assert!(
        balancer
            .forwarded
            .lock()
            .unwrap()
            .get(&port2)
            .copied()
            .unwrap_or(0)
            >= 3,
        "the notifications reached w2"
    );

    // A forged notification (the right subscription id, a guessed clientState) reaching w2 is
    // checked against the record and goes no further.
    let forged = serde_json::json!({"value": [{
        "subscriptionId": first.id, "clientState": "a guess", "changeType": "created",
    }]});
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port2}/graph/notify"))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202, "answered like any notification");
    wait_until!(
        "w2 refused the forged notification",
        logs().contains("its clientState is not the subscription's")
    );

    // w1 stops: w2 takes the lease over and renews the recorded subscription.
    admin.advance_clock(60);
    signal(&w1, "-TERM");
    assert!(w1.wait().unwrap().success());
    wait_until!(
        "w2 holds the source",
        holder().await.as_deref() == Some("w2")
    );
    wait_until!("the subscription renewed", {
        let subs = admin.subscriptions();
        subs.len() == 1 && subs[0].expiration > first.expiration
    });
    assert_eq!(
        admin.subscriptions()[0].id,
        first.id,
        "reused, not made anew"
    );
    wait_until!("w2's first pass", passes_done("w2").await == 1);
    for i in 0..3 {
        let before = handled().await;
        deliver(&format!("pushed to w2 {i}"));
        wait_until!(
            "handled through w2's own notification",
            handled().await == before + 1
        );
    }

    // One live subscription, the one recorded; every message handled once.
    let subs = admin.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:?}");
    let rec = recorded().await;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].0, subs[0].id);
    let twice = handled_twice(&db).await;
    assert_eq!(twice, 0, "a message handed over twice");
    signal(&w2, "-TERM");
    assert!(w2.wait().unwrap().success());
    // Left in place for the next holder, and the secret in no log.
    assert_eq!(admin.subscriptions().len(), 1);
    assert_eq!(recorded().await.len(), 1);
    assert!(
        !logs().contains(&rec[0].1),
        "a clientState in a worker's log"
    );
    sb.shutdown().await;
}

/// A Graph push source added to the fleet's database is served in push mode (its listener
/// bound when the worker first sees it); once removed, no source needs its subscription, and
/// the worker deletes it (at Graph and in `fleet_subscriptions`) instead of leaking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_source_removed_from_the_fleet_has_its_subscription_deleted() {
    let Some(db) = TestDatabase::create("m365mail_fleet_retire").await else {
        return;
    };
    let sb = Sandbox::builder().start().await.unwrap();
    let admin = sb.admin();
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::process::free_port();
    let cfg = dir.path().join("w1.toml");
    let file = Config::demo(&sb)
        .handler(&dir.path().join("out"), "poll_interval_secs = 3600")
        .text();
    std::fs::write(&cfg, file).unwrap();
    let entry = push_source(Config::new(), &sb, port, port).text();
    let store = fleet::PgStore::connect(db.url()).await.unwrap();
    for e in m365mail::catalog::entries_of(&entry).unwrap() {
        store.catalog().put(e.kind, &e.name, &e.toml).await.unwrap();
    }
    let recorded = || db.query_i64("SELECT count(*) FROM fleet_subscriptions");
    let log = || std::fs::read_to_string(dir.path().join("w1.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut w1 = Reaped(spawn_worker(&cfg, db.url(), "w1"));
    while !(admin.subscriptions().len() == 1 && recorded().await == 1) {
        assert!(Instant::now() < deadline, "not subscribed\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        store
            .catalog()
            .remove(fleet::EntryKind::Source, "helpdesk")
            .await
            .unwrap()
    );
    while !(admin.subscriptions().is_empty() && recorded().await == 0) {
        assert!(Instant::now() < deadline, "not deleted\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&w1, "-TERM");
    assert!(w1.wait().unwrap().success());
    sb.shutdown().await;
}

/// An EWS source in push mode on a worker: its streaming watcher runs on the worker holding
/// the lease, so new mail is handled without waiting for the hour-long safety timer; mail that
/// arrives while the stream is down is caught up through SyncFolderItems from the state in
/// `fleet_ews_sync` once it is back, each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_an_ews_source_in_push_mode() {
    let Some(db) = TestDatabase::create("m365mail_fleet_ews_push").await else {
        return;
    };
    let sb = Sandbox::builder().start().await.unwrap();
    let admin = sb.admin();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w1.toml");
    Config::ews_push(&sb, "helpdesk-ews", HELPDESK, &dir.path().join("out")).write(&cfg);
    fleet::PgStore::connect(db.url()).await.unwrap();
    let log = || std::fs::read_to_string(dir.path().join("w1.log")).unwrap_or_default();
    let handled =
        || db.query_i64("SELECT count(*) FROM fleet_ledger WHERE handled AND acknowledged");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut w1 = Reaped(spawn_worker(&cfg, db.url(), "w1"));
    // The first pass, and the one the new streaming connection asks for.
    while db
        .query_i64(
            "SELECT count(*) FROM fleet_source_status WHERE source = 'helpdesk-ews' \
             AND last_pass_finished IS NOT NULL AND last_pass_finished >= last_pass_started",
        )
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "no first pass\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..2 {
        let before = handled().await;
        let mime = format!(
            "From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: streamed {i}\r\n\
             Message-ID: <streamed-{i}@fabrikam.example>\r\n\r\nbody\r\n"
        );
        admin.inject_mime(HELPDESK, &mime).unwrap();
        while handled().await != before + 1 {
            assert!(Instant::now() < deadline, "not handled\n{}", log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The stream goes down (a failover: subscriptions lost, Subscribe refused); two messages
    // arrive that no notification announces; the stream comes back.
    let before = handled().await;
    admin.set_ews_streaming_down(true);
    for i in 0..2 {
        let mime = format!(
            "From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: unannounced {i}\r\n\
             Message-ID: <unannounced-{i}@fabrikam.example>\r\n\r\nbody\r\n"
        );
        admin.inject_mime(HELPDESK, &mime).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    admin.set_ews_streaming_down(false);
    while handled().await != before + 2 {
        assert!(Instant::now() < deadline, "not caught up\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(handled_twice(&db).await, 0);
    // The catch-up ran from the fleet's EWS sync state, not the unread listing.
    assert_eq!(
        db.query_i64("SELECT count(*) FROM fleet_ews_sync WHERE state ? 'sync_state'")
            .await,
        1,
        "{}",
        log()
    );
    signal(&w1, "-TERM");
    assert!(w1.wait().unwrap().success());
    sb.shutdown().await;
}
