//! Throttling through the binary. Issue #16 item 1: a token endpoint that is throttled is a
//! pause, not a refused sign-in, for an EWS source as for a Graph one. On the old main, ews-mail
//! turned every token failure into an authentication error and the pipeline marked the source
//! OFFLINE. Issue #23: a mailbox whose request budget is spent pauses the source as a whole.

use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol, Sandbox, Seed, Trigger};
use test_support::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_token_endpoint_leaves_an_ews_source_online() {
    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .start()
        .await
        .expect("sandbox");
    sb.admin()
        .inject_mime(
            "projects@contoso.example",
            "Message-ID: <t1@fabrikam.example>\r\nFrom: ann@fabrikam.example\r\n\
             To: projects@contoso.example\r\nSubject: hello\r\n\r\nhello\r\n",
        )
        .expect("delivered");
    // The ping's token lives 2 s and its GetFolder is answered after 3 s, so the fetch that
    // follows needs a new token, and the token endpoint is throttled from its second request
    // on. (A token that is merely close to expiry would be handed out again: msauth keeps
    // using a still-valid token when refreshing ahead of time fails for a passing reason.)
    sb.admin()
        .update_identity(|i| i.access_token_lifetime_secs = 2);
    sb.admin().set_faults(
        FaultPlan::new([
            FaultRule::new(
                Trigger::After {
                    skip: 1,
                    count: 100,
                },
                FaultKind::Throttle {
                    retry_after_secs: 7,
                },
            )
            .on(Protocol::Token),
            FaultRule::next(Protocol::Ews, 1, FaultKind::Slow { millis: 3_000 }),
        ])
        .with_seed(1),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("m.toml");
    Config::demo(&sb)
        .source(
            "projects",
            "ews",
            "demo",
            "projects@contoso.example",
            &sb.ews_url(),
            "",
        )
        .mailbox("projects@contoso.example", &[])
        .default_rule("P")
        .handler(&dir.path().join("out"), "")
        .write(&cfg);
    let output = test_support::process::run_once(BIN, &cfg).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let s: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let src = &s["sources"][0];
    assert_eq!(src["status"], "ONLINE", "{s}");
    assert!(src["reason"].is_null(), "{s}");
    assert_eq!(src["handled"], 0, "the fetch could not get a token: {s}");
    let errors = src["errors"].to_string();
    assert!(errors.to_ascii_lowercase().contains("throttl"), "{s}");
    assert!(output.status.success(), "{stderr}");
    sb.shutdown().await;
}

/// Issue #23, through the binary: once a mailbox's request budget is spent, Exchange Online
/// answers every request with 429 and the rest of its window (ten minutes here). The source is
/// paused as a whole: `run --once` ends the pass, reports until when (`throttled_until`), and
/// sends no more requests; the mail it did not take stays unread. Before, each message's
/// download and acknowledgement was sent and refused, an error per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_request_budget_pauses_the_source_instead_of_failing_each_message() {
    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .start()
        .await
        .expect("sandbox");
    const MAILBOX: &str = "helpdesk@contoso.example";
    for i in 0..40 {
        sb.admin()
            .inject_mime(
                MAILBOX,
                &format!(
                    "Message-ID: <b{i}@fabrikam.example>\r\nFrom: ann@fabrikam.example\r\n\
                     To: {MAILBOX}\r\nSubject: budget {i}\r\n\r\nhello\r\n"
                ),
            )
            .expect("delivered");
    }
    let unread = || {
        sb.admin()
            .store()
            .list(
                MAILBOX,
                Some("inbox"),
                &sandbox::store::ListQuery::default(),
            )
            .expect("list")
            .items
            .iter()
            .filter(|m| !m.is_read)
            .count()
    };
    let waiting = unread();
    let mut throttle = sandbox::ThrottleConfig::default();
    throttle.budget = Some(20);
    throttle.window_secs = 600;
    sb.admin().set_throttle(throttle);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("m.toml");
    Config::demo(&sb)
        .helpdesk_graph(&sb, "requests_in_flight = 4\n")
        .mailbox(MAILBOX, &[])
        .default_rule("P")
        .handler(&dir.path().join("out"), "")
        .write(&cfg);
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    let output = test_support::process::run_once(BIN, &cfg).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let s: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let src = &s["sources"][0];
    assert_eq!(src["status"], "ONLINE", "{s}");
    let until = src["throttled_until"]
        .as_i64()
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        until > started + 500 && until <= started + 602,
        "{until} against {started}: {s}"
    );
    let handled = src["handled"].as_u64().expect("handled") as usize;
    assert!(handled > 0 && handled < waiting, "{s}");
    // The rest waits in the mailbox: nothing was lost.
    assert!(unread() >= waiting - handled, "{s}");
    // One error for the messages left, not one per message.
    let errors = src["errors"].as_array().expect("errors");
    assert!(errors.len() <= 5, "{s}");
    // The first refusals came to the requests already in flight (four at a time); after them
    // the client held its requests.
    let refused = sb.request_log().count_status(429);
    assert!((1..=4).contains(&refused), "{refused} refused: {s}");
    sb.shutdown().await;
}
