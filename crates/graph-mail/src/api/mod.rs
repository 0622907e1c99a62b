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

mod batch;
mod delta;
mod folders;
mod messages;
mod send;

pub use batch::*;
pub use delta::*;
pub use folders::*;
pub use messages::*;
pub use send::*;

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
            include_bytes!("../../../../fuzz/regressions/finding_3_mail_parser_debug_assert");
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
