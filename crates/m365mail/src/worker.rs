//! `m365mail worker`: one worker of a fleet. The sources of the configuration are shared by
//! every worker pointed at the same PostgreSQL database; each source is served by one worker at
//! a time (a lease with a fencing epoch), the ledger, tokens and delta state live in the
//! database, and the sources are spread evenly over the live workers. Sources in push mode are
//! served in push mode ([`crate::push::FleetPush`]): each worker listens, the worker holding a
//! source runs its subscriber, and a notification any worker receives wakes the holder.

use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use fleet::SourceEvent;
use handler::{FleetOptions, Pipeline, Progress, Shutdown, Summary};

use crate::catalog::StoreCatalog;
use crate::config::Config;
use crate::connect::SharedStores;
use crate::connect::anyhow_lite::Result;

/// How a worker joins its fleet.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerSettings {
    /// This worker's name in the fleet (unique: by default the host name, the process id and
    /// a random suffix).
    pub name: String,
    /// How long a lease lasts without renewal: another worker takes over a dead worker's
    /// sources within this time plus a third of it.
    pub lease_ttl: Duration,
    /// The metrics its pipeline and stores feed (`--metrics`); none by default.
    pub metrics: Option<crate::metrics::Metrics>,
}

impl WorkerSettings {
    /// Settings with a generated name and a 30-second lease.
    pub fn new() -> Self {
        WorkerSettings {
            name: default_name(),
            lease_ttl: Duration::from_secs(30),
            metrics: None,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// `host-pid-xxxx`: unique enough for a fleet, and readable in `status` and the logs.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into());
    let suffix: u16 = {
        use connector::retry::{Jitter, ProcessJitter};
        // A value in [0, 1] scaled to 16 bits; truncation is the point.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = (ProcessJitter.next().clamp(0.0, 1.0) * f64::from(u16::MAX)) as u16;
        n
    };
    format!("{host}-{}-{suffix:04x}", std::process::id())
}

/// Connects to the fleet's database at `store_url` (creating or migrating its schema), then
/// serves this worker's share of the fleet's sources until `shutdown`, and hands its leases
/// back. The sources are the configuration file's (`path`, already resolved into `cfg`) and
/// those kept in the database (`m365mail sources add`), watched while it runs.
pub async fn run(
    path: &Path,
    cfg: &Config,
    store_url: &str,
    settings: &WorkerSettings,
    shutdown: &Shutdown,
) -> Result<Summary> {
    let Some(store) = connect(store_url, shutdown).await? else {
        return Ok(Summary::default());
    };
    let file_text =
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stores = SharedStores::of_fleet(&store);
    let (ledger, leases) = crate::metrics::timed(
        settings.metrics.as_ref(),
        Arc::new(store.ledger()),
        Arc::new(store.leases()),
    );
    // Push mode: the listeners of the file's push sources are bound now (a worker that cannot
    // listen fails at start); subscribers run on the worker holding each source's lease.
    let push = crate::push::FleetPush::new(
        &store,
        leases.clone(),
        &settings.name,
        settings.lease_ttl,
        shutdown,
    );
    for p in cfg.sources.iter().filter_map(|s| s.push.as_ref()) {
        push.listen_on(p.listen).await?;
    }
    let catalog = Arc::new(
        StoreCatalog::new(store.catalog(), file_text, path.to_path_buf(), stores).with_push(push),
    );
    let mut pipeline = Pipeline::with_store(
        crate::handling::handler(cfg)?,
        ledger,
        cfg.handler.options(),
    );
    if let Some(m) = &settings.metrics {
        m.attach(&mut pipeline);
    }
    report_status(&mut pipeline, store.status(), &settings.name);
    tracing::info!(worker = %settings.name, "joining the fleet");
    let fleet = FleetOptions::new(settings.name.clone()).lease_ttl(settings.lease_ttl);
    Ok(pipeline.run_fleet(leases, catalog, fleet, shutdown).await)
}

/// Connects to the fleet's database, waiting for it with growing pauses (1 s doubling to 30 s)
/// while it cannot be reached: a worker started during a database restart or failover joins
/// when it is back instead of exiting. A URL that is wrong or a schema this program does not
/// know fails at once. `None` if `shutdown` came first.
async fn connect(url: &str, shutdown: &Shutdown) -> Result<Option<fleet::PgStore>> {
    let mut pause = Duration::from_secs(1);
    loop {
        match fleet::PgStore::connect(url).await {
            Ok(store) => return Ok(Some(store)),
            Err(e @ (fleet::StoreError::Connect { .. } | fleet::StoreError::Database { .. })) => {
                tracing::warn!(error = %e, retry_in = ?pause, "the fleet's database is not reachable");
                eprintln!("--store: {e}; trying again in {}s", pause.as_secs());
            }
            Err(e) => return Err(format!("--store: {e}")),
        }
        if shutdown.wait_for(pause).await {
            return Ok(None);
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Records each pass's start (with the waiting count), end and OFFLINE diagnosis in the fleet's
/// status table, for `m365mail status`. Written by a task of its own, so that a slow database
/// never holds up a pass, in the order the pipeline reported them: written each on a task of
/// its own, a pass's end could reach the table before its start (the store's connections run
/// side by side), and the table then showed a pass that never finished.
fn report_status(pipeline: &mut Pipeline, status: fleet::PgStatus, worker: &str) {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<(String, SourceEvent)>();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let worker = worker.to_owned();
        rt.spawn(async move {
            while let Some((source, event)) = events.recv().await {
                if let Err(e) = status.record(&source, &worker, &event).await {
                    tracing::debug!(source, error = %e, "recording the source's status failed");
                }
            }
        });
    }
    pipeline.on_progress(move |event: &Progress| {
        let (source, event) = match event {
            Progress::Started { source, waiting } => {
                (source, SourceEvent::Started { waiting: *waiting })
            }
            Progress::OldestWaiting { source, received } => (
                source,
                SourceEvent::OldestWaiting {
                    received: received.map(std::time::SystemTime::from),
                },
            ),
            Progress::Paused { source, until } => (
                source,
                SourceEvent::Paused {
                    until: std::time::SystemTime::from(*until),
                },
            ),
            Progress::Finished { source } => (source, SourceEvent::Finished),
            Progress::Offline { source, reason } => (
                source,
                SourceEvent::Offline {
                    reason: reason.clone(),
                },
            ),
            _ => return,
        };
        // Without the writer (no runtime), the report is dropped, as a lost one always was.
        let _ = tx.send((source.clone(), event));
    });
}
