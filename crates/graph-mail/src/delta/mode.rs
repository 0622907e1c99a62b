//! The delta mode of a [`GraphSource`](crate::GraphSource).

use connector::{ConnectionLog, Error};
use httpcore::SavedState;

use super::round::run_round;
use super::state::{CURSORS, DeltaState};
use crate::api::MessageMeta;
use crate::client::GraphClient;
use httpcore::StateStore;

/// The delta mode of a [`GraphSource`](crate::GraphSource): the state in its store (loaded on
/// first use; rounds and acknowledgements take turns on it, and their saves are coalesced).
#[derive(Debug)]
pub(crate) struct DeltaMode {
    state: SavedState<DeltaState>,
}

/// A page of pending messages handed out by a fetch.
pub(crate) struct PendingPage {
    pub(crate) metas: Vec<MessageMeta>,
    pub(crate) next: Option<String>,
}

impl DeltaMode {
    pub(crate) fn new(store: std::sync::Arc<dyn StateStore<DeltaState>>, key: String) -> Self {
        DeltaMode {
            state: SavedState::new(store, key),
        }
    }

    /// Runs a round, merges it and saves; returns the number of pending messages.
    pub(crate) async fn refresh(
        &self,
        client: &GraphClient,
        folder: &str,
        log: Option<&ConnectionLog>,
    ) -> Result<usize, Error> {
        let mut state = self.state.lock().await?;
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
        self.state.save_through(n).await?;
        Ok(pending)
    }

    /// A page of pending messages after `cursor` (from the start if `None`).
    pub(crate) async fn page(
        &self,
        cursor: Option<&str>,
        max: usize,
    ) -> Result<PendingPage, Error> {
        let state = self.state.lock().await?;
        let (page, next) = state.waiting().page_at(cursor, max, CURSORS.0, CURSORS.1)?;
        Ok(PendingPage {
            next,
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
        if let Err(e) = self.state.update(|state| state.forget(ids)).await {
            tracing::warn!(error = %e, "could not record an acknowledgement in the delta state");
        }
    }
}
