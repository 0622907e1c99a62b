//! The sync mode of an [`EwsSource`](crate::EwsSource).

use std::sync::Arc;

use connector::Error;
use httpcore::SavedState;

use super::state::{CURSORS, SourceSyncState};
use crate::client::EwsClient;
use crate::ops::SyncFolderItems;
use crate::types::{FolderId, ItemId};
use httpcore::StateStore;

/// Most pages one catch-up follows (a guard against a server that never says it is done).
const MAX_PAGES: usize = 10_000;

/// What a sync asks of each created item besides its id: whether it is read (on a sync from
/// the beginning only unread mail is new) and when it arrived (the order mail is handed over).
const PROPERTIES: &[&str] = &["message:IsRead", "item:DateTimeReceived"];

/// The sync mode of an [`EwsSource`](crate::EwsSource): the state in its store (loaded on
/// first use; catch-ups and acknowledgements take turns on it, and their saves are coalesced).
#[derive(Debug)]
pub(crate) struct SyncMode {
    state: SavedState<SourceSyncState>,
}

/// A page of waiting messages handed out by a fetch.
pub(crate) struct PendingPage {
    pub(crate) ids: Vec<ItemId>,
    pub(crate) next: Option<String>,
}

fn invalid_state(e: &Error) -> bool {
    e.response().and_then(|r| r.server_code.as_deref()) == Some("ErrorInvalidSyncStateData")
}

impl SyncMode {
    pub(crate) fn new(store: Arc<dyn StateStore<SourceSyncState>>, key: String) -> Self {
        SyncMode {
            state: SavedState::new(store, key),
        }
    }

    /// The key the state is stored under.
    pub(crate) fn key(&self) -> &str {
        self.state.key()
    }

    /// Catches up: SyncFolderItems page after page until the folder is in sync, each page
    /// merged and saved (the SyncState and the messages it reported in one write) before the
    /// next is asked for. Returns the number of waiting messages.
    pub(crate) async fn refresh(
        &self,
        client: &EwsClient,
        folder: &FolderId,
    ) -> Result<usize, Error> {
        let mut state = self.state.lock().await?;
        let mut added = 0;
        for _ in 0..MAX_PAGES {
            let op =
                SyncFolderItems::new(folder.clone(), state.sync_state().map(str::to_owned), 512)
                    .with_properties(PROPERTIES);
            let page = match client.call(&op).await {
                Ok(p) => p,
                Err(e) if state.sync_state().is_some() && invalid_state(&e) => {
                    tracing::warn!(
                        key = %self.key(),
                        "Exchange no longer knows the saved SyncState: syncing the folder from \
                         the beginning (its unread mail is handed over again; the ledger keeps \
                         what was handled from being handled twice)"
                    );
                    state.restart();
                    let n = self.state.changed(&state);
                    self.state.save_through(n).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if page.sync_state.is_empty() {
                return Err(Error::bad_response("SyncFolderItems answered no SyncState"));
            }
            added += state.merge(page.changes, page.sync_state, page.includes_last);
            let n = self.state.changed(&state);
            // Saved before the next page is asked for (the lock stays held: acknowledgements
            // wait, and one that ends meanwhile is covered by this save or the next).
            self.state.save_through(n).await?;
            if page.includes_last {
                let waiting = state.waiting().len();
                tracing::debug!(key = %self.key(), added, waiting, "folder in sync");
                return Ok(waiting);
            }
        }
        Err(Error::bad_response(format!(
            "SyncFolderItems did not say the folder is in sync within {MAX_PAGES} pages"
        )))
    }

    /// A page of waiting messages after `cursor` (from the start if `None`).
    pub(crate) async fn page(
        &self,
        cursor: Option<&str>,
        max: usize,
    ) -> Result<PendingPage, Error> {
        let state = self.state.lock().await?;
        let (page, next) = state.waiting().page_at(cursor, max, CURSORS.0, CURSORS.1)?;
        Ok(PendingPage {
            next,
            ids: page.iter().map(|p| ItemId::new(p.id.clone())).collect(),
        })
    }

    /// Forgets acknowledged (or vanished) messages and saves (acknowledgements that end
    /// together share one save). A failed save is logged, not returned: the acknowledgement
    /// itself took effect, and the next save catches up (until then a restart hands the message
    /// over again, which the ledger absorbs).
    pub(crate) async fn forget(&self, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        let forget = |state: &mut SourceSyncState| state.waiting_mut().forget(ids);
        if let Err(e) = self.state.update(forget).await {
            tracing::warn!(error = %e, "could not record an acknowledgement in the EWS sync state");
        }
    }

    /// The same mode under another key (the source's folder changed before first use).
    pub(crate) fn with_key(self, key: String) -> Self {
        SyncMode {
            state: self.state.with_key(key),
        }
    }
}
