//! The incremental sources' state in PostgreSQL: graph-mail's delta state ([`PgDeltaStore`],
//! `fleet_delta`) and ews-mail's sync state ([`PgEwsSyncStore`], `fleet_ews_sync`), each a
//! JSON document per key read and written through one [`StateTable`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use connector::Error;
use ews_mail::sync::SourceSyncState;
use graph_mail::delta::DeltaState;
use httpcore::StateStore;

use crate::Inner;

/// One table of JSON states by key (`key`, `state jsonb`, `updated_at`).
#[derive(Clone)]
struct StateTable {
    inner: Arc<Inner>,
    /// The table's name (a constant of this crate, never input).
    table: &'static str,
    /// What its rows are, in messages.
    what: &'static str,
}

impl StateTable {
    async fn run(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Error> {
        self.inner.query(self.what, sql, params).await
    }

    /// The JSON text of `key`'s state, read back through `parse`; a row `parse` refuses is a
    /// [`Configuration`](connector::ErrorKind::Configuration) error naming the row to delete.
    async fn load<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Error>,
        consequence: &str,
    ) -> Result<Option<T>, Error> {
        let sql = format!("SELECT state::text FROM {} WHERE key = $1", self.table);
        let rows = self.run(&sql, &[&key]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let json: String = row
            .try_get(0)
            .map_err(|e| self.inner.transient(self.what, &e))?;
        parse(&json).map(Some).map_err(|e| {
            Error::configuration(format!(
                "the {} of {key} in PostgreSQL at {} is unreadable ({}); delete its row in {} \
                 {consequence}",
                self.what,
                self.inner.target,
                e.message(),
                self.table
            ))
        })
    }

    async fn save(&self, key: &str, json: &str) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO {} (key, state, updated_at) VALUES ($1, $2::text::jsonb, now()) \
             ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, \
             updated_at = EXCLUDED.updated_at",
            self.table
        );
        self.run(&sql, &[&key, &json]).await.map(drop)
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        let sql = format!("DELETE FROM {} WHERE key = $1", self.table);
        self.run(&sql, &[&key]).await.map(drop)
    }
}

impl fmt::Debug for StateTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTable")
            .field("table", &self.table)
            .field("target", &self.inner.target)
            .finish()
    }
}

/// graph-mail's delta state in PostgreSQL (`fleet_delta`, one row per mailbox folder): the
/// `@odata.deltaLink` and the messages seen but not yet acknowledged, so that whichever worker
/// holds a source's lease continues its delta rounds where the last holder left them.
///
/// A database that cannot be reached is a transient [`Error`] (the source tries again); a row
/// this program cannot read is a [`Configuration`](connector::ErrorKind::Configuration) error
/// naming the key, never a silent resync. The state names messages of the mailbox: treat the
/// table like the mailbox's data.
#[derive(Clone, Debug)]
pub struct PgDeltaStore(StateTable);

impl PgDeltaStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgDeltaStore(StateTable {
            inner,
            table: "fleet_delta",
            what: "delta state",
        })
    }
}

#[async_trait]
impl StateStore<DeltaState> for PgDeltaStore {
    async fn load(&self, key: &str) -> Result<Option<DeltaState>, Error> {
        self.0
            .load(key, DeltaState::from_json, "to start a full resync")
            .await
    }

    async fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error> {
        self.0.save(key, &state.to_json()).await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.0.clear(key).await
    }
}

/// ews-mail's sync state in PostgreSQL (`fleet_ews_sync`, one row per mailbox folder): the
/// SyncFolderItems SyncState and the messages seen but not yet acknowledged, so that an EWS
/// source in push (or delta) mode catches up through SyncFolderItems on whichever worker holds
/// its lease, where the last holder left off.
///
/// Errors as for [`PgDeltaStore`]: unreachable is transient, an unreadable row a
/// [`Configuration`](connector::ErrorKind::Configuration) error naming the key.
#[derive(Clone, Debug)]
pub struct PgEwsSyncStore(StateTable);

impl PgEwsSyncStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgEwsSyncStore(StateTable {
            inner,
            table: "fleet_ews_sync",
            what: "EWS sync state",
        })
    }
}

#[async_trait]
impl StateStore<SourceSyncState> for PgEwsSyncStore {
    async fn load(&self, key: &str) -> Result<Option<SourceSyncState>, Error> {
        self.0
            .load(
                key,
                SourceSyncState::from_json,
                "to sync from the beginning (the unread mail is handed over again, and the \
                 ledger keeps what was handled from being handled twice)",
            )
            .await
    }

    async fn save(&self, key: &str, state: &SourceSyncState) -> Result<(), Error> {
        self.0.save(key, &state.to_json()).await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.0.clear(key).await
    }
}
