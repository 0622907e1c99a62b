//! Delta sync: what appeared, changed or left a folder since the last round, with the state
//! (the `@odata.deltaLink` and the messages seen but not yet acknowledged) kept in a
//! [`DeltaStore`] the caller provides.
//!
//! Two ways to use it:
//!
//! - **As a message source mode**: [`GraphSource::with_delta`](crate::GraphSource::with_delta)
//!   makes a [`GraphSource`](crate::GraphSource) find new mail through delta rounds instead of
//!   listing unread mail. See the crate documentation for when to choose which.
//! - **As a helper**: [`sync_folder`] runs one round and returns the raw changes.
//!
//! ```no_run
//! use graph_mail::delta::{sync_folder, MemoryDeltaStore};
//! # async fn run(client: graph_mail::GraphClient) -> Result<(), connector::Error> {
//! let store = MemoryDeltaStore::default(); // or FileDeltaStore, or a database behind the trait
//! let first = sync_folder(&client, &store, "inbox").await?; // everything in the folder
//! let next = sync_folder(&client, &store, "inbox").await?;  // only what changed since
//! for id in &next.removed { println!("{id} left the folder"); }
//! # Ok(()) }
//! ```
//!
//! ## Stores
//!
//! [`MemoryDeltaStore`] forgets everything when the process ends: the next start is a full
//! resync. [`FileDeltaStore`] keeps every key in one JSON file, rewritten atomically (a
//! temporary file in the same directory, synced, then renamed over the old one), so a crash
//! leaves the old state or the new one, never half of each. A file that cannot be read is a
//! [`Configuration`](connector::ErrorKind::Configuration) error naming the file, never a
//! panic and never a silent restart. A database is one small trait away: [`DeltaState`]
//! turns into JSON and back.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use connector::{ConnectionLog, Error};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::api::{self, DeltaItem, MessageMeta};
use crate::client::{GraphClient, Idempotency};
use crate::endpoint::{Endpoint, Mailbox};

/// Where delta state is kept between rounds, one [`DeltaState`] per key (a mailbox and folder,
/// see [`state_key`]).
///
/// Calls come from async code and should be quick (a small file write, a database row).
/// `save` must be durable when it returns `Ok`: a source saves after every round and after
/// acknowledgements, and relies on what it saved after a restart.
pub trait DeltaStore: Send + Sync {
    /// The saved state of `key`, or `None` if there is none (the next round is a full sync).
    fn load(&self, key: &str) -> Result<Option<DeltaState>, Error>;
    /// Saves the state of `key`.
    fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error>;
    /// Forgets the state of `key` (its next round is a full sync).
    fn clear(&self, key: &str) -> Result<(), Error>;
}

/// The key a [`GraphSource`](crate::GraphSource) in delta mode and [`sync_folder`] use for a
/// folder of an endpoint's mailbox: `me/mailFolders/inbox`,
/// `users/helpdesk@contoso.com/mailFolders/inbox`. The host is not part of it; a saved link
/// that points at another host than the endpoint's is discarded (a full resync), never
/// followed.
pub fn state_key(ep: &Endpoint, folder: &str) -> String {
    match ep.mailbox() {
        Mailbox::Me => format!("me/mailFolders/{folder}"),
        Mailbox::User(u) => format!("users/{}/mailFolders/{folder}", u.to_ascii_lowercase()),
    }
}

const STATE_VERSION: u32 = 1;

fn state_version() -> u32 {
    STATE_VERSION
}

/// A message seen in the folder's delta stream and not acknowledged yet: everything needed to
/// hand it over again after a restart without asking Graph for its properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    id: String,
    /// Order of first appearance, a tie-breaker for equal receive times.
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    internet_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cc: Vec<String>,
    /// `receivedDateTime` in Unix nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received: Option<i64>,
}

impl Pending {
    fn key(&self) -> (i64, u64) {
        (self.received.unwrap_or(i64::MIN), self.seq)
    }

    fn meta(&self) -> MessageMeta {
        MessageMeta {
            id: self.id.clone(),
            internet_message_id: self.internet_message_id.clone(),
            subject: None,
            to: self.to.clone(),
            cc: self.cc.clone(),
            received: self
                .received
                .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok()),
            is_read: None,
            headers: Vec::new(),
        }
    }

    fn update(&mut self, m: &MessageMeta) {
        if m.internet_message_id.is_some() {
            self.internet_message_id.clone_from(&m.internet_message_id);
        }
        if !m.to.is_empty() || !m.cc.is_empty() {
            self.to.clone_from(&m.to);
            self.cc.clone_from(&m.cc);
        }
        if let Some(r) = nanos(m) {
            self.received = Some(r);
        }
    }
}

fn nanos(m: &MessageMeta) -> Option<i64> {
    m.received
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
}

/// The saved delta state of one folder: the `@odata.deltaLink` to start the next round from,
/// the messages seen but not yet acknowledged (so a restart hands them over again instead of
/// losing them), and the newest receive time seen (so a message that is already read when it
/// shows up is told apart from an old message that merely changed).
///
/// It is stored as JSON ([`to_json`](Self::to_json) / [`from_json`](Self::from_json)); the
/// delta link inside is a credential-free URL, but treat the state like any other mailbox data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    #[serde(default = "state_version")]
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    at_watermark: Vec<String>,
    #[serde(default)]
    pending: Vec<Pending>,
    #[serde(default)]
    next_seq: u64,
}

impl Default for DeltaState {
    fn default() -> Self {
        DeltaState {
            version: STATE_VERSION,
            delta_link: None,
            watermark: None,
            at_watermark: Vec::new(),
            pending: Vec::new(),
            next_seq: 0,
        }
    }
}

impl fmt::Debug for DeltaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The link's query is Graph's sync token: not a credential, but not worth printing.
        f.debug_struct("DeltaState")
            .field("has_delta_link", &self.delta_link.is_some())
            .field("pending", &self.pending.len())
            .field("watermark", &self.watermark)
            .finish()
    }
}

/// How a round's changes were merged into the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Merged {
    added: usize,
    removed: usize,
}

impl DeltaState {
    /// An empty state: the next round is a full sync.
    pub fn new() -> Self {
        Self::default()
    }

    /// The delta link the next round starts from, if a round has completed.
    pub fn delta_link(&self) -> Option<&str> {
        self.delta_link.as_deref()
    }

    /// Ids of the messages seen and not yet acknowledged, oldest first.
    pub fn pending_ids(&self) -> Vec<&str> {
        self.pending.iter().map(|p| p.id.as_str()).collect()
    }

    /// The state as JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and vectors always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a state written by [`to_json`](Self::to_json); anything else is a
    /// [`Configuration`](connector::ErrorKind::Configuration) error.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| corrupt(format!("it is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(corrupt("it is not a JSON object"));
        }
        let s: DeltaState = serde_json::from_value(v)
            .map_err(|e| corrupt(format!("it is not a delta state: {e}")))?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.version != STATE_VERSION {
            return Err(corrupt(format!(
                "version {} is not the supported {STATE_VERSION}",
                self.version
            )));
        }
        let mut ids = HashSet::new();
        for p in &self.pending {
            if p.id.is_empty() {
                return Err(corrupt("a pending message has an empty id"));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(corrupt(format!("message {} is pending twice", p.id)));
            }
            if p.seq >= self.next_seq {
                return Err(corrupt(
                    "a pending message's sequence number is out of range",
                ));
            }
        }
        Ok(())
    }

    /// Whether a changed message this state has not seen is new mail. Unread messages are.
    /// A read one is new only if it arrived after everything seen so far (someone read it
    /// before this round); older read messages are changes to mail already seen (including
    /// this source's own "mark read" acknowledgements). On the very first sync, read messages
    /// are history.
    fn is_new(&self, m: &MessageMeta, first_round: bool) -> bool {
        if m.is_read != Some(true) {
            return true;
        }
        match (nanos(m), self.watermark) {
            (Some(r), Some(w)) => r > w || (r == w && !self.at_watermark.contains(&m.id)),
            (Some(_), None) => !first_round,
            (None, _) => false,
        }
    }

    /// Merges one complete round. `full` says the round listed the whole folder (a first
    /// sync or a resync): pending messages it did not list have left the folder.
    fn merge(&mut self, items: Vec<DeltaItem>, delta_link: String, full: bool) -> Merged {
        let first_round = full && self.delta_link.is_none();
        let mut out = Merged::default();
        let mut listed: HashSet<String> = HashSet::new();
        let mut newest: Vec<(i64, String)> = Vec::new();
        // Judged against the state before this round (a watermark moved mid-round would hide
        // read messages listed after a newer one).
        let before = self.clone();
        for item in items {
            match item {
                DeltaItem::Removed { id, .. } => {
                    let n = self.pending.len();
                    self.pending.retain(|p| p.id != id);
                    out.removed += n - self.pending.len();
                    listed.remove(&id);
                }
                DeltaItem::Changed(m) => {
                    if let Some(r) = nanos(&m) {
                        newest.push((r, m.id.clone()));
                    }
                    listed.insert(m.id.clone());
                    if let Some(p) = self.pending.iter_mut().find(|p| p.id == m.id) {
                        p.update(&m);
                    } else if before.is_new(&m, first_round) {
                        self.pending.push(Pending {
                            received: nanos(&m),
                            id: m.id,
                            seq: self.next_seq,
                            internet_message_id: m.internet_message_id,
                            to: m.to,
                            cc: m.cc,
                        });
                        self.next_seq += 1;
                        out.added += 1;
                    }
                }
            }
        }
        if full {
            let n = self.pending.len();
            self.pending.retain(|p| listed.contains(&p.id));
            out.removed += n - self.pending.len();
        }
        if let Some(max) = newest.iter().map(|(r, _)| *r).max() {
            let at: Vec<String> = newest
                .into_iter()
                .filter(|(r, _)| *r == max)
                .map(|(_, id)| id)
                .collect();
            match self.watermark {
                Some(w) if w == max => {
                    for id in at {
                        if !self.at_watermark.contains(&id) {
                            self.at_watermark.push(id);
                        }
                    }
                }
                Some(w) if w > max => {}
                _ => {
                    self.watermark = Some(max);
                    self.at_watermark = at;
                }
            }
        }
        self.pending.sort_by_key(Pending::key);
        self.delta_link = Some(delta_link);
        out
    }

    /// Drops acknowledged messages; whether any was pending.
    fn forget(&mut self, ids: &[&str]) -> bool {
        let n = self.pending.len();
        self.pending.retain(|p| !ids.contains(&p.id.as_str()));
        n != self.pending.len()
    }

    /// Up to `max` pending messages after `after`, and whether more follow.
    fn page(&self, after: Option<(i64, u64)>, max: usize) -> (Vec<&Pending>, bool) {
        let mut rest = self
            .pending
            .iter()
            .filter(|p| after.is_none_or(|a| p.key() > a));
        let page: Vec<&Pending> = rest.by_ref().take(max).collect();
        (page, rest.next().is_some())
    }
}

fn corrupt(why: impl fmt::Display) -> Error {
    Error::configuration(format!("the saved delta state is unreadable: {why}"))
}

const CURSOR_PREFIX: &str = "delta:";

fn cursor_of(p: &Pending) -> String {
    let (r, s) = p.key();
    format!("{CURSOR_PREFIX}{r}:{s}")
}

fn parse_cursor(c: &str) -> Result<(i64, u64), Error> {
    let bad = || {
        Error::configuration(format!(
            "{c:?} is not a cursor of a delta-mode Graph source (start a new pass with no cursor)"
        ))
    };
    let rest = c.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let (r, s) = rest.split_once(':').ok_or_else(bad)?;
    Ok((r.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?))
}

// ---------------------------------------------------------------------------------------------
// Stores

/// A [`DeltaStore`] in memory: state survives as long as the process.
#[derive(Debug, Default)]
pub struct MemoryDeltaStore(Mutex<BTreeMap<String, DeltaState>>);

impl DeltaStore for MemoryDeltaStore {
    fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), state.clone());
        Ok(())
    }

    fn clear(&self, key: &str) -> Result<(), Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(default)]
    states: BTreeMap<String, DeltaState>,
}

/// A [`DeltaStore`] in one JSON file, shared by every key, rewritten atomically on each save.
///
/// ```no_run
/// use std::sync::Arc;
/// use graph_mail::delta::FileDeltaStore;
/// # fn run(source: graph_mail::GraphSource) -> Result<(), connector::Error> {
/// let store = FileDeltaStore::open("/var/lib/m365mail/graph-delta.json")?; // created on first save
/// let source = source.with_delta(Arc::new(store));
/// # Ok(()) }
/// ```
///
/// One process should own the file: the store reads it once, when opened, and afterwards
/// writes what it holds.
#[derive(Debug)]
pub struct FileDeltaStore {
    path: PathBuf,
    states: Mutex<BTreeMap<String, DeltaState>>,
}

impl FileDeltaStore {
    /// Opens the store at `path`: reads the file if it exists (a missing file is an empty
    /// store; its directory must exist). A file that cannot be read or parsed is an error
    /// naming it, so that a damaged state is looked at instead of silently replaced.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let states = match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::configuration(format!(
                    "cannot read the delta state file {}: {e}",
                    path.display()
                ))
                .with_source(e));
            }
        };
        Ok(FileDeltaStore {
            path,
            states: Mutex::new(states),
        })
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, DeltaState>, Error> {
        let bad = |why: String| {
            Error::configuration(format!(
                "the delta state file {} is corrupt ({why}); move it aside to start a full resync",
                path.display()
            ))
        };
        let file: StateFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if file.version != STATE_VERSION {
            return Err(bad(format!("unsupported version {}", file.version)));
        }
        for (key, s) in &file.states {
            s.validate()
                .map_err(|e| bad(format!("{key}: {}", e.message())))?;
        }
        Ok(file.states)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, states: &BTreeMap<String, DeltaState>) -> Result<(), Error> {
        let file = StateFile {
            version: STATE_VERSION,
            states: states.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::configuration(format!("serializing delta state: {e}")))?;
        // Owner-only (0600), as the `tempfile` it was written through before left it.
        httpcore::fs::write_atomic(&self.path, &bytes, httpcore::fs::FileMode::OwnerOnly).map_err(
            |e| {
                Error::configuration(format!(
                    "cannot write the delta state file {}: {e}",
                    self.path.display()
                ))
                .with_source(e)
            },
        )
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<String, DeltaState>)) -> Result<(), Error> {
        let mut guard = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        f(&mut next);
        self.write(&next)?;
        *guard = next;
        Ok(())
    }
}

impl DeltaStore for FileDeltaStore {
    fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        self.update(|m| {
            m.insert(key.to_owned(), state.clone());
        })
    }

    fn clear(&self, key: &str) -> Result<(), Error> {
        self.update(|m| {
            m.remove(key);
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Rounds

/// The outcome of one delta round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaChanges {
    /// Messages that appeared or changed.
    pub changed: Vec<MessageMeta>,
    /// Ids of messages that left the folder.
    pub removed: Vec<String>,
    /// The saved state was gone (`syncStateNotFound` / `resyncRequired`, or a link to another
    /// host) and this round is a full resync: `changed` lists the whole folder.
    pub resynced: bool,
}

/// Most pages one round follows (a guard against a server that never ends a round).
pub const MAX_PAGES: usize = 10_000;

fn is_resync(e: &Error) -> bool {
    e.response()
        .and_then(|r| r.server_code.as_deref())
        .is_some_and(|c| {
            c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired")
        })
}

/// One complete round: its items in order, the new delta link, and whether it listed the whole
/// folder because the saved link was missing, expired or foreign.
pub(crate) struct Round {
    pub(crate) items: Vec<DeltaItem>,
    pub(crate) delta_link: String,
    pub(crate) full: bool,
    pub(crate) resynced: bool,
}

pub(crate) async fn run_round(
    client: &GraphClient,
    saved_link: Option<&str>,
    folder: &str,
    log: Option<&ConnectionLog>,
) -> Result<Round, Error> {
    let ep = client.endpoint();
    let usable = saved_link.filter(|l| Url::parse(l).is_ok_and(|u| ep.owns(&u)));
    if let Some(link) = usable {
        match pages(client, api::follow_delta_link(ep, link)?, log).await {
            Ok((items, delta_link)) => {
                return Ok(Round {
                    items,
                    delta_link,
                    full: false,
                    resynced: false,
                });
            }
            Err(e) if is_resync(&e) => {
                tracing::info!(folder, "delta state expired on the server: full resync");
            }
            Err(e) => return Err(e),
        }
    } else if saved_link.is_some() {
        tracing::warn!(
            folder,
            "the saved delta link is not under this endpoint's Graph base: full resync"
        );
    }
    let (items, delta_link) = pages(client, api::delta(ep, folder)?, log).await?;
    Ok(Round {
        items,
        delta_link,
        full: true,
        resynced: saved_link.is_some(),
    })
}

async fn pages(
    client: &GraphClient,
    mut req: http::Request<Vec<u8>>,
    log: Option<&ConnectionLog>,
) -> Result<(Vec<DeltaItem>, String), Error> {
    let ep = client.endpoint();
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let r = client
            .execute_logged("reading folder changes", req, Idempotency::Safe, log, true)
            .await?;
        let page = api::parse_delta_page(ep, r.json()?)?;
        items.extend(page.items);
        match (page.next_link, page.delta_link) {
            (Some(next), _) => req = api::follow_delta_link(ep, &next)?,
            (None, Some(delta)) => return Ok((items, delta)),
            (None, None) => return Err(Error::bad_response("a delta page without links")),
        }
    }
    Err(Error::bad_response(format!(
        "a delta round did not end within {MAX_PAGES} pages"
    )))
}

/// Runs one delta round of `folder`, following next links to the delta link and saving it
/// under [`state_key`]. An expired state is discarded and the round restarts as a full
/// resync. The state is saved only when the round completed, so a failed round is repeated,
/// never skipped.
///
/// This is the raw helper; do not share its store keys with a delta-mode
/// [`GraphSource`](crate::GraphSource) (which keeps more in the state than the link).
pub async fn sync_folder(
    client: &GraphClient,
    store: &dyn DeltaStore,
    folder: &str,
) -> Result<DeltaChanges, Error> {
    let key = state_key(client.endpoint(), folder);
    let mut state = store.load(&key)?.unwrap_or_default();
    let round = run_round(client, state.delta_link.as_deref(), folder, None).await?;
    state.delta_link = Some(round.delta_link);
    store.save(&key, &state)?;
    let mut out = DeltaChanges {
        resynced: round.resynced,
        ..DeltaChanges::default()
    };
    for item in round.items {
        match item {
            DeltaItem::Changed(m) => out.changed.push(m),
            DeltaItem::Removed { id, .. } => out.removed.push(id),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The source mode

/// The delta mode of a [`GraphSource`](crate::GraphSource): the store, the key and the state
/// (loaded on first use; rounds and acknowledgements take turns on it).
pub(crate) struct DeltaMode {
    store: std::sync::Arc<dyn DeltaStore>,
    key: String,
    state: tokio::sync::Mutex<Option<DeltaState>>,
}

impl fmt::Debug for DeltaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaMode").field("key", &self.key).finish()
    }
}

/// A page of pending messages handed out by a fetch.
pub(crate) struct PendingPage {
    pub(crate) metas: Vec<MessageMeta>,
    pub(crate) next: Option<String>,
}

impl DeltaMode {
    pub(crate) fn new(store: std::sync::Arc<dyn DeltaStore>, key: String) -> Self {
        DeltaMode {
            store,
            key,
            state: tokio::sync::Mutex::new(None),
        }
    }

    fn loaded<'a>(&self, slot: &'a mut Option<DeltaState>) -> Result<&'a mut DeltaState, Error> {
        if slot.is_none() {
            *slot = Some(self.store.load(&self.key)?.unwrap_or_default());
        }
        slot.as_mut()
            .ok_or_else(|| Error::configuration("delta state not loaded"))
    }

    /// Runs a round and merges it; returns the number of pending messages.
    pub(crate) async fn refresh(
        &self,
        client: &GraphClient,
        folder: &str,
        log: Option<&ConnectionLog>,
    ) -> Result<usize, Error> {
        let mut slot = self.state.lock().await;
        let state = self.loaded(&mut slot)?;
        let round = run_round(client, state.delta_link.as_deref(), folder, log).await?;
        let mut next = state.clone();
        let merged = next.merge(round.items, round.delta_link, round.full);
        self.store.save(&self.key, &next)?;
        tracing::debug!(
            folder,
            added = merged.added,
            removed = merged.removed,
            resynced = round.resynced,
            "delta round merged"
        );
        *state = next;
        Ok(state.pending.len())
    }

    /// A page of pending messages after `cursor` (from the start if `None`).
    pub(crate) async fn page(
        &self,
        cursor: Option<&str>,
        max: usize,
    ) -> Result<PendingPage, Error> {
        let after = cursor.map(parse_cursor).transpose()?;
        let mut slot = self.state.lock().await;
        let state = self.loaded(&mut slot)?;
        let (page, more) = state.page(after, max);
        Ok(PendingPage {
            next: if more {
                page.last().map(|p| cursor_of(p))
            } else {
                None
            },
            metas: page.iter().map(|p| p.meta()).collect(),
        })
    }

    /// Forgets acknowledged messages and saves. A failed save is logged, not returned: the
    /// acknowledgement itself took effect, and the next save (every round saves) catches up.
    pub(crate) async fn acknowledged(&self, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        let mut slot = self.state.lock().await;
        let state = match self.loaded(&mut slot) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "delta state unavailable after an acknowledgement");
                return;
            }
        };
        if state.forget(ids)
            && let Err(e) = self.store.save(&self.key, state)
        {
            tracing::warn!(error = %e, "could not save the delta state after an acknowledgement");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector::ErrorKind;

    fn meta(id: &str, secs: i64, read: bool) -> MessageMeta {
        MessageMeta {
            id: id.into(),
            internet_message_id: Some(format!("<{id}@x>")),
            subject: None,
            to: vec!["helpdesk@contoso.example".into()],
            cc: Vec::new(),
            received: OffsetDateTime::from_unix_timestamp(1_770_000_000 + secs).ok(),
            is_read: Some(read),
            headers: Vec::new(),
        }
    }

    fn changed(id: &str, secs: i64, read: bool) -> DeltaItem {
        DeltaItem::Changed(meta(id, secs, read))
    }

    fn removed(id: &str) -> DeltaItem {
        DeltaItem::Removed {
            id: id.into(),
            reason: "deleted".into(),
        }
    }

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryDeltaStore::default();
        assert_eq!(s.load("me/mailFolders/inbox").unwrap(), None);
        let mut st = DeltaState::new();
        st.merge(
            vec![changed("a", 1, false)],
            "https://x/delta?$deltatoken=1".into(),
            true,
        );
        s.save("me/mailFolders/inbox", &st).unwrap();
        let back = s.load("me/mailFolders/inbox").unwrap().unwrap();
        assert_eq!(back.delta_link(), Some("https://x/delta?$deltatoken=1"));
        assert_eq!(back.pending_ids(), ["a"]);
        s.clear("me/mailFolders/inbox").unwrap();
        assert_eq!(s.load("me/mailFolders/inbox").unwrap(), None);
    }

    #[test]
    fn resync_codes_are_recognised() {
        let e = Error::refused("x").with_response(
            connector::ResponseDetails::status(410).with_server_code("SyncStateNotFound"),
        );
        assert!(is_resync(&e));
        let e = Error::refused("x").with_response(
            connector::ResponseDetails::status(410).with_server_code("resyncRequired"),
        );
        assert!(is_resync(&e));
        assert!(!is_resync(&Error::refused("x")));
    }

    #[test]
    fn first_sync_takes_unread_mail_only() {
        let mut st = DeltaState::new();
        let m = st.merge(
            vec![
                changed("old-read", 1, true),
                changed("old-unread", 2, false),
            ],
            "l1".into(),
            true,
        );
        assert_eq!(m.added, 1);
        assert_eq!(st.pending_ids(), ["old-unread"]);
    }

    #[test]
    fn own_mark_read_and_moves_do_not_come_back() {
        let mut st = DeltaState::new();
        st.merge(
            vec![
                changed("a", 1, false),
                changed("b", 2, false),
                changed("c", 2, false),
            ],
            "l1".into(),
            true,
        );
        assert!(st.forget(&["a", "c"]));
        // What Graph sends after our PATCH isRead of a and c, and a move of b.
        let m = st.merge(
            vec![changed("a", 1, true), changed("c", 2, true), removed("b")],
            "l2".into(),
            false,
        );
        assert_eq!(m.added, 0);
        assert!(st.pending_ids().is_empty(), "{:?}", st.pending_ids());
    }

    #[test]
    fn read_on_arrival_is_still_new_and_pending_stays_when_read() {
        let mut st = DeltaState::new();
        st.merge(vec![changed("a", 5, false)], "l1".into(), true);
        // Someone read `a` in Outlook (it stays pending), and `b` arrived and was read before
        // this round; `old` is an old read message someone flagged.
        st.merge(
            vec![
                changed("a", 5, true),
                changed("b", 6, true),
                changed("old", 1, true),
            ],
            "l2".into(),
            false,
        );
        assert_eq!(st.pending_ids(), ["a", "b"]);
        // An empty first sync: everything after it is new, read or not.
        let mut empty = DeltaState::new();
        empty.merge(Vec::new(), "l1".into(), true);
        empty.merge(vec![changed("x", 1, true)], "l2".into(), false);
        assert_eq!(empty.pending_ids(), ["x"]);
    }

    #[test]
    fn equal_receive_times_are_told_apart_by_id() {
        let mut st = DeltaState::new();
        st.merge(vec![changed("a", 5, false)], "l1".into(), true);
        st.forget(&["a"]);
        st.merge(
            vec![changed("a", 5, true), changed("twin", 5, true)],
            "l2".into(),
            false,
        );
        assert_eq!(st.pending_ids(), ["twin"]);
    }

    #[test]
    fn a_resync_drops_pending_messages_no_longer_listed() {
        let mut st = DeltaState::new();
        st.merge(
            vec![changed("a", 1, false), changed("b", 2, false)],
            "l1".into(),
            true,
        );
        let m = st.merge(
            vec![changed("b", 2, false), changed("c", 3, false)],
            "l2".into(),
            true,
        );
        assert_eq!((m.added, m.removed), (1, 1));
        assert_eq!(st.pending_ids(), ["b", "c"]);
    }

    #[test]
    fn pages_follow_receive_order_and_survive_acknowledgements() {
        let mut st = DeltaState::new();
        st.merge(
            vec![
                changed("late", 9, false),
                changed("early", 1, false),
                changed("mid1", 5, false),
                changed("mid2", 5, false),
            ],
            "l1".into(),
            true,
        );
        let (p, more) = st.page(None, 2);
        assert!(more);
        assert_eq!(
            p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["early", "mid1"]
        );
        let cursor = parse_cursor(&cursor_of(p[1])).unwrap();
        st.forget(&["early", "mid1"]);
        let (p, more) = st.page(Some(cursor), 2);
        assert!(!more);
        assert_eq!(
            p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["mid2", "late"]
        );
        assert!(parse_cursor("https://graph.microsoft.com/v1.0/x").is_err());
        assert!(parse_cursor("delta:x:1").is_err());
    }

    #[test]
    fn state_json_round_trips_and_rejects_garbage() {
        let mut st = DeltaState::new();
        st.merge(
            vec![changed("a", 1, false)],
            "https://x/d?$deltatoken=7".into(),
            true,
        );
        let back = DeltaState::from_json(&st.to_json()).unwrap();
        assert_eq!(back, st);
        assert_eq!(back.pending[0].meta().to, ["helpdesk@contoso.example"]);
        for bad in [
            "",
            "{",
            "[]",
            r#"{"version":2}"#,
            r#"{"version":1,"pending":[{"id":"","seq":0}],"next_seq":1}"#,
            r#"{"version":1,"pending":[{"id":"a","seq":0},{"id":"a","seq":1}],"next_seq":2}"#,
            r#"{"version":1,"pending":[{"id":"a","seq":5}],"next_seq":1}"#,
            r#"{"version":1,"pending":"x"}"#,
        ] {
            let e = DeltaState::from_json(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Configuration, "{bad}");
        }
        // Debug shows no link.
        assert!(!format!("{st:?}").contains("deltatoken"));
    }

    #[test]
    fn file_store_persists_atomically_and_reports_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delta.json");
        let store = FileDeltaStore::open(&path).unwrap();
        assert_eq!(store.load("k").unwrap(), None);
        let mut st = DeltaState::new();
        st.merge(
            vec![changed("a", 1, false)],
            "https://x/d?$deltatoken=7".into(),
            true,
        );
        store.save("k", &st).unwrap();
        store.save("other", &DeltaState::new()).unwrap();
        // A second store (a restart) reads what the first wrote.
        let again = FileDeltaStore::open(&path).unwrap();
        assert_eq!(again.load("k").unwrap(), Some(st.clone()));
        again.clear("other").unwrap();
        assert_eq!(
            FileDeltaStore::open(&path).unwrap().load("other").unwrap(),
            None
        );
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("delta.json")]);

        for garbage in [
            &b"{\"version\":1,\"states\":{\"k\":"[..],
            b"\xff\xfe",
            b"null",
            b"{\"version\":9}",
        ] {
            std::fs::write(&path, garbage).unwrap();
            let e = FileDeltaStore::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Configuration);
            assert!(e.to_string().contains("delta.json"), "{e}");
            assert!(e.to_string().contains("corrupt"), "{e}");
        }
        // A directory that does not exist: the save fails with the path, nothing panics.
        let nowhere = FileDeltaStore::open(dir.path().join("missing/delta.json")).unwrap();
        let e = nowhere.save("k", &st).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(
            nowhere.load("k").unwrap(),
            None,
            "a failed save changes nothing"
        );
    }
}
