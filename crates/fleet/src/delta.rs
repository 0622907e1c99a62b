//! graph-mail's delta state in PostgreSQL ([`PgDeltaStore`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use connector::Error;
use graph_mail::delta::{DeltaState, DeltaStore};

use crate::Inner;

/// graph-mail's delta state in PostgreSQL (`fleet_delta`, one row per mailbox folder): the
/// `@odata.deltaLink` and the messages seen but not yet acknowledged, so that whichever worker
/// holds a source's lease continues its delta rounds where the last holder left them.
///
/// A database that cannot be reached is a transient [`Error`] (the source tries again); a row
/// this program cannot read is a [`Configuration`](connector::ErrorKind::Configuration) error
/// naming the key, never a silent resync. The state names messages of the mailbox: treat the
/// table like the mailbox's data.
#[derive(Clone)]
pub struct PgDeltaStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PgDeltaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDeltaStore")
            .field("target", &self.inner.target)
            .finish()
    }
}

impl PgDeltaStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgDeltaStore { inner }
    }

    fn transient(&self, e: &(dyn std::error::Error + 'static)) -> Error {
        self.inner.transient("delta state", e)
    }

    async fn run(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Error> {
        self.inner.query("delta state", sql, params).await
    }
}

#[async_trait]
impl DeltaStore for PgDeltaStore {
    async fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        let rows = self
            .run(
                "SELECT state::text FROM fleet_delta WHERE key = $1",
                &[&key],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let json: String = row.try_get(0).map_err(|e| self.transient(&e))?;
        DeltaState::from_json(&json).map(Some).map_err(|e| {
            Error::configuration(format!(
                "the delta state of {key} in PostgreSQL at {} is unreadable ({}); delete its \
                 row in fleet_delta to start a full resync",
                self.inner.target,
                e.message()
            ))
        })
    }

    async fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        let json = state.to_json();
        self.run(
            "INSERT INTO fleet_delta (key, state, updated_at) VALUES ($1, $2::text::jsonb, now()) \
             ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
            &[&key, &json],
        )
        .await
        .map(drop)
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.run("DELETE FROM fleet_delta WHERE key = $1", &[&key])
            .await
            .map(drop)
    }
}
