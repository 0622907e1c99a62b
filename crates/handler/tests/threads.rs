//! Which earlier message a message answers: by `In-Reply-To`, by `References`, by Outlook's
//! conversation (`Thread-Index`), by the notification the pipeline sent; remembered across a
//! restart of a file ledger; and the notification continuing the customer's conversation.

use std::sync::{Arc, Mutex};

use addressing::OutboundCapabilities;
use connector::memory::MemoryMailbox;
use handler::{
    FnHandler, Inbound, Ledger, NotificationTemplate, Options, Pipeline, Shutdown, SourceSpec,
    ThreadRefs,
};

mod common;
use common::{PICKUP, router};

/// An Outlook conversation's first `Thread-Index` (22-byte header block).
const ROOT_INDEX: &str = "AdkDn4vJ6Zy0oEbqTsCg4UH5AAAAAA==";

fn mail(id: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: ann@fabrikam.example\r\nTo: {PICKUP}\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@fabrikam.example>\r\n{extra}\r\nbody\r\n"
    )
    .into_bytes()
}

/// What the handler saw of a message: (subject, own key, thread root, matched by, token).
type Saw = (String, String, String, Option<String>, Option<String>);
type Seen = Arc<Mutex<Vec<Saw>>>;

fn pipeline(ledger: Ledger, mb: &MemoryMailbox, out: &MemoryMailbox, seen: &Seen) -> Pipeline {
    let seen = seen.clone();
    let handler = FnHandler::new(move |m: &Inbound| {
        seen.lock().unwrap().push((
            m.subject().to_owned(),
            m.key.clone(),
            m.thread_root().to_owned(),
            m.thread().map(|t| t.by.clone()),
            m.subject_token().map(str::to_owned),
        ));
        Ok(())
    });
    let mut p = Pipeline::new(
        Arc::new(handler),
        ledger,
        Options::default().subject_token("HELP"),
    );
    p.add_source(
        SourceSpec::new("mem", Arc::new(mb.source()), router()).notify_through(
            Arc::new(out.outbound()),
            OutboundCapabilities::new(),
            NotificationTemplate::default(),
        ),
    );
    p
}

fn find<'a>(seen: &'a [Saw], subject: &str) -> &'a Saw {
    seen.iter()
        .find(|s| s.0 == subject)
        .unwrap_or_else(|| panic!("{subject} not handed over: {seen:?}"))
}

#[tokio::test]
async fn replies_join_the_thread_of_the_first_message_by_every_kind_of_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mb = MemoryMailbox::new(PICKUP);
    let out = MemoryMailbox::new(PICKUP);
    let seen: Seen = Arc::default();

    mb.deliver(mail(
        "a",
        "printer",
        &format!("Thread-Index: {ROOT_INDEX}\r\n"),
    ));
    pipeline(Ledger::open(&path).unwrap(), &mb, &out, &seen)
        .run_once(&Shutdown::new())
        .await;
    let root = find(&seen.lock().unwrap(), "printer").1.clone();
    assert_eq!(
        find(&seen.lock().unwrap(), "printer").2,
        root,
        "a new thread"
    );
    assert_eq!(find(&seen.lock().unwrap(), "printer").3, None);
    // The notification continues the customer's conversation and names the message.
    let sent = out.sent();
    assert_eq!(sent.len(), 1);
    let note = String::from_utf8_lossy(sent[0].mime()).into_owned();
    assert!(note.contains("In-Reply-To: <a@fabrikam.example>"), "{note}");
    assert!(note.contains("Thread-Topic: printer"), "{note}");
    let index_line = note
        .lines()
        .find(|l| l.starts_with("Thread-Index: "))
        .expect("the notification carries a Thread-Index");
    let child = index_line.trim_start_matches("Thread-Index: ").trim();
    let conversation =
        |v: &str| ThreadRefs::from_headers(None, None, Some(v), "", None).conversation;
    assert_ne!(child, ROOT_INDEX);
    assert_eq!(conversation(child), conversation(ROOT_INDEX));
    let note_id = note
        .lines()
        .find(|l| l.starts_with("Message-ID: "))
        .unwrap()
        .trim_start_matches("Message-ID: ")
        .trim()
        .to_owned();

    // Restarted: the file ledger still knows the thread.
    mb.deliver(mail(
        "b",
        "RE: printer",
        "In-Reply-To: <a@fabrikam.example>\r\n",
    ));
    mb.deliver(mail(
        "d",
        "AW: printer",
        &format!("Thread-Index: {child}\r\n"),
    ));
    mb.deliver(mail(
        "e",
        "RE: notification",
        &format!("In-Reply-To: {note_id}\r\n"),
    ));
    mb.deliver(mail("f", "[help-9] other", ""));
    mb.deliver(mail(
        "g",
        "unrelated",
        "In-Reply-To: <never-seen@fabrikam.example>\r\n",
    ));
    pipeline(Ledger::open(&path).unwrap(), &mb, &out, &seen)
        .run_once(&Shutdown::new())
        .await;
    // c names b nearest (handed over in the run before, concurrently with the others).
    mb.deliver(mail(
        "c",
        "RE: RE: printer",
        "References: <a@fabrikam.example>\r\n <b@fabrikam.example>\r\n",
    ));
    pipeline(Ledger::open(&path).unwrap(), &mb, &out, &seen)
        .run_once(&Shutdown::new())
        .await;
    let seen = seen.lock().unwrap();
    let b = find(&seen, "RE: printer");
    assert_eq!(
        (b.2.as_str(), b.3.as_deref()),
        (root.as_str(), Some("a@fabrikam.example"))
    );
    // c names b nearest: b was remembered under a's thread.
    let c = find(&seen, "RE: RE: printer");
    assert_eq!(
        (c.2.as_str(), c.3.as_deref()),
        (root.as_str(), Some("b@fabrikam.example"))
    );
    let d = find(&seen, "AW: printer");
    assert_eq!(d.2, root);
    assert!(
        d.3.as_deref().unwrap().starts_with("conversation:"),
        "{d:?}"
    );
    let e = find(&seen, "RE: notification");
    assert_eq!(e.2, root, "an answer to the notification joins the thread");
    let f = find(&seen, "[help-9] other");
    assert_eq!((f.2.as_str(), f.3.as_deref()), (f.1.as_str(), None));
    assert_eq!(f.4.as_deref(), Some("HELP-9"));
    let g = find(&seen, "unrelated");
    assert_eq!((g.2.as_str(), g.3.as_deref()), (g.1.as_str(), None));
}

#[tokio::test]
async fn an_in_memory_ledger_threads_too_and_forgets_with_the_retention() {
    let ledger = Ledger::in_memory();
    let mb = MemoryMailbox::new(PICKUP);
    let out = MemoryMailbox::new(PICKUP);
    let seen: Seen = Arc::default();
    mb.deliver(mail("a", "first", ""));
    pipeline(ledger.clone(), &mb, &out, &seen)
        .run_once(&Shutdown::new())
        .await;
    mb.deliver(mail("b", "second", "In-Reply-To: <a@fabrikam.example>\r\n"));
    pipeline(ledger.clone(), &mb, &out, &seen)
        .run_once(&Shutdown::new())
        .await;
    let root = find(&seen.lock().unwrap(), "first").1.clone();
    assert_eq!(find(&seen.lock().unwrap(), "second").2, root);
    // Expiry forgets threads remembered before the cutoff, as it forgets records.
    handler::LedgerStore::expire(
        &ledger,
        std::time::SystemTime::now() + std::time::Duration::from_secs(1),
    )
    .await
    .unwrap();
    let found = handler::LedgerStore::find_thread(&ledger, &["a@fabrikam.example".to_owned()])
        .await
        .unwrap();
    assert!(found.is_none(), "{found:?}");
}
