//! The worker's ledger and leases, timed into the metrics.

use super::*;

/// The ledger and leases of a worker, timed into `metrics` when there are metrics (see
/// [`Metrics::ledger`], [`Metrics::leases`]), else as they are.
pub fn timed(
    metrics: Option<&Metrics>,
    ledger: Arc<dyn LedgerStore>,
    leases: Arc<dyn LeaseStore>,
) -> (Arc<dyn LedgerStore>, Arc<dyn LeaseStore>) {
    match metrics {
        Some(m) => (m.ledger(ledger), m.leases(leases)),
        None => (ledger, leases),
    }
}

/// A [`LedgerStore`] that times each operation of the one it wraps into [`Metrics`]
/// (`m365mail_store_operation_seconds{store="ledger"}`) and keeps the count of acknowledgements
/// owed that each pass's [`LedgerStore::unacknowledged`] returns. Made by [`Metrics::ledger`].
pub struct TimedLedger {
    pub(super) inner: Arc<dyn LedgerStore>,
    pub(super) metrics: Metrics,
}

impl fmt::Debug for TimedLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimedLedger").field(&self.inner).finish()
    }
}

#[async_trait]
impl LedgerStore for TimedLedger {
    async fn get(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        let t = Instant::now();
        let r = self.inner.get(key).await;
        self.metrics.time_store("ledger", "get", t, &r);
        r
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Record>>, LedgerError> {
        let t = Instant::now();
        let r = self.inner.get_many(keys).await;
        self.metrics.time_store("ledger", "get_many", t, &r);
        r
    }

    async fn append(
        &self,
        entries: Vec<(String, Entry)>,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        let t = Instant::now();
        let r = self.inner.append(entries, fence).await;
        self.metrics.time_store("ledger", "append", t, &r);
        r
    }

    async fn unacknowledged(&self, prefix: &str) -> Result<Vec<(String, Record)>, LedgerError> {
        let t = Instant::now();
        let r = self.inner.unacknowledged(prefix).await;
        self.metrics.time_store("ledger", "unacknowledged", t, &r);
        // The pipeline asks with `<source>|`: the debt of that source.
        if let (Ok(owed), Some(source)) = (&r, prefix.strip_suffix('|')) {
            let mut s = self.metrics.state();
            // Only for a source this worker still serves (or any, without leases): a pass
            // that ends after its lease was handed back must not bring its series back.
            if !s.leased || s.leases.contains_key(source) {
                s.sources.entry(source.to_owned()).or_default().owed = Some(owed.len() as u64);
            }
        }
        r
    }

    async fn expire(&self, cutoff: SystemTime) -> Result<usize, LedgerError> {
        let t = Instant::now();
        let r = self.inner.expire(cutoff).await;
        self.metrics.time_store("ledger", "expire", t, &r);
        r
    }
}

/// A [`LeaseStore`] that times each operation of the one it wraps into [`Metrics`]
/// (`m365mail_store_operation_seconds{store="leases"}`), follows the leases this worker holds
/// (`m365mail_leases_held`; a source's series go when its lease is handed back or lost) and
/// the heartbeat (`/readyz`). Made by [`Metrics::leases`].
pub struct TimedLeases {
    pub(super) inner: Arc<dyn LeaseStore>,
    pub(super) metrics: Metrics,
}

impl fmt::Debug for TimedLeases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimedLeases").field(&self.inner).finish()
    }
}

#[async_trait]
impl LeaseStore for TimedLeases {
    async fn heartbeat(&self, worker: &str, ttl: Duration) -> Result<FleetView, LeaseError> {
        let t = Instant::now();
        let r = self.inner.heartbeat(worker, ttl).await;
        self.metrics.time_store("leases", "heartbeat", t, &r);
        self.metrics.leases_changed(|s| {
            s.heartbeat = match (&r, &s.heartbeat) {
                (Ok(_), _) => Heartbeat::Ok { at: t, ttl },
                (Err(e), Heartbeat::Ok { at, .. }) => Heartbeat::Failed {
                    error: e.to_string(),
                    last_ok: Some(*at),
                },
                (Err(e), Heartbeat::Failed { last_ok, .. }) => Heartbeat::Failed {
                    error: e.to_string(),
                    last_ok: *last_ok,
                },
                (Err(e), Heartbeat::Never | Heartbeat::Left | Heartbeat::Alone) => {
                    Heartbeat::Failed {
                        error: e.to_string(),
                        last_ok: None,
                    }
                }
            };
        });
        r
    }

    async fn acquire(
        &self,
        source: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, LeaseError> {
        let t = Instant::now();
        let r = self.inner.acquire(source, worker, ttl).await;
        self.metrics.time_store("leases", "acquire", t, &r);
        if let Ok(Some(fence)) = &r {
            self.metrics.leases_changed(|s| {
                s.leases.insert(fence.source.clone(), fence.epoch);
                // A fresh start for the source's gauges: what another worker saw is not ours.
                s.sources.remove(&fence.source);
            });
        }
        r
    }

    async fn renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, LeaseError> {
        let t = Instant::now();
        let r = self.inner.renew(fence, ttl).await;
        self.metrics.time_store("leases", "renew", t, &r);
        // Lost: the pipeline stops the source and releases it, which drops its series; until
        // then it is not held.
        if let Ok(false) = r {
            self.metrics
                .leases_changed(|s| Metrics::drop_source(s, fence));
        }
        r
    }

    async fn renew_all(&self, fences: &[Fence], ttl: Duration) -> Result<Vec<bool>, LeaseError> {
        let t = Instant::now();
        let r = self.inner.renew_all(fences, ttl).await;
        self.metrics.time_store("leases", "renew_all", t, &r);
        if let Ok(held) = &r {
            for (fence, _) in fences.iter().zip(held).filter(|(_, h)| !**h) {
                self.metrics
                    .leases_changed(|s| Metrics::drop_source(s, fence));
            }
        }
        r
    }

    async fn release(&self, fence: &Fence) -> Result<(), LeaseError> {
        let t = Instant::now();
        let r = self.inner.release(fence).await;
        self.metrics.time_store("leases", "release", t, &r);
        // Given back (or, if the store failed, left to expire): no longer ours either way.
        self.metrics
            .leases_changed(|s| Metrics::drop_source(s, fence));
        r
    }

    async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        let t = Instant::now();
        let r = self.inner.leave(worker).await;
        self.metrics.time_store("leases", "leave", t, &r);
        self.metrics.leases_changed(|s| {
            s.heartbeat = Heartbeat::Left;
            s.leases.clear();
            s.sources.clear();
        });
        r
    }

    async fn holders(&self) -> Result<Vec<Fence>, LeaseError> {
        let t = Instant::now();
        let r = self.inner.holders().await;
        self.metrics.time_store("leases", "holders", t, &r);
        r
    }
}
