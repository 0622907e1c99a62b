//! The XOAUTH2 exchange against a scripted server that answers as the Microsoft endpoints do
//! where the sandbox cannot stand in (issue #22): the two-step `AUTH` form (RFC 4954 §4) for a
//! response too long for the command line or an inline form the server refuses, and the
//! replies Office 365 gives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use connector::{Envelope, ErrorKind, MessageOutbound, OutgoingMessage};
use smtp_mail::{AccessToken, Security, SmtpConfig, SmtpOutbound, StaticToken};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const MAILBOX: &str = "helpdesk@contoso.example";

/// How the scripted server answers `AUTH`.
#[derive(Clone, Copy)]
struct Script {
    /// The reply to `AUTH XOAUTH2 <response>` on one line; `None`: treat it like the response
    /// after `334`.
    inline: Option<&'static str>,
    /// The reply to the initial response.
    response: &'static str,
}

/// A plaintext SMTP server on loopback that plays `script`; returns its address and the lines
/// it received (each `AUTH` line cut to the verb and mechanism plus its length).
async fn server(script: Script) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 scripted ESMTP\r\n").await.unwrap();
                let mut awaiting_response = false;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_owned();
                    let upper = line.to_ascii_uppercase();
                    let reply: &str = if awaiting_response {
                        awaiting_response = false;
                        log.lock()
                            .unwrap()
                            .push(format!("<response {}>", line.len()));
                        script.response
                    } else if upper.starts_with("EHLO") {
                        log.lock().unwrap().push("EHLO".into());
                        "250-scripted\r\n250-AUTH XOAUTH2\r\n250 8BITMIME"
                    } else if upper == "AUTH XOAUTH2" {
                        log.lock().unwrap().push("AUTH XOAUTH2".into());
                        awaiting_response = true;
                        "334 "
                    } else if upper.starts_with("AUTH XOAUTH2 ") {
                        log.lock()
                            .unwrap()
                            .push(format!("AUTH XOAUTH2 <inline {}>", line.len() + 2));
                        script.inline.unwrap_or(script.response)
                    } else if upper == "QUIT" {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        log.lock().unwrap().push(line.clone());
                        "250 OK"
                    };
                    w.write_all(format!("{reply}\r\n").as_bytes())
                        .await
                        .unwrap();
                }
            });
        }
    });
    (addr, seen)
}

fn outbound(addr: SocketAddr, token: &str) -> SmtpOutbound {
    SmtpOutbound::new(
        SmtpConfig::office365(MAILBOX)
            .with_server(addr.ip().to_string(), addr.port())
            .with_security(Security::DangerousPlaintext),
        Arc::new(StaticToken(AccessToken::new(token))),
    )
    .expect("plaintext to loopback")
}

fn auth_lines(seen: &Mutex<Vec<String>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("AUTH") || l.starts_with("<response"))
        .cloned()
        .collect()
}

/// An access token is far longer than a command line may be (512 octets with CRLF): the
/// response goes after `334`, never on the `AUTH` line.
#[tokio::test]
async fn a_long_initial_response_is_sent_after_334() {
    let (addr, seen) = server(Script {
        inline: Some("500 5.5.2 Line too long"),
        response: "235 2.7.0 Authentication successful",
    })
    .await;
    let token = "eyJ".to_owned() + &"x".repeat(1500);
    let report = outbound(addr, &token).ping().await;
    assert!(report.is_online(), "{report}");
    let lines = auth_lines(&seen);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "AUTH XOAUTH2");
    assert!(lines[1].starts_with("<response "), "{lines:?}");
}

/// A response that fits goes inline; when the server refuses the inline form, the two-step
/// form follows on the same connection, with the same token.
#[tokio::test]
async fn an_inline_form_the_server_refuses_is_retried_in_two_steps() {
    for refusal in [
        "500 5.5.2 Syntax error, command unrecognized",
        "501 5.5.4 Invalid arguments",
        "504 5.7.4 Unrecognized authentication type",
    ] {
        let (addr, seen) = server(Script {
            inline: Some(refusal),
            response: "235 2.7.0 Authentication successful",
        })
        .await;
        let report = outbound(addr, "short-token").ping().await;
        assert!(report.is_online(), "{refusal}: {report}");
        let lines = auth_lines(&seen);
        assert_eq!(lines.len(), 3, "{refusal}: {lines:?}");
        assert!(lines[0].starts_with("AUTH XOAUTH2 <inline "), "{lines:?}");
        assert_eq!(lines[1], "AUTH XOAUTH2");
        assert!(lines[2].starts_with("<response "), "{lines:?}");
    }
    // A short response accepted inline needs one line.
    let (addr, seen) = server(Script {
        inline: None,
        response: "235 2.7.0 Authentication successful",
    })
    .await;
    assert!(outbound(addr, "short-token").ping().await.is_online());
    assert_eq!(auth_lines(&seen).len(), 1);
}

/// `5.7.139` means SMTP AUTH is disabled, whatever the text says: Exchange Online words it
/// "basic authentication is disabled" too, which is not about XOAUTH2.
#[tokio::test]
async fn five_seven_139_is_smtp_auth_disabled_whatever_the_text() {
    for text in [
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [BN9PR03CA0123.namprd03.prod.outlook.com]",
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.",
    ] {
        let (addr, _) = server(Script {
            inline: None,
            response: text,
        })
        .await;
        let err = outbound(addr, "t")
            .send(&OutgoingMessage::raw(
                Envelope::new(MAILBOX, vec!["alex.wilber@contoso.example".to_owned()]),
                b"Subject: x\r\n\r\nx\r\n".to_vec(),
            ))
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Authentication, "{text}: {err}");
        let problem = err.auth_problem().expect("diagnosis");
        assert_eq!(problem.code.as_deref(), Some("5.7.139"), "{text}");
        assert!(
            problem
                .summary
                .contains("SMTP AUTH is disabled for this mailbox or tenant"),
            "{text}: {problem:?}"
        );
        assert!(
            !problem.summary.to_lowercase().contains("basic"),
            "{problem:?}"
        );
    }
}

/// Against the sandbox answering as Office 365 does (`535 5.7.3` at once, no challenge): one
/// refresh, then a diagnosis that names the reply and what to check, and the token is never
/// sent inline (it is longer than a command line).
#[tokio::test]
async fn a_refused_token_without_a_challenge_is_refreshed_once_and_diagnosed() {
    let sb = test_support::start().await;
    sb.admin()
        .grant_admin_consent(
            test_support::DEMO_APP,
            &["https://outlook.office365.com/SMTP.Send"],
            &[],
        )
        .expect("consent");
    let tokens =
        test_support::SandboxTokens::smtp_delegated(&sb, "adele.vance@contoso.example", usize::MAX);
    let addr = sb.smtp_addr().expect("smtp listener");
    let out = SmtpOutbound::new(
        SmtpConfig::office365("adele.vance@contoso.example")
            .with_server(addr.ip().to_string(), addr.port())
            .with_root_certificate_pem(sb.smtp_ca_pem().expect("CA")),
        tokens.clone(),
    )
    .expect("config");
    let err = out
        .send(&OutgoingMessage::raw(
            Envelope::new(
                "adele.vance@contoso.example",
                vec!["alex.wilber@contoso.example".to_owned()],
            ),
            b"Subject: never\r\n\r\nx\r\n".to_vec(),
        ))
        .await
        .expect_err("forged token");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert_eq!(tokens.refreshes(), 1);
    let problem = err.auth_problem().expect("diagnosis");
    assert_eq!(problem.code.as_deref(), Some("5.7.3"));
    assert!(problem.summary.contains("535 5.7.3"), "{problem:?}");
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("535 5.7.3")
    );
}
