//! End-to-end: the `m365mail` binary against the sandbox tenant.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandbox::{Sandbox, Seed};
use test_support::config::Config;
use test_support::process::run_once_json;

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");

#[test]
fn run_without_configuration_routes_the_demo_mail_and_answers_from_the_retained_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = Command::new(BIN)
        .args(["run", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sources = summary["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    let graph = &sources[0];
    let ews = &sources[1];
    assert_eq!(graph["status"], "ONLINE");
    assert_eq!(ews["status"], "ONLINE");
    assert_eq!(graph["handled"], graph["waiting_at_start"]);
    assert_eq!(ews["handled"], 3);
    assert_eq!(graph["per_project"]["BILLING"], 3);
    assert_eq!(graph["per_project"]["FACILITIES"], 2);
    assert_eq!(ews["per_project"]["ALPHA"], 1);
    // The tenant allows sending from aliases: billing mail is answered from billing@.
    let notes = graph["notifications"].as_array().unwrap();
    let to_lynne = notes
        .iter()
        .find(|n| n["to"] == "lynne@fabrikam.example")
        .unwrap();
    assert_eq!(to_lynne["from"], "billing@contoso.example");
    // A sub-address cannot be sent from: the alias it belongs to, with Reply-To the sub-address.
    let to_debra = notes
        .iter()
        .find(|n| n["to"] == "debra@fabrikam.example")
        .unwrap();
    assert_eq!(to_debra["from"], "support@contoso.example");
    assert_eq!(to_debra["reply_to"], "support+printer@contoso.example");
    // Robots are not answered.
    assert!(notes.iter().all(|n| n["to"] != "ooo@fabrikam.example"));
    assert_eq!(graph["notifications_skipped"], 2);
    // Every message is on disk with its routing record.
    let billing: Vec<_> = std::fs::read_dir(out.join("BILLING"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(billing.len(), 3);
}

#[test]
fn a_broken_configuration_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[apps]]\nname = \"a\"\ntenant = \"contoso.example\"\nclient_id = \"x\"\nclient_secret_env = \"X\"\n\n[[sources]]\nname = \"s\"\nkind = \"imap\"\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("line 9"), "{err}");
    assert!(err.contains("imap"), "{err}");
}

#[test]
fn route_explains_the_decision_for_an_address() {
    let output = Command::new(BIN)
        .args([
            "route",
            "--json",
            "--address",
            "support+printer@contoso.example",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["project"], "FACILITIES");
    assert_eq!(v["catch_address"], "support+printer@contoso.example");
    assert_eq!(v["answer_from"], "support@contoso.example");
}

/// A webhook that counts deliveries per `Idempotency-Key`.
async fn webhook() -> (String, Arc<Mutex<HashMap<String, u32>>>) {
    let counts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let c = counts.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let c = c.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                *c.lock().unwrap().entry(key).or_default() += 1;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), counts)
}

/// A Graph source on the helpdesk that moves handled mail to `Processed`, billing mail its own
/// project, the folder handler writing to `out` and a webhook.
fn config(sb: &Sandbox, out: &Path, hook: &str) -> String {
    Config::demo(sb)
        .source(
            "helpdesk",
            "graph",
            "demo",
            "helpdesk@contoso.example",
            &sb.graph_url(),
            "acknowledge = \"move:Processed\"",
        )
        .mailbox(
            "helpdesk@contoso.example",
            &["billing@contoso.example", "support@contoso.example"],
        )
        .alias_rule("billing@contoso.example", "BILLING")
        .default_rule("DESK")
        .handler(out, &format!("webhook = \"{hook}\"\nbatch_size = 10"))
        .text()
}

/// Records written by the folder handler: message id -> how many records name it.
fn records(out: &Path) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for project in std::fs::read_dir(out).into_iter().flatten().flatten() {
        if !project.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(project.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|x| x == "json") {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
                let id = v["message_id"].as_str().unwrap_or("").to_owned();
                *seen.entry(id).or_default() += 1;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_mid_batch_every_message_is_handled_exactly_once() {
    const N: usize = 300;
    const KILLS: usize = 20;
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let admin = sb.admin();
    // The demo seed delivers two messages of its own.
    for i in 0..N - 2 {
        let to = if i % 3 == 0 {
            "billing@contoso.example"
        } else {
            "helpdesk@contoso.example"
        };
        let mime = format!(
            "From: c{i}@fabrikam.example\r\nTo: {to}\r\nSubject: crash test {i}\r\n\
             Message-ID: <crash-{i}@fabrikam.example>\r\n\r\nbody {i}\r\n"
        );
        admin.inject_mime(to, &mime).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (hook, deliveries) = webhook().await;
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, config(&sb, &out, &hook)).unwrap();

    // Kill the handler mid-run, as a crash would: each time after it has handed over a few
    // more messages (a fixed sequence, so the test is reproducible whatever the machine's speed).
    let total = |d: &Arc<Mutex<HashMap<String, u32>>>| -> u32 { d.lock().unwrap().values().sum() };
    let mut kills = 0;
    for i in 0..KILLS {
        let mut child = Command::new(BIN)
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let target = total(&deliveries) + 1 + (i as u32 * 5) % 7;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if total(&deliveries) >= target {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = child.wait();
    }
    // Then let it finish.
    let status = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            Command::new(BIN)
                .args(["run", "--once", "--config"])
                .arg(&cfg)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        kills >= KILLS / 2,
        "only {kills} runs were killed mid-flight"
    );

    // Nothing lost, nothing written twice.
    let seen = records(&out);
    assert_eq!(seen.len(), N, "messages with a record: {}", seen.len());
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    // All acknowledged: nothing waits in the inbox.
    let waiting = Command::new(BIN)
        .args(["ping", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&waiting.stdout).unwrap();
    assert_eq!(ping[0]["waiting"], 0, "{ping}");
    // Every message reached the webhook; a repeat is possible only for a message in flight at
    // a kill (between the webhook's answer and the ledger's record), and carries the same
    // Idempotency-Key so the receiver can drop it.
    let (distinct, repeats) = {
        let d = deliveries.lock().unwrap();
        (d.len(), d.values().map(|n| n - 1).sum::<u32>())
    };
    assert_eq!(distinct, N);
    assert!(
        repeats as usize <= kills * 4,
        "{repeats} repeats for {kills} kills"
    );
    eprintln!(
        "{kills} kills, {repeats} webhook repeats (same Idempotency-Key), {N} messages, 0 lost, 0 written twice"
    );
    sb.shutdown().await;
}

/// Every byte a full run leaves behind: stdout, stderr at the most verbose log level, and every
/// output file.
fn leaves(output: &std::process::Output, out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all = vec![
        ("stdout".to_owned(), output.stdout.clone()),
        ("stderr".to_owned(), output.stderr.clone()),
    ];
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                all.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    all
}

#[test]
fn a_full_run_never_leaks_a_secret_or_token() {
    const SECRET: &str = "demo-secret-do-not-use-in-production";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut found = Vec::new();
    for args in [
        vec!["run", "--json", "--out"],
        vec!["run", "--out"],
        vec!["ping", "--json"],
        vec!["ping"],
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args).env("M365MAIL_LOG", "trace");
        if args.last() == Some(&"--out") {
            cmd.arg(&out);
        }
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for (name, bytes) in leaves(&output, &out) {
            let text = String::from_utf8_lossy(&bytes);
            // The secret itself, and any JSON Web Token (every access token the sandbox issues
            // starts with the base64 of `{"`: `eyJ`).
            if text.contains(SECRET) {
                found.push(format!("{args:?} {name}: client secret"));
            }
            for (i, _) in text.match_indices("eyJ") {
                let tail: String = text[i..].chars().take(60).collect();
                if tail.matches('.').count() >= 1 && tail.len() > 40 {
                    found.push(format!("{args:?} {name}: token-like {tail}"));
                }
            }
            if text.to_ascii_lowercase().contains("authorization: bearer") {
                found.push(format!("{args:?} {name}: Authorization header"));
            }
        }
        // The run really logged at trace level (token requests, HTTP traffic): the check is not
        // vacuous.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("requesting a token") && stderr.contains("TRACE"),
            "{stderr}"
        );
    }
    assert!(found.is_empty(), "leaks:\n{}", found.join("\n"));
}

/// `m365mail login` with the browser flow: the person opens the printed address, signs in and
/// consents on the tenant's page, and the browser comes back to the loopback listener. The
/// browser is played by plain HTTP requests doing what the sign-in page's form does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_through_the_tenant_pages_to_the_loopback_listener() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tokens.json");
    let cfg = dir.path().join("m365mail.toml");
    Config::person(&sb, "me", "browser", &cache).write(&cfg);
    let mut child = tokio::process::Command::new(BIN)
        .args(["login", "--app", "me", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(u) = line.trim().strip_prefix("http") {
            url = Some(url::Url::parse(&format!("http{u}")).unwrap());
            break;
        }
    }
    let url = url.expect("login printed the sign-in address");
    assert!(url.path().ends_with("/oauth2/v2.0/authorize"));
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");

    // The person signs in as Adele and consents: the page's form posts back to /authorize.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut form: Vec<(String, String)> = q.into_iter().collect();
    form.push(("login".into(), "adele.vance@contoso.example".into()));
    form.push(("action".into(), "consent".into()));
    let page = browser
        .post(format!(
            "{}{}",
            sb.base_url().trim_end_matches('/'),
            url.path()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 302, "{:?}", page.text().await);
    let back = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("http://localhost:"), "{back}");
    // The browser follows the redirect to the listener, which shows a short page.
    let landing = browser
        .get(back.replace("localhost", "127.0.0.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status().as_u16(), 200);

    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stdout.take().unwrap(), &mut out)
        .await
        .unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("signed in"), "{out}");
    // The token is cached, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    sb.shutdown().await;
}

/// `config` without the webhook, for runs that only write to the folder.
/// [`folder_config`], changed by `edit`, written into a new temporary directory: the directory,
/// the handler's output folder in it and the configuration file.
fn write_folder_config(
    sb: &Sandbox,
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, edit(folder_config(sb, &out))).unwrap();
    (dir, out, cfg)
}

fn folder_config(sb: &Sandbox, out: &Path) -> String {
    config(sb, out, "http://127.0.0.1:9/hook")
        .replace("webhook = \"http://127.0.0.1:9/hook\"\n", "")
}

/// Runs `args` under `script`, which gives the command a terminal (a pty) for stdout and stderr
/// as a person's shell would; returns everything the terminal showed. `None` (after saying
/// why) when `script` (util-linux) is missing and `CI` is not set.
fn on_a_terminal(args: &[&str]) -> Option<(bool, String)> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(script) = script else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but `script` (util-linux) is missing"
        );
        eprintln!("SKIPPED terminal check: `script` (util-linux) not found");
        return None;
    };
    let command = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Some((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// A sandbox whose helpdesk has `n` messages waiting (plus the demo seed's two).
async fn large_mailbox(n: usize) -> Sandbox {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    for i in 0..n {
        let mime = format!(
            "From: c{i}@fabrikam.example\r\nTo: helpdesk@contoso.example\r\nSubject: bulk {i}\r\n\
             Message-ID: <bulk-{i}@fabrikam.example>\r\n\r\nbody {i}\r\n"
        );
        sb.admin()
            .inject_mime("helpdesk@contoso.example", &mime)
            .unwrap();
    }
    sb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_mailbox_drains_with_a_progress_bar_on_a_terminal_only() {
    const N: usize = 60;
    let sb = large_mailbox(N).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| text);
    let cfg_s = cfg.display().to_string();

    let terminal =
        tokio::task::spawn_blocking(move || on_a_terminal(&["run", "--once", "--config", &cfg_s]))
            .await
            .unwrap();
    let Some((ok, shown)) = terminal else {
        sb.shutdown().await;
        return;
    };
    assert!(ok, "{shown}");
    // The bar (batch_size 10, so 62 waiting is a large mailbox): the source's name, the bar
    // and the count of the announced total.
    let total = format!("/{}", N + 2);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("helpdesk [") && l.contains(&total)),
        "no progress bar in:\n{shown}"
    );
    assert!(shown.contains("handled:"), "{shown}");
    assert_eq!(records(&out).len(), N + 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_and_output_to_a_pipe_carry_no_progress_bar() {
    const N: usize = 40;
    let sb = large_mailbox(N).await;
    let (_dir, _out, cfg) = write_folder_config(&sb, |text| text);

    // --json on a terminal: everything the terminal shows is the JSON document.
    let cfg_s = cfg.display().to_string();
    let shown = tokio::task::spawn_blocking(move || {
        on_a_terminal(&["run", "--once", "--json", "--config", &cfg_s])
    })
    .await
    .unwrap();
    if let Some((ok, shown)) = shown {
        assert!(ok, "{shown}");
        let v: serde_json::Value = serde_json::from_str(shown.trim())
            .unwrap_or_else(|e| panic!("not clean JSON ({e}):\n{shown:?}"));
        assert_eq!(v["sources"][0]["handled"], N as u64 + 2);
    }

    // Human output to a pipe (a log file, a service manager): no bar either.
    for i in 0..N {
        let mime = format!(
            "From: d{i}@fabrikam.example\r\nTo: helpdesk@contoso.example\r\nSubject: more {i}\r\n\
             Message-ID: <more-{i}@fabrikam.example>\r\n\r\nbody\r\n"
        );
        sb.admin()
            .inject_mime("helpdesk@contoso.example", &mime)
            .unwrap();
    }
    let output = Command::new(BIN)
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains(&format!("handled:   {N}")), "{stdout}");
    assert!(!stderr.contains("helpdesk ["), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
    sb.shutdown().await;
}

/// The demo app may send over SMTP as an app (`SMTP.SendAsApp`, admin-consented).
fn allow_smtp_send_as_app(sb: &Sandbox) {
    const APP: &str = test_support::DEMO_APP;
    const SEND_AS_APP: &str = "https://outlook.office365.com/SMTP.SendAsApp";
    sb.admin().update_tenant(|t| {
        if let Some(app) = t.apps.iter_mut().find(|a| a.client_id == APP)
            && let Some(p) = sandbox::tenant::Permission::parse(SEND_AS_APP)
        {
            app.application_permissions.push(p);
        }
    });
    sb.admin()
        .grant_admin_consent(APP, &[], &[SEND_AS_APP])
        .unwrap();
}

fn smtp_config(sb: &Sandbox, ca_file: Option<&Path>) -> String {
    let smtp = sb.smtp_addr().unwrap();
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    Config::demo(sb)
        .outbound(
            "smtp",
            "smtp",
            "demo",
            "helpdesk@contoso.example",
            &format!("host = \"127.0.0.1\"\nport = {}\n{ca}", smtp.port()),
        )
        .text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outbound_with_the_sandbox_ca_sends_over_starttls() {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    allow_smtp_send_as_app(&sb);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smtp-ca.pem");
    std::fs::write(&ca, sb.smtp_ca_pem().unwrap()).unwrap();
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, smtp_config(&sb, Some(&ca))).unwrap();
    let send = |cfg: std::path::PathBuf, subject: &'static str| {
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args([
                    "send",
                    "--outbound",
                    "smtp",
                    "--to",
                    "adele.vance@contoso.example",
                ])
                .args(["--subject", subject, "--config"])
                .arg(&cfg)
                .output()
                .unwrap()
        })
    };

    let ping = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["ping", "--json", "smtp", "--config"])
                .arg(&cfg)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let report: serde_json::Value = serde_json::from_slice(&ping.stdout).unwrap();
    assert_eq!(report[0]["status"], "ONLINE", "{report}");

    let sent = send(cfg.clone(), "over starttls").await.unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let inbox: Vec<String> = sb
        .admin()
        .store()
        .list(
            "adele.vance@contoso.example",
            Some("inbox"),
            &sandbox::store::ListQuery::default(),
        )
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.props.subject.clone())
        .collect();
    assert!(inbox.iter().any(|s| s == "over starttls"), "{inbox:?}");

    // Without the CA the sandbox's certificate is not trusted: nothing is sent.
    let untrusted = dir.path().join("untrusted.toml");
    std::fs::write(&untrusted, smtp_config(&sb, None)).unwrap();
    let refused = send(untrusted, "never").await.unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls"), "{err}");

    // A CA file that holds no certificate is refused by name before any connection.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, smtp_config(&sb, Some(&bogus))).unwrap();
    let refused = send(bad, "never").await.unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("outbounds.smtp.ca_file"), "{err}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_source_in_delta_mode_hands_over_only_what_is_new_run_after_run() {
    const N: usize = 25;
    let sb = large_mailbox(N).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| {
        let text = text.replace(
            "acknowledge = \"move:Processed\"\n",
            "acknowledge = \"mark-read\"\nmode = \"delta\"\n",
        );
        assert!(text.contains("mode = \"delta\""));
        text
    });

    let first = run_once_json(BIN, &cfg).await;
    let s = &first["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{first}");
    assert_eq!(s["handled"], N as u64 + 2, "{first}");
    // The state lives next to the ledger.
    assert!(out.join("ledger.jsonl").is_file());
    assert!(out.join("graph-delta.json").is_file());

    // Nothing new: the second run finds nothing and hands nothing over, not even to recover it.
    let second = run_once_json(BIN, &cfg).await;
    let s = &second["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{second}");
    assert_eq!(s["handled"], 0, "{second}");
    assert_eq!(s["recovered"], 0, "{second}");

    // New mail is found by the next run, and only it.
    for i in 0..3 {
        let mime = format!(
            "From: n{i}@fabrikam.example\r\nTo: billing@contoso.example\r\nSubject: new {i}\r\n\
             Message-ID: <new-{i}@fabrikam.example>\r\n\r\nbody\r\n"
        );
        sb.admin()
            .inject_mime("billing@contoso.example", &mime)
            .unwrap();
    }
    let third = run_once_json(BIN, &cfg).await;
    let s = &third["sources"][0];
    assert_eq!(s["handled"], 3, "{third}");
    assert_eq!(s["per_project"]["BILLING"], 3, "{third}");

    let seen = records(&out);
    assert_eq!(seen.len(), N + 2 + 3);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handed over more than once: {twice:?}");
    sb.shutdown().await;
}

/// An app that signs in with a certificate instead of a secret: a PKCS#12 file (password from
/// the environment) and a PEM pair, both accepted by the tenant once the certificate is
/// registered; a wrong password is a clear error; and at trace level neither the password, the
/// private key nor a token shows up anywhere in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_a_certificate_from_pkcs12_or_pem() {
    const PASSWORD: &str = "correct-horse";
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../msauth/tests/fixtures");
    let cert_pem = std::fs::read_to_string(fixtures.join("test-cert.pem")).unwrap();
    let key_pem = std::fs::read_to_string(fixtures.join("test-key-pkcs8.pem")).unwrap();
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = |credential: &str| {
        Config::new()
            .sandbox_app(&sb, "demo", credential)
            .source(
                "helpdesk",
                "graph",
                "demo",
                "helpdesk@contoso.example",
                &sb.graph_url(),
                "",
            )
            .mailbox("helpdesk@contoso.example", &[])
            .default_rule("DESK")
            .text()
    };
    let ping = |credential: String, password: Option<&str>| {
        let path = dir.path().join("m365mail.toml");
        std::fs::write(&path, cfg(&credential)).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["ping", "--json", "--config"])
            .arg(&path)
            .env("M365MAIL_LOG", "trace")
            .env_remove("PFX_PASSWORD");
        if let Some(p) = password {
            cmd.env("PFX_PASSWORD", p);
        }
        cmd.output().unwrap()
    };
    let pfx = format!(
        "certificate_file = \"{}\"\ncertificate_password_env = \"PFX_PASSWORD\"",
        fixtures.join("pkcs12/modern.pfx").display()
    );
    // Not registered on the app yet: the tenant refuses the assertion, and ping says why.
    let refused = ping(pfx.clone(), Some(PASSWORD));
    let text = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains("OFFLINE"), "{text}");
    assert!(
        text.contains("700027") || text.contains("ertificate"),
        "{text}"
    );

    sb.admin().update_tenant(|t| {
        if let Some(app) = t
            .apps
            .iter_mut()
            .find(|a| a.client_id == "00000000-0000-0000-0000-00000000d3e0")
        {
            app.certificates.push(sandbox::tenant::AppCertificate {
                pem: cert_pem.clone(),
            });
        }
    });
    let pem = format!(
        "certificate_file = \"{}\"\ncertificate_key_file = \"{}\"\nassertion_algorithm = \"rs256\"",
        fixtures.join("test-cert.pem").display(),
        fixtures.join("test-key-pkcs8.pem").display()
    );
    let key_line = key_pem.lines().nth(5).unwrap().to_owned();
    for (what, credential) in [("pkcs12", pfx.clone()), ("pem", pem)] {
        let output = ping(credential, Some(PASSWORD));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}: {stdout}\n{stderr}"));
        assert_eq!(report[0]["status"], "ONLINE", "{what}: {report}\n{stderr}");
        assert!(stderr.contains("requesting a token"), "{what}: {stderr}");
        for text in [&stdout, &stderr] {
            assert!(!text.contains(PASSWORD), "{what}: the password leaked");
            assert!(!text.contains(&key_line), "{what}: the private key leaked");
            assert!(
                !text.contains("client_assertion="),
                "{what}: the assertion leaked"
            );
            for (i, _) in text.match_indices("eyJ") {
                let tail: String = text[i..].chars().take(60).collect();
                assert!(
                    tail.matches('.').count() == 0 || tail.len() <= 40,
                    "{what}: token-like {tail}"
                );
            }
        }
    }

    // A wrong password: a clear error that does not repeat it.
    let wrong = ping(pfx.clone(), Some("battery-staple"));
    let text = String::from_utf8_lossy(&wrong.stdout).to_string()
        + &String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() || text.contains("OFFLINE"),
        "{text}"
    );
    assert!(text.contains("certificate_file"), "{text}");
    assert!(text.to_lowercase().contains("password"), "{text}");
    assert!(!text.contains("battery-staple"), "{text}");
    // The variable not set at all: named.
    let unset = ping(pfx, None);
    let text = String::from_utf8_lossy(&unset.stderr);
    assert!(text.contains("PFX_PASSWORD"), "{text}");
    sb.shutdown().await;
}

/// A tenant served over HTTPS by a CA the system does not know (the sandbox with TLS, like an
/// on-premises server with an internal CA): `ca_file` on the app (token endpoint) and on the
/// source (Graph) makes the run work; without it on the source, the source is OFFLINE with a
/// certificate diagnosis and nothing is handled; a CA file without a certificate is refused by
/// its key before any connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_over_https_with_an_internal_ca_needs_ca_file_on_app_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("sandbox-ca.pem");
    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .tls(sandbox::TlsOptions {
            ca_pem_path: ca.clone(),
            hosts: vec!["localhost".into(), "127.0.0.1".into()],
        })
        .start()
        .await
        .unwrap();
    assert!(sb.graph_url().starts_with("https://"), "{}", sb.graph_url());
    let waiting = sb
        .admin()
        .store()
        .list(
            "helpdesk@contoso.example",
            Some("inbox"),
            &sandbox::store::ListQuery::default(),
        )
        .unwrap()
        .items
        .len() as u64;
    assert!(waiting > 0);
    let out = dir.path().join("out");
    let with_ca = |app: bool, source: bool| {
        let mut text = folder_config(&sb, &out);
        let line = |p: &Path| format!("ca_file = \"{}\"\n", p.display());
        if app {
            text = text.replace(
                "client_secret = \"demo-secret-do-not-use-in-production\"\n",
                &format!(
                    "client_secret = \"demo-secret-do-not-use-in-production\"\n{}",
                    line(&ca)
                ),
            );
        }
        if source {
            text = text.replace(
                "acknowledge = \"move:Processed\"\n",
                &format!("acknowledge = \"move:Processed\"\n{}", line(&ca)),
            );
        }
        text
    };
    let run = |text: String, name: &str| {
        let cfg = dir.path().join(name);
        std::fs::write(&cfg, text).unwrap();
        Command::new(BIN)
            .args(["run", "--once", "--json", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };

    // The app trusts the CA (so it gets a token), the source does not: OFFLINE, with the reason.
    let untrusted = run(with_ca(true, false), "untrusted.toml");
    let summary: serde_json::Value = serde_json::from_slice(&untrusted.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&untrusted.stderr)));
    let s = &summary["sources"][0];
    assert_eq!(s["status"], "OFFLINE", "{summary}");
    assert_eq!(s["handled"], 0, "{summary}");
    let reason = s["reason"].to_string().to_lowercase();
    assert!(
        reason.contains("certificate") || reason.contains("tls") || reason.contains("connect"),
        "{summary}"
    );

    // Both trust it: every waiting message is handled over HTTPS.
    let trusted = run(with_ca(true, true), "trusted.toml");
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&trusted.stdout).unwrap();
    let s = &summary["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{summary}");
    assert_eq!(s["handled"], waiting, "{summary}");

    // A CA file with no certificate in it is refused by its key.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let refused = run(
        with_ca(false, true).replace(&ca.display().to_string(), &bogus.display().to_string()),
        "bogus.toml",
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("sources.helpdesk.ca_file"), "{err}");
    sb.shutdown().await;
}

/// The handler's `batch_size` is the source's fetch size: an EWS source with a batch of 300
/// lists 252 waiting messages with one FindItem (plus the final empty one that says the folder
/// is drained) instead of one per 100, and downloads them in GetItem chunks of 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ews_source_fetches_as_many_as_the_handler_batch_per_finditem() {
    let sb = large_mailbox(250).await;
    let (_dir, _, cfg) = write_folder_config(&sb, |text| {
        let text = text
            .replace("kind = \"graph\"", "kind = \"ews\"")
            .replace(&sb.graph_url(), &sb.ews_url())
            .replace(
                "acknowledge = \"move:Processed\"\n",
                "acknowledge = \"mark-read\"\n",
            )
            .replace("batch_size = 10", "batch_size = 300");
        assert!(text.contains("kind = \"ews\"") && text.contains("batch_size = 300"));
        text
    });
    sb.admin().clear_request_log();

    let summary = run_once_json(BIN, &cfg).await;
    let s = &summary["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{summary}");
    assert_eq!(s["handled"], 252, "{summary}");
    let log = sb.request_log();
    assert_eq!(log.count_operation("FindItem"), 2, "{log:?}");
    assert_eq!(log.count_operation("GetItem"), 3, "{log:?}");
    // The handler gives the source its acknowledgements together: 100 per UpdateItem.
    assert_eq!(log.count_operation("UpdateItem"), 3, "{log:?}");
    sb.shutdown().await;
}

/// Over Graph, the handler's acknowledgements (here moves to Processed) travel in `$batch`
/// requests, 20 at most per request, never as one request per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_source_acknowledges_in_batches_not_one_request_per_message() {
    let sb = large_mailbox(58).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| {
        let text = text.replace("batch_size = 10", "batch_size = 20");
        assert!(
            text.contains("acknowledge = \"move:Processed\"") && text.contains("batch_size = 20")
        );
        text
    });
    sb.admin().clear_request_log();

    let summary = run_once_json(BIN, &cfg).await;
    let s = &summary["sources"][0];
    assert_eq!(s["handled"], 60, "{summary}");
    assert_eq!(records(&out).len(), 60);
    let log = sb.request_log();
    let single: u64 = log
        .entries
        .iter()
        .filter(|e| e.path.ends_with("/move") || e.method.eq_ignore_ascii_case("PATCH"))
        .map(|e| e.count)
        .sum();
    assert_eq!(single, 0, "no per-message acknowledgement: {log:?}");
    // Three pages of 20: per page one `$batch` of MIME downloads and one of moves.
    assert_eq!(log.count("POST", "/v1.0/$batch"), 6, "{log:?}");
    sb.shutdown().await;
}
