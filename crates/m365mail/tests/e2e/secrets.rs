//! Sign-in (a browser, a certificate) and secrets and tokens kept out of every output.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sandbox::{Sandbox, Seed};
use test_support::config::Config;

use crate::support::BIN;

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
        vec!["doctor", "--json", "--probe-wait-secs", "2"],
        vec!["doctor", "--probe-wait-secs", "2"],
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

/// `m365mail login --app me --config CFG`, started: the child and its standard error, line by
/// line.
fn start_login(
    cfg: &Path,
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(BIN)
        .args(["login", "--app", "me", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

/// Waits (up to a minute: a hung login must not hang the suite) for a `login` to end: whether
/// it succeeded, and its standard output.
async fn finish_login(mut child: tokio::process::Child) -> (bool, String) {
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stdout.take().unwrap(), &mut out)
        .await
        .unwrap();
    (status.success(), out)
}

/// `m365mail login` with the browser flow: the person opens the printed address, signs in and
/// consents on the tenant's page, and the browser comes back to the loopback listener. The
/// browser is played by plain HTTP requests doing what the sign-in page's form does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_through_the_tenant_pages_to_the_loopback_listener() {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tokens.json");
    let cfg = dir.path().join("m365mail.toml");
    Config::person(&sb, "me", "browser", &cache).write(&cfg);
    let (child, mut lines) = start_login(&cfg);
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

    let (ok, out) = finish_login(child).await;
    assert!(ok, "{out}");
    assert!(out.contains("signed in"), "{out}");
    // The token is cached, readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    sb.shutdown().await;
}

/// `m365mail login` (device code) for an app that names its `account`: the person who signs in
/// is checked against it before anything is kept, and the tokens are kept under that account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_keeps_only_the_sign_in_of_the_apps_account() {
    const ALEX: &str = "alex.wilber@contoso.example";
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tokens.json");
    let cfg = dir.path().join("m365mail.toml");
    Config::new()
        .sandbox_app(
            &sb,
            "me",
            &format!(
                "flow = \"device-code\"\naccount = \"{ALEX}\"\ntoken_cache = \"{}\"",
                cache.display()
            ),
        )
        .write(&cfg);
    // Signs in as `user` (the tenant's device page, played by the admin API): the output.
    let login = |user: &'static str| {
        let cfg = cfg.clone();
        let sb = &sb;
        async move {
            let (child, mut lines) = start_login(&cfg);
            let mut code = None;
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((_, rest)) = line.split_once("enter the code ") {
                    code = rest.split_whitespace().next().map(str::to_owned);
                    break;
                }
            }
            let code = code.expect("login printed a user code");
            sb.admin().approve_device_code(&code, user).unwrap();
            let mut rest = String::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                rest.push_str(&line);
            }
            let (ok, out) = finish_login(child).await;
            (ok, format!("{out}{rest}"))
        }
    };
    let (ok, out) = login("adele.vance@contoso.example").await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("adele.vance@contoso.example signed in, but apps.me.account is"),
        "{out}"
    );
    assert!(!cache.exists(), "nothing kept");
    let (ok, out) = login(ALEX).await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("as {ALEX}")), "{out}");
    let kept = std::fs::read_to_string(&cache).unwrap();
    assert!(kept.contains(ALEX), "the entry's key names the account");
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
            .helpdesk_graph(&sb, "")
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
            app.certificates
                .push(sandbox::tenant::AppCertificate::from_pem(cert_pem.clone()));
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
