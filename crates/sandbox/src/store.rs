//! The mail store: mailboxes keyed by primary SMTP address, folders and messages.
//!
//! Messages are kept as raw RFC 822 MIME; the properties Graph and EWS expose are derived from it
//! with `mail-parser` when the message is stored ([`MessageProps`]).
//!
//! Ids, as in Exchange Online:
//! - [`Message::id`] changes when the message moves (Graph `id`, EWS `ItemId`);
//! - [`Message::change_key`] changes on every update (EWS `ChangeKey`, Graph `changeKey`);
//! - [`Message::immutable_id`] never changes (Graph `Prefer: IdType="ImmutableId"`).
//!
//! Every operation that accepts a message id accepts either the current id or the immutable id,
//! and every folder reference accepts a folder id or a well-known name (`inbox`, `sentitems`, ...).
//!
//! Each folder keeps a change journal with store-wide, strictly increasing sequence numbers;
//! [`MailStore::changes_since`] summarises it for Graph delta and EWS `SyncFolderItems`.
//!
//! Callers pass the mailbox's *primary* address (resolve aliases through the tenant first,
//! e.g. with [`crate::auth::Principal::may_read`] which returns it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::state::lock;

/// Well-known folders every mailbox has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum WellKnownFolder {
    /// The root of the visible folder tree (`msgfolderroot`).
    MsgFolderRoot,
    /// `inbox`
    Inbox,
    /// `drafts`
    Drafts,
    /// `sentitems`
    SentItems,
    /// `deleteditems`
    DeletedItems,
    /// `junkemail`
    JunkEmail,
    /// `archive`
    Archive,
    /// `outbox`
    Outbox,
    /// `recoverableitemsdeletions` (hidden; where soft-deleted items go)
    RecoverableItemsDeletions,
}

impl WellKnownFolder {
    /// All well-known folders, in creation order.
    pub const ALL: [WellKnownFolder; 9] = [
        WellKnownFolder::MsgFolderRoot,
        WellKnownFolder::Inbox,
        WellKnownFolder::Drafts,
        WellKnownFolder::SentItems,
        WellKnownFolder::DeletedItems,
        WellKnownFolder::JunkEmail,
        WellKnownFolder::Archive,
        WellKnownFolder::Outbox,
        WellKnownFolder::RecoverableItemsDeletions,
    ];

    /// Graph well-known name (also the EWS `DistinguishedFolderId` id, lower-cased).
    pub fn name(self) -> &'static str {
        match self {
            WellKnownFolder::MsgFolderRoot => "msgfolderroot",
            WellKnownFolder::Inbox => "inbox",
            WellKnownFolder::Drafts => "drafts",
            WellKnownFolder::SentItems => "sentitems",
            WellKnownFolder::DeletedItems => "deleteditems",
            WellKnownFolder::JunkEmail => "junkemail",
            WellKnownFolder::Archive => "archive",
            WellKnownFolder::Outbox => "outbox",
            WellKnownFolder::RecoverableItemsDeletions => "recoverableitemsdeletions",
        }
    }

    /// Display name as an English-language mailbox shows it.
    pub fn display_name(self) -> &'static str {
        match self {
            WellKnownFolder::MsgFolderRoot => "Top of Information Store",
            WellKnownFolder::Inbox => "Inbox",
            WellKnownFolder::Drafts => "Drafts",
            WellKnownFolder::SentItems => "Sent Items",
            WellKnownFolder::DeletedItems => "Deleted Items",
            WellKnownFolder::JunkEmail => "Junk Email",
            WellKnownFolder::Archive => "Archive",
            WellKnownFolder::Outbox => "Outbox",
            WellKnownFolder::RecoverableItemsDeletions => "Deletions",
        }
    }

    /// Parses a well-known name case-insensitively.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
    }

    fn hidden(self) -> bool {
        matches!(
            self,
            WellKnownFolder::MsgFolderRoot | WellKnownFolder::RecoverableItemsDeletions
        )
    }
}

/// Errors of store operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No mailbox with this primary address.
    #[error("mailbox {0} not found")]
    MailboxNotFound(String),
    /// No folder with this id or well-known name.
    #[error("folder {0} not found")]
    FolderNotFound(String),
    /// No message with this id (or it is in another mailbox).
    #[error("item {0} not found")]
    ItemNotFound(String),
    /// The change key given does not match the item's current one (EWS `ErrorIrresolvableConflict`).
    #[error("change key mismatch for item {0}")]
    ChangeKeyMismatch(String),
    /// A folder with this display name already exists under the parent (`ErrorFolderExists`).
    #[error("a folder named {0} already exists")]
    FolderExists(String),
    /// The MIME could not be parsed.
    #[error("the MIME content is not a readable RFC 822 message")]
    InvalidMime,
}

/// An e-mail address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EmailAddress {
    /// Display name (may be empty).
    pub name: String,
    /// The address.
    pub address: String,
}

/// Properties derived from a message's MIME.
#[derive(Clone, Debug, Default)]
pub struct MessageProps {
    /// `Subject`.
    pub subject: String,
    /// `From` (first address).
    pub from: Option<EmailAddress>,
    /// `Sender`, falling back to `From`.
    pub sender: Option<EmailAddress>,
    /// `To`.
    pub to: Vec<EmailAddress>,
    /// `Cc`.
    pub cc: Vec<EmailAddress>,
    /// `Bcc` (present on drafts and sent items only).
    pub bcc: Vec<EmailAddress>,
    /// `Reply-To`.
    pub reply_to: Vec<EmailAddress>,
    /// `Message-ID` with angle brackets, e.g. `<abc@example.com>`.
    pub internet_message_id: Option<String>,
    /// `Date`.
    pub sent: Option<OffsetDateTime>,
    /// Whether there are non-inline attachments (Graph `hasAttachments`).
    pub has_attachments: bool,
    /// Transport headers in order, unfolded (`internetMessageHeaders`).
    pub headers: Vec<(String, String)>,
    /// Plain text body (from the text part, or HTML stripped of nothing: raw HTML if that is all).
    pub body_text: String,
    /// HTML body if the message has one.
    pub body_html: Option<String>,
    /// First 255 characters of the text body, whitespace collapsed (`bodyPreview`).
    pub body_preview: String,
    /// Size of the MIME in bytes.
    pub size: usize,
}

impl MessageProps {
    /// Derives the properties from raw MIME. Fails only when mail-parser cannot read it at all,
    /// or panics on it (fuzz/README.md finding 3: a `debug_assert!` deep in multipart nesting,
    /// reachable in debug builds). Delivery reads bytes from any SMTP peer, so a panic here is
    /// turned into [`StoreError::InvalidMime`] instead of ending the session's task.
    pub fn from_mime(mime: &[u8]) -> Result<Self, StoreError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::derive(mime)))
            .unwrap_or(Err(StoreError::InvalidMime))
    }

    fn derive(mime: &[u8]) -> Result<Self, StoreError> {
        let msg = mail_parser::MessageParser::default()
            .parse(mime)
            .ok_or(StoreError::InvalidMime)?;
        let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<EmailAddress> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some(EmailAddress {
                            name: x.name().unwrap_or_default().to_string(),
                            address: x.address()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let from = addrs(msg.from()).into_iter().next();
        let sender = addrs(msg.sender())
            .into_iter()
            .next()
            .or_else(|| from.clone());
        let raw = msg.raw_message();
        let headers = msg
            .headers()
            .iter()
            .map(|h| {
                let start = h.offset_start as usize;
                let end = (h.offset_end as usize).min(raw.len());
                let value = raw
                    .get(start..end)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                (h.name.as_str().to_string(), unfold(&value))
            })
            .collect();
        let body_text = msg.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
        // mail-parser lists text parts as HTML bodies too (converting on access); only report
        // an HTML body when the message really has a text/html part.
        let has_html = msg.html_body.iter().any(|i| {
            msg.parts
                .get(*i as usize)
                .is_some_and(|p| matches!(p.body, mail_parser::PartType::Html(_)))
        });
        let body_html = if has_html {
            msg.body_html(0).map(|c| c.into_owned())
        } else {
            None
        };
        use mail_parser::MimeHeaders as _;
        let has_attachments = msg.attachments().any(|p| {
            let inline = p.content_disposition().is_some_and(|d| d.is_inline());
            !(inline && p.content_id().is_some())
        });
        let preview: String = body_text.split_whitespace().collect::<Vec<_>>().join(" ");
        let body_preview = preview.chars().take(255).collect();
        Ok(Self {
            subject: msg.subject().unwrap_or_default().to_string(),
            from,
            sender,
            to: addrs(msg.to()),
            cc: addrs(msg.cc()),
            bcc: addrs(msg.bcc()),
            reply_to: addrs(msg.reply_to()),
            internet_message_id: msg.message_id().map(|m| format!("<{m}>")),
            sent: msg
                .date()
                .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok()),
            has_attachments,
            headers,
            body_text,
            body_html,
            body_preview,
            size: mime.len(),
        })
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn unfold(v: &str) -> String {
    v.replace("\r\n", "\n")
        .split('\n')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A message as stored (a snapshot: cloning is cheap, MIME and properties are shared).
#[derive(Clone, Debug)]
pub struct Message {
    /// Current id (changes on move).
    pub id: String,
    /// Immutable id (never changes).
    pub immutable_id: String,
    /// Change key (changes on every update).
    pub change_key: String,
    /// Id of the folder holding the message.
    pub folder_id: String,
    /// The raw RFC 822 message.
    pub mime: Bytes,
    /// Properties derived from the MIME.
    pub props: Arc<MessageProps>,
    /// `isRead`.
    pub is_read: bool,
    /// `isDraft`.
    pub is_draft: bool,
    /// `receivedDateTime`.
    pub received: OffsetDateTime,
    /// `lastModifiedDateTime`.
    pub last_modified: OffsetDateTime,
    /// Sequence number of the last change to this message.
    pub seq: u64,
}

/// A folder snapshot with its counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    /// Folder id (stable).
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Parent folder id (`None` for the root).
    pub parent_id: Option<String>,
    /// The well-known folder this is, if any.
    pub well_known: Option<WellKnownFolder>,
    /// Number of messages.
    pub total_count: usize,
    /// Number of unread messages.
    pub unread_count: usize,
    /// Number of direct child folders.
    pub child_folder_count: usize,
    /// Hidden folder (root, recoverable items).
    pub is_hidden: bool,
}

/// Order of a message listing by received time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Newest first (the Graph default).
    #[default]
    ReceivedDesc,
    /// Oldest first.
    ReceivedAsc,
}

impl Order {
    /// The opposite order.
    pub fn reversed(self) -> Self {
        match self {
            Order::ReceivedDesc => Order::ReceivedAsc,
            Order::ReceivedAsc => Order::ReceivedDesc,
        }
    }
}

/// A listing query. All filters are optional and combined with AND.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only messages with this read state.
    pub is_read: Option<bool>,
    /// Received at or after.
    pub received_ge: Option<OffsetDateTime>,
    /// Received strictly after.
    pub received_gt: Option<OffsetDateTime>,
    /// Received at or before.
    pub received_le: Option<OffsetDateTime>,
    /// Received strictly before.
    pub received_lt: Option<OffsetDateTime>,
    /// Sort order.
    pub order: Order,
    /// Items to skip.
    pub skip: usize,
    /// Page size; `None` returns everything after `skip`.
    pub top: Option<usize>,
}

/// One page of a listing.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The messages on this page.
    pub items: Vec<Message>,
    /// Number of messages matching the filter (all pages).
    pub total: usize,
}

/// How [`MailStore::delete`] removes a message (EWS `DeleteType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Gone for good.
    HardDelete,
    /// Out of the visible folders, into the hidden Recoverable Items (what Graph `DELETE` does).
    SoftDelete,
    /// Into Deleted Items (a move: the id changes).
    MoveToDeletedItems,
}

/// Kind of a change in a folder's journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The message appeared in the folder (delivered, created, moved or copied in).
    Created,
    /// A property changed (read state, MIME of a draft).
    Updated,
    /// The message left the folder (deleted or moved out).
    Deleted,
}

/// One collapsed change since a sequence number.
#[derive(Clone, Debug)]
pub struct FolderChange {
    /// Net effect since the given sequence number.
    pub kind: ChangeKind,
    /// Immutable id of the message.
    pub immutable_id: String,
    /// Id the message had in this folder (for `Deleted`: the id it had when it left).
    pub id: String,
    /// The message as it is now, for `Created`/`Updated`.
    pub message: Option<Message>,
    /// Sequence number of the last change to it.
    pub seq: u64,
}

/// Changes in one folder since a sequence number.
#[derive(Clone, Debug)]
pub struct FolderChanges {
    /// Changes ordered by sequence number.
    pub changes: Vec<FolderChange>,
    /// The store's current sequence number: pass it as `since` next time.
    pub latest_seq: u64,
}

/// Options for [`MailStore::insert`].
#[derive(Clone, Debug)]
pub struct InsertOptions {
    /// Initial read state.
    pub is_read: bool,
    /// Draft flag.
    pub is_draft: bool,
    /// Received time.
    pub received: OffsetDateTime,
}

#[derive(Clone, Debug)]
struct JournalEntry {
    seq: u64,
    kind: ChangeKind,
    immutable_id: String,
    id: String,
}

#[derive(Debug)]
struct Folder {
    id: String,
    display_name: String,
    parent_id: Option<String>,
    well_known: Option<WellKnownFolder>,
    journal: Vec<JournalEntry>,
}

#[derive(Debug, Default)]
struct MailboxData {
    folders: Vec<Folder>,
    /// by immutable id
    messages: HashMap<String, Message>,
    /// current id -> immutable id
    by_id: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Inner {
    mailboxes: BTreeMap<String, MailboxData>,
    seq: u64,
    counter: u64,
}

/// The mail store. Thread-safe; every method takes `&self`.
#[derive(Debug, Default)]
pub struct MailStore {
    inner: Mutex<Inner>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Inner {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn new_token(&mut self, prefix: &str, mailbox: &str) -> String {
        self.counter += 1;
        let mut b = Vec::with_capacity(40);
        let d = ring::digest::digest(&ring::digest::SHA256, mailbox.as_bytes());
        b.extend_from_slice(&d.as_ref()[..8]);
        b.extend_from_slice(&self.counter.to_be_bytes());
        b.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        format!("{prefix}{}", b64(&b))
    }

    fn change_key(&mut self) -> String {
        self.counter += 1;
        format!("CQAAAB{}", b64(&self.counter.to_be_bytes()))
    }

    fn mailbox(&mut self, mailbox: &str) -> Result<&mut MailboxData, StoreError> {
        self.mailboxes
            .get_mut(&mailbox.to_ascii_lowercase())
            .ok_or_else(|| StoreError::MailboxNotFound(mailbox.to_string()))
    }
}

impl MailboxData {
    fn folder_idx(&self, r: &str) -> Option<usize> {
        if let Some(w) = WellKnownFolder::from_name(r) {
            return self.folders.iter().position(|f| f.well_known == Some(w));
        }
        self.folders.iter().position(|f| f.id == r)
    }

    fn folder_ref(&self, r: &str) -> Result<usize, StoreError> {
        self.folder_idx(r)
            .ok_or_else(|| StoreError::FolderNotFound(r.to_string()))
    }

    fn immutable_of(&self, id: &str) -> Option<String> {
        if self.messages.contains_key(id) {
            return Some(id.to_string());
        }
        self.by_id.get(id).cloned()
    }

    fn info(&self, idx: usize) -> FolderInfo {
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

    fn journal(&mut self, folder_id: &str, entry: JournalEntry) {
        if let Some(f) = self.folders.iter_mut().find(|f| f.id == folder_id) {
            f.journal.push(entry);
        }
    }
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
        let mime: Bytes = mime.into();
        let props = Arc::new(MessageProps::from_mime(&mime)?);
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
        let imm = mb
            .immutable_of(id)
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
        let msg = mb
            .messages
            .get_mut(&imm)
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
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
        let mime: Bytes = mime.into();
        let props = Arc::new(MessageProps::from_mime(&mime)?);
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
        let imm = mb
            .immutable_of(id)
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
        let msg = mb
            .messages
            .get_mut(&imm)
            .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
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
                let imm = mb
                    .immutable_of(id)
                    .ok_or_else(|| StoreError::ItemNotFound(id.to_string()))?;
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

    const MIME: &str = "From: A <a@x.example>\r\nTo: b@contoso.example, C <c@contoso.example>\r\nSubject: Hi\r\n there\r\nMessage-ID: <m1@x.example>\r\nDate: Mon, 02 Nov 2026 09:30:00 +0000\r\n\r\nHello   world\r\n";

    fn opts(t: i64) -> InsertOptions {
        InsertOptions {
            is_read: false,
            is_draft: false,
            received: OffsetDateTime::from_unix_timestamp(t).unwrap(),
        }
    }

    /// The finding-3 bytes make mail-parser's debug assertion fire in this (debug) build: the
    /// sandbox refuses them as invalid MIME instead of panicking. A build without debug
    /// assertions parses them.
    #[test]
    fn mime_the_parser_panics_on_is_invalid_not_a_panic() {
        const FINDING_3: &[u8] =
            include_bytes!("../../../fuzz/regressions/finding_3_mail_parser_debug_assert");
        let mime = &FINDING_3[2..];
        let parsed = MessageProps::from_mime(mime);
        if cfg!(debug_assertions) {
            assert!(matches!(parsed, Err(StoreError::InvalidMime)), "{parsed:?}");
        } else {
            assert!(parsed.is_ok(), "{parsed:?}");
        }
    }

    #[test]
    fn props_are_derived() {
        let p = MessageProps::from_mime(MIME.as_bytes()).unwrap();
        assert_eq!(p.subject, "Hi there");
        assert_eq!(p.to.len(), 2);
        assert_eq!(p.to[1].name, "C");
        assert_eq!(p.internet_message_id.as_deref(), Some("<m1@x.example>"));
        assert_eq!(p.header("subject"), Some("Hi there"));
        assert_eq!(p.body_preview, "Hello world");
        assert!(!p.has_attachments);
        assert!(p.body_html.is_none(), "text-only message has no HTML body");
        let html = "Subject: h\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n";
        let p = MessageProps::from_mime(html.as_bytes()).unwrap();
        assert!(
            p.body_html
                .as_deref()
                .unwrap_or_default()
                .contains("<b>there</b>")
        );
    }

    #[test]
    fn move_changes_id_but_not_immutable_id() {
        let s = MailStore::new();
        s.ensure_mailbox("u@contoso.example");
        let m = s
            .insert("u@contoso.example", "inbox", MIME, opts(10))
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let moved = s
            .move_to("u@contoso.example", &m.id, "archive", now)
            .unwrap();
        assert_ne!(moved.id, m.id);
        assert_eq!(moved.immutable_id, m.immutable_id);
        assert!(matches!(
            s.get("u@contoso.example", &m.id),
            Err(StoreError::ItemNotFound(_))
        ));
        assert_eq!(
            s.get("u@contoso.example", &m.immutable_id).unwrap().id,
            moved.id
        );
        assert_eq!(
            s.folder("u@contoso.example", "inbox").unwrap().total_count,
            0
        );
        assert_eq!(
            s.folder("u@contoso.example", "archive")
                .unwrap()
                .unread_count,
            1
        );
    }

    #[test]
    fn change_key_conflicts_are_detected() {
        let s = MailStore::new();
        s.ensure_mailbox("u@contoso.example");
        let m = s
            .insert("u@contoso.example", "inbox", MIME, opts(10))
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let r = s
            .set_read("u@contoso.example", &m.id, true, Some(&m.change_key), now)
            .unwrap();
        assert_ne!(r.change_key, m.change_key);
        let e = s.set_read("u@contoso.example", &m.id, false, Some(&m.change_key), now);
        assert!(matches!(e, Err(StoreError::ChangeKeyMismatch(_))));
    }

    #[test]
    fn listing_filters_orders_and_pages() {
        let s = MailStore::new();
        s.ensure_mailbox("u@contoso.example");
        for t in [30, 10, 20] {
            s.insert("u@contoso.example", "inbox", MIME, opts(t))
                .unwrap();
        }
        let page = s
            .list(
                "u@contoso.example",
                Some("inbox"),
                &ListQuery {
                    top: Some(2),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(page.total, 3);
        let times: Vec<i64> = page
            .items
            .iter()
            .map(|m| m.received.unix_timestamp())
            .collect();
        assert_eq!(times, vec![30, 20]);
        let q = ListQuery {
            order: Order::ReceivedAsc,
            skip: 1,
            ..Default::default()
        };
        let page = s.list("u@contoso.example", Some("inbox"), &q).unwrap();
        let times: Vec<i64> = page
            .items
            .iter()
            .map(|m| m.received.unix_timestamp())
            .collect();
        assert_eq!(times, vec![20, 30]);
    }

    #[test]
    fn journal_collapses_changes() {
        let s = MailStore::new();
        let mb = "u@contoso.example";
        s.ensure_mailbox(mb);
        let a = s.insert(mb, "inbox", MIME, opts(1)).unwrap();
        let b = s.insert(mb, "inbox", MIME, opts(2)).unwrap();
        let base = s.current_seq();
        let now = OffsetDateTime::now_utc();
        s.set_read(mb, &a.id, true, None, now).unwrap();
        s.delete(mb, &b.id, DeleteMode::SoftDelete, now).unwrap();
        let c = s.insert(mb, "inbox", MIME, opts(3)).unwrap();
        let d = s.insert(mb, "inbox", MIME, opts(4)).unwrap();
        s.delete(mb, &d.id, DeleteMode::HardDelete, now).unwrap();
        let ch = s.changes_since(mb, "inbox", base).unwrap();
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
            s.changes_since(mb, "inbox", ch.latest_seq)
                .unwrap()
                .changes
                .is_empty()
        );
    }

    #[test]
    fn folders_and_errors() {
        let s = MailStore::new();
        let mb = "u@contoso.example";
        s.ensure_mailbox(mb);
        let top = s.list_folders(mb, None, false).unwrap();
        assert!(
            top.iter()
                .any(|f| f.well_known == Some(WellKnownFolder::Inbox))
        );
        assert!(!top.iter().any(|f| f.is_hidden));
        let p = s.create_folder(mb, Some("inbox"), "Projects").unwrap();
        assert_eq!(s.folder(mb, "inbox").unwrap().child_folder_count, 1);
        assert!(matches!(
            s.create_folder(mb, Some("inbox"), "projects"),
            Err(StoreError::FolderExists(_))
        ));
        let c = s.create_folder(mb, Some(&p.id), "Alpha").unwrap();
        assert_eq!(c.parent_id.as_deref(), Some(p.id.as_str()));
        assert!(matches!(
            s.folder("x@y", "inbox"),
            Err(StoreError::MailboxNotFound(_))
        ));
        assert!(matches!(
            s.folder(mb, "nope"),
            Err(StoreError::FolderNotFound(_))
        ));
        assert!(matches!(
            s.insert(mb, "inbox", &b""[..], opts(1)),
            Err(StoreError::InvalidMime)
        ));
    }
}
