use std::sync::Arc;

use httpcore::StateStore;
use tokio::sync::{Notify, mpsc};

use super::*;

#[test]
fn client_state_is_random_redacted_and_compared_whole() {
    let a = ClientState::generate();
    let b = ClientState::generate();
    assert_ne!(a, b);
    assert_eq!(a.expose().len(), 64);
    assert!(!format!("{a:?}").contains(a.expose()));
    assert!(a.matches(a.expose()));
    assert!(!a.matches(&a.expose()[..63]));
    assert!(!a.matches(&format!("{}x", a.expose())));
    assert!(!a.matches(""));
    assert!(!a.matches(b.expose()));
}

#[test]
fn the_validation_token_is_decoded() {
    let q = "validationToken=Validation%3A%20Testing%20client%20application%20reachability";
    assert_eq!(
        validation_token(Some(q)).as_deref(),
        Some("Validation: Testing client application reachability")
    );
    assert_eq!(validation_token(Some("other=1")), None);
    assert_eq!(validation_token(None), None);
}

#[tokio::test]
async fn only_notifications_with_the_subscription_and_its_client_state_wake_the_source() {
    let hub = PushHub::new();
    let wake = Arc::new(Notify::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let secret = ClientState::generate();
    hub.register(
        "helpdesk",
        secret.clone(),
        Some("sub-1".into()),
        wake.clone(),
        tx,
    );
    let body = |sub: &str, state: &str, lifecycle: Option<&str>| {
        let mut n = serde_json::json!({"subscriptionId": sub, "clientState": state,
            "changeType": "created", "resourceData": {"id": "AAMk"}});
        if let Some(l) = lifecycle {
            n["lifecycleEvent"] = serde_json::json!(l);
        }
        serde_json::json!({ "value": [n] }).to_string().into_bytes()
    };
    // Forged: wrong secret, right secret for another subscription, no secret at all.
    assert_eq!(hub.answer(None, &body("sub-1", "guess", None)).status, 202);
    assert_eq!(
        hub.answer(None, &body("sub-2", secret.expose(), None))
            .status,
        202
    );
    assert_eq!(
        hub.answer(None, br#"{"value":[{"subscriptionId":"sub-1"}]}"#)
            .status,
        202
    );
    assert_eq!(hub.stats().forged, 3);
    assert_eq!(hub.stats().hints, 0);
    // Not a notification at all.
    assert_eq!(hub.answer(None, b"<html>").status, 400);
    // Genuine: wakes (the permit is stored until the source waits).
    assert_eq!(
        hub.answer(None, &body("sub-1", secret.expose(), None))
            .status,
        202
    );
    assert_eq!(hub.stats().hints, 1);
    tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
        .await
        .expect("woken");
    // A lifecycle event reaches the subscriber too.
    hub.answer(
        None,
        &body("sub-1", secret.expose(), Some("subscriptionRemoved")),
    );
    assert_eq!(rx.recv().await, Some(LifecycleEvent::SubscriptionRemoved));
    assert_eq!(hub.stats().lifecycle, 1);
    // Nothing secret in Debug.
    let n = parse_notifications(&body("sub-1", secret.expose(), None)).unwrap();
    assert!(!format!("{n:?}{hub:?}").contains(secret.expose()));
}

/// In a fleet: what this hub cannot place goes to the channel (where the recorded
/// subscriptions can check it), a wake-up checked elsewhere reaches the source registered here,
/// and a stopped subscriber's source is no longer this hub's.
#[tokio::test]
async fn unknown_notifications_are_forwarded_and_a_wake_from_elsewhere_reaches_the_source() {
    let hub = PushHub::new();
    let (fwd_tx, mut forwarded) = mpsc::channel(1);
    hub.forward_unknown(fwd_tx);
    let secret = ClientState::generate();
    let body = serde_json::json!({"value": [
        {"subscriptionId": "sub-9", "clientState": secret.expose(), "changeType": "created"},
        {"subscriptionId": "sub-9", "clientState": secret.expose(), "changeType": "created"},
        {"subscriptionId": "sub-9", "changeType": "created"},
    ]})
    .to_string();
    assert_eq!(hub.answer(None, body.as_bytes()).status, 202);
    // One fits the channel; the second finds it full and the third carries no secret at all.
    assert_eq!((hub.stats().forwarded, hub.stats().forged), (1, 2));
    let n = forwarded.try_recv().unwrap();
    assert_eq!(n.subscription_id, "sub-9");
    assert!(n.carries(&secret));
    assert!(!n.carries(&ClientState::generate()));

    let wake = Arc::new(Notify::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(!hub.wake("helpdesk", None), "nothing registered yet");
    hub.register(
        "helpdesk",
        secret.clone(),
        Some("sub-9".into()),
        wake.clone(),
        tx,
    );
    assert!(hub.wake(
        "helpdesk",
        Some(LifecycleEvent::parse("subscriptionRemoved"))
    ));
    tokio::time::timeout(std::time::Duration::from_secs(5), wake.notified())
        .await
        .expect("woken");
    assert_eq!(rx.recv().await, Some(LifecycleEvent::SubscriptionRemoved));
    assert_eq!(hub.stats().woken_from_elsewhere, 1);
    assert_eq!(
        LifecycleEvent::SubscriptionRemoved.name(),
        "subscriptionRemoved"
    );
    hub.unregister("helpdesk");
    assert!(!hub.wake("helpdesk", None));
}

#[tokio::test]
async fn the_file_store_keeps_records_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subs.json");
    let store = FileSubscriptionStore::open(&path).unwrap();
    let rec = SubscriptionRecord::new(
        "id-1",
        "users/x/mailFolders('inbox')/messages",
        "https://hooks.example/n",
        ClientState::generate(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    store.save("helpdesk", &rec).await.unwrap();
    // The stores show no clientState in `Debug`.
    let memory = MemorySubscriptionStore::default();
    memory.save("helpdesk", &rec).await.unwrap();
    for shown in [format!("{store:?}"), format!("{memory:?}")] {
        assert!(!shown.contains(rec.client_state.expose()), "{shown}");
    }
    let again = FileSubscriptionStore::open(&path).unwrap();
    assert_eq!(again.load("helpdesk").await.unwrap(), Some(rec));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    again.clear("helpdesk").await.unwrap();
    assert_eq!(
        FileSubscriptionStore::open(&path)
            .unwrap()
            .load("helpdesk")
            .await
            .unwrap(),
        None
    );
}
