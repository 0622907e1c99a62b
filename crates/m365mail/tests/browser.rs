//! `m365mail login` with the browser flow, driven for real by headless Chromium over WebDriver
//! (chromedriver): the tenant's sign-in page, its consent page, and the redirect to the
//! loopback listener the command opened.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test fails when `CI` is set and otherwise prints why it skipped.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::Locator;
use sandbox::{Sandbox, Seed};
use test_support::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");
/// The longest any one step may take before the test gives up (not a speed assertion: a hung
/// browser must not hang the suite).
const STEP: Duration = Duration::from_secs(60);

// The chromedriver harness the console tests use too.
#[path = "console/chromium.rs"]
#[allow(dead_code, reason = "the page helpers are the console tests'")]
mod chromium;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_signs_in_and_consents_on_the_tenant_pages_and_returns_to_the_listener() {
    let Some((chromium, chromedriver)) = chromium::browser_binaries() else {
        return;
    };
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tokens.json");
    let cfg = dir.path().join("m365mail.toml");
    Config::person(&sb, "me", "browser", &cache).write(&cfg);

    // Nobody has consented yet (the demo tenant pre-approves the demo app): Adele sees the
    // consent page and gives her own consent there.
    const APP: &str = test_support::DEMO_APP;
    sb.admin().revoke_admin_consent(APP).unwrap();
    let _ = sb
        .admin()
        .revoke_user_consent(APP, "adele.vance@contoso.example");

    let driver = chromium::Driver::start(&chromedriver).await;
    let browser = chromium::chromium(&driver, &chromium, dir.path()).await;

    let mut child = tokio::process::Command::new(BIN)
        .args(["login", "--app", "me", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut sign_in = None;
    while let Some(line) = tokio::time::timeout(STEP, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        if let Some(u) = line.trim().strip_prefix("http") {
            sign_in = Some(url::Url::parse(&format!("http{u}")).unwrap());
            break;
        }
    }
    let sign_in = sign_in.expect("login printed the sign-in address");
    let q: HashMap<String, String> = sign_in.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    let redirect = url::Url::parse(&q["redirect_uri"]).unwrap();
    assert_eq!(redirect.host_str(), Some("localhost"));

    // The person opens the address: the tenant's sign-in page.
    browser.goto(sign_in.as_str()).await.unwrap();
    let account = browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css("input[name=login]"))
        .await
        .expect("the sign-in page");
    account.clear().await.unwrap();
    account
        .send_keys("adele.vance@contoso.example")
        .await
        .unwrap();
    browser
        .find(Locator::Css("button[value=signin]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The consent page lists what the app asks for; the person accepts.
    let permissions = match browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Id("permissions"))
        .await
    {
        Ok(p) => p,
        Err(e) => panic!(
            "no consent page ({e}) at {:?}:\n{}",
            browser.current_url().await,
            browser.source().await.unwrap_or_default()
        ),
    };
    let listed = permissions.text().await.unwrap();
    assert!(listed.contains("Mail.ReadWrite"), "{listed}");
    assert!(listed.contains("Mail.Send"), "{listed}");
    browser
        .find(Locator::Css("button[value=consent]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The browser is sent back to the command's loopback listener, which says it is done.
    let done = browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::XPath("//p[contains(., 'Signed in')]"))
        .await
        .expect("the listener's page");
    assert!(done.text().await.unwrap().contains("close this window"));
    let landed = browser.current_url().await.unwrap();
    assert_eq!(landed.host_str(), Some("localhost"), "{landed}");
    assert_eq!(landed.port(), redirect.port(), "{landed}");
    assert!(landed.query_pairs().any(|(k, _)| k == "code"), "{landed}");
    browser.close().await.unwrap();

    let status = tokio::time::timeout(STEP, child.wait())
        .await
        .expect("login exits after the redirect")
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("signed in"), "{out}");
    // The code was redeemed and the sign-in cached, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert!(cached.contains("refresh"), "no refresh token cached");
    drop(driver);
    sb.shutdown().await;
}
