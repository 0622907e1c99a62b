//! The helpers the tests share: a sandbox with a recording sleeper, clients on it, seeding,
//! faults, and the conformance kit.

use std::sync::Arc;

use connector::conformance::run;
use connector::{Acknowledgement, MessageId, MessageSource};
use graph_mail::retry::{RecordingSleeper, SeededJitter};
use graph_mail::{
    Endpoint, FnTokenSource, GraphClient, GraphClientBuilder, GraphOutbound, GraphSource, Mailbox,
    SourceConfig,
};
use sandbox::store::ListQuery;
use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol, Sandbox};
use test_support::harness::{GRAPH_UNKNOWN_ID, assert_ran};
use test_support::{SandboxHarness, SandboxTokens};

pub(crate) const APP: &str = test_support::DEMO_APP;

pub(crate) struct Env {
    pub(crate) sb: Sandbox,
    pub(crate) sleeper: Arc<RecordingSleeper>,
    pub(crate) tokens: Arc<SandboxTokens>,
}

pub(crate) async fn env() -> Env {
    let sb = test_support::start().await;
    Env {
        tokens: SandboxTokens::graph_app(&sb),
        sb,
        sleeper: Arc::new(RecordingSleeper::default()),
    }
}

impl Env {
    pub(crate) fn client(&self, mailbox: Mailbox) -> GraphClient {
        let ep = Endpoint::custom(&self.sb.graph_url(), mailbox).expect("endpoint");
        GraphClient::builder(ep, self.tokens.clone())
            .sleeper(self.sleeper.clone())
            .jitter(Arc::new(SeededJitter::new(1)))
            .build()
            .expect("client")
    }

    pub(crate) fn source(&self, address: &str) -> GraphSource {
        GraphSource::new(self.client(Mailbox::user(address)), SourceConfig::default())
    }

    pub(crate) fn seed(&self, to: &str, n: usize, tag: &str) {
        for i in 0..n {
            let mime = format!(
                "Message-ID: <{tag}-{i}@test.invalid>\r\nFrom: c{i}@fabrikam.example\r\nTo: {to}\r\nSubject: {tag} {i}\r\n\r\nbody {i}\r\n"
            );
            self.sb
                .admin()
                .inject("c@fabrikam.example", &[to.to_owned()], mime.as_bytes())
                .expect("inject");
        }
    }

    /// Faults for Graph requests from now on (fault seed 1).
    pub(crate) fn faults(&self, rules: Vec<FaultRule>) {
        self.sb
            .admin()
            .set_faults(FaultPlan::new(rules).with_seed(1));
    }

    /// `kind` on the next `n` Graph requests.
    pub(crate) fn fault_next(&self, n: u32, kind: FaultKind) {
        self.faults(vec![FaultRule::next(Protocol::Graph, n, kind)]);
    }

    /// The messages in `address`'s Inbox, read from the store.
    pub(crate) fn inbox(&self, address: &str) -> Vec<sandbox::store::Message> {
        self.sb
            .admin()
            .store()
            .list(address, Some("inbox"), &ListQuery::default())
            .expect("list")
            .items
    }

    /// The conformance kit's harness on `address`, able to break sign-in.
    pub(crate) fn harness(self, address: &str, source: GraphSource) -> SandboxHarness {
        let outbound = GraphOutbound::new(self.client(Mailbox::user(address)));
        SandboxHarness::new(self.sb, address, source, GRAPH_UNKNOWN_ID)
            .with_outbound(outbound)
            .breaking_auth(&[], &["Mail.ReadWrite", "Mail.Send"])
    }
}

/// Fetches 100 at a time and marks each batch read until a fetch is empty (no batch may have
/// failures); the ids handed over, in order.
pub(crate) async fn fetch_and_mark_read_until_empty(source: &GraphSource) -> Vec<MessageId> {
    let mut handled = Vec::new();
    loop {
        let batch = source.fetch(None, 100).await.expect("fetch");
        assert!(batch.failed.is_empty());
        if batch.messages.is_empty() {
            return handled;
        }
        let acks: Vec<_> = batch
            .messages
            .iter()
            .map(|m| (m.id.clone(), Acknowledgement::MarkRead))
            .collect();
        for r in source.acknowledge_many(&acks).await {
            r.expect("ack");
        }
        handled.extend(batch.messages.into_iter().map(|m| m.id));
    }
}

/// Runs the conformance kit: at least 15 checks, all passed, `ran` among them.
pub(crate) async fn assert_conformance(h: &SandboxHarness, ran: &[&str]) {
    let report = run(h).await;
    eprintln!("{report}");
    assert!(report.checks.len() >= 15, "{report}");
    assert!(report.passed(), "{report}");
    assert_ran(&report, ran);
}

pub(crate) fn delta_source(
    env: &Env,
    address: &str,
    store: Arc<dyn httpcore::StateStore<graph_mail::delta::DeltaState>>,
) -> GraphSource {
    GraphSource::new(env.client(Mailbox::user(address)), SourceConfig::default()).with_delta(store)
}

pub(crate) fn seqs(batch: &connector::Batch) -> Vec<String> {
    batch
        .messages
        .iter()
        .map(|m| m.internet_message_id.clone().unwrap_or_default())
        .collect()
}

pub(crate) fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8) ^ salt).collect()
}

/// A client builder for a stand-in Graph at `base` (ending in `/v1.0`) that signs in with a
/// fixed token.
pub(crate) fn fixed_token_client(base: &str, mailbox: Mailbox) -> GraphClientBuilder {
    let ep = Endpoint::custom(base, mailbox).expect("endpoint");
    GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("t".into()))))
}
