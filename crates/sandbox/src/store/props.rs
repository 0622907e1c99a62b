//! [`MessageProps`]: the properties Graph and EWS expose, derived from a message's MIME with
//! mail-parser when the message is stored.

use time::OffsetDateTime;

use super::StoreError;

/// An e-mail address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EmailAddress {
    /// Display name (may be empty).
    pub name: String,
    /// The address.
    pub address: String,
}

/// Properties derived from a message's MIME.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct MessageProps {
    /// `Subject`.
    pub subject: String,
    /// `From` (first address).
    pub from: Option<EmailAddress>,
    /// `Sender`, falling back to `From`.
    pub sender: Option<EmailAddress>,
    /// `To`.
    pub to: Vec<EmailAddress>,
    /// `Cc`.
    pub cc: Vec<EmailAddress>,
    /// `Bcc` (present on drafts and sent items only).
    pub bcc: Vec<EmailAddress>,
    /// `Reply-To`.
    pub reply_to: Vec<EmailAddress>,
    /// `Message-ID` with angle brackets, e.g. `<abc@example.com>`.
    pub internet_message_id: Option<String>,
    /// `Date`.
    pub sent: Option<OffsetDateTime>,
    /// Whether there are non-inline attachments (Graph `hasAttachments`).
    pub has_attachments: bool,
    /// Transport headers in order, unfolded (`internetMessageHeaders`).
    pub headers: Vec<(String, String)>,
    /// Plain text body (from the text part, or HTML stripped of nothing: raw HTML if that is all).
    pub body_text: String,
    /// HTML body if the message has one.
    pub body_html: Option<String>,
    /// First 255 characters of the text body, whitespace collapsed (`bodyPreview`).
    pub body_preview: String,
    /// Size of the MIME in bytes.
    pub size: usize,
}

impl MessageProps {
    /// A message's MIME as the store keeps it, with the properties derived from it
    /// ([`from_mime`](Self::from_mime)): what inserting and replacing a message both start from.
    pub(crate) fn read(
        mime: impl Into<bytes::Bytes>,
    ) -> Result<(bytes::Bytes, std::sync::Arc<MessageProps>), StoreError> {
        let mime = mime.into();
        let props = std::sync::Arc::new(MessageProps::from_mime(&mime)?);
        Ok((mime, props))
    }

    /// Derives the properties from raw MIME. Fails only when mail-parser cannot read it at all,
    /// or panics on it (fuzz/README.md finding 3: a `debug_assert!` deep in multipart nesting,
    /// reachable in debug builds). Delivery reads bytes from any SMTP peer, so a panic here is
    /// turned into [`StoreError::InvalidMime`] instead of ending the session's task.
    pub fn from_mime(mime: &[u8]) -> Result<Self, StoreError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::derive(mime)))
            .unwrap_or(Err(StoreError::InvalidMime))
    }

    fn derive(mime: &[u8]) -> Result<Self, StoreError> {
        let msg = mail_parser::MessageParser::default()
            .parse(mime)
            .ok_or(StoreError::InvalidMime)?;
        let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<EmailAddress> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some(EmailAddress {
                            name: x.name().unwrap_or_default().to_string(),
                            address: x.address()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let from = addrs(msg.from()).into_iter().next();
        let sender = addrs(msg.sender())
            .into_iter()
            .next()
            .or_else(|| from.clone());
        let raw = msg.raw_message();
        let headers = msg
            .headers()
            .iter()
            .map(|h| {
                let start = h.offset_start as usize;
                let end = (h.offset_end as usize).min(raw.len());
                let value = raw
                    .get(start..end)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                (h.name.as_str().to_string(), unfold(&value))
            })
            .collect();
        let body_text = msg.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
        // mail-parser lists text parts as HTML bodies too (converting on access); only report
        // an HTML body when the message really has a text/html part.
        let has_html = msg.html_body.iter().any(|i| {
            msg.parts
                .get(*i as usize)
                .is_some_and(|p| matches!(p.body, mail_parser::PartType::Html(_)))
        });
        let body_html = if has_html {
            msg.body_html(0).map(|c| c.into_owned())
        } else {
            None
        };
        use mail_parser::MimeHeaders as _;
        let has_attachments = msg.attachments().any(|p| {
            let inline = p.content_disposition().is_some_and(|d| d.is_inline());
            !(inline && p.content_id().is_some())
        });
        let preview: String = body_text.split_whitespace().collect::<Vec<_>>().join(" ");
        let body_preview = preview.chars().take(255).collect();
        Ok(Self {
            subject: msg.subject().unwrap_or_default().to_string(),
            from,
            sender,
            to: addrs(msg.to()),
            cc: addrs(msg.cc()),
            bcc: addrs(msg.bcc()),
            reply_to: addrs(msg.reply_to()),
            internet_message_id: msg.message_id().map(|m| format!("<{m}>")),
            sent: msg
                .date()
                .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok()),
            has_attachments,
            headers,
            body_text,
            body_html,
            body_preview,
            size: mime.len(),
        })
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn unfold(v: &str) -> String {
    v.replace("\r\n", "\n")
        .split('\n')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TEST_MIME as MIME;

    /// The finding-3 bytes make mail-parser's debug assertion fire in this (debug) build: the
    /// sandbox refuses them as invalid MIME instead of panicking. A build without debug
    /// assertions parses them.
    #[test]
    fn mime_the_parser_panics_on_is_invalid_not_a_panic() {
        const FINDING_3: &[u8] =
            include_bytes!("../../../../fuzz/regressions/finding_3_mail_parser_debug_assert");
        let mime = &FINDING_3[2..];
        let parsed = MessageProps::from_mime(mime);
        if cfg!(debug_assertions) {
            assert!(matches!(parsed, Err(StoreError::InvalidMime)), "{parsed:?}");
        } else {
            assert!(parsed.is_ok(), "{parsed:?}");
        }
    }

    #[test]
    fn props_are_derived() {
        let p = MessageProps::from_mime(MIME.as_bytes()).unwrap();
        assert_eq!(p.subject, "Hi there");
        assert_eq!(p.to.len(), 2);
        assert_eq!(p.to[1].name, "C");
        assert_eq!(p.internet_message_id.as_deref(), Some("<m1@x.example>"));
        assert_eq!(p.header("subject"), Some("Hi there"));
        assert_eq!(p.body_preview, "Hello world");
        assert!(!p.has_attachments);
        assert!(p.body_html.is_none(), "text-only message has no HTML body");
        let html = "Subject: h\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n";
        let p = MessageProps::from_mime(html.as_bytes()).unwrap();
        assert!(
            p.body_html
                .as_deref()
                .unwrap_or_default()
                .contains("<b>there</b>")
        );
    }
}
