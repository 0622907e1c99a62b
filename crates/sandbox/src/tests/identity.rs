//! Identity flows whose tokens are then checked by `auth::authenticate` itself: which resource
//! accepts them, as whom, and why one is refused (moved from `tests/it/identity.rs`).

use serde_json::Value;

use super::common::*;
use crate::auth::{AuthFailureReason, PrincipalKind, Resource, authenticate};

#[tokio::test]
async fn client_credentials_with_secret() {
    let sb = start().await;
    let (s, v) = client_credentials(
        &sb.token_url(TENANT_ID),
        DEMO_APP,
        DEMO_SECRET,
        GRAPH_DEFAULT,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert!(
        v.get("refresh_token").is_none() && v.get("scope").is_none(),
        "{v}"
    );
    let at = v["access_token"].as_str().unwrap();
    let c = claims(at);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["tid"], TENANT_ID);
    assert_eq!(c["appid"], DEMO_APP);
    let roles: Vec<&str> = c["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"Mail.ReadWrite") && roles.contains(&"Mail.Send"),
        "{roles:?}"
    );
    assert!(
        !roles.contains(&"full_access_as_app"),
        "Exchange role must not be in a Graph token"
    );
    let p = authenticate(sb.state(), &bearer(at), Resource::Graph).expect("accepted by Graph");
    assert!(matches!(p.kind, PrincipalKind::App { .. }));
    assert!(p.may_read("billing@contoso.example").is_ok());
    let e = authenticate(sb.state(), &bearer(at), Resource::Ews).unwrap_err();
    assert_eq!(e.reason, AuthFailureReason::WrongAudience);
    assert!(
        e.www_authenticate.starts_with("Bearer ")
            && e.www_authenticate.contains("error=\"invalid_token\"")
    );
    // HTTP Basic client authentication works too.
    let resp = client()
        .post(sb.token_url(TENANT))
        .basic_auth(DEMO_APP, Some(DEMO_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://outlook.office365.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let c = claims(v["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "https://outlook.office365.com");
    assert_eq!(c["roles"][0], "full_access_as_app");
}

#[tokio::test]
async fn app_token_without_consent_is_refused_by_resources_until_admin_consents() {
    let sb = start().await;
    let admin = sb.admin();
    let mut app = public_app("22222222-0000-0000-0000-000000000001", &[]);
    app.allow_public_client_flows = false;
    app.application_permissions = vec![crate::tenant::Permission::parse("Mail.Read").unwrap()];
    admin.add_app(app).unwrap();
    admin
        .add_secret("22222222-0000-0000-0000-000000000001", "s3cret-value", None)
        .unwrap();
    let get = || async {
        let (s, v) = client_credentials(
            &sb.token_url(TENANT),
            "22222222-0000-0000-0000-000000000001",
            "s3cret-value",
            GRAPH_DEFAULT,
        )
        .await;
        assert_eq!(s, 200);
        v["access_token"].as_str().unwrap().to_string()
    };
    let t1 = get().await;
    assert!(claims(&t1)["roles"].as_array().unwrap().is_empty());
    let e = authenticate(sb.state(), &bearer(&t1), Resource::Graph).unwrap_err();
    assert_eq!(e.reason, AuthFailureReason::ConsentMissing);
    assert!(e.description.contains("AADSTS65001"), "{}", e.description);
    admin
        .grant_admin_consent("22222222-0000-0000-0000-000000000001", &[], &["Mail.Read"])
        .unwrap();
    let t2 = get().await;
    let p = authenticate(sb.state(), &bearer(&t2), Resource::Graph).expect("consented now");
    assert!(p.has_any(&["Mail.Read"]));
    assert!(
        p.may_write("helpdesk@contoso.example").is_err(),
        "Mail.Read does not allow writes"
    );
    // Consent withdrawn mid-run: the live token stops working.
    admin
        .revoke_admin_consent("22222222-0000-0000-0000-000000000001")
        .unwrap();
    let e = authenticate(sb.state(), &bearer(&t2), Resource::Graph).unwrap_err();
    assert_eq!(e.reason, AuthFailureReason::ConsentMissing);
}

#[tokio::test]
async fn auth_code_with_pkce_and_refresh_rotation() {
    let sb = start().await;
    let scope = "openid offline_access https://graph.microsoft.com/Mail.ReadWrite";
    let (s, v) = sign_in(&sb, DEMO_APP, scope, "adele.vance@contoso.example").await;
    assert_eq!(s, 200, "{v}");
    let at = v["access_token"].as_str().unwrap();
    let c = claims(at);
    assert_eq!(c["scp"], "Mail.ReadWrite");
    assert_eq!(c["upn"], "adele.vance@contoso.example");
    assert!(v["id_token"].is_string());
    assert!(
        v["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "Mail.ReadWrite")
    );
    let p = authenticate(sb.state(), &bearer(at), Resource::Graph).unwrap();
    assert_eq!(p.user(), Some("adele.vance@contoso.example"));
    assert!(p.may_write("adele.vance@contoso.example").is_ok());
    assert_eq!(
        p.may_read("helpdesk@contoso.example")
            .unwrap_err()
            .http_status(),
        403
    );
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let url = sb.token_url(TENANT);
        async move {
            let mut form = vec![
                ("client_id", DEMO_APP.to_string()),
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt),
            ];
            if let Some(s) = scope {
                form.push(("scope", s.into()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&url, &form).await
        }
    };
    let (s, v) = refresh(rt1.clone(), None).await;
    assert_eq!(s, 200, "{v}");
    let rt2 = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "refresh tokens rotate");
    // The old one is not revoked by default (as in Entra).
    let (s, _) = refresh(rt1.clone(), None).await;
    assert_eq!(s, 200);
    // One refresh token can mint for Exchange too, as long as consent exists.
    let (s, v) = refresh(
        rt2.clone(),
        Some("https://outlook.office365.com/EWS.AccessAsUser.All"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["aud"],
        "https://outlook.office365.com"
    );
    // Scope never consented → 65001.
    let (s, v) = refresh(
        rt2.clone(),
        Some("https://graph.microsoft.com/Mail.Read.Shared"),
    )
    .await;
    assert_aad(s, &v, 400, "invalid_grant", 65001);
    assert_eq!(v["suberror"], "consent_required");
    // Rotation with revocation on.
    sb.admin()
        .update_identity(|i| i.revoke_rotated_refresh_tokens = true);
    let (s, v) = refresh(rt2.clone(), None).await;
    assert_eq!(s, 200);
    let rt3 = v["refresh_token"].as_str().unwrap().to_string();
    let (s, v) = refresh(rt2, None).await;
    assert_aad(s, &v, 400, "invalid_grant", 70008);
    // Admin revocation.
    assert!(
        sb.admin()
            .revoke_refresh_tokens(Some("adele.vance@contoso.example"))
            .unwrap()
            >= 1
    );
    let (s, v) = refresh(rt3, None).await;
    assert_aad(s, &v, 400, "invalid_grant", 70008);
    // Inactivity expiry.
    let (_, v) = sign_in(&sb, DEMO_APP, scope, "adele.vance@contoso.example").await;
    let rt4 = v["refresh_token"].as_str().unwrap().to_string();
    sb.admin().advance_clock(91 * 24 * 3600);
    let (s, v) = refresh(rt4, None).await;
    assert_aad(s, &v, 400, "invalid_grant", 700082);
    let (s, v) = refresh("garbage".into(), None).await;
    assert_aad(s, &v, 400, "invalid_grant", 9002313);
}

#[tokio::test]
async fn ews_with_user_consent_only_is_refused_until_admin_consents() {
    let sb = start().await;
    let app = "55555555-0000-0000-0000-000000000004";
    sb.admin()
        .add_app(public_app(
            app,
            &["https://outlook.office365.com/EWS.AccessAsUser.All"],
        ))
        .unwrap();
    let (s, v) = sign_in(
        &sb,
        app,
        "https://outlook.office365.com/EWS.AccessAsUser.All",
        "adele.vance@contoso.example",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let at = v["access_token"].as_str().unwrap();
    let e = authenticate(sb.state(), &bearer(at), Resource::Ews).unwrap_err();
    assert_eq!(e.reason, AuthFailureReason::ConsentMissing);
    assert!(
        e.www_authenticate
            .contains("00000002-0000-0ff1-ce00-000000000000")
    );
    sb.admin()
        .grant_admin_consent(
            app,
            &["https://outlook.office365.com/EWS.AccessAsUser.All"],
            &[],
        )
        .unwrap();
    let p =
        authenticate(sb.state(), &bearer(at), Resource::Ews).expect("admin consent present now");
    assert!(p.may_read("adele.vance@contoso.example").is_ok());
    assert!(
        p.may_read("projects@contoso.example").is_ok(),
        "FullAccess on the shared mailbox"
    );
    assert!(p.may_read("helpdesk@contoso.example").is_err());
}

/// The race the chaos run found: a token request that arrived before "expire access tokens"
/// but is answered after it must not hand out a token that outlives the expiry. A slow-response
/// fault holds the request after it arrived; the expiry happens while it waits. Its token is
/// already expired; a request that arrives after the expiry gets a valid one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_request_in_flight_across_an_expiry_gets_an_expired_token() {
    let sb = start().await;
    sb.admin().set_faults(
        crate::FaultPlan::new([crate::FaultRule::next(
            crate::Protocol::Token,
            1,
            crate::FaultKind::Slow { millis: 1_500 },
        )])
        .with_seed(1),
    );
    let url = sb.token_url(TENANT);
    let form = [
        ("client_id", DEMO_APP),
        ("client_secret", DEMO_SECRET),
        ("grant_type", "client_credentials"),
        ("scope", GRAPH_DEFAULT),
    ];
    let held = tokio::spawn({
        let url = url.clone();
        async move { post_form(&url, &form).await }
    });
    // Wait until the held request has been admitted (the fault fired), then expire.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sb.admin().faults_fired() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow fault never fired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sb.admin().expire_access_tokens();
    let (status, v) = held.await.unwrap();
    assert_eq!(status, 200, "{v}");
    let stale = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        authenticate(sb.state(), &bearer(&stale), Resource::Graph)
            .unwrap_err()
            .reason,
        AuthFailureReason::Expired,
        "a token from a request that arrived before the expiry dies with it"
    );
    let (status, v) = post_form(&url, &form).await;
    assert_eq!(status, 200, "{v}");
    let fresh = v["access_token"].as_str().unwrap();
    assert!(authenticate(sb.state(), &bearer(fresh), Resource::Graph).is_ok());
}

#[tokio::test]
async fn token_lifetime_and_forced_expiry() {
    let sb = start().await;
    sb.admin()
        .update_identity(|i| i.access_token_lifetime_secs = 60);
    let get = || async {
        client_credentials(&sb.token_url(TENANT), DEMO_APP, DEMO_SECRET, GRAPH_DEFAULT)
            .await
            .1
    };
    let v = get().await;
    assert_eq!(v["expires_in"], 60);
    let at = v["access_token"].as_str().unwrap().to_string();
    assert!(authenticate(sb.state(), &bearer(&at), Resource::Graph).is_ok());
    sb.admin().advance_clock(61);
    let refusal = |at: &str| {
        authenticate(sb.state(), &bearer(at), Resource::Graph)
            .err()
            .map(|e| e.reason)
    };
    assert_eq!(refusal(&at), Some(AuthFailureReason::Expired));
    let at2 = get().await["access_token"].as_str().unwrap().to_string();
    assert!(authenticate(sb.state(), &bearer(&at2), Resource::Graph).is_ok());
    sb.admin().expire_access_tokens();
    assert_eq!(refusal(&at2), Some(AuthFailureReason::Expired));
    // A token fetched right after the expiry (the sandbox clock has not moved, so it is the
    // same second) is valid: only tokens issued before the expiry die. The chaos run's handler
    // stalled OFFLINE when a whole-second cut-off also killed the refreshed token.
    let at3 = get().await["access_token"].as_str().unwrap().to_string();
    assert!(authenticate(sb.state(), &bearer(&at3), Resource::Graph).is_ok());
    sb.admin().expire_access_tokens();
    assert!(authenticate(sb.state(), &bearer(&at3), Resource::Graph).is_err());
    let at4 = get().await["access_token"].as_str().unwrap().to_string();
    assert!(authenticate(sb.state(), &bearer(&at4), Resource::Graph).is_ok());
    // Missing, malformed and forged tokens.
    let none = http::HeaderMap::new();
    assert_eq!(
        authenticate(sb.state(), &none, Resource::Graph)
            .unwrap_err()
            .reason,
        AuthFailureReason::MissingToken
    );
    assert_eq!(
        authenticate(sb.state(), &bearer("abc"), Resource::Graph)
            .unwrap_err()
            .reason,
        AuthFailureReason::Malformed
    );
    let mut parts: Vec<String> = at2.split('.').map(str::to_string).collect();
    parts[1] = b64url(br#"{"aud":"https://graph.microsoft.com"}"#);
    assert_eq!(
        authenticate(sb.state(), &bearer(&parts.join(".")), Resource::Graph)
            .unwrap_err()
            .reason,
        AuthFailureReason::InvalidSignature
    );
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_errors() {
    let sb = start().await;
    let dbg = format!("{:?} {:?}", sb.admin().tenant(), sb);
    assert!(!dbg.contains(DEMO_SECRET), "secret leaked in Debug");
    let (_, v) = sign_in(
        &sb,
        DEMO_APP,
        "offline_access Mail.ReadWrite",
        "adele.vance@contoso.example",
    )
    .await;
    let rt = v["refresh_token"].as_str().unwrap();
    let at = v["access_token"].as_str().unwrap();
    let p = authenticate(sb.state(), &bearer(at), Resource::Graph).unwrap();
    let dbg = format!("{p:?} {:?}", sb.state());
    assert!(!dbg.contains(at) && !dbg.contains(rt));
    let e = authenticate(sb.state(), &bearer(&format!("{at}x")), Resource::Graph).unwrap_err();
    assert!(!format!("{e:?}").contains(&at[..40]));
    let tenant_json = client()
        .get(format!("{}/_sandbox/tenant", sb.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!tenant_json.contains(DEMO_SECRET) && tenant_json.contains("<redacted>"));
}
