//! [`SavedState`]: an incremental source's state in memory, loaded on first use and saved with
//! concurrent changes coalesced into one write.

use std::sync::{Arc, Mutex as StdMutex};

use connector::Error;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::StateStore;

/// The state of one incremental source (graph-mail's delta state, ews-mail's sync state) as
/// its source holds it: loaded from its [`StateStore`] on first use, changed in memory under a
/// lock, and saved to that store with a **group commit**.
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
    store: Arc<dyn StateStore<S>>,
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

impl<S: Clone + Default + Send + Sync> SavedState<S> {
    /// The state under `key` in `store`, not loaded yet.
    pub fn new(store: Arc<dyn StateStore<S>>, key: impl Into<String>) -> Self {
        SavedState {
            key: key.into(),
            store,
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

    /// The same store under `key`, not loaded yet (a source whose folder changed before its
    /// first use).
    pub fn with_key(self, key: impl Into<String>) -> Self {
        SavedState::new(self.store, key)
    }

    /// Locks the state, loading it from the store first if this is its first use (a store
    /// that has none gives the default state; a failed load is returned and tried again at
    /// the next lock).
    pub async fn lock(&self) -> Result<MappedMutexGuard<'_, S>, Error> {
        let mut slot = self.state.lock().await;
        if slot.is_none() {
            *slot = Some(self.store.load(&self.key).await?.unwrap_or_default());
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

    /// Changes the state with `change` under the lock and, if `change` says it changed
    /// anything, saves it as [`changed`](Self::changed) and [`save_through`](Self::save_through)
    /// do: the lock is released before the save, and changes that end together share one write.
    /// Returns whether the state changed; an error is a failed load (nothing changed) or a
    /// failed save (the change stays in memory, for the next save to write).
    ///
    /// This is the whole of a change that reads nothing back, such as forgetting acknowledged
    /// messages; a change that must see its save before it goes on uses the two steps itself.
    pub async fn update(&self, change: impl FnOnce(&mut S) -> bool) -> Result<bool, Error> {
        let n = {
            let mut state = self.lock().await?;
            if !change(&mut state) {
                return Ok(false);
            }
            self.changed(&state)
        };
        self.save_through(n).await?;
        Ok(true)
    }

    /// Returns once change `n` is saved: at once if a save already covered it, otherwise after
    /// writing the newest recorded state to the store. Call it without holding the lock. An
    /// error is the store's; the state stays recorded, for the next call to write.
    pub async fn save_through(&self, n: u64) -> Result<(), Error> {
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
        match self.store.save(&self.key, &state).await {
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
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A store that counts loads, records writes, and can be slow, or fail, once.
    #[derive(Default)]
    struct TestStore {
        initial: Option<Vec<u32>>,
        loads: AtomicUsize,
        writes: StdMutex<Vec<Vec<u32>>>,
        slow_write: AtomicBool,
        fail_write: AtomicBool,
        fail_load: AtomicBool,
    }

    #[async_trait::async_trait]
    impl StateStore<Vec<u32>> for TestStore {
        async fn load(&self, _key: &str) -> Result<Option<Vec<u32>>, Error> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if self.fail_load.swap(false, Ordering::SeqCst) {
                return Err(Error::configuration("unreadable"));
            }
            Ok(self.initial.clone())
        }
        async fn save(&self, _key: &str, state: &Vec<u32>) -> Result<(), Error> {
            if self.fail_write.swap(false, Ordering::SeqCst) {
                return Err(Error::configuration("disk full"));
            }
            if self.slow_write.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.writes.lock().unwrap().push(state.clone());
            Ok(())
        }
        async fn clear(&self, _key: &str) -> Result<(), Error> {
            Ok(())
        }
    }

    fn cell(store: &Arc<TestStore>) -> Arc<SavedState<Vec<u32>>> {
        Arc::new(SavedState::new(store.clone(), "k"))
    }

    #[tokio::test]
    async fn changes_made_during_a_save_are_written_by_one_later_save_never_an_older_one() {
        let store = Arc::new(TestStore {
            initial: Some(vec![0]),
            ..TestStore::default()
        });
        let cell = cell(&store);
        let first = {
            let mut s = cell.lock().await.unwrap();
            s.push(1);
            cell.changed(&s)
        };
        // The first save is slow; three changes are recorded while it runs.
        store.slow_write.store(true, Ordering::SeqCst);
        let slow = {
            let cell = cell.clone();
            tokio::spawn(async move { cell.save_through(first).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut waiters = Vec::new();
        for v in 2..5 {
            let n = {
                let mut s = cell.lock().await.unwrap();
                s.push(v);
                cell.changed(&s)
            };
            let cell = cell.clone();
            waiters.push(tokio::spawn(async move { cell.save_through(n).await }));
        }
        slow.await.unwrap().unwrap();
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(
            store.loads.load(Ordering::SeqCst),
            1,
            "loaded on first use only"
        );
        // The state of the first change, then one write with all three later ones.
        assert_eq!(
            *store.writes.lock().unwrap(),
            [vec![0, 1], vec![0, 1, 2, 3, 4]]
        );
    }

    #[tokio::test]
    async fn a_failed_save_leaves_the_change_for_the_next_one() {
        let store = Arc::new(TestStore::default());
        let cell = cell(&store);
        let n = {
            let mut s = cell.lock().await.unwrap();
            *s = vec![7];
            cell.changed(&s)
        };
        store.fail_write.store(true, Ordering::SeqCst);
        let err = cell.save_through(n).await.unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert!(store.writes.lock().unwrap().is_empty());
        cell.save_through(n).await.unwrap();
        assert_eq!(*store.writes.lock().unwrap(), [vec![7]]);
        // Saved now: a second call for the same change writes nothing.
        cell.save_through(n).await.unwrap();
        assert_eq!(store.writes.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_load_is_returned_and_tried_again_next_time() {
        let store = Arc::new(TestStore {
            initial: Some(vec![3]),
            ..TestStore::default()
        });
        store.fail_load.store(true, Ordering::SeqCst);
        let cell = cell(&store);
        let err = cell.lock().await.unwrap_err();
        assert!(err.to_string().contains("unreadable"));
        assert_eq!(*cell.lock().await.unwrap(), [3]);
        assert_eq!(store.loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_update_saves_what_it_changed_and_writes_nothing_for_no_change() {
        let store = Arc::new(TestStore {
            initial: Some(vec![1, 2]),
            ..TestStore::default()
        });
        let cell = cell(&store);
        let removed = |v: u32| {
            move |s: &mut Vec<u32>| {
                let before = s.len();
                s.retain(|x| *x != v);
                s.len() != before
            }
        };
        assert!(cell.update(removed(1)).await.unwrap());
        assert!(!cell.update(removed(9)).await.unwrap(), "nothing to change");
        assert_eq!(*store.writes.lock().unwrap(), [vec![2]]);
        // A failed save is returned and the change kept for the next save.
        store.fail_write.store(true, Ordering::SeqCst);
        assert!(cell.update(removed(2)).await.is_err());
        assert_eq!(*cell.lock().await.unwrap(), Vec::<u32>::new());
        assert!(
            cell.update(|s| {
                s.push(3);
                true
            })
            .await
            .unwrap()
        );
        assert_eq!(*store.writes.lock().unwrap(), [vec![2], vec![3]]);
    }

    #[tokio::test]
    async fn an_update_that_cannot_load_changes_nothing() {
        let store = Arc::new(TestStore {
            initial: Some(vec![4]),
            ..TestStore::default()
        });
        store.fail_load.store(true, Ordering::SeqCst);
        let cell = cell(&store);
        let mut called = false;
        let err = cell
            .update(|_| {
                called = true;
                true
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unreadable"));
        assert!(!called, "the change runs on a loaded state only");
        assert!(store.writes.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn another_key_starts_unloaded_over_the_same_store() {
        let store = Arc::new(TestStore {
            initial: Some(vec![5]),
            ..TestStore::default()
        });
        let first = SavedState::new(store.clone() as Arc<dyn StateStore<Vec<u32>>>, "a");
        assert_eq!(*first.lock().await.unwrap(), [5]);
        let moved = first.with_key("b");
        assert_eq!(moved.key(), "b");
        assert_eq!(*moved.lock().await.unwrap(), [5]);
        assert_eq!(
            store.loads.load(Ordering::SeqCst),
            2,
            "loaded again under the new key"
        );
    }
}
