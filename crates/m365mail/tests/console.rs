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
#[path = "console/fleet_store.rs"]
mod fleet_store;
#[path = "console/outbounds.rs"]
mod outbounds;
#[path = "console/security.rs"]
mod security;
#[path = "console/stories.rs"]
mod stories;
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
