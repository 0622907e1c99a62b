//! Progress events: what a progress bar (or metrics) sees of a run.

use std::sync::{Arc, Mutex};

use connector::memory::MemoryMailbox;
use handler::{
    FnHandler, HandlerError, Inbound, Ledger, MessageOutcome, Options, Pipeline, Progress,
    Shutdown, SourceSpec,
};

mod common;
use common::{PICKUP, router};

fn mail(i: usize) -> Vec<u8> {
    format!(
        "Message-ID: <p{i}@fabrikam.example>\r\nFrom: c{i}@fabrikam.example\r\n\
         To: {PICKUP}\r\nSubject: request {i}\r\n\r\nbody {i}\r\n"
    )
    .into_bytes()
}

/// A pipeline whose handler fails for `request 3` (retry) and `request 4` (permanent), and an
/// observer that records every event.
fn pipeline(ledger: Ledger) -> (Pipeline, Arc<Mutex<Vec<Progress>>>) {
    let handler = FnHandler::new(|m: &Inbound| match m.subject() {
        "request 3" => Err(HandlerError::retry("downstream is down")),
        "request 4" => Err(HandlerError::permanent("unreadable")),
        _ => Ok(()),
    });
    let mut p = Pipeline::new(
        Arc::new(handler),
        ledger,
        Options::default().batch_size(7).max_attempts(3),
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    p.on_progress(move |event: &Progress| e.lock().unwrap().push(event.clone()));
    (p, events)
}

fn outcomes(events: &[Progress], source: &str) -> Vec<MessageOutcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Progress::Message { source: s, outcome } if s == source => Some(*outcome),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_pass_reports_started_with_the_waiting_count_one_event_per_message_and_finished() {
    const N: usize = 40;
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..N {
        mb.deliver(mail(i));
    }
    let (mut p, events) = pipeline(Ledger::in_memory());
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router()));
    let summary = p.run_once(&Shutdown::new()).await;

    let events = events.lock().unwrap().clone();
    assert_eq!(
        events.first(),
        Some(&Progress::Started {
            source: "mem".into(),
            waiting: Some(N as u64)
        })
    );
    assert_eq!(
        events.last(),
        Some(&Progress::Finished {
            source: "mem".into()
        })
    );
    let seen = outcomes(&events, "mem");
    assert_eq!(seen.len(), N, "one event per message: {events:?}");
    let count = |o: MessageOutcome| seen.iter().filter(|x| **x == o).count();
    assert_eq!(count(MessageOutcome::Handled), N - 2);
    assert_eq!(count(MessageOutcome::Failed), 1);
    assert_eq!(count(MessageOutcome::Parked), 1);
    // The events agree with the summary.
    let s = &summary.sources[0];
    assert_eq!(s.handled as usize, count(MessageOutcome::Handled));
    assert_eq!(s.failures as usize, count(MessageOutcome::Failed));
    assert_eq!(s.parked as usize, count(MessageOutcome::Parked));
}

#[tokio::test]
async fn each_listing_reports_when_its_oldest_waiting_message_arrived_and_none_once_drained() {
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..5 {
        mb.deliver(mail(i));
    }
    let (mut p, events) = pipeline(Ledger::in_memory());
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router()));
    p.run_once(&Shutdown::new()).await;
    let oldest: Vec<Option<time::OffsetDateTime>> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Progress::OldestWaiting { source, received } if source == "mem" => Some(*received),
            _ => None,
        })
        .collect();
    // The memory mailbox stamps every message with the Unix epoch as its arrival.
    assert_eq!(
        oldest.first(),
        Some(&Some(time::OffsetDateTime::UNIX_EPOCH))
    );
    // Request 3 failed and stays waiting (unread) for the next run; it is still the oldest.
    assert!(oldest.len() >= 2, "{oldest:?}");
    let mb2 = MemoryMailbox::new(PICKUP);
    mb2.deliver(mail(0));
    let (mut p, events) = pipeline(Ledger::in_memory());
    p.add_source(SourceSpec::new("mem", Arc::new(mb2.source()), router()));
    p.run_once(&Shutdown::new()).await;
    let last = events.lock().unwrap().iter().rev().find_map(|e| match e {
        Progress::OldestWaiting { received, .. } => Some(*received),
        _ => None,
    });
    assert_eq!(last, Some(None), "once drained, nothing is waiting");
}

#[tokio::test]
async fn a_message_handled_before_a_crash_is_reported_as_recovered() {
    let mb = MemoryMailbox::new(PICKUP);
    mb.deliver(mail(1));
    let ledger = Ledger::in_memory();
    // As if a previous process handled it and died before acknowledging it.
    let id = mb.messages()[0].id.clone();
    ledger
        .append(
            &format!("mem|{id}"),
            handler::Entry::Handled { project: None },
        )
        .unwrap();
    let (mut p, events) = pipeline(ledger);
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router()));
    p.run_once(&Shutdown::new()).await;
    let events = events.lock().unwrap().clone();
    assert_eq!(outcomes(&events, "mem"), vec![MessageOutcome::Recovered]);
}

#[tokio::test]
async fn an_offline_source_reports_offline_with_its_reason_and_no_pass() {
    let down = MemoryMailbox::new("down@contoso.example");
    down.set_offline(Some("the domain admin must approve this application"));
    down.deliver(mail(1));
    let up = MemoryMailbox::new(PICKUP);
    up.deliver(mail(2));
    let (mut p, events) = pipeline(Ledger::in_memory());
    p.add_source(SourceSpec::new("down", Arc::new(down.source()), router()));
    p.add_source(SourceSpec::new("up", Arc::new(up.source()), router()));
    p.run_once(&Shutdown::new()).await;
    let events = events.lock().unwrap().clone();
    let about_down: Vec<&Progress> = events
        .iter()
        .filter(|e| {
            matches!(e, Progress::Offline { source, .. } | Progress::Started { source, .. }
                | Progress::Finished { source } | Progress::Message { source, .. } if source == "down")
        })
        .collect();
    assert_eq!(about_down.len(), 1, "{about_down:?}");
    match about_down[0] {
        Progress::Offline { reason, .. } => {
            assert!(
                reason
                    .as_deref()
                    .unwrap_or("")
                    .contains("approve this application"),
                "{reason:?}"
            );
        }
        other => panic!("expected Offline, got {other:?}"),
    }
    assert_eq!(outcomes(&events, "up"), vec![MessageOutcome::Handled]);
}

#[tokio::test]
async fn several_observers_all_hear_every_event() {
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..5 {
        mb.deliver(mail(i + 10));
    }
    let (mut p, first) = pipeline(Ledger::in_memory());
    let second = Arc::new(Mutex::new(0usize));
    let s2 = second.clone();
    p.on_progress(move |e: &Progress| {
        if matches!(e, Progress::Message { .. }) {
            *s2.lock().unwrap() += 1;
        }
    });
    p.add_source(SourceSpec::new("mem", Arc::new(mb.source()), router()));
    p.run_once(&Shutdown::new()).await;
    assert_eq!(outcomes(&first.lock().unwrap(), "mem").len(), 5);
    assert_eq!(*second.lock().unwrap(), 5);
}
