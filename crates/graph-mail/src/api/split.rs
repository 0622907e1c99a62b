//! Splitting a large MIME message into a draft-sized body and the attachments cut out of it.

use super::*;

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
