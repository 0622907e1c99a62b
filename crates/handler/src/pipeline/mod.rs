//! The pipeline: poll each source, route each message, hand it over, record, notify, acknowledge.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use addressing::{Router, SenderChoice};
use connector::mime::{Panicked, catch_panic};
use connector::{
    Acknowledgement, ErrorKind, MessageId, MessageOutbound, MessageSource, PingStatus, RawMessage,
};
use futures_util::FutureExt as _;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::ledger::{Entry, Ledger, LedgerError};
use crate::notify::{NotificationPolicy, build_notification};
use crate::store::{Fence, LedgerStore};
use crate::{Handler, HandlerError, Inbound};

mod ack;
mod fleet;
mod message;
mod page;
mod prefetch;
mod report;
mod spec;

use ack::*;
use fleet::HeldLease;
pub use fleet::{CatalogSource, FleetOptions, SourceCatalog};
use message::*;
use page::{ACK_CHUNK, drain_pages};
pub use report::*;
pub use spec::*;

/// The mail-handler pipeline.
pub struct Pipeline {
    sources: Vec<SourceSpec>,
    handler: Arc<dyn Handler>,
    ledger: Arc<dyn LedgerStore>,
    options: Options,
    observers: Vec<ProgressObserver>,
    ack_retries: Arc<Mutex<HashMap<String, AckRetry>>>,
}

/// This process's attempts at one acknowledgement the ledger owes.
#[derive(Debug, Clone, Copy, Default)]
struct AckRetry {
    /// Failed attempts so far.
    failures: u32,
    /// Passes to let go by before the next attempt.
    wait: u32,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("sources", &self.sources)
            .field("ledger", &self.ledger)
            .field("options", &self.options)
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

struct Ctx {
    spec: SourceSpec,
    handler: Arc<dyn Handler>,
    ledger: Arc<dyn LedgerStore>,
    /// The lease this worker holds on the source, in a fleet; `None` in a single process.
    lease: Option<Arc<HeldLease>>,
    max_attempts: u32,
    max_mime: usize,
    max_ack_retries: u32,
    observers: Vec<ProgressObserver>,
    /// The other sources' names (a key `a|b|1` is source `a|b`'s, not `a`'s).
    other_sources: Vec<String>,
    ack_retries: Arc<Mutex<HashMap<String, AckRetry>>>,
    /// The source acknowledges many messages per round trip
    /// ([`SourceCapabilities::batch_acknowledge`](connector::SourceCapabilities)): handled
    /// messages are then acknowledged together, [`ACK_CHUNK`] at a time, instead of one request
    /// each inside their tasks.
    batch_ack: bool,
    /// [`Options::subject_token`].
    subject_token: Option<String>,
    /// Thread references of the page's messages, `(reference, root)`, remembered together once
    /// the page is done ([`remember_page_threads`]).
    threads: Mutex<Vec<(String, String)>>,
    /// Acknowledgements of this pass the source refused while throttled: owed, and reported
    /// as one error when the pass ends.
    throttled_acks: std::sync::atomic::AtomicU64,
}

/// An acknowledgement a message's outcome waits for.
struct PendingAck {
    id: MessageId,
    ack: Acknowledgement,
}

impl Ctx {
    /// Notes that mail naming `reference` belongs to the thread of `root`, to be remembered
    /// with the rest of the page.
    fn remember_thread(&self, reference: &str, root: &str) {
        self.threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((reference.to_owned(), root.to_owned()));
    }

    fn report(&self, event: Progress) {
        for o in &self.observers {
            o(&event);
        }
    }

    fn fence(&self) -> Option<&Fence> {
        self.lease.as_deref().map(HeldLease::fence)
    }

    /// Whether this worker may still act for the source: always in a single process; in a
    /// fleet, while its lease is held with time to spare (checked before handing a message
    /// over and before acknowledging; the ledger's fenced writes check again in the store).
    fn may_act(&self) -> Result<(), String> {
        match &self.lease {
            Some(lease) if !lease.holds() => Err(format!(
                "the lease was lost or is about to expire ({}); left for its next holder",
                lease.fence()
            )),
            _ => Ok(()),
        }
    }

    /// Records `entry` for `k` (fenced in a fleet).
    async fn record(&self, k: &str, entry: Entry) -> Result<(), LedgerError> {
        self.ledger
            .append(vec![(k.to_owned(), entry)], self.fence())
            .await
    }
}

/// What happened to one message.
enum Outcome {
    Handled {
        project: Option<String>,
        notification: Option<SentNotification>,
        notification_skipped: bool,
        /// The message was handled but acknowledging it failed: it stays waiting and is
        /// finished (acknowledged without handling) on a later pass.
        ack_error: Option<AckFailure>,
    },
    Recovered,
    Failed,
    Parked,
    /// A probe of `m365mail doctor`: not handed over; `marked` when it was marked read.
    Probe {
        marked: bool,
    },
    /// Acknowledging failed: the message stays waiting (and is recorded as handled).
    AckFailed(AckFailure),
    /// Talking to the outbound failed (the message is still handled and acknowledged).
    NotifyFailed {
        project: Option<String>,
        error: String,
    },
    Error(String),
}

/// `outcome` once its acknowledgement was made (`Ok`) or failed (`Err`).
fn settle(outcome: Outcome, acked: Result<(), AckFailure>) -> Outcome {
    let Err(e) = acked else { return outcome };
    match outcome {
        Outcome::Handled {
            project,
            notification,
            notification_skipped,
            ack_error: _,
        } => Outcome::Handled {
            project,
            notification,
            notification_skipped,
            ack_error: Some(e),
        },
        Outcome::NotifyFailed { error, .. } => Outcome::AckFailed(AckFailure {
            text: format!("{}; notify: {error}", e.text),
            pause: e.pause,
        }),
        Outcome::Recovered | Outcome::Parked => Outcome::AckFailed(e),
        other @ (Outcome::Failed
        | Outcome::AckFailed(_)
        | Outcome::Error(_)
        | Outcome::Probe { .. }) => other,
    }
}

impl Pipeline {
    /// A pipeline handing messages to `handler` and recording them in `ledger` (a local
    /// [`Ledger`]; see [`with_store`](Self::with_store) for any [`LedgerStore`]).
    pub fn new(handler: Arc<dyn Handler>, ledger: Ledger, options: Options) -> Self {
        Self::with_store(handler, Arc::new(ledger), options)
    }

    /// A pipeline recording in any [`LedgerStore`]: the local [`Ledger`], or a fleet's shared
    /// database.
    pub fn with_store(
        handler: Arc<dyn Handler>,
        ledger: Arc<dyn LedgerStore>,
        options: Options,
    ) -> Self {
        Pipeline {
            sources: Vec::new(),
            handler,
            ledger,
            options,
            observers: Vec::new(),
            ack_retries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn ctx(&self, spec: &SourceSpec, lease: Option<Arc<HeldLease>>) -> Arc<Ctx> {
        let names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        self.ctx_among(spec, lease, &names)
    }

    /// The context of `spec` among the sources named `names` (a key `a|b|1` is source `a|b`'s,
    /// not `a`'s).
    fn ctx_among(
        &self,
        spec: &SourceSpec,
        lease: Option<Arc<HeldLease>>,
        names: &[&str],
    ) -> Arc<Ctx> {
        Arc::new(Ctx {
            spec: spec.clone(),
            handler: self.handler.clone(),
            ledger: self.ledger.clone(),
            lease,
            max_attempts: self.options.max_attempts,
            max_mime: self.options.max_mime,
            max_ack_retries: self.options.max_ack_retries,
            observers: self.observers.clone(),
            other_sources: names
                .iter()
                .filter(|n| **n != spec.name)
                .map(|n| (*n).to_owned())
                .collect(),
            ack_retries: self.ack_retries.clone(),
            batch_ack: spec.source.capabilities().batch_acknowledge,
            subject_token: self.options.subject_token.clone(),
            threads: Mutex::new(Vec::new()),
            throttled_acks: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Calls `observer` with every [`Progress`] event of later runs (a progress bar, metrics).
    /// Several observers may be added; each is called in turn, on the pipeline's tasks, so it
    /// should return quickly.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use handler::{FnHandler, Ledger, Options, Pipeline, Progress};
    ///
    /// let handler = FnHandler::new(|_: &handler::Inbound| Ok(()));
    /// let mut pipeline = Pipeline::new(Arc::new(handler), Ledger::in_memory(), Options::default());
    /// let done = Arc::new(Mutex::new(0u64));
    /// let d = done.clone();
    /// pipeline.on_progress(move |event: &Progress| {
    ///     if let Progress::Message { .. } = event {
    ///         *d.lock().unwrap() += 1;
    ///     }
    /// });
    /// ```
    pub fn on_progress(
        &mut self,
        observer: impl Fn(&Progress) + Send + Sync + 'static,
    ) -> &mut Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Adds a source.
    pub fn add_source(&mut self, spec: SourceSpec) -> &mut Self {
        self.sources.push(spec);
        self
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn LedgerStore> {
        &self.ledger
    }

    /// Drains every source once, concurrently: ping, then fetch and handle until nothing is
    /// waiting (or only messages that failed in this run), or until `shutdown`. A source that
    /// asks for a pause (throttled, with a wait) is waited for and drained again while the
    /// waits stay within [`Options::throttle_wait`] (default: not at all); otherwise it is
    /// returned with [`SourceSummary::throttled_until`] set and its mail still waiting.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Summary {
        let mut set = JoinSet::new();
        for (i, spec) in self.sources.iter().enumerate() {
            let ctx = self.ctx(spec, None);
            let options = self.options.clone();
            let mut shutdown = shutdown.clone();
            set.spawn(async move {
                let mut summary = SourceSummary::new(&ctx.spec.name);
                // A source that asked for a pause is waited for and drained again, while the
                // waits together stay within `throttle_wait`.
                let mut waited = Duration::ZERO;
                loop {
                    drain_guarded(&ctx, &options, &shutdown, &mut summary).await;
                    let Some(pause) = summary.pause_left() else {
                        break;
                    };
                    if waited + pause > options.throttle_wait || shutdown.is_triggered() {
                        break;
                    }
                    tracing::info!(
                        source = %summary.name,
                        seconds = pause.as_secs(),
                        "the source asked for a pause; waiting before draining it again"
                    );
                    if shutdown.sleep(pause).await {
                        break;
                    }
                    waited += pause;
                }
                (i, summary)
            });
        }
        summaries(set).await
    }

    /// Polls every source until `shutdown`: each source on its own task, so one failing
    /// source never holds up the others. A source that is OFFLINE is pinged again with
    /// growing pauses and reported with its reason and since when. Returns the accumulated
    /// summary.
    pub async fn run(&self, shutdown: &Shutdown) -> Summary {
        let expiry = self.spawn_expiry(shutdown);
        let mut set = JoinSet::new();
        for (i, spec) in self.sources.iter().enumerate() {
            let ctx = self.ctx(spec, None);
            let options = self.options.clone();
            let shutdown = shutdown.clone();
            set.spawn(async move { (i, serve(ctx, options, shutdown).await) });
        }
        let summary = summaries(set).await;
        expiry.abort();
        summary
    }

    /// Forgets acknowledged messages older than [`Options::retention`] now and every hour,
    /// until `shutdown` (or until the returned task is aborted).
    fn spawn_expiry(&self, shutdown: &Shutdown) -> tokio::task::JoinHandle<()> {
        let ledger = self.ledger.clone();
        let retention = self.options.retention;
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Some(keep) = retention else { return };
            loop {
                let cutoff = std::time::SystemTime::now()
                    .checked_sub(keep)
                    .unwrap_or(std::time::UNIX_EPOCH);
                match ledger.expire(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(forgotten = n, "expired acknowledged ledger records"),
                    Err(e) => tracing::warn!(error = %e, "expiring the ledger failed"),
                }
                if shutdown.sleep(Duration::from_secs(3600)).await {
                    return;
                }
            }
        })
    }
}

/// Polls one source until `shutdown`: a pass, then the poll interval, or growing pauses while
/// it is OFFLINE (reported with its reason and since when).
async fn serve(ctx: Arc<Ctx>, options: Options, mut shutdown: Shutdown) -> SourceSummary {
    let mut summary = SourceSummary::new(&ctx.spec.name);
    let mut backoff = options.offline_backoff;
    // Its companion (push mode) runs as long as the source is served, under its lease.
    let companion = ctx.spec.companion.clone().map(|c| {
        let (fence, stop) = (ctx.fence().cloned(), shutdown.clone());
        tokio::spawn(async move { c.run(fence, stop).await })
    });
    loop {
        drain_guarded(&ctx, &options, &shutdown, &mut summary).await;
        let throttled = summary.pause_left();
        let pause = if let Some(pause) = throttled {
            // The source asked for a pause: nothing is asked of it before it ends.
            tracing::info!(
                source = %summary.name,
                seconds = pause.as_secs(),
                "the source asked for a pause"
            );
            pause
        } else if summary.status == PingStatus::Offline {
            tracing::warn!(
                source = %summary.name,
                reason = summary.reason.as_deref().unwrap_or(""),
                "source OFFLINE"
            );
            let p = jittered(backoff);
            backoff = (backoff * 2).min(options.max_offline_backoff);
            p
        } else {
            backoff = options.offline_backoff;
            ctx.spec.poll_interval.unwrap_or(options.poll_interval)
        };
        if shutdown.is_triggered() {
            break;
        }
        let stopped = match &ctx.spec.wake {
            // Push mode: the pause ends early when a notification says mail arrived (an
            // OFFLINE source keeps its back-off, a throttled one its pause).
            Some(wake) if summary.status != PingStatus::Offline && throttled.is_none() => {
                tokio::select! {
                    stopped = shutdown.sleep(pause) => stopped,
                    () = wake.notified() => shutdown.is_triggered(),
                }
            }
            _ => shutdown.sleep(pause).await,
        };
        if stopped {
            break;
        }
    }
    if let Some(mut task) = companion {
        // Asked to stop with the source: ended before the lease is handed back.
        if tokio::time::timeout(COMPANION_GRACE, &mut task)
            .await
            .is_err()
        {
            tracing::warn!(source = %summary.name, "the source's companion did not stop in time; aborted");
            task.abort();
        }
    }
    summary
}

/// The sources' summaries in the order the sources were added, as their tasks end.
async fn summaries(mut set: JoinSet<(usize, SourceSummary)>) -> Summary {
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(pair) => out.push(pair),
            Err(e) => tracing::error!("a source task failed: {e}"),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Summary {
        sources: out.into_iter().map(|(_, s)| s).collect(),
    }
}

/// `d` varied at random by up to ±20%. The chaos run found the back-off's fixed 5/10/20/40 s
/// pauses staying in step with the sandbox's periodic token expiry, minute after minute.
/// Randomness from the workspace's one jitter source (`connector::retry::ProcessJitter`).
fn jittered(d: Duration) -> Duration {
    use connector::retry::{Jitter, ProcessJitter, spread};
    spread(d, 0.2, ProcessJitter.next())
}

/// [`drain`], with a panic in the source's own code (a third-party [`MessageSource`], or a
/// bug of ours) turned into an OFFLINE pass with the reason. Uncaught, it ended the source's
/// task: under [`Pipeline::run`] that source stopped for good while the others went on, the
/// silent stop this crate exists to prevent; under [`Pipeline::run_once`] it vanished from
/// the summary. OFFLINE sources are retried with back-off, so a source that panics once
/// comes back.
async fn drain_guarded(
    ctx: &Arc<Ctx>,
    options: &Options,
    shutdown: &Shutdown,
    summary: &mut SourceSummary,
) {
    let pass = catch_unwind(drain(ctx, options, shutdown, summary)).await;
    if let Err(p) = pass {
        let reason = format!("the source {p}");
        tracing::error!(source = %ctx.spec.name, reason, "a pass of the source panicked");
        summary.errors.push(reason.clone());
        if summary.status != PingStatus::Offline || summary.offline_since.is_none() {
            summary.offline_since = Some(OffsetDateTime::now_utc());
        }
        summary.status = PingStatus::Offline;
        summary.reason = Some(reason);
        ctx.report(Progress::Offline {
            source: ctx.spec.name.clone(),
            reason: summary.reason.clone(),
        });
    }
}

/// Pings, then handles pages until nothing new is waiting; reports the pass as [`Progress`].
async fn drain(
    ctx: &Arc<Ctx>,
    options: &Options,
    shutdown: &Shutdown,
    summary: &mut SourceSummary,
) {
    summary.throttled_until = None;
    // A ping records nothing: a stop need not wait for it (a throttled service can hold it
    // up for a minute of Retry-After).
    let Some(ping) = shutdown.unless_stopped(ctx.spec.source.ping()).await else {
        return;
    };
    if !ping.is_online() {
        if let Some(wait) = ping.throttled_for {
            // Refused for throttling, with a wait: a pause of the source, not a fault of its
            // connection, which stays ONLINE.
            page::pause_for(summary, wait);
            summary.status = PingStatus::Online;
            summary.reason = None;
            summary.offline_since = None;
            summary.errors.push(format!(
                "ping: {}",
                ping.reason.as_deref().unwrap_or("throttled")
            ));
            report_pause(ctx, summary);
            return;
        }
        if summary.status != PingStatus::Offline || summary.offline_since.is_none() {
            summary.offline_since = Some(ping.checked_at);
        }
        summary.status = PingStatus::Offline;
        summary.reason = ping.reason.clone();
        ctx.report(Progress::Offline {
            source: ctx.spec.name.clone(),
            reason: summary.reason.clone(),
        });
        return;
    }
    summary.status = PingStatus::Online;
    summary.reason = None;
    summary.offline_since = None;
    if summary.waiting_at_start.is_none() {
        summary.waiting_at_start = ping.waiting;
    }
    ctx.report(Progress::Started {
        source: ctx.spec.name.clone(),
        waiting: ping.waiting,
    });
    drain_pages(ctx, options, shutdown, summary).await;
    let owed = ctx
        .throttled_acks
        .swap(0, std::sync::atomic::Ordering::Relaxed);
    if owed > 0 {
        summary.errors.push(format!(
            "acknowledge: {owed} acknowledgements owed: the source is throttled and pauses; \
             they are made on a later pass"
        ));
    }
    if summary.status == PingStatus::Online
        && summary.throttled_until.is_none()
        && !shutdown.is_triggered()
    {
        retry_owed_acknowledgements(ctx, shutdown, summary).await;
    }
    if summary.status == PingStatus::Offline {
        // The sign-in was refused mid-pass.
        ctx.report(Progress::Offline {
            source: ctx.spec.name.clone(),
            reason: summary.reason.clone(),
        });
    }
    report_pause(ctx, summary);
    ctx.report(Progress::Finished {
        source: ctx.spec.name.clone(),
    });
}

/// Reports [`Progress::Paused`] if the pass left the source paused.
fn report_pause(ctx: &Ctx, summary: &SourceSummary) {
    if let Some(until) = summary.throttled_until {
        ctx.report(Progress::Paused {
            source: ctx.spec.name.clone(),
            until,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_pauses_vary_within_twenty_percent() {
        let d = Duration::from_secs(5);
        let pauses: Vec<Duration> = (0..200).map(|_| jittered(d)).collect();
        for p in &pauses {
            assert!(
                *p >= d.mul_f64(0.8) && *p <= d.mul_f64(1.2),
                "{p:?} is outside 4..=6 s"
            );
        }
        // Not a constant: 200 draws from 10,001 steps are not all alike (and spread both ways).
        assert!(pauses.iter().any(|p| *p < d.mul_f64(0.95)), "{pauses:?}");
        assert!(pauses.iter().any(|p| *p > d.mul_f64(1.05)), "{pauses:?}");
    }
}
