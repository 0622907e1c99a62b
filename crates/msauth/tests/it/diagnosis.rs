//! Every AADSTS code the issue lists, the recorded samples, and resource challenges.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use msauth::*;
use url::Url;

use crate::support::{borrow, response, samples, t0};

fn token_error(status: u16, body: &str) -> AuthError {
    parse_token_response(
        borrow(&response(
            status,
            "application/json; charset=utf-8",
            body.as_bytes(),
        )),
        t0(),
        Some(&consent()),
    )
    .unwrap_err()
}

fn consent() -> Url {
    Url::parse("https://login.microsoftonline.com/organizations/v2.0/adminconsent?client_id=app&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default").unwrap()
}

fn with_code(error: &str, code: u32) -> Diagnosis {
    token_error(400, &format!(r#"{{"error":"{error}","error_description":"AADSTS{code}: text","error_codes":[{code}],"trace_id":"tr","correlation_id":"co","timestamp":"2024-01-01 00:00:00Z"}}"#)).diagnosis()
}

#[test]
fn issue_codes_have_specific_diagnoses() {
    use Action::*;
    use Problem::*;
    let table: &[(&str, u32, Problem, Action, bool)] = &[
        ("invalid_grant", 65001, ConsentRequired, AdminConsent, true),
        (
            "invalid_grant",
            90094,
            AdminConsentRequired,
            AdminConsent,
            true,
        ),
        (
            "invalid_grant",
            90095,
            AdminApprovalPending,
            ContactAdmin,
            false,
        ),
        ("consent_required", 65004, ConsentDeclined, Stop, false),
        ("invalid_grant", 50105, UserNotAssigned, ContactAdmin, false),
        (
            "unauthorized_client",
            700016,
            ApplicationNotFound,
            FixConfiguration,
            true,
        ),
        (
            "invalid_client",
            7000215,
            InvalidClientSecret,
            FixConfiguration,
            false,
        ),
        (
            "invalid_client",
            7000222,
            ExpiredClientSecret,
            FixConfiguration,
            false,
        ),
        (
            "invalid_client",
            700027,
            CertificateRejected,
            FixConfiguration,
            false,
        ),
        (
            "invalid_client",
            50012,
            CertificateRejected,
            FixConfiguration,
            false,
        ),
        ("interaction_required", 50076, MfaRequired, SignIn, false),
        (
            "interaction_required",
            50079,
            MfaEnrollmentRequired,
            SignIn,
            false,
        ),
        (
            "invalid_grant",
            53003,
            BlockedByConditionalAccess,
            ContactAdmin,
            false,
        ),
        ("invalid_grant", 700082, SignInExpired, SignIn, false),
        ("invalid_grant", 70008, SignInExpired, SignIn, false),
        ("invalid_grant", 50173, SignInExpired, SignIn, false),
        ("invalid_grant", 70043, SignInExpired, SignIn, false),
        ("invalid_grant", 70000, SignInExpired, SignIn, false),
        (
            "invalid_request",
            90002,
            TenantNotFound,
            FixConfiguration,
            false,
        ),
        (
            "invalid_request",
            50194,
            WrongTenantEndpoint,
            FixConfiguration,
            false,
        ),
        (
            "invalid_request",
            50011,
            RedirectMismatch,
            FixConfiguration,
            false,
        ),
        (
            "invalid_scope",
            70011,
            InvalidScope,
            FixConfiguration,
            false,
        ),
        ("invalid_grant", 54005, CodeUnusable, SignIn, false),
        ("temporarily_unavailable", 90033, Transient, Retry, false),
    ];
    for &(error, code, problem, action, has_consent_url) in table {
        let d = with_code(error, code);
        assert_eq!(d.code(), Some(code));
        assert_eq!(d.problem(), problem, "AADSTS{code}");
        assert_eq!(d.action(), action, "AADSTS{code}");
        assert_eq!(d.error(), error);
        assert_eq!(d.retryable(), action == Retry, "AADSTS{code}");
        assert_eq!(d.consent_url().is_some(), has_consent_url, "AADSTS{code}");
        if has_consent_url {
            assert!(
                d.remediation().contains("adminconsent"),
                "AADSTS{code}: {}",
                d.remediation()
            );
        }
        assert_eq!(d.trace_id(), Some("tr"));
        assert_eq!(d.correlation_id(), Some("co"));
        assert!(!d.summary().is_empty() && !d.remediation().is_empty());
        assert!(d.explain().contains(&format!("AADSTS{code}")));
        assert_eq!(d.to_string(), d.explain());
    }
}

#[test]
fn every_handled_code_has_a_specific_problem() {
    for &code in HANDLED_CODES {
        let d = diagnose(
            400,
            &{
                let mut b = ErrorResponse::new("invalid_request");
                b.error_codes = vec![code];
                b
            },
            None,
            None,
        );
        assert_ne!(d.problem(), Problem::Other, "AADSTS{code}");
        assert_ne!(
            d.problem(),
            Problem::Configuration,
            "AADSTS{code} should be more specific than 'configuration'"
        );
    }
    let unknown = diagnose(
        400,
        &{
            let mut b = ErrorResponse::new("weird");
            b.error_codes = vec![1];
            b
        },
        None,
        None,
    );
    assert_eq!(unknown.problem(), Problem::Other);
}

#[test]
fn conditional_access_claims_are_passed_through() {
    let claims = r#"{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}"#;
    let body =
        serde_json::json!({"error":"interaction_required","error_codes":[53003],"claims":claims})
            .to_string();
    let d = token_error(400, &body).diagnosis();
    assert_eq!(d.problem(), Problem::BlockedByConditionalAccess);
    assert_eq!(d.claims(), Some(claims));
    assert_eq!(d.action(), Action::SignIn);
    let body =
        serde_json::json!({"error":"interaction_required","error_codes":[50076],"claims":claims})
            .to_string();
    assert_eq!(token_error(400, &body).diagnosis().claims(), Some(claims));
}

#[test]
fn throttling_and_server_errors_are_retryable_with_retry_after() {
    let r = http::Response::builder()
        .status(429)
        .header("retry-after", "7")
        .header("content-type", "text/plain")
        .body(&b"slow down"[..])
        .unwrap();
    let e = parse_token_response(r, t0(), None).unwrap_err();
    let d = e.diagnosis();
    assert_eq!(d.problem(), Problem::Throttled);
    assert!(d.retryable());
    assert_eq!(d.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.service_error().unwrap().status, 429);

    let date = httpdate::fmt_http_date(t0() + Duration::from_secs(120));
    let r = http::Response::builder()
        .status(503)
        .header("retry-after", date)
        .body(&b"<html>down</html>"[..])
        .unwrap();
    let d = parse_token_response(r, t0(), None).unwrap_err().diagnosis();
    assert_eq!(d.problem(), Problem::Transient);
    assert_eq!(d.retry_after(), Some(Duration::from_secs(120)));

    let d = token_error(500, r#"{"error":"server_error","error_codes":[90024]}"#).diagnosis();
    assert!(d.retryable());
    let d = token_error(400, r#"{"error":"temporarily_unavailable"}"#).diagnosis();
    assert_eq!(d.problem(), Problem::Transient);
    assert!(d.retryable());
    let r = http::Response::builder()
        .status(429)
        .header("retry-after", "2.128")
        .body(&b""[..])
        .unwrap();
    assert_eq!(
        parse_token_response(r, t0(), None)
            .unwrap_err()
            .diagnosis()
            .retry_after(),
        Some(Duration::from_secs_f64(2.128))
    );
}

#[test]
fn recorded_samples_parse_and_diagnose() {
    let samples = samples();
    let mut checked = 0;
    for s in samples["samples"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let Some(status) = s["status"].as_u64() else {
            continue;
        };
        let mut b = http::Response::builder().status(status as u16);
        for (k, v) in s["headers"].as_object().unwrap() {
            b = b.header(k.as_str(), v.as_str().unwrap());
        }
        let body = s["body"].to_string();
        let resp = b.body(body.as_bytes()).unwrap();
        let result = parse_token_response(resp, t0(), None);
        match id {
            "invalid_client_secret_7000215" => {
                let e = result.unwrap_err();
                let se = e.service_error().unwrap();
                assert_eq!(se.status, 401);
                assert_eq!(
                    se.response.trace_id.as_deref(),
                    Some("6bb6aa70-c6cb-4705-a554-de618c90b600")
                );
                assert_eq!(
                    se.response.correlation_id.as_deref(),
                    Some("9945f236-c0ab-4bb8-8a38-d8cb584cea28")
                );
                assert_eq!(
                    se.response.timestamp.as_deref(),
                    Some("2021-11-17 23:25:07Z")
                );
                assert_eq!(
                    se.response.error_uri.as_deref(),
                    Some("https://login.microsoftonline.com/error?code=7000215")
                );
                assert_eq!(e.diagnosis().problem(), Problem::InvalidClientSecret);
                assert!(e.diagnosis().remediation().contains("Value"));
                let text = e.to_string();
                assert!(
                    text.contains("AADSTS7000215")
                        && text.contains("9945f236-c0ab-4bb8-8a38-d8cb584cea28"),
                    "{text}"
                );
            }
            "auth_code_already_redeemed_54005" => {
                let e = result.unwrap_err();
                assert_eq!(e.diagnosis().problem(), Problem::CodeUnusable);
                assert_eq!(e.service_error().unwrap().response.error_uri, None);
            }
            "invalid_client_assertion_signature_700027" => assert_eq!(
                result.unwrap_err().diagnosis().problem(),
                Problem::CertificateRejected
            ),
            "ropc_invalid_password_50126" => assert_eq!(
                result.unwrap_err().diagnosis().problem(),
                Problem::InvalidCredentials
            ),
            "client_credentials_success" => {
                let t = result.unwrap();
                assert_eq!(t.access_token.secret(), "redacted");
                assert_eq!(t.expires_at, t0() + Duration::from_secs(3599));
                assert_eq!(t.ext_expires_at, Some(t0() + Duration::from_secs(3599)));
                assert!(t.refresh_token.is_none() && t.scope.is_none());
            }
            other => panic!("unexpected sample {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 5);

    // The device-code sequence.
    let device = samples["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "device_code_flow")
        .unwrap();
    let steps = device["steps"].as_array().unwrap();
    let start = DeviceCodeRequest::new("app", ["https://management.core.windows.net//.default"]);
    let body = steps[0]["body"].to_string();
    let mut flow = start
        .parse_response(
            borrow(&response(200, "application/json", body.as_bytes())),
            t0(),
        )
        .unwrap();
    assert_eq!(
        flow.verification_uri().as_str(),
        "https://microsoft.com/devicelogin"
    );
    let pending = steps[1]["body"].to_string();
    assert!(matches!(
        flow.handle_response(
            borrow(&response(400, "application/json", pending.as_bytes())),
            t0() + Duration::from_secs(5)
        )
        .unwrap(),
        DevicePoll::Pending { .. }
    ));
    let done = steps[2]["body"].to_string();
    match flow
        .handle_response(
            borrow(&response(200, "application/json", done.as_bytes())),
            t0() + Duration::from_secs(10),
        )
        .unwrap()
    {
        DevicePoll::Token(t) => {
            assert_eq!(t.expires_at, t0() + Duration::from_secs(10 + 4145));
            assert!(t.refresh_token.is_some());
            assert!(t.client_info.is_some());
        }
        other => panic!("{other:?}"),
    }
    // The recorded OIDC document works as a custom authority.
    let oidc = samples["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "instance_discovery_and_oidc_metadata")
        .unwrap();
    let a = Authority::from_openid_configuration(
        oidc["openid_configuration"]["body"].to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(
        a.device_endpoint().unwrap().as_str(),
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode"
    );
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn resource_claims_challenge_triggers_one_refresh_with_claims() {
    // Microsoft's documented CAE challenge.
    let h = headers(&[(
        "www-authenticate",
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=""#,
    )]);
    let c = diagnose_resource_challenge(StatusCode::UNAUTHORIZED, &h, br#"{"error":{"code":"InvalidAuthenticationToken","message":"Continuous access evaluation resulted in claims challenge"}}"#);
    assert!(c.should_refresh());
    assert_eq!(
        c.claims(),
        Some(r#"{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}"#)
    );
    let b = c.bearer().unwrap();
    assert_eq!(b.realm.as_deref(), Some(""));
    assert_eq!(b.error.as_deref(), Some("insufficient_claims"));
    assert_eq!(
        b.authorization_uri.as_deref(),
        Some("https://login.microsoftonline.com/common/oauth2/authorize")
    );
    assert_eq!(c.diagnosis().problem(), Problem::ClaimsChallenge);
    assert_eq!(c.diagnosis().action(), Action::RefreshToken);
    // 403 + insufficient_claims (Graph's CA form) is a claims challenge as well.
    let h = headers(&[(
        "WWW-Authenticate",
        r#"Bearer error="insufficient_claims", claims="eyJhIjoxfQ""#,
    )]);
    let c = diagnose_resource_challenge(StatusCode::FORBIDDEN, &h, b"");
    assert_eq!(c.claims(), Some(r#"{"a":1}"#));
}

#[test]
fn resource_401_without_consent_names_the_consent_url() {
    // EWS: 401, no body, x-ms-diagnostics says the token has no permissions.
    let h = headers(&[
        (
            "www-authenticate",
            r#"Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token""#,
        ),
        (
            "x-ms-diagnostics",
            r#"2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant""#,
        ),
    ]);
    let c =
        diagnose_resource_challenge(StatusCode::UNAUTHORIZED, &h, b"").with_consent_url(&consent());
    assert_eq!(c.diagnosis().problem(), Problem::PermissionMissing);
    assert_eq!(c.diagnosis().action(), Action::AdminConsent);
    assert!(c.diagnosis().summary().contains("admin has not approved"));
    assert_eq!(c.diagnosis().consent_url(), Some(&consent()));
    assert!(!c.should_refresh());

    // Graph 403 ErrorAccessDenied for an app-only token without the Mail role.
    let c = diagnose_resource_challenge(StatusCode::FORBIDDEN, &HeaderMap::new(), br#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}"#)
        .with_consent_url(&consent());
    assert_eq!(c.diagnosis().problem(), Problem::PermissionMissing);
    assert_eq!(c.diagnosis().error(), "ErrorAccessDenied");
    assert!(c.diagnosis().remediation().contains("adminconsent"));

    // Graph 401 with a valid-looking token: consent missing most likely; refresh once.
    let c = diagnose_resource_challenge(StatusCode::UNAUTHORIZED, &headers(&[("www-authenticate", "Bearer realm=\"\"")]), br#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure."}}"#);
    assert_eq!(c.diagnosis().problem(), Problem::TokenRejected);
    assert!(c.should_refresh());
    assert_eq!(c.diagnosis().action(), Action::AdminConsent);

    // Expired token: refresh once.
    let c = diagnose_resource_challenge(
        StatusCode::UNAUTHORIZED,
        &headers(&[(
            "www-authenticate",
            r#"Bearer error="invalid_token", error_description="The access token has expired""#,
        )]),
        b"",
    );
    assert_eq!(c.diagnosis().action(), Action::RefreshToken);
    assert!(c.should_refresh());

    // Wrong audience: configuration, no refresh loop.
    let c = diagnose_resource_challenge(
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        br#"{"error":{"code":"InvalidAuthenticationToken","message":"Invalid audience."}}"#,
    );
    assert_eq!(c.diagnosis().action(), Action::FixConfiguration);
    assert!(!c.should_refresh());
}

#[test]
fn bearer_challenge_parser_handles_multiple_schemes_and_escapes() {
    let b = BearerChallenge::parse(
        r#"Basic realm="x", Bearer realm="r\"q", error=invalid_token, error_description="a, b""#,
    )
    .unwrap();
    assert_eq!(b.realm.as_deref(), Some(r#"r"q"#));
    assert_eq!(b.error.as_deref(), Some("invalid_token"));
    assert_eq!(b.error_description.as_deref(), Some("a, b"));
    assert!(BearerChallenge::parse(r#"Basic realm="x""#).is_none());
    assert!(BearerChallenge::parse("Bearerx").is_none());
    assert_eq!(
        BearerChallenge::parse("Bearer").unwrap(),
        BearerChallenge::default()
    );
    // Garbage never panics.
    for junk in [
        "Bearer =",
        "Bearer a=\"",
        "Bearer a=\"\\",
        "bearer ,,,=,",
        "Bearer é=\"ü",
    ] {
        let _ = BearerChallenge::parse(junk);
    }
}

#[test]
fn non_service_errors_have_diagnoses_too() {
    let cases: Vec<(AuthError, Problem)> = vec![
        (
            AuthError::SignInRequired("x".into()),
            Problem::SignInRequired,
        ),
        (
            AuthError::Transport {
                stage: SendStage::NotSent,
                message: "refused".into(),
            },
            Problem::Network,
        ),
        (
            AuthError::BadResponse {
                status: 200,
                problem: ResponseProblem::Html,
            },
            Problem::BadResponse,
        ),
        (
            AuthError::Cache(CacheError::Corrupt {
                path: "p".into(),
                reason: "r".into(),
            }),
            Problem::CacheUnusable,
        ),
        (
            AuthError::Redirect(RedirectError::StateMismatch),
            Problem::BadRedirect,
        ),
        (
            AuthError::DeviceFlow(DeviceFlowError::Declined),
            Problem::DeviceCodeDeclined,
        ),
        (AuthError::Timeout("t".into()), Problem::Network),
    ];
    for (e, p) in cases {
        assert_eq!(e.diagnosis().problem(), p, "{e:?}");
        assert!(!e.diagnosis().remediation().is_empty());
    }
    assert!(
        AuthError::Transport {
            stage: SendStage::NotSent,
            message: "x".into()
        }
        .is_retryable()
    );
    assert!(!AuthError::SignInRequired("x".into()).is_retryable());
}

#[test]
fn troubleshooting_table_lists_every_handled_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/TROUBLESHOOTING.md"))
        .unwrap();
    for code in HANDLED_CODES {
        let listed = doc.lines().filter(|l| l.starts_with("| ")).any(|l| {
            l.split('|')
                .nth(1)
                .is_some_and(|cell| cell.split(',').any(|c| c.trim() == code.to_string()))
        });
        assert!(
            listed,
            "AADSTS{code} is handled but missing from TROUBLESHOOTING.md"
        );
    }
}

#[test]
fn conversions_into_the_connector_vocabulary() {
    let e = token_error(
        400,
        r#"{"error":"invalid_grant","error_codes":[65001],"claims":"{\"x\":1}"}"#,
    );
    let c: connector::Error = e.into();
    assert_eq!(c.kind(), connector::ErrorKind::Authentication);
    let p = c.auth_problem().unwrap();
    assert_eq!(p.code.as_deref(), Some("AADSTS65001"));
    assert_eq!(p.consent_url.as_ref(), Some(&consent()));
    assert_eq!(p.claims.as_deref(), Some(r#"{"x":1}"#));
    assert!(!c.is_retryable());

    let r = http::Response::builder()
        .status(429)
        .header("retry-after", "9")
        .body(&b""[..])
        .unwrap();
    let c: connector::Error = parse_token_response(r, t0(), None).unwrap_err().into();
    assert_eq!(c.kind(), connector::ErrorKind::Throttled);
    assert_eq!(c.retry_after(), Some(Duration::from_secs(9)));

    let c: connector::Error = AuthError::Transport {
        stage: SendStage::NotSent,
        message: "refused".into(),
    }
    .into();
    assert_eq!(c.kind(), connector::ErrorKind::Transient);
    assert_eq!(c.delivery(), connector::Delivery::NotSent);
    let c: connector::Error = AuthError::Config("x".into()).into();
    assert_eq!(c.kind(), connector::ErrorKind::Configuration);
    let c: connector::Error = AuthError::SignInRequired("x".into()).into();
    assert_eq!(c.kind(), connector::ErrorKind::Authentication);
}
