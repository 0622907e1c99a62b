//! Issue #16 item 1, through the binary: a token endpoint that is throttled is a pause, not a
//! refused sign-in, for an EWS source as for a Graph one. On the old main, ews-mail turned every
//! token failure into an authentication error and the pipeline marked the source OFFLINE.

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
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![
            FaultRule {
                protocol: Some(Protocol::Token),
                app_id: None,
                mailbox: None,
                trigger: Trigger::After {
                    skip: 1,
                    count: 100,
                },
                fault: FaultKind::Throttle {
                    retry_after_secs: 7,
                },
            },
            FaultRule::next(Protocol::Ews, 1, FaultKind::Slow { millis: 3_000 }),
        ],
    });
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
