//! What each worker last saw of its sources, and the fleet at a glance ([`PgStatus`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::{Inner, StoreError};

/// What a worker reports about a source it serves, at each step of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceEvent {
    /// The source answered its ping: a pass begins, with this many messages waiting (if the
    /// source can tell).
    Started {
        /// Messages waiting.
        waiting: Option<u64>,
    },
    /// A listing of the waiting mail: the oldest message on it arrived at `received` (`None`:
    /// nothing is waiting).
    OldestWaiting {
        /// When the oldest waiting message arrived.
        received: Option<SystemTime>,
    },
    /// The pass is over.
    Finished,
    /// The source is OFFLINE, with the diagnosis.
    Offline {
        /// Why, for a person.
        reason: Option<String>,
    },
    /// The source asked for a pause (a spent request budget): it is asked nothing until
    /// `until`. The next pass's [`Started`](SourceEvent::Started) ends it.
    Paused {
        /// When the source may be asked again.
        until: SystemTime,
    },
}

/// One source as the fleet sees it: its lease, what its worker last reported, and the
/// acknowledgements the ledger owes it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SourceStatus {
    /// The source's name.
    pub source: String,
    /// The worker holding its lease, the epoch and when the lease runs out (an unexpired lease
    /// only).
    pub lease: Option<(String, u64, SystemTime)>,
    /// ONLINE (`Some(true)`), OFFLINE (`Some(false)`), or never reported (`None`).
    pub online: Option<bool>,
    /// The OFFLINE diagnosis.
    pub reason: Option<String>,
    /// OFFLINE since.
    pub offline_since: Option<SystemTime>,
    /// Messages waiting at the last ping.
    pub waiting: Option<u64>,
    /// When the oldest waiting message arrived, at the last listing (`None`: nothing waiting,
    /// or not known).
    pub oldest_waiting: Option<SystemTime>,
    /// When the last pass began and ended.
    pub last_pass: (Option<SystemTime>, Option<SystemTime>),
    /// The source is paused until then (throttled, with a wait), as its last pass reported;
    /// `None` once a pass began after it, or if it never was.
    pub paused_until: Option<SystemTime>,
    /// The worker that reported last.
    pub reported_by: Option<String>,
    /// Handled or parked messages whose acknowledgement the ledger still owes.
    pub owed: u64,
}

/// One live worker: its heartbeat's expiry and the sources it holds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// Its name.
    pub worker: String,
    /// When its heartbeat runs out.
    pub heartbeat_until: SystemTime,
    /// The sources it holds a lease on.
    pub sources: Vec<String>,
}

/// The fleet at a glance ([`PgStatus::fleet`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FleetStatus {
    /// Per source, in the order asked for.
    pub sources: Vec<SourceStatus>,
    /// Live workers, by name.
    pub workers: Vec<WorkerStatus>,
    /// The database's clock when this was read.
    pub now: SystemTime,
}

/// Where workers report their sources' state (`fleet_source_status`) and operators read the
/// fleet's (`m365mail status`).
#[derive(Clone, Debug)]
pub struct PgStatus {
    inner: Arc<Inner>,
}

/// Sets the time `column` of `source`'s status row (its row made if it has none).
async fn set_time(
    client: &tokio_postgres::Client,
    source: &str,
    worker: &str,
    column: &'static str,
    at: Option<SystemTime>,
) -> Result<u64, tokio_postgres::Error> {
    let secs: Option<f64> = at.and_then(|t| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64())
    });
    client
        .execute(
            &format!(
                "INSERT INTO fleet_source_status (source, worker, online, {column}, updated_at) \
                 VALUES ($1, $2, true, to_timestamp($3), now()) ON CONFLICT (source) DO UPDATE \
                 SET worker = $2, {column} = to_timestamp($3), updated_at = now()"
            ),
            &[&source, &worker, &secs],
        )
        .await
}

fn at(secs: Option<f64>) -> Option<SystemTime> {
    let secs = secs.filter(|s| s.is_finite() && *s >= 0.0)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs))
}

impl PgStatus {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgStatus { inner }
    }

    fn db(&self, e: &(dyn std::error::Error + 'static)) -> StoreError {
        StoreError::Database {
            target: self.inner.target.clone(),
            reason: self.inner.reason(e),
        }
    }

    /// Records what `worker` saw of `source`.
    pub async fn record(
        &self,
        source: &str,
        worker: &str,
        event: &SourceEvent,
    ) -> Result<(), StoreError> {
        let client = self.inner.client().await.map_err(|e| self.db(&e))?;
        let result = match event {
            SourceEvent::Started { waiting } => {
                let waiting = waiting.and_then(|w| i64::try_from(w).ok());
                client
                    .execute(
                        "INSERT INTO fleet_source_status (source, worker, online, waiting, \
                         last_pass_started, updated_at) VALUES ($1, $2, true, $3, now(), now()) \
                         ON CONFLICT (source) DO UPDATE SET worker = $2, online = true, \
                         reason = NULL, offline_since = NULL, waiting = $3, \
                         paused_until = NULL, last_pass_started = now(), updated_at = now()",
                        &[&source, &worker, &waiting],
                    )
                    .await
            }
            SourceEvent::OldestWaiting { received } => {
                set_time(&client, source, worker, "oldest_waiting", *received).await
            }
            SourceEvent::Paused { until } => {
                set_time(&client, source, worker, "paused_until", Some(*until)).await
            }
            SourceEvent::Finished => {
                client
                    .execute(
                        "INSERT INTO fleet_source_status (source, worker, online, \
                         last_pass_finished, updated_at) VALUES ($1, $2, true, now(), now()) \
                         ON CONFLICT (source) DO UPDATE SET worker = $2, \
                         last_pass_finished = now(), updated_at = now()",
                        &[&source, &worker],
                    )
                    .await
            }
            SourceEvent::Offline { reason } => {
                client
                    .execute(
                        "INSERT INTO fleet_source_status (source, worker, online, reason, \
                         offline_since, updated_at) VALUES ($1, $2, false, $3, now(), now()) \
                         ON CONFLICT (source) DO UPDATE SET worker = $2, online = false, \
                         reason = $3, offline_since = CASE WHEN fleet_source_status.online \
                         THEN now() ELSE coalesce(fleet_source_status.offline_since, now()) END, \
                         updated_at = now()",
                        &[&source, &worker, reason],
                    )
                    .await
            }
        };
        result.map(|_| ()).map_err(|e| self.db(&e))
    }

    /// The fleet now: `sources` (the configured ones, in that order) with their leases,
    /// reports and owed acknowledgements, and the live workers.
    pub async fn fleet(&self, sources: &[String]) -> Result<FleetStatus, StoreError> {
        let client = self.inner.client().await.map_err(|e| self.db(&e))?;
        let now: f64 = client
            .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.db(&e))?;
        let leases = client
            .query(
                "SELECT source, worker, epoch, extract(epoch FROM expires_at)::float8 \
                 FROM fleet_leases WHERE worker IS NOT NULL AND expires_at > clock_timestamp() \
                 ORDER BY source",
                &[],
            )
            .await
            .map_err(|e| self.db(&e))?;
        let reports = client
            .query(
                "SELECT source, worker, online, reason, \
                 extract(epoch FROM offline_since)::float8, waiting, \
                 extract(epoch FROM last_pass_started)::float8, \
                 extract(epoch FROM last_pass_finished)::float8, \
                 extract(epoch FROM oldest_waiting)::float8, \
                 extract(epoch FROM paused_until)::float8 FROM fleet_source_status",
                &[],
            )
            .await
            .map_err(|e| self.db(&e))?;
        let workers = client
            .query(
                "SELECT worker, extract(epoch FROM expires_at)::float8 FROM fleet_workers \
                 WHERE expires_at > clock_timestamp() ORDER BY worker",
                &[],
            )
            .await
            .map_err(|e| self.db(&e))?;
        // The owed acknowledgements of every source in one statement (the partial index of
        // owed rows keeps it small).
        let prefixes: Vec<String> = sources.iter().map(|n| format!("{n}|")).collect();
        let owed_rows = client
            .query(
                "SELECT p.prefix, count(l.key) FROM unnest($1::text[]) AS p(prefix) \
                 LEFT JOIN fleet_ledger l ON starts_with(l.key, p.prefix) \
                 AND NOT l.acknowledged AND (l.handled OR l.parked IS NOT NULL) \
                 GROUP BY p.prefix",
                &[&prefixes],
            )
            .await
            .map_err(|e| self.db(&e))?;
        let mut owed_by_prefix = std::collections::HashMap::with_capacity(owed_rows.len());
        for row in &owed_rows {
            let prefix: String = row.try_get(0).map_err(|e| self.db(&e))?;
            let n: i64 = row.try_get(1).map_err(|e| self.db(&e))?;
            owed_by_prefix.insert(prefix, n);
        }
        let mut out = Vec::with_capacity(sources.len());
        for (name, prefix) in sources.iter().zip(&prefixes) {
            let owed = owed_by_prefix.get(prefix).copied().unwrap_or(0);
            let mut s = SourceStatus {
                source: name.clone(),
                lease: None,
                online: None,
                reason: None,
                offline_since: None,
                waiting: None,
                oldest_waiting: None,
                last_pass: (None, None),
                paused_until: None,
                reported_by: None,
                owed: u64::try_from(owed).unwrap_or(0),
            };
            for row in &leases {
                let source: String = row.try_get(0).map_err(|e| self.db(&e))?;
                if &source == name {
                    let worker: String = row.try_get(1).map_err(|e| self.db(&e))?;
                    let epoch: i64 = row.try_get(2).map_err(|e| self.db(&e))?;
                    let until: Option<f64> = row.try_get(3).map_err(|e| self.db(&e))?;
                    s.lease = Some((
                        worker,
                        u64::try_from(epoch).unwrap_or(0),
                        at(until).unwrap_or(SystemTime::UNIX_EPOCH),
                    ));
                }
            }
            for row in &reports {
                let source: String = row.try_get(0).map_err(|e| self.db(&e))?;
                if &source != name {
                    continue;
                }
                s.reported_by = Some(row.try_get(1).map_err(|e| self.db(&e))?);
                s.online = Some(row.try_get(2).map_err(|e| self.db(&e))?);
                s.reason = row.try_get(3).map_err(|e| self.db(&e))?;
                s.offline_since = at(row.try_get(4).map_err(|e| self.db(&e))?);
                let waiting: Option<i64> = row.try_get(5).map_err(|e| self.db(&e))?;
                s.waiting = waiting.and_then(|w| u64::try_from(w).ok());
                s.last_pass = (
                    at(row.try_get(6).map_err(|e| self.db(&e))?),
                    at(row.try_get(7).map_err(|e| self.db(&e))?),
                );
                s.oldest_waiting = at(row.try_get(8).map_err(|e| self.db(&e))?);
                s.paused_until = at(row.try_get(9).map_err(|e| self.db(&e))?);
            }
            out.push(s);
        }
        let mut live = Vec::with_capacity(workers.len());
        for row in &workers {
            let worker: String = row.try_get(0).map_err(|e| self.db(&e))?;
            let until: Option<f64> = row.try_get(1).map_err(|e| self.db(&e))?;
            let held = out
                .iter()
                .filter(|s| s.lease.as_ref().is_some_and(|(w, _, _)| *w == worker))
                .map(|s| s.source.clone())
                .collect();
            live.push(WorkerStatus {
                worker,
                heartbeat_until: at(until).unwrap_or(SystemTime::UNIX_EPOCH),
                sources: held,
            });
        }
        Ok(FleetStatus {
            sources: out,
            workers: live,
            now: at(Some(now)).unwrap_or_else(SystemTime::now),
        })
    }
}
