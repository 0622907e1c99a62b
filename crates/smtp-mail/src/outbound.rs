//! [`SmtpOutbound`]: the connector outbound over lettre's SMTP connection.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use connector::{
    ConnectionLog, Delivery, Error, LogLine, MessageOutbound, OutboundCapabilities,
    OutgoingMessage, PingReport, SendReceipt,
};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Security, SmtpConfig};
use crate::diagnosis::{self, AuthChallenge, Reply};
use crate::token::{AccessToken, ChallengeHeader, TokenSource};

/// The longest command line, CRLF included (RFC 5321 §4.5.3.1.4; Exchange announces no
/// extension of it). RFC 4954 §4: when `AUTH` with its initial response would be longer, the
/// client must not send the response on the `AUTH` line but after the server's `334`.
const MAX_COMMAND_LINE: usize = 512;

/// Whether a reply to `AUTH XOAUTH2 <response>` refuses the form of the command (line too long,
/// a syntax or parameter error, the mechanism with an initial response not accepted) rather
/// than the token: then the two-step form is worth one try on the same connection. The server
/// announced XOAUTH2 before, so `504` can only be about the form.
fn refuses_inline_form(code: u16) -> bool {
    matches!(code, 500 | 501 | 504)
}

/// A `Display` that writes a raw command line (lettre's `command` takes any `Display`).
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Sends mail through SMTP AUTH (XOAUTH2) with lettre's async SMTP connection.
///
/// Each ping or send opens one connection: connect, `STARTTLS` (required by default), `AUTH
/// XOAUTH2` (the response on the `AUTH` line when it fits in 512 octets, else — or when the
/// server refuses that form — after its `334`, RFC 4954 §4), and for a send
/// `MAIL`/`RCPT`/`DATA`, then `QUIT`. On `535 5.7.3` (or an XOAUTH2
/// error challenge) it asks the token source once for a fresh token and authenticates again;
/// `535 5.7.139` (SMTP AUTH disabled) is reported at once. See the crate documentation.
///
/// [`ping_from`](SmtpOutbound::ping_from) makes `ping` also check the right to send as an
/// address, up to `MAIL FROM` and `RCPT TO` and never `DATA`: nothing is sent.
#[derive(Clone)]
pub struct SmtpOutbound {
    config: SmtpConfig,
    tokens: Arc<dyn TokenSource>,
    log: ConnectionLog,
    probe_from: Option<String>,
}

impl fmt::Debug for SmtpOutbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpOutbound")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmtpOutbound {
    /// An outbound with this configuration and token source.
    ///
    /// # Errors
    ///
    /// A [`Configuration`](connector::ErrorKind::Configuration) error, before any connection,
    /// when `config` would let the token cross the network in clear:
    /// [`Security::DangerousPlaintext`] to a host that is not loopback (`localhost`, an address
    /// in `127.0.0.0/8`, or `::1`). A name that merely resolves to a loopback address does not
    /// count.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use connector::ErrorKind;
    /// use smtp_mail::{FnTokenSource, Security, SmtpConfig, SmtpOutbound};
    ///
    /// let tokens = Arc::new(FnTokenSource::new(|_| Ok("token".to_owned())));
    /// let plain = SmtpConfig::office365("helpdesk@contoso.example")
    ///     .with_server("smtp.contoso.example", 25)
    ///     .with_security(Security::DangerousPlaintext);
    /// let err = SmtpOutbound::new(plain.clone(), tokens.clone()).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Configuration);
    /// assert!(SmtpOutbound::new(plain.with_server("127.0.0.1", 2525), tokens).is_ok());
    /// ```
    pub fn new(config: SmtpConfig, tokens: Arc<dyn TokenSource>) -> Result<Self, Error> {
        if config.security == Security::DangerousPlaintext
            && !connector::is_loopback_host(&config.host)
        {
            return Err(Error::configuration(format!(
                "SMTP server {:?}: plaintext (Security::DangerousPlaintext) would send the \
                 XOAUTH2 token in clear, so it is only allowed to a loopback host (localhost, \
                 127.0.0.0/8, ::1); use StartTls or ImplicitTls",
                config.host
            )));
        }
        Ok(SmtpOutbound {
            config,
            tokens,
            log: ConnectionLog::default(),
            probe_from: None,
        })
    }

    /// Makes `ping` also check the right to send as `from` (an alias of the mailbox or another
    /// mailbox): after signing in it says `MAIL FROM:<from>` and `RCPT TO:<` the mailbox `>`,
    /// then `RSET` and `QUIT`. No `DATA` is sent, so no message exists, is sent or kept.
    ///
    /// What it can see: Exchange Online is reported to refuse an envelope sender the mailbox
    /// may not send as at `MAIL FROM` (`550 5.7.60`), and the sandbox does so by default. The
    /// `From` header is checked only at the end of `DATA` (`554 5.2.252`), which a probe
    /// never reaches: a server that checks only the header (the sandbox with
    /// `smtp_check_envelope_sender` off) accepts the probe for an address it would refuse in
    /// a send. The probe is then online with nothing proven; its log shows `MAIL` accepted.
    pub fn ping_from(mut self, from: impl Into<String>) -> Self {
        self.probe_from = Some(from.into());
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    /// The log of recent exchanges (verbs, codes and durations; never a token).
    pub fn log(&self) -> &ConnectionLog {
        &self.log
    }

    fn line(&self, verb: &str, started: Instant, status: Option<u16>, note: Option<&str>) {
        let mut l = LogLine::new(time::OffsetDateTime::now_utc(), verb, &self.config.url())
            .duration(started.elapsed());
        if let Some(s) = status {
            l = l.status(s);
        }
        if let Some(n) = note {
            l = l.note(n);
        }
        self.log.push(l);
    }

    /// Connects, protects the connection and signs in. Also says whether the token that
    /// signed in is app-only (for the wording of a later send-as refusal).
    async fn open(&self) -> Result<(AsyncSmtpConnection, bool), Error> {
        let c = &self.config;
        let hello = ClientId::Domain(c.hello_name.clone());
        let implicit = match c.security {
            Security::ImplicitTls => Some(c.tls_parameters()?),
            _ => None,
        };
        let started = Instant::now();
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (c.host.as_str(), c.port),
            Some(c.timeout),
            &hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| {
            self.line("CONNECT", started, None, Some(&e.to_string()));
            let err = if e.is_tls() {
                Error::configuration(format!(
                    "TLS with {}:{} failed (is the certificate trusted?): {e}",
                    c.host, c.port
                ))
            } else {
                Error::transient(format!("connecting to {}:{}: {e}", c.host, c.port))
            };
            err.with_delivery(Delivery::NotSent)
        })?;
        self.line("CONNECT", started, Some(220), None);
        if c.security == Security::StartTls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(Error::refused(format!(
                    "{}:{} does not offer STARTTLS; refusing to send the token in clear",
                    c.host, c.port
                ))
                .with_delivery(Delivery::NotSent));
            }
            let started = Instant::now();
            conn.starttls(c.tls_parameters()?, &hello)
                .await
                .map_err(|e| {
                    self.line("STARTTLS", started, None, Some(&e.to_string()));
                    Error::configuration(format!(
                        "STARTTLS with {}:{} failed (is the certificate trusted?): {e}",
                        c.host, c.port
                    ))
                    .with_delivery(Delivery::NotSent)
                })?;
            self.line("STARTTLS", started, Some(220), None);
        }
        if !conn
            .server_info()
            .supports_auth_mechanism(Mechanism::Xoauth2)
        {
            conn.abort().await;
            return Err(Error::refused(format!(
                "{}:{} does not offer AUTH XOAUTH2 (is SMTP AUTH enabled, and is this a submission port?)",
                c.host, c.port
            ))
            .with_delivery(Delivery::NotSent));
        }
        let token = self.tokens.token().await?;
        let app_only = |t: &AccessToken| crate::token::app_only(t).is_some_and(|(app, _)| app);
        let claims = match self.authenticate(&mut conn, &token).await? {
            AuthOutcome::Ok => return Ok((conn, app_only(&token))),
            AuthOutcome::Disabled(reply) => {
                conn.abort().await;
                return Err(diagnosis::auth_error(
                    diagnosis::smtp_auth_disabled(&c.mailbox),
                    Some(&reply),
                ));
            }
            AuthOutcome::Refused(_, challenge) => challenge.as_ref().and_then(|ch| {
                self.tokens
                    .diagnose(&ChallengeHeader::of(ch).refusal())
                    .and_then(|c| c.claims)
            }),
        };
        // One fresh token (with the claims of the challenge, if it had any), then a second try
        // on the same connection.
        let token = match self.tokens.refresh(claims.as_deref()).await {
            Ok(t) => t,
            Err(e) => {
                conn.abort().await;
                return Err(e);
            }
        };
        match self.authenticate(&mut conn, &token).await? {
            AuthOutcome::Ok => Ok((conn, app_only(&token))),
            AuthOutcome::Disabled(reply) => {
                conn.abort().await;
                Err(diagnosis::auth_error(
                    diagnosis::smtp_auth_disabled(&c.mailbox),
                    Some(&reply),
                ))
            }
            AuthOutcome::Refused(reply, challenge) => {
                conn.abort().await;
                let problem = challenge
                    .as_ref()
                    .and_then(|ch| self.tokens.diagnose(&ChallengeHeader::of(ch).refusal()))
                    .map(|c| c.problem)
                    .map(|mut p| {
                        p.summary = format!(
                            "the SMTP server refused the access token for {}: {}",
                            c.mailbox, p.summary
                        );
                        p
                    })
                    .unwrap_or_else(|| match crate::token::app_only(&token) {
                        // Exchange answers a missing service principal or FullAccess with the
                        // same 535 5.7.3 as a bad token: name them all.
                        Some((true, app_id)) => diagnosis::app_token_refused(
                            &c.mailbox,
                            app_id.as_deref(),
                            challenge.as_ref(),
                        ),
                        _ => diagnosis::token_refused(&c.mailbox, challenge.as_ref()),
                    });
                Err(diagnosis::auth_error(problem, reply.as_ref()))
            }
        }
    }

    /// One XOAUTH2 exchange, run here rather than by lettre's `auth` so that the error
    /// challenge on a `334` reply is read instead of lost.
    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        token: &AccessToken,
    ) -> Result<AuthOutcome, Error> {
        use base64::Engine as _;
        let started = Instant::now();
        let initial = base64::engine::general_purpose::STANDARD.encode(format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.config.mailbox,
            token.secret()
        ));
        let network = |e: lettre::transport::smtp::Error| {
            // lettre's errors carry server text, never what we wrote: no token in here.
            Error::transient(format!("signing in to {}: {e}", self.config.host))
                .with_delivery(Delivery::NotSent)
        };
        // The reply of an AUTH step that did not end in 235: the server's answer, or the reply
        // inside lettre's error; an error without one is a network failure.
        let refused = |answer: Result<
            lettre::transport::smtp::response::Response,
            lettre::transport::smtp::Error,
        >| match answer {
            Ok(r) => Ok(Reply::parse(
                r.code().to_string().parse().unwrap_or(0),
                &r.message().collect::<Vec<_>>().join(" "),
            )),
            Err(e) => Reply::from_lettre(&e).ok_or_else(|| network(e)),
        };
        let inline = format!("AUTH XOAUTH2 {initial}\r\n");
        let first = if inline.len() > MAX_COMMAND_LINE {
            Self::two_step(conn, &initial).await
        } else {
            match conn.command(Raw(&inline)).await {
                Err(e) if Reply::from_lettre(&e).is_some_and(|r| refuses_inline_form(r.code)) => {
                    Self::two_step(conn, &initial).await
                }
                other => other,
            }
        };
        let (reply, challenge) = match first {
            Ok(r) if r.has_code(235) => {
                self.line("AUTH", started, Some(235), None);
                return Ok(AuthOutcome::Ok);
            }
            Ok(r) if r.has_code(334) => {
                let text = r.message().collect::<Vec<_>>().join("");
                let challenge = AuthChallenge::decode(&text);
                // RFC 7628 §3.2.3: the client answers an error challenge with an empty
                // response, and the server then fails the exchange.
                let end = conn.command(Raw("\r\n")).await;
                match end {
                    Ok(r) if r.has_code(235) => {
                        self.line("AUTH", started, Some(235), None);
                        return Ok(AuthOutcome::Ok);
                    }
                    other => (Some(refused(other)?), challenge),
                }
            }
            other => (Some(refused(other)?), None),
        };
        let code = reply.as_ref().map(|r| r.code);
        let note = reply.as_ref().map(|r| r.server_code());
        self.line("AUTH", started, code, note.as_deref());
        match reply {
            Some(r) if r.is_smtp_auth_disabled() => Ok(AuthOutcome::Disabled(r)),
            Some(r) if r.code == 535 || r.code == 334 || challenge.is_some() => {
                Ok(AuthOutcome::Refused(Some(r), challenge))
            }
            // Anything else (5.7.30 basic auth refused, 4xx, 5xx): the server said no.
            Some(r) => {
                Err(diagnosis::send_error("signing in", &r).with_delivery(Delivery::NotSent))
            }
            None => Ok(AuthOutcome::Refused(None, challenge)),
        }
    }

    /// `AUTH XOAUTH2` alone, then the initial response after the server's `334` (RFC 4954
    /// §4, the form for a response too long for the command line). lettre's `auth` cannot be
    /// told to use this form (it always sends the response inline), so, like the rest of the
    /// exchange, it is two raw commands over lettre's connection. Returns the server's answer
    /// to the response, or to `AUTH` if that was not `334`.
    async fn two_step(
        conn: &mut AsyncSmtpConnection,
        initial: &str,
    ) -> Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error> {
        let prompt = conn.command(Raw("AUTH XOAUTH2\r\n")).await?;
        if !prompt.has_code(334) {
            return Ok(prompt);
        }
        conn.command(Raw(&format!("{initial}\r\n"))).await
    }

    async fn ping_inner(&self) -> Result<(), Error> {
        let (mut conn, app_only) = self.open().await?;
        if let Some(from) = &self.probe_from
            && let Err(e) = self.probe_send_as(&mut conn, from, app_only).await
        {
            conn.abort().await;
            return Err(e);
        }
        let started = Instant::now();
        let quit = conn.quit().await;
        self.line("QUIT", started, quit.as_ref().ok().map(|_| 221), None);
        Ok(())
    }

    /// `MAIL FROM:<from>`, `RCPT TO:<mailbox>`, `RSET` on a signed-in connection: a refused
    /// envelope sender is the send-as error a send would give.
    async fn probe_send_as(
        &self,
        conn: &mut AsyncSmtpConnection,
        from: &str,
        app_only: bool,
    ) -> Result<(), Error> {
        use lettre::transport::smtp::commands::{Mail, Rcpt, Rset};
        let sender = from.trim().parse::<Address>().map_err(|e| {
            Error::configuration(format!(
                "{from:?} is not an address to check the right to send as: {e}"
            ))
        })?;
        let mailbox = self.config.mailbox.parse::<Address>().map_err(|e| {
            Error::configuration(format!("the mailbox {:?}: {e}", self.config.mailbox))
        })?;
        let started = Instant::now();
        let mail = conn.command(Mail::new(Some(sender), Vec::new())).await;
        self.probe_step("MAIL", started, mail, from, app_only)?;
        let started = Instant::now();
        let rcpt = conn.command(Rcpt::new(mailbox, Vec::new())).await;
        self.probe_step("RCPT", started, rcpt, from, app_only)?;
        let started = Instant::now();
        let rset = conn.command(Rset).await;
        self.probe_step("RSET", started, rset, from, app_only)
    }

    /// Logs one command of the probe and turns its refusal into the error a send would give.
    fn probe_step(
        &self,
        verb: &str,
        started: Instant,
        answer: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
        from: &str,
        app_only: bool,
    ) -> Result<(), Error> {
        let e = match answer {
            Ok(r) => {
                self.line(verb, started, Some(u16::from(r.code())), None);
                return Ok(());
            }
            Err(e) => e,
        };
        let Some(reply) = Reply::from_lettre(&e) else {
            self.line(verb, started, None, Some(&e.to_string()));
            return Err(Error::transient(format!(
                "checking the right to send as {from} through {}: {e}",
                self.config.host
            ))
            .with_delivery(Delivery::NotSent));
        };
        self.line(verb, started, Some(reply.code), Some(&reply.server_code()));
        Err(if reply.is_send_as_denied() {
            diagnosis::send_as_error(&self.config.mailbox, from, app_only, &reply)
        } else {
            diagnosis::send_error(&format!("checking the right to send as {from}"), &reply)
        }
        .with_delivery(Delivery::NotSent))
    }

    async fn send_inner(&self, message: &OutgoingMessage) -> Result<SendReceipt, Error> {
        let env = message.envelope();
        let parse = |a: &str| {
            a.parse::<Address>().map_err(|e| {
                Error::refused(format!("{a:?} is not an address SMTP can send to: {e}"))
                    .with_delivery(Delivery::NotSent)
            })
        };
        let from = parse(&env.from)?;
        let to = env
            .to
            .iter()
            .map(|a| parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to).map_err(|e| {
            Error::refused(format!("the envelope cannot be sent: {e}"))
                .with_delivery(Delivery::NotSent)
        })?;
        let mime = message.mime();
        if mime.len() as u64 > self.config.max_message_bytes {
            return Err(Error::refused(format!(
                "the message is {} bytes; the most this outbound sends is {}",
                mime.len(),
                self.config.max_message_bytes
            ))
            .with_delivery(Delivery::NotSent));
        }
        let (mut conn, app_only) = self.open().await?;
        let started = Instant::now();
        let sent = conn.send(&envelope, mime).await;
        match sent {
            Ok(r) => {
                self.line("DATA", started, Some(250), None);
                let started = Instant::now();
                let quit = conn.quit().await;
                self.line("QUIT", started, quit.as_ref().ok().map(|_| 221), None);
                let mut receipt = SendReceipt::new(env.from.clone());
                receipt.id = r.message().next().map(|s| s.trim().to_owned());
                Ok(receipt)
            }
            Err(e) => {
                conn.abort().await;
                match Reply::from_lettre(&e) {
                    Some(reply) => {
                        self.line(
                            "DATA",
                            started,
                            Some(reply.code),
                            Some(&reply.server_code()),
                        );
                        if reply.is_send_as_denied() {
                            // 5.7.60 refuses MAIL FROM, 5.2.252 the From header.
                            let from = if reply.is_envelope_send_as_denied() {
                                env.from.clone()
                            } else {
                                header_from(mime).unwrap_or_else(|| env.from.clone())
                            };
                            return Err(diagnosis::send_as_error(
                                &self.config.mailbox,
                                &from,
                                app_only,
                                &reply,
                            ));
                        }
                        Err(diagnosis::send_error(
                            &format!("sending as {}", self.config.mailbox),
                            &reply,
                        ))
                    }
                    None => {
                        self.line("DATA", started, None, Some(&e.to_string()));
                        // The connection broke mid-transaction: the server may have the message.
                        Err(
                            Error::transient(format!("sending through {}: {e}", self.config.host))
                                .with_delivery(Delivery::MaybeSent),
                        )
                    }
                }
            }
        }
    }
}

/// The address in the message's `From` header, if there is one (the header block only,
/// unfolded; `Name <a@b>` or `a@b`).
fn header_from(mime: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&mime[..mime.len().min(64 * 1024)]);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let value = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("from").then(|| v.trim().to_owned())
    })?;
    Some(match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_owned(),
        _ => value,
    })
}

enum AuthOutcome {
    Ok,
    Disabled(Reply),
    Refused(Option<Reply>, Option<AuthChallenge>),
}

#[async_trait]
impl MessageOutbound for SmtpOutbound {
    fn name(&self) -> String {
        format!("smtp:{}", self.config.mailbox)
    }

    fn capabilities(&self) -> OutboundCapabilities {
        // Exchange keeps a copy of SMTP AUTH submissions in Sent Items.
        OutboundCapabilities::mime(self.config.max_message_bytes).with_sent_items(true)
    }

    async fn ping(&self) -> PingReport {
        let log = ConnectionLog::default();
        let result = tokio::time::timeout(self.config.timeout, self.ping_inner()).await;
        // This ping's lines: CONNECT, STARTTLS, AUTH (twice after a refresh), the probe's MAIL,
        // RCPT and RSET, QUIT.
        for l in self.log.lines().into_iter().rev().take(9).rev() {
            log.push(l);
        }
        match result {
            Ok(Ok(())) => PingReport::online(None, log),
            Ok(Err(e)) => PingReport::from_error(&e, log),
            Err(_) => PingReport::offline(
                format!(
                    "{}:{} did not answer within {:?}",
                    self.config.host, self.config.port, self.config.timeout
                ),
                log,
            ),
        }
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<SendReceipt, Error> {
        match tokio::time::timeout(self.config.timeout, self.send_inner(message)).await {
            Ok(r) => r,
            Err(_) => Err(Error::transient(format!(
                "sending through {}:{} took longer than {:?}",
                self.config.host, self.config.port, self.config.timeout
            ))
            .with_delivery(Delivery::MaybeSent)),
        }
    }
}

#[cfg(test)]
mod tests {
    use connector::is_loopback_host;

    #[test]
    fn the_from_header_is_found() {
        let f = |m: &str| super::header_from(m.as_bytes());
        assert_eq!(
            f("Subject: x\r\nFrom: Billing\r\n <billing@contoso.example>\r\n\r\nFrom: no"),
            Some("billing@contoso.example".into())
        );
        assert_eq!(f("from: a@b.example\r\n\r\n"), Some("a@b.example".into()));
        assert_eq!(f("Subject: x\r\n\r\nFrom: body@x.example"), None);
    }

    #[test]
    fn each_cloud_has_its_host_and_the_global_constants_agree() {
        use msauth::Cloud;
        for (cloud, host) in [
            (Cloud::Global, "smtp.office365.com"),
            (Cloud::UsGovL4, "smtp.office365.us"),
            (Cloud::UsGovL5, "outlook-dod.office365.us"),
            (Cloud::China, "smtp.partner.outlook.cn"),
        ] {
            let c = super::SmtpConfig::exchange_online(cloud, "a@b.example");
            assert_eq!((c.host.as_str(), c.port), (host, 587), "{cloud}");
            assert_eq!(c.security, super::Security::StartTls);
        }
        assert_eq!(
            super::SmtpConfig::office365("a@b.example"),
            super::SmtpConfig::exchange_online(Cloud::Global, "a@b.example")
        );
        assert_eq!(crate::APP_SCOPE, Cloud::Global.smtp().app_scope());
        assert_eq!(
            crate::DELEGATED_SCOPE,
            Cloud::Global.smtp().delegated_scope("SMTP.Send")
        );
    }

    #[test]
    fn loopback_hosts_are_told_from_the_text_alone() {
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "smtp.contoso.example",
            "localhost.contoso.example",
            "127.0.0.1.contoso.example",
            "localhost.",
            "127.1",
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "128.0.0.1",
            "[127.0.0.1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
