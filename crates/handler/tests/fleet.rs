//! Several workers in one process sharing leases and a ledger: fair shares, takeover after a
//! worker stops renewing, fencing of a worker that lost its lease, leases handed back on
//! shutdown. The PostgreSQL backends are tested against a real server in the `fleet` crate;
//! here the in-memory [`LocalLeases`] and a ledger that checks fences against them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use connector::memory::MemoryMailbox;
use handler::{
    CatalogSource, Companion, Entry, Fence, FleetOptions, FleetView, Handler, HandlerError,
    Inbound, LeaseError, LeaseStore, Ledger, LedgerError, LedgerStore, LocalLeases, Options,
    Pipeline, Record, Shutdown, SourceCatalog, SourceSpec,
};

use common::desk_router as router;

#[path = "fleet/changes.rs"]
mod changes;
mod common;

fn mailbox(name: &str, n: usize) -> MemoryMailbox {
    let address = format!("{name}@contoso.example");
    let mb = MemoryMailbox::new(&address);
    for i in 0..n {
        mb.deliver(
            format!(
                "Message-ID: <{name}-{i}@fabrikam.example>\r\nFrom: c@fabrikam.example\r\n\
                 To: {address}\r\nSubject: {name} {i}\r\n\r\nbody\r\n"
            )
            .into_bytes(),
        );
    }
    mb
}

/// Counts hand-overs per message, by worker; can be made slow.
#[derive(Default)]
struct Counting {
    seen: Mutex<Vec<(String, String)>>,
    delay: Mutex<Duration>,
    started: std::sync::atomic::AtomicUsize,
    /// Run once, as the next hand-over starts (before its delay).
    on_start: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

struct WorkerHandler {
    worker: String,
    shared: Arc<Counting>,
}

#[async_trait]
impl Handler for WorkerHandler {
    async fn handle(&self, m: &Inbound) -> Result<(), HandlerError> {
        let delay = *self.shared.delay.lock().unwrap();
        let hook = self.shared.on_start.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        self.shared.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        self.shared
            .seen
            .lock()
            .unwrap()
            .push((m.key.clone(), self.worker.clone()));
        Ok(())
    }
}

/// A ledger that, like the PostgreSQL one, refuses writes whose fence no longer holds the
/// source's lease, and remembers every refusal and every fenced write.
#[derive(Debug)]
struct FencedLedger {
    inner: Ledger,
    leases: Arc<LocalLeases>,
    refused: Mutex<Vec<Fence>>,
    written: Mutex<Vec<(String, Fence)>>,
}

#[async_trait]
impl LedgerStore for FencedLedger {
    async fn get(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        LedgerStore::get(&self.inner, key).await
    }
    async fn append(
        &self,
        entries: Vec<(String, Entry)>,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        let fence = fence.expect("a fleet's writes carry a fence").clone();
        if !self.leases.holders().await.unwrap().contains(&fence) {
            self.refused.lock().unwrap().push(fence.clone());
            return Err(LedgerError::Fenced { fence });
        }
        for (k, _) in &entries {
            self.written
                .lock()
                .unwrap()
                .push((k.clone(), fence.clone()));
        }
        LedgerStore::append(&self.inner, entries, None).await
    }
    async fn unacknowledged(&self, prefix: &str) -> Result<Vec<(String, Record)>, LedgerError> {
        LedgerStore::unacknowledged(&self.inner, prefix).await
    }
    async fn expire(&self, cutoff: SystemTime) -> Result<usize, LedgerError> {
        LedgerStore::expire(&self.inner, cutoff).await
    }
}

/// Leases that a test watches: they count what the workers ask of them, and can be cut off for
/// one worker (a partition: its heartbeats and renewals fail).
#[derive(Debug, Default)]
struct Watched {
    inner: Arc<LocalLeases>,
    cut: AtomicBool,
    /// Successful acquisitions, per worker.
    taken: Mutex<HashMap<String, usize>>,
    /// Acquisitions refused (the source was held).
    refused: std::sync::atomic::AtomicUsize,
    /// Heartbeats, per worker: each begins one of the worker's ticks.
    beats: Mutex<HashMap<String, usize>>,
}

impl Watched {
    fn over(inner: &Arc<LocalLeases>) -> Arc<Watched> {
        Arc::new(Watched {
            inner: inner.clone(),
            ..Watched::default()
        })
    }

    fn check(&self) -> Result<(), LeaseError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(LeaseError::Unavailable {
                backend: "test",
                reason: "partitioned".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl LeaseStore for Watched {
    async fn heartbeat(&self, worker: &str, ttl: Duration) -> Result<FleetView, LeaseError> {
        self.check()?;
        *self.beats.lock().unwrap().entry(worker.into()).or_default() += 1;
        self.inner.heartbeat(worker, ttl).await
    }
    async fn acquire(
        &self,
        source: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, LeaseError> {
        self.check()?;
        let got = self.inner.acquire(source, worker, ttl).await?;
        match &got {
            Some(_) => *self.taken.lock().unwrap().entry(worker.into()).or_default() += 1,
            None => {
                self.refused.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(got)
    }
    async fn renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, LeaseError> {
        self.check()?;
        self.inner.renew(fence, ttl).await
    }
    async fn release(&self, fence: &Fence) -> Result<(), LeaseError> {
        self.check()?;
        self.inner.release(fence).await
    }
    async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        self.check()?;
        self.inner.leave(worker).await
    }
    async fn holders(&self) -> Result<Vec<Fence>, LeaseError> {
        self.inner.holders().await
    }
}

struct Fleet {
    leases: Arc<LocalLeases>,
    ledger: Arc<FencedLedger>,
    counting: Arc<Counting>,
    mailboxes: Vec<(String, MemoryMailbox)>,
}

impl Fleet {
    fn new(sources: usize, per_source: usize) -> Self {
        let leases = Arc::new(LocalLeases::new());
        Fleet {
            ledger: Arc::new(FencedLedger {
                inner: Ledger::in_memory(),
                leases: leases.clone(),
                refused: Mutex::default(),
                written: Mutex::default(),
            }),
            leases,
            counting: Arc::default(),
            mailboxes: (0..sources)
                .map(|i| {
                    let name = format!("box{i}");
                    let mb = mailbox(&name, per_source);
                    (name, mb)
                })
                .collect(),
        }
    }

    fn pipeline(&self, worker: &str) -> Pipeline {
        let handler = Arc::new(WorkerHandler {
            worker: worker.into(),
            shared: self.counting.clone(),
        });
        let options = Options::default().poll_interval(Duration::from_millis(20));
        let mut p = Pipeline::with_store(handler, self.ledger.clone(), options);
        for (name, mb) in &self.mailboxes {
            p.add_source(SourceSpec::new(
                name.clone(),
                Arc::new(mb.source()),
                router(mb.address()),
            ));
        }
        p
    }

    fn handed_over(&self) -> HashMap<String, Vec<String>> {
        let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
        for (k, w) in self.counting.seen.lock().unwrap().iter() {
            by_key.entry(k.clone()).or_default().push(w.clone());
        }
        by_key
    }

    fn all_read(&self) -> bool {
        self.mailboxes
            .iter()
            .all(|(_, mb)| mb.messages().iter().all(|m| m.is_read))
    }
}

fn options(worker: &str) -> FleetOptions {
    FleetOptions::new(worker).lease_ttl(Duration::from_millis(300))
}

/// `p` running as a worker (`opts`) over `leases` until `shutdown`.
fn spawn_leased(
    p: Pipeline,
    leases: Arc<dyn LeaseStore>,
    opts: FleetOptions,
    shutdown: &Shutdown,
) -> tokio::task::JoinHandle<handler::Summary> {
    let s = shutdown.clone();
    tokio::spawn(async move { p.run_leased(leases, opts, &s).await })
}

impl Fleet {
    /// The fleet's worker `worker` ([`options`]) running over `leases` until `shutdown`.
    fn run(
        &self,
        worker: &str,
        leases: Arc<dyn LeaseStore>,
        shutdown: &Shutdown,
    ) -> tokio::task::JoinHandle<handler::Summary> {
        spawn_leased(self.pipeline(worker), leases, options(worker), shutdown)
    }
}

/// The leases held: (source, worker, epoch), sorted.
async fn held(leases: &LocalLeases) -> Vec<(String, String, u64)> {
    let mut v: Vec<(String, String, u64)> = leases
        .holders()
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.source, f.worker, f.epoch))
        .collect();
    v.sort();
    v
}

/// How many leases each worker holds.
async fn per_worker(leases: &LocalLeases) -> HashMap<String, usize> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for f in leases.holders().await.unwrap() {
        *m.entry(f.worker.clone()).or_default() += 1;
    }
    m
}

/// Asserts that `w1` and `w2` come to hold three leases each (their fair share of six) within
/// 3 s.
async fn assert_three_each(leases: &LocalLeases) {
    for _ in 0..300 {
        let m = per_worker(leases).await;
        if m.len() == 2 && m.values().all(|n| *n == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let per_worker = per_worker(leases).await;
    assert_eq!(per_worker.get("w1"), Some(&3), "{per_worker:?}");
    assert_eq!(per_worker.get("w2"), Some(&3), "{per_worker:?}");
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_the_sources_and_hand_each_message_over_once() {
    let fleet = Arc::new(Fleet::new(6, 5));
    let shutdown = Shutdown::new();
    let tasks: Vec<_> = ["w1", "w2"]
        .map(|w| fleet.run(w, fleet.leases.clone(), &shutdown))
        .into();
    wait_until(|| fleet.all_read()).await;
    // Steady state (within a few ticks): each holds its fair share, 3 of 6.
    assert_three_each(&fleet.leases).await;
    shutdown.trigger();
    for t in tasks {
        t.await.unwrap();
    }
    let handed = fleet.handed_over();
    assert_eq!(handed.len(), 30);
    assert!(handed.values().all(|w| w.len() == 1), "{handed:?}");
    assert!(
        fleet.leases.holders().await.unwrap().is_empty(),
        "a clean shutdown hands every lease back"
    );
    assert!(fleet.ledger.refused.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_gets_its_share_and_a_stopped_one_is_taken_over() {
    let fleet = Arc::new(Fleet::new(4, 0));
    let first = Shutdown::new();
    let t1 = fleet.run("w1", fleet.leases.clone(), &first);
    let count = async |w: &str| per_worker(&fleet.leases).await.get(w).copied().unwrap_or(0);
    for _ in 0..500 {
        if count("w1").await == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(count("w1").await, 4, "alone, a worker serves every source");
    let second = Shutdown::new();
    let t2 = fleet.run("w2", fleet.leases.clone(), &second);
    for _ in 0..500 {
        if count("w2").await == 2 && count("w1").await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((count("w1").await, count("w2").await), (2, 2));
    // w1 stops: its leases come back at once and w2 takes all four.
    first.trigger();
    t1.await.unwrap();
    for _ in 0..500 {
        if count("w2").await == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(count("w2").await, 4);
    second.trigger();
    t2.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_worker_stops_acting_and_its_sources_are_taken_over_at_a_higher_epoch() {
    let fleet = Arc::new(Fleet::new(1, 3));
    // Each hand-over takes five lease times, and w1 is cut off as its first one starts (by the
    // handler itself, not by the test once it sees the start). Its lease has run out long
    // before any of its hand-overs ends.
    *fleet.counting.delay.lock().unwrap() = Duration::from_millis(1500);
    let cut = Watched::over(&fleet.leases);
    let cutter = cut.clone();
    *fleet.counting.on_start.lock().unwrap() = Some(Box::new(move || {
        cutter.cut.store(true, Ordering::SeqCst);
    }));
    let s1 = Shutdown::new();
    let t1 = fleet.run("w1", cut.clone(), &s1);
    // w1 is cut off as it hands its first message over.
    wait_until(|| fleet.counting.started.load(Ordering::SeqCst) > 0).await;
    assert!(cut.cut.load(Ordering::SeqCst));
    let first = fleet.leases.holders().await.unwrap()[0].clone();
    assert_eq!(first.worker, "w1");
    // Every hand-over stays slow, w2's too: made fast here, w1's next hand-over (it hands
    // several over at once) could start fast and end within w1's still valid lease, a
    // legitimate record the assertions below would count against the fence.
    let s2 = Shutdown::new();
    let t2 = fleet.run("w2", fleet.leases.clone(), &s2);
    wait_until(|| fleet.all_read()).await;
    s2.trigger();
    t2.await.unwrap();
    s1.trigger();
    t1.await.unwrap();

    let written = fleet.ledger.written.lock().unwrap().clone();
    // w2 took over at a higher epoch, and nothing w1 recorded after losing the lease got in.
    let w2 = written.iter().find(|(_, f)| f.worker == "w2").unwrap();
    assert!(w2.1.epoch > first.epoch);
    let refused = fleet.ledger.refused.lock().unwrap().clone();
    let handed = fleet.handed_over();
    // w1 was mid-hand-over when it was cut off, and its lease ran out before it finished: its
    // records were refused by the fence (or it stopped by its own clock before writing), so it
    // acknowledged nothing, and w2 handled every message under its own epoch. The hand-over
    // itself may have happened twice for those messages (as after a crash: handlers are given
    // `Inbound::key` for that); the ledger holds one handling each.
    assert!(!refused.is_empty(), "w1's late writes were refused");
    assert!(
        refused
            .iter()
            .all(|f| f.worker == "w1" && f.epoch == first.epoch)
    );
    assert!(
        written.iter().all(|(_, f)| f.worker == "w2"),
        "nothing w1 wrote got in: {written:?}"
    );
    assert_eq!(handed.len(), 3, "{handed:?}");
    for (k, workers) in &handed {
        assert_eq!(
            workers.iter().filter(|w| *w == "w2").count(),
            1,
            "{k}: {workers:?}"
        );
        let r = LedgerStore::get(fleet.ledger.as_ref(), k)
            .await
            .unwrap()
            .unwrap();
        assert!(r.handled && r.acknowledged, "{k}: {r:?}");
    }
}

/// Found by the fleet chaos run: a worker stopped a source it handed back (or lost) inline,
/// waiting for the source's pass in flight, and renewed none of its other leases meanwhile, so
/// a long pass let the sources it kept expire under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handing_a_source_back_holds_up_neither_the_renewal_of_the_others_nor_its_own_last_message()
{
    let fleet = Arc::new(Fleet::new(2, 3));
    // A hand-over takes four lease times: the source handed back is mid-message for long.
    *fleet.counting.delay.lock().unwrap() = Duration::from_millis(1200);
    let s1 = Shutdown::new();
    let t1 = fleet.run("w1", fleet.leases.clone(), &s1);
    // Alone, w1 serves both and hands all six messages over at once.
    wait_until(|| fleet.counting.started.load(Ordering::SeqCst) == 6).await;
    let held = || held(&fleet.leases);
    let both = [
        ("box0".to_owned(), "w1".to_owned(), 1),
        ("box1".to_owned(), "w1".to_owned(), 1),
    ];
    assert_eq!(held().await, both);
    // w2 joins: w1 hands box1 back, and goes on renewing box0 (and box1, until its message
    // in flight is recorded and acknowledged).
    let s2 = Shutdown::new();
    let t2 = fleet.run("w2", fleet.leases.clone(), &s2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        held().await,
        both,
        "w1 kept both leases while box1 finished"
    );
    wait_until(|| fleet.all_read()).await;
    for _ in 0..300 {
        if held()
            .await
            .iter()
            .any(|(s, w, _)| s == "box1" && w == "w2")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let now = held().await;
    assert_eq!(now[0], ("box0".to_owned(), "w1".to_owned(), 1), "{now:?}");
    assert_eq!(now[1].0, "box1");
    assert_eq!(now[1].1, "w2", "{now:?}");
    s1.trigger();
    s2.trigger();
    t1.await.unwrap();
    t2.await.unwrap();
    assert!(
        fleet.ledger.refused.lock().unwrap().is_empty(),
        "every message was recorded under the lease it was handed over with"
    );
    let handed = fleet.handed_over();
    assert_eq!(handed.len(), 6);
    assert!(handed.values().all(|w| w == &["w1"]), "{handed:?}");
}

/// Three workers started together take their share of seven sources (three, three and one)
/// at once: none takes every source at its first tick to hand most of them back later (each
/// saw only itself then).
/// And a worker below its fair share does not ask, tick after tick, for sources another worker
/// holds: it asks the store who holds what, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_started_together_take_their_share_at_once_and_ask_only_for_free_sources() {
    let fleet = Arc::new(Fleet::new(7, 0));
    let counted = Watched::over(&fleet.leases);
    let shutdown = Shutdown::new();
    let mut tasks = Vec::new();
    for w in ["w1", "w2", "w3"] {
        // A lease of 3 s: a tick, and the wait after the first heartbeat, of 1 s.
        let opts = FleetOptions::new(w).lease_ttl(Duration::from_secs(3));
        tasks.push(spawn_leased(
            fleet.pipeline(w),
            counted.clone(),
            opts,
            &shutdown,
        ));
    }
    let per_worker = || per_worker(&fleet.leases);
    let shares = || async {
        let mut v: Vec<usize> = per_worker().await.into_values().collect();
        v.sort_unstable();
        v
    };
    for _ in 0..500 {
        if shares().await == [1, 3, 3] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(shares().await, [1, 3, 3], "{:?}", per_worker().await);
    // Workers racing for the same free source at the start may be refused: a tick that listed
    // the leases before the others took their share asks for sources that are no longer free.
    // Steady state begins once each worker has begun a tick after the shares settled (its
    // ticks run one after another, so the one under way then has ended), however slowly a
    // busy machine runs them.
    let beats = || counted.beats.lock().unwrap().clone();
    let settled = beats();
    for _ in 0..1000 {
        let now = beats();
        if settled
            .iter()
            .all(|(w, n)| now.get(w).is_some_and(|m| m > n))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused_at_start = counted.refused.load(Ordering::SeqCst);
    // Three more ticks of steady state: once each holds its share, nobody asks for another's.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let taken = counted.taken.lock().unwrap().clone();
    assert_eq!(
        taken.values().sum::<usize>(),
        7,
        "each source taken once, none handed back: {taken:?}"
    );
    assert_eq!(
        counted.refused.load(Ordering::SeqCst),
        refused_at_start,
        "no worker asked for a source another held"
    );
    shutdown.trigger();
    for t in tasks {
        t.await.unwrap();
    }
}

/// What a companion did: (worker, epoch, "start" | "end held" | "end lost").
type CompanionLog = Arc<Mutex<Vec<(String, u64, &'static str)>>>;

/// Records when a companion runs, and checks that its lease was still held when it ended.
struct Recorder {
    leases: Arc<LocalLeases>,
    log: CompanionLog,
    running: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl Companion for Recorder {
    async fn run(&self, fence: Option<Fence>, stop: Shutdown) {
        let fence = fence.expect("a fleet's companion runs under a lease");
        let at_once = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(at_once, 1, "two companions of one source at once");
        self.log
            .lock()
            .unwrap()
            .push((fence.worker.clone(), fence.epoch, "start"));
        stop.stopped().await;
        let held = self.leases.holders().await.unwrap().contains(&fence);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.log.lock().unwrap().push((
            fence.worker.clone(),
            fence.epoch,
            if held { "end held" } else { "end lost" },
        ));
    }
}

/// A source's companion (push mode's subscriber) runs on the worker holding its lease, under
/// that lease's fence, stops when the lease goes, and has ended before the lease is handed
/// back; the next holder starts its own at a higher epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_runs_only_while_its_source_is_leased() {
    let fleet = Fleet::new(1, 0);
    let log: CompanionLog = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pipeline = |worker: &str| {
        let handler = Arc::new(WorkerHandler {
            worker: worker.into(),
            shared: fleet.counting.clone(),
        });
        let options = Options::default().poll_interval(Duration::from_millis(20));
        let mut p = Pipeline::with_store(handler, fleet.ledger.clone(), options);
        let (name, mb) = &fleet.mailboxes[0];
        let companion = Arc::new(Recorder {
            leases: fleet.leases.clone(),
            log: log.clone(),
            running: running.clone(),
        });
        p.add_source(
            SourceSpec::new(name.clone(), Arc::new(mb.source()), router(mb.address()))
                .beside(companion),
        );
        p
    };
    let start = |worker: &'static str| {
        let stop = Shutdown::new();
        let task = spawn_leased(
            pipeline(worker),
            fleet.leases.clone(),
            options(worker),
            &stop,
        );
        (stop, task)
    };
    let (stop1, t1) = start("w1");
    wait_until(|| log.lock().unwrap().len() == 1).await;
    let (stop2, t2) = start("w2");
    // w2 joins; the one source stays with w1 (its fair share is one).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(log.lock().unwrap().len(), 1);
    stop1.trigger();
    t1.await.unwrap();
    wait_until(|| log.lock().unwrap().len() == 3).await;
    stop2.trigger();
    t2.await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "{log:?}");
    let (w1, e1) = (&log[0].0, log[0].1);
    assert_eq!((w1.as_str(), log[0].2), ("w1", "start"));
    assert_eq!(
        (log[1].0.as_str(), log[1].1, log[1].2),
        ("w1", e1, "end held")
    );
    assert_eq!((log[2].0.as_str(), log[2].2), ("w2", "start"));
    assert!(log[2].1 > e1, "{log:?}");
    assert_eq!((log[3].0.as_str(), log[3].2), ("w2", "end held"));
}
