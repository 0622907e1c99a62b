//! [`GraphOutbound`]: a [`MessageOutbound`] over Graph `sendMail`.

use async_trait::async_trait;
use connector::{
    ConnectionLog, Error, MessageOutbound, OutboundCapabilities, OutgoingMessage, PingReport,
    SendReceipt,
};

use crate::api;
use crate::client::{GraphClient, Idempotency};

/// The largest MIME message sent in one `sendMail` (base64 grows it by a third; Graph's limit is
/// about 4 MB per request).
pub const MAX_MIME_SEND: usize = api::MAX_REQUEST_BODY / 4 * 3;

/// Sends mail as the client's mailbox, with `sendMail` and the message as MIME.
///
/// The `From` header of the message decides the sender: the mailbox itself, one of its aliases
/// (where the tenant allows sending from aliases), or another mailbox on which the caller has
/// Send As or Send on Behalf. A refused `From` is an error with the server code
/// `ErrorSendAsDenied` and a message saying which right is missing.
///
/// ```no_run
/// use std::sync::Arc;
/// use connector::{MessageOutbound, OutgoingMessage};
/// use graph_mail::{Cloud, Endpoint, FnTokenSource, GraphClient, GraphOutbound, Mailbox};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
/// let client = GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("…".into())))).build()?;
/// let out = GraphOutbound::new(client);
/// let msg = lettre::Message::builder()
///     .from("Billing <billing@contoso.com>".parse()?)
///     .to("customer@fabrikam.example".parse()?)
///     .subject("We received your request")
///     .body(String::from("Thanks."))?;
/// out.send(&OutgoingMessage::from(msg)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GraphOutbound {
    client: GraphClient,
    probe_from: Option<String>,
}

impl GraphOutbound {
    /// An outbound over `client`'s mailbox.
    pub fn new(client: GraphClient) -> Self {
        GraphOutbound {
            client,
            probe_from: None,
        }
    }

    /// Makes `ping` also prove the right to send as `from` (an alias or another mailbox).
    pub fn ping_from(mut self, from: impl Into<String>) -> Self {
        self.probe_from = Some(from.into());
        self
    }

    async fn probe(&self, log: &ConnectionLog) -> Result<(), Error> {
        let req = api::send_probe(self.client.endpoint(), self.probe_from.as_deref())?;
        match self
            .client
            .execute_logged(
                "checking the right to send",
                req,
                Idempotency::SendOnce,
                Some(log),
                true,
            )
            .await
        {
            // The probe names no recipient: Graph checked token, mailbox and From, then refused
            // the message itself.
            Err(e)
                if e.response().and_then(|r| r.server_code.as_deref())
                    == Some("ErrorInvalidRecipients") =>
            {
                Ok(())
            }
            Err(e) => Err(explain_send_error(e, self.probe_from.as_deref())),
            Ok(_) => Err(Error::bad_response(
                "Graph accepted a message without recipients; cannot tell whether sending works",
            )),
        }
    }
}

fn explain_send_error(e: Error, from: Option<&str>) -> Error {
    let denied = e.response().and_then(|r| r.server_code.as_deref()) == Some("ErrorSendAsDenied");
    if !denied {
        return e;
    }
    let who = from.unwrap_or("the From address");
    let details = e.response().cloned();
    let mut out = Error::refused(format!(
        "the mailbox may not send as {who}: grant it Send As or Send on Behalf on {who}, or (for an alias) turn on SendFromAliasEnabled"
    ));
    if let Some(d) = details {
        out = out.with_response(d);
    }
    out
}

fn header_from(mime: &[u8]) -> Option<String> {
    // Only the header block, unfolded enough to find `From:`.
    let text = String::from_utf8_lossy(&mime[..mime.len().min(64 * 1024)]);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("from").then(|| v.trim().to_owned())
        })
        .map(|v| match (v.rfind('<'), v.rfind('>')) {
            (Some(a), Some(b)) if a < b => v[a + 1..b].to_owned(),
            _ => v,
        })
}

#[async_trait]
impl MessageOutbound for GraphOutbound {
    fn name(&self) -> String {
        match self.client.endpoint().mailbox() {
            crate::Mailbox::Me => "graph-send:me".into(),
            crate::Mailbox::User(u) => format!("graph-send:{u}"),
        }
    }

    fn capabilities(&self) -> OutboundCapabilities {
        OutboundCapabilities::mime(MAX_MIME_SEND as u64).with_sent_items(true)
    }

    async fn ping(&self) -> PingReport {
        let log = ConnectionLog::default();
        match self.probe(&log).await {
            Ok(()) => PingReport::online(None, log),
            Err(e) => PingReport::from_error(&e, log),
        }
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<SendReceipt, Error> {
        let mime = message.mime();
        if mime.len() > MAX_MIME_SEND {
            return Err(Error::unsupported(format!(
                "a {}-byte message is over the {MAX_MIME_SEND}-byte sendMail limit; large attachments need a draft and an upload session (GraphOutbound::send_with_upload)",
                mime.len()
            )));
        }
        let from = header_from(mime).or_else(|| {
            let f = &message.envelope().from;
            (!f.is_empty()).then(|| f.clone())
        });
        let req = api::send_mime(self.client.endpoint(), mime)?;
        self.client
            .execute("sending a message", req, Idempotency::SendOnce)
            .await
            .map_err(|e| explain_send_error(e, from.as_deref()))?;
        Ok(match from {
            Some(f) => SendReceipt::new(f),
            None => SendReceipt::default(),
        })
    }
}

impl GraphOutbound {
    /// Sends a message described as JSON (`sendMail` with a `message` object): to, cc, bcc,
    /// reply-to, `from` (an alias or another mailbox), text or HTML body, small attachments,
    /// and `saveToSentItems`.
    pub async fn send_json(&self, mail: &api::JsonMail) -> Result<SendReceipt, Error> {
        let req = api::send_json(self.client.endpoint(), mail)?;
        self.client
            .execute("sending a message", req, Idempotency::SendOnce)
            .await
            .map_err(|e| explain_send_error(e, mail.from.as_deref()))?;
        Ok(match &mail.from {
            Some(f) => SendReceipt::new(f.clone()),
            None => SendReceipt::default(),
        })
    }

    /// Sends `mime` (the message without its large attachments) as a draft, adds each
    /// attachment through an upload session in chunks, then sends the draft.
    ///
    /// A failure before the final `/send` leaves a draft behind and nothing sent; a failure of
    /// the `/send` itself is returned as is (check
    /// [`may_have_taken_effect`](Error::may_have_taken_effect)).
    pub async fn send_with_upload(
        &self,
        mime: &[u8],
        attachments: &[(String, Vec<u8>)],
    ) -> Result<SendReceipt, Error> {
        let ep = self.client.endpoint();
        let draft = self
            .client
            .execute(
                "creating a draft",
                api::create_draft_mime(ep, mime)?,
                Idempotency::SendOnce,
            )
            .await?;
        let draft = api::parse_message(draft.json()?)?;
        for (name, bytes) in attachments {
            let s = self
                .client
                .execute(
                    "starting an attachment upload",
                    api::create_upload_session(ep, &draft.id, name, bytes.len() as u64)?,
                    Idempotency::SendOnce,
                )
                .await?;
            let session = api::parse_upload_session(s.json()?)?;
            let total = bytes.len() as u64;
            for (start, end) in api::chunk_ranges(total, api::UPLOAD_CHUNK) {
                let chunk = bytes
                    .get(start as usize..=end as usize)
                    .ok_or_else(|| Error::configuration("attachment range out of bounds"))?;
                self.client
                    .execute_unauthenticated(
                        "uploading an attachment",
                        api::upload_chunk(&session.upload_url, start, chunk, total)?,
                        Idempotency::Safe,
                    )
                    .await?;
            }
        }
        self.client
            .execute(
                "sending a draft",
                api::send_draft(ep, &draft.id)?,
                Idempotency::SendOnce,
            )
            .await
            .map_err(|e| explain_send_error(e, header_from(mime).as_deref()))?;
        let mut r = match header_from(mime) {
            Some(f) => SendReceipt::new(f),
            None => SendReceipt::default(),
        };
        r.id = Some(draft.id);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_header_is_found() {
        assert_eq!(
            header_from(
                b"Subject: x\r\nFROM: Billing <billing@contoso.example>\r\n\r\nFrom: body@x"
            )
            .as_deref(),
            Some("billing@contoso.example")
        );
        assert_eq!(header_from(b"Subject: x\r\n\r\n"), None);
        assert_eq!(
            header_from(b"From: a@b.example\r\n\r\n").as_deref(),
            Some("a@b.example")
        );
    }

    #[test]
    fn send_as_denial_is_explained() {
        let e = Error::refused("x").with_response(
            connector::ResponseDetails::status(403).with_server_code("ErrorSendAsDenied"),
        );
        let e = explain_send_error(e, Some("ceo@contoso.example"));
        assert!(
            e.to_string()
                .contains("may not send as ceo@contoso.example"),
            "{e}"
        );
        assert_eq!(
            e.response().and_then(|r| r.server_code.as_deref()),
            Some("ErrorSendAsDenied")
        );
    }
}
