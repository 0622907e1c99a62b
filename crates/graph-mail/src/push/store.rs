//! Where subscriptions are recorded between runs: in memory, or one JSON file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use connector::Error;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ClientState;

/// A subscription as recorded: enough to reuse it after a restart (its id and secret) and to
/// tell whether it still fits the configuration (its resource and URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubscriptionRecord {
    /// Graph's id.
    pub id: String,
    /// The resource it watches.
    pub resource: String,
    /// Where its notifications go.
    pub notification_url: String,
    /// Its secret (the record file is readable by its owner only).
    pub client_state: ClientState,
    /// When it expires unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expiration: OffsetDateTime,
}

impl SubscriptionRecord {
    /// A record of subscription `id`.
    pub fn new(
        id: impl Into<String>,
        resource: impl Into<String>,
        notification_url: impl Into<String>,
        client_state: ClientState,
        expiration: OffsetDateTime,
    ) -> Self {
        SubscriptionRecord {
            id: id.into(),
            resource: resource.into(),
            notification_url: notification_url.into(),
            client_state,
            expiration,
        }
    }
}

/// Where [`SubscriptionRecord`]s are kept, by key (one per source).
#[async_trait::async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// The record of `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<SubscriptionRecord>, Error>;
    /// Records `record` under `key`.
    async fn save(&self, key: &str, record: &SubscriptionRecord) -> Result<(), Error>;
    /// Forgets `key`.
    async fn clear(&self, key: &str) -> Result<(), Error>;
}

/// A [`SubscriptionStore`] in memory (tests; a restart forgets, so the subscription leaks until
/// it expires).
#[derive(Debug, Default)]
pub struct MemorySubscriptionStore(Mutex<BTreeMap<String, SubscriptionRecord>>);

#[async_trait::async_trait]
impl SubscriptionStore for MemorySubscriptionStore {
    async fn load(&self, key: &str) -> Result<Option<SubscriptionRecord>, Error> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &str, record: &SubscriptionRecord) -> Result<(), Error> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), record.clone());
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
}

#[derive(Serialize, Deserialize, Default)]
struct RecordFile {
    version: u32,
    #[serde(default)]
    subscriptions: BTreeMap<String, SubscriptionRecord>,
}

/// A [`SubscriptionStore`] in one JSON file, rewritten atomically (owner-only, `0600`: it holds
/// each subscription's `clientState`) on each change. One process should own the file.
#[derive(Debug)]
pub struct FileSubscriptionStore {
    path: PathBuf,
    records: Mutex<BTreeMap<String, SubscriptionRecord>>,
}

impl FileSubscriptionStore {
    /// Opens the store at `path`: a missing file is an empty store; a file that cannot be read
    /// or parsed is an error naming it.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let records = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<RecordFile>(&bytes)
                    .map_err(|e| {
                        Error::configuration(format!(
                            "the subscription record {} cannot be read: {e}",
                            path.display()
                        ))
                    })?
                    .subscriptions
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::configuration(format!(
                    "cannot read the subscription record {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(FileSubscriptionStore {
            path,
            records: Mutex::new(records),
        })
    }

    fn write(&self, records: &BTreeMap<String, SubscriptionRecord>) -> Result<(), Error> {
        let file = RecordFile {
            version: 1,
            subscriptions: records.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::configuration(format!("encoding the subscription record: {e}")))?;
        httpcore::fs::write_atomic(&self.path, &bytes, httpcore::fs::FileMode::OwnerOnly).map_err(
            |e| {
                Error::configuration(format!(
                    "cannot write the subscription record {}: {e}",
                    self.path.display()
                ))
            },
        )
    }
}

#[async_trait::async_trait]
impl SubscriptionStore for FileSubscriptionStore {
    async fn load(&self, key: &str) -> Result<Option<SubscriptionRecord>, Error> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &str, record: &SubscriptionRecord) -> Result<(), Error> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.insert(key.to_owned(), record.clone());
        self.write(&records)
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.remove(key).is_some() {
            self.write(&records)?;
        }
        Ok(())
    }
}
