//! Graph mail requests and responses as values, without I/O.
//!
//! Every builder returns an `http::Request<Vec<u8>>` (no `Authorization` or `Prefer` header:
//! the executor adds those) and every parser takes the bytes of a response. Each can be tested
//! with bytes alone, in the style of ruma's and ews-rs' request/response values.
//!
//! ```
//! use graph_mail::api;
//! use graph_mail::{Endpoint, Mailbox, Cloud};
//!
//! let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
//! let req = api::list_unread(&ep, "inbox", 50)?;
//! assert!(req.uri().to_string().contains("$orderby=receivedDateTime%20asc"));
//!
//! let page = api::parse_message_page(&ep, br#"{"value":[{"id":"AAMk1","isRead":false,
//!   "receivedDateTime":"2026-03-02T10:00:00Z","internetMessageId":"<a@b>",
//!   "toRecipients":[{"emailAddress":{"address":"billing@contoso.com"}}]}]}"#)?;
//! assert_eq!(page.messages[0].to, ["billing@contoso.com"]);
//! assert!(page.next_link.is_none());
//! # Ok::<(), connector::Error>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use connector::{Delivery, Error, ResponseDetails};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::endpoint::Endpoint;

/// Most messages a listing may ask for or a page may hold (Graph's `$top` limit for messages).
pub const MAX_PAGE: usize = 1000;
/// Most requests in one JSON batch.
pub const MAX_BATCH: usize = 20;
/// Graph's request body limit (about 4 MB); larger messages go through an upload session.
pub const MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;
/// Upload session chunk size: a multiple of 320 KiB under 4 MB, as Graph asks.
pub const UPLOAD_CHUNK: usize = 320 * 1024 * 12;

/// The `$select` of a listing: what a router needs, nothing more.
pub const LIST_SELECT: &str =
    "id,internetMessageId,subject,toRecipients,ccRecipients,receivedDateTime,isRead";

/// The earliest time Graph stores; used to satisfy the `$orderby`-in-`$filter` rule.
const EPOCH_FILTER: &str = "receivedDateTime ge 1900-01-01T00:00:00Z";

// Characters escaped in query values: everything that would end or split a parameter. `$`,
// `,`, `'`, `:` and `/` stay readable, as Graph's own documentation writes them.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'{')
    .add(b'}');

fn with_query(mut url: Url, params: &[(&str, &str)]) -> Url {
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY)))
        .collect();
    url.set_query(Some(&q.join("&")));
    url
}

fn request(
    method: http::Method,
    url: &Url,
    body: Option<(&str, Vec<u8>)>,
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut b = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json");
    let body = match body {
        Some((ct, bytes)) => {
            b = b.header(http::header::CONTENT_TYPE, ct);
            bytes
        }
        None => Vec::new(),
    };
    b.body(body)
        .map_err(|e| Error::configuration(format!("building a Graph request for {url}: {e}")))
}

fn json_body(v: &Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

/// `GET …/mailFolders/{folder}`: id, name and the counts (`totalItemCount`, `unreadItemCount`).
pub fn get_folder(ep: &Endpoint, folder: &str) -> Result<http::Request<Vec<u8>>, Error> {
    let url = with_query(
        ep.mailbox_url(&["mailFolders", folder]),
        &[(
            "$select",
            "id,displayName,parentFolderId,totalItemCount,unreadItemCount",
        )],
    );
    request(http::Method::GET, &url, None)
}

/// `GET …/mailFolders[/{parent}/childFolders]?$filter=displayName eq '…'`.
pub fn find_folder(
    ep: &Endpoint,
    parent: Option<&str>,
    display_name: &str,
) -> Result<http::Request<Vec<u8>>, Error> {
    let base = match parent {
        Some(p) => ep.mailbox_url(&["mailFolders", p, "childFolders"]),
        None => ep.mailbox_url(&["mailFolders"]),
    };
    let filter = format!("displayName eq '{}'", display_name.replace('\'', "''"));
    let url = with_query(
        base,
        &[("$filter", &filter), ("includeHiddenFolders", "true")],
    );
    request(http::Method::GET, &url, None)
}

/// `POST …/mailFolders[/{parent}/childFolders]` `{"displayName": …}` → 201 folder.
pub fn create_folder(
    ep: &Endpoint,
    parent: Option<&str>,
    display_name: &str,
) -> Result<http::Request<Vec<u8>>, Error> {
    if display_name.trim().is_empty() {
        return Err(Error::configuration("a folder name is empty"));
    }
    let url = match parent {
        Some(p) => ep.mailbox_url(&["mailFolders", p, "childFolders"]),
        None => ep.mailbox_url(&["mailFolders"]),
    };
    request(
        http::Method::POST,
        &url,
        json_body(&json!({ "displayName": display_name })),
    )
}

/// `GET …/mailFolders/{folder}/messages`: unread messages, oldest first, `$top` = `top`.
///
/// `$orderby=receivedDateTime asc` needs `receivedDateTime` first in `$filter`, or Graph answers
/// `InefficientFilter`; an always-true `receivedDateTime ge 1900-01-01` term satisfies the rule.
pub fn list_unread(
    ep: &Endpoint,
    folder: &str,
    top: usize,
) -> Result<http::Request<Vec<u8>>, Error> {
    let top = top.clamp(1, MAX_PAGE).to_string();
    let filter = format!("{EPOCH_FILTER} and isRead eq false");
    let url = with_query(
        ep.mailbox_url(&["mailFolders", folder, "messages"]),
        &[
            ("$select", LIST_SELECT),
            ("$filter", &filter),
            ("$orderby", "receivedDateTime asc"),
            ("$top", &top),
        ],
    );
    request(http::Method::GET, &url, None)
}

/// Follows a `@odata.nextLink` or `@odata.deltaLink` verbatim, refusing one that points
/// anywhere but the configured Graph base (another host, scheme or port would receive the
/// token).
pub fn follow_link(ep: &Endpoint, link: &str) -> Result<http::Request<Vec<u8>>, Error> {
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
    request(http::Method::GET, &url, None)
}

/// `GET …/messages/{id}/$value`: the message as RFC 822 MIME.
pub fn get_mime(ep: &Endpoint, id: &str) -> Result<http::Request<Vec<u8>>, Error> {
    request(
        http::Method::GET,
        &ep.mailbox_url(&["messages", id, "$value"]),
        None,
    )
}

/// `PATCH …/messages/{id}` `{"isRead": true}`.
pub fn mark_read(ep: &Endpoint, id: &str) -> Result<http::Request<Vec<u8>>, Error> {
    request(
        http::Method::PATCH,
        &with_query(ep.mailbox_url(&["messages", id]), &[("$select", "id")]),
        json_body(&json!({ "isRead": true })),
    )
}

/// `POST …/messages/{id}/move` `{"destinationId": …}` → 201 with the moved message.
pub fn move_message(ep: &Endpoint, id: &str, dest: &str) -> Result<http::Request<Vec<u8>>, Error> {
    request(
        http::Method::POST,
        &ep.mailbox_url(&["messages", id, "move"]),
        json_body(&json!({ "destinationId": dest })),
    )
}

/// `DELETE …/messages/{id}` → 204 (a soft delete).
pub fn delete_message(ep: &Endpoint, id: &str) -> Result<http::Request<Vec<u8>>, Error> {
    request(
        http::Method::DELETE,
        &ep.mailbox_url(&["messages", id]),
        None,
    )
}

/// Messages per delta page, asked for with `Prefer: odata.maxpagesize` (Graph's default is 10).
pub const DELTA_PAGE: usize = 100;

/// The `Prefer` value asking for [`DELTA_PAGE`] messages per delta page.
const DELTA_PREFER: &str = "odata.maxpagesize=100";

fn prefer_page_size(mut r: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    // Appended: the executor adds its own `Prefer: IdType="ImmutableId"` beside it.
    r.headers_mut().append(
        http::header::HeaderName::from_static("prefer"),
        http::HeaderValue::from_static(DELTA_PREFER),
    );
    r
}

/// `GET …/mailFolders/{folder}/messages/delta` with the listing's `$select` and
/// `Prefer: odata.maxpagesize=`[`DELTA_PAGE`] (the first call of a delta round; later calls
/// follow the links with [`follow_delta_link`]).
pub fn delta(ep: &Endpoint, folder: &str) -> Result<http::Request<Vec<u8>>, Error> {
    let url = with_query(
        ep.mailbox_url(&["mailFolders", folder, "messages", "delta"]),
        &[("$select", LIST_SELECT)],
    );
    request(http::Method::GET, &url, None).map(prefer_page_size)
}

/// Follows a delta round's `@odata.nextLink` or `@odata.deltaLink` as [`follow_link`] does,
/// asking for the same page size as [`delta`].
pub fn follow_delta_link(ep: &Endpoint, link: &str) -> Result<http::Request<Vec<u8>>, Error> {
    follow_link(ep, link).map(prefer_page_size)
}

/// `POST …/sendMail` with the MIME message base64-encoded as `text/plain` → 202.
pub fn send_mime(ep: &Endpoint, mime: &[u8]) -> Result<http::Request<Vec<u8>>, Error> {
    let body = base64::engine::general_purpose::STANDARD.encode(mime);
    if body.len() > MAX_REQUEST_BODY {
        return Err(Error::configuration(format!(
            "a {}-byte message is over Graph's 4 MB request limit; send it through a draft and an upload session",
            mime.len()
        )));
    }
    request(
        http::Method::POST,
        &ep.mailbox_url(&["sendMail"]),
        Some(("text/plain", body.into_bytes())),
    )
}

/// A message for the JSON form of `sendMail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonMail {
    /// Subject.
    pub subject: String,
    /// Body text; HTML when `html` is set.
    pub body: String,
    /// Whether `body` is HTML.
    pub html: bool,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// `Bcc` addresses.
    pub bcc: Vec<String>,
    /// `Reply-To` addresses.
    pub reply_to: Vec<String>,
    /// `From`, when sending as an alias or another mailbox.
    pub from: Option<String>,
    /// Small attachments: name, content type, bytes.
    pub attachments: Vec<(String, String, Vec<u8>)>,
    /// Keep a copy in Sent Items (Graph's default).
    pub save_to_sent_items: bool,
}

impl JsonMail {
    /// A plain-text message to `to`.
    pub fn text(subject: impl Into<String>, body: impl Into<String>, to: Vec<String>) -> Self {
        JsonMail {
            subject: subject.into(),
            body: body.into(),
            to,
            save_to_sent_items: true,
            ..Self::default()
        }
    }

    /// The `message` object of `sendMail` or a draft.
    pub fn message_json(&self) -> Value {
        let rcpt = |v: &[String]| -> Value {
            v.iter()
                .map(|a| json!({ "emailAddress": { "address": a } }))
                .collect()
        };
        let mut m = json!({
            "subject": self.subject,
            "body": { "contentType": if self.html { "HTML" } else { "Text" }, "content": self.body },
            "toRecipients": rcpt(&self.to),
            "ccRecipients": rcpt(&self.cc),
            "bccRecipients": rcpt(&self.bcc),
            "replyTo": rcpt(&self.reply_to),
        });
        if let Some(from) = &self.from {
            m["from"] = json!({ "emailAddress": { "address": from } });
        }
        if !self.attachments.is_empty() {
            m["attachments"] = self
                .attachments
                .iter()
                .map(|(name, ct, bytes)| {
                    json!({
                        "@odata.type": "#microsoft.graph.fileAttachment",
                        "name": name,
                        "contentType": ct,
                        "contentBytes": base64::engine::general_purpose::STANDARD.encode(bytes),
                    })
                })
                .collect();
        }
        m
    }
}

/// `POST …/sendMail` with a JSON message → 202.
pub fn send_json(ep: &Endpoint, mail: &JsonMail) -> Result<http::Request<Vec<u8>>, Error> {
    let body =
        json!({ "message": mail.message_json(), "saveToSentItems": mail.save_to_sent_items });
    let bytes = body.to_string().into_bytes();
    if bytes.len() > MAX_REQUEST_BODY {
        return Err(Error::configuration(
            "the message is over Graph's 4 MB request limit; use a draft and an upload session",
        ));
    }
    request(
        http::Method::POST,
        &ep.mailbox_url(&["sendMail"]),
        Some(("application/json", bytes)),
    )
}

/// A `sendMail` that proves the right to send without sending: it names no recipient, so Graph
/// checks the token, the mailbox and the `from` right, then refuses it with
/// `ErrorInvalidRecipients` (400) instead of sending.
pub fn send_probe(ep: &Endpoint, from: Option<&str>) -> Result<http::Request<Vec<u8>>, Error> {
    let mut m = json!({ "subject": "send-rights probe", "toRecipients": [] });
    if let Some(f) = from {
        m["from"] = json!({ "emailAddress": { "address": f } });
    }
    request(
        http::Method::POST,
        &ep.mailbox_url(&["sendMail"]),
        json_body(&json!({ "message": m, "saveToSentItems": false })),
    )
}

/// `POST …/messages` with base64 MIME → 201 draft.
pub fn create_draft_mime(ep: &Endpoint, mime: &[u8]) -> Result<http::Request<Vec<u8>>, Error> {
    let body = base64::engine::general_purpose::STANDARD.encode(mime);
    if body.len() > MAX_REQUEST_BODY {
        return Err(Error::configuration(
            "the draft is over Graph's 4 MB request limit; attach large files with an upload session",
        ));
    }
    request(
        http::Method::POST,
        &ep.mailbox_url(&["messages"]),
        Some(("text/plain", body.into_bytes())),
    )
}

/// `POST …/messages/{id}/attachments/createUploadSession` → 201 [`UploadSession`].
pub fn create_upload_session(
    ep: &Endpoint,
    message_id: &str,
    name: &str,
    size: u64,
) -> Result<http::Request<Vec<u8>>, Error> {
    request(
        http::Method::POST,
        &ep.mailbox_url(&["messages", message_id, "attachments", "createUploadSession"]),
        json_body(&json!({
            "AttachmentItem": { "attachmentType": "file", "name": name, "size": size }
        })),
    )
}

/// The byte ranges (inclusive) of a chunked upload of `total` bytes.
pub fn chunk_ranges(total: u64, chunk: usize) -> Vec<(u64, u64)> {
    let chunk = chunk.max(1) as u64;
    let mut out = Vec::new();
    let mut start = 0;
    while start < total {
        let end = (start + chunk).min(total) - 1;
        out.push((start, end));
        start = end + 1;
    }
    out
}

/// One `PUT` of an upload session: `Content-Range: bytes s-e/total`, octet-stream, and no
/// `Authorization` (the upload URL is pre-authenticated; the executor adds none to it).
pub fn upload_chunk(
    upload_url: &Url,
    start: u64,
    chunk: &[u8],
    total: u64,
) -> Result<http::Request<Vec<u8>>, Error> {
    if chunk.is_empty() {
        return Err(Error::configuration("an upload chunk is empty"));
    }
    let end = start + chunk.len() as u64 - 1;
    http::Request::builder()
        .method(http::Method::PUT)
        .uri(upload_url.as_str())
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .header(
            http::header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{total}"),
        )
        .header(http::header::CONTENT_LENGTH, chunk.len())
        .body(chunk.to_vec())
        .map_err(|e| Error::configuration(format!("building an upload request: {e}")))
}

/// `POST …/messages/{id}/send` with an empty body and `Content-Length: 0` (Graph answers 411
/// without it).
pub fn send_draft(ep: &Endpoint, message_id: &str) -> Result<http::Request<Vec<u8>>, Error> {
    let mut r = request(
        http::Method::POST,
        &ep.mailbox_url(&["messages", message_id, "send"]),
        None,
    )?;
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(0u32));
    Ok(r)
}

/// The largest attachment added to a draft in one `POST …/attachments` (Graph: "under 3 MB";
/// base64 makes it 4,000,000 bytes, under the request limit); larger ones go through an upload
/// session.
pub const MAX_INLINE_ATTACHMENT: usize = 3_000_000;

/// A file attachment to add to a draft.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attachment {
    /// The file name.
    pub name: String,
    /// The MIME type (`application/pdf`).
    pub content_type: String,
    /// The `Content-ID` (without angle brackets) of an inline attachment referenced as `cid:`.
    pub content_id: Option<String>,
    /// Whether it is shown inline in the body.
    pub inline: bool,
    /// The content, decoded.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("content_id", &self.content_id)
            .field("inline", &self.inline)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Attachment {
    /// A regular (not inline) attachment.
    pub fn new(name: impl Into<String>, content_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Attachment {
            name: name.into(),
            content_type: content_type.into(),
            content_id: None,
            inline: false,
            bytes,
        }
    }
}

/// `POST …/messages/{id}/attachments` with a `fileAttachment` (content as base64) → 201. Refused
/// before sending when the body would be over [`MAX_REQUEST_BODY`].
pub fn add_attachment(
    ep: &Endpoint,
    message_id: &str,
    att: &Attachment,
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut v = json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": att.name,
        "contentType": att.content_type,
        "isInline": att.inline,
        "contentBytes": base64::engine::general_purpose::STANDARD.encode(&att.bytes),
    });
    if let Some(cid) = &att.content_id {
        v["contentId"] = json!(cid);
    }
    let body = v.to_string().into_bytes();
    if body.len() > MAX_REQUEST_BODY {
        return Err(Error::configuration(format!(
            "a {}-byte attachment is over Graph's 4 MB request limit; use an upload session",
            att.bytes.len()
        )));
    }
    request(
        http::Method::POST,
        &ep.mailbox_url(&["messages", message_id, "attachments"]),
        Some(("application/json", body)),
    )
}

/// `POST …/messages/{id}/attachments/createUploadSession` for `att` (name, size, content type,
/// inline and `contentId`) → 201 [`UploadSession`].
pub fn create_attachment_upload_session(
    ep: &Endpoint,
    message_id: &str,
    att: &Attachment,
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut item = json!({
        "attachmentType": "file",
        "name": att.name,
        "size": att.bytes.len() as u64,
        "contentType": att.content_type,
        "isInline": att.inline,
    });
    if let Some(cid) = &att.content_id {
        item["contentId"] = json!(cid);
    }
    request(
        http::Method::POST,
        &ep.mailbox_url(&["messages", message_id, "attachments", "createUploadSession"]),
        json_body(&json!({ "AttachmentItem": item })),
    )
}

/// Hosts that serve upload sessions per Graph host. The global pair is documented
/// (`outlook.office.com`; `outlook.office365.com` is its other name); the national-cloud
/// entries are the Outlook hosts of those clouds, inferred rather than documented.
const UPLOAD_HOSTS: &[(&str, &[&str])] = &[
    (
        "graph.microsoft.com",
        &["outlook.office.com", "outlook.office365.com"],
    ),
    ("graph.microsoft.us", &["outlook.office365.us"]),
    ("dod-graph.microsoft.us", &["outlook-dod.office365.us"]),
    ("microsoftgraph.chinacloudapi.cn", &["partner.outlook.cn"]),
];

/// Checks an upload session's URL before any byte goes to it: it must be on the Graph host
/// itself (same scheme, host and port; the sandbox) or, over https, on the Outlook host that
/// serves upload sessions for that Graph host. Anything else would receive the attachment from
/// a URL the service did not plausibly hand out.
pub fn check_upload_url(ep: &Endpoint, url: &Url) -> Result<(), Error> {
    let base = ep.base();
    let same_origin = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    let outlook = url.scheme() == "https"
        && url.port_or_known_default() == Some(443)
        && UPLOAD_HOSTS.iter().any(|(graph, hosts)| {
            base.host_str() == Some(*graph)
                && url
                    .host_str()
                    .is_some_and(|h| hosts.iter().any(|o| h.eq_ignore_ascii_case(o)))
        });
    if (same_origin || outlook) && url.username().is_empty() && url.password().is_none() {
        Ok(())
    } else {
        Err(Error::bad_response(format!(
            "refusing to upload an attachment to {}://{}: Graph's upload sessions are served by {} or its Outlook upload host",
            url.scheme(),
            url.host_str().unwrap_or(""),
            base.host_str().unwrap_or("")
        )))
    }
}

/// A MIME message made small enough for a draft: the message with its largest attachments cut
/// out, and those attachments, decoded, to add to the draft one by one.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SplitMessage {
    /// The message without the cut attachments (every header and the other parts as they were).
    pub body: Vec<u8>,
    /// The attachments cut out, largest first.
    pub attachments: Vec<Attachment>,
}

impl std::fmt::Debug for SplitMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitMessage")
            .field("body_len", &self.body.len())
            .field("attachments", &self.attachments)
            .finish()
    }
}

/// Where a part's bytes start (its delimiter line `--boundary`) and end (after the line break
/// that precedes the next delimiter), so that cutting that range leaves a well-formed multipart.
fn part_cut_range(raw: &[u8], header: usize, end: usize) -> Option<(usize, usize)> {
    // The delimiter line ends just before the part's headers.
    let before = raw.get(..header)?;
    let line_end = before.strip_suffix(b"\n")?;
    let line_end = line_end.strip_suffix(b"\r").unwrap_or(line_end);
    let start = line_end
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    if !raw.get(start..)?.starts_with(b"--") {
        return None;
    }
    // The part ends at the line break before the next delimiter.
    let after = raw.get(end..)?;
    let brk = if after.starts_with(b"\r\n") {
        2
    } else if after.starts_with(b"\n") {
        1
    } else {
        return None;
    };
    if !after.get(brk..)?.starts_with(b"--") {
        return None;
    }
    (end + brk > start).then_some((start, end + brk))
}

/// Splits `mime` for a draft: cuts attachment parts out, largest first, until what remains is
/// at most `limit` bytes. Text and HTML bodies are never cut. The parts' bytes are cut along
/// their MIME delimiters, so the rest of the message (headers such as `In-Reply-To`, other
/// parts) reaches Graph exactly as built. Parsing is mail-parser's, through
/// [`connector::mime::parse`]: MIME it cannot read, or on which it panics (a forwarded customer
/// message may be anything), is a `Configuration` error.
pub fn split_for_draft(mime: &[u8], limit: usize) -> Result<SplitMessage, Error> {
    use mail_parser::MimeHeaders;
    let msg = connector::mime::parse(mime).map_err(|e| Error::configuration(e.to_string()))?;
    let mut candidates: Vec<(usize, usize, Attachment)> = Vec::new();
    for (n, &id) in msg.attachments.iter().enumerate() {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        if id == 0 {
            continue;
        }
        let Some((start, end)) =
            part_cut_range(mime, part.offset_header as usize, part.offset_end as usize)
        else {
            continue;
        };
        let bytes = match &part.body {
            // A nested message's `raw_message` is the outer message: take the part's own bytes
            // (message/rfc822 is never base64 or quoted-printable encoded).
            mail_parser::PartType::Message(_) => mime
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default()
                .to_vec(),
            _ => part.contents().to_vec(),
        };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{sub}", ct.ctype()),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let name = part
            .attachment_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("attachment-{}", n + 1));
        candidates.push((
            start,
            end,
            Attachment {
                name,
                content_type,
                content_id: part
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>']).to_owned()),
                inline,
                bytes,
            },
        ));
    }
    candidates.sort_by_key(|(s, e, _)| std::cmp::Reverse(e - s));
    let mut size = mime.len();
    let mut cut: Vec<(usize, usize, Attachment)> = Vec::new();
    for c in candidates {
        if size <= limit {
            break;
        }
        // Nested parts (an attachment inside a cut one) are never both cut.
        if cut.iter().any(|(s, e, _)| c.0 < *e && *s < c.1) {
            continue;
        }
        size -= c.1 - c.0;
        cut.push(c);
    }
    if size > limit {
        return Err(Error::unsupported(format!(
            "a {}-byte message is {size} bytes even without its attachments: over the {limit}-byte limit of a draft",
            mime.len()
        )));
    }
    let mut ranges: Vec<(usize, usize)> = cut.iter().map(|(s, e, _)| (*s, *e)).collect();
    ranges.sort_unstable();
    let mut body = Vec::with_capacity(size);
    let mut at = 0;
    for (s, e) in ranges {
        body.extend_from_slice(mime.get(at..s).unwrap_or_default());
        at = e;
    }
    body.extend_from_slice(mime.get(at..).unwrap_or_default());
    Ok(SplitMessage {
        body,
        attachments: cut.into_iter().map(|(_, _, a)| a).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Responses

fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::bad_response(format!("Graph answered {what} that could not be read: {e}"))
}

fn parse_json<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| bad(what, e))
}

/// A mail folder with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MailFolder {
    /// The folder id.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Items in the folder (all item types).
    #[serde(default)]
    pub total_item_count: Option<u64>,
    /// Unread items in the folder.
    #[serde(default)]
    pub unread_item_count: Option<u64>,
}

/// Parses a `mailFolder`.
pub fn parse_folder(body: &[u8]) -> Result<MailFolder, Error> {
    parse_json("a mail folder", body)
}

/// Parses a folder collection (`{"value":[…]}`).
pub fn parse_folders(body: &[u8]) -> Result<Vec<MailFolder>, Error> {
    #[derive(Deserialize)]
    struct Coll {
        value: Vec<MailFolder>,
    }
    Ok(parse_json::<Coll>("a folder list", body)?.value)
}

#[derive(Deserialize)]
struct RawAddress {
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecipient {
    #[serde(default)]
    email_address: Option<RawAddress>,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

/// Graph documents `isRead` as a boolean, but one of its own delta samples sends `"true"`:
/// accept both spellings, nothing else.
#[derive(Deserialize)]
#[serde(untagged)]
enum LenientBool {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    id: String,
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
    removed: Option<Value>,
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
struct RawPage {
    value: Vec<RawMessage>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

fn checked_link(ep: &Endpoint, link: Option<String>) -> Result<Option<String>, Error> {
    match link {
        None => Ok(None),
        Some(l) => follow_link(ep, &l).map(|_| Some(l)),
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

/// One entry of a delta page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeltaItem {
    /// A message that appeared or changed in the folder.
    Changed(MessageMeta),
    /// A message that left the folder (deleted or moved out).
    Removed {
        /// Its id.
        id: String,
        /// Graph's reason (`deleted`, `changed`).
        reason: String,
    },
}

/// One page of a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaPage {
    /// Changes on this page.
    pub items: Vec<DeltaItem>,
    /// More pages follow: continue here.
    pub next_link: Option<String>,
    /// The round is complete: start the next round here.
    pub delta_link: Option<String>,
}

/// Parses a delta page: exactly one of `@odata.nextLink` / `@odata.deltaLink` must be present.
pub fn parse_delta_page(ep: &Endpoint, body: &[u8]) -> Result<DeltaPage, Error> {
    let raw: RawPage = parse_json("a delta page", body)?;
    if raw.value.len() > MAX_PAGE {
        return Err(bad("a delta page", "too many items"));
    }
    let next_link = checked_link(ep, raw.next_link)?;
    let delta_link = checked_link(ep, raw.delta_link)?;
    if next_link.is_some() == delta_link.is_some() {
        return Err(bad(
            "a delta page",
            "it must carry exactly one of @odata.nextLink and @odata.deltaLink",
        ));
    }
    let items = raw
        .value
        .into_iter()
        .map(|m| match &m.removed {
            Some(r) => Ok(DeltaItem::Removed {
                reason: r
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("deleted")
                    .to_owned(),
                id: m.id,
            }),
            None => MessageMeta::try_from(m).map(DeltaItem::Changed),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeltaPage {
        items,
        next_link,
        delta_link,
    })
}

/// An upload session for a large attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadSession {
    /// Where to `PUT` the chunks (pre-authenticated: it carries its own token, so it is never
    /// logged with its query).
    pub upload_url: Url,
    /// When the session expires, as Graph wrote it.
    pub expiration: Option<String>,
    /// The ranges Graph expects next (`["0-"]` at the start).
    pub next_expected_ranges: Vec<String>,
}

/// Parses an `uploadSession`.
pub fn parse_upload_session(body: &[u8]) -> Result<UploadSession, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        upload_url: String,
        #[serde(default)]
        expiration_date_time: Option<String>,
        #[serde(default)]
        next_expected_ranges: Option<Vec<String>>,
    }
    let raw: Raw = parse_json("an upload session", body)?;
    let upload_url = Url::parse(&raw.upload_url).map_err(|e| bad("an upload URL", e))?;
    if upload_url.scheme() != "https"
        && !matches!(upload_url.host_str(), Some("127.0.0.1" | "localhost"))
    {
        return Err(bad("an upload URL", "it is not https"));
    }
    Ok(UploadSession {
        upload_url,
        expiration: raw.expiration_date_time,
        next_expected_ranges: raw.next_expected_ranges.unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Graph's error JSON, with the response's request ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// `error.code` (`ErrorItemNotFound`, `InefficientFilter`, …).
    pub code: Option<String>,
    /// `error.message`.
    pub message: Option<String>,
    /// `request-id` (header, or `innerError`).
    pub request_id: Option<String>,
    /// `client-request-id` (header, or `innerError`).
    pub client_request_id: Option<String>,
    /// `innerError.date`.
    pub date: Option<String>,
}

impl GraphError {
    /// Reads whatever the response offers; a body that is not Graph's error JSON leaves the
    /// code and message empty.
    pub fn parse(status: u16, headers: &http::HeaderMap, body: &[u8]) -> GraphError {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let err = v.get("error");
        let s = |v: Option<&Value>, k: &str| {
            v.and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let inner = err.and_then(|e| e.get("innerError").or_else(|| e.get("innererror")));
        GraphError {
            status,
            code: s(err, "code"),
            message: s(err, "message"),
            request_id: header("request-id").or_else(|| s(inner, "request-id")),
            client_request_id: header("client-request-id")
                .or_else(|| s(inner, "client-request-id")),
            date: s(inner, "date"),
        }
    }

    /// The connector error for this answer: the kind from the status and code, the details
    /// for support.
    pub fn into_error(self, what: &str, body: &[u8], retry_after: Option<Duration>) -> Error {
        let code = self.code.as_deref().unwrap_or("");
        let text = match &self.message {
            Some(m) if !m.is_empty() => format!("{what}: {m}"),
            _ => format!("{what}: Graph answered HTTP {}", self.status),
        };
        let mut e = match (self.status, code) {
            (429, _) => Error::throttled(text, retry_after),
            (401, _) => Error::new(connector::ErrorKind::Authentication, text),
            (404, _) | (410, _) => Error::not_found(text),
            (_, "ErrorItemNotFound" | "ErrorInvalidUser" | "MailboxNotEnabledForRESTAPI") => {
                Error::not_found(text)
            }
            (503, _) => {
                let mut e = Error::transient(text).with_delivery(Delivery::Answered);
                if let Some(r) = retry_after {
                    e = e.with_retry_after(r);
                }
                e
            }
            (500..=599, _) | (408, _) => Error::transient(text),
            _ => Error::refused(text),
        };
        if self.status != 429 && self.status < 500 && self.status != 408 {
            e = e.with_delivery(Delivery::Answered);
        }
        let mut d = ResponseDetails::status(self.status).with_body(body);
        if let Some(c) = self.code {
            d = d.with_server_code(c);
        }
        if let Some(r) = self.request_id.or(self.client_request_id) {
            d = d.with_request_id(r);
        }
        e.with_response(d)
    }
}

/// Whether an error answer says a delta state is gone (`syncStateNotFound`, `resyncRequired`).
pub fn is_resync(err: &GraphError) -> bool {
    matches!(
        err.code.as_deref(),
        Some(c) if c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired")
    )
}

// ---------------------------------------------------------------------------------------------
// JSON batching

/// One request of a JSON `$batch`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchItem {
    /// Unique id within the batch.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// URL relative to the version root (`/users/x/messages/y/$value`).
    pub url: String,
    /// Headers (`Content-Type` is required with a body).
    pub headers: BTreeMap<String, String>,
    /// JSON body.
    pub body: Option<Value>,
    /// Ids this request runs after.
    pub depends_on: Vec<String>,
}

impl BatchItem {
    /// Turns a request built by this module into a batch item.
    pub fn from_request(
        ep: &Endpoint,
        id: impl Into<String>,
        req: &http::Request<Vec<u8>>,
    ) -> Result<Self, Error> {
        let url = Url::parse(&req.uri().to_string())
            .map_err(|e| Error::configuration(format!("batch item URL: {e}")))?;
        let rel = ep.relative(&url).ok_or_else(|| {
            Error::configuration(format!("batch item {url} is not under the Graph base"))
        })?;
        let mut headers = BTreeMap::new();
        let body = if req.body().is_empty() {
            None
        } else {
            let ct = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ct.starts_with("application/json") {
                return Err(Error::unsupported(
                    "only JSON bodies are batched; send MIME bodies on their own",
                ));
            }
            headers.insert("Content-Type".to_owned(), "application/json".to_owned());
            Some(
                serde_json::from_slice(req.body())
                    .map_err(|e| Error::configuration(format!("batch item body: {e}")))?,
            )
        };
        Ok(BatchItem {
            id: id.into(),
            method: req.method().as_str().to_owned(),
            url: rel,
            headers,
            body,
            depends_on: Vec::new(),
        })
    }

    /// Adds a header to the item.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Makes the item run after `ids`.
    pub fn depends_on(mut self, ids: Vec<String>) -> Self {
        self.depends_on = ids;
        self
    }
}

/// `POST {base}/$batch`: at most [`MAX_BATCH`] items with unique ids whose dependencies exist.
pub fn batch(ep: &Endpoint, items: &[BatchItem]) -> Result<http::Request<Vec<u8>>, Error> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Error::configuration(format!(
            "a batch holds 1 to {MAX_BATCH} requests, not {}",
            items.len()
        )));
    }
    let mut ids = HashSet::new();
    for i in items {
        if !ids.insert(i.id.as_str()) {
            return Err(Error::configuration(format!(
                "batch id {} is used twice",
                i.id
            )));
        }
    }
    let reqs: Vec<Value> = items
        .iter()
        .map(|i| {
            if let Some(d) = i.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
                return Err(Error::configuration(format!(
                    "batch item {} depends on unknown item {d}",
                    i.id
                )));
            }
            let mut v = json!({ "id": i.id, "method": i.method, "url": i.url });
            if !i.headers.is_empty() {
                v["headers"] = json!(i.headers);
            }
            if let Some(b) = &i.body {
                v["body"] = b.clone();
            }
            if !i.depends_on.is_empty() {
                v["dependsOn"] = json!(i.depends_on);
            }
            Ok(v)
        })
        .collect::<Result<_, Error>>()?;
    request(
        http::Method::POST,
        &ep.url(&["$batch"]),
        json_body(&json!({ "requests": reqs })),
    )
}

/// One answer of a JSON `$batch`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchResponseItem {
    /// The request's id.
    pub id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its headers (`Retry-After`, `Content-Type`, …).
    pub headers: http::HeaderMap,
    /// Its body: JSON re-serialized, or the decoded bytes of a non-JSON body (Graph base64-encodes
    /// those).
    pub body: Vec<u8>,
}

/// Parses a `$batch` answer. Answers for ids that were not sent are refused; the caller treats
/// sent ids without an answer as failed (never as done).
pub fn parse_batch(body: &[u8], sent: &[&str]) -> Result<Vec<BatchResponseItem>, Error> {
    #[derive(Deserialize)]
    struct RawItem {
        id: String,
        status: u16,
        #[serde(default)]
        headers: Option<BTreeMap<String, Value>>,
        #[serde(default)]
        body: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Raw {
        responses: Vec<RawItem>,
    }
    let raw: Raw = parse_json("a batch", body)?;
    let mut seen = HashSet::new();
    raw.responses
        .into_iter()
        .map(|r| {
            if !sent.contains(&r.id.as_str()) || !seen.insert(r.id.clone()) {
                return Err(bad(
                    "a batch",
                    format!("unexpected or repeated item id {:?}", r.id),
                ));
            }
            let mut headers = http::HeaderMap::new();
            for (k, v) in r.headers.unwrap_or_default() {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&v),
                ) {
                    headers.insert(n, v);
                }
            }
            let is_json = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|ct| ct.contains("json"));
            let body = match r.body {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) if !is_json => base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| bad("a batch item body", e))?,
                Some(v) => v.to_string().into_bytes(),
            };
            Ok(BatchResponseItem {
                id: r.id,
                status: r.status,
                headers,
                body,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
        use base64::Engine;
        let mut m = String::from(
            "From: a@contoso.example\r\nTo: b@fabrikam.example\r\nSubject: s\r\nIn-Reply-To: <x@y>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\npreamble\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello body\r\n",
        );
        for (name, bytes) in parts {
            m.push_str(&format!(
                "--B\r\nContent-Type: application/pdf; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ));
        }
        m.push_str("--B--\r\n");
        m.into_bytes()
    }

    #[test]
    fn split_cuts_the_largest_attachments_until_the_rest_fits() {
        let big = vec![7u8; 30_000];
        let mid = vec![8u8; 20_000];
        let small = vec![9u8; 100];
        let mime = multipart(&[("big.pdf", &big), ("small.pdf", &small), ("mid.pdf", &mid)]);
        let s = split_for_draft(&mime, 20_000).unwrap();
        let names: Vec<&str> = s.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["big.pdf", "mid.pdf"]);
        assert_eq!(s.attachments[0].bytes, big);
        assert_eq!(s.attachments[0].content_type, "application/pdf");
        assert!(!s.attachments[0].inline);
        assert!(s.body.len() <= 20_000);
        // What is left is the same message with one attachment, well formed.
        let rest = mail_parser::MessageParser::default()
            .parse(&s.body)
            .unwrap();
        assert_eq!(rest.attachment_count(), 1);
        assert_eq!(rest.attachment(0).unwrap().contents(), small.as_slice());
        assert_eq!(rest.body_text(0).as_deref(), Some("hello body"));
        let text = String::from_utf8_lossy(&s.body);
        assert!(text.contains("In-Reply-To: <x@y>"));
        assert!(text.ends_with("--B--\r\n"), "{text}");
        assert_eq!(text.matches("--B\r\n").count(), 2, "{text}");
        // Under the limit already: nothing is cut.
        let whole = split_for_draft(&mime, mime.len()).unwrap();
        assert!(whole.attachments.is_empty());
        assert_eq!(whole.body, mime);
        // Debug shows sizes, not content.
        assert!(format!("{s:?}").contains("len: 30000"));
    }

    #[test]
    fn split_refuses_a_message_whose_text_alone_is_too_big() {
        let mut mime = b"From: a@b.example\r\nSubject: s\r\n\r\n".to_vec();
        mime.extend(vec![b'x'; 5000]);
        let e = split_for_draft(&mime, 1000).unwrap_err();
        assert_eq!(e.kind(), connector::ErrorKind::Unsupported);
        // Garbage or truncated input: an error or an uncut body, never a panic.
        // Every truncation of a real multipart, and byte flips in its structure.
        let mime = multipart(&[("a.pdf", &[1u8; 3000][..]), ("b.pdf", &[2u8; 500][..])]);
        for n in (0..mime.len()).step_by(5) {
            if let Ok(s) = split_for_draft(&mime[..n], 1500) {
                assert!(s.body.len() <= 1500);
            }
        }
        for i in (0..mime.len()).step_by(11) {
            let mut m = mime.clone();
            m[i] = b'-';
            if let Ok(s) = split_for_draft(&m, 1500) {
                assert!(s.body.len() <= 1500);
            }
        }
        for bad in [&b""[..], b"\xff\xfe\r\n\r\n", b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Disposition: attachment\r\n\r\nxx"] {
            if let Ok(s) = split_for_draft(bad, 10) {
                assert!(s.body.len() <= 10);
            }
        }
    }

    /// fuzz/README.md finding 3: mail-parser 0.11.9 hits a `debug_assert!` on this forward
    /// with broken boundaries. Debug builds get a typed error, release builds a valid split.
    #[test]
    fn the_fuzz_finding_3_forward_is_a_typed_error_not_a_panic() {
        let input: &[u8] =
            include_bytes!("../../../fuzz/regressions/finding_3_mail_parser_debug_assert");
        let mime = &input[2..];
        for limit in [
            usize::from(u16::from_le_bytes([input[0], input[1]])),
            100,
            mime.len(),
        ] {
            let result = split_for_draft(mime, limit);
            if cfg!(debug_assertions) {
                let Err(e) = result else {
                    panic!("debug builds must see the parser's panic");
                };
                assert_eq!(e.kind(), connector::ErrorKind::Configuration);
                let text = e.to_string();
                assert!(text.contains("MIME parser failed"), "{text}");
                assert!(text.contains("Invalid part ID"), "{text}");
            } else {
                // Release builds: mail-parser recovers; only the size may refuse the split.
                match result {
                    Err(e) => assert_eq!(e.kind(), connector::ErrorKind::Unsupported, "{e}"),
                    Ok(s) => assert!(s.body.len() <= limit && s.body.len() <= mime.len()),
                }
            }
        }
    }

    #[test]
    fn inline_attachments_and_sessions_are_built_with_their_ids() {
        let ep = Endpoint::custom("http://127.0.0.1:9/v1.0", crate::Mailbox::Me).unwrap();
        let mut a = Attachment::new("logo.png", "image/png", vec![1, 2, 3]);
        a.inline = true;
        a.content_id = Some("logo@x".into());
        let r = add_attachment(&ep, "d1", &a).unwrap();
        assert_eq!(r.uri().path(), "/v1.0/me/messages/d1/attachments");
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["contentBytes"], "AQID");
        assert_eq!(v["isInline"], true);
        assert_eq!(v["contentId"], "logo@x");
        let r = create_attachment_upload_session(&ep, "d1", &a).unwrap();
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["AttachmentItem"]["size"], 3);
        assert_eq!(v["AttachmentItem"]["contentType"], "image/png");
        let big = Attachment::new("big", "x/y", vec![0; MAX_REQUEST_BODY]);
        assert!(add_attachment(&ep, "d1", &big).is_err());
        let ok = Attachment::new("ok", "x/y", vec![0; MAX_INLINE_ATTACHMENT]);
        assert!(add_attachment(&ep, "d1", &ok).is_ok());
    }

    #[test]
    fn delta_requests_ask_for_full_pages() {
        assert_eq!(DELTA_PREFER, format!("odata.maxpagesize={DELTA_PAGE}"));
        let ep = Endpoint::custom("http://127.0.0.1:9/v1.0", crate::Mailbox::Me).unwrap();
        for r in [
            delta(&ep, "inbox").unwrap(),
            follow_delta_link(
                &ep,
                "http://127.0.0.1:9/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=1",
            )
            .unwrap(),
        ] {
            assert_eq!(r.headers()["prefer"], DELTA_PREFER);
        }
        assert!(follow_delta_link(&ep, "http://127.0.0.2:9/v1.0/me/x").is_err());
    }

    #[test]
    fn upload_urls_must_be_on_the_graph_or_outlook_host() {
        let global = Endpoint::cloud(crate::Cloud::Global, crate::Mailbox::Me);
        let ok = |ep: &Endpoint, u: &str| check_upload_url(ep, &Url::parse(u).unwrap()).is_ok();
        assert!(ok(
            &global,
            "https://outlook.office.com/api/v2.0/Users('a')/Messages('b')/AttachmentSessions('c')?authtoken=x"
        ));
        assert!(ok(&global, "https://graph.microsoft.com/v1.0/upload/x"));
        assert!(!ok(
            &global,
            "https://outlook.office.com.attacker.example/up"
        ));
        assert!(!ok(&global, "http://outlook.office.com/up"));
        assert!(!ok(&global, "https://outlook.office.com:8443/up"));
        assert!(!ok(&global, "https://user:pw@outlook.office.com/up"));
        assert!(
            !ok(&global, "https://outlook.office365.us/up"),
            "another cloud's host"
        );
        let local = Endpoint::custom("http://127.0.0.1:8080/v1.0", crate::Mailbox::Me).unwrap();
        assert!(ok(
            &local,
            "http://127.0.0.1:8080/v1.0/_upload/s?authtoken=t"
        ));
        assert!(!ok(&local, "http://127.0.0.1:8081/v1.0/_upload/s"));
        assert!(!ok(&local, "https://outlook.office.com/up"));
        let e = check_upload_url(
            &local,
            &Url::parse("https://evil.example/up?authtoken=secret").unwrap(),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
    use crate::endpoint::{Cloud, Mailbox};

    fn ep() -> Endpoint {
        Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"))
    }

    #[test]
    fn unread_listing_satisfies_the_orderby_rule() {
        let r = list_unread(&ep(), "inbox", 5000).unwrap();
        let q = r.uri().query().unwrap().to_owned();
        let filter = q.split('&').find(|p| p.starts_with("$filter=")).unwrap();
        // receivedDateTime is the first filter term because it is the $orderby property.
        assert!(
            filter.starts_with("$filter=receivedDateTime%20ge%20"),
            "{filter}"
        );
        assert!(filter.ends_with("and%20isRead%20eq%20false"));
        assert!(q.contains("$orderby=receivedDateTime%20asc"));
        assert!(q.contains("$top=1000"), "top is capped: {q}");
        assert!(q.contains("$select=id,internetMessageId"));
    }

    #[test]
    fn foreign_next_links_are_refused() {
        let e =
            follow_link(&ep(), "https://evil.example/v1.0/users/x/messages?$skip=10").unwrap_err();
        assert_eq!(e.kind(), connector::ErrorKind::BadResponse);
        let e = parse_message_page(
            &ep(),
            br#"{"value":[],"@odata.nextLink":"http://graph.microsoft.com/v1.0/me/messages"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("refusing"), "{e}");
        let ok = parse_message_page(
            &ep(),
            br#"{"value":[],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/x/messages?$skip=10"}"#,
        )
        .unwrap();
        assert!(ok.next_link.is_some());
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        for body in [
            &b""[..],
            b"{",
            b"{\"value\":[{\"id\":\"a\"",
            b"{\"value\":null}",
            b"{\"value\":[{\"id\":5}]}",
            b"{\"value\":[{\"isRead\":false}]}",
            b"{\"value\":[{\"id\":\"a\",\"receivedDateTime\":\"yesterday\"}]}",
            b"{\"value\":[{\"id\":\"a\",\"isRead\":\"maybe\"}]}",
            b"{\"value\":[{\"id\":\"a\",\"toRecipients\":\"x\"}]}",
            b"<html>502 bad gateway</html>",
        ] {
            let e = parse_message_page(&ep(), body).unwrap_err();
            assert_eq!(e.kind(), connector::ErrorKind::BadResponse, "{body:?}");
        }
    }

    #[test]
    fn nulls_and_missing_fields_are_empty() {
        let p = parse_message_page(
            &ep(),
            br#"{"value":[{"id":"a","toRecipients":null,"ccRecipients":[{"emailAddress":null}],"internetMessageId":null}]}"#,
        )
        .unwrap();
        let m = &p.messages[0];
        assert!(m.to.is_empty() && m.cc.is_empty());
        assert_eq!(m.internet_message_id, None);
    }

    #[test]
    fn huge_pages_are_refused() {
        let items: Vec<String> = (0..MAX_PAGE + 1)
            .map(|i| format!("{{\"id\":\"m{i}\"}}"))
            .collect();
        let body = format!("{{\"value\":[{}]}}", items.join(","));
        let e = parse_message_page(&ep(), body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }

    #[test]
    fn error_json_keeps_code_and_ids() {
        let body = br#"{"error":{"code":"ErrorSendAsDenied","message":"no right","innerError":{"request-id":"r-1","client-request-id":"c-1","date":"2019-01-16T18:53:25"}}}"#;
        let g = GraphError::parse(403, &http::HeaderMap::new(), body);
        assert_eq!(g.code.as_deref(), Some("ErrorSendAsDenied"));
        assert_eq!(g.request_id.as_deref(), Some("r-1"));
        assert_eq!(g.client_request_id.as_deref(), Some("c-1"));
        assert_eq!(g.date.as_deref(), Some("2019-01-16T18:53:25"));
        let e = g.into_error("sending", body, None);
        assert_eq!(e.kind(), connector::ErrorKind::Refused);
        assert!(!e.may_have_taken_effect());
        assert_eq!(e.response().unwrap().request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn statuses_map_to_kinds() {
        use connector::ErrorKind::*;
        for (status, code, kind) in [
            (404, "ErrorItemNotFound", NotFound),
            (400, "ErrorInvalidUser", NotFound),
            (429, "TooManyRequests", Throttled),
            (503, "", Transient),
            (504, "", Transient),
            (401, "InvalidAuthenticationToken", Authentication),
            (400, "InefficientFilter", Refused),
        ] {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            let e = GraphError::parse(status, &http::HeaderMap::new(), body.as_bytes()).into_error(
                "x",
                body.as_bytes(),
                None,
            );
            assert_eq!(e.kind(), kind, "{status} {code}");
        }
        let e = GraphError::parse(504, &http::HeaderMap::new(), b"").into_error("x", b"", None);
        assert!(
            e.may_have_taken_effect(),
            "a gateway timeout may have gone through"
        );
    }

    #[test]
    fn delta_pages() {
        let p = parse_delta_page(
            &ep(),
            br#"{"@odata.deltaLink":"https://graph.microsoft.com/v1.0/me/mailfolders('x')/messages/delta?$deltatoken=abc",
                "value":[{"id":"gone","@removed":{"reason":"deleted"}},{"id":"new","isRead":"true"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.items[0],
            DeltaItem::Removed {
                id: "gone".into(),
                reason: "deleted".into()
            }
        );
        match &p.items[1] {
            DeltaItem::Changed(m) => assert_eq!(m.is_read, Some(true)),
            other => panic!("{other:?}"),
        }
        assert!(parse_delta_page(&ep(), br#"{"value":[]}"#).is_err());
    }

    #[test]
    fn batch_building_checks_limits_and_ids() {
        let ep = ep();
        let item = |i: usize| {
            BatchItem::from_request(&ep, i.to_string(), &get_mime(&ep, "m").unwrap()).unwrap()
        };
        let r = batch(&ep, &(0..20).map(item).collect::<Vec<_>>()).unwrap();
        assert_eq!(r.uri().path(), "/v1.0/$batch");
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            v["requests"][0]["url"],
            "/users/helpdesk@contoso.com/messages/m/$value"
        );
        assert!(batch(&ep, &(0..21).map(item).collect::<Vec<_>>()).is_err());
        assert!(batch(&ep, &[item(1), item(1)]).is_err());
        assert!(batch(&ep, &[item(1).depends_on(vec!["9".into()])]).is_err());
        let patch = BatchItem::from_request(&ep, "p", &mark_read(&ep, "m").unwrap()).unwrap();
        assert_eq!(
            patch.headers.get("Content-Type").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(patch.body, Some(json!({"isRead": true})));
        assert!(BatchItem::from_request(&ep, "s", &send_mime(&ep, b"x").unwrap()).is_err());
    }

    #[test]
    fn batch_answers_decode_bodies_and_refuse_strangers() {
        let body = br#"{"responses":[
            {"id":"1","status":200,"headers":{"Content-Type":"text/plain"},"body":"U3ViamVjdDogaGkNCg0KYm9keQ=="},
            {"id":"2","status":429,"headers":{"Retry-After":"3"},"body":{"error":{"code":"TooManyRequests"}}},
            {"id":"3","status":204,"body":null}]}"#;
        let items = parse_batch(body, &["1", "2", "3"]).unwrap();
        assert_eq!(items[0].body, b"Subject: hi\r\n\r\nbody");
        assert_eq!(items[1].headers.get("retry-after").unwrap(), "3");
        assert!(items[2].body.is_empty());
        assert!(parse_batch(body, &["1", "2"]).is_err());
        assert!(parse_batch(br#"{"responses":[{"id":"1"}]}"#, &["1"]).is_err());
    }

    #[test]
    fn send_requests() {
        let ep = ep();
        let r = send_mime(&ep, b"Subject: x\r\n\r\nhi").unwrap();
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.body(), b"U3ViamVjdDogeA0KDQpoaQ==");
        let big = vec![b'a'; MAX_REQUEST_BODY];
        assert_eq!(
            send_mime(&ep, &big).unwrap_err().kind(),
            connector::ErrorKind::Configuration
        );
        let s = send_draft(&ep, "d1").unwrap();
        assert_eq!(s.headers()["content-length"], "0");
        assert!(s.body().is_empty());
        let mut m = JsonMail::text("Hi", "Body", vec!["a@x.example".into()]);
        m.from = Some("billing@contoso.com".into());
        m.attachments
            .push(("a.txt".into(), "text/plain".into(), b"abc".to_vec()));
        let v: Value = serde_json::from_slice(send_json(&ep, &m).unwrap().body()).unwrap();
        assert_eq!(
            v["message"]["from"]["emailAddress"]["address"],
            "billing@contoso.com"
        );
        assert_eq!(v["message"]["attachments"][0]["contentBytes"], "YWJj");
        assert_eq!(v["saveToSentItems"], true);
    }

    #[test]
    fn upload_chunks() {
        assert_eq!(chunk_ranges(10, 4), vec![(0, 3), (4, 7), (8, 9)]);
        assert!(chunk_ranges(0, 4).is_empty());
        assert_eq!(UPLOAD_CHUNK % (320 * 1024), 0);
        const { assert!(UPLOAD_CHUNK < 4 * 1024 * 1024) };
        let u = Url::parse(
            "https://outlook.office.com/api/v1.0/Users('x')/AttachmentSessions('y')?authtoken=s",
        )
        .unwrap();
        let r = upload_chunk(&u, 4, b"abcd", 10).unwrap();
        assert_eq!(r.headers()["content-range"], "bytes 4-7/10");
        assert!(r.headers().get("authorization").is_none());
    }
}
