//! The pipeline's state behind traits: the ledger ([`LedgerStore`]) and the mailbox leases
//! ([`LeaseStore`]), each with a backend in this crate that needs no database.
//!
//! One process on local files uses [`Ledger`] (a JSON-lines file) and needs no lease at all. A
//! fleet of workers shares both through a database (the `fleet` crate's PostgreSQL backends):
//! each source is then owned by at most one worker at a time, and every ledger write carries the
//! owner's [`Fence`] so that a worker that lost its lease (paused, partitioned, slow) cannot
//! record anything with its stale epoch.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::ledger::{Entry, Ledger, LedgerError, Record};

/// Proof that a worker holds the lease of one source: the fencing epoch its writes carry.
///
/// Each time a source's lease changes hands (or is taken again after it was released or
/// expired) its epoch grows, so an older epoch names an owner that is no longer in charge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Fence {
    /// The source (its name in the configuration, the ledger keys' prefix).
    pub source: String,
    /// The worker holding it.
    pub worker: String,
    /// The fencing epoch: larger than every earlier holder's.
    pub epoch: u64,
}

impl Fence {
    /// A fence for `source` held by `worker` at `epoch` (backends make these; tests too).
    pub fn new(source: impl Into<String>, worker: impl Into<String>, epoch: u64) -> Self {
        Fence {
            source: source.into(),
            worker: worker.into(),
            epoch,
        }
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source {} held by {} at epoch {}",
            self.source, self.worker, self.epoch
        )
    }
}

/// Where the pipeline records what it did with each message (see [`Ledger`] for what the
/// records mean and why they make handling effectively exactly-once).
///
/// Implementations: [`Ledger`] (a local file, or memory), and the `fleet` crate's PostgreSQL
/// ledger. Keys are `<source>|<message id>`.
#[async_trait]
pub trait LedgerStore: Send + Sync + fmt::Debug {
    /// What is known about `key`.
    async fn get(&self, key: &str) -> Result<Option<Record>, LedgerError>;

    /// What is known about each of `keys`, in order: one lookup for a whole page of messages.
    /// The default asks [`get`](Self::get) for each; a database backend asks once.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Record>>, LedgerError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    /// Records `entries` durably, all or none, and returns once they are. With a `fence`, the
    /// store refuses ([`LedgerError::Fenced`]) unless the fence's worker still holds the
    /// source's lease at that epoch; without one (a single process) it records unconditionally.
    async fn append(
        &self,
        entries: Vec<(String, Entry)>,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError>;

    /// Keys starting with `prefix` that were handled or parked but never acknowledged (nor found
    /// gone), with their records: the acknowledgements still owed to the source.
    async fn unacknowledged(&self, prefix: &str) -> Result<Vec<(String, Record)>, LedgerError>;

    /// Forgets the keys that were acknowledged (or found gone) before `cutoff`, and returns how
    /// many. A message its source no longer hands out needs no record; see
    /// [`Options::retention`](crate::Options::retention). The threads remembered before
    /// `cutoff` are forgotten too.
    async fn expire(&self, cutoff: SystemTime) -> Result<usize, LedgerError>;

    /// Remembers, for each `(reference, root)` pair, that mail naming `reference` (a
    /// Message-ID without brackets, or `conversation:<guid>`, see
    /// [`ThreadRefs::lookups`](crate::ThreadRefs::lookups)) belongs to the thread whose first
    /// message has the key `root`: one call for a whole page of messages. A reference already
    /// remembered keeps its first root. The default remembers nothing (threads are then not
    /// found).
    async fn remember_threads(&self, pairs: &[(String, String)]) -> Result<(), LedgerError> {
        let _ = pairs;
        Ok(())
    }

    /// The thread of the first of `refs` that was remembered, if any.
    async fn find_thread(
        &self,
        refs: &[String],
    ) -> Result<Option<crate::ThreadMatch>, LedgerError> {
        let _ = refs;
        Ok(None)
    }
}

#[async_trait]
impl LedgerStore for Ledger {
    async fn get(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        // Memory, or a B-tree read of the acknowledged index through its page cache: short
        // enough to do in place.
        self.try_get(key)
    }

    async fn append(
        &self,
        entries: Vec<(String, Entry)>,
        _fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        // One process owns every source of a local ledger: there is nobody to fence out.
        self.append_many_async(entries).await
    }

    async fn unacknowledged(&self, prefix: &str) -> Result<Vec<(String, Record)>, LedgerError> {
        Ok(Ledger::unacknowledged(self, prefix))
    }

    async fn remember_threads(&self, pairs: &[(String, String)]) -> Result<(), LedgerError> {
        self.remember_threads_now(pairs, SystemTime::now())
    }

    async fn find_thread(
        &self,
        refs: &[String],
    ) -> Result<Option<crate::ThreadMatch>, LedgerError> {
        self.find_thread_now(refs)
    }

    async fn expire(&self, cutoff: SystemTime) -> Result<usize, LedgerError> {
        let ledger = self.clone();
        if self.path().is_none() {
            return ledger.expire_acknowledged(cutoff);
        }
        tokio::task::spawn_blocking(move || ledger.expire_acknowledged(cutoff))
            .await
            .unwrap_or_else(|e| {
                Err(LedgerError::Backend {
                    backend: "file",
                    reason: format!("expiring did not finish: {e}"),
                })
            })
    }
}

/// An error of a [`LeaseStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The store could not be reached or answered with an error; the caller pauses and tries
    /// again (the leases it holds expire on their own if it never comes back).
    #[error("lease store ({backend}): {reason}")]
    Unavailable {
        /// Which backend (`postgres`, `memory`).
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// What a worker sees of the fleet at one heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetView {
    /// Workers whose heartbeat has not expired, this one included, sorted.
    pub live_workers: Vec<String>,
}

impl FleetView {
    /// The view of a fleet whose live workers are `live_workers` (sorted here).
    pub fn new(mut live_workers: Vec<String>) -> Self {
        live_workers.sort();
        live_workers.dedup();
        FleetView { live_workers }
    }
}

/// Who owns which source: leases that expire unless renewed, with fencing epochs.
///
/// A worker [`heartbeat`](Self::heartbeat)s, [`acquire`](Self::acquire)s the sources it should
/// serve, [`renew`](Self::renew)s them well before they expire, and
/// [`release`](Self::release)s them when it stops or hands them to another worker. A lease that
/// is not renewed in time (the worker was SIGKILLed, paused, or cut off) may be acquired by
/// another worker, at a higher epoch.
#[async_trait]
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Records that `worker` is alive for `ttl` from now, and returns the live workers.
    async fn heartbeat(&self, worker: &str, ttl: Duration) -> Result<FleetView, LeaseError>;

    /// Takes the lease of `source` for `worker` for `ttl`, if nobody holds it or its holder let
    /// it expire: `Some` with a fence at a new, higher epoch; `None` if another worker holds it.
    async fn acquire(
        &self,
        source: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, LeaseError>;

    /// Extends a held lease by `ttl` from now: `false` if it was lost (expired and taken, or
    /// released), in which case the worker must stop working on the source at once.
    async fn renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, LeaseError>;

    /// [`renew`](Self::renew) for each of `fences` (all of one worker's leases at each tick),
    /// one answer per fence in order. The default renews them one by one; a database backend
    /// renews them in one statement, so that a worker holding many leases never has one run
    /// out while it is still renewing the others.
    async fn renew_all(&self, fences: &[Fence], ttl: Duration) -> Result<Vec<bool>, LeaseError> {
        let mut out = Vec::with_capacity(fences.len());
        for f in fences {
            out.push(self.renew(f, ttl).await?);
        }
        Ok(out)
    }

    /// Gives the lease back so another worker can take it at once (a no-op if it was lost).
    async fn release(&self, fence: &Fence) -> Result<(), LeaseError>;

    /// Says that `worker` is leaving: its heartbeat is removed (its leases are released
    /// one by one before).
    async fn leave(&self, worker: &str) -> Result<(), LeaseError>;

    /// Who holds each source's lease now (unexpired leases only): `(source, fence)`.
    async fn holders(&self) -> Result<Vec<Fence>, LeaseError>;
}

#[derive(Debug)]
struct Held {
    worker: String,
    epoch: u64,
    until: Instant,
}

#[derive(Debug, Default)]
struct LocalState {
    leases: HashMap<String, Held>,
    /// The last epoch of each source, kept after a release so that epochs only grow.
    epochs: HashMap<String, u64>,
    workers: HashMap<String, Instant>,
}

/// Leases held in this process's memory: for tests, and for several pipelines in one process.
/// A single `m365mail run` needs none.
#[derive(Debug, Default)]
pub struct LocalLeases {
    state: Mutex<LocalState>,
}

impl LocalLeases {
    /// An empty set of leases.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LeaseStore for LocalLeases {
    async fn heartbeat(&self, worker: &str, ttl: Duration) -> Result<FleetView, LeaseError> {
        let now = Instant::now();
        let mut s = self.state();
        s.workers.insert(worker.to_owned(), now + ttl);
        s.workers.retain(|_, until| *until > now);
        Ok(FleetView::new(s.workers.keys().cloned().collect()))
    }

    async fn acquire(
        &self,
        source: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, LeaseError> {
        let now = Instant::now();
        let mut s = self.state();
        if let Some(h) = s.leases.get(source)
            && h.until > now
            && h.worker != worker
        {
            return Ok(None);
        }
        let epoch = s.epochs.get(source).copied().unwrap_or(0) + 1;
        s.epochs.insert(source.to_owned(), epoch);
        s.leases.insert(
            source.to_owned(),
            Held {
                worker: worker.to_owned(),
                epoch,
                until: now + ttl,
            },
        );
        Ok(Some(Fence::new(source, worker, epoch)))
    }

    async fn renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, LeaseError> {
        let now = Instant::now();
        let mut s = self.state();
        match s.leases.get_mut(&fence.source) {
            Some(h) if h.worker == fence.worker && h.epoch == fence.epoch && h.until > now => {
                h.until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, fence: &Fence) -> Result<(), LeaseError> {
        let mut s = self.state();
        if s.leases
            .get(&fence.source)
            .is_some_and(|h| h.worker == fence.worker && h.epoch == fence.epoch)
        {
            s.leases.remove(&fence.source);
        }
        Ok(())
    }

    async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        self.state().workers.remove(worker);
        Ok(())
    }

    async fn holders(&self) -> Result<Vec<Fence>, LeaseError> {
        let now = Instant::now();
        let s = self.state();
        let mut out: Vec<Fence> = s
            .leases
            .iter()
            .filter(|(_, h)| h.until > now)
            .map(|(src, h)| Fence::new(src.clone(), h.worker.clone(), h.epoch))
            .collect();
        out.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lease_is_exclusive_until_released_or_expired_and_epochs_grow() {
        let l = LocalLeases::new();
        let ttl = Duration::from_secs(60);
        let a = l.acquire("s", "w1", ttl).await.unwrap().unwrap();
        assert_eq!(a.epoch, 1);
        assert!(l.acquire("s", "w2", ttl).await.unwrap().is_none());
        assert!(l.renew(&a, ttl).await.unwrap());
        l.release(&a).await.unwrap();
        assert!(!l.renew(&a, ttl).await.unwrap(), "a released lease is lost");
        let b = l.acquire("s", "w2", ttl).await.unwrap().unwrap();
        assert_eq!(b.epoch, 2);
        // An expired lease is taken over at a higher epoch, and the old holder cannot renew.
        let short = l
            .acquire("t", "w1", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let c = l.acquire("t", "w2", ttl).await.unwrap().unwrap();
        assert!(c.epoch > short.epoch);
        assert!(!l.renew(&short, ttl).await.unwrap());
        // The old holder's release does not free the new holder's lease.
        l.release(&short).await.unwrap();
        assert_eq!(l.holders().await.unwrap(), vec![b, c]);
    }

    #[tokio::test]
    async fn heartbeats_expire_and_leaving_is_immediate() {
        let l = LocalLeases::new();
        l.heartbeat("w1", Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let v = l.heartbeat("w2", Duration::from_secs(60)).await.unwrap();
        assert_eq!(v.live_workers, ["w2"]);
        l.heartbeat("w3", Duration::from_secs(60)).await.unwrap();
        l.leave("w2").await.unwrap();
        let v = l.heartbeat("w3", Duration::from_secs(60)).await.unwrap();
        assert_eq!(v.live_workers, ["w3"]);
    }
}
