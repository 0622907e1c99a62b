//! The configuration a running fleet is changed through ([`PgCatalog`]).

use std::fmt;
use std::sync::Arc;

use crate::{Inner, StoreError};

/// What a configuration entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntryKind {
    /// An app registration (`[[apps]]`).
    App,
    /// A message source with its routing (`[[sources]]`).
    Source,
    /// A message outbound (`[[outbounds]]`).
    Outbound,
}

impl EntryKind {
    /// The name stored in the database, and the configuration file's table without its `s`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::App => "app",
            EntryKind::Source => "source",
            EntryKind::Outbound => "outbound",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "app" => Some(EntryKind::App),
            "source" => Some(EntryKind::Source),
            "outbound" => Some(EntryKind::Outbound),
            _ => None,
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configuration entry kept in the database: the TOML of one `[[apps]]`, `[[sources]]` (its
/// routing included) or `[[outbounds]]` table, as the configuration file would have it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// What it is.
    pub kind: EntryKind,
    /// Its name (`name = ...` in the TOML).
    pub name: String,
    /// The table's TOML, without its `[[...]]` header.
    pub toml: String,
}

impl ConfigEntry {
    /// The entry `kind`/`name` whose table is `toml`.
    pub fn new(kind: EntryKind, name: impl Into<String>, toml: impl Into<String>) -> Self {
        ConfigEntry {
            kind,
            name: name.into(),
            toml: toml.into(),
        }
    }
}

/// The apps, sources and outbounds that live in the database, beside the configuration file:
/// what `m365mail sources add|remove|set-routing` change while the fleet runs.
///
/// Every change bumps one version number in the same transaction; workers compare it at each
/// tick and rebuild their sources when it moved, so a change reaches every worker within one
/// tick without a restart. This type stores and hands out the TOML; checking that it makes a
/// valid configuration (and that it holds no secret in clear text) is the caller's job, before
/// [`put`](Self::put).
#[derive(Clone, Debug)]
pub struct PgCatalog {
    inner: Arc<Inner>,
}

impl PgCatalog {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgCatalog { inner }
    }

    fn db(&self, e: &(dyn std::error::Error + 'static)) -> StoreError {
        StoreError::Database {
            target: self.inner.target.clone(),
            reason: self.inner.reason(e),
        }
    }

    /// The version of the entries: it changes with every [`put`](Self::put) and
    /// [`remove`](Self::remove).
    pub async fn version(&self) -> Result<i64, StoreError> {
        let client = self.inner.client().await.map_err(|e| self.db(&e))?;
        let row = client
            .query_one("SELECT version FROM fleet_config_version", &[])
            .await
            .map_err(|e| self.db(&e))?;
        row.try_get(0).map_err(|e| self.db(&e))
    }

    /// Every entry, by kind then name, with the version they were read at.
    pub async fn entries(&self) -> Result<(i64, Vec<ConfigEntry>), StoreError> {
        let mut client = self.inner.client().await.map_err(|e| self.db(&e))?;
        // One snapshot: the version and the entries agree.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.db(&e))?;
        let version: i64 = tx
            .query_one("SELECT version FROM fleet_config_version", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.db(&e))?;
        let rows = tx
            .query(
                "SELECT kind, name, toml FROM fleet_config ORDER BY kind, name",
                &[],
            )
            .await
            .map_err(|e| self.db(&e))?;
        tx.commit().await.map_err(|e| self.db(&e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let kind: String = row.try_get(0).map_err(|e| self.db(&e))?;
            let kind = EntryKind::parse(&kind).ok_or_else(|| StoreError::Database {
                target: self.inner.target.clone(),
                reason: format!("fleet_config holds an entry of unknown kind {kind:?}"),
            })?;
            out.push(ConfigEntry {
                kind,
                name: row.try_get(1).map_err(|e| self.db(&e))?,
                toml: row.try_get(2).map_err(|e| self.db(&e))?,
            });
        }
        Ok((version, out))
    }

    /// Adds or replaces the entry `kind`/`name` (one transaction with the version's bump).
    pub async fn put(&self, kind: EntryKind, name: &str, toml: &str) -> Result<(), StoreError> {
        let mut client = self.inner.client().await.map_err(|e| self.db(&e))?;
        let tx = client.transaction().await.map_err(|e| self.db(&e))?;
        tx.execute(
            "INSERT INTO fleet_config (kind, name, toml, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (kind, name) DO UPDATE SET toml = excluded.toml, updated_at = now()",
            &[&kind.as_str(), &name, &toml],
        )
        .await
        .map_err(|e| self.db(&e))?;
        tx.execute("UPDATE fleet_config_version SET version = version + 1", &[])
            .await
            .map_err(|e| self.db(&e))?;
        tx.commit().await.map_err(|e| self.db(&e))
    }

    /// Removes the entry `kind`/`name`; whether there was one.
    pub async fn remove(&self, kind: EntryKind, name: &str) -> Result<bool, StoreError> {
        let mut client = self.inner.client().await.map_err(|e| self.db(&e))?;
        let tx = client.transaction().await.map_err(|e| self.db(&e))?;
        let n = tx
            .execute(
                "DELETE FROM fleet_config WHERE kind = $1 AND name = $2",
                &[&kind.as_str(), &name],
            )
            .await
            .map_err(|e| self.db(&e))?;
        if n > 0 {
            tx.execute("UPDATE fleet_config_version SET version = version + 1", &[])
                .await
                .map_err(|e| self.db(&e))?;
        }
        tx.commit().await.map_err(|e| self.db(&e))?;
        Ok(n > 0)
    }
}
