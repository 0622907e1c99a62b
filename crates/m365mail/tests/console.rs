//! The web console (`m365mail::console`): its security over plain HTTP (reqwest), and the two
//! consent stories of issue #19 driven end to end in headless Chromium over WebDriver, against
//! the sandbox's sign-in, consent and admin consent pages:
//!
//! (a) admin grant: a person signs in (an EWS source: Exchange honours EWS only with admin
//!     consent), PING fails with 401 and offers the admin consent link, the administrator
//!     consents on the tenant's page, PING is ONLINE with the messages waiting;
//! (b) user assignment required: sign-in is refused with AADSTS50105, the console names the
//!     fix, the administrator assigns the user, the same user signs in and PING is ONLINE.
//!
//! The browser tests need Debian's `chromium` and `chromium-driver` (`.ci/run` installs them);
//! without them they fail when `CI` is set and otherwise print why they skipped, as
//! `tests/browser.rs` does. With `M365MAIL_SCREENSHOTS=DIR` they save the screenshots the README
//! shows (`docs/console/`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, Locator};
use m365mail::console::{ConsoleOptions, ConsoleState, OperatorToken};
use sandbox::{Sandbox, Seed};
use test_support::DEMO_APP;
use test_support::config::{Config, SECRET_LINE};

#[path = "console/chromium.rs"]
mod chromium;
use chromium::{Driver, browser_binaries, chromium, click, screenshot, wait};

/// The longest any one step may take (not a speed assertion: a hung browser must not hang the
/// suite).
const STEP: Duration = Duration::from_secs(60);
const TOKEN: &str = "operator-token-for-the-console-tests";
const ADELE: &str = "adele.vance@contoso.example";
const ADMIN: &str = "megan.bowen@contoso.example";

/// The demo tenant, its app also registered with the console's redirect URIs.
async fn sandbox() -> Sandbox {
    let mut seed = Seed::demo();
    for app in &mut seed.tenant_mut().apps {
        if app.client_id == DEMO_APP {
            app.redirect_uris
                .push("http://127.0.0.1/console/callback".into());
            app.redirect_uris
                .push("http://127.0.0.1/console/consent".into());
        }
    }
    Sandbox::builder().seed(seed).start().await.unwrap()
}

/// A console on a free loopback port over a configuration with an app-only Graph source
/// (`helpdesk`, whose app has the demo's inline secret) and a browser sign-in app (`signin`).
struct Console {
    url: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The console's configuration: the source `helpdesk` reading `mailbox` with `aliases` (the
/// first routed to `BILL`), and the outbound `helpdesk-out`.
fn console_config(
    sb: &Sandbox,
    config: &std::path::Path,
    mailbox: &str,
    aliases: &[&str],
    source_extra: &str,
) {
    let dir = config.parent().unwrap();
    let mut c = Config::new()
        .sandbox_app(sb, "demo", SECRET_LINE)
        .sandbox_app(sb, "signin", "flow = \"browser\"")
        .source(
            "helpdesk",
            "graph",
            "demo",
            mailbox,
            &sb.graph_url(),
            source_extra,
        )
        .mailbox(mailbox, aliases);
    if let Some(first) = aliases.first() {
        c = c.alias_rule(first, "BILL");
    }
    c.default_rule("general")
        .outbound(
            "helpdesk-out",
            "graph",
            "demo",
            "helpdesk@contoso.example",
            &format!("url = \"{}\"", sb.graph_url()),
        )
        .handler(&dir.join("out"), "")
        .write(config);
}

async fn console(sb: &Sandbox, public: Option<&str>) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m365mail.toml");
    console_config(
        sb,
        &config,
        "helpdesk@contoso.example",
        &["billing@contoso.example"],
        "",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let public = url::Url::parse(public.unwrap_or(&url)).unwrap();
    let options = ConsoleOptions::new(config.clone(), OperatorToken::new(TOKEN), public)
        .allow_host(addr.to_string())
        .service_urls(Some(sb.graph_url()), Some(sb.ews_url()));
    serve(listener, url, options, config, dir)
}

/// The console with `options` (over the file `config`) served on `listener`, whose address is
/// `url`; `dir` is kept as long as it runs.
fn serve(
    listener: tokio::net::TcpListener,
    url: String,
    options: ConsoleOptions,
    config: PathBuf,
    dir: tempfile::TempDir,
) -> Console {
    let state = ConsoleState::new(options);
    let task = tokio::spawn(async move {
        let _ = m365mail::console::serve(listener, state).await;
    });
    Console {
        url,
        config,
        _dir: dir,
        task,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with the operator token: the session cookie (`name=value`) and the whole header.
async fn operator_login(c: &Console) -> (String, String) {
    let r = http()
        .post(format!("{}/console/login", c.url))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    (pair, set)
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

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

/// GETs `path` as the operator whose cookie is `cookie`.
async fn get_as(c: &Console, cookie: &str, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", c.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// POSTs `form` to `path` as the operator whose cookie is `cookie`.
async fn post_as(
    c: &Console,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http()
        .post(format!("{}{path}", c.url))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The page at `path` as the operator whose cookie is `cookie`.
async fn page_of(c: &Console, cookie: &str, path: &str) -> String {
    get_as(c, cookie, path).await.text().await.unwrap()
}

/// PINGs `source` as the operator whose cookie is `cookie`: the page.
async fn ping_page(c: &Console, cookie: &str, source: &str) -> String {
    let csrf = csrf_of(&page_of(c, cookie, "/console/").await);
    let path = format!("/console/sources/{source}/ping");
    post_as(c, cookie, &path, &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap()
}

/// The `state` of the admin consent link on a page.
fn consent_state(page: &str) -> String {
    let at = page
        .find("id=\"consent-link\" href=\"")
        .expect("a consent link")
        + 25;
    let href = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    let url = url::Url::parse(&href).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state in the link")
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
async fn outbounds_with_ping_and_routing_with_an_address_tested() {
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    let h = http();
    for path in [
        "/console/outbounds",
        "/console/routing?address=x%40y.example",
    ] {
        let r = h.get(format!("{}{path}", c.url)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path} needs the operator");
    }
    let r = h
        .post(format!("{}/console/outbounds/helpdesk-out/ping", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (cookie, _) = operator_login(&c).await;
    let get = |path: String| {
        let h = h.clone();
        let cookie = cookie.clone();
        async move {
            let r = h.get(path).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let page = get(format!("{}/console/outbounds", c.url)).await;
    assert!(page.contains("id=\"outbound-helpdesk-out\""), "{page}");
    let csrf = csrf_of(&page);
    let ping = format!("{}/console/outbounds/helpdesk-out/ping", c.url);
    let r = h
        .post(&ping)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let report = ping_outbound(&c, &cookie, &csrf, "helpdesk-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(report.contains("id=\"ping-log\""), "{report}");

    let page = get(format!(
        "{}/console/routing?source=helpdesk&address=billing%2Binvoice%40contoso.example",
        c.url
    ))
    .await;
    assert!(page.contains("id=\"route-project\">BILL<"), "{page}");
    assert!(
        page.contains("billing@contoso.example"),
        "the rule table: {page}"
    );
    let page = get(format!(
        "{}/console/routing?source=helpdesk&address=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        c.url
    ))
    .await;
    assert!(!page.contains("<script>"), "escaped: {page}");
    for p in [&page, &report] {
        assert!(!p.contains(test_support::DEMO_SECRET));
        assert!(!p.contains("eyJ"));
    }
    drop(c);
    sb.shutdown().await;
}

/// Presses an outbound's PING as the operator whose cookie is `cookie`: the page.
async fn ping_outbound(c: &Console, cookie: &str, csrf: &str, name: &str) -> String {
    let path = format!("/console/outbounds/{name}/ping");
    let r = post_as(c, cookie, &path, &[("csrf", csrf)]).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The row of `address` in an outbound PING's "May send as" table.
fn send_as_row<'a>(page: &'a str, address: &str) -> &'a str {
    let at = page
        .find(&format!("<tr class=\"send-as\" data-address=\"{address}\""))
        .unwrap_or_else(|| panic!("no send-as row for {address}: {page}"));
    page[at..].split("</tr>").next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_is_created_then_its_ping_shows_the_right_to_send_as_each_alias() {
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    let h = http();
    let url = format!("{}/console/outbounds", c.url);
    let r = h
        .post(&url)
        .form(&[("name", "desk-out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no session");
    let (cookie, _) = operator_login(&c).await;
    let page = page_of(&c, &cookie, "/console/outbounds").await;
    assert!(page.contains("id=\"create-outbound\""), "{page}");
    assert!(page.contains("<option value=\"demo\">"), "the apps: {page}");
    let csrf = csrf_of(&page);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&c.config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read_to_string(&c.config).unwrap();
    let create = |fields: Vec<(&'static str, &'static str)>, with_csrf: bool| {
        let h = h.clone();
        let cookie = cookie.clone();
        let url = url.clone();
        let mut fields: Vec<(&str, String)> =
            fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        if with_csrf {
            fields.push(("csrf", csrf.clone()));
        }
        async move {
            let r = h
                .post(url)
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let good = vec![
        ("name", "desk-out"),
        ("kind", "graph"),
        ("app", "demo"),
        ("mailbox", "helpdesk@contoso.example"),
        ("send_from_alias_enabled", "true"),
    ];
    let (status, _) = create(good.clone(), false).await;
    assert_eq!(status, 403, "no CSRF token");
    assert_eq!(std::fs::read_to_string(&c.config).unwrap(), before);
    let with = |k: &'static str, v: &'static str| {
        good.iter()
            .map(|&(gk, gv)| if gk == k { (gk, v) } else { (gk, gv) })
            .collect::<Vec<_>>()
    };
    for (fields, words) in [
        (with("app", "nope"), "no app called &quot;nope&quot;"),
        (with("mailbox", "not an address"), "is not an address"),
        (with("name", "bad name!"), "is not 1 to 64"),
        (with("kind", "imap"), "unknown kind"),
    ] {
        let (status, page) = create(fields, true).await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("id=\"create-error\""), "{page}");
        assert!(page.contains(words), "{words}: {page}");
        assert!(!page.contains("id=\"outbound-desk-out\""), "{page}");
        assert_eq!(std::fs::read_to_string(&c.config).unwrap(), before);
    }
    let (status, page) = create(good.clone(), true).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"outbound-created\""), "{page}");
    assert!(page.contains("id=\"outbound-desk-out\""), "listed: {page}");
    let after = std::fs::read_to_string(&c.config).unwrap();
    assert!(after.starts_with(&before), "appended: {after}");
    assert!(after.contains("name = \"desk-out\""), "{after}");
    assert!(after.contains("send_from_alias_enabled = true"), "{after}");
    let mode = std::fs::metadata(&c.config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its permissions");
    let (status, page) = create(good.clone(), true).await;
    assert_eq!(status, 400, "a second desk-out: {page}");
    assert!(page.contains("exists already"), "{page}");
    assert_eq!(std::fs::read_to_string(&c.config).unwrap(), after);

    let ping = |name: &'static str| ping_outbound(&c, &cookie, &csrf, name);
    let report = ping("desk-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(
        send_as_row(&report, "helpdesk@contoso.example").contains("ALLOWED"),
        "{report}"
    );

    // The source notifies through helpdesk-out; one alias is the mailbox's own, the other is
    // another mailbox, which an app-only token may put in From only with Send As on it.
    let other = "adele.vance@contoso.example";
    console_config(
        &sb,
        &c.config,
        "helpdesk@contoso.example",
        &["billing@contoso.example", other],
        "notify_through = \"helpdesk-out\"",
    );
    let report = ping("helpdesk-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(
        send_as_row(&report, "billing@contoso.example").contains("ALLOWED"),
        "{report}"
    );
    let row = send_as_row(&report, other);
    assert!(row.contains("REFUSED"), "{row}");
    assert!(row.contains("may not send as"), "{row}");
    sb.admin()
        .add_mailbox_permission(
            other,
            "helpdesk@contoso.example",
            sandbox::tenant::MailboxRight::SendAs,
        )
        .unwrap();
    let report = ping("helpdesk-out").await;
    assert!(send_as_row(&report, other).contains("ALLOWED"), "{report}");
    assert!(!report.contains(test_support::DEMO_SECRET));
    assert!(!report.contains("eyJ"));
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_and_smtp_outbounds_ping_shows_the_right_to_send_as_each_address() {
    const HELPDESK: &str = "helpdesk@contoso.example";
    const BILLING: &str = "billing@contoso.example";
    let sb = sandbox().await;
    test_support::tokens::allow_smtp_send_as_app(&sb);
    let c = console(&sb, None).await;
    let dir = c.config.parent().unwrap().to_path_buf();
    let ca = dir.join("smtp-ca.pem");
    std::fs::write(&ca, sb.smtp_ca_pem().unwrap()).unwrap();
    let smtp = sb.smtp_addr().unwrap();
    // Each sends as the helpdesk and may be asked for one of its aliases and for Adele.
    let send_as = format!("send_as = [\"{BILLING}\", \"{ADELE}\"]");
    Config::new()
        .sandbox_app(&sb, "demo", SECRET_LINE)
        .outbound(
            "ews-out",
            "ews",
            "demo",
            HELPDESK,
            &format!("url = \"{}\"\n{send_as}", sb.ews_url()),
        )
        .outbound(
            "smtp-out",
            "smtp",
            "demo",
            HELPDESK,
            &format!(
                "host = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\n{send_as}",
                smtp.port(),
                ca.display()
            ),
        )
        .handler(&dir.join("out"), "")
        .write(&c.config);
    let (cookie, _) = operator_login(&c).await;
    let csrf = csrf_of(&page_of(&c, &cookie, "/console/outbounds").await);
    let ping = |name: &'static str| ping_outbound(&c, &cookie, &csrf, name);
    let kept = || {
        let admin = sb.admin();
        let n = |mailbox: &str, folder: &str| {
            admin
                .store()
                .list(mailbox, Some(folder), &sandbox::store::ListQuery::default())
                .unwrap()
                .items
                .len()
        };
        (
            n(HELPDESK, "sentitems"),
            n(HELPDESK, "drafts"),
            n(ADELE, "inbox"),
            admin.outbox().len(),
        )
    };
    let before = kept();

    // Not granted: the helpdesk's own alias may be sent as, Adele's mailbox may not.
    for name in ["ews-out", "smtp-out"] {
        let report = ping(name).await;
        assert!(
            report.contains("id=\"ping-status\">ONLINE"),
            "{name}: {report}"
        );
        assert!(
            send_as_row(&report, HELPDESK).contains("ALLOWED"),
            "{name}: {report}"
        );
        assert!(
            send_as_row(&report, BILLING).contains("ALLOWED"),
            "{name}: {report}"
        );
        let row = send_as_row(&report, ADELE);
        assert!(row.contains("REFUSED"), "{name}: {row}");
        assert!(
            row.contains("helpdesk@contoso.example may not send as adele.vance@contoso.example"),
            "{name}: {row}"
        );
        assert!(row.contains("Add-RecipientPermission"), "{name}: {row}");
        assert!(!report.contains("NOT CHECKED"), "{name}: {report}");
        assert!(!report.contains(test_support::DEMO_SECRET));
        assert!(!report.contains("eyJ"));
    }
    assert!(
        send_as_row(&ping("smtp-out").await, BILLING).contains("MAIL FROM accepted"),
        "an SMTP verdict says what it checked"
    );

    // Granted: allowed through both.
    sb.admin()
        .add_mailbox_permission(ADELE, HELPDESK, sandbox::tenant::MailboxRight::SendAs)
        .unwrap();
    for name in ["ews-out", "smtp-out"] {
        let report = ping(name).await;
        assert!(
            send_as_row(&report, ADELE).contains("ALLOWED"),
            "{name}: {report}"
        );
    }
    assert_eq!(
        kept(),
        before,
        "(sent items, drafts, Adele's inbox, outbox): nothing sent"
    );
    drop(c);
    sb.shutdown().await;
}

/// Presses a source's "Check addresses" on the Routing page: the page.
async fn check_addresses(c: &Console, cookie: &str, source: &str) -> String {
    let page = page_of(c, cookie, "/console/routing").await;
    assert!(page.contains(&format!("id=\"check-{source}\"")), "{page}");
    let path = format!("/console/routing/{source}/check");
    let r = post_as(c, cookie, &path, &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The row of `check` (about `address`, if given) in an address check's answer.
fn finding_row<'a>(page: &'a str, check: &str, address: Option<&str>) -> &'a str {
    page.split("<tr class=\"finding\"")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .find(|r| {
            r.contains(&format!("data-check=\"{check}\""))
                && address.is_none_or(|a| r.contains(&format!("<td>{a}</td>")))
        })
        .unwrap_or_else(|| panic!("no {check} finding for {address:?}: {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_check_addresses_names_plus_addressing_off_a_pending_alias_and_a_group() {
    let sb = sandbox().await;
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let c = console(&sb, None).await;
    let r = http()
        .post(format!("{}/console/routing/helpdesk/check", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no session");
    let (cookie, _) = operator_login(&c).await;
    let r = http()
        .post(format!("{}/console/routing/helpdesk/check", c.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");

    // A ready tenant: every address check passes.
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(page.contains("id=\"address-status\">PASS"), "{page}");
    for check in ["mailbox-not-group", "plus-addressing", "alias-receives"] {
        assert!(finding_row(&page, check, None).contains(">PASS<"), "{page}");
    }

    // Plus addressing off.
    sb.admin()
        .update_org(|o| o.disable_plus_address_in_recipients = true);
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(page.contains("id=\"address-status\">WARNINGS"), "{page}");
    let row = finding_row(&page, "plus-addressing", None);
    assert!(row.contains(">FAIL<"), "{row}");
    assert!(
        row.contains("fix: Exchange Online PowerShell: Set-OrganizationConfig -DisablePlusAddressInRecipients $false"),
        "{row}"
    );
    sb.admin()
        .update_org(|o| o.disable_plus_address_in_recipients = false);
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(
        finding_row(&page, "plus-addressing", None).contains(">PASS<"),
        "{page}"
    );

    // An alias that does not receive yet.
    let fresh = "newproject@contoso.example";
    sb.admin()
        .update_org(|o| o.alias_propagation_delay_secs = 3600);
    sb.admin()
        .add_alias("helpdesk@contoso.example", fresh)
        .unwrap();
    console_config(
        &sb,
        &c.config,
        "helpdesk@contoso.example",
        &["billing@contoso.example", fresh],
        "",
    );
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    let row = finding_row(&page, "alias-receives", Some(fresh));
    assert!(row.contains(">FAIL<"), "{row}");
    assert!(row.contains("up to 24 hours"), "{row}");
    assert!(
        row.contains("fix: ") && row.contains("Set-Mailbox -Identity helpdesk@contoso.example"),
        "{row}"
    );
    assert!(
        finding_row(&page, "alias-receives", Some("billing@contoso.example")).contains(">PASS<"),
        "{page}"
    );
    sb.admin().advance_clock(3600);
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(
        finding_row(&page, "alias-receives", Some(fresh)).contains(">PASS<"),
        "{page}"
    );

    // The pickup address is a group.
    let desk = "desk@contoso.example";
    sb.admin()
        .add_group(desk, &["alex.wilber@contoso.example"])
        .unwrap();
    console_config(&sb, &c.config, desk, &[], "");
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    let row = finding_row(&page, "mailbox-not-group", Some(desk));
    assert!(row.contains(">FAIL<"), "{row}");
    assert!(
        row.contains("Get-Recipient -Identity desk@contoso.example"),
        "{row}"
    );
    sb.admin().remove_group(desk).unwrap();
    sb.admin().add_user(desk).unwrap();
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(
        finding_row(&page, "mailbox-not-group", Some(desk)).contains(">PASS<"),
        "{page}"
    );
    assert!(page.contains("id=\"address-status\">PASS"), "{page}");
    assert!(!page.contains(test_support::DEMO_SECRET));
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_fleet_store_the_sources_are_the_fleets_with_their_last_pass() {
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
    for event in [
        fleet::SourceEvent::Started { waiting: Some(7) },
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

/// Headless Chromium (its profile in the directory returned) over chromedriver, in which the
/// operator has signed in to the console.
async fn operator_in_browser(
    c: &Console,
    chromium_bin: &std::path::Path,
    chromedriver: &std::path::Path,
) -> (tempfile::TempDir, Driver, Client) {
    let dir = tempfile::tempdir().unwrap();
    let driver = Driver::start(chromedriver).await;
    let b = chromium(&driver, chromium_bin, dir.path()).await;
    b.goto(&format!("{}/console/", c.url)).await.unwrap();
    let token = wait(&b, "#token").await;
    token.send_keys(TOKEN).await.unwrap();
    click(&b, "#login").await;
    wait(&b, "#sources").await;
    (dir, driver, b)
}

/// `n` cases from customers in the inbox of `to`.
fn inject_cases(sb: &Sandbox, to: &str, n: usize) {
    for i in 1..=n {
        let mime =
            format!("From: c{i}@fabrikam.example\r\nTo: {to}\r\nSubject: case {i}\r\n\r\nbody\r\n");
        sb.admin().inject_mime(to, &mime).unwrap();
    }
}

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
