//! Stale change keys and SyncFolderItems.

use connector::{Acknowledgement, ErrorKind, MessageId, MessageSource};
use ews_mail::EwsSource;
use ews_mail::ops::{GetItem, UpdateItem};
use ews_mail::sync::{FolderSync, MemorySyncStore};
use ews_mail::types::{FolderId, ItemId};

use crate::support::{MAILBOX, app_client, inject_short, sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_change_key_is_recovered_and_item_errors_stay_in_place() {
    let sb = sandbox().await;
    inject_short(&sb, "s", 0..3);
    let c = app_client(&sb);
    let src = EwsSource::new(c.clone());
    let b = src.fetch(None, 10).await.unwrap();
    assert_eq!(b.messages.len(), 3);
    // Change message 0 behind the source's back: its remembered change key is now stale.
    let fresh = c
        .call(&GetItem::ids_only(vec![ItemId::new(
            b.messages[0].id.as_str(),
        )]))
        .await
        .unwrap();
    let id0 = fresh[0].as_ref().unwrap().id.clone().unwrap();
    let r = c.call(&UpdateItem::mark_unread(vec![id0])).await.unwrap();
    assert!(r[0].is_ok());
    let items = vec![
        (b.messages[0].id.clone(), Acknowledgement::MarkRead),
        (
            MessageId::new("AAMkAGdvbmUtZm9yLWdvb2QtMDAwMDAw"),
            Acknowledgement::MarkRead,
        ),
        (b.messages[2].id.clone(), Acknowledgement::MarkRead),
    ];
    let results = src.acknowledge_many(&items).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert!(results[2].is_ok());
    assert_eq!(
        src.count_waiting().await.unwrap(),
        Some(1),
        "only message 1 stays unread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_folder_items_keeps_state_in_the_callers_store() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    inject_short(&sb, "y", 0..5);
    let store = MemorySyncStore::default();
    let sync =
        FolderSync::new(&c, FolderId::distinguished("inbox"), "inbox", &store).with_max_changes(3);
    let first = sync.next_page().await.unwrap();
    assert_eq!(first.changes.len(), 3);
    assert!(!first.done);
    let second = sync.next_page().await.unwrap();
    assert_eq!(second.changes.len(), 2);
    assert!(second.done);
    let idle = sync.next_page().await.unwrap();
    assert!(idle.changes.is_empty() && idle.done);
    sb.admin()
        .inject(
            "c@x.example",
            &[MAILBOX.to_string()],
            b"Message-ID: <y5@x>\r\nSubject: 5\r\n\r\nb\r\n",
        )
        .unwrap();
    let more = sync.next_page().await.unwrap();
    assert_eq!(more.changes.len(), 1);
    // A corrupt saved state restarts from the beginning instead of failing.
    use httpcore::StateStore;
    store
        .save("inbox", &"bm90LWEtc3RhdGU=".to_owned())
        .await
        .unwrap();
    let restarted = sync.with_max_changes(512).next_page().await.unwrap();
    assert_eq!(restarted.changes.len(), 6);
}

/// A raw SyncState store that reads but cannot write (a full disk, a database gone away).
struct ReadOnlyStore;

#[async_trait::async_trait]
impl httpcore::StateStore<String> for ReadOnlyStore {
    async fn load(&self, _key: &str) -> Result<Option<String>, connector::Error> {
        Ok(None)
    }
    async fn save(&self, key: &str, _state: &String) -> Result<(), connector::Error> {
        Err(connector::Error::transient(format!("cannot save {key}")))
    }
    async fn clear(&self, _key: &str) -> Result<(), connector::Error> {
        Ok(())
    }
}

#[tokio::test]
async fn folder_sync_hands_out_no_page_whose_state_it_could_not_save() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    inject_short(&sb, "z", 0..2);
    let sync = FolderSync::new(
        &c,
        FolderId::distinguished("inbox"),
        "inbox",
        &ReadOnlyStore,
    );
    let e = sync.next_page().await.unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Transient);
    assert!(e.message().contains("cannot save inbox"), "{e}");
}
