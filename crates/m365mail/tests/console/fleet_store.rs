//! The console over a fleet's database: its sources and the workers that serve them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_fleet_store_the_sources_are_the_fleets_with_their_last_pass_and_pause() {
    let Some(db) = test_support::postgres::TestDatabase::create("console").await else {
        return;
    };
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    // A source kept in the fleet's database, and what a worker reported of it.
    let fleet = m365mail::operate::Fleet::open(&c.config, db.url())
        .await
        .unwrap();
    fleet
        .add(&format!(
            "[[sources]]\nname = \"stored\"\nkind = \"graph\"\napp = \"demo\"\n\
             mailbox = \"{ADELE}\"\nurl = \"{}\"\n[sources.routing.mailbox]\n\
             primary = \"{ADELE}\"\n[[sources.routing.rules]]\nmatch = \"default\"\n\
             project = \"stored\"\n",
            sb.graph_url()
        ))
        .await
        .unwrap();
    let store = fleet::PgStore::connect(db.url()).await.unwrap();
    // Its pass ended paused (the service throttled it, with a wait).
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
    for event in [
        fleet::SourceEvent::Started { waiting: Some(7) },
        fleet::SourceEvent::Paused { until },
        fleet::SourceEvent::Finished,
    ] {
        store
            .status()
            .record("stored", "worker-a", &event)
            .await
            .unwrap();
    }
    // A second console on the same file, reading the fleet.
    let fc = fleet_console(&c, &db).await;
    let (cookie, _) = operator_login(&fc).await;
    let page = page_of(&fc, &cookie, "/console/").await;
    assert!(
        page.contains("id=\"source-helpdesk\""),
        "the file's: {page}"
    );
    let row = &page[page
        .find("id=\"source-stored\"")
        .expect("the database's source")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("ONLINE"), "{row}");
    assert!(row.contains(">7<"), "the waiting count reported: {row}");
    assert!(row.contains("worker-a"), "{row}");
    assert!(row.contains(" UTC"), "the last pass: {row}");
    assert!(row.contains("paused until"), "the pause reported: {row}");
    assert!(
        !page[page.find("id=\"source-helpdesk\"").unwrap()..]
            .split("</tr>")
            .next()
            .unwrap()
            .contains("paused"),
        "only the paused source: {page}"
    );
    // PING through the fleet's token cache.
    let report = ping_page(&fc, &cookie, "stored").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(!report.contains(db.url()));
    drop(fc);
    drop(c);
    sb.shutdown().await;
}

/// A second console on `c`'s configuration file, reading and writing the fleet's database `db`.
async fn fleet_console(c: &Console, db: &test_support::postgres::TestDatabase) -> Console {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let options = ConsoleOptions::new(
        c.config.clone(),
        OperatorToken::new(TOKEN),
        url::Url::parse(&url).unwrap(),
    )
    .store(Some(m365mail::console::StoreUrl::new(db.url())));
    assert!(
        !format!("{options:?}").contains(db.url()),
        "the URL is redacted"
    );
    serve(
        listener,
        url,
        options,
        c.config.clone(),
        tempfile::tempdir().unwrap(),
    )
}

/// Signs `user` in with Microsoft for a source of `kind` over plain HTTP, as a browser would:
/// the console's button, the sandbox's sign-in page (and its consent page, if it shows one),
/// the console's callback. The callback's page.
async fn sign_in_over_http(c: &Console, cookie: &str, kind: &str, user: &str) -> String {
    let h = http();
    let csrf = csrf_of(&page_of(c, cookie, "/console/").await);
    let r = post_as(
        c,
        cookie,
        "/console/signin",
        &[("csrf", &csrf), ("kind", kind)],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let authorize = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("login".into(), user.into()));
    let mut target = authorize.clone();
    target.set_query(None);
    let mut action = "signin";
    let callback = loop {
        let mut fields = form.clone();
        fields.push(("action".into(), action.into()));
        let r = h.post(target.as_str()).form(&fields).send().await.unwrap();
        if r.status().is_redirection() {
            break r.headers()["location"].to_str().unwrap().to_owned();
        }
        let body = r.text().await.unwrap();
        assert!(
            action == "signin" && body.contains("value=\"consent\""),
            "neither a redirect nor the consent page: {body}"
        );
        action = "consent";
    };
    assert!(callback.contains("/console/callback?"), "{callback}");
    let r = h.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_fleet_store_two_people_signed_in_through_one_app_are_served_by_the_workers() {
    let Some(db) = test_support::postgres::TestDatabase::create("console_signin").await else {
        return;
    };
    const ALEX: &str = "alex.wilber@contoso.example";
    let sb = sandbox().await;
    inject_cases(&sb, ADELE, 2);
    inject_cases(&sb, ALEX, 1);
    let c = console(&sb, None).await;
    let fc = fleet_console(&c, &db).await;
    let file_before = std::fs::read_to_string(&c.config).unwrap();
    let (cookie, _) = operator_login(&fc).await;

    // Two people sign in through the one sign-in app.
    for (user, name) in [(ADELE, "adele-vance"), (ALEX, "alex-wilber")] {
        let page = sign_in_over_http(&fc, &cookie, "graph", user).await;
        assert!(page.contains("id=\"signin-ok\""), "{page}");
        assert!(
            page.contains(&format!("id=\"added-source\">{name}<")),
            "{page}"
        );
        assert!(!page.contains("eyJ"), "a token in the page: {page}");
        assert!(!page.contains(db.url()));
    }
    // Adele signs in again: her source's sign-in is renewed, no second source.
    let page = sign_in_over_http(&fc, &cookie, "graph", ADELE).await;
    assert!(page.contains("signed in again"), "{page}");
    assert!(page.contains("id=\"added-source\">adele-vance<"), "{page}");
    assert_eq!(
        std::fs::read_to_string(&c.config).unwrap(),
        file_before,
        "the sources went to the fleet's database, not the file"
    );
    // Each PINGs with its own person's sign-in, through the fleet's token cache.
    for (name, waiting) in [("adele-vance", 2), ("alex-wilber", 1)] {
        let report = ping_page(&fc, &cookie, name).await;
        assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
        assert!(
            report.contains(&format!("id=\"ping-waiting\">{waiting}<")),
            "{report}"
        );
    }
    // Their sign-ins are two entries of the fleet's token cache, one per account.
    let client = db.client().await;
    let accounts: Vec<Option<String>> = client
        .query("SELECT account FROM fleet_tokens ORDER BY account", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        accounts,
        [Some(ADELE.to_owned()), Some(ALEX.to_owned())],
        "one token entry per signed-in person"
    );
    // `m365mail sources list` sees both, kept in the database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365mail"))
        .arg("sources")
        .arg("--config")
        .arg(&c.config)
        .args(["list", "--json"])
        .env("M365MAIL_STORE", db.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in ["adele-vance", "alex-wilber"] {
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == name && s["defined_in"] == "database"),
            "{name}: {list}"
        );
    }

    // A worker of the fleet serves each with that person's sign-in: both ONLINE, each with its
    // own mailbox's count.
    let cfg = m365mail::config::Config::load(&c.config).unwrap();
    let shutdown = handler::Shutdown::new();
    let worker = {
        let (path, url, stop) = (c.config.clone(), db.url().to_owned(), shutdown.clone());
        tokio::spawn(async move {
            let mut settings = m365mail::worker::WorkerSettings::new();
            settings.name = "console-test-worker".into();
            m365mail::worker::run(&path, &cfg, &url, &settings, &stop).await
        })
    };
    let fleet = m365mail::operate::Fleet::open(&c.config, db.url())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let status = fleet.status().await.unwrap();
        let seen = |name: &str| {
            status
                .sources
                .iter()
                .find(|s| s.source == name)
                .map(|s| (s.online, s.waiting, s.reason.clone()))
        };
        let (a, x) = (seen("adele-vance"), seen("alex-wilber"));
        if matches!(&a, Some((Some(true), Some(2), _)))
            && matches!(&x, Some((Some(true), Some(1), _)))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never served both: {a:?} {x:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.trigger();
    worker.await.unwrap().unwrap();

    // An outbound created on the Outbounds page goes to the database too, and PINGs.
    let csrf = csrf_of(&page_of(&fc, &cookie, "/console/outbounds").await);
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "fleet-out"),
        ("kind", "graph"),
        ("app", "demo"),
        ("mailbox", "helpdesk@contoso.example"),
    ];
    let r = post_as(&fc, &cookie, "/console/outbounds", &form).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("stored in the fleet's database"), "{page}");
    assert!(page.contains("id=\"outbound-fleet-out\""), "{page}");
    assert_eq!(std::fs::read_to_string(&c.config).unwrap(), file_before);
    let fresh = m365mail::operate::Fleet::open(&c.config, db.url())
        .await
        .unwrap();
    let (resolved, _) = fresh.config().await.unwrap();
    assert!(resolved.outbound("fleet-out").is_some());
    let report = ping_outbound(&fc, &cookie, &csrf, "fleet-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    drop(fc);
    drop(c);
    sb.shutdown().await;
}
