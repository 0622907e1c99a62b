//! The two consent stories of issue #19 in headless Chromium.

use super::*;

/// Sign in with Microsoft as `user` for a source of `kind`, through the tenant's sign-in page
/// (and its consent page, when it shows one).
async fn sign_in_with_microsoft(b: &Client, kind: &str, user: &str) {
    wait(b, "#kind").await.select_by_value(kind).await.unwrap();
    click(b, "#sign-in").await;
    let account = wait(b, "input[name=login]").await;
    account.clear().await.unwrap();
    account.send_keys(user).await.unwrap();
    click(b, "button[value=signin]").await;
    // The consent page, if any, then back to the console (its callback, then Sources).
    let back = tokio::time::timeout(STEP, async {
        loop {
            if let Ok(e) = b.find(Locator::Css("button[value=consent]")).await {
                e.click().await.unwrap();
            }
            if b.find(Locator::Css("#sources")).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if back.is_err() {
        panic!(
            "not back on the Sources page: {:?}\n{}",
            b.current_url().await,
            b.source().await.unwrap_or_default()
        );
    }
}

async fn text(b: &Client, css: &str) -> String {
    wait(b, css).await.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_grant_story_sign_in_ping_401_consent_link_admin_consents_ping_online() {
    let Some((chromium_bin, chromedriver)) = browser_binaries() else {
        return;
    };
    let sb = sandbox().await;
    // Nobody has consented (the demo tenant pre-approves its app): Adele may consent for
    // herself, but Exchange honours EWS.AccessAsUser.All only with an administrator's consent.
    sb.admin().revoke_admin_consent(DEMO_APP).unwrap();
    let _ = sb.admin().revoke_user_consent(DEMO_APP, ADELE);
    inject_cases(&sb, ADELE, 3);
    let c = console(&sb, None).await;
    let (_dir, driver, b) = operator_in_browser(&c, &chromium_bin, &chromedriver).await;
    sign_in_with_microsoft(&b, "ews", ADELE).await;
    let added = text(&b, "#added-source").await;
    assert_eq!(added, "adele-vance");
    assert!(text(&b, "#source-adele-vance").await.contains(ADELE));
    screenshot(&b, "1-signed-in").await;

    // PING: 401, the tenant has not consented; the page offers the admin consent link.
    click(&b, "#ping-adele-vance").await;
    assert_eq!(text(&b, "#ping-status").await, "OFFLINE");
    let consent = text(&b, "#consent").await;
    assert!(consent.contains("not consented"), "{consent}");
    let link = wait(&b, "#consent-link").await;
    let href = link.attr("href").await.unwrap().unwrap();
    let href = url::Url::parse(&href).unwrap();
    assert!(href.path().ends_with("/v2.0/adminconsent"), "{href}");
    let q: HashMap<String, String> = href.query_pairs().into_owned().collect();
    assert_eq!(q["redirect_uri"], format!("{}/console/consent", c.url));
    assert!(
        q["scope"].contains("outlook.office365.com/.default"),
        "{q:?}"
    );
    screenshot(&b, "2-ping-401-consent-link").await;

    // The administrator opens it, signs in on the tenant's page and accepts.
    link.click().await.unwrap();
    let admin = wait(&b, "input[name=login]").await;
    admin.send_keys(ADMIN).await.unwrap();
    screenshot(&b, "3-admin-consent-page").await;
    click(&b, "button[value=consent]").await;
    let ok = text(&b, "#consent-ok").await;
    assert!(ok.contains(&sb.tenant_id()), "{ok}");
    click(&b, "#continue").await;

    // PING again: ONLINE with the messages waiting.
    click(&b, "#ping-adele-vance").await;
    assert_eq!(text(&b, "#ping-status").await, "ONLINE");
    assert_eq!(text(&b, "#ping-waiting").await, "3");
    screenshot(&b, "4-ping-online").await;

    // The source is in the configuration file for `m365mail run`, its sign-in cached apart.
    let cfg = m365mail::config::Config::load(&c.config).unwrap();
    let s = cfg.source("adele-vance").unwrap();
    assert_eq!(s.mailbox, ADELE);
    let cache = s.app.token_cache.clone().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let page = b.source().await.unwrap();
    assert!(!page.contains(test_support::DEMO_SECRET));
    assert!(!page.contains("eyJ"), "a token in the page");
    b.close().await.unwrap();
    drop(driver);
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_story_50105_shows_the_fix_admin_assigns_same_user_signs_in_ping_online() {
    let Some((chromium_bin, chromedriver)) = browser_binaries() else {
        return;
    };
    let sb = sandbox().await;
    sb.admin().set_assignment_required(DEMO_APP, true).unwrap();
    inject_cases(&sb, ADELE, 2);
    let c = console(&sb, None).await;
    let (_dir, driver, b) = operator_in_browser(&c, &chromium_bin, &chromedriver).await;
    sign_in_with_microsoft(&b, "graph", ADELE).await;
    let fix = text(&b, "#fix-50105").await;
    assert!(fix.contains("AADSTS50105"), "{fix}");
    assert!(fix.contains("Enterprise applications"), "{fix}");
    assert!(fix.contains("Users and groups"), "{fix}");
    assert!(fix.contains("Assignment required"), "{fix}");
    assert!(fix.contains(DEMO_APP), "{fix}");
    assert!(b.find(Locator::Css("#source-adele-vance")).await.is_err());
    screenshot(&b, "5-sign-in-50105-fix").await;

    // The administrator assigns Adele to the enterprise application; she signs in again.
    sb.admin().assign_user(DEMO_APP, ADELE).unwrap();
    sign_in_with_microsoft(&b, "graph", ADELE).await;
    assert_eq!(text(&b, "#added-source").await, "adele-vance");
    click(&b, "#ping-adele-vance").await;
    assert_eq!(text(&b, "#ping-status").await, "ONLINE");
    assert_eq!(text(&b, "#ping-waiting").await, "2");
    screenshot(&b, "6-assigned-ping-online").await;
    b.close().await.unwrap();
    drop(driver);
    drop(c);
    sb.shutdown().await;
}
