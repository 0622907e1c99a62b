//! Acknowledgements given to a batching source together, a page at a time, with the same
//! guarantees as one by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// A batching source whose first `acknowledge_many` call does not answer until every message
/// of the page has been handled (a slow acknowledgement): one round at a time, the next round
/// takes everything handled meanwhile, not just the next 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_acknowledgement_round_takes_all_handled_during_the_one_before() {
    let mb = mailbox_with(250);
    let handled = Arc::new(AtomicUsize::new(0));
    let source = Arc::new(GatedAck {
        inner: FlakyAck::batching(mb.source(), 0, false),
        handled: handled.clone(),
        until: 250,
        first_call_saw: AtomicUsize::new(usize::MAX),
    });
    let handler = FnHandler::new({
        let handled = handled.clone();
        move |_: &Inbound| {
            handled.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
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
    assert_eq!(s.handled, 250, "{s:?}");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    // Rounds of exactly 100 would be [100, 100, 50]; the second took more than 100.
    let calls = source.inner.many_calls();
    assert_eq!(calls.iter().sum::<usize>(), 250, "{calls:?}");
    assert_eq!(calls[0], 100, "{calls:?}");
    assert!(calls[1] > 100, "{calls:?}");
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
    let source = Arc::new(GatedAck {
        inner: FlakyAck::batching(mb.source(), 0, false),
        handled: handled.clone(),
        until: 0,
        first_call_saw: AtomicUsize::new(usize::MAX),
    });
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

/// [`FlakyAck`] (batching, never failing) whose first `acknowledge_many` waits until `until`
/// messages were handled, noting how many were handled when it was called.
#[derive(Debug)]
struct GatedAck {
    inner: Arc<FlakyAck>,
    handled: Arc<AtomicUsize>,
    until: usize,
    first_call_saw: AtomicUsize,
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
        if self.inner.many_calls().is_empty() {
            let saw = self.handled.load(Ordering::SeqCst);
            let _ = self.first_call_saw.compare_exchange(
                usize::MAX,
                saw,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            while self.handled.load(Ordering::SeqCst) < self.until {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // And a moment for the last outcomes to reach the pipeline.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.inner.acknowledge_many(items).await
    }
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.inner.acknowledge(id, ack).await
    }
}
