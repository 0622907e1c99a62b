//! Parsing outside MIME with mail-parser, with its panics turned into errors.
//!
//! mail-parser promises never to panic, but 0.11.9 keeps `debug_assert!`s on paths that broken
//! multipart nesting reaches (fuzz/README.md, finding 3): debug and test builds panic there on
//! bytes anyone can send. Every place that parses outside bytes goes through [`parse`] or
//! [`parse_headers`] (or wraps its own parser call in [`catch_panic`]), so such a message is a
//! typed [`MimeError`] for that message only, never a crashed task.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A panic caught inside a parser (or handler) of outside input, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    message: String,
}

/// Longest panic message kept: enough for an assertion's text, bounded for ledgers and logs.
const MAX_PANIC_MESSAGE: usize = 200;

impl Panicked {
    /// Reads the message out of a panic payload (what `catch_unwind` or a join error returns).
    pub fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let message = match text.char_indices().nth(MAX_PANIC_MESSAGE) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        };
        Panicked { message }
    }

    /// The panic's message (at most 200 characters).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message)
    }
}

impl std::error::Error for Panicked {}

/// Runs `f`, turning a panic inside it into [`Panicked`]. For calls into third-party parsers
/// of outside bytes, whose state is dropped with the call (hence `AssertUnwindSafe`). The
/// process's panic hook still reports the panic (on stderr by default).
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| Panicked::from_payload(p.as_ref()))
}

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    /// mail-parser found nothing it could read as a message.
    #[error("the message is not MIME that can be read")]
    Unreadable,
    /// mail-parser panicked on these bytes (a `debug_assert!` in debug builds).
    #[error("the MIME parser failed on this message ({0})")]
    ParserPanicked(Panicked),
}

/// Parses a whole message (headers, parts, nested messages) with mail-parser's defaults.
pub fn parse(raw: &[u8]) -> Result<mail_parser::Message<'_>, MimeError> {
    catch_panic(|| mail_parser::MessageParser::default().parse(raw))
        .map_err(MimeError::ParserPanicked)?
        .ok_or(MimeError::Unreadable)
}

/// Parses only the header section of a message.
pub fn parse_headers(raw: &[u8]) -> Result<mail_parser::Message<'_>, MimeError> {
    catch_panic(|| mail_parser::MessageParser::default().parse_headers(raw))
        .map_err(MimeError::ParserPanicked)?
        .ok_or(MimeError::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fuzz/README.md finding 3: the `split_for_draft` crash input (its first two bytes are
    /// the fuzz target's draft limit, the rest is the MIME).
    const FINDING_3: &[u8] =
        include_bytes!("../../../fuzz/regressions/finding_3_mail_parser_debug_assert");

    fn finding_3() -> &'static [u8] {
        &FINDING_3[2..]
    }

    #[test]
    fn the_finding_3_input_is_an_error_in_debug_builds_never_a_panic() {
        let mime = finding_3();
        assert_eq!(mime.len(), 875);
        assert!(mime.starts_with(b"From: helpdesk@contoso.example"));
        let result = parse(mime);
        if cfg!(debug_assertions) {
            // mail-parser 0.11.9's debug_assert!(false, ...) at message.rs:485.
            let Err(MimeError::ParserPanicked(p)) = result else {
                panic!("debug builds must see the parser's panic: {result:?}");
            };
            assert_eq!(p.message(), "Invalid part ID, could not find multipart.");
            let e = MimeError::ParserPanicked(p).to_string();
            assert!(e.contains("MIME parser failed") && e.contains("Invalid part ID"));
        } else {
            // Without debug assertions mail-parser recovers what it can.
            assert!(result.is_ok(), "{result:?}");
        }
        // The header section alone never reaches the multipart code.
        let headers = parse_headers(mime).unwrap();
        let names: Vec<&str> = headers.headers().iter().map(|h| h.name()).collect();
        assert_eq!(names, ["From", "MIME-Version", "Content-Type"]);
    }

    #[test]
    fn panics_become_errors_with_their_message_and_values_pass_through() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        let p = catch_panic(|| -> u8 { panic!("boom {}", 42) }).unwrap_err();
        assert_eq!(p.message(), "boom 42");
        assert_eq!(p.to_string(), "panicked: boom 42");
        let p = catch_panic(|| std::panic::panic_any(5u32)).unwrap_err();
        assert_eq!(p.message(), "a panic without a message");
        let long = "é".repeat(500);
        let p = catch_panic(|| panic!("{long}")).unwrap_err();
        assert_eq!(p.message().chars().count(), MAX_PANIC_MESSAGE + 1);
        assert!(p.message().ends_with('…'));
    }

    #[test]
    fn well_formed_and_unreadable_messages() {
        let ok = parse(b"From: a@b.example\r\nSubject: hi\r\n\r\nbody").unwrap();
        assert_eq!(ok.subject(), Some("hi"));
        assert_eq!(parse(b"").unwrap_err(), MimeError::Unreadable);
        assert_eq!(parse_headers(b"").unwrap_err(), MimeError::Unreadable);
    }
}
