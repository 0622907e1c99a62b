//! Where the state is kept: in memory, or in one JSON file rewritten atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use connector::Error;
use serde::{Deserialize, Serialize};

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

#[async_trait::async_trait]
impl DeltaStore for FileDeltaStore {
    async fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        self.update(|m| {
            m.insert(key.to_owned(), state.clone());
        })
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.update(|m| {
            m.remove(key);
        })
    }
}
