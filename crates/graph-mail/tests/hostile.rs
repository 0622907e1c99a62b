//! Hostile servers (issue 11 item 3): a 3xx from "Graph" is not followed, and a `/$value` MIME
//! body over the client's cap is a typed error that leaves the client usable.

use std::sync::Arc;

use connector::{ErrorKind, MessageSource};
use graph_mail::retry::{RecordingSleeper, RetryPolicy};
use graph_mail::{Endpoint, FnTokenSource, GraphClient, GraphSource, Mailbox, SourceConfig, api};
use test_support::SandboxTokens;
use test_support::scripted::{self, Reply};

/// A listener that counts the connections made to it and answers 200 `{}`.
async fn counting_target() -> scripted::Server {
    scripted::serve(vec![
        Reply::ok("{}").header("Content-Type", "application/json"),
    ])
    .await
}

/// A server answering every request with `status` and `Location: target`.
async fn redirecting(status: u16, target: String) -> scripted::Server {
    scripted::serve(vec![Reply::redirect(status, target)]).await
}

fn client_for(base: &str, max_body: Option<usize>) -> GraphClient {
    let ep = Endpoint::custom(base, Mailbox::user("helpdesk@contoso.example")).expect("endpoint");
    let mut b = GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("t".into()))))
        .retry(RetryPolicy::never())
        .sleeper(Arc::new(RecordingSleeper::default()));
    if let Some(m) = max_body {
        b = b.max_body(m);
    }
    b.build().expect("client")
}

#[tokio::test]
async fn redirects_from_graph_are_reported_not_followed() {
    for status in [301u16, 302, 303, 307, 308] {
        let target_server = counting_target().await;
        let target = format!("{}/", target_server.url);
        let server = redirecting(status, target.clone()).await;
        let base = format!("{}/v1.0", server.url);
        let source = GraphSource::new(client_for(&base, None), SourceConfig::default());

        let err = source
            .fetch(None, 10)
            .await
            .expect_err("a redirect is not a page");
        assert_ne!(err.kind(), ErrorKind::Transient, "{status}: {err}");
        assert_eq!(err.response().and_then(|r| r.status), Some(status), "{err}");
        let err = source
            .count_waiting()
            .await
            .expect_err("a redirect is not a count");
        assert_eq!(err.response().and_then(|r| r.status), Some(status), "{err}");
        let report = source.ping().await;
        assert!(!report.is_online(), "{status}");

        // The sending path too (a POST answered with a redirect).
        let client = client_for(&base, None);
        let mime =
            b"From: a@contoso.example\r\nTo: b@fabrikam.example\r\nSubject: x\r\n\r\nbody\r\n";
        let err = client
            .execute(&api::SendMime::new(mime))
            .await
            .expect_err("a redirect is not a send");
        assert_eq!(err.response().and_then(|r| r.status), Some(status), "{err}");

        assert!(server.hits() >= 4, "the server was asked");
        assert_eq!(
            target_server.hits(),
            0,
            "{status}: the client went to the redirect target {target}"
        );
    }
}

#[tokio::test]
async fn an_oversized_mime_body_is_a_typed_error_and_the_client_stays_usable() {
    let sb = test_support::start().await;
    let to = "helpdesk@contoso.example";
    let cap = 64 * 1024;
    let big = format!(
        "Message-ID: <big@test.invalid>\r\nFrom: c@fabrikam.example\r\nTo: {to}\r\nSubject: big\r\n\r\n{}\r\n",
        "x".repeat(76).repeat(4 * cap / 76)
    );
    let small = format!(
        "Message-ID: <small@test.invalid>\r\nFrom: c@fabrikam.example\r\nTo: {to}\r\nSubject: small\r\n\r\nhello\r\n"
    );
    for m in [&big, &small] {
        sb.admin()
            .inject("c@fabrikam.example", &[to.to_owned()], m.as_bytes())
            .expect("inject");
    }
    // One download per message, and `$batch` downloads (the default), where the cap applies
    // to the whole batch answer: the big message must not take the others down with it.
    for use_batch in [false, true] {
        let ep = Endpoint::custom(&sb.graph_url(), Mailbox::user(to)).expect("endpoint");
        let client = GraphClient::builder(ep, SandboxTokens::graph_app(&sb))
            .retry(RetryPolicy::never())
            .max_body(cap)
            .build()
            .expect("client");
        let source = GraphSource::new(client, SourceConfig::default().use_batch(use_batch));
        let batch = source.fetch(None, 10).await.expect("the listing is small");
        let subjects: Vec<String> = batch
            .messages
            .iter()
            .map(|m| String::from_utf8_lossy(&m.mime).into_owned())
            .collect();
        assert!(batch.messages.len() >= 2, "batch {use_batch}: {subjects:?}");
        assert!(
            subjects.iter().any(|m| m.contains("Subject: small")),
            "batch {use_batch}: the small message still arrives"
        );
        assert!(!subjects.iter().any(|m| m.contains("Subject: big")));
        assert_eq!(
            batch.failed.len(),
            1,
            "batch {use_batch}: only the big message is reported: {:?}",
            batch.failed
        );
        let (_, err) = &batch.failed[0];
        assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
        assert!(
            err.to_string().contains(&format!("{cap}-byte cap")),
            "{err}"
        );
        assert!(err.to_string().contains("downloading a message"), "{err}");

        // The same client keeps working afterwards.
        assert!(source.ping().await.is_online());
        let waiting = source.count_waiting().await.expect("count");
        assert!(waiting.is_some_and(|n| n >= 2), "{waiting:?}");
    }
}

/// A `/$value` answer streamed without `Content-Length` is cut off at the cap too.
#[tokio::test]
async fn a_chunked_mime_body_over_the_cap_is_refused() {
    // 1 MiB in 16 KiB chunks, unless the client hangs up first.
    let server = scripted::serve(vec![
        Reply::chunked(b'a', 16 * 1024, 64).header("Content-Type", "text/plain"),
    ])
    .await;
    let client = client_for(&format!("{}/v1.0", server.url), Some(64 * 1024));
    let err = client
        .execute(&api::GetMime::new("m1"))
        .await
        .expect_err("over the cap");
    assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
    assert!(err.to_string().contains("65536-byte cap"), "{err}");
}
