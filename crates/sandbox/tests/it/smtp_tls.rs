//! The SMTP listener's STARTTLS, Office 365's XOAUTH2 error challenge, and the tenant setting
//! that disables SMTP AUTH, spoken at the protocol level (smtp-mail's tests drive the same
//! paths through lettre).

use std::sync::Arc;

use crate::common::*;
use base64::Engine as _;

fn connector(sb: &sandbox::Sandbox) -> tokio_rustls::TlsConnector {
    let pem = sb.smtp_ca_pem().expect("STARTTLS CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn starttls_upgrades_and_the_session_starts_over() {
    let sb = start().await;
    let mut c = SmtpClient::connect(&sb).await;
    let ehlo = c.cmd("EHLO client").await;
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
    c.cmd("MAIL FROM:<x@fabrikam.example>").await;
    c.expect("STARTTLS", "220 ").await;
    let tcp = c.s.into_inner();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector(&sb).connect(name, tcp).await.expect("handshake");
    let mut t = SmtpClient::new(tls);
    let ehlo = t.cmd("EHLO client").await;
    assert!(!ehlo.contains("STARTTLS"), "not offered twice: {ehlo}");
    assert!(ehlo.contains("AUTH XOAUTH2"), "{ehlo}");
    // The MAIL FROM before the upgrade does not count (RFC 3207 §4.2).
    t.expect("RCPT TO:<alex.wilber@contoso.example>", "503")
        .await;
    t.expect("STARTTLS", "502").await;
    t.expect("QUIT", "221").await;
}

#[tokio::test]
async fn commands_pipelined_behind_starttls_are_refused() {
    let sb = start().await;
    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("EHLO client").await;
    let reply = c.cmd("STARTTLS\r\nMAIL FROM:<x@fabrikam.example>").await;
    assert!(reply.starts_with("554 5.5.1"), "{reply}");
}

#[tokio::test]
async fn a_refused_token_gets_the_error_challenge_then_535() {
    let sb = start().await;
    // Gmail's form, asked for explicitly (Office 365 answers 535 at once: see
    // fidelity::smtp_refused_token_is_answered_535_at_once).
    sb.admin()
        .update_org(|o| o.smtp_auth_error_challenge = true);
    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("EHLO client").await;
    let reply = c
        .cmd(&xoauth2("adele.vance@contoso.example", "not.a.jwt"))
        .await;
    let b64 = reply.strip_prefix("334 ").expect("challenge").trim();
    let json: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["status"], "401");
    assert_eq!(json["schemes"], "bearer");
    assert_eq!(json["scope"], "https://outlook.office365.com/.default");
    assert!(
        json["error_description"]
            .as_str()
            .unwrap()
            .contains("IDX14100")
    );
    assert!(
        !json.to_string().contains("not.a.jwt"),
        "the token is not echoed"
    );
    c.expect("", "535 5.7.3").await;
    // Malformed SASL (not base64) gets a plain 535, no challenge.
    c.expect("AUTH XOAUTH2 !!!", "535 5.7.3").await;
}

#[tokio::test]
async fn smtp_auth_disabled_for_the_tenant_is_answered_535_5_7_139() {
    let sb = start().await;
    sb.admin()
        .update_org(|o| o.smtp_client_authentication_disabled = true);
    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("EHLO client").await;
    let reply = c.cmd(&xoauth2("adele.vance@contoso.example", "x")).await;
    assert!(
        reply.starts_with(
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant"
        ),
        "{reply}"
    );
    // Delivery from the Internet (no AUTH) is not affected.
    c.expect("MAIL FROM:<x@fabrikam.example>", "250").await;
    c.expect("RCPT TO:<alex.wilber@contoso.example>", "250")
        .await;
}
