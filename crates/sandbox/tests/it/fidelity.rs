//! Fidelity to Microsoft 365 where the sandbox used to deviate (issue #22, item 1): each test
//! here failed against the sandbox before its fix.

use serde_json::{Value, json};

use crate::common::*;

/// Entra ID names Graph permissions in a token response's `scope` without the resource prefix
/// (`Mail.ReadWrite`), other resources' with it (`https://outlook.office365.com/…`). MSAL caches
/// by these names.
#[tokio::test]
async fn token_response_names_graph_scopes_without_prefix() {
    let sb = start().await;
    let scope = "openid offline_access https://graph.microsoft.com/Mail.ReadWrite";
    let (s, v) = sign_in(&sb, DEMO_APP, scope, "adele.vance@contoso.example").await;
    assert_eq!(s, 200, "{v}");
    let granted: Vec<&str> = v["scope"].as_str().unwrap().split(' ').collect();
    assert!(granted.contains(&"Mail.ReadWrite"), "{granted:?}");
    assert!(
        granted.iter().all(|s| !s.starts_with("https://graph.")),
        "{granted:?}"
    );
    assert!(granted.contains(&"offline_access"), "{granted:?}");
    // Exchange Online's scopes keep their resource URI.
    let (s, v) = post_form(
        &sb.token_url(TENANT),
        &[
            ("client_id", DEMO_APP),
            ("grant_type", "refresh_token"),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
            (
                "scope",
                "https://outlook.office365.com/EWS.AccessAsUser.All",
            ),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "https://outlook.office365.com/EWS.AccessAsUser.All"),
        "{v}"
    );
}

const HELPDESK: &str = "helpdesk@contoso.example";

fn graph_app_token(sb: &sandbox::Sandbox) -> String {
    sb.admin()
        .mint_token(&sandbox::MintRequest {
            app_id: DEMO_APP.into(),
            kind: sandbox::TokenKind::App {
                roles: vec!["Mail.ReadWrite".into(), "Mail.Send".into()],
            },
            resource: sandbox::ApiResource::Graph,
            lifetime_secs: None,
        })
        .expect("mint")
}

/// `(status, body)` of a Graph request with the app's token.
async fn graph(
    sb: &sandbox::Sandbox,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client()
        .request(method, url)
        .bearer_auth(graph_app_token(sb));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Graph matches the parameters of its actions without regard to case; the official SDKs send
/// `Message`, `SaveToSentItems` and `DestinationId`.
#[tokio::test]
async fn graph_action_parameters_match_case_insensitively() {
    let sb = start().await;
    let base = format!("{}/users/{HELPDESK}", sb.graph_url());
    let sent_before = sb
        .admin()
        .store()
        .folder(HELPDESK, "sentitems")
        .unwrap()
        .total_count;
    let (s, v) = graph(
        &sb,
        reqwest::Method::POST,
        &format!("{base}/sendMail"),
        Some(json!({
            "Message": {"subject": "pascal", "body": {"contentType": "Text", "content": "hi"},
                "toRecipients": [{"emailAddress": {"address": "adele.vance@contoso.example"}}]},
            "SaveToSentItems": false,
        })),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert!(
        inbox(&sb, "adele.vance@contoso.example")
            .iter()
            .any(|m| String::from_utf8_lossy(&m.mime).contains("Subject: pascal"))
    );
    let sent_after = sb
        .admin()
        .store()
        .folder(HELPDESK, "sentitems")
        .unwrap()
        .total_count;
    assert_eq!(sent_after, sent_before, "SaveToSentItems=false is honoured");

    let (_, list) = graph(
        &sb,
        reqwest::Method::GET,
        &format!("{base}/mailFolders/inbox/messages?$select=id"),
        None,
    )
    .await;
    let id = list["value"][0]["id"].as_str().expect("id").to_owned();
    let (s, v) = graph(
        &sb,
        reqwest::Method::POST,
        &format!("{base}/messages/{id}/move"),
        Some(json!({"DestinationId": "archive"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(
        sb.admin()
            .store()
            .folder(HELPDESK, "archive")
            .unwrap()
            .total_count
            >= 1
    );
}

/// A path Graph does not serve answers Graph's JSON error, never an empty body.
#[tokio::test]
async fn graph_unknown_route_answers_graph_error_json() {
    let sb = start().await;
    for (path, segment) in [
        (format!("/users/{HELPDESK}/contacts"), "contacts"),
        (
            format!("/users/{HELPDESK}/messages/abc/unknownAction"),
            "unknownAction",
        ),
        ("/subscriptions".to_string(), "subscriptions"),
    ] {
        let url = format!("{}{path}", sb.graph_url());
        let resp = client()
            .get(&url)
            .bearer_auth(graph_app_token(&sb))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path}");
        assert!(resp.headers().contains_key("request-id"), "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "BadRequest", "{path}: {v}");
        assert_eq!(
            v["error"]["message"],
            format!("Resource not found for the segment '{segment}'."),
            "{path}"
        );
        assert!(v["error"]["innerError"]["request-id"].is_string(), "{v}");
    }
    // The token is checked first, as on every Graph request.
    let resp = client()
        .get(format!("{}/users/{HELPDESK}/contacts", sb.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
}

/// `@odata.nextLink` and `@odata.deltaLink` name the host the client called: a client that
/// called `127.0.0.1` and checks the host before sending its token must get `127.0.0.1`.
#[tokio::test]
async fn graph_links_name_the_host_the_client_called() {
    let sb = start().await;
    let port = sb.http_addr().port();
    for host in ["127.0.0.1", "localhost"] {
        let root = format!("http://{host}:{port}/v1.0");
        let (s, p1) = graph(
            &sb,
            reqwest::Method::GET,
            &format!("{root}/users/{HELPDESK}/mailFolders/inbox/messages?$top=1"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{p1}");
        let next = p1["@odata.nextLink"].as_str().expect("next link");
        assert!(next.starts_with(&format!("{root}/users/")), "{next}");
        let (s, _) = graph(&sb, reqwest::Method::GET, next, None).await;
        assert_eq!(s, 200);
        let (s, d) = graph(
            &sb,
            reqwest::Method::GET,
            &format!("{root}/users/{HELPDESK}/mailFolders/inbox/messages/delta"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{d}");
        let link = d["@odata.deltaLink"]
            .as_str()
            .or(d["@odata.nextLink"].as_str())
            .expect("delta or next link");
        assert!(link.starts_with(&format!("{root}/users/")), "{link}");
    }
}

/// Office 365 answers a refused XOAUTH2 token with `535 5.7.3 Authentication unsuccessful` at
/// once, without Gmail's `334` error challenge, whether the response came on the `AUTH` line or
/// after `334`.
#[tokio::test]
async fn smtp_refused_token_is_answered_535_at_once() {
    let sb = start().await;
    let mut c = SmtpClient::connect(&sb).await;
    c.cmd("EHLO client").await;
    let forged = sasl("adele.vance@contoso.example", "not.a.jwt");
    let reply = c.cmd(&format!("AUTH XOAUTH2 {forged}")).await;
    assert_eq!(reply, "535 5.7.3 Authentication unsuccessful\r\n");
    c.expect("AUTH XOAUTH2", "334 ").await;
    let reply = c.cmd(&forged).await;
    assert_eq!(reply, "535 5.7.3 Authentication unsuccessful\r\n");
    // The session goes on: a good token after two refusals signs in.
    sb.admin()
        .grant_admin_consent(DEMO_APP, &["https://outlook.office365.com/SMTP.Send"], &[])
        .unwrap();
    let token = sb
        .admin()
        .mint_token(&sandbox::MintRequest {
            app_id: DEMO_APP.into(),
            kind: sandbox::TokenKind::Delegated {
                user: "adele.vance@contoso.example".into(),
                scopes: vec!["SMTP.Send".into()],
            },
            resource: sandbox::ApiResource::Exchange,
            lifetime_secs: None,
        })
        .unwrap();
    c.expect("AUTH XOAUTH2", "334 ").await;
    c.expect(&sasl("adele.vance@contoso.example", &token), "235 2.7.0")
        .await;
}

/// Exchange Online answers an EWS request with an unusable token by an empty 401 whose reason
/// is in `X-MS-Diagnostics`, one code per kind of refusal; the sandbox used to send `2000001`
/// for every refusal, so a client could not tell an expired token from a wrong audience.
#[tokio::test]
async fn an_ews_401_says_why_in_x_ms_diagnostics() {
    let sb = start().await;
    let http = client();
    let mint = |resource, lifetime_secs| {
        sb.admin()
            .mint_token(&sandbox::MintRequest {
                app_id: DEMO_APP.into(),
                kind: sandbox::TokenKind::App {
                    roles: vec!["full_access_as_app".into(), "Mail.ReadWrite".into()],
                },
                resource,
                lifetime_secs,
            })
            .unwrap()
    };
    let graph = mint(sandbox::ApiResource::Graph, Some(86_400));
    let short = mint(sandbox::ApiResource::Exchange, Some(60));
    sb.admin().advance_clock(3600);
    let doc = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope {EWS_NS}><soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>"#
    );
    let cases = [
        (graph.as_str(), "2000003;", "invalid_resource"),
        (short.as_str(), "2000008;", "invalid_token"),
        ("not-a-token", "2000001;", "invalid_token"),
    ];
    for (token, code, category) in cases {
        let r = http
            .post(sb.ews_url())
            .bearer_auth(token)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(doc.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{code}");
        let diag = r
            .headers()
            .get("x-ms-diagnostics")
            .expect("X-MS-Diagnostics on an EWS 401")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(diag.starts_with(code), "{code}: {diag}");
        assert!(
            diag.contains(&format!("error_category=\"{category}\"")),
            "{diag}"
        );
        assert!(r.text().await.unwrap().is_empty(), "an EWS 401 has no body");
    }
    sb.shutdown().await;
}
