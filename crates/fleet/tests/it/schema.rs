//! The schema is created, left alone when current, migrated once by workers starting together,
//! and a newer one is refused.

use fleet::{PgStore, StoreError};
use handler::LeaseStore;

use crate::db_or_skip;

async fn version(db: &test_support::postgres::TestDatabase) -> i32 {
    db.client()
        .await
        .query_one("SELECT version FROM fleet_schema", &[])
        .await
        .unwrap()
        .get(0)
}

async fn tables(db: &test_support::postgres::TestDatabase) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_fresh_database_gets_the_schema_and_a_second_connect_changes_nothing() {
    let db = db_or_skip!();
    assert!(tables(&db).await.is_empty());
    let store = PgStore::connect(db.url()).await.unwrap();
    assert_eq!(version(&db).await, PgStore::schema_version());
    assert_eq!(
        tables(&db).await,
        [
            "fleet_config",
            "fleet_config_version",
            "fleet_delta",
            "fleet_ews_sync",
            "fleet_leases",
            "fleet_ledger",
            "fleet_ledger_log",
            "fleet_schema",
            "fleet_source_status",
            "fleet_subscriptions",
            "fleet_threads",
            "fleet_tokens",
            "fleet_workers"
        ]
    );
    let fence = store
        .leases()
        .acquire("s", "w1", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    drop(store);
    // Connecting again is a no-op: same version, the data is still there.
    let again = PgStore::connect(db.url()).await.unwrap();
    assert_eq!(version(&db).await, PgStore::schema_version());
    assert_eq!(again.leases().holders().await.unwrap(), vec![fence]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_starting_together_migrate_once_without_racing() {
    let db = db_or_skip!();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = db.url().to_owned();
        set.spawn(async move { PgStore::connect(&url).await.map(|_| ()) });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(version(&db).await, PgStore::schema_version());
    let rows: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM fleet_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_schema_newer_than_the_program_is_refused_naming_both_versions() {
    let db = db_or_skip!();
    PgStore::connect(db.url()).await.unwrap();
    let newer = PgStore::schema_version() + 3;
    db.client()
        .await
        .execute("UPDATE fleet_schema SET version = $1", &[&newer])
        .await
        .unwrap();
    let e = PgStore::connect(db.url()).await.unwrap_err();
    match &e {
        StoreError::SchemaTooNew { found, known } => {
            assert_eq!((*found, *known), (newer, PgStore::schema_version()));
        }
        other => panic!("want SchemaTooNew, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains(&format!("version {newer}")), "{text}");
    assert!(
        text.contains(&format!("version {}", PgStore::schema_version())),
        "{text}"
    );
    // Nothing was changed by the refused worker.
    assert_eq!(version(&db).await, newer);
}

#[tokio::test]
async fn the_password_never_shows_in_debug_display_or_errors() {
    let db = db_or_skip!();
    const PW: &str = "pw-Very5ecret";
    // The test cluster trusts loopback, so any password connects; it must still never show.
    let url = with_password(db.url(), PW);
    let store = PgStore::connect(&url).await.unwrap();
    let shown = format!(
        "{store:?} {:?} {:?} {:?} {:?}",
        store.ledger(),
        store.leases(),
        store.tokens(),
        store.delta()
    );
    assert!(!shown.contains(PW), "{shown}");
    assert!(shown.contains(db.name()), "the target is named: {shown}");
    // A server that is not there: the error names the target, not the password.
    let nowhere = format!("postgres://ann:{PW}@127.0.0.1:1/db?connect_timeout=2");
    let e = PgStore::connect(&nowhere).await.unwrap_err();
    assert!(matches!(e, StoreError::Connect { .. }), "{e:?}");
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(PW), "{text}");
        assert!(text.contains("ann@127.0.0.1:1/db"), "{text}");
    }
    // Percent-encoded, and in the key-value form.
    for url in [
        "postgres://ann:pw%2DVery5ecret@127.0.0.1:1/db?connect_timeout=2".to_owned(),
        format!("host=127.0.0.1 port=1 user=ann password={PW} dbname=db connect_timeout=2"),
    ] {
        let e = PgStore::connect(&url).await.unwrap_err();
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(
                !text.contains(PW) && !text.contains("pw%2DVery5ecret"),
                "{text}"
            );
        }
    }
}

fn with_password(url: &str, pw: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    format!("{scheme}://{user}:{pw}@{host}")
}
