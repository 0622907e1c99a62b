//! Hostile EWS servers (issue 11 item 3): a 3xx is not followed, and the billion-laughs and
//! external-entity payloads are refused before any entity is expanded or any file is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector::ErrorKind;
use ews_mail::client::Jitter;
use ews_mail::ops::GetFolder;
use ews_mail::types::FolderId;
use ews_mail::{
    AccessToken, Credentials, EwsClient, EwsConfig, MailboxAccess, RetryPolicy, StaticToken,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads one request (head and the body its `Content-Length` announces).
async fn read_request(s: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let k = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => k,
        };
        buf.extend_from_slice(&chunk[..k]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
    }
}

/// Answers every request with `head` (status line and headers) and `body`; counts connections.
async fn serve(head: String, body: String) -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            if read_request(&mut s).await {
                let resp = format!(
                    "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        }
    });
    (format!("http://{addr}"), hits)
}

fn client(base: &str) -> EwsClient {
    let jitter: Jitter = Arc::new(|| 0.5);
    let cfg = EwsConfig::new(
        format!("{base}/EWS/Exchange.asmx").parse().expect("url"),
        Credentials::Bearer(Arc::new(StaticToken(AccessToken::new("tok")))),
        MailboxAccess::Shared("shared@contoso.example".into()),
    )
    .with_retry(RetryPolicy {
        max_retries: 2,
        base: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_wait: Duration::from_secs(1),
    })
    .with_max_response(1 << 20)
    .with_jitter(jitter);
    EwsClient::new(cfg).expect("client")
}

fn op() -> GetFolder {
    GetFolder::new(vec![FolderId::distinguished_in(
        "inbox",
        "shared@contoso.example",
    )])
}

/// A well-formed GetFolder answer whose display name is `name` (so an expanded entity would
/// land in a field the caller sees).
fn envelope(name: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="F1"/><t:DisplayName>{name}</t:DisplayName><t:TotalCount>1</t:TotalCount><t:UnreadCount>1</t:UnreadCount></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#
    )
}

#[tokio::test]
async fn redirects_from_ews_are_reported_not_followed() {
    let (target, target_hits) = serve(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n".into(),
        envelope("Inbox"),
    )
    .await;
    for status in [301u16, 302, 303, 307, 308] {
        let (base, hits) = serve(
            format!("HTTP/1.1 {status} Moved\r\nLocation: {target}/EWS/Exchange.asmx\r\n"),
            String::new(),
        )
        .await;
        let err = client(&base)
            .call(&op())
            .await
            .expect_err("a redirect is not an answer");
        assert_ne!(err.kind(), ErrorKind::Transient, "{status}: {err}");
        assert_eq!(err.response().and_then(|r| r.status), Some(status), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{status}: asked once");
    }
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the client went to the redirect target"
    );
    // The target itself is a working EWS answer, so the count above is meaningful.
    let ok = client(&target)
        .call(&op())
        .await
        .expect("direct call works");
    assert_eq!(ok[0].as_ref().expect("folder").unread_count, Some(1));
}

/// The classic billion-laughs document: ten levels of ten references, 10^9 `lol`s if expanded.
fn billion_laughs() -> String {
    let mut dtd = String::from("<!ENTITY lol \"lol\">");
    let mut prev = "lol".to_string();
    for i in 1..=9 {
        let name = format!("lol{i}");
        let refs = format!("&{prev};").repeat(10);
        dtd.push_str(&format!("<!ENTITY {name} \"{refs}\">"));
        prev = name;
    }
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [{dtd}]>{}",
        envelope("&lol9;")
    )
}

fn external_entity() -> String {
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        envelope("&xxe;")
    )
}

#[tokio::test]
async fn billion_laughs_and_external_entities_are_refused() {
    for (what, body) in [
        ("billion laughs", billion_laughs()),
        ("external entity", external_entity()),
    ] {
        let (base, hits) = serve(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n".into(),
            body.clone(),
        )
        .await;
        let err = client(&base).call(&op()).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::BadResponse, "{what}: {err}");
        let text = err.to_string();
        assert!(text.contains("DOCTYPE"), "{what}: {text}");
        assert!(!text.contains("lollol"), "{what}: expanded: {text}");
        assert!(!text.contains("root:"), "{what}: read a file: {text}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{what}: not retried");

        // The parser itself, with a generous limit: refused, not expanded.
        let e = ews_mail::xml::parse(body.as_bytes(), 64 << 20).expect_err(what);
        let text = e.to_string();
        assert!(text.contains("DOCTYPE"), "{what}: {text}");
        assert!(!text.contains("root:"), "{what}: {text}");
    }
}
