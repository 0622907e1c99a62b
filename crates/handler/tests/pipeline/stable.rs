//! A source whose cursors survive acknowledgements (graph-mail's delta mode, ews-mail's sync
//! mode): the pipeline fetches its next page while it handles the current one and follows the
//! pass to its end, handing every message over once.

use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use connector::{
    Acknowledgement, Batch, Cursor, Error, MessageId, MessageSource, PingReport, RawMessage,
    SourceCapabilities,
};
use handler::{Ledger, Options, Shutdown};

use crate::support::{PICKUP, mail, pipeline, recorder};

/// A saved set paged by arrival, as the incremental sources keep it: the cursor is the last
/// sequence number handed out, so acknowledging earlier messages does not move later pages.
#[derive(Default)]
struct SavedSet {
    state: Mutex<SetState>,
}

#[derive(Default)]
struct SetState {
    /// Waiting messages: (sequence number, MIME), oldest first.
    waiting: Vec<(u64, Vec<u8>)>,
    next_seq: u64,
    /// Messages handed out and not acknowledged yet, at each `fetch` with a cursor.
    outstanding_at_next_page: Vec<usize>,
    handed_out: Vec<u64>,
    passes: usize,
    /// Mail to deliver when the first pass asks for its second page.
    late: Vec<Vec<u8>>,
}

impl SavedSet {
    fn deliver(&self, mime: Vec<u8>) {
        let mut s = self.state.lock().unwrap();
        let seq = s.next_seq;
        s.next_seq += 1;
        s.waiting.push((seq, mime));
    }
}

#[async_trait]
impl MessageSource for SavedSet {
    fn name(&self) -> String {
        "saved-set".into()
    }
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::unread_polling(1000).with_stable_cursors(true)
    }
    async fn ping(&self) -> PingReport {
        PingReport::online(None, Default::default())
    }
    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        Ok(Some(self.state.lock().unwrap().waiting.len() as u64))
    }
    async fn fetch(&self, cursor: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        let page = {
            let mut s = self.state.lock().unwrap();
            let after = match cursor {
                None => {
                    s.passes += 1;
                    None
                }
                Some(c) => {
                    let outstanding = s
                        .handed_out
                        .iter()
                        .filter(|seq| s.waiting.iter().any(|(w, _)| w == *seq))
                        .count();
                    s.outstanding_at_next_page.push(outstanding);
                    if s.passes == 1 && s.outstanding_at_next_page.len() == 1 {
                        for m in std::mem::take(&mut s.late) {
                            let seq = s.next_seq;
                            s.next_seq += 1;
                            s.waiting.push((seq, m));
                        }
                    }
                    Some(c.as_str().parse::<u64>().expect("our cursor"))
                }
            };
            let page: Vec<(u64, Vec<u8>)> = s
                .waiting
                .iter()
                .filter(|(seq, _)| after.is_none_or(|a| *seq > a))
                .take(max)
                .cloned()
                .collect();
            let more = s
                .waiting
                .iter()
                .filter(|(seq, _)| after.is_none_or(|a| *seq > a))
                .count()
                > page.len();
            s.handed_out.extend(page.iter().map(|(seq, _)| *seq));
            (page, more)
        };
        // Let the handling of the previous page run meanwhile, as a download would.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (page, more) = page;
        let next = if more {
            page.last().map(|(seq, _)| Cursor::new(seq.to_string()))
        } else {
            None
        };
        let messages = page
            .into_iter()
            .map(|(seq, mime)| RawMessage::new(MessageId::new(seq.to_string()), mime))
            .collect();
        Ok(Batch::new(messages, next))
    }
    async fn acknowledge(&self, id: &MessageId, _ack: &Acknowledgement) -> Result<(), Error> {
        // An acknowledgement takes a while, as a request does.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let seq: u64 = id.as_str().parse().expect("our id");
        let mut s = self.state.lock().unwrap();
        let before = s.waiting.len();
        s.waiting.retain(|(w, _)| *w != seq);
        if s.waiting.len() == before {
            return Err(Error::not_found(format!("message {seq}")));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_source_with_stable_cursors_has_its_next_page_fetched_while_the_current_one_is_acknowledged()
 {
    let source = Arc::new(SavedSet::default());
    for i in 0..95 {
        source.deliver(mail(i, PICKUP, ""));
    }
    // Arrives during the first pass, after the first page was listed.
    source.state.lock().unwrap().late = (95..100).map(|i| mail(i, PICKUP, "")).collect();
    let rec = recorder(None);
    let ledger = Ledger::in_memory();
    let p = pipeline(
        rec.clone(),
        ledger.clone(),
        Options::default().batch_size(20).concurrency(4),
        "stable",
        source.clone(),
    );
    let s = p.run_once(&Shutdown::new()).await;
    let s = &s.sources[0];
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.handled, 100, "{s:?}");
    let mut subjects: Vec<String> = rec
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.0.clone())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 100, "each message handed over once");
    let st = source.state.lock().unwrap();
    assert!(st.waiting.is_empty(), "everything acknowledged");
    // Every next page was asked for while messages of the page before were still waiting for
    // their acknowledgement: fetched ahead, not after the page was done.
    assert!(
        st.outstanding_at_next_page.iter().all(|n| *n > 0),
        "{:?}",
        st.outstanding_at_next_page
    );
    // The pass was followed to its end (no new pass after each acknowledged page), and one more
    // pass found nothing new after the mail that arrived during the first one.
    assert_eq!(st.passes, 2, "passes: {}", st.passes);
    assert_eq!(
        st.outstanding_at_next_page.len(),
        4,
        "five pages of twenty in the first pass"
    );
}
