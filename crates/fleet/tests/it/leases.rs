//! PgLeases has handler::LocalLeases' semantics, by the database's clock.

use std::time::Duration;

use fleet::PgStore;
use handler::LeaseStore;

use crate::db_or_skip;

#[tokio::test]
async fn a_lease_is_exclusive_until_released_or_expired_and_epochs_grow() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    // Two workers, each with its own pool, as two processes would be.
    let (l1, l2) = (
        store.leases(),
        PgStore::connect(db.url()).await.unwrap().leases(),
    );
    let ttl = Duration::from_secs(60);
    let a = l1.acquire("s", "w1", ttl).await.unwrap().unwrap();
    assert_eq!(a.epoch, 1);
    assert!(l2.acquire("s", "w2", ttl).await.unwrap().is_none());
    assert!(l1.renew(&a, ttl).await.unwrap());
    // The holder acquiring again gets a new, higher epoch; its old fence is stale.
    let a2 = l1.acquire("s", "w1", ttl).await.unwrap().unwrap();
    assert_eq!(a2.epoch, 2);
    assert!(!l1.renew(&a, ttl).await.unwrap());
    l1.release(&a2).await.unwrap();
    assert!(
        !l1.renew(&a2, ttl).await.unwrap(),
        "a released lease is lost"
    );
    let b = l2.acquire("s", "w2", ttl).await.unwrap().unwrap();
    assert_eq!(b.epoch, 3, "epochs grow across a release");
    // An expired lease is taken over at a higher epoch, and the old holder cannot renew.
    let short = l1
        .acquire("t", "w1", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert!(l2.acquire("t", "w2", ttl).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !l1.renew(&short, ttl).await.unwrap(),
        "expired: not renewable"
    );
    let c = l2.acquire("t", "w2", ttl).await.unwrap().unwrap();
    assert!(c.epoch > short.epoch);
    assert!(!l1.renew(&short, ttl).await.unwrap());
    // The old holder's release does not free the new holder's lease.
    l1.release(&short).await.unwrap();
    assert_eq!(l1.holders().await.unwrap(), vec![b.clone(), c.clone()]);
    assert_eq!(l2.holders().await.unwrap(), vec![b, c]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_racing_for_a_free_lease_get_one_holder() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    for round in 0..5 {
        let source = format!("src{round}");
        let mut set = tokio::task::JoinSet::new();
        for w in 0..6 {
            let (l, source) = (store.leases(), source.clone());
            set.spawn(async move {
                l.acquire(&source, &format!("w{w}"), Duration::from_secs(60))
                    .await
                    .unwrap()
            });
        }
        let mut won = Vec::new();
        while let Some(r) = set.join_next().await {
            won.extend(r.unwrap());
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        assert_eq!(won[0].epoch, 1);
    }
}

#[tokio::test]
async fn heartbeats_expire_and_leaving_is_immediate() {
    let db = db_or_skip!();
    let l = PgStore::connect(db.url()).await.unwrap().leases();
    let v = l.heartbeat("w1", Duration::from_millis(200)).await.unwrap();
    assert_eq!(v.live_workers, ["w1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = l.heartbeat("w2", Duration::from_secs(60)).await.unwrap();
    assert_eq!(v.live_workers, ["w2"]);
    let v = l.heartbeat("w0", Duration::from_secs(60)).await.unwrap();
    assert_eq!(v.live_workers, ["w0", "w2"], "sorted, this worker included");
    l.heartbeat("w3", Duration::from_secs(60)).await.unwrap();
    l.leave("w2").await.unwrap();
    let v = l.heartbeat("w3", Duration::from_secs(60)).await.unwrap();
    assert_eq!(v.live_workers, ["w0", "w3"]);
    // A heartbeat renews: w1 is back once it beats again.
    let v = l.heartbeat("w1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(v.live_workers, ["w0", "w1", "w3"]);
}

#[tokio::test]
async fn renew_all_renews_every_held_lease_in_one_request_and_says_which_were_lost() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let leases = store.leases();
    let local = handler::LocalLeases::new();
    let ttl = Duration::from_secs(60);
    let short = Duration::from_millis(200);
    let mut fences = Vec::new();
    let mut local_fences = Vec::new();
    for (i, t) in [ttl, short, ttl, ttl].into_iter().enumerate() {
        let name = format!("s{i}");
        fences.push(leases.acquire(&name, "w1", t).await.unwrap().unwrap());
        local_fences.push(local.acquire(&name, "w1", t).await.unwrap().unwrap());
    }
    // s1 runs out and is taken over; s2 is released; s0 and s3 are still held.
    tokio::time::sleep(Duration::from_millis(400)).await;
    leases.acquire("s1", "w2", ttl).await.unwrap().unwrap();
    local.acquire("s1", "w2", ttl).await.unwrap().unwrap();
    leases.release(&fences[2]).await.unwrap();
    local.release(&local_fences[2]).await.unwrap();
    let held = leases.renew_all(&fences, ttl).await.unwrap();
    assert_eq!(held, [true, false, false, true]);
    // The same answers as the reference backend's one-by-one renewal.
    assert_eq!(local.renew_all(&local_fences, ttl).await.unwrap(), held);
    assert!(leases.renew_all(&[], ttl).await.unwrap().is_empty());
    // What was renewed is held for the new time.
    let holders = leases.holders().await.unwrap();
    assert!(holders.contains(&fences[0]) && holders.contains(&fences[3]));
}
