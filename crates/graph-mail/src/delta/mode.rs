//! The delta mode of a [`GraphSource`](crate::GraphSource).

use std::fmt;

use connector::{ConnectionLog, Error};
use httpcore::SavedState;
use tokio::sync::MappedMutexGuard;

use super::DeltaStore;
use super::round::run_round;
use super::state::{DeltaState, cursor_of, parse_cursor};
use crate::api::MessageMeta;
use crate::client::GraphClient;

/// The delta mode of a [`GraphSource`](crate::GraphSource): the store and the state (loaded on
/// first use; rounds and acknowledgements take turns on it, and their saves are coalesced).
pub(crate) struct DeltaMode {
    store: std::sync::Arc<dyn DeltaStore>,
    state: SavedState<DeltaState>,
}

impl fmt::Debug for DeltaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaMode")
            .field("key", &self.state.key())
            .finish()
    }
}

/// A page of pending messages handed out by a fetch.
pub(crate) struct PendingPage {
    pub(crate) metas: Vec<MessageMeta>,
    pub(crate) next: Option<String>,
}

impl DeltaMode {
    pub(crate) fn new(store: std::sync::Arc<dyn DeltaStore>, key: String) -> Self {
        DeltaMode {
            store,
            state: SavedState::new(key),
        }
    }

    async fn lock(&self) -> Result<MappedMutexGuard<'_, DeltaState>, Error> {
        self.state.lock(self.store.load(self.state.key())).await
    }

    /// Saves the state through change `n` (see [`SavedState`]).
    async fn save_through(&self, n: u64) -> Result<(), Error> {
        self.state
            .save_through(
                n,
                |s| async move { self.store.save(self.state.key(), &s).await },
            )
            .await
    }

    /// Runs a round, merges it and saves; returns the number of pending messages.
    pub(crate) async fn refresh(
        &self,
        client: &GraphClient,
        folder: &str,
        log: Option<&ConnectionLog>,
    ) -> Result<usize, Error> {
        let mut state = self.lock().await?;
        let round = run_round(client, state.delta_link.as_deref(), folder, log).await?;
        let merged = state.merge(round.items, round.delta_link, round.full);
        let n = self.state.changed(&state);
        let pending = state.pending().len();
        drop(state);
        tracing::debug!(
            folder,
            added = merged.added,
            removed = merged.removed,
            resynced = round.resynced,
            "delta round merged"
        );
        self.save_through(n).await?;
        Ok(pending)
    }

    /// A page of pending messages after `cursor` (from the start if `None`).
    pub(crate) async fn page(
        &self,
        cursor: Option<&str>,
        max: usize,
    ) -> Result<PendingPage, Error> {
        let after = cursor.map(parse_cursor).transpose()?;
        let state = self.lock().await?;
        let (page, more) = state.page(after, max);
        Ok(PendingPage {
            next: if more {
                page.last().map(|p| cursor_of(p))
            } else {
                None
            },
            metas: page.iter().map(|p| p.meta()).collect(),
        })
    }

    /// Forgets acknowledged messages and saves (acknowledgements that end together share one
    /// save). A failed save is logged, not returned: the acknowledgement itself took effect, and
    /// the next save (every round saves) catches up.
    pub(crate) async fn acknowledged(&self, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        let n = match self.lock().await {
            Ok(mut state) => {
                if !state.forget(ids) {
                    return;
                }
                self.state.changed(&state)
            }
            Err(e) => {
                tracing::warn!(error = %e, "delta state unavailable after an acknowledgement");
                return;
            }
        };
        if let Err(e) = self.save_through(n).await {
            tracing::warn!(error = %e, "could not save the delta state after an acknowledgement");
        }
    }
}
