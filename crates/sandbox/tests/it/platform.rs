//! SMTP delivery and routing, admin injection, token-endpoint faults, the request log, TLS and
//! seeds. (Internal submission and the fault controller's admission are checked at their entry
//! points in `src/tests/platform.rs`.)

use sandbox::store::ListQuery;

use crate::common::*;

#[tokio::test]
async fn smtp_delivery_and_routing_rules() {
    let sb = start().await;
    let before = inbox(&sb, "helpdesk@contoso.example").len();
    let mut c = SmtpClient::connect(&sb).await;
    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.starts_with("250-") && ehlo.contains("SIZE "), "{ehlo}");
    for (command, want) in [
        ("RCPT TO:<support@contoso.example>", "503"), // RCPT before MAIL
        ("MAIL FROM:<nestor@fabrikam.example>", "250"),
        ("RCPT TO:<nobody@contoso.example>", "550 5.1.1"),
        ("RCPT TO:<someone@elsewhere.example>", "550 5.7.54"), // no relaying
        ("RCPT TO:<team+x@contoso.example>", "550 5.1.1"),     // no plus addressing for groups
        ("RCPT TO:<Support+Printer@Contoso.Example>", "250"),
        ("RCPT TO:<billing@contoso.example>", "250"),
        ("DATA", "354"),
    ] {
        c.expect(command, want).await;
    }
    let reply = c.write(b"From: Nestor <nestor@fabrikam.example>\r\nTo: support+printer@contoso.example\r\nCc: billing@contoso.example\r\nSubject: SMTP test\r\nMessage-ID: <smtp-1@fabrikam.example>\r\n\r\n..leading dot\r\nbody\r\n.\r\n").await;
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    for (command, want) in [("NOOP", "250"), ("BOGUS", "502"), ("QUIT", "221")] {
        c.expect(command, want).await;
    }
    let msgs = inbox(&sb, "helpdesk@contoso.example");
    assert_eq!(
        msgs.len(),
        before + 1,
        "two aliases of one mailbox: one copy"
    );
    let m = msgs
        .iter()
        .find(|m| m.props.subject == "SMTP test")
        .unwrap();
    assert_eq!(
        m.props.internet_message_id.as_deref(),
        Some("<smtp-1@fabrikam.example>")
    );
    assert!(
        m.props.body_text.starts_with(".leading dot"),
        "dot-unstuffing: {:?}",
        m.props.body_text
    );
    assert_eq!(
        m.props.header("Return-Path"),
        Some("<nestor@fabrikam.example>")
    );
    // Mail from outside gets Exchange Online's verdict header (the demo says fabrikam passes).
    assert!(
        m.props
            .header("Authentication-Results")
            .is_some_and(|v| v
                .starts_with("spf=pass (sender IP is 127.0.0.1) smtp.mailfrom=fabrikam.example;")),
        "{:?}",
        m.props.headers
    );
    assert!(!m.is_read);
    // Group delivery reaches every member (nested groups expanded once).
    sb.admin()
        .add_group(
            "leads@contoso.example",
            &["megan.bowen@contoso.example", "team@contoso.example"],
        )
        .unwrap();
    assert!(
        sb.admin().add_group("leads@contoso.example", &[]).is_err(),
        "address already used"
    );
    // A group added on a running tenant is filled in as a seeded one is: a display name (Graph
    // always answers one) and an id derived from the address.
    let tenant = sb.admin().tenant();
    let leads = tenant.group("leads@contoso.example").unwrap();
    assert_eq!(leads.display_name, "Leads");
    let team = tenant.group("team@contoso.example").unwrap();
    assert!(!leads.id.is_empty() && leads.id != team.id);
    assert_eq!(leads.id.len(), team.id.len());
    let r = sb
        .admin()
        .inject_mime("leads@contoso.example", "Subject: leads\r\n\r\nx")
        .unwrap();
    let mut got: Vec<String> = r.delivered.iter().map(|d| d.1.clone()).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            "adele.vance@contoso.example",
            "alex.wilber@contoso.example",
            "megan.bowen@contoso.example"
        ]
    );
    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("HELO x").await;
    c.cmd("MAIL FROM:<a@fabrikam.example>").await;
    c.expect("RCPT TO:<team@contoso.example>", "250").await;
    c.cmd("DATA").await;
    let reply = c.write(b"Subject: to the team\r\n\r\nhi\r\n.\r\n").await;
    assert!(reply.starts_with("250"), "{reply}");
    for who in ["adele.vance@contoso.example", "alex.wilber@contoso.example"] {
        assert!(
            inbox(&sb, who)
                .iter()
                .any(|m| m.props.subject == "to the team"),
            "{who}"
        );
    }
    assert_eq!(sb.request_log().count("SMTP", "DATA"), 2);
}

#[tokio::test]
async fn smtp_size_cap_plus_addressing_switch_and_alias_propagation() {
    let sb = start().await;
    let admin = sb.admin();
    admin.update_org(|o| {
        o.max_message_size = 200;
        o.disable_plus_address_in_recipients = true;
    });
    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("EHLO x").await;
    for (command, want) in [
        ("MAIL FROM:<a@fabrikam.example> SIZE=5000", "552"),
        ("MAIL FROM:<a@fabrikam.example>", "250"),
        ("RCPT TO:<support+x@contoso.example>", "550 5.1.1"), // plus addressing off
        ("RCPT TO:<support@contoso.example>", "250"),
    ] {
        c.expect(command, want).await;
    }
    c.cmd("DATA").await;
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(400));
    let reply = c.write(big.as_bytes()).await;
    assert!(reply.starts_with("552"), "{reply}");
    c.expect("RSET", "250").await;
    // A new alias is refused until it has propagated (demo delay: 5 s on the sandbox clock).
    admin
        .add_alias("helpdesk@contoso.example", "newproject@contoso.example")
        .unwrap();
    c.cmd("MAIL FROM:<a@fabrikam.example>").await;
    let r = c.cmd("RCPT TO:<newproject@contoso.example>").await;
    assert!(
        r.starts_with("550 5.1.1") && r.contains("not active yet"),
        "{r}"
    );
    admin.advance_clock(6);
    c.expect("RCPT TO:<newproject@contoso.example>", "250")
        .await;
}

#[tokio::test]
async fn admin_inject_and_seed_messages() {
    let sb = start().await;
    let seeded = inbox(&sb, "helpdesk@contoso.example");
    assert_eq!(seeded.len(), 2, "demo seed messages");
    let r = sb
        .admin()
        .inject_mime(
            "sales@contoso.example",
            "From: x@fabrikam.example\r\nSubject: injected\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert_eq!(r.delivered.len(), 1);
    let r = sb
        .admin()
        .inject_mime("ghost@contoso.example", "Subject: x\r\n\r\nhi\r\n")
        .unwrap();
    assert!(r.delivered.is_empty() && r.rejected.len() == 1);
    // Over HTTP.
    let resp = admin_json(
        &sb,
        r#"{"op":"inject_mime","to":["support@contoso.example"],"mime":"Subject: via http\r\n\r\nx"}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        inbox(&sb, "helpdesk@contoso.example")
            .iter()
            .any(|m| m.props.subject == "via http")
    );
    let resp = admin_json(&sb, "{\"op\":\"nope\"}").await;
    assert_eq!(resp.status(), 400);
    let resp = admin_json(
        &sb,
        r#"{"op":"add_alias","mailbox":"ghost@contoso.example","alias":"x@contoso.example"}"#,
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn request_log_counts_per_endpoint_and_status() {
    let sb = start().await;
    // Two discoveries (200), one of an unknown tenant (400), one refused token request.
    let four_requests = || async {
        for tenant in [TENANT, TENANT, "nope.example"] {
            get_json(&format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                sb.base_url()
            ))
            .await;
        }
        post_form(&sb.token_url(TENANT), &[("grant_type", "nope")]).await;
    };
    four_requests().await;
    get_json(&format!("{}/_sandbox/requests", sb.base_url())).await;
    let log = sb.request_log();
    let tpl = "/{tenant}/v2.0/.well-known/openid-configuration";
    assert_eq!(log.count("GET", tpl), 3);
    assert!(
        log.entries
            .iter()
            .any(|e| e.path == tpl && e.status == 200 && e.count == 2)
    );
    assert!(
        log.entries
            .iter()
            .any(|e| e.path == tpl && e.status == 400 && e.count == 1)
    );
    assert_eq!(log.count("POST", "/{tenant}/oauth2/v2.0/token"), 1);
    get_json(&format!("{}/no/such/path/here", sb.base_url())).await;
    get_json(&format!("{}/no/such/path/either", sb.base_url())).await;
    let log = sb.request_log();
    assert_eq!(log.count("GET", sandbox::reqlog::UNMATCHED), 2);
    sb.admin().clear_request_log();
    four_requests().await;
    let log = sb.request_log();
    assert_eq!(log.total(), 4, "admin requests are not counted: {log:?}");
    let (_, v) = get_json(&format!("{}/_sandbox/requests", sb.base_url())).await;
    assert_eq!(v["total"], 4);
    sb.admin().clear_request_log();
    assert_eq!(sb.request_log().total(), 0);
}

#[tokio::test]
async fn tls_serves_https_with_a_generated_ca() {
    let dir = std::env::temp_dir().join(format!("sandbox-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_path = dir.join("ca.pem");
    let sb = sandbox::Sandbox::builder()
        .tls(sandbox::TlsOptions::new(&ca_path))
        .start()
        .await
        .unwrap();
    assert!(sb.base_url().starts_with("https://localhost:"));
    let pem = std::fs::read(&ca_path).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("localhost", sb.http_addr())
        .build()
        .unwrap();
    let resp = client
        .get(format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            sb.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(
        v["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://localhost:")
    );
    // An untrusting client refuses the certificate.
    assert!(
        reqwest::Client::new()
            .get(sb.base_url())
            .send()
            .await
            .is_err()
    );
    sb.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn seeds_from_toml_and_json_with_readable_errors() {
    let json = r#"{"tenant":{"id":"11111111-2222-3333-4444-555555555555","domains":["fabrikam.example"]},
                   "users":[{"mail":"Ann@Fabrikam.example","aliases":["sales@fabrikam.example"]}],
                   "groups":[{"mail":"all@fabrikam.example","members":["ann@fabrikam.example"]}]}"#;
    let seed = sandbox::Seed::from_json_str(json).unwrap();
    let sb = sandbox::Sandbox::builder()
        .seed(seed)
        .start()
        .await
        .unwrap();
    assert_eq!(sb.tenant_id(), "11111111-2222-3333-4444-555555555555");
    let r = sb
        .admin()
        .inject_mime("sales@fabrikam.example", "Subject: s\r\n\r\nx")
        .unwrap();
    assert_eq!(r.delivered[0].1, "ann@fabrikam.example");
    // Seed messages can be filed in a custom top-level folder, created at start-up.
    let seed = sandbox::Seed::from_toml_str(
        "[tenant]\nid = \"11111111-2222-3333-4444-555555555555\"\ndomains = [\"a.example\"]\n[[users]]\nmail = \"a@a.example\"\n[[messages]]\nmailbox = \"a@a.example\"\nfolder = \"Answered\"\nis_read = true\nmime = \"Subject: old\\n\\nbody\\n\"\n",
    )
    .unwrap();
    let sb2 = sandbox::Sandbox::builder()
        .seed(seed)
        .start()
        .await
        .unwrap();
    let f = sb2
        .admin()
        .store()
        .find_folder("a@a.example", None, "answered")
        .unwrap()
        .expect("folder created");
    assert_eq!((f.total_count, f.unread_count), (1, 0));
    let e = sandbox::Seed::from_toml_str("[tenant]\nid = \"11111111-2222-3333-4444-555555555555\"\ndomains = [\"a.example\"]\n[[users]]\nmail = \"a@a.example\"\n[[users]]\nmail = \"b@a.example\"\naliases = [\"a@a.example\"]\n").unwrap_err();
    assert!(e.to_string().contains("used twice"), "{e}");
    let e = sandbox::Seed::from_path("/nonexistent/seed.toml").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/seed.toml"));
    let e = sandbox::Seed::from_json_str("{").unwrap_err();
    assert!(matches!(e, sandbox::SeedError::Json(_)));
}

#[tokio::test]
async fn token_endpoint_faults_throttling_and_connection_reset() {
    let sb = start().await;
    let form = [
        ("client_id", DEMO_APP),
        ("client_secret", DEMO_SECRET),
        ("grant_type", "client_credentials"),
        ("scope", GRAPH_DEFAULT),
    ];
    // Set over the HTTP admin API, as a standalone user would.
    let plan = serde_json::json!({"op": "set_faults", "plan": {"seed": 7, "rules": [
        {"protocol": "token", "trigger": {"next": 1}, "fault": {"kind": "throttle", "retry_after_secs": 7}},
        {"protocol": "token", "trigger": {"next": 1}, "fault": {"kind": "server_error503"}},
        {"protocol": "token", "trigger": {"next": 1}, "fault": {"kind": "reset_connection"}},
        {"protocol": "token", "trigger": {"next": 1}, "fault": {"kind": "slow", "millis": 1}}
    ]}});
    let resp = admin_json(&sb, &plan.to_string()).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let resp = client()
        .post(sb.token_url(TENANT))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let (s, v) = post_form(&sb.token_url(TENANT), &form).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    // The connection is dropped mid-response: the client sees an error, not a response.
    let r = client().post(sb.token_url(TENANT)).form(&form).send().await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "a reset must surface as a transport error");
    // Slow, then served normally; then no more faults.
    assert_eq!(post_form(&sb.token_url(TENANT), &form).await.0, 200);
    assert_eq!(post_form(&sb.token_url(TENANT), &form).await.0, 200);
    assert_eq!(sb.admin().faults_fired(), 4);
}

#[tokio::test]
async fn standalone_binary_serves_a_seed_file() {
    let dir = std::env::temp_dir().join(format!("sandbox-bin-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.toml");
    std::fs::write(&seed, "[tenant]\nid = \"11111111-2222-3333-4444-555555555555\"\ndomains = [\"fabrikam.example\"]\n[[users]]\nmail = \"ann@fabrikam.example\"\n").unwrap();
    let smtp_ca = dir.join("smtp-ca.pem");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_m365mail-sandbox"))
        .args(["--port", "0", "--smtp-port", "0", "--seed"])
        .arg(&seed)
        .arg("--smtp-ca-out")
        .arg(&smtp_ca)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("sandbox listening on ")
        .unwrap_or_default()
        .to_string();
    let got = get_json(&format!(
        "{base}/fabrikam.example/v2.0/.well-known/openid-configuration"
    ))
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    assert_eq!(got.0, 200);
    assert_eq!(
        got.1["issuer"],
        format!("{base}/11111111-2222-3333-4444-555555555555/v2.0")
    );
    // The option `m365mail sandbox` has too (both are `sandbox::cli::ServeArgs`).
    let pem = std::fs::read_to_string(&smtp_ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    // A bad seed file is a readable error and a non-zero exit.
    std::fs::write(&seed, "[tenant]\nid = 5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365mail-sandbox"))
        .args(["--port", "0", "--smtp-port", "0", "--seed"])
        .arg(&seed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed is not valid TOML"));
    let _ = std::fs::remove_dir_all(dir);
}

/// `SANDBOX_LOG` sets what the standalone binary logs to stderr: at `debug`, an SMTP session
/// that ends in an error (here, a client that asks for STARTTLS and then sends no TLS) is told.
#[tokio::test]
async fn standalone_binary_logs_at_sandbox_log_level() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_m365mail-sandbox"))
        .args(["--port", "0", "--smtp-port", "0"])
        .env("SANDBOX_LOG", "sandbox=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read all it prints before closing the pipe (a write to a closed pipe would end it).
    let printed: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "Ctrl-C to stop.")
        .collect();
    let smtp = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("smtp:"))
        .expect("the binary prints its SMTP address")
        .trim();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let tcp = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let mut c = SmtpClient::new(tcp);
    assert!(c.reply().await.starts_with("220 "));
    c.expect("EHLO client.example", "250").await;
    c.expect("STARTTLS", "220 ").await;
    tokio::io::AsyncWriteExt::write_all(c.s.get_mut(), b"this is not a TLS ClientHello\r\n")
        .await
        .unwrap();
    drop(c);
    let wanted = "smtp session ended with an error";
    let logged = std::iter::from_fn(|| rx.recv_timeout(std::time::Duration::from_secs(10)).ok())
        .find(|l| l.contains(wanted))
        .unwrap_or_default();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        logged.contains("DEBUG") && logged.contains(wanted),
        "stderr: {logged:?}"
    );
}

#[tokio::test]
async fn smtp_auth_xoauth2_submission() {
    let sb = start().await;
    let token = smtp_send_token(&sb, "adele.vance@contoso.example");
    let mut c = SmtpClient::connect(&sb).await;
    assert!(c.cmd("EHLO x").await.contains("AUTH XOAUTH2"));
    let forged = xoauth2("adele.vance@contoso.example", "forged.token.x");
    let other_mailbox = xoauth2("helpdesk@contoso.example", &token);
    let own = sasl("adele.vance@contoso.example", &token);
    for (command, want) in [
        ("AUTH PLAIN abc", "504"),
        // A refused token gets 535 5.7.3 at once, as in Office 365.
        (forged.as_str(), "535 5.7.3"),
        (other_mailbox.as_str(), "535 5.7.3"), // no right on another mailbox
        ("AUTH XOAUTH2", "334"),
        (own.as_str(), "235 2.7.0"),
    ] {
        c.expect(command, want).await;
    }
    c.cmd("MAIL FROM:<adele.vance@contoso.example>").await;
    c.expect("RCPT TO:<partner@fabrikam.example>", "250").await; // authenticated relay
    c.expect("RCPT TO:<alex.wilber@contoso.example>", "250")
        .await;
    c.cmd("DATA").await;
    let reply = c.write(b"From: adele.vance@contoso.example\r\nTo: partner@fabrikam.example, alex.wilber@contoso.example\r\nSubject: submitted\r\n\r\nhi\r\n.\r\n").await;
    assert!(reply.starts_with("250"), "{reply}");
    // Sending as a mailbox without Send As is refused.
    c.cmd("MAIL FROM:<adele.vance@contoso.example>").await;
    c.cmd("RCPT TO:<alex.wilber@contoso.example>").await;
    c.cmd("DATA").await;
    let reply = c
        .write(b"From: helpdesk@contoso.example\r\nSubject: spoof\r\n\r\nhi\r\n.\r\n")
        .await;
    assert!(reply.starts_with("554 5.2.252"), "{reply}");
    assert!(
        inbox(&sb, "alex.wilber@contoso.example")
            .iter()
            .any(|m| m.props.subject == "submitted")
    );
    assert!(
        !inbox(&sb, "alex.wilber@contoso.example")
            .iter()
            .any(|m| m.props.subject == "spoof")
    );
    assert_eq!(sb.admin().outbox().len(), 1);
    let sent = sb
        .admin()
        .store()
        .list(
            "adele.vance@contoso.example",
            Some("sentitems"),
            &ListQuery::default(),
        )
        .unwrap();
    assert_eq!(sent.total, 1);
}
