//! Robust parsing of token responses.

use std::time::Duration;

use msauth::*;

use crate::support::{borrow, response, t0};

fn parse(status: u16, ct: &str, body: &[u8]) -> Result<TokenResponse, AuthError> {
    parse_token_response(borrow(&response(status, ct, body)), t0(), None)
}

fn problem(r: Result<TokenResponse, AuthError>) -> ResponseProblem {
    match r {
        Err(AuthError::BadResponse { problem, .. }) => problem,
        other => panic!("expected a bad response, got {other:?}"),
    }
}

#[test]
fn expires_in_number_or_string_and_unknown_fields() {
    let t = parse(200, "application/json", br#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"7199","access_token":"a","refresh_token":"r","scope":"Mail.Read","id_token":"i","new_field":{"x":1}}"#).unwrap();
    assert_eq!(t.expires_at, t0() + Duration::from_secs(3599));
    assert_eq!(t.ext_expires_at, Some(t0() + Duration::from_secs(7199)));
    assert_eq!(t.refresh_token, Some(RefreshToken::new("r")));
    assert_eq!(t.scope.as_deref(), Some("Mail.Read"));
    assert_eq!(t.id_token, Some(IdToken::new("i")));
    let t = parse(
        200,
        "application/json",
        br#"{"token_type":"Bearer","expires_in":60,"access_token":"a"}"#,
    )
    .unwrap();
    assert_eq!(t.expires_at, t0() + Duration::from_secs(60));
    assert!(t.refresh_token.is_none());
    assert!(matches!(
        problem(parse(
            200,
            "application/json",
            br#"{"access_token":"a","expires_in":"soon"}"#
        )),
        ResponseProblem::Malformed(_)
    ));
    assert!(matches!(
        problem(parse(200, "application/json", br#"{"expires_in":5}"#)),
        ResponseProblem::Malformed(_)
    ));
    assert!(matches!(
        problem(parse(
            200,
            "application/json",
            br#"{"access_token":"","expires_in":5}"#
        )),
        ResponseProblem::Malformed(_)
    ));
}

#[test]
fn proxy_pages_truncation_size_and_content_type() {
    assert_eq!(
        problem(parse(
            200,
            "text/html; charset=utf-8",
            b"<!DOCTYPE html><html>Sign in to the proxy</html>"
        )),
        ResponseProblem::Html
    );
    // HTML even with a JSON content type.
    assert_eq!(
        problem(parse(
            200,
            "application/json",
            b"  <html>sign in to the proxy</html>"
        )),
        ResponseProblem::Html
    );
    // A gateway's HTML error page on a 5xx is a transient service failure: retry.
    let e = parse(502, "text/html", b"<html>bad gateway</html>").unwrap_err();
    assert_eq!(e.diagnosis().problem(), Problem::Transient);
    assert!(e.is_retryable());
    assert_eq!(
        problem(parse(
            200,
            "application/json",
            br#"{"access_token":"a","expi"#
        )),
        ResponseProblem::Truncated
    );
    assert_eq!(
        problem(parse(200, "application/json", b"")),
        ResponseProblem::Empty
    );
    assert_eq!(
        problem(parse(200, "text/plain", b"access_token=a")),
        ResponseProblem::WrongContentType("text/plain".into())
    );
    let huge = vec![b' '; MAX_BODY + 1];
    assert_eq!(
        problem(parse(200, "application/json", &huge)),
        ResponseProblem::TooLarge(MAX_BODY)
    );
    assert_eq!(
        problem(parse(302, "application/json", b"{}")),
        ResponseProblem::Redirect
    );
    assert!(matches!(
        problem(parse(
            400,
            "application/json",
            br#"{"message":"no error member"}"#
        )),
        ResponseProblem::Malformed(_)
    ));
    assert_eq!(
        problem(parse(400, "text/html", b"<html>blocked by proxy</html>")),
        ResponseProblem::Html
    );
    // Errors say what happened in words.
    let e = parse(200, "text/html", b"<html/>").unwrap_err();
    assert!(e.to_string().contains("HTML"), "{e}");
    assert!(e.diagnosis().remediation().contains("prox"));
}

#[test]
fn json_content_type_variants_accepted() {
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/problem+json",
        "",
    ] {
        let r = http::Response::builder().status(200);
        let r = if ct.is_empty() {
            r
        } else {
            r.header("content-type", ct)
        };
        let resp = r
            .body(&br#"{"access_token":"a","expires_in":1}"#[..])
            .unwrap();
        assert!(parse_token_response(resp, t0(), None).is_ok(), "{ct}");
    }
}

#[test]
fn error_body_keeps_every_support_field() {
    let e = parse(400, "application/json", br#"{"error":"invalid_grant","error_description":"AADSTS70043: x","error_codes":[70043],"timestamp":"ts","trace_id":"tr","correlation_id":"co","suberror":"bad_token","error_uri":"u","claims":"{}"}"#).unwrap_err();
    let r = &e.service_error().unwrap().response;
    assert_eq!(r.error, "invalid_grant");
    assert_eq!(r.error_codes, vec![70043]);
    assert_eq!(
        (
            r.timestamp.as_deref(),
            r.trace_id.as_deref(),
            r.correlation_id.as_deref()
        ),
        (Some("ts"), Some("tr"), Some("co"))
    );
    assert_eq!(r.suberror.as_deref(), Some("bad_token"));
    assert_eq!(r.error_uri.as_deref(), Some("u"));
    assert_eq!(r.claims.as_deref(), Some("{}"));
    // Code only in the description still counts.
    let e = parse(
        400,
        "application/json",
        br#"{"error":"invalid_request","error_description":"AADSTS50011: The redirect URI..."}"#,
    )
    .unwrap_err();
    assert_eq!(e.diagnosis().problem(), Problem::RedirectMismatch);
}

#[test]
fn retry_after_forms() {
    let mut h = http::HeaderMap::new();
    assert_eq!(parse_retry_after(&h, t0()), None);
    h.insert("retry-after", "10".parse().unwrap());
    assert_eq!(parse_retry_after(&h, t0()), Some(Duration::from_secs(10)));
    h.insert(
        "retry-after",
        httpdate::fmt_http_date(t0() - Duration::from_secs(10))
            .parse()
            .unwrap(),
    );
    assert_eq!(parse_retry_after(&h, t0()), Some(Duration::ZERO));
    h.insert("retry-after", "-3".parse().unwrap());
    assert_eq!(parse_retry_after(&h, t0()), None);
    h.insert("retry-after", "tomorrow".parse().unwrap());
    assert_eq!(parse_retry_after(&h, t0()), None);
}
