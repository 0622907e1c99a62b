//! Delta sync: tracked changes, removed mail, lost and foreign state, and a restart over a file
//! store.

use std::sync::Arc;

use connector::{Acknowledgement, ErrorKind, MessageId, MessageSource};
use graph_mail::{GraphSource, Mailbox, SourceConfig};

use crate::support::{delta_source, env, seqs};

#[tokio::test]
async fn delta_tracks_changes_and_recovers_from_lost_state() {
    use graph_mail::delta::{DeltaState, MemoryDeltaStore, state_key, sync_folder};
    use httpcore::{KeptState, StateStore};
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 12, "delta");
    let client = env.client(Mailbox::user(to));
    let store = MemoryDeltaStore::default();
    let first = sync_folder(&client, &store, "inbox")
        .await
        .expect("first round");
    assert_eq!(first.changed.len(), 12, "two pages of ten");
    assert!(!first.resynced);
    let again = sync_folder(&client, &store, "inbox")
        .await
        .expect("quiet round");
    assert!(again.changed.is_empty() && again.removed.is_empty());

    let source = GraphSource::new(client.clone(), SourceConfig::default());
    let ids: Vec<MessageId> = first
        .changed
        .iter()
        .map(|m| MessageId::new(m.id.clone()))
        .collect();
    source
        .acknowledge(&ids[0], &Acknowledgement::MarkRead)
        .await
        .expect("read");
    source
        .acknowledge(&ids[1], &Acknowledgement::Delete)
        .await
        .expect("delete");
    env.seed(to, 1, "late");
    let third = sync_folder(&client, &store, "inbox")
        .await
        .expect("third round");
    assert_eq!(third.removed, vec![ids[1].as_str().to_owned()]);
    assert_eq!(third.changed.len(), 2, "{third:?}");
    assert!(
        third
            .changed
            .iter()
            .any(|m| m.id == ids[0].as_str() && m.is_read == Some(true))
    );

    // A state the server no longer knows: a full resync.
    let key = state_key(client.endpoint(), "inbox");
    let saved = store.load(&key).await.expect("load").expect("saved state");
    assert!(saved.delta_link().is_some());
    let broken =
        DeltaState::from_json(&saved.to_json().replace("deltatoken=", "deltatoken=999999"))
            .expect("state");
    store.save(&key, &broken).await.expect("save");
    let resync = sync_folder(&client, &store, "inbox").await.expect("resync");
    assert!(resync.resynced);
    assert_eq!(
        resync.changed.len(),
        12,
        "11 left of the first 12, plus the late one"
    );
}

#[tokio::test]
async fn delta_mode_handles_removed_and_recovers_from_lost_state() {
    use graph_mail::delta::{DeltaState, MemoryDeltaStore, state_key};
    use httpcore::{KeptState, StateStore};
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 3, "dm");
    let store = Arc::new(MemoryDeltaStore::default());
    let source = delta_source(&env, to, store.clone());
    let first = source.fetch(None, 10).await.expect("first fetch");
    assert_eq!(
        seqs(&first),
        [
            "<dm-0@test.invalid>",
            "<dm-1@test.invalid>",
            "<dm-2@test.invalid>"
        ]
    );
    let ids: Vec<MessageId> = first.messages.iter().map(|m| m.id.clone()).collect();
    source
        .acknowledge(&ids[0], &Acknowledgement::MarkRead)
        .await
        .expect("ack");
    // Someone else deletes message 1 and moves message 2 away: both come back as @removed.
    let other = env.source(to);
    other
        .acknowledge(&ids[1], &Acknowledgement::Delete)
        .await
        .expect("delete");
    other
        .acknowledge(&ids[2], &Acknowledgement::MoveTo("archive".into()))
        .await
        .expect("move");
    env.seed(to, 1, "late");
    let second = source.fetch(None, 10).await.expect("second fetch");
    assert_eq!(
        seqs(&second),
        ["<late-0@test.invalid>"],
        "read, deleted and moved mail is not handed over"
    );
    assert_eq!(source.count_waiting().await.expect("count"), Some(1));

    // The server forgets the state (410 syncStateNotFound): a full resync that keeps what is
    // waiting and brings nothing acknowledged back.
    let key = state_key(source.client().endpoint(), "inbox");
    let saved = store.load(&key).await.expect("load").expect("state");
    let expired =
        DeltaState::from_json(&saved.to_json().replace("deltatoken=", "deltatoken=999999"))
            .expect("state");
    store.save(&key, &expired).await.expect("save");
    // A fresh source over the same store (a restart) reads the state from the store.
    let restarted = delta_source(&env, to, store.clone());
    env.sb.admin().clear_request_log();
    env.seed(to, 1, "during");
    let third = restarted.fetch(None, 10).await.expect("resync fetch");
    assert_eq!(
        seqs(&third),
        ["<late-0@test.invalid>", "<during-0@test.invalid>"]
    );
    assert_eq!(env.sb.request_log().count_status(410), 1);
    assert_ne!(
        store
            .load(&key)
            .await
            .expect("load")
            .expect("state")
            .delta_link(),
        expired.delta_link(),
        "the resync saved a fresh link"
    );

    // A saved link for another host is never followed: a full resync instead.
    let foreign = DeltaState::from_json(
        &store
            .load(&key)
            .await
            .expect("load")
            .expect("state")
            .to_json()
            .replace("http://127.0.0.1", "https://attacker.example"),
    )
    .expect("state");
    assert!(
        foreign
            .delta_link()
            .is_some_and(|l| l.contains("attacker.example"))
    );
    store.save(&key, &foreign).await.expect("save");
    let again = delta_source(&env, to, store.clone());
    let fourth = again
        .fetch(None, 10)
        .await
        .expect("fetch after a foreign link");
    assert_eq!(seqs(&fourth), seqs(&third));
    let link = store.load(&key).await.expect("load").expect("state");
    assert!(!link.delta_link().unwrap_or("").contains("attacker"));
}

#[tokio::test]
async fn delta_mode_survives_a_restart_with_a_file_store() {
    use graph_mail::delta::FileDeltaStore;
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("graph-delta.json");
    env.seed(to, 5, "fs");
    let first_ids: Vec<MessageId>;
    {
        let source = delta_source(
            &env,
            to,
            Arc::new(FileDeltaStore::open(&path).expect("open")),
        );
        // Page through two at a time: the cursor pages the saved set without a new round.
        let page1 = source.fetch(None, 2).await.expect("page 1");
        assert_eq!(page1.messages.len(), 2);
        let page2 = source.fetch(page1.next.as_ref(), 2).await.expect("page 2");
        assert_eq!(seqs(&page2), ["<fs-2@test.invalid>", "<fs-3@test.invalid>"]);
        first_ids = page1.messages.iter().map(|m| m.id.clone()).collect();
        let results = source
            .acknowledge_many(&[
                (first_ids[0].clone(), Acknowledgement::MarkRead),
                (
                    first_ids[1].clone(),
                    Acknowledgement::MoveTo("Processed".into()),
                ),
            ])
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Dropped here without a further round: the process "ends".
    }
    env.seed(to, 1, "after");
    let source = delta_source(
        &env,
        to,
        Arc::new(FileDeltaStore::open(&path).expect("reopen")),
    );
    let batch = source.fetch(None, 10).await.expect("fetch after restart");
    assert_eq!(
        seqs(&batch),
        [
            "<fs-2@test.invalid>",
            "<fs-3@test.invalid>",
            "<fs-4@test.invalid>",
            "<after-0@test.invalid>"
        ],
        "the unacknowledged messages come back, the acknowledged ones do not"
    );
    assert!(batch.messages.iter().all(|m| !first_ids.contains(&m.id)));

    // A damaged file is a clear error, not a panic and not a silent restart.
    std::fs::write(&path, b"{\"version\":1,\"states\":{\"x\":{\"pending\":[{").expect("write");
    let err = FileDeltaStore::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("graph-delta.json"), "{err}");
}

#[tokio::test]
async fn delta_mode_hands_over_mail_someone_read_before_the_handler_saw_it() {
    use graph_mail::delta::MemoryDeltaStore;
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 1, "seen");
    let source = delta_source(&env, to, Arc::new(MemoryDeltaStore::default()));
    let first = source.fetch(None, 10).await.expect("first");
    assert_eq!(seqs(&first), ["<seen-0@test.invalid>"]);
    source
        .acknowledge(&first.messages[0].id, &Acknowledgement::MarkRead)
        .await
        .expect("ack");
    // A person opens the next message in Outlook before the handler's next round.
    env.seed(to, 1, "opened");
    let people = env.source(to);
    let unread = people.fetch(None, 10).await.expect("list");
    assert_eq!(seqs(&unread), ["<opened-0@test.invalid>"]);
    people
        .acknowledge(&unread.messages[0].id, &Acknowledgement::MarkRead)
        .await
        .expect("read in Outlook");
    let second = source.fetch(None, 10).await.expect("second");
    assert_eq!(
        seqs(&second),
        ["<opened-0@test.invalid>"],
        "read on arrival is still new; our own read mark is not"
    );
    // Unread polling would have missed it.
    assert!(
        people
            .fetch(None, 10)
            .await
            .expect("list")
            .messages
            .is_empty()
    );
}

/// A delta store whose saves are counted, and whose first acknowledgement save (the second
/// save: the round saved first) waits until the test opens the gate.
struct GatedStore {
    inner: graph_mail::delta::MemoryDeltaStore,
    saves: std::sync::atomic::AtomicUsize,
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl httpcore::StateStore<graph_mail::delta::DeltaState> for GatedStore {
    async fn load(
        &self,
        key: &str,
    ) -> Result<Option<graph_mail::delta::DeltaState>, connector::Error> {
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &str,
        state: &graph_mail::delta::DeltaState,
    ) -> Result<(), connector::Error> {
        if self.saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            let _open = self.gate.acquire().await.expect("gate");
        }
        self.inner.save(key, state).await
    }
    async fn clear(&self, key: &str) -> Result<(), connector::Error> {
        self.inner.clear(key).await
    }
}

#[tokio::test]
async fn acknowledgements_that_end_during_a_save_share_the_next_one_and_are_all_saved() {
    use httpcore::StateStore;
    use std::sync::atomic::Ordering;
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 8, "gc");
    let store = Arc::new(GatedStore {
        inner: graph_mail::delta::MemoryDeltaStore::default(),
        saves: std::sync::atomic::AtomicUsize::new(0),
        gate: tokio::sync::Semaphore::new(0),
    });
    let source = Arc::new(delta_source(&env, to, store.clone()));
    let batch = source.fetch(None, 10).await.expect("round");
    assert_eq!(batch.messages.len(), 8);
    assert_eq!(
        store.saves.load(Ordering::SeqCst),
        1,
        "the round saved once"
    );
    // Eight acknowledgements at once: the first one's save is held at the gate, the other
    // seven change the state meanwhile and wait for a save that covers them.
    let acks: Vec<_> = batch
        .messages
        .iter()
        .map(|m| {
            let (source, id) = (source.clone(), m.id.clone());
            tokio::spawn(async move { source.acknowledge(&id, &Acknowledgement::Keep).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        acks.iter().all(|a| !a.is_finished()),
        "every acknowledgement waits for its save"
    );
    store.gate.add_permits(1);
    for a in acks {
        a.await.expect("task").expect("acknowledged");
    }
    assert_eq!(
        store.saves.load(Ordering::SeqCst),
        3,
        "the held save, then one for the seven acknowledgements that ended during it"
    );
    let key = graph_mail::delta::state_key(
        env.client(graph_mail::Mailbox::user(to)).endpoint(),
        "inbox",
    );
    let saved = store.inner.load(&key).await.expect("load").expect("state");
    assert!(
        saved.pending_ids().is_empty(),
        "every acknowledgement is saved: {saved:?}"
    );
}
