//! Poison messages, offline sources and sources that panic: reported, and the rest flows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use connector::memory::{MemoryMailbox, MemorySource};
use connector::{Batch, Cursor, Error, MessageSource};
use handler::{FnHandler, Inbound, Ledger, Options, Pipeline, Shutdown, SourceSpec};

use crate::support::{
    FetchWith, Fetching, PICKUP, mail, mailbox_with, pipeline, recorder, router, stopping_after,
};

#[tokio::test]
async fn a_poison_message_is_parked_with_its_reason_and_the_rest_flows() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, PICKUP, ""));
    mb.deliver(mail(2, PICKUP, ""));
    mb.deliver(mail(3, PICKUP, ""));
    let rec = recorder(Some("request 2"));
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(
        rec.clone(),
        ledger.clone(),
        Options::default().max_attempts(3).batch_size(1),
    );
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router(false)).poison_folder("Poison"),
    );
    let first = p.run_once(&Shutdown::new()).await;
    assert_eq!(first.sources[0].handled, 2);
    assert_eq!(first.sources[0].failures, 1);
    p.run_once(&Shutdown::new()).await;
    let third = p.run_once(&Shutdown::new()).await;
    assert_eq!(third.sources[0].parked, 1);
    let poisoned = mb.find("<m2@fabrikam.example>").unwrap();
    assert_eq!(poisoned.folder, "Poison");
    let reasons: Vec<String> = ledger
        .records()
        .into_iter()
        .filter_map(|(_, r)| r.parked)
        .collect();
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("downstream is down"), "{reasons:?}");
    // Nothing is retried forever: a fourth run does nothing.
    let fourth = p.run_once(&Shutdown::new()).await;
    assert_eq!(fourth.sources[0].handled + fourth.sources[0].failures, 0);
}

#[tokio::test]
async fn an_offline_source_is_reported_and_does_not_hold_up_the_others() {
    let down = MemoryMailbox::new("down@contoso.example");
    down.set_offline(Some("the domain admin must approve this application"));
    down.deliver(mail(1, PICKUP, ""));
    let up = MemoryMailbox::new(PICKUP);
    up.deliver(mail(2, PICKUP, ""));
    let handled = Arc::new(AtomicUsize::new(0));
    let h2 = handled.clone();
    let handler = FnHandler::new(move |_m: &Inbound| {
        h2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    let mut p = pipeline(
        Arc::new(handler),
        Ledger::in_memory(),
        Options::default(),
        "down",
        Arc::new(down.source()),
    );
    p.add_source(SourceSpec::new("up", Arc::new(up.source()), router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].status, connector::PingStatus::Offline);
    assert!(
        s.sources[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("approve this application")
    );
    assert!(s.sources[0].offline_since.is_some());
    assert_eq!(s.sources[1].handled, 1);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

/// Fetches that panic the first `panics_left` times (a buggy third-party source).
struct PanickyFetch {
    panics_left: AtomicUsize,
}

impl PanickyFetch {
    /// `mb`'s source, its fetch panicking the first `panics` times.
    fn over(mb: &MemoryMailbox, panics: usize) -> Fetching<Self> {
        Fetching {
            name: "panicky",
            inner: mb.source(),
            with: PanickyFetch {
                panics_left: AtomicUsize::new(panics),
            },
        }
    }
}

#[async_trait]
impl FetchWith for PanickyFetch {
    async fn fetch(&self, m: &MemorySource, c: Option<&Cursor>, n: usize) -> Result<Batch, Error> {
        if self
            .panics_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("index out of bounds in a third-party source");
        }
        m.fetch(c, n).await
    }
}

/// A panic in a source's own code is an OFFLINE pass with the reason, not a source that
/// vanishes from the summary; the next pass works.
#[tokio::test]
async fn a_source_that_panics_is_reported_offline_and_comes_back() {
    let mb = mailbox_with(3);
    let source = Arc::new(PanickyFetch::over(&mb, 1));
    let rec = recorder(None);
    let p = pipeline(
        rec.clone(),
        Ledger::in_memory(),
        Options::default(),
        "panicky",
        source,
    );
    let first = p.run_once(&Shutdown::new()).await;
    assert_eq!(first.sources.len(), 1, "the source is still in the summary");
    let s = &first.sources[0];
    assert_eq!(s.status, connector::PingStatus::Offline, "{s:?}");
    let reason = s.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("panicked") && reason.contains("third-party source"),
        "{reason}"
    );
    assert!(s.offline_since.is_some());
    let second = p.run_once(&Shutdown::new()).await;
    assert_eq!(second.sources[0].handled, 3, "{:?}", second.sources[0]);
    assert_eq!(rec.calls.lock().unwrap().len(), 3);
}

/// Under `run`, the source that panicked is retried after its OFFLINE pause and its mail
/// flows; before, its task ended and it stopped for good while the process ran on.
#[tokio::test]
async fn a_long_run_keeps_polling_a_source_after_it_panicked() {
    let mb = mailbox_with(3);
    let source = Arc::new(PanickyFetch::over(&mb, 2));
    let shutdown = Shutdown::new();
    let (handler, handled) = stopping_after(3, &shutdown);
    let options = Options::default()
        .poll_interval(std::time::Duration::from_millis(10))
        .offline_backoff(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(20),
        );
    let p = pipeline(handler, Ledger::in_memory(), options, "panicky", source);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(60), p.run(&shutdown))
        .await
        .expect("the run went on and handled the mail");
    assert_eq!(handled.load(Ordering::SeqCst), 3);
    assert_eq!(summary.sources.len(), 1);
    assert_eq!(summary.sources[0].handled, 3, "{:?}", summary.sources[0]);
}
