//! Fidelity to Exchange Online (issue #22): a 401's reason is in `x-ms-diagnostics`, with an
//! empty body. The client reads the header's code and reason for every code, whichever token
//! source it has.

use std::sync::Arc;

use connector::ErrorKind;
use ews_mail::ops::GetFolder;
use ews_mail::types::FolderId;
use ews_mail::{
    AccessToken, Credentials, EwsClient, EwsConfig, MailboxAccess, RetryPolicy, StaticToken,
};
use test_support::scripted::{self, Reply};

mod common;
use common::shared_inbox as op;

fn client(base: &str) -> EwsClient {
    EwsClient::new(common::quick_config(base, "a-token")).unwrap()
}

/// Exchange Online's 401: empty body, a `Bearer` challenge that says nothing, the reason in
/// `x-ms-diagnostics`.
fn refused(diagnostics: &str) -> Reply {
    Reply::new(401, "")
        .header(
            "WWW-Authenticate",
            r#"Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token""#,
        )
        .header("x-ms-diagnostics", diagnostics)
}

#[tokio::test]
async fn a_wrong_audience_401_is_a_configuration_diagnosis_without_a_refresh() {
    let server = scripted::serve(vec![refused(
        r#"2000003;reason="The audience claim value is invalid 'https://graph.microsoft.com'.";error_category="invalid_resource""#,
    )])
    .await;
    let e = client(&server.url).call(&op()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    let p = e.auth_problem().unwrap();
    assert!(p.summary.contains("wrong audience"), "{p:?}");
    assert!(
        p.summary
            .contains("The audience claim value is invalid 'https://graph.microsoft.com'."),
        "{p:?}"
    );
    assert!(
        p.remediation
            .contains("https://outlook.office365.com/.default"),
        "{p:?}"
    );
    // A fresh token for the same scope would be refused the same way: no second request.
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_then_named_expired() {
    let server = scripted::serve(vec![refused(
        r#"2000001;reason="The token has expired.";error_category="invalid_token""#,
    )])
    .await;
    let e = client(&server.url).call(&op()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    let p = e.auth_problem().unwrap();
    assert!(p.summary.contains("expired"), "{p:?}");
    assert_eq!(server.requests.lock().unwrap().len(), 2, "one refresh");
}

#[tokio::test]
async fn no_permissions_is_an_admin_consent_diagnosis() {
    let server = scripted::serve(vec![refused(
        r#"2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant""#,
    )])
    .await;
    let e = client(&server.url).call(&op()).await.unwrap_err();
    let p = e.auth_problem().unwrap();
    assert!(p.summary.contains("admin consent"), "{p:?}");
    assert!(
        p.summary.contains(
            "x-ms-diagnostics 2000008: The token contains no permissions, or permissions can not be understood."
        ),
        "{p:?}"
    );
    assert!(p.remediation.contains("admin consent"), "{p:?}");
    assert_eq!(p.code.as_deref(), Some("2000008"));
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

/// Against the sandbox, which now answers each refusal with its own code: a Graph token sent
/// to EWS is named a wrong audience (a configuration problem, no refresh), not a generic
/// "could not validate".
#[tokio::test]
async fn the_sandbox_names_a_graph_token_sent_to_ews_a_wrong_audience() {
    use sandbox::{ApiResource, MintRequest, Sandbox, Seed, TokenKind};
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let graph_token = sb
        .admin()
        .mint_token(&MintRequest::new(
            test_support::DEMO_APP,
            TokenKind::App {
                roles: vec!["Mail.ReadWrite".into()],
            },
            ApiResource::Graph,
        ))
        .unwrap();
    let cfg = EwsConfig::new(
        sb.ews_url().parse().unwrap(),
        Credentials::Bearer(Arc::new(StaticToken(AccessToken::new(graph_token)))),
        MailboxAccess::Impersonate("helpdesk@contoso.example".into()),
    )
    .with_retry(RetryPolicy::default().with_max_attempts(2));
    let e = EwsClient::new(cfg)
        .unwrap()
        .call(&GetFolder::new(vec![FolderId::distinguished("inbox")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
    let p = e.auth_problem().unwrap();
    assert!(p.summary.contains("wrong audience"), "{p:?}");
    sb.shutdown().await;
}
