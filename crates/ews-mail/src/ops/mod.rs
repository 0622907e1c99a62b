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

mod change;
pub use change::*;

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

/// The first response message of a single-item operation's answer (`op` names it in errors):
/// its element on success, the service's error otherwise.
fn first_message<'a>(response: &'a Element, op: &str) -> Result<&'a Element, EwsError> {
    response_messages(response)?
        .into_iter()
        .next()
        .ok_or_else(|| bad(op, "no response message"))?
        .map_err(EwsError::Response)
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
        let first = first_message(response, "FindItem")?;
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
    /// `AdditionalProperties` FieldURIs of the created and updated items (none: ids only).
    pub properties: Vec<&'static str>,
}

impl SyncFolderItems {
    /// Up to `max_changes` changes in `folder` since `sync_state` (`None`: from the beginning).
    pub fn new(folder: FolderId, sync_state: Option<String>, max_changes: u32) -> Self {
        SyncFolderItems {
            folder,
            sync_state,
            max_changes,
            properties: Vec::new(),
        }
    }

    /// Asks for these properties of the created and updated items besides their ids
    /// (`message:IsRead`, `item:DateTimeReceived`...).
    pub fn with_properties(mut self, properties: &[&'static str]) -> Self {
        self.properties = properties.to_vec();
        self
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
        write_properties(w, &self.properties);
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
        let msg = first_message(response, "SyncFolderItems")?;
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
        let msg = first_message(response, "FindFolder")?;
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
