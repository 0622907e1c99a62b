//! The parsers and builders against Microsoft's documented Graph samples
//! (`testdata/reference/samples/graph/graph-docs-samples.json`) and the mail extract of the v1.0
//! CSDL (`testdata/reference/graph/graph-mail-v1.0.csdl.xml`).

use graph_mail::api::{self, DeltaItem, GraphError, GraphOperation};
use graph_mail::retry::parse_retry_after;
use graph_mail::{Cloud, Endpoint, Mailbox};
use serde_json::Value;
use test_support::reference::read_to_string as reference;

fn samples() -> Vec<Value> {
    let text = reference("samples/graph/graph-docs-samples.json");
    serde_json::from_str(&text).expect("samples are JSON")
}

/// The JSON body of the `n`th response sample of a documentation page.
fn sample(all: &[Value], src_suffix: &str, block: &str, n: usize) -> (String, Value) {
    let s = all
        .iter()
        .filter(|s| {
            s["src"].as_str().is_some_and(|p| p.ends_with(src_suffix))
                && s["blockType"].as_str() == Some(block)
        })
        .nth(n)
        .unwrap_or_else(|| panic!("no {block} #{n} in {src_suffix}"));
    (
        s["head"].as_str().unwrap_or("").to_owned(),
        s["json"].clone(),
    )
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialize")
}

fn ep() -> Endpoint {
    Endpoint::cloud(Cloud::Global, Mailbox::Me)
}

#[test]
fn folder_sample() {
    let all = samples();
    let (_, body) = sample(&all, "/mailfolder-get.md", "response", 0);
    let f = api::parse_folder(&bytes(&body)).expect("folder");
    assert_eq!(f.display_name.as_deref(), Some("Inbox"));
    assert_eq!(f.total_item_count, Some(60));
    assert_eq!(f.unread_item_count, Some(59));
}

#[test]
fn message_list_samples() {
    let all = samples();
    let (_, body) = sample(&all, "/user-list-messages.md", "response", 0);
    let page = api::parse_message_page(&ep(), &bytes(&body)).expect("page");
    assert_eq!(
        page.messages[0].subject.as_deref(),
        Some("You have late tasks!")
    );
    assert!(page.next_link.is_none());
    // The folder listing sample has no ids (the docs trimmed them): a message without an id
    // cannot be acknowledged, so the page is refused rather than half-read.
    let (_, body) = sample(&all, "/mailfolder-list-messages.md", "response", 0);
    let err = api::parse_message_page(&ep(), &bytes(&body)).unwrap_err();
    assert_eq!(err.kind(), connector::ErrorKind::BadResponse);
}

#[test]
fn message_samples() {
    let all = samples();
    let (_, body) = sample(&all, "/message-get.md", "response", 0);
    let m = api::parse_message(&bytes(&body)).expect("message");
    assert_eq!(m.id, "AAMkADhMGAAA=");
    assert_eq!(
        m.internet_message_id.as_deref(),
        Some("<MWHPR6E1BE060@MWHPR1120.namprd22.prod.outlook.com>")
    );
    assert_eq!(m.is_read, Some(true));
    assert_eq!(m.received.map(|t| t.unix_timestamp()), Some(1_536_462_908));
    let (_, body) = sample(&all, "/message-get.md", "response", 1);
    let h = api::parse_message(&bytes(&body)).expect("headers");
    assert!(
        h.headers
            .iter()
            .any(|(n, v)| n == "MIME-Version" && v == "1.0")
    );
    let (head, body) = sample(&all, "/message-move.md", "response", 0);
    assert!(head.starts_with("HTTP/1.1 201"));
    let moved = api::parse_message(&bytes(&body)).expect("moved");
    assert_eq!(moved.id, "AAMkADhAAAW-VPeAAA=");
}

#[test]
fn delta_samples() {
    let all = samples();
    let parse = |n| {
        let (_, body) = sample(&all, "concepts/delta-query-messages.md", "response", n);
        api::parse_delta_page(&ep(), &bytes(&body))
    };
    let first = parse(1).expect("first page");
    assert!(first.next_link.is_some() && first.delta_link.is_none());
    assert_eq!(first.items.len(), 2);
    let last = parse(3).expect("page with a removal");
    assert!(last.delta_link.is_some());
    assert!(matches!(&last.items[0], DeltaItem::Removed { reason, .. } if reason == "deleted"));
    // This sample spells isRead as the string "true".
    assert!(matches!(&last.items[1], DeltaItem::Changed(m) if m.is_read == Some(true)));
    // The API page's sample has placeholder values ("datetime-value"): refused, not guessed.
    let (_, body) = sample(&all, "/message-delta.md", "response", 0);
    assert!(api::parse_delta_page(&ep(), &bytes(&body)).is_err());
}

#[test]
fn upload_session_sample_and_request() {
    let all = samples();
    let (_, body) = sample(&all, "/attachment-createuploadsession.md", "response", 0);
    let s = api::parse_upload_session(&bytes(&body)).expect("session");
    assert_eq!(s.upload_url.host_str(), Some("outlook.office.com"));
    assert_eq!(s.next_expected_ranges, vec!["0-".to_owned()]);
    let (_, want) = sample(&all, "/attachment-createuploadsession.md", "request", 0);
    let req = api::CreateUploadSession::new("AAMkADI5MAAIT3drCAAA=", "flower", 3_483_322)
        .request(&ep())
        .expect("request");
    let got: Value = serde_json::from_slice(req.body()).expect("json");
    assert_eq!(got, want);
    assert_eq!(
        req.uri().to_string(),
        "https://graph.microsoft.com/v1.0/me/messages/AAMkADI5MAAIT3drCAAA=/attachments/createUploadSession"
    );
}

#[test]
fn send_mail_request_matches_the_sample_shape() {
    let all = samples();
    let (_, want) = sample(&all, "/user-sendmail.md", "request", 0);
    let mut mail = api::JsonMail::text(
        "Meet for lunch?",
        "The new cafeteria is open.",
        vec!["fannyd@contoso.onmicrosoft.com".into()],
    );
    mail.cc = vec!["danas@contoso.onmicrosoft.com".into()];
    mail.save_to_sent_items = false;
    let req = api::SendJson::new(&mail).request(&ep()).expect("request");
    let got: Value = serde_json::from_slice(req.body()).expect("json");
    for key in ["subject", "body", "toRecipients", "ccRecipients"] {
        assert_eq!(got["message"][key], want["message"][key], "{key}");
    }
    // The sample writes saveToSentItems as the string "false"; the CSDL says Edm.Boolean.
    assert_eq!(got["saveToSentItems"], Value::Bool(false));
}

#[test]
fn batch_response_sample() {
    let all = samples();
    let body = all
        .iter()
        .filter(|s| s["src"].as_str() == Some("concepts/json-batching.md"))
        .find(|s| s["json"].get("responses").is_some())
        .map(|s| s["json"].clone())
        .expect("batch response sample");
    let items = api::parse_batch(&bytes(&body), &["1", "2", "3", "4"]).expect("batch");
    let by_id = |id: &str| items.iter().find(|i| i.id == id).expect("item");
    assert_eq!(by_id("1").status, 302);
    assert!(by_id("1").headers.contains_key("location"));
    let e = GraphError::parse(401, &by_id("3").headers, &by_id("3").body);
    assert_eq!(e.code.as_deref(), Some("Forbidden"));
    assert!(by_id("4").body.is_empty());
}

#[test]
fn error_samples() {
    let all = samples();
    let (_, body) = sample(
        &all,
        "concepts/outlook-send-mail-from-other-user.md",
        "concept",
        5,
    );
    let e = GraphError::parse(403, &http::HeaderMap::new(), &bytes(&body));
    assert_eq!(e.code.as_deref(), Some("ErrorSendAsDenied"));
    assert_eq!(
        e.request_id.as_deref(),
        Some("24e7991e-01ae-4cc2-8e06-532a96fd8948")
    );
    assert_eq!(e.date.as_deref(), Some("2019-01-16T18:53:25"));

    let throttled = all
        .iter()
        .find(|s| s["src"].as_str() == Some("concepts/throttling.md"))
        .expect("throttling sample");
    let head = throttled["head"].as_str().unwrap_or("");
    let retry = head
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After:"))
        .expect("Retry-After header");
    assert_eq!(
        parse_retry_after(retry, std::time::SystemTime::now()),
        Some(std::time::Duration::from_millis(2128))
    );
    let e = GraphError::parse(429, &http::HeaderMap::new(), &bytes(&throttled["json"]));
    assert_eq!(e.code.as_deref(), Some("TooManyRequests"));
    assert_eq!(
        e.request_id.as_deref(),
        Some("94fb3b52-452a-4535-a601-69e0a90e3aa2")
    );
    let err = e.into_error(
        "listing",
        b"",
        parse_retry_after(retry, std::time::SystemTime::now()),
    );
    assert_eq!(err.kind(), connector::ErrorKind::Throttled);
    assert_eq!(
        err.retry_after(),
        Some(std::time::Duration::from_millis(2128))
    );
}

#[test]
fn selected_properties_exist_in_the_csdl() {
    let csdl = reference("graph/graph-mail-v1.0.csdl.xml");
    for prop in api::LIST_SELECT.split(',').chain([
        "internetMessageHeaders",
        "totalItemCount",
        "unreadItemCount",
        "displayName",
    ]) {
        assert!(
            csdl.contains(&format!("Name=\"{prop}\"")),
            "{prop} is not in the v1.0 CSDL"
        );
    }
    // Action parameters are PascalCase in the metadata; Graph matches JSON names without case.
    // The mail extract keeps the bound actions (move, copy, sendMail) with their parameters
    // unchanged, so the 3.3 MB full CSDL is not needed for this.
    for (ours, theirs) in [
        ("destinationId", "DestinationId"),
        ("saveToSentItems", "SaveToSentItems"),
    ] {
        assert!(ours.eq_ignore_ascii_case(theirs));
        assert!(
            csdl.contains(&format!("<Parameter Name=\"{theirs}\"")),
            "{theirs}"
        );
    }
}
