//! PgLedger agrees with the local `handler::Ledger` on the same entries, takes prefixes
//! literally, expires what was acknowledged, and refuses writes under a stale fence.

use std::time::{Duration, SystemTime};

use fleet::PgStore;
use handler::{Entry, Fence, LeaseStore, Ledger, LedgerError, LedgerStore, Record};

use crate::db_or_skip;

fn failed(n: u32) -> Entry {
    Entry::Failed {
        attempts: n,
        reason: format!("try {n}"),
    }
}

fn handled(project: Option<&str>) -> Entry {
    Entry::Handled {
        project: project.map(str::to_owned),
    }
}

/// The same batches of entries for both ledgers: sources whose names hold LIKE's wildcards.
fn batches() -> Vec<Vec<(String, Entry)>> {
    let k = |s: &str| s.to_owned();
    vec![
        vec![
            (k("s_1|a"), failed(1)),
            (k("s_1|a"), failed(2)),
            (k("s_1|a"), handled(Some("payments"))),
            (k("s_1|b"), handled(None)),
            (k("sx1|c"), handled(None)),
            (k("50%|d"), handled(Some("x"))),
            (k("50x|e"), handled(None)),
        ],
        vec![
            (k("s_1|a"), Entry::Notifying),
            (
                k("s_1|a"),
                Entry::Notified {
                    from: "support@contoso.example".into(),
                },
            ),
            (k("s_1|a"), Entry::Acknowledged),
            (k("s_1|b"), Entry::AcknowledgedByAbsence),
            (
                k("s_1|f"),
                Entry::Parked {
                    reason: "always fails".into(),
                },
            ),
            (k("s_1|g"), failed(1)),
        ],
        vec![(k("s_1|h"), handled(None)), (k("sx1|c"), Entry::Notifying)],
    ]
}

/// A record without the time of its acknowledgement (the local ledger keeps whole seconds of
/// this process's clock, the database microseconds of its own), which is compared apart.
fn timeless(mut r: Record) -> Record {
    r.acknowledged_at = None;
    r
}

/// The database's ledger and a local one, each given [`batches`].
async fn both_given_the_batches(store: &PgStore) -> (fleet::PgLedger, Ledger) {
    let pg = store.ledger();
    let local = Ledger::in_memory();
    for batch in batches() {
        LedgerStore::append(&local, batch.clone(), None)
            .await
            .unwrap();
        pg.append(batch, None).await.unwrap();
    }
    (pg, local)
}

/// The ledger's log in order: each entry's key, its `column` and its epoch.
async fn log<T>(
    db: &test_support::postgres::TestDatabase,
    column: &str,
) -> Vec<(String, T, Option<i64>)>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    db.client()
        .await
        .query(
            &format!("SELECT key, {column}, epoch FROM fleet_ledger_log ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn keys(mut v: Vec<(String, Record)>) -> Vec<String> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test]
async fn folds_like_the_local_ledger_and_takes_prefixes_literally() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let (pg, local) = both_given_the_batches(&store).await;
    let all = [
        "s_1|a", "s_1|b", "sx1|c", "50%|d", "50x|e", "s_1|f", "s_1|g", "s_1|h", "nope",
    ];
    for key in all {
        let want = LedgerStore::get(&local, key).await.unwrap();
        let got = pg.get(key).await.unwrap();
        assert_eq!(
            got.as_ref().map(|r| r.acknowledged_at.is_some()),
            want.as_ref().map(|r| r.acknowledged_at.is_some()),
            "{key}"
        );
        assert_eq!(got.map(timeless), want.map(timeless), "{key}");
    }
    // A page's lookup in one query answers as the single lookups do, in order, unknown keys
    // included (a key twice too).
    let page: Vec<String> = all
        .iter()
        .rev()
        .chain(["s_1|a"].iter())
        .map(|k| (*k).to_owned())
        .collect();
    let many = pg.get_many(&page).await.unwrap();
    assert_eq!(many.len(), page.len());
    for (key, got) in page.iter().zip(many) {
        assert_eq!(got, pg.get(key).await.unwrap(), "{key}");
    }
    assert!(pg.get_many(&[]).await.unwrap().is_empty());
    let a = pg.get("s_1|a").await.unwrap().unwrap();
    assert_eq!((a.attempts, a.handled, a.acknowledged), (2, true, true));
    assert_eq!(a.notified_from.as_deref(), Some("support@contoso.example"));
    // `_` and `%` are literal: "s_1|" is not "sx1|", "50%|" is not "50x|".
    for prefix in ["s_1|", "sx1|", "50%|", "50x|", "s", "", "s_%"] {
        assert_eq!(
            keys(pg.unacknowledged(prefix).await.unwrap()),
            keys(LedgerStore::unacknowledged(&local, prefix).await.unwrap()),
            "prefix {prefix:?}"
        );
    }
    assert_eq!(
        keys(pg.unacknowledged("s_1|").await.unwrap()),
        ["s_1|f", "s_1|h"]
    );
    assert_eq!(keys(pg.unacknowledged("50%|").await.unwrap()), ["50%|d"]);
    // Every entry is in the log, in order, without a fence.
    let log: Vec<(String, serde_json::Value, Option<i64>)> = log(&db, "entry").await;
    let want: Vec<(String, serde_json::Value, Option<i64>)> = batches()
        .into_iter()
        .flatten()
        .map(|(k, e)| (k, serde_json::to_value(e).unwrap(), None))
        .collect();
    assert_eq!(log, want);
}

#[tokio::test]
async fn expire_forgets_what_was_acknowledged_before_the_cutoff_with_its_log() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let (pg, local) = both_given_the_batches(&store).await;
    // Nothing was acknowledged an hour ago.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(pg.expire(hour_ago).await.unwrap(), 0);
    let later = SystemTime::now() + Duration::from_secs(3600);
    let want = LedgerStore::expire(&local, later).await.unwrap();
    assert_eq!(want, 2);
    assert_eq!(pg.expire(later).await.unwrap(), want);
    assert_eq!(pg.get("s_1|a").await.unwrap(), None);
    assert_eq!(pg.get("s_1|b").await.unwrap(), None);
    assert!(
        pg.get("s_1|f").await.unwrap().is_some(),
        "parked, not acknowledged: kept"
    );
    let left = db
        .query_i64("SELECT count(*) FROM fleet_ledger_log WHERE key IN ('s_1|a', 's_1|b')")
        .await;
    assert_eq!(left, 0, "their log rows went with them");
    let kept = db.query_i64("SELECT count(*) FROM fleet_ledger_log").await;
    assert_eq!(kept, 7, "the other keys' entries stay");
    assert_eq!(pg.expire(later).await.unwrap(), 0);
}

#[tokio::test]
async fn a_stale_fence_records_nothing_and_the_current_one_does() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let (pg, leases) = (store.ledger(), store.leases());
    let old = leases
        .acquire("s_1", "w1", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    pg.append(vec![("s_1|a".into(), handled(None))], Some(&old))
        .await
        .unwrap();
    // A fence that never held the lease is refused at once.
    let forged = Fence::new("s_1", "w9", old.epoch);
    assert!(matches!(
        pg.append(vec![("s_1|z".into(), handled(None))], Some(&forged))
            .await,
        Err(LedgerError::Fenced { .. })
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Expired (by the database's clock) but not yet taken: refused already.
    let e = pg
        .append(vec![("s_1|b".into(), handled(None))], Some(&old))
        .await
        .unwrap_err();
    match e {
        LedgerError::Fenced { fence } => assert_eq!(fence, old),
        other => panic!("want Fenced, got {other:?}"),
    }
    let new = leases
        .acquire("s_1", "w2", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(new.epoch > old.epoch);
    // Taken over: the old holder's batch (an existing key and a new one) is refused whole.
    let e = pg
        .append(
            vec![
                ("s_1|a".into(), Entry::Acknowledged),
                ("s_1|c".into(), handled(None)),
            ],
            Some(&old),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, LedgerError::Fenced { .. }), "{e:?}");
    assert!(!pg.get("s_1|a").await.unwrap().unwrap().acknowledged);
    assert_eq!(pg.get("s_1|b").await.unwrap(), None);
    assert_eq!(pg.get("s_1|c").await.unwrap(), None);
    // The current holder writes.
    pg.append(vec![("s_1|a".into(), Entry::Acknowledged)], Some(&new))
        .await
        .unwrap();
    assert!(pg.get("s_1|a").await.unwrap().unwrap().acknowledged);
    // Released: its fence is refused too.
    leases.release(&new).await.unwrap();
    assert!(matches!(
        pg.append(vec![("s_1|d".into(), handled(None))], Some(&new))
            .await,
        Err(LedgerError::Fenced { .. })
    ));
    // The audit: every logged entry carries the epoch of a holder, and none was recorded
    // under an epoch after that epoch's lease had been taken over.
    let log: Vec<(String, Option<String>, Option<i64>)> = log(&db, "worker").await;
    let e = |f: &Fence| Some(i64::try_from(f.epoch).unwrap());
    assert_eq!(
        log,
        [
            ("s_1|a".into(), Some("w1".into()), e(&old)),
            ("s_1|a".into(), Some("w2".into()), e(&new)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_to_the_same_keys_lose_nothing() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    // Eight tasks each fold a different entry kind into the same new keys, in batches whose
    // key order differs: nothing may be lost to a race on a new row, and nothing deadlocks.
    for t in 0..8u32 {
        let pg = store.ledger();
        set.spawn(async move {
            for round in 0..10 {
                let mut batch: Vec<(String, Entry)> = (0..5)
                    .map(|i| {
                        let entry = match t % 4 {
                            0 => handled(Some("p")),
                            1 => Entry::Notified {
                                from: format!("n{t}"),
                            },
                            2 => Entry::Parked { reason: "r".into() },
                            _ => failed(t),
                        };
                        (format!("k|{round}-{i}"), entry)
                    })
                    .collect();
                if t % 2 == 1 {
                    batch.reverse();
                }
                pg.append(batch, None).await.unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let pg = store.ledger();
    for round in 0..10 {
        for i in 0..5 {
            let r = pg.get(&format!("k|{round}-{i}")).await.unwrap().unwrap();
            assert!(r.handled && r.notification_attempted && r.parked.is_some());
            assert!(r.attempts == 3 || r.attempts == 7, "{r:?}");
        }
    }
    let logged = db.query_i64("SELECT count(*) FROM fleet_ledger_log").await;
    assert_eq!(logged, 8 * 10 * 5);
}

/// Threads agree with the local ledger's: the first root a reference was remembered under
/// stays, the nearest remembered reference wins, and expiry forgets them.
#[tokio::test]
async fn threads_are_remembered_once_found_nearest_first_and_expired() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let pg = store.ledger();
    let local = Ledger::in_memory();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    for l in [&local as &dyn LedgerStore, &pg] {
        let pairs = |refs: &[&str], root: &str| {
            refs.iter()
                .map(|r| ((*r).to_owned(), root.to_owned()))
                .collect::<Vec<_>>()
        };
        l.remember_threads(&pairs(&["a@x", "conversation:ab"], "src|1"))
            .await
            .unwrap();
        // A later message of the same conversation does not move it, in a later call or in
        // the same one.
        let mut page = pairs(&["b@x", "conversation:ab"], "src|2");
        page.extend(pairs(&["b@x"], "src|9"));
        l.remember_threads(&page).await.unwrap();
        l.remember_threads(&[]).await.unwrap();
    }
    for refs in [
        s(&["zz@x", "b@x", "a@x"]),
        s(&["conversation:ab"]),
        s(&["a@x", "b@x"]),
        s(&["nothing@x"]),
        s(&[]),
    ] {
        let want = LedgerStore::find_thread(&local, &refs).await.unwrap();
        assert_eq!(pg.find_thread(&refs).await.unwrap(), want, "{refs:?}");
    }
    let by_b = pg.find_thread(&s(&["zz@x", "b@x"])).await.unwrap().unwrap();
    assert_eq!((by_b.root.as_str(), by_b.by.as_str()), ("src|2", "b@x"));
    let conv = pg
        .find_thread(&s(&["conversation:ab"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.root, "src|1");
    pg.expire(SystemTime::now() - Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(pg.find_thread(&s(&["a@x"])).await.unwrap().is_some());
    pg.expire(SystemTime::now() + Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(pg.find_thread(&s(&["a@x"])).await.unwrap().is_none());
}
