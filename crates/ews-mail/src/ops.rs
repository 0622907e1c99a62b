//! The EWS operations a mail connector uses, as values that write their request element and
//! read their response ([`Operation`]). No I/O: run them with [`crate::EwsClient::call`], or
//! write them with [`crate::soap::envelope`] and parse with [`crate::soap::parse_envelope`].
//!
//! Batched operations answer one result per input, in order: a failed item is an
//! `Err(ResponseError)` in its slot, never dropped.

use base64::Engine as _;

use crate::error::{EwsError, ResponseError};
use crate::soap::{Operation, response_messages};
use crate::types::{Folder, FolderId, Item, ItemId};
use crate::xml::{Element, Writer};

/// One result per input item.
pub type ItemResults<T> = Vec<Result<T, ResponseError>>;

/// The properties GetItem asks for besides MIME: what routing and acknowledging need.
pub const ROUTING_PROPERTIES: &[&str] = &[
    "item:Subject",
    "item:DateTimeReceived",
    "message:InternetMessageId",
    "message:From",
    "message:ToRecipients",
    "message:CcRecipients",
    "message:IsRead",
];

fn write_folder_ids(w: &mut Writer, tag: &'static str, ids: &[FolderId]) {
    w.start(tag, &[]);
    for f in ids {
        f.write(w);
    }
    w.end();
}

fn write_item_ids(w: &mut Writer, tag: &'static str, ids: &[ItemId]) {
    w.start(tag, &[]);
    for i in ids {
        i.write(w);
    }
    w.end();
}

fn write_properties(w: &mut Writer, props: &[&str]) {
    if props.is_empty() {
        return;
    }
    w.start("t:AdditionalProperties", &[]);
    for p in props {
        w.empty("t:FieldURI", &[("FieldURI", p)]);
    }
    w.end();
}

fn bad(op: &str, what: &str) -> EwsError {
    EwsError::BadXml(format!("{op} response: {what}"))
}

/// Maps each response message through `f`, keeping per-item errors in place.
fn per_item<T>(
    response: &Element,
    op: &str,
    mut f: impl FnMut(&Element) -> Result<T, EwsError>,
) -> Result<ItemResults<T>, EwsError> {
    let mut out = Vec::new();
    for r in response_messages(response)? {
        match r {
            Ok(msg) => out.push(Ok(f(msg)?)),
            Err(e) => out.push(Err(e)),
        }
    }
    if out.is_empty() {
        return Err(bad(op, "no response messages"));
    }
    Ok(out)
}

fn items_of(msg: &Element) -> Result<Vec<Item>, EwsError> {
    let Some(items) = msg.child("Items") else {
        return Ok(Vec::new());
    };
    items
        .children
        .iter()
        .map(|i| Item::parse(i).map_err(EwsError::BadXml))
        .collect()
}

fn first_item_id(msg: &Element) -> Option<ItemId> {
    msg.child("Items")
        .and_then(|i| i.children.first())
        .and_then(|m| m.child("ItemId").or_else(|| m.child("ItemID")))
        .and_then(ItemId::parse)
}

/// Sort direction for [`FindItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// `FindItem`: one page of a folder's items, optionally only unread ones, sorted by
/// `DateTimeReceived`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindItem {
    /// The folder to list.
    pub folder: FolderId,
    /// Page size (`MaxEntriesReturned`, at most 1000).
    pub max_entries: u32,
    /// `Offset` from the beginning.
    pub offset: u32,
    /// Restrict to `message:IsRead = false`.
    pub unread_only: bool,
    /// Sort on `item:DateTimeReceived`.
    pub sort: SortDirection,
}

impl FindItem {
    /// Unread items of `folder`, oldest first, `max_entries` from `offset`.
    pub fn unread(folder: FolderId, offset: u32, max_entries: u32) -> Self {
        FindItem {
            folder,
            max_entries: max_entries.clamp(1, 1000),
            offset,
            unread_only: true,
            sort: SortDirection::Ascending,
        }
    }

    /// All items of `folder`, read or not, oldest first, `max_entries` from `offset`.
    pub fn all(folder: FolderId, offset: u32, max_entries: u32) -> Self {
        FindItem {
            unread_only: false,
            ..FindItem::unread(folder, offset, max_entries)
        }
    }

    /// Sorts the other way (default: [`SortDirection::Ascending`], oldest first).
    pub fn with_sort(mut self, sort: SortDirection) -> Self {
        self.sort = sort;
        self
    }
}

/// A page of [`FindItem`] results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FindItemPage {
    /// The items (ids and received times).
    pub items: Vec<Item>,
    /// `TotalItemsInView`.
    pub total: Option<u64>,
    /// `IndexedPagingOffset`: where the next page starts.
    pub next_offset: Option<u32>,
    /// `IncludesLastItemInRange`.
    pub includes_last: bool,
}

impl Operation for FindItem {
    type Response = FindItemPage;
    const NAME: &'static str = "FindItem";

    fn write(&self, w: &mut Writer) {
        w.start("m:FindItem", &[("Traversal", "Shallow")]);
        w.start("m:ItemShape", &[]);
        w.text_element("t:BaseShape", "IdOnly");
        write_properties(w, &["item:DateTimeReceived"]);
        w.end();
        let (max, off) = (self.max_entries.to_string(), self.offset.to_string());
        w.empty(
            "m:IndexedPageItemView",
            &[
                ("MaxEntriesReturned", &max),
                ("Offset", &off),
                ("BasePoint", "Beginning"),
            ],
        );
        if self.unread_only {
            w.start("m:Restriction", &[]);
            w.start("t:IsEqualTo", &[]);
            w.empty("t:FieldURI", &[("FieldURI", "message:IsRead")]);
            w.start("t:FieldURIOrConstant", &[]);
            w.empty("t:Constant", &[("Value", "false")]);
            w.end();
            w.end();
            w.end();
        }
        w.start("m:SortOrder", &[]);
        let order = match self.sort {
            SortDirection::Ascending => "Ascending",
            SortDirection::Descending => "Descending",
        };
        w.start("t:FieldOrder", &[("Order", order)]);
        w.empty("t:FieldURI", &[("FieldURI", "item:DateTimeReceived")]);
        w.end();
        w.end();
        write_folder_ids(w, "m:ParentFolderIds", std::slice::from_ref(&self.folder));
        w.end();
    }

    fn parse(response: &Element) -> Result<FindItemPage, EwsError> {
        let first = response_messages(response)?
            .into_iter()
            .next()
            .ok_or_else(|| bad("FindItem", "no response message"))?
            .map_err(EwsError::Response)?;
        let root = first
            .child("RootFolder")
            .ok_or_else(|| bad("FindItem", "no RootFolder"))?;
        Ok(FindItemPage {
            items: items_of(root)?,
            total: root.attr("TotalItemsInView").and_then(|v| v.parse().ok()),
            next_offset: root
                .attr("IndexedPagingOffset")
                .and_then(|v| v.parse().ok()),
            includes_last: root
                .attr("IncludesLastItemInRange")
                .is_none_or(|v| v.trim() != "false"),
        })
    }
}

/// `GetItem`: many items at once, with MIME and the routing properties.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetItem {
    /// The items.
    pub ids: Vec<ItemId>,
    /// `IncludeMimeContent`.
    pub include_mime: bool,
    /// `AdditionalProperties` FieldURIs.
    pub properties: Vec<&'static str>,
}

impl GetItem {
    /// Items with MIME and [`ROUTING_PROPERTIES`].
    pub fn with_mime(ids: Vec<ItemId>) -> Self {
        GetItem {
            ids,
            include_mime: true,
            properties: ROUTING_PROPERTIES.to_vec(),
        }
    }

    /// Only ids and change keys (to refresh a stale change key).
    pub fn ids_only(ids: Vec<ItemId>) -> Self {
        GetItem {
            ids,
            include_mime: false,
            properties: Vec::new(),
        }
    }
}

impl Operation for GetItem {
    type Response = ItemResults<Item>;
    const NAME: &'static str = "GetItem";

    fn write(&self, w: &mut Writer) {
        w.start("m:GetItem", &[]);
        w.start("m:ItemShape", &[]);
        w.text_element("t:BaseShape", "IdOnly");
        if self.include_mime {
            w.text_element("t:IncludeMimeContent", "true");
        }
        write_properties(w, &self.properties);
        w.end();
        write_item_ids(w, "m:ItemIds", &self.ids);
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "GetItem", |msg| {
            items_of(msg)?
                .into_iter()
                .next()
                .ok_or_else(|| bad("GetItem", "a success without an item"))
        })
    }
}

/// `GetFolder`: folders with their counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetFolder {
    /// The folders.
    pub ids: Vec<FolderId>,
}

impl GetFolder {
    /// These folders with the default shape (`TotalCount`, `UnreadCount` included).
    pub fn new(ids: Vec<FolderId>) -> Self {
        GetFolder { ids }
    }
}

impl Operation for GetFolder {
    type Response = ItemResults<Folder>;
    const NAME: &'static str = "GetFolder";

    fn write(&self, w: &mut Writer) {
        w.start("m:GetFolder", &[]);
        w.start("m:FolderShape", &[]);
        w.text_element("t:BaseShape", "Default");
        w.end();
        write_folder_ids(w, "m:FolderIds", &self.ids);
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "GetFolder", |msg| {
            msg.child("Folders")
                .and_then(|f| f.children.first())
                .map(Folder::parse)
                .ok_or_else(|| bad("GetFolder", "a success without a folder"))
        })
    }
}

/// `ConflictResolution` of [`UpdateItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictResolution {
    /// Fail on a stale change key.
    NeverOverwrite,
    /// Let the server merge (the EWS default).
    #[default]
    AutoResolve,
    /// Overwrite regardless of the change key.
    AlwaysOverwrite,
}

impl ConflictResolution {
    fn as_str(self) -> &'static str {
        match self {
            ConflictResolution::NeverOverwrite => "NeverOverwrite",
            ConflictResolution::AutoResolve => "AutoResolve",
            ConflictResolution::AlwaysOverwrite => "AlwaysOverwrite",
        }
    }
}

/// `UpdateItem` setting `message:IsRead` on many messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateItem {
    /// The messages (with change keys where known).
    pub ids: Vec<ItemId>,
    /// The new read state.
    pub is_read: bool,
    /// How to treat a stale change key.
    pub conflict: ConflictResolution,
}

impl UpdateItem {
    /// Marks these messages read, letting the server resolve conflicts.
    pub fn mark_read(ids: Vec<ItemId>) -> Self {
        UpdateItem {
            ids,
            is_read: true,
            conflict: ConflictResolution::AutoResolve,
        }
    }

    /// Marks `ids` unread.
    pub fn mark_unread(ids: Vec<ItemId>) -> Self {
        UpdateItem {
            is_read: false,
            ..UpdateItem::mark_read(ids)
        }
    }

    /// Resolves conflicts another way (default: [`ConflictResolution::AutoResolve`]).
    pub fn with_conflict(mut self, conflict: ConflictResolution) -> Self {
        self.conflict = conflict;
        self
    }
}

impl Operation for UpdateItem {
    type Response = ItemResults<Option<ItemId>>;
    const NAME: &'static str = "UpdateItem";

    fn write(&self, w: &mut Writer) {
        w.start(
            "m:UpdateItem",
            &[
                ("MessageDisposition", "SaveOnly"),
                ("ConflictResolution", self.conflict.as_str()),
            ],
        );
        w.start("m:ItemChanges", &[]);
        let value = if self.is_read { "true" } else { "false" };
        for id in &self.ids {
            w.start("t:ItemChange", &[]);
            id.write(w);
            w.start("t:Updates", &[]);
            w.start("t:SetItemField", &[]);
            w.empty("t:FieldURI", &[("FieldURI", "message:IsRead")]);
            w.start("t:Message", &[]);
            w.text_element("t:IsRead", value);
            w.end();
            w.end();
            w.end();
            w.end();
        }
        w.end();
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "UpdateItem", |msg| Ok(first_item_id(msg)))
    }
}

/// `MoveItem`: many items to one folder; answers the new ids (ids change on move).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MoveItem {
    /// The destination.
    pub to: FolderId,
    /// The items.
    pub ids: Vec<ItemId>,
}

impl MoveItem {
    /// Moves `ids` to the folder `to`.
    pub fn new(to: FolderId, ids: Vec<ItemId>) -> Self {
        MoveItem { to, ids }
    }
}

impl Operation for MoveItem {
    type Response = ItemResults<Option<ItemId>>;
    const NAME: &'static str = "MoveItem";

    fn write(&self, w: &mut Writer) {
        w.start("m:MoveItem", &[]);
        write_folder_ids(w, "m:ToFolderId", std::slice::from_ref(&self.to));
        write_item_ids(w, "m:ItemIds", &self.ids);
        w.text_element("m:ReturnNewItemIds", "true");
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "MoveItem", |msg| Ok(first_item_id(msg)))
    }
}

/// `DeleteType` of [`DeleteItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteType {
    /// Gone for good.
    HardDelete,
    /// Into Recoverable Items.
    SoftDelete,
    /// Into Deleted Items.
    #[default]
    MoveToDeletedItems,
}

impl DeleteType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteType::HardDelete => "HardDelete",
            DeleteType::SoftDelete => "SoftDelete",
            DeleteType::MoveToDeletedItems => "MoveToDeletedItems",
        }
    }
}

/// `DeleteItem`: many items.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteItem {
    /// The items.
    pub ids: Vec<ItemId>,
    /// How.
    pub delete_type: DeleteType,
}

impl DeleteItem {
    /// Deletes `ids` the way `delete_type` says.
    pub fn new(ids: Vec<ItemId>, delete_type: DeleteType) -> Self {
        DeleteItem { ids, delete_type }
    }
}

impl Operation for DeleteItem {
    type Response = ItemResults<()>;
    const NAME: &'static str = "DeleteItem";

    fn write(&self, w: &mut Writer) {
        w.start("m:DeleteItem", &[("DeleteType", self.delete_type.as_str())]);
        write_item_ids(w, "m:ItemIds", &self.ids);
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "DeleteItem", |_| Ok(()))
    }
}

/// `MessageDisposition` of [`CreateItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageDisposition {
    /// Save a draft (returns its id).
    SaveOnly,
    /// Send without a copy (no id).
    SendOnly,
    /// Send and keep a copy in the saved-item folder (no id).
    SendAndSaveCopy,
}

impl MessageDisposition {
    fn as_str(self) -> &'static str {
        match self {
            MessageDisposition::SaveOnly => "SaveOnly",
            MessageDisposition::SendOnly => "SendOnly",
            MessageDisposition::SendAndSaveCopy => "SendAndSaveCopy",
        }
    }
}

/// `CreateItem` of one message from raw MIME.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateItem {
    /// The RFC 822 message.
    pub mime: Vec<u8>,
    /// What to do with it.
    pub disposition: MessageDisposition,
    /// Where the copy goes (`sentitems` for sends, `drafts` for `SaveOnly`).
    pub saved_folder: Option<FolderId>,
}

impl CreateItem {
    /// Creates one message from `mime`, saved in `saved_folder` when given (its
    /// `SavedItemFolderId`).
    pub fn new(
        mime: Vec<u8>,
        disposition: MessageDisposition,
        saved_folder: Option<FolderId>,
    ) -> Self {
        CreateItem {
            mime,
            disposition,
            saved_folder,
        }
    }
}

impl std::fmt::Debug for CreateItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateItem")
            .field("mime_bytes", &self.mime.len())
            .field("disposition", &self.disposition)
            .field("saved_folder", &self.saved_folder)
            .finish()
    }
}

impl Operation for CreateItem {
    type Response = ItemResults<Option<ItemId>>;
    const NAME: &'static str = "CreateItem";
    const IDEMPOTENT: bool = false;

    fn write(&self, w: &mut Writer) {
        w.start(
            "m:CreateItem",
            &[("MessageDisposition", self.disposition.as_str())],
        );
        if let Some(f) = &self.saved_folder {
            write_folder_ids(w, "m:SavedItemFolderId", std::slice::from_ref(f));
        }
        w.start("m:Items", &[]);
        w.start("t:Message", &[]);
        w.text_element(
            "t:MimeContent",
            &base64::engine::general_purpose::STANDARD.encode(&self.mime),
        );
        w.end();
        w.end();
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "CreateItem", |msg| Ok(first_item_id(msg)))
    }
}

/// `SendItem`: sends saved drafts, keeping a copy in `saved_folder` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendItem {
    /// The drafts.
    pub ids: Vec<ItemId>,
    /// Where the sent copy goes (`None`: no copy).
    pub saved_folder: Option<FolderId>,
}

impl SendItem {
    /// Sends the drafts `ids`, keeping a copy in `saved_folder` when given.
    pub fn new(ids: Vec<ItemId>, saved_folder: Option<FolderId>) -> Self {
        SendItem { ids, saved_folder }
    }
}

impl Operation for SendItem {
    type Response = ItemResults<()>;
    const NAME: &'static str = "SendItem";
    const IDEMPOTENT: bool = false;

    fn write(&self, w: &mut Writer) {
        let save = if self.saved_folder.is_some() {
            "true"
        } else {
            "false"
        };
        w.start("m:SendItem", &[("SaveItemToFolder", save)]);
        write_item_ids(w, "m:ItemIds", &self.ids);
        if let Some(f) = &self.saved_folder {
            write_folder_ids(w, "m:SavedItemFolderId", std::slice::from_ref(f));
        }
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "SendItem", |_| Ok(()))
    }
}

/// `SyncFolderItems`: changes in a folder since a sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncFolderItems {
    /// The folder.
    pub folder: FolderId,
    /// The state from the last call (`None` on the first).
    pub sync_state: Option<String>,
    /// `MaxChangesReturned` (1–512).
    pub max_changes: u32,
}

impl SyncFolderItems {
    /// Up to `max_changes` changes in `folder` since `sync_state` (`None`: from the beginning).
    pub fn new(folder: FolderId, sync_state: Option<String>, max_changes: u32) -> Self {
        SyncFolderItems {
            folder,
            sync_state,
            max_changes,
        }
    }
}

/// One change reported by [`SyncFolderItems`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncChange {
    /// A new item.
    Create(Item),
    /// A changed item.
    Update(Item),
    /// A removed item.
    Delete(ItemId),
    /// The read flag changed.
    ReadFlagChange(ItemId, bool),
}

/// The answer of [`SyncFolderItems`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncPage {
    /// The state to pass next time.
    pub sync_state: String,
    /// Whether the folder is now fully synchronised.
    pub includes_last: bool,
    /// The changes, in order.
    pub changes: Vec<SyncChange>,
}

impl Operation for SyncFolderItems {
    type Response = SyncPage;
    const NAME: &'static str = "SyncFolderItems";

    fn write(&self, w: &mut Writer) {
        w.start("m:SyncFolderItems", &[]);
        w.start("m:ItemShape", &[]);
        w.text_element("t:BaseShape", "IdOnly");
        w.end();
        write_folder_ids(w, "m:SyncFolderId", std::slice::from_ref(&self.folder));
        if let Some(s) = &self.sync_state {
            w.text_element("m:SyncState", s);
        }
        w.text_element(
            "m:MaxChangesReturned",
            &self.max_changes.clamp(1, 512).to_string(),
        );
        w.end();
    }

    fn parse(response: &Element) -> Result<SyncPage, EwsError> {
        let msg = response_messages(response)?
            .into_iter()
            .next()
            .ok_or_else(|| bad("SyncFolderItems", "no response message"))?
            .map_err(EwsError::Response)?;
        let mut changes = Vec::new();
        if let Some(ch) = msg.child("Changes") {
            for c in &ch.children {
                let item = || -> Result<Item, EwsError> {
                    c.children
                        .first()
                        .ok_or_else(|| bad("SyncFolderItems", "an empty change"))
                        .and_then(|i| Item::parse(i).map_err(EwsError::BadXml))
                };
                let id = || {
                    c.child("ItemId")
                        .and_then(ItemId::parse)
                        .ok_or_else(|| bad("SyncFolderItems", "a change without an ItemId"))
                };
                changes.push(match c.name.as_str() {
                    "Create" => SyncChange::Create(item()?),
                    "Update" => SyncChange::Update(item()?),
                    "Delete" => SyncChange::Delete(id()?),
                    "ReadFlagChange" => {
                        SyncChange::ReadFlagChange(id()?, c.child_text("IsRead") == Some("true"))
                    }
                    _ => continue,
                });
            }
        }
        Ok(SyncPage {
            sync_state: msg.child_text("SyncState").unwrap_or("").to_string(),
            includes_last: msg.child_text("IncludesLastItemInRange") != Some("false"),
            changes,
        })
    }
}

/// `FindFolder`: the direct child folders of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindFolder {
    /// The parent.
    pub parent: FolderId,
}

impl FindFolder {
    /// The direct child folders of `parent`.
    pub fn new(parent: FolderId) -> Self {
        FindFolder { parent }
    }
}

impl Operation for FindFolder {
    type Response = Vec<Folder>;
    const NAME: &'static str = "FindFolder";

    fn write(&self, w: &mut Writer) {
        w.start("m:FindFolder", &[("Traversal", "Shallow")]);
        w.start("m:FolderShape", &[]);
        w.text_element("t:BaseShape", "Default");
        w.end();
        write_folder_ids(w, "m:ParentFolderIds", std::slice::from_ref(&self.parent));
        w.end();
    }

    fn parse(response: &Element) -> Result<Vec<Folder>, EwsError> {
        let msg = response_messages(response)?
            .into_iter()
            .next()
            .ok_or_else(|| bad("FindFolder", "no response message"))?
            .map_err(EwsError::Response)?;
        Ok(msg
            .path(&["RootFolder", "Folders"])
            .map(|f| f.children.iter().map(Folder::parse).collect())
            .unwrap_or_default())
    }
}

/// `CreateFolder`: one mail folder under a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateFolder {
    /// The parent.
    pub parent: FolderId,
    /// The new folder's display name.
    pub display_name: String,
}

impl CreateFolder {
    /// A folder named `display_name` under `parent`.
    pub fn new(parent: FolderId, display_name: impl Into<String>) -> Self {
        CreateFolder {
            parent,
            display_name: display_name.into(),
        }
    }
}

impl Operation for CreateFolder {
    type Response = ItemResults<Folder>;
    const NAME: &'static str = "CreateFolder";

    fn write(&self, w: &mut Writer) {
        w.start("m:CreateFolder", &[]);
        write_folder_ids(w, "m:ParentFolderId", std::slice::from_ref(&self.parent));
        w.start("m:Folders", &[]);
        w.start("t:Folder", &[]);
        w.text_element("t:DisplayName", &self.display_name);
        w.end();
        w.end();
        w.end();
    }

    fn parse(response: &Element) -> Result<Self::Response, EwsError> {
        per_item(response, "CreateFolder", |msg| {
            msg.child("Folders")
                .and_then(|f| f.children.first())
                .map(Folder::parse)
                .ok_or_else(|| bad("CreateFolder", "a success without a folder"))
        })
    }
}
