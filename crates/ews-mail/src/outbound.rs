//! [`EwsOutbound`]: the `connector` outbound over EWS (CreateItem with SendAndSaveCopy, the
//! envelope's From made the message's), and its Send As probe.

use async_trait::async_trait;
use connector::{
    Error, ErrorKind, MessageOutbound, OutboundCapabilities, OutgoingMessage, PingReport,
    SendReceipt,
};

use crate::client::EwsClient;
use crate::config::MailboxAccess;
use crate::error::ResponseError;
use crate::ops::{CreateItem, GetFolder, MessageDisposition};
use crate::source::{item_error, offline_reason};

/// The address in a `From` header value (`Name <a@b>` or `a@b`).
fn address_of(value: &str) -> String {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_string(),
        _ => value.trim().to_string(),
    }
}

/// Makes the `From` header name the envelope's sender: the envelope decides who sends, and
/// Exchange refuses a `From` the mailbox may not send as (`ErrorSendAsDenied`). A `From` that
/// already names the envelope address (with any display name) is kept as is.
fn with_envelope_from(mime: &[u8], from: &str) -> Vec<u8> {
    if from.trim().is_empty() {
        return mime.to_vec();
    }
    let split = mime
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| mime.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
        .unwrap_or(mime.len());
    let (head, body) = mime.split_at(split);
    let head = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(head.len() + from.len() + 16);
    let mut skipping = false;
    let mut found = false;
    for line in head.split_inclusive('\n') {
        let continuation = line.starts_with([' ', '\t']);
        if skipping && continuation {
            continue;
        }
        skipping = false;
        if !continuation && line.len() >= 5 && line[..5].eq_ignore_ascii_case("from:") {
            found = true;
            // Unfold to read the whole value.
            if address_of(&line[5..]).eq_ignore_ascii_case(from.trim()) {
                out.push_str(line);
            } else {
                out.push_str(&format!("From: {}\r\n", from.trim()));
                skipping = true;
            }
            continue;
        }
        out.push_str(line);
    }
    if !found {
        out = format!("From: {}\r\n{out}", from.trim());
    }
    let mut v = out.into_bytes();
    v.extend_from_slice(body);
    v
}

/// Sends mail as the mailbox with `CreateItem` (`SendAndSaveCopy`, raw MIME), keeping a copy
/// in Sent Items. The message's `From` header is set to the envelope's sender: the envelope
/// decides who sends, and Exchange refuses a `From` the mailbox may not send as
/// (`ErrorSendAsDenied`: the mailbox, or the signed-in user, needs Send As or Send on Behalf on
/// it — with impersonation too), which `send` reports as a `Refused` error naming the missing
/// right and the PowerShell that grants it ([`connector::send_as_denied`]). A `From` that
/// already names the envelope address (with any display name) is kept as is.
///
/// [`ping_from`](EwsOutbound::ping_from) makes `ping` also check the right to send as an
/// address without sending anything: the `CreateItem` of a send with that `From` and no
/// recipient, which is refused either for the `From` (`ErrorSendAsDenied`) or, the right being
/// there, for having no recipient (`ErrorInvalidRecipients`).
#[derive(Debug, Clone)]
pub struct EwsOutbound {
    client: EwsClient,
    probe_from: Option<String>,
}

impl EwsOutbound {
    /// An outbound sending as the client's mailbox.
    pub fn new(client: EwsClient) -> Self {
        EwsOutbound {
            client,
            probe_from: None,
        }
    }

    /// Makes `ping` also prove the right to send as `from` (an alias of the mailbox or another
    /// mailbox). The probe is the `CreateItem` a send makes (`SendAndSaveCopy`, raw MIME, the
    /// copy for Sent Items), with `From: from` and no recipient: Exchange checks the right to
    /// send as the `From` when it submits the message (`ErrorSendAsDenied`), and a message
    /// without a recipient cannot be submitted (`ErrorInvalidRecipients`), so nothing is sent
    /// and no copy is kept. That the right is checked before the recipients is what the
    /// sandbox models (as Graph's `sendMail` does it); a server that checked the recipients
    /// first would answer `ErrorInvalidRecipients` for a refused address too, so the probe
    /// could not see that refusal. Should a server accept the recipient-less message (none
    /// is known to), the probe says it cannot tell and names the copy it may have kept.
    pub fn ping_from(mut self, from: impl Into<String>) -> Self {
        self.probe_from = Some(from.into());
        self
    }

    /// The send-rights probe of [`ping_from`](Self::ping_from).
    async fn probe_send_as(&self, from: &str) -> Result<(), Error> {
        let from = from.trim();
        if from.is_empty() || from.chars().any(|c| c.is_control() || "<>\",;".contains(c)) {
            return Err(Error::configuration(format!(
                "{from:?} is not an address to check the right to send as"
            )));
        }
        let access = &self.client.config().access;
        let mime = format!(
            "From: <{from}>\r\nSubject: {PROBE_SUBJECT}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nA check of the right to send as \
             {from}: it names no recipient, so it is never sent.\r\n"
        );
        let op = CreateItem::new(
            mime.into_bytes(),
            MessageDisposition::SendAndSaveCopy,
            Some(access.folder("sentitems")),
        );
        match self.client.call(&op).await?.into_iter().next() {
            // Exchange checked token, mailbox and From, then refused the message itself.
            Some(Err(e)) if e.code == "ErrorInvalidRecipients" => Ok(()),
            Some(Err(e)) if e.code == "ErrorSendAsDenied" => Err(send_as_refused(e, access, from)),
            Some(Err(e)) => Err(item_error(e, "checking the right to send")),
            // Not seen from Exchange: a send without recipients was accepted. Nothing went
            // to anyone; its copy, if one was kept, says what it is.
            Some(Ok(_)) => Err(Error::bad_response(format!(
                "EWS accepted a message without recipients from {from}; cannot tell whether \
                 sending as {from} works (a copy titled {PROBE_SUBJECT:?} may be in Sent Items: \
                 delete it)"
            ))),
            None => Err(Error::bad_response("CreateItem answered nothing")),
        }
    }
}

/// The subject of the send-rights probe ([`EwsOutbound::ping_from`]).
const PROBE_SUBJECT: &str = "m365mail send-rights probe";

/// An `ErrorSendAsDenied` answer as a `Refused` error: who lacks which right on `from`, and the
/// PowerShell that grants it; the server's code and text stay in the details.
fn send_as_refused(e: ResponseError, access: &MailboxAccess, from: &str) -> Error {
    let details = item_error(e, "sending").response().cloned();
    let from = if from.is_empty() {
        "the From address"
    } else {
        from
    };
    let mut err = Error::refused(connector::send_as_denied(access.address(), from));
    if let Some(d) = details {
        err = err.with_response(d);
    }
    err
}

#[async_trait]
impl MessageOutbound for EwsOutbound {
    fn name(&self) -> String {
        format!("ews:{}", self.client.config().access.address())
    }

    fn capabilities(&self) -> OutboundCapabilities {
        OutboundCapabilities::mime(35 * 1024 * 1024).with_sent_items(true)
    }

    async fn ping(&self) -> PingReport {
        let log = self.client.log().clone();
        let access = &self.client.config().access;
        match self
            .client
            .call(&GetFolder::new(vec![access.folder("sentitems")]))
            .await
        {
            Ok(r) => match r.into_iter().next() {
                Some(Ok(_)) => match &self.probe_from {
                    None => PingReport::online(None, log),
                    Some(from) => match self.probe_send_as(from).await {
                        Ok(()) => PingReport::online(None, log),
                        Err(e) => PingReport::from_error(&e, log),
                    },
                },
                Some(Err(e)) => {
                    let e = item_error(e, "reading Sent Items");
                    PingReport::offline(offline_reason(&e), log)
                }
                None => PingReport::offline("GetFolder answered nothing", log),
            },
            Err(e) => {
                let mut r = PingReport::from_error(&e, log);
                if r.auth.is_none() {
                    r.reason = Some(offline_reason(&e));
                }
                r
            }
        }
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<SendReceipt, Error> {
        let access = &self.client.config().access;
        let op = CreateItem {
            mime: with_envelope_from(message.mime(), &message.envelope().from),
            disposition: MessageDisposition::SendAndSaveCopy,
            saved_folder: Some(access.folder("sentitems")),
        };
        match self.client.call(&op).await?.into_iter().next() {
            Some(Ok(_)) => Ok(SendReceipt::new(message.envelope().from.clone())),
            Some(Err(e)) if e.code == "ErrorSendAsDenied" => {
                Err(send_as_refused(e, access, message.envelope().from.trim()))
            }
            Some(Err(e)) => {
                let err = item_error(e, "sending");
                Err(if err.kind() == ErrorKind::Transient {
                    err.with_delivery(connector::Delivery::Answered)
                } else {
                    err
                })
            }
            None => Err(Error::bad_response("CreateItem answered nothing")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_follows_the_envelope() {
        let m = b"From: Customer <c@fabrikam.example>\r\nSubject: x\r\n\r\nFrom: body line\r\n";
        let out = String::from_utf8(with_envelope_from(m, "billing@contoso.example")).unwrap();
        assert_eq!(
            out,
            "From: billing@contoso.example\r\nSubject: x\r\n\r\nFrom: body line\r\n"
        );
        // Same address with a display name: untouched.
        let m = b"From: Billing <billing@contoso.example>\r\n\r\nb";
        assert_eq!(with_envelope_from(m, "BILLING@contoso.example"), m.to_vec());
        // Folded From and missing From.
        let m = b"Subject: y\r\nFrom: A very long\r\n <x@y.example>\r\n\r\nb";
        let out = String::from_utf8(with_envelope_from(m, "h@c.example")).unwrap();
        assert_eq!(out, "Subject: y\r\nFrom: h@c.example\r\n\r\nb");
        let out =
            String::from_utf8(with_envelope_from(b"Subject: z\r\n\r\nb", "h@c.example")).unwrap();
        assert!(out.starts_with("From: h@c.example\r\nSubject: z"));
    }
}
