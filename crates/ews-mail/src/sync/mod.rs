//! `SyncFolderItems`, two ways:
//!
//! - **As a message source mode**: [`EwsSource::with_sync_state`](crate::EwsSource::with_sync_state)
//!   makes an [`EwsSource`](crate::EwsSource) find new mail through SyncFolderItems from a
//!   saved sync state instead of listing unread mail; the state ([`SourceSyncState`]: the
//!   SyncState and the messages seen but not yet acknowledged) lives in a [`SourceSyncStore`]
//!   ([`FileSourceSyncStore`], [`MemorySourceSyncStore`]). Push mode's streaming
//!   notifications ([`streaming`](crate::streaming)) wake it; it catches up whatever arrived
//!   while no connection was open, or while the process was stopped.
//! - **As a helper**: [`FolderSync`], a small explicit state machine driven from outside (call
//!   [`FolderSync::next_page`] until it says the folder is in sync), with the raw SyncState
//!   kept in a [`SyncStateStore`].
//!
//! `state.rs` holds [`SourceSyncState`] and how a page of changes is merged into it,
//! `store.rs` the stores, `mode.rs` the sync mode of [`EwsSource`](crate::EwsSource).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::client::EwsClient;
use crate::ops::{SyncChange, SyncFolderItems};
use crate::types::FolderId;

mod mode;
mod state;
mod store;

pub(crate) use mode::SyncMode;
pub use state::SourceSyncState;
pub use store::{FileSourceSyncStore, MemorySourceSyncStore, SourceSyncStore};

/// Where sync states are kept between runs (a file, a database row…).
pub trait SyncStateStore: Send + Sync {
    /// The saved state for `key`, if any.
    fn load(&self, key: &str) -> Option<String>;
    /// Saves the state for `key`.
    fn save(&self, key: &str, state: &str);
    /// Forgets the state for `key` (after `ErrorInvalidSyncStateData`).
    fn clear(&self, key: &str);
}

/// An in-memory [`SyncStateStore`].
#[derive(Debug, Default)]
pub struct MemorySyncStore(Mutex<HashMap<String, String>>);

impl SyncStateStore for MemorySyncStore {
    fn load(&self, key: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }
    fn save(&self, key: &str, state: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), state.to_string());
    }
    fn clear(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// One page of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    /// The changes, in order.
    pub changes: Vec<SyncChange>,
    /// Whether the folder is now in sync (stop calling until later).
    pub done: bool,
}

/// Synchronises one folder, saving the state after each page.
#[derive(Debug)]
pub struct FolderSync<'a, S: SyncStateStore> {
    client: &'a EwsClient,
    folder: FolderId,
    key: String,
    store: &'a S,
    max_changes: u32,
}

impl<'a, S: SyncStateStore> FolderSync<'a, S> {
    /// A sync of `folder` whose state lives in `store` under `key`.
    pub fn new(
        client: &'a EwsClient,
        folder: FolderId,
        key: impl Into<String>,
        store: &'a S,
    ) -> Self {
        FolderSync {
            client,
            folder,
            key: key.into(),
            store,
            max_changes: 512,
        }
    }

    /// Sets `MaxChangesReturned` (1–512).
    pub fn with_max_changes(mut self, n: u32) -> Self {
        self.max_changes = n.clamp(1, 512);
        self
    }

    /// Fetches the next page of changes and saves the new state. An invalid saved state
    /// (`ErrorInvalidSyncStateData`) is cleared and the sync restarts from the beginning.
    pub async fn next_page(&self) -> Result<SyncBatch, connector::Error> {
        let state = self.store.load(&self.key);
        let op = SyncFolderItems::new(self.folder.clone(), state.clone(), self.max_changes);
        let page = match self.client.call(&op).await {
            Ok(p) => p,
            Err(e)
                if state.is_some()
                    && e.response().and_then(|r| r.server_code.as_deref())
                        == Some("ErrorInvalidSyncStateData") =>
            {
                self.store.clear(&self.key);
                let op = SyncFolderItems {
                    sync_state: None,
                    ..op
                };
                self.client.call(&op).await?
            }
            Err(e) => return Err(e),
        };
        self.store.save(&self.key, &page.sync_state);
        Ok(SyncBatch {
            changes: page.changes,
            done: page.includes_last,
        })
    }
}
