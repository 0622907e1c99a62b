//! One worker of a fleet: the sources it holds a lease on, renewed while held, balanced over the
//! live workers, handed back when it stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::*;
use crate::store::LeaseStore;

/// How a worker of a fleet takes part in it ([`Pipeline::run_leased`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FleetOptions {
    /// This worker's name: unique in the fleet (a host name and process id will do).
    pub worker: String,
    /// How long a lease (and a heartbeat) lasts unless renewed. A SIGKILLed worker's sources
    /// are polled again by another within this time plus one tick. Default 30 s.
    pub lease_ttl: Duration,
    /// How often the worker heartbeats, renews its leases, and rebalances. Default a third of
    /// the lease time.
    pub tick: Duration,
    /// The worker stops acting for a source (handing over, acknowledging) once its lease has
    /// less than this left without a renewal, so that a renewal delayed by a slow store never
    /// lets two workers act at once. Default a sixth of the lease time.
    pub safety_margin: Duration,
}

impl FleetOptions {
    /// Options for the worker named `worker`, with the default times.
    pub fn new(worker: impl Into<String>) -> Self {
        let lease_ttl = Duration::from_secs(30);
        FleetOptions {
            worker: worker.into(),
            lease_ttl,
            tick: lease_ttl / 3,
            safety_margin: lease_ttl / 6,
        }
    }

    /// Sets the lease time, with the tick at a third of it and the safety margin a sixth.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self.tick = ttl / 3;
        self.safety_margin = ttl / 6;
        self
    }
}

/// A lease this worker holds, as this worker knows it: valid until the last successful renewal
/// plus the lease time, by this process's monotonic clock (which keeps running while the
/// process is stopped, so a worker resumed after a SIGSTOP knows at once that it lost it).
#[derive(Debug)]
pub(crate) struct HeldLease {
    fence: Fence,
    valid_until: Mutex<Instant>,
    margin: Duration,
    lost: AtomicBool,
}

impl HeldLease {
    fn new(fence: Fence, renewed_at: Instant, ttl: Duration, margin: Duration) -> Self {
        HeldLease {
            fence,
            valid_until: Mutex::new(renewed_at + ttl),
            margin,
            lost: AtomicBool::new(false),
        }
    }

    pub(crate) fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Held, with more than the safety margin left.
    pub(crate) fn holds(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && Instant::now() + self.margin < *lock(&self.valid_until)
    }

    fn renewed(&self, at: Instant, ttl: Duration) {
        *lock(&self.valid_until) = at + ttl;
    }

    fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }
}

/// Sources this worker is stopping: their tasks finish the messages in flight while the tick
/// goes on (renewing their leases unless lost); each lease is handed back once its task ended.
/// Stopping in the background matters: awaited inline, a source's pass in flight (seconds,
/// when its service is slow or throttling) held up the renewal of every other lease the
/// worker kept, and the fleet chaos run (`cargo xtask chaos --fleet`) saw them expire under a
/// live worker: a worker resumed after a SIGSTOP with 177 lost sources stopped them one pass at
/// a time and served nothing for 48 s, and a worker handing its excess to new workers lost
/// the sources it kept.
type Stopping = BTreeMap<String, Serving>;

/// How long a worker waits after its first heartbeat before taking sources (see
/// [`Pipeline::run_fleet`]).
const JOIN_GRACE: Duration = Duration::from_secs(1);

/// How often a stopping worker looks whether its sources' tasks have ended.
const STOP_POLL: Duration = Duration::from_millis(20);

/// A source this worker serves.
struct Serving {
    lease: Arc<HeldLease>,
    stop: Shutdown,
    task: tokio::task::JoinHandle<SourceSummary>,
    /// The fingerprint of the configuration it was started with.
    fingerprint: String,
}

/// A source as a [`SourceCatalog`] hands it out: its spec, and a fingerprint of its
/// configuration (a source whose fingerprint changes is restarted with the new spec).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CatalogSource {
    /// The source.
    pub spec: SourceSpec,
    /// Anything that changes when the source's configuration does (its configuration's text).
    pub fingerprint: String,
}

impl CatalogSource {
    /// `spec`, whose configuration `fingerprint` identifies.
    pub fn new(spec: SourceSpec, fingerprint: impl Into<String>) -> Self {
        CatalogSource {
            spec,
            fingerprint: fingerprint.into(),
        }
    }
}

/// The sources of a fleet that is changed while it runs (sources added, removed, their routing
/// changed): asked at every tick of [`Pipeline::run_fleet`].
#[async_trait::async_trait]
pub trait SourceCatalog: Send + Sync {
    /// A number that changes whenever the sources do; asked every tick, so it should be cheap.
    async fn version(&self) -> Result<i64, String>;
    /// The sources now (asked when the version moved).
    async fn sources(&self) -> Result<Vec<CatalogSource>, String>;
}

/// The pipeline's own sources, never changing.
struct Fixed(Vec<CatalogSource>);

#[async_trait::async_trait]
impl SourceCatalog for Fixed {
    async fn version(&self) -> Result<i64, String> {
        Ok(0)
    }
    async fn sources(&self) -> Result<Vec<CatalogSource>, String> {
        Ok(self.0.clone())
    }
}

/// What a worker knows of the catalog.
#[derive(Default)]
struct Known {
    version: Option<i64>,
    sources: BTreeMap<String, CatalogSource>,
}

impl Pipeline {
    /// Runs this pipeline as one worker of a fleet until `shutdown`: it serves only the sources
    /// whose lease it holds in `leases`, at most its fair share of them (the sources divided by
    /// the live workers, rounded up), renews them every [`FleetOptions::tick`], takes more when
    /// workers leave or die and gives some back when workers join. Every ledger write carries
    /// the lease's [`Fence`]. On shutdown it stops its sources, hands their leases back at once
    /// and leaves the fleet.
    ///
    /// Returns a summary per pass of a source it served (a source served twice, having been
    /// handed back and taken again, appears twice).
    pub async fn run_leased(
        &self,
        leases: Arc<dyn LeaseStore>,
        fleet: FleetOptions,
        shutdown: &Shutdown,
    ) -> Summary {
        let fixed = self
            .sources
            .iter()
            .map(|s| CatalogSource::new(s.clone(), ""))
            .collect();
        self.run_fleet(leases, Arc::new(Fixed(fixed)), fleet, shutdown)
            .await
    }

    /// [`run_leased`](Self::run_leased) over the sources of `catalog` instead of the pipeline's
    /// own: at every tick the catalog's version is asked, and when it moved, a removed source
    /// is stopped (its messages in flight finish) and its lease handed back, a changed one is
    /// restarted with its new configuration, and new ones join the sources shared out.
    pub async fn run_fleet(
        &self,
        leases: Arc<dyn LeaseStore>,
        catalog: Arc<dyn SourceCatalog>,
        fleet: FleetOptions,
        shutdown: &Shutdown,
    ) -> Summary {
        let expiry = self.spawn_expiry(shutdown);
        let mut serving: BTreeMap<String, Serving> = BTreeMap::new();
        let mut stopping: Stopping = BTreeMap::new();
        let mut known = Known::default();
        let mut done: Vec<SourceSummary> = Vec::new();
        // Each worker looks at the sources from its own starting point, so that workers that
        // start together do not all race for the same first source.
        let offset = {
            use connector::retry::{Jitter, ProcessJitter};
            // A value in [0, 1] scaled to a starting index; truncation is the point.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let at = (ProcessJitter.next().clamp(0.0, 1.0) * 1024.0) as usize;
            at
        };
        let mut shutdown_wait = shutdown.clone();
        // Workers started together each saw only themselves at their first heartbeat and took
        // every source, to hand most back a tick later. The first heartbeat is now followed by
        // a short wait and a second one, so that those starting together see each other.
        match leases.heartbeat(&fleet.worker, fleet.lease_ttl).await {
            Ok(_) => {
                let grace = fleet.tick.min(JOIN_GRACE);
                if shutdown_wait.sleep(grace).await {
                    let _ = leases.leave(&fleet.worker).await;
                    expiry.abort();
                    return Summary { sources: done };
                }
            }
            Err(e) => tracing::warn!(error = %e, "fleet heartbeat failed"),
        }
        loop {
            reap(&leases, &mut stopping, &mut done).await;
            self.refresh(catalog.as_ref(), &mut known, &mut serving, &mut stopping)
                .await;
            self.tick(&leases, &fleet, &known, offset, &mut serving, &mut stopping)
                .await;
            if shutdown.is_triggered() || shutdown_wait.sleep(fleet.tick).await {
                break;
            }
        }
        // Stop every source (all at once: their messages in flight finish together), then hand
        // each lease back as its task ends: another worker may take it at once.
        for (name, s) in std::mem::take(&mut serving) {
            begin_stop(&mut stopping, name, s);
        }
        // Their leases are renewed meanwhile: a message in flight can take long to finish (a
        // webhook, an acknowledgement waiting out Retry-After), and a lease that ran out under
        // it would let another worker take the source while this one still writes.
        let mut renewed = Instant::now();
        loop {
            reap(&leases, &mut stopping, &mut done).await;
            if stopping.is_empty() {
                break;
            }
            if renewed.elapsed() >= fleet.tick {
                renew(&leases, &fleet, &mut serving, &mut stopping).await;
                renewed = Instant::now();
            }
            tokio::time::sleep(STOP_POLL.min(fleet.tick)).await;
        }
        if let Err(e) = leases.leave(&fleet.worker).await {
            tracing::warn!(error = %e, "leaving the fleet failed; the heartbeat expires");
        }
        expiry.abort();
        Summary { sources: done }
    }

    /// Reads the catalog again if its version moved; stops the sources it no longer has or
    /// whose configuration changed.
    async fn refresh(
        &self,
        catalog: &dyn SourceCatalog,
        known: &mut Known,
        serving: &mut BTreeMap<String, Serving>,
        stopping: &mut Stopping,
    ) {
        let version = match catalog.version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "reading the sources' version failed; keeping the last");
                return;
            }
        };
        if known.version == Some(version) {
            return;
        }
        let sources = match catalog.sources().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reading the sources failed; keeping the last");
                return;
            }
        };
        known.sources = sources
            .into_iter()
            .map(|c| (c.spec.name.clone(), c))
            .collect();
        known.version = Some(version);
        let stale: Vec<String> = serving
            .iter()
            .filter(|(name, s)| {
                known
                    .sources
                    .get(*name)
                    .is_none_or(|c| c.fingerprint != s.fingerprint)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(s) = serving.remove(&name) {
                tracing::info!(lease = %s.lease.fence(), "the source was removed or changed");
                begin_stop(stopping, name, s);
            }
        }
    }

    /// One heartbeat: renew what is held, drop what was lost, give back or take to reach the
    /// fair share.
    async fn tick(
        &self,
        leases: &Arc<dyn LeaseStore>,
        fleet: &FleetOptions,
        known: &Known,
        offset: usize,
        serving: &mut BTreeMap<String, Serving>,
        stopping: &mut Stopping,
    ) {
        let names: Vec<&str> = known.sources.keys().map(String::as_str).collect();
        // Sources whose task ended on its own (it cannot, short of a bug) are given back.
        let ended: Vec<String> = serving
            .iter()
            .filter(|(_, s)| s.task.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for id in ended {
            if let Some(s) = serving.remove(&id) {
                begin_stop(stopping, id, s);
            }
        }
        let view = match leases.heartbeat(&fleet.worker, fleet.lease_ttl).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "fleet heartbeat failed; leases run out unless renewed");
                None
            }
        };
        renew(leases, fleet, serving, stopping).await;
        let Some(view) = view else { return };
        let workers = view.live_workers.len().max(1);
        let fair = names.len().div_ceil(workers);
        // Too many (a worker joined): give back the excess, the last ones first.
        while serving.len() > fair {
            let Some((name, s)) = serving.pop_last() else {
                break;
            };
            tracing::info!(lease = %s.lease.fence(), fair, "handing a source to a new worker");
            begin_stop(stopping, name, s);
        }
        // Too few: take free (or expired) sources up to the fair share. Those another worker
        // holds are not even asked for (one query instead of one refusal per source per tick:
        // the least loaded worker of a busy fleet asked for every other worker's sources).
        if serving.len() < fair && !names.is_empty() {
            let others: std::collections::HashSet<String> = match leases.holders().await {
                Ok(held) => held
                    .into_iter()
                    .filter(|f| f.worker != fleet.worker)
                    .map(|f| f.source)
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "listing the leases failed; asking for each");
                    std::collections::HashSet::new()
                }
            };
            for i in 0..names.len() {
                if serving.len() >= fair {
                    break;
                }
                let name = names[(i + offset) % names.len()];
                // Not one still stopping here: its old task may still be finishing a message.
                if serving.contains_key(name)
                    || stopping.contains_key(name)
                    || others.contains(name)
                {
                    continue;
                }
                let Some(source) = known.sources.get(name) else {
                    continue;
                };
                let at = Instant::now();
                match leases.acquire(name, &fleet.worker, fleet.lease_ttl).await {
                    Ok(Some(fence)) => {
                        tracing::info!(lease = %fence, "serving a source");
                        let lease = Arc::new(HeldLease::new(
                            fence,
                            at,
                            fleet.lease_ttl,
                            fleet.safety_margin,
                        ));
                        let ctx = self.ctx_among(&source.spec, Some(lease.clone()), &names);
                        let stop = Shutdown::new();
                        let task = tokio::spawn(serve(ctx, self.options.clone(), stop.clone()));
                        serving.insert(
                            name.to_owned(),
                            Serving {
                                lease,
                                stop,
                                task,
                                fingerprint: source.fingerprint.clone(),
                            },
                        );
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(source = %name, error = %e, "acquiring a lease failed");
                        break;
                    }
                }
            }
        }
    }
}

/// Renews the leases of `serving` and of `stopping` (their messages in flight finish under a
/// valid lease) in one request. A lease the store says is lost stops its source at once; one
/// that could not be renewed (the store is unreachable) stops acting by itself when its time
/// runs out.
async fn renew(
    leases: &Arc<dyn LeaseStore>,
    fleet: &FleetOptions,
    serving: &mut BTreeMap<String, Serving>,
    stopping: &mut Stopping,
) {
    let ids: Vec<(String, bool)> = serving
        .keys()
        .map(|k| (k.clone(), true))
        .chain(
            stopping
                .iter()
                .filter(|(_, s)| !s.lease.lost.load(Ordering::SeqCst))
                .map(|(k, _)| (k.clone(), false)),
        )
        .collect();
    let fences: Vec<Fence> = ids
        .iter()
        .filter_map(|(id, served)| {
            let map: &BTreeMap<String, Serving> = if *served { serving } else { stopping };
            map.get(id).map(|s| s.lease.fence().clone())
        })
        .collect();
    // All of them in one request: renewed one by one, a worker holding many leases saw the
    // last ones run out while it was still renewing the first (the fleet chaos run, with
    // mail arriving as fast as the fleet takes it).
    let at = Instant::now();
    let answers: Vec<Result<bool, String>> = match leases.renew_all(&fences, fleet.lease_ttl).await
    {
        Ok(held) if held.len() == fences.len() => held.into_iter().map(Ok).collect(),
        Ok(held) => {
            let e = format!("{} answers for {} leases", held.len(), fences.len());
            fences.iter().map(|_| Err(e.clone())).collect()
        }
        Err(e) => fences.iter().map(|_| Err(e.to_string())).collect(),
    };
    for ((id, served), answer) in ids.into_iter().zip(answers) {
        let map: &BTreeMap<String, Serving> = if served { serving } else { stopping };
        let Some(s) = map.get(&id) else { continue };
        let lost = match answer {
            Ok(true) => {
                s.lease.renewed(at, fleet.lease_ttl);
                false
            }
            Ok(false) => {
                tracing::warn!(lease = %s.lease.fence(), "lease lost; the source stops here");
                true
            }
            Err(e) => {
                tracing::warn!(lease = %s.lease.fence(), error = %e, "renewing a lease failed");
                !s.lease.holds()
            }
        };
        if lost {
            s.lease.lose();
            if served && let Some(s) = serving.remove(&id) {
                begin_stop(stopping, id, s);
            }
        }
    }
}

/// Asks a source's task to stop (its current message tasks finish) and moves it to
/// `stopping`, where [`reap`] hands its lease back once the task has ended.
fn begin_stop(stopping: &mut Stopping, name: String, s: Serving) {
    s.stop.trigger();
    stopping.insert(name, s);
}

/// Hands back the leases of the sources in `stopping` whose task has ended.
async fn reap(
    leases: &Arc<dyn LeaseStore>,
    stopping: &mut Stopping,
    done: &mut Vec<SourceSummary>,
) {
    let ended: Vec<String> = stopping
        .iter()
        .filter(|(_, s)| s.task.is_finished())
        .map(|(k, _)| k.clone())
        .collect();
    for name in ended {
        if let Some(s) = stopping.remove(&name) {
            done.push(stop(leases, s).await);
        }
    }
}

/// Stops serving a source (its current message tasks finish), then hands its lease back.
async fn stop(leases: &Arc<dyn LeaseStore>, s: Serving) -> SourceSummary {
    s.stop.trigger();
    let summary = match s.task.await {
        Ok(summary) => summary,
        Err(e) => {
            let mut summary = SourceSummary::new(&s.lease.fence().source);
            summary
                .errors
                .push(format!("the source's task failed: {e}"));
            summary
        }
    };
    if let Err(e) = leases.release(s.lease.fence()).await {
        tracing::warn!(lease = %s.lease.fence(), error = %e, "handing a lease back failed; it expires");
    }
    summary
}
