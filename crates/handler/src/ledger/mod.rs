//! The durable ledger (documented on [`Ledger`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use cold::ColdIndex;
use history::archive;
pub(crate) use history::history_segments;

mod cold;
mod history;

/// Acknowledged records a file ledger keeps in memory before it moves them to its on-disk index
/// of acknowledged messages and compacts its file to the messages still open.
const SETTLE_AT: usize = 4096;

/// The state of one message in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    /// The handler failed this many times so far.
    Failed {
        /// Failures so far.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The handler succeeded (the message may still be waiting to be acknowledged).
    Handled {
        /// The project it was routed to, if any.
        project: Option<String>,
    },
    /// A notification is about to be sent (if the process dies now, it is not sent again:
    /// notifications are at most once).
    Notifying,
    /// A notification went out.
    Notified {
        /// The `From` address it was sent from.
        from: String,
    },
    /// The message was acknowledged at its source: done.
    Acknowledged,
    /// Acknowledging found the message gone from its source (its earlier acknowledgement took
    /// effect but the answer was lost, or someone removed it): done, by absence.
    AcknowledgedByAbsence,
    /// The message always failed and was parked in a folder.
    Parked {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(flatten)]
    entry: Entry,
    /// When an acknowledgement was recorded (Unix seconds), for [`Ledger::expire_acknowledged`].
    /// Written on acknowledgements only; ledgers written before it existed have none.
    #[serde(default)]
    at: Option<u64>,
    /// Written by a compaction, carrying a fact recorded earlier (whose own line is in a
    /// history segment): replayed like any line, but not a new event for an audit.
    #[serde(default)]
    carried: bool,
}

/// A [`Line`] to write, borrowing its parts.
#[derive(Serialize)]
struct LineRef<'a> {
    key: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    carried: bool,
}

/// What the ledger knows about one key, folded from its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Handler failures so far.
    pub attempts: u32,
    /// The handler succeeded.
    pub handled: bool,
    /// The project it was routed to.
    pub project: Option<String>,
    /// A notification was attempted (whether or not it went out).
    pub notification_attempted: bool,
    /// The notification went out from this address.
    pub notified_from: Option<String>,
    /// Acknowledged at the source (or found gone from it).
    pub acknowledged: bool,
    /// The acknowledgement found the message gone from its source
    /// ([`Entry::AcknowledgedByAbsence`]); `acknowledged` is set too.
    pub acknowledged_by_absence: bool,
    /// Parked, with the reason.
    pub parked: Option<String>,
    /// When it was acknowledged (or found gone), if the store knows: what
    /// [`LedgerStore::expire`](crate::LedgerStore::expire) goes by.
    pub acknowledged_at: Option<SystemTime>,
}

impl Record {
    /// Folds `entry`, recorded at `at`, into the record (what every ledger backend does with
    /// its entries, in the order they were recorded).
    pub fn apply(&mut self, entry: &Entry, at: SystemTime) {
        if matches!(entry, Entry::Acknowledged | Entry::AcknowledgedByAbsence) {
            self.acknowledged_at = Some(at);
        }
        self.fold(entry);
    }

    /// Adds what `other` knows about the same key (every fact of a record only ever goes from
    /// unknown to known, so the join of two partial records is the whole one).
    fn join(&mut self, other: &Record) {
        self.attempts = self.attempts.max(other.attempts);
        self.handled |= other.handled;
        if self.project.is_none() {
            self.project.clone_from(&other.project);
        }
        self.notification_attempted |= other.notification_attempted;
        if self.notified_from.is_none() {
            self.notified_from.clone_from(&other.notified_from);
        }
        self.acknowledged |= other.acknowledged;
        self.acknowledged_by_absence |= other.acknowledged_by_absence;
        if self.parked.is_none() {
            self.parked.clone_from(&other.parked);
        }
        self.acknowledged_at = match (self.acknowledged_at, other.acknowledged_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn fold(&mut self, entry: &Entry) {
        match entry {
            Entry::Failed { attempts, .. } => self.attempts = *attempts,
            Entry::Handled { project } => {
                self.handled = true;
                self.project = project.clone();
            }
            Entry::Notifying => self.notification_attempted = true,
            Entry::Notified { from } => {
                self.notification_attempted = true;
                self.notified_from = Some(from.clone());
            }
            Entry::Acknowledged => self.acknowledged = true,
            Entry::AcknowledgedByAbsence => {
                self.acknowledged = true;
                self.acknowledged_by_absence = true;
            }
            Entry::Parked { reason } => self.parked = Some(reason.clone()),
        }
    }
}

/// An error reading or writing the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The file could not be opened, read, written or synced.
    #[error("ledger {path}: {source}")]
    Io {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line in the middle of the file is not a ledger entry: the file was edited or is not a
    /// ledger. (A torn *last* line is tolerated.)
    #[error("ledger {path} line {line}: not a ledger entry ({reason}); refusing to guess")]
    Corrupt {
        /// The ledger file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// The write carried a fence whose lease is no longer held (expired and taken by another
    /// worker, or released): nothing was recorded, and this worker must stop working on the
    /// source.
    #[error("ledger: {fence} no longer holds the lease; nothing recorded")]
    Fenced {
        /// The stale fence.
        fence: crate::Fence,
    },
    /// A database-backed ledger could not be reached or refused the write; nothing was
    /// recorded, and the caller pauses and tries again.
    #[error("ledger ({backend}): {reason}")]
    Backend {
        /// Which backend (`postgres`, `file`).
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}

struct Inner {
    /// Shared so that a sync can run outside the lock (`&File` writes and syncs).
    file: Option<Arc<File>>,
    records: HashMap<String, Record>,
    /// Writes (of one or more lines) made to the file by this process.
    written: u64,
    /// Writes known to be on disk: the first `synced` of `written`.
    synced: u64,
    /// A thread is syncing the file, outside the lock; the others wait for it.
    syncing: bool,
    /// Records in `records` that are acknowledged (and could move to the on-disk index).
    acknowledged: usize,
}

impl Inner {
    fn new(file: Option<File>, records: HashMap<String, Record>) -> Self {
        let acknowledged = records.values().filter(|r| r.acknowledged).count();
        Inner {
            file: file.map(Arc::new),
            records,
            written: 0,
            synced: 0,
            syncing: false,
            acknowledged,
        }
    }

    /// Folds `entry` into `key`'s record, counting the records that become acknowledged.
    fn apply(&mut self, key: &str, entry: &Entry, at: SystemTime) {
        let r = match self.records.get_mut(key) {
            Some(r) => r,
            None => self.records.entry(key.to_owned()).or_default(),
        };
        let was = r.acknowledged;
        r.apply(entry, at);
        if r.acknowledged && !was {
            self.acknowledged += 1;
        }
    }
}

struct Shared {
    state: Mutex<Inner>,
    /// Thread references of a ledger without a file: reference → (root key, when).
    threads: Mutex<HashMap<String, (String, SystemTime)>>,
    /// Signalled whenever a sync ends.
    sync_done: Condvar,
}

/// The durable ledger: what has been handled, acknowledged, notified or parked. Cloning shares
/// it.
///
/// Sources deliver at least once: a message stays waiting until it is acknowledged, and a crash
/// between handling and acknowledging hands it out again. The ledger turns that into effectively
/// exactly-once handling. Before a message is acknowledged its `Handled` entry is written and
/// synced to disk; a message whose key is already `Handled` is acknowledged without being
/// handed to the handler again.
///
/// The file is append-only JSON lines; an append returns only once its line is synced to disk.
/// Appends that arrive while a sync is under way are synced together by the next one (group
/// commit: one `fdatasync` for many messages handled at once, not one each), and
/// [`Ledger::append_async`] waits for that on tokio's blocking pool, so the pipeline's tasks
/// never hold a runtime thread through a disk sync. On open, every complete line is replayed; a
/// torn last line (a crash mid-write) is ignored and reported, never fatal. Each line is small,
/// so the file grows by about 200 bytes per message; [`Ledger::compact`] rewrites it with one
/// line per key.
#[derive(Clone)]
pub struct Ledger {
    path: Option<PathBuf>,
    inner: Arc<Shared>,
    torn_tail: bool,
    /// The acknowledged messages, on disk (file ledgers only).
    cold: Option<Arc<ColdIndex>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("keys", &self.len())
            .finish()
    }
}

impl Ledger {
    /// A ledger that lives only in memory (for tests and one-shot runs).
    pub fn in_memory() -> Self {
        Ledger {
            path: None,
            inner: Arc::new(Shared {
                state: Mutex::new(Inner::new(None, HashMap::new())),
                sync_done: Condvar::new(),
                threads: Mutex::new(HashMap::new()),
            }),
            torn_tail: false,
            cold: None,
        }
    }

    /// Opens (or creates) the ledger file at `path` and replays it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            httpcore::fs::create_private_dir_all(dir).map_err(io)?;
        }
        let mut records: HashMap<String, Record> = HashMap::new();
        // Acknowledgements recorded before lines carried a time count from now: they expire one
        // retention period after the upgrade, never at once.
        let opened_at = SystemTime::now();
        let mut torn_tail = false;
        let mut valid_len: u64 = 0;
        if path.exists() {
            let raw = std::fs::read(&path).map_err(io)?;
            let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
            let total = lines.len();
            for (i, bytes) in lines.iter().enumerate() {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    valid_len += bytes.len() as u64 + 1;
                    continue;
                }
                // `split` yields an empty last piece when the file ends with a newline, so a
                // non-empty last piece is a line whose newline was never written.
                let unterminated = i + 1 == total;
                match serde_json::from_slice::<Line>(bytes) {
                    Ok(line) if !unterminated => {
                        let at = line.at.map_or(opened_at, from_unix);
                        records.entry(line.key).or_default().apply(&line.entry, at);
                        valid_len += bytes.len() as u64 + 1;
                    }
                    // A crash mid-append leaves a partial last line: drop it.
                    _ if unterminated => torn_tail = true,
                    Ok(_) => {}
                    Err(e) => {
                        return Err(LedgerError::Corrupt {
                            path,
                            line: i + 1,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        let file = httpcore::fs::open_private_append(&path).map_err(io)?;
        if torn_tail {
            // Cut the torn line so the next append starts on a fresh line.
            file.set_len(valid_len).map_err(io)?;
        }
        let cold = ColdIndex::open(&path)?;
        // Lines about a key whose record is in the index (an acknowledgement made again after
        // it moved there) extend that record: the facts only ever grow, so the two are joined.
        for (key, r) in records.iter_mut() {
            if let Some(base) = cold.get(key)? {
                r.join(&base);
            }
        }
        let ledger = Ledger {
            path: Some(path),
            inner: Arc::new(Shared {
                state: Mutex::new(Inner::new(Some(file), records)),
                sync_done: Condvar::new(),
                threads: Mutex::new(HashMap::new()),
            }),
            torn_tail,
            cold: Some(Arc::new(cold)),
        };
        // What the file says was acknowledged moves to the index; the file keeps the rest.
        ledger.settle(1)?;
        Ok(ledger)
    }

    /// Whether opening found (and dropped) a torn last line.
    pub fn had_torn_tail(&self) -> bool {
        self.torn_tail
    }

    /// The ledger file, if it has one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What the ledger knows about `key` (`None` also when the on-disk index of acknowledged
    /// messages cannot be read: see [`try_get`](Self::try_get)).
    pub fn get(&self, key: &str) -> Option<Record> {
        self.try_get(key).unwrap_or_else(|e| {
            tracing::error!(key, error = %e, "reading the ledger failed");
            None
        })
    }

    /// What the ledger knows about `key`, or why it cannot tell. A message acknowledged a while
    /// ago is answered from the on-disk index, with only what the pipeline needs of it: handled
    /// or parked, acknowledged (or found gone), and when.
    pub fn try_get(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        if let Some(r) = self.lock().records.get(key) {
            return Ok(Some(r.clone()));
        }
        match &self.cold {
            Some(cold) => cold.get(key),
            None => Ok(None),
        }
    }

    /// [`LedgerStore::remember_threads`](crate::LedgerStore::remember_threads) at `at`.
    pub(crate) fn remember_threads_now(
        &self,
        pairs: &[(String, String)],
        at: SystemTime,
    ) -> Result<(), LedgerError> {
        if pairs.is_empty() {
            return Ok(());
        }
        if let Some(cold) = &self.cold {
            return cold.remember_threads(pairs, at);
        }
        let mut threads = self
            .inner
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (reference, root) in pairs {
            threads
                .entry(reference.clone())
                .or_insert_with(|| (root.clone(), at));
        }
        Ok(())
    }

    /// [`LedgerStore::find_thread`](crate::LedgerStore::find_thread).
    pub(crate) fn find_thread_now(
        &self,
        refs: &[String],
    ) -> Result<Option<crate::ThreadMatch>, LedgerError> {
        if let Some(cold) = &self.cold {
            return Ok(cold
                .find_thread(refs)?
                .map(|(i, root)| crate::ThreadMatch::new(root, refs[i].clone())));
        }
        let threads = self
            .inner
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(refs.iter().find_map(|r| {
            threads
                .get(r)
                .map(|(root, _)| crate::ThreadMatch::new(root.clone(), r.clone()))
        }))
    }

    /// How many keys the ledger knows.
    pub fn len(&self) -> usize {
        let cold = self
            .cold
            .as_ref()
            .map_or(0, |c| c.len().unwrap_or_default());
        self.lock().records.len() + cold
    }

    /// Whether the ledger knows no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every key held in memory with its record: the messages still open, and those
    /// acknowledged since the ledger last moved acknowledged messages to its on-disk index
    /// (every few thousand; an in-memory ledger keeps them all).
    pub fn records(&self) -> Vec<(String, Record)> {
        self.lock()
            .records
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Keys starting with `prefix` that were handled or parked but never acknowledged (nor
    /// found gone), with their records: acknowledgements still owed to the source.
    pub fn unacknowledged(&self, prefix: &str) -> Vec<(String, Record)> {
        self.lock()
            .records
            .iter()
            .filter(|(k, r)| {
                k.starts_with(prefix) && (r.handled || r.parked.is_some()) && !r.acknowledged
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect()
    }

    /// Appends an entry and returns once it is on disk. This blocks the calling thread for a
    /// disk sync: from async code use [`append_async`](Self::append_async).
    ///
    /// Appends from several threads share syncs: the line is written under the lock, then one
    /// thread at a time syncs everything written so far while the others wait for it.
    pub fn append(&self, key: &str, entry: Entry) -> Result<(), LedgerError> {
        self.append_many(&[(key, entry)])
    }

    /// Appends several entries in one write and returns once they are all on disk (one sync
    /// for all of them). If it fails, none of them may be on disk.
    pub fn append_many<K: AsRef<str>>(&self, entries: &[(K, Entry)]) -> Result<(), LedgerError> {
        let io = |source| LedgerError::Io {
            path: self.path.clone().unwrap_or_default(),
            source,
        };
        // Whole seconds, as the file keeps them: a record reads the same after reopening.
        let now = from_unix(unix(SystemTime::now()));
        let mut g = self.lock();
        // A key whose record moved to the index comes back into memory whole first: a new entry
        // extends its record, it never starts an empty one that would then replace it (an
        // acknowledgement made again would otherwise forget that the message was handled).
        if let Some(cold) = &self.cold {
            for (key, _) in entries {
                let key = key.as_ref();
                if !g.records.contains_key(key)
                    && let Some(r) = cold.get(key)?
                {
                    g.acknowledged += usize::from(r.acknowledged);
                    g.records.insert(key.to_owned(), r);
                }
            }
        }
        let Some(file) = g.file.clone() else {
            for (key, entry) in entries {
                g.apply(key.as_ref(), entry, now);
            }
            return Ok(());
        };
        let mut lines = Vec::with_capacity(entries.len() * 128);
        for (key, entry) in entries {
            push_line(&mut lines, key.as_ref(), entry, Some(now), false).map_err(io)?;
        }
        (&*file).write_all(&lines).map_err(io)?;
        // Readers see the entries from here on, before their sync ends; the caller goes on
        // (hands over, acknowledges, notifies) only once it has. Applying them now also keeps
        // `compact`, which rewrites the file from the records, from dropping lines that are
        // written but not yet synced.
        for (key, entry) in entries {
            g.apply(key.as_ref(), entry, now);
        }
        g.written += 1;
        let mine = g.written;
        loop {
            if g.synced >= mine {
                let settle = g.acknowledged >= SETTLE_AT;
                drop(g);
                return if settle {
                    self.settle(SETTLE_AT)
                } else {
                    Ok(())
                };
            }
            if g.syncing {
                g = self
                    .inner
                    .sync_done
                    .wait(g)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // This thread syncs for everyone written so far.
            g.syncing = true;
            let target = g.written;
            let file = g.file.clone();
            drop(g);
            let synced = file.as_deref().map_or(Ok(()), File::sync_data);
            g = self.lock();
            g.syncing = false;
            if synced.is_ok() && g.synced < target {
                g.synced = target;
            }
            self.inner.sync_done.notify_all();
            synced.map_err(io)?;
        }
    }

    /// [`append_many`](Self::append_many) on tokio's blocking thread pool (see
    /// [`append_async`](Self::append_async)).
    pub async fn append_many_async(
        &self,
        entries: Vec<(String, Entry)>,
    ) -> Result<(), LedgerError> {
        if self.path.is_none() {
            return self.append_many(&entries);
        }
        let ledger = self.clone();
        tokio::task::spawn_blocking(move || ledger.append_many(&entries))
            .await
            .unwrap_or_else(|e| Err(self.unfinished(e)))
    }

    /// [`append`](Self::append) on tokio's blocking thread pool, so the disk sync does not hold
    /// one of the runtime's threads (an in-memory ledger appends at once). Must be called within
    /// a tokio runtime.
    pub async fn append_async(&self, key: &str, entry: Entry) -> Result<(), LedgerError> {
        if self.path.is_none() {
            return self.append(key, entry);
        }
        let ledger = self.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || ledger.append(&key, entry))
            .await
            .unwrap_or_else(|e| Err(self.unfinished(e)))
    }

    fn unfinished(&self, e: tokio::task::JoinError) -> LedgerError {
        LedgerError::Io {
            path: self.path.clone().unwrap_or_default(),
            source: std::io::Error::other(format!("the ledger write did not finish: {e}")),
        }
    }

    /// Forgets every key acknowledged (or found gone) before `cutoff` and, if any was, rewrites
    /// the file without them ([`compact`](Self::compact)). Returns how many were forgotten.
    ///
    /// This is what keeps the ledger from growing without bound: a message that was
    /// acknowledged is no longer handed out by its source (it was marked read, moved or found
    /// gone), so its record is no longer needed once the retention has passed.
    pub fn expire_acknowledged(&self, cutoff: SystemTime) -> Result<usize, LedgerError> {
        let removed = {
            let mut g = self.lock();
            let before = g.records.len();
            g.records
                .retain(|_, r| !(r.acknowledged && r.acknowledged_at.is_some_and(|t| t < cutoff)));
            let removed = before - g.records.len();
            g.acknowledged -= removed;
            removed
        };
        if removed > 0 {
            self.compact()?;
        }
        let cold = match &self.cold {
            Some(cold) => cold.expire(cutoff)?,
            None => {
                self.inner
                    .threads
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .retain(|_, (_, at)| *at >= cutoff);
                0
            }
        };
        // History segments last written before the cutoff hold only what has expired.
        if let Some(path) = &self.path {
            for (_, segment) in history_segments(path).unwrap_or_default() {
                let old = std::fs::metadata(&segment)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff);
                if old {
                    let _ = std::fs::remove_file(&segment);
                }
            }
        }
        Ok(removed + cold)
    }

    /// Moves the acknowledged records held in memory to the on-disk index (one durable commit)
    /// and compacts the file to the rest, if there are at least `at_least` of them. The index
    /// is written first: a crash before the file is rewritten leaves them in both, and the
    /// next open moves them again.
    fn settle(&self, at_least: usize) -> Result<(), LedgerError> {
        let Some(cold) = &self.cold else {
            return Ok(());
        };
        let mut g = self.lock();
        if g.acknowledged < at_least.max(1) {
            return Ok(());
        }
        cold.insert(
            g.records
                .iter()
                .filter(|(_, r)| r.acknowledged)
                .map(|(k, r)| (k.as_str(), r)),
        )?;
        g.records.retain(|_, r| !r.acknowledged);
        g.acknowledged = 0;
        if let Some(path) = &self.path {
            archive(path).map_err(|source| LedgerError::Io {
                path: path.clone(),
                source,
            })?;
        }
        self.compact_locked(&mut g)
    }

    /// Rewrites the file with the folded state of every key held in memory (atomically,
    /// through a temporary file and rename).
    pub fn compact(&self) -> Result<(), LedgerError> {
        let mut g = self.lock();
        self.compact_locked(&mut g)
    }

    fn compact_locked(&self, inner: &mut Inner) -> Result<(), LedgerError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        let mut out = Vec::new();
        for (key, rec) in &inner.records {
            for entry in entries_for(rec) {
                push_line(&mut out, key, &entry, rec.acknowledged_at, true).map_err(io)?;
            }
        }
        httpcore::fs::write_atomic(&path, &out, httpcore::fs::FileMode::OwnerOnly).map_err(io)?;
        inner.file = Some(Arc::new(
            OpenOptions::new().append(true).open(&path).map_err(io)?,
        ));
        // Everything written so far is in the rewritten, synced file.
        inner.synced = inner.written;
        self.inner.sync_done.notify_all();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Appends the JSON line of `entry` for `key` to `out`; an acknowledgement carries `at`.
fn push_line(
    out: &mut Vec<u8>,
    key: &str,
    entry: &Entry,
    at: Option<SystemTime>,
    carried: bool,
) -> std::io::Result<()> {
    let at = at
        .filter(|_| matches!(entry, Entry::Acknowledged | Entry::AcknowledgedByAbsence))
        .map(unix);
    let line = LineRef {
        key,
        entry,
        at,
        carried,
    };
    serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
    out.push(b'\n');
    Ok(())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn from_unix(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn entries_for(rec: &Record) -> Vec<Entry> {
    let mut out = Vec::new();
    if rec.attempts > 0 {
        out.push(Entry::Failed {
            attempts: rec.attempts,
            reason: String::new(),
        });
    }
    if rec.handled {
        out.push(Entry::Handled {
            project: rec.project.clone(),
        });
    }
    if rec.notification_attempted {
        out.push(match &rec.notified_from {
            Some(from) => Entry::Notified { from: from.clone() },
            None => Entry::Notifying,
        });
    }
    if let Some(reason) = &rec.parked {
        out.push(Entry::Parked {
            reason: reason.clone(),
        });
    }
    if rec.acknowledged_by_absence {
        out.push(Entry::AcknowledgedByAbsence);
    } else if rec.acknowledged {
        out.push(Entry::Acknowledged);
    }
    out
}

#[cfg(test)]
mod tests;
