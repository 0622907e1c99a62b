//! Leases and heartbeats in PostgreSQL ([`PgLeases`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use handler::{Fence, FleetView, LeaseError, LeaseStore};
use tokio_postgres::types::ToSql;

use crate::Inner;

/// Takes a lease if nobody holds it, it was released, it expired, or this worker holds it:
/// always at a new epoch, one more than the last (which the row keeps across releases).
const ACQUIRE: &str = "INSERT INTO fleet_leases AS l (source, worker, epoch, expires_at) \
     VALUES ($1, $2, 1, clock_timestamp() + $3::bigint * interval '1 microsecond') \
     ON CONFLICT (source) DO UPDATE \
     SET worker = EXCLUDED.worker, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at \
     WHERE l.worker IS NULL OR l.expires_at <= clock_timestamp() OR l.worker = EXCLUDED.worker \
     RETURNING epoch";

const RENEW: &str = "UPDATE fleet_leases \
     SET expires_at = clock_timestamp() + $4::bigint * interval '1 microsecond' \
     WHERE source = $1 AND worker = $2 AND epoch = $3 AND expires_at > clock_timestamp()";

/// Renews many leases of one worker at once: the ones still held come back.
const RENEW_ALL: &str = "UPDATE fleet_leases AS l \
     SET expires_at = clock_timestamp() + $4::bigint * interval '1 microsecond' \
     FROM unnest($1::text[], $3::bigint[]) AS f(source, epoch) \
     WHERE l.source = f.source AND l.epoch = f.epoch AND l.worker = $2 \
     AND l.expires_at > clock_timestamp() \
     RETURNING l.source, l.epoch";

/// Frees the lease but keeps its row, and so its epoch: the next holder's is higher.
const RELEASE: &str = "UPDATE fleet_leases SET worker = NULL, expires_at = clock_timestamp() \
     WHERE source = $1 AND worker = $2 AND epoch = $3";

const HOLDERS: &str = "SELECT source, worker, epoch FROM fleet_leases \
     WHERE worker IS NOT NULL AND expires_at > clock_timestamp() ORDER BY source";

/// Records a heartbeat, forgets workers silent for a day, and lists the live ones.
const HEARTBEAT: &str = "WITH beat AS ( \
         INSERT INTO fleet_workers (worker, expires_at) \
         VALUES ($1, clock_timestamp() + $2::bigint * interval '1 microsecond') \
         ON CONFLICT (worker) DO UPDATE SET expires_at = EXCLUDED.expires_at \
         RETURNING worker), \
     gone AS ( \
         DELETE FROM fleet_workers \
         WHERE expires_at < clock_timestamp() - interval '1 day' AND worker <> $1) \
     SELECT worker FROM fleet_workers \
     WHERE expires_at > clock_timestamp() AND worker <> $1 \
     UNION ALL SELECT worker FROM beat";

const LEAVE: &str = "DELETE FROM fleet_workers WHERE worker = $1";

/// Mailbox leases and worker heartbeats in PostgreSQL: a [`handler::LeaseStore`] for a fleet.
///
/// `fleet_leases` has one row per source ever leased (source, worker or NULL once released,
/// epoch, expiry), `fleet_workers` one per worker (its heartbeat's expiry). Every expiry is
/// computed and compared by the database's clock (`clock_timestamp()`), never a worker's, so
/// workers whose clocks disagree still agree on who holds what. Acquiring is one atomic
/// statement (`INSERT … ON CONFLICT DO UPDATE … WHERE` free, expired or already ours
/// `… RETURNING epoch`), and the epoch of a source only grows, across releases too. The
/// semantics are those of [`handler::LocalLeases`].
#[derive(Clone, Debug)]
pub struct PgLeases {
    inner: Arc<Inner>,
}

/// A duration in whole microseconds, as the statements take it (saturating: a century is as
/// good as forever for a lease).
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2)
}

fn epoch_param(fence: &Fence) -> Result<i64, LeaseError> {
    i64::try_from(fence.epoch).map_err(|_| LeaseError::Unavailable {
        backend: "postgres",
        reason: format!("epoch {} is beyond the database's bigint", fence.epoch),
    })
}

/// A lease's epoch as the database holds it, which is never negative.
fn epoch_of(source: &str, epoch: i64) -> Result<u64, LeaseError> {
    u64::try_from(epoch).map_err(|_| LeaseError::Unavailable {
        backend: "postgres",
        reason: format!("fleet_leases holds a negative epoch for {source}"),
    })
}

impl PgLeases {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgLeases { inner }
    }

    fn unavailable(&self, e: &(dyn std::error::Error + 'static)) -> LeaseError {
        LeaseError::Unavailable {
            backend: "postgres",
            reason: self.inner.reason(e),
        }
    }

    /// A connection from the lease pool, and the statement `sql` prepared (cached) on it.
    async fn prepared(
        &self,
        sql: &str,
    ) -> Result<(deadpool_postgres::Client, tokio_postgres::Statement), LeaseError> {
        let client = self
            .inner
            .lease_client()
            .await
            .map_err(|e| self.unavailable(&e))?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.unavailable(&e))?;
        Ok((client, stmt))
    }

    /// Runs one cached statement and returns its rows.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LeaseError> {
        let (client, stmt) = self.prepared(sql).await?;
        client
            .query(&stmt, params)
            .await
            .map_err(|e| self.unavailable(&e))
    }
}

#[async_trait]
impl LeaseStore for PgLeases {
    async fn heartbeat(&self, worker: &str, ttl: Duration) -> Result<FleetView, LeaseError> {
        let rows = self.query(HEARTBEAT, &[&worker, &micros(ttl)]).await?;
        let live_workers = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.unavailable(&e))?;
        Ok(FleetView::new(live_workers))
    }

    async fn acquire(
        &self,
        source: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, LeaseError> {
        let rows = self
            .query(ACQUIRE, &[&source, &worker, &micros(ttl)])
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let epoch: i64 = row.try_get(0).map_err(|e| self.unavailable(&e))?;
        Ok(Some(Fence::new(source, worker, epoch_of(source, epoch)?)))
    }

    async fn renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, LeaseError> {
        let epoch = epoch_param(fence)?;
        let (client, stmt) = self.prepared(RENEW).await?;
        let n = client
            .execute(&stmt, &[&fence.source, &fence.worker, &epoch, &micros(ttl)])
            .await
            .map_err(|e| self.unavailable(&e))?;
        Ok(n == 1)
    }

    async fn renew_all(&self, fences: &[Fence], ttl: Duration) -> Result<Vec<bool>, LeaseError> {
        if fences.is_empty() {
            return Ok(Vec::new());
        }
        // One statement per worker: fences of several workers (unusual) go one by one.
        let worker = &fences[0].worker;
        if fences.iter().any(|f| &f.worker != worker) {
            let mut out = Vec::with_capacity(fences.len());
            for f in fences {
                out.push(self.renew(f, ttl).await?);
            }
            return Ok(out);
        }
        let sources: Vec<&str> = fences.iter().map(|f| f.source.as_str()).collect();
        let epochs = fences
            .iter()
            .map(epoch_param)
            .collect::<Result<Vec<i64>, _>>()?;
        let rows = self
            .query(RENEW_ALL, &[&sources, worker, &epochs, &micros(ttl)])
            .await?;
        let mut renewed = std::collections::HashSet::with_capacity(rows.len());
        for r in &rows {
            let source: String = r.try_get(0).map_err(|e| self.unavailable(&e))?;
            let epoch: i64 = r.try_get(1).map_err(|e| self.unavailable(&e))?;
            renewed.insert((source, epoch));
        }
        Ok(fences
            .iter()
            .zip(&epochs)
            .map(|(f, e)| renewed.contains(&(f.source.clone(), *e)))
            .collect())
    }

    async fn release(&self, fence: &Fence) -> Result<(), LeaseError> {
        let epoch = epoch_param(fence)?;
        self.query(RELEASE, &[&fence.source, &fence.worker, &epoch])
            .await
            .map(drop)
    }

    async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        self.query(LEAVE, &[&worker]).await.map(drop)
    }

    async fn holders(&self) -> Result<Vec<Fence>, LeaseError> {
        let rows = self.query(HOLDERS, &[]).await?;
        rows.iter()
            .map(|r| {
                let source: String = r.try_get(0)?;
                let worker: String = r.try_get(1)?;
                let epoch: i64 = r.try_get(2)?;
                Ok((source, worker, epoch))
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(|e| self.unavailable(&e))?
            .into_iter()
            .map(|(source, worker, epoch)| {
                let epoch = epoch_of(&source, epoch)?;
                Ok(Fence::new(source, worker, epoch))
            })
            .collect()
    }
}
