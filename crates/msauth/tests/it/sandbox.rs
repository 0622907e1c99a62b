//! msauth against the sandbox tenant's identity endpoints: each flow end to end, and each consent
//! and credential state giving the right diagnosis.

use std::sync::Arc;

use msauth::{
    AuthClient, AuthError, Authority, ClientCredential, ClientSecret, MemoryStore, Problem, Tenant,
    TokenProvider,
};
use sandbox::{Sandbox, Seed};

const APP: &str = "00000000-0000-0000-0000-00000000d3e0";
const SECRET: &str = "demo-secret-do-not-use-in-production";
const GRAPH: &str = "https://graph.microsoft.com/.default";

async fn tenant() -> Sandbox {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    // Device-code polling every second keeps the tests quick.
    sb.admin()
        .update_identity(|i| i.device_code_interval_secs = 1);
    sb
}

fn authority(sb: &Sandbox) -> Authority {
    Authority::microsoft_layout(sb.base_url(), Tenant::parse(&sb.tenant_id()).unwrap()).unwrap()
}

fn daemon(sb: &Sandbox, secret: &str) -> TokenProvider {
    TokenProvider::builder(authority(sb), APP)
        .credential(ClientCredential::Secret(ClientSecret::new(secret)))
        .scopes([GRAPH])
        .build()
        .unwrap()
}

/// `err` carries the identity platform's error `code`, diagnosed as `problem`.
fn assert_diagnosed(err: &AuthError, code: u32, problem: Problem) {
    let d = err.diagnosis();
    assert_eq!(d.code(), Some(code), "{}", d.explain());
    assert_eq!(d.problem(), problem);
}

fn token_requests(sb: &Sandbox) -> u64 {
    sb.request_log()
        .entries
        .iter()
        .filter(|e| e.path.ends_with("/oauth2/v2.0/token"))
        .map(|e| e.count)
        .sum()
}

async fn graph_status(sb: &Sandbox, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!(
            "{}/users/helpdesk@contoso.example/mailFolders/inbox",
            sb.graph_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn client_credentials_token_reaches_graph() {
    let sb = tenant().await;
    let token = daemon(&sb, SECRET).access_token().await.unwrap();
    assert_eq!(graph_status(&sb, token.secret()).await, 200);
}

#[tokio::test]
async fn a_wrong_secret_is_diagnosed_as_such() {
    let sb = tenant().await;
    let err = daemon(&sb, "not-the-secret")
        .access_token()
        .await
        .unwrap_err();
    let d = err.diagnosis();
    assert_eq!(d.code(), Some(7000215), "{}", d.explain());
    assert_eq!(d.problem(), Problem::InvalidClientSecret);
    assert!(!d.explain().contains("not-the-secret"));
}

#[tokio::test]
async fn an_expired_secret_is_diagnosed_as_expired() {
    let sb = tenant().await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    sb.admin()
        .add_secret(APP, "old-secret", Some(past))
        .unwrap();
    let err = daemon(&sb, "old-secret").access_token().await.unwrap_err();
    assert_diagnosed(&err, 7000222, Problem::ExpiredClientSecret);
}

#[tokio::test]
async fn an_unknown_application_is_diagnosed() {
    let sb = tenant().await;
    let p = TokenProvider::builder(authority(&sb), "11111111-2222-3333-4444-555555555555")
        .credential(ClientCredential::Secret(ClientSecret::new(SECRET)))
        .scopes([GRAPH])
        .build()
        .unwrap();
    let err = p.access_token().await.unwrap_err();
    assert_diagnosed(&err, 700016, Problem::ApplicationNotFound);
}

#[tokio::test]
async fn consent_withdrawn_turns_graph_401_into_an_admin_consent_diagnosis() {
    let sb = tenant().await;
    let provider = daemon(&sb, SECRET);
    let token = provider.access_token().await.unwrap();
    sb.admin().revoke_admin_consent(APP).unwrap();
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/users/helpdesk@contoso.example/mailFolders/inbox",
            sb.graph_url()
        ))
        .bearer_auth(token.secret())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(status.as_u16(), 401);
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    let challenge = msauth::diagnose_resource_challenge(status, &headers, &body);
    let d = challenge.diagnosis();
    assert!(
        matches!(
            d.problem(),
            Problem::TokenRejected
                | Problem::AdminConsentRequired
                | Problem::ConsentRequired
                | Problem::PermissionMissing
        ),
        "{:?}: {}",
        d.problem(),
        d.explain()
    );
    // A fresh token cannot be had until consent is granted again (no roles: AADSTS7000/65001 family).
    let after = daemon(&sb, SECRET).access_token().await;
    match after {
        Err(e) => assert!(
            e.diagnosis().explain().to_lowercase().contains("consent"),
            "{}",
            e.diagnosis().explain()
        ),
        Ok(t) => assert_eq!(graph_status(&sb, t.secret()).await, 401),
    }
}

#[tokio::test]
async fn device_code_sign_in_then_refresh_rotates_the_refresh_token() {
    let sb = tenant().await;
    let store = Arc::new(MemoryStore::new());
    let provider = TokenProvider::builder(authority(&sb), APP)
        .scopes(["Mail.ReadWrite", "offline_access"])
        .account("adele.vance@contoso.example")
        .store(store.clone())
        .build()
        .unwrap();
    let admin = sb.admin();
    let token = provider
        .sign_in_with_device_code(|flow| {
            admin
                .approve_device_code(flow.user_code(), "adele.vance@contoso.example")
                .unwrap();
        })
        .await
        .unwrap();
    assert_eq!(
        reqwest::Client::new()
            .get(format!("{}/me/mailFolders/inbox", sb.graph_url()))
            .bearer_auth(token.secret())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let first_rt = rt_of(&store, &provider).await;
    // The sandbox expires the access token; the provider refreshes with the refresh token.
    let before = token_requests(&sb);
    let refreshed = provider.force_refresh().await.unwrap();
    assert_ne!(refreshed.secret(), token.secret());
    assert_eq!(token_requests(&sb), before + 1);
    let second_rt = rt_of(&store, &provider).await;
    assert_ne!(
        first_rt, second_rt,
        "the rotated refresh token must replace the old one"
    );
}

async fn rt_of(store: &Arc<MemoryStore>, provider: &TokenProvider) -> String {
    use msauth::TokenStore;
    let cached = store
        .load(provider.cache_key())
        .unwrap()
        .expect("a cached token");
    cached
        .refresh_token
        .as_ref()
        .map(|r| r.secret().to_owned())
        .expect("a refresh token")
}

/// Adele's public-client provider (`Mail.ReadWrite`, `offline_access`), with its own memory
/// store.
fn adele(sb: &Sandbox) -> TokenProvider {
    TokenProvider::builder(authority(sb), APP)
        .scopes(["Mail.ReadWrite", "offline_access"])
        .account("adele.vance@contoso.example")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_declined_device_code_is_diagnosed() {
    let sb = tenant().await;
    let provider = adele(&sb);
    let admin = sb.admin();
    let err = provider
        .sign_in_with_device_code(|flow| admin.decline_device_code(flow.user_code()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.diagnosis().problem(),
        Problem::DeviceCodeDeclined,
        "{}",
        err.diagnosis().explain()
    );
}

#[tokio::test]
async fn an_unassigned_user_is_refused_when_assignment_is_required() {
    let sb = tenant().await;
    sb.admin().update_tenant(|t| {
        if let Some(app) = t.apps.iter_mut().find(|a| a.client_id == APP) {
            app.user_assignment_required = true;
        }
    });
    sb.admin()
        .assign_user(APP, "alex.wilber@contoso.example")
        .unwrap();
    let client = AuthClient::new(authority(&sb), APP, ClientCredential::None).unwrap();
    let admin = sb.admin();
    for (user, allowed) in [
        ("adele.vance@contoso.example", false),
        ("alex.wilber@contoso.example", true),
    ] {
        let mut flow = client.start_device_code(&["Mail.ReadWrite"]).await.unwrap();
        let approved = admin.approve_device_code(flow.user_code(), user);
        let result = match approved {
            Err(e) => Err(e.to_string()),
            Ok(()) => client
                .finish_device_code(&mut flow)
                .await
                .map(|_| ())
                .map_err(|e| {
                    let d = e.diagnosis();
                    assert_eq!(d.code(), Some(50105), "{}", d.explain());
                    assert_eq!(d.problem(), Problem::UserNotAssigned);
                    d.explain()
                }),
        };
        assert_eq!(result.is_ok(), allowed, "{user}: {result:?}");
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_asks_for_a_new_sign_in() {
    let sb = tenant().await;
    let provider = adele(&sb);
    let admin = sb.admin();
    provider
        .sign_in_with_device_code(|flow| {
            admin
                .approve_device_code(flow.user_code(), "adele.vance@contoso.example")
                .unwrap()
        })
        .await
        .unwrap();
    assert!(
        sb.admin()
            .revoke_refresh_tokens(Some("adele.vance@contoso.example"))
            .unwrap()
            >= 1
    );
    let err = provider.force_refresh().await.unwrap_err();
    let d = err.diagnosis();
    assert!(
        matches!(
            d.problem(),
            Problem::SignInExpired | Problem::SignInRequired
        ),
        "{:?}: {}",
        d.problem(),
        d.explain()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_token_request() {
    let sb = tenant().await;
    let provider = daemon(&sb, SECRET);
    let before = token_requests(&sb);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let p = provider.clone();
        set.spawn(async move { p.access_token().await.map(|t| t.secret().to_owned()) });
    }
    let mut tokens = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        tokens.insert(r.unwrap().unwrap());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(token_requests(&sb) - before, 1);
}

/// Client credentials with a certificate: the sandbox verifies the assertion's signature
/// against the certificate registered on the app, in both of Microsoft's forms.
#[tokio::test]
async fn certificate_credentials_sign_in_with_ps256_and_rs256_and_an_unregistered_cert_is_refused()
{
    let sb = tenant().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = std::fs::read(dir.join("test-cert.pem")).unwrap();
    let key = std::fs::read(dir.join("test-key-pkcs8.pem")).unwrap();
    let with = |alg| {
        let credential = msauth::CertificateCredential::from_pem(&cert, &key)
            .unwrap()
            .with_algorithm(alg);
        TokenProvider::builder(authority(&sb), APP)
            .credential(ClientCredential::Certificate(credential))
            .scopes([GRAPH])
            .build()
            .unwrap()
    };
    // Not registered yet: refused with a certificate diagnosis.
    let err = with(msauth::AssertionAlgorithm::default())
        .access_token()
        .await
        .unwrap_err();
    assert!(
        matches!(err.diagnosis().problem(), Problem::CertificateRejected),
        "{:?}: {}",
        err.diagnosis().problem(),
        err.diagnosis().explain()
    );
    sb.admin().update_tenant(|t| {
        if let Some(app) = t.apps.iter_mut().find(|a| a.client_id == APP) {
            app.certificates
                .push(sandbox::tenant::AppCertificate::from_pem(
                    String::from_utf8(cert.clone()).unwrap(),
                ));
        }
    });
    for alg in [
        msauth::AssertionAlgorithm::default(),
        msauth::AssertionAlgorithm::Rs256,
    ] {
        let token = with(alg)
            .access_token()
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {}", e.diagnosis().explain()));
        assert_eq!(graph_status(&sb, token.secret()).await, 200, "{alg:?}");
    }
}

/// Client credentials with a certificate from PKCS#12 files (modern AES-256 and legacy 3DES/RC2
/// exports): the sandbox verifies the assertions against the PEM certificate registered on the
/// app, so the key in the `.pfx` is the registered certificate's key.
#[tokio::test]
async fn certificate_credentials_from_pkcs12_files_sign_in() {
    let sb = tenant().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = std::fs::read(dir.join("test-cert.pem")).unwrap();
    sb.admin().update_tenant(|t| {
        if let Some(app) = t.apps.iter_mut().find(|a| a.client_id == APP) {
            app.certificates
                .push(sandbox::tenant::AppCertificate::from_pem(
                    String::from_utf8(cert.clone()).unwrap(),
                ));
        }
    });
    for (file, alg) in [
        ("modern.pfx", msauth::AssertionAlgorithm::Ps256),
        ("legacy.pfx", msauth::AssertionAlgorithm::Ps256),
        ("tdes.pfx", msauth::AssertionAlgorithm::Rs256),
    ] {
        let pfx = std::fs::read(dir.join("pkcs12").join(file)).unwrap();
        let credential = msauth::CertificateCredential::from_pkcs12(
            &pfx,
            &msauth::Pkcs12Password::new("correct-horse"),
        )
        .unwrap()
        .with_algorithm(alg);
        let provider = TokenProvider::builder(authority(&sb), APP)
            .credential(ClientCredential::Certificate(credential))
            .scopes([GRAPH])
            .build()
            .unwrap();
        let token = provider
            .access_token()
            .await
            .unwrap_or_else(|e| panic!("{file}: {}", e.diagnosis().explain()));
        assert_eq!(graph_status(&sb, token.secret()).await, 200, "{file}");
    }
}
