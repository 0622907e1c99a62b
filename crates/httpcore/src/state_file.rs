//! [`StateFile`]: per-key states in one JSON file, the file under
//! [`FileStore`](crate::FileStore).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use connector::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fs::{FileMode, write_atomic};

#[derive(Serialize, Deserialize)]
struct OnDisk<T> {
    version: u32,
    /// `subscriptions`: the name of this map in graph-mail's push subscription records before
    /// they were kept in a `FileStore` (version 1 of both), still read.
    #[serde(default = "BTreeMap::new", alias = "subscriptions")]
    states: BTreeMap<String, T>,
}

/// States by key in one JSON file (`{"version": N, "states": {key: state}}`): read once when
/// opened, then rewritten whole on each change through [`write_atomic`] (a crash leaves the old
/// file or the new one), readable by its owner only (`0600`). One process should own the file.
///
/// A file that cannot be read, is not such a document, has another version or holds a state
/// its `check` refuses is a [`Configuration`](connector::ErrorKind::Configuration) error naming
/// the file and what to do, never a silent fresh start.
#[derive(Debug)]
pub(crate) struct StateFile<T> {
    path: PathBuf,
    what: &'static str,
    version: u32,
    states: Mutex<BTreeMap<String, T>>,
}

impl<T> StateFile<T> {
    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl<T: Clone + Serialize + DeserializeOwned> StateFile<T> {
    /// Opens the file at `path` (missing: no states yet; its directory must exist). `what`
    /// names the states in errors ("delta state"), `version` is the one supported, `check`
    /// validates each state read, and `remedy` ends the error of a corrupt file ("move it aside
    /// to start a full resync").
    pub(crate) fn open(
        path: impl Into<PathBuf>,
        what: &'static str,
        version: u32,
        remedy: &str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<Self, Error> {
        let path = path.into();
        let states = match std::fs::read(&path) {
            Ok(bytes) => {
                let bad = |why: String| {
                    Error::configuration(format!(
                        "the {what} file {} is corrupt ({why}); {remedy}",
                        path.display()
                    ))
                };
                let file: OnDisk<T> =
                    serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
                if file.version != version {
                    return Err(bad(format!("unsupported version {}", file.version)));
                }
                for (key, s) in &file.states {
                    check(s).map_err(|why| bad(format!("{key}: {why}")))?;
                }
                file.states
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::configuration(format!(
                    "cannot read the {what} file {}: {e}",
                    path.display()
                ))
                .with_source(e));
            }
        };
        Ok(StateFile {
            path,
            what,
            version,
            states: Mutex::new(states),
        })
    }

    /// The state of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<T> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// Changes the states with `f` and writes the file; on an error nothing changed.
    pub(crate) fn update(&self, f: impl FnOnce(&mut BTreeMap<String, T>)) -> Result<(), Error> {
        let mut guard = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = OnDisk {
            version: self.version,
            states: guard.clone(),
        };
        f(&mut file.states);
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::configuration(format!("serializing the {}: {e}", self.what)))?;
        write_atomic(&self.path, &bytes, FileMode::OwnerOnly).map_err(|e| {
            Error::configuration(format!(
                "cannot write the {} file {}: {e}",
                self.what,
                self.path.display()
            ))
            .with_source(e)
        })?;
        *guard = file.states;
        Ok(())
    }

    /// [`update`](Self::update) on tokio's blocking thread pool: the file's write and `fsync`
    /// do not hold up the runtime's threads (and the other tasks on them) while they run.
    pub(crate) async fn update_off_thread(
        self: &Arc<Self>,
        f: impl FnOnce(&mut BTreeMap<String, T>) + Send + 'static,
    ) -> Result<(), Error>
    where
        T: Send + Sync + 'static,
    {
        let file = Arc::clone(self);
        tokio::task::spawn_blocking(move || file.update(f))
            .await
            .map_err(|e| {
                Error::configuration(format!("writing the {} file stopped: {e}", self.what))
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Result<StateFile<u32>, Error> {
        StateFile::open(path, "test state", 1, "move it aside", |n: &u32| {
            if *n < 100 {
                Ok(())
            } else {
                Err(format!("{n} is too large"))
            }
        })
    }

    #[test]
    fn states_survive_a_reopen_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let f = open(&path).unwrap();
        assert_eq!(f.get("a"), None);
        f.update(|m| {
            m.insert("a".into(), 7);
        })
        .unwrap();
        assert_eq!(open(&path).unwrap().get("a"), Some(7));
        std::fs::write(&path, r#"{"version":1,"subscriptions":{"b":8}}"#).unwrap();
        assert_eq!(
            open(&path).unwrap().get("b"),
            Some(8),
            "the map's name in graph-mail's earlier subscription records"
        );
        f.update(|m| {
            m.insert("a".into(), 7);
        })
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        for (bad, why) in [
            ("{", "EOF"),
            (r#"{"version":2,"states":{}}"#, "unsupported version 2"),
            (r#"{"version":1,"states":{"a":100}}"#, "a: 100 is too large"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = open(&path).unwrap_err();
            assert_eq!(e.kind(), connector::ErrorKind::Configuration);
            assert!(
                e.message().contains("the test state file")
                    && e.message().contains("is corrupt")
                    && e.message().contains(why)
                    && e.message().ends_with("move it aside"),
                "{e}"
            );
        }
    }
}
