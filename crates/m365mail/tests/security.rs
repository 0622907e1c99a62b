//! Security issue #24 through the `m365mail` binary against the sandbox: each attack that
//! worked on the handler's acknowledgements, and the configuration's secrets kept out of
//! every output. The rules themselves are tested one by one in
//! `crates/handler/tests/acknowledgements.rs`.

use std::path::Path;
use std::process::Command;

use sandbox::{Sandbox, Seed, SenderAuthVerdict};
use test_support::config::Config;
use test_support::process::run_once_json;

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");
const PHISH: &str = "Your account is locked - verify at http://evil.example/login";

/// A Graph source on the sandbox's helpdesk mailbox that acknowledges through Graph, with
/// `extra` appended (a `[notifications]` section, say).
fn config(sb: &Sandbox, out: &Path, extra: &str) -> String {
    let graph = sb.graph_url();
    Config::demo(sb)
        .helpdesk_graph(
            sb,
            "acknowledge = \"move:Processed\"\nnotify_through = \"out\"",
        )
        .mailbox(
            "helpdesk@contoso.example",
            &["billing@contoso.example", "support@contoso.example"],
        )
        .default_rule("DESK")
        .outbound(
            "out",
            "graph",
            "demo",
            "helpdesk@contoso.example",
            &format!("url = \"{graph}\"\nsend_from_alias_enabled = true"),
        )
        .handler(out, extra)
        .text()
}

/// Delivers a message from outside to the helpdesk; `extra` holds header lines.
fn deliver(sb: &Sandbox, id: &str, from: &str, extra: &str, subject: &str) {
    let mime = format!(
        "Message-ID: <{id}@outside.example>\r\nFrom: {from}\r\nTo: helpdesk@contoso.example\r\n\
         Subject: {subject}\r\n{extra}\r\nhello\r\n"
    );
    sb.admin()
        .inject_mime("helpdesk@contoso.example", &mime)
        .expect("delivered");
}

/// Every (recipient, MIME) the sandbox sent outside the tenant since `setup` (which answered
/// the demo seed's own waiting mail).
fn outbox(t: &Tenant) -> Vec<(String, String)> {
    t.sb.admin()
        .outbox()
        .into_iter()
        .skip(t.before)
        .flat_map(|e| {
            let mime = String::from_utf8_lossy(&e.mime).into_owned();
            e.recipients
                .into_iter()
                .map(move |r| (r.to_ascii_lowercase(), mime.clone()))
        })
        .collect()
}

fn to(outbox: &[(String, String)]) -> Vec<&str> {
    let mut v: Vec<&str> = outbox.iter().map(|(r, _)| r.as_str()).collect();
    v.sort();
    v
}

struct Tenant {
    sb: Sandbox,
    cfg: std::path::PathBuf,
    before: usize,
    _dir: tempfile::TempDir,
}

/// The demo tenant with its waiting mail already handled, and a configuration for it.
async fn setup(extra: &str) -> Tenant {
    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .start()
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, config(&sb, &dir.path().join("out"), extra)).expect("write");
    run_once_json(BIN, &cfg).await;
    let before = sb.admin().outbox().len();
    Tenant {
        sb,
        cfg,
        before,
        _dir: dir,
    }
}

/// The attack as seen: From the attacker, Reply-To the victim, a phishing subject.
fn deliver_phish(sb: &Sandbox) {
    deliver(
        sb,
        "phish",
        "attacker@evil.example",
        "Reply-To: victim@victim.example\r\n",
        PHISH,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phishing_relay_through_reply_to_is_refused() {
    let t = setup("").await;
    // The sandbox, like Exchange Online, stamps the phish compauth=none (nothing proves the
    // sender).
    deliver_phish(&t.sb);
    let s = run_once_json(BIN, &t.cfg).await;
    assert_eq!(s["sources"][0]["handled"], 1, "{s}");
    let sent = outbox(&t);
    assert_eq!(to(&sent), ["attacker@evil.example"], "{s}");
    for (_, mime) in &sent {
        assert!(!mime.contains("evil.example/login"), "{mime}");
        assert!(!mime.contains("account is locked"), "{mime}");
    }

    // `do-not-answer`: nobody at all.
    let t = setup("[notifications]\nunauthenticated_reply_to = \"do-not-answer\"\n").await;
    deliver_phish(&t.sb);
    let s = run_once_json(BIN, &t.cfg).await;
    assert_eq!(s["sources"][0]["handled"], 1, "{s}");
    assert!(outbox(&t).is_empty(), "{:?}", to(&outbox(&t)));
    assert_eq!(s["sources"][0]["notifications_skipped"], 1, "{s}");
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_a_system_address_or_our_own_alias_is_not_answered_even_when_authenticated() {
    let t = setup("").await;
    t.sb.admin()
        .set_sender_authentication("fabrikam.example", SenderAuthVerdict::Pass)
        .expect("set");
    deliver(
        &t.sb,
        "daemon",
        "ann@fabrikam.example",
        "Reply-To: MAILER-DAEMON@victim.example\r\n",
        "x",
    );
    deliver(
        &t.sb,
        "alias",
        "bob@fabrikam.example",
        "Reply-To: billing@contoso.example\r\n",
        "y",
    );
    // The control: an authenticated sender's Reply-To is answered.
    deliver(
        &t.sb,
        "fine",
        "cy@fabrikam.example",
        "Reply-To: tickets@fabrikam.example\r\n",
        "z",
    );
    let s = run_once_json(BIN, &t.cfg).await;
    assert_eq!(s["sources"][0]["handled"], 3, "{s}");
    assert_eq!(to(&outbox(&t)), ["tickets@fabrikam.example"], "{s}");
    // Nothing went into our own mailbox to become a new ticket.
    let again = run_once_json(BIN, &t.cfg).await;
    assert_eq!(again["sources"][0]["handled"], 0, "{again}");
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_that_answers_our_acknowledgement_gets_no_second_one() {
    let t = setup("").await;
    deliver(&t.sb, "first", "robot@fabrikam.example", "", "help");
    let s = run_once_json(BIN, &t.cfg).await;
    let sent = outbox(&t);
    assert_eq!(to(&sent), ["robot@fabrikam.example"], "{s}");
    let ack = mail_parser::MessageParser::default()
        .parse(sent[0].1.as_bytes())
        .expect("parses");
    let id = ack.message_id().expect("Message-ID").to_owned();
    // The robot answers it without Auto-Submitted, as the responder did.
    deliver(
        &t.sb,
        "answer",
        "robot@fabrikam.example",
        &format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"),
        "Re: your message",
    );
    let s = run_once_json(BIN, &t.cfg).await;
    assert_eq!(s["sources"][0]["handled"], 1, "{s}");
    assert_eq!(outbox(&t).len(), 1, "no second acknowledgement: {s}");
    t.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_per_recipient_are_capped() {
    let t =
        setup("[notifications]\nper_recipient_max = 3\nper_recipient_period_secs = 3600\n").await;
    for i in 0..6 {
        deliver(
            &t.sb,
            &format!("m{i}"),
            "loop@fabrikam.example",
            "",
            "again",
        );
    }
    deliver(&t.sb, "other", "ann@fabrikam.example", "", "hello");
    let s = run_once_json(BIN, &t.cfg).await;
    assert_eq!(s["sources"][0]["handled"], 7, "{s}");
    let sent = outbox(&t);
    let looped = sent
        .iter()
        .filter(|(r, _)| r == "loop@fabrikam.example")
        .count();
    assert_eq!(looped, 3, "{:?}", to(&sent));
    assert!(sent.iter().any(|(r, _)| r == "ann@fabrikam.example"));
    t.sb.shutdown().await;
}

/// The rules the attacks above do not reach, through the binary too: list mail, a colleague
/// at our own domain and a bounce of our notification that is not a delivery report get no
/// answer; `reply_to = "from-only"` answers From even for an authenticated sender; a custom
/// template shows no more of the inbound subject than `subject_max_chars`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_mail_colleagues_bounces_from_only_and_the_subject_cap_through_the_binary() {
    let t = setup("").await;
    deliver(&t.sb, "first", "dan@fabrikam.example", "", "hello");
    run_once_json(BIN, &t.cfg).await;
    let ours = outbox(&t);
    assert_eq!(to(&ours), ["dan@fabrikam.example"]);
    let quoted = ours[0].1.clone();
    deliver(
        &t.sb,
        "list",
        "ann@fabrikam.example",
        "List-Unsubscribe: <mailto:leave@lists.fabrikam.example>\r\n",
        "news",
    );
    deliver(&t.sb, "colleague", "colleague@contoso.example", "", "lunch");
    t.sb.admin()
        .inject_mime(
            "helpdesk@contoso.example",
            &format!(
                "Message-ID: <bounce@relay.example>\r\nFrom: relay@relay.example\r\n\
                 To: helpdesk@contoso.example\r\nSubject: Undeliverable\r\n\r\n\
                 Your message could not be delivered:\r\n\r\n{quoted}"
            ),
        )
        .expect("delivered");
    let s = run_once_json(BIN, &t.cfg).await;
    assert_eq!(s["sources"][0]["handled"], 3, "{s}");
    assert_eq!(s["sources"][0]["notifications_skipped"], 3, "{s}");
    assert_eq!(outbox(&t).len(), 1, "nothing new answered: {s}");
    t.sb.shutdown().await;

    let t = setup(
        "[notifications]\nreply_to = \"from-only\"\nsubject = \"[{project}] Re: {subject}\"\n\
         subject_max_chars = 20\n",
    )
    .await;
    // fabrikam.example passes authentication in the demo tenant, so only from-only keeps
    // this Reply-To from being answered.
    deliver(
        &t.sb,
        "long",
        "eve@fabrikam.example",
        "Reply-To: tickets@fabrikam.example\r\n",
        PHISH,
    );
    let s = run_once_json(BIN, &t.cfg).await;
    let sent = outbox(&t);
    assert_eq!(to(&sent), ["eve@fabrikam.example"], "{s}");
    let parsed = mail_parser::MessageParser::default()
        .parse(sent[0].1.as_bytes())
        .expect("parses");
    assert_eq!(parsed.subject(), Some("[DESK] Re: Your account is lock…"));
    t.sb.shutdown().await;
}

/// Broken configurations that each hold a known inline secret: no output of any command
/// shows it.
#[test]
fn an_inline_secret_never_appears_in_a_configuration_error() {
    const SECRET: &str = "Sup3r-S3cret-Value~0123456789";
    let good = format!(
        "[[apps]]\nname = \"a\"\ntenant = \"contoso.example\"\nclient_id = \"x\"\n\
         client_secret = \"{SECRET}\"\n"
    );
    let broken = [
        // The secret's own line is the one toml complains about (it quoted that line).
        good.replace("client_secret =", "client_secrt ="),
        good.replace(&format!("\"{SECRET}\""), &format!("\"{SECRET}")),
        good.replace(
            &format!("\"{SECRET}\""),
            &format!("{{ value = \"{SECRET}\" }}"),
        ),
        good.replace(&format!("\"{SECRET}\""), &format!("[\"{SECRET}\"]")),
        format!("{good}client_secret = \"{SECRET}\"\n"),
        format!("{good}client_secret_env = \"X\"\ncertificate_file = \"a.pem\"\n"),
        format!("{good}\n[[sources]]\nname = \"s\"\nkind = \"imap\"\n"),
        format!("{good}\n[[sources]]\nname = \"s\"\nkind = \"graph\"\napp = \"nope\"\n"),
        // The secret itself put where the variable's name belongs.
        good.replace("client_secret =", "client_secret_env ="),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, text) in broken.iter().enumerate() {
        let cfg = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&cfg, text).expect("write");
        for args in [
            vec!["run", "--once", "--config"],
            vec!["ping", "--config"],
            vec!["consent-url", "--config"],
            vec!["route", "--address", "a@contoso.example", "--config"],
            vec!["login", "--app", "a", "--config"],
        ] {
            let output = Command::new(BIN)
                .args(&args)
                .arg(&cfg)
                .env("RUST_LOG", "trace")
                .output()
                .expect("runs");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(!output.status.success(), "case {i} {args:?} passed: {all}");
            assert!(
                !all.contains(SECRET) && !all.contains("Sup3r-S3cret"),
                "case {i} {args:?} shows the secret:\n{all}"
            );
            assert!(
                all.contains("line") || all.contains("apps") || all.contains("sources"),
                "case {i} {args:?} says nothing useful:\n{all}"
            );
        }
    }
}

/// The binary refuses to send mail or tokens in clear to a host that is not loopback: an EWS
/// source's URL and the webhook (each protocol's own test is in its crate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_off_loopback_is_a_configuration_error_for_ews_and_the_webhook() {
    let t = setup("").await;
    let text = std::fs::read_to_string(&t.cfg).expect("read");
    let ews = text.replacen(
        "kind = \"graph\"\napp = \"demo\"\nmailbox = \"helpdesk@contoso.example\"\nurl = ",
        "kind = \"ews\"\napp = \"demo\"\nmailbox = \"helpdesk@contoso.example\"\nurl = \
         \"http://mail.contoso.example/EWS/Exchange.asmx\"\n# ",
        1,
    );
    assert_ne!(ews, text, "the test changed the source");
    let webhook = text.replace(
        "[handler]\n",
        "[handler]\nwebhook = \"http://hooks.contoso.example/mail\"\n",
    );
    for (name, cfg, host) in [
        ("ews", ews, "mail.contoso.example"),
        ("webhook", webhook, "hooks.contoso.example"),
    ] {
        let path = t.cfg.with_file_name(format!("{name}.toml"));
        std::fs::write(&path, cfg).expect("write");
        let output = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["run", "--once", "--config"])
                .arg(&path)
                .output()
                .expect("runs")
        })
        .await
        .expect("joins");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: {err}");
        assert!(
            err.contains(host) && err.contains("https") && err.contains("loopback"),
            "{name}: {err}"
        );
    }
    t.sb.shutdown().await;
}
