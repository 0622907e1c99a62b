//! A plain SMTP listener (RFC 5321 subset) that delivers into the sandbox through
//! [`crate::delivery::deliver`].
//!
//! Supported: `EHLO`/`HELO`, `MAIL FROM` (with `SIZE=`), `RCPT TO` (unknown recipients and
//! not-yet-propagated aliases refused with `550 5.1.1`), `DATA` (dot-unstuffing, size cap →
//! `552 5.3.4`), `RSET`, `NOOP`, `QUIT`, `VRFY` (`252`), `STARTTLS` (RFC 3207, with a certificate
//! for `localhost` and `127.0.0.1` issued by a CA generated once per process: clients trust
//! [`crate::Sandbox::smtp_ca_pem`]). Without authentication it stands in for the Internet-facing MX:
//! mail to tenant addresses only, no relaying.
//!
//! `AUTH XOAUTH2` (as on `smtp.office365.com`) turns the session into client submission: the
//! token must be for `https://outlook.office365.com` with `SMTP.Send` (delegated) or
//! `SMTP.SendAsApp` (app), `user=` names the sending mailbox — the user's own or one they have
//! FullAccess on; with an app-only token, as Exchange Online requires, the app's service
//! principal must be registered in Exchange (`New-ServicePrincipal`) and hold FullAccess on
//! that mailbox (`Add-MailboxPermission`), else `535 5.7.3` (protocol.md §4.2). External
//! recipients are accepted (recorded in the outbox). The envelope sender (`MAIL FROM`) and the
//! `From` header must each be the mailbox, one of its aliases, or a mailbox on which Send As or
//! Send on Behalf is held by the mailbox, the signed-in user or (app-only) the service
//! principal: otherwise `MAIL FROM` is answered `550 5.7.60 SMTP; Client does not have
//! permissions to send as this sender` and the end of `DATA` `554 5.2.252 SendAsDenied; …`.
//! These two codes are what Exchange Online is reported to answer (not in Microsoft's
//! reference, so the envelope check can be turned off with
//! [`OrgSettings::smtp_check_envelope_sender`](crate::tenant::OrgSettings::smtp_check_envelope_sender)).
//! With Send on Behalf a `Sender:` naming the mailbox is added. A copy is saved in the
//! mailbox's Sent Items.
//!
//! The initial response may come on the `AUTH` line or, after `334`, on a line of its own
//! (RFC 4954; both are documented for Office 365). A refused token is answered the way Office
//! 365 answers: `535 5.7.3 Authentication unsuccessful`, with no reason. Gmail's form instead —
//! a `334` challenge carrying base64 JSON (`{"status":"401","schemes":"bearer","scope":…,
//! "error":…,"error_description":…,"www_authenticate":…}`), then `535 5.7.3` after the
//! client's empty response — is there only when a test asks for it
//! ([`OrgSettings::smtp_auth_error_challenge`](crate::tenant::OrgSettings::smtp_auth_error_challenge)).
//! With the organisation's `SmtpClientAuthenticationDisabled` set, `AUTH` is
//! answered `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for
//! the Tenant`.
//!
//! Hand-written: there is no maintained, small SMTP *server* crate that fits an in-process
//! emulator (the well-known crates are clients, or full MTAs).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::{TcpListener, TcpStream};

use crate::delivery::{self, Route};
use crate::state::AppState;

const MAX_LINE: usize = 4096;

/// Accepts SMTP connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, state: AppState) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // e.g. out of file descriptors: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let st = state.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, peer, st).await {
                tracing::debug!(%peer, error = %e, "smtp session ended with an error");
            }
        });
    }
}

fn extract_path(arg: &str) -> Option<String> {
    let start = arg.find('<')?;
    let end = arg[start..].find('>')? + start;
    Some(arg[start + 1..end].trim().to_string())
}

async fn session(mut stream: TcpStream, _peer: SocketAddr, state: AppState) -> std::io::Result<()> {
    stream
        .write_all(b"220 sandbox.local Microsoft ESMTP MAIL Service ready\r\n")
        .await?;
    let Some(plain) = dialogue(stream, &state, false).await? else {
        return Ok(());
    };
    // STARTTLS was accepted: the handshake, then a fresh session (RFC 3207 §4.2: the client
    // starts over with EHLO and nothing said before counts).
    let Some(config) = starttls_config() else {
        return Ok(());
    };
    let tls = tokio_rustls::TlsAcceptor::from(config)
        .accept(plain)
        .await?;
    dialogue(tls, &state, true).await.map(|_| ())
}

/// The TLS server configuration for STARTTLS: one CA and one certificate (for `localhost` and
/// `127.0.0.1`) per process, generated on first use. `None` if generation failed (then
/// STARTTLS is not offered).
fn starttls_config() -> Option<Arc<rustls::ServerConfig>> {
    starttls_material().map(|(config, _)| config)
}

pub(crate) fn starttls_material() -> Option<(Arc<rustls::ServerConfig>, String)> {
    static MATERIAL: OnceLock<Option<(Arc<rustls::ServerConfig>, String)>> = OnceLock::new();
    MATERIAL
        .get_or_init(|| match generate_tls() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "cannot generate the SMTP STARTTLS certificate");
                None
            }
        })
        .clone()
}

fn generate_tls() -> Result<(Arc<rustls::ServerConfig>, String), String> {
    // The same recipe as the HTTPS listener's (`server::tls_config`), kept separate so the SMTP
    // listener offers STARTTLS whether or not the HTTP side serves TLS.
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "m365 sandbox SMTP CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| err(&e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sandbox.local");
    let cert = params.signed_by(&key, &issuer).map_err(|e| err(&e))?;
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| err(&e))?;
    Ok((Arc::new(config), ca_cert.pem()))
}

/// One SMTP dialogue over `stream`. Returns the stream when the client asked for STARTTLS and
/// it was accepted (the caller does the handshake), `None` when the session is over.
async fn dialogue<S>(stream: S, state: &AppState, encrypted: bool) -> std::io::Result<Option<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let state = state.clone();
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut from: Option<String> = None;
    // (principal, sending mailbox primary) after AUTH XOAUTH2
    let mut authed: Option<(crate::auth::Principal, String)> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut r)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            w.write_all(b"500 5.5.2 Line too long\r\n").await?;
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        let max = state.tenant().org.max_message_size;
        match verb.as_str() {
            "EHLO" => {
                let starttls = if !encrypted && starttls_config().is_some() {
                    "250-STARTTLS\r\n"
                } else {
                    ""
                };
                let reply = format!(
                    "250-sandbox.local Hello [{arg}]\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250-PIPELINING\r\n{starttls}250-AUTH XOAUTH2\r\n250 SMTPUTF8\r\n"
                );
                w.write_all(reply.as_bytes()).await?;
                from = None;
                rcpts.clear();
            }
            "AUTH" => {
                let (mech, initial) = match arg.split_once(' ') {
                    Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim().to_string())),
                    None => (arg.to_ascii_uppercase(), None),
                };
                if mech != "XOAUTH2" {
                    w.write_all(b"504 5.7.4 Unrecognized authentication type\r\n")
                        .await?;
                    continue;
                }
                if authed.is_some() {
                    w.write_all(b"503 5.5.1 Already authenticated\r\n").await?;
                    continue;
                }
                if state.tenant().org.smtp_client_authentication_disabled {
                    state.reqlog().record("SMTP", "AUTH", 535);
                    w.write_all(b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.\r\n").await?;
                    continue;
                }
                let response = match initial {
                    Some(i) => i,
                    None => {
                        w.write_all(b"334 \r\n").await?;
                        line.clear();
                        (&mut r)
                            .take(MAX_LINE as u64 * 4)
                            .read_until(b'\n', &mut line)
                            .await?;
                        String::from_utf8_lossy(&line).trim().to_string()
                    }
                };
                match xoauth2(&state, &response) {
                    Ok(ok) => {
                        authed = Some(ok);
                        state.reqlog().record("SMTP", "AUTH", 235);
                        w.write_all(b"235 2.7.0 Authentication successful\r\n")
                            .await?;
                    }
                    Err(Refusal::Malformed) => {
                        state.reqlog().record("SMTP", "AUTH", 535);
                        w.write_all(b"535 5.7.3 Authentication unsuccessful\r\n")
                            .await?;
                    }
                    Err(Refusal::Token(_)) if !state.tenant().org.smtp_auth_error_challenge => {
                        // Office 365: no challenge, no reason.
                        state.reqlog().record("SMTP", "AUTH", 535);
                        w.write_all(b"535 5.7.3 Authentication unsuccessful\r\n")
                            .await?;
                    }
                    Err(Refusal::Token(json)) => {
                        // Gmail's error challenge; the client answers with an empty line.
                        use base64::Engine as _;
                        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
                        w.write_all(format!("334 {b64}\r\n").as_bytes()).await?;
                        line.clear();
                        (&mut r)
                            .take(MAX_LINE as u64 * 4)
                            .read_until(b'\n', &mut line)
                            .await?;
                        state.reqlog().record("SMTP", "AUTH", 535);
                        w.write_all(b"535 5.7.3 Authentication unsuccessful\r\n")
                            .await?;
                    }
                }
            }
            "HELO" => {
                w.write_all(b"250 sandbox.local Hello\r\n").await?;
                from = None;
                rcpts.clear();
            }
            "MAIL" => {
                let upper = arg.to_ascii_uppercase();
                if !upper.starts_with("FROM:") {
                    w.write_all(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
                        .await?;
                    continue;
                }
                if from.is_some() {
                    w.write_all(b"503 5.5.1 Sender already specified\r\n")
                        .await?;
                    continue;
                }
                let Some(path) = extract_path(&arg) else {
                    w.write_all(b"501 5.1.7 Invalid address\r\n").await?;
                    continue;
                };
                let size = upper
                    .split_whitespace()
                    .find_map(|p| p.strip_prefix("SIZE="))
                    .and_then(|s| s.parse::<usize>().ok());
                if size.is_some_and(|s| s > max) {
                    w.write_all(b"552 5.3.4 Message size exceeds fixed maximum message size\r\n")
                        .await?;
                    continue;
                }
                // Client submission: the envelope sender must be a mailbox the signed-in
                // identity may send as, like the From header (checked after DATA).
                let check_envelope = state.tenant().org.smtp_check_envelope_sender;
                if let Some((principal, mailbox)) = &authed
                    && check_envelope
                    && principal.may_send_as(mailbox, &path).is_err()
                {
                    state.reqlog().record("SMTP", "MAIL", 550);
                    w.write_all(b"550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n").await?;
                    continue;
                }
                from = Some(path);
                w.write_all(b"250 2.1.0 Sender OK\r\n").await?;
            }
            "RCPT" => {
                if from.is_none() {
                    w.write_all(b"503 5.5.1 Need MAIL command\r\n").await?;
                    continue;
                }
                if !arg.to_ascii_uppercase().starts_with("TO:") {
                    w.write_all(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
                        .await?;
                    continue;
                }
                let Some(path) = extract_path(&arg) else {
                    w.write_all(b"501 5.1.3 Invalid address\r\n").await?;
                    continue;
                };
                let routed = {
                    let t = state.tenant();
                    delivery::route(&t, &path, state.clock().now_unix())
                };
                match routed {
                    Ok(Route::Mailboxes(_)) => {
                        rcpts.push(path);
                        w.write_all(b"250 2.1.5 Recipient OK\r\n").await?;
                    }
                    // The sandbox is not an open relay.
                    Ok(Route::External) if authed.is_some() => {
                        rcpts.push(path);
                        w.write_all(b"250 2.1.5 Recipient OK\r\n").await?;
                    }
                    Ok(Route::External) => {
                        w.write_all(b"550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain\r\n").await?;
                    }
                    Err(e) => {
                        w.write_all(format!("{}\r\n", e.smtp_reply()).as_bytes())
                            .await?;
                    }
                }
            }
            "DATA" => {
                if from.is_none() || rcpts.is_empty() {
                    w.write_all(b"503 5.5.1 Need valid RCPT command\r\n")
                        .await?;
                    continue;
                }
                w.write_all(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n")
                    .await?;
                let mut data = Vec::new();
                let mut too_big = false;
                loop {
                    line.clear();
                    // Bounded: a line longer than the size cap cannot fit anyway.
                    let n = (&mut r)
                        .take(max as u64 + 1024)
                        .read_until(b'\n', &mut line)
                        .await?;
                    if n == 0 {
                        return Ok(None);
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let content = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    if data.len() + content.len() > max {
                        too_big = true;
                    } else {
                        data.extend_from_slice(content);
                    }
                }
                let sender = from.take().unwrap_or_default();
                let to = std::mem::take(&mut rcpts);
                if too_big {
                    state.reqlog().record("SMTP", "DATA", 552);
                    w.write_all(b"552 5.3.4 Message size exceeds fixed maximum message size\r\n")
                        .await?;
                    continue;
                }
                if let Some((principal, mailbox)) = &authed {
                    match submit_authenticated(&state, principal, mailbox, &to, &data) {
                        Ok(()) => {
                            state.reqlog().record("SMTP", "DATA", 250);
                            w.write_all(b"250 2.0.0 OK Queued mail for delivery\r\n")
                                .await?;
                        }
                        Err(reply) => {
                            state.reqlog().record("SMTP", "DATA", 554);
                            w.write_all(format!("{reply}\r\n").as_bytes()).await?;
                        }
                    }
                    continue;
                }
                match delivery::deliver(&state, &sender, &to, &data) {
                    Ok(_) => {
                        state.reqlog().record("SMTP", "DATA", 250);
                        let id = uuid::Uuid::new_v4().simple().to_string();
                        w.write_all(
                            format!("250 2.6.0 <{id}@sandbox.local> Queued mail for delivery\r\n")
                                .as_bytes(),
                        )
                        .await?;
                    }
                    Err(e) => {
                        state.reqlog().record("SMTP", "DATA", 554);
                        w.write_all(format!("554 5.6.0 {e}\r\n").as_bytes()).await?;
                    }
                }
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                w.write_all(b"250 2.0.0 Resetting\r\n").await?;
            }
            "STARTTLS" => {
                if encrypted || starttls_config().is_none() {
                    w.write_all(b"502 5.3.3 Command not implemented\r\n")
                        .await?;
                    continue;
                }
                if !r.buffer().is_empty() {
                    // Commands pipelined behind STARTTLS would cross into the TLS session
                    // (the CVE-2011-0411 class of bug): refuse.
                    w.write_all(b"554 5.5.1 Pipelining after STARTTLS is not allowed\r\n")
                        .await?;
                    return Ok(None);
                }
                w.write_all(b"220 2.0.0 SMTP server ready\r\n").await?;
                w.flush().await?;
                return Ok(Some(r.into_inner().unsplit(w)));
            }
            "NOOP" => w.write_all(b"250 2.0.0 OK\r\n").await?,
            "VRFY" => w.write_all(b"252 2.1.5 Cannot VRFY user\r\n").await?,
            "QUIT" => {
                w.write_all(b"221 2.0.0 Service closing transmission channel\r\n")
                    .await?;
                return Ok(None);
            }
            "" => {
                w.write_all(b"500 5.5.2 Syntax error, command unrecognized\r\n")
                    .await?
            }
            _ => {
                w.write_all(b"502 5.3.3 Command not implemented\r\n")
                    .await?
            }
        }
    }
}

/// Why an XOAUTH2 response was refused.
enum Refusal {
    /// Not a decodable XOAUTH2 response: plain `535`.
    Malformed,
    /// The token or the mailbox right was refused: the JSON of the `334` error challenge.
    Token(String),
}

/// Checks a SASL XOAUTH2 initial response (`user=…\x01auth=Bearer …\x01\x01`, base64).
fn xoauth2(state: &AppState, b64: &str) -> Result<(crate::auth::Principal, String), Refusal> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| Refusal::Malformed)?;
    let text = String::from_utf8(raw).map_err(|_| Refusal::Malformed)?;
    let mut user = None;
    let mut token = None;
    for part in text.split('\x01') {
        if let Some(u) = part.strip_prefix("user=") {
            user = Some(u.trim().to_string());
        } else if let Some(a) = part.strip_prefix("auth=") {
            let (scheme, t) = a.split_once(' ').ok_or(Refusal::Malformed)?;
            if scheme.eq_ignore_ascii_case("bearer") {
                token = Some(t.trim().to_string());
            }
        }
    }
    let (Some(user), Some(token)) = (user, token) else {
        return Err(Refusal::Malformed);
    };
    let challenge = |error: &str, description: &str, www: Option<&str>| {
        Refusal::Token(
            serde_json::json!({
                "status": "401",
                "schemes": "bearer",
                "scope": "https://outlook.office365.com/.default",
                "error": error,
                "error_description": description,
                "www_authenticate": www,
            })
            .to_string(),
        )
    };
    let principal = crate::auth::authenticate_bearer(state, &token, crate::auth::Resource::Smtp)
        .map_err(|f| challenge("invalid_token", &f.description, Some(&f.www_authenticate)))?;
    let mailbox = principal
        .may_submit_as(&user)
        .map_err(|e| challenge("access_denied", &format!("{user}: {}", e.message), None))?;
    Ok((principal, mailbox))
}

/// Client submission after AUTH: From must be sendable-as, copy to Sent Items, envelope decides.
fn submit_authenticated(
    state: &AppState,
    principal: &crate::auth::Principal,
    mailbox: &str,
    rcpts: &[String],
    data: &[u8],
) -> Result<(), String> {
    let props = crate::store::MessageProps::from_mime(data)
        .map_err(|_| "554 5.6.0 Invalid message content".to_string())?;
    let from = props
        .from
        .as_ref()
        .map(|f| f.address.clone())
        .unwrap_or_else(|| mailbox.to_string());
    let right = principal.may_send_as(mailbox, &from).map_err(|_| {
        format!(
            "554 5.2.252 SendAsDenied; {mailbox} not allowed to send as {from}; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message."
        )
    })?;
    // Send on Behalf: the sending mailbox goes in `Sender`.
    let data = right.stamp(data);
    let data = &data[..];
    let now = state.clock().now();
    state
        .store()
        .insert(
            mailbox,
            "sentitems",
            data.to_vec(),
            crate::store::InsertOptions {
                is_read: true,
                is_draft: false,
                received: now,
            },
        )
        .map_err(|e| format!("451 4.3.0 {e}"))?;
    delivery::deliver(state, mailbox, rcpts, data).map_err(|e| format!("554 5.6.0 {e}"))?;
    Ok(())
}
