//! [`MailStore`]: the store's operations on mailboxes, folders and messages.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use time::OffsetDateTime;

use super::mailbox::{Folder, Inner, JournalEntry, MailboxData};
use super::{
    ChangeKind, DeleteMode, FolderChange, FolderChanges, FolderInfo, InsertOptions, ListPage,
    ListQuery, Message, MessageProps, Order, StoreError, WellKnownFolder,
};
use crate::locks::lock;

/// The mail store. Thread-safe; every method takes `&self`.
#[derive(Debug, Default)]
pub struct MailStore {
    inner: Mutex<Inner>,
    /// Where each message created in a folder is announced (Graph change notifications);
    /// set once by [`MailStore::watch_created`].
    created: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Created>>,
}

/// A message that appeared in a folder (delivered, saved as a draft, copied or moved there).
#[derive(Debug, Clone)]
pub(crate) struct Created {
    /// The mailbox, as the store was called with it.
    pub(crate) mailbox: String,
    /// The folder's id.
    pub(crate) folder_id: String,
    /// The message's id in that folder.
    pub(crate) id: String,
    /// Its change key (the `@odata.etag` of a notification).
    pub(crate) change_key: String,
    /// Whether it is new mail (not a draft saved, nor a message moved in): EWS's
    /// `NewMailEvent`.
    pub(crate) new_mail: bool,
}

impl MailStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the mailbox (with its well-known folders) if it does not exist yet.
    pub fn ensure_mailbox(&self, primary: &str) {
        let key = primary.to_ascii_lowercase();
        let mut inner = lock(&self.inner);
        if inner.mailboxes.contains_key(&key) {
            return;
        }
        let mut data = MailboxData::default();
        let root_id = inner.new_token("AQMkAD", &key);
        for w in WellKnownFolder::ALL {
            let id = if w == WellKnownFolder::MsgFolderRoot {
                root_id.clone()
            } else {
                inner.new_token("AQMkAD", &key)
            };
            data.folders.push(Folder {
                id,
                display_name: w.display_name().to_string(),
                parent_id: (w != WellKnownFolder::MsgFolderRoot).then(|| root_id.clone()),
                well_known: Some(w),
                journal: Vec::new(),
            });
        }
        inner.mailboxes.insert(key, data);
    }

    /// The stream of messages created in folders, from now on: the first caller gets it,
    /// later callers `None` (the sandbox's notification dispatcher is its one reader).
    pub(crate) fn watch_created(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Created>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.created.set(tx).ok().map(|()| rx)
    }

    fn announce(&self, c: Created) {
        if let Some(tx) = self.created.get() {
            // A closed channel means the sandbox is stopping: nobody is left to notify.
            let _ = tx.send(c);
        }
    }

    /// Whether the mailbox exists in the store.
    pub fn has_mailbox(&self, primary: &str) -> bool {
        lock(&self.inner)
            .mailboxes
            .contains_key(&primary.to_ascii_lowercase())
    }

    /// The store's current sequence number.
    pub fn current_seq(&self) -> u64 {
        lock(&self.inner).seq
    }

    /// A folder by id or well-known name, with counts.
    pub fn folder(&self, mailbox: &str, folder: &str) -> Result<FolderInfo, StoreError> {
        let mut inner = lock(&self.inner);
        let mb = inner.mailbox(mailbox)?;
        let idx = mb.folder_ref(folder)?;
        Ok(mb.info(idx))
    }

    /// Child folders of `parent` (id or well-known name); `None` lists the top level (children
    /// of `msgfolderroot`). Hidden folders are excluded unless `include_hidden`.
    pub fn list_folders(
        &self,
        mailbox: &str,
        parent: Option<&str>,
        include_hidden: bool,
    ) -> Result<Vec<FolderInfo>, StoreError> {
        let mut inner = lock(&self.inner);
        let mb = inner.mailbox(mailbox)?;
        let parent_idx = mb.folder_ref(parent.unwrap_or("msgfolderroot"))?;
        let parent_id = mb.folders[parent_idx].id.clone();
        Ok((0..mb.folders.len())
            .filter(|i| mb.folders[*i].parent_id.as_deref() == Some(&parent_id))
            .map(|i| mb.info(i))
            .filter(|f| include_hidden || !f.is_hidden)
            .collect())
    }

    /// Finds a child folder of `parent` by display name (case-insensitive).
    pub fn find_folder(
        &self,
        mailbox: &str,
        parent: Option<&str>,
        display_name: &str,
    ) -> Result<Option<FolderInfo>, StoreError> {
        Ok(self
            .list_folders(mailbox, parent, true)?
            .into_iter()
            .find(|f| f.display_name.eq_ignore_ascii_case(display_name)))
    }

    /// Creates a folder under `parent` (`None`: top level).
    pub fn create_folder(
        &self,
        mailbox: &str,
        parent: Option<&str>,
        display_name: &str,
    ) -> Result<FolderInfo, StoreError> {
        let mut inner = lock(&self.inner);
        let id = inner.new_token("AQMkAD", mailbox);
        let mb = inner.mailbox(mailbox)?;
        let parent_idx = mb.folder_ref(parent.unwrap_or("msgfolderroot"))?;
        let parent_id = mb.folders[parent_idx].id.clone();
        if mb.folders.iter().any(|f| {
            f.parent_id.as_deref() == Some(&parent_id)
                && f.display_name.eq_ignore_ascii_case(display_name)
        }) {
            return Err(StoreError::FolderExists(display_name.to_string()));
        }
        mb.folders.push(Folder {
            id,
            display_name: display_name.to_string(),
            parent_id: Some(parent_id),
            well_known: None,
            journal: Vec::new(),
        });
        let idx = mb.folders.len() - 1;
        Ok(mb.info(idx))
    }

    /// Stores a message in a folder; returns it with fresh ids.
    pub fn insert(
        &self,
        mailbox: &str,
        folder: &str,
        mime: impl Into<Bytes>,
        opts: InsertOptions,
    ) -> Result<Message, StoreError> {
        let (mime, props) = MessageProps::read(mime)?;
        let mut inner = lock(&self.inner);
        let id = inner.new_token("AAMkAG", mailbox);
        let immutable_id = inner.new_token("AAkALg", mailbox);
        let change_key = inner.change_key();
        let seq = inner.next_seq();
        let mb = inner.mailbox(mailbox)?;
        let idx = mb.folder_ref(folder)?;
        let folder_id = mb.folders[idx].id.clone();
        let msg = Message {
            id: id.clone(),
            immutable_id: immutable_id.clone(),
            change_key,
            folder_id: folder_id.clone(),
            mime,
            props,
            is_read: opts.is_read,
            is_draft: opts.is_draft,
            received: opts.received,
            last_modified: opts.received,
            seq,
        };
        mb.journal(
            &folder_id,
            JournalEntry {
                seq,
                kind: ChangeKind::Created,
                immutable_id: immutable_id.clone(),
                id: id.clone(),
            },
        );
        mb.by_id.insert(id, immutable_id.clone());
        mb.messages.insert(immutable_id, msg.clone());
        drop(inner);
        self.announce(Created {
            mailbox: mailbox.to_string(),
            folder_id,
            id: msg.id.clone(),
            change_key: msg.change_key.clone(),
            new_mail: !opts.is_draft,
        });
        Ok(msg)
    }

    /// A message by current id or immutable id.
    pub fn get(&self, mailbox: &str, id: &str) -> Result<Message, StoreError> {
        let mut inner = lock(&self.inner);
        let mb = inner.mailbox(mailbox)?;
        mb.immutable_of(id)
            .and_then(|i| mb.messages.get(&i).cloned())
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))
    }

    /// Finds the mailbox holding a message id (for EWS ids that carry no mailbox).
    pub fn locate(&self, id: &str) -> Option<String> {
        let inner = lock(&self.inner);
        inner
            .mailboxes
            .iter()
            .find(|(_, mb)| mb.immutable_of(id).is_some())
            .map(|(k, _)| k.clone())
    }

    /// The mailbox (primary address) holding the folder with this id, if any. EWS folder ids
    /// name their mailbox, so a `FolderId` from a shared mailbox addresses that mailbox.
    pub fn locate_folder(&self, id: &str) -> Option<String> {
        let inner = lock(&self.inner);
        inner
            .mailboxes
            .iter()
            .find(|(_, mb)| mb.folders.iter().any(|f| f.id == id))
            .map(|(k, _)| k.clone())
    }

    /// Lists messages in a folder (`None`: every folder except hidden ones, like Graph
    /// `/messages`).
    pub fn list(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        q: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        let mut inner = lock(&self.inner);
        let mb = inner.mailbox(mailbox)?;
        let folder_id = match folder {
            Some(f) => Some(mb.folders[mb.folder_ref(f)?].id.clone()),
            None => None,
        };
        let hidden: Vec<&str> = mb
            .folders
            .iter()
            .filter(|f| f.well_known.is_some_and(WellKnownFolder::hidden))
            .map(|f| f.id.as_str())
            .collect();
        let mut items: Vec<&Message> = mb
            .messages
            .values()
            .filter(|m| match &folder_id {
                Some(f) => &m.folder_id == f,
                None => !hidden.contains(&m.folder_id.as_str()),
            })
            .filter(|m| q.is_read.is_none_or(|r| m.is_read == r))
            .filter(|m| q.received_ge.is_none_or(|t| m.received >= t))
            .filter(|m| q.received_gt.is_none_or(|t| m.received > t))
            .filter(|m| q.received_le.is_none_or(|t| m.received <= t))
            .filter(|m| q.received_lt.is_none_or(|t| m.received < t))
            .collect();
        // Ties broken by sequence so paging is stable.
        items.sort_by_key(|m| (m.received, m.seq));
        if q.order == Order::ReceivedDesc {
            items.reverse();
        }
        let total = items.len();
        let items = items
            .into_iter()
            .skip(q.skip)
            .take(q.top.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(ListPage { items, total })
    }

    /// Applies `f` to a message after an optional change-key check; bumps change key, sequence
    /// and journal. Returns the updated message.
    fn update(
        &self,
        mailbox: &str,
        id: &str,
        expected_change_key: Option<&str>,
        now: OffsetDateTime,
        f: impl FnOnce(&mut Message),
    ) -> Result<Message, StoreError> {
        let mut inner = lock(&self.inner);
        let change_key = inner.change_key();
        let seq = inner.next_seq();
        let mb = inner.mailbox(mailbox)?;
        let (imm, msg) = mb.message_mut(id)?;
        if let Some(ck) = expected_change_key
            && ck != msg.change_key
        {
            return Err(StoreError::ChangeKeyMismatch(id.to_string()));
        }
        f(msg);
        msg.change_key = change_key;
        msg.seq = seq;
        msg.last_modified = now;
        let out = msg.clone();
        mb.journal(
            &out.folder_id,
            JournalEntry {
                seq,
                kind: ChangeKind::Updated,
                immutable_id: imm,
                id: out.id.clone(),
            },
        );
        Ok(out)
    }

    /// Sets the read state. With `expected_change_key`, fails with
    /// [`StoreError::ChangeKeyMismatch`] unless it matches the current change key.
    pub fn set_read(
        &self,
        mailbox: &str,
        id: &str,
        is_read: bool,
        expected_change_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Message, StoreError> {
        self.update(mailbox, id, expected_change_key, now, |m| {
            m.is_read = is_read
        })
    }

    /// Replaces a message's MIME (drafts), re-deriving its properties.
    pub fn replace_mime(
        &self,
        mailbox: &str,
        id: &str,
        mime: impl Into<Bytes>,
        now: OffsetDateTime,
    ) -> Result<Message, StoreError> {
        let (mime, props) = MessageProps::read(mime)?;
        self.update(mailbox, id, None, now, |m| {
            m.mime = mime;
            m.props = props;
        })
    }

    /// Moves a message to another folder. The moved message gets a new id (its immutable id is
    /// kept); the source folder journals a deletion and the destination a creation.
    pub fn move_to(
        &self,
        mailbox: &str,
        id: &str,
        dest: &str,
        now: OffsetDateTime,
    ) -> Result<Message, StoreError> {
        let mut inner = lock(&self.inner);
        let new_id = inner.new_token("AAMkAG", mailbox);
        let change_key = inner.change_key();
        let seq = inner.next_seq();
        let mb = inner.mailbox(mailbox)?;
        let dest_idx = mb.folder_ref(dest)?;
        let dest_id = mb.folders[dest_idx].id.clone();
        let (imm, msg) = mb.message_mut(id)?;
        let old_id = std::mem::replace(&mut msg.id, new_id.clone());
        let old_folder = std::mem::replace(&mut msg.folder_id, dest_id.clone());
        msg.change_key = change_key;
        msg.seq = seq;
        msg.last_modified = now;
        let out = msg.clone();
        mb.by_id.remove(&old_id);
        mb.by_id.insert(new_id.clone(), imm.clone());
        mb.journal(
            &old_folder,
            JournalEntry {
                seq,
                kind: ChangeKind::Deleted,
                immutable_id: imm.clone(),
                id: old_id,
            },
        );
        mb.journal(
            &dest_id,
            JournalEntry {
                seq,
                kind: ChangeKind::Created,
                immutable_id: imm,
                id: new_id,
            },
        );
        drop(inner);
        self.announce(Created {
            mailbox: mailbox.to_string(),
            folder_id: dest_id,
            id: out.id.clone(),
            change_key: out.change_key.clone(),
            new_mail: false,
        });
        Ok(out)
    }

    /// Copies a message into a folder (a new message with new ids, same received time,
    /// `last_modified` = `now`).
    pub fn copy_to(
        &self,
        mailbox: &str,
        id: &str,
        dest: &str,
        now: OffsetDateTime,
    ) -> Result<Message, StoreError> {
        let src = self.get(mailbox, id)?;
        let copy = self.insert(
            mailbox,
            dest,
            src.mime.clone(),
            InsertOptions {
                is_read: src.is_read,
                is_draft: src.is_draft,
                received: src.received,
            },
        )?;
        // The copy keeps the original's received time; it was last modified now.
        let mut inner = lock(&self.inner);
        let mb = inner.mailbox(mailbox)?;
        Ok(match mb.messages.get_mut(&copy.immutable_id) {
            Some(m) => {
                m.last_modified = now;
                m.clone()
            }
            None => copy,
        })
    }

    /// Deletes a message. Returns the message as it was (for `MoveToDeletedItems` and
    /// `SoftDelete`: as it is now, in its new folder).
    pub fn delete(
        &self,
        mailbox: &str,
        id: &str,
        mode: DeleteMode,
        now: OffsetDateTime,
    ) -> Result<Message, StoreError> {
        match mode {
            DeleteMode::MoveToDeletedItems => self.move_to(mailbox, id, "deleteditems", now),
            DeleteMode::SoftDelete => self.move_to(mailbox, id, "recoverableitemsdeletions", now),
            DeleteMode::HardDelete => {
                let mut inner = lock(&self.inner);
                let seq = inner.next_seq();
                let mb = inner.mailbox(mailbox)?;
                let imm = mb.require_immutable(id)?;
                let msg = mb
                    .messages
                    .remove(&imm)
                    .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
                mb.by_id.remove(&msg.id);
                mb.journal(
                    &msg.folder_id,
                    JournalEntry {
                        seq,
                        kind: ChangeKind::Deleted,
                        immutable_id: imm,
                        id: msg.id.clone(),
                    },
                );
                Ok(msg)
            }
        }
    }

    /// Net changes in a folder since sequence `since` (0 = everything ever in the folder).
    /// A message created and removed within the window does not appear; one that existed before
    /// and left appears as `Deleted`; one that arrived appears as `Created` (even if later
    /// updated); one that was there and changed appears as `Updated`.
    pub fn changes_since(
        &self,
        mailbox: &str,
        folder: &str,
        since: u64,
    ) -> Result<FolderChanges, StoreError> {
        let mut inner = lock(&self.inner);
        let latest_seq = inner.seq;
        let mb = inner.mailbox(mailbox)?;
        let idx = mb.folder_ref(folder)?;
        let f = &mb.folders[idx];
        // first and last entry per immutable id within the window
        let mut per: BTreeMap<String, (JournalEntry, JournalEntry)> = BTreeMap::new();
        for e in f.journal.iter().filter(|e| e.seq > since) {
            per.entry(e.immutable_id.clone())
                .and_modify(|(_, last)| *last = e.clone())
                .or_insert_with(|| (e.clone(), e.clone()));
        }
        let mut changes: Vec<FolderChange> = per
            .into_iter()
            .filter_map(|(imm, (first, last))| {
                let present = mb
                    .messages
                    .get(&imm)
                    .filter(|m| m.folder_id == f.id)
                    .cloned();
                let existed_before = first.kind != ChangeKind::Created;
                let kind = match (&present, existed_before) {
                    (Some(_), false) => ChangeKind::Created,
                    (Some(_), true) => ChangeKind::Updated,
                    (None, true) => ChangeKind::Deleted,
                    (None, false) => return None,
                };
                let id = present
                    .as_ref()
                    .map(|m| m.id.clone())
                    .unwrap_or(last.id.clone());
                Some(FolderChange {
                    kind,
                    immutable_id: imm,
                    id,
                    message: present,
                    seq: last.seq,
                })
            })
            .collect();
        changes.sort_by_key(|c| c.seq);
        Ok(FolderChanges {
            changes,
            latest_seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TEST_MIME as MIME;

    const MB: &str = "u@contoso.example";

    fn opts(t: i64) -> InsertOptions {
        InsertOptions {
            is_read: false,
            is_draft: false,
            received: OffsetDateTime::from_unix_timestamp(t).unwrap(),
        }
    }

    /// A store with mailbox [`MB`] and one unread message in its Inbox.
    fn store_with_one_message() -> (MailStore, Message) {
        let s = MailStore::new();
        s.ensure_mailbox(MB);
        let m = s.insert(MB, "inbox", MIME, opts(10)).unwrap();
        (s, m)
    }

    /// The received times (Unix seconds) of a listing page, in its order.
    fn received_times(page: &ListPage) -> Vec<i64> {
        page.items
            .iter()
            .map(|m| m.received.unix_timestamp())
            .collect()
    }

    #[test]
    fn move_changes_id_but_not_immutable_id() {
        let (s, m) = store_with_one_message();
        let now = OffsetDateTime::now_utc();
        let moved = s.move_to(MB, &m.id, "archive", now).unwrap();
        assert_ne!(moved.id, m.id);
        assert_eq!(moved.immutable_id, m.immutable_id);
        assert!(matches!(s.get(MB, &m.id), Err(StoreError::ItemNotFound(_))));
        assert_eq!(s.get(MB, &m.immutable_id).unwrap().id, moved.id);
        assert_eq!(s.folder(MB, "inbox").unwrap().total_count, 0);
        assert_eq!(s.folder(MB, "archive").unwrap().unread_count, 1);
    }

    #[test]
    fn change_key_conflicts_are_detected() {
        let (s, m) = store_with_one_message();
        let now = OffsetDateTime::now_utc();
        let r = s
            .set_read(MB, &m.id, true, Some(&m.change_key), now)
            .unwrap();
        assert_ne!(r.change_key, m.change_key);
        let e = s.set_read(MB, &m.id, false, Some(&m.change_key), now);
        assert!(matches!(e, Err(StoreError::ChangeKeyMismatch(_))));
    }

    #[test]
    fn listing_filters_orders_and_pages() {
        let s = MailStore::new();
        s.ensure_mailbox(MB);
        for t in [30, 10, 20] {
            s.insert(MB, "inbox", MIME, opts(t)).unwrap();
        }
        let page = s
            .list(
                MB,
                Some("inbox"),
                &ListQuery {
                    top: Some(2),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(received_times(&page), vec![30, 20]);
        let q = ListQuery {
            order: Order::ReceivedAsc,
            skip: 1,
            ..Default::default()
        };
        let page = s.list(MB, Some("inbox"), &q).unwrap();
        assert_eq!(received_times(&page), vec![20, 30]);
    }

    #[test]
    fn journal_collapses_changes() {
        let s = MailStore::new();
        s.ensure_mailbox(MB);
        let a = s.insert(MB, "inbox", MIME, opts(1)).unwrap();
        let b = s.insert(MB, "inbox", MIME, opts(2)).unwrap();
        let base = s.current_seq();
        let now = OffsetDateTime::now_utc();
        s.set_read(MB, &a.id, true, None, now).unwrap();
        s.delete(MB, &b.id, DeleteMode::SoftDelete, now).unwrap();
        let c = s.insert(MB, "inbox", MIME, opts(3)).unwrap();
        let d = s.insert(MB, "inbox", MIME, opts(4)).unwrap();
        s.delete(MB, &d.id, DeleteMode::HardDelete, now).unwrap();
        let ch = s.changes_since(MB, "inbox", base).unwrap();
        let kinds: Vec<(String, ChangeKind)> = ch
            .changes
            .iter()
            .map(|c| (c.immutable_id.clone(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (a.immutable_id, ChangeKind::Updated),
                (b.immutable_id, ChangeKind::Deleted),
                (c.immutable_id, ChangeKind::Created),
            ]
        );
        assert_eq!(ch.latest_seq, s.current_seq());
        assert!(
            s.changes_since(MB, "inbox", ch.latest_seq)
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn folders_and_errors() {
        let s = MailStore::new();
        s.ensure_mailbox(MB);
        let top = s.list_folders(MB, None, false).unwrap();
        assert!(
            top.iter()
                .any(|f| f.well_known == Some(WellKnownFolder::Inbox))
        );
        assert!(!top.iter().any(|f| f.is_hidden));
        let p = s.create_folder(MB, Some("inbox"), "Projects").unwrap();
        assert_eq!(s.folder(MB, "inbox").unwrap().child_folder_count, 1);
        assert!(matches!(
            s.create_folder(MB, Some("inbox"), "projects"),
            Err(StoreError::FolderExists(_))
        ));
        let c = s.create_folder(MB, Some(&p.id), "Alpha").unwrap();
        assert_eq!(c.parent_id.as_deref(), Some(p.id.as_str()));
        assert!(matches!(
            s.folder("x@y", "inbox"),
            Err(StoreError::MailboxNotFound(_))
        ));
        assert!(matches!(
            s.folder(MB, "nope"),
            Err(StoreError::FolderNotFound(_))
        ));
        assert!(matches!(
            s.insert(MB, "inbox", &b""[..], opts(1)),
            Err(StoreError::InvalidMime)
        ));
    }
}
