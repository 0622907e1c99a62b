//! Security issue #24 item 2 for EWS: no bearer token over plain http.
//!
//! Every server here listens on loopback; the non-loopback URLs (`*.contoso.example`,
//! `evil.example`) never resolve and are refused before any connection is tried.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use connector::ErrorKind;
use ews_mail::endpoint::EndpointError;
use ews_mail::ops::GetFolder;
use ews_mail::types::FolderId;
use ews_mail::{BearerToken, Credentials, EwsClient, EwsConfig, MailboxAccess, TokenSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A token source that counts how often it was asked.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl TokenSource for Counting {
    async fn token(&self) -> Result<BearerToken, connector::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(BearerToken::new("secret-token-value"))
    }
    async fn refresh(&self) -> Result<BearerToken, connector::Error> {
        self.token().await
    }
}

fn config(url: &str, tokens: Arc<Counting>) -> EwsConfig {
    EwsConfig::new(
        url.parse().expect("url"),
        Credentials::Bearer(tokens),
        MailboxAccess::Impersonate("helpdesk@contoso.example".into()),
    )
}

fn op() -> GetFolder {
    GetFolder::new(vec![FolderId::distinguished("inbox")])
}

/// What a scripted server answers.
#[derive(Clone)]
enum Reply {
    /// Status, extra headers and a body with its `Content-Length`.
    Fixed(u16, Vec<(&'static str, String)>, String),
}

fn ok(body: impl Into<String>) -> Reply {
    Reply::Fixed(200, vec![], body.into())
}

/// Reads one request (head and the body its `Content-Length` announces).
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let k = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
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
                return Some(String::from_utf8_lossy(&buf).into_owned());
            }
        }
    }
}

/// Serves the replies in order (the last one repeats) on loopback and records each request.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut s, _)) = l.accept().await {
            let Some(req) = read_request(&mut s).await else {
                continue;
            };
            log.lock().expect("log").push(req);
            let reply = replies[n.min(replies.len() - 1)].clone();
            n += 1;
            tokio::spawn(async move {
                match reply {
                    Reply::Fixed(status, headers, body) => {
                        let mut resp = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        for (k, v) in headers {
                            resp.push_str(&format!("{k}: {v}\r\n"));
                        }
                        resp.push_str("\r\n");
                        resp.push_str(&body);
                        let _ = s.write_all(resp.as_bytes()).await;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn envelope() -> String {
    r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Folders><t:Folder><t:FolderId Id="F1"/><t:DisplayName>Inbox</t:DisplayName><t:TotalCount>1</t:TotalCount><t:UnreadCount>1</t:UnreadCount></t:Folder></m:Folders></m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#.to_owned()
}

/// The configuration error for plain http to `host`, with its typed source.
fn assert_plain_http_refused(e: &connector::Error, host: &str) {
    assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    let text = e.to_string();
    assert!(text.contains(host), "names the host: {text}");
    assert!(text.contains("use https"), "says what to do: {text}");
    let typed = e
        .source()
        .and_then(|s| s.downcast_ref::<EndpointError>())
        .expect("an EndpointError source");
    assert_eq!(
        typed,
        &EndpointError::PlainHttp {
            host: host.to_owned()
        }
    );
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_at_construction_without_a_token() {
    let url = "http://mail.contoso.example/EWS/Exchange.asmx";
    let tokens = Arc::new(Counting::default());

    let e = EwsClient::new(config(url, tokens.clone())).expect_err("plain http is refused");
    assert_plain_http_refused(&e, "mail.contoso.example");

    let e = EwsClient::try_with_http(config(url, tokens.clone()), reqwest::Client::new())
        .expect_err("plain http is refused");
    assert_plain_http_refused(&e, "mail.contoso.example");

    // A private address is not loopback either.
    let e = EwsClient::new(config("http://10.1.2.3/EWS/Exchange.asmx", tokens.clone()))
        .expect_err("plain http is refused");
    assert_plain_http_refused(&e, "10.1.2.3");

    assert_eq!(tokens.0.load(Ordering::SeqCst), 0, "no token was asked for");
}

#[tokio::test]
async fn a_client_built_without_the_check_refuses_every_call_before_asking_for_a_token() {
    let tokens = Arc::new(Counting::default());
    let client = EwsClient::with_http(
        config(
            "http://mail.contoso.example/EWS/Exchange.asmx",
            tokens.clone(),
        ),
        reqwest::Client::new(),
    );
    let e = client.call(&op()).await.expect_err("plain http is refused");
    // The configuration error, not a failed connection: nothing was resolved or sent.
    assert_plain_http_refused(&e, "mail.contoso.example");
    assert!(!e.may_have_taken_effect());
    assert_eq!(tokens.0.load(Ordering::SeqCst), 0, "no token was asked for");
    assert!(client.log().lines().is_empty(), "no request was logged");
}

#[tokio::test]
async fn schemes_other_than_https_and_http_are_refused() {
    let tokens = Arc::new(Counting::default());
    for (url, scheme) in [
        ("ftp://mail.contoso.example/EWS/Exchange.asmx", "ftp"),
        ("ws://mail.contoso.example/EWS/Exchange.asmx", "ws"),
        ("file:///EWS/Exchange.asmx", "file"),
    ] {
        let e = EwsClient::new(config(url, tokens.clone())).expect_err(url);
        assert_eq!(e.kind(), ErrorKind::Configuration, "{url}: {e}");
        assert!(e.to_string().contains("use https"), "{url}: {e}");
        assert_eq!(
            e.source().and_then(|s| s.downcast_ref::<EndpointError>()),
            Some(&EndpointError::UnsupportedScheme {
                scheme: scheme.into()
            }),
            "{url}"
        );
    }
    assert_eq!(tokens.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_callers_client_that_follows_redirects_does_not_carry_the_token_and_is_not_believed() {
    // The redirect target is a working EWS endpoint, so only the client can make the call fail.
    let (target, target_seen) = serve(vec![ok(envelope())]).await;
    let (base, seen) = serve(vec![Reply::Fixed(
        307,
        vec![("Location", format!("{target}/EWS/Exchange.asmx"))],
        String::new(),
    )])
    .await;
    // reqwest's default client follows up to ten redirects.
    let client = EwsClient::try_with_http(
        config(
            &format!("{base}/EWS/Exchange.asmx"),
            Arc::new(Counting::default()),
        ),
        reqwest::Client::new(),
    )
    .expect("loopback http is accepted");
    let e = client
        .call(&op())
        .await
        .expect_err("an answer from elsewhere");
    assert_eq!(e.kind(), ErrorKind::BadResponse, "{e}");
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(
        seen.lock().expect("seen")[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer secret-token-value")
    );
    // reqwest followed it (the caller's client), but without the Authorization header.
    let target_seen = target_seen.lock().expect("seen");
    assert_eq!(target_seen.len(), 1, "the caller's client followed the 307");
    assert!(
        !target_seen[0]
            .to_ascii_lowercase()
            .contains("authorization"),
        "the token went to the redirect target: {}",
        target_seen[0]
    );
    assert!(!target_seen[0].contains("secret-token-value"));
}
