//! Push mode (issue #20): a source woken by a notification runs a pass at once instead of
//! waiting out its poll interval, which becomes the slow safety timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use handler::{Ledger, Options, Pipeline, Progress, Shutdown, SourceSpec};

use crate::support::*;

#[tokio::test]
async fn a_woken_source_runs_a_pass_before_its_poll_interval() {
    let mb = mailbox_with(1);
    let wake = Arc::new(tokio::sync::Notify::new());
    let shutdown = Shutdown::new();
    let (handler, _) = stopping_after(2, &shutdown);
    // A poll interval no test would wait out: only the wake-up can bring the second message.
    let mut p = Pipeline::new(
        handler,
        Ledger::in_memory(),
        Options::default().poll_interval(Duration::from_secs(3600)),
    );
    let passes = Arc::new(AtomicUsize::new(0));
    p.on_progress({
        let passes = passes.clone();
        move |e: &Progress| {
            if let Progress::Finished { .. } = e {
                passes.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    p.add_source(
        SourceSpec::new("pushed", Arc::new(mb.source()), router(false))
            .wake_on(wake.clone())
            .poll_every(Duration::from_secs(7200)),
    );
    let run = tokio::spawn(async move { p.run(&shutdown).await });
    // The first pass handles the first message and ends; then the second arrives and is
    // announced.
    while passes.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    mb.deliver(mail(1, PICKUP, ""));
    wake.notify_one();
    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the wake-up ran a pass")
        .unwrap();
    assert_eq!(summary.sources[0].handled, 2);
}
