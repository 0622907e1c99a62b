//! Operating a running fleet: a source added with `m365mail sources add` is served without a
//! restart and shows in `m365mail status`; `set-routing` changes where its mail goes; `remove`
//! hands its lease back; an inline secret is refused without being echoed.
//!
//! Needs PostgreSQL (`M365MAIL_TEST_POSTGRES`, set by `cargo xtask ci`); skipped without it,
//! failing under `CI=true`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Sandbox, Seed};
use test_support::config::Config;
use test_support::postgres::TestDatabase;
use test_support::process::{Reaped, terminate};

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");

fn m365mail(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("M365MAIL_STORE", db.url())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(db: &TestDatabase, cfg: &Path) -> serde_json::Value {
    let out = m365mail(
        db,
        &["status", "--json", "--config", &cfg.display().to_string()],
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn source<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

fn mail(sb: &Sandbox, to: &str, i: usize) {
    let mime = format!(
        "From: c{i}@fabrikam.example\r\nTo: {to}\r\nSubject: op {i}\r\n\
         Message-ID: <op-{i}@fabrikam.example>\r\n\r\nbody\r\n"
    );
    sb.admin().inject_mime(to, &mime).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_added_to_a_running_fleet_is_served_shown_rerouted_and_removed() {
    let Some(db) = TestDatabase::create("m365mail_operate").await else {
        return;
    };
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    sb.admin()
        .add_shared_mailbox("added@contoso.example", &[])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("m365mail.toml");
    // The file has the app and one source; the fleet's database will get the second.
    let text = Config::demo(&sb)
        .helpdesk_graph(&sb, "acknowledge = \"move:Processed\"")
        .mailbox("helpdesk@contoso.example", &[])
        .default_rule("DESK")
        .handler(&out, "poll_interval_secs = 1")
        .text();
    std::fs::write(&cfg, text).unwrap();
    let cfg_arg = cfg.display().to_string();
    // `m365mail sources --config <the file> <args>`.
    let sources = |args: &[&str]| {
        let mut all = vec!["sources", "--config", &cfg_arg];
        all.extend(args);
        m365mail(&db, &all)
    };
    let mut worker = Reaped(
        Command::new(BIN)
            .args([
                "worker",
                "--lease-secs",
                "3",
                "--name",
                "w1",
                "--config",
                &cfg_arg,
            ])
            .env("M365MAIL_STORE", db.url())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("the file's source ONLINE", || {
        source(&status(&db, &cfg), "helpdesk").is_some_and(|s| s["status"] == "ONLINE")
    })
    .await;

    // A secret in clear text is refused, and not echoed.
    let leaky = dir.path().join("leaky.toml");
    std::fs::write(
        &leaky,
        "[[apps]]\nname = \"other\"\ntenant = \"t\"\nclient_id = \"c\"\n\
         client_secret = \"hunter2-do-not-store\"\n",
    )
    .unwrap();
    let refused = sources(&["add", "--file", &leaky.display().to_string()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("client_secret_env"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
    // A source that does not resolve (an unknown app) is refused before it is stored.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "[[sources]]\nname = \"broken\"\nkind = \"graph\"\napp = \"nope\"\n\
         mailbox = \"added@contoso.example\"\n[sources.routing.mailbox]\n\
         primary = \"added@contoso.example\"\n",
    )
    .unwrap();
    let refused = sources(&["add", "--file", &broken.display().to_string()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nope"));

    // Added while the worker runs: served without a restart.
    let added = dir.path().join("added.toml");
    std::fs::write(
        &added,
        format!(
            "[[sources]]\nname = \"added\"\nkind = \"graph\"\napp = \"demo\"\n\
             mailbox = \"added@contoso.example\"\nurl = \"{}\"\nacknowledge = \"move:Processed\"\n\
             [sources.routing.mailbox]\nprimary = \"added@contoso.example\"\n\
             [[sources.routing.rules]]\nmatch = \"default\"\nproject = \"ADDED\"\n",
            sb.graph_url()
        ),
    )
    .unwrap();
    let said = ok(&sources(&["add", "--file", &added.display().to_string()]));
    assert!(said.contains("stored source added"), "{said}");
    let listed = ok(&sources(&["list"]));
    assert!(
        listed.contains("helpdesk\tfile") && listed.contains("added\tdatabase"),
        "{listed}"
    );
    mail(&sb, "added@contoso.example", 1);
    eventually("the added source's mail handled", || {
        files_in(&out.join("ADDED")) == 1
    })
    .await;
    let s = status(&db, &cfg);
    let a = source(&s, "added").unwrap();
    assert_eq!(a["status"], "ONLINE");
    assert_eq!(a["worker"], "w1");
    assert_eq!(a["acknowledgements_owed"], 0);
    assert!(
        s["workers"][0]["sources"].as_array().unwrap().len() == 2,
        "{s}"
    );

    // Rerouted: new mail goes to the new project.
    let routing = dir.path().join("routing.toml");
    std::fs::write(
        &routing,
        "[mailbox]\nprimary = \"added@contoso.example\"\n\
         [[rules]]\nmatch = \"default\"\nproject = \"REROUTED\"\n",
    )
    .unwrap();
    ok(&sources(&[
        "set-routing",
        "added",
        "--file",
        &routing.display().to_string(),
    ]));
    let shown = ok(&sources(&["show", "added"]));
    assert!(shown.contains("REROUTED"), "{shown}");
    mail(&sb, "added@contoso.example", 2);
    eventually("the rerouted mail handled", || {
        files_in(&out.join("REROUTED")) == 1
    })
    .await;

    // Removed: its lease is handed back, and it is no longer a source of the fleet. A source
    // of the file cannot be removed through the database.
    ok(&sources(&["remove", "added"]));
    assert!(source(&status(&db, &cfg), "added").is_none());
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = || {
        db.query_i64(
            "SELECT count(*) FROM fleet_leases WHERE source = 'added' AND worker IS NOT NULL",
        )
    };
    while held().await > 0 {
        assert!(
            Instant::now() < deadline,
            "the removed source's lease was never handed back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = sources(&["remove", "helpdesk"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("m365mail.toml"));
    mail(&sb, "added@contoso.example", 3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        files_in(&out.join("REROUTED")),
        1,
        "a removed source is not served"
    );

    assert!(terminate(&mut worker).unwrap().success());
    sb.shutdown().await;
}

/// A source its worker reported paused (throttled, with a wait) shows as PAUSED in `m365mail
/// status`, with the time left, and with `paused_until` in `--json`; the next pass ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_paused_source_until_its_next_pass() {
    let Some(db) = TestDatabase::create("m365mail_paused").await else {
        return;
    };
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m365mail.toml");
    let text = Config::demo(&sb)
        .helpdesk_graph(&sb, "")
        .mailbox("helpdesk@contoso.example", &[])
        .default_rule("DESK")
        .handler(&dir.path().join("out"), "")
        .text();
    std::fs::write(&cfg, text).unwrap();
    let reports = fleet::PgStore::connect(db.url()).await.unwrap().status();
    let until = std::time::SystemTime::now() + Duration::from_secs(300);
    for event in [
        fleet::SourceEvent::Started { waiting: Some(9) },
        fleet::SourceEvent::Paused { until },
        fleet::SourceEvent::Finished,
    ] {
        reports.record("helpdesk", "w1", &event).await.unwrap();
    }
    let cfg_arg = cfg.display().to_string();
    let text = ok(&m365mail(&db, &["status", "--config", &cfg_arg]));
    let line = text
        .lines()
        .find(|l| l.starts_with("helpdesk"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("PAUSED"), "{text}");
    assert!(
        text.contains("throttled by the service: asked nothing for 29"),
        "{text}"
    );
    let json = status(&db, &cfg);
    let s = source(&json, "helpdesk").unwrap();
    assert_eq!(s["status"], "ONLINE", "{json}");
    assert!(s["paused_until"].is_string(), "{json}");
    reports
        .record(
            "helpdesk",
            "w1",
            &fleet::SourceEvent::Started { waiting: None },
        )
        .await
        .unwrap();
    let json = status(&db, &cfg);
    assert!(
        source(&json, "helpdesk").unwrap()["paused_until"].is_null(),
        "{json}"
    );
    let text = ok(&m365mail(&db, &["status", "--config", &cfg_arg]));
    assert!(!text.contains("PAUSED"), "{text}");
}
