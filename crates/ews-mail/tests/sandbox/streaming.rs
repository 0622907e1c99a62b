//! Streaming notifications against the sandbox (issue #20): the watcher wakes the source when
//! mail arrives, and after every (re)connection, which it makes before the service closes one.

use std::sync::Arc;
use std::time::Duration;

use ews_mail::MailboxAccess;
use ews_mail::streaming::StreamingWatcher;
use ews_mail::types::FolderId;
use tokio::sync::Notify;

use crate::support::*;

async fn woken(wake: &Notify, what: &str) {
    tokio::time::timeout(Duration::from_secs(30), wake.notified())
        .await
        .unwrap_or_else(|_| panic!("not woken: {what}"));
}

/// A watcher of the app's inbox, and what it wakes.
fn inbox_watcher(sb: &sandbox::Sandbox) -> (StreamingWatcher, Arc<Notify>) {
    let wake = Arc::new(Notify::new());
    let inbox = FolderId::distinguished("inbox");
    (
        StreamingWatcher::new(app_client(sb), inbox, wake.clone()),
        wake,
    )
}

#[tokio::test]
async fn new_mail_wakes_the_source() {
    let sb = sandbox().await;
    let (watcher, wake) = inbox_watcher(&sb);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(watcher.run(async move {
        let _ = stop_rx.await;
    }));
    // Connected (a catch-up wake), then nothing until mail comes.
    woken(&wake, "after connecting").await;
    inject_numbered(&sb, "stream", 1);
    woken(&wake, "by the NewMailEvent").await;
    inject_numbered(&sb, "stream-again", 1);
    woken(&wake, "by the second NewMailEvent").await;
    assert_eq!(sb.admin().ews_subscriptions(), 1);
    let _ = stop_tx.send(());
    task.await.unwrap();
    assert_eq!(
        sb.admin().ews_subscriptions(),
        0,
        "unsubscribed when stopped"
    );
}

#[tokio::test]
async fn connections_are_renewed_before_the_service_closes_them() {
    let sb = sandbox().await;
    // One-minute connections, renewed after 100 ms: each renewal wakes the source.
    let (watcher, wake) = inbox_watcher(&sb);
    let watcher = watcher.connection(1, Duration::from_millis(100));
    let task = tokio::spawn(watcher.run(std::future::pending()));
    for i in 0..3 {
        woken(&wake, &format!("connection {i}")).await;
    }
    task.abort();
}

/// A streaming connection refused for its token means what the same refusal means to any
/// other call: an authentication error with Exchange's reason, after one fresh token (which a
/// static token cannot give), not a transient failure to reconnect from.
#[tokio::test]
async fn a_refused_streaming_connection_is_an_authentication_error() {
    let sb = sandbox().await;
    let id = app_client(&sb)
        .call(&ews_mail::streaming::SubscribeStreaming::new(
            FolderId::distinguished("inbox"),
        ))
        .await
        .unwrap();
    let refused = client(
        &sb,
        Arc::new(connector::StaticToken(ews_mail::AccessToken::new(
            "not-a-jwt",
        ))),
        ews_mail::MailboxAccess::Impersonate(MAILBOX.into()),
    );
    let op = ews_mail::streaming::GetStreamingEvents::new(vec![id], 1);
    let e = refused
        .open_stream(&op, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Authentication, "{e}");
}

/// A delegate (Adele) watching a shared mailbox (projects@) owns the subscription she made:
/// her GetStreamingEvents is accepted and streams the shared mailbox's new mail, with one
/// subscription all along. Found by the push chaos run, where the sandbox answered
/// `ErrorSubscriptionAccessDenied` (it took the watched mailbox for the owner) and the watcher
/// subscribed again at once, over and over, leaving a subscription behind each time.
#[tokio::test]
async fn a_delegate_streams_a_shared_mailbox_with_one_subscription() {
    let sb = sandbox().await;
    let shared = "projects@contoso.example";
    let c = client(
        &sb,
        user_token(&sb, "adele.vance@contoso.example"),
        MailboxAccess::Shared(shared.into()),
    );
    let folder = c.config().access.folder("inbox");
    let wake = Arc::new(Notify::new());
    let watcher = StreamingWatcher::new(c, folder, wake.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(watcher.run(async move {
        let _ = stop_rx.await;
    }));
    woken(&wake, "after connecting").await;
    sb.admin()
        .inject_mime(
            shared,
            "Message-ID: <shared-1@x>\r\nSubject: s\r\nTo: projects@contoso.example\r\n\r\nhi\r\n",
        )
        .unwrap();
    woken(&wake, "by the shared mailbox's NewMailEvent").await;
    sb.admin()
        .inject_mime(
            shared,
            "Message-ID: <shared-2@x>\r\nSubject: s\r\nTo: projects@contoso.example\r\n\r\nhi\r\n",
        )
        .unwrap();
    // Woken again on the same subscription (a refused one would be made again, and counted).
    woken(&wake, "by the second NewMailEvent").await;
    assert_eq!(sb.admin().ews_subscriptions(), 1, "one subscription, kept");
    assert_eq!(
        sb.request_log().count_operation("Subscribe"),
        1,
        "subscribed once"
    );
    let _ = stop_tx.send(());
    task.await.unwrap();
    assert_eq!(
        sb.admin().ews_subscriptions(),
        0,
        "unsubscribed when stopped"
    );
}
