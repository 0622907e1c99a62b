//! The delta mode of a [`GraphSource`](crate::GraphSource).

use std::fmt;

use connector::{ConnectionLog, Error};

use super::DeltaStore;
use super::round::run_round;
use super::state::{DeltaState, cursor_of, parse_cursor};
use crate::api::MessageMeta;
use crate::client::GraphClient;

/// The delta mode of a [`GraphSource`](crate::GraphSource): the store, the key and the state
/// (loaded on first use; rounds and acknowledgements take turns on it).
pub(crate) struct DeltaMode {
    store: std::sync::Arc<dyn DeltaStore>,
    key: String,
    state: tokio::sync::Mutex<Option<DeltaState>>,
}

impl fmt::Debug for DeltaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaMode").field("key", &self.key).finish()
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
            key,
            state: tokio::sync::Mutex::new(None),
        }
    }

    async fn loaded<'a>(
        &self,
        slot: &'a mut Option<DeltaState>,
    ) -> Result<&'a mut DeltaState, Error> {
        if slot.is_none() {
            *slot = Some(self.store.load(&self.key).await?.unwrap_or_default());
        }
        slot.as_mut()
            .ok_or_else(|| Error::configuration("delta state not loaded"))
    }

    /// Runs a round and merges it; returns the number of pending messages.
    pub(crate) async fn refresh(
        &self,
        client: &GraphClient,
        folder: &str,
        log: Option<&ConnectionLog>,
    ) -> Result<usize, Error> {
        let mut slot = self.state.lock().await;
        let state = self.loaded(&mut slot).await?;
        let round = run_round(client, state.delta_link.as_deref(), folder, log).await?;
        let mut next = state.clone();
        let merged = next.merge(round.items, round.delta_link, round.full);
        self.store.save(&self.key, &next).await?;
        tracing::debug!(
            folder,
            added = merged.added,
            removed = merged.removed,
            resynced = round.resynced,
            "delta round merged"
        );
        *state = next;
        Ok(state.pending().len())
    }

    /// A page of pending messages after `cursor` (from the start if `None`).
    pub(crate) async fn page(
        &self,
        cursor: Option<&str>,
        max: usize,
    ) -> Result<PendingPage, Error> {
        let after = cursor.map(parse_cursor).transpose()?;
        let mut slot = self.state.lock().await;
        let state = self.loaded(&mut slot).await?;
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

    /// Forgets acknowledged messages and saves. A failed save is logged, not returned: the
    /// acknowledgement itself took effect, and the next save (every round saves) catches up.
    pub(crate) async fn acknowledged(&self, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        let mut slot = self.state.lock().await;
        let state = match self.loaded(&mut slot).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "delta state unavailable after an acknowledgement");
                return;
            }
        };
        if state.forget(ids)
            && let Err(e) = self.store.save(&self.key, state).await
        {
            tracing::warn!(error = %e, "could not save the delta state after an acknowledgement");
        }
    }
}
