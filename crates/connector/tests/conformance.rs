//! The conformance kit passes on the in-memory connection and catches broken ones.

use async_trait::async_trait;
use connector::conformance::{MemoryHarness, run};
use connector::memory::MemorySource;
use connector::{
    Acknowledgement, Batch, Cursor, Error, MessageId, MessageSource, PingReport, SourceCapabilities,
};

#[tokio::test]
async fn memory_connection_passes_the_kit() {
    let report = run(&MemoryHarness::new()).await;
    assert!(report.passed(), "{report}");
    // Every part of the kit ran, including outbound and broken sign-in.
    for name in [
        "paging_sees_each_message_once_oldest_first",
        "parts_hold_each_message_once",
        "ack_move_to_folder",
        "outbound_send_reads_back",
        "broken_auth_fetch_fails",
    ] {
        assert!(
            report.checks.iter().any(|c| c.name == name),
            "{name} did not run"
        );
    }
}

/// What a broken source does wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Drops the last message of every full page (an off-by-one in paging).
    DropsLastOfPage,
    /// Treats every acknowledgement as "mark read" (a move that never moves).
    IgnoresMove,
    /// Says OK to ids it has never seen.
    AcceptsUnknownIds,
    /// Claims to be online whatever happens.
    AlwaysOnline,
    /// Claims stable cursors while it pages unread mail by offset.
    ClaimsStableCursors,
    /// Hands the first message of a page over in two parts.
    RepeatsInParts,
}

#[derive(Debug)]
struct Broken {
    inner: MemorySource,
    fault: Fault,
}

#[async_trait]
impl MessageSource for Broken {
    fn name(&self) -> String {
        "broken".into()
    }
    fn capabilities(&self) -> SourceCapabilities {
        let caps = self.inner.capabilities();
        match self.fault {
            Fault::ClaimsStableCursors => caps.with_stable_cursors(true),
            _ => caps,
        }
    }
    async fn ping(&self) -> PingReport {
        match self.fault {
            Fault::AlwaysOnline => PingReport::online(None, Default::default()),
            _ => self.inner.ping().await,
        }
    }
    async fn count_waiting(&self) -> Result<Option<u64>, Error> {
        self.inner.count_waiting().await
    }
    async fn fetch(&self, cursor: Option<&Cursor>, max: usize) -> Result<Batch, Error> {
        let mut b = self.inner.fetch(cursor, max).await?;
        if matches!(self.fault, Fault::DropsLastOfPage) && b.messages.len() == max {
            b.messages.pop();
        }
        Ok(b)
    }
    async fn fetch_in_parts(
        &self,
        cursor: Option<&Cursor>,
        max: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        let repeats = matches!(self.fault, Fault::RepeatsInParts);
        let each = |b: Batch| {
            if repeats && let Some(first) = b.messages.first().cloned() {
                hand_over(Batch::new(vec![first], None));
            }
            hand_over(b);
        };
        connector::fetch_as_one_part(self, cursor, max, &each).await
    }
    async fn acknowledge(&self, id: &MessageId, ack: &Acknowledgement) -> Result<(), Error> {
        match (self.fault, ack) {
            (Fault::IgnoresMove, Acknowledgement::MoveTo(_)) => {
                self.inner.acknowledge(id, &Acknowledgement::MarkRead).await
            }
            (Fault::AcceptsUnknownIds, _) => {
                let _ = self.inner.acknowledge(id, ack).await;
                Ok(())
            }
            _ => self.inner.acknowledge(id, ack).await,
        }
    }
}

#[tokio::test]
async fn kit_catches_parts_that_repeat_a_message() {
    let report = run_broken(Fault::RepeatsInParts).await;
    assert!(report.failed("parts_hold_each_message_once"), "{report}");
    assert!(!report.passed());
}

async fn run_broken(fault: Fault) -> connector::conformance::Report {
    let h = MemoryHarness::with_source(|inner| Broken { inner, fault });
    run(&h).await
}

#[tokio::test]
async fn kit_catches_lossy_paging() {
    let report = run_broken(Fault::DropsLastOfPage).await;
    assert!(!report.passed());
    assert!(
        report.failed("paging_sees_each_message_once_oldest_first"),
        "{report}"
    );
}

#[tokio::test]
async fn kit_catches_a_move_that_does_not_move() {
    let report = run_broken(Fault::IgnoresMove).await;
    assert!(report.failed("ack_move_to_folder"), "{report}");
    assert!(!report.passed());
}

#[tokio::test]
async fn kit_catches_silent_success_on_unknown_ids() {
    let report = run_broken(Fault::AcceptsUnknownIds).await;
    assert!(report.failed("unknown_id_is_not_found"), "{report}");
}

#[tokio::test]
async fn kit_catches_a_ping_that_hides_outages() {
    let report = run_broken(Fault::AlwaysOnline).await;
    assert!(report.failed("broken_auth_ping_offline"), "{report}");
}

#[tokio::test]
async fn kit_catches_cursors_claimed_stable_that_move_under_acknowledgements() {
    let report = run_broken(Fault::ClaimsStableCursors).await;
    assert!(
        report.failed("stable_cursors_survive_acknowledgements"),
        "{report}"
    );
    // A source that does not claim them is not asked.
    let honest = run(&MemoryHarness::new()).await;
    assert!(
        !honest
            .checks
            .iter()
            .any(|c| c.name == "stable_cursors_survive_acknowledgements")
    );
}
