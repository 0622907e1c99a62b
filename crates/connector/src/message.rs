//! Messages as sources hand them out and outbounds take them in.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;

/// A source's stable id for a message: the one to acknowledge it by.
///
/// Connections use the most stable id the service offers (Graph's immutable id, an EWS item id),
/// so that an id read before a crash still names the same message after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Wraps a service's id.
    pub fn new(id: impl Into<String>) -> Self {
        MessageId(id.into())
    }

    /// The id as the service gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        MessageId(s.to_owned())
    }
}

/// A message waiting in a source: its RFC 822 bytes and the few properties a router needs
/// without parsing them.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawMessage {
    /// The id to acknowledge the message by.
    pub id: MessageId,
    /// The whole message as RFC 822 / MIME bytes.
    pub mime: Vec<u8>,
    /// The `Message-ID` header's value, as the service reports it.
    pub internet_message_id: Option<String>,
    /// To and Cc recipients as the service reports them (addresses only).
    pub recipients: Vec<String>,
    /// When the service received the message.
    pub received: Option<OffsetDateTime>,
}

impl RawMessage {
    /// A message with an id and its bytes; other properties empty.
    pub fn new(id: MessageId, mime: Vec<u8>) -> Self {
        RawMessage {
            id,
            mime,
            internet_message_id: None,
            recipients: Vec::new(),
            received: None,
        }
    }

    /// Sets the internet message id.
    pub fn with_internet_message_id(mut self, id: impl Into<String>) -> Self {
        self.internet_message_id = Some(id.into());
        self
    }

    /// Sets the recipients.
    pub fn with_recipients(mut self, recipients: Vec<String>) -> Self {
        self.recipients = recipients;
        self
    }

    /// Sets the received time.
    pub fn with_received(mut self, at: OffsetDateTime) -> Self {
        self.received = Some(at);
        self
    }
}

impl fmt::Debug for RawMessage {
    // The body may be megabytes; show its size instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMessage")
            .field("id", &self.id)
            .field("mime_bytes", &self.mime.len())
            .field("internet_message_id", &self.internet_message_id)
            .field("recipients", &self.recipients)
            .field("received", &self.received)
            .finish()
    }
}

/// Where a fetch pass continues: an opaque position the source hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps a source's position (a `@odata.nextLink`, an offset).
    pub fn new(position: impl Into<String>) -> Self {
        Cursor(position.into())
    }

    /// The position as the source wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of waiting messages.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Batch {
    /// The messages, oldest first.
    pub messages: Vec<RawMessage>,
    /// Messages that were listed but could not be fetched, each with its error. They are not
    /// dropped: a caller can report them and they stay waiting in the mailbox.
    pub failed: Vec<(MessageId, Error)>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

impl Batch {
    /// A batch of messages with an optional next page.
    pub fn new(messages: Vec<RawMessage>, next: Option<Cursor>) -> Self {
        Batch {
            messages,
            failed: Vec::new(),
            next,
        }
    }
}

/// How to acknowledge a handled message, so that it is not fetched again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "folder", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Acknowledgement {
    /// Mark it read (the source fetches unread mail).
    MarkRead,
    /// Move it to a folder, by well-known name (`archive`, `deleteditems`) or display name;
    /// the source creates the folder when missing.
    MoveTo(String),
    /// Delete it (as the source is configured: soft delete or move to Deleted Items).
    Delete,
    /// Leave it as it is: no request at all. Only for a source that does not hand the same
    /// message out twice by itself (Graph delta sync: the deltaLink moves past it), where the
    /// sync state and the ledger are the record; a source that lists unread mail would list
    /// it again on every pass.
    Keep,
}

impl fmt::Display for Acknowledgement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Acknowledgement::MarkRead => f.write_str("mark read"),
            Acknowledgement::MoveTo(folder) => write!(f, "move to {folder}"),
            Acknowledgement::Delete => f.write_str("delete"),
            Acknowledgement::Keep => f.write_str("keep"),
        }
    }
}

/// The envelope of an outgoing message: who it is from and to whom it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The sender address (`From`).
    pub from: String,
    /// Every recipient (To, Cc and Bcc).
    pub to: Vec<String>,
}

impl Envelope {
    /// An envelope.
    pub fn new(from: impl Into<String>, to: Vec<String>) -> Self {
        Envelope {
            from: from.into(),
            to,
        }
    }
}

/// A message to send: built with lettre, or raw MIME with its envelope.
///
/// ```
/// use connector::OutgoingMessage;
/// use lettre::message::Mailbox;
///
/// let msg = lettre::Message::builder()
///     .from("Billing <billing@contoso.example>".parse::<Mailbox>()?)
///     .reply_to("billing@contoso.example".parse::<Mailbox>()?)
///     .to("customer@fabrikam.example".parse::<Mailbox>()?)
///     .subject("We received your request")
///     .body(String::from("Thanks, we are on it."))?;
/// let out = OutgoingMessage::from(msg);
/// assert_eq!(out.envelope().from, "billing@contoso.example");
/// assert!(String::from_utf8_lossy(&out.mime()).contains("Subject: We received your request"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct OutgoingMessage {
    envelope: Envelope,
    mime: Vec<u8>,
}

impl OutgoingMessage {
    /// A raw MIME message and its envelope.
    pub fn raw(envelope: Envelope, mime: Vec<u8>) -> Self {
        OutgoingMessage { envelope, mime }
    }

    /// The envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The message as RFC 822 / MIME bytes.
    pub fn mime(&self) -> &[u8] {
        &self.mime
    }
}

impl From<lettre::Message> for OutgoingMessage {
    fn from(msg: lettre::Message) -> Self {
        let env = msg.envelope();
        let envelope = Envelope {
            from: env.from().map(|a| a.to_string()).unwrap_or_default(),
            to: env.to().iter().map(|a| a.to_string()).collect(),
        };
        OutgoingMessage {
            envelope,
            mime: msg.formatted(),
        }
    }
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("envelope", &self.envelope)
            .field("mime_bytes", &self.mime.len())
            .finish()
    }
}

/// What a send returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendReceipt {
    /// The service's id for the sent message, when it gives one.
    pub id: Option<String>,
    /// The `From` address the service was asked to use.
    pub from: Option<String>,
}

impl SendReceipt {
    /// A receipt with the sender used.
    pub fn new(from: impl Into<String>) -> Self {
        SendReceipt {
            id: None,
            from: Some(from.into()),
        }
    }
}
