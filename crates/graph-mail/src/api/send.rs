//! Sending: `sendMail` with MIME or JSON, and the probe that proves the right to send.

use super::*;

/// `POST …/sendMail` with the MIME message base64-encoded as `text/plain` → 202. Refused before
/// sending when the encoded message is over [`MAX_REQUEST_BODY`] (send it through a draft).
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendMime<'a> {
    /// The RFC 822 message.
    pub mime: &'a [u8],
}

impl<'a> SendMime<'a> {
    /// Sends `mime`.
    pub fn new(mime: &'a [u8]) -> Self {
        SendMime { mime }
    }
}

impl std::fmt::Debug for SendMime<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMime")
            .field("len", &self.mime.len())
            .finish()
    }
}

impl GraphOperation for SendMime<'_> {
    type Output = ();

    describe_op!("sending a message", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let body = base64_mime(self.mime, || {
            Error::configuration(format!(
                "a {}-byte message is over Graph's 4 MB request limit; send it through a draft and an upload session",
                self.mime.len()
            ))
        })?;
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["sendMail"]),
            body,
        ))
    }

    status_only!();
}

/// `mime` base64-encoded as a `text/plain` body, as `sendMail` and a new draft take MIME; the
/// `too_large` error when the encoding is over [`MAX_REQUEST_BODY`].
pub(super) fn base64_mime(mime: &[u8], too_large: impl FnOnce() -> Error) -> Result<Body, Error> {
    let body = base64::engine::general_purpose::STANDARD.encode(mime);
    if body.len() > MAX_REQUEST_BODY {
        return Err(too_large());
    }
    Ok(Body::Bytes {
        content_type: "text/plain",
        bytes: body.into_bytes(),
    })
}

/// A message for the JSON form of `sendMail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonMail {
    /// Subject.
    pub subject: String,
    /// Body text; HTML when `html` is set.
    pub body: String,
    /// Whether `body` is HTML.
    pub html: bool,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// `Bcc` addresses.
    pub bcc: Vec<String>,
    /// `Reply-To` addresses.
    pub reply_to: Vec<String>,
    /// `From`, when sending as an alias or another mailbox.
    pub from: Option<String>,
    /// Small attachments: name, content type, bytes.
    pub attachments: Vec<(String, String, Vec<u8>)>,
    /// Keep a copy in Sent Items (Graph's default).
    pub save_to_sent_items: bool,
}

impl JsonMail {
    /// A plain-text message to `to`.
    pub fn text(subject: impl Into<String>, body: impl Into<String>, to: Vec<String>) -> Self {
        JsonMail {
            subject: subject.into(),
            body: body.into(),
            to,
            save_to_sent_items: true,
            ..Self::default()
        }
    }

    /// The `message` object of `sendMail` or a draft.
    pub fn message_json(&self) -> Value {
        let rcpt = |v: &[String]| -> Value {
            v.iter()
                .map(|a| json!({ "emailAddress": { "address": a } }))
                .collect()
        };
        let mut m = json!({
            "subject": self.subject,
            "body": { "contentType": if self.html { "HTML" } else { "Text" }, "content": self.body },
            "toRecipients": rcpt(&self.to),
            "ccRecipients": rcpt(&self.cc),
            "bccRecipients": rcpt(&self.bcc),
            "replyTo": rcpt(&self.reply_to),
        });
        if let Some(from) = &self.from {
            m["from"] = json!({ "emailAddress": { "address": from } });
        }
        if !self.attachments.is_empty() {
            m["attachments"] = self
                .attachments
                .iter()
                .map(|(name, ct, bytes)| {
                    json!({
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": name,
                        "contentType": ct,
                        "contentBytes": base64::engine::general_purpose::STANDARD.encode(bytes),
                    })
                })
                .collect();
        }
        m
    }
}

/// `POST …/sendMail` with a JSON message → 202. Refused before sending when the JSON is over
/// [`MAX_REQUEST_BODY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendJson<'a> {
    /// The message.
    pub mail: &'a JsonMail,
}

impl<'a> SendJson<'a> {
    /// Sends `mail`.
    pub fn new(mail: &'a JsonMail) -> Self {
        SendJson { mail }
    }
}

impl GraphOperation for SendJson<'_> {
    type Output = ();

    describe_op!("sending a message", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let body = json!({
            "message": self.mail.message_json(),
            "saveToSentItems": self.mail.save_to_sent_items,
        });
        if body.to_string().len() > MAX_REQUEST_BODY {
            return Err(Error::configuration(
                "the message is over Graph's 4 MB request limit; use a draft and an upload session",
            ));
        }
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["sendMail"]),
            Body::Json(body),
        ))
    }

    status_only!();
}

/// A `sendMail` that proves the right to send without sending: it names no recipient, so Graph
/// checks the token, the mailbox and the `from` right, then refuses it with
/// `ErrorInvalidRecipients` (400) instead of sending. That refusal is the expected answer; a
/// 2xx (parsed as `()`) means Graph accepted a message without recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendProbe {
    /// The `from` address to prove (an alias or another mailbox); `None` for the mailbox.
    pub from: Option<String>,
}

impl SendProbe {
    /// A probe of the right to send as `from` (the mailbox itself when `None`).
    pub fn new(from: Option<&str>) -> Self {
        SendProbe {
            from: from.map(str::to_owned),
        }
    }
}

impl GraphOperation for SendProbe {
    type Output = ();

    describe_op!("checking the right to send", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let mut m = json!({ "subject": "send-rights probe", "toRecipients": [] });
        if let Some(f) = &self.from {
            m["from"] = json!({ "emailAddress": { "address": f } });
        }
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["sendMail"]),
            Body::Json(json!({ "message": m, "saveToSentItems": false })),
        ))
    }

    status_only!();
}
