//! The incremental sources' state in PostgreSQL: graph-mail's delta state ([`PgDeltaStore`],
//! `fleet_delta`) and ews-mail's sync state ([`PgEwsSyncStore`], `fleet_ews_sync`), each a
//! [`PgStateStore`] of JSON documents by key.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use connector::Error;
use ews_mail::sync::SourceSyncState;
use graph_mail::delta::DeltaState;
use httpcore::{KeptState, StateStore};

use crate::Inner;

/// One table of JSON states by key (`key`, `state jsonb`, `updated_at`).
#[derive(Clone)]
struct StateTable {
    inner: Arc<Inner>,
    /// The table's name (a constant of this crate, never input).
    table: &'static str,
    /// What its rows are, in messages ([`KeptState::WHAT`]).
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

/// A [`StateStore`] of one [`KeptState`] in its own PostgreSQL table, one JSON row per key
/// ([`KeptState::to_json`], read back through [`KeptState::from_json`]), so that whichever
/// worker holds a source's lease continues where the last holder left off.
///
/// A database that cannot be reached is a transient [`Error`] (the source tries again); a row
/// this program cannot read is a [`Configuration`](connector::ErrorKind::Configuration) error
/// naming the key and the row to delete, never a silent fresh start. The states name messages
/// of the mailbox: treat the tables like the mailbox's data.
pub struct PgStateStore<S> {
    table: StateTable,
    state: PhantomData<fn() -> S>,
}

impl<S> Clone for PgStateStore<S> {
    fn clone(&self) -> Self {
        PgStateStore {
            table: self.table.clone(),
            state: PhantomData,
        }
    }
}

impl<S> fmt::Debug for PgStateStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgStateStore").field(&self.table).finish()
    }
}

impl<S: KeptState> PgStateStore<S> {
    pub(crate) fn new(inner: Arc<Inner>, table: &'static str) -> Self {
        PgStateStore {
            table: StateTable {
                inner,
                table,
                what: S::WHAT,
            },
            state: PhantomData,
        }
    }
}

#[async_trait]
impl<S: KeptState> StateStore<S> for PgStateStore<S> {
    async fn load(&self, key: &str) -> Result<Option<S>, Error> {
        self.table.load(key, S::from_json, S::ON_DISCARD).await
    }

    async fn save(&self, key: &str, state: &S) -> Result<(), Error> {
        self.table.save(key, &state.to_json()).await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        self.table.clear(key).await
    }
}

/// graph-mail's delta state in PostgreSQL (`fleet_delta`, one row per mailbox folder): the
/// `@odata.deltaLink` and the messages seen but not yet acknowledged. A damaged row's error
/// says to delete it to start a full resync.
pub type PgDeltaStore = PgStateStore<DeltaState>;

/// ews-mail's sync state in PostgreSQL (`fleet_ews_sync`, one row per mailbox folder): the
/// SyncFolderItems SyncState and the messages seen but not yet acknowledged, so that an EWS
/// source in push (or delta) mode catches up through SyncFolderItems on whichever worker holds
/// its lease. A damaged row's error says to delete it to sync from the beginning.
pub type PgEwsSyncStore = PgStateStore<SourceSyncState>;
