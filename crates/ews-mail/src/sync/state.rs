//! The saved state of a sync-mode source's folder and how a page of changes is merged into it.

use std::fmt;

use connector::waiting::{Waiting, WaitingEntry, received_nanos};
use serde::{Deserialize, Serialize};

use crate::ops::SyncChange;

const STATE_VERSION: u32 = 1;

fn state_version() -> u32 {
    STATE_VERSION
}

/// A message seen in the folder's changes and not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) id: String,
    /// Order of first appearance, a tie-breaker for equal receive times.
    seq: u64,
    /// `DateTimeReceived` in Unix nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received: Option<i64>,
}

impl WaitingEntry for Pending {
    fn id(&self) -> &str {
        &self.id
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn received(&self) -> Option<i64> {
        self.received
    }
}

/// The saved state of a sync-mode [`EwsSource`](crate::EwsSource)'s folder: the SyncState to
/// start the next SyncFolderItems from, and the messages seen but not yet acknowledged (so that
/// a restart hands them over again instead of losing them: the SyncState has moved past them).
///
/// The SyncState only moves on together with the messages it reported: both are saved in one
/// write, so a crash leaves the old pair or the new one. A message leaves the state when it
/// was acknowledged (or has left the folder), never when it was merely handed over; one handed
/// over and not acknowledged before a crash is handed over again, and the handler's ledger
/// keeps it from being handled twice.
///
/// It is stored as JSON (serde), checked when read back (by [`FileSourceSyncStore`](super::FileSourceSyncStore), for one).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSyncState {
    #[serde(default = "state_version")]
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sync_state: Option<String>,
    /// A sync from the beginning is under way (its pages may span several calls): what it
    /// lists as created is the folder's content, of which only unread mail is new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    initial: bool,
    #[serde(flatten)]
    waiting: Waiting<Pending>,
}

impl Default for SourceSyncState {
    fn default() -> Self {
        SourceSyncState {
            version: STATE_VERSION,
            sync_state: None,
            initial: false,
            waiting: Waiting::default(),
        }
    }
}

impl fmt::Debug for SourceSyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SyncState is Exchange's opaque token: not a credential, but not worth printing.
        f.debug_struct("SourceSyncState")
            .field("has_sync_state", &self.sync_state.is_some())
            .field("initial", &self.initial)
            .field("pending", &self.waiting.len())
            .finish()
    }
}

impl SourceSyncState {
    /// An empty state: the next sync starts from the beginning.
    pub fn new() -> Self {
        Self::default()
    }

    /// The SyncState the next SyncFolderItems starts from, if one has been saved.
    pub fn sync_state(&self) -> Option<&str> {
        self.sync_state.as_deref()
    }

    /// Ids of the messages seen and not yet acknowledged, oldest first.
    pub fn pending_ids(&self) -> Vec<&str> {
        self.waiting.ids()
    }

    /// Exchange no longer knows the SyncState (`ErrorInvalidSyncStateData`): the next sync
    /// starts from the beginning. The messages still waiting stay.
    pub(super) fn restart(&mut self) {
        self.sync_state = None;
    }

    /// Merges one page of SyncFolderItems, answered with `sync_state`; `last` says the folder
    /// is in sync after it. Returns how many messages became pending.
    ///
    /// A created item is new mail, read or not (someone may have read it before this sync saw
    /// it), except while a sync from the beginning lists the folder's content: then only
    /// unread items are (read mail is history, as the unread listing would have it). Updates
    /// and read-flag changes (this source's own mark-read among them) are not new mail; a
    /// deleted item (deleted, or moved out by anyone) stops waiting.
    pub(super) fn merge(
        &mut self,
        changes: Vec<SyncChange>,
        sync_state: String,
        last: bool,
    ) -> usize {
        if self.sync_state.is_none() {
            self.initial = true;
        }
        let mut added = 0;
        for change in changes {
            match change {
                SyncChange::Create(item) => {
                    let Some(id) = item.id.as_ref().map(|i| i.id.clone()) else {
                        continue;
                    };
                    if self.waiting.contains(&id) || (self.initial && item.is_read == Some(true)) {
                        continue;
                    }
                    self.waiting.push_with(|seq| Pending {
                        received: received_nanos(item.received),
                        id,
                        seq,
                    });
                    added += 1;
                }
                SyncChange::Delete(id) => {
                    self.waiting.forget(&[id.id.as_str()]);
                }
                SyncChange::Update(_) | SyncChange::ReadFlagChange(..) => {}
            }
        }
        self.waiting.sort();
        self.sync_state = Some(sync_state);
        if last {
            self.initial = false;
        }
        added
    }

    /// The messages waiting.
    pub(super) fn waiting(&self) -> &Waiting<Pending> {
        &self.waiting
    }

    /// The messages waiting, to forget some.
    pub(super) fn waiting_mut(&mut self) -> &mut Waiting<Pending> {
        &mut self.waiting
    }
}

/// The prefix of a sync-mode source's cursors, and the source they name when refused.
pub(super) const CURSORS: (&str, &str) = ("sync:", "a sync-mode EWS source");

impl httpcore::KeptState for SourceSyncState {
    const WHAT: &'static str = "EWS sync state";
    const VERSION: u32 = STATE_VERSION;
    const ON_DISCARD: &'static str = "to sync from the beginning (the unread mail is handed \
        over again, and the ledger keeps what was handled from being handled twice)";

    fn check(&self) -> Result<(), String> {
        connector::waiting::check_version(self.version, STATE_VERSION)?;
        if self.sync_state.as_deref() == Some("") {
            return Err("the SyncState is empty".into());
        }
        self.waiting.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Item, ItemId};

    fn created(id: &str, read: bool) -> SyncChange {
        let item = Item {
            id: Some(ItemId::new(id)),
            is_read: Some(read),
            ..Item::default()
        };
        SyncChange::Create(item)
    }

    #[test]
    fn the_first_sync_takes_unread_mail_and_later_ones_every_created_item() {
        let mut s = SourceSyncState::new();
        // A first sync over two pages: read mail is history on both.
        s.merge(
            vec![created("a", false), created("b", true)],
            "s1".into(),
            false,
        );
        s.merge(
            vec![created("c", true), created("d", false)],
            "s2".into(),
            true,
        );
        assert_eq!(s.pending_ids(), ["a", "d"]);
        // Afterwards a created item is new even if someone read it first; our own mark-read
        // and deletes are no new mail.
        s.merge(
            vec![
                created("e", true),
                SyncChange::ReadFlagChange(ItemId::new("a"), true),
                SyncChange::Delete(ItemId::new("d")),
                created("a", false),
            ],
            "s3".into(),
            true,
        );
        assert_eq!(s.pending_ids(), ["a", "e"]);
        assert_eq!(s.sync_state(), Some("s3"));
        // An invalid SyncState starts over: the folder is listed again, waiting mail stays.
        s.restart();
        s.merge(
            vec![created("a", false), created("f", true)],
            "s4".into(),
            true,
        );
        assert_eq!(s.pending_ids(), ["a", "e"]);
        assert!(s.waiting_mut().forget(&["a"]));
        assert!(!s.waiting_mut().forget(&["a"]));
        assert_eq!(s.waiting().len(), 1);
    }

    #[test]
    fn a_state_survives_json_and_a_damaged_one_is_refused() {
        let mut s = SourceSyncState::new();
        s.merge(vec![created("a", false)], "s1".into(), true);
        let read = |json: &str| -> Result<SourceSyncState, String> {
            <SourceSyncState as httpcore::KeptState>::from_json(json).map_err(|e| e.to_string())
        };
        let back = read(&httpcore::KeptState::to_json(&s)).unwrap();
        assert_eq!(back, s);
        for bad in [
            "[]",
            "not json",
            r#"{"version":2}"#,
            r#"{"version":1,"sync_state":""}"#,
            r#"{"version":1,"pending":[{"id":"a","seq":0}],"next_seq":0}"#,
            r#"{"version":1,"pending":[{"id":"a","seq":0},{"id":"a","seq":1}],"next_seq":2}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let page_at = |c| s.waiting().page_at(c, 1, CURSORS.0, CURSORS.1);
        let e = page_at(Some("delta:1:2")).unwrap_err();
        assert!(e.to_string().contains("a sync-mode EWS source"), "{e}");
        let (page, next) = page_at(None).unwrap();
        assert_eq!((page.len(), next), (1, None));
    }
}
