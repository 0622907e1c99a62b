//! EWS values the operations take and return: ids, folders, mailboxes, messages. Reading is
//! lenient where real servers deviate from the schema (see each parser).

use std::fmt;

use base64::Engine as _;
use time::OffsetDateTime;

use crate::xml::{Element, Writer};

/// An item's id and change key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId {
    /// `Id`.
    pub id: String,
    /// `ChangeKey`, when known.
    pub change_key: Option<String>,
}

impl ItemId {
    /// An id without a change key.
    pub fn new(id: impl Into<String>) -> Self {
        ItemId {
            id: id.into(),
            change_key: None,
        }
    }

    /// Sets the change key.
    pub fn with_change_key(mut self, ck: impl Into<String>) -> Self {
        self.change_key = Some(ck.into());
        self
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        match &self.change_key {
            Some(ck) => w.empty("t:ItemId", &[("Id", &self.id), ("ChangeKey", ck)]),
            None => w.empty("t:ItemId", &[("Id", &self.id)]),
        };
    }

    /// Reads an `ItemId` element (leniently: a missing `ChangeKey` is fine).
    pub fn parse(el: &Element) -> Option<ItemId> {
        let id = el.attr("Id").filter(|s| !s.is_empty())?;
        Some(ItemId {
            id: id.to_string(),
            change_key: el
                .attr("ChangeKey")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }
}

/// A folder by id or by well-known name (optionally in another mailbox).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FolderId {
    /// `FolderId`.
    Id {
        /// `Id`.
        id: String,
        /// `ChangeKey`.
        change_key: Option<String>,
    },
    /// `DistinguishedFolderId` (`inbox`, `deleteditems`, `msgfolderroot`…), with `Mailbox` for
    /// a shared or delegated mailbox (its primary SMTP address).
    Distinguished {
        /// The well-known name.
        id: String,
        /// The mailbox, when not the caller's own.
        mailbox: Option<String>,
    },
}

impl FolderId {
    /// A well-known folder of the caller's (or the impersonated) mailbox.
    pub fn distinguished(id: impl Into<String>) -> Self {
        FolderId::Distinguished {
            id: id.into(),
            mailbox: None,
        }
    }

    /// A well-known folder of another mailbox (shared mailbox access).
    pub fn distinguished_in(id: impl Into<String>, mailbox: impl Into<String>) -> Self {
        FolderId::Distinguished {
            id: id.into(),
            mailbox: Some(mailbox.into()),
        }
    }

    /// A folder by id.
    pub fn id(id: impl Into<String>) -> Self {
        FolderId::Id {
            id: id.into(),
            change_key: None,
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        match self {
            FolderId::Id { id, change_key } => match change_key {
                Some(ck) => w.empty("t:FolderId", &[("Id", id), ("ChangeKey", ck)]),
                None => w.empty("t:FolderId", &[("Id", id)]),
            },
            FolderId::Distinguished { id, mailbox } => match mailbox {
                None => w.empty("t:DistinguishedFolderId", &[("Id", id)]),
                Some(mb) => {
                    w.start("t:DistinguishedFolderId", &[("Id", id)]);
                    w.start("t:Mailbox", &[]);
                    w.text_element("t:EmailAddress", mb);
                    w.end();
                    w.end()
                }
            },
        };
    }
}

/// A mailbox as EWS reports it (`t:Mailbox`): every part may be missing on real servers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Mailbox {
    /// Display name.
    pub name: Option<String>,
    /// SMTP address (absent for some X.500 or unresolved recipients).
    pub address: Option<String>,
    /// `RoutingType`, free-form (`SMTP`, `EX`, or anything else).
    pub routing_type: Option<String>,
}

impl Mailbox {
    fn parse(el: &Element) -> Mailbox {
        Mailbox {
            name: el.child_text("Name").map(str::to_string),
            address: el.child_text("EmailAddress").map(str::to_string),
            routing_type: el.child_text("RoutingType").map(str::to_string),
        }
    }
}

fn mailboxes(el: Option<&Element>) -> Vec<Mailbox> {
    el.map(|e| e.children_named("Mailbox").map(Mailbox::parse).collect())
        .unwrap_or_default()
}

/// Parses an EWS `dateTime` leniently: with a zone or offset, or without one (taken as UTC),
/// with or without fractional seconds.
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // No zone: Exchange means UTC (or the request's TimeZoneContext, which we never send).
    OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339).ok()
}

/// Formats a date-time for EWS (UTC, `Z`).
pub fn format_datetime(t: OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A message item as GetItem / FindItem / SyncFolderItems return it. Fields the server left out
/// are empty.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Item {
    /// The item id.
    pub id: Option<ItemId>,
    /// The element name (`Message`, `CalendarItem`, …).
    pub kind: String,
    /// `Subject`.
    pub subject: Option<String>,
    /// `MimeContent`, decoded from base64.
    pub mime: Option<Vec<u8>>,
    /// `InternetMessageId`.
    pub internet_message_id: Option<String>,
    /// `DateTimeReceived`.
    pub received: Option<OffsetDateTime>,
    /// `IsRead`.
    pub is_read: Option<bool>,
    /// `From`.
    pub from: Option<Mailbox>,
    /// `ToRecipients`.
    pub to: Vec<Mailbox>,
    /// `CcRecipients`.
    pub cc: Vec<Mailbox>,
    /// `ReplyTo` (several are possible).
    pub reply_to: Vec<Mailbox>,
    /// `InternetMessageHeaders`, as name/value pairs (empty values kept).
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .field("mime_bytes", &self.mime.as_ref().map(Vec::len))
            .field("internet_message_id", &self.internet_message_id)
            .field("received", &self.received)
            .field("is_read", &self.is_read)
            .finish_non_exhaustive()
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

impl Item {
    /// Reads an item element. A `MimeContent` that is not base64 is an error; everything else
    /// is optional.
    pub fn parse(el: &Element) -> Result<Item, String> {
        let mime = match el.child("MimeContent") {
            Some(m) => {
                // Base64 may be wrapped across lines by some servers.
                let compact: String = m.text.chars().filter(|c| !c.is_whitespace()).collect();
                Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(compact.as_bytes())
                        .map_err(|e| format!("MimeContent is not base64: {e}"))?,
                )
            }
            None => None,
        };
        let from = el
            .child("From")
            .and_then(|f| f.child("Mailbox"))
            .map(Mailbox::parse);
        let headers = el
            .child("InternetMessageHeaders")
            .map(|h| {
                h.children_named("InternetMessageHeader")
                    .map(|x| {
                        (
                            x.attr("HeaderName").unwrap_or("").to_string(),
                            x.text.trim().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Item {
            // `ItemID` appears in Microsoft's own MoveItem sample; accept it.
            id: el
                .child("ItemId")
                .or_else(|| el.child("ItemID"))
                .and_then(ItemId::parse),
            kind: el.name.clone(),
            subject: el.child_text("Subject").map(str::to_string),
            mime,
            internet_message_id: el.child_text("InternetMessageId").map(str::to_string),
            received: el.child_text("DateTimeReceived").and_then(parse_datetime),
            is_read: el.child_text("IsRead").and_then(parse_bool),
            from,
            to: mailboxes(el.child("ToRecipients")),
            cc: mailboxes(el.child("CcRecipients")),
            reply_to: mailboxes(el.child("ReplyTo")),
            headers,
        })
    }

    /// The To and Cc addresses (recipients without an address are skipped).
    pub fn recipient_addresses(&self) -> Vec<String> {
        self.to
            .iter()
            .chain(self.cc.iter())
            .filter_map(|m| m.address.clone())
            .collect()
    }
}

/// A folder as GetFolder / FindFolder / CreateFolder return it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Folder {
    /// The folder id.
    pub id: Option<FolderId>,
    /// `DisplayName`.
    pub display_name: Option<String>,
    /// `TotalCount`.
    pub total_count: Option<u64>,
    /// `UnreadCount`.
    pub unread_count: Option<u64>,
    /// `ChildFolderCount`.
    pub child_folder_count: Option<u64>,
}

impl Folder {
    /// Reads a folder element (`Folder`, `SearchFolder`, …).
    pub fn parse(el: &Element) -> Folder {
        let num = |n: &str| el.child_text(n).and_then(|v| v.parse().ok());
        Folder {
            id: el.child("FolderId").and_then(|f| {
                Some(FolderId::Id {
                    id: f.attr("Id").filter(|s| !s.is_empty())?.to_string(),
                    change_key: f.attr("ChangeKey").map(str::to_string),
                })
            }),
            display_name: el.child_text("DisplayName").map(str::to_string),
            total_count: num("TotalCount"),
            unread_count: num("UnreadCount"),
            child_folder_count: num("ChildFolderCount"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn dates_with_and_without_zone() {
        let a = parse_datetime("2026-03-02T10:00:00Z").unwrap();
        let b = parse_datetime("2026-03-02T10:00:00").unwrap();
        let c = parse_datetime("2026-03-02T11:00:00.123+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.unix_timestamp(), c.unix_timestamp());
        assert_eq!(parse_datetime(""), None);
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(format_datetime(a), "2026-03-02T10:00:00Z");
    }

    #[test]
    fn lenient_message_reading() {
        let doc = br#"<t:Message xmlns:t="x"><t:ItemId Id="AAA" ChangeKey=""/><t:MimeContent CharacterSet="UTF-8">U3ViamVjdDog
aGk=</t:MimeContent><t:ReplyTo><t:Mailbox><t:Name>A</t:Name><t:EmailAddress>a@x</t:EmailAddress></t:Mailbox><t:Mailbox><t:EmailAddress>b@x</t:EmailAddress><t:RoutingType>SMTPish</t:RoutingType></t:Mailbox></t:ReplyTo><t:ToRecipients><t:Mailbox><t:Name>Only a name</t:Name></t:Mailbox><t:Mailbox><t:EmailAddress>c@x</t:EmailAddress></t:Mailbox></t:ToRecipients><t:InternetMessageHeaders><t:InternetMessageHeader HeaderName="X-Empty"></t:InternetMessageHeader></t:InternetMessageHeaders><t:DateTimeReceived>2026-03-02T10:00:00</t:DateTimeReceived><t:IsRead>false</t:IsRead></t:Message>"#;
        let item = Item::parse(&parse(doc, 1 << 20).unwrap()).unwrap();
        assert_eq!(item.id, Some(ItemId::new("AAA")));
        assert_eq!(item.mime.as_deref(), Some(&b"Subject: hi"[..]));
        assert_eq!(item.reply_to.len(), 2);
        assert_eq!(item.reply_to[1].routing_type.as_deref(), Some("SMTPish"));
        assert_eq!(item.to[0].address, None);
        assert_eq!(item.recipient_addresses(), vec!["c@x".to_string()]);
        assert_eq!(item.headers, vec![("X-Empty".to_string(), String::new())]);
        assert!(item.received.is_some());
        assert_eq!(item.is_read, Some(false));
    }

    #[test]
    fn bad_base64_is_an_error() {
        let doc = br#"<Message><MimeContent>!!!</MimeContent></Message>"#;
        assert!(Item::parse(&parse(doc, 1 << 20).unwrap()).is_err());
    }
}
