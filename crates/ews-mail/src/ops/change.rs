//! The operations that change a mailbox: update (mark read), move, delete, create (send or
//! save), send a draft.

use super::*;

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
