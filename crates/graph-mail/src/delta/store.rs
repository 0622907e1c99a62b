//! Where the state is kept: in memory, or in one JSON file rewritten atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use connector::Error;

use super::DeltaStore;
use super::state::{DeltaState, STATE_VERSION};

/// A [`DeltaStore`] in memory: state survives as long as the process.
#[derive(Debug, Default)]
pub struct MemoryDeltaStore(Mutex<BTreeMap<String, DeltaState>>);

#[async_trait::async_trait]
impl DeltaStore for MemoryDeltaStore {
    async fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), state.clone());
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
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
/// writes what it holds (owner-only, `0600`, through [`httpcore::StateFile`]). Saves run on
/// tokio's blocking thread pool, so the store is used from within a tokio runtime.
#[derive(Debug)]
pub struct FileDeltaStore(Arc<httpcore::StateFile<DeltaState>>);

impl FileDeltaStore {
    /// Opens the store at `path`: reads the file if it exists (a missing file is an empty
    /// store; its directory must exist). A file that cannot be read or parsed is an error
    /// naming it, so that a damaged state is looked at instead of silently replaced.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        httpcore::StateFile::open(
            path,
            "delta state",
            STATE_VERSION,
            "move it aside to start a full resync",
            |s: &DeltaState| s.validate().map_err(|e| e.message().to_string()),
        )
        .map(|f| FileDeltaStore(Arc::new(f)))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

#[async_trait::async_trait]
impl DeltaStore for FileDeltaStore {
    async fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        Ok(self.0.get(key))
    }

    async fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        let (key, state) = (key.to_owned(), state.clone());
        self.0
            .update_off_thread(move |m| {
                m.insert(key, state);
            })
            .await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        let key = key.to_owned();
        self.0
            .update_off_thread(move |m| {
                m.remove(&key);
            })
            .await
    }
}
