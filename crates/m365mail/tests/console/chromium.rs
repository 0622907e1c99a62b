//! Headless Chromium over chromedriver, for the console tests and `tests/browser.rs` (each
//! defines the `STEP` limit this uses).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use super::STEP;

/// The first of `names` found on `PATH`.
pub(crate) fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` after saying why the test is skipped. Under `CI` a
/// missing browser is a failure.
pub(crate) fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = on_path(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let missing = [
                c.is_none().then_some("chromium"),
                d.is_none()
                    .then_some("chromedriver (Debian: chromium-driver)"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ");
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set but {missing} missing: .ci/run installs them \
                     (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!(
                "SKIPPED headless Chromium test: {missing} not found on PATH. Install \
                 with `apt-get install chromium chromium-driver` (CI fails instead of skipping)."
            );
            None
        }
    }
}

/// chromedriver on a free loopback port, in a process group of its own with the Chromium it
/// starts: the whole group is killed when dropped.
pub(crate) struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start(path: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(path)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = tokio::time::timeout(STEP, async {
            loop {
                if let Ok(r) = http.get(format!("{url}/status")).send().await
                    && let Ok(v) = r.json::<serde_json::Value>().await
                    && v["value"]["ready"] == true
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "chromedriver did not become ready on {url}");
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.child.start_kill();
    }
}

/// A headless Chromium session (its profile in `dir`).
pub(crate) async fn chromium(driver: &Driver, chromium: &Path, dir: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-proxy-server",
                "--no-first-run",
                "--window-size=1200,860",
                format!("--user-data-dir={}", dir.join("profile").display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        STEP,
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url),
    )
    .await
    .expect("a Chromium session in time")
    .expect("a Chromium session")
}

/// The element `css`, waited for; on failure the page is shown.
pub(crate) async fn wait(b: &Client, css: &str) -> fantoccini::elements::Element {
    match b.wait().at_most(STEP).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => panic!(
            "no {css} ({e}) at {:?}:\n{}",
            b.current_url().await,
            b.source().await.unwrap_or_default()
        ),
    }
}

pub(crate) async fn click(b: &Client, css: &str) {
    wait(b, css).await.click().await.unwrap();
}

/// Saves a screenshot as `DIR/name.png` when `M365MAIL_SCREENSHOTS=DIR` is set.
pub(crate) async fn screenshot(b: &Client, name: &str) {
    let Some(dir) = std::env::var_os("M365MAIL_SCREENSHOTS") else {
        return;
    };
    let png = b.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
}
