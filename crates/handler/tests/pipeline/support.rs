//! The helpers the tests share: the router, mail to the pickup mailbox, a recording handler, a
//! source whose acknowledgements fail on demand, and a pipeline over one source.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use addressing::{Router, RuleConfig};
use async_trait::async_trait;
use connector::memory::{MemoryMailbox, MemorySource};
use connector::{
    Acknowledgement, Batch, Cursor, Error, MessageId, MessageSource, PingReport, SourceCapabilities,
};
use handler::{
    FnHandler, Handler, HandlerError, Inbound, Ledger, Options, Pipeline, Shutdown, SourceSpec,
    Summary,
};

pub(crate) use crate::common::PICKUP;

pub(crate) fn router(send_from_alias: bool) -> Router {
    let _ = send_from_alias;
    crate::common::billing_router(vec![RuleConfig::Detail {
        detail: "payments".into(),
        base: None,
        project: "PAY".into(),
    }])
}

pub(crate) fn mail(i: usize, to: &str, extra: &str) -> Vec<u8> {
    format!(
        "Message-ID: <m{i}@fabrikam.example>\r\nFrom: Customer {i} <c{i}@fabrikam.example>\r\n\
         To: {to}\r\nSubject: request {i}\r\n{extra}\r\nbody {i}\r\n"
    )
    .into_bytes()
}

/// The pickup mailbox with `n` plain messages to it waiting.
pub(crate) fn mailbox_with(n: usize) -> MemoryMailbox {
    let mb = MemoryMailbox::new(PICKUP);
    for i in 0..n {
        mb.deliver(mail(i, PICKUP, ""));
    }
    mb
}

pub(crate) struct Recorder {
    pub(crate) calls: Mutex<Vec<(String, Option<String>)>>,
    pub(crate) fail_subject: Option<String>,
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

pub(crate) fn recorder(fail: Option<&str>) -> Arc<Recorder> {
    Arc::new(Recorder {
        calls: Mutex::new(Vec::new()),
        fail_subject: fail.map(str::to_owned),
    })
}

/// A source whose acknowledgements fail a number of times: as if the process died between
/// handling and acknowledging, or (`lost_answer`) as if the acknowledgement took effect and
/// its answer was lost (a reset after the server applied it). Counts acknowledge calls.
#[derive(Debug)]
pub(crate) struct FlakyAck {
    pub(crate) inner: MemorySource,
    pub(crate) failures_left: AtomicUsize,
    pub(crate) lost_answer: bool,
    /// Acknowledgements asked for, one per message, however they were sent.
    pub(crate) calls: AtomicUsize,
    /// Says it acknowledges in batches (as Graph and EWS do). Each `acknowledge_many` call's
    /// size is recorded either way.
    pub(crate) batching: bool,
    pub(crate) many_calls: Mutex<Vec<usize>>,
    /// `acknowledge_many` calls left that drop their last result (a buggy source).
    pub(crate) short_answers_left: AtomicUsize,
    /// A failure is a refusal for throttling with a wait of 1 ms (a spent request budget),
    /// not a reset.
    pub(crate) throttled: std::sync::atomic::AtomicBool,
}

impl FlakyAck {
    pub(crate) fn new(inner: MemorySource, failures: usize, lost_answer: bool) -> Arc<Self> {
        Self::build(inner, failures, lost_answer, false, 0)
    }

    pub(crate) fn batching(inner: MemorySource, failures: usize, lost_answer: bool) -> Arc<Self> {
        Self::build(inner, failures, lost_answer, true, 0)
    }

    pub(crate) fn build(
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
            throttled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn many_calls(&self) -> Vec<usize> {
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
            if self.throttled.load(Ordering::SeqCst) {
                let wait = std::time::Duration::from_millis(1);
                return Err(Error::throttled("429: the budget is spent", Some(wait)));
            }
            return Err(Error::transient("connection reset"));
        }
        self.inner.acknowledge(id, ack).await
    }
}

/// A test source's own `fetch` (and, if it likes, `fetch_in_parts`) over an in-memory
/// mailbox's source `m`; [`Fetching`] delegates the rest to that source.
#[async_trait]
pub(crate) trait FetchWith: Send + Sync {
    /// A page of at most `n`, from `m` or not.
    async fn fetch(&self, m: &MemorySource, c: Option<&Cursor>, n: usize) -> Result<Batch, Error>;

    /// The ping: by default, `m`'s.
    async fn ping(&self, m: &MemorySource) -> PingReport {
        m.ping().await
    }

    /// The page in parts: by default, the page [`fetch`](Self::fetch) makes, as one part.
    async fn in_parts(
        &self,
        m: &MemorySource,
        c: Option<&Cursor>,
        n: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        let mut page = self.fetch(m, c, n).await?;
        let next = page.next.take();
        hand_over(page);
        Ok(next)
    }
}

/// The in-memory source `inner`, named `name`, its fetches made by `with`.
pub(crate) struct Fetching<F> {
    pub(crate) name: &'static str,
    pub(crate) inner: MemorySource,
    pub(crate) with: F,
}

#[async_trait]
impl<F: FetchWith> MessageSource for Fetching<F> {
    fn name(&self) -> String {
        self.name.into()
    }
    fn capabilities(&self) -> SourceCapabilities {
        self.inner.capabilities()
    }
    async fn ping(&self) -> PingReport {
        self.with.ping(&self.inner).await
    }
    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        self.inner.count_waiting().await
    }
    async fn fetch(&self, c: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        self.with.fetch(&self.inner, c, max).await
    }
    async fn fetch_in_parts(
        &self,
        c: Option<&Cursor>,
        max: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        self.with.in_parts(&self.inner, c, max, hand_over).await
    }
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        self.inner.acknowledge(id, ack).await
    }
}

/// A handler that counts the messages it is given and triggers `shutdown` at the `n`th; the
/// count.
pub(crate) fn stopping_after(
    n: usize,
    shutdown: &Shutdown,
) -> (Arc<dyn Handler>, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let handler = FnHandler::new({
        let handled = handled.clone();
        let shutdown = shutdown.clone();
        move |_: &Inbound| {
            if handled.fetch_add(1, Ordering::SeqCst) + 1 == n {
                shutdown.trigger();
            }
            Ok(())
        }
    });
    (Arc::new(handler), handled)
}

/// A [`recorder`] that fails nothing, an in-memory ledger, and a [`pipeline`] with the default
/// options over `source`, named `name`.
pub(crate) fn recorded(
    name: &str,
    source: Arc<dyn MessageSource>,
) -> (Arc<Recorder>, Ledger, Pipeline) {
    let rec = recorder(None);
    let ledger = Ledger::in_memory();
    let p = pipeline(
        rec.clone(),
        ledger.clone(),
        Options::default(),
        name,
        source,
    );
    (rec, ledger, p)
}

/// Runs `p`'s next pass and asserts that it handled and recovered nothing and made the `owed`
/// acknowledgements the ledger owed under `prefix`, none owed after it; the summary.
pub(crate) async fn assert_next_pass_makes_the_owed(
    p: &Pipeline,
    ledger: &Ledger,
    prefix: &str,
    owed: u64,
) -> Summary {
    let summary = p.run_once(&Shutdown::new()).await;
    let s = &summary.sources[0];
    assert_eq!(
        (s.handled, s.recovered, s.reacknowledged),
        (0, 0, owed),
        "{s:?}"
    );
    assert!(ledger.unacknowledged(prefix).is_empty());
    summary
}

/// A pipeline over the one source `source`, named `name` and routed by [`router`].
pub(crate) fn pipeline(
    handler: Arc<dyn Handler>,
    ledger: Ledger,
    options: Options,
    name: &str,
    source: Arc<dyn MessageSource>,
) -> Pipeline {
    let mut p = Pipeline::new(handler, ledger, options);
    p.add_source(SourceSpec::new(name, source, router(false)));
    p
}
