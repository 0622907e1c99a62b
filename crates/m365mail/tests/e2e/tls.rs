//! TLS with a CA the system does not know: SMTP with STARTTLS and Graph over HTTPS.

use std::path::Path;
use std::process::Command;

use sandbox::{Sandbox, Seed};
use test_support::config::Config;
use test_support::tokens::allow_smtp_send_as_app;

use crate::support::{BIN, assert_success, folder_config};

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
    assert_success(&sent);
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
        .tls(sandbox::TlsOptions::new(&ca).with_hosts(["localhost", "127.0.0.1"]))
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
    assert_success(&trusted);
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
