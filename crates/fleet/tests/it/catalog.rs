//! The configuration kept in the database, and the fleet's status.

use std::time::Duration;

use fleet::{EntryKind, PgStore, SourceEvent};
use handler::LeaseStore;

use crate::db_or_skip;

#[tokio::test]
async fn every_change_moves_the_version_and_the_entries_come_back_as_put() {
    let db = db_or_skip!();
    let catalog = PgStore::connect(db.url()).await.unwrap().catalog();
    assert_eq!(catalog.version().await.unwrap(), 0);
    assert_eq!(catalog.entries().await.unwrap(), (0, vec![]));
    catalog
        .put(
            EntryKind::Source,
            "box1",
            "name = \"box1\"\nkind = \"graph\"\n",
        )
        .await
        .unwrap();
    catalog
        .put(EntryKind::App, "app1", "name = \"app1\"\n")
        .await
        .unwrap();
    // Replacing an entry is a change too.
    catalog
        .put(
            EntryKind::Source,
            "box1",
            "name = \"box1\"\nkind = \"ews\"\n",
        )
        .await
        .unwrap();
    let (version, entries) = catalog.entries().await.unwrap();
    assert_eq!(version, 3);
    let listed: Vec<(EntryKind, &str, &str)> = entries
        .iter()
        .map(|e| (e.kind, e.name.as_str(), e.toml.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            (EntryKind::App, "app1", "name = \"app1\"\n"),
            (
                EntryKind::Source,
                "box1",
                "name = \"box1\"\nkind = \"ews\"\n"
            ),
        ]
    );
    assert!(catalog.remove(EntryKind::Source, "box1").await.unwrap());
    // Removing what is not there changes nothing.
    assert!(!catalog.remove(EntryKind::Source, "box1").await.unwrap());
    assert_eq!(catalog.version().await.unwrap(), 4);
    assert_eq!(catalog.entries().await.unwrap().1.len(), 1);
}

#[tokio::test]
async fn the_fleet_status_joins_leases_reports_owed_acknowledgements_and_workers() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let (leases, status, ledger) = (store.leases(), store.status(), store.ledger());
    leases
        .heartbeat("w1", Duration::from_secs(60))
        .await
        .unwrap();
    let fence = leases
        .acquire("a", "w1", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    status
        .record("a", "w1", &SourceEvent::Started { waiting: Some(7) })
        .await
        .unwrap();
    let arrived = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    status
        .record(
            "a",
            "w1",
            &SourceEvent::OldestWaiting {
                received: Some(arrived),
            },
        )
        .await
        .unwrap();
    status
        .record("a", "w1", &SourceEvent::Finished)
        .await
        .unwrap();
    status
        .record(
            "b",
            "w1",
            &SourceEvent::Offline {
                reason: Some("AADSTS65001: consent".into()),
            },
        )
        .await
        .unwrap();
    // Still OFFLINE: since when does not move.
    let first = status.fleet(&["b".into()]).await.unwrap().sources[0].offline_since;
    status
        .record("b", "w1", &SourceEvent::Offline { reason: None })
        .await
        .unwrap();
    handler::LedgerStore::append(
        &ledger,
        vec![
            ("a|1".into(), handler::Entry::Handled { project: None }),
            ("a|2".into(), handler::Entry::Handled { project: None }),
            ("a|2".into(), handler::Entry::Acknowledged),
        ],
        Some(&fence),
    )
    .await
    .unwrap();
    let fleet = status
        .fleet(&["a".into(), "b".into(), "c".into()])
        .await
        .unwrap();
    let [a, b, c] = &fleet.sources[..] else {
        panic!("{fleet:?}")
    };
    assert_eq!(
        a.lease.as_ref().map(|l| (l.0.as_str(), l.1)),
        Some(("w1", 1))
    );
    assert_eq!((a.online, a.waiting, a.owed), (Some(true), Some(7), 1));
    assert!(a.last_pass.0.is_some() && a.last_pass.1.is_some());
    assert_eq!(a.oldest_waiting, Some(arrived));
    assert_eq!(b.online, Some(false));
    assert!(b.lease.is_none());
    assert!(b.offline_since.is_some());
    assert_eq!(b.offline_since, first);
    assert_eq!((c.online, c.owed), (None, 0));
    assert_eq!(fleet.workers.len(), 1);
    assert_eq!(fleet.workers[0].worker, "w1");
    assert_eq!(fleet.workers[0].sources, ["a"]);
    // Back ONLINE: the diagnosis goes.
    status
        .record("b", "w1", &SourceEvent::Started { waiting: None })
        .await
        .unwrap();
    let b = &status.fleet(&["b".into()]).await.unwrap().sources[0];
    assert_eq!(
        (b.online, b.reason.as_deref(), b.offline_since),
        (Some(true), None, None)
    );
}

/// A pause a worker reports (its source throttled, with a wait: a spent request budget) shows
/// in the fleet's status, the source still ONLINE, until the source's next pass begins.
#[tokio::test]
async fn a_reported_pause_shows_until_the_next_pass_begins() {
    let db = db_or_skip!();
    let store = PgStore::connect(db.url()).await.unwrap();
    let status = store.status();
    let until = std::time::SystemTime::now() + Duration::from_secs(240);
    for event in [
        SourceEvent::Started { waiting: Some(3) },
        SourceEvent::Paused { until },
        SourceEvent::Finished,
    ] {
        status.record("p", "w1", &event).await.unwrap();
    }
    let p = &status.fleet(&["p".into()]).await.unwrap().sources[0];
    let shown = p.paused_until.expect("the pause is shown");
    let off = shown.duration_since(until).unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(1), "{shown:?} for {until:?}");
    assert_eq!(p.online, Some(true));
    // The next pass began: the pause is over.
    status
        .record("p", "w1", &SourceEvent::Started { waiting: None })
        .await
        .unwrap();
    let p = &status.fleet(&["p".into()]).await.unwrap().sources[0];
    assert_eq!(p.paused_until, None);
}
