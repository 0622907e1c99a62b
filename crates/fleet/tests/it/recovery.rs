//! Every backend survives the loss of its connections (a server restart, a network cut): at
//! most the operation that met the dead connection fails, with the error the caller retries on,
//! and the next goes through the pool on a new connection.

use std::time::Duration;

use fleet::PgStore;
use graph_mail::delta::DeltaState;
use handler::{Entry, LeaseError, LeaseStore, LedgerError, LedgerStore};
use httpcore::StateStore;
use msauth::TokenStore;

use crate::db_or_skip;

/// Runs `op` until it succeeds, at most twice; a first failure must pass `retryable`.
macro_rules! at_most_one_failure {
    ($op:expr, $retryable:expr) => {{
        match $op.await {
            Ok(v) => v,
            Err(e) => {
                assert!($retryable(&e), "not a retryable error: {e:?}");
                $op.await
                    .expect("the next operation after a failure goes through")
            }
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_backend_recovers_after_every_session_was_terminated() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let (ledger, leases, delta, tokens) = (
        store.ledger(),
        store.leases(),
        store.delta(),
        store.tokens(),
    );
    let ttl = Duration::from_secs(60);
    // Fill the pool with several open connections.
    let fence = leases.acquire("s", "w1", ttl).await.unwrap().unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (l, f) = (ledger.clone(), fence.clone());
        set.spawn(async move {
            l.append(
                vec![(format!("s|{i}"), Entry::Handled { project: None })],
                Some(&f),
            )
            .await
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    for round in 0..3 {
        assert!(
            db.terminate_connections().await >= 1,
            "round {round}: sessions were open"
        );
        // The ledger: a failure is Backend("postgres"), which the pipeline retries later.
        at_most_one_failure!(
            ledger.append(
                vec![(format!("s|{round}"), Entry::Acknowledged)],
                Some(&fence)
            ),
            |e: &LedgerError| matches!(
                e,
                LedgerError::Backend {
                    backend: "postgres",
                    ..
                }
            )
        );
        assert!(
            ledger
                .get(&format!("s|{round}"))
                .await
                .unwrap()
                .unwrap()
                .acknowledged
        );
        db.terminate_connections().await;
        assert!(at_most_one_failure!(
            leases.renew(&fence, ttl),
            |e: &LeaseError| matches!(e, LeaseError::Unavailable { .. })
        ));
        db.terminate_connections().await;
        at_most_one_failure!(
            delta.save("k", &DeltaState::new()),
            |e: &connector::Error| e.is_retryable()
        );
        assert!(delta.load("k").await.unwrap().is_some());
    }
    // The blocking token store too.
    db.terminate_connections().await;
    tokio::task::spawn_blocking(move || {
        let key = msauth::CacheKey::new(
            &msauth::Authority::custom(
                msauth::Endpoints::new("https://l.example/a", "https://l.example/t").unwrap(),
            ),
            "app",
            None,
            &["x"],
        );
        let first = tokens.load(&key);
        if let Err(e) = &first {
            assert!(matches!(e, msauth::CacheError::Io { .. }), "{e:?}");
            tokens.load(&key).unwrap();
        }
        let _g = tokens.lock().unwrap();
    })
    .await
    .unwrap();
}
