//! The two traits every connection implements, and the capabilities they declare.

use async_trait::async_trait;

use crate::message::{Acknowledgement, Batch, Cursor, MessageId, OutgoingMessage, SendReceipt};
use crate::{Error, PingReport};

/// How a source finds new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncKind {
    /// It lists unread messages in a folder; acknowledging takes them out of the list.
    UnreadPolling,
    /// It asks the service for changes since a saved state (Graph delta, EWS
    /// `SyncFolderItems`).
    Incremental,
}

/// What a message source can do, so callers can ask instead of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceCapabilities {
    /// It can count waiting messages cheaply (ping reports a number).
    pub can_count: bool,
    /// How it finds new mail.
    pub sync: SyncKind,
    /// It acknowledges many messages in one round trip. The handler's pipeline then gives it
    /// a page's acknowledgements together through
    /// [`MessageSource::acknowledge_many`]; otherwise it acknowledges each message on its own,
    /// concurrently.
    pub batch_acknowledge: bool,
    /// The most messages one fetch returns.
    pub max_batch: usize,
    /// It can store raw MIME into a mailbox (import), not only read it.
    pub raw_mime_import: bool,
    /// Its cursors stay valid while messages are acknowledged: the page after a cursor is the
    /// same whether or not messages of earlier pages were acknowledged meanwhile (a source
    /// that pages a saved set by arrival, as graph-mail's delta mode and ews-mail's sync mode
    /// do; not one that lists unread mail by offset). The handler's pipeline then fetches the
    /// next page while it handles and acknowledges the current one, and follows
    /// [`Batch::next`](crate::Batch::next) to the end of the pass instead of starting a new
    /// pass after each page it acknowledged.
    pub stable_cursors: bool,
}

impl SourceCapabilities {
    /// Capabilities of a source that polls unread mail and can count it.
    pub fn unread_polling(max_batch: usize) -> Self {
        SourceCapabilities {
            can_count: true,
            sync: SyncKind::UnreadPolling,
            batch_acknowledge: false,
            max_batch,
            raw_mime_import: false,
            stable_cursors: false,
        }
    }

    /// Sets batch acknowledgement.
    pub fn with_batch_acknowledge(mut self, yes: bool) -> Self {
        self.batch_acknowledge = yes;
        self
    }

    /// Sets counting.
    pub fn with_counting(mut self, yes: bool) -> Self {
        self.can_count = yes;
        self
    }

    /// Sets raw MIME import.
    pub fn with_raw_mime_import(mut self, yes: bool) -> Self {
        self.raw_mime_import = yes;
        self
    }

    /// Sets the sync kind.
    pub fn with_sync(mut self, sync: SyncKind) -> Self {
        self.sync = sync;
        self
    }

    /// Sets whether cursors stay valid while messages are acknowledged.
    pub fn with_stable_cursors(mut self, yes: bool) -> Self {
        self.stable_cursors = yes;
        self
    }

    /// The same capabilities for an incremental source that pages the waiting messages of its
    /// saved state ([`waiting::Waiting`](crate::waiting::Waiting)): [`SyncKind::Incremental`],
    /// and stable cursors, since the set is paged by arrival and acknowledging a message does
    /// not move later pages.
    ///
    /// ```
    /// use connector::{SourceCapabilities, SyncKind};
    ///
    /// let caps = SourceCapabilities::unread_polling(100).with_incremental_sync();
    /// assert_eq!(caps.sync, SyncKind::Incremental);
    /// assert!(caps.stable_cursors && caps.can_count);
    /// ```
    pub fn with_incremental_sync(self) -> Self {
        self.with_sync(SyncKind::Incremental)
            .with_stable_cursors(true)
    }
}

/// What a message outbound can do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboundCapabilities {
    /// It sends raw MIME as given (headers such as `Reply-To` and `In-Reply-To` survive).
    pub mime_send: bool,
    /// It may send with `From` set to an alias of the mailbox (the tenant's
    /// `SendFromAliasEnabled`), when known.
    pub send_from_alias: Option<bool>,
    /// It keeps a copy in Sent Items.
    pub saves_to_sent_items: bool,
    /// The largest message it sends, in bytes.
    pub max_message_bytes: u64,
}

impl OutboundCapabilities {
    /// An outbound that sends MIME up to `max_message_bytes`.
    pub fn mime(max_message_bytes: u64) -> Self {
        OutboundCapabilities {
            mime_send: true,
            send_from_alias: None,
            saves_to_sent_items: false,
            max_message_bytes,
        }
    }

    /// Sets whether sending from an alias is allowed.
    pub fn with_send_from_alias(mut self, allowed: Option<bool>) -> Self {
        self.send_from_alias = allowed;
        self
    }

    /// Sets whether a copy is kept in Sent Items.
    pub fn with_sent_items(mut self, yes: bool) -> Self {
        self.saves_to_sent_items = yes;
        self
    }
}

/// Where mail comes from: a mailbox folder read through Graph, EWS or anything else.
///
/// A fetch *pass* starts with `fetch(None, n)` and follows [`Batch::next`] until it is `None`;
/// each message appears once per pass, oldest first. A message stays waiting until it is
/// acknowledged, so a crash before [`acknowledge`](MessageSource::acknowledge) means it is
/// fetched again (at-least-once). Acknowledging during a pass may shift the positions of later
/// pages; callers that acknowledge as they go start a new pass instead of following `next`,
/// unless the source declares [`stable_cursors`](SourceCapabilities::stable_cursors).
///
/// Implementations are checked by the conformance kit (`connector::conformance`, feature
/// `conformance`).
#[async_trait]
pub trait MessageSource: Send + Sync {
    /// A name for logs and reports (`graph:helpdesk@contoso.com`).
    fn name(&self) -> String;

    /// What this source can do.
    fn capabilities(&self) -> SourceCapabilities;

    /// The cheapest real call that proves sign-in, permissions and mailbox; never fails, but
    /// reports OFFLINE with a reason.
    async fn ping(&self) -> PingReport;

    /// How many messages are waiting, or `None` if this source cannot count.
    async fn count_waiting(&self) -> Result<Option<u64>, Error>;

    /// One page of waiting messages, at most `max` (capped at the source's `max_batch`).
    async fn fetch(&self, cursor: Option<&Cursor>, max: usize) -> Result<Batch, Error>;

    /// [`fetch`](Self::fetch), handing the page over in parts as they arrive, so that a caller
    /// can start on the first messages while the rest are still being downloaded.
    ///
    /// `hand_over` is called with each part (its `messages` and `failed`, oldest first within
    /// the part; its `next` is not read), the parts in the order they arrive, which need not
    /// be the page's; the page's [`Batch::next`] is returned at the end. Together the parts
    /// hold what one `fetch` would have, each message once. An error after some parts were handed over
    /// ends the page there: those parts stay handed over, and their messages are waiting
    /// messages like any other until acknowledged.
    ///
    /// The default hands over the whole page as one part, once it is fetched. A source that
    /// downloads a page in several requests overrides it to hand each over as it arrives.
    async fn fetch_in_parts(
        &self,
        cursor: Option<&Cursor>,
        max: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        fetch_as_one_part(self, cursor, max, hand_over).await
    }

    /// Acknowledges one handled message.
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error>;

    /// Acknowledges many messages; the result has one entry per item, in order. Sources that
    /// batch override this; the default acknowledges one by one.
    async fn acknowledge_many(
        &self,
        items: &[(MessageId, Acknowledgement)],
    ) -> Vec<Result<(), Error>> {
        let mut out = Vec::with_capacity(items.len());
        for (id, ack) in items {
            out.push(self.acknowledge(id, ack).await);
        }
        out
    }
}

/// What [`MessageSource::fetch_in_parts`] does by default: fetches the page with
/// [`MessageSource::fetch`] and hands it over whole, as one part, returning its
/// [`Batch::next`].
///
/// For a source that overrides `fetch_in_parts` for some of its pages only: the others go
/// through this, as they would without the override.
pub async fn fetch_as_one_part<S: MessageSource + ?Sized>(
    source: &S,
    cursor: Option<&Cursor>,
    max: usize,
    hand_over: &(dyn Fn(Batch) + Send + Sync),
) -> Result<Option<Cursor>, Error> {
    let mut page = source.fetch(cursor, max).await?;
    let next = page.next.take();
    hand_over(page);
    Ok(next)
}

/// Where mail goes out: Graph `sendMail`, EWS `CreateItem`, SMTP.
#[async_trait]
pub trait MessageOutbound: Send + Sync {
    /// A name for logs and reports.
    fn name(&self) -> String;

    /// What this outbound can do.
    fn capabilities(&self) -> OutboundCapabilities;

    /// Proves the outbound can send as its mailbox, without sending anything.
    async fn ping(&self) -> PingReport;

    /// Sends a message. An error with
    /// [`may_have_taken_effect`](Error::may_have_taken_effect) means the message may be on its
    /// way: do not resend without checking.
    async fn send(&self, message: &OutgoingMessage) -> Result<SendReceipt, Error>;
}
