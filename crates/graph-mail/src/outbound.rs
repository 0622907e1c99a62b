//! [`GraphOutbound`]: a [`MessageOutbound`] over Graph `sendMail`.

use async_trait::async_trait;
use connector::{
    ConnectionLog, Delivery, Error, MessageOutbound, OutboundCapabilities, OutgoingMessage,
    PingReport, SendReceipt,
};

use crate::api;
use crate::client::GraphClient;

/// The largest MIME message sent in one `sendMail` (base64 grows it by a third; Graph's limit is
/// about 4 MB per request). Larger messages go through a draft.
pub const MAX_MIME_SEND: usize = api::MAX_REQUEST_BODY / 4 * 3;

/// The largest message [`GraphOutbound::send`] takes: Exchange Online's highest configurable
/// message size (the tenant's own limit, 35 MB by default, applies on top).
pub const MAX_MESSAGE: usize = 150 * 1024 * 1024;

/// Sends mail as the client's mailbox, with `sendMail` and the message as MIME.
///
/// `send` picks the way by size: a message up to [`MAX_MIME_SEND`] bytes goes in one
/// `sendMail`; a larger one becomes a draft (the MIME with its largest attachments cut out,
/// every header kept), each cut attachment is added back — up to
/// [`api::MAX_INLINE_ATTACHMENT`] in one `POST …/attachments`, larger ones through an upload
/// session in chunks of [`api::UPLOAD_CHUNK`] (a multiple of 320 KiB), to an upload URL that
/// must be on the Graph host or its Outlook upload host — and the draft is sent
/// (`POST …/send` with `Content-Length: 0`). If anything fails before that last step, the
/// draft is deleted and the error says the message was not sent.
///
/// The `From` header of the message decides the sender: the mailbox itself, one of its aliases
/// (where the tenant allows sending from aliases), or another mailbox on which the caller has
/// Send As or Send on Behalf (app-only tokens too: `Mail.Send` reaches every mailbox, not
/// every `From`). A refused `From` is a `Refused` error with the server code
/// `ErrorSendAsDenied` and a message saying which mailbox lacks which right on which address,
/// with the PowerShell that grants it ([`connector::send_as_denied`]).
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
        let probe = api::SendProbe::new(self.probe_from.as_deref());
        match self.client.execute_logged(&probe, Some(log)).await {
            // The probe names no recipient: Graph checked token, mailbox and From, then refused
            // the message itself.
            Err(e)
                if e.response().and_then(|r| r.server_code.as_deref())
                    == Some("ErrorInvalidRecipients") =>
            {
                Ok(())
            }
            Err(e) => Err(explain_send_error(
                e,
                self.client.endpoint().mailbox(),
                self.probe_from.as_deref(),
            )),
            Ok(_) => Err(Error::bad_response(
                "Graph accepted a message without recipients; cannot tell whether sending works",
            )),
        }
    }
}

/// A refused `From` (`ErrorSendAsDenied`) becomes a `Refused` error that says who lacks which
/// right and what an Exchange administrator runs ([`connector::send_as_denied`]); the server's
/// code, status and request id are kept. Other errors pass unchanged.
fn explain_send_error(e: Error, mailbox: &crate::Mailbox, from: Option<&str>) -> Error {
    let denied = e.response().and_then(|r| r.server_code.as_deref()) == Some("ErrorSendAsDenied");
    if !denied {
        return e;
    }
    let sender = match mailbox {
        crate::Mailbox::Me => "<the signed-in user>",
        crate::Mailbox::User(u) => u.as_str(),
    };
    let who = from.unwrap_or("the From address");
    let details = e.response().cloned();
    let mut out = Error::refused(connector::send_as_denied(sender, who));
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
        OutboundCapabilities::mime(MAX_MESSAGE as u64).with_sent_items(true)
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
        let from = header_from(mime).or_else(|| {
            let f = &message.envelope().from;
            (!f.is_empty()).then(|| f.clone())
        });
        if mime.len() > MAX_MESSAGE {
            return Err(Error::unsupported(format!(
                "a {}-byte message is over the {MAX_MESSAGE}-byte limit of Exchange Online",
                mime.len()
            )));
        }
        if mime.len() > MAX_MIME_SEND {
            let split = api::split_for_draft(mime, MAX_MIME_SEND)?;
            let mut r = self
                .send_draft_with(&split.body, &split.attachments, from.as_deref())
                .await?;
            r.from = from;
            return Ok(r);
        }
        self.client
            .execute(&api::SendMime::new(mime))
            .await
            .map_err(|e| {
                explain_send_error(e, self.client.endpoint().mailbox(), from.as_deref())
            })?;
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
        self.client
            .execute(&api::SendJson::new(mail))
            .await
            .map_err(|e| {
                explain_send_error(e, self.client.endpoint().mailbox(), mail.from.as_deref())
            })?;
        Ok(match &mail.from {
            Some(f) => SendReceipt::new(f.clone()),
            None => SendReceipt::default(),
        })
    }

    /// Sends `mime` (the message without the attachments) as a draft, adds each attachment
    /// (in one request up to [`api::MAX_INLINE_ATTACHMENT`], through an upload session above),
    /// then sends the draft. [`send`](MessageOutbound::send) does this by itself for messages
    /// over [`MAX_MIME_SEND`]; this is for callers that hold the attachments separately.
    ///
    /// A failure before the final `/send` deletes the draft and sends nothing; a failure of the
    /// `/send` itself is returned as is (check
    /// [`may_have_taken_effect`](Error::may_have_taken_effect)).
    pub async fn send_with_upload(
        &self,
        mime: &[u8],
        attachments: &[(String, Vec<u8>)],
    ) -> Result<SendReceipt, Error> {
        let atts: Vec<api::Attachment> = attachments
            .iter()
            .map(|(name, bytes)| {
                api::Attachment::new(name.clone(), "application/octet-stream", bytes.clone())
            })
            .collect();
        let from = header_from(mime);
        let mut r = self.send_draft_with(mime, &atts, from.as_deref()).await?;
        r.from = from;
        Ok(r)
    }

    /// Draft, attachments, send; the receipt carries the draft's id.
    async fn send_draft_with(
        &self,
        mime: &[u8],
        attachments: &[api::Attachment],
        from: Option<&str>,
    ) -> Result<SendReceipt, Error> {
        let draft = self
            .client
            .execute(&api::CreateDraftMime::new(mime))
            .await
            .map_err(|e| e.with_delivery(Delivery::NotSent))?;
        for att in attachments {
            if let Err(e) = self.attach(&draft.id, att).await {
                self.discard_draft(&draft.id).await;
                // Nothing was sent: the draft was never submitted.
                return Err(e.with_delivery(Delivery::NotSent));
            }
        }
        self.client
            .execute(&api::SendDraft::new(&draft.id))
            .await
            .map_err(|e| explain_send_error(e, self.client.endpoint().mailbox(), from))?;
        let mut r = SendReceipt::default();
        r.id = Some(draft.id);
        Ok(r)
    }

    /// Adds one attachment to a draft: one request when small, an upload session when large.
    async fn attach(&self, draft_id: &str, att: &api::Attachment) -> Result<(), Error> {
        if att.bytes.len() <= api::MAX_INLINE_ATTACHMENT {
            return self
                .client
                .execute(&api::AddAttachment::new(draft_id, att))
                .await;
        }
        // The session's URL is checked by the operation (Graph or its Outlook upload host).
        let session = self
            .client
            .execute(&api::CreateAttachmentUploadSession::new(draft_id, att))
            .await?;
        let total = att.bytes.len() as u64;
        for (start, end) in api::chunk_ranges(total, api::UPLOAD_CHUNK) {
            let chunk = usize::try_from(start)
                .ok()
                .zip(usize::try_from(end).ok())
                .and_then(|(s, e)| att.bytes.get(s..=e))
                .ok_or_else(|| Error::configuration("attachment range out of bounds"))?;
            self.client
                .execute(&api::UploadChunk::new(
                    &session.upload_url,
                    start,
                    chunk,
                    total,
                ))
                .await?;
        }
        Ok(())
    }

    /// Deletes a draft that will not be sent (best effort: a left-over draft is only clutter).
    async fn discard_draft(&self, draft_id: &str) {
        if let Err(e) = self
            .client
            .execute(&api::DeleteMessage::new(draft_id))
            .await
        {
            tracing::warn!(error = %e, "could not delete the unsent draft");
        }
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
        let helpdesk = crate::Mailbox::user("helpdesk@contoso.example");
        let e = explain_send_error(e, &helpdesk, Some("ceo@contoso.example"));
        assert!(
            e.to_string()
                .contains("helpdesk@contoso.example may not send as ceo@contoso.example"),
            "{e}"
        );
        assert!(
            e.to_string().contains(
                "Add-RecipientPermission -Identity ceo@contoso.example -Trustee helpdesk@contoso.example -AccessRights SendAs"
            ),
            "{e}"
        );
        assert_eq!(
            e.response().and_then(|r| r.server_code.as_deref()),
            Some("ErrorSendAsDenied")
        );
    }
}
