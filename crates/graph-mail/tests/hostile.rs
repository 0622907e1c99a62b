//! Hostile servers (issue 11 item 3): a 3xx from "Graph" is not followed, and a `/$value` MIME
//! body over the client's cap is a typed error that leaves the client usable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use connector::{Error, ErrorKind, MessageSource};
use graph_mail::client::Idempotency;
use graph_mail::retry::{RecordingSleeper, RetryPolicy};
use graph_mail::{Endpoint, FnTokenSource, GraphClient, GraphSource, Mailbox, SourceConfig, api};
use sandbox::{ApiResource, MintRequest, Sandbox, TokenKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const APP: &str = "00000000-0000-0000-0000-00000000d3e0";

/// Reads one request head from `sock` (enough for GETs and small POSTs).
async fn read_head(sock: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 8192];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// A listener that counts the connections made to it and answers 200 `{}`.
async fn counting_target() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            if read_head(&mut s).await {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                    .await;
            }
        }
    });
    (format!("http://{addr}/"), hits)
}

/// A server answering every request with `status` and `Location: target`.
async fn redirecting(status: u16, target: String) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let target = target.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await {
                    let head = format!(
                        "HTTP/1.1 {status} Moved\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                }
            });
        }
    });
    (format!("http://{addr}/v1.0"), hits)
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
        let (target, target_hits) = counting_target().await;
        let (base, hits) = redirecting(status, target.clone()).await;
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
        let req = api::send_mime(client.endpoint(), mime).expect("request");
        let err = client
            .execute("sending", req, Idempotency::SendOnce)
            .await
            .expect_err("a redirect is not a send");
        assert_eq!(err.response().and_then(|r| r.status), Some(status), "{err}");

        assert!(hits.load(Ordering::SeqCst) >= 4, "the server was asked");
        assert_eq!(
            target_hits.load(Ordering::SeqCst),
            0,
            "{status}: the client went to the redirect target {target}"
        );
    }
}

fn app_tokens(sb: &Sandbox) -> Arc<FnTokenSource> {
    let admin = sb.admin();
    Arc::new(FnTokenSource::new(move |_| {
        admin
            .mint_token(&MintRequest {
                app_id: APP.into(),
                kind: TokenKind::App {
                    roles: vec!["Mail.ReadWrite".into(), "Mail.Send".into()],
                },
                resource: ApiResource::Graph,
                lifetime_secs: None,
            })
            .map_err(|e| Error::configuration(e.to_string()))
    }))
}

#[tokio::test]
async fn an_oversized_mime_body_is_a_typed_error_and_the_client_stays_usable() {
    let sb = Sandbox::builder().start().await.expect("sandbox starts");
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
        let client = GraphClient::builder(ep, app_tokens(&sb))
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
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if !read_head(&mut s).await {
                    return;
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                    .await;
                let chunk = vec![b'a'; 16 * 1024];
                // 1 MiB in 16 KiB chunks, unless the client hangs up first.
                for _ in 0..64 {
                    let head = format!("{:x}\r\n", chunk.len());
                    if s.write_all(head.as_bytes()).await.is_err()
                        || s.write_all(&chunk).await.is_err()
                        || s.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    let client = client_for(&format!("http://{addr}/v1.0"), Some(64 * 1024));
    let req = api::get_mime(client.endpoint(), "m1").expect("request");
    let err = client
        .execute("downloading a message", req, Idempotency::Safe)
        .await
        .expect_err("over the cap");
    assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
    assert!(err.to_string().contains("65536-byte cap"), "{err}");
}
