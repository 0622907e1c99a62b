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
//! e.g. with [`Tenant::mailbox`](crate::tenant::Tenant::mailbox), whose `mail` it is).
//!
//! The store's modules: the message properties derived from MIME (`props`), the queries and
//! results of its operations (`query`), one mailbox's folders, messages and change journal
//! (`mailbox`) and the [`MailStore`] operations (`mailstore`).

mod mailbox;
mod mailstore;
mod props;
mod query;

use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

pub(crate) use self::mailstore::Created;
pub use self::mailstore::MailStore;
pub use self::props::{EmailAddress, MessageProps};
pub use self::query::{
    ChangeKind, DeleteMode, FolderChange, FolderChanges, InsertOptions, ListPage, ListQuery, Order,
};

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

/// A message as stored (a snapshot: cloning is cheap, MIME and properties are shared).
#[derive(Clone, Debug)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// A small message the tests parse and store.
#[cfg(test)]
const TEST_MIME: &str = "From: A <a@x.example>\r\nTo: b@contoso.example, C <c@contoso.example>\r\nSubject: Hi\r\n there\r\nMessage-ID: <m1@x.example>\r\nDate: Mon, 02 Nov 2026 09:30:00 +0000\r\n\r\nHello   world\r\n";
