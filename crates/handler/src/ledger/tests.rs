//! The local ledger's tests: replay, torn tails, compaction, group commit, expiry.

use super::*;

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    {
        let l = Ledger::open(&path).unwrap();
        l.append(
            "a",
            Entry::Handled {
                project: Some("payments".into()),
            },
        )
        .unwrap();
        l.append("a", Entry::Acknowledged).unwrap();
        l.append(
            "b",
            Entry::Failed {
                attempts: 2,
                reason: "timeout".into(),
            },
        )
        .unwrap();
    }
    let l = Ledger::open(&path).unwrap();
    assert!(!l.had_torn_tail());
    let a = l.get("a").unwrap();
    assert!(a.handled && a.acknowledged);
    assert_eq!(a.project.as_deref(), Some("payments"));
    assert_eq!(l.get("b").unwrap().attempts, 2);
    assert!(l.get("c").is_none());
}

#[test]
fn a_torn_last_line_is_dropped_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    {
        let l = Ledger::open(&path).unwrap();
        l.append("a", Entry::Handled { project: None }).unwrap();
    }
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"key":"b","state":"hand"#).unwrap();
    drop(f);
    let l = Ledger::open(&path).unwrap();
    assert!(l.had_torn_tail());
    assert!(l.get("a").unwrap().handled);
    assert!(l.get("b").is_none());
    l.append("c", Entry::Acknowledged).unwrap();
    drop(l);
    let l = Ledger::open(&path).unwrap();
    assert!(!l.had_torn_tail());
    assert!(l.get("c").unwrap().acknowledged);
}

#[test]
fn garbage_in_the_middle_is_an_error_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    std::fs::write(&path, "{\"key\":\"a\",\"state\":\"acknowledged\"}\nnot json\n{\"key\":\"b\",\"state\":\"acknowledged\"}\n").unwrap();
    match Ledger::open(&path) {
        Err(LedgerError::Corrupt { line, .. }) => assert_eq!(line, 2),
        other => panic!("want corrupt, got {other:?}"),
    }
}

#[test]
fn acknowledgements_owed_and_by_absence_survive_reopening_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let l = Ledger::open(&path).unwrap();
    for k in ["s|1", "s|2", "s|3", "s|4", "s|5", "t|1"] {
        l.append(k, Entry::Handled { project: None }).unwrap();
    }
    l.append("s|2", Entry::Acknowledged).unwrap();
    l.append("s|3", Entry::AcknowledgedByAbsence).unwrap();
    l.append(
        "s|6",
        Entry::Parked {
            reason: "bad".into(),
        },
    )
    .unwrap();
    l.append(
        "s|7",
        Entry::Failed {
            attempts: 1,
            reason: "x".into(),
        },
    )
    .unwrap();
    let owed = |l: &Ledger| {
        let mut keys: Vec<String> = l.unacknowledged("s|").into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    };
    assert_eq!(owed(&l), ["s|1", "s|4", "s|5", "s|6"]);
    let r3 = l.get("s|3").unwrap();
    assert!(r3.acknowledged && r3.acknowledged_by_absence);
    let r2 = l.get("s|2").unwrap();
    assert!(r2.acknowledged && !r2.acknowledged_by_absence);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(r#"{"key":"s|3","state":"acknowledged_by_absence","at":"#),
        "{text}"
    );
    l.compact().unwrap();
    drop(l);
    let again = Ledger::open(&path).unwrap();
    assert_eq!(owed(&again), ["s|1", "s|4", "s|5", "s|6"]);
    assert_eq!(again.get("s|3"), Some(r3));
    assert_eq!(again.get("s|2"), Some(r2));
}

#[test]
fn compaction_keeps_every_fact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let l = Ledger::open(&path).unwrap();
    for i in 0..50 {
        let k = format!("k{i}");
        for attempts in 1..=5 {
            l.append(
                &k,
                Entry::Failed {
                    attempts,
                    reason: "x".into(),
                },
            )
            .unwrap();
        }
        l.append(
            &k,
            Entry::Handled {
                project: Some("p".into()),
            },
        )
        .unwrap();
        l.append(&k, Entry::Notified { from: "a@b".into() })
            .unwrap();
        l.append(&k, Entry::Acknowledged).unwrap();
    }
    let before = std::fs::metadata(&path).unwrap().len();
    l.compact().unwrap();
    l.append("new", Entry::Acknowledged).unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after < before);
    drop(l);
    let again = Ledger::open(&path).unwrap();
    assert_eq!(again.len(), 51);
    let r = again.get("k7").unwrap();
    assert!(r.handled && r.acknowledged);
    assert_eq!(r.notified_from.as_deref(), Some("a@b"));
    assert_eq!(r.attempts, 5);
}

#[test]
fn appends_from_many_threads_share_syncs_and_all_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let l = Ledger::open(&path).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let l = l.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let k = format!("t{t}|{i}");
                    l.append(&k, Entry::Handled { project: None }).unwrap();
                    l.append(&k, Entry::Acknowledged).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    {
        let g = l.lock();
        assert_eq!(g.written, 800);
        assert_eq!(g.synced, g.written, "every write was synced");
        assert!(!g.syncing);
    }
    drop(l);
    let again = Ledger::open(&path).unwrap();
    assert_eq!(again.len(), 400);
    assert!(
        again
            .records()
            .iter()
            .all(|(_, r)| r.handled && r.acknowledged),
        "each key's two entries were replayed in order"
    );
}

#[test]
fn append_many_writes_every_entry_once_and_compaction_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let l = Ledger::open(&path).unwrap();
    let entries: Vec<(String, Entry)> = (0..100)
        .map(|i| (format!("s|{i}"), Entry::Handled { project: None }))
        .collect();
    l.append_many(&entries).unwrap();
    l.append_many(
        &entries
            .iter()
            .map(|(k, _)| (k.as_str(), Entry::Acknowledged))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    l.append_many::<&str>(&[]).unwrap();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, 200);
    l.compact().unwrap();
    l.append("s|100", Entry::Handled { project: None }).unwrap();
    drop(l);
    let again = Ledger::open(&path).unwrap();
    assert_eq!(again.len(), 101);
    assert!(again.get("s|7").unwrap().acknowledged);
    assert!(again.get("s|100").unwrap().handled);
}

#[test]
fn acknowledged_records_expire_after_the_retention_and_the_rest_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    // An acknowledgement recorded 40 days ago (as the file keeps it), one from a ledger
    // written before lines carried a time, and one made now.
    let long_ago = unix(SystemTime::now() - Duration::from_secs(40 * 24 * 3600));
    std::fs::write(
        &path,
        format!(
            "{{\"key\":\"s|old\",\"state\":\"handled\",\"project\":null}}\n\
             {{\"key\":\"s|old\",\"state\":\"acknowledged\",\"at\":{long_ago}}}\n\
             {{\"key\":\"s|legacy\",\"state\":\"acknowledged\"}}\n"
        ),
    )
    .unwrap();
    let l = Ledger::open(&path).unwrap();
    l.append("s|new", Entry::Handled { project: None }).unwrap();
    l.append("s|new", Entry::Acknowledged).unwrap();
    l.append("s|owed", Entry::Handled { project: None })
        .unwrap();
    let cutoff = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    assert_eq!(l.expire_acknowledged(cutoff).unwrap(), 1);
    assert!(l.get("s|old").is_none());
    // Without a time, the acknowledgement counts from when the ledger was opened.
    assert!(l.get("s|legacy").is_some());
    assert!(l.get("s|new").unwrap().acknowledged_at.is_some());
    assert!(
        l.get("s|owed").is_some(),
        "an owed acknowledgement never expires"
    );
    // The file was rewritten without it, and the times survive reopening.
    let new = l.get("s|new");
    drop(l);
    let again = Ledger::open(&path).unwrap();
    assert!(again.get("s|old").is_none());
    assert_eq!(again.get("s|new"), new);
    assert_eq!(again.len(), 3);
    assert_eq!(
        again
            .expire_acknowledged(SystemTime::now() + Duration::from_secs(5))
            .unwrap(),
        2
    );
    assert_eq!(again.unacknowledged("s|").len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn async_appends_do_not_need_a_runtime_thread_each() {
    // On a one-thread runtime, 200 tasks appending at once all finish: the syncs run on
    // the blocking pool, so tasks waiting for theirs do not hold the only runtime thread.
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("ledger.jsonl")).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200 {
        let l = l.clone();
        set.spawn(async move {
            l.append_async(&format!("k|{i}"), Entry::Handled { project: None })
                .await
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(l.len(), 200);
    {
        let g = l.lock();
        assert_eq!((g.written, g.synced), (200, 200));
    }
    let mem = Ledger::in_memory();
    mem.append_many_async(vec![("m|1".into(), Entry::Acknowledged)])
        .await
        .unwrap();
    assert!(mem.get("m|1").unwrap().acknowledged);
}

#[test]
fn acknowledged_records_move_to_the_index_and_the_file_keeps_the_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let l = Ledger::open(&path).unwrap();
    let n = SETTLE_AT + 500;
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let handled: Vec<(String, Entry)> = chunk
            .iter()
            .map(|i| {
                let project = Some(format!("P{}", i % 3));
                (format!("s|{i}"), Entry::Handled { project })
            })
            .collect();
        l.append_many(&handled).unwrap();
        let acked: Vec<(String, Entry)> = chunk
            .iter()
            .map(|i| (format!("s|{i}"), Entry::Acknowledged))
            .collect();
        l.append_many(&acked).unwrap();
    }
    l.append("s|open", Entry::Handled { project: None })
        .unwrap();
    // The first SETTLE_AT acknowledged records left memory and the file; the rest are still
    // held, and every key is still known, whole.
    let held = l.lock().records.len();
    assert!(held <= 501, "{held} records held in memory");
    assert_eq!(l.len(), n + 1);
    let first = l.try_get("s|0").unwrap().unwrap();
    assert!(first.handled && first.acknowledged);
    assert_eq!(first.project.as_deref(), Some("P0"));
    assert!(first.acknowledged_at.is_some());
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(lines < 2 * 501 + 1, "{lines} lines left in the file");
    let owed: Vec<String> = l.unacknowledged("s|").into_iter().map(|(k, _)| k).collect();
    assert_eq!(owed, ["s|open"]);
    // What the compaction dropped is kept as a history segment, every line once; the lines the
    // compaction carried over are marked so.
    let segments = history_segments(&path).unwrap();
    assert_eq!(segments.len(), 1);
    let history = std::fs::read_to_string(&segments[0].1).unwrap();
    let handled = |text: &str| {
        text.lines()
            .filter(|l| l.contains("\"state\":\"handled\"") && !l.contains("\"carried\""))
            .count()
    };
    assert!(handled(&history) >= SETTLE_AT, "{}", handled(&history));
    let current = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        handled(&history) + handled(&current),
        n + 1,
        "every handled line is in exactly one place, carried copies aside"
    );
    drop(l);
    // Reopening moves the rest to the index too, and nothing is lost.
    let again = Ledger::open(&path).unwrap();
    assert_eq!(again.len(), n + 1);
    assert_eq!(again.lock().records.len(), 1);
    assert_eq!(
        again
            .get(&format!("s|{}", n - 1))
            .unwrap()
            .project
            .as_deref(),
        Some(format!("P{}", (n - 1) % 3).as_str())
    );
    // A second process on the same ledger is refused, not allowed to interleave.
    let e = Ledger::open(&path).unwrap_err().to_string();
    assert!(e.contains("already open"), "{e}");
    // Expiry reaches the index.
    let all = again
        .expire_acknowledged(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(all, n);
    assert_eq!(again.len(), 1);
    assert!(again.get("s|0").is_none());
}

#[test]
fn an_entry_for_a_key_in_the_index_extends_its_record_and_never_forgets_it_was_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    {
        let l = Ledger::open(&path).unwrap();
        l.append(
            "s|1",
            Entry::Handled {
                project: Some("P".into()),
            },
        )
        .unwrap();
        l.append("s|1", Entry::Acknowledged).unwrap();
    }
    // Reopened, s|1 lives in the index only; the pipeline finds it handed out again (someone
    // marked it unread) and acknowledges it once more.
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.lock().records.len(), 0);
    l.append("s|1", Entry::Acknowledged).unwrap();
    let r = l.get("s|1").unwrap();
    assert!(r.handled && r.acknowledged, "{r:?}");
    assert_eq!(r.project.as_deref(), Some("P"));
    drop(l);
    // And after it moves to the index again, still.
    let again = Ledger::open(&path).unwrap();
    let r = again.get("s|1").unwrap();
    assert!(r.handled && r.acknowledged, "{r:?}");
    assert_eq!(r.project.as_deref(), Some("P"));
}
