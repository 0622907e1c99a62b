//! What callers pass to the store's operations and get back: listing queries and pages, delete
//! modes, insert options and a folder's changes.

use time::OffsetDateTime;

use super::Message;

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

/// A listing query. All filters are optional and combined with AND. Start from the default
/// (everything, newest first) and set the fields wanted; the query may gain filters.
///
/// ```
/// use sandbox::store::ListQuery;
///
/// let mut unread = ListQuery::default();
/// unread.is_read = Some(false);
/// unread.top = Some(10);
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct ListPage {
    /// The messages on this page.
    pub items: Vec<Message>,
    /// Number of messages matching the filter (all pages).
    pub total: usize,
}

/// How [`MailStore::delete`](super::MailStore::delete) removes a message (EWS `DeleteType`).
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct FolderChanges {
    /// Changes ordered by sequence number.
    pub changes: Vec<FolderChange>,
    /// The store's current sequence number: pass it as `since` next time.
    pub latest_seq: u64,
}

/// Options for [`MailStore::insert`](super::MailStore::insert).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct InsertOptions {
    /// Initial read state.
    pub is_read: bool,
    /// Draft flag.
    pub is_draft: bool,
    /// Received time.
    pub received: OffsetDateTime,
}

impl InsertOptions {
    /// An unread message that is not a draft, received at `received`; set the other fields on
    /// the value (the type is `#[non_exhaustive]`, so it is built here, not by a literal).
    ///
    /// ```
    /// use sandbox::store::{InsertOptions, MailStore};
    ///
    /// let store = MailStore::new();
    /// store.ensure_mailbox("helpdesk@contoso.example");
    /// let mut opts = InsertOptions::new(time::OffsetDateTime::UNIX_EPOCH);
    /// opts.is_read = true;
    /// let mime = "From: a@example.org\r\nSubject: Hi\r\n\r\nHello\r\n";
    /// let m = store.insert("helpdesk@contoso.example", "inbox", mime, opts)?;
    /// assert!(m.is_read && !m.is_draft);
    /// assert_eq!(m.received, time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!(store.folder("helpdesk@contoso.example", "inbox")?.unread_count, 0);
    /// # Ok::<(), sandbox::store::StoreError>(())
    /// ```
    pub fn new(received: OffsetDateTime) -> Self {
        InsertOptions {
            is_read: false,
            is_draft: false,
            received,
        }
    }
}
