//! What the pipeline is given: the sources with their routing and notifications, and its options.

use super::*;

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
    pub(crate) wake: Option<Arc<tokio::sync::Notify>>,
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) companion: Option<Arc<dyn Companion>>,
}

/// Work that runs beside a source while this process serves it ([`SourceSpec::beside`]): push
/// mode's subscriber or streaming connection, which wakes the source. In a fleet it runs only
/// while this worker holds the source's lease: started with the source's task when the lease
/// is taken, asked to stop with it when the lease goes, and the lease is handed back only once
/// it has ended, so that two workers never run it for one source at once.
#[async_trait::async_trait]
pub trait Companion: Send + Sync {
    /// Runs until `stop` is triggered, then returns promptly (it is aborted after
    /// [`COMPANION_GRACE`]). `fence` is the lease the source is served under in a fleet, `None`
    /// in a single process.
    async fn run(&self, fence: Option<Fence>, stop: Shutdown);
}

/// How long a stopping source waits for its [`Companion`] to end before aborting it.
pub const COMPANION_GRACE: Duration = Duration::from_secs(30);

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("name", &self.name)
            .field("ack", &self.ack)
            .field("poison_folder", &self.poison_folder)
            .field("notifies", &self.notification.is_some())
            .field("pushed", &self.wake.is_some())
            .field("poll_interval", &self.poll_interval)
            .field("companion", &self.companion.is_some())
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
            wake: None,
            poll_interval: None,
            companion: None,
        }
    }

    /// Runs a pass of this source as soon as `wake` is notified, instead of waiting out the
    /// poll interval: push mode, where a change notification is a hint that something arrived
    /// (`graph_mail::push`). A notification during a pass makes another pass follow it; many
    /// notifications make one. The pass is an ordinary one (the source's delta round), so a
    /// notification is never taken for the message.
    pub fn wake_on(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// This source's pause between passes, instead of [`Options::poll_interval`]: in push mode,
    /// the slow safety timer that catches up whatever no notification announced.
    pub fn poll_every(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Runs `companion` beside this source while it is served (see [`Companion`]): in push
    /// mode, what keeps its notifications coming and wakes it ([`wake_on`](Self::wake_on)).
    pub fn beside(mut self, companion: Arc<dyn Companion>) -> Self {
        self.companion = Some(companion);
        self
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
    /// [`crate::NotificationPolicy`] for the rules).
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
    /// How long the ledger keeps the record of an acknowledged message
    /// ([`LedgerStore::expire`](crate::LedgerStore::expire)); `None` keeps every record for
    /// ever. Default 30 days. Expiry runs when [`Pipeline::run`](crate::Pipeline::run) starts
    /// and every hour after.
    pub retention: Option<Duration>,
    /// The prefix of a ticket system's subject token (`HELP` for `[HELP-123]`): an inbound
    /// message with one carries it as [`Inbound::subject_token`](crate::Inbound::subject_token).
    /// Default none.
    pub subject_token: Option<String>,
    /// How long in all [`Pipeline::run_once`](crate::Pipeline::run_once) waits for sources that
    /// asked for a pause (throttled, with a wait: [`SourceSummary::throttled_until`]) before
    /// draining them again; a source whose pause would take it over this returns with its
    /// mail still waiting. Default zero: `run_once` returns at once. (`run` always waits for
    /// a pause, in place of its poll interval.)
    pub throttle_wait: Duration,
}

/// The default [`Options::retention`]: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

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
            retention: Some(DEFAULT_RETENTION),
            subject_token: None,
            throttle_wait: Duration::ZERO,
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

    /// Sets how long acknowledged messages stay in the ledger (`None`: for ever); see
    /// [`Options::retention`].
    pub fn retention(mut self, keep: Option<Duration>) -> Self {
        self.retention = keep;
        self
    }

    /// Sets [`Options::subject_token`]: the prefix of `[PREFIX-123]` in subjects.
    pub fn subject_token(mut self, prefix: impl Into<String>) -> Self {
        self.subject_token = Some(prefix.into());
        self
    }

    /// Sets [`Options::throttle_wait`]: how long in all `run_once` waits for throttled
    /// sources.
    pub fn throttle_wait(mut self, d: Duration) -> Self {
        self.throttle_wait = d;
        self
    }

    /// Sets the offline backoff bounds.
    pub fn offline_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.offline_backoff = first;
        self.max_offline_backoff = max.max(first);
        self
    }
}
