//! Fetching: the request count of a 1,050-message ingest at the protocol minimum, the default
//! page, and per-item failures of a fetch's GetItem chunks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use connector::{ErrorKind, MessageSource};
use ews_mail::{AccessToken, DEFAULT_MAX_BATCH, EwsSource, MAX_PAGE, MailboxAccess, TokenSource};

use test_support::SandboxTokens;

use crate::support::{
    MAILBOX, client, ews_503s, inject_numbered, mark_read, numbered, sandbox, seeded, store_id,
    unique_imids,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_of_1050_messages_spends_the_protocol_minimum_of_requests() {
    let (sb, c) = seeded("bulk", 1050).await;
    let src = EwsSource::new(c.clone()).with_max_batch(MAX_PAGE);
    assert_eq!(src.capabilities().max_batch, 1000);
    sb.admin().clear_request_log();
    assert_eq!(src.ping().await.waiting, Some(1050));
    let mut delivered = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let b = src.fetch(None, MAX_PAGE).await.unwrap();
        assert!(b.failed.is_empty(), "{:?}", b.failed);
        if b.messages.is_empty() {
            break;
        }
        sizes.push(b.messages.len());
        mark_read(&src, &b.messages).await;
        delivered.extend(b.messages);
    }
    assert_eq!(sizes, [1000, 50]);
    assert_eq!(unique_imids(&delivered), numbered("bulk", 0..1050));
    let log = sb.request_log();
    // The minimum for 1,050 messages: ceil(1050/1000) FindItem pages, ceil(1050/100) GetItem
    // with MIME and as many UpdateItem; above it only the ping's GetFolder and the FindItem
    // that finds the folder drained.
    assert_eq!(log.count_operation("GetFolder"), 1, "{log:?}");
    assert_eq!(log.count_operation("FindItem"), 2 + 1, "{log:?}");
    assert_eq!(log.count_operation("GetItem"), 11, "{log:?}");
    assert_eq!(log.count_operation("UpdateItem"), 11, "{log:?}");
    assert_eq!(log.count("POST", "/EWS/Exchange.asmx"), 26, "{log:?}");
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_source_still_fetches_100_per_finditem() {
    let (sb, c) = seeded("small", 150).await;
    let src = EwsSource::new(c);
    assert_eq!(src.capabilities().max_batch, DEFAULT_MAX_BATCH);
    sb.admin().clear_request_log();
    // Asking for more than the source's max_batch gets max_batch.
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert_eq!(b.messages.len(), 100);
    assert!(b.next.is_some());
    let log = sb.request_log();
    assert_eq!(log.count_operation("FindItem"), 1);
    assert_eq!(log.count_operation("GetItem"), 1);
}

/// Mints like [`SandboxTokens`], and runs `hook` once, before the first request after the first one:
/// in a fetch, after FindItem has listed and before any GetItem is sent. Every later call
/// waits for the hook under the lock, so no concurrent GetItem can overtake it.
struct HookAfterFirst {
    inner: Arc<SandboxTokens>,
    calls: AtomicUsize,
    hook: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for HookAfterFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookAfterFirst").finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenSource for HookAfterFirst {
    async fn token(&self) -> Result<AccessToken, connector::Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= 1 {
            let mut hook = self.hook.lock().unwrap();
            if let Some(h) = hook.take() {
                h();
            }
        }
        self.inner.token().await
    }
    async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, connector::Error> {
        self.token().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_gone_between_finditem_and_getitem_fails_alone() {
    let sb = sandbox().await;
    inject_numbered(&sb, "gap", 250);
    // Message 150 (in the second GetItem chunk) is deleted after FindItem listed it.
    let gone = store_id(&sb, "<gap-150@x>");
    let admin = sb.admin();
    let id = gone.clone();
    let tokens = Arc::new(HookAfterFirst {
        inner: SandboxTokens::ews_app(&sb),
        calls: AtomicUsize::new(0),
        hook: std::sync::Mutex::new(Some(Box::new(move || {
            admin
                .store()
                .delete(
                    MAILBOX,
                    &id,
                    sandbox::store::DeleteMode::HardDelete,
                    time::OffsetDateTime::now_utc(),
                )
                .expect("deleted");
        }))),
    });
    let c = client(&sb, tokens, MailboxAccess::Impersonate(MAILBOX.into()));
    let src = EwsSource::new(c).with_max_batch(MAX_PAGE);
    sb.admin().clear_request_log();
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert_eq!(b.messages.len(), 249);
    let mut want = numbered("gap", 0..250);
    want.remove("<gap-150@x>");
    assert_eq!(unique_imids(&b.messages), want);
    assert_eq!(b.failed.len(), 1, "{:?}", b.failed);
    assert_eq!(b.failed[0].0.as_str(), gone);
    assert_eq!(
        b.failed[0].1.kind(),
        ErrorKind::NotFound,
        "{}",
        b.failed[0].1
    );
    assert!(b.next.is_none());
    let log = sb.request_log();
    assert_eq!(log.count_operation("FindItem"), 1);
    assert_eq!(log.count_operation("GetItem"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_getitem_chunk_that_fails_as_a_whole_fails_only_its_messages() {
    let (sb, c) = seeded("chunk", 250).await;
    // One chunk at a time, so the faults below hit exactly the first GetItem and its retries.
    let src = EwsSource::new(c)
        .with_max_batch(MAX_PAGE)
        .with_fetch_concurrency(1);
    sb.admin().set_faults(ews_503s(1, 4));
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert_eq!(
        sb.admin().faults_fired(),
        4,
        "the first GetItem and its 3 retries"
    );
    assert_eq!(unique_imids(&b.messages), numbered("chunk", 100..250));
    assert_eq!(b.failed.len(), 100);
    for (_, e) in &b.failed {
        assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    }
    let failed: BTreeSet<String> = b.failed.iter().map(|(id, _)| id.to_string()).collect();
    let listed: BTreeSet<String> = (0..100)
        .map(|i| store_id(&sb, &format!("<chunk-{i}@x>")))
        .collect();
    assert_eq!(failed, listed);
    // When no chunk gets through, the fetch fails as a whole, as a single GetItem would.
    sb.admin().set_faults(ews_503s(1, 100));
    let e = src.fetch(None, MAX_PAGE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}
