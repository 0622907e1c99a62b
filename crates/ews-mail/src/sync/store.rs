//! Where a sync-mode source's state is kept: in memory, or in one JSON file rewritten
//! atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use connector::Error;
use serde::{Deserialize, Serialize};

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

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(default)]
    states: BTreeMap<String, SourceSyncState>,
}

/// A [`SourceSyncStore`] in one JSON file, shared by every key, rewritten atomically on each
/// save ([`httpcore::fs::write_atomic`]: a crash leaves the old file or the new one) and
/// readable by its owner only (`0600`).
///
/// One process should own the file: the store reads it once, when opened, and afterwards
/// writes what it holds.
#[derive(Debug)]
pub struct FileSourceSyncStore {
    path: PathBuf,
    states: Mutex<BTreeMap<String, SourceSyncState>>,
}

impl FileSourceSyncStore {
    /// Opens the store at `path`: reads the file if it exists (a missing file is an empty
    /// store; its directory must exist). A file that cannot be read or parsed is a
    /// [`Configuration`](connector::ErrorKind::Configuration) error naming it, so that a
    /// damaged state is looked at instead of silently replaced.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let states = match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::configuration(format!(
                    "cannot read the EWS sync state file {}: {e}",
                    path.display()
                ))
                .with_source(e));
            }
        };
        Ok(FileSourceSyncStore {
            path,
            states: Mutex::new(states),
        })
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, SourceSyncState>, Error> {
        let bad = |why: String| {
            Error::configuration(format!(
                "the EWS sync state file {} is corrupt ({why}); move it aside to start over \
                 (the unread mail is handed over again, and the ledger keeps what was handled \
                 from being handled twice)",
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
}

#[async_trait::async_trait]
impl SourceSyncStore for FileSourceSyncStore {
    async fn load(&self, key: &str) -> Result<Option<SourceSyncState>, Error> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &str, state: &SourceSyncState) -> Result<(), Error> {
        let mut guard = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = guard.clone();
        next.insert(key.to_owned(), state.clone());
        let file = StateFile {
            version: STATE_VERSION,
            states: next,
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::configuration(format!("serializing the EWS sync state: {e}")))?;
        httpcore::fs::write_atomic(&self.path, &bytes, httpcore::fs::FileMode::OwnerOnly).map_err(
            |e| {
                Error::configuration(format!(
                    "cannot write the EWS sync state file {}: {e}",
                    self.path.display()
                ))
                .with_source(e)
            },
        )?;
        *guard = file.states;
        Ok(())
    }
}
