//! A running fleet worker meeting change: sources added, changed and removed, sources that
//! are OFFLINE or whose fetch is held up, and its own stop with a message in flight.

use super::*;

/// A catalog an operator changes while the worker runs.
struct Changing {
    version: std::sync::atomic::AtomicI64,
    sources: Mutex<Vec<CatalogSource>>,
}

#[async_trait]
impl SourceCatalog for Changing {
    async fn version(&self) -> Result<i64, String> {
        Ok(self.version.load(Ordering::SeqCst))
    }
    async fn sources(&self) -> Result<Vec<CatalogSource>, String> {
        Ok(self.sources.lock().unwrap().clone())
    }
}

impl Changing {
    fn set(&self, sources: Vec<CatalogSource>) {
        *self.sources.lock().unwrap() = sources;
        self.version.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_added_changed_and_removed_while_running_are_picked_up_without_a_restart() {
    let fleet = Arc::new(Fleet::new(0, 0));
    let spec = |name: &str, mb: &MemoryMailbox| {
        SourceSpec::new(name, Arc::new(mb.source()), router(mb.address()))
    };
    let a = mailbox("a", 3);
    let catalog = Arc::new(Changing {
        version: Default::default(),
        sources: Mutex::new(vec![CatalogSource::new(spec("a", &a), "v1")]),
    });
    let shutdown = Shutdown::new();
    let p = fleet.pipeline("w1");
    let leases: Arc<dyn LeaseStore> = fleet.leases.clone();
    let (c, s) = (catalog.clone(), shutdown.clone());
    let task = tokio::spawn(async move { p.run_fleet(leases, c, options("w1"), &s).await });
    let read = |mb: &MemoryMailbox| mb.messages().iter().all(|m| m.is_read);
    wait_until(|| read(&a)).await;
    let held = async || -> Vec<(String, u64)> {
        let all = held(&fleet.leases).await;
        all.into_iter().map(|(s, _, e)| (s, e)).collect()
    };
    assert_eq!(held().await, [("a".to_owned(), 1)]);
    // Added: a second mailbox is served without a restart.
    let b = mailbox("b", 2);
    catalog.set(vec![
        CatalogSource::new(spec("a", &a), "v1"),
        CatalogSource::new(spec("b", &b), "v1"),
    ]);
    wait_until(|| read(&b)).await;
    // Changed (its routing, say): restarted under a new lease; removed: its lease handed back.
    catalog.set(vec![CatalogSource::new(spec("a", &a), "v2")]);
    for _ in 0..1000 {
        if held().await == [("a".to_owned(), 2)] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(held().await, [("a".to_owned(), 2)]);
    a.deliver(
        b"Message-ID: <late@x>\r\nTo: a@contoso.example\r\nSubject: late\r\n\r\nx\r\n".to_vec(),
    );
    wait_until(|| read(&a)).await;
    shutdown.trigger();
    let summary = task.await.unwrap();
    assert!(summary.sources.iter().any(|s| s.name == "b"));
    assert_eq!(fleet.handed_over().len(), 6);
    assert!(fleet.handed_over().values().all(|w| w.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_sources_do_not_starve_the_others_and_count_in_the_fair_share() {
    // Six sources, three of them OFFLINE (their sign-in refused), two workers: every online
    // mailbox is drained whichever worker holds it, and each worker holds three.
    let fleet = Arc::new(Fleet::new(6, 5));
    for (i, (_, mb)) in fleet.mailboxes.iter().enumerate() {
        if i % 2 == 0 {
            mb.set_offline(Some("AADSTS65001: consent withdrawn"));
        }
    }
    let shutdown = Shutdown::new();
    let tasks: Vec<_> = ["w1", "w2"]
        .map(|w| fleet.run(w, fleet.leases.clone(), &shutdown))
        .into();
    let online_read = || {
        fleet
            .mailboxes
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .all(|(_, (_, mb))| mb.messages().iter().all(|m| m.is_read))
    };
    wait_until(online_read).await;
    assert_three_each(&fleet.leases).await;
    shutdown.trigger();
    for t in tasks {
        t.await.unwrap();
    }
    // The OFFLINE mailboxes kept their mail; the online ones were handed over once each.
    let handed = fleet.handed_over();
    assert_eq!(handed.len(), 15);
    assert!(handed.values().all(|w| w.len() == 1));
    for (i, (_, mb)) in fleet.mailboxes.iter().enumerate() {
        if i % 2 == 0 {
            assert!(mb.messages().iter().all(|m| !m.is_read));
        }
    }
}

/// A source whose fetches, once `stuck`, never answer: a client waiting out a long
/// `Retry-After` of a throttled mailbox.
#[derive(Debug)]
struct Stuck {
    inner: connector::memory::MemorySource,
    stuck: AtomicBool,
    fetches: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl connector::MessageSource for Stuck {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn capabilities(&self) -> connector::SourceCapabilities {
        self.inner.capabilities()
    }
    async fn ping(&self) -> connector::PingReport {
        self.inner.ping().await
    }
    async fn count_waiting(&self) -> Result<Option<u64>, connector::Error> {
        self.inner.count_waiting().await
    }
    async fn fetch(
        &self,
        cursor: Option<&connector::Cursor>,
        max: usize,
    ) -> Result<connector::Batch, connector::Error> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.stuck.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.fetch(cursor, max).await
    }
    async fn acknowledge(
        &self,
        id: &connector::MessageId,
        ack: &connector::Acknowledgement,
    ) -> Result<(), connector::Error> {
        self.inner.acknowledge(id, ack).await
    }
}

/// A worker asked to stop while a fetch waits on the service (nothing of the page handed over
/// or recorded yet) stops without waiting for it, and hands its lease back. It used to wait for
/// the fetch to end: 41 to 57 s under Exchange Online's `Retry-After`, with the lease lapsing
/// meanwhile. (The timeout below only turns the old hang into a failure.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_does_not_wait_for_a_fetch_held_up_by_the_service() {
    let fleet = Fleet::new(0, 0);
    let mb = mailbox("box0", 2);
    let source = Arc::new(Stuck {
        inner: mb.source(),
        stuck: AtomicBool::new(true),
        fetches: Default::default(),
    });
    let handler = Arc::new(WorkerHandler {
        worker: "w1".into(),
        shared: fleet.counting.clone(),
    });
    let options = Options::default().poll_interval(Duration::from_millis(20));
    let mut p = Pipeline::with_store(handler, fleet.ledger.clone(), options);
    p.add_source(SourceSpec::new(
        "box0",
        source.clone(),
        router(mb.address()),
    ));
    let shutdown = Shutdown::new();
    let task = spawn_leased(p, fleet.leases.clone(), options_w1(), &shutdown);
    wait_until(|| source.fetches.load(Ordering::SeqCst) > 0).await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the stop waited for a fetch that records nothing")
        .unwrap();
    assert!(fleet.leases.holders().await.unwrap().is_empty());
    assert!(fleet.handed_over().is_empty());
    assert!(
        mb.messages().iter().all(|m| !m.is_read),
        "nothing acknowledged"
    );
}

fn options_w1() -> FleetOptions {
    options("w1")
}

/// A worker asked to stop while a message is in flight for four lease times keeps renewing
/// that source's lease until the message is recorded and acknowledged, then hands it back.
/// The lease used to lapse while the stop waited: another worker could take the source, and
/// the message's own record was refused as fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_renews_the_lease_of_a_message_in_flight() {
    let fleet = Arc::new(Fleet::new(1, 1));
    *fleet.counting.delay.lock().unwrap() = Duration::from_millis(1200);
    let shutdown = Shutdown::new();
    let task = fleet.run("w1", fleet.leases.clone(), &shutdown);
    wait_until(|| fleet.counting.started.load(Ordering::SeqCst) == 1).await;
    shutdown.trigger();
    // Two lease times later the message is still in flight, and the lease still held.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        held(&fleet.leases).await,
        [("box0".to_owned(), "w1".to_owned(), 1)]
    );
    task.await.unwrap();
    assert!(fleet.leases.holders().await.unwrap().is_empty());
    assert!(
        fleet.ledger.refused.lock().unwrap().is_empty(),
        "the message was recorded under its lease"
    );
    assert_eq!(fleet.handed_over().len(), 1);
    assert!(fleet.all_read());
}
