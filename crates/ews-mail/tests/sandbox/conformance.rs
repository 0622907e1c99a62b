//! The connector conformance kit with app impersonation and with a delegated token, and a shared
//! mailbox read through its distinguished folders.

use connector::conformance;
use connector::{Acknowledgement, MessageSource};
use ews_mail::{EwsSource, MAX_PAGE, MailboxAccess};

use crate::support::{MAILBOX, app_client, client, harness, sandbox, user_token};

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
async fn conformance_kit_passes_in_sync_mode_with_stable_cursors() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    let store = std::sync::Arc::new(ews_mail::sync::MemorySourceSyncStore::default());
    let source = EwsSource::new(c.clone()).with_sync_state(store);
    assert!(source.capabilities().stable_cursors);
    let h = harness(sb, source, c);
    let report = conformance::run(&h).await;
    assert!(report.passed(), "{report}");
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "stable_cursors_survive_acknowledgements"),
        "{report}"
    );
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
