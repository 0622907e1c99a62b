//! Listing and reading messages, marking, moving and deleting them; the message answers.

use super::*;

/// `GET …/mailFolders/{folder}/messages`: unread messages, oldest first, `$top` = `top`
/// (1 to [`MAX_PAGE`]).
///
/// `$orderby=receivedDateTime asc` needs `receivedDateTime` first in `$filter`, or Graph answers
/// `InefficientFilter`; an always-true `receivedDateTime ge 1900-01-01` term satisfies the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListUnread {
    /// A well-known name (`inbox`) or a folder id.
    pub folder: String,
    /// Page size, clamped to 1..=[`MAX_PAGE`].
    pub top: usize,
}

impl ListUnread {
    /// The first page of `folder`'s unread mail, `top` messages at most.
    pub fn new(folder: impl Into<String>, top: usize) -> Self {
        ListUnread {
            folder: folder.into(),
            top,
        }
    }
}

impl GraphOperation for ListUnread {
    type Output = MessagePage;

    describe_op!("listing unread messages", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let top = self.top.clamp(1, MAX_PAGE).to_string();
        let filter = format!("{EPOCH_FILTER} and isRead eq false");
        let url = with_query(
            ep.mailbox_url(&["mailFolders", &self.folder, "messages"]),
            &[
                ("$select", LIST_SELECT),
                ("$filter", &filter),
                ("$orderby", "receivedDateTime asc"),
                ("$top", &top),
            ],
        );
        Ok(OpRequest::get(url))
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<MessagePage, Error> {
        parse_message_page(ep, response.json()?)
    }
}

/// A link Graph handed out (`@odata.nextLink`, `@odata.deltaLink`), checked to lie under the
/// configured Graph base: another host, scheme or port would receive the token.
pub(super) fn checked_url(ep: &Endpoint, link: &str) -> Result<Url, Error> {
    let url = Url::parse(link)
        .map_err(|e| Error::bad_response(format!("Graph sent an unreadable link: {e}")))?;
    if !ep.owns(&url) {
        return Err(Error::bad_response(format!(
            "refusing to follow a link to {}://{}{}: it is not under the configured Graph base {}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            ep.base()
        )));
    }
    Ok(url)
}

/// The next page of a message listing: its `@odata.nextLink` followed verbatim, refusing one
/// that points anywhere but the configured Graph base.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowLink {
    /// The link.
    pub link: String,
}

impl FollowLink {
    /// Follows `link`.
    pub fn new(link: impl Into<String>) -> Self {
        FollowLink { link: link.into() }
    }
}

impl GraphOperation for FollowLink {
    type Output = MessagePage;

    describe_op!("listing unread messages", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let url = checked_url(ep, &self.link)?;
        Ok(OpRequest::get(url))
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<MessagePage, Error> {
        parse_message_page(ep, response.json()?)
    }
}

/// `GET …/messages/{id}/$value`: the message as RFC 822 MIME.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetMime {
    /// The message id.
    pub id: String,
}

impl GetMime {
    /// Downloads message `id`.
    pub fn new(id: impl Into<String>) -> Self {
        GetMime { id: id.into() }
    }
}

impl GraphOperation for GetMime {
    type Output = bytes::Bytes;

    describe_op!("downloading a message", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::get(
            ep.mailbox_url(&["messages", &self.id, "$value"]),
        ))
    }

    /// The MIME bytes (`text/plain`, `message/rfc822` or `application/octet-stream`; an empty
    /// body is for the caller to judge). They share the response's buffer instead of copying
    /// it: once the response is dropped, `Vec::from` takes the buffer over without a copy.
    fn parse(&self, _: &Endpoint, response: &Response) -> Result<bytes::Bytes, Error> {
        response.mime()?;
        Ok(response.body.clone())
    }
}

/// `PATCH …/messages/{id}?$select=id` `{"isRead": true}`. The answer's body is not read: an
/// acknowledgement needs only its status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MarkRead {
    /// The message id.
    pub id: String,
}

impl MarkRead {
    /// Marks message `id` read.
    pub fn new(id: impl Into<String>) -> Self {
        MarkRead { id: id.into() }
    }
}

impl GraphOperation for MarkRead {
    type Output = ();

    describe_op!("marking a message read", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::new(
            http::Method::PATCH,
            with_query(
                ep.mailbox_url(&["messages", &self.id]),
                &[("$select", "id")],
            ),
            Body::Json(json!({ "isRead": true })),
        ))
    }

    status_only!();
}

/// `POST …/messages/{id}/move` `{"destinationId": …}` → 201 with the moved message (not read).
/// Declared [`Idempotency::Safe`]: ids are immutable, so a repeat after a lost answer finds the
/// message already gone from its folder (404), which is no second move.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MoveMessage {
    /// The message id.
    pub id: String,
    /// The destination folder's id or well-known name.
    pub destination: String,
}

impl MoveMessage {
    /// Moves message `id` to `destination`.
    pub fn new(id: impl Into<String>, destination: impl Into<String>) -> Self {
        MoveMessage {
            id: id.into(),
            destination: destination.into(),
        }
    }
}

impl GraphOperation for MoveMessage {
    type Output = ();

    describe_op!("moving a message", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["messages", &self.id, "move"]),
            Body::Json(json!({ "destinationId": self.destination })),
        ))
    }

    status_only!();
}

/// `DELETE …/messages/{id}` → 204 (a soft delete).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteMessage {
    /// The message id.
    pub id: String,
}

impl DeleteMessage {
    /// Deletes message `id`.
    pub fn new(id: impl Into<String>) -> Self {
        DeleteMessage { id: id.into() }
    }
}

impl GraphOperation for DeleteMessage {
    type Output = ();

    describe_op!("deleting a message", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::new(
            http::Method::DELETE,
            ep.mailbox_url(&["messages", &self.id]),
            Body::Empty,
        ))
    }

    status_only!();
}

#[derive(Deserialize)]
pub(super) struct RawAddress {
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawRecipient {
    #[serde(default)]
    email_address: Option<RawAddress>,
}

#[derive(Deserialize)]
pub(super) struct RawHeader {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

/// Graph documents `isRead` as a boolean, but one of its own delta samples sends `"true"`:
/// accept both spellings, nothing else.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum LenientBool {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawMessage {
    pub(super) id: String,
    #[serde(default)]
    internet_message_id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    to_recipients: Option<Vec<RawRecipient>>,
    #[serde(default)]
    cc_recipients: Option<Vec<RawRecipient>>,
    #[serde(default)]
    received_date_time: Option<String>,
    #[serde(default)]
    is_read: Option<LenientBool>,
    #[serde(default)]
    internet_message_headers: Option<Vec<RawHeader>>,
    #[serde(default, rename = "@removed")]
    pub(super) removed: Option<Value>,
}

/// The properties of a listed message that a router needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageMeta {
    /// The message id (immutable when the executor asks for immutable ids).
    pub id: String,
    /// The `Message-ID`.
    pub internet_message_id: Option<String>,
    /// The subject.
    pub subject: Option<String>,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// When Graph received it.
    pub received: Option<OffsetDateTime>,
    /// Whether it is read.
    pub is_read: Option<bool>,
    /// Transport headers, when `internetMessageHeaders` was selected.
    pub headers: Vec<(String, String)>,
}

impl TryFrom<RawMessage> for MessageMeta {
    type Error = Error;

    fn try_from(m: RawMessage) -> Result<Self, Error> {
        if m.id.is_empty() {
            return Err(bad("a message", "its id is empty"));
        }
        let addrs = |v: Option<Vec<RawRecipient>>| -> Vec<String> {
            v.unwrap_or_default()
                .into_iter()
                .filter_map(|r| r.email_address.and_then(|a| a.address))
                .filter(|a| !a.is_empty())
                .collect()
        };
        let received = match m.received_date_time {
            None => None,
            Some(t) => Some(
                OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| bad("a receivedDateTime", e))?,
            ),
        };
        let is_read = match m.is_read {
            None => None,
            Some(LenientBool::Bool(b)) => Some(b),
            Some(LenientBool::Text(t)) => match t.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                other => return Err(bad("isRead", format!("{other:?} is not a boolean"))),
            },
        };
        Ok(MessageMeta {
            id: m.id,
            internet_message_id: m.internet_message_id,
            subject: m.subject,
            to: addrs(m.to_recipients),
            cc: addrs(m.cc_recipients),
            received,
            is_read,
            headers: m
                .internet_message_headers
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h.name, h.value.unwrap_or_default()))
                .collect(),
        })
    }
}

/// Parses one message (a `GET`, `PATCH` or `move` answer).
pub fn parse_message(body: &[u8]) -> Result<MessageMeta, Error> {
    parse_json::<RawMessage>("a message", body)?.try_into()
}

/// One page of a message listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessagePage {
    /// The messages on this page.
    pub messages: Vec<MessageMeta>,
    /// The next page, already checked to lie under the configured base.
    pub next_link: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawPage {
    pub(super) value: Vec<RawMessage>,
    #[serde(default, rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    pub(super) delta_link: Option<String>,
}

pub(super) fn checked_link(ep: &Endpoint, link: Option<String>) -> Result<Option<String>, Error> {
    match link {
        None => Ok(None),
        Some(l) => checked_url(ep, &l).map(|_| Some(l)),
    }
}

/// Parses a message listing page; refuses more than [`MAX_PAGE`] items and next links that
/// leave the configured base.
pub fn parse_message_page(ep: &Endpoint, body: &[u8]) -> Result<MessagePage, Error> {
    let raw: RawPage = parse_json("a message list", body)?;
    if raw.value.len() > MAX_PAGE {
        return Err(bad(
            "a message list",
            format!(
                "{} items is more than the {MAX_PAGE} a page may hold",
                raw.value.len()
            ),
        ));
    }
    let messages = raw
        .value
        .into_iter()
        .map(MessageMeta::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MessagePage {
        messages,
        next_link: checked_link(ep, raw.next_link)?,
    })
}
