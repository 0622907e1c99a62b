//! Security issue #24 item 2 for EWS: no bearer token over plain http, and autodiscover answers
//! cannot point the client (and its token) at plain http or at a host nobody chose.
//!
//! Every server here listens on loopback; the non-loopback URLs (`*.contoso.example`,
//! `evil.example`) never resolve and are refused before any connection is tried.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connector::ErrorKind;
use ews_mail::autodiscover::{self, Autodiscover, AutodiscoverError, MAX_ANSWER};
use ews_mail::ops::GetFolder;
use ews_mail::types::FolderId;
use ews_mail::{
    AccessToken, Credentials, EndpointError, EwsClient, EwsConfig, MailboxAccess, TokenSource,
};
use test_support::scripted::{self, Reply};

/// A token source that counts how often it was asked.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl TokenSource for Counting {
    async fn token(&self) -> Result<AccessToken, connector::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken::new("secret-token-value"))
    }
    async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, connector::Error> {
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

fn ok(body: impl Into<String>) -> Reply {
    Reply::ok(body)
}

/// Serves the replies in order (the last one repeats) on loopback and records each request.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let server = scripted::serve(replies).await;
    (server.url, server.requests)
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

    let e = EwsClient::with_http(config(url, tokens.clone()), reqwest::Client::new())
        .expect_err("plain http is refused");
    assert_plain_http_refused(&e, "mail.contoso.example");

    // A private address is not loopback either.
    let e = EwsClient::new(config("http://10.1.2.3/EWS/Exchange.asmx", tokens.clone()))
        .expect_err("plain http is refused");
    assert_plain_http_refused(&e, "10.1.2.3");

    assert_eq!(tokens.0.load(Ordering::SeqCst), 0, "no token was asked for");
}

#[tokio::test]
async fn a_callers_own_client_cannot_skip_the_check() {
    let tokens = Arc::new(Counting::default());
    let e = EwsClient::with_http(
        config(
            "http://mail.contoso.example/EWS/Exchange.asmx",
            tokens.clone(),
        ),
        reqwest::Client::new(),
    )
    .expect_err("plain http is refused");
    // The configuration error, not a failed connection: nothing was resolved or sent.
    assert_plain_http_refused(&e, "mail.contoso.example");
    assert!(!e.may_have_taken_effect());
    assert_eq!(tokens.0.load(Ordering::SeqCst), 0, "no token was asked for");
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
    let (base, seen) = serve(vec![Reply::redirect(
        307,
        format!("{target}/EWS/Exchange.asmx"),
    )])
    .await;
    // reqwest's default client follows up to ten redirects.
    let client = EwsClient::with_http(
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

// ---- autodiscover ----

fn json(url: &str) -> String {
    format!(r#"{{"Protocol":"EWS","Url":"{url}"}}"#)
}

fn pox(url: &str) -> String {
    format!(
        r#"<Autodiscover><Response><Account><Action>settings</Action><Protocol><Type>EXPR</Type><EwsUrl>{url}</EwsUrl></Protocol></Account></Response></Autodiscover>"#
    )
}

fn host_of(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

async fn discover_from(replies: Vec<Reply>) -> Result<url::Url, AutodiscoverError> {
    let (base, _) = serve(replies).await;
    autodiscover::discover(
        &reqwest::Client::new(),
        "u@contoso.example",
        Some(vec![host_of(&base)]),
        "http",
        Duration::from_secs(10),
    )
    .await
}

#[tokio::test]
async fn autodiscover_answers_naming_plain_http_or_a_foreign_host_are_refused() {
    for url in [
        "http://evil.example/EWS/Exchange.asmx",
        // In the mailbox's domain, but plain http: the token would still cross in the clear.
        "http://mail.contoso.example/EWS/Exchange.asmx",
        "ftp://mail.contoso.example/EWS/Exchange.asmx",
    ] {
        for replies in [vec![ok(json(url))], vec![Reply::new(404, ""), ok(pox(url))]] {
            match discover_from(replies).await {
                Err(AutodiscoverError::InsecureAnswer {
                    host,
                    autodiscover_host,
                    ..
                }) => {
                    assert!(url.contains(&host), "{url}: {host}");
                    assert_eq!(autodiscover_host, "127.0.0.1");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
    for (url, named) in [
        ("https://evil.example/EWS/Exchange.asmx", "evil.example"),
        (
            "https://contoso.example.evil.example/EWS/Exchange.asmx",
            "contoso.example.evil.example",
        ),
        (
            "https://evilcontoso.example/EWS/Exchange.asmx",
            "evilcontoso.example",
        ),
    ] {
        for replies in [vec![ok(json(url))], vec![Reply::new(404, ""), ok(pox(url))]] {
            match discover_from(replies).await {
                Err(e @ AutodiscoverError::UntrustedHost { .. }) => {
                    let AutodiscoverError::UntrustedHost { host, domain, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!(host, named);
                    assert_eq!(domain, "contoso.example");
                    assert!(e.to_string().contains(named), "{e}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_redirect_address_does_not_widen_the_trusted_domain() {
    let redirect = r#"<Autodiscover><Response><Account><Action>redirectAddr</Action><RedirectAddr>u@evil.example</RedirectAddr></Account></Response></Autodiscover>"#;
    let r = discover_from(vec![
        Reply::new(404, ""),
        ok(redirect),
        ok(json("https://mail.evil.example/EWS/Exchange.asmx")),
    ])
    .await;
    assert!(
        matches!(&r, Err(AutodiscoverError::UntrustedHost { host, .. }) if host == "mail.evil.example"),
        "{r:?}"
    );
}

#[tokio::test]
async fn oversized_autodiscover_answers_are_refused_with_the_size_error() {
    // A valid answer padded past the cap: read whole, it would have been believed.
    let padded = format!(
        r#"{{"Protocol":"EWS","Url":"https://mail.contoso.example/EWS/Exchange.asmx","Pad":"{}"}}"#,
        "x".repeat(MAX_ANSWER)
    );
    match discover_from(vec![ok(padded)]).await {
        Err(e @ AutodiscoverError::TooLarge { .. }) => {
            assert!(e.to_string().contains(&MAX_ANSWER.to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // No Content-Length and no end: the read stops at the cap instead of buffering it all.
    match discover_from(vec![
        Reply::endless("{\"Protocol\":\"EWS\",\"Pad\":\"")
            .header("Content-Type", "application/json"),
    ])
    .await
    {
        Err(AutodiscoverError::TooLarge {
            autodiscover_host,
            limit,
        }) => {
            assert_eq!(autodiscover_host, "127.0.0.1");
            assert_eq!(limit, MAX_ANSWER);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn allowed_hosts_exchange_online_and_the_mail_domain_are_accepted() {
    let foreign = "https://exchange.fabrikam-hosting.example/EWS/Exchange.asmx";
    assert!(matches!(
        discover_from(vec![ok(json(foreign))]).await,
        Err(AutodiscoverError::UntrustedHost { .. })
    ));
    let (base, _) = serve(vec![ok(json(foreign))]).await;
    let url = Autodiscover::new(Duration::from_secs(10))
        .with_hosts(vec![host_of(&base)])
        .with_scheme("http")
        .with_allowed_host("Exchange.Fabrikam-Hosting.example")
        .discover(&reqwest::Client::new(), "u@contoso.example")
        .await
        .expect("an allowed host");
    assert_eq!(url.as_str(), foreign);

    for ok_url in [
        "https://outlook.office365.com/EWS/Exchange.asmx",
        "https://outlook.office.com/EWS/Exchange.asmx",
        "https://contoso.example/EWS/Exchange.asmx",
        "https://mail.eu.contoso.example/EWS/Exchange.asmx",
    ] {
        let url = discover_from(vec![ok(json(ok_url))])
            .await
            .unwrap_or_else(|e| panic!("{ok_url}: {e}"));
        assert_eq!(url.as_str(), ok_url);
    }
    // Plain http only when both the answer and the autodiscover endpoint are loopback.
    let local = "http://127.0.0.1:9/EWS/Exchange.asmx";
    assert_eq!(
        discover_from(vec![ok(json(local))])
            .await
            .expect("loopback")
            .as_str(),
        local
    );
}

#[tokio::test]
async fn autodiscover_is_not_asked_over_plain_http_off_loopback() {
    let http = reqwest::Client::new();
    let r = autodiscover::discover(
        &http,
        "u@contoso.example",
        Some(vec!["autodiscover.contoso.example".into()]),
        "http",
        Duration::from_secs(30),
    )
    .await;
    match r {
        Err(AutodiscoverError::InsecureRequest { host, reason }) => {
            assert_eq!(host, "autodiscover.contoso.example");
            assert_eq!(
                reason,
                EndpointError::PlainHttp {
                    host: "autodiscover.contoso.example".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // An unknown scheme is refused too, not silently replaced by https.
    let (base, seen) = serve(vec![ok(json("https://mail.contoso.example/EWS"))]).await;
    let r = autodiscover::discover(
        &http,
        "u@contoso.example",
        Some(vec![host_of(&base)]),
        "gopher",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        matches!(
            &r,
            Err(AutodiscoverError::InsecureRequest {
                reason: EndpointError::UnsupportedScheme { .. },
                ..
            })
        ),
        "{r:?}"
    );
    assert!(seen.lock().expect("seen").is_empty(), "nothing was sent");
}

#[tokio::test]
async fn an_autodiscover_answer_reached_through_a_redirect_is_not_used() {
    // The target answers a loopback URL on the same host, which would pass the host check if the
    // redirect target were taken for the autodiscover endpoint.
    let (target, target_seen) = serve(vec![ok(json("http://127.0.0.1:9/EWS/Exchange.asmx"))]).await;
    let (base, _) = serve(vec![Reply::redirect(
        302,
        format!("{target}/autodiscover/elsewhere"),
    )])
    .await;
    // reqwest's default client follows the redirect.
    let r = autodiscover::discover(
        &reqwest::Client::new(),
        "u@contoso.example",
        Some(vec![host_of(&base)]),
        "http",
        Duration::from_secs(10),
    )
    .await;
    match r {
        Err(AutodiscoverError::NotFound { reasons, .. }) => {
            assert!(reasons.contains("redirected"), "{reasons}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !target_seen.lock().expect("seen").is_empty(),
        "it was followed"
    );
}
