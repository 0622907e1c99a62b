//! What the console refuses (strangers, cross-site forms, foreign hosts, a consent callback
//! that is not its own), its secure cookie under TLS, and the command's loopback default.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_strangers_cross_site_forms_and_foreign_hosts_and_shows_no_secret() {
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    let h = http();
    let mut pages = Vec::new();

    // Without a session: pages send to the login form, anything else is 401.
    let r = h.get(format!("{}/console/", c.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    for path in [
        "/console/sources/helpdesk/ping",
        "/console/signin",
        "/console/logout",
    ] {
        let r = h
            .post(format!("{}{path}", c.url))
            .form(&[("csrf", "anything")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let login = h
        .get(format!("{}/console/login", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    pages.push(login.text().await.unwrap());

    // A wrong token is refused and sets no cookie.
    let r = h
        .post(format!("{}/console/login", c.url))
        .form(&[("token", "operator-token-for-the-console-test")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    pages.push(r.text().await.unwrap());

    // The right one: a session cookie the page's script (there is none) could not read.
    let (cookie, set) = operator_login(&c).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let r = get_as(&c, &cookie, "/console/").await;
    assert_eq!(r.status(), 200);
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(r.headers()[name], value);
    }
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let sources = r.text().await.unwrap();
    assert!(sources.contains("id=\"source-helpdesk\""), "{sources}");
    let csrf = csrf_of(&sources);
    pages.push(sources);

    // A state-changing request without the CSRF token, or with another, is 403.
    let ping = format!("{}/console/sources/helpdesk/ping", c.url);
    for form in [vec![], vec![("csrf", "not-the-token")], vec![("csrf", "")]] {
        let r = post_as(&c, &cookie, "/console/sources/helpdesk/ping", &form).await;
        assert_eq!(r.status(), 403, "{form:?}");
    }
    // With it, but sent by another site's page (its Origin): 403.
    let r = h
        .post(&ping)
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A Host the console is not (DNS rebinding): 403, even for pages.
    let r = h
        .get(format!("{}/console/", c.url))
        .header("cookie", &cookie)
        .header("host", "rebound.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // From the console's own page: the ping report with its connection log.
    let r = h
        .post(&ping)
        .header("cookie", &cookie)
        .header("origin", &c.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report = r.text().await.unwrap();
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(report.contains("id=\"ping-log\""), "{report}");
    assert!(report.contains("GET"), "a connection log: {report}");
    pages.push(report);

    // Identity callbacks the console did not start: refused, nothing done.
    for path in [
        "/console/callback?code=stolen&state=forged",
        "/console/consent?admin_consent=True&tenant=x&state=forged",
        "/console/consent?error=access_denied&state=",
    ] {
        let r = h.get(format!("{}{path}", c.url)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("state mismatch"), "{body}");
        pages.push(body);
    }

    // Logging out ends the session.
    let r = post_as(&c, &cookie, "/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let r = get_as(&c, &cookie, "/console/").await;
    assert_eq!(r.status(), 303);

    // No page showed a secret: the app's client secret, the operator token, a token.
    for p in &pages {
        assert!(!p.contains(test_support::DEMO_SECRET), "{p}");
        assert!(!p.contains(TOKEN), "{p}");
        assert!(!p.contains("eyJ"), "a JWT in a page: {p}");
    }
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_callback_tells_a_refusal_another_tenant_and_a_used_state_apart() {
    let sb = sandbox().await;
    sb.admin().revoke_admin_consent(DEMO_APP).unwrap();
    let c = console(&sb, None).await;
    let (cookie, _) = operator_login(&c).await;
    let h = http();
    let page = ping_page(&c, &cookie, "helpdesk").await;
    assert!(page.contains("id=\"ping-status\">OFFLINE"), "{page}");
    assert!(page.contains("id=\"consent\""), "{page}");

    // Declined: Microsoft answers error=access_denied with the AADSTS code.
    let state = consent_state(&page);
    let r = h
        .get(format!(
            "{}/console/consent?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.%0D%0ATrace+ID%3A+x&admin_consent=True&state={state}",
            c.url
        ))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("data-reason=\"denied\""), "{body}");
    assert!(body.contains("access_denied"), "{body}");
    assert!(body.contains("AADSTS65004"), "{body}");
    assert!(!body.contains("Trace"), "only the first line: {body}");

    // Granted, but in another tenant than the app signs in to.
    let state = consent_state(&ping_page(&c, &cookie, "helpdesk").await);
    let other = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let granted = format!(
        "{}/console/consent?admin_consent=True&tenant={other}&scope=x&state={state}",
        c.url
    );
    let body = h.get(&granted).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("data-reason=\"tenant\""), "{body}");
    assert!(body.contains(other), "{body}");
    // A state is used once.
    let r = h.get(&granted).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("state mismatch"));

    // The operator's next Sources page shows what came back.
    let page = page_of(&c, &cookie, "/console/").await;
    assert!(page.contains("data-reason=\"tenant\""), "{page}");
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tls_the_session_cookie_is_secure() {
    let sb = sandbox().await;
    let c = console(&sb, Some("https://console.example")).await;
    let r = http()
        .post(format!("{}/console/login", c.url))
        .header("host", "console.example")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("; Secure"), "{set}");
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_stays_on_loopback_and_asks_for_the_operator_token() {
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    const BIN: &str = env!("CARGO_BIN_EXE_m365mail");
    // Beyond loopback only when asked.
    let out = tokio::process::Command::new(BIN)
        .args(["console", "--listen", "0.0.0.0:0", "--config"])
        .arg(&c.config)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-non-loopback"), "{err}");

    let mut child = tokio::process::Command::new(BIN)
        .args(["console", "--listen", "127.0.0.1:0", "--config"])
        .arg(&c.config)
        .env("M365MAIL_CONSOLE_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(STEP, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let mut printed = first.clone();
    while let Ok(Ok(Some(l))) =
        tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await
    {
        printed.push_str(&l);
        if l.starts_with("Ctrl-C") {
            break;
        }
    }
    assert!(
        !printed.contains(TOKEN),
        "the given token is not printed: {printed}"
    );
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    let r = http()
        .post(format!("{}login", url))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the operator token from the environment");
    child.kill().await.unwrap();
    drop(c);
    sb.shutdown().await;
}
