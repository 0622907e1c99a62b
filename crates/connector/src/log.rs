//! The connection log: what a connection did, line by line, with no secret in it.
//!
//! Each line records one exchange with a server: when, the method, the host and path (never the
//! query string, never user information), the status, how long it took and the server's request
//! ids. Free-text notes are scrubbed of anything that looks like a credential (`Bearer …`,
//! JWTs, `client_secret=…`, `refresh_token=…`, `Authorization:` values) before they are stored.
//! The log is bounded: it keeps the newest [`ConnectionLog::capacity`] lines.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

/// How many lines a log keeps unless told otherwise.
const DEFAULT_CAPACITY: usize = 200;

/// One exchange with a server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogLine {
    /// When the request started.
    pub at: OffsetDateTime,
    /// HTTP method or protocol verb (`GET`, `POST`, `EHLO`).
    pub method: String,
    /// The server's host (and port, when not the default).
    pub host: String,
    /// The path, without query string.
    pub path: String,
    /// The status, when there was an answer.
    pub status: Option<u16>,
    /// How long the exchange took.
    pub duration: Duration,
    /// Request ids the server returned, as `(header, value)`.
    pub request_ids: Vec<(String, String)>,
    /// A scrubbed note (an error, a retry decision).
    pub note: Option<String>,
}

impl LogLine {
    /// A line for a request to `url`: only its host, port and path are kept.
    pub fn new(at: OffsetDateTime, method: impl Into<String>, url: &Url) -> Self {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        LogLine {
            at,
            method: method.into(),
            host,
            path: url.path().to_owned(),
            status: None,
            duration: Duration::ZERO,
            request_ids: Vec::new(),
            note: None,
        }
    }

    /// Sets the status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the duration.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Adds a server request id (the value is scrubbed like a note).
    pub fn request_id(mut self, header: impl Into<String>, value: &str) -> Self {
        self.request_ids.push((header.into(), scrub(value)));
        self
    }

    /// Sets a note; it is scrubbed of anything that looks like a credential.
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(scrub(note));
        self
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.at.unix_timestamp().to_string());
        write!(f, "{at} {} {}{}", self.method, self.host, self.path)?;
        match self.status {
            Some(s) => write!(f, " -> {s}")?,
            None => write!(f, " -> no answer")?,
        }
        write!(f, " in {} ms", self.duration.as_millis())?;
        for (k, v) in &self.request_ids {
            write!(f, " {k}={v}")?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// A bounded, shareable log of exchanges with servers.
///
/// Cloning shares the same log, so every request of a connection can write to it.
///
/// ```
/// use connector::{ConnectionLog, LogLine};
/// use url::Url;
///
/// let log = ConnectionLog::with_capacity(2);
/// let url = Url::parse("https://graph.microsoft.com/v1.0/me/messages?access_token=s3cret").unwrap();
/// for status in [200, 429, 200] {
///     log.push(LogLine::new(time::OffsetDateTime::UNIX_EPOCH, "GET", &url).status(status));
/// }
/// let lines = log.lines();
/// assert_eq!(lines.len(), 2); // bounded
/// assert_eq!(lines[0].status, Some(429));
/// assert!(!log.render().contains("s3cret")); // no query string is ever kept
/// ```
#[derive(Clone)]
pub struct ConnectionLog {
    inner: Arc<Mutex<VecDeque<LogLine>>>,
    capacity: usize,
}

impl Default for ConnectionLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for ConnectionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLog")
            .field("capacity", &self.capacity)
            .field("lines", &self.lines())
            .finish()
    }
}

impl ConnectionLog {
    /// A log that keeps the newest `capacity` lines (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        ConnectionLog {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(1024)))),
            capacity,
        }
    }

    /// How many lines the log keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends a line, dropping the oldest when full.
    pub fn push(&self, line: LogLine) {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// A copy of the lines, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        let q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect()
    }

    /// The lines rendered one per line, oldest first.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }

    /// Removes every line.
    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Words after which the next token is a credential.
const SECRET_KEYS: &[&str] = &[
    "bearer",
    "basic",
    "authorization",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "device_code",
    "password",
    "token",
    "secret",
    "auth",
];

/// Replaces anything in `text` that looks like a credential with `[redacted]`.
///
/// It removes values after credential-like keys (`Bearer x`, `access_token=x`,
/// `"refresh_token": "x"`, `Authorization: x`), JSON Web Tokens (`eyJ…` with two dots) and
/// XOAUTH2 strings. It errs on the side of removing too much: a log line is for people, not for
/// replaying requests.
///
/// ```
/// assert_eq!(
///     connector::scrub("401 with Authorization: Bearer abc.def.ghi"),
///     "401 with Authorization: [redacted] [redacted]"
/// );
/// ```
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut redact_next = false;
    for piece in split_keep(text) {
        match piece {
            Piece::Sep(s) => out.push_str(s),
            Piece::Word(w) => {
                let lower = w.to_ascii_lowercase();
                let bare = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
                if redact_next {
                    out.push_str("[redacted]");
                    // `Authorization: Bearer x` has two words to hide.
                    redact_next = bare == "bearer" || bare == "basic";
                } else if looks_like_jwt(w) || looks_like_long_secret(w) {
                    out.push_str("[redacted]");
                } else if let Some((k, v)) = w.split_once('=') {
                    let k = k.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
                    if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_empty() {
                        out.push_str(&w[..w.len() - v.len()]);
                        out.push_str("[redacted]");
                    } else {
                        out.push_str(w);
                    }
                } else {
                    out.push_str(w);
                    redact_next = SECRET_KEYS.contains(&bare);
                }
            }
        }
    }
    out
}

enum Piece<'a> {
    Word(&'a str),
    Sep(&'a str),
}

/// Splits on whitespace, `&`, `,` and `:` (keeping the separators), so that `a=1&b=2` and
/// `"key": "value"` are seen as separate words.
fn split_keep(text: &str) -> Vec<Piece<'_>> {
    let is_sep = |c: char| c.is_whitespace() || matches!(c, '&' | ',' | ':' | ';' | '?');
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_sep = None;
    for (i, c) in text.char_indices() {
        let sep = is_sep(c);
        match in_sep {
            None => in_sep = Some(sep),
            Some(prev) if prev != sep => {
                let s = &text[start..i];
                out.push(if prev { Piece::Sep(s) } else { Piece::Word(s) });
                start = i;
                in_sep = Some(sep);
            }
            _ => {}
        }
    }
    if start < text.len() {
        let s = &text[start..];
        out.push(if in_sep == Some(true) {
            Piece::Sep(s)
        } else {
            Piece::Word(s)
        });
    }
    out
}

fn looks_like_jwt(w: &str) -> bool {
    let w = w.trim_matches(|c: char| c == '"' || c == '\'');
    w.starts_with("eyJ") && w.matches('.').count() >= 1 && w.len() > 20
}

/// A long unbroken run of token characters (base64, hex): refresh tokens, secrets.
fn looks_like_long_secret(w: &str) -> bool {
    let w = w.trim_matches(|c: char| c == '"' || c == '\'');
    w.len() >= 40
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c))
        && w.chars().any(|c| c.is_ascii_digit())
        && w.chars().any(|c| c.is_ascii_alphabetic())
        && !w.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Zq8~s3cr3t-VALUE_123";
    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2ln";

    #[test]
    fn urls_lose_query_and_userinfo() {
        let url = Url::parse(&format!(
            "https://user:{SECRET}@login.example:8443/t/oauth2/v2.0/token?client_secret={SECRET}&code={SECRET}"
        ))
        .unwrap();
        let line = LogLine::new(OffsetDateTime::UNIX_EPOCH, "POST", &url).status(400);
        assert_eq!(line.host, "login.example:8443");
        assert_eq!(line.path, "/t/oauth2/v2.0/token");
        assert!(!line.to_string().contains(SECRET));
    }

    #[test]
    fn notes_are_scrubbed_of_every_credential_shape() {
        let notes = [
            format!("Authorization: Bearer {SECRET}"),
            format!("authorization: bearer {JWT}"),
            format!("client_secret={SECRET}&grant_type=client_credentials"),
            format!("{{\"refresh_token\": \"{SECRET}\", \"expires_in\": 3599}}"),
            format!("token endpoint said no for assertion {SECRET}"),
            format!("got {JWT} back"),
            format!("password: {SECRET}"),
            "refresh token 0.AAAAabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ".to_owned(),
        ];
        for note in &notes {
            let line = LogLine::new(
                OffsetDateTime::UNIX_EPOCH,
                "GET",
                &Url::parse("https://x.example/").unwrap(),
            )
            .note(note);
            let shown = line.to_string();
            assert!(!shown.contains(SECRET), "{note:?} -> {shown}");
            assert!(!shown.contains("eyJ0eXAi"), "{note:?} -> {shown}");
            assert!(
                !shown.contains("abcdefghijklmnopqrstuvwxyz0123456789"),
                "{shown}"
            );
        }
    }

    #[test]
    fn scrub_keeps_ordinary_text() {
        let t = "429 Too Many Requests: retry after 2 s, request-id 1f2e";
        assert_eq!(scrub(t), t);
        assert_eq!(scrub("ErrorServerBusy"), "ErrorServerBusy");
    }

    #[test]
    fn log_is_bounded_and_shared_between_clones() {
        let log = ConnectionLog::with_capacity(3);
        let other = log.clone();
        let url = Url::parse("https://x.example/a").unwrap();
        for i in 0..10u16 {
            other.push(LogLine::new(OffsetDateTime::UNIX_EPOCH, "GET", &url).status(200 + i));
        }
        let lines = log.lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].status, Some(207));
        assert_eq!(lines[2].status, Some(209));
        log.clear();
        assert!(other.lines().is_empty());
    }
}
