//! The acknowledged messages of a file ledger, on disk: what keeps the ledger's memory flat as
//! the count of handled messages grows.
//!
//! Once a message is acknowledged, the pipeline needs its record only should its source ever
//! hand it out again (handled: acknowledge it again, do not hand it over; parked: move it to
//! the poison folder again) and for expiry. Those records are kept here, whole, in a
//! [redb](https://docs.rs/redb) table keyed by the first 16 bytes of the SHA-256 of the ledger
//! key, and leave the in-memory map and the JSON lines file (which is compacted to the messages
//! still open). redb rather than a hand-written
//! index: its commits are crash-safe, its lookups are B-tree reads through a bounded page
//! cache, and it is pure Rust without dependencies of its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::{Digest, Sha256};

use super::{LedgerError, Record};

/// The columns of an acknowledged record: when (Unix seconds), flags, attempts, project,
/// the notification's `From`, the parking reason.
type Row<'a> = (
    u64,
    u8,
    u32,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// Key digest → [`Row`].
const ACKED: TableDefinition<&[u8], Row<'static>> = TableDefinition::new("acknowledged");

/// A thread's reference (its digest) → (the thread's root key, when remembered in Unix
/// seconds). See [`LedgerStore::remember_threads`](crate::LedgerStore::remember_threads).
const THREADS: TableDefinition<&[u8], (&str, u64)> = TableDefinition::new("threads");

/// Thread references are committed without a sync of their own (one commit per page of
/// messages); every this many, a commit syncs them and everything before. A crash can lose
/// the last few: a reply to those messages then starts a thread of its own, nothing more.
const THREAD_SYNC_EVERY: u64 = 256;

const HANDLED: u8 = 1;
const BY_ABSENCE: u8 = 2;
const NOTIFICATION_ATTEMPTED: u8 = 4;

/// The page cache redb may use: the index's memory does not grow with its size.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

pub(super) struct ColdIndex {
    db: Database,
    path: PathBuf,
    /// Thread commits made so far (see [`THREAD_SYNC_EVERY`]).
    thread_commits: std::sync::atomic::AtomicU64,
}

impl ColdIndex {
    /// Opens (or creates, readable by its owner only) the index beside the ledger file.
    pub(super) fn open(ledger: &Path) -> Result<Self, LedgerError> {
        let mut name = ledger.as_os_str().to_owned();
        name.push(".acked.redb");
        let path = PathBuf::from(name);
        let err = |e: &dyn std::fmt::Display| LedgerError::Backend {
            backend: "file",
            reason: format!("{}: {e}", path.display()),
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| err(&e))?;
        // `create_with_backend(FileBackend::new(file)?)` is what redb 4.5 asks for in place of
        // `create_file`, which it deprecates: the same open, kept warning-free on a newer 4.x.
        let db = match redb::backends::FileBackend::new(file).and_then(|backend| {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create_with_backend(backend)
        }) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(err(
                    &"the ledger is already open (another m365mail using the same \
                     ledger file, or the same file opened twice in one process)",
                ));
            }
            Err(e) => return Err(err(&e)),
        };
        let index = ColdIndex {
            db,
            path,
            thread_commits: std::sync::atomic::AtomicU64::new(0),
        };
        // Create the table, so that reads never meet a missing one.
        let tx = index.db.begin_write().map_err(|e| index.err(&e))?;
        tx.open_table(ACKED).map_err(|e| index.err(&e))?;
        tx.open_table(THREADS).map_err(|e| index.err(&e))?;
        tx.commit().map_err(|e| index.err(&e))?;
        Ok(index)
    }

    fn err(&self, e: &dyn std::fmt::Display) -> LedgerError {
        LedgerError::Backend {
            backend: "file",
            reason: format!("{}: {e}", self.path.display()),
        }
    }

    /// The record of an acknowledged `key`, if it is here.
    pub(super) fn get(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        let tx = self.db.begin_read().map_err(|e| self.err(&e))?;
        let table = tx.open_table(ACKED).map_err(|e| self.err(&e))?;
        let found = table
            .get(digest(key).as_slice())
            .map_err(|e| self.err(&e))?;
        Ok(found.map(|v| {
            let (at, flags, attempts, project, notified_from, parked) = v.value();
            Record {
                attempts,
                handled: flags & HANDLED != 0,
                project: project.map(str::to_owned),
                notification_attempted: flags & NOTIFICATION_ATTEMPTED != 0,
                notified_from: notified_from.map(str::to_owned),
                acknowledged: true,
                acknowledged_by_absence: flags & BY_ABSENCE != 0,
                parked: parked.map(str::to_owned),
                acknowledged_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(at)),
            }
        }))
    }

    /// Adds acknowledged records, in one durable commit.
    pub(super) fn insert<'a>(
        &self,
        records: impl Iterator<Item = (&'a str, &'a Record)>,
    ) -> Result<(), LedgerError> {
        let tx = self.db.begin_write().map_err(|e| self.err(&e))?;
        {
            let mut table = tx.open_table(ACKED).map_err(|e| self.err(&e))?;
            for (key, r) in records {
                let mut flags = 0;
                if r.handled {
                    flags |= HANDLED;
                }
                if r.acknowledged_by_absence {
                    flags |= BY_ABSENCE;
                }
                if r.notification_attempted {
                    flags |= NOTIFICATION_ATTEMPTED;
                }
                let row: Row<'_> = (
                    r.acknowledged_at.map_or(0, super::unix),
                    flags,
                    r.attempts,
                    r.project.as_deref(),
                    r.notified_from.as_deref(),
                    r.parked.as_deref(),
                );
                table
                    .insert(digest(key).as_slice(), row)
                    .map_err(|e| self.err(&e))?;
            }
        }
        tx.commit().map_err(|e| self.err(&e))
    }

    /// Removes what was acknowledged before `cutoff`; returns how many.
    pub(super) fn expire(&self, cutoff: SystemTime) -> Result<usize, LedgerError> {
        let cutoff = super::unix(cutoff);
        let tx = self.db.begin_write().map_err(|e| self.err(&e))?;
        let removed = {
            let mut table = tx.open_table(ACKED).map_err(|e| self.err(&e))?;
            let before = table.len().map_err(|e| self.err(&e))?;
            table
                .retain(|_, row| row.0 >= cutoff)
                .map_err(|e| self.err(&e))?;
            let removed = before - table.len().map_err(|e| self.err(&e))?;
            let mut threads = tx.open_table(THREADS).map_err(|e| self.err(&e))?;
            threads
                .retain(|_, (_, at)| at >= cutoff)
                .map_err(|e| self.err(&e))?;
            removed
        };
        tx.commit().map_err(|e| self.err(&e))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// Remembers each `(reference, root)` pair, in one commit (a reference already here keeps
    /// its root).
    pub(super) fn remember_threads(
        &self,
        pairs: &[(String, String)],
        at: SystemTime,
    ) -> Result<(), LedgerError> {
        let mut tx = self.db.begin_write().map_err(|e| self.err(&e))?;
        let n = self
            .thread_commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !(n + 1).is_multiple_of(THREAD_SYNC_EVERY) {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| self.err(&e))?;
        }
        {
            let mut table = tx.open_table(THREADS).map_err(|e| self.err(&e))?;
            for (reference, root) in pairs {
                let d = digest(reference);
                let known = table.get(d.as_slice()).map_err(|e| self.err(&e))?.is_some();
                if !known {
                    table
                        .insert(d.as_slice(), (root.as_str(), super::unix(at)))
                        .map_err(|e| self.err(&e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(&e))
    }

    /// The root of the first of `refs` remembered here, with the reference's position.
    pub(super) fn find_thread(
        &self,
        refs: &[String],
    ) -> Result<Option<(usize, String)>, LedgerError> {
        let tx = self.db.begin_read().map_err(|e| self.err(&e))?;
        let table = tx.open_table(THREADS).map_err(|e| self.err(&e))?;
        for (i, r) in refs.iter().enumerate() {
            if let Some(v) = table.get(digest(r).as_slice()).map_err(|e| self.err(&e))? {
                return Ok(Some((i, v.value().0.to_owned())));
            }
        }
        Ok(None)
    }

    /// How many acknowledged messages are here.
    pub(super) fn len(&self) -> Result<usize, LedgerError> {
        let tx = self.db.begin_read().map_err(|e| self.err(&e))?;
        let table = tx.open_table(ACKED).map_err(|e| self.err(&e))?;
        let n = table.len().map_err(|e| self.err(&e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl Drop for ColdIndex {
    fn drop(&mut self) {
        // One synced commit makes the thread references committed without a sync durable.
        if let Ok(tx) = self.db.begin_write() {
            let _ = tx.commit();
        }
    }
}

/// The first 16 bytes of the key's SHA-256: collisions among even billions of keys are out of
/// reach, and every key takes the same room.
fn digest(key: &str) -> [u8; 16] {
    let full = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}
