//! Tests of the state, its merging and the stores.

use connector::Error;
use time::OffsetDateTime;

use super::round::is_resync;
use super::state::{self, CURSORS};
use super::*;
use crate::api::{DeltaItem, MessageMeta};
use connector::ErrorKind;
use httpcore::{KeptState, StateStore};

fn meta(id: &str, secs: i64, read: bool) -> MessageMeta {
    MessageMeta {
        id: id.into(),
        internet_message_id: Some(format!("<{id}@x>")),
        subject: None,
        to: vec!["helpdesk@contoso.example".into()],
        cc: Vec::new(),
        received: OffsetDateTime::from_unix_timestamp(1_770_000_000 + secs).ok(),
        is_read: Some(read),
        headers: Vec::new(),
    }
}

fn changed(id: &str, secs: i64, read: bool) -> DeltaItem {
    DeltaItem::Changed(meta(id, secs, read))
}

fn removed(id: &str) -> DeltaItem {
    DeltaItem::Removed {
        id: id.into(),
        reason: "deleted".into(),
    }
}

#[tokio::test]
async fn memory_store_round_trip() {
    let s = MemoryDeltaStore::default();
    assert_eq!(s.load("me/mailFolders/inbox").await.unwrap(), None);
    let mut st = DeltaState::new();
    st.merge(
        vec![changed("a", 1, false)],
        "https://x/delta?$deltatoken=1".into(),
        true,
    );
    s.save("me/mailFolders/inbox", &st).await.unwrap();
    let back = s.load("me/mailFolders/inbox").await.unwrap().unwrap();
    assert_eq!(back.delta_link(), Some("https://x/delta?$deltatoken=1"));
    assert_eq!(back.pending_ids(), ["a"]);
    s.clear("me/mailFolders/inbox").await.unwrap();
    assert_eq!(s.load("me/mailFolders/inbox").await.unwrap(), None);
}

#[test]
fn resync_codes_are_recognised() {
    let e = Error::refused("x").with_response(
        connector::ResponseDetails::status(410).with_server_code("SyncStateNotFound"),
    );
    assert!(is_resync(&e));
    let e = Error::refused("x")
        .with_response(connector::ResponseDetails::status(410).with_server_code("resyncRequired"));
    assert!(is_resync(&e));
    assert!(!is_resync(&Error::refused("x")));
}

#[test]
fn first_sync_takes_unread_mail_only() {
    let mut st = DeltaState::new();
    let m = st.merge(
        vec![
            changed("old-read", 1, true),
            changed("old-unread", 2, false),
        ],
        "l1".into(),
        true,
    );
    assert_eq!(m.added, 1);
    assert_eq!(st.pending_ids(), ["old-unread"]);
}

#[test]
fn own_mark_read_and_moves_do_not_come_back() {
    let mut st = DeltaState::new();
    st.merge(
        vec![
            changed("a", 1, false),
            changed("b", 2, false),
            changed("c", 2, false),
        ],
        "l1".into(),
        true,
    );
    assert!(st.forget(&["a", "c"]));
    // What Graph sends after our PATCH isRead of a and c, and a move of b.
    let m = st.merge(
        vec![changed("a", 1, true), changed("c", 2, true), removed("b")],
        "l2".into(),
        false,
    );
    assert_eq!(m.added, 0);
    assert!(st.pending_ids().is_empty(), "{:?}", st.pending_ids());
}

#[test]
fn read_on_arrival_is_still_new_and_pending_stays_when_read() {
    let mut st = DeltaState::new();
    st.merge(vec![changed("a", 5, false)], "l1".into(), true);
    // Someone read `a` in Outlook (it stays pending), and `b` arrived and was read before
    // this round; `old` is an old read message someone flagged.
    st.merge(
        vec![
            changed("a", 5, true),
            changed("b", 6, true),
            changed("old", 1, true),
        ],
        "l2".into(),
        false,
    );
    assert_eq!(st.pending_ids(), ["a", "b"]);
    // An empty first sync: everything after it is new, read or not.
    let mut empty = DeltaState::new();
    empty.merge(Vec::new(), "l1".into(), true);
    empty.merge(vec![changed("x", 1, true)], "l2".into(), false);
    assert_eq!(empty.pending_ids(), ["x"]);
}

#[test]
fn equal_receive_times_are_told_apart_by_id() {
    let mut st = DeltaState::new();
    st.merge(vec![changed("a", 5, false)], "l1".into(), true);
    st.forget(&["a"]);
    st.merge(
        vec![changed("a", 5, true), changed("twin", 5, true)],
        "l2".into(),
        false,
    );
    assert_eq!(st.pending_ids(), ["twin"]);
}

#[test]
fn a_resync_drops_pending_messages_no_longer_listed() {
    let mut st = DeltaState::new();
    st.merge(
        vec![changed("a", 1, false), changed("b", 2, false)],
        "l1".into(),
        true,
    );
    let m = st.merge(
        vec![changed("b", 2, false), changed("c", 3, false)],
        "l2".into(),
        true,
    );
    assert_eq!((m.added, m.removed), (1, 1));
    assert_eq!(st.pending_ids(), ["b", "c"]);
}

#[test]
fn pages_follow_receive_order_and_survive_acknowledgements() {
    fn page<'a>(st: &'a DeltaState, c: Option<&str>) -> (Vec<&'a state::Pending>, Option<String>) {
        st.waiting()
            .page_at(c, 2, CURSORS.0, CURSORS.1)
            .expect("a page")
    }
    let mut st = DeltaState::new();
    st.merge(
        vec![
            changed("late", 9, false),
            changed("early", 1, false),
            changed("mid1", 5, false),
            changed("mid2", 5, false),
        ],
        "l1".into(),
        true,
    );
    let (p, next) = page(&st, None);
    assert_eq!(
        p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["early", "mid1"]
    );
    let next = next.expect("more follow");
    assert!(next.starts_with("delta:"), "{next}");
    st.forget(&["early", "mid1"]);
    let (p, next) = page(&st, Some(&next));
    assert_eq!(next, None);
    assert_eq!(
        p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["mid2", "late"]
    );
    for bad in [
        "https://graph.microsoft.com/v1.0/x",
        "delta:x:1",
        "sync:1:2",
    ] {
        let e = st
            .waiting()
            .page_at(Some(bad), 2, CURSORS.0, CURSORS.1)
            .unwrap_err();
        assert!(e.to_string().contains("a delta-mode Graph source"), "{e}");
    }
}

#[test]
fn state_json_round_trips_and_rejects_garbage() {
    let mut st = DeltaState::new();
    st.merge(
        vec![changed("a", 1, false)],
        "https://x/d?$deltatoken=7".into(),
        true,
    );
    let back = DeltaState::from_json(&st.to_json()).unwrap();
    assert_eq!(back, st);
    assert_eq!(back.pending()[0].meta().to, ["helpdesk@contoso.example"]);
    for bad in [
        "",
        "{",
        "[]",
        r#"{"version":2}"#,
        r#"{"version":1,"pending":[{"id":"","seq":0}],"next_seq":1}"#,
        r#"{"version":1,"pending":[{"id":"a","seq":0},{"id":"a","seq":1}],"next_seq":2}"#,
        r#"{"version":1,"pending":[{"id":"a","seq":5}],"next_seq":1}"#,
        r#"{"version":1,"pending":"x"}"#,
    ] {
        let e = DeltaState::from_json(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{bad}");
    }
    // Debug shows no link.
    assert!(!format!("{st:?}").contains("deltatoken"));
}

#[tokio::test]
async fn file_store_persists_atomically_and_reports_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delta.json");
    let store = FileDeltaStore::open(&path).unwrap();
    assert_eq!(store.load("k").await.unwrap(), None);
    let mut st = DeltaState::new();
    st.merge(
        vec![changed("a", 1, false)],
        "https://x/d?$deltatoken=7".into(),
        true,
    );
    store.save("k", &st).await.unwrap();
    store.save("other", &DeltaState::new()).await.unwrap();
    // A second store (a restart) reads what the first wrote.
    let again = FileDeltaStore::open(&path).unwrap();
    assert_eq!(again.load("k").await.unwrap(), Some(st.clone()));
    again.clear("other").await.unwrap();
    assert_eq!(
        FileDeltaStore::open(&path)
            .unwrap()
            .load("other")
            .await
            .unwrap(),
        None
    );
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("delta.json")]);

    for garbage in [
        &b"{\"version\":1,\"states\":{\"k\":"[..],
        b"\xff\xfe",
        b"null",
        b"{\"version\":9}",
    ] {
        std::fs::write(&path, garbage).unwrap();
        let e = FileDeltaStore::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration);
        assert!(e.to_string().contains("delta.json"), "{e}");
        assert!(e.to_string().contains("corrupt"), "{e}");
    }
    // A directory that does not exist: the save fails with the path, nothing panics.
    let nowhere = FileDeltaStore::open(dir.path().join("missing/delta.json")).unwrap();
    let e = nowhere.save("k", &st).await.unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    assert_eq!(
        nowhere.load("k").await.unwrap(),
        None,
        "a failed save changes nothing"
    );
}
