//! Sign-in: ping's diagnoses, an expired token, msauth's provider, and a throttled, failing or
//! unreachable token endpoint.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connector::{ErrorKind, MessageOutbound, MessageSource};
use ews_mail::{AccessToken, EwsOutbound, EwsSource, MailboxAccess, TokenSource};
use sandbox::{FaultKind, FaultPlan, Protocol};
use test_support::SandboxTokens;

use crate::support::{
    APP, MAILBOX, app_client, app_token, client, fault_next, message_to_adele, sandbox, user_token,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_diagnoses_consent_policy_impersonation_and_missing_mailbox() {
    let sb = sandbox().await;
    // Delegated EWS without admin consent: user consent is not enough.
    sb.admin().revoke_admin_consent(APP).unwrap();
    sb.admin()
        .grant_user_consent(
            APP,
            MAILBOX,
            &["https://outlook.office365.com/EWS.AccessAsUser.All"],
        )
        .unwrap();
    let ping = EwsSource::new(client(
        &sb,
        user_token(&sb, MAILBOX),
        MailboxAccess::Own(MAILBOX.into()),
    ))
    .ping()
    .await;
    assert!(!ping.is_online());
    let reason = ping.reason.clone().unwrap();
    assert!(
        reason.contains("legacy EWS connections do not work with user consent"),
        "{reason}"
    );
    assert!(ping.auth.is_some());
    let rendered = format!("{ping:?} {}", ping.to_json());
    assert!(
        !rendered.contains("eyJ"),
        "no token in the report: {rendered}"
    );

    let sb = sandbox().await;
    // EWS allowed only for other apps.
    sb.admin().update_org(|o| {
        o.ews_enabled = Some(true);
        o.ews_allowed_app_ids = Some(vec!["11111111-1111-1111-1111-111111111111".into()]);
    });
    let ping = EwsSource::new(app_client(&sb)).ping().await;
    let reason = ping.reason.unwrap();
    assert!(
        reason.contains("EwsAllowedAppIDs") && reason.contains("Graph"),
        "{reason}"
    );
    sb.admin().update_org(|o| {
        o.ews_enabled = None;
        o.ews_allowed_app_ids = None;
    });

    // Impersonating with a delegated token is denied.
    let c = client(
        &sb,
        user_token(&sb, "adele.vance@contoso.example"),
        MailboxAccess::Impersonate(MAILBOX.into()),
    );
    let reason = EwsSource::new(c).ping().await.reason.unwrap();
    assert!(reason.starts_with("impersonation denied"), "{reason}");

    // A mailbox that does not exist.
    let c = client(
        &sb,
        app_token(&sb),
        MailboxAccess::Impersonate("nobody@contoso.example".into()),
    );
    let reason = EwsSource::new(c).ping().await.reason.unwrap();
    assert!(reason.starts_with("mailbox not found"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_once() {
    #[derive(Debug)]
    struct FirstStale {
        inner: Arc<SandboxTokens>,
        calls: std::sync::atomic::AtomicU32,
    }
    #[async_trait]
    impl TokenSource for FirstStale {
        async fn token(&self) -> Result<AccessToken, connector::Error> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(AccessToken::new("not-a-jwt"))
        }
        async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, connector::Error> {
            self.inner.token().await
        }
    }
    let sb = sandbox().await;
    let tokens = Arc::new(FirstStale {
        inner: SandboxTokens::ews_app(&sb),
        calls: Default::default(),
    });
    let c = client(&sb, tokens, MailboxAccess::Impersonate(MAILBOX.into()));
    assert_eq!(
        EwsSource::new(c.clone()).count_waiting().await.unwrap(),
        Some(0)
    );
    assert!(!c.log().render().contains("not-a-jwt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msauth_tokens_from_the_token_endpoint_and_consent_loss_is_diagnosed() {
    let sb = sandbox().await;
    let secret = "demo-secret-do-not-use-in-production";
    let tokens = msauth_provider(sb.base_url(), &sb.tenant_id());
    let c = client(
        &sb,
        Arc::new(tokens),
        MailboxAccess::Impersonate(MAILBOX.into()),
    );
    let src = EwsSource::new(c);
    let ping = src.ping().await;
    assert!(ping.is_online(), "{ping}");
    sb.admin().revoke_admin_consent(APP).unwrap();
    let ping = src.ping().await;
    assert!(!ping.is_online());
    assert!(ping.auth.is_some(), "{ping}");
    let shown = format!("{ping} {ping:?} {}", ping.to_json());
    assert!(!shown.contains(secret) && !shown.contains("eyJ"), "{shown}");
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
}

/// msauth's provider (app-only, client secret) at `base`, as the EWS source's token source.
fn msauth_provider(base: &str, tenant: &str) -> msauth::TokenProvider {
    let authority =
        msauth::Authority::microsoft_layout(base, msauth::Tenant::parse(tenant).unwrap()).unwrap();
    msauth::TokenProvider::builder(authority, APP)
        .credential(msauth::ClientCredential::Secret(msauth::ClientSecret::new(
            "demo-secret-do-not-use-in-production",
        )))
        .scopes(["https://outlook.office365.com/.default"])
        .build()
        .unwrap()
}

/// Issue #16: a throttled token endpoint is the identity platform asking us to wait, not a
/// refused sign-in. ews-mail's own msauth adapter used to report every token failure as
/// `Authentication`, so the pipeline took an EWS source OFFLINE "for sign-in" where a Graph
/// source would have retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_token_endpoint_is_a_retryable_error_not_a_sign_in_failure() {
    let sb = sandbox().await;
    fault_next(
        &sb,
        Protocol::Token,
        100,
        FaultKind::Throttle {
            retry_after_secs: 7,
        },
    );
    let tokens = msauth_provider(sb.base_url(), &sb.tenant_id());
    let src = EwsSource::new(client(
        &sb,
        Arc::new(tokens.clone()),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "{e}");
    assert!(!e.may_have_taken_effect(), "no EWS request was sent: {e}");
    let e = src.count_waiting().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_ne!(e.kind(), ErrorKind::Authentication, "{e}");
    // The same provider through the outbound: a send is not sent, and may be retried.
    let out = EwsOutbound::new(client(
        &sb,
        Arc::new(tokens),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let msg = message_to_adele();
    let e = out.send(&msg).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert!(!e.may_have_taken_effect(), "{e}");

    // Once the token endpoint answers again, so does the source.
    sb.admin().set_faults(FaultPlan::default());
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
}

/// A token endpoint with a server error (503) or none at all (nothing listening) is transient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_or_unreachable_token_endpoint_is_transient() {
    let sb = sandbox().await;
    fault_next(&sb, Protocol::Token, 100, FaultKind::ServerError503);
    let src = EwsSource::new(client(
        &sb,
        Arc::new(msauth_provider(sb.base_url(), &sb.tenant_id())),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(e.auth_problem().is_some_and(|p| !p.summary.is_empty()));

    // Nothing listens on this port any more: the connection is refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let src = EwsSource::new(client(
        &sb,
        Arc::new(msauth_provider(
            &format!("http://{closed}"),
            &sb.tenant_id(),
        )),
        MailboxAccess::Impersonate(MAILBOX.into()),
    ));
    let e = src.fetch(None, 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(!e.may_have_taken_effect(), "{e}");
    let ping = src.ping().await;
    assert!(!ping.is_online());
    assert!(
        ping.reason
            .as_deref()
            .is_some_and(|r| r.contains("identity service")),
        "{ping}"
    );
}
