//! Where a sync-mode source's state is kept: in memory, or in one JSON file rewritten
//! atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use connector::Error;

use super::state::{STATE_VERSION, SourceSyncState};

/// Where the state of sync-mode [`EwsSource`](crate::EwsSource)s is kept between runs, one
/// [`SourceSyncState`] per key (a mailbox and folder).
///
/// `save` must be durable when it returns `Ok`: a source saves after every page of changes
/// and after acknowledgements, and relies on what it saved after a restart. The methods are
/// async so that a store can be a database.
#[async_trait::async_trait]
pub trait SourceSyncStore: Send + Sync {
    /// The saved state of `key`, or `None` (the next sync starts from the beginning).
    async fn load(&self, key: &str) -> Result<Option<SourceSyncState>, Error>;
    /// Saves the state of `key`.
    async fn save(&self, key: &str, state: &SourceSyncState) -> Result<(), Error>;
}

/// A [`SourceSyncStore`] in memory: state survives as long as the process.
#[derive(Debug, Default)]
pub struct MemorySourceSyncStore(Mutex<BTreeMap<String, SourceSyncState>>);

#[async_trait::async_trait]
impl SourceSyncStore for MemorySourceSyncStore {
    async fn load(&self, key: &str) -> Result<Option<SourceSyncState>, Error> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &str, state: &SourceSyncState) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), state.clone());
        Ok(())
    }
}

/// A [`SourceSyncStore`] in one JSON file, shared by every key, rewritten atomically on each
/// save and readable by its owner only (`0600`), through [`httpcore::StateFile`]: a crash
/// leaves the old file or the new one.
///
/// One process should own the file: the store reads it once, when opened, and afterwards
/// writes what it holds. Saves run on tokio's blocking thread pool, so the store is used from
/// within a tokio runtime.
#[derive(Debug)]
pub struct FileSourceSyncStore(Arc<httpcore::StateFile<SourceSyncState>>);

impl FileSourceSyncStore {
    /// Opens the store at `path`: reads the file if it exists (a missing file is an empty
    /// store; its directory must exist). A file that cannot be read or parsed is a
    /// [`Configuration`](connector::ErrorKind::Configuration) error naming it, so that a
    /// damaged state is looked at instead of silently replaced.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        httpcore::StateFile::open(
            path,
            "EWS sync state",
            STATE_VERSION,
            "move it aside to start over (the unread mail is handed over again, and the ledger \
             keeps what was handled from being handled twice)",
            |s: &SourceSyncState| s.validate().map_err(|e| e.message().to_string()),
        )
        .map(|f| FileSourceSyncStore(Arc::new(f)))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

#[async_trait::async_trait]
impl SourceSyncStore for FileSourceSyncStore {
    async fn load(&self, key: &str) -> Result<Option<SourceSyncState>, Error> {
        Ok(self.0.get(key))
    }

    async fn save(&self, key: &str, state: &SourceSyncState) -> Result<(), Error> {
        let (key, state) = (key.to_owned(), state.clone());
        self.0
            .update_off_thread(move |m| {
                m.insert(key, state);
            })
            .await
    }
}
