//! Every flow's request, byte for byte, and the state machines.

use std::time::Duration;

use msauth::*;
use url::Url;

use crate::support::{borrow, response, t0};

fn tenant_authority() -> Authority {
    Authority::microsoft(
        Cloud::Global,
        Tenant::parse("contoso.onmicrosoft.com").unwrap(),
    )
    .unwrap()
}

#[test]
fn client_credentials_with_secret_form_is_exact() {
    let req = TokenRequest::client_credentials(
        "11111111-2222-3333-4444-555555555555",
        ["https://graph.microsoft.com/.default"],
    )
    .to_http(
        &tenant_authority(),
        &ClientCredential::Secret(ClientSecret::new("a+b/c=d&e")),
        t0(),
    )
    .unwrap();
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(
        req.uri(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        req.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        "client_id=11111111-2222-3333-4444-555555555555&grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret=a%2Bb%2Fc%3Dd%26e"
    );
}

#[test]
fn client_credentials_need_a_confidential_client() {
    let err = TokenRequest::client_credentials("app", ["https://graph.microsoft.com/.default"])
        .to_http(&tenant_authority(), &ClientCredential::None, t0())
        .unwrap_err();
    assert!(matches!(err, AuthError::Config(_)), "{err:?}");
    assert_eq!(err.diagnosis().action(), Action::FixConfiguration);
}

#[test]
fn refresh_form_with_claims_is_exact() {
    let req = TokenRequest::refresh(
        "app",
        RefreshToken::new("RT-1"),
        [
            "offline_access",
            "https://outlook.office365.com/EWS.AccessAsUser.All",
        ],
    )
    .with_claims(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)
    .to_http(&tenant_authority(), &ClientCredential::None, t0())
    .unwrap();
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        "client_id=app&grant_type=refresh_token&refresh_token=RT-1&scope=offline_access+https%3A%2F%2Foutlook.office365.com%2FEWS.AccessAsUser.All&claims=%7B%22access_token%22%3A%7B%22xms_cc%22%3A%7B%22values%22%3A%5B%22cp1%22%5D%7D%7D%7D"
    );
}

#[test]
fn authorization_code_url_and_redemption_are_exact() {
    let redirect = Url::parse("http://localhost:8400/cb").unwrap();
    // RFC 7636 appendix B test vector.
    let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    let (url, pending) =
        AuthorizationRequest::new("app", redirect, ["offline_access", "Mail.Read"])
            .prompt("select_account")
            .build_with(&tenant_authority(), "st-1".into(), verifier)
            .unwrap();
    assert_eq!(
        url.as_str(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=app&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A8400%2Fcb&response_mode=query&scope=offline_access+Mail.Read&state=st-1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&prompt=select_account"
    );
    let req = pending
        .redeem("http://localhost:8400/cb?code=M.C-123&state=st-1&session_state=x")
        .unwrap();
    let http = req
        .to_http(&tenant_authority(), &ClientCredential::None, t0())
        .unwrap();
    assert_eq!(
        std::str::from_utf8(http.body()).unwrap(),
        "client_id=app&grant_type=authorization_code&code=M.C-123&redirect_uri=http%3A%2F%2Flocalhost%3A8400%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&scope=offline_access+Mail.Read"
    );
}

#[test]
fn random_state_and_verifier_differ_per_sign_in() {
    let r = AuthorizationRequest::new(
        "app",
        Url::parse("http://127.0.0.1:1/").unwrap(),
        ["Mail.Read"],
    );
    let (u1, p1) = r.build(&tenant_authority());
    let (u2, p2) = r.build(&tenant_authority());
    assert_ne!(p1.state(), p2.state());
    assert_ne!(u1, u2);
    assert!(p1.state().len() >= 16);
}

#[test]
fn redirect_parsing_checks_state_then_error_then_code() {
    let (_, p) = AuthorizationRequest::new(
        "app",
        Url::parse("http://127.0.0.1:1/").unwrap(),
        ["Mail.Read"],
    )
    .build_with(
        &tenant_authority(),
        "good".into(),
        PkceVerifier::new("v".repeat(43)),
    )
    .unwrap();
    // Invalid verifiers and empty states are refused, not panicked on.
    let r = AuthorizationRequest::new(
        "app",
        Url::parse("http://127.0.0.1:1/").unwrap(),
        ["Mail.Read"],
    );
    assert!(matches!(
        r.build_with(&tenant_authority(), "s".into(), PkceVerifier::new("short")),
        Err(AuthError::Config(_))
    ));
    assert!(matches!(
        r.build_with(
            &tenant_authority(),
            "s".into(),
            PkceVerifier::new("ü".repeat(50))
        ),
        Err(AuthError::Config(_))
    ));
    assert!(matches!(
        r.build_with(
            &tenant_authority(),
            "".into(),
            PkceVerifier::new("v".repeat(43))
        ),
        Err(AuthError::Config(_))
    ));
    // An error without this sign-in's state is not acted on (anyone can send one; security
    // #24): it is a state mismatch. With the right state it is the service's answer.
    assert_eq!(
        p.parse_redirect("http://127.0.0.1:1/?error=access_denied&error_description=AADSTS65004%3A+declined&state=evil"),
        Err(RedirectError::StateMismatch)
    );
    assert_eq!(
        p.parse_redirect("http://127.0.0.1:1/?error=access_denied"),
        Err(RedirectError::StateMismatch)
    );
    let e = p.parse_redirect("http://127.0.0.1:1/?error=access_denied&error_description=AADSTS65004%3A+declined&state=good").unwrap_err();
    assert_eq!(
        e,
        RedirectError::Denied {
            error: "access_denied".into(),
            description: Some("AADSTS65004: declined".into())
        }
    );
    assert_eq!(AuthError::from(e).diagnosis().code(), Some(65004));
    assert_eq!(
        p.parse_redirect("http://127.0.0.1:1/?code=c&state=evil"),
        Err(RedirectError::StateMismatch)
    );
    assert_eq!(
        p.parse_redirect("http://127.0.0.1:1/?code=c"),
        Err(RedirectError::StateMismatch)
    );
    assert_eq!(
        p.parse_redirect("?state=good"),
        Err(RedirectError::MissingCode)
    );
    // Pasted forms: full URL, ?query, bare query, fragment.
    assert_eq!(
        p.parse_redirect("  ?code=c1&state=good ").unwrap().secret(),
        "c1"
    );
    assert_eq!(
        p.parse_redirect("code=c2&state=good").unwrap().secret(),
        "c2"
    );
    assert_eq!(
        p.parse_redirect("https://app.example/cb#code=c3&state=good")
            .unwrap()
            .secret(),
        "c3"
    );
    assert!(matches!(
        p.parse_redirect("hello world"),
        Err(RedirectError::Unparsable(_))
    ));
    assert!(matches!(
        p.parse_redirect(""),
        Err(RedirectError::Unparsable(_))
    ));
}

#[test]
fn admin_consent_url_and_callback() {
    let a = Authority::microsoft(
        Cloud::UsGovernment,
        Tenant::parse("fa15d692-e9c7-4460-a743-29f2956fd429").unwrap(),
    )
    .unwrap();
    let url = admin_consent_url(
        &a,
        "app",
        &["https://graph.microsoft.com/.default"],
        Some(&Url::parse("http://localhost/myapp/permissions").unwrap()),
        Some("12"),
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "https://login.microsoftonline.us/fa15d692-e9c7-4460-a743-29f2956fd429/v2.0/adminconsent?client_id=app&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=http%3A%2F%2Flocalhost%2Fmyapp%2Fpermissions&state=12"
    );
    let common = Authority::microsoft(Cloud::Global, Tenant::Common).unwrap();
    assert!(matches!(
        admin_consent_url(&common, "app", &["x/.default"], None, None),
        Err(AuthorityError::ConsentTenant(_))
    ));

    // The recorded declined redirect carries admin_consent=True AND an error: error wins.
    let samples = crate::support::samples();
    let declined = samples["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "admin_consent_declined_redirect_65004")
        .unwrap();
    let err =
        parse_admin_consent_callback(declined["redirect"].as_str().unwrap(), "12").unwrap_err();
    match &err {
        RedirectError::Denied { error, description } => {
            assert_eq!(error, "consent_required");
            assert!(description.as_deref().unwrap().starts_with("AADSTS65004"));
        }
        other => panic!("{other:?}"),
    }
    let d = AuthError::from(err).diagnosis();
    assert_eq!(d.code(), Some(65004));
    assert_eq!(d.problem(), Problem::ConsentDeclined);

    let ok = "http://localhost/cb?admin_consent=true&tenant=t1&scope=https%3A%2F%2Fgraph.microsoft.com%2FMail.Read&state=s";
    let g = parse_admin_consent_callback(ok, "s").unwrap();
    assert_eq!(g.tenant.as_deref(), Some("t1"));
    assert_eq!(
        g.scope.as_deref(),
        Some("https://graph.microsoft.com/Mail.Read")
    );
    // Never trust tenant without the matching state.
    assert_eq!(
        parse_admin_consent_callback(ok, "other"),
        Err(RedirectError::StateMismatch)
    );
    assert!(
        parse_admin_consent_callback(
            "http://localhost/cb?admin_consent=False&tenant=t&state=s",
            "s"
        )
        .is_err()
    );
    assert!(parse_admin_consent_callback("http://localhost/cb?tenant=t&state=s", "s").is_err());
}

fn device_start(interval: &str) -> (Authority, DeviceCodeFlow) {
    let a = crate::support::authority_at("http://127.0.0.1:9");
    let start = DeviceCodeRequest::new("app", ["offline_access", "Mail.Read"]);
    let req = start.to_http(&a).unwrap();
    assert_eq!(req.uri(), "http://127.0.0.1:9/devicecode");
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        "client_id=app&scope=offline_access+Mail.Read"
    );
    let body = format!(
        r#"{{"user_code":"GH7Q","device_code":"DC-secret","verification_uri":"https://microsoft.com/devicelogin","expires_in":"900","interval":{interval},"message":"To sign in…"}}"#
    );
    let flow = start
        .parse_response(
            borrow(&response(200, "application/json", body.as_bytes())),
            t0(),
        )
        .unwrap();
    (a, flow)
}

fn poll_reply(
    flow: &mut DeviceCodeFlow,
    status: u16,
    body: &str,
    at: Duration,
) -> Result<DevicePoll, AuthError> {
    flow.handle_response(
        borrow(&response(
            status,
            "application/json; charset=utf-8",
            body.as_bytes(),
        )),
        t0() + at,
    )
}

#[test]
fn device_code_state_machine() {
    let (a, mut flow) = device_start("5");
    assert_eq!(flow.user_code(), "GH7Q");
    assert_eq!(flow.interval(), Duration::from_secs(5));
    assert_eq!(flow.next_poll_at(), t0() + Duration::from_secs(5));
    assert_eq!(flow.expires_at(), t0() + Duration::from_secs(900));
    let poll = flow
        .poll_request(&a, &ClientCredential::None, t0() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        std::str::from_utf8(poll.body()).unwrap(),
        "client_id=app&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=DC-secret"
    );
    // authorization_pending: same interval.
    let pending = r#"{"error":"authorization_pending","error_codes":[70016]}"#;
    match poll_reply(&mut flow, 400, pending, Duration::from_secs(5)).unwrap() {
        DevicePoll::Pending { next_poll_at } => {
            assert_eq!(next_poll_at, t0() + Duration::from_secs(10))
        }
        other => panic!("{other:?}"),
    }
    // slow_down: +5 s, cumulative.
    for (at, expected_interval) in [(10, 10), (20, 15)] {
        match poll_reply(
            &mut flow,
            400,
            r#"{"error":"slow_down"}"#,
            Duration::from_secs(at),
        )
        .unwrap()
        {
            DevicePoll::Pending { next_poll_at } => {
                assert_eq!(flow.interval(), Duration::from_secs(expected_interval));
                assert_eq!(
                    next_poll_at,
                    t0() + Duration::from_secs(at + expected_interval)
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // A transient 503 with Retry-After keeps polling, no sooner than the interval.
    let r = http::Response::builder()
        .status(503)
        .header("retry-after", "30")
        .body(&b""[..])
        .unwrap();
    match flow
        .handle_response(r, t0() + Duration::from_secs(40))
        .unwrap()
    {
        DevicePoll::Pending { next_poll_at } => {
            assert_eq!(next_poll_at, t0() + Duration::from_secs(70))
        }
        other => panic!("{other:?}"),
    }
    let ok = r#"{"token_type":"Bearer","expires_in":4145,"ext_expires_in":4145,"access_token":"AT","refresh_token":"RT","foci":"1"}"#;
    match poll_reply(&mut flow, 200, ok, Duration::from_secs(70)).unwrap() {
        DevicePoll::Token(t) => {
            assert_eq!(t.access_token.secret(), "AT");
            assert_eq!(t.expires_at, t0() + Duration::from_secs(70 + 4145));
        }
        other => panic!("{other:?}"),
    }
    assert!(flow.is_finished());
    assert!(matches!(
        flow.poll_request(&a, &ClientCredential::None, t0() + Duration::from_secs(80)),
        Err(AuthError::DeviceFlow(DeviceFlowError::Finished))
    ));
}

#[test]
fn device_code_terminal_errors() {
    for (error, expected) in [
        ("authorization_declined", DeviceFlowError::Declined),
        ("access_denied", DeviceFlowError::Declined),
        ("expired_token", DeviceFlowError::Expired),
        (
            "bad_verification_code",
            DeviceFlowError::BadVerificationCode,
        ),
    ] {
        let (_, mut flow) = device_start("5");
        let err = poll_reply(
            &mut flow,
            400,
            &format!(r#"{{"error":"{error}"}}"#),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert_eq!(err, AuthError::DeviceFlow(expected.clone()), "{error}");
        assert!(flow.is_finished());
        assert!(!err.diagnosis().retryable());
    }
    // Another OAuth error ends the flow with the service error and its diagnosis.
    let (_, mut flow) = device_start("5");
    let err = poll_reply(
        &mut flow,
        401,
        r#"{"error":"invalid_client","error_codes":[7000218]}"#,
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert_eq!(err.diagnosis().problem(), Problem::CredentialMissing);
    assert!(flow.is_finished());
}

#[test]
fn device_code_expires_locally() {
    let (a, mut flow) = device_start("5");
    let err = flow
        .poll_request(&a, &ClientCredential::None, t0() + Duration::from_secs(900))
        .unwrap_err();
    assert_eq!(err, AuthError::DeviceFlow(DeviceFlowError::Expired));
    assert_eq!(err.diagnosis().action(), Action::SignIn);
}

#[test]
fn device_code_start_rejects_bad_documents() {
    let start = DeviceCodeRequest::new("app", ["Mail.Read"]);
    let missing = start
        .parse_response(
            borrow(&response(200, "application/json", br#"{"user_code":"x"}"#)),
            t0(),
        )
        .unwrap_err();
    assert!(
        matches!(
            missing,
            AuthError::BadResponse {
                problem: ResponseProblem::Malformed(_),
                ..
            }
        ),
        "{missing:?}"
    );
    let html = start
        .parse_response(
            borrow(&response(200, "text/html", b"<html>proxy</html>")),
            t0(),
        )
        .unwrap_err();
    assert!(matches!(
        html,
        AuthError::BadResponse {
            problem: ResponseProblem::Html,
            ..
        }
    ));
    let no_interval = start
        .parse_response(
            borrow(&response(200, "application/json", br#"{"user_code":"u","device_code":"d","verification_uri":"https://x/","expires_in":900}"#)),
            t0(),
        )
        .unwrap();
    assert_eq!(no_interval.interval(), DEFAULT_INTERVAL);
    let refused = start
        .parse_response(
            borrow(&response(
                400,
                "application/json",
                br#"{"error":"invalid_client","error_codes":[7000218]}"#,
            )),
            t0(),
        )
        .unwrap_err();
    assert_eq!(refused.diagnosis().code(), Some(7000218));
}
