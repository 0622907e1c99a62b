//! The binary's metrics end to end: `m365mail worker --metrics` (on PostgreSQL) and `run`
//! serving the series, and the loopback guard of `--metrics`.

use super::*;
use test_support::process::terminate;

#[test]
fn a_worker_refuses_a_metrics_address_beyond_loopback_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, "").unwrap();
    let out = Command::new(BIN)
        .args(["worker", "--metrics", "0.0.0.0:0", "--config"])
        .arg(&cfg)
        // Nothing listens there: the refusal must come before any connection.
        .env("M365MAIL_STORE", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve metrics on 0.0.0.0:0")
            && stderr.contains("--metrics-allow-non-loopback"),
        "{stderr}"
    );
    // A malformed address is refused by the command line itself.
    let out = Command::new(BIN)
        .args(["worker", "--metrics", "localhost", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--metrics"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `m365mail.toml` in `dir`: one Graph source `box` on the demo helpdesk, its `extra` lines,
/// everything to project `P`, the handler writing to `dir/out` with `handler` lines.
fn helpdesk_config(
    sb: &Sandbox,
    dir: &std::path::Path,
    extra: &str,
    handler: &str,
) -> std::path::PathBuf {
    let cfg = dir.join("m365mail.toml");
    let text = test_support::config::Config::demo(sb)
        .source(
            "box",
            "graph",
            "demo",
            "helpdesk@contoso.example",
            &sb.graph_url(),
            extra,
        )
        .mailbox("helpdesk@contoso.example", &[])
        .default_rule("P")
        .handler(&dir.join("out"), handler)
        .text();
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// The default address taken (here, or by another worker on this machine): the worker warns
/// and goes on without metrics, as far as its store (unreachable here) lets it.
#[tokio::test]
async fn a_worker_goes_on_without_metrics_when_the_default_port_is_taken() {
    // Held by this test, or already by another worker: taken either way.
    let _held = std::net::TcpListener::bind(m365mail::metrics::DEFAULT_ADDR);
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = helpdesk_config(&sb, dir.path(), "", "");
    let log = dir.path().join("worker.log");
    let mut worker = test_support::process::Reaped(
        Command::new(BIN)
            .args(["worker", "--config"])
            .arg(&cfg)
            .env("M365MAIL_STORE", "postgres://nobody@127.0.0.1:1/none")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // It goes on without metrics, as far as the store, which it then waits for (the database
    // is unreachable here); it stops when asked.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let stderr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("trying again") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never reached the store: {text}"
        );
        assert!(worker.try_wait().unwrap().is_none(), "it exited: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        stderr.contains("no metrics endpoint: 127.0.0.1:9464 (the default) is not free"),
        "{stderr}"
    );
    assert!(stderr.contains("--store"), "{stderr}");
    assert!(terminate(&mut worker).unwrap().success());
    sb.shutdown().await;
}

/// `m365mail worker --metrics 127.0.0.1:PORT` on PostgreSQL: the scrape counts every delivered
/// message as handled and no acknowledgement owed, the source's gauges, the lease and the store
/// timings appear, and the worker is healthy and ready; after SIGTERM it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_its_metrics_end_to_end() {
    let Some(db) = test_support::postgres::TestDatabase::create("m365mail_metrics").await else {
        return;
    };
    const MESSAGES: usize = 12;
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let admin = sb.admin();
    let mailbox = "metrics@contoso.example";
    admin.add_shared_mailbox(mailbox, &[]).unwrap();
    for j in 0..MESSAGES {
        let mime = format!(
            "From: c{j}@fabrikam.example\r\nTo: {mailbox}\r\nSubject: metrics {j}\r\n\
             Message-ID: <metrics-{j}@fabrikam.example>\r\n\r\nbody\r\n"
        );
        admin.inject_mime(mailbox, &mime).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m365mail.toml");
    let text = test_support::config::Config::demo(&sb)
        .source(
            "box",
            "graph",
            "demo",
            mailbox,
            &sb.graph_url(),
            "acknowledge = \"move:Processed\"",
        )
        .mailbox(mailbox, &[])
        .default_rule("P")
        .handler(
            &dir.path().join("out"),
            "batch_size = 5\npoll_interval_secs = 1",
        )
        .text();
    std::fs::write(&cfg, text).unwrap();
    let port = test_support::process::free_port();
    let log = std::fs::File::create(dir.path().join("worker.log")).unwrap();
    let mut worker: Child = Command::new(BIN)
        .args(["worker", "--lease-secs", "3", "--name", "wm"])
        .args(["--metrics", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&cfg)
        .env("M365MAIL_STORE", db.url())
        .env("M365MAIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let worker_log = || std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let handled = "m365mail_messages_handled_total{source=\"box\"}";
    let owed = "m365mail_acknowledgements_owed{source=\"box\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker exited\n{}",
            worker_log()
        );
        if let Ok(r) = http.get(format!("{base}/metrics")).send().await
            && let Ok(text) = r.text().await
            && samples(&text).get(handled) == Some(&(MESSAGES as f64))
            // and a pass has checked the ledger's debt since: nothing owed.
            && samples(&text).get(owed) == Some(&0.0)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "not all handled in time\n{}",
            worker_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let s = samples(&text);
    assert_eq!(s["m365mail_leases_held"], 1.0, "{text}");
    assert_eq!(s["m365mail_source_offline{source=\"box\"}"], 0.0, "{text}");
    assert!(
        s.contains_key("m365mail_source_waiting_messages{source=\"box\"}"),
        "{text}"
    );
    assert!(
        s["m365mail_store_operation_seconds_count{store=\"ledger\",operation=\"append\"}"] >= 1.0,
        "{text}"
    );
    assert!(
        s["m365mail_store_operation_seconds_count{store=\"leases\",operation=\"heartbeat\"}"]
            >= 1.0,
        "{text}"
    );
    assert_eq!(
        s["m365mail_token_requests_total{grant=\"client_credentials\",outcome=\"ok\"}"], 1.0,
        "{text}"
    );
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    // The ledger agrees with the counter.
    assert_eq!(
        db.query_i64("SELECT count(*) FROM fleet_ledger WHERE handled")
            .await,
        MESSAGES as i64
    );

    let status = terminate(&mut worker).unwrap();
    assert!(status.success(), "{status}\n{}", worker_log());
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "the endpoint ends with the worker"
    );
    sb.shutdown().await;
}

/// `m365mail run --metrics ADDR`: one process on local files serves the same endpoint as a
/// worker (it used to be the worker's alone), ready while it runs (no fleet heartbeat to go
/// by); and the loopback rule holds for it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_process_run_serves_metrics_too() {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let admin = sb.admin();
    for i in 0..5 {
        admin
            .inject_mime(
                "helpdesk@contoso.example",
                &format!(
                    "From: c@fabrikam.example\r\nTo: helpdesk@contoso.example\r\n\
                     Subject: m {i}\r\nMessage-ID: <run-metrics-{i}@fabrikam.example>\r\n\r\nx\r\n"
                ),
            )
            .unwrap();
    }
    // The demo tenant's own mail waits there too.
    let waiting = test_support::harness::inbox_count(&admin, "helpdesk@contoso.example") as f64;
    let dir = tempfile::tempdir().unwrap();
    let cfg = helpdesk_config(
        &sb,
        dir.path(),
        "acknowledge = \"move:Processed\"",
        "poll_interval_secs = 1",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut run = test_support::process::Reaped(
        Command::new(BIN)
            .args(["run", "--metrics", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let handled = loop {
        assert!(run.try_wait().unwrap().is_none(), "run exited");
        if let Ok(r) = http.get(format!("{base}/metrics")).send().await {
            let text = r.text().await.unwrap();
            let n = samples(&text)
                .get("m365mail_messages_handled_total{source=\"box\"}")
                .copied()
                .unwrap_or(0.0);
            if n >= waiting {
                break n;
            }
        }
        assert!(Instant::now() < deadline, "no metrics of the run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(handled, waiting);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap().contains("one process"));
    let _ = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status();
    assert!(run.wait().unwrap().success());
    sb.shutdown().await;

    let refused = Command::new(BIN)
        .args(["run", "--metrics", "0.0.0.0:0", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--metrics-allow-non-loopback"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
