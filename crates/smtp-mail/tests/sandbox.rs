//! smtp-mail against the in-process sandbox: STARTTLS + XOAUTH2 submission, ping, one refresh
//! on a refused token, the decoded error challenge, SMTP AUTH disabled, app-only access (service
//! principal, FullAccess, Send As) and its diagnoses, no secrets in errors,
//! plaintext refused unless loopback, and the connector conformance kit (source: graph-mail's
//! GraphSource on the same mailbox).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use connector::conformance::run;
use connector::{Envelope, ErrorKind, MessageOutbound, OutgoingMessage};
use graph_mail::{Endpoint, GraphClient, GraphSource, Mailbox, SourceConfig};
use sandbox::Sandbox;
use sandbox::store::ListQuery;
use smtp_mail::{FnTokenSource, SmtpConfig, SmtpOutbound};
use test_support::harness::{GRAPH_UNKNOWN_ID, assert_ran};
use test_support::tokens::{FORGED, allow_app_only_smtp_on, consent_smtp_send_as_app};
use test_support::{SandboxHarness, SandboxTokens};

const APP: &str = test_support::DEMO_APP;
const ADELE: &str = "adele.vance@contoso.example";
const ALEX: &str = "alex.wilber@contoso.example";

async fn sandbox() -> Sandbox {
    let sb = test_support::start().await;
    sb.admin()
        .grant_admin_consent(APP, &["https://outlook.office365.com/SMTP.Send"], &[])
        .expect("consent");
    sb
}

fn config(sb: &Sandbox, mailbox: &str) -> SmtpConfig {
    let addr = sb.smtp_addr().expect("smtp listener");
    SmtpConfig::office365(mailbox)
        .with_server(addr.ip().to_string(), addr.port())
        .with_root_certificate_pem(sb.smtp_ca_pem().expect("STARTTLS CA"))
}

/// Adele's outbound, signing in with her tokens (the first `forged` of them forged).
fn adele(sb: &Sandbox, forged: usize) -> (Arc<SandboxTokens>, SmtpOutbound) {
    let tokens = SandboxTokens::smtp_delegated(sb, ADELE, forged);
    let out = SmtpOutbound::new(config(sb, ADELE), tokens.clone()).expect("a valid configuration");
    (tokens, out)
}

fn message(from: &str, to: &str, subject: &str) -> OutgoingMessage {
    let mime = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@smtp-mail.test>\r\n\r\nbody of {subject}\r\n"
    );
    OutgoingMessage::raw(Envelope::new(from, vec![to.to_owned()]), mime.into_bytes())
}

fn subjects(sb: &Sandbox, mailbox: &str, folder: &str) -> Vec<String> {
    sb.admin()
        .store()
        .list(mailbox, Some(folder), &ListQuery::default())
        .expect("list")
        .items
        .into_iter()
        .map(|m| m.props.subject.clone())
        .collect()
}

#[tokio::test]
async fn send_over_starttls_arrives_and_is_kept_in_sent_items() {
    let sb = sandbox().await;
    let (tokens, out) = adele(&sb, 0);
    let receipt = out
        .send(&message(ADELE, ALEX, "hello-over-tls"))
        .await
        .expect("send");
    assert_eq!(receipt.from.as_deref(), Some(ADELE));
    assert!(subjects(&sb, ALEX, "inbox").contains(&"hello-over-tls".to_owned()));
    assert!(subjects(&sb, ADELE, "sentitems").contains(&"hello-over-tls".to_owned()));
    assert_eq!(tokens.refreshes(), 0);
    // The connection was upgraded before AUTH.
    let verbs: Vec<(String, Option<u16>)> = out
        .log()
        .lines()
        .into_iter()
        .map(|l| (l.method, l.status))
        .collect();
    let pos = |v: &str| verbs.iter().position(|(m, _)| m == v);
    assert!(
        matches!((pos("STARTTLS"), pos("AUTH")), (Some(s), Some(a)) if s < a),
        "{verbs:?}"
    );
    assert!(verbs.contains(&("AUTH".to_owned(), Some(235))), "{verbs:?}");
}

#[tokio::test]
async fn external_recipients_are_relayed_after_auth() {
    let sb = sandbox().await;
    let out = adele(&sb, 0).1;
    out.send(&message(ADELE, "partner@fabrikam.example", "to-partner"))
        .await
        .expect("send");
    let outbox = sb.admin().outbox();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
}

#[tokio::test]
async fn ping_signs_in_and_sends_nothing() {
    let sb = sandbox().await;
    let (tokens, out) = adele(&sb, 0);
    let report = out.ping().await;
    assert!(report.is_online(), "{report}");
    assert!(report.log.iter().any(|l| l.method == "QUIT"), "{report:?}");
    assert!(sb.admin().outbox().is_empty());
    assert!(subjects(&sb, ADELE, "sentitems").is_empty());
    assert_eq!(tokens.calls(), 1);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_send_succeeds() {
    let sb = sandbox().await;
    let (tokens, out) = adele(&sb, 1);
    out.send(&message(ADELE, ALEX, "after-refresh"))
        .await
        .expect("send after one refresh");
    assert_eq!(tokens.refreshes(), 1);
    assert!(subjects(&sb, ALEX, "inbox").contains(&"after-refresh".to_owned()));
}

#[tokio::test]
async fn a_token_refused_twice_is_diagnosed_from_the_challenge_without_leaking_it() {
    let sb = sandbox().await;
    // A server that says why in an error challenge (Gmail's form; Office 365 answers 535 at
    // once: tests/fidelity.rs).
    sb.admin()
        .update_org(|o| o.smtp_auth_error_challenge = true);
    let (tokens, out) = adele(&sb, usize::MAX);
    let err = out
        .send(&message(ADELE, ALEX, "never"))
        .await
        .expect_err("forged token");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(!err.may_have_taken_effect());
    assert_eq!(tokens.refreshes(), 1, "exactly one refresh");
    let problem = err.auth_problem().expect("diagnosis");
    // The sandbox's challenge said why: the JWT is not well formed (IDX14100).
    assert!(problem.summary.contains("IDX14100"), "{problem:?}");
    assert_eq!(problem.code.as_deref(), Some("5.7.3"));
    assert!(subjects(&sb, ALEX, "inbox").is_empty());
    for text in [
        err.to_string(),
        format!("{err:?}"),
        out.log().render(),
        format!("{out:?}"),
        out.ping().await.to_json().to_string(),
    ] {
        assert!(!text.contains(FORGED), "token leaked: {text}");
        assert!(!text.contains("SECRET"), "token leaked: {text}");
    }
}

#[tokio::test]
async fn a_mailbox_the_identity_may_not_use_is_refused_with_the_reason() {
    let sb = sandbox().await;
    // Adele's token, but signing in as the helpdesk mailbox.
    let out = SmtpOutbound::new(
        config(&sb, "helpdesk@contoso.example"),
        SandboxTokens::smtp_delegated(&sb, ADELE, 0),
    )
    .expect("a valid configuration");
    let report = out.ping().await;
    assert!(!report.is_online());
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("helpdesk@contoso.example"), "{reason}");
}

#[tokio::test]
async fn smtp_auth_disabled_for_the_tenant_is_a_clear_error_without_refresh() {
    let sb = sandbox().await;
    sb.admin()
        .update_org(|o| o.smtp_client_authentication_disabled = true);
    let (tokens, out) = adele(&sb, 0);
    let err = out
        .send(&message(ADELE, ALEX, "disabled"))
        .await
        .expect_err("disabled");
    assert_eq!(err.kind(), ErrorKind::Authentication);
    let problem = err.auth_problem().expect("diagnosis");
    assert_eq!(problem.code.as_deref(), Some("5.7.139"));
    assert!(
        problem
            .summary
            .contains("SMTP AUTH is disabled for this mailbox or tenant")
    );
    assert!(
        problem
            .remediation
            .contains("SmtpClientAuthenticationDisabled")
    );
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("535 5.7.139")
    );
    assert_eq!(tokens.refreshes(), 0);
    let report = out.ping().await;
    assert!(!report.is_online());
    assert!(
        report
            .reason
            .unwrap_or_default()
            .contains("SMTP AUTH is disabled"),
        "ping explains"
    );
    // Turned back on, the same outbound works.
    sb.admin()
        .update_org(|o| o.smtp_client_authentication_disabled = false);
    assert!(out.ping().await.is_online());
}

#[tokio::test]
async fn an_untrusted_certificate_fails_before_the_token_is_sent() {
    let sb = sandbox().await;
    let tokens = SandboxTokens::smtp_delegated(&sb, ADELE, 0);
    let addr = sb.smtp_addr().expect("smtp");
    let cfg = SmtpConfig::office365(ADELE).with_server(addr.ip().to_string(), addr.port());
    let out = SmtpOutbound::new(cfg, tokens.clone()).expect("a valid configuration");
    let err = out
        .send(&message(ADELE, ALEX, "untrusted"))
        .await
        .expect_err("the sandbox CA is not trusted");
    assert_eq!(err.kind(), ErrorKind::Configuration, "{err}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert_eq!(tokens.calls(), 0);
}

#[tokio::test]
async fn a_server_without_starttls_never_sees_the_token() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        let _ = w.write_all(b"220 plain ESMTP\r\n").await;
        let mut line = String::new();
        while r.read_line(&mut line).await.unwrap_or(0) > 0 {
            seen2.lock().expect("lock").push_str(&line);
            let reply: &[u8] = if line.starts_with("EHLO") {
                b"250-plain\r\n250 AUTH XOAUTH2\r\n"
            } else if line.starts_with("QUIT") {
                b"221 bye\r\n"
            } else {
                b"250 ok\r\n"
            };
            let _ = w.write_all(reply).await;
            line.clear();
        }
    });
    let tokens = Arc::new(FnTokenSource::new(|_| Ok(FORGED.to_owned())));
    let out = SmtpOutbound::new(
        SmtpConfig::office365(ADELE).with_server("127.0.0.1", port),
        tokens,
    )
    .expect("a valid configuration");
    let report = out.ping().await;
    assert!(!report.is_online());
    assert!(
        report.reason.unwrap_or_default().contains("STARTTLS"),
        "says why"
    );
    let seen = seen.lock().expect("lock").clone();
    assert!(!seen.contains("AUTH"), "{seen}");
    assert!(!seen.contains(FORGED), "{seen}");
}

/// Security issue #24: plaintext SMTP (the XOAUTH2 token in clear) to a host that is not
/// loopback is refused when the outbound is built, before any token is asked for or any
/// connection is made (these hosts are never contacted).
#[test]
fn plaintext_to_a_host_that_is_not_loopback_is_refused_at_construction() {
    use smtp_mail::Security;
    let asked = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(FnTokenSource::new({
        let asked = asked.clone();
        move |_| {
            asked.fetch_add(1, Ordering::SeqCst);
            Ok(FORGED.to_owned())
        }
    }));
    for host in [
        "smtp.contoso.example",
        "localhost.contoso.example",
        "127.0.0.1.contoso.example",
        "192.0.2.25",
        "0.0.0.0",
    ] {
        let cfg = SmtpConfig::office365(ADELE)
            .with_server(host, 25)
            .with_security(Security::DangerousPlaintext);
        let err = SmtpOutbound::new(cfg, tokens.clone()).expect_err(host);
        assert_eq!(err.kind(), ErrorKind::Configuration, "{host}: {err}");
        assert!(err.to_string().contains("loopback"), "{host}: {err}");
        assert!(err.to_string().contains(host), "{host}: {err}");
        assert!(!err.to_string().contains(FORGED), "{err}");
    }
    // The same hosts with TLS are fine to build (not contacted here).
    for security in [Security::StartTls, Security::ImplicitTls] {
        let cfg = SmtpConfig::office365(ADELE)
            .with_server("smtp.contoso.example", 587)
            .with_security(security);
        assert!(
            SmtpOutbound::new(cfg, tokens.clone()).is_ok(),
            "{security:?}"
        );
    }
    assert_eq!(asked.load(Ordering::SeqCst), 0);
}

/// Plaintext to a loopback test server is still allowed, and works against the sandbox (which
/// offers AUTH before STARTTLS).
#[tokio::test]
async fn plaintext_to_a_loopback_server_still_sends() {
    use smtp_mail::Security;
    let sb = sandbox().await;
    let addr = sb.smtp_addr().expect("smtp listener");
    assert!(addr.ip().is_loopback());
    let tokens = SandboxTokens::smtp_delegated(&sb, ADELE, 0);
    let out = SmtpOutbound::new(
        SmtpConfig::office365(ADELE)
            .with_server(addr.ip().to_string(), addr.port())
            .with_security(Security::DangerousPlaintext),
        tokens.clone(),
    )
    .expect("plaintext to 127.0.0.1 is allowed");
    out.send(&message(ADELE, ALEX, "plaintext-on-loopback"))
        .await
        .expect("send");
    assert!(subjects(&sb, ALEX, "inbox").contains(&"plaintext-on-loopback".to_owned()));
    let verbs: Vec<String> = out.log().lines().into_iter().map(|l| l.method).collect();
    assert!(!verbs.iter().any(|v| v == "STARTTLS"), "{verbs:?}");
    for host in ["localhost", "LOCALHOST", "127.0.0.2", "::1", "[::1]"] {
        let cfg = SmtpConfig::office365(ADELE)
            .with_server(host, 25)
            .with_security(Security::DangerousPlaintext);
        assert!(SmtpOutbound::new(cfg, tokens.clone()).is_ok(), "{host}");
    }
}

#[tokio::test]
async fn send_as_another_address_is_refused_for_good() {
    let sb = sandbox().await;
    let out = adele(&sb, 0).1;
    // The envelope names the helpdesk: refused at MAIL FROM.
    let err = out
        .send(&message("helpdesk@contoso.example", ALEX, "spoof"))
        .await
        .expect_err("no Send As");
    test_support::assert_send_as_refused(&err, "550 5.7.60", ADELE, "helpdesk@contoso.example");
    // Only the From header names the helpdesk: refused at the end of DATA.
    let err = out
        .send(&OutgoingMessage::raw(
            Envelope::new(ADELE, vec![ALEX.into()]),
            format!("From: Helpdesk <helpdesk@contoso.example>\r\nTo: {ALEX}\r\nSubject: spoof\r\n\r\nx\r\n")
                .into_bytes(),
        ))
        .await
        .expect_err("no Send As");
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("5.2.252"), "{err}");
    assert!(
        err.to_string()
            .contains("adele.vance@contoso.example may not send as helpdesk@contoso.example"),
        "{err}"
    );
    assert!(subjects(&sb, ALEX, "inbox").is_empty());
}

#[tokio::test]
async fn ping_from_checks_the_envelope_sender_and_sends_nothing() {
    let sb = sandbox().await;
    let out = adele(&sb, 0).1;
    let kept = |sb: &Sandbox| {
        (
            subjects(sb, ADELE, "sentitems").len(),
            subjects(sb, ALEX, "inbox").len(),
            sb.admin().outbox().len(),
        )
    };
    let before = kept(&sb);
    // Not granted: refused at MAIL FROM, with who lacks which right and the fix.
    let report = out.clone().ping_from(ALEX).ping().await;
    assert!(!report.is_online(), "{report}");
    let reason = report.reason.clone().unwrap_or_default();
    test_support::assert_send_as_fix(&reason, ADELE, ALEX);
    assert!(reason.contains("5.7.60"), "{report}");
    // Her own address, and Alex's once she holds Send As on it: MAIL, RCPT and RSET accepted.
    assert!(out.clone().ping_from(ADELE).ping().await.is_online());
    sb.admin()
        .add_mailbox_permission(ALEX, ADELE, sandbox::tenant::MailboxRight::SendAs)
        .unwrap();
    let report = out.clone().ping_from(ALEX).ping().await;
    assert!(report.is_online(), "{report}");
    let verbs: Vec<String> = report.log.iter().map(|l| l.to_string()).collect();
    for verb in ["MAIL", "RCPT", "RSET"] {
        assert!(verbs.iter().any(|l| l.contains(verb)), "{verb}: {verbs:?}");
    }
    assert!(!verbs.iter().any(|l| l.contains("DATA")), "{verbs:?}");
    sb.admin()
        .remove_mailbox_permission(ALEX, ADELE, sandbox::tenant::MailboxRight::SendAs)
        .unwrap();
    assert_eq!(kept(&sb), before, "(sent items, Alex's inbox, outbox)");

    // The limit: a server that checks only the From header (at the end of DATA, which the
    // probe never sends) accepts the probe for an address a send is refused for.
    sb.admin()
        .update_org(|o| o.smtp_check_envelope_sender = false);
    assert!(out.clone().ping_from(ALEX).ping().await.is_online());
    let err = out
        .send(&message(ALEX, ALEX, "header-checked"))
        .await
        .expect_err("no Send As");
    assert!(err.to_string().contains("5.2.252"), "{err}");
}

fn app_outbound(sb: &Sandbox, mailbox: &str) -> SmtpOutbound {
    let tokens = Arc::new(SandboxTokens::new(
        sb,
        test_support::tokens::app(&["SMTP.SendAsApp"]),
        sandbox::ApiResource::Exchange,
    ));
    SmtpOutbound::new(config(sb, mailbox), tokens).expect("a valid configuration")
}

fn assert_app_sign_in_refused(err: &connector::Error, mailbox: &str) {
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(!err.may_have_taken_effect());
    let p = err.auth_problem().expect("a diagnosis");
    assert_eq!(p.code.as_deref(), Some("5.7.3"));
    assert!(p.summary.contains("app-only sign-in"), "{p}");
    assert!(
        p.remediation
            .contains(&format!("New-ServicePrincipal -AppId {APP}")),
        "{p}"
    );
    assert!(
        p.remediation
            .contains(&format!("Add-MailboxPermission -Identity {mailbox} -User")),
        "{p}"
    );
}

/// Exchange Online lets an app use SMTP AUTH only when its service principal is registered
/// (`New-ServicePrincipal`) and holds FullAccess on the mailbox in `user=`; both are refused
/// with the same `535 5.7.3`, which the client diagnoses naming both steps.
#[tokio::test]
async fn app_only_sign_in_needs_a_registered_service_principal_with_full_access() {
    let sb = sandbox().await;
    consent_smtp_send_as_app(&sb);
    let out = app_outbound(&sb, ALEX);

    // Not registered.
    let err = out
        .send(&message(ALEX, ADELE, "unregistered"))
        .await
        .expect_err("no service principal");
    assert_app_sign_in_refused(&err, ALEX);
    let ping = out.ping().await;
    assert!(!ping.is_online());
    assert!(
        ping.auth
            .as_ref()
            .is_some_and(|a| a.remediation.contains("New-ServicePrincipal")),
        "{ping}"
    );

    // Registered, but no FullAccess on the mailbox.
    let object_id = sb
        .admin()
        .register_service_principal(APP)
        .expect("register");
    let err = out
        .send(&message(ALEX, ADELE, "no-full-access"))
        .await
        .expect_err("no FullAccess");
    assert_app_sign_in_refused(&err, ALEX);
    // FullAccess on another mailbox does not count.
    sb.admin()
        .add_mailbox_permission(ADELE, &object_id, sandbox::tenant::MailboxRight::FullAccess)
        .expect("grant");
    assert!(!out.ping().await.is_online());

    // FullAccess on the mailbox, granted to the service principal by object id.
    sb.admin()
        .add_mailbox_permission(ALEX, &object_id, sandbox::tenant::MailboxRight::FullAccess)
        .expect("grant");
    let ping = out.ping().await;
    assert!(ping.is_online(), "{ping}");
    out.send(&message(ALEX, ADELE, "registered"))
        .await
        .expect("sent");
    assert!(subjects(&sb, ADELE, "inbox").contains(&"registered".to_owned()));
    assert!(subjects(&sb, ALEX, "sentitems").contains(&"registered".to_owned()));

    // Removing the registration takes its rights with it.
    sb.admin().remove_service_principal(APP).expect("remove");
    assert!(!out.ping().await.is_online());
    assert!(
        sb.admin()
            .tenant()
            .mailbox(ALEX, 0)
            .is_some_and(|m| m.full_access.is_empty())
    );
}

/// With app-only access, another mailbox in `MAIL FROM` or `From` needs Send As, held by the
/// signed-in mailbox or by the app's service principal.
#[tokio::test]
async fn app_only_send_as_another_mailbox_needs_send_as() {
    use sandbox::tenant::MailboxRight;
    let sb = sandbox().await;
    allow_app_only_smtp_on(&sb, ALEX);
    let out = app_outbound(&sb, ALEX);

    let err = out
        .send(&message(ADELE, ALEX, "as-adele"))
        .await
        .expect_err("no Send As");
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("550 5.7.60")
    );
    let text = err.to_string();
    assert!(
        text.contains("alex.wilber@contoso.example may not send as adele.vance@contoso.example"),
        "{text}"
    );
    assert!(text.contains("service principal"), "{text}");
    let header_only = OutgoingMessage::raw(
        Envelope::new(ALEX, vec![ADELE.into()]),
        format!("From: {ADELE}\r\nTo: {ADELE}\r\nSubject: header\r\n\r\nx\r\n").into_bytes(),
    );
    let err = out.send(&header_only).await.expect_err("no Send As");
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("554 5.2.252")
    );

    // Send As held by the signed-in mailbox ...
    sb.admin()
        .add_mailbox_permission(ADELE, ALEX, MailboxRight::SendAs)
        .expect("grant");
    out.send(&message(ADELE, ALEX, "as-adele"))
        .await
        .expect("sent");
    // ... or by the app's service principal.
    sb.admin()
        .remove_mailbox_permission(ADELE, ALEX, MailboxRight::SendAs)
        .expect("withdraw");
    assert!(out.send(&message(ADELE, ALEX, "again")).await.is_err());
    sb.admin()
        .add_mailbox_permission(ADELE, APP, MailboxRight::SendAs)
        .expect("grant");
    out.send(&header_only).await.expect("sent");
    let inbox = subjects(&sb, ALEX, "inbox");
    assert!(inbox.contains(&"as-adele".to_owned()), "{inbox:?}");
    assert!(!inbox.contains(&"again".to_owned()), "{inbox:?}");
}

#[tokio::test]
async fn a_bad_address_is_a_typed_error_before_connecting() {
    let sb = sandbox().await;
    let (tokens, out) = adele(&sb, 0);
    let msg = OutgoingMessage::raw(
        Envelope::new(ADELE, vec!["not an address".into()]),
        b"Subject: x\r\n\r\nx\r\n".to_vec(),
    );
    let err = out.send(&msg).await.expect_err("bad address");
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert!(!err.may_have_taken_effect());
    assert_eq!(tokens.calls(), 0);
}

// --- the conformance kit: SmtpOutbound paired with graph-mail's GraphSource -------------------

#[tokio::test]
async fn conformance_kit_outbound_checks_pass() {
    let sb = sandbox().await;
    let address = "megan.bowen@contoso.example";
    let ep = Endpoint::custom(&sb.graph_url(), Mailbox::user(address)).expect("endpoint");
    let client = GraphClient::builder(ep, SandboxTokens::graph_app(&sb))
        .build()
        .expect("client");
    let source = GraphSource::new(client, SourceConfig::default());
    let outbound = SmtpOutbound::new(
        config(&sb, address),
        SandboxTokens::smtp_delegated(&sb, address, 0),
    )
    .expect("a valid configuration");
    let h = SandboxHarness::new(sb, address, source, GRAPH_UNKNOWN_ID).with_outbound(outbound);
    let report = run(&h).await;
    assert_ran(
        &report,
        &["outbound_ping_online", "outbound_send_reads_back"],
    );
    assert!(!report.failed("outbound_ping_online"), "{report}");
    assert!(report.passed(), "{report}");
}

#[tokio::test]
async fn delegated_token_helper_is_accepted_by_the_sandbox() {
    // Guards the fixtures above: a real minted token signs in, a forged one does not.
    let sb = sandbox().await;
    let good = SandboxTokens::smtp_delegated(&sb, ADELE, 0)
        .mint()
        .expect("mint");
    let ok = SmtpOutbound::new(
        config(&sb, ADELE),
        Arc::new(FnTokenSource::new(move |_| Ok(good.clone()))),
    )
    .expect("a valid configuration");
    assert!(ok.ping().await.is_online());
    let bad = SmtpOutbound::new(
        config(&sb, ADELE),
        Arc::new(FnTokenSource::new(|_| Ok(FORGED.to_owned()))),
    )
    .expect("a valid configuration");
    assert!(!bad.ping().await.is_online());
}

/// The whole chain a daemon uses: msauth's `TokenProvider` gets an app-only token
/// (`SMTP.SendAsApp`) from the sandbox's token endpoint, and the outbound signs in with it.
#[tokio::test]
async fn an_msauth_app_only_token_signs_in_and_sends() {
    let sb = sandbox().await;
    allow_app_only_smtp_on(&sb, ALEX);
    let authority = msauth::Authority::microsoft_layout(
        sb.base_url(),
        msauth::Tenant::parse(&sb.tenant_id()).unwrap(),
    )
    .unwrap();
    let provider = msauth::TokenProvider::builder(authority, APP)
        .credential(msauth::ClientCredential::Secret(msauth::ClientSecret::new(
            "demo-secret-do-not-use-in-production",
        )))
        .scopes([smtp_mail::APP_SCOPE])
        .build()
        .unwrap();
    let outbound =
        SmtpOutbound::new(config(&sb, ALEX), Arc::new(provider)).expect("a valid configuration");
    let ping = outbound.ping().await;
    assert!(ping.is_online(), "{ping}");
    outbound
        .send(&message(ALEX, ADELE, "via-msauth"))
        .await
        .unwrap();
    assert!(subjects(&sb, ADELE, "inbox").contains(&"via-msauth".to_string()));
}
