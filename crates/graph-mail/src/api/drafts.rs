//! Drafts: a draft from MIME, attachments added in one request or through chunked upload
//! sessions, and sending the draft.

use super::*;

/// `POST …/messages` with base64 MIME → 201 draft (its properties parsed). Refused before
/// sending when the encoded draft is over [`MAX_REQUEST_BODY`].
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateDraftMime<'a> {
    /// The RFC 822 message.
    pub mime: &'a [u8],
}

impl<'a> CreateDraftMime<'a> {
    /// A draft of `mime`.
    pub fn new(mime: &'a [u8]) -> Self {
        CreateDraftMime { mime }
    }
}

impl std::fmt::Debug for CreateDraftMime<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateDraftMime")
            .field("len", &self.mime.len())
            .finish()
    }
}

impl GraphOperation for CreateDraftMime<'_> {
    type Output = MessageMeta;

    describe_op!("creating a draft", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let body = base64_mime(self.mime, || {
            Error::configuration(
                "the draft is over Graph's 4 MB request limit; attach large files with an upload session",
            )
        })?;
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["messages"]),
            body,
        ))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<MessageMeta, Error> {
        parse_message(response.json()?)
    }
}

/// `POST …/messages/{id}/attachments/createUploadSession` for a file by name and size → 201
/// [`UploadSession`], whose URL must pass [`check_upload_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateUploadSession {
    /// The draft's id.
    pub message_id: String,
    /// The file name.
    pub name: String,
    /// The file size in bytes.
    pub size: u64,
}

impl CreateUploadSession {
    /// An upload session for a `size`-byte file `name` on draft `message_id`.
    pub fn new(message_id: impl Into<String>, name: impl Into<String>, size: u64) -> Self {
        CreateUploadSession {
            message_id: message_id.into(),
            name: name.into(),
            size,
        }
    }
}

impl GraphOperation for CreateUploadSession {
    type Output = UploadSession;

    describe_op!("starting an attachment upload", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(upload_session_request(
            ep,
            &self.message_id,
            json!({ "attachmentType": "file", "name": self.name, "size": self.size }),
        ))
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<UploadSession, Error> {
        checked_session(ep, response)
    }
}

/// `POST …/messages/{message_id}/attachments/createUploadSession` for `item` (an
/// `attachmentItem`).
fn upload_session_request(ep: &Endpoint, message_id: &str, item: Value) -> OpRequest {
    OpRequest::new(
        http::Method::POST,
        ep.mailbox_url(&["messages", message_id, "attachments", "createUploadSession"]),
        Body::Json(json!({ "AttachmentItem": item })),
    )
}

fn checked_session(ep: &Endpoint, response: &Response) -> Result<UploadSession, Error> {
    let session = parse_upload_session(response.json()?)?;
    check_upload_url(ep, &session.upload_url)?;
    Ok(session)
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
/// `Authorization` (the upload URL is pre-authenticated: [`authenticated`] is `false`).
/// Declared [`Idempotency::Safe`]: the same range written again is the same bytes.
///
/// [`authenticated`]: GraphOperation::authenticated
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadChunk<'a> {
    /// The session's URL.
    pub upload_url: &'a Url,
    /// The offset of the chunk's first byte.
    pub start: u64,
    /// The chunk (not empty).
    pub chunk: &'a [u8],
    /// The whole file's size.
    pub total: u64,
}

impl<'a> UploadChunk<'a> {
    /// `chunk`, starting at byte `start` of a `total`-byte file, to `upload_url`.
    pub fn new(upload_url: &'a Url, start: u64, chunk: &'a [u8], total: u64) -> Self {
        UploadChunk {
            upload_url,
            start,
            chunk,
            total,
        }
    }
}

impl std::fmt::Debug for UploadChunk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's query is the session's token.
        f.debug_struct("UploadChunk")
            .field("start", &self.start)
            .field("len", &self.chunk.len())
            .field("total", &self.total)
            .finish()
    }
}

impl GraphOperation for UploadChunk<'_> {
    type Output = ();

    describe_op!("uploading an attachment", Safe);

    fn authenticated(&self) -> bool {
        false
    }

    fn build(&self, _: &Endpoint) -> Result<OpRequest, Error> {
        if self.chunk.is_empty() {
            return Err(Error::configuration("an upload chunk is empty"));
        }
        let end = self.start + self.chunk.len() as u64 - 1;
        let range =
            http::HeaderValue::from_str(&format!("bytes {}-{end}/{}", self.start, self.total))
                .map_err(|e| Error::configuration(format!("building an upload request: {e}")))?;
        let mut r = OpRequest::new(
            http::Method::PUT,
            self.upload_url.clone(),
            Body::Bytes {
                content_type: "application/octet-stream",
                bytes: self.chunk.to_vec(),
            },
        )
        .with_header(http::header::CONTENT_RANGE, range)
        .with_header(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(self.chunk.len()),
        );
        r.accept_json = false;
        Ok(r)
    }

    status_only!();
}

/// `POST …/messages/{id}/send` with an empty body and `Content-Length: 0` (Graph answers 411
/// without it) → 202.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendDraft {
    /// The draft's id.
    pub message_id: String,
}

impl SendDraft {
    /// Sends draft `message_id`.
    pub fn new(message_id: impl Into<String>) -> Self {
        SendDraft {
            message_id: message_id.into(),
        }
    }
}

impl GraphOperation for SendDraft {
    type Output = ();

    describe_op!("sending a draft", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["messages", &self.message_id, "send"]),
            Body::Empty,
        )
        .with_header(http::header::CONTENT_LENGTH, http::HeaderValue::from(0u32)))
    }

    status_only!();
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

    /// `v` (a JSON object) with the attachment's name, content type, inline flag and
    /// `contentId`, as a `fileAttachment` and an upload session's `attachmentItem` carry them.
    fn properties(&self, mut v: Value) -> Value {
        v["name"] = json!(self.name);
        v["contentType"] = json!(self.content_type);
        v["isInline"] = json!(self.inline);
        if let Some(cid) = &self.content_id {
            v["contentId"] = json!(cid);
        }
        v
    }
}

/// `POST …/messages/{id}/attachments` with a `fileAttachment` (content as base64) → 201.
/// Refused before sending when the body would be over [`MAX_REQUEST_BODY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddAttachment<'a> {
    /// The draft's id.
    pub message_id: &'a str,
    /// The attachment.
    pub attachment: &'a Attachment,
}

impl<'a> AddAttachment<'a> {
    /// Adds `attachment` to draft `message_id`.
    pub fn new(message_id: &'a str, attachment: &'a Attachment) -> Self {
        AddAttachment {
            message_id,
            attachment,
        }
    }
}

impl GraphOperation for AddAttachment<'_> {
    type Output = ();

    describe_op!("adding an attachment", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let att = self.attachment;
        let v = att.properties(json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "contentBytes": base64::engine::general_purpose::STANDARD.encode(&att.bytes),
        }));
        if v.to_string().len() > MAX_REQUEST_BODY {
            return Err(Error::configuration(format!(
                "a {}-byte attachment is over Graph's 4 MB request limit; use an upload session",
                att.bytes.len()
            )));
        }
        Ok(OpRequest::new(
            http::Method::POST,
            ep.mailbox_url(&["messages", self.message_id, "attachments"]),
            Body::Json(v),
        ))
    }

    status_only!();
}

/// `POST …/messages/{id}/attachments/createUploadSession` for an [`Attachment`] (name, size,
/// content type, inline and `contentId`) → 201 [`UploadSession`], whose URL must pass
/// [`check_upload_url`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateAttachmentUploadSession<'a> {
    /// The draft's id.
    pub message_id: &'a str,
    /// The attachment (only its properties and size go in this request).
    pub attachment: &'a Attachment,
}

impl<'a> CreateAttachmentUploadSession<'a> {
    /// An upload session for `attachment` on draft `message_id`.
    pub fn new(message_id: &'a str, attachment: &'a Attachment) -> Self {
        CreateAttachmentUploadSession {
            message_id,
            attachment,
        }
    }
}

impl GraphOperation for CreateAttachmentUploadSession<'_> {
    type Output = UploadSession;

    describe_op!("starting an attachment upload", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let att = self.attachment;
        let item = att.properties(json!({
            "attachmentType": "file",
            "size": att.bytes.len() as u64,
        }));
        Ok(upload_session_request(ep, self.message_id, item))
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<UploadSession, Error> {
        checked_session(ep, response)
    }
}

/// Hosts that serve upload sessions per Graph host. The global pair is documented
/// (`outlook.office.com`; `outlook.office365.com` is its other name); the national-cloud
/// entries are the Outlook hosts of those clouds, inferred rather than documented.
pub(super) const UPLOAD_HOSTS: &[(&str, &[&str])] = &[
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
