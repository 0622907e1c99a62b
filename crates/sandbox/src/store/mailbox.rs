//! The data behind the store's lock: mailboxes with their folders, messages and each folder's
//! change journal, and the store-wide sequence and id counters.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;

use super::{ChangeKind, FolderInfo, Message, StoreError, WellKnownFolder};

#[derive(Clone, Debug)]
pub(super) struct JournalEntry {
    pub(super) seq: u64,
    pub(super) kind: ChangeKind,
    pub(super) immutable_id: String,
    pub(super) id: String,
}

#[derive(Debug)]
pub(super) struct Folder {
    pub(super) id: String,
    pub(super) display_name: String,
    pub(super) parent_id: Option<String>,
    pub(super) well_known: Option<WellKnownFolder>,
    pub(super) journal: Vec<JournalEntry>,
}

#[derive(Debug, Default)]
pub(super) struct MailboxData {
    pub(super) folders: Vec<Folder>,
    /// by immutable id
    pub(super) messages: HashMap<String, Message>,
    /// current id -> immutable id
    pub(super) by_id: HashMap<String, String>,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) mailboxes: BTreeMap<String, MailboxData>,
    pub(super) seq: u64,
    pub(super) counter: u64,
}

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Inner {
    pub(super) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn new_token(&mut self, prefix: &str, mailbox: &str) -> String {
        self.counter += 1;
        let mut b = Vec::with_capacity(40);
        let d = ring::digest::digest(&ring::digest::SHA256, mailbox.as_bytes());
        b.extend_from_slice(&d.as_ref()[..8]);
        b.extend_from_slice(&self.counter.to_be_bytes());
        b.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        format!("{prefix}{}", b64(&b))
    }

    pub(super) fn change_key(&mut self) -> String {
        self.counter += 1;
        format!("CQAAAB{}", b64(&self.counter.to_be_bytes()))
    }

    pub(super) fn mailbox(&mut self, mailbox: &str) -> Result<&mut MailboxData, StoreError> {
        self.mailboxes
            .get_mut(&mailbox.to_ascii_lowercase())
            .ok_or_else(|| StoreError::MailboxNotFound(mailbox.to_string()))
    }
}

impl MailboxData {
    pub(super) fn folder_idx(&self, r: &str) -> Option<usize> {
        if let Some(w) = WellKnownFolder::from_name(r) {
            return self.folders.iter().position(|f| f.well_known == Some(w));
        }
        self.folders.iter().position(|f| f.id == r)
    }

    pub(super) fn folder_ref(&self, r: &str) -> Result<usize, StoreError> {
        self.folder_idx(r)
            .ok_or_else(|| StoreError::FolderNotFound(r.to_string()))
    }

    pub(super) fn immutable_of(&self, id: &str) -> Option<String> {
        if self.messages.contains_key(id) {
            return Some(id.to_string());
        }
        self.by_id.get(id).cloned()
    }

    /// [`Self::immutable_of`], or `ItemNotFound`.
    pub(super) fn require_immutable(&self, id: &str) -> Result<String, StoreError> {
        self.immutable_of(id)
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))
    }

    /// Message `id` (by either id) to change, with its immutable id; or `ItemNotFound`.
    pub(super) fn message_mut(&mut self, id: &str) -> Result<(String, &mut Message), StoreError> {
        let imm = self.require_immutable(id)?;
        let msg = self
            .messages
            .get_mut(&imm)
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
        Ok((imm, msg))
    }

    pub(super) fn info(&self, idx: usize) -> FolderInfo {
        let f = &self.folders[idx];
        let (mut total, mut unread) = (0, 0);
        for m in self.messages.values().filter(|m| m.folder_id == f.id) {
            total += 1;
            if !m.is_read {
                unread += 1;
            }
        }
        FolderInfo {
            id: f.id.clone(),
            display_name: f.display_name.clone(),
            parent_id: f.parent_id.clone(),
            well_known: f.well_known,
            total_count: total,
            unread_count: unread,
            child_folder_count: self
                .folders
                .iter()
                .filter(|c| c.parent_id.as_deref() == Some(&f.id))
                .count(),
            is_hidden: f.well_known.is_some_and(WellKnownFolder::hidden),
        }
    }

    pub(super) fn journal(&mut self, folder_id: &str, entry: JournalEntry) {
        if let Some(f) = self.folders.iter_mut().find(|f| f.id == folder_id) {
            f.journal.push(entry);
        }
    }
}
