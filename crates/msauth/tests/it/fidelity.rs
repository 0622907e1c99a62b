//! Fidelity to Microsoft 365 (issue #22): Exchange Online's reason for a refused token is in
//! `x-ms-diagnostics`, with an empty body; every code of it is read, not only `2000008`.
//! The header values are the ones Microsoft's documentation and reports show (protocol.md
//! §1.8 marks the header [obs]).

use http::{HeaderMap, HeaderValue, StatusCode};
use msauth::{Action, Problem, diagnose_resource_challenge};

/// EWS's 401: a bare `Bearer` challenge that says nothing, the reason in `x-ms-diagnostics`.
fn ews_401(diagnostics: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.append(
        "www-authenticate",
        HeaderValue::from_static(
            r#"Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token""#,
        ),
    );
    h.append(
        "x-ms-diagnostics",
        HeaderValue::from_str(diagnostics).unwrap(),
    );
    h
}

#[test]
fn every_x_ms_diagnostics_code_is_read_with_its_reason() {
    let cases: [(&str, Problem, Action, bool, &str); 5] = [
        (
            r#"2000003;reason="The audience claim value is invalid 'https://graph.microsoft.com'.";error_category="invalid_resource""#,
            Problem::TokenRejected,
            Action::FixConfiguration,
            false,
            "wrong audience",
        ),
        (
            r#"2000001;reason="OAuth token submitted with the request cannot be parsed.";error_category="invalid_token""#,
            Problem::TokenRejected,
            Action::RefreshToken,
            true,
            "could not validate",
        ),
        (
            r#"2000008;reason="The token has expired.";error_category="invalid_token""#,
            Problem::TokenRejected,
            Action::RefreshToken,
            true,
            "expired",
        ),
        (
            r#"2000004;reason="The tenant for tenant guid 'contoso.example' does not exist.";error_category="invalid_tenant""#,
            Problem::TenantNotFound,
            Action::FixConfiguration,
            false,
            "tenant",
        ),
        (
            r#"2000008;reason="The token contains no permissions, or permissions can not be understood.";error_category="invalid_grant""#,
            Problem::PermissionMissing,
            Action::AdminConsent,
            false,
            "no permissions",
        ),
    ];
    for (header, problem, action, refresh, words) in cases {
        let c = diagnose_resource_challenge(StatusCode::UNAUTHORIZED, &ews_401(header), b"");
        let d = c.diagnosis();
        assert_eq!(d.problem(), problem, "{header}: {d:?}");
        assert_eq!(d.action(), action, "{header}: {d:?}");
        assert_eq!(c.should_refresh(), refresh, "{header}");
        assert!(d.summary().contains(words), "{header}: {}", d.summary());
        // The server's own reason and code reach the person.
        let reason = header.split('"').nth(1).unwrap();
        assert!(d.summary().contains(reason), "{}", d.summary());
        let code = &header[..7];
        assert!(d.summary().contains(code), "{}", d.summary());
    }
}
