//! TokenProvider against an in-test identity server: single-flight, skew, rotation, dead refresh
//! tokens, claims, app-only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msauth::*;

use crate::support::{Handler, Reply, Server, field, t0};

/// A server that rotates refresh tokens strictly: only the newest one is accepted.
fn rotating_server(state: Arc<Mutex<u32>>, delay: Option<Duration>) -> Handler {
    Arc::new(move |seen| {
        let mut n = state.lock().unwrap();
        match field(&seen.body, "grant_type").as_deref() {
            Some("refresh_token") => {
                if field(&seen.body, "refresh_token") != Some(format!("rt-{}", *n)) {
                    return Reply::json(
                        400,
                        r#"{"error":"invalid_grant","error_codes":[70008],"trace_id":"t","correlation_id":"c"}"#,
                    );
                }
                *n += 1;
                let mut r = Reply::json(
                    200,
                    format!(
                        r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"at-{n}","refresh_token":"rt-{n}","scope":"Mail.Read"}}"#,
                        n = *n
                    ),
                );
                r.delay = delay;
                r
            }
            Some("client_credentials") => {
                *n += 1;
                let mut r = Reply::json(
                    200,
                    format!(
                        r#"{{"token_type":"Bearer","expires_in":"3599","access_token":"app-{n}"}}"#,
                        n = *n
                    ),
                );
                r.delay = delay;
                r
            }
            _ => Reply::json(400, r#"{"error":"unsupported_grant_type"}"#),
        }
    })
}

/// Saves `body`, a token endpoint's JSON answer received at [`t0`], as `p`'s sign-in (as an
/// interactive sign-in would).
async fn save_sign_in(p: &TokenProvider, body: &str) {
    let r = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.as_bytes())
        .unwrap();
    p.save_sign_in(&parse_token_response(r, t0(), None).unwrap())
        .await
        .unwrap();
}

/// `p` has no usable sign-in: its caller is asked to sign in (and shown what it got otherwise).
async fn assert_sign_in_required(p: &TokenProvider) {
    let got = p.access_token().await;
    assert!(
        matches!(got, Err(AuthError::SignInRequired(_))),
        "{:?}",
        got.err()
    );
}

/// A public client of `account` with `scopes` whose sign-ins live in `store`, shared with other
/// providers.
fn sharing(
    server: &Server,
    scopes: &[&str],
    account: &str,
    store: &Arc<dyn TokenStore>,
) -> TokenProvider {
    TokenProvider::builder(server.authority(), "app")
        .scopes(scopes.iter().copied())
        .account(account)
        .store(store.clone())
        .build()
        .unwrap()
}

async fn delegated(
    server: &Server,
    clock: &ManualClock,
    store: Arc<dyn TokenStore>,
) -> TokenProvider {
    let p = TokenProvider::builder(server.authority(), "app")
        .scopes(["offline_access", "Mail.Read"])
        .account("alice@contoso.com")
        .clock(Arc::new(clock.clone()))
        .store(store)
        .http(Arc::new(ReqwestClient::new().unwrap()))
        .build()
        .unwrap();
    // Seed as an interactive sign-in would: an already-expired access token and rt-0.
    save_sign_in(
        &p,
        r#"{"access_token":"expired","expires_in":0,"refresh_token":"rt-0"}"#,
    )
    .await;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_callers_cause_one_refresh() {
    let state = Arc::new(Mutex::new(0));
    let server = Server::start(rotating_server(
        state.clone(),
        Some(Duration::from_millis(50)),
    ))
    .await;
    let clock = ManualClock::new(t0());
    let p = delegated(&server, &clock, Arc::new(MemoryStore::new())).await;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move { p.access_token().await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().secret(), "at-1");
    }
    assert_eq!(server.count("/token"), 1);
    assert_eq!(*state.lock().unwrap(), 1);
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_and_rotates() {
    let state = Arc::new(Mutex::new(0));
    let server = Server::start(rotating_server(state.clone(), None)).await;
    let clock = ManualClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let p = delegated(&server, &clock, store.clone()).await;
    assert_eq!(p.access_token().await.unwrap().secret(), "at-1");
    // Within the token's life minus skew: cached, no request.
    clock.advance(Duration::from_secs(3600 - 301));
    assert_eq!(p.access_token().await.unwrap().secret(), "at-1");
    assert_eq!(server.count("/token"), 1);
    // Inside the 5-minute skew: refreshed with the rotated token.
    clock.advance(Duration::from_secs(2));
    assert_eq!(p.access_token().await.unwrap().secret(), "at-2");
    assert_eq!(server.count("/token"), 2);
    let saved = store.load(p.cache_key()).unwrap().unwrap();
    assert_eq!(saved.refresh_token, Some(RefreshToken::new("rt-2")));
    assert_eq!(
        saved.expires_at(),
        t0() + Duration::from_secs(3600 - 301 + 2 + 3600)
    );
    // Claims force a refresh and are sent.
    assert_eq!(
        p.refresh_with_claims(r#"{"access_token":{"nbf":{"essential":true}}}"#)
            .await
            .unwrap()
            .secret(),
        "at-3"
    );
    let last = server.seen.lock().unwrap().last().unwrap().body.clone();
    assert_eq!(
        field(&last, "claims").as_deref(),
        Some(r#"{"access_token":{"nbf":{"essential":true}}}"#)
    );
    assert_eq!(field(&last, "refresh_token").as_deref(), Some("rt-2"));
}

#[tokio::test]
async fn dead_refresh_token_is_dropped_and_sign_in_is_asked_for() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = Server::start(Arc::new(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Reply::json(400, r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}"#)
    }))
    .await;
    let clock = ManualClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let p = delegated(&server, &clock, store.clone()).await;
    let e = p.access_token().await.unwrap_err();
    assert_eq!(e.diagnosis().code(), Some(700082));
    assert_eq!(e.diagnosis().action(), Action::SignIn);
    assert!(store.load(p.cache_key()).unwrap().is_none());
    // No second hopeless request.
    let e = p.access_token().await.unwrap_err();
    assert!(matches!(e, AuthError::SignInRequired(_)), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn transient_failure_keeps_the_refresh_token() {
    let server = Server::start(Arc::new(|_| {
        let mut r = Reply::json(503, "");
        r.headers = vec![("retry-after", "3".into())];
        r
    }))
    .await;
    let clock = ManualClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let p = delegated(&server, &clock, store.clone()).await;
    let e = p.access_token().await.unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(e.diagnosis().retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(
        store.load(p.cache_key()).unwrap().unwrap().refresh_token,
        Some(RefreshToken::new("rt-0"))
    );
}

#[tokio::test]
async fn app_only_uses_client_credentials_and_consent_url_in_diagnoses() {
    let state = Arc::new(Mutex::new(0));
    let server = Server::start(rotating_server(state, None)).await;
    let clock = ManualClock::new(t0());
    let p = TokenProvider::builder(server.authority(), "app")
        .credential(ClientCredential::Secret(ClientSecret::new("sv")))
        .scopes(["https://graph.microsoft.com/.default"])
        .clock(Arc::new(clock.clone()))
        .consent_redirect(url::Url::parse("https://app.example/consented").unwrap())
        .build()
        .unwrap();
    assert_eq!(p.access_token().await.unwrap().secret(), "app-1");
    assert_eq!(p.access_token().await.unwrap().secret(), "app-1");
    let body = server.seen.lock().unwrap()[0].body.clone();
    assert_eq!(
        body,
        "client_id=app&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=sv"
    );
    let url = p.admin_consent_url().unwrap();
    assert_eq!(
        url.as_str(),
        format!(
            "{}/adminconsent?client_id=app&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=https%3A%2F%2Fapp.example%2Fconsented",
            server.base
        )
    );
    let c = p.diagnose_resource_challenge(
        http::StatusCode::FORBIDDEN,
        &http::HeaderMap::new(),
        br#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#,
    );
    assert_eq!(c.diagnosis().consent_url(), Some(&url));
}

#[tokio::test]
async fn consent_errors_from_the_token_endpoint_carry_the_consent_url() {
    let server = Server::start(Arc::new(|_| {
        Reply::json(400, r#"{"error":"invalid_grant","error_codes":[65001]}"#)
    }))
    .await;
    let p = TokenProvider::builder(server.authority(), "app")
        .credential(ClientCredential::Secret(ClientSecret::new("sv")))
        .scopes(["https://graph.microsoft.com/.default"])
        // The consent URL needs the redirect URI registered on the app (the endpoint requires
        // it); without one there is no URL to give: tests/it/fidelity.rs.
        .consent_redirect(url::Url::parse("https://app.example/consented").unwrap())
        .build()
        .unwrap();
    let d = p.access_token().await.unwrap_err().diagnosis();
    assert_eq!(d.problem(), Problem::ConsentRequired);
    assert!(
        d.consent_url()
            .unwrap()
            .as_str()
            .starts_with(&format!("{}/adminconsent?client_id=app", server.base))
    );
}

#[tokio::test]
async fn public_client_without_sign_in_needs_sign_in_and_no_scope_is_a_config_error() {
    let server = Server::start(Arc::new(|_| Reply::json(500, "{}"))).await;
    let p = TokenProvider::builder(server.authority(), "app")
        .scopes(["Mail.Read"])
        .build()
        .unwrap();
    assert_sign_in_required(&p).await;
    assert_eq!(server.count("/token"), 0);
    assert!(matches!(
        TokenProvider::builder(server.authority(), "app").build(),
        Err(AuthError::Config(_))
    ));
}

#[tokio::test]
async fn executor_refuses_redirects_and_oversized_bodies_and_reports_connect_errors() {
    let server = Server::start(Arc::new(|seen| match seen.path.as_str() {
        "/token" => {
            let mut r = Reply::json(302, "");
            r.headers = vec![("location", "http://127.0.0.1:1/elsewhere".into())];
            r
        }
        _ => Reply::json(200, " ".repeat(MAX_BODY + 10)),
    }))
    .await;
    let client = AuthClient::with_http(
        server.authority(),
        "app",
        ClientCredential::Secret(ClientSecret::new("s")),
        Arc::new(ReqwestClient::new().unwrap()),
    );
    let e = client
        .client_credentials(&["x/.default"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::BadResponse {
                problem: ResponseProblem::Redirect,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(server.count("/elsewhere"), 0);

    let big = ReqwestClient::new().unwrap();
    let req = http::Request::get(format!("{}/big", server.base))
        .body(Vec::new())
        .unwrap();
    let e = big.execute(req).await.unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::BadResponse {
                problem: ResponseProblem::TooLarge(_),
                ..
            }
        ),
        "{e:?}"
    );

    // Nothing listens on the port of a dropped listener.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = AuthClient::with_http(
        crate::support::authority_at(&format!("http://127.0.0.1:{port}")),
        "app",
        ClientCredential::Secret(ClientSecret::new("s")),
        Arc::new(ReqwestClient::new().unwrap()),
    );
    let e = dead.client_credentials(&["x/.default"]).await.unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Transport {
                stage: SendStage::NotSent,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn device_code_end_to_end_through_the_executor() {
    let polls = Arc::new(AtomicUsize::new(0));
    let p2 = polls.clone();
    let server = Server::start(Arc::new(move |seen| match seen.path.as_str() {
        "/devicecode" => Reply::json(200, r#"{"device_code":"dc","user_code":"U","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":0}"#),
        "/token" if p2.fetch_add(1, Ordering::SeqCst) < 2 => Reply::json(400, r#"{"error":"authorization_pending","error_codes":[70016]}"#),
        "/token" => Reply::json(200, r#"{"token_type":"Bearer","expires_in":3600,"access_token":"at","refresh_token":"rt"}"#),
        _ => Reply::json(404, r#"{"error":"not_found"}"#),
    }))
    .await;
    let client = AuthClient::with_http(
        server.authority(),
        "app",
        ClientCredential::None,
        Arc::new(ReqwestClient::new().unwrap()),
    );
    let mut flow = client
        .start_device_code(&["offline_access", "Mail.Read"])
        .await
        .unwrap();
    assert_eq!(flow.user_code(), "U");
    let token = client.finish_device_code(&mut flow).await.unwrap();
    assert_eq!(token.refresh_token, Some(RefreshToken::new("rt")));
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn discovery_over_http_then_a_token() {
    let base = Arc::new(Mutex::new(String::new()));
    let b2 = base.clone();
    let server = Server::start(Arc::new(move |seen| {
        let base = b2.lock().unwrap().clone();
        match seen.path.as_str() {
            "/tenant/v2.0/.well-known/openid-configuration" => Reply::json(
                200,
                serde_json::json!({
                    "issuer": format!("{base}/tenant/v2.0"),
                    "authorization_endpoint": format!("{base}/tenant/oauth2/v2.0/authorize"),
                    "token_endpoint": format!("{base}/tenant/oauth2/v2.0/token"),
                    "device_authorization_endpoint": format!("{base}/tenant/oauth2/v2.0/devicecode"),
                })
                .to_string(),
            ),
            "/tenant/oauth2/v2.0/token" => Reply::json(200, r#"{"access_token":"via-discovery","expires_in":3600}"#),
            "/insecure/.well-known/openid-configuration" => Reply::json(200, r#"{"authorization_endpoint":"http://idp.example/a","token_endpoint":"https://idp.example/t"}"#),
            _ => Reply::json(404, r#"{"error":"not_found"}"#),
        }
    }))
    .await;
    *base.lock().unwrap() = server.base.clone();
    let http = ReqwestClient::new().unwrap();
    let a = discover(&http, &format!("{}/tenant/v2.0", server.base))
        .await
        .unwrap();
    assert_eq!(
        a.device_endpoint().unwrap().as_str(),
        format!("{}/tenant/oauth2/v2.0/devicecode", server.base)
    );
    let client = AuthClient::with_http(
        a,
        "app",
        ClientCredential::Secret(ClientSecret::new("s")),
        Arc::new(http.clone()),
    );
    assert_eq!(
        client
            .client_credentials(&["api://x/.default"])
            .await
            .unwrap()
            .access_token
            .secret(),
        "via-discovery"
    );
    let e = discover(&http, &format!("{}/insecure", server.base))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AuthError::Authority(AuthorityError::InsecureEndpoint(_))),
        "{e:?}"
    );
    let e = discover(&http, &format!("{}/missing", server.base))
        .await
        .unwrap_err();
    assert!(e.service_error().is_some(), "{e:?}");
    assert!(matches!(
        discover(&http, "http://idp.example/").await,
        Err(AuthError::Authority(AuthorityError::InsecureEndpoint(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_forced_refreshes_share_one_request_and_capabilities_are_declared() {
    let state = Arc::new(Mutex::new(0));
    let server = Server::start(rotating_server(
        state.clone(),
        Some(Duration::from_millis(30)),
    ))
    .await;
    let clock = ManualClock::new(t0());
    let p = TokenProvider::builder(server.authority(), "app")
        .scopes(["offline_access", "Mail.Read"])
        .account("alice@contoso.com")
        .clock(Arc::new(clock.clone()))
        .client_capabilities(["cp1"])
        .build()
        .unwrap();
    save_sign_in(
        &p,
        r#"{"access_token":"a0","expires_in":3600,"refresh_token":"rt-0"}"#,
    )
    .await;
    // 100 callers all saw a 401 carrying the same claims challenge.
    let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let p = p.clone();
        tasks.push(tokio::spawn(
            async move { p.refresh_with_claims(claims).await },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().secret(), "at-1");
    }
    assert_eq!(server.count("/token"), 1);
    let body = server.seen.lock().unwrap()[0].body.clone();
    assert_eq!(
        field(&body, "claims").as_deref(),
        Some(
            r#"{"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["cp1"]}}}"#
        )
    );
    // Plain refreshes also declare the capability; a forced refresh after the shared one asks again.
    assert_eq!(p.force_refresh().await.unwrap().secret(), "at-2");
    let body = server.seen.lock().unwrap()[1].body.clone();
    assert_eq!(
        field(&body, "claims").as_deref(),
        Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)
    );
    // A claims request that is not JSON is refused before anything is sent.
    assert!(matches!(
        p.refresh_with_claims("not json").await,
        Err(AuthError::Config(_))
    ));
    assert_eq!(server.count("/token"), 2);
}

#[tokio::test]
async fn browser_sign_in_end_to_end_into_the_provider() {
    let server = Server::start(Arc::new(|seen| {
        assert_eq!(field(&seen.body, "grant_type").as_deref(), Some("authorization_code"));
        assert_eq!(field(&seen.body, "code").as_deref(), Some("the-code"));
        assert!(field(&seen.body, "code_verifier").unwrap().len() >= 43);
        Reply::json(200, r#"{"token_type":"Bearer","access_token":"user-at","expires_in":3600,"refresh_token":"user-rt","scope":"Mail.Read"}"#)
    }))
    .await;
    let listener = LoopbackListener::bind("/").await.unwrap();
    let redirect = listener.redirect_uri().clone();
    let (url, pending) =
        AuthorizationRequest::new("app", redirect.clone(), ["offline_access", "Mail.Read"])
            .build(&server.authority());
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(state, pending.state());
    let wait = {
        let pending = pending.clone();
        tokio::spawn(async move {
            listener
                .wait_for_code(&pending, Duration::from_secs(30))
                .await
        })
    };
    // The "browser" follows the redirect.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", redirect.port().unwrap()))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    s.write_all(
        format!("GET /?code=the-code&state={state} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).await.unwrap();
    assert!(page.contains("Signed in"));
    let code = wait.await.unwrap().unwrap();
    let client = AuthClient::with_http(
        server.authority(),
        "app",
        ClientCredential::None,
        Arc::new(ReqwestClient::new().unwrap()),
    );
    let token = client.redeem_code(&pending, code).await.unwrap();
    let p = TokenProvider::builder(server.authority(), "app")
        .scopes(["offline_access", "Mail.Read"])
        .account("bob")
        .build()
        .unwrap();
    p.save_sign_in(&token).await.unwrap();
    assert_eq!(p.access_token().await.unwrap().secret(), "user-at");
    assert_eq!(server.count("/token"), 1);
}

#[tokio::test]
async fn device_code_sign_in_through_the_provider_on_a_microsoft_layout_host() {
    let server = Server::start(Arc::new(|seen| match seen.path.as_str() {
        "/organizations/oauth2/v2.0/devicecode" => Reply::json(200, r#"{"device_code":"dc","user_code":"WXYZ","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":0,"message":"Go to ..."}"#),
        "/organizations/oauth2/v2.0/token" => Reply::json(200, r#"{"access_token":"dev-at","expires_in":3600,"refresh_token":"dev-rt"}"#),
        _ => Reply::json(404, r#"{"error":"not_found"}"#),
    }))
    .await;
    let a = Authority::microsoft_layout(&server.base, Tenant::Organizations).unwrap();
    assert_eq!(
        a.admin_consent_endpoint().unwrap().as_str(),
        format!("{}/organizations/v2.0/adminconsent", server.base)
    );
    assert!(Authority::microsoft_layout("http://example.com", Tenant::Organizations).is_err());
    let store = Arc::new(MemoryStore::new());
    let p = TokenProvider::builder(a, "app")
        .scopes(["offline_access", "Mail.Read"])
        .account("carol")
        .store(store.clone())
        .build()
        .unwrap();
    let mut shown = None;
    let at = p
        .sign_in_with_device_code(|flow| shown = Some(flow.user_code().to_owned()))
        .await
        .unwrap();
    assert_eq!(at.secret(), "dev-at");
    assert_eq!(shown.as_deref(), Some("WXYZ"));
    assert_eq!(
        store.load(p.cache_key()).unwrap().unwrap().refresh_token,
        Some(RefreshToken::new("dev-rt"))
    );
    assert_eq!(p.access_token().await.unwrap().secret(), "dev-at");
}

#[tokio::test]
async fn early_refresh_failing_transiently_keeps_serving_the_still_valid_token() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = fail.clone();
    let server = Server::start(Arc::new(move |_| {
        if f2.load(Ordering::SeqCst) {
            Reply::json(503, r#"{"error":"temporarily_unavailable"}"#)
        } else {
            Reply::json(
                200,
                r#"{"access_token":"new","expires_in":3600,"refresh_token":"rt-new"}"#,
            )
        }
    }))
    .await;
    let clock = ManualClock::new(t0());
    let p = TokenProvider::builder(server.authority(), "app")
        .scopes(["Mail.Read"])
        .account("a")
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    save_sign_in(
        &p,
        r#"{"access_token":"old","expires_in":3600,"refresh_token":"rt"}"#,
    )
    .await;
    // Inside the skew but not expired: the refresh fails, the old token is still served.
    clock.advance(Duration::from_secs(3600 - 60));
    assert_eq!(p.access_token().await.unwrap().secret(), "old");
    assert_eq!(server.count("/token"), 1);
    // Expired: the failure is reported.
    clock.advance(Duration::from_secs(61));
    assert!(p.access_token().await.unwrap_err().is_retryable());
    // Service back: new token.
    fail.store(false, Ordering::SeqCst);
    assert_eq!(p.access_token().await.unwrap().secret(), "new");
    // A forced refresh never falls back to the old token.
    fail.store(true, Ordering::SeqCst);
    assert!(p.force_refresh().await.is_err());
}

#[test]
fn mixing_default_with_other_scopes_is_caught_at_build_time() {
    let tenant =
        Authority::microsoft(Cloud::Global, Tenant::parse("contoso.com").unwrap()).unwrap();
    let secret = || ClientCredential::Secret(ClientSecret::new("s"));
    match TokenProvider::builder(tenant.clone(), "app")
        .credential(secret())
        .scopes(["https://graph.microsoft.com/.default", "Mail.Read"])
        .build()
    {
        Err(AuthError::Config(m)) => assert!(m.contains(".default"), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // The valid shapes build, OIDC scopes alongside .default included.
    TokenProvider::builder(tenant.clone(), "app")
        .credential(secret())
        .scopes(["https://graph.microsoft.com/.default"])
        .build()
        .unwrap();
    TokenProvider::builder(tenant.clone(), "app")
        .scopes([
            "openid",
            "offline_access",
            "https://outlook.office365.com/.default",
        ])
        .account("a")
        .build()
        .unwrap();
    TokenProvider::builder(tenant, "app")
        .credential(secret())
        .scopes(["offline_access", "Mail.Read", "Mail.Send"])
        .build()
        .unwrap();
}

#[tokio::test]
async fn confidential_client_with_delegated_scopes_asks_for_sign_in_instead_of_client_credentials()
{
    let server = Server::start(Arc::new(|_| {
        Reply::json(400, r#"{"error":"invalid_scope","error_codes":[70011]}"#)
    }))
    .await;
    let p = TokenProvider::builder(server.authority(), "app")
        .credential(ClientCredential::Secret(ClientSecret::new("s")))
        .scopes(["offline_access", "Mail.ReadWrite"])
        .build()
        .unwrap();
    assert_sign_in_required(&p).await;
    assert_eq!(server.count("/token"), 0);
}

#[tokio::test]
async fn one_sign_in_serves_graph_and_ews_through_a_shared_store() {
    let server = Server::start(Arc::new(|seen| {
        let scope = field(&seen.body, "scope").unwrap_or_default();
        let rt = field(&seen.body, "refresh_token").unwrap_or_default();
        Reply::json(200, format!(r#"{{"access_token":"at-for-{scope}-from-{rt}","expires_in":3600,"refresh_token":"rotated-{rt}"}}"#))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path().join("t.json")));
    let graph = sharing(&server, &["offline_access", "Mail.Read"], "alice", &store);
    let ews = sharing(
        &server,
        &[
            "offline_access",
            "https://outlook.office365.com/EWS.AccessAsUser.All",
        ],
        "alice",
        &store,
    );
    let other_user = sharing(&server, &["offline_access", "Mail.Read"], "bob", &store);
    save_sign_in(
        &graph,
        r#"{"access_token":"g0","expires_in":3600,"refresh_token":"rt-signin"}"#,
    )
    .await;
    // EWS had no sign-in of its own: it refreshes with Graph's refresh token for the EWS scope.
    let t = ews.access_token().await.unwrap();
    assert_eq!(
        t.secret(),
        "at-for-offline_access https://outlook.office365.com/EWS.AccessAsUser.All-from-rt-signin"
    );
    assert_eq!(
        store.load(ews.cache_key()).unwrap().unwrap().refresh_token,
        Some(RefreshToken::new("rotated-rt-signin"))
    );
    // Another account does not borrow alice's sign-in.
    assert_sign_in_required(&other_user).await;
    assert_eq!(server.count("/token"), 1);
}

#[tokio::test]
async fn a_dead_borrowed_refresh_token_is_dropped_everywhere() {
    let server = Server::start(Arc::new(|_| {
        Reply::json(400, r#"{"error":"invalid_grant","error_codes":[50173]}"#)
    }))
    .await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let graph = sharing(&server, &["Mail.Read"], "alice", &store);
    let ews = sharing(
        &server,
        &["https://outlook.office365.com/EWS.AccessAsUser.All"],
        "alice",
        &store,
    );
    save_sign_in(
        &graph,
        r#"{"access_token":"g0","expires_in":3600,"refresh_token":"revoked"}"#,
    )
    .await;
    assert_eq!(
        ews.access_token().await.unwrap_err().diagnosis().code(),
        Some(50173)
    );
    assert!(store.load(graph.cache_key()).unwrap().is_none());
    assert_sign_in_required(&ews).await;
    assert_eq!(server.count("/token"), 1);
}
