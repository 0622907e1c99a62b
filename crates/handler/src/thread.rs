//! Which earlier message an inbound message answers.
//!
//! A helpdesk wants a customer's reply on the ticket their first message opened. Mail says what
//! it answers in three ways, and the handler reads all three:
//!
//! - `In-Reply-To` and `References` (RFC 5322) name the Message-IDs of earlier messages: the
//!   customer's own first message, or the notification the handler sent them (which carries
//!   `In-Reply-To`/`References` to the customer's message in turn);
//! - Outlook's `Thread-Index` starts with a 22-byte header block whose 16-byte GUID is the same
//!   for every message of a conversation, even when a client drops `References`;
//! - a subject token such as `[HELP-123]` that a ticket system put in the subject, when the
//!   pipeline is told its prefix ([`Options::subject_token`](crate::Options::subject_token)).
//!
//! The pipeline remembers, in its ledger, the references of every message it handles (its own
//! Message-ID, its conversation, the Message-ID of the notification it sent) under the key of
//! the first message of the thread; a later message that names any of them is handed over with
//! [`Inbound::thread`](crate::Inbound::thread) set to that key ([`ThreadMatch`]).
//!
//! ```
//! use handler::ThreadRefs;
//!
//! let refs = ThreadRefs::from_headers(
//!     Some("<b@fabrikam.example>"),
//!     Some("<a@fabrikam.example> <b@fabrikam.example>"),
//!     Some("AdkDn4vJ6Zy0oEbqTsCg4UH5AAAAAA=="),
//!     "RE: [HELP-42] printer",
//!     Some("HELP"),
//! );
//! // Nearest first: what it answers, then what that answered.
//! assert_eq!(refs.lookups()[..2], ["b@fabrikam.example", "a@fabrikam.example"]);
//! assert_eq!(refs.subject_token.as_deref(), Some("HELP-42"));
//! assert!(refs.conversation.is_some());
//! ```

use base64::Engine as _;
use serde::Serialize;

/// The prefix of a conversation's reference among Message-IDs (it cannot be a Message-ID: those
/// have no `:` outside quotes and brackets in practice, and ours are looked up by exact text).
pub const CONVERSATION_PREFIX: &str = "conversation:";

/// What an inbound message says it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ThreadRefs {
    /// Message-IDs it names, without angle brackets, nearest first: `In-Reply-To`, then
    /// `References` from the last (the message answered) to the first (the thread's start).
    pub message_ids: Vec<String>,
    /// The conversation of Outlook's `Thread-Index` (the hex of its header block's GUID).
    pub conversation: Option<String>,
    /// The subject token without brackets (`HELP-42`), when a prefix was given and the subject
    /// has one.
    pub subject_token: Option<String>,
}

impl ThreadRefs {
    /// Reads the references from the raw header values (`None` when absent) and the decoded
    /// subject; `token_prefix` is the subject token's prefix (`HELP` for `[HELP-123]`).
    pub fn from_headers(
        in_reply_to: Option<&str>,
        references: Option<&str>,
        thread_index: Option<&str>,
        subject: &str,
        token_prefix: Option<&str>,
    ) -> Self {
        let mut message_ids: Vec<String> = Vec::new();
        let mut push = |id: String| {
            if !message_ids.contains(&id) {
                message_ids.push(id);
            }
        };
        for id in in_reply_to.map(ids).unwrap_or_default() {
            push(id);
        }
        for id in references.map(ids).unwrap_or_default().into_iter().rev() {
            push(id);
        }
        ThreadRefs {
            message_ids,
            conversation: thread_index.and_then(conversation),
            subject_token: token_prefix.and_then(|p| subject_token(subject, p)),
        }
    }

    /// What the ledger is asked, in order: the Message-IDs nearest first, then the
    /// conversation. (The subject token is the ticket system's own key: it is handed to the
    /// integrator as it is, not looked up.)
    pub fn lookups(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.message_ids.len() + 2);
        out.extend(self.message_ids.iter().cloned());
        if let Some(c) = &self.conversation {
            out.push(format!("{CONVERSATION_PREFIX}{c}"));
        }
        out
    }

    /// Whether the message names anything earlier at all.
    pub fn is_empty(&self) -> bool {
        self.message_ids.is_empty() && self.conversation.is_none() && self.subject_token.is_none()
    }
}

/// The earlier message an inbound message was found to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ThreadMatch {
    /// The key the handler recorded for the first message of the thread.
    pub root: String,
    /// The reference that matched (a Message-ID, or `conversation:<guid>`).
    pub by: String,
}

impl ThreadMatch {
    /// A match of `root` by the reference `by`.
    pub fn new(root: impl Into<String>, by: impl Into<String>) -> Self {
        ThreadMatch {
            root: root.into(),
            by: by.into(),
        }
    }
}

/// The Message-IDs in a header value, without brackets: `<a@b> <c@d>`; a bare id (some
/// clients drop the brackets) is taken whole. Comments and junk between ids are skipped.
fn ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let id = after[..end].trim();
        if !id.is_empty() && id.len() <= 998 && !id.contains(char::is_whitespace) {
            out.push(id.to_owned());
        }
        rest = &after[end + 1..];
    }
    if out.is_empty() {
        let bare = value.trim();
        if bare.contains('@') && !bare.contains(char::is_whitespace) && bare.len() <= 998 {
            out.push(bare.to_owned());
        }
    }
    out
}

/// The conversation GUID of an Outlook `Thread-Index` (base64 of a 22-byte header block —
/// one reserved byte, five bytes of time, a 16-byte GUID — then 5-byte child blocks), as
/// lower-case hex; `None` when it is not one.
fn conversation(thread_index: &str) -> Option<String> {
    let compact: String = thread_index.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    if bytes.len() < 22 || (bytes.len() - 22) % 5 != 0 {
        return None;
    }
    let guid = &bytes[6..22];
    if guid.iter().all(|b| *b == 0) {
        return None;
    }
    Some(guid.iter().map(|b| format!("{b:02x}")).collect())
}

/// `PREFIX-rest` from the first `[PREFIX-rest]` in `subject` (prefix compared without case,
/// `rest` letters, digits, `-`, `_` and `.`).
fn subject_token(subject: &str, prefix: &str) -> Option<String> {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return None;
    }
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let inner = &rest[open + 1..];
        let Some(close) = inner.find(']') else { break };
        let token = inner[..close].trim();
        if let Some((p, id)) = token.split_once('-')
            && p.eq_ignore_ascii_case(prefix)
            && !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Some(format!("{}-{id}", p.to_ascii_uppercase()));
        }
        rest = &inner[close + 1..];
    }
    None
}

/// The `Thread-Index` of a message that answers one whose `Thread-Index` is `parent`: the
/// parent's blocks and a 5-byte child block (the time since the parent's header, in the
/// header's unit), so that Outlook files the answer in the same conversation. `None` when the
/// parent's value is not a `Thread-Index`.
pub(crate) fn child_thread_index(parent: &str, now: std::time::SystemTime) -> Option<String> {
    let compact: String = parent.split_whitespace().collect();
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    if bytes.len() < 22 || (bytes.len() - 22) % 5 != 0 || bytes.len() > 22 + 5 * 200 {
        return None;
    }
    // The header's time: the high 40 bits of a FILETIME (100 ns since 1601) in bytes 1..6.
    let mut high = [0u8; 8];
    high[3..8].copy_from_slice(&bytes[1..6]);
    let parent_ft = u64::from_be_bytes(high) << 16;
    let now_ft = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() / 100 + 116_444_736_000_000_000)
        .ok()
        .and_then(|t| u64::try_from(t).ok())?;
    let delta = now_ft.saturating_sub(parent_ft);
    // [MS-OXOMSG] 2.2.1.3: one bit saying which unit, 31 bits of the delta, 8 bits random.
    let (flag, value) = if delta < (1u64 << 49) {
        (0u64, (delta >> 18) & 0x7fff_ffff)
    } else {
        (1u64, (delta >> 23) & 0x7fff_ffff)
    };
    let block = (flag << 39) | (value << 8) | u64::from(now_ft as u8);
    bytes.extend_from_slice(&block.to_be_bytes()[3..8]);
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_nearest_first_without_repeats_or_junk() {
        let r = ThreadRefs::from_headers(
            Some("<c@x> (comment)"),
            Some("<a@x>\r\n <b@x> <c@x> <broken"),
            None,
            "",
            None,
        );
        assert_eq!(r.message_ids, ["c@x", "b@x", "a@x"]);
        assert_eq!(ids("bare@x"), ["bare@x"]);
        assert!(ids("no id here").is_empty());
        assert!(ids("<a b@x>").is_empty());
    }

    #[test]
    fn outlooks_thread_index_gives_the_conversation_and_a_child_keeps_it() {
        let root = "AdkDn4vJ6Zy0oEbqTsCg4UH5AAAAAA==";
        // Not a Thread-Index: wrong length, not base64, all-zero GUID.
        assert!(conversation("AAAA").is_none());
        assert!(conversation("!!!").is_none());
        assert!(
            conversation(
                &base64::engine::general_purpose::STANDARD.encode(
                    [1u8; 6]
                        .iter()
                        .chain([0u8; 16].iter())
                        .copied()
                        .collect::<Vec<u8>>()
                )
            )
            .is_none()
        );
        let c = conversation(root).unwrap();
        assert_eq!(c.len(), 32);
        let child = child_thread_index(root, std::time::SystemTime::now()).unwrap();
        assert_ne!(child, root);
        assert_eq!(conversation(&child).as_deref(), Some(c.as_str()));
        let grandchild = child_thread_index(&child, std::time::SystemTime::now()).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(grandchild)
            .unwrap();
        assert_eq!(raw.len(), 22 + 5 + 5);
    }

    #[test]
    fn subject_tokens_need_their_prefix() {
        assert_eq!(
            subject_token("RE: AW: [help-42] printer", "HELP").as_deref(),
            Some("HELP-42")
        );
        assert_eq!(
            subject_token("[other-1] [HELP-7.2] x", "help").as_deref(),
            Some("HELP-7.2")
        );
        assert_eq!(subject_token("[HELP-] x", "HELP"), None);
        assert_eq!(subject_token("[HELP-1 2] x", "HELP"), None);
        assert_eq!(subject_token("HELP-1 x", "HELP"), None);
        assert_eq!(subject_token("[HELP-1] x", ""), None);
    }
}
