//! What the pipeline reports: per-run summaries, progress events, and the shutdown signal.

use super::*;

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
    /// Notifications not sent: the policy answered nobody (robots, lists, our own or system
    /// addresses, an unverified `Reply-To`, the per-recipient limit; see `NotificationPolicy`).
    pub notifications_skipped: u64,
    /// Messages parked as poison.
    pub parked: u64,
    /// Probes of `m365mail doctor` seen and left alone ([`crate::probe`]): not handed over.
    pub probes: u64,
    /// Handler failures that will be retried.
    pub failures: u64,
    /// Errors talking to the source or outbound.
    pub errors: Vec<String>,
    /// When the last pass was cut short because the source asked for a pause (an answer
    /// throttled with a wait, such as Exchange Online's spent request budget, or a client
    /// holding its requests for it): the pass stopped taking messages, those it had already
    /// taken were finished, and the source's next pass starts no earlier than this. The
    /// messages not taken stay waiting. `None` when the last pass was not cut short so.
    pub throttled_until: Option<OffsetDateTime>,
}

impl SourceSummary {
    /// How long from now until [`throttled_until`](Self::throttled_until), if it lies ahead.
    pub fn pause_left(&self) -> Option<Duration> {
        let left = self.throttled_until? - OffsetDateTime::now_utc();
        Duration::try_from(left).ok().filter(|d| !d.is_zero())
    }

    pub(super) fn new(name: &str) -> Self {
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
            probes: 0,
            failures: 0,
            errors: Vec::new(),
            throttled_until: None,
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
    /// A probe of `m365mail doctor` ([`crate::probe`]): not routed or handed over, only marked
    /// read.
    Probe,
    /// The handler failed; it is retried on a later run.
    Failed,
    /// Talking to the source or the ledger failed; it stays waiting.
    Error,
}

/// A progress event of a run, for a progress bar, metrics or a log: see
/// [`Pipeline::on_progress`].
///
/// For each source and each pass over its mailbox the pipeline reports either
/// [`Progress::Offline`], or [`Progress::Started`], a [`Progress::OldestWaiting`] per listing,
/// one [`Progress::Message`] per message it dealt with, and [`Progress::Finished`]. `run_once` makes one pass per source; `run` makes one
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
    /// The first page of a pass was fetched: `received` is when the oldest message on it
    /// arrived (`None`: nothing is waiting, or the source does not say). Sources list the
    /// oldest first where the protocol allows (Graph's unread listing does), so this is the age
    /// of the oldest waiting message: how far behind the source is.
    OldestWaiting {
        /// The source's name.
        source: String,
        /// When the oldest message of the first page arrived.
        received: Option<OffsetDateTime>,
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
    /// The source asked for a pause (refused for throttling, with a wait: a spent request
    /// budget): it is asked nothing until `until`. Reported before the pass's
    /// [`Progress::Finished`], or alone when its ping was refused so.
    Paused {
        /// The source's name.
        source: String,
        /// When the source may be asked again.
        until: OffsetDateTime,
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

    /// Completes when stop is asked (for a caller's own long-running tasks, such as push
    /// mode's subscribers).
    pub async fn stopped(&self) {
        self.clone().wait().await;
    }

    /// Waits for `d`, or less if stop is asked first; returns whether stop was asked (for a
    /// caller's own pauses, such as waiting for a database to come back).
    pub async fn wait_for(&self, d: Duration) -> bool {
        self.clone().sleep(d).await
    }

    /// Runs `op` unless stop is asked first: its output, or `None` when stop came first (and
    /// `op` was dropped). Only for work that records nothing, such as a ping or a page fetch,
    /// which a stopping pipeline must not wait for.
    pub(super) async fn unless_stopped<T>(
        &self,
        op: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let mut stop = self.clone();
        tokio::select! {
            biased;
            out = op => Some(out),
            () = stop.wait() => None,
        }
    }

    /// Sleeps for `d` unless stop is asked first; returns whether stop was asked.
    pub(super) async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.is_triggered(),
            _ = self.wait() => true,
        }
    }
}

/// Reports one message's final outcome and counts it in `summary`.
pub(super) fn account(
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
            Outcome::Probe { .. } => MessageOutcome::Probe,
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
                Some(e) => owed(ctx, summary, skip, k, e),
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
        Outcome::Probe { marked } => {
            summary.probes += 1;
            if marked {
                *acked_any = true;
            } else {
                skip.insert(k);
            }
        }
        Outcome::Failed => {
            summary.failures += 1;
            skip.insert(k);
        }
        Outcome::AckFailed(e) => owed(ctx, summary, skip, k, e),
        Outcome::Error(e) => {
            summary.errors.push(e);
            skip.insert(k);
        }
    }
}

/// Notes that acknowledging `k` failed: it is owed, and skipped for the rest of the run. A
/// refusal because the source is throttled pauses the source and is counted with the pass's
/// others (one error for all of them); any other failure is an error of its own.
fn owed(
    ctx: &Ctx,
    summary: &mut SourceSummary,
    skip: &mut HashSet<String>,
    k: String,
    e: AckFailure,
) {
    match e.pause {
        Some(wait) => {
            page::pause_for(summary, wait);
            ctx.throttled_acks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        None => summary.errors.push(e.text),
    }
    owe_acknowledgement(ctx, &k);
    skip.insert(k);
}
