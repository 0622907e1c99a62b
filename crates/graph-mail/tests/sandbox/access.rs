//! Sign-in and permissions: withdrawn consent, Send As rights, msauth's token provider and an
//! application access policy.

use std::sync::Arc;

use connector::{ErrorKind, MessageOutbound, MessageSource};
use graph_mail::{Endpoint, GraphClient, GraphOutbound, GraphSource, Mailbox, SourceConfig};
use sandbox::ApiResource;
use test_support::SandboxTokens;
use test_support::tokens::delegated;

use crate::support::{APP, env};

#[tokio::test]
async fn withdrawn_consent_is_diagnosed_after_one_refresh() {
    let env = env().await;
    env.sb.admin().revoke_admin_consent(APP).expect("revoke");
    let source = env.source("helpdesk@contoso.example");
    let report = source.ping().await;
    assert!(!report.is_online());
    assert!(report.auth.is_some(), "{report}");
    assert_eq!(env.tokens.refreshes(), 1);
    let rendered = format!("{report} {:?} {}", report.log, report.to_json());
    assert!(
        !rendered.contains("eyJ"),
        "no token in the report: {rendered}"
    );
    let err = source.fetch(None, 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.response().and_then(|r| r.status), Some(401));
    assert!(!format!("{err} {err:?}").contains("eyJ"));
    assert_eq!(env.tokens.refreshes(), 2);
}

#[tokio::test]
async fn send_as_rights_are_checked_and_diagnosed() {
    let env = env().await;
    let tokens = Arc::new(SandboxTokens::new(
        &env.sb,
        delegated("helpdesk@contoso.example", &["Mail.ReadWrite", "Mail.Send"]),
        ApiResource::Graph,
    ));
    let ep = Endpoint::custom(&env.sb.graph_url(), Mailbox::Me).expect("endpoint");
    let client = GraphClient::builder(ep, tokens).build().expect("client");
    let out = GraphOutbound::new(client.clone());
    assert!(out.ping().await.is_online());
    // helpdesk has Send As on the shared mailbox projects@, not on adele.
    let denied = GraphOutbound::new(client.clone()).ping_from("adele.vance@contoso.example");
    let report = denied.ping().await;
    assert!(!report.is_online(), "{report}");
    let reason = report.reason.as_deref().unwrap_or("");
    assert!(reason.contains("may not send as"), "{report}");
    assert!(
        GraphOutbound::new(client.clone())
            .ping_from("projects@contoso.example")
            .ping()
            .await
            .is_online()
    );
    let msg = |from: &str| {
        test_support::mime::outgoing(from, "alex.wilber@contoso.example", &format!("as {from}"))
    };
    let err = out
        .send(&msg("adele.vance@contoso.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("ErrorSendAsDenied")
    );
    assert!(!err.may_have_taken_effect());
    let receipt = out
        .send(&msg("projects@contoso.example"))
        .await
        .expect("send as");
    assert_eq!(receipt.from.as_deref(), Some("projects@contoso.example"));
}

#[tokio::test]
async fn msauth_token_provider_drives_the_client_and_diagnoses_withdrawn_consent() {
    use msauth::{Authority, ClientCredential, ClientSecret, Endpoints, TokenProvider};
    let env = env().await;
    let tenant = "contoso.example";
    let endpoints = Endpoints::new(
        &format!("{}/{tenant}/oauth2/v2.0/authorize", env.sb.base_url()),
        &env.sb.token_url(tenant),
    )
    .expect("endpoints");
    let provider = TokenProvider::builder(Authority::custom(endpoints), APP)
        .credential(ClientCredential::Secret(ClientSecret::new(
            "demo-secret-do-not-use-in-production",
        )))
        .scopes(["https://graph.microsoft.com/.default"])
        .build()
        .expect("provider");
    let ep = Endpoint::custom(
        &env.sb.graph_url(),
        Mailbox::user("helpdesk@contoso.example"),
    )
    .expect("endpoint");
    let client = GraphClient::builder(ep, Arc::new(provider))
        .sleeper(env.sleeper.clone())
        .build()
        .expect("client");
    let source = GraphSource::new(client, SourceConfig::default());
    let report = source.ping().await;
    assert!(report.is_online(), "{report}");
    assert_eq!(report.waiting, Some(2));
    let batch = source.fetch(None, 10).await.expect("fetch");
    assert_eq!(batch.messages.len(), 2);

    env.sb.admin().revoke_admin_consent(APP).expect("revoke");
    let report = source.ping().await;
    assert!(!report.is_online());
    let reason = report.reason.clone().unwrap_or_default();
    eprintln!("{report}");
    assert!(!reason.is_empty());
    assert!(report.auth.is_some(), "{report}");
    assert!(
        !format!("{report:?}").contains("demo-secret"),
        "no secret in the report"
    );
}

#[tokio::test]
async fn a_mailbox_the_app_may_not_reach_pings_offline_with_the_reason() {
    use sandbox::tenant::{AppAccessPolicy, PolicyMode};
    let env = env().await;
    env.sb.admin().update_org(|o| {
        o.app_access_policies.push(AppAccessPolicy::new(
            APP,
            ["adele.vance@contoso.example"],
            PolicyMode::DenyAccess,
        ))
    });
    let report = env.source("adele.vance@contoso.example").ping().await;
    assert!(!report.is_online());
    let reason = report.reason.clone().unwrap_or_default();
    assert!(reason.contains("ErrorAccessDenied"), "{reason}");
    assert!(reason.contains("HTTP 403"), "{reason}");
    assert!(report.log.iter().any(|l| l.status == Some(403)));
    assert!(
        env.source("helpdesk@contoso.example")
            .ping()
            .await
            .is_online()
    );
    assert_eq!(
        env.tokens.refreshes(),
        0,
        "a 403 is not cured by a new token"
    );
}
