//! PgDeltaStore keeps graph-mail's delta state, and PgEwsSyncStore ews-mail's sync state, for
//! whichever worker holds the source next.

use ews_mail::sync::SourceSyncState;
use fleet::PgStore;
use graph_mail::delta::DeltaState;
use httpcore::{KeptState, StateStore};

use crate::db_or_skip;
use test_support::postgres::TestDatabase;

/// Two workers' stores on the database.
async fn two_workers(db: &TestDatabase) -> (PgStore, PgStore) {
    let one = PgStore::connect(db.url()).await.unwrap();
    (one, PgStore::connect(db.url()).await.unwrap())
}

/// Writes `state` into the row of `key` in `table`, as no worker would.
async fn spoil(db: &TestDatabase, table: &str, key: &str, state: &str) {
    db.client()
        .await
        .execute(
            &format!("UPDATE {table} SET state = '{state}' WHERE key = $1"),
            &[&key],
        )
        .await
        .unwrap();
}

/// Asserts that `e`, the error of loading the row of `key`, is a configuration error naming it.
#[track_caller]
fn assert_unreadable(e: &connector::Error, key: &str) {
    assert_eq!(e.kind(), connector::ErrorKind::Configuration);
    assert!(e.to_string().contains(key), "{e}");
}

#[tokio::test]
async fn state_round_trips_between_workers_and_an_unreadable_row_is_an_error() {
    let db = db_or_skip!();
    let (one, two) = two_workers(&db).await;
    let (one, two) = (one.delta(), two.delta());
    let key = "users/helpdesk@contoso.example/mailFolders/inbox";
    assert_eq!(one.load(key).await.unwrap(), None);
    let state = DeltaState::from_json(
        r#"{"version":1,"delta_link":"https://graph.example/v1.0/delta?$deltatoken=7","pending":[],"next_seq":0}"#,
    )
    .unwrap();
    one.save(key, &state).await.unwrap();
    assert_eq!(two.load(key).await.unwrap(), Some(state.clone()));
    assert_eq!(
        two.load(key).await.unwrap().unwrap().delta_link(),
        Some("https://graph.example/v1.0/delta?$deltatoken=7")
    );
    one.save("other", &DeltaState::new()).await.unwrap();
    two.clear("other").await.unwrap();
    assert_eq!(one.load("other").await.unwrap(), None);
    assert_eq!(one.load(key).await.unwrap(), Some(state));
    spoil(&db, "fleet_delta", key, r#"{"version": 99}"#).await;
    assert_unreadable(&one.load(key).await.unwrap_err(), key);
}

#[tokio::test]
async fn an_ews_sync_state_round_trips_between_workers_and_an_unreadable_row_is_an_error() {
    let db = db_or_skip!();
    let (one, two) = two_workers(&db).await;
    let (one, two) = (one.ews_sync(), two.ews_sync());
    let key = "ews:projects@contoso.example/inbox";
    assert_eq!(one.load(key).await.unwrap(), None);
    let state = SourceSyncState::from_json(
        r#"{"version":1,"sync_state":"H4sIAAAAAAAEAO29B2AcSZYlJi9tynt","pending":[],"next_seq":0}"#,
    )
    .unwrap();
    one.save(key, &state).await.unwrap();
    let back = two.load(key).await.unwrap().unwrap();
    assert_eq!(back, state);
    assert_eq!(back.sync_state(), Some("H4sIAAAAAAAEAO29B2AcSZYlJi9tynt"));
    // Cleared by one worker (its next sync starts from the beginning), gone for the other.
    one.save("other", &SourceSyncState::new()).await.unwrap();
    two.clear("other").await.unwrap();
    assert_eq!(one.load("other").await.unwrap(), None);
    assert_eq!(one.load(key).await.unwrap(), Some(state));
    // A state whose SyncState is empty is not one ews-mail wrote.
    spoil(
        &db,
        "fleet_ews_sync",
        key,
        r#"{"version": 1, "sync_state": ""}"#,
    )
    .await;
    let e = one.load(key).await.unwrap_err();
    assert_unreadable(&e, key);
    assert!(e.to_string().contains("fleet_ews_sync"), "{e}");
}
