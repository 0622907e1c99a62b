//! Failed, lost and owed acknowledgements: logged, never a message handed over twice, made
//! again on a later pass or by the next process, with back-off.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector::memory::MemoryMailbox;
use connector::{Acknowledgement, MessageSource};
use handler::{Ledger, Options, Pipeline, Shutdown, SourceSpec};

use crate::support::{
    FlakyAck, PICKUP, Recorder, assert_next_pass_makes_the_owed, mail, mailbox_with, pipeline,
    recorded, recorder, router,
};

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
    let p = pipeline(
        recorder(None),
        Ledger::open(dir.path().join("ledger.jsonl")).unwrap(),
        Options::default(),
        "warned",
        source,
    );
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

/// A [`pipeline`] with the default options over `source`, named `mem`, its ledger the file at
/// `path` (as a new process would open it).
fn on_file_ledger(rec: Arc<Recorder>, path: &std::path::Path, source: Arc<FlakyAck>) -> Pipeline {
    pipeline(
        rec,
        Ledger::open(path).unwrap(),
        Options::default(),
        "mem",
        source,
    )
}

#[tokio::test]
async fn a_failed_acknowledgement_never_hands_a_message_over_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_path = dir.path().join("ledger.jsonl");
    let mb = mailbox_with(10);
    let rec = recorder(None);
    let source = FlakyAck::new(mb.source(), 4, false);
    {
        let p = on_file_ledger(rec.clone(), &ledger_path, source.clone());
        let s = p.run_once(&Shutdown::new()).await;
        assert_eq!(s.sources[0].handled, 10);
        assert_eq!(s.sources[0].errors.len(), 4, "{:?}", s.sources[0].errors);
    }
    // Four messages are still unread. A new process with the same ledger finishes them.
    assert_eq!(mb.messages().iter().filter(|m| !m.is_read).count(), 4);
    let p = on_file_ledger(rec.clone(), &ledger_path, source);
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
    let source = FlakyAck::new(mb.source(), 3, true);
    let (rec, ledger, p) = recorded("lost", source.clone());
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

    let second = assert_next_pass_makes_the_owed(&p, &ledger, "lost|", 3).await;
    let s = &second.sources[0];
    assert!(s.errors.is_empty(), "{:?}", s.errors);
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
    let p = on_file_ledger(rec.clone(), &path, source.clone());
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
    let p = pipeline(
        recorder(None),
        ledger.clone(),
        Options::default().max_ack_retries(3),
        "stuck",
        source.clone(),
    );
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

/// An owed acknowledgement refused for throttling (the source pauses) has not failed: the
/// refusals do not count toward `max_ack_retries` nor back it off, and the first pass after
/// the pause makes it. Before, two refusals (with `max_ack_retries` 2) gave it up for the rest
/// of the process.
#[tokio::test]
async fn owed_acknowledgements_refused_for_throttling_are_not_given_up() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1, PICKUP, ""));
    // The first acknowledgement and the next three retries are refused (each taking effect, so
    // the message is not listed again and only the ledger knows it is owed), then it goes.
    let source = FlakyAck::new(mb.source(), 4, true);
    source.throttled.store(true, Ordering::SeqCst);
    let ledger = Ledger::in_memory();
    let p = pipeline(
        recorder(None),
        ledger.clone(),
        Options::default().max_ack_retries(2),
        "paused",
        source.clone(),
    );
    let (mut made, mut paused) = (0, 0);
    for _ in 0..6 {
        let s = p.run_once(&Shutdown::new()).await;
        made += s.sources[0].reacknowledged;
        paused += usize::from(s.sources[0].throttled_until.is_some());
        // The pause is 1 ms: over by the next pass.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(made, 1);
    assert_eq!(source.calls.load(Ordering::SeqCst), 5, "one retry a pass");
    // Each refusal paused the source: the first pass's and each owed retry's.
    assert_eq!(paused, 4);
    assert!(ledger.unacknowledged("paused|").is_empty());
    assert!(mb.messages().iter().all(|m| m.is_read));
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
    let mut p = pipeline(
        recorder(None),
        ledger.clone(),
        Options::default(),
        "a",
        sa.clone(),
    );
    p.add_source(SourceSpec::new("a|b", sab.clone(), router(false)));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(sa.calls.load(Ordering::SeqCst), 0);
    assert_eq!(sab.calls.load(Ordering::SeqCst), 1);
    // `x1` is not in a|b's mailbox: gone, so recorded by absence.
    assert_eq!(s.sources[1].reacknowledged, 1);
    assert!(ledger.get("a|b|x1").unwrap().acknowledged_by_absence);
}
