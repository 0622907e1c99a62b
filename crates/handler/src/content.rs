//! What a message says: its readable text, its HTML, its attachments.
//!
//! Every integrator of a mail handler writes the same code after receiving raw MIME: find the
//! text (turning HTML-only mail into text), list the attachments, tell inline images from
//! files, make their names safe to write, and refuse the huge ones. [`MessageContent::parse`]
//! (or [`Inbound::content`](crate::Inbound::content)) does it once, on top of mail-parser:
//!
//! ```
//! use handler::{ContentLimits, MessageContent};
//!
//! let mime = b"From: ann@fabrikam.example\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n\
//! Content-Type: multipart/mixed; boundary=b\r\n\r\n\
//! --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the <b>invoice</b>.</p>\r\n\
//! --b\r\nContent-Type: application/pdf; name=\"../../etc/invoice.pdf\"\r\n\
//! Content-Disposition: attachment; filename=\"../../etc/invoice.pdf\"\r\n\
//! Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
//! let content = MessageContent::parse(mime, &ContentLimits::default())?;
//! assert_eq!(content.text.as_deref().map(str::trim), Some("See the invoice."));
//! assert!(content.html.is_some());
//! let pdf = &content.attachments[0];
//! assert_eq!(pdf.name, "invoice.pdf"); // no way out of the folder it is saved in
//! assert_eq!(pdf.content_type, "application/pdf");
//! assert_eq!(pdf.bytes()?, b"%PDF-1.4\n");
//! # Ok::<(), handler::ContentError>(())
//! ```
//!
//! What is not done: `winmail.dat` (Outlook's TNEF) is reported as
//! [`AttachmentKind::Tnef`] and kept whole, not unpacked. The Rust TNEF readers there are
//! (`tnef`, unmaintained since 2019; `ytnef`, a binding to a C library) are not well-kept enough
//! to put in front of customers' attachments.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mail_parser::{MessagePart, MimeHeaders, PartType};

/// How much of a message [`MessageContent::parse`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContentLimits {
    /// The largest attachment whose bytes are kept (default 25 MiB, Outlook's own limit for
    /// attaching a file). A bigger one is listed with its size, and its bytes are refused with
    /// [`ContentError::TooLarge`].
    pub max_attachment_bytes: usize,
    /// At most this many attachments are listed (default 250); the rest are counted in
    /// [`MessageContent::attachments_left_out`].
    pub max_attachments: usize,
}

impl Default for ContentLimits {
    fn default() -> Self {
        ContentLimits {
            max_attachment_bytes: 25 * 1024 * 1024,
            max_attachments: 250,
        }
    }
}

impl ContentLimits {
    /// Sets [`max_attachment_bytes`](Self::max_attachment_bytes).
    pub fn max_attachment_bytes(mut self, bytes: usize) -> Self {
        self.max_attachment_bytes = bytes;
        self
    }

    /// Sets [`max_attachments`](Self::max_attachments).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.max_attachments = n;
        self
    }
}

/// Why a message's content, or an attachment's bytes, cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The MIME could not be read at all.
    #[error("the message's MIME cannot be read: {0}")]
    Unreadable(#[from] connector::mime::MimeError),
    /// The attachment is bigger than [`ContentLimits::max_attachment_bytes`].
    #[error("the attachment {name:?} has {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The attachment's (safe) name.
        name: String,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Writing an attachment failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The readable parts of a message.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MessageContent {
    /// The text: the plain-text parts, or text made from the HTML part when the message has no
    /// plain text ([`html_to_text`](crate::html_to_text)). `None` when the message has neither.
    pub text: Option<String>,
    /// The HTML body, when the message has one (not made up from plain text).
    pub html: Option<String>,
    /// The attachments, inline images included, in the order they appear.
    pub attachments: Vec<Attachment>,
    /// Attachments beyond [`ContentLimits::max_attachments`], not listed.
    pub attachments_left_out: usize,
}

/// What kind of file an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AttachmentKind {
    /// An ordinary file.
    File,
    /// An attached email (`message/rfc822`), kept as its MIME (`.eml`).
    Message,
    /// Outlook's `winmail.dat` (`application/ms-tnef`): it holds the real attachments and
    /// rich text, and is kept whole (not unpacked).
    Tnef,
}

/// One attachment.
#[derive(Clone)]
#[non_exhaustive]
pub struct Attachment {
    /// A name safe to use as a file name in any folder: no path, no control or reserved
    /// characters, not a device name, at most 120 bytes, unique within the message
    /// (`report (2).pdf`); `attachment-<n>` when the message gave none.
    pub name: String,
    /// The name as the message gave it, decoded, if any (not safe for a path).
    pub original_name: Option<String>,
    /// `type/subtype`, lower-case (`application/octet-stream` when not given).
    pub content_type: String,
    /// Size in bytes, decoded.
    pub size: usize,
    /// The `Content-ID`, without angle brackets: what an HTML body's `cid:` links name.
    pub content_id: Option<String>,
    /// Shown within the body (an inline image) rather than attached as a file.
    pub inline: bool,
    /// What kind of file it is.
    pub kind: AttachmentKind,
    data: Option<Vec<u8>>,
    limit: usize,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes are a customer's file: their size is enough for a log.
        f.debug_struct("Attachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .field("content_id", &self.content_id)
            .field("inline", &self.inline)
            .field("kind", &self.kind)
            .field("kept", &self.data.is_some())
            .finish()
    }
}

impl Attachment {
    /// The decoded bytes, or [`ContentError::TooLarge`] when the attachment is over the limit.
    pub fn bytes(&self) -> Result<&[u8], ContentError> {
        self.data.as_deref().ok_or_else(|| self.too_large())
    }

    /// Writes the attachment to `dir/<name>`, readable by the owner only, atomically (a
    /// temporary file renamed into place); returns the path. `dir` must exist.
    pub fn save_in(&self, dir: &Path) -> Result<PathBuf, ContentError> {
        let bytes = self.bytes()?;
        let path = dir.join(&self.name);
        httpcore::fs::write_atomic(&path, bytes, httpcore::fs::FileMode::OwnerOnly).map_err(
            |source| ContentError::Io {
                path: path.clone(),
                source,
            },
        )?;
        Ok(path)
    }

    fn too_large(&self) -> ContentError {
        ContentError::TooLarge {
            name: self.name.clone(),
            size: self.size,
            limit: self.limit,
        }
    }
}

impl MessageContent {
    /// Reads the content of a whole message. Fails only when the MIME cannot be read at all
    /// (mail-parser is lenient: a truncated message gives what it has).
    pub fn parse(mime: &[u8], limits: &ContentLimits) -> Result<Self, ContentError> {
        let message = connector::mime::parse(mime)?;
        // An HTML part standing in for the text is read with this crate's converter: it starts
        // a line at each `div` (Gmail and Outlook on the web put every line in one), where
        // mail-parser's ran the lines together.
        let texts: Vec<String> = message
            .text_bodies()
            .filter_map(|p| match &p.body {
                PartType::Text(t) => Some(t.to_string()),
                PartType::Html(h) => Some(crate::reply::html_to_text(h)),
                _ => None,
            })
            .collect();
        let text = (!texts.is_empty()).then(|| texts.join("\n"));
        let htmls: Vec<String> = message
            .html_bodies()
            .filter_map(|p| match &p.body {
                PartType::Html(h) => Some(h.to_string()),
                _ => None,
            })
            .collect();
        let html = (!htmls.is_empty()).then(|| htmls.join("\n"));

        let mut names = HashSet::new();
        let mut attachments = Vec::new();
        let mut left_out = 0;
        for (n, part) in message.attachments().enumerate() {
            if attachments.len() >= limits.max_attachments {
                left_out += 1;
                continue;
            }
            attachments.push(attachment(part, n + 1, limits, &mut names));
        }
        Ok(MessageContent {
            text,
            html,
            attachments,
            attachments_left_out: left_out,
        })
    }
}

fn attachment(
    part: &MessagePart<'_>,
    n: usize,
    limits: &ContentLimits,
    names: &mut HashSet<String>,
) -> Attachment {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
        .to_ascii_lowercase();
    let original_name = part.attachment_name().map(str::to_owned).or_else(|| {
        // An attached email is named after its subject.
        part.message()
            .and_then(|m| m.subject())
            .map(|s| format!("{s}.eml"))
    });
    let kind = if part.is_message() {
        AttachmentKind::Message
    } else if content_type == "application/ms-tnef"
        || original_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
    {
        AttachmentKind::Tnef
    } else {
        AttachmentKind::File
    };
    let disposition = part
        .content_disposition()
        .map(|d| d.ctype().to_ascii_lowercase());
    let content_id = part
        .content_id()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|id| !id.is_empty());
    let inline = match disposition.as_deref() {
        Some("inline") => true,
        Some(_) => false,
        // No disposition: an image referred to by Content-ID is shown in the body.
        None => content_id.is_some() && kind == AttachmentKind::File,
    };
    let fallback = if kind == AttachmentKind::Message {
        format!("attachment-{n}.eml")
    } else {
        format!("attachment-{n}")
    };
    let name = unique(
        safe_file_name(original_name.as_deref()).unwrap_or(fallback),
        names,
    );
    let size = part.len();
    let data = (size <= limits.max_attachment_bytes).then(|| part.contents().to_vec());
    Attachment {
        name,
        original_name,
        content_type,
        size,
        content_id,
        inline,
        kind,
        data,
        limit: limits.max_attachment_bytes,
    }
}

/// Longest safe name kept, in bytes (leaves room for a folder path under Windows' 260).
const MAX_NAME_BYTES: usize = 120;

/// A name that cannot leave the folder it is written in, on any system: the last path
/// component, without control characters or `<>:"/\|?*`, without leading dots or trailing
/// dots and spaces, not a Windows device name, at most [`MAX_NAME_BYTES`] (the extension kept).
/// `None` when nothing usable is left.
pub(crate) fn safe_file_name(given: Option<&str>) -> Option<String> {
    let given = given?;
    let last = given.rsplit(['/', '\\']).next().unwrap_or(given);
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"|?*".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut name = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_owned();
    if name.is_empty() || name.chars().all(|c| c == '_') {
        return None;
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        name.insert(0, '_');
    }
    Some(shorten(&name, MAX_NAME_BYTES))
}

/// `name` cut to at most `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16)
        .unwrap_or("");
    let mut cut = max - ext.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &name[..cut])
}

/// `name`, or `stem (2).ext`, `stem (3).ext`, ... if already used in this message (compared
/// without case: some file systems do not tell them apart).
fn unique(name: String, used: &mut HashSet<String>) -> String {
    let mut candidate = name.clone();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    let mut k = 2;
    while !used.insert(candidate.to_lowercase()) {
        candidate = format!("{stem} ({k}){ext}");
        k += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_their_folder_or_name_a_device() {
        let cases = [
            ("../../etc/passwd", Some("passwd")),
            ("C:\\Windows\\win.ini", Some("win.ini")),
            ("..", None),
            ("...hidden", Some("hidden")),
            ("a\u{0}b\r\n.txt", Some("a_b__.txt")),
            ("what?.txt", Some("what_.txt")),
            ("CON.txt", Some("_CON.txt")),
            ("com1", Some("_com1")),
            ("COMPANY.txt", Some("COMPANY.txt")),
            ("trailing. . ", Some("trailing")),
            ("***", None),
            ("", None),
        ];
        for (given, want) in cases {
            assert_eq!(safe_file_name(Some(given)).as_deref(), want, "{given:?}");
        }
        let long = format!("{}.pdf", "é".repeat(200));
        let short = safe_file_name(Some(&long)).unwrap();
        assert!(short.len() <= MAX_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with(".pdf"));
    }

    #[test]
    fn repeated_names_are_numbered() {
        let mut used = HashSet::new();
        let got: Vec<String> = ["a.pdf", "A.pdf", "a.pdf", "noext", "noext"]
            .into_iter()
            .map(|n| unique(n.to_owned(), &mut used))
            .collect();
        assert_eq!(
            got,
            ["a.pdf", "A (2).pdf", "a (3).pdf", "noext", "noext (2)"]
        );
    }
}
