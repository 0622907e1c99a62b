//! [`EwsSource`]: the `connector` source over EWS (the notes on round trips and memory are
//! [`EwsSource`]'s).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use connector::{
    Acknowledgement, Batch, Cursor, Error, ErrorKind, MessageId, MessageSource, PingReport,
    RawMessage, SourceCapabilities,
};
use futures_util::stream::{self, StreamExt};
use tokio::sync::{RwLock, Semaphore};

use crate::client::EwsClient;
use crate::config::MailboxAccess;
use crate::error::{CallContext, EwsError, ResponseError, into_connector};
use crate::ops::{CreateFolder, DeleteType, FindFolder, FindItem, GetFolder};
use crate::sync::{SourceSyncState, SyncMode};
use crate::types::{FolderId, Item, ItemId};
use httpcore::StateStore;

mod acks;
mod download;
mod pages;

/// The most ids one FindItem lists, and so the largest fetch of a source listing with one
/// FindItem a fetch (without [`EwsSource::with_item_chunk`]): Exchange Online's
/// `EWSFindCountLimit` (larger pages are pointless).
pub const MAX_PAGE: usize = 1000;

/// The largest [`EwsSource::with_max_batch`]: a fetch of more than [`MAX_PAGE`] is listed in
/// FindItem pages ([`EwsSource::with_item_chunk`]) or paged from sync mode's saved set.
pub const MAX_BATCH: usize = 10_000;

/// Items per batched request: one GetItem with MIME, and one UpdateItem, MoveItem or
/// DeleteItem of `acknowledge_many`, carries at most this many items (exchangelib's default
/// chunk size; EWS documents no hard cap, and 100 MIME bodies keep each response moderate).
pub const ITEM_CHUNK: usize = 100;

/// The most messages one fetch returns unless [`EwsSource::with_max_batch`] says otherwise.
pub const DEFAULT_MAX_BATCH: usize = 100;

/// GetItem chunks of one fetch in flight at once, unless
/// [`EwsSource::with_fetch_concurrency`] says otherwise.
pub const DEFAULT_FETCH_CONCURRENCY: usize = 4;

/// The most requests of one fetch (or of one `acknowledge_many`) in flight at once: Exchange
/// Online's 27 concurrent connections per mailbox (`EWSMaxConcurrency`).
pub const MAX_FETCH_CONCURRENCY: usize = 27;

/// Well-known folder names a [`Acknowledgement::MoveTo`] may use directly.
const WELL_KNOWN: &[&str] = &[
    "inbox",
    "archive",
    "deleteditems",
    "junkemail",
    "drafts",
    "sentitems",
    "outbox",
];

pub(crate) fn item_error(e: ResponseError, what: &str) -> Error {
    into_connector(EwsError::Response(e), what, &CallContext::default())
}

/// A person-readable reason for an OFFLINE ping.
pub(crate) fn offline_reason(e: &Error) -> String {
    let code = e
        .response()
        .and_then(|r| r.server_code.clone())
        .unwrap_or_default();
    match code.as_str() {
        "ErrorImpersonateUserDenied"
        | "ErrorImpersonationFailed"
        | "ErrorInvalidExchangeImpersonationHeaderData" => format!(
            "impersonation denied: the application may not act as this mailbox ({code}); grant full_access_as_app and check the RBAC for Applications scope. {e}"
        ),
        "ErrorNonExistentMailbox" | "ErrorMailboxNotFound" | "ErrorInvalidUser" => format!(
            "mailbox not found: check the address (use the primary SMTP address, not an alias). {e}"
        ),
        "ErrorAccessDenied" => format!("access denied to this mailbox: {e}"),
        _ => e.to_string(),
    }
}

/// Reads a mailbox folder's unread mail over EWS.
///
/// Fetching lists up to `max_batch` unread messages oldest first with one FindItem, then
/// downloads them with batched GetItems of [`ITEM_CHUNK`] (MIME and routing properties), a few
/// chunks at a time. An item GetItem cannot return (deleted meanwhile, no MIME) is reported in
/// [`Batch::failed`] and the others are delivered. Acknowledging batches, [`ITEM_CHUNK`] per
/// request: UpdateItem for mark-reads, MoveItem per destination folder, DeleteItem for deletes.
///
/// ## Round trips of a fetch
///
/// The fewest requests EWS allows for reading and acknowledging N messages are one FindItem per
/// [`MAX_PAGE`] ids (Exchange Online's `EWSFindCountLimit`), one GetItem with MIME per
/// [`ITEM_CHUNK`] items and one UpdateItem per [`ITEM_CHUNK`] acknowledgements. A fetch of up to
/// [`EwsSource::with_max_batch`] messages does exactly that: one FindItem lists them all, and
/// their MIME comes in GetItem chunks of [`ITEM_CHUNK`], up to
/// [`EwsSource::with_fetch_concurrency`] chunks at a time. `acknowledge_many` sends
/// [`ITEM_CHUNK`] items per request, as many requests at a time.
///
/// ## Many small requests at once
///
/// The fewest requests are not the fastest where each request's time grows with what it
/// carries, as against Exchange Online, which allows 27 connections per mailbox:
/// [`EwsSource::with_item_chunk`] lists a fetch in FindItem pages of that many items, each
/// page's GetItem following its listing, up to [`EwsSource::with_fetch_concurrency`] requests
/// at once, and acknowledges in requests of that many items, as many at once. It spends more
/// requests per message (a FindItem per page) to keep more connections busy.
///
/// The other way to list 1,000 ids at a time, keeping a FindItem listing between `fetch(None)`
/// calls and handing it out 100 at a time, was not chosen: a cached listing goes stale as soon as
/// anyone else reads, moves or deletes mail in the folder, and every cached id would need to be
/// re-checked to keep the promise that a pass never serves a message twice. A larger fetch keeps
/// the source stateless between fetches (only change keys are remembered), at the price of
/// memory: **one fetch holds up to `max_batch` MIME bodies**, so choose the batch (the caller's
/// `max` and the source's `max_batch`) with the mailbox's message sizes in mind. The default
/// stays at [`DEFAULT_MAX_BATCH`].
#[derive(Debug)]
pub struct EwsSource {
    client: EwsClient,
    folder: String,
    delete_type: DeleteType,
    max_batch: usize,
    fetch_concurrency: usize,
    /// `fetch_concurrency` permits, one held by each listing, download and acknowledgement
    /// request, so that a fetch and acknowledgements running at once (a pipeline fetching
    /// ahead) stay within it together.
    slots: Arc<Semaphore>,
    /// `with_item_chunk`: items per request, FindItem pages listed in parallel.
    item_chunk: Option<usize>,
    /// How many unread messages the folder held at the last count or listing, less those
    /// acknowledged since ([`pages::NO_HINT`]: not known): lets a fetch in pages list them all
    /// at once.
    waiting_hint: AtomicU64,
    /// Messages acknowledged out of the unread listing so far: a listing's count less those
    /// acknowledged after it answered is what is waiting now.
    acked: AtomicU64,
    /// Held for writing while an unread fetch in pages lists, and for reading by each
    /// `acknowledge_many`: an acknowledgement takes a message out of the unread listing, so it
    /// must not run while a fetch lists pages by offset (nor a listing start while it runs).
    order: RwLock<()>,
    change_keys: Mutex<HashMap<String, String>>,
    folders: Mutex<HashMap<String, FolderId>>,
    sync: Option<SyncMode>,
}

impl EwsSource {
    /// A source reading the mailbox's inbox.
    pub fn new(client: EwsClient) -> Self {
        EwsSource {
            client,
            folder: "inbox".into(),
            delete_type: DeleteType::MoveToDeletedItems,
            max_batch: DEFAULT_MAX_BATCH,
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY,
            slots: Arc::new(Semaphore::new(DEFAULT_FETCH_CONCURRENCY)),
            item_chunk: None,
            waiting_hint: AtomicU64::new(pages::NO_HINT),
            acked: AtomicU64::new(0),
            order: RwLock::new(()),
            change_keys: Mutex::new(HashMap::new()),
            folders: Mutex::new(HashMap::new()),
            sync: None,
        }
    }

    /// Reads another well-known folder.
    pub fn with_folder(mut self, well_known: impl Into<String>) -> Self {
        self.folder = well_known.into();
        let key = self.sync_key();
        self.sync = self.sync.take().map(|s| s.with_key(key));
        self
    }

    /// Switches the source to **sync mode**: new mail is found through `SyncFolderItems` from
    /// a saved SyncState instead of listing unread mail, with the state kept in `store` under
    /// [`sync_key`](Self::sync_key) (see [`sync`](crate::sync)).
    ///
    /// - `fetch(None, n)` catches up (SyncFolderItems until the folder is in sync, each page
    ///   saved before the next), merges the created items into the saved set of messages seen
    ///   and not yet acknowledged, and hands out that set oldest first; a cursor pages through
    ///   it without another sync. Mail that arrived while the process was stopped, or while
    ///   push mode's streaming connection was down, is in the next catch-up.
    /// - The first sync (no saved state) lists the whole folder and takes its *unread*
    ///   messages. Afterwards every created item is new mail, also one someone read before the
    ///   sync saw it. Read-flag changes (this source's own mark-read among them) and updates
    ///   are not; a deleted item, or one moved out by anyone, stops waiting.
    /// - A message is handed over until it is acknowledged (or has left the folder), also
    ///   after a restart; the handler's ledger absorbs a repeat after a crash between handing
    ///   over and acknowledging.
    /// - A SyncState Exchange no longer accepts (`ErrorInvalidSyncStateData`) starts the sync
    ///   from the beginning, keeping the messages still waiting.
    /// - [`Acknowledgement::Keep`] is accepted (the SyncState has moved past the message);
    ///   `count_waiting` and `ping` catch up and count the waiting messages.
    pub fn with_sync_state(
        mut self,
        store: std::sync::Arc<dyn StateStore<SourceSyncState>>,
    ) -> Self {
        self.sync = Some(SyncMode::new(store, self.sync_key()));
        self
    }

    /// Whether the source runs in sync mode.
    pub fn is_sync(&self) -> bool {
        self.sync.is_some()
    }

    /// The key a sync-mode source keeps its state under: the mailbox's address (lower case)
    /// and the folder, `helpdesk@contoso.com/inbox`.
    pub fn sync_key(&self) -> String {
        format!(
            "{}/{}",
            self.access().address().to_ascii_lowercase(),
            self.folder.to_ascii_lowercase()
        )
    }

    /// How [`Acknowledgement::Delete`] deletes (default: move to Deleted Items).
    pub fn with_delete_type(mut self, t: DeleteType) -> Self {
        self.delete_type = t;
        self
    }

    /// The most messages one fetch returns, 1 to [`MAX_BATCH`] (default
    /// [`DEFAULT_MAX_BATCH`]); the capabilities report it. A fetch listed with one FindItem
    /// (without [`with_item_chunk`](Self::with_item_chunk), and not in sync mode) returns at
    /// most [`MAX_PAGE`]: a whole FindItem page per fetch, the fewest round trips EWS allows.
    /// A fetch holds up to that many MIME bodies in memory.
    ///
    /// More than [`MAX_PAGE`] a fetch, in FindItem pages, means fewer ends of a fetch, where
    /// the last downloads end one by one and the next listing waits for the acknowledgements:
    /// in the exo bench's model of Exchange Online, one mailbox of 10,000 with 27 requests in
    /// flight was read about 40% faster, by the bench's ingest job and by the `m365mail`
    /// handler alike, with fetches of 5,000 than of 1,000 (BENCHMARKS.md), for five times the
    /// MIME a fetch may hold.
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.clamp(1, MAX_BATCH);
        self
    }

    /// How many requests of one fetch (GetItem chunks, and with
    /// [`with_item_chunk`](Self::with_item_chunk) FindItem pages) or of one `acknowledge_many`
    /// run at once, 1 to [`MAX_FETCH_CONCURRENCY`] (default [`DEFAULT_FETCH_CONCURRENCY`]).
    /// Each is one more connection against the mailbox's EWS concurrency budget.
    pub fn with_fetch_concurrency(mut self, n: usize) -> Self {
        self.fetch_concurrency = n.clamp(1, MAX_FETCH_CONCURRENCY);
        self.slots = Arc::new(Semaphore::new(self.fetch_concurrency));
        self
    }

    /// Sends `op` holding one of the source's request slots.
    async fn call<O: crate::soap::Operation>(&self, op: &O) -> Result<O::Response, Error> {
        // The semaphore is never closed: a permit always comes.
        let _slot = self.slots.acquire().await.ok();
        self.client.call(op).await
    }

    /// Items per request, 1 to [`ITEM_CHUNK`]: each GetItem and each acknowledgement request
    /// carries at most `n`, and an unread fetch of more than `n` messages lists them in
    /// FindItem pages of `n`, up to [`with_fetch_concurrency`](Self::with_fetch_concurrency)
    /// requests in flight, each page's GetItem following its listing at once. How many pages
    /// comes from the folder's last count (`ping`, `count_waiting`, or a listing) less what was
    /// acknowledged since, so that all of them are listed at once; without a count, the first
    /// FindItem tells. When that count says fewer are waiting than pages of `n` would keep
    /// every request slot busy with, the pages are smaller, about one a slot (a mailbox of 200
    /// with 27 in flight and `n` 38: 27 pages of 8, not 6 of 38), so that the fetch does not
    /// wait on a few large downloads while the other slots are idle. The listings take the
    /// slots first and each page's download follows its listing; while a fetch lists, the
    /// source's `acknowledge_many` waits (and a fetch waits for those running): a caller that
    /// acknowledges the first pages as they come (the handler does) would otherwise shift the
    /// unread listing under the later pages' listings, which would pass over messages.
    ///
    /// Without it (the default) a fetch lists with one FindItem and every request carries up
    /// to [`ITEM_CHUNK`] items: the fewest requests. With it there are more requests, each
    /// smaller, so that more of the mailbox's 27 connections work at once: the better choice
    /// where each request's time grows with what it carries, as it does against Exchange
    /// Online. A fetch's pages are listed by offset from the same starting point, as one
    /// FindItem would list them; an id listed twice (the folder changed between two
    /// listings) is handed over once.
    pub fn with_item_chunk(mut self, n: usize) -> Self {
        self.item_chunk = Some(n.clamp(1, ITEM_CHUNK));
        self
    }

    /// The most messages one fetch returns: [`with_max_batch`](Self::with_max_batch)'s, at
    /// most [`MAX_PAGE`] for a fetch listed with one FindItem.
    fn batch_cap(&self) -> usize {
        if self.item_chunk.is_some() || self.sync.is_some() {
            self.max_batch
        } else {
            self.max_batch.min(MAX_PAGE)
        }
    }

    /// Items per request: [`with_item_chunk`](Self::with_item_chunk)'s, or [`ITEM_CHUNK`].
    fn chunk(&self) -> usize {
        self.item_chunk.unwrap_or(ITEM_CHUNK)
    }

    /// The page size an unread fetch of `max` is listed in, when it is listed in pages.
    fn paged(&self, max: usize) -> Option<usize> {
        self.item_chunk.filter(|chunk| *chunk < max)
    }

    /// The client underneath.
    pub fn client(&self) -> &EwsClient {
        &self.client
    }

    fn access(&self) -> &MailboxAccess {
        &self.client.config().access
    }

    fn remember(&self, id: &ItemId) {
        if let Some(ck) = &id.change_key {
            self.change_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.id.clone(), ck.clone());
        }
    }

    fn item_id(&self, id: &MessageId) -> ItemId {
        let ck = self
            .change_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id.as_str())
            .cloned();
        ItemId {
            id: id.as_str().to_string(),
            change_key: ck,
        }
    }

    fn forget(&self, id: &str) {
        self.change_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Resolves a folder by well-known name or display name (under the mailbox root), creating
    /// it when missing.
    pub async fn resolve_folder(&self, name: &str) -> Result<FolderId, Error> {
        let key = name.to_ascii_lowercase();
        if WELL_KNOWN.contains(&key.as_str()) {
            return Ok(self.access().folder(&key));
        }
        if let Some(f) = self
            .folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(f.clone());
        }
        let root = self.access().folder("msgfolderroot");
        let children = self
            .client
            .call(&FindFolder {
                parent: root.clone(),
            })
            .await?;
        let found = children.into_iter().find_map(|f| {
            f.display_name
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(name))
                .then_some(f.id)
                .flatten()
        });
        let id = match found {
            Some(id) => id,
            None => {
                let created = self
                    .client
                    .call(&CreateFolder {
                        parent: root,
                        display_name: name.to_string(),
                    })
                    .await?;
                match created.into_iter().next() {
                    Some(Ok(f)) => f.id.ok_or_else(|| {
                        Error::bad_response("CreateFolder answered a folder without an id")
                    })?,
                    Some(Err(e)) => return Err(item_error(e, &format!("creating folder {name}"))),
                    None => return Err(Error::bad_response("CreateFolder answered nothing")),
                }
            }
        };
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, id.clone());
        Ok(id)
    }

    /// Downloads `ids` and hands them over as a batch continuing at `next`. In sync mode
    /// (`sync`), a message GetItem no longer finds (deleted or moved out before it was
    /// fetched) stops waiting instead of failing: the unread listing would not have listed it.
    async fn batch_of(
        &self,
        ids: Vec<ItemId>,
        next: Option<Cursor>,
        sync: Option<&SyncMode>,
    ) -> Result<Batch, Error> {
        if ids.is_empty() {
            return Ok(Batch::new(Vec::new(), next));
        }
        let results = self.download(&ids).await?;
        self.assemble(ids, results, next, sync).await
    }

    /// The batch of downloaded `ids` (`results` in the same order), continuing at `next`; see
    /// [`batch_of`](Self::batch_of) for `sync`.
    pub(crate) async fn assemble(
        &self,
        ids: Vec<ItemId>,
        results: Vec<Result<Item, Error>>,
        next: Option<Cursor>,
        sync: Option<&SyncMode>,
    ) -> Result<Batch, Error> {
        let mut b = Batch::new(Vec::with_capacity(ids.len()), next);
        let mut vanished: Vec<String> = Vec::new();
        for (asked, r) in ids.into_iter().zip(results) {
            let mut item = match r {
                Ok(item) => item,
                Err(e) if sync.is_some() && e.kind() == ErrorKind::NotFound => {
                    vanished.push(asked.id);
                    continue;
                }
                Err(e) => {
                    b.failed.push((MessageId::new(asked.id), e));
                    continue;
                }
            };
            // Taken, not cloned: the MIME body is the one large thing in an item.
            let Some(mime) = item.mime.take() else {
                b.failed.push((
                    MessageId::new(asked.id),
                    Error::bad_response("GetItem answered an item without MimeContent"),
                ));
                continue;
            };
            let id = item.id.clone().unwrap_or(asked);
            self.remember(&id);
            let mut m = RawMessage::new(MessageId::new(id.id.clone()), mime)
                .with_recipients(item.recipient_addresses());
            if let Some(imid) = &item.internet_message_id {
                m = m.with_internet_message_id(imid.clone());
            }
            if let Some(t) = item.received {
                m = m.with_received(t);
            }
            b.messages.push(m);
        }
        if let Some(s) = sync {
            let gone: Vec<&str> = vanished.iter().map(String::as_str).collect();
            s.forget(&gone).await;
        }
        Ok(b)
    }

    /// A sync-mode fetch: a catch-up when a pass starts, then a page of the waiting messages.
    async fn fetch_sync(
        &self,
        s: &SyncMode,
        cursor: Option<&Cursor>,
        max: usize,
    ) -> Result<Batch, Error> {
        if cursor.is_none() {
            s.refresh(&self.client, &self.access().folder(&self.folder))
                .await?;
        }
        let page = s.page(cursor.map(Cursor::as_str), max).await?;
        self.batch_of(page.ids, page.next.map(Cursor::new), Some(s))
            .await
    }
}

/// The offset an unread fetch's cursor names (`None`: the start).
fn unread_offset(cursor: Option<&Cursor>) -> Result<u32, Error> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .as_str()
            .parse()
            .map_err(|_| Error::configuration(format!("not an EWS cursor: {:?}", c.as_str()))),
    }
}

/// A copy of `e` (connector errors are not `Clone`), for each item a failed request covered.
fn copy_error(e: &Error) -> Error {
    let mut c = Error::new(e.kind(), e.message().to_string()).with_delivery(e.delivery());
    if let Some(r) = e.response() {
        c = c.with_response(r.clone());
    }
    if let Some(a) = e.retry_after() {
        c = c.with_retry_after(a);
    }
    if let Some(p) = e.auth_problem() {
        c = c.with_auth_problem(p.clone());
    }
    c
}

fn fail_all(n: usize, e: &Error) -> Vec<Result<(), Error>> {
    (0..n).map(|_| Err(copy_error(e))).collect()
}

fn pad(out: &mut Vec<Result<(), Error>>, n: usize) {
    while out.len() < n {
        out.push(Err(Error::bad_response(
            "EWS answered fewer response messages than items sent",
        )));
    }
}

#[async_trait]
impl MessageSource for EwsSource {
    fn name(&self) -> String {
        format!("ews:{}", self.access().address())
    }

    fn capabilities(&self) -> SourceCapabilities {
        let caps =
            SourceCapabilities::unread_polling(self.batch_cap()).with_batch_acknowledge(true);
        if self.sync.is_some() {
            caps.with_incremental_sync()
        } else {
            caps
        }
    }

    async fn ping(&self) -> PingReport {
        let log = self.client.log().clone();
        match self.count_waiting().await {
            Ok(n) => PingReport::online(n, log),
            Err(e) => {
                let mut r = PingReport::from_error(&e, log);
                if r.auth.is_none() {
                    r.reason = Some(offline_reason(&e));
                }
                r
            }
        }
    }

    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        if let Some(s) = &self.sync {
            let folder = self.access().folder(&self.folder);
            return s
                .refresh(&self.client, &folder)
                .await
                .map(|n| Some(n as u64));
        }
        let folders = self
            .client
            .call(&GetFolder::new(vec![self.access().folder(&self.folder)]))
            .await?;
        match folders.into_iter().next() {
            Some(Ok(f)) => {
                self.waiting_hint
                    .store(f.unread_count.unwrap_or(pages::NO_HINT), Ordering::Relaxed);
                Ok(f.unread_count)
            }
            Some(Err(e)) => Err(item_error(e, "reading the folder counts")),
            None => Err(Error::bad_response("GetFolder answered nothing")),
        }
    }

    async fn fetch(&self, cursor: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        let max = max.clamp(1, self.batch_cap());
        if let Some(s) = &self.sync {
            return self.fetch_sync(s, cursor, max).await;
        }
        let offset = unread_offset(cursor)?;
        if let Some(chunk) = self.paged(max) {
            // The pages' parts, joined into one batch in listing order (oldest first).
            let parts = Mutex::new(Vec::new());
            let keep = |at: usize, part: Batch| {
                parts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((at, part));
            };
            let next = self.fetch_in_pages(offset, max, chunk, &keep).await?;
            let mut parts = parts.into_inner().unwrap_or_else(|e| e.into_inner());
            parts.sort_by_key(|(at, _)| *at);
            let mut batch = Batch::new(Vec::new(), next);
            for (_, part) in parts {
                batch.messages.extend(part.messages);
                batch.failed.extend(part.failed);
            }
            return Ok(batch);
        }
        let page = self
            .call(&FindItem::unread(
                self.access().folder(&self.folder),
                offset,
                max as u32,
            ))
            .await?;
        let ids: Vec<ItemId> = page.items.iter().filter_map(|i| i.id.clone()).collect();
        let listed = ids.len() as u32;
        let next = if page.includes_last || listed == 0 {
            None
        } else {
            Some(Cursor::new(
                page.next_offset.unwrap_or(offset + listed).to_string(),
            ))
        };
        self.batch_of(ids, next, None).await
    }

    /// With [`with_item_chunk`](EwsSource::with_item_chunk), an unread fetch hands over each
    /// FindItem page as soon as it is downloaded and the listings before it succeeded, in the
    /// order the downloads end; otherwise the whole batch at once.
    async fn fetch_in_parts(
        &self,
        cursor: Option<&Cursor>,
        max: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        let max = max.clamp(1, self.batch_cap());
        if self.sync.is_none()
            && let Some(chunk) = self.paged(max)
        {
            let offset = unread_offset(cursor)?;
            let each = |_: usize, part: Batch| hand_over(part);
            return self.fetch_in_pages(offset, max, chunk, &each).await;
        }
        connector::fetch_as_one_part(self, cursor, max, hand_over).await
    }

    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.acknowledge_many(&[(id.clone(), ack.clone())])
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(Error::bad_response("no result")))
    }

    async fn acknowledge_many(
        &self,
        items: &[(MessageId, Acknowledgement)],
    ) -> Vec<Result<(), Error>> {
        // Not while an unread fetch lists its pages: what this takes out of the unread
        // listing would shift the pages listed after it (see `fetch_in_pages`).
        let _order = match self.sync {
            None => Some(self.order.read().await),
            Some(_) => None,
        };
        let mut out: Vec<Option<Result<(), Error>>> = (0..items.len()).map(|_| None).collect();
        // Group by acknowledgement, keeping each item's slot.
        let mut groups: Vec<(Acknowledgement, Vec<usize>)> = Vec::new();
        for (i, (_, ack)) in items.iter().enumerate() {
            match groups.iter_mut().find(|(a, _)| a == ack) {
                Some((_, v)) => v.push(i),
                None => groups.push((ack.clone(), vec![i])),
            }
        }
        let mut chunks: Vec<(Acknowledgement, Vec<usize>)> = Vec::new();
        for (ack, slots) in &groups {
            if let Acknowledgement::MoveTo(f) = ack {
                // Resolved (or created) once, before its chunks run at once; a failure is
                // each chunk's to report.
                let _ = self.resolve_folder(f).await;
            }
            chunks.extend(
                slots
                    .chunks(self.chunk())
                    .map(|c| (ack.clone(), c.to_vec())),
            );
        }
        // Up to `fetch_concurrency` requests at once, each chunk's results kept with it.
        let answers: Vec<(Vec<usize>, Vec<Result<(), Error>>)> = stream::iter(chunks)
            .map(|(ack, chunk)| async move {
                let ids: Vec<MessageId> = chunk.iter().map(|i| items[*i].0.clone()).collect();
                let results = match &ack {
                    Acknowledgement::MarkRead => self.mark_read(&ids).await,
                    Acknowledgement::MoveTo(f) => self.move_to(f, &ids).await,
                    Acknowledgement::Delete => self.delete(&ids).await,
                    // Sync mode has moved past the message: nothing to ask of Exchange.
                    Acknowledgement::Keep if self.sync.is_some() => {
                        ids.iter().map(|_| Ok(())).collect()
                    }
                    other => fail_all(
                        ids.len(),
                        &Error::unsupported(format!("acknowledgement {other} is not supported")),
                    ),
                };
                (chunk, results)
            })
            .buffer_unordered(self.fetch_concurrency)
            .collect()
            .await;
        for (chunk, results) in answers {
            for (slot, r) in chunk.iter().zip(results) {
                out[*slot] = Some(r);
            }
        }
        let out: Vec<Result<(), Error>> = out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::bad_response("no result"))))
            .collect();
        if let Some(s) = &self.sync {
            let done: Vec<&str> = items
                .iter()
                .zip(&out)
                .filter(|(_, r)| r.is_ok())
                .map(|((id, _), _)| id.as_str())
                .collect();
            s.forget(&done).await;
        } else {
            // Each message marked read, moved or deleted has left the unread listing.
            let gone = out.iter().filter(|r| r.is_ok()).count() as u64;
            self.forget_waiting(gone);
        }
        out
    }
}
