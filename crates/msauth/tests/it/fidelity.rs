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

/// The admin consent endpoint requires `redirect_uri` (protocol.md §1.5: required, must match a
/// registered URI; no documented default): without one there is an error that says so, never
/// a URL that cannot work.
#[test]
fn admin_consent_needs_a_redirect_uri() {
    use msauth::{Authority, AuthorityError, Cloud, Tenant, admin_consent_url};
    let a = Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap();
    let err = admin_consent_url(
        &a,
        "app",
        &["https://graph.microsoft.com/.default"],
        None,
        None,
    )
    .unwrap_err();
    assert_eq!(err, AuthorityError::ConsentRedirectMissing);
    assert!(err.to_string().contains("redirect_uri"), "{err}");
    let redirect = url::Url::parse("https://app.example/consented").unwrap();
    let url = admin_consent_url(
        &a,
        "app",
        &["https://outlook.office365.com/.default"],
        Some(&redirect),
        None,
    )
    .unwrap();
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "redirect_uri" && v == redirect.as_str()),
        "{url}"
    );
}

/// An app-only provider (the secret `s`, Graph's `.default`) signing in at `authority`.
fn daemon(authority: msauth::Authority) -> msauth::TokenProvider {
    use msauth::{ClientCredential, ClientSecret, TokenProvider};
    TokenProvider::builder(authority, "app")
        .credential(ClientCredential::Secret(ClientSecret::new("s")))
        .scopes(["https://graph.microsoft.com/.default"])
        .build()
        .unwrap()
}

/// A provider without a consent redirect gives no admin consent URL (and so none in its
/// diagnoses) rather than one the endpoint refuses.
#[test]
fn a_provider_without_a_consent_redirect_gives_no_consent_url() {
    use msauth::{Authority, Cloud, Tenant};
    let a = Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap();
    let p = daemon(a);
    assert_eq!(p.admin_consent_url(), None);
}

/// A token endpoint that answers 404 in `text/plain` (a non-Microsoft authority's URL with a
/// wrong path, say) is not there: a configuration error naming the URL, not "check proxies;
/// retry later".
#[tokio::test]
async fn a_token_endpoint_that_is_not_there_is_a_configuration_error_naming_it() {
    use std::sync::Arc;

    use connector::ErrorKind;
    use msauth::AuthError;

    use crate::support::{Reply, Server};

    let server = Server::start(Arc::new(|_| Reply::text(404, "404 page not found"))).await;
    let p = daemon(server.authority());
    let e = p.access_token().await.unwrap_err();
    let url = format!("{}/token", server.base);
    assert!(
        matches!(&e, AuthError::EndpointNotFound { url: u, .. } if *u == url),
        "{e:?}"
    );
    let d = e.diagnosis();
    assert_eq!(d.problem(), Problem::Configuration);
    assert_eq!(d.action(), Action::FixConfiguration);
    assert!(!d.retryable());
    assert!(d.summary().contains(&url), "{}", d.summary());
    assert!(
        !d.remediation().contains("retry later"),
        "{}",
        d.remediation()
    );
    // Through the token seam: a configuration error, which the handler does not retry.
    let ce = connector::TokenSource::token(&p).await.unwrap_err();
    assert_eq!(ce.kind(), ErrorKind::Configuration, "{ce}");
    assert!(ce.to_string().contains(&url), "{ce}");
    // A token endpoint that does exist but fails (5xx, not JSON) stays transient.
    let flaky = Server::start(Arc::new(|_| Reply::text(502, "bad gateway"))).await;
    let p = daemon(flaky.authority());
    let e = p.access_token().await.unwrap_err();
    assert!(!matches!(e, AuthError::EndpointNotFound { .. }), "{e:?}");
    assert!(e.diagnosis().retryable(), "{e:?}");
}
