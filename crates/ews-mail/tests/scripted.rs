//! The client against a scripted HTTP server: answers the sandbox does not produce (ErrorServerBusy
//! inside a 200, ErrorExceededConnectionCount, DOCTYPEs, oversized bodies) and autodiscover.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector::ErrorKind;
use ews_mail::{AccessToken, Credentials, EwsClient};
use test_support::scripted::{self, Reply};

mod common;
use common::shared_inbox as op;

/// A canned answer: status, extra headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

/// Serves the canned answers in order (the last one repeats), each as `text/xml`, and records
/// each request.
async fn serve(answers: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let replies = answers
        .into_iter()
        .map(|(status, headers, body)| {
            headers.into_iter().fold(
                Reply::new(status, body).header("Content-Type", "text/xml"),
                |r, (k, v)| r.header(k, v),
            )
        })
        .collect();
    let server = scripted::serve(replies).await;
    (server.url, server.requests)
}

fn folder_response(class: &str, code: &str, back_off: Option<u32>) -> String {
    let xml = back_off
        .map(|ms| {
            format!(
                r#"<m:MessageXml><t:Value Name="BackOffMilliseconds">{ms}</t:Value></m:MessageXml>"#
            )
        })
        .unwrap_or_default();
    let payload = if code == "NoError" {
        "<m:Folders><t:Folder><t:FolderId Id=\"F1\"/><t:DisplayName>Inbox</t:DisplayName><t:TotalCount>7</t:TotalCount><t:UnreadCount>3</t:UnreadCount></t:Folder></m:Folders>"
    } else {
        ""
    };
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="1"/></s:Header><s:Body><m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetFolderResponseMessage ResponseClass="{class}"><m:MessageText>x</m:MessageText><m:ResponseCode>{code}</m:ResponseCode>{xml}{payload}</m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>"#
    )
}

fn client(base: &str, max_response: usize) -> EwsClient {
    let cfg = common::quick_config(base, "secret-token-value").with_max_response(max_response);
    EwsClient::new(cfg).unwrap()
}

#[tokio::test]
async fn server_busy_in_a_200_is_retried_and_headers_are_sent() {
    let (base, seen) = serve(vec![
        (
            200,
            vec![],
            folder_response("Error", "ErrorServerBusy", Some(3)),
        ),
        (
            200,
            vec![],
            folder_response("Error", "ErrorExceededConnectionCount", None),
        ),
        (200, vec![], folder_response("Success", "NoError", None)),
    ])
    .await;
    let r = client(&base, 1 << 20).call(&op()).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap().unread_count, Some(3));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let req = seen[0].to_ascii_lowercase();
    assert!(
        req.contains("x-anchormailbox: shared@contoso.example"),
        "{req}"
    );
    assert!(req.contains("authorization: bearer secret-token-value"));
    assert!(seen[0].contains("<t:EmailAddress>shared@contoso.example</t:EmailAddress>"));
}

#[tokio::test]
async fn retries_stop_at_the_cap_and_503_retry_after_is_kept() {
    let (base, seen) = serve(vec![(
        503,
        vec![("Retry-After", "0.004".into())],
        String::new(),
    )])
    .await;
    let e = client(&base, 1 << 20).call(&op()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert_eq!(e.response().unwrap().status, Some(503));
    assert_eq!(seen.lock().unwrap().len(), 3, "one attempt and two retries");
    assert!(!e.to_string().contains("secret-token-value"));
}

#[tokio::test]
async fn waits_go_through_the_configured_sleeper_with_the_servers_retry_after() {
    let (base, seen) = serve(vec![
        (503, vec![("Retry-After", "7".into())], String::new()),
        (200, vec![], folder_response("Success", "NoError", None)),
    ])
    .await;
    let sleeper = Arc::new(httpcore::RecordingSleeper::default());
    let cfg = client(&base, 1 << 20).config().clone();
    let retry = cfg
        .retry
        .clone()
        .with_max_retry_after(Duration::from_secs(30));
    let cfg = cfg.with_retry(retry).with_sleeper(sleeper.clone());
    let r = EwsClient::new(cfg).unwrap().call(&op()).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap().unread_count, Some(3));
    assert_eq!(seen.lock().unwrap().len(), 2);
    // The server's seven seconds were asked of the sleeper, not slept.
    assert_eq!(sleeper.waits(), [Duration::from_secs(7)]);
}

#[tokio::test]
async fn per_item_errors_that_are_not_transient_are_returned_in_place() {
    let (base, seen) = serve(vec![(
        200,
        vec![],
        folder_response("Error", "ErrorFolderNotFound", None),
    )])
    .await;
    let r = client(&base, 1 << 20).call(&op()).await.unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().code, "ErrorFolderNotFound");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn doctype_and_oversized_answers_are_refused() {
    let (base, _) = serve(vec![(
        200,
        vec![],
        format!(
            "<!DOCTYPE x [<!ENTITY e \"e\">]>{}",
            folder_response("Success", "NoError", None)
        ),
    )])
    .await;
    let e = client(&base, 1 << 20).call(&op()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(e.to_string().contains("DOCTYPE"), "{e}");
    let (base, _) = serve(vec![(
        200,
        vec![],
        folder_response("Success", "NoError", None),
    )])
    .await;
    let e = client(&base, 100).call(&op()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadResponse);
    assert!(e.to_string().contains("larger than 100 bytes"), "{e}");
}

/// Autodiscover for `u@contoso.example` over plain http at the scripted server `base`.
async fn discover_at(http: &reqwest::Client, base: &str) -> url::Url {
    let host = base.trim_start_matches("http://").to_string();
    ews_mail::autodiscover::discover(
        http,
        "u@contoso.example",
        Some(vec![host]),
        "http",
        Duration::from_secs(5),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn autodiscover_json_then_pox() {
    let json = r#"{"Protocol":"EWS","Url":"https://mail.contoso.example/EWS/Exchange.asmx"}"#;
    let (base, seen) = serve(vec![(200, vec![], json.to_string())]).await;
    let http = reqwest::Client::new();
    let url = discover_at(&http, &base).await;
    assert_eq!(
        url.as_str(),
        "https://mail.contoso.example/EWS/Exchange.asmx"
    );
    assert!(
        seen.lock().unwrap()[0]
            .starts_with("GET /autodiscover/autodiscover.json/v1.0/u@contoso.example?Protocol=EWS")
    );

    let pox = r#"<Autodiscover><Response><Account><Action>settings</Action><Protocol><Type>EXCH</Type><EwsUrl>https://onprem.contoso.example/EWS/Exchange.asmx</EwsUrl></Protocol></Account></Response></Autodiscover>"#;
    let (base, seen) = serve(vec![
        (404, vec![], String::new()),
        (200, vec![], pox.to_string()),
    ])
    .await;
    let url = discover_at(&http, &base).await;
    assert_eq!(
        url.as_str(),
        "https://onprem.contoso.example/EWS/Exchange.asmx"
    );
    let seen = seen.lock().unwrap();
    assert!(seen[1].starts_with("POST /autodiscover/autodiscover.xml"));
    assert!(seen[1].contains("<EMailAddress>u@contoso.example</EMailAddress>"));
}

/// Records the claims each refresh is asked for; diagnoses with `decoded` claims when set.
#[derive(Debug, Default)]
struct Recording {
    refreshes: Mutex<Vec<Option<String>>>,
    decoded: Option<&'static str>,
}

#[async_trait::async_trait]
impl ews_mail::TokenSource for Recording {
    async fn token(&self) -> Result<AccessToken, connector::Error> {
        Ok(AccessToken::new("first-token"))
    }
    async fn refresh(&self, claims: Option<&str>) -> Result<AccessToken, connector::Error> {
        self.refreshes
            .lock()
            .unwrap()
            .push(claims.map(str::to_owned));
        Ok(AccessToken::new("fresh-token"))
    }
    fn diagnose(&self, refusal: &connector::Refusal<'_>) -> Option<connector::Challenge> {
        let decoded = self.decoded?;
        assert!(refusal.bearer_param("claims").is_some(), "{refusal:?}");
        Some(
            connector::Challenge::new(connector::AuthProblem::new("claims", "refresh"), true)
                .with_claims(decoded),
        )
    }
}

const CLAIMS_B64: &str = "eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZX19fQ==";

fn claims_challenge() -> Answer {
    (
        401,
        vec![(
            "WWW-Authenticate",
            format!(
                r#"Bearer realm="", error="insufficient_claims", error_description="Continuous access evaluation resulted in claims challenge", claims="{CLAIMS_B64}""#
            ),
        )],
        String::new(),
    )
}

fn recording_client(base: &str, tokens: Arc<Recording>) -> EwsClient {
    EwsClient::new(common::shared_config(base, Credentials::Bearer(tokens))).unwrap()
}

/// Issue #16: an EWS 401 with a claims challenge (CAE, Conditional Access) hands the claims to
/// the one refresh, as Graph does; the retried request carries the fresh token.
#[tokio::test]
async fn a_claims_challenge_reaches_the_token_source_on_the_refresh() {
    let (base, seen) = serve(vec![
        claims_challenge(),
        (200, vec![], folder_response("Success", "NoError", None)),
    ])
    .await;
    let tokens = Arc::new(Recording::default());
    let r = recording_client(&base, tokens.clone())
        .call(&op())
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap().unread_count, Some(3));
    // No diagnosis from the source: EWS's own reading of the challenge, as sent.
    assert_eq!(
        *tokens.refreshes.lock().unwrap(),
        vec![Some(CLAIMS_B64.to_owned())]
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1]
            .to_ascii_lowercase()
            .contains("authorization: bearer fresh-token")
    );

    // A source that diagnoses (msauth decodes the claims) gets its own claims back.
    let (base, _) = serve(vec![
        claims_challenge(),
        (200, vec![], folder_response("Success", "NoError", None)),
    ])
    .await;
    let tokens = Arc::new(Recording {
        decoded: Some(r#"{"access_token":{"nbf":{"essential":true}}}"#),
        ..Recording::default()
    });
    recording_client(&base, tokens.clone())
        .call(&op())
        .await
        .unwrap();
    assert_eq!(
        *tokens.refreshes.lock().unwrap(),
        vec![Some(
            r#"{"access_token":{"nbf":{"essential":true}}}"#.to_owned()
        )]
    );
}

/// A 401 that survives the refresh is `Authentication`, with the challenge's description, and
/// the token is asked for once more only.
#[tokio::test]
async fn a_second_401_is_diagnosed_after_one_refresh() {
    let (base, seen) = serve(vec![claims_challenge()]).await;
    let tokens = Arc::new(Recording::default());
    let e = recording_client(&base, tokens.clone())
        .call(&op())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    let p = e.auth_problem().unwrap();
    assert!(p.summary.contains("claims challenge"), "{p:?}");
    assert_eq!(p.claims.as_deref(), Some(CLAIMS_B64));
    assert_eq!(tokens.refreshes.lock().unwrap().len(), 1);
    assert_eq!(seen.lock().unwrap().len(), 2);
}
