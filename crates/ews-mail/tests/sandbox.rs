//! ews-mail against the in-process sandbox: the connector conformance kit, throttling and
//! faults through the sandbox's fault injection, diagnoses, stale change keys, sync, a
//! request-count test for a 1,050-message ingest at the protocol minimum, and per-item failures
//! of a fetch's GetItem chunks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use connector::conformance;
use connector::{Acknowledgement, ErrorKind, MessageId, MessageOutbound, MessageSource};
use ews_mail::ops::{GetItem, UpdateItem};
use ews_mail::sync::{FolderSync, MemorySyncStore};
use ews_mail::types::{FolderId, ItemId};
use ews_mail::{
    AccessToken, Credentials, DEFAULT_MAX_BATCH, EwsClient, EwsConfig, EwsOutbound, EwsSource,
    Jitter, MAX_PAGE, MailboxAccess, RetryPolicy, TokenSource,
};
use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol, Sandbox, Trigger};
use test_support::harness::EWS_UNKNOWN_ID;
use test_support::{SandboxHarness, SandboxTokens};

const APP: &str = test_support::DEMO_APP;
const MAILBOX: &str = "megan.bowen@contoso.example";

fn app_token(sb: &Sandbox) -> Arc<dyn TokenSource> {
    SandboxTokens::ews_app(sb)
}

fn user_token(sb: &Sandbox, user: &str) -> Arc<dyn TokenSource> {
    SandboxTokens::ews_delegated(sb, user)
}

fn no_jitter() -> Jitter {
    Arc::new(|| 0.0)
}

fn client(sb: &Sandbox, tokens: Arc<dyn TokenSource>, access: MailboxAccess) -> EwsClient {
    let cfg = EwsConfig::new(
        sb.ews_url().parse().unwrap(),
        Credentials::Bearer(tokens),
        access,
    )
    .with_retry(
        RetryPolicy::default()
            .with_max_attempts(4)
            .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
            .with_max_retry_after(Duration::from_secs(2)),
    )
    .with_jitter(no_jitter());
    EwsClient::new(cfg).unwrap()
}

async fn sandbox() -> Sandbox {
    test_support::start().await
}

/// A client impersonating [`MAILBOX`] with app-only tokens.
fn app_client(sb: &Sandbox) -> EwsClient {
    client(
        sb,
        app_token(sb),
        MailboxAccess::Impersonate(MAILBOX.into()),
    )
}

/// The conformance kit's harness on [`MAILBOX`] through `c`, able to break sign-in.
fn harness(sb: Sandbox, source: EwsSource, c: EwsClient) -> SandboxHarness {
    SandboxHarness::new(sb, MAILBOX, source, EWS_UNKNOWN_ID)
        .with_outbound(EwsOutbound::new(c))
        .breaking_auth(
            &[
                "User.Read",
                "Mail.ReadWrite",
                "Mail.Send",
                "https://outlook.office365.com/EWS.AccessAsUser.All",
            ],
            &[
                "Mail.ReadWrite",
                "Mail.Send",
                "https://outlook.office365.com/full_access_as_app",
            ],
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_kit_passes_with_app_impersonation() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    // The largest page, as the benchmark runs it.
    let h = harness(sb, EwsSource::new(c.clone()).with_max_batch(MAX_PAGE), c);
    let report = conformance::run(&h).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_kit_passes_with_a_delegated_token() {
    let sb = sandbox().await;
    let c = client(
        &sb,
        user_token(&sb, MAILBOX),
        MailboxAccess::Own(MAILBOX.into()),
    );
    let h = harness(sb, EwsSource::new(c.clone()), c);
    let report = conformance::run(&h).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mailbox_is_read_through_distinguished_folder_mailbox() {
    let sb = sandbox().await;
    sb.admin()
        .inject_mime(
            "projects@contoso.example",
            "Message-ID: <p1@x>\r\nSubject: p\r\nTo: projects@contoso.example\r\n\r\nhi\r\n",
        )
        .unwrap();
    let c = client(
        &sb,
        user_token(&sb, "adele.vance@contoso.example"),
        MailboxAccess::Shared("projects@contoso.example".into()),
    );
    let src = EwsSource::new(c);
    let ping = src.ping().await;
    assert!(ping.is_online(), "{ping}");
    assert_eq!(ping.waiting, Some(1));
    let b = src.fetch(None, 10).await.unwrap();
    assert_eq!(b.messages.len(), 1);
    assert_eq!(b.messages[0].internet_message_id.as_deref(), Some("<p1@x>"));
    // Acknowledging by moving to a folder the source creates in the shared mailbox: the
    // message lands there, not in Adele's own mailbox (found by the chaos run).
    src.acknowledge(
        &b.messages[0].id,
        &Acknowledgement::MoveTo("Processed".into()),
    )
    .await
    .unwrap();
    let admin = sb.admin();
    let store = admin.store();
    let processed = store
        .find_folder("projects@contoso.example", None, "Processed")
        .unwrap()
        .expect("the folder is created in the shared mailbox");
    assert_eq!(processed.total_count, 1, "{processed:?}");
    assert!(
        store
            .find_folder("adele.vance@contoso.example", None, "Processed")
            .unwrap()
            .is_none()
    );
    assert_eq!(src.ping().await.waiting, Some(0));
    // Alex has no FullAccess on the shared mailbox.
    let c = client(
        &sb,
        user_token(&sb, "alex.wilber@contoso.example"),
        MailboxAccess::Shared("projects@contoso.example".into()),
    );
    let ping = EwsSource::new(c).ping().await;
    assert!(!ping.is_online());
    assert!(ping.reason.unwrap().contains("ErrorAccessDenied"));
}

fn inject_numbered(sb: &Sandbox, tag: &str, n: usize) {
    for i in 0..n {
        sb.admin()
            .inject(
                "c@fabrikam.example",
                &[MAILBOX.to_string()],
                format!(
                    "Message-ID: <{tag}-{i}@x>\r\nSubject: {i}\r\nTo: {MAILBOX}\r\n\r\nbody {i}\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
    }
}

/// Delivers `<{tag}{i}@x>` with subject `i`, for each `i` in `range`, from outside.
fn inject_short(sb: &Sandbox, tag: &str, range: std::ops::Range<usize>) {
    for i in range {
        sb.admin()
            .inject(
                "c@x.example",
                &[MAILBOX.to_string()],
                format!("Message-ID: <{tag}{i}@x>\r\nSubject: {i}\r\n\r\nb\r\n").as_bytes(),
            )
            .unwrap();
    }
}

/// The Message-IDs of `messages`, each once (a repeat fails the test).
fn unique_imids(messages: &[connector::RawMessage]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for m in messages {
        let imid = m.internet_message_id.clone().expect("a Message-ID");
        assert!(seen.insert(imid.clone()), "{imid} delivered twice");
    }
    seen
}

fn numbered(tag: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("<{tag}-{i}@x>")).collect()
}

/// A sandbox whose mailbox holds `n` numbered unread messages, and an app-only client
/// impersonating it.
async fn seeded(tag: &str, n: usize) -> (Sandbox, EwsClient) {
    let sb = sandbox().await;
    inject_numbered(&sb, tag, n);
    let c = app_client(&sb);
    (sb, c)
}

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
        let acks: Vec<_> = b
            .messages
            .iter()
            .map(|m| (m.id.clone(), Acknowledgement::MarkRead))
            .collect();
        for r in src.acknowledge_many(&acks).await {
            r.unwrap();
        }
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

/// The store id of the message with Message-ID `imid` in the mailbox.
fn store_id(sb: &Sandbox, imid: &str) -> String {
    let all = sb
        .admin()
        .store()
        .list(MAILBOX, None, &sandbox::store::ListQuery::default())
        .unwrap();
    all.items
        .into_iter()
        .find(|m| m.props.internet_message_id.as_deref() == Some(imid))
        .map(|m| m.id)
        .expect("the message is in the mailbox")
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
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule {
            trigger: Trigger::After { skip: 1, count: 4 },
            ..FaultRule::next(Protocol::Ews, 1, FaultKind::ServerError503)
        }],
    });
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
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule {
            trigger: Trigger::After {
                skip: 1,
                count: 100,
            },
            ..FaultRule::next(Protocol::Ews, 1, FaultKind::ServerError503)
        }],
    });
    let e = src.fetch(None, MAX_PAGE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_busy_and_503_are_retried_within_limits() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    let src = EwsSource::new(c);
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![
            FaultRule::next(Protocol::Ews, 1, FaultKind::ServerBusy { back_off_ms: 10 }),
            FaultRule::next(Protocol::Ews, 1, FaultKind::ServerError503),
        ],
    });
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
    assert_eq!(sb.admin().faults_fired(), 2);
    // Persistent busy: retries are capped and the error keeps code, back-off and request id.
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule::next(
            Protocol::Ews,
            100,
            FaultKind::ServerBusy { back_off_ms: 7 },
        )],
    });
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(7)));
    let d = e.response().unwrap();
    assert_eq!(d.server_code.as_deref(), Some("ErrorServerBusy"));
    assert!(d.request_id.is_some());
    assert_eq!(
        sb.admin().faults_fired(),
        4,
        "one attempt plus three retries"
    );
    // A back-off longer than the policy waits for is returned at once.
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule::next(
            Protocol::Ews,
            100,
            FaultKind::ServerBusy {
                back_off_ms: 600_000,
            },
        )],
    });
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(sb.admin().faults_fired(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_not_retried_after_a_reset_connection() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    let out = EwsOutbound::new(c);
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule::next(
            Protocol::Ews,
            5,
            FaultKind::ResetConnection,
        )],
    });
    let msg = connector::OutgoingMessage::raw(
        connector::Envelope::new(MAILBOX, vec!["adele.vance@contoso.example".into()]),
        format!("From: {MAILBOX}\r\nTo: adele.vance@contoso.example\r\nSubject: x\r\n\r\nx\r\n")
            .into_bytes(),
    );
    let e = out.send(&msg).await.unwrap_err();
    assert!(e.may_have_taken_effect(), "{e}");
    assert_eq!(sb.admin().faults_fired(), 1, "no blind retry of a send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_diagnoses_consent_policy_impersonation_and_missing_mailbox() {
    let sb = sandbox().await;
    // Delegated EWS without admin consent: user consent is not enough.
    sb.admin().revoke_admin_consent(APP).unwrap();
    sb.admin()
        .grant_user_consent(
            APP,
            MAILBOX,
            &["https://outlook.office365.com/EWS.AccessAsUser.All"],
        )
        .unwrap();
    let ping = EwsSource::new(client(
        &sb,
        user_token(&sb, MAILBOX),
        MailboxAccess::Own(MAILBOX.into()),
    ))
    .ping()
    .await;
    assert!(!ping.is_online());
    let reason = ping.reason.clone().unwrap();
    assert!(
        reason.contains("legacy EWS connections do not work with user consent"),
        "{reason}"
    );
    assert!(ping.auth.is_some());
    let rendered = format!("{ping:?} {}", ping.to_json());
    assert!(
        !rendered.contains("eyJ"),
        "no token in the report: {rendered}"
    );

    let sb = sandbox().await;
    // EWS allowed only for other apps.
    sb.admin().update_org(|o| {
        o.ews_enabled = Some(true);
        o.ews_allowed_app_ids = Some(vec!["11111111-1111-1111-1111-111111111111".into()]);
    });
    let ping = EwsSource::new(app_client(&sb)).ping().await;
    let reason = ping.reason.unwrap();
    assert!(
        reason.contains("EwsAllowedAppIDs") && reason.contains("Graph"),
        "{reason}"
    );
    sb.admin().update_org(|o| {
        o.ews_enabled = None;
        o.ews_allowed_app_ids = None;
    });

    // Impersonating with a delegated token is denied.
    let c = client(
        &sb,
        user_token(&sb, "adele.vance@contoso.example"),
        MailboxAccess::Impersonate(MAILBOX.into()),
    );
    let reason = EwsSource::new(c).ping().await.reason.unwrap();
    assert!(reason.starts_with("impersonation denied"), "{reason}");

    // A mailbox that does not exist.
    let c = client(
        &sb,
        app_token(&sb),
        MailboxAccess::Impersonate("nobody@contoso.example".into()),
    );
    let reason = EwsSource::new(c).ping().await.reason.unwrap();
    assert!(reason.starts_with("mailbox not found"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_change_key_is_recovered_and_item_errors_stay_in_place() {
    let sb = sandbox().await;
    inject_short(&sb, "s", 0..3);
    let c = app_client(&sb);
    let src = EwsSource::new(c.clone());
    let b = src.fetch(None, 10).await.unwrap();
    assert_eq!(b.messages.len(), 3);
    // Change message 0 behind the source's back: its remembered change key is now stale.
    let fresh = c
        .call(&GetItem::ids_only(vec![ItemId::new(
            b.messages[0].id.as_str(),
        )]))
        .await
        .unwrap();
    let id0 = fresh[0].as_ref().unwrap().id.clone().unwrap();
    let r = c.call(&UpdateItem::mark_unread(vec![id0])).await.unwrap();
    assert!(r[0].is_ok());
    let items = vec![
        (b.messages[0].id.clone(), Acknowledgement::MarkRead),
        (
            MessageId::new("AAMkAGdvbmUtZm9yLWdvb2QtMDAwMDAw"),
            Acknowledgement::MarkRead,
        ),
        (b.messages[2].id.clone(), Acknowledgement::MarkRead),
    ];
    let results = src.acknowledge_many(&items).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert!(results[2].is_ok());
    assert_eq!(
        src.count_waiting().await.unwrap(),
        Some(1),
        "only message 1 stays unread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_folder_items_keeps_state_in_the_callers_store() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    inject_short(&sb, "y", 0..5);
    let store = MemorySyncStore::default();
    let sync =
        FolderSync::new(&c, FolderId::distinguished("inbox"), "inbox", &store).with_max_changes(3);
    let first = sync.next_page().await.unwrap();
    assert_eq!(first.changes.len(), 3);
    assert!(!first.done);
    let second = sync.next_page().await.unwrap();
    assert_eq!(second.changes.len(), 2);
    assert!(second.done);
    let idle = sync.next_page().await.unwrap();
    assert!(idle.changes.is_empty() && idle.done);
    sb.admin()
        .inject(
            "c@x.example",
            &[MAILBOX.to_string()],
            b"Message-ID: <y5@x>\r\nSubject: 5\r\n\r\nb\r\n",
        )
        .unwrap();
    let more = sync.next_page().await.unwrap();
    assert_eq!(more.changes.len(), 1);
    // A corrupt saved state restarts from the beginning instead of failing.
    use ews_mail::sync::SyncStateStore;
    store.save("inbox", "bm90LWEtc3RhdGU=");
    let restarted = sync.with_max_changes(512).next_page().await.unwrap();
    assert_eq!(restarted.changes.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_once() {
    #[derive(Debug)]
    struct FirstStale {
        inner: Arc<SandboxTokens>,
        calls: std::sync::atomic::AtomicU32,
    }
    #[async_trait]
    impl TokenSource for FirstStale {
        async fn token(&self) -> Result<AccessToken, connector::Error> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(AccessToken::new("not-a-jwt"))
        }
        async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, connector::Error> {
            self.inner.token().await
        }
    }
    let sb = sandbox().await;
    let tokens = Arc::new(FirstStale {
        inner: SandboxTokens::ews_app(&sb),
        calls: Default::default(),
    });
    let c = client(&sb, tokens, MailboxAccess::Impersonate(MAILBOX.into()));
    assert_eq!(
        EwsSource::new(c.clone()).count_waiting().await.unwrap(),
        Some(0)
    );
    assert!(!c.log().render().contains("not-a-jwt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msauth_tokens_from_the_token_endpoint_and_consent_loss_is_diagnosed() {
    let sb = sandbox().await;
    let authority = msauth::Authority::microsoft_layout(
        sb.base_url(),
        msauth::Tenant::parse(&sb.tenant_id()).unwrap(),
    )
    .unwrap();
    let secret = "demo-secret-do-not-use-in-production";
    let tokens = msauth::TokenProvider::builder(authority, APP)
        .credential(msauth::ClientCredential::Secret(msauth::ClientSecret::new(
            secret,
        )))
        .scopes(["https://outlook.office365.com/.default"])
        .build()
        .unwrap();
    let c = client(
        &sb,
        Arc::new(tokens),
        MailboxAccess::Impersonate(MAILBOX.into()),
    );
    let src = EwsSource::new(c);
    let ping = src.ping().await;
    assert!(ping.is_online(), "{ping}");
    sb.admin().revoke_admin_consent(APP).unwrap();
    let ping = src.ping().await;
    assert!(!ping.is_online());
    assert!(ping.auth.is_some(), "{ping}");
    let shown = format!("{ping} {ping:?} {}", ping.to_json());
    assert!(!shown.contains(secret) && !shown.contains("eyJ"), "{shown}");
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budget_throttling_returns_the_back_off_and_recovers_with_time() {
    let sb = sandbox().await;
    sb.admin().set_throttle(sandbox::ThrottleConfig {
        budget: Some(2),
        window_secs: 600,
        ..sandbox::ThrottleConfig::default()
    });
    let c = app_client(&sb);
    let src = EwsSource::new(c);
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
    // The budget is spent: ErrorServerBusy with a back-off longer than the policy waits for.
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(2) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    // The sandbox clock moves on instead of the test sleeping.
    sb.admin().advance_clock(601);
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
}

/// msauth's provider (app-only, client secret) at `base`, as the EWS source's token source.
fn msauth_provider(base: &str, tenant: &str) -> msauth::TokenProvider {
    let authority =
        msauth::Authority::microsoft_layout(base, msauth::Tenant::parse(tenant).unwrap()).unwrap();
    msauth::TokenProvider::builder(authority, APP)
        .credential(msauth::ClientCredential::Secret(msauth::ClientSecret::new(
            "demo-secret-do-not-use-in-production",
        )))
        .scopes(["https://outlook.office365.com/.default"])
        .build()
        .unwrap()
}

/// Issue #16: a throttled token endpoint is the identity platform asking us to wait, not a
/// refused sign-in. ews-mail's own msauth adapter used to report every token failure as
/// `Authentication`, so the pipeline took an EWS source OFFLINE "for sign-in" where a Graph
/// source would have retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_token_endpoint_is_a_retryable_error_not_a_sign_in_failure() {
    let sb = sandbox().await;
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule::next(
            Protocol::Token,
            100,
            FaultKind::Throttle {
                retry_after_secs: 7,
            },
        )],
    });
    let tokens = msauth_provider(sb.base_url(), &sb.tenant_id());
    let src = EwsSource::new(client(
        &sb,
        Arc::new(tokens.clone()),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "{e}");
    assert!(!e.may_have_taken_effect(), "no EWS request was sent: {e}");
    let e = src.count_waiting().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_ne!(e.kind(), ErrorKind::Authentication, "{e}");
    // The same provider through the outbound: a send is not sent, and may be retried.
    let out = EwsOutbound::new(client(
        &sb,
        Arc::new(tokens),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let msg = connector::OutgoingMessage::raw(
        connector::Envelope::new(MAILBOX, vec!["adele.vance@contoso.example".into()]),
        b"From: megan.bowen@contoso.example\r\nTo: adele.vance@contoso.example\r\nSubject: x\r\n\r\nx\r\n".to_vec(),
    );
    let e = out.send(&msg).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert!(!e.may_have_taken_effect(), "{e}");

    // Once the token endpoint answers again, so does the source.
    sb.admin().set_faults(FaultPlan::default());
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
}

/// A token endpoint with a server error (503) or none at all (nothing listening) is transient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_or_unreachable_token_endpoint_is_transient() {
    let sb = sandbox().await;
    sb.admin().set_faults(FaultPlan {
        seed: 1,
        rules: vec![FaultRule::next(
            Protocol::Token,
            100,
            FaultKind::ServerError503,
        )],
    });
    let src = EwsSource::new(client(
        &sb,
        Arc::new(msauth_provider(sb.base_url(), &sb.tenant_id())),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(e.auth_problem().is_some_and(|p| !p.summary.is_empty()));

    // Nothing listens on this port any more: the connection is refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let src = EwsSource::new(client(
        &sb,
        Arc::new(msauth_provider(
            &format!("http://{closed}"),
            &sb.tenant_id(),
        )),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(!e.may_have_taken_effect(), "{e}");
    let ping = src.ping().await;
    assert!(!ping.is_online());
    assert!(
        ping.reason
            .as_deref()
            .is_some_and(|r| r.contains("identity service")),
        "{ping}"
    );
}
