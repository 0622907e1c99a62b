//! PgDeltaStore keeps graph-mail's delta state, and PgEwsSyncStore ews-mail's sync state, for
//! whichever worker holds the source next.

use ews_mail::sync::{SourceSyncState, SourceSyncStore};
use fleet::PgStore;
use graph_mail::delta::{DeltaState, DeltaStore};

use crate::db_or_skip;

#[tokio::test]
async fn state_round_trips_between_workers_and_an_unreadable_row_is_an_error() {
    let db = db_or_skip!();
    let one = PgStore::connect(db.url()).await.unwrap().delta();
    let two = PgStore::connect(db.url()).await.unwrap().delta();
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
    db.client()
        .await
        .execute(
            "UPDATE fleet_delta SET state = '{\"version\": 99}' WHERE key = $1",
            &[&key],
        )
        .await
        .unwrap();
    let e = one.load(key).await.unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Configuration);
    assert!(e.to_string().contains(key), "{e}");
}

#[tokio::test]
async fn an_ews_sync_state_round_trips_between_workers_and_an_unreadable_row_is_an_error() {
    let db = db_or_skip!();
    let one = PgStore::connect(db.url()).await.unwrap().ews_sync();
    let two = PgStore::connect(db.url()).await.unwrap().ews_sync();
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
    // A state whose SyncState is empty is not one ews-mail wrote.
    db.client()
        .await
        .execute(
            "UPDATE fleet_ews_sync SET state = '{\"version\": 1, \"sync_state\": \"\"}' \
             WHERE key = $1",
            &[&key],
        )
        .await
        .unwrap();
    let e = one.load(key).await.unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Configuration);
    assert!(e.to_string().contains(key), "{e}");
    assert!(e.to_string().contains("fleet_ews_sync"), "{e}");
}
