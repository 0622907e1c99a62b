//! A source that hands a page over in parts (`MessageSource::fetch_in_parts`, as ews-mail does
//! with item chunks): the pipeline handles the first part while the rest is on its way, keeps
//! what was handed over when the fetch fails part-way, and starts one task per message.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use connector::memory::{MemoryMailbox, MemorySource};
use connector::{Batch, Cursor, Error, ErrorKind, MessageSource, PingStatus};
use handler::{Ledger, Options, Shutdown};

use crate::support::{FetchWith, Fetching, Recorder, mailbox_with, pipeline, recorder};

/// The in-memory source's page handed over in parts of `part`. Before each part after the
/// first it waits until every message handed over before it was handled (or 2 s, counted in
/// `waited_out`). It can fail once after its first part (`fail_once`), and repeat the
/// previous part's last message at the start of the next (`repeat`).
struct Parted {
    handled: Arc<Recorder>,
    part: usize,
    waited_out: AtomicUsize,
    fail_once: Mutex<Option<ErrorKind>>,
    repeat: bool,
}

impl Parted {
    fn over(mb: &MemoryMailbox, handled: Arc<Recorder>, part: usize) -> Fetching<Self> {
        Fetching {
            name: "parted",
            inner: mb.source(),
            with: Parted {
                handled,
                part,
                waited_out: AtomicUsize::new(0),
                fail_once: Mutex::new(None),
                repeat: false,
            },
        }
    }
}

#[async_trait]
impl FetchWith for Parted {
    /// The parts, joined (as a caller that does not take parts sees the page).
    async fn fetch(&self, m: &MemorySource, c: Option<&Cursor>, n: usize) -> Result<Batch, Error> {
        let parts = Mutex::new(Vec::new());
        let keep = |part: Batch| parts.lock().unwrap().extend(part.messages);
        let next = self.in_parts(m, c, n, &keep).await?;
        Ok(Batch::new(parts.into_inner().unwrap(), next))
    }
    async fn in_parts(
        &self,
        m: &MemorySource,
        c: Option<&Cursor>,
        n: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        let page = m.fetch(c, n).await?;
        let mut handed = 0;
        let mut last = None;
        for (i, chunk) in page.messages.chunks(self.part).enumerate() {
            if i > 0 {
                let mut waited = Duration::ZERO;
                while self.handled.calls.lock().unwrap().len() < handed {
                    if waited >= Duration::from_secs(2) {
                        self.waited_out.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    waited += Duration::from_millis(5);
                }
                if let Some(kind) = self.fail_once.lock().unwrap().take() {
                    return Err(Error::new(kind, "the service went away part-way"));
                }
            }
            let mut messages = chunk.to_vec();
            if self.repeat
                && let Some(again) = last.take()
            {
                messages.insert(0, again);
            }
            last = chunk.last().cloned();
            handed += chunk.len();
            hand_over(Batch::new(messages, None));
        }
        Ok(page.next)
    }
}

/// A pipeline of `source` alone, recording in `rec`, pages of 50.
fn on_pipeline(rec: &Arc<Recorder>, source: Arc<Fetching<Parted>>) -> handler::Pipeline {
    pipeline(
        rec.clone(),
        Ledger::in_memory(),
        Options::default().batch_size(50),
        "parted",
        source,
    )
}

fn unread(mb: &MemoryMailbox) -> usize {
    mb.messages().iter().filter(|m| !m.is_read).count()
}

/// The first part is handled while the source still holds the rest: each later part is
/// handed over only once the parts before it were handled, which a pipeline waiting for the
/// whole page would never do (each wait would run out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_part_of_a_page_is_handled_while_the_rest_is_on_its_way() {
    let mb = mailbox_with(30);
    let rec = recorder(None);
    let source = Arc::new(Parted::over(&mb, rec.clone(), 10));
    let p = on_pipeline(&rec, source.clone());
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert_eq!(s.handled, 30, "{s:?}");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(source.with.waited_out.load(Ordering::SeqCst), 0);
    assert_eq!(rec.calls.lock().unwrap().len(), 30);
    assert_eq!(unread(&mb), 0);
}

/// A fetch that fails after its first part: that part is handled and acknowledged, the error
/// is reported, and the rest waits for the next pass. A refused sign-in part-way takes the
/// source OFFLINE the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_handed_over_before_a_fetch_failed_is_handled() {
    for (kind, status) in [
        (ErrorKind::Transient, PingStatus::Online),
        (ErrorKind::Authentication, PingStatus::Offline),
    ] {
        let mb = mailbox_with(30);
        let rec = recorder(None);
        let source = Arc::new(Parted::over(&mb, rec.clone(), 10));
        *source.with.fail_once.lock().unwrap() = Some(kind);
        let p = on_pipeline(&rec, source.clone());
        let first = p.run_once(&Shutdown::new()).await;
        let s = &first.sources[0];
        assert_eq!(s.handled, 10, "{kind:?}: {s:?}");
        assert_eq!(s.status, status, "{kind:?}: {s:?}");
        assert!(
            s.errors.iter().any(|e| e.contains("went away part-way")),
            "{:?}",
            s.errors
        );
        assert_eq!(unread(&mb), 20, "{kind:?}: the first part was acknowledged");
        let second = p.run_once(&Shutdown::new()).await;
        assert_eq!(second.sources[0].handled, 20, "{:?}", second.sources[0]);
        assert_eq!(
            rec.calls.lock().unwrap().len(),
            30,
            "each message handled once"
        );
        assert_eq!(unread(&mb), 0);
    }
}

/// A message a source repeats in a later part of the same page is handed to one task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_repeated_in_a_later_part_is_handled_once() {
    let mb = mailbox_with(30);
    let rec = recorder(None);
    let mut parted = Parted::over(&mb, rec.clone(), 10);
    parted.with.repeat = true;
    let p = on_pipeline(&rec, Arc::new(parted));
    let s = p.run_once(&Shutdown::new()).await;
    assert_eq!(s.sources[0].handled, 30, "{:?}", s.sources[0]);
    assert_eq!(rec.calls.lock().unwrap().len(), 30);
    assert_eq!(unread(&mb), 0);
}
