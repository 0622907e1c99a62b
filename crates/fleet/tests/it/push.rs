//! Push mode in a fleet: PgSubscriptionStore keeps each source's subscription for its next
//! holder (its clientState never in Debug), and PgWakeups carries a wake-up from the worker a
//! notification reached to every listening worker.

use std::time::Duration;

use fleet::{PgStore, Wakeup};
use graph_mail::push::{ClientState, SubscriptionRecord};
use httpcore::StateStore;

use crate::db_or_skip;

fn record(id: &str, secret: &ClientState) -> SubscriptionRecord {
    SubscriptionRecord::new(
        id,
        "users/helpdesk@contoso.example/mailFolders('inbox')/messages",
        "https://mail.example.com/graph/notify",
        secret.clone(),
        time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap(),
    )
}

#[tokio::test]
async fn a_record_saved_by_one_worker_is_what_the_next_loads_and_finds_by_id() {
    let db = db_or_skip!();
    let one = PgStore::connect(db.url()).await.unwrap().subscriptions();
    let two = PgStore::connect(db.url()).await.unwrap().subscriptions();
    assert_eq!(one.load("helpdesk").await.unwrap(), None);
    let secret = ClientState::generate();
    let rec = record("sub-1", &secret);
    one.save("helpdesk", &rec).await.unwrap();
    assert_eq!(two.load("helpdesk").await.unwrap(), Some(rec.clone()));
    assert_eq!(
        two.find("sub-1").await.unwrap(),
        Some(("helpdesk".to_owned(), rec.clone()))
    );
    assert_eq!(two.find("sub-2").await.unwrap(), None);
    // Renewed (a later expiry) and replaced (another subscription) in place: one row per source.
    let mut renewed = rec.clone();
    renewed.expiration += time::Duration::days(1);
    two.save("helpdesk", &renewed).await.unwrap();
    assert_eq!(one.load("helpdesk").await.unwrap(), Some(renewed));
    let other = ClientState::generate();
    one.save("helpdesk", &record("sub-2", &other))
        .await
        .unwrap();
    one.save("sales", &record("sub-3", &secret)).await.unwrap();
    assert_eq!(one.find("sub-1").await.unwrap(), None);
    let all = two.all().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|(k, r)| (k.as_str(), r.id.as_str()))
            .collect::<Vec<_>>(),
        [("helpdesk", "sub-2"), ("sales", "sub-3")]
    );
    assert!(all[0].1.client_state.matches(other.expose()));
    // The secret is nowhere in Debug.
    assert!(!format!("{one:?}{all:?}").contains(other.expose()));
    two.clear("helpdesk").await.unwrap();
    assert_eq!(one.load("helpdesk").await.unwrap(), None);
    assert_eq!(one.find("sub-2").await.unwrap(), None);
    // A row whose expiry cannot be a date is an error naming the source.
    db.client()
        .await
        .execute(
            "UPDATE fleet_subscriptions SET expires_at = $1 WHERE key = 'sales'",
            &[&i64::MAX],
        )
        .await
        .unwrap();
    let e = one.load("sales").await.unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Configuration);
    assert!(e.to_string().contains("sales"), "{e}");
    assert!(!e.to_string().contains(secret.expose()), "{e}");
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Wakeup>) -> Wakeup {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a wake-up in time")
        .expect("still listening")
}

#[tokio::test]
async fn a_wake_up_sent_by_one_worker_reaches_every_listener_and_survives_a_dropped_connection() {
    let db = db_or_skip!();
    let one = PgStore::connect(db.url()).await.unwrap().wakeups();
    let two = PgStore::connect(db.url()).await.unwrap().wakeups();
    let mut a = one.listen();
    let mut b = two.listen();
    // LISTEN is issued on the listeners' own tasks: send until both have heard one.
    let probe = async {
        loop {
            one.send("probe", None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = probe => unreachable!(),
        _ = async { next(&mut a).await; next(&mut b).await } => {}
    }
    // Drain the probes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while a.try_recv().is_ok() {}
    while b.try_recv().is_ok() {}
    one.send("helpdesk", Some("subscriptionRemoved"))
        .await
        .unwrap();
    for rx in [&mut a, &mut b] {
        let w = next(rx).await;
        assert_eq!(
            (w.source.as_deref(), w.lifecycle.as_deref()),
            (Some("helpdesk"), Some("subscriptionRemoved"))
        );
    }
    // The database drops every connection: the listener comes back and says so (its sources
    // are woken, a wake-up may have been lost), then hears wake-ups again.
    db.terminate_connections().await;
    let w = next(&mut b).await;
    assert_eq!(w.source, None, "{w:?}");
    loop {
        match two.send("sales", None).await {
            Ok(()) => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    loop {
        let w = next(&mut b).await;
        if w.source.as_deref() == Some("sales") {
            break;
        }
    }
}

/// Fenced by a source's lease, a store writes only while that lease holds: a worker that lost
/// the source cannot overwrite (or clear) the record its next holder keeps.
#[tokio::test]
async fn a_fenced_store_writes_only_under_its_lease() {
    use handler::LeaseStore;
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let leases = store.leases();
    let ttl = Duration::from_secs(60);
    let old = leases
        .acquire("helpdesk", "w1", ttl)
        .await
        .unwrap()
        .unwrap();
    let secret = ClientState::generate();
    let first = store.subscriptions().fenced(&old);
    first
        .save("helpdesk", &record("sub-1", &secret))
        .await
        .unwrap();
    // w1 loses the source to w2.
    leases.release(&old).await.unwrap();
    let new = leases
        .acquire("helpdesk", "w2", ttl)
        .await
        .unwrap()
        .unwrap();
    let second = store.subscriptions().fenced(&new);
    second
        .save("helpdesk", &record("sub-2", &secret))
        .await
        .unwrap();
    let e = first
        .save("helpdesk", &record("sub-3", &secret))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no longer holds the lease"), "{e}");
    assert!(first.clear("helpdesk").await.is_err());
    assert_eq!(
        store
            .subscriptions()
            .load("helpdesk")
            .await
            .unwrap()
            .map(|r| r.id),
        Some("sub-2".to_owned())
    );
    second.clear("helpdesk").await.unwrap();
    assert_eq!(store.subscriptions().load("helpdesk").await.unwrap(), None);
}
