//! Sync mode (issue #20, EWS push's catch-up): an [`EwsSource`] that finds new mail through
//! SyncFolderItems from a saved state hands every message over until it is acknowledged, once
//! it is: across restarts, while the streaming connection is down, after Exchange forgot the
//! SyncState.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use connector::{Acknowledgement, ErrorKind, MessageSource, RawMessage};
use ews_mail::EwsSource;
use ews_mail::ops::UpdateItem;
use ews_mail::streaming::StreamingWatcher;
use ews_mail::sync::{FileSourceSyncStore, MemorySourceSyncStore};
use ews_mail::types::{FolderId, ItemId};
use sandbox::Sandbox;
use tokio::sync::Notify;

use crate::support::*;

fn file_source(sb: &Sandbox, path: &Path) -> EwsSource {
    let store = FileSourceSyncStore::open(path).expect("the state file opens");
    EwsSource::new(app_client(sb)).with_sync_state(Arc::new(store))
}

/// One pass: a catch-up, then every page (two messages a page, so cursors are used).
async fn pass(src: &EwsSource) -> Vec<RawMessage> {
    let mut out = Vec::new();
    let mut b = src.fetch(None, 2).await.expect("fetch");
    loop {
        assert!(b.failed.is_empty(), "{:?}", b.failed);
        out.append(&mut b.messages);
        match b.next.take() {
            Some(c) => b = src.fetch(Some(&c), 2).await.expect("next page"),
            None => return out,
        }
    }
}

/// The Message-IDs of `messages` carrying `tag` (the seeded mailbox holds others), each once.
fn tagged(messages: &[RawMessage], tag: &str) -> BTreeSet<String> {
    unique_imids(messages)
        .into_iter()
        .filter(|i| i.contains(tag))
        .collect()
}

async fn acknowledge(src: &EwsSource, messages: &[RawMessage]) {
    let acks: Vec<_> = messages
        .iter()
        .map(|m| (m.id.clone(), Acknowledgement::MarkRead))
        .collect();
    for r in src.acknowledge_many(&acks).await {
        r.expect("acknowledged");
    }
}

async fn mark_read(sb: &Sandbox, imid: &str) {
    let r = app_client(sb)
        .call(&UpdateItem::mark_read(vec![ItemId::new(store_id(
            sb, imid,
        ))]))
        .await
        .unwrap();
    assert!(r[0].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_is_handed_over_once_across_restarts() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ews-sync.json");
    inject_numbered(&sb, "first", 3);
    // Read before the first sync: history, as the unread listing would have it.
    mark_read(&sb, "<first-0@x>").await;
    let src = file_source(&sb, &path);
    assert!(src.is_sync());
    let got = pass(&src).await;
    assert_eq!(tagged(&got, "first"), numbered("first", 1..3));
    acknowledge(&src, &got).await;
    // Our own mark-reads are no new mail.
    assert!(pass(&src).await.is_empty());
    // After the first sync a message read before the sync saw it is still new mail.
    inject_numbered(&sb, "later", 2);
    mark_read(&sb, "<later-1@x>").await;
    let got = pass(&src).await;
    assert_eq!(tagged(&got, "later"), numbered("later", 0..2));
    assert_eq!(got.len(), 2);
    acknowledge(&src, &got).await;
    // Handed over, not acknowledged: a crash. Mail arrives while nothing runs.
    inject_numbered(&sb, "crash", 1);
    let unacknowledged = pass(&src).await;
    assert_eq!(tagged(&unacknowledged, "crash"), numbered("crash", 0..1));
    drop(src);
    inject_numbered(&sb, "stopped", 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
    }
    // The restart resumes from the file: the unacknowledged message again (the ledger's
    // business), what arrived meanwhile, nothing acknowledged before.
    let src = file_source(&sb, &path);
    let got = pass(&src).await;
    let all: BTreeSet<String> = unique_imids(&got);
    let want: BTreeSet<String> = numbered("crash", 0..1)
        .into_iter()
        .chain(numbered("stopped", 0..2))
        .collect();
    assert_eq!(all, want);
    acknowledge(&src, &got).await;
    assert!(pass(&src).await.is_empty());
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_sync_state_starts_over_and_keeps_what_waits() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ews-sync.json");
    let src = file_source(&sb, &path);
    let seeded = pass(&src).await;
    acknowledge(&src, &seeded).await;
    inject_numbered(&sb, "waiting", 2);
    let got = pass(&src).await;
    assert_eq!(unique_imids(&got), numbered("waiting", 0..2));
    // One is acknowledged, one is not; then Exchange forgets the SyncState.
    acknowledge(&src, &got[..1]).await;
    drop(src);
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for state in file["states"].as_object_mut().unwrap().values_mut() {
        state["sync_state"] = "bm90LWEtc3RhdGU=".into();
    }
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    inject_numbered(&sb, "meanwhile", 1);
    // Starting over hands over what still waits and what is unread, each once; the read
    // (acknowledged) mail stays history.
    let src = file_source(&sb, &path);
    let again = pass(&src).await;
    let want: BTreeSet<String> = [got[1].internet_message_id.clone().unwrap()]
        .into_iter()
        .chain(numbered("meanwhile", 0..1))
        .collect();
    assert_eq!(unique_imids(&again), want);
    acknowledge(&src, &again).await;
    assert!(pass(&src).await.is_empty());
}

#[tokio::test]
async fn a_corrupt_state_file_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ews-sync.json");
    for bad in [
        &b"{not json"[..],
        br#"{"version":7,"states":{}}"#,
        br#"{"version":1,"states":{"a/inbox":{"version":1,"pending":[{"id":"x","seq":4}],"next_seq":1}}}"#,
    ] {
        std::fs::write(&path, bad).unwrap();
        let e = FileSourceSyncStore::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
        assert!(e.message().contains("ews-sync.json"), "{e}");
        assert!(e.message().contains("corrupt"), "{e}");
    }
}

#[tokio::test]
async fn a_deleted_waiting_message_stops_waiting() {
    let sb = sandbox().await;
    let src =
        EwsSource::new(app_client(&sb)).with_sync_state(Arc::new(MemorySourceSyncStore::default()));
    let seeded = pass(&src).await;
    acknowledge(&src, &seeded).await;
    inject_numbered(&sb, "gone", 2);
    let got = pass(&src).await;
    assert_eq!(got.len(), 2);
    // Deleted by someone else before it was acknowledged: not handed over again.
    let r = app_client(&sb)
        .call(&ews_mail::ops::DeleteItem::new(
            vec![ItemId::new(got[0].id.as_str())],
            ews_mail::ops::DeleteType::HardDelete,
        ))
        .await
        .unwrap();
    assert!(r[0].is_ok());
    let again = pass(&src).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, got[1].id);
    // Keep: the sync has moved past it, nothing is asked of Exchange.
    let r = src.acknowledge(&again[0].id, &Acknowledgement::Keep).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(pass(&src).await.is_empty());
}

/// Mail delivered while the streaming connection is down (the sandbox's failover fault: every
/// subscription lost, Subscribe and GetStreamingEvents refused) is caught up once the watcher
/// is back, each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_delivered_while_the_stream_is_down_is_handed_over_once() {
    let sb = sandbox().await;
    let src =
        EwsSource::new(app_client(&sb)).with_sync_state(Arc::new(MemorySourceSyncStore::default()));
    let seeded = pass(&src).await;
    acknowledge(&src, &seeded).await;
    let wake = Arc::new(Notify::new());
    let watcher = StreamingWatcher::new(
        app_client(&sb),
        FolderId::distinguished("inbox"),
        wake.clone(),
    );
    let task = tokio::spawn(watcher.run(std::future::pending()));
    let woken = |what: &'static str| {
        let wake = wake.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(60), wake.notified())
                .await
                .unwrap_or_else(|_| panic!("not woken: {what}"));
        }
    };
    woken("connected").await;
    // Runs a pass after each wake until `n` messages tagged `tag` came, acknowledging them.
    let until = |tag: &'static str, n: usize| {
        let (src, woken) = (&src, &woken);
        async move {
            let mut got = Vec::new();
            while tagged(&got, tag).len() < n {
                woken(tag).await;
                let mut p = pass(src).await;
                acknowledge(src, &p).await;
                got.append(&mut p);
            }
            got
        }
    };
    sb.admin().set_ews_streaming_down(true);
    inject_numbered(&sb, "dark", 3);
    assert_eq!(
        sb.admin().ews_subscriptions(),
        0,
        "no subscription saw them"
    );
    sb.admin().set_ews_streaming_down(false);
    // Woken by the failures and by the new connection.
    let got = until("dark", 3).await;
    assert_eq!(unique_imids(&got), numbered("dark", 0..3));
    tokio::time::timeout(Duration::from_secs(60), async {
        while sb.admin().ews_subscriptions() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("subscribed again");
    inject_numbered(&sb, "bright", 1);
    let got = until("bright", 1).await;
    assert_eq!(unique_imids(&got), numbered("bright", 0..1));
    task.abort();
}
