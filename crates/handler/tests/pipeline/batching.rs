//! Acknowledgements given to a batching source together, a page at a time, with the same
//! guarantees as one by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use connector::memory::MemorySource;
use connector::{
    Acknowledgement, Batch, Cursor, Error, MessageId, MessageSource, PingReport, SourceCapabilities,
};
use handler::{FnHandler, HandlerError, Inbound, Ledger, Options, Shutdown};

use crate::support::{
    FlakyAck, assert_next_pass_makes_the_owed, mailbox_with, pipeline, recorded, recorder,
};

/// Graph and EWS acknowledge many messages per round trip: the pipeline gives them a page's
/// acknowledgements together (one `acknowledge_many` per page here) instead of one request per
/// message, which spent the mailbox's request budget ten to a hundred times faster.
#[tokio::test]
async fn a_batching_source_gets_its_acknowledgements_together() {
    let mb = mailbox_with(120);
    let source = FlakyAck::batching(mb.source(), 0, false);
    let rec = recorder(None);
    let ledger = Ledger::in_memory();
    let p = pipeline(
        rec.clone(),
        ledger.clone(),
        Options::default().batch_size(50).concurrency(8),
        "batched",
        source.clone(),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 120, "{s:?}");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(source.many_calls(), vec![50, 50, 20], "one call per page");
    assert_eq!(source.calls.load(Ordering::SeqCst), 120);
    assert!(mb.messages().iter().all(|m| m.is_read));
    assert!(ledger.unacknowledged("batched|").is_empty());
    assert_eq!(rec.calls.lock().unwrap().len(), 120);
}

/// A poison message's move to the poison folder travels in the same `acknowledge_many` call as
/// the other messages' mark-read: one call per page (the in-memory source pages 100 at a time).
#[tokio::test]
async fn a_parking_move_travels_with_the_pages_other_acknowledgements() {
    let mb = mailbox_with(230);
    let source = FlakyAck::batching(mb.source(), 0, false);
    // "request 7" always fails permanently: parked at once.
    let handler = FnHandler::new(|m: &Inbound| {
        if m.subject() == "request 7" {
            Err(HandlerError::permanent("cannot be turned into a ticket"))
        } else {
            Ok(())
        }
    });
    let ledger = Ledger::in_memory();
    let p = pipeline(
        Arc::new(handler),
        ledger.clone(),
        Options::default().batch_size(1000).concurrency(4),
        "chunked",
        source.clone(),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!((s.handled, s.parked), (229, 1), "{s:?}");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    // Rounds of at least 100 (the first exactly), the page's last ones in the last round.
    let calls = source.many_calls();
    assert_eq!(calls.iter().sum::<usize>(), 230, "{calls:?}");
    assert_eq!(calls[0], 100, "{calls:?}");
    assert!(
        calls[..calls.len() - 1].iter().all(|n| *n >= 100),
        "{calls:?}"
    );
    assert!(ledger.unacknowledged("chunked|").is_empty());
    let parked: Vec<_> = mb
        .messages()
        .into_iter()
        .filter(|m| m.folder != "inbox")
        .collect();
    assert_eq!(parked.len(), 1, "the poison message moved, the rest stayed");
    assert_eq!(parked[0].folder, "Poison");
    assert_eq!(
        parked[0].internet_message_id.as_deref(),
        Some("<m7@fabrikam.example>")
    );
}

/// The batched path keeps the guarantees of the single one: a failed acknowledgement inside a
/// batch leaves that message owed (not handed over twice), and the next pass acknowledges the
/// owed ones together.
#[tokio::test]
async fn failures_inside_a_batch_are_owed_and_made_together_on_the_next_pass() {
    let mb = mailbox_with(10);
    let source = FlakyAck::batching(mb.source(), 3, true);
    let (rec, ledger, p) = recorded("lostb", source.clone());
    let first = p.run_once(&Shutdown::new()).await;
    assert_eq!(first.sources[0].handled, 10);
    assert_eq!(
        first.sources[0].errors.len(),
        3,
        "{:?}",
        first.sources[0].errors
    );
    assert_eq!(ledger.unacknowledged("lostb|").len(), 3);
    assert_eq!(source.many_calls(), vec![10]);

    assert_next_pass_makes_the_owed(&p, &ledger, "lostb|", 3).await;
    assert_eq!(
        source.many_calls(),
        vec![10, 3],
        "the owed three in one call"
    );
    assert_eq!(
        rec.calls.lock().unwrap().len(),
        10,
        "nothing handed over twice"
    );
}

/// A source that answers fewer results than it was given acknowledgements loses nothing: the
/// unanswered message is owed and made on the next pass.
#[tokio::test]
async fn a_short_answer_from_acknowledge_many_leaves_the_rest_owed() {
    let mb = mailbox_with(5);
    let source = FlakyAck::build(mb.source(), 0, false, true, 1);
    let (rec, ledger, p) = recorded("short", source.clone());
    let first = p.run_once(&Shutdown::new()).await;
    let s = &first.sources[0];
    assert_eq!(s.handled, 5);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert!(s.errors[0].contains("no result"), "{:?}", s.errors);
    assert_eq!(ledger.unacknowledged("short|").len(), 1);

    let second = p.run_once(&Shutdown::new()).await;
    assert_eq!(
        second.sources[0].reacknowledged, 1,
        "{:?}",
        second.sources[0]
    );
    assert!(ledger.unacknowledged("short|").is_empty());
    assert_eq!(rec.calls.lock().unwrap().len(), 5);
}

/// A batching source whose `acknowledge_many` calls do not answer until every message of the
/// page has been handled (slow acknowledgements): rounds of 100 start as outcomes gather, four
/// in flight at once; while all four are in flight the outcomes gather, and the next round takes
/// all of them, not just the next 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgement_rounds_overlap_and_the_next_takes_all_handled_while_they_were_busy() {
    let mb = mailbox_with(600);
    let handled = Arc::new(AtomicUsize::new(0));
    let source = Arc::new(GatedAck::new(mb.source(), handled.clone(), 600));
    // The last 200 are handled once four rounds are in flight (or after 2 s: one round at a
    // time never gets there), so that the first four rounds all find the page unfinished.
    let handler = HoldsTheLast {
        started: AtomicUsize::new(0),
        handled: handled.clone(),
        source: source.clone(),
    };
    let ledger = Ledger::in_memory();
    let p = pipeline(
        Arc::new(handler),
        ledger.clone(),
        Options::default().batch_size(1000).concurrency(8),
        "gated",
        source.clone(),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 600, "{s:?}");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    // One round at a time would have been [100, 500]: four rounds waited at once, and the
    // fifth took the 200 handled meanwhile.
    assert_eq!(source.most_in_flight.load(Ordering::SeqCst), 4);
    // (In the order the source answered them: the fifth is not held.)
    let mut calls = source.inner.many_calls();
    calls.sort_unstable();
    assert_eq!(calls, [100, 100, 100, 100, 200]);
    assert!(ledger.unacknowledged("gated|").is_empty());
    assert!(mb.messages().iter().all(|m| m.is_read));
}

/// Acknowledging starts while the page is still being handled: with 300 messages handled two
/// at a time, the first `acknowledge_many` comes once 100 are handled, not once the page's
/// last message has started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_starts_while_the_page_is_still_being_handled() {
    let mb = mailbox_with(300);
    let handled = Arc::new(AtomicUsize::new(0));
    let source = Arc::new(GatedAck::new(mb.source(), handled.clone(), 0));
    let handler = SlowCounter(handled.clone());
    let ledger = Ledger::in_memory();
    let p = pipeline(
        Arc::new(handler),
        ledger.clone(),
        Options::default().batch_size(1000).concurrency(2),
        "early",
        source.clone(),
    );
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].handled, 300, "{:?}", s.sources[0]);
    let saw = source.first_call_saw.load(Ordering::SeqCst);
    assert!(
        saw < 200,
        "the first acknowledgement came after {saw} were handled"
    );
    assert!(ledger.unacknowledged("early|").is_empty());
}

/// Counts the messages it is given; from the 401st on, only once four `acknowledge_many` calls
/// of its source are in flight, or after 2 s.
struct HoldsTheLast {
    started: AtomicUsize,
    handled: Arc<AtomicUsize>,
    source: Arc<GatedAck>,
}

#[async_trait::async_trait]
impl handler::Handler for HoldsTheLast {
    async fn handle(&self, _: &Inbound) -> Result<(), HandlerError> {
        if self.started.fetch_add(1, Ordering::SeqCst) >= 400 {
            for _ in 0..400 {
                if self.source.in_flight.load(Ordering::SeqCst) >= 4 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Counts the messages it is given, taking 2 ms over each.
struct SlowCounter(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl handler::Handler for SlowCounter {
    async fn handle(&self, _: &Inbound) -> Result<(), HandlerError> {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// [`FlakyAck`] (batching, never failing) whose `acknowledge_many` calls wait until `until`
/// messages were handled, noting how many were handled at the first call and how many calls
/// were in flight at once.
#[derive(Debug)]
struct GatedAck {
    inner: Arc<FlakyAck>,
    handled: Arc<AtomicUsize>,
    until: usize,
    first_call_saw: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

impl GatedAck {
    fn new(source: MemorySource, handled: Arc<AtomicUsize>, until: usize) -> Self {
        GatedAck {
            inner: FlakyAck::batching(source, 0, false),
            handled,
            until,
            first_call_saw: AtomicUsize::new(usize::MAX),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl MessageSource for GatedAck {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn capabilities(&self) -> SourceCapabilities {
        let mut c = self.inner.capabilities();
        c.max_batch = 1000;
        c
    }
    async fn ping(&self) -> PingReport {
        self.inner.ping().await
    }
    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        self.inner.count_waiting().await
    }
    /// The in-memory source's pages of 100, joined into one page of up to `max`.
    async fn fetch(&self, c: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        let mut page = self.inner.fetch(c, max).await?;
        while page.messages.len() < max
            && let Some(next) = page.next.take()
        {
            let more = self
                .inner
                .fetch(Some(&next), max - page.messages.len())
                .await?;
            page.messages.extend(more.messages);
            page.next = more.next;
        }
        Ok(page)
    }
    async fn acknowledge_many(
        &self,
        items: &[(MessageId, Acknowledgement)],
    ) -> Vec<Result<(), Error>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let saw = self.handled.load(Ordering::SeqCst);
        let _ = self.first_call_saw.compare_exchange(
            usize::MAX,
            saw,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if saw < self.until {
            while self.handled.load(Ordering::SeqCst) < self.until {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // And a moment for the last outcomes to reach the pipeline.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let answers = self.inner.acknowledge_many(items).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answers
    }
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.inner.acknowledge(id, ack).await
    }
}
