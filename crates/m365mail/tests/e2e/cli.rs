//! Runs without a configuration, a broken configuration, and `route`.

use std::process::Command;

use crate::support::{BIN, assert_success};

#[test]
fn run_without_configuration_routes_the_demo_mail_and_answers_from_the_retained_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = Command::new(BIN)
        .args(["run", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&output);
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
    // Customers' mail and the state about it are the owner's alone, as in a mail store: every
    // file the handler wrote (messages, routing records, the ledger, delta state) is 0600 and
    // every folder it made 0700.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mut stack = vec![out.clone()];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}: {mode:o}", dir.display());
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
                    files += 1;
                }
            }
        }
        assert!(files > 16, "only {files} files written");
    }
}

/// `run --push`: the demo with both sources in push mode routes exactly what the polling demo
/// routes, each message handed over because a notification woke its source (the safety timer
/// is 15 minutes, the wait for each message 20 seconds), and no notification was forged.
#[test]
fn run_push_shows_the_demo_in_push_mode() {
    let dir = tempfile::tempdir().unwrap();
    let polled = Command::new(BIN)
        .args(["run", "--json", "--out"])
        .arg(dir.path().join("polled"))
        .output()
        .unwrap();
    assert_success(&polled);
    let pushed = Command::new(BIN)
        .args(["run", "--push", "--json", "--out"])
        .arg(dir.path().join("pushed"))
        .output()
        .unwrap();
    assert_success(&pushed);
    let polled: serde_json::Value = serde_json::from_slice(&polled.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    for (p, q) in summary["sources"]
        .as_array()
        .unwrap()
        .iter()
        .zip(polled["sources"].as_array().unwrap())
    {
        assert_eq!(p["status"], "ONLINE", "{p}");
        assert_eq!(p["handled"], q["handled"], "{p}");
        assert_eq!(p["per_project"], q["per_project"], "{p}");
        assert_eq!(
            p["notifications_skipped"], q["notifications_skipped"],
            "{p}"
        );
    }
    let report = String::from_utf8_lossy(&pushed.stderr);
    let delivered = report
        .lines()
        .filter(|l| l.trim_start().starts_with("delivered to "))
        .count();
    assert_eq!(delivered, m365mail::demo::demo_mail().len(), "{report}");
    let listener = report
        .lines()
        .find(|l| l.starts_with("Graph notification listener:"))
        .unwrap_or_else(|| panic!("no listener line in {report}"));
    let count = |what: &str| -> u64 {
        let words: Vec<&str> = listener.split_whitespace().collect();
        let at = words.iter().position(|w| w.starts_with(what)).unwrap();
        words[at - 1].trim_end_matches(',').parse().unwrap()
    };
    assert!(count("notifications") >= 1, "{listener}");
    assert_eq!(count("forged"), 0, "{listener}");
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
    assert_success(&output);
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["project"], "FACILITIES");
    assert_eq!(v["catch_address"], "support+printer@contoso.example");
    assert_eq!(v["answer_from"], "support@contoso.example");
}

/// An identity provider without Microsoft's URL layout is named endpoint by endpoint in
/// `[apps.endpoints]`: the app signs in at exactly those URLs (here the sandbox's, under the
/// `127.0.0.1` host rather than a Microsoft login host), and `ping` is ONLINE through them. A
/// plain-HTTP endpoint off loopback is refused with the key that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_signs_in_at_endpoints_named_one_by_one() {
    use sandbox::{Sandbox, Seed};
    use test_support::config::{Config, SECRET_LINE};

    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let tenant = sb.tenant_id();
    let token = sb.token_url(&tenant);
    let authorize = token.replace("/token", "/authorize");
    let app = |endpoints: &str| {
        format!(
            "[[apps]]\nname = \"custom\"\ntenant = \"{tenant}\"\nclient_id = \"{}\"\n\
             {SECRET_LINE}\n[apps.endpoints]\n{endpoints}\n",
            test_support::DEMO_APP
        )
    };
    let rest = Config::new()
        .source(
            "helpdesk",
            "graph",
            "custom",
            "helpdesk@contoso.example",
            &sb.graph_url(),
            "",
        )
        .mailbox("helpdesk@contoso.example", &[])
        .default_rule("DESK")
        .text();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m365mail.toml");
    let ping = |text: String| {
        std::fs::write(&cfg, text).unwrap();
        Command::new(BIN)
            .args(["ping", "--json", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };

    // One thread runs the sandbox while the other waits for the command.
    let requests_before = sb.request_log().token_requests();
    let good = ping(app(&format!("authorize = \"{authorize}\"\ntoken = \"{token}\"")) + &rest);
    assert_success(&good);
    let report: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(report[0]["status"], "ONLINE", "{report}");
    assert_eq!(sb.request_log().token_requests(), requests_before + 1);

    let insecure = ping(
        app(&format!(
            "authorize = \"{authorize}\"\ntoken = \"http://login.example/t/oauth2/v2.0/token\""
        )) + &rest,
    );
    assert!(!insecure.status.success());
    let err = String::from_utf8_lossy(&insecure.stderr);
    assert!(err.contains("apps.custom.endpoints.token"), "{err}");
    assert!(err.contains("line 8"), "{err}");
    sb.shutdown().await;
}

/// `m365mail sandbox` is the standalone sandbox's command line (`sandbox::cli`): the same
/// options, the same first line for scripts to read, the same tenant served.
#[tokio::test]
async fn sandbox_serves_the_demo_tenant_with_the_standalone_options() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let smtp_ca = dir.path().join("smtp-ca.pem");
    let mut child = Command::new(BIN)
        .args([
            "sandbox",
            "--port",
            "0",
            "--smtp-port",
            "0",
            "--smtp-ca-out",
        ])
        .arg(&smtp_ca)
        .env_remove("SANDBOX_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let last = line == "Ctrl-C to stop.";
        printed.push(line);
        if last {
            break;
        }
    }
    let base = printed[0]
        .strip_prefix("sandbox listening on ")
        .unwrap_or_default()
        .to_owned();
    let got = reqwest::get(format!(
        "{base}/contoso.example/v2.0/.well-known/openid-configuration"
    ))
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{printed:?}");
    let got = got.unwrap();
    assert_eq!(got.status(), 200);
    let doc: serde_json::Value = got.json().await.unwrap();
    assert!(
        doc["issuer"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&base),
        "{doc}"
    );
    let pem = std::fs::read_to_string(&smtp_ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(
        printed
            .iter()
            .any(|l| l.contains("SMTP CA certificate written to") && l.contains("smtp-ca.pem")),
        "{printed:?}"
    );
}
