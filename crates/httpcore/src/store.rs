//! [`StateStore`]: where a source keeps a state between runs, by key, and the two stores every
//! client crate offers, [`MemoryStore`] and [`FileStore`].
//!
//! graph-mail's delta state, ews-mail's sync state and graph-mail's push subscription records
//! are each kept through this one trait; the fleet's PostgreSQL tables implement it too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use connector::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state_file::StateFile;

/// A state kept by key between runs: what a store needs to know to keep it (its JSON form and
/// the checks of one read back), and what an error about a damaged one says.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct Cursor { next: String }
///
/// impl httpcore::KeptState for Cursor {
///     const WHAT: &'static str = "cursor";
///     const VERSION: u32 = 1;
///     const ON_DISCARD: &'static str = "to read the folder from the beginning";
///     fn check(&self) -> Result<(), String> {
///         if self.next.is_empty() { Err("the cursor is empty".into()) } else { Ok(()) }
///     }
/// }
///
/// use httpcore::KeptState as _;
/// let json = Cursor { next: "page-2".into() }.to_json();
/// assert_eq!(Cursor::from_json(&json).unwrap().next, "page-2");
/// let e = Cursor::from_json(r#"{"next": ""}"#).unwrap_err();
/// assert_eq!(e.message(), "the saved cursor is unreadable: the cursor is empty");
/// assert!(Cursor::from_json(r#"["page-2"]"#).is_err(), "an object, not an array");
/// ```
pub trait KeptState: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What the state is, in messages ("delta state").
    const WHAT: &'static str;
    /// The version of the file a [`FileStore`] keeps it in; a file of another version is
    /// refused.
    const VERSION: u32;
    /// What discarding a damaged state leads to, ending the error that names it ("to start a
    /// full resync").
    const ON_DISCARD: &'static str;

    /// Checks a state read back: why it cannot be used, if it cannot. The default accepts
    /// whatever parsed.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// The state as JSON, as a database keeps it (the fleet's PostgreSQL tables): what
    /// [`from_json`](Self::from_json) reads back.
    fn to_json(&self) -> String {
        // A struct of strings, numbers, vectors and string-keyed maps always serializes; were
        // it ever to fail, "" is what `from_json` refuses, rather than a panic.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a state written by [`to_json`](Self::to_json): a JSON object of the state's shape
    /// that [`check`](Self::check) accepts. Anything else is a
    /// [`Configuration`](connector::ErrorKind::Configuration) error ("the saved delta state is
    /// unreadable: …").
    fn from_json(json: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::configuration(format!("the saved {} is unreadable: {why}", Self::WHAT))
        };
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("it is not JSON: {e}")))?;
        // An array would fill a struct's fields by position: a state is always an object.
        if !v.is_object() {
            return Err(bad("it is not a JSON object".into()));
        }
        let state: Self = serde_json::from_value(v).map_err(|e| {
            bad(format!(
                "it does not have the shape of a {}: {e}",
                Self::WHAT
            ))
        })?;
        state.check().map_err(bad)?;
        Ok(state)
    }
}

/// Where states of type `S` are kept between runs, one per key (a mailbox and folder, a
/// source).
///
/// `save` and `clear` must be durable when they return `Ok`: a source saves as it goes and
/// relies on what it saved after a restart. The methods are async so that a store can be a
/// database (the fleet's PostgreSQL tables implement this trait too).
///
/// ```
/// use std::sync::Arc;
/// use httpcore::{MemoryStore, StateStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), connector::Error> {
/// let store: Arc<dyn StateStore<String>> = Arc::new(MemoryStore::<String>::default());
/// store.save("inbox", &"state".to_owned()).await?;
/// assert_eq!(store.load("inbox").await?.as_deref(), Some("state"));
/// store.clear("inbox").await?;
/// assert_eq!(store.load("inbox").await?, None);
/// # Ok(()) }
/// ```
#[async_trait::async_trait]
pub trait StateStore<S>: Send + Sync {
    /// The saved state of `key`, or `None` (the source starts afresh).
    async fn load(&self, key: &str) -> Result<Option<S>, Error>;
    /// Saves the state of `key`.
    async fn save(&self, key: &str, state: &S) -> Result<(), Error>;
    /// Forgets the state of `key` (nothing saved is not an error).
    async fn clear(&self, key: &str) -> Result<(), Error>;
}

impl<S> fmt::Debug for dyn StateStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateStore")
    }
}

/// A [`StateStore`] in memory: states survive as long as the process (tests, and sources whose
/// state need not outlive it).
pub struct MemoryStore<S>(Mutex<BTreeMap<String, S>>);

impl<S> Default for MemoryStore<S> {
    fn default() -> Self {
        MemoryStore(Mutex::new(BTreeMap::new()))
    }
}

impl<S: fmt::Debug> fmt::Debug for MemoryStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let states = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_tuple("MemoryStore").field(&*states).finish()
    }
}

impl<S> MemoryStore<S> {
    fn states(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, S>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl<S: Clone + Send + Sync> StateStore<S> for MemoryStore<S> {
    async fn load(&self, key: &str) -> Result<Option<S>, Error> {
        Ok(self.states().get(key).cloned())
    }

    async fn save(&self, key: &str, state: &S) -> Result<(), Error> {
        self.states().insert(key.to_owned(), state.clone());
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.states().remove(key);
        Ok(())
    }
}

/// A [`StateStore`] in one JSON file shared by every key (`{"version": N, "states": {key:
/// state}}`), rewritten whole and atomically on each change through
/// [`write_atomic`](crate::fs::write_atomic) (a crash leaves the old file or the new one) and
/// readable by its owner only (`0600`).
///
/// One process should own the file: the store reads it once, when opened, and afterwards writes
/// what it holds. Writes run on tokio's blocking thread pool, so that the file's write and
/// `fsync` do not hold up the runtime's threads; the store is used from within a tokio runtime.
///
/// A file that cannot be read, is not such a document, has another version than
/// [`KeptState::VERSION`] or holds a state its [`check`](KeptState::check) refuses is a
/// [`Configuration`](connector::ErrorKind::Configuration) error naming the file and what moving
/// it aside leads to, never a silent fresh start.
pub struct FileStore<S>(Arc<StateFile<S>>);

impl<S> fmt::Debug for FileStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FileStore").field(&self.0.path()).finish()
    }
}

impl<S: KeptState> FileStore<S> {
    /// Opens the store at `path`: reads the file if it exists (a missing file is an empty
    /// store, created on the first save; its directory must exist).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        StateFile::open(
            path,
            S::WHAT,
            S::VERSION,
            &format!("move it aside {}", S::ON_DISCARD),
            S::check,
        )
        .map(|f| FileStore(Arc::new(f)))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

#[async_trait::async_trait]
impl<S: KeptState> StateStore<S> for FileStore<S> {
    async fn load(&self, key: &str) -> Result<Option<S>, Error> {
        Ok(self.0.get(key))
    }

    async fn save(&self, key: &str, state: &S) -> Result<(), Error> {
        let (key, state) = (key.to_owned(), state.clone());
        self.0
            .update_off_thread(move |m| {
                m.insert(key, state);
            })
            .await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        if self.0.get(key).is_none() {
            return Ok(());
        }
        let key = key.to_owned();
        self.0
            .update_off_thread(move |m| {
                m.remove(&key);
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Count(u32);

    impl KeptState for Count {
        const WHAT: &'static str = "count";
        const VERSION: u32 = 3;
        const ON_DISCARD: &'static str = "to count from zero";
        fn check(&self) -> Result<(), String> {
            if self.0 < 100 {
                Ok(())
            } else {
                Err(format!("{} is too large", self.0))
            }
        }
    }

    #[tokio::test]
    async fn a_file_store_keeps_saves_and_clears_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts.json");
        let store = FileStore::<Count>::open(&path).unwrap();
        assert_eq!(store.path(), path);
        assert!(!path.exists(), "nothing is written before the first save");
        store.clear("a").await.unwrap();
        assert!(!path.exists(), "clearing what is not there writes nothing");
        store.save("a", &Count(1)).await.unwrap();
        store.save("b", &Count(2)).await.unwrap();
        store.clear("a").await.unwrap();

        let again: Arc<dyn StateStore<Count>> = Arc::new(FileStore::<Count>::open(&path).unwrap());
        assert_eq!(again.load("a").await.unwrap(), None);
        assert_eq!(again.load("b").await.unwrap(), Some(Count(2)));
        assert_eq!(format!("{again:?}"), "StateStore");
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            on_disk,
            serde_json::json!({"version": 3, "states": {"b": 2}})
        );
    }

    #[test]
    fn a_damaged_file_is_named_with_what_discarding_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts.json");
        for (bad, why) in [
            (r#"{"version":1,"states":{}}"#, "unsupported version 1"),
            (r#"{"version":3,"states":{"a":100}}"#, "a: 100 is too large"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = FileStore::<Count>::open(&path).unwrap_err();
            assert_eq!(e.kind(), connector::ErrorKind::Configuration);
            assert!(
                e.message().contains("the count file")
                    && e.message().contains(why)
                    && e.message().ends_with("move it aside to count from zero"),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn a_memory_store_keeps_saves_until_cleared() {
        let store = MemoryStore::<Count>::default();
        assert_eq!(store.load("a").await.unwrap(), None);
        store.save("a", &Count(5)).await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), Some(Count(5)));
        assert_eq!(format!("{store:?}"), r#"MemoryStore({"a": Count(5)})"#);
        store.clear("a").await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), None);
    }
}
