//! `SyncFolderItems`, two ways:
//!
//! - **As a message source mode**: [`EwsSource::with_sync_state`](crate::EwsSource::with_sync_state)
//!   makes an [`EwsSource`](crate::EwsSource) find new mail through SyncFolderItems from a
//!   saved sync state instead of listing unread mail; the state ([`SourceSyncState`]: the
//!   SyncState and the messages seen but not yet acknowledged) lives in a
//!   [`StateStore`]`<`[`SourceSyncState`]`>` ([`FileSourceSyncStore`],
//!   [`MemorySourceSyncStore`], the `fleet` crate's PostgreSQL table). Push mode's streaming
//!   notifications ([`streaming`](crate::streaming)) wake it; it catches up whatever arrived
//!   while no connection was open, or while the process was stopped.
//! - **As a helper**: [`FolderSync`], a small explicit state machine driven from outside (call
//!   [`FolderSync::next_page`] until it says the folder is in sync), with the raw SyncState
//!   kept in a [`StateStore`]`<String>` ([`MemorySyncStore`]).
//!
//! Both keep their state through httpcore's [`StateStore`], the one trait under every source's
//! saved state (graph-mail's delta state and push subscriptions use it too): `save` must be
//! durable when it returns `Ok`, since a source saves after every page of changes and after
//! acknowledgements, and relies on what it saved after a restart.
//!
//! `state.rs` holds [`SourceSyncState`] and how a page of changes is merged into it, `mode.rs`
//! the sync mode of [`EwsSource`](crate::EwsSource).

use httpcore::StateStore;

use crate::client::EwsClient;
use crate::ops::{SyncChange, SyncFolderItems};
use crate::types::FolderId;

mod mode;
mod state;

pub(crate) use mode::SyncMode;
pub use state::SourceSyncState;

/// [`SourceSyncState`]s in memory: [`httpcore::MemoryStore`] (a restart syncs from the
/// beginning).
pub type MemorySourceSyncStore = httpcore::MemoryStore<SourceSyncState>;

/// [`SourceSyncState`]s in one JSON file shared by every key, rewritten atomically and readable
/// by its owner only (`0600`): [`httpcore::FileStore`]. A crash leaves the old file or the new
/// one; a damaged file is a [`Configuration`](connector::ErrorKind::Configuration) error naming
/// it, so that it is looked at instead of silently replaced.
pub type FileSourceSyncStore = httpcore::FileStore<SourceSyncState>;

/// [`FolderSync`]'s raw SyncStates in memory: [`httpcore::MemoryStore`].
pub type MemorySyncStore = httpcore::MemoryStore<String>;

/// One page of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncBatch {
    /// The changes, in order.
    pub changes: Vec<SyncChange>,
    /// Whether the folder is now in sync (stop calling until later).
    pub done: bool,
}

/// Synchronises one folder, saving the state after each page.
#[derive(Debug)]
pub struct FolderSync<'a, S: StateStore<String> + ?Sized> {
    client: &'a EwsClient,
    folder: FolderId,
    key: String,
    store: &'a S,
    max_changes: u32,
}

impl<'a, S: StateStore<String> + ?Sized> FolderSync<'a, S> {
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
    /// (`ErrorInvalidSyncStateData`) is cleared and the sync restarts from the beginning. A
    /// store that cannot load or save is the error, and the page is not handed out.
    pub async fn next_page(&self) -> Result<SyncBatch, connector::Error> {
        let state = self.store.load(&self.key).await?;
        let op = SyncFolderItems::new(self.folder.clone(), state.clone(), self.max_changes);
        let page = match self.client.call(&op).await {
            Ok(p) => p,
            Err(e)
                if state.is_some()
                    && e.response().and_then(|r| r.server_code.as_deref())
                        == Some("ErrorInvalidSyncStateData") =>
            {
                self.store.clear(&self.key).await?;
                let op = SyncFolderItems {
                    sync_state: None,
                    ..op
                };
                self.client.call(&op).await?
            }
            Err(e) => return Err(e),
        };
        self.store.save(&self.key, &page.sync_state).await?;
        Ok(SyncBatch {
            changes: page.changes,
            done: page.includes_last,
        })
    }
}
