//! Graph mail operations as values, without I/O.
//!
//! Each Graph call is a [`GraphOperation`]: a value that builds its request ([`OpRequest`], or
//! a whole `http::Request<Vec<u8>>` without `Authorization` or `Prefer: IdType`, which the
//! executor adds), parses a successful answer into typed values or a typed
//! [`connector::Error`] (never a panic), and declares whether it may be repeated. The same
//! value goes into a JSON `$batch` ([`BatchItem::from_op`]), and its own `parse` reads its
//! item of the answer. Each can be tested with bytes alone, in the style of ruma's and ews-rs'
//! request/response values.
//!
//! | resource | operations |
//! |---|---|
//! | folders | [`GetFolder`], [`FindFolder`], [`CreateFolder`] |
//! | messages | [`ListUnread`], [`FollowLink`], [`GetMime`], [`MarkRead`], [`MoveMessage`], [`DeleteMessage`] |
//! | delta | [`Delta`], [`FollowDeltaLink`] |
//! | sending | [`SendMime`], [`SendJson`], [`SendProbe`] |
//! | drafts | [`CreateDraftMime`], [`AddAttachment`], [`CreateAttachmentUploadSession`], [`CreateUploadSession`], [`UploadChunk`], [`SendDraft`] |
//! | batch | [`JsonBatch`] |
//! | subscriptions | [`CreateSubscription`], [`RenewSubscription`], [`DeleteSubscription`] |
//!
//! The parsers stay callable on their own ([`parse_message_page`], [`parse_batch`], …), as the
//! fuzz targets use them.
//!
//! ```
//! use graph_mail::api::{self, GraphOperation};
//! use graph_mail::{Endpoint, Mailbox, Cloud};
//!
//! let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
//! let req = api::ListUnread::new("inbox", 50).request(&ep)?;
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

// The declarations of a `GraphOperation` that are constants, spelled once for every
// operation: what the call does (for errors and logs) and its idempotency.
macro_rules! describe_op {
    ($what:expr, $idempotency:ident) => {
        fn what(&self) -> &str {
            $what
        }

        fn idempotency(&self) -> Idempotency {
            Idempotency::$idempotency
        }
    };
}

// `GraphOperation::parse` of an operation whose status is its whole answer (`202 Accepted`,
// `204`, or a moved or patched message that is not read): the body is not looked at.
macro_rules! status_only {
    () => {
        fn parse(&self, _: &Endpoint, _: &Response) -> Result<(), Error> {
            Ok(())
        }
    };
}

mod batch;
mod delta;
mod drafts;
mod folders;
mod messages;
mod op;
mod send;
mod split;
mod subscriptions;

pub use batch::*;
pub use delta::*;
pub use drafts::*;
pub use folders::*;
pub use messages::*;
pub use op::*;
pub use send::*;
pub use split::*;
pub use subscriptions::*;

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

pub(crate) fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::bad_response(format!("Graph answered {what} that could not be read: {e}"))
}

pub(crate) fn parse_json<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| bad(what, e))
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

#[cfg(test)]
mod tests;
