//! A plain SMTP listener (RFC 5321 subset) that delivers into the sandbox through
//! [`crate::delivery::deliver`].
//!
//! Supported: `EHLO`/`HELO`, `MAIL FROM` (with `SIZE=`), `RCPT TO` (unknown recipients and
//! not-yet-propagated aliases refused with `550 5.1.1`), `DATA` (dot-unstuffing, size cap →
//! `552 5.3.4`), `RSET`, `NOOP`, `QUIT`, `VRFY` (`252`). No TLS. Without authentication it stands
//! in for the Internet-facing MX: mail to tenant addresses only, no relaying.
//!
//! `AUTH XOAUTH2` (as on `smtp.office365.com`) turns the session into client submission: the
//! token must be for `https://outlook.office365.com` with `SMTP.Send` (delegated) or
//! `SMTP.SendAsApp` (app), `user=` names the sending mailbox, external recipients are accepted
//! (recorded in the outbox), the `From` header must be a mailbox the caller may send as
//! (`554 5.2.252` otherwise), and a copy is saved in the sender's Sent Items.
//!
//! Hand-written: there is no maintained, small SMTP *server* crate that fits an in-process
//! emulator (the well-known crates are clients, or full MTAs).

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
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

async fn session(stream: TcpStream, _peer: SocketAddr, state: AppState) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sandbox.local Microsoft ESMTP MAIL Service ready\r\n")
        .await?;
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
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            w.write_all(b"500 5.5.2 Line too long\r\n").await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        let max = state.tenant().org.max_message_size;
        match verb.as_str() {
            "EHLO" => {
                let reply = format!(
                    "250-sandbox.local Hello [{arg}]\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-AUTH XOAUTH2\r\n250 SMTPUTF8\r\n"
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
                    Some(ok) => {
                        authed = Some(ok);
                        w.write_all(b"235 2.7.0 Authentication successful\r\n")
                            .await?;
                    }
                    None => {
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
                        return Ok(());
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
            "NOOP" => w.write_all(b"250 2.0.0 OK\r\n").await?,
            "VRFY" => w.write_all(b"252 2.1.5 Cannot VRFY user\r\n").await?,
            "QUIT" => {
                w.write_all(b"221 2.0.0 Service closing transmission channel\r\n")
                    .await?;
                return Ok(());
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

/// Checks a SASL XOAUTH2 initial response (`user=…\x01auth=Bearer …\x01\x01`, base64).
fn xoauth2(state: &AppState, b64: &str) -> Option<(crate::auth::Principal, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut user = None;
    let mut token = None;
    for part in text.split('\x01') {
        if let Some(u) = part.strip_prefix("user=") {
            user = Some(u.trim().to_string());
        } else if let Some(a) = part.strip_prefix("auth=") {
            let (scheme, t) = a.split_once(' ')?;
            if scheme.eq_ignore_ascii_case("bearer") {
                token = Some(t.trim().to_string());
            }
        }
    }
    let (user, token) = (user?, token?);
    let principal =
        crate::auth::authenticate_bearer(state, &token, crate::auth::Resource::Smtp).ok()?;
    let mailbox = principal.may_send_as(&user, &user).ok()?.mailbox;
    Some((principal, mailbox))
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
    principal.may_send_as(mailbox, &from).map_err(|e| {
        format!(
            "554 5.2.252 SendAsDenied; {mailbox} not allowed to send as {from}; {}",
            e.message
        )
    })?;
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
