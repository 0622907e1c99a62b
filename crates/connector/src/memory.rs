//! An in-memory mailbox with a source and an outbound over it, for integrators' tests.
//!
//! ```
//! use connector::memory::MemoryMailbox;
//! use connector::{Acknowledgement, MessageSource};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mailbox = MemoryMailbox::new("helpdesk@contoso.example");
//! mailbox.deliver(b"Message-ID: <1@x>\r\nTo: billing@contoso.example\r\nSubject: hi\r\n\r\nbody".to_vec());
//! let source = mailbox.source();
//! let batch = source.fetch(None, 10).await?;
//! assert_eq!(batch.messages.len(), 1);
//! assert_eq!(batch.messages[0].recipients, vec!["billing@contoso.example".to_string()]);
//! source.acknowledge(&batch.messages[0].id, &Acknowledgement::MarkRead).await?;
//! assert_eq!(source.count_waiting().await?, Some(0));
//! # Ok::<(), connector::Error>(())
//! # }).unwrap();
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::log::ConnectionLog;
use crate::message::{
    Acknowledgement, Batch, Cursor, MessageId, OutgoingMessage, RawMessage, SendReceipt,
};
use crate::traits::{MessageOutbound, MessageSource, OutboundCapabilities, SourceCapabilities};
use crate::{Error, PingReport};

/// Where a stored message is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredMessage {
    /// Its id.
    pub id: MessageId,
    /// Its folder (`inbox`, `deleteditems` or a display name).
    pub folder: String,
    /// Whether it is read.
    pub is_read: bool,
    /// Its bytes.
    pub mime: Vec<u8>,
    /// Its `Message-ID`.
    pub internet_message_id: Option<String>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    messages: Vec<StoredMessage>,
    sent: Vec<OutgoingMessage>,
    offline: Option<String>,
}

/// A mailbox held in memory. Cloning shares it.
#[derive(Clone)]
pub struct MemoryMailbox {
    address: String,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMailbox")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl MemoryMailbox {
    /// An empty mailbox with this address.
    pub fn new(address: impl Into<String>) -> Self {
        MemoryMailbox {
            address: address.into(),
            state: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mailbox's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Delivers a message to the inbox, unread, and returns its id.
    pub fn deliver(&self, mime: Vec<u8>) -> MessageId {
        let mut st = self.lock();
        st.next_id += 1;
        let id = MessageId::new(format!("mem-{}", st.next_id));
        let internet_message_id = header_value(&mime, "message-id");
        st.messages.push(StoredMessage {
            id: id.clone(),
            folder: "inbox".into(),
            is_read: false,
            mime,
            internet_message_id,
        });
        id
    }

    /// Every stored message, in delivery order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.lock().messages.clone()
    }

    /// Finds a message by its `Message-ID`.
    pub fn find(&self, internet_message_id: &str) -> Option<StoredMessage> {
        self.lock()
            .messages
            .iter()
            .find(|m| m.internet_message_id.as_deref() == Some(internet_message_id))
            .cloned()
    }

    /// Every message the outbound sent.
    pub fn sent(&self) -> Vec<OutgoingMessage> {
        self.lock().sent.clone()
    }

    /// Makes ping and every call fail with this reason (`None` restores service).
    pub fn set_offline(&self, reason: Option<&str>) {
        self.lock().offline = reason.map(str::to_owned);
    }

    /// A source reading this mailbox's unread inbox.
    pub fn source(&self) -> MemorySource {
        MemorySource {
            mailbox: self.clone(),
            log: ConnectionLog::default(),
        }
    }

    /// An outbound sending as this mailbox; mail to its own address is delivered to its inbox.
    pub fn outbound(&self) -> MemoryOutbound {
        MemoryOutbound {
            mailbox: self.clone(),
        }
    }

    fn check_online(&self) -> Result<(), Error> {
        match &self.lock().offline {
            Some(reason) => Err(Error::auth(crate::AuthProblem::new(
                reason.clone(),
                "restore the mailbox's access",
            ))),
            None => Ok(()),
        }
    }
}

/// The first value of header `name` (lowercase) in `mime`, unfolded; `None` if absent.
fn header_value(mime: &[u8], name: &str) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(mime)?;
    parsed.headers().iter().find_map(|h| {
        if h.name().eq_ignore_ascii_case(name) {
            match h.value() {
                mail_parser::HeaderValue::Text(t) => {
                    Some(format!("<{}>", t.trim_matches(['<', '>'])))
                }
                _ => None,
            }
        } else {
            None
        }
    })
}

fn recipients(mime: &[u8]) -> Vec<String> {
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(mime) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for addr in [parsed.to(), parsed.cc()].into_iter().flatten() {
        for a in addr.iter() {
            if let Some(email) = a.address() {
                out.push(email.to_owned());
            }
        }
    }
    out
}

/// The unread inbox of a [`MemoryMailbox`].
#[derive(Debug, Clone)]
pub struct MemorySource {
    mailbox: MemoryMailbox,
    log: ConnectionLog,
}

impl MemorySource {
    fn waiting(&self) -> Vec<StoredMessage> {
        self.mailbox
            .lock()
            .messages
            .iter()
            .filter(|m| m.folder == "inbox" && !m.is_read)
            .cloned()
            .collect()
    }
}

/// The most messages one fetch returns from memory.
pub const MEMORY_MAX_BATCH: usize = 100;

#[async_trait]
impl MessageSource for MemorySource {
    fn name(&self) -> String {
        format!("memory:{}", self.mailbox.address)
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::unread_polling(MEMORY_MAX_BATCH).with_raw_mime_import(true)
    }

    async fn ping(&self) -> PingReport {
        match self.mailbox.check_online() {
            Ok(()) => PingReport::online(Some(self.waiting().len() as u64), self.log.clone()),
            Err(e) => PingReport::from_error(&e, self.log.clone()),
        }
    }

    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        self.mailbox.check_online()?;
        Ok(Some(self.waiting().len() as u64))
    }

    async fn fetch(&self, cursor: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        self.mailbox.check_online()?;
        let start = match cursor {
            None => 0,
            Some(c) => c.as_str().parse::<usize>().map_err(|_| {
                Error::configuration(format!("not a memory cursor: {:?}", c.as_str()))
            })?,
        };
        let max = max.clamp(1, MEMORY_MAX_BATCH);
        let waiting = self.waiting();
        let page: Vec<RawMessage> = waiting
            .iter()
            .skip(start)
            .take(max)
            .map(|m| {
                let mut raw = RawMessage::new(m.id.clone(), m.mime.clone())
                    .with_recipients(recipients(&m.mime))
                    .with_received(OffsetDateTime::UNIX_EPOCH);
                raw.internet_message_id = m.internet_message_id.clone();
                raw
            })
            .collect();
        let end = start + page.len();
        let next = (end < waiting.len()).then(|| Cursor::new(end.to_string()));
        Ok(Batch::new(page, next))
    }

    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.mailbox.check_online()?;
        let mut st = self.mailbox.lock();
        let Some(pos) = st.messages.iter().position(|m| &m.id == id) else {
            return Err(Error::not_found(format!(
                "no message {id} in {}",
                self.mailbox.address
            )));
        };
        match ack {
            Acknowledgement::MarkRead => st.messages[pos].is_read = true,
            Acknowledgement::MoveTo(folder) => st.messages[pos].folder = folder.clone(),
            Acknowledgement::Delete => {
                st.messages.remove(pos);
            }
            Acknowledgement::Keep => {}
        }
        Ok(())
    }
}

/// Sends as a [`MemoryMailbox`]: records every message, and delivers those addressed to the
/// mailbox itself.
#[derive(Debug, Clone)]
pub struct MemoryOutbound {
    mailbox: MemoryMailbox,
}

#[async_trait]
impl MessageOutbound for MemoryOutbound {
    fn name(&self) -> String {
        format!("memory:{}", self.mailbox.address)
    }

    fn capabilities(&self) -> OutboundCapabilities {
        OutboundCapabilities::mime(u64::MAX).with_send_from_alias(Some(true))
    }

    async fn ping(&self) -> PingReport {
        match self.mailbox.check_online() {
            Ok(()) => PingReport::online(None, ConnectionLog::default()),
            Err(e) => PingReport::from_error(&e, ConnectionLog::default()),
        }
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<SendReceipt, Error> {
        self.mailbox.check_online()?;
        if message.envelope().to.is_empty() {
            return Err(Error::refused("the message has no recipients"));
        }
        self.mailbox.lock().sent.push(message.clone());
        let own = &self.mailbox.address;
        if message
            .envelope()
            .to
            .iter()
            .any(|t| t.eq_ignore_ascii_case(own))
        {
            self.mailbox.deliver(message.mime().to_vec());
        }
        Ok(SendReceipt::new(message.envelope().from.clone()))
    }
}
