//! [`GraphSource`]: a [`MessageSource`] over one Graph mailbox folder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use connector::{
    Acknowledgement, Batch, ConnectionLog, Cursor, Error, ErrorKind, MessageId, MessageSource,
    PingReport, RawMessage, SourceCapabilities,
};

use crate::api::{self, GraphOperation, MessageMeta, OpRequest, Response};
use crate::client::{GraphClient, copy_error};
use crate::delta::{DeltaMode, DeltaState, state_key};
use crate::endpoint::Endpoint;
use crate::retry::Idempotency;
use httpcore::StateStore;

/// What [`Acknowledgement::Delete`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeleteMode {
    /// Graph `DELETE`: out of sight, recoverable by an administrator (Recoverable Items).
    #[default]
    Soft,
    /// A move to Deleted Items, where users can still see it.
    MoveToDeletedItems,
}

/// Settings of a [`GraphSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceConfig {
    /// The folder to read: a well-known name (`inbox`) or a folder id.
    pub folder: String,
    /// How deletes are done.
    pub delete: DeleteMode,
    /// The most messages one fetch returns (at most [`api::MAX_PAGE`]).
    pub max_batch: usize,
    /// Download MIME and acknowledge through JSON `$batch` (20 per round trip).
    pub use_batch: bool,
    /// Without `$batch`: single requests kept in flight at once for MIME downloads and
    /// acknowledgements (Exchange Online allows 4 per app and mailbox). Each request that ends
    /// makes room for the next, so the mailbox's slots stay busy, where a `$batch` of 20 ends
    /// with its slowest item while the others' slots wait.
    pub in_flight: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            folder: "inbox".into(),
            delete: DeleteMode::Soft,
            max_batch: 100,
            use_batch: true,
            in_flight: 4,
        }
    }
}

impl SourceConfig {
    /// Reads `folder`.
    pub fn folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = folder.into();
        self
    }

    /// Sets the delete mode.
    pub fn delete(mut self, mode: DeleteMode) -> Self {
        self.delete = mode;
        self
    }

    /// Sets the largest fetch.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.clamp(1, api::MAX_PAGE);
        self
    }

    /// Turns `$batch` on or off.
    pub fn use_batch(mut self, yes: bool) -> Self {
        self.use_batch = yes;
        self
    }

    /// Sets how many single requests run at once without `$batch` (at least 1).
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = n.max(1);
        self
    }
}

/// One request of [`pooled`], with its index.
type Pooled<'a, R> = std::pin::Pin<Box<dyn std::future::Future<Output = (usize, R)> + Send + 'a>>;

/// Runs `requests` up to `n` at a time, each that ends making room for the next at once; the
/// results in the order of their indexes. (Boxed futures: a stream mapping borrowed items
/// through a closure is not `Send` enough for `async_trait`.)
async fn pooled<R>(requests: Vec<Pooled<'_, R>>, n: usize) -> Vec<R> {
    use futures_util::StreamExt as _;
    let mut out: Vec<(usize, R)> = futures_util::stream::iter(requests)
        .buffer_unordered(n.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Well-known folder names Graph accepts in place of an id.
const WELL_KNOWN: &[&str] = &[
    "inbox",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "outbox",
    "archive",
    "msgfolderroot",
    "clutter",
    "conflicts",
    "conversationhistory",
    "localfailures",
    "serverfailures",
    "syncissues",
    "recoverableitemsdeletions",
    "scheduled",
    "searchfolders",
];

/// A message source reading the unread mail of one folder, oldest first.
///
/// ```no_run
/// use std::sync::Arc;
/// use connector::{Acknowledgement, MessageSource};
/// use graph_mail::{Cloud, Endpoint, FnTokenSource, GraphClient, GraphSource, Mailbox, SourceConfig};
///
/// # async fn run() -> Result<(), connector::Error> {
/// let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
/// let client = GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("…".into())))).build()?;
/// let source = GraphSource::new(client, SourceConfig::default());
/// println!("{}", source.ping().await);
/// let batch = source.fetch(None, 50).await?;
/// let acks: Vec<_> = batch
///     .messages
///     .iter()
///     .map(|m| (m.id.clone(), Acknowledgement::MoveTo("Processed".into())))
///     .collect();
/// for result in source.acknowledge_many(&acks).await {
///     result?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GraphSource {
    client: GraphClient,
    config: SourceConfig,
    folders: Mutex<HashMap<String, String>>,
    delta: Option<DeltaMode>,
}

impl GraphSource {
    /// A source over `client`'s mailbox.
    pub fn new(client: GraphClient, config: SourceConfig) -> Self {
        GraphSource {
            client,
            config,
            folders: Mutex::new(HashMap::new()),
            delta: None,
        }
    }

    /// Switches the source to **delta mode**: new mail is found through delta rounds of the
    /// folder (`…/mailFolders/{folder}/messages/delta`) instead of listing unread mail, with
    /// the state kept in `store` under [`state_key`]`(endpoint, folder)`.
    ///
    /// - `fetch(None, n)` runs one round (only what changed since the saved delta link; the
    ///   first round lists the whole folder and takes its *unread* messages), merges it into
    ///   the saved set of messages seen and not yet acknowledged, saves, and hands out that set
    ///   oldest first; a cursor pages through it without another round.
    /// - A message is handed over until it is acknowledged, whether or not someone reads it in
    ///   Outlook meanwhile, and a message that is already read when it first shows up (read on
    ///   arrival by a person) is still handed over. After an acknowledgement the message is
    ///   forgotten: Graph reports this source's own `isRead` change or move as another change,
    ///   and that is not handed over again, also after a restart.
    /// - `@removed` (deleted, or moved out by anyone) drops the message; an expired state
    ///   (`syncStateNotFound` / `resyncRequired`, HTTP 410) or a saved link for another host
    ///   starts a full resync that keeps the messages still waiting.
    /// - Acknowledgements work as in unread mode (mark read, move, delete, `$batch`).
    /// - `count_waiting` and `ping` run a round and count the messages waiting.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use connector::MessageSource;
    /// use graph_mail::delta::FileDeltaStore;
    /// use graph_mail::{GraphClient, GraphSource, SourceConfig};
    ///
    /// # async fn run(client: GraphClient) -> Result<(), connector::Error> {
    /// let store = Arc::new(FileDeltaStore::open("graph-delta.json")?);
    /// let source = GraphSource::new(client, SourceConfig::default().folder("inbox")).with_delta(store);
    /// let batch = source.fetch(None, 50).await?; // one delta round, then the waiting mail
    /// # Ok(()) }
    /// ```
    pub fn with_delta(mut self, store: Arc<dyn StateStore<DeltaState>>) -> Self {
        let key = state_key(self.client.endpoint(), &self.config.folder);
        self.delta = Some(DeltaMode::new(store, key));
        self
    }

    /// Whether the source runs in delta mode.
    pub fn is_delta(&self) -> bool {
        self.delta.is_some()
    }

    /// The client.
    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    /// The unread count of the folder, logging to `log` as well.
    async fn unread(&self, log: Option<&ConnectionLog>) -> Result<u64, Error> {
        let f = self
            .client
            .execute_logged(&api::GetFolder::new(&self.config.folder), log)
            .await?;
        f.unread_item_count
            .ok_or_else(|| Error::bad_response("the folder answer has no unreadItemCount"))
    }

    /// The id of a destination folder: a well-known name as is, a display name looked up
    /// among the top-level folders and created when missing.
    pub async fn resolve_folder(&self, name: &str) -> Result<String, Error> {
        let lower = name.to_ascii_lowercase();
        if WELL_KNOWN.contains(&lower.as_str()) {
            return Ok(lower);
        }
        if let Some(id) = self
            .folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&lower)
        {
            return Ok(id.clone());
        }
        let find = api::FindFolder::new(None, name);
        let found = self.client.execute(&find).await?;
        let existing = found.into_iter().find(|f| {
            f.display_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        let id = match existing {
            Some(f) => f.id,
            None => {
                let created = self
                    .client
                    .execute(&api::CreateFolder::new(None, name))
                    .await;
                match created {
                    Ok(f) => f.id,
                    // Someone created it meanwhile: look again.
                    Err(e)
                        if e.response().and_then(|r| r.server_code.as_deref())
                            == Some("ErrorFolderExists") =>
                    {
                        let again = self.client.execute(&find).await?;
                        again.into_iter().next().map(|f| f.id).ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lower, id.clone());
        Ok(id)
    }

    /// The operation of an acknowledgement (`dest`: the resolved folder of a move).
    fn ack_op(&self, id: &str, ack: &Acknowledgement, dest: Option<&str>) -> Result<AckOp, Error> {
        let kind = match (ack, dest) {
            (Acknowledgement::MarkRead, _) => AckKind::Read(api::MarkRead::new(id)),
            (Acknowledgement::MoveTo(_), Some(d)) => AckKind::Move(api::MoveMessage::new(id, d)),
            (Acknowledgement::Delete, _) => match self.config.delete {
                DeleteMode::Soft => AckKind::Delete(api::DeleteMessage::new(id)),
                DeleteMode::MoveToDeletedItems => {
                    AckKind::Move(api::MoveMessage::new(id, "deleteditems"))
                }
            },
            (other, _) => return Err(Error::unsupported(format!("acknowledgement {other}"))),
        };
        Ok(AckOp {
            what: format!("acknowledging ({ack})"),
            kind,
        })
    }

    async fn dest(&self, ack: &Acknowledgement) -> Result<Option<String>, Error> {
        match ack {
            Acknowledgement::MoveTo(name) => self.resolve_folder(name).await.map(Some),
            _ => Ok(None),
        }
    }

    async fn mime_one(&self, id: &str) -> Result<bytes::Bytes, Error> {
        self.client.execute(&api::GetMime::new(id)).await
    }

    async fn mimes(&self, metas: &[MessageMeta]) -> Vec<Result<bytes::Bytes, Error>> {
        if !self.config.use_batch || metas.len() <= 1 {
            let mut requests: Vec<Pooled<'_, _>> = Vec::with_capacity(metas.len());
            for (i, m) in metas.iter().enumerate() {
                requests.push(Box::pin(async move { (i, self.mime_one(&m.id).await) }));
            }
            return pooled(requests, self.config.in_flight).await;
        }
        let ops: Vec<api::GetMime> = metas.iter().map(|m| api::GetMime::new(&m.id)).collect();
        let mut out = self.client.batch("downloading messages", &ops).await;
        // A batch answer that could not be read (one message over the body cap makes the whole
        // answer too big) fails every item in it: download those one by one, so only the
        // message at fault stays failed.
        for (slot, m) in out.iter_mut().zip(metas) {
            if matches!(slot, Err(e) if e.kind() == ErrorKind::BadResponse) {
                *slot = self.mime_one(&m.id).await;
            }
        }
        out
    }
}

fn to_raw(meta: MessageMeta, mime: Vec<u8>) -> RawMessage {
    let mut recipients = meta.to;
    recipients.extend(meta.cc);
    let mut m = RawMessage::new(MessageId::new(meta.id), mime).with_recipients(recipients);
    if let Some(imid) = meta.internet_message_id {
        m = m.with_internet_message_id(imid);
    }
    if let Some(t) = meta.received {
        m = m.with_received(t);
    }
    m
}

#[async_trait]
impl MessageSource for GraphSource {
    fn name(&self) -> String {
        match self.client.endpoint().mailbox() {
            crate::Mailbox::Me => format!("graph:me/{}", self.config.folder),
            crate::Mailbox::User(u) => format!("graph:{u}/{}", self.config.folder),
        }
    }

    fn capabilities(&self) -> SourceCapabilities {
        let caps = SourceCapabilities::unread_polling(self.config.max_batch)
            .with_batch_acknowledge(self.config.use_batch);
        if self.delta.is_some() {
            caps.with_incremental_sync()
        } else {
            caps
        }
    }

    async fn ping(&self) -> PingReport {
        let log = ConnectionLog::default();
        let counted = match &self.delta {
            None => self.unread(Some(&log)).await,
            // The folder proves token, permissions and mailbox; the round counts what waits.
            Some(d) => match self.unread(Some(&log)).await {
                Ok(_) => d
                    .refresh(&self.client, &self.config.folder, Some(&log))
                    .await
                    .map(|n| n as u64),
                Err(e) => Err(e),
            },
        };
        match counted {
            Ok(n) => PingReport::online(Some(n), log),
            Err(e) => PingReport::from_error(&e, log),
        }
    }

    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        match &self.delta {
            None => self.unread(None).await.map(Some),
            Some(d) => d
                .refresh(&self.client, &self.config.folder, None)
                .await
                .map(|n| Some(n as u64)),
        }
    }

    async fn fetch(&self, cursor: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        let (metas, next) = self.list(cursor, max).await?;
        let mimes = self.mimes(&metas).await;
        Ok(into_batch(metas, mimes, next))
    }

    /// Without `$batch`, each message is handed over as soon as its MIME is downloaded
    /// (those that end together, as one part), so that the handling and acknowledgement of the
    /// first ones share the mailbox's requests in flight with the downloads of the rest; with
    /// `$batch`, the whole page at once.
    async fn fetch_in_parts(
        &self,
        cursor: Option<&Cursor>,
        max: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        if self.config.use_batch {
            return connector::fetch_as_one_part(self, cursor, max, hand_over).await;
        }
        use futures_util::StreamExt as _;
        let (metas, next) = self.list(cursor, max).await?;
        let mut requests: Vec<Pooled<'_, _>> = Vec::with_capacity(metas.len());
        for (i, m) in metas.iter().enumerate() {
            let id = m.id.clone();
            requests.push(Box::pin(async move { (i, self.mime_one(&id).await) }));
        }
        let mut metas: Vec<Option<MessageMeta>> = metas.into_iter().map(Some).collect();
        let mut downloads = futures_util::stream::iter(requests)
            .buffer_unordered(self.config.in_flight.max(1))
            .ready_chunks(self.config.in_flight.max(1));
        while let Some(mut ended) = downloads.next().await {
            // Oldest first within a part, as in a page.
            ended.sort_by_key(|(i, _)| *i);
            let (part, mimes): (Vec<MessageMeta>, Vec<_>) = ended
                .into_iter()
                .filter_map(|(i, mime)| Some((metas.get_mut(i)?.take()?, mime)))
                .unzip();
            hand_over(into_batch(part, mimes, None));
        }
        Ok(next.map(Cursor::new))
    }

    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        if *ack == Acknowledgement::Keep {
            self.may_keep()?;
        } else {
            self.acknowledge_one(id, ack).await?;
        }
        if let Some(d) = &self.delta {
            d.acknowledged(&[id.as_str()]).await;
        }
        Ok(())
    }

    async fn acknowledge_many(
        &self,
        items: &[(MessageId, Acknowledgement)],
    ) -> Vec<Result<(), Error>> {
        // `Keep` makes no request: only the others are sent.
        let sent: Vec<(MessageId, Acknowledgement)> = items
            .iter()
            .filter(|(_, a)| *a != Acknowledgement::Keep)
            .cloned()
            .collect();
        let mut answers = self.acknowledge_many_inner(&sent).await.into_iter();
        let results: Vec<Result<(), Error>> = items
            .iter()
            .map(|(_, a)| {
                if *a == Acknowledgement::Keep {
                    self.may_keep()
                } else {
                    answers
                        .next()
                        .unwrap_or_else(|| Err(Error::bad_response("an item got no result")))
                }
            })
            .collect();
        if let Some(d) = &self.delta {
            let done: Vec<&str> = items
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|((id, _), _)| id.as_str())
                .collect();
            d.acknowledged(&done).await;
        }
        results
    }
}

/// Pairs listed messages with their downloaded MIME: an empty or failed download is a failure
/// of that message only. Unread polling and delta share it.
fn into_batch(
    metas: Vec<MessageMeta>,
    mimes: Vec<Result<bytes::Bytes, Error>>,
    next: Option<String>,
) -> Batch {
    let mut batch = Batch::new(Vec::new(), next.map(Cursor::new));
    for (meta, mime) in metas.into_iter().zip(mimes) {
        match mime {
            // The response that held the bytes is gone, so this takes the buffer over.
            Ok(m) if !m.is_empty() => batch.messages.push(to_raw(meta, Vec::from(m))),
            Ok(_) => batch.failed.push((
                MessageId::new(meta.id),
                Error::bad_response("Graph returned an empty MIME message"),
            )),
            Err(e) => batch.failed.push((MessageId::new(meta.id), e)),
        }
    }
    batch
}

impl GraphSource {
    /// The messages of the page at `cursor` (at most `max`) and the cursor after it: unread
    /// mail as Graph lists it, or in delta mode the saved pending set after a delta round.
    async fn list(
        &self,
        cursor: Option<&Cursor>,
        max: usize,
    ) -> Result<(Vec<MessageMeta>, Option<String>), Error> {
        let max = max.clamp(1, self.config.max_batch);
        if let Some(d) = &self.delta {
            if cursor.is_none() {
                d.refresh(&self.client, &self.config.folder, None).await?;
            }
            let page = d.page(cursor.map(Cursor::as_str), max).await?;
            return Ok((page.metas, page.next));
        }
        let page = match cursor {
            Some(c) => {
                self.client
                    .execute(&api::FollowLink::new(c.as_str()))
                    .await?
            }
            None => {
                let list = api::ListUnread::new(&self.config.folder, max);
                self.client.execute(&list).await?
            }
        };
        if page.messages.len() > max && cursor.is_none() {
            return Err(Error::bad_response(format!(
                "asked Graph for {max} messages and got {}",
                page.messages.len()
            )));
        }
        Ok((page.messages, page.next_link))
    }

    /// [`Acknowledgement::Keep`] leaves the message as it is, which only delta mode can do:
    /// the deltaLink has moved past it. Listing unread mail would hand it out again and again.
    fn may_keep(&self) -> Result<(), Error> {
        if self.delta.is_some() {
            Ok(())
        } else {
            Err(Error::configuration(
                "the acknowledgement \"keep\" needs delta mode: listing unread mail would hand \
                 the same message out on every pass",
            ))
        }
    }

    async fn acknowledge_one(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        let dest = self.dest(ack).await?;
        let op = self.ack_op(id.as_str(), ack, dest.as_deref())?;
        self.client.execute(&op).await
    }

    async fn acknowledge_many_inner(
        &self,
        items: &[(MessageId, Acknowledgement)],
    ) -> Vec<Result<(), Error>> {
        if !self.config.use_batch || items.len() <= 1 {
            let mut requests: Vec<Pooled<'_, _>> = Vec::with_capacity(items.len());
            for (i, (id, ack)) in items.iter().enumerate() {
                requests.push(Box::pin(
                    async move { (i, self.acknowledge_one(id, ack).await) },
                ));
            }
            return pooled(requests, self.config.in_flight).await;
        }
        // Resolve each destination folder once, before batching.
        let mut dests: HashMap<String, Result<String, Error>> = HashMap::new();
        for (_, ack) in items {
            if let Acknowledgement::MoveTo(name) = ack
                && !dests.contains_key(name)
            {
                let d = self.resolve_folder(name).await;
                dests.insert(name.clone(), d);
            }
        }
        let mut prepared: Vec<Result<AckOp, Error>> = Vec::with_capacity(items.len());
        for (id, ack) in items {
            let dest = match ack {
                Acknowledgement::MoveTo(name) => match dests.get(name) {
                    Some(Ok(d)) => Some(d.as_str()),
                    Some(Err(e)) => {
                        prepared.push(Err(copy_error(e)));
                        continue;
                    }
                    None => None,
                },
                _ => None,
            };
            prepared.push(self.ack_op(id.as_str(), ack, dest));
        }
        let mut slots: Vec<Option<Error>> = Vec::with_capacity(prepared.len());
        let mut to_send: Vec<AckOp> = Vec::with_capacity(prepared.len());
        for p in prepared {
            match p {
                Ok(op) => {
                    to_send.push(op);
                    slots.push(None);
                }
                Err(e) => slots.push(Some(e)),
            }
        }
        let mut answers = self
            .client
            .batch("acknowledging messages", &to_send)
            .await
            .into_iter();
        slots
            .into_iter()
            .map(|failed| match failed {
                Some(e) => Err(e),
                None => answers
                    .next()
                    .unwrap_or_else(|| Err(Error::bad_response("a batch item got no result"))),
            })
            .collect()
    }
}

/// An acknowledgement as one operation, so that a page's marks, moves and deletes share
/// `$batch` round trips; its errors say which acknowledgement failed.
#[derive(Debug)]
struct AckOp {
    what: String,
    kind: AckKind,
}

#[derive(Debug)]
enum AckKind {
    Read(api::MarkRead),
    Move(api::MoveMessage),
    Delete(api::DeleteMessage),
}

impl AckOp {
    fn inner(&self) -> &dyn GraphOperation<Output = ()> {
        match &self.kind {
            AckKind::Read(op) => op,
            AckKind::Move(op) => op,
            AckKind::Delete(op) => op,
        }
    }
}

impl GraphOperation for AckOp {
    type Output = ();

    fn what(&self) -> &str {
        &self.what
    }

    fn idempotency(&self) -> Idempotency {
        self.inner().idempotency()
    }

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        self.inner().build(ep)
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<(), Error> {
        self.inner().parse(ep, response)
    }
}

/// Whether an error means the message is gone (for callers deciding whether to re-fetch).
pub fn is_gone(e: &Error) -> bool {
    e.kind() == ErrorKind::NotFound
}
