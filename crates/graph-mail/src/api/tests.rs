//! Unit tests of the operations: request shapes, answers, idempotency and batches.

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
    let r = AddAttachment::new("d1", &a).request(&ep).unwrap();
    assert_eq!(r.uri().path(), "/v1.0/me/messages/d1/attachments");
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["contentBytes"], "AQID");
    assert_eq!(v["isInline"], true);
    assert_eq!(v["contentId"], "logo@x");
    let r = CreateAttachmentUploadSession::new("d1", &a)
        .request(&ep)
        .unwrap();
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(v["AttachmentItem"]["size"], 3);
    assert_eq!(v["AttachmentItem"]["contentType"], "image/png");
    let big = Attachment::new("big", "x/y", vec![0; MAX_REQUEST_BODY]);
    assert!(AddAttachment::new("d1", &big).request(&ep).is_err());
    let ok = Attachment::new("ok", "x/y", vec![0; MAX_INLINE_ATTACHMENT]);
    assert!(AddAttachment::new("d1", &ok).request(&ep).is_ok());
}

#[test]
fn delta_requests_ask_for_full_pages() {
    assert_eq!(DELTA_PREFER, format!("odata.maxpagesize={DELTA_PAGE}"));
    let ep = Endpoint::custom("http://127.0.0.1:9/v1.0", crate::Mailbox::Me).unwrap();
    for r in [
        Delta::new("inbox").request(&ep).unwrap(),
        FollowDeltaLink::new(
            "http://127.0.0.1:9/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=1",
        )
        .request(&ep)
        .unwrap(),
    ] {
        assert_eq!(r.headers()["prefer"], DELTA_PREFER);
    }
    assert!(
        FollowDeltaLink::new("http://127.0.0.2:9/v1.0/me/x")
            .request(&ep)
            .is_err()
    );
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
    let r = ListUnread::new("inbox", 5000).request(&ep()).unwrap();
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
    let e = FollowLink::new("https://evil.example/v1.0/users/x/messages?$skip=10")
        .request(&ep())
        .unwrap_err();
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

/// A batch of `items`, as the executor builds it for reads.
fn batch(items: &[BatchItem]) -> JsonBatch {
    JsonBatch::new(items.to_vec(), "reading", Idempotency::Safe)
}

#[test]
fn batch_building_checks_limits_and_ids() {
    let ep = ep();
    let item = |i: usize| BatchItem::from_op(&ep, i.to_string(), &GetMime::new("m")).unwrap();
    let r = batch(&(0..20).map(item).collect::<Vec<_>>())
        .request(&ep)
        .unwrap();
    assert_eq!(r.uri().path(), "/v1.0/$batch");
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        v["requests"][0]["url"],
        "/users/helpdesk@contoso.com/messages/m/$value"
    );
    assert!(
        batch(&(0..21).map(item).collect::<Vec<_>>())
            .request(&ep)
            .is_err()
    );
    assert!(batch(&[item(1), item(1)]).request(&ep).is_err());
    assert!(
        batch(&[item(1).depends_on(vec!["9".into()])])
            .request(&ep)
            .is_err()
    );
    let patch = BatchItem::from_op(&ep, "p", &MarkRead::new("m")).unwrap();
    assert_eq!(
        patch.headers.get("Content-Type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(patch.body, Some(json!({"isRead": true})));
    assert!(BatchItem::from_op(&ep, "s", &SendMime::new(b"x")).is_err());
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
    let r = SendMime::new(b"Subject: x\r\n\r\nhi").request(&ep).unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.body(), b"U3ViamVjdDogeA0KDQpoaQ==");
    let big = vec![b'a'; MAX_REQUEST_BODY];
    assert_eq!(
        SendMime::new(&big).request(&ep).unwrap_err().kind(),
        connector::ErrorKind::Configuration
    );
    let s = SendDraft::new("d1").request(&ep).unwrap();
    assert_eq!(s.headers()["content-length"], "0");
    assert!(s.body().is_empty());
    let mut m = JsonMail::text("Hi", "Body", vec!["a@x.example".into()]);
    m.from = Some("billing@contoso.com".into());
    m.attachments
        .push(("a.txt".into(), "text/plain".into(), b"abc".to_vec()));
    let v: Value = serde_json::from_slice(SendJson::new(&m).request(&ep).unwrap().body()).unwrap();
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
    let r = UploadChunk::new(&u, 4, b"abcd", 10).request(&ep()).unwrap();
    assert_eq!(r.headers()["content-range"], "bytes 4-7/10");
    assert!(r.headers().get("authorization").is_none());
}

// ---------------------------------------------------------------------------------------------
// Operations: request shape, answer, idempotency

fn json_answer(body: &str) -> Response {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    Response::new(200, h, body.as_bytes().to_vec())
}

/// Method, path and query of an operation's request, and its declared idempotency.
fn shape<O: GraphOperation>(op: &O) -> (String, String, Idempotency) {
    let r = op.request(&ep()).unwrap();
    let target = match r.uri().query() {
        Some(q) => format!("{}?{q}", r.uri().path()),
        None => r.uri().path().to_owned(),
    };
    (r.method().to_string(), target, op.idempotency())
}

#[test]
fn folder_operations() {
    use Idempotency::*;
    let base = "/v1.0/users/helpdesk@contoso.com/mailFolders";
    let get = GetFolder::new("inbox");
    assert_eq!(
        shape(&get),
        (
            "GET".into(),
            format!(
                "{base}/inbox?$select=id,displayName,parentFolderId,totalItemCount,unreadItemCount"
            ),
            Safe
        )
    );
    let f = get
        .parse(
            &ep(),
            &json_answer(r#"{"id":"AQMk","displayName":"Inbox","unreadItemCount":3}"#),
        )
        .unwrap();
    assert_eq!((f.id.as_str(), f.unread_item_count), ("AQMk", Some(3)));

    let find = FindFolder::new(Some("inbox"), "Sub");
    assert_eq!(shape(&find).0, "GET");
    assert!(
        shape(&find)
            .1
            .starts_with(&format!("{base}/inbox/childFolders?$filter="))
    );
    assert_eq!(find.idempotency(), Safe);
    let found = find
        .parse(&ep(), &json_answer(r#"{"value":[{"id":"a"},{"id":"b"}]}"#))
        .unwrap();
    assert_eq!(found.len(), 2);

    let create = CreateFolder::new(None, "Processed");
    assert_eq!(shape(&create), ("POST".into(), base.to_owned(), SendOnce));
    assert_eq!(
        create.request(&ep()).unwrap().body(),
        br#"{"displayName":"Processed"}"#
    );
    assert!(CreateFolder::new(None, " ").request(&ep()).is_err());
    let made = create
        .parse(&ep(), &json_answer(r#"{"id":"new"}"#))
        .unwrap();
    assert_eq!(made.id, "new");
    // A proxy's HTML page is not a folder.
    let mut html = json_answer("<html></html>");
    html.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html"),
    );
    assert_eq!(
        get.parse(&ep(), &html).unwrap_err().kind(),
        connector::ErrorKind::BadResponse
    );
}

#[test]
fn message_operations() {
    use Idempotency::*;
    let base = "/v1.0/users/helpdesk@contoso.com/messages";
    let list = ListUnread::new("inbox", 10);
    let (m, target, idem) = shape(&list);
    assert_eq!((m.as_str(), idem), ("GET", Safe));
    assert!(target.contains("$top=10"), "{target}");
    let page = list
        .parse(
            &ep(),
            &json_answer(
                r#"{"value":[{"id":"m1"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/x/messages?$skip=1"}"#,
            ),
        )
        .unwrap();
    assert_eq!(page.messages[0].id, "m1");
    let next = FollowLink::new(page.next_link.unwrap());
    assert_eq!(
        shape(&next),
        ("GET".into(), "/v1.0/users/x/messages?$skip=1".into(), Safe)
    );

    let mime = GetMime::new("m1");
    assert_eq!(
        shape(&mime),
        ("GET".into(), format!("{base}/m1/$value"), Safe)
    );
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    let body = mime
        .parse(
            &ep(),
            &Response::new(200, h.clone(), &b"Subject: x\r\n\r\nhi"[..]),
        )
        .unwrap();
    assert_eq!(&body[..], b"Subject: x\r\n\r\nhi");
    // No copy of the body: once the response is gone, the message takes its buffer over.
    let downloaded = b"Subject: y\r\n\r\nbody".to_vec();
    let at = downloaded.as_ptr();
    let response = Response::new(200, h, downloaded);
    let shared = mime.parse(&ep(), &response).unwrap();
    drop(response);
    let owned = Vec::from(shared);
    assert_eq!(owned.as_ptr(), at, "the MIME body was copied");
    assert_eq!(owned, b"Subject: y\r\n\r\nbody");
    assert!(
        mime.parse(&ep(), &json_answer("{}")).is_err(),
        "JSON is no MIME"
    );

    // Acknowledgements: repeatable, and only their status matters.
    assert_eq!(
        shape(&MarkRead::new("m1")),
        ("PATCH".into(), format!("{base}/m1?$select=id"), Safe)
    );
    assert_eq!(
        shape(&MoveMessage::new("m1", "archive")),
        ("POST".into(), format!("{base}/m1/move"), Safe)
    );
    assert_eq!(
        shape(&DeleteMessage::new("m1")),
        ("DELETE".into(), format!("{base}/m1"), Safe)
    );
    let empty = Response::new(204, http::HeaderMap::new(), Vec::new());
    MarkRead::new("m1").parse(&ep(), &empty).unwrap();
    MoveMessage::new("m1", "x").parse(&ep(), &empty).unwrap();
    DeleteMessage::new("m1").parse(&ep(), &empty).unwrap();
}

#[test]
fn delta_operations() {
    let first = Delta::new("inbox");
    let (m, target, idem) = shape(&first);
    assert_eq!((m.as_str(), idem), ("GET", Idempotency::Safe));
    assert!(
        target.starts_with(
            "/v1.0/users/helpdesk@contoso.com/mailFolders/inbox/messages/delta?$select="
        )
    );
    let page = first
        .parse(
            &ep(),
            &json_answer(
                r#"{"value":[{"id":"a"}],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/me/delta?$deltatoken=1"}"#,
            ),
        )
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let again = FollowDeltaLink::new(page.delta_link.unwrap());
    assert_eq!(again.idempotency(), Idempotency::Safe);
    assert_eq!(
        again.request(&ep()).unwrap().headers()["prefer"],
        DELTA_PREFER
    );
}

#[test]
fn send_and_draft_operations() {
    use Idempotency::*;
    let base = "/v1.0/users/helpdesk@contoso.com";
    let empty = Response::new(202, http::HeaderMap::new(), Vec::new());
    let mime = SendMime::new(b"Subject: x\r\n\r\nhi");
    assert_eq!(
        shape(&mime),
        ("POST".into(), format!("{base}/sendMail"), SendOnce)
    );
    mime.parse(&ep(), &empty).unwrap();
    let mail = JsonMail::text("Hi", "Body", vec!["a@x.example".into()]);
    assert_eq!(
        shape(&SendJson::new(&mail)),
        ("POST".into(), format!("{base}/sendMail"), SendOnce)
    );
    let probe = SendProbe::new(Some("alias@contoso.com"));
    assert_eq!(probe.idempotency(), SendOnce);
    let v: Value = serde_json::from_slice(probe.request(&ep()).unwrap().body()).unwrap();
    assert_eq!(v["message"]["toRecipients"], json!([]));
    assert_eq!(v["saveToSentItems"], false);

    let draft = CreateDraftMime::new(b"Subject: x\r\n\r\nhi");
    assert_eq!(
        shape(&draft),
        ("POST".into(), format!("{base}/messages"), SendOnce)
    );
    assert_eq!(
        draft
            .parse(&ep(), &json_answer(r#"{"id":"d1"}"#))
            .unwrap()
            .id,
        "d1"
    );
    assert_eq!(
        shape(&SendDraft::new("d1")),
        ("POST".into(), format!("{base}/messages/d1/send"), SendOnce)
    );

    let a = Attachment::new("a.pdf", "application/pdf", vec![1; 10]);
    assert_eq!(
        shape(&AddAttachment::new("d1", &a)),
        (
            "POST".into(),
            format!("{base}/messages/d1/attachments"),
            SendOnce
        )
    );
    let session = CreateAttachmentUploadSession::new("d1", &a);
    assert_eq!(
        shape(&session),
        (
            "POST".into(),
            format!("{base}/messages/d1/attachments/createUploadSession"),
            SendOnce
        )
    );
    let s = session
        .parse(
            &ep(),
            &json_answer(r#"{"uploadUrl":"https://outlook.office.com/api/v2.0/s?authtoken=t"}"#),
        )
        .unwrap();
    assert_eq!(s.upload_url.host_str(), Some("outlook.office.com"));
    // The operation checks where the session's URL points before any byte goes there.
    let foreign = json_answer(r#"{"uploadUrl":"https://evil.example/up?authtoken=t"}"#);
    assert!(session.parse(&ep(), &foreign).is_err());
    assert!(
        CreateUploadSession::new("d1", "f", 3)
            .parse(&ep(), &foreign)
            .is_err()
    );

    let chunk = UploadChunk::new(&s.upload_url, 0, b"abc", 3);
    assert_eq!(chunk.idempotency(), Safe);
    assert!(
        !chunk.authenticated(),
        "the upload URL carries its own token"
    );
    let r = chunk.request(&ep()).unwrap();
    assert_eq!(r.method(), "PUT");
    assert!(r.headers().get("accept").is_none());
    assert!(
        UploadChunk::new(&s.upload_url, 0, b"", 3)
            .request(&ep())
            .is_err()
    );
    assert!(SendMime::new(b"x").authenticated());
}

// ---------------------------------------------------------------------------------------------
// $batch from operations

/// What `BatchItem::from_request` (re-parsing a built request) produced for these operations
/// before batch items were built from operations: the same JSON, byte for byte.
const BATCH_BEFORE: &str = r#"{"requests":[{"body":{"isRead":true},"headers":{"Content-Type":"application/json"},"id":"0","method":"PATCH","url":"/users/helpdesk@contoso.com/messages/AAMkAD%2Fx+y=?$select=id"},{"body":{"isRead":true},"headers":{"Content-Type":"application/json"},"id":"1","method":"PATCH","url":"/users/helpdesk@contoso.com/messages/m%202?$select=id"},{"body":{"isRead":true},"headers":{"Content-Type":"application/json"},"id":"2","method":"PATCH","url":"/users/helpdesk@contoso.com/messages/m3?$select=id"},{"id":"3","method":"GET","url":"/users/helpdesk@contoso.com/messages/AAMkAD%2Fx+y=/$value"},{"body":{"destinationId":"AQMk=/d"},"headers":{"Content-Type":"application/json"},"id":"4","method":"POST","url":"/users/helpdesk@contoso.com/messages/AAMkAD%2Fx+y=/move"},{"id":"5","method":"DELETE","url":"/users/helpdesk@contoso.com/messages/AAMkAD%2Fx+y="},{"id":"6","method":"GET","url":"/users/helpdesk@contoso.com/mailFolders/inbox?$select=id,displayName,parentFolderId,totalItemCount,unreadItemCount"}]}"#;

#[test]
fn batch_items_come_from_operations_as_before() {
    let ep = ep();
    let mut items: Vec<BatchItem> = ["AAMkAD/x+y=", "m 2", "m3"]
        .iter()
        .enumerate()
        .map(|(i, id)| BatchItem::from_op(&ep, i.to_string(), &MarkRead::new(*id)).unwrap())
        .collect();
    let id = "AAMkAD/x+y=";
    items.push(BatchItem::from_op(&ep, "3", &GetMime::new(id)).unwrap());
    items.push(BatchItem::from_op(&ep, "4", &MoveMessage::new(id, "AQMk=/d")).unwrap());
    items.push(BatchItem::from_op(&ep, "5", &DeleteMessage::new(id)).unwrap());
    items.push(BatchItem::from_op(&ep, "6", &GetFolder::new("inbox")).unwrap());
    let r = batch(&items).request(&ep).unwrap();
    assert_eq!(r.uri().path(), "/v1.0/$batch");
    assert_eq!(std::str::from_utf8(r.body()).unwrap(), BATCH_BEFORE);
    // The JSON body is the operation's own value, not bytes read back.
    let OpRequest { body, .. } = MarkRead::new("m3").build(&ep).unwrap();
    assert_eq!(
        Some(&body),
        Some(&Body::Json(items[2].body.clone().unwrap()))
    );
}

#[test]
fn batch_items_keep_extra_headers_and_refuse_what_cannot_be_batched() {
    let ep = ep();
    let delta = BatchItem::from_op(&ep, "d", &Delta::new("inbox")).unwrap();
    assert_eq!(
        delta.headers.get("prefer").map(String::as_str),
        Some(DELTA_PREFER)
    );
    // The executor's own Prefer joins the operation's.
    let delta = delta.with_header("Prefer", "IdType=\"ImmutableId\"");
    assert_eq!(
        delta.headers.get("prefer").map(String::as_str),
        Some("odata.maxpagesize=100, IdType=\"ImmutableId\"")
    );
    // Content-Length frames a body on the wire; a batch item has none to frame.
    let send = BatchItem::from_op(&ep, "s", &SendDraft::new("d1")).unwrap();
    assert!(send.headers.is_empty() && send.body.is_none());
    // A MIME body, or a URL outside the Graph base, goes on its own.
    let e = BatchItem::from_op(&ep, "m", &CreateDraftMime::new(b"x")).unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Unsupported);
    let u = Url::parse("https://outlook.office.com/up").unwrap();
    let e = BatchItem::from_op(&ep, "u", &UploadChunk::new(&u, 0, b"a", 1)).unwrap_err();
    assert_eq!(e.kind(), connector::ErrorKind::Configuration);
}

#[test]
fn each_batch_answer_is_parsed_by_its_own_operation() {
    let ops = [GetMime::new("a"), GetMime::new("b")];
    let ids = ["0", "1"];
    let body = br#"{"responses":[
        {"id":"1","status":200,"headers":{"Content-Type":"application/json"},"body":{"x":1}},
        {"id":"0","status":200,"headers":{"Content-Type":"text/plain"},"body":"U3ViamVjdDogaGkNCg0KYm9keQ=="}]}"#;
    let op = batch(&[
        BatchItem::from_op(&ep(), "0", &ops[0]).unwrap(),
        BatchItem::from_op(&ep(), "1", &ops[1]).unwrap(),
    ]);
    assert_eq!(op.ids(), ids);
    let answers = op
        .parse(&ep(), &json_answer(std::str::from_utf8(body).unwrap()))
        .unwrap();
    let parsed: Vec<_> = answers
        .into_iter()
        .map(|a| {
            let i = ids.iter().position(|id| *id == a.id).unwrap();
            ops[i].parse(&ep(), &a.into_response())
        })
        .collect();
    assert!(
        parsed[0].is_err(),
        "a JSON answer to a MIME download is refused"
    );
    assert_eq!(parsed[1].as_deref().unwrap(), b"Subject: hi\r\n\r\nbody");
    // A batch is as repeatable as its least repeatable item.
    assert_eq!(op.idempotency(), Idempotency::Safe);
    let sends = JsonBatch::new(Vec::new(), "sending", Idempotency::SendOnce);
    assert_eq!(sends.idempotency(), Idempotency::SendOnce);
    assert_eq!(sends.what(), "sending");
}
