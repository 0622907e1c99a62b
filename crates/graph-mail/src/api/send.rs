//! Sending: `sendMail` with MIME or JSON, drafts, large attachments through upload sessions,
//! and splitting a large MIME message into a draft plus attachments.

use super::*;

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
pub(super) fn part_cut_range(raw: &[u8], header: usize, end: usize) -> Option<(usize, usize)> {
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
