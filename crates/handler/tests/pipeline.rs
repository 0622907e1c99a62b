//! The pipeline over the in-memory connection: routing, exactly-once, poison, notifications.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use addressing::{MailboxConfig, OutboundCapabilities, Router, RoutingConfig, RuleConfig};
use async_trait::async_trait;
use connector::memory::{MemoryMailbox, MemorySource};
use connector::{
    Acknowledgement, Batch, Cursor, Error, MessageId, MessageSource, PingReport, SourceCapabilities,
};
use handler::{
    FnHandler, FolderHandler, Handler, HandlerError, Inbound, Ledger, NotificationTemplate,
    Options, Pipeline, Shutdown, SourceSpec,
};

const PICKUP: &str = "helpdesk@contoso.example";

fn router(send_from_alias: bool) -> Router {
    let _ = send_from_alias;
    let config = RoutingConfig::new(
        MailboxConfig::new(PICKUP)
            .alias("billing@contoso.example")
            .plus_addressing(true),
        vec![
            RuleConfig::Alias {
                alias: "billing@contoso.example".into(),
                project: "BILL".into(),
            },
            RuleConfig::Detail {
                detail: "payments".into(),
                base: None,
                project: "PAY".into(),
            },
            RuleConfig::Default {
                project: "DESK".into(),
            },
        ],
    );
    Router::from_config(&config).unwrap()
}

fn mail(i: usize, to: &str, extra: &str) -> Vec<u8> {
    format!(
        "Message-ID: <m{i}@fabrikam.example>\r\nFrom: Customer {i} <c{i}@fabrikam.example>\r\n\
         To: {to}\r\nSubject: request {i}\r\n{extra}\r\nbody {i}\r\n"
    )
    .into_bytes()
}

/// The pickup mailbox with `n` plain messages to it waiting.
fn mailbox_with(n: usize) -> MemoryMailbox {
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..n {
        mb.deliver(mail(i, PICKUP, ""));
    }
    mb
}

struct Recorder {
    calls: Mutex<Vec<(String, Option<String>)>>,
    fail_subject: Option<String>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, m: &Inbound) -> Result<(), HandlerError> {
        if self.fail_subject.as_deref() == Some(m.subject()) {
            return Err(HandlerError::retry("downstream is down"));
        }
        self.calls
            .lock()
            .unwrap()
            .push((m.subject().to_owned(), m.project().map(str::to_owned)));
        Ok(())
    }
}

fn recorder(fail: Option<&str>) -> Arc<Recorder> {
    Arc::new(Recorder {
        calls: Mutex::new(Vec::new()),
        fail_subject: fail.map(str::to_owned),
    })
}

#[tokio::test]
async fn routes_every_message_to_its_project_and_acknowledges_it() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "billing@contoso.example", ""));
    mb.deliver(mail(2, "helpdesk+payments@contoso.example", ""));
    mb.deliver(mail(3, PICKUP, ""));
    for i in 4..130 {
        mb.deliver(mail(i, "helpdesk+payments@contoso.example", ""));
    }
    let rec = recorder(None);
    let mut p = Pipeline::new(
        rec.clone(),
        Ledger::in_memory(),
        Options::default().batch_size(7),
    );
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 129);
    assert_eq!(s.per_project.get("BILL"), Some(&1));
    assert_eq!(s.per_project.get("PAY"), Some(&127));
    assert_eq!(s.per_project.get("DESK"), Some(&1));
    assert_eq!(rec.calls.lock().unwrap().len(), 129);
    assert!(mb.messages().iter().all(|m| m.is_read));
}

/// A source whose acknowledgements fail a number of times: as if the process died between
/// handling and acknowledging, or (`lost_answer`) as if the acknowledgement took effect and
/// its answer was lost (a reset after the server applied it). Counts acknowledge calls.
#[derive(Debug)]
struct FlakyAck {
    inner: MemorySource,
    failures_left: AtomicUsize,
    lost_answer: bool,
    /// Acknowledgements asked for, one per message, however they were sent.
    calls: AtomicUsize,
    /// Says it acknowledges in batches (as Graph and EWS do). Each `acknowledge_many` call's
    /// size is recorded either way.
    batching: bool,
    many_calls: Mutex<Vec<usize>>,
    /// `acknowledge_many` calls left that drop their last result (a buggy source).
    short_answers_left: AtomicUsize,
}

impl FlakyAck {
    fn new(inner: MemorySource, failures: usize, lost_answer: bool) -> Arc<Self> {
        Self::build(inner, failures, lost_answer, false, 0)
    }

    fn batching(inner: MemorySource, failures: usize, lost_answer: bool) -> Arc<Self> {
        Self::build(inner, failures, lost_answer, true, 0)
    }

    fn build(
        inner: MemorySource,
        failures: usize,
        lost_answer: bool,
        batching: bool,
        short_answers: usize,
    ) -> Arc<Self> {
        Arc::new(FlakyAck {
            inner,
            failures_left: AtomicUsize::new(failures),
            lost_answer,
            calls: AtomicUsize::new(0),
            batching,
            many_calls: Mutex::new(Vec::new()),
            short_answers_left: AtomicUsize::new(short_answers),
        })
    }

    fn many_calls(&self) -> Vec<usize> {
        self.many_calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl MessageSource for FlakyAck {
    fn name(&self) -> String {
        "flaky".into()
    }
    fn capabilities(&self) -> SourceCapabilities {
        self.inner
            .capabilities()
            .with_batch_acknowledge(self.batching)
    }
    async fn ping(&self) -> PingReport {
        self.inner.ping().await
    }
    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        self.inner.count_waiting().await
    }
    async fn fetch(&self, c: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        self.inner.fetch(c, max).await
    }
    async fn acknowledge_many(
        &self,
        items: &[(MessageId, Acknowledgement)],
    ) -> Vec<Result<(), Error>> {
        self.many_calls.lock().unwrap().push(items.len());
        let mut out = Vec::new();
        for (id, ack) in items {
            out.push(self.acknowledge(id, ack).await);
        }
        if self
            .short_answers_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            out.pop();
        }
        out
    }
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            if self.lost_answer {
                self.inner.acknowledge(id, ack).await?;
            }
            return Err(Error::transient("connection reset"));
        }
        self.inner.acknowledge(id, ack).await
    }
}

/// Captures what the pipeline logs, from every thread of this test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A failing acknowledgement is said at `warn` when it happens, not only in the run's summary:
/// a long-running handler would otherwise re-fetch such messages every poll, silently.
#[tokio::test]
async fn a_failed_acknowledgement_is_logged_as_a_warning() {
    // A process-wide subscriber (the only test here that sets one): a thread-local default is
    // not reliable while other tests of this binary hit the same call site on other threads
    // (tracing caches each call site's interest). Lines are told apart by this test's source
    // name, which is part of every message key.
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mb = mailbox_with(3);
    let source = FlakyAck::new(mb.source(), 2, false);
    let mut p = Pipeline::new(
        recorder(None),
        Ledger::open(dir.path().join("ledger.jsonl")).unwrap(),
        Options::default(),
    );
    p.add_source(SourceSpec::new("warned", source, router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].handled, 3);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && l.contains("acknowledging a handled message failed")
                && l.contains("warned|")
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(
        warnings.iter().all(|l| l.contains("connection reset")),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_acknowledgement_never_hands_a_message_over_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_path = dir.path().join("ledger.jsonl");
    let mb = mailbox_with(10);
    let rec = recorder(None);
    let source = FlakyAck::new(mb.source(), 4, false);
    {
        let mut p = Pipeline::new(
            rec.clone(),
            Ledger::open(&ledger_path).unwrap(),
            Options::default(),
        );
        p.add_source(SourceSpec::new("mem", source.clone(), router(false)));
        let s = p.run_once(&Shutdown::new()).await;
        assert_eq!(s.sources[0].handled, 10);
        assert_eq!(s.sources[0].errors.len(), 4, "{:?}", s.sources[0].errors);
    }
    // Four messages are still unread. A new process with the same ledger finishes them.
    assert_eq!(mb.messages().iter().filter(|m| !m.is_read).count(), 4);
    let mut p = Pipeline::new(
        rec.clone(),
        Ledger::open(&ledger_path).unwrap(),
        Options::default(),
    );
    p.add_source(SourceSpec::new("mem", source, router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].recovered, 4);
    assert_eq!(s.sources[0].handled, 0);
    assert_eq!(
        rec.calls.lock().unwrap().len(),
        10,
        "each message handed over exactly once"
    );
    assert!(mb.messages().iter().all(|m| m.is_read));
}

/// RELIABILITY.md: an acknowledgement that took effect but whose answer was lost used to leave
/// the ledger at `handled` forever (the message never comes back). A later pass makes it
/// again from the ledger: mark-read is idempotent, so the ledger converges.
#[tokio::test]
async fn a_lost_acknowledgement_answer_is_made_again_on_the_next_pass() {
    let mb = mailbox_with(10);
    let rec = recorder(None);
    let source = FlakyAck::new(mb.source(), 3, true);
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(rec.clone(), ledger.clone(), Options::default());
    p.add_source(SourceSpec::new("lost", source.clone(), router(false)));
    let first = p.run_once(&Shutdown::new()).await;
    assert_eq!(first.sources[0].handled, 10);
    assert_eq!(first.sources[0].errors.len(), 3);
    assert_eq!(
        first.sources[0].reacknowledged, 0,
        "not in the pass that failed"
    );
    // The mailbox is right, the ledger owes three acknowledgements.
    assert!(mb.messages().iter().all(|m| m.is_read));
    assert_eq!(ledger.unacknowledged("lost|").len(), 3);

    let second = p.run_once(&Shutdown::new()).await;
    let s = &second.sources[0];
    assert_eq!(
        (s.handled, s.recovered, s.reacknowledged),
        (0, 0, 3),
        "{s:?}"
    );
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert!(ledger.unacknowledged("lost|").is_empty());
    for (_, r) in ledger.records() {
        assert!(
            r.handled && r.acknowledged && !r.acknowledged_by_absence,
            "{r:?}"
        );
    }
    assert_eq!(source.calls.load(Ordering::SeqCst), 13);
    assert_eq!(
        rec.calls.lock().unwrap().len(),
        10,
        "nothing handed over twice"
    );
    // Converged: nothing more to do.
    let third = p.run_once(&Shutdown::new()).await;
    assert_eq!(third.sources[0].reacknowledged, 0);
    assert_eq!(source.calls.load(Ordering::SeqCst), 13);
}

/// A moved (EWS) or deleted message's id is gone once the acknowledgement took effect: the
/// retry's "not found" is the answer, recorded as acknowledged by absence.
#[tokio::test]
async fn an_owed_acknowledgement_of_a_message_that_is_gone_is_recorded_as_absence() {
    let mb = mailbox_with(4);
    let source = FlakyAck::new(mb.source(), 2, true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let ledger = Ledger::open(&path).unwrap();
    let mut p = Pipeline::new(recorder(None), ledger.clone(), Options::default());
    p.add_source(
        SourceSpec::new("gone", source.clone(), router(false))
            .acknowledge_with(Acknowledgement::Delete),
    );
    p.run_once(&Shutdown::new()).await;
    assert!(mb.messages().is_empty());
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].reacknowledged, 2);
    assert!(ledger.unacknowledged("gone|").is_empty());
    let absent: Vec<String> = ledger
        .records()
        .into_iter()
        .filter(|(_, r)| r.acknowledged_by_absence)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(absent.len(), 2);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.matches("\"acknowledged_by_absence\"").count(),
        2,
        "{text}"
    );
    // Reopened (the acknowledged records now answered from the on-disk index), the same.
    drop((p, ledger));
    let again = Ledger::open(&path).unwrap();
    assert!(again.unacknowledged("gone|").is_empty());
    for k in &absent {
        assert!(again.get(k).unwrap().acknowledged_by_absence, "{k}");
    }
}

/// SIGKILL after the acknowledgement took effect and before the ledger recorded it: the next
/// process makes the owed acknowledgement in its first pass.
#[tokio::test]
async fn a_crash_before_the_acknowledgement_was_recorded_is_finished_by_the_next_process() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, PICKUP, ""));
    mb.deliver(mail(2, PICKUP, ""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    {
        // What the killed process left: both handled, both read, one acknowledgement recorded.
        let ledger = Ledger::open(&path).unwrap();
        for m in mb.messages() {
            let k = format!("mem|{}", m.id);
            ledger
                .append(&k, handler::Entry::Handled { project: None })
                .unwrap();
            mb.source()
                .acknowledge(&m.id, &Acknowledgement::MarkRead)
                .await
                .unwrap();
        }
        let first = format!("mem|{}", mb.messages()[0].id);
        ledger.append(&first, handler::Entry::Acknowledged).unwrap();
    }
    let rec = recorder(None);
    let source = FlakyAck::new(mb.source(), 0, false);
    let mut p = Pipeline::new(
        rec.clone(),
        Ledger::open(&path).unwrap(),
        Options::default(),
    );
    p.add_source(SourceSpec::new("mem", source.clone(), router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].reacknowledged, 1);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    assert!(rec.calls.lock().unwrap().is_empty());
    assert!(p.ledger().unacknowledged("mem|").await.unwrap().is_empty());
}

/// An owed acknowledgement that keeps failing is retried with back-off (1, 2, 4 passes between
/// failures) and given up after `max_ack_retries`; the other messages flow meanwhile.
#[tokio::test]
async fn owed_acknowledgements_back_off_and_give_up_after_max_ack_retries() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, PICKUP, ""));
    // Every acknowledgement takes effect and loses its answer.
    let source = FlakyAck::new(mb.source(), usize::MAX, true);
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(
        recorder(None),
        ledger.clone(),
        Options::default().max_ack_retries(3),
    );
    p.add_source(SourceSpec::new("stuck", source.clone(), router(false)));
    let mut calls_per_pass = Vec::new();
    for _ in 0..10 {
        let before = source.calls.load(Ordering::SeqCst);
        let s = p.run_once(&Shutdown::new()).await;
        assert_eq!(s.sources[0].reacknowledged, 0);
        calls_per_pass.push(source.calls.load(Ordering::SeqCst) - before);
    }
    // Pass 1: the normal acknowledgement. Then retries on passes 2, 4 and 7; then none.
    assert_eq!(calls_per_pass, [1, 1, 0, 1, 0, 0, 1, 0, 0, 0]);
    assert_eq!(ledger.unacknowledged("stuck|").len(), 1);
}

/// Keys of a source named `a|b` are not retried by a source named `a`.
#[tokio::test]
async fn owed_acknowledgements_are_retried_by_their_own_source_only() {
    let a = MemoryMailbox::new(PICKUP);
    let ab = MemoryMailbox::new(PICKUP);
    let ledger = Ledger::in_memory();
    ledger
        .append("a|b|x1", handler::Entry::Handled { project: None })
        .unwrap();
    let sa = FlakyAck::new(a.source(), 0, false);
    let sab = FlakyAck::new(ab.source(), 0, false);
    let mut p = Pipeline::new(recorder(None), ledger.clone(), Options::default());
    p.add_source(SourceSpec::new("a", sa.clone(), router(false)));
    p.add_source(SourceSpec::new("a|b", sab.clone(), router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(sa.calls.load(Ordering::SeqCst), 0);
    assert_eq!(sab.calls.load(Ordering::SeqCst), 1);
    // `x1` is not in a|b's mailbox: gone, so recorded by absence.
    assert_eq!(s.sources[1].reacknowledged, 1);
    assert!(ledger.get("a|b|x1").unwrap().acknowledged_by_absence);
}

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
async fn notifications_come_from_the_retained_address_and_never_answer_robots() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "billing@contoso.example", ""));
    mb.deliver(mail(2, "helpdesk+payments@contoso.example", ""));
    mb.deliver(mail(3, PICKUP, "Auto-Submitted: auto-replied\r\n"));
    mb.deliver(mail(
        4,
        PICKUP,
        "Content-Type: multipart/report; report-type=delivery-status\r\n",
    ));
    let outbound = MemoryMailbox::new(PICKUP);
    let rec = recorder(None);
    let mut p = Pipeline::new(rec, Ledger::in_memory(), Options::default());
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router(false)).notify_through(
            Arc::new(outbound.outbound()),
            OutboundCapabilities::new().send_from_alias_enabled(true),
            NotificationTemplate::default(),
        ),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 4);
    assert_eq!(s.notifications.len(), 2, "{:?}", s.notifications);
    assert_eq!(s.notifications_skipped, 2);
    let sent = outbound.sent();
    assert_eq!(sent.len(), 2);
    let texts: Vec<String> = sent
        .iter()
        .map(|m| String::from_utf8_lossy(m.mime()).into_owned())
        .collect();
    let billing = texts
        .iter()
        .find(|t| t.contains("In-Reply-To: <m1@"))
        .unwrap();
    assert!(
        billing.contains("From: billing@contoso.example"),
        "{billing}"
    );
    assert!(
        billing.contains("In-Reply-To: <m1@fabrikam.example>"),
        "{billing}"
    );
    assert!(billing.contains("Auto-Submitted: auto-replied"));
    assert!(billing.contains("To: c1@fabrikam.example"));
    let plus = texts
        .iter()
        .find(|t| t.contains("In-Reply-To: <m2@"))
        .unwrap();
    assert!(
        plus.contains("Reply-To: helpdesk+payments@contoso.example"),
        "{plus}"
    );
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
    let mut p = Pipeline::new(Arc::new(handler), Ledger::in_memory(), Options::default());
    p.add_source(SourceSpec::new(
        "down",
        Arc::new(down.source()),
        router(false),
    ));
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

#[tokio::test]
async fn the_folder_handler_writes_eml_and_routing_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, "helpdesk+payments@contoso.example", ""));
    let folder = FolderHandler::new(dir.path());
    let mut p = Pipeline::new(
        Arc::new(folder.clone()),
        Ledger::in_memory(),
        Options::default(),
    );
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router(false)));
    p.run_once(&Shutdown::new()).await;
    let pay = folder.project_dir(Some("PAY"));
    let mut names: Vec<String> = std::fs::read_dir(&pay)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pay.join(names.iter().find(|n| n.ends_with(".json")).unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(json["project"], "PAY");
    assert_eq!(json["catch_address"], "helpdesk+payments@contoso.example");
    let eml = std::fs::read(pay.join(names.iter().find(|n| n.ends_with(".eml")).unwrap())).unwrap();
    assert_eq!(eml, mail(1, "helpdesk+payments@contoso.example", ""));
}

/// Graph and EWS acknowledge many messages per round trip: the pipeline gives them a page's
/// acknowledgements together (one `acknowledge_many` per page here) instead of one request per
/// message, which spent the mailbox's request budget ten to a hundred times faster.
#[tokio::test]
async fn a_batching_source_gets_its_acknowledgements_together() {
    let mb = mailbox_with(120);
    let source = FlakyAck::batching(mb.source(), 0, false);
    let rec = recorder(None);
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(
        rec.clone(),
        ledger.clone(),
        Options::default().batch_size(50).concurrency(8),
    );
    p.add_source(SourceSpec::new("batched", source.clone(), router(false)));
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
    let mut p = Pipeline::new(
        Arc::new(handler),
        ledger.clone(),
        Options::default().batch_size(1000).concurrency(4),
    );
    p.add_source(SourceSpec::new("chunked", source.clone(), router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!((s.handled, s.parked), (229, 1), "{s:?}");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(source.many_calls(), vec![100, 100, 30]);
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
    let rec = recorder(None);
    let source = FlakyAck::batching(mb.source(), 3, true);
    let ledger = Ledger::in_memory();
    let mut p = Pipeline::new(rec.clone(), ledger.clone(), Options::default());
    p.add_source(SourceSpec::new("lostb", source.clone(), router(false)));
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

    let second = p.run_once(&Shutdown::new()).await;
    let s = &second.sources[0];
    assert_eq!(
        (s.handled, s.recovered, s.reacknowledged),
        (0, 0, 3),
        "{s:?}"
    );
    assert!(ledger.unacknowledged("lostb|").is_empty());
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
    let ledger = Ledger::in_memory();
    let rec = recorder(None);
    let mut p = Pipeline::new(rec.clone(), ledger.clone(), Options::default());
    p.add_source(SourceSpec::new("short", source.clone(), router(false)));
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

/// A source whose `fetch` panics the first `panics` times (a buggy third-party source).
struct PanickyFetch {
    inner: MemorySource,
    panics_left: AtomicUsize,
}

#[async_trait]
impl MessageSource for PanickyFetch {
    fn name(&self) -> String {
        "panicky".into()
    }
    fn capabilities(&self) -> SourceCapabilities {
        self.inner.capabilities()
    }
    async fn ping(&self) -> PingReport {
        self.inner.ping().await
    }
    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        self.inner.count_waiting().await
    }
    async fn fetch(&self, c: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        if self
            .panics_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("index out of bounds in a third-party source");
        }
        self.inner.fetch(c, max).await
    }
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.inner.acknowledge(id, ack).await
    }
}

/// A panic in a source's own code is an OFFLINE pass with the reason, not a source that
/// vanishes from the summary; the next pass works.
#[tokio::test]
async fn a_source_that_panics_is_reported_offline_and_comes_back() {
    let mb = mailbox_with(3);
    let source = Arc::new(PanickyFetch {
        inner: mb.source(),
        panics_left: AtomicUsize::new(1),
    });
    let rec = recorder(None);
    let mut p = Pipeline::new(rec.clone(), Ledger::in_memory(), Options::default());
    p.add_source(SourceSpec::new("panicky", source, router(false)));
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
    let source = Arc::new(PanickyFetch {
        inner: mb.source(),
        panics_left: AtomicUsize::new(2),
    });
    let shutdown = Shutdown::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler::new({
        let handled = handled.clone();
        let shutdown = shutdown.clone();
        move |_: &Inbound| {
            if handled.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                shutdown.trigger();
            }
            Ok(())
        }
    });
    let options = Options::default()
        .poll_interval(std::time::Duration::from_millis(10))
        .offline_backoff(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(20),
        );
    let mut p = Pipeline::new(Arc::new(handler), Ledger::in_memory(), options);
    p.add_source(SourceSpec::new("panicky", source, router(false)));
    let summary = tokio::time::timeout(std::time::Duration::from_secs(60), p.run(&shutdown))
        .await
        .expect("the run went on and handled the mail");
    assert_eq!(handled.load(Ordering::SeqCst), 3);
    assert_eq!(summary.sources.len(), 1);
    assert_eq!(summary.sources[0].handled, 3, "{:?}", summary.sources[0]);
}
