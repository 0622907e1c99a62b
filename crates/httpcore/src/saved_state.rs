//! [`SavedState`]: an incremental source's state in memory, loaded on first use and saved with
//! concurrent changes coalesced into one write.

use std::future::Future;
use std::sync::Mutex as StdMutex;

use connector::Error;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

/// The state of one incremental source (graph-mail's delta state, ews-mail's sync state) as
/// its source holds it: loaded from its store on first use, changed in memory under a lock,
/// and saved with a **group commit**.
///
/// Whoever changes the state records the change with [`changed`](Self::changed) while it
/// holds the lock, then calls [`save_through`](Self::save_through) after releasing it. Saves
/// run one at a time; each writes the newest state recorded, so acknowledgements that finish
/// while a save is under way are all made durable by the next single save instead of one save
/// each, and an older state is never written after a newer one. `save_through` returns once
/// the caller's change is saved (by its own write or by a later one that covered it), so a
/// caller that waits for it knows its change survives a restart, as with a save of its own.
///
/// The lock is held across what reads and changes the state (a delta round, a merge); the
/// save is not made under it, so a slow write (a file's `fsync`, a database round trip) does
/// not keep the source's other tasks from the state. A failed save leaves the state in memory
/// ahead of the store; the next save writes it.
pub struct SavedState<S> {
    key: String,
    state: Mutex<Option<S>>,
    /// The newest recorded change not yet saved: its number and a copy of the state.
    latest: StdMutex<Option<(u64, S)>>,
    /// How many changes were recorded (only under `state`'s lock).
    changes: StdMutex<u64>,
    /// The number of the newest change saved; held while a save runs.
    saved: Mutex<u64>,
}

impl<S> std::fmt::Debug for SavedState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedState")
            .field("key", &self.key)
            .finish()
    }
}

impl<S: Clone + Default + Send> SavedState<S> {
    /// The state under `key` in its store, not loaded yet.
    pub fn new(key: impl Into<String>) -> Self {
        SavedState {
            key: key.into(),
            state: Mutex::new(None),
            latest: StdMutex::new(None),
            changes: StdMutex::new(0),
            saved: Mutex::new(0),
        }
    }

    /// The key the state is stored under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Locks the state, loading it with `load` first if this is its first use (a store that
    /// has none gives the default state). `load` is only awaited when needed.
    pub async fn lock(
        &self,
        load: impl Future<Output = Result<Option<S>, Error>>,
    ) -> Result<MappedMutexGuard<'_, S>, Error> {
        let mut slot = self.state.lock().await;
        if slot.is_none() {
            *slot = Some(load.await?.unwrap_or_default());
        }
        MutexGuard::try_map(slot, |s| s.as_mut())
            .map_err(|_| Error::configuration(format!("the state of {} is not loaded", self.key)))
    }

    /// Records that the locked `state` changed (call it while holding the guard of
    /// [`lock`](Self::lock)); the number it returns is what [`save_through`](Self::save_through)
    /// waits for.
    pub fn changed(&self, state: &MappedMutexGuard<'_, S>) -> u64 {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        *changes += 1;
        let n = *changes;
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some((n, S::clone(state)));
        n
    }

    /// Returns once change `n` is saved: at once if a save already covered it, otherwise after
    /// writing the newest recorded state with `save`. Call it without holding the lock. An
    /// error is `save`'s; the state stays recorded, for the next call to write.
    pub async fn save_through<F, Fut>(&self, n: u64, save: F) -> Result<(), Error>
    where
        F: FnOnce(S) -> Fut,
        Fut: Future<Output = Result<(), Error>>,
    {
        let mut saved = self.saved.lock().await;
        if *saved >= n {
            return Ok(());
        }
        let newest = self.latest.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some((upto, state)) = newest else {
            // Unreachable while changes are recorded before they are saved: nothing newer
            // than the last save is waiting, so `n` was covered.
            return Ok(());
        };
        match save(state.clone()).await {
            Ok(()) => {
                *saved = upto;
                Ok(())
            }
            Err(e) => {
                let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
                if latest.is_none() {
                    *latest = Some((upto, state));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn changes_made_during_a_save_are_written_by_one_later_save_never_an_older_one() {
        let cell = Arc::new(SavedState::<Vec<u32>>::new("k"));
        let writes: Arc<StdMutex<Vec<Vec<u32>>>> = Arc::default();
        let loads = AtomicUsize::new(0);
        // Counted when awaited: building the future costs nothing.
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok(Some(vec![0]))
        };
        let first = {
            let mut s = cell.lock(load()).await.unwrap();
            s.push(1);
            cell.changed(&s)
        };
        // The first save is slow; three changes are recorded while it runs.
        let slow = {
            let (cell, writes) = (cell.clone(), writes.clone());
            tokio::spawn(async move {
                cell.save_through(first, |s| async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    writes.lock().unwrap().push(s);
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut waiters = Vec::new();
        for v in 2..5 {
            let n = {
                let mut s = cell.lock(load()).await.unwrap();
                s.push(v);
                cell.changed(&s)
            };
            let (cell, writes) = (cell.clone(), writes.clone());
            waiters.push(tokio::spawn(async move {
                cell.save_through(n, |s| async move {
                    writes.lock().unwrap().push(s);
                    Ok(())
                })
                .await
            }));
        }
        slow.await.unwrap().unwrap();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "loaded on first use only");
        // The state of the first change, then one write with all three later ones.
        assert_eq!(*writes.lock().unwrap(), [vec![0, 1], vec![0, 1, 2, 3, 4]]);
    }

    #[tokio::test]
    async fn a_failed_save_leaves_the_change_for_the_next_one() {
        let cell = SavedState::<u32>::new("k");
        let n = {
            let mut s = cell.lock(async { Ok(None) }).await.unwrap();
            *s = 7;
            cell.changed(&s)
        };
        let err = cell
            .save_through(n, |_| async { Err(Error::configuration("disk full")) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        let mut written = None;
        cell.save_through(n, |s| {
            written = Some(s);
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(written, Some(7));
        // Saved now: a second call for the same change writes nothing.
        let mut again = false;
        cell.save_through(n, |_| {
            again = true;
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert!(!again);
    }

    #[tokio::test]
    async fn a_failed_load_is_returned_and_tried_again_next_time() {
        let cell = SavedState::<u32>::new("k");
        let err = cell
            .lock(async { Err(Error::configuration("unreadable")) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unreadable"));
        assert_eq!(*cell.lock(async { Ok(Some(3)) }).await.unwrap(), 3);
    }
}
