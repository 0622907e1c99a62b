//! A source that asks for a pause (throttled, with a wait: Exchange Online's spent budget of
//! requests) is paused as a whole: the pass stops taking messages and the source is asked
//! nothing until the pause ends, instead of each message failing on its own.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use connector::memory::{MemoryMailbox, MemorySource};
use connector::{Batch, ConnectionLog, Cursor, Error, MessageSource, PingReport, PingStatus};
use handler::{Ledger, Options, Shutdown, Summary};

use crate::support::{FetchWith, Fetching, Recorder, mailbox_with, pipeline, recorder};

/// The in-memory source with a budget of `budget` downloads per `window`, the window starting
/// with the first download after the last one ended: a page's messages past the budget fail
/// as throttled, with the rest of the window to wait, and so does a listing while the budget
/// is spent. `asked_while_told` counts fetches that came after a throttled answer, before the
/// end of the wait it gave.
struct Budgeted {
    budget: usize,
    window: Duration,
    /// The current window's start and the downloads it allowed.
    spent: Mutex<Option<(Instant, usize)>>,
    /// The end of the last wait a throttled answer gave.
    told: Mutex<Option<Instant>>,
    /// Pings still to refuse, each throttled for `window`.
    ping_refusals: AtomicUsize,
    asked_while_told: AtomicUsize,
}

impl Budgeted {
    /// `mb`'s source under this budget.
    fn over(mb: &MemoryMailbox, budget: usize, window: Duration) -> Fetching<Self> {
        Fetching {
            name: "budgeted",
            inner: mb.source(),
            with: Budgeted::new(budget, window),
        }
    }

    fn new(budget: usize, window: Duration) -> Self {
        Budgeted {
            budget,
            window,
            spent: Mutex::new(None),
            told: Mutex::new(None),
            ping_refusals: AtomicUsize::new(0),
            asked_while_told: AtomicUsize::new(0),
        }
    }

    /// The wait left when the budget is spent; otherwise takes one download from it.
    fn take(&self) -> Option<Duration> {
        let mut spent = self.spent.lock().unwrap();
        let now = Instant::now();
        let (start, used) = match *spent {
            Some((start, used)) if now < start + self.window => (start, used),
            _ => (now, 0),
        };
        if used >= self.budget {
            return Some(start + self.window - now);
        }
        *spent = Some((start, used + 1));
        None
    }

    fn spent_for(&self) -> Option<Duration> {
        let spent = self.spent.lock().unwrap();
        let (start, used) = (*spent)?;
        let end = start + self.window;
        (used >= self.budget && Instant::now() < end).then(|| end - Instant::now())
    }
}

impl Budgeted {
    /// A throttled answer, the end of its wait remembered.
    fn throttled(&self, wait: Duration) -> Error {
        *self.told.lock().unwrap() = Some(Instant::now() + wait);
        Error::throttled("429: the mailbox's budget is spent", Some(wait))
    }
}

impl Budgeted {
    /// Counts a request that came while a throttled answer's wait still ran.
    fn asked(&self) {
        if self
            .told
            .lock()
            .unwrap()
            .is_some_and(|t| Instant::now() < t)
        {
            self.asked_while_told.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl FetchWith for Budgeted {
    async fn ping(&self, m: &MemorySource) -> PingReport {
        self.asked();
        let refuse = self
            .ping_refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            return PingReport::from_error(&self.throttled(self.window), ConnectionLog::default());
        }
        m.ping().await
    }

    async fn fetch(&self, m: &MemorySource, c: Option<&Cursor>, n: usize) -> Result<Batch, Error> {
        self.asked();
        if let Some(wait) = self.spent_for() {
            return Err(self.throttled(wait));
        }
        let page = m.fetch(c, n).await?;
        let mut messages = Vec::new();
        let mut failed = Vec::new();
        for m in page.messages {
            match self.take() {
                None => messages.push(m),
                Some(wait) => failed.push((m.id.clone(), self.throttled(wait))),
            }
        }
        let mut batch = Batch::new(messages, page.next);
        batch.failed = failed;
        Ok(batch)
    }
}

/// 30 messages, their source under a budget of `budget` per `window`, its first `pings`
/// pings refused.
fn thirty_under(
    budget: usize,
    window: Duration,
    pings: usize,
) -> (MemoryMailbox, Arc<Recorder>, Arc<Fetching<Budgeted>>) {
    let mb = mailbox_with(30);
    let source = Arc::new(Budgeted::over(&mb, budget, window));
    source.with.ping_refusals.store(pings, Ordering::SeqCst);
    (mb, recorder(None), source)
}

/// `run_once` over `source` alone, waiting up to 20 s for its pauses.
async fn waiting_run_once(rec: &Arc<Recorder>, source: &Arc<Fetching<Budgeted>>) -> Summary {
    let options = Options::default().throttle_wait(Duration::from_secs(20));
    let p = pipeline(
        rec.clone(),
        Ledger::in_memory(),
        options,
        "budgeted",
        source.clone(),
    );
    p.run_once(&Shutdown::new()).await
}

fn unread(mb: &MemoryMailbox) -> usize {
    mb.messages().iter().filter(|m| !m.is_read).count()
}

/// `run_once` by default: the messages the budget allowed are handled, and the pass ends
/// when the rest are refused, reporting when the source may be asked again (in its summary and
/// as `Progress::Paused`); the refused messages are one error together and stay waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_pass_ends_with_the_pause_and_leaves_the_rest_waiting() {
    let mb = mailbox_with(30);
    let rec = recorder(None);
    let source = Arc::new(Budgeted::over(&mb, 10, Duration::from_secs(30)));
    let mut p = pipeline(
        rec.clone(),
        Ledger::in_memory(),
        Options::default(),
        "budgeted",
        source.clone(),
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    p.on_progress({
        let events = events.clone();
        move |e: &handler::Progress| match e {
            handler::Progress::Paused { until, .. } => events.lock().unwrap().push(Some(*until)),
            handler::Progress::Finished { .. } => events.lock().unwrap().push(None),
            _ => {}
        }
    });
    let before = time::OffsetDateTime::now_utc();
    let summary = p.run_once(&Shutdown::new()).await;
    let s = &summary.sources[0];
    assert_eq!(s.handled, 10, "{s:?}");
    assert_eq!(unread(&mb), 20);
    let until = s.throttled_until.expect("the pause is reported");
    assert!(
        until > before + Duration::from_secs(25),
        "{until} after {before}"
    );
    // The pause is reported (for `m365mail status` on a fleet), then the pass's end.
    assert_eq!(*events.lock().unwrap(), [Some(until), None]);
    let left = s.pause_left().expect("the pause lies ahead");
    assert!(left <= Duration::from_secs(30), "{left:?}");
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert!(
        s.errors[0].contains("20 messages left waiting"),
        "{:?}",
        s.errors
    );
    // The pass did not go on to list again while the budget was spent.
    assert_eq!(source.with.asked_while_told.load(Ordering::SeqCst), 0);
}

/// `run_once` with a `throttle_wait`: each pause is waited for, the source asked nothing
/// meanwhile, and the mailbox drained, each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_waits_for_the_pauses_within_its_throttle_wait() {
    let (mb, rec, source) = thirty_under(10, Duration::from_millis(400), 0);
    let summary = waiting_run_once(&rec, &source).await;
    let s = &summary.sources[0];
    assert_eq!(s.handled, 30, "{s:?}");
    assert_eq!(s.throttled_until, None, "{s:?}");
    assert_eq!(rec.calls.lock().unwrap().len(), 30, "each message once");
    assert_eq!(unread(&mb), 0);
    assert_eq!(source.with.asked_while_told.load(Ordering::SeqCst), 0);
}

/// A polling `run` waits for the pause in place of its poll interval: with a poll of 10 ms
/// it used to list again and again while the budget was spent, each listing refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_run_asks_nothing_of_a_source_until_its_pause_ends() {
    let mb = mailbox_with(30);
    let shutdown = Shutdown::new();
    let (handler, handled) = crate::support::stopping_after(30, &shutdown);
    let source = Arc::new(Budgeted::over(&mb, 10, Duration::from_millis(400)));
    let options = Options::default().poll_interval(Duration::from_millis(10));
    let mut p = handler::Pipeline::new(handler, Ledger::in_memory(), options);
    p.add_source(handler::SourceSpec::new(
        "budgeted",
        source.clone(),
        crate::support::router(false),
    ));
    let summary = tokio::time::timeout(Duration::from_secs(60), p.run(&shutdown))
        .await
        .expect("the run drained the mailbox");
    assert_eq!(handled.load(Ordering::SeqCst), 30);
    assert_eq!(summary.sources[0].handled, 30, "{:?}", summary.sources[0]);
    assert_eq!(source.with.asked_while_told.load(Ordering::SeqCst), 0);
}

/// A ping refused for throttling, with a wait, is a pause of the source too, not an OFFLINE
/// connection: the source stays ONLINE, is asked nothing until the wait ends, and is drained
/// after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_ping_is_a_pause_not_an_offline_source() {
    let (mb, rec, source) = thirty_under(100, Duration::from_millis(300), 2);
    let summary = waiting_run_once(&rec, &source).await;
    let s = &summary.sources[0];
    assert_eq!(s.status, PingStatus::Online, "{s:?}");
    assert_eq!(s.offline_since, None, "{s:?}");
    assert_eq!(s.handled, 30, "{s:?}");
    assert_eq!(unread(&mb), 0);
    assert_eq!(source.with.ping_refusals.load(Ordering::SeqCst), 0);
    assert_eq!(source.with.asked_while_told.load(Ordering::SeqCst), 0);
    assert_eq!(
        s.errors.iter().filter(|e| e.starts_with("ping:")).count(),
        2,
        "{:?}",
        s.errors
    );
}
