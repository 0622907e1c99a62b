//! The helpers the tests share: the router, mail to the pickup mailbox, a recording handler, a
//! source whose acknowledgements fail on demand, and a pipeline over one source.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use addressing::{MailboxConfig, Router, RoutingConfig, RuleConfig};
use async_trait::async_trait;
use connector::memory::{MemoryMailbox, MemorySource};
use connector::{
    Acknowledgement, Batch, Cursor, Error, MessageId, MessageSource, PingReport, SourceCapabilities,
};
use handler::{Handler, HandlerError, Inbound, Ledger, Options, Pipeline, SourceSpec};

pub(crate) const PICKUP: &str = "helpdesk@contoso.example";

pub(crate) fn router(send_from_alias: bool) -> Router {
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
            return Err(Error::transient("connection reset"));
        }
        self.inner.acknowledge(id, ack).await
    }
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
