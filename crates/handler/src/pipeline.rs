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
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ledger::{Entry, Ledger};
use crate::notify::{NotificationPolicy, build_notification};
use crate::{Handler, HandlerError, Inbound};

/// A source and everything the pipeline needs to handle its mail.
#[derive(Clone)]
pub struct SourceSpec {
    pub(crate) name: String,
    pub(crate) source: Arc<dyn MessageSource>,
    pub(crate) router: Arc<Router>,
    pub(crate) ack: Acknowledgement,
    pub(crate) poison_folder: String,
    pub(crate) outbound: Option<Arc<dyn MessageOutbound>>,
    pub(crate) outbound_caps: addressing::OutboundCapabilities,
    pub(crate) notification: Option<NotificationPolicy>,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("name", &self.name)
            .field("ack", &self.ack)
            .field("poison_folder", &self.poison_folder)
            .field("notifies", &self.notification.is_some())
            .finish_non_exhaustive()
    }
}

impl SourceSpec {
    /// A source whose mail is routed by `router` and marked read once handled.
    pub fn new(name: impl Into<String>, source: Arc<dyn MessageSource>, router: Router) -> Self {
        SourceSpec {
            name: name.into(),
            source,
            router: Arc::new(router),
            ack: Acknowledgement::MarkRead,
            poison_folder: "Poison".into(),
            outbound: None,
            outbound_caps: addressing::OutboundCapabilities::new(),
            notification: None,
        }
    }

    /// How handled messages are acknowledged (default: mark read).
    pub fn acknowledge_with(mut self, ack: Acknowledgement) -> Self {
        self.ack = ack;
        self
    }

    /// The folder poison messages are parked in (default `Poison`).
    pub fn poison_folder(mut self, folder: impl Into<String>) -> Self {
        self.poison_folder = folder.into();
        self
    }

    /// Sends an acknowledgement notification for each handled message through `outbound`, from
    /// the address the sender policy chooses given `caps`, to whoever `policy` allows (a
    /// [`crate::NotificationTemplate`] converts into the safe default policy; see
    /// [`crate::notify`] for the rules).
    pub fn notify_through(
        mut self,
        outbound: Arc<dyn MessageOutbound>,
        caps: addressing::OutboundCapabilities,
        policy: impl Into<NotificationPolicy>,
    ) -> Self {
        self.outbound = Some(outbound);
        self.outbound_caps = caps;
        self.notification = Some(policy.into());
        self
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Knobs of the pipeline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Messages per fetch.
    pub batch_size: usize,
    /// Messages of one source handled at once.
    pub concurrency: usize,
    /// Handler failures after which a message is parked.
    pub max_attempts: u32,
    /// Pause between polls of a source that had nothing waiting.
    pub poll_interval: Duration,
    /// First pause after a source went OFFLINE; doubles up to `max_offline_backoff`. Each
    /// pause is varied by up to ±20% at random, so sources (and handler processes) do not retry
    /// in step with each other or with something periodic on the server's side.
    pub offline_backoff: Duration,
    /// Longest pause between pings of an OFFLINE source.
    pub max_offline_backoff: Duration,
    /// Largest MIME message handed to the router and the handler; a bigger one is parked as
    /// poison without being parsed (a source may return anything). Default [`MAX_MIME`].
    pub max_mime: usize,
    /// Attempts at an acknowledgement the ledger still owes (the message was handled or
    /// parked, but acknowledging it failed or the process died first) before this process
    /// gives up on it; they are made on later passes, waiting 1, 2, 4, ... up to 64 passes
    /// between failures. Default 8.
    pub max_ack_retries: u32,
}

/// The default [`Options::max_mime`]: 150 MiB, the largest message Microsoft 365 accepts.
pub const MAX_MIME: usize = 150 * 1024 * 1024;

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 50,
            concurrency: 4,
            max_attempts: 3,
            poll_interval: Duration::from_secs(30),
            offline_backoff: Duration::from_secs(5),
            max_offline_backoff: Duration::from_secs(300),
            max_mime: MAX_MIME,
            max_ack_retries: 8,
        }
    }
}

impl Options {
    /// Sets the batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Sets the per-source concurrency.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the attempts before parking.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the poll interval.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Sets the largest MIME message handled (at least 1 KiB); bigger ones are parked.
    pub fn max_mime(mut self, bytes: usize) -> Self {
        self.max_mime = bytes.max(1024);
        self
    }

    /// Sets the attempts at an owed acknowledgement (at least 1): see
    /// [`Options::max_ack_retries`].
    pub fn max_ack_retries(mut self, n: u32) -> Self {
        self.max_ack_retries = n.max(1);
        self
    }

    /// Sets the offline backoff bounds.
    pub fn offline_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.offline_backoff = first;
        self.max_offline_backoff = max.max(first);
        self
    }
}

/// A notification that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentNotification {
    /// The `From` address used.
    pub from: String,
    /// The `Reply-To`, if set.
    pub reply_to: Option<String>,
    /// The recipient.
    pub to: String,
    /// Why that sender was chosen.
    pub why: String,
}

/// What happened to one source during a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SourceSummary {
    /// The source's name.
    pub name: String,
    /// Its last ping status.
    pub status: PingStatus,
    /// For OFFLINE: the reason, for a person.
    pub reason: Option<String>,
    /// Since when it has been OFFLINE.
    pub offline_since: Option<OffsetDateTime>,
    /// Messages waiting at the first ping.
    pub waiting_at_start: Option<u64>,
    /// Messages handed to the handler successfully.
    pub handled: u64,
    /// Messages seen again after a crash, acknowledged without handling them twice.
    pub recovered: u64,
    /// Acknowledgements the ledger owed (handled or parked messages whose acknowledgement
    /// failed or whose answer was lost, so they never came back), made again from the ledger
    /// on a later pass, or found gone from the source ([`crate::Entry::AcknowledgedByAbsence`]).
    pub reacknowledged: u64,
    /// Handled messages per project (`(none)` for messages no rule matched).
    pub per_project: BTreeMap<String, u64>,
    /// Notifications sent.
    pub notifications: Vec<SentNotification>,
    /// Notifications not sent (auto-replies, bounces, our own mail) and why.
    pub notifications_skipped: u64,
    /// Messages parked as poison.
    pub parked: u64,
    /// Handler failures that will be retried.
    pub failures: u64,
    /// Errors talking to the source or outbound.
    pub errors: Vec<String>,
}

impl SourceSummary {
    fn new(name: &str) -> Self {
        SourceSummary {
            name: name.to_owned(),
            status: PingStatus::Offline,
            reason: None,
            offline_since: None,
            waiting_at_start: None,
            handled: 0,
            recovered: 0,
            reacknowledged: 0,
            per_project: BTreeMap::new(),
            notifications: Vec::new(),
            notifications_skipped: 0,
            parked: 0,
            failures: 0,
            errors: Vec::new(),
        }
    }
}

/// The outcome of a run, per source.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Summary {
    /// One entry per source, in the order they were added.
    pub sources: Vec<SourceSummary>,
}

/// What became of one message, as reported in [`Progress::Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageOutcome {
    /// Handed to the handler, recorded and acknowledged (or to be acknowledged on a later pass).
    Handled,
    /// Handled before a crash: acknowledged now without being handed over again.
    Recovered,
    /// Parked as poison.
    Parked,
    /// The handler failed; it is retried on a later run.
    Failed,
    /// Talking to the source or the ledger failed; it stays waiting.
    Error,
}

/// A progress event of a run, for a progress bar, metrics or a log: see
/// [`Pipeline::on_progress`].
///
/// For each source and each pass over its mailbox the pipeline reports either
/// [`Progress::Offline`], or [`Progress::Started`], one [`Progress::Message`] per message it
/// dealt with, and [`Progress::Finished`]. `run_once` makes one pass per source; `run` makes one
/// per poll.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The source answered its ping: a pass begins. `waiting` is what the source said is
    /// waiting (`None` if it cannot tell).
    Started {
        /// The source's name.
        source: String,
        /// Messages waiting, as the ping reported them.
        waiting: Option<u64>,
    },
    /// One message was dealt with.
    Message {
        /// The source's name.
        source: String,
        /// What became of it.
        outcome: MessageOutcome,
    },
    /// The pass is over: nothing new is waiting, or a fetch failed, or shutdown was asked.
    Finished {
        /// The source's name.
        source: String,
    },
    /// The source did not answer its ping (or refused the sign-in): no pass.
    Offline {
        /// The source's name.
        source: String,
        /// Why, for a person.
        reason: Option<String>,
    },
}

/// Receives [`Progress`] events; called on the pipeline's tasks, so it should return quickly.
pub type ProgressObserver = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Tells a running pipeline to stop: work in flight finishes, no new batch is fetched.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A switch that is not yet triggered.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            tx: Arc::new(tx),
            rx,
        }
    }

    /// Asks everything that holds a clone to stop.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Whether stop was asked.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    async fn wait(&mut self) {
        while !*self.rx.borrow() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Sleeps for `d` unless stop is asked first; returns whether stop was asked.
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.is_triggered(),
            _ = self.wait() => true,
        }
    }
}

/// The mail-handler pipeline.
pub struct Pipeline {
    sources: Vec<SourceSpec>,
    handler: Arc<dyn Handler>,
    ledger: Ledger,
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
    ledger: Ledger,
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
}

/// Acknowledgements gathered before one `acknowledge_many` call (Graph sends them 20 per
/// `$batch`, EWS 100 per UpdateItem).
const ACK_CHUNK: usize = 100;

/// An acknowledgement a message's outcome waits for.
struct PendingAck {
    id: MessageId,
    ack: Acknowledgement,
}

impl Ctx {
    fn report(&self, event: Progress) {
        for o in &self.observers {
            o(&event);
        }
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
        ack_error: Option<String>,
    },
    Recovered,
    Failed,
    Parked,
    /// Acknowledging failed: the message stays waiting (and is recorded as handled).
    AckFailed(String),
    /// Talking to the outbound failed (the message is still handled and acknowledged).
    NotifyFailed {
        project: Option<String>,
        error: String,
    },
    Error(String),
}

/// `outcome` once its acknowledgement was made (`Ok`) or failed (`Err`).
fn settle(outcome: Outcome, acked: Result<(), String>) -> Outcome {
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
        Outcome::NotifyFailed { error, .. } => Outcome::AckFailed(format!("{e}; notify: {error}")),
        Outcome::Recovered | Outcome::Parked => Outcome::AckFailed(e),
        other @ (Outcome::Failed | Outcome::AckFailed(_) | Outcome::Error(_)) => other,
    }
}

impl Pipeline {
    /// A pipeline handing messages to `handler` and recording them in `ledger`.
    pub fn new(handler: Arc<dyn Handler>, ledger: Ledger, options: Options) -> Self {
        Pipeline {
            sources: Vec::new(),
            handler,
            ledger,
            options,
            observers: Vec::new(),
            ack_retries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn ctx(&self, spec: &SourceSpec) -> Arc<Ctx> {
        Arc::new(Ctx {
            spec: spec.clone(),
            handler: self.handler.clone(),
            ledger: self.ledger.clone(),
            max_attempts: self.options.max_attempts,
            max_mime: self.options.max_mime,
            max_ack_retries: self.options.max_ack_retries,
            observers: self.observers.clone(),
            other_sources: self
                .sources
                .iter()
                .filter(|s| s.name != spec.name)
                .map(|s| s.name.clone())
                .collect(),
            ack_retries: self.ack_retries.clone(),
            batch_ack: spec.source.capabilities().batch_acknowledge,
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
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Drains every source once, concurrently: ping, then fetch and handle until nothing is
    /// waiting (or only messages that failed in this run), or until `shutdown`.
    pub async fn run_once(&self, shutdown: &Shutdown) -> Summary {
        let mut set = JoinSet::new();
        for (i, spec) in self.sources.iter().enumerate() {
            let ctx = self.ctx(spec);
            let options = self.options.clone();
            let shutdown = shutdown.clone();
            set.spawn(async move {
                let mut summary = SourceSummary::new(&ctx.spec.name);
                drain_guarded(&ctx, &options, &shutdown, &mut summary).await;
                (i, summary)
            });
        }
        let mut out: Vec<(usize, SourceSummary)> = Vec::new();
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

    /// Polls every source until `shutdown`: each source on its own task, so one failing
    /// source never holds up the others. A source that is OFFLINE is pinged again with
    /// growing pauses and reported with its reason and since when. Returns the accumulated
    /// summary.
    pub async fn run(&self, shutdown: &Shutdown) -> Summary {
        let mut set = JoinSet::new();
        for (i, spec) in self.sources.iter().enumerate() {
            let ctx = self.ctx(spec);
            let options = self.options.clone();
            let mut shutdown = shutdown.clone();
            set.spawn(async move {
                let mut summary = SourceSummary::new(&ctx.spec.name);
                let mut backoff = options.offline_backoff;
                loop {
                    drain_guarded(&ctx, &options, &shutdown, &mut summary).await;
                    let pause = if summary.status == PingStatus::Offline {
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
                        options.poll_interval
                    };
                    if shutdown.is_triggered() || shutdown.sleep(pause).await {
                        break;
                    }
                }
                (i, summary)
            });
        }
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
}

/// `d` varied at random by up to ±20%. The chaos run found the back-off's fixed 5/10/20/40 s
/// pauses staying in step with the sandbox's periodic token expiry, minute after minute.
/// Randomness from std's per-instance `RandomState` keys: enough for jitter, no extra crate.
fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(d.as_nanos());
    let unit = (h.finish() % 10_001) as f64 / 10_000.0; // 0.0 ..= 1.0
    d.mul_f64(0.8 + 0.4 * unit)
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
    let ping = ctx.spec.source.ping().await;
    if !ping.is_online() {
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
    if summary.status == PingStatus::Online && !shutdown.is_triggered() {
        retry_owed_acknowledgements(ctx, shutdown, summary).await;
    }
    if summary.status == PingStatus::Offline {
        // The sign-in was refused mid-pass.
        ctx.report(Progress::Offline {
            source: ctx.spec.name.clone(),
            reason: summary.reason.clone(),
        });
    }
    ctx.report(Progress::Finished {
        source: ctx.spec.name.clone(),
    });
}

/// Fetches and handles pages until nothing new is waiting.
async fn drain_pages(
    ctx: &Arc<Ctx>,
    options: &Options,
    shutdown: &Shutdown,
    summary: &mut SourceSummary,
) {
    // Messages that failed in this run are not retried until the next run; they are skipped
    // (and paged past) so the rest of the mailbox still flows.
    let mut skip: HashSet<String> = HashSet::new();
    let mut cursor = None;
    let sem = Arc::new(Semaphore::new(options.concurrency));
    loop {
        if shutdown.is_triggered() {
            return;
        }
        let batch = match ctx
            .spec
            .source
            .fetch(cursor.as_ref(), options.batch_size)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                summary.errors.push(format!("fetch: {e}"));
                if e.kind() == ErrorKind::Authentication {
                    summary.status = PingStatus::Offline;
                    summary.reason = Some(e.to_string());
                    summary.offline_since = Some(OffsetDateTime::now_utc());
                }
                return;
            }
        };
        for (id, e) in &batch.failed {
            summary.errors.push(format!("fetch {id}: {e}"));
        }
        let fresh: Vec<RawMessage> = batch
            .messages
            .into_iter()
            .filter(|m| !skip.contains(&key(&ctx.spec.name, m)))
            .collect();
        if fresh.is_empty() {
            match batch.next {
                Some(next) => {
                    cursor = Some(next);
                    continue;
                }
                None => return,
            }
        }
        let mut acked_any = false;
        let mut set = JoinSet::new();
        for msg in fresh {
            let ctx = ctx.clone();
            let permit = sem.clone().acquire_owned().await;
            set.spawn(async move {
                let _permit = permit;
                let k = key(&ctx.spec.name, &msg);
                let (outcome, pending) = handle_one(&ctx, &k, msg).await;
                // A source that cannot batch is acknowledged here, inside the task, so that
                // its one-request-per-message acknowledgements still run concurrently.
                match pending {
                    Some(p) if !ctx.batch_ack => {
                        let pair = [(p.id, p.ack)];
                        let acked = acknowledge(&ctx, std::slice::from_ref(&k), &pair).await;
                        // One key, so one result.
                        (k, acked.into_iter().fold(outcome, settle), None)
                    }
                    pending => (k, outcome, pending),
                }
            });
        }
        // Outcomes waiting for their acknowledgement (keys, outcomes and acknowledgements side
        // by side), made ACK_CHUNK at a time.
        let mut keys: Vec<String> = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut acks: Vec<(MessageId, Acknowledgement)> = Vec::new();
        loop {
            let joined = set.join_next().await;
            let done = joined.is_none();
            match joined {
                None => {}
                Some(Err(_)) => {
                    summary.errors.push("a message task panicked".into());
                    ctx.report(Progress::Message {
                        source: ctx.spec.name.clone(),
                        outcome: MessageOutcome::Error,
                    });
                }
                Some(Ok((k, outcome, None))) => {
                    account(ctx, summary, &mut skip, &mut acked_any, k, outcome);
                }
                Some(Ok((k, outcome, Some(p)))) => {
                    keys.push(k);
                    outcomes.push(outcome);
                    acks.push((p.id, p.ack));
                }
            }
            if keys.len() >= ACK_CHUNK || (done && !keys.is_empty()) {
                let results = acknowledge(ctx, &keys, &acks).await;
                acks.clear();
                let settled = outcomes.drain(..).zip(results);
                for (k, (outcome, acked)) in keys.drain(..).zip(settled) {
                    let outcome = settle(outcome, acked);
                    account(ctx, summary, &mut skip, &mut acked_any, k, outcome);
                }
            }
            if done {
                break;
            }
        }
        if acked_any {
            // Acknowledging shifts what is waiting: start a new pass.
            cursor = None;
        } else {
            match batch.next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }
}

/// Reports one message's final outcome and counts it in `summary`.
fn account(
    ctx: &Ctx,
    summary: &mut SourceSummary,
    skip: &mut HashSet<String>,
    acked_any: &mut bool,
    k: String,
    outcome: Outcome,
) {
    ctx.report(Progress::Message {
        source: ctx.spec.name.clone(),
        outcome: match &outcome {
            Outcome::Handled { .. } | Outcome::NotifyFailed { .. } => MessageOutcome::Handled,
            Outcome::Recovered => MessageOutcome::Recovered,
            Outcome::Parked => MessageOutcome::Parked,
            Outcome::Failed => MessageOutcome::Failed,
            Outcome::AckFailed(_) | Outcome::Error(_) => MessageOutcome::Error,
        },
    });
    match outcome {
        Outcome::Handled {
            project,
            notification,
            notification_skipped,
            ack_error,
        } => {
            match ack_error {
                None => *acked_any = true,
                Some(e) => {
                    summary.errors.push(e);
                    owe_acknowledgement(ctx, &k);
                    skip.insert(k);
                }
            }
            summary.handled += 1;
            *summary
                .per_project
                .entry(project.unwrap_or_else(|| "(none)".into()))
                .or_default() += 1;
            if let Some(n) = notification {
                summary.notifications.push(n);
            }
            if notification_skipped {
                summary.notifications_skipped += 1;
            }
        }
        Outcome::NotifyFailed { project, error } => {
            *acked_any = true;
            summary.handled += 1;
            *summary
                .per_project
                .entry(project.unwrap_or_else(|| "(none)".into()))
                .or_default() += 1;
            summary.errors.push(format!("notify: {error}"));
        }
        Outcome::Recovered => {
            *acked_any = true;
            summary.recovered += 1;
        }
        Outcome::Parked => {
            *acked_any = true;
            summary.parked += 1;
        }
        Outcome::Failed => {
            summary.failures += 1;
            skip.insert(k);
        }
        Outcome::AckFailed(e) => {
            summary.errors.push(e);
            owe_acknowledgement(ctx, &k);
            skip.insert(k);
        }
        Outcome::Error(e) => {
            summary.errors.push(e);
            skip.insert(k);
        }
    }
}

/// The ledger key of a message: the source's name and its stable id.
fn key(source: &str, msg: &RawMessage) -> String {
    format!("{source}|{}", msg.id)
}

/// Acknowledges `acks[i]` at the source for the ledger key `keys[i]`, all in one
/// [`acknowledge_many`](MessageSource::acknowledge_many) call (which the source splits into as
/// few round trips as it can), and records each answer in the ledger: one result per key, in
/// order. A message the source no longer has (acknowledged before a crash or a lost answer, or
/// removed by someone) needs no acknowledgement: that is recorded as
/// [`Entry::AcknowledgedByAbsence`].
async fn acknowledge_and_record(
    ctx: &Ctx,
    keys: &[String],
    acks: &[(MessageId, Acknowledgement)],
) -> Vec<Result<(), AckError>> {
    let mut answers = ctx.spec.source.acknowledge_many(acks).await.into_iter();
    keys.iter()
        .map(|k| {
            // A source that answers fewer results than items leaves the rest owed, not lost.
            let entry = match answers.next().unwrap_or_else(|| {
                Err(connector::Error::bad_response(
                    "the source gave no result for this acknowledgement",
                ))
            }) {
                Ok(()) => Entry::Acknowledged,
                Err(e) if e.kind() == ErrorKind::NotFound => Entry::AcknowledgedByAbsence,
                Err(e) => return Err(AckError::Source(e)),
            };
            ctx.ledger
                .append(k, entry)
                .map_err(|e| AckError::Ledger(e.to_string()))
        })
        .collect()
}

enum AckError {
    Source(connector::Error),
    Ledger(String),
}

/// [`acknowledge_and_record`], with each failure said at once and described for the summary.
async fn acknowledge(
    ctx: &Ctx,
    keys: &[String],
    acks: &[(MessageId, Acknowledgement)],
) -> Vec<Result<(), String>> {
    let results = acknowledge_and_record(ctx, keys, acks).await;
    keys.iter()
        .zip(acks)
        .zip(results)
        .map(|((k, (id, _)), result)| match result {
            Ok(()) => Ok(()),
            Err(AckError::Source(e)) => {
                // Said at once, not only in the end-of-run summary: a long-running handler
                // whose acknowledgements keep failing re-fetches (and skips, thanks to the
                // ledger) the same messages every poll, which nobody would otherwise notice.
                tracing::warn!(key = k, error = %e, "acknowledging a handled message failed");
                Err(format!("acknowledge {id}: {e}"))
            }
            Err(AckError::Ledger(e)) => Err(e),
        })
        .collect()
}

/// Notes that acknowledging `k` failed in this pass: if the message does not come back (the
/// acknowledgement took effect and only its answer was lost), a later pass acknowledges it
/// again from the ledger (see [`retry_owed_acknowledgements`]); not this one.
fn owe_acknowledgement(ctx: &Ctx, k: &str) {
    lock(&ctx.ack_retries)
        .entry(k.to_owned())
        .or_insert(AckRetry {
            failures: 0,
            wait: 1,
        });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Acknowledges again what the ledger says was handled (or parked) but never acknowledged, and
/// did not come back in this pass: the acknowledgement took effect but its answer was lost, or
/// the process died between the acknowledgement and the ledger's record. Mark-read is
/// idempotent; a moved message keeps its id (Graph immutable ids) or is gone (EWS: "not found",
/// recorded as acknowledged by absence). Either way the ledger converges. Failures back off
/// (1, 2, 4, ... up to 64 passes) and this process stops after [`Options::max_ack_retries`].
async fn retry_owed_acknowledgements(ctx: &Ctx, shutdown: &Shutdown, summary: &mut SourceSummary) {
    let prefix = format!("{}|", ctx.spec.name);
    let longer: Vec<String> = ctx
        .other_sources
        .iter()
        .map(|o| format!("{o}|"))
        .filter(|o| o.starts_with(&prefix))
        .collect();
    let owed: HashMap<String, crate::Record> = ctx
        .ledger
        .unacknowledged(&prefix)
        .into_iter()
        .filter(|(k, _)| !longer.iter().any(|o| k.starts_with(o.as_str())))
        .collect();
    let due: Vec<String> = {
        let mut retries = lock(&ctx.ack_retries);
        // Forget what has been acknowledged since (by the normal path, or another pass).
        retries.retain(|k, _| !k.starts_with(&prefix) || owed.contains_key(k));
        let mut due = Vec::new();
        for k in owed.keys() {
            let r = retries.entry(k.clone()).or_default();
            if r.failures >= ctx.max_ack_retries {
                continue;
            }
            if r.wait > 0 {
                r.wait -= 1;
                continue;
            }
            due.push(k.clone());
        }
        due.sort();
        due
    };
    // One acknowledge_many call per ACK_CHUNK owed messages: after a burst of lost answers (an
    // outage mid-acknowledgement) the ledger can owe hundreds, and one request each would spend
    // the mailbox's request budget exactly when the service is struggling.
    for chunk in due.chunks(ACK_CHUNK) {
        if shutdown.is_triggered() {
            return;
        }
        let acks: Vec<(MessageId, Acknowledgement)> = chunk
            .iter()
            .map(|k| {
                let parked = owed.get(k).is_some_and(|r| r.parked.is_some());
                let ack = if parked {
                    Acknowledgement::MoveTo(ctx.spec.poison_folder.clone())
                } else {
                    ctx.spec.ack.clone()
                };
                (MessageId::new(&k[prefix.len()..]), ack)
            })
            .collect();
        let results = acknowledge_and_record(ctx, chunk, &acks).await;
        let mut signed_out = false;
        for ((k, (id, _)), result) in chunk.iter().zip(&acks).zip(results) {
            match result {
                Ok(()) => {
                    lock(&ctx.ack_retries).remove(k);
                    summary.reacknowledged += 1;
                    tracing::info!(key = k, "an owed acknowledgement was made from the ledger");
                }
                Err(AckError::Ledger(e)) => {
                    summary.errors.push(format!("ledger: {e}"));
                    return;
                }
                Err(AckError::Source(e)) if e.kind() == ErrorKind::Authentication => {
                    // The sign-in is gone: not a failure of this acknowledgement. The next pass
                    // pings (and reports OFFLINE) first.
                    if !signed_out {
                        summary.errors.push(format!("acknowledge {id} (owed): {e}"));
                    }
                    signed_out = true;
                }
                Err(AckError::Source(e)) => {
                    let failures = {
                        let mut retries = lock(&ctx.ack_retries);
                        let r = retries.entry(k.clone()).or_default();
                        r.failures += 1;
                        r.wait = 1u32 << (r.failures - 1).min(6);
                        r.failures
                    };
                    if failures >= ctx.max_ack_retries {
                        tracing::warn!(
                            key = k,
                            error = %e,
                            failures,
                            "giving up on an owed acknowledgement until the next start"
                        );
                    } else {
                        tracing::warn!(key = k, error = %e, failures, "an owed acknowledgement failed");
                    }
                    summary.errors.push(format!("acknowledge {id} (owed): {e}"));
                }
            }
        }
        if signed_out {
            return;
        }
    }
}

/// Handles one message up to its acknowledgement: the outcome, as it stands once the returned
/// acknowledgement (if any) is made; [`settle`] turns it into the final one.
async fn handle_one(ctx: &Ctx, k: &str, msg: RawMessage) -> (Outcome, Option<PendingAck>) {
    let record = ctx.ledger.get(k).unwrap_or_default();
    if record.parked.is_some() {
        let ack = Acknowledgement::MoveTo(ctx.spec.poison_folder.clone());
        return (Outcome::Parked, Some(PendingAck { id: msg.id, ack }));
    }
    if record.handled {
        // Handled before a crash (or before an acknowledgement failed): finish the job without
        // handing it over again. A notification that was attempted is not sent twice.
        let ack = ctx.spec.ack.clone();
        return (Outcome::Recovered, Some(PendingAck { id: msg.id, ack }));
    }

    if msg.mime.len() > ctx.max_mime {
        // Not parsed at all: the router and mail-parser would hold it (and what they build
        // from it) in memory, and no handler is expected to take it.
        let reason = format!(
            "the message is {} bytes, over the {}-byte limit (Options::max_mime); not parsed",
            msg.mime.len(),
            ctx.max_mime
        );
        return park(ctx, k, &msg.id, reason);
    }
    // Routing and header parsing read outside bytes with mail-parser, which may panic (fuzz
    // finding 3): the same bytes would panic again, so such a message is parked at once.
    let id = msg.id.clone();
    let parsed = catch_panic(|| {
        let route = ctx.spec.router.route_mime(&msg.mime);
        let sender = ctx.spec.notification.as_ref().map(|_| {
            ctx.spec
                .router
                .sender_policy()
                .choose_for_route(&route, &ctx.spec.outbound_caps)
        });
        Inbound::new(&ctx.spec.name, k, msg, route, sender)
    });
    let inbound = match parsed {
        Ok(inbound) => inbound,
        Err(p) => {
            let reason = format!("reading the message's headers {p}; not handed over");
            return park(ctx, k, &id, reason);
        }
    };
    let project = inbound.project().map(str::to_owned);

    // A handler that panics (say, parsing the whole message with a parser that panics on it)
    // fails this attempt like any error, so the message is parked after `max_attempts` instead
    // of being fetched and crashing its task on every poll.
    let handled = match catch_unwind(ctx.handler.handle(&inbound)).await {
        Ok(result) => result,
        Err(p) => Err(HandlerError::retry(format!("the handler {p}"))),
    };
    if let Err(e) = handled {
        return failed(ctx, k, &inbound, &record, e).await;
    }
    if let Err(e) = ctx.ledger.append(
        k,
        Entry::Handled {
            project: project.clone(),
        },
    ) {
        return (Outcome::Error(format!("ledger: {e}")), None);
    }

    let mut notification = None;
    let mut notification_skipped = false;
    let mut notify_error = None;
    if let (Some(outbound), Some(policy), Some(choice)) =
        (&ctx.spec.outbound, &ctx.spec.notification, &inbound.sender)
    {
        match notify(ctx, k, outbound.as_ref(), policy, choice, &inbound).await {
            Ok(Some(n)) => notification = Some(n),
            Ok(None) => notification_skipped = true,
            Err(e) => notify_error = Some(e),
        }
    }

    let outcome = match notify_error {
        Some(error) => Outcome::NotifyFailed { project, error },
        None => Outcome::Handled {
            project,
            notification,
            notification_skipped,
            ack_error: None,
        },
    };
    let pending = PendingAck {
        id: inbound.raw.id.clone(),
        ack: ctx.spec.ack.clone(),
    };
    (outcome, Some(pending))
}

async fn failed(
    ctx: &Ctx,
    k: &str,
    inbound: &Inbound,
    record: &crate::ledger::Record,
    e: HandlerError,
) -> (Outcome, Option<PendingAck>) {
    let attempts = record.attempts + 1;
    if e.is_permanent() || attempts >= ctx.max_attempts {
        let reason = format!("{} (after {attempts} attempt(s))", e.reason());
        return park(ctx, k, &inbound.raw.id, reason);
    }
    match ctx.ledger.append(
        k,
        Entry::Failed {
            attempts,
            reason: e.reason().to_owned(),
        },
    ) {
        Ok(()) => (Outcome::Failed, None),
        Err(err) => (Outcome::Error(format!("ledger: {err}")), None),
    }
}

/// Records `reason` in the ledger; the message is then moved to the poison folder by the
/// returned acknowledgement.
fn park(ctx: &Ctx, k: &str, id: &MessageId, reason: String) -> (Outcome, Option<PendingAck>) {
    if let Err(err) = ctx.ledger.append(
        k,
        Entry::Parked {
            reason: reason.clone(),
        },
    ) {
        return (Outcome::Error(format!("ledger: {err}")), None);
    }
    tracing::warn!(key = k, reason, "parking poison message");
    let ack = Acknowledgement::MoveTo(ctx.spec.poison_folder.clone());
    let id = id.clone();
    (Outcome::Parked, Some(PendingAck { id, ack }))
}

async fn notify(
    ctx: &Ctx,
    k: &str,
    outbound: &dyn MessageOutbound,
    policy: &NotificationPolicy,
    choice: &SenderChoice,
    inbound: &Inbound,
) -> Result<Option<SentNotification>, String> {
    let to = match policy.recipient(inbound, ctx.spec.router.mailbox()) {
        Ok(to) => to,
        Err(why) => {
            tracing::info!(key = k, why, "no notification");
            return Ok(None);
        }
    };
    if !policy.admit(&to) {
        tracing::warn!(
            key = k,
            "no notification: the recipient reached the acknowledgement rate limit"
        );
        return Ok(None);
    }
    let Some((message, to)) = build_notification(policy.template(), choice, inbound, to) else {
        return Ok(None);
    };
    // At most once: record the attempt before sending, so a crash mid-send never sends twice.
    ctx.ledger
        .append(k, Entry::Notifying)
        .map_err(|e| e.to_string())?;
    outbound.send(&message).await.map_err(|e| e.to_string())?;
    ctx.ledger
        .append(
            k,
            Entry::Notified {
                from: choice.from.to_string(),
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(Some(SentNotification {
        from: choice.from.to_string(),
        reply_to: choice.reply_to.as_ref().map(|r| r.to_string()),
        to,
        why: choice.explain(),
    }))
}

/// Runs `fut`, with a panic while it is polled coming out as [`Panicked`].
async fn catch_unwind<T>(fut: impl Future<Output = T>) -> Result<T, Panicked> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| Panicked::from_payload(p.as_ref()))
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
