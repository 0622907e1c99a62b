//! Conversions into the workspace vocabulary (`connector`): a [`Diagnosis`] becomes a
//! [`connector::AuthProblem`], an [`AuthError`] a [`connector::Error`] of the right kind, and
//! [`TokenProvider`] is a [`connector::TokenSource`] — the one adapter every mail crate uses.

use crate::diagnosis::{Diagnosis, Problem};
use crate::error::{AuthError, SendStage};
use crate::provider::TokenProvider;
use crate::secret::AccessToken;

impl From<&Diagnosis> for connector::AuthProblem {
    fn from(d: &Diagnosis) -> Self {
        let mut p = connector::AuthProblem::new(d.summary(), d.remediation());
        if let Some(code) = d.code() {
            p = p.with_code(format!("AADSTS{code}"));
        } else if !d.error().is_empty() {
            // No AADSTS number (a resource's `WWW-Authenticate`, a device-flow error): the
            // OAuth error string is the best code there is.
            p = p.with_code(d.error());
        }
        if let Some(url) = d.consent_url() {
            p = p.with_consent_url(url.clone());
        }
        if let Some(c) = d.claims() {
            p = p.with_claims(c);
        }
        p
    }
}

impl From<Diagnosis> for connector::AuthProblem {
    fn from(d: Diagnosis) -> Self {
        (&d).into()
    }
}

impl From<AuthError> for connector::Error {
    /// The workspace's one classification of a token failure, the same for every protocol
    /// (a [`TokenProvider`] used as a [`connector::TokenSource`] reports its failures this way,
    /// with [`connector::Delivery::NotSent`] for the request that wanted the token):
    ///
    /// | failure                                                        | kind             |
    /// |----------------------------------------------------------------|------------------|
    /// | throttled (429, AADSTS throttling codes)                       | `Throttled` (+ `retry_after`) |
    /// | anything the diagnosis calls retryable: network, timeout, 5xx, a proxy's HTML page, a truncated answer | `Transient` (+ `retry_after` if sent) |
    /// | [`AuthError::Config`], [`AuthError::Authority`]               | `Configuration`  |
    /// | any other unreadable answer ([`AuthError::BadResponse`])       | `BadResponse`    |
    /// | everything else: refused sign-in, missing consent, sign-in required, unusable cache or certificate | `Authentication` |
    ///
    /// The delivery is the identity request's own, and msauth's diagnosis is always attached as
    /// the [`connector::AuthProblem`].
    fn from(e: AuthError) -> Self {
        classify(e, None)
    }
}

/// The classification of `From<AuthError>`, in one place. `for_request`, when set, says the
/// failure stopped that request before it was sent (a token source's error): the message is
/// prefixed with it and the delivery is [`connector::Delivery::NotSent`].
fn classify(e: AuthError, for_request: Option<&str>) -> connector::Error {
    use connector::{Delivery, Error};
    let d = e.diagnosis();
    let message = match for_request {
        Some(what) => format!("{what}: {e}"),
        None => e.to_string(),
    };
    let mut out = match (&e, d.problem()) {
        (_, Problem::Throttled) => {
            Error::throttled(message, d.retry_after()).with_delivery(Delivery::Answered)
        }
        (
            AuthError::Config(_) | AuthError::Authority(_) | AuthError::EndpointNotFound { .. },
            _,
        ) => Error::configuration(message).with_delivery(Delivery::NotSent),
        (AuthError::Transport { stage, .. }, _) => {
            Error::transient(message).with_delivery(match stage {
                SendStage::NotSent => Delivery::NotSent,
                _ => Delivery::MaybeSent,
            })
        }
        (AuthError::Timeout(_), _) => Error::transient(message).with_delivery(Delivery::MaybeSent),
        (_, _) if d.retryable() => Error::transient(message).with_delivery(Delivery::Answered),
        (AuthError::BadResponse { .. }, _) => {
            Error::bad_response(message).with_delivery(Delivery::Answered)
        }
        (AuthError::Service(_), _) => Error::auth((&d).into()).with_delivery(Delivery::Answered),
        _ => Error::auth((&d).into()),
    };
    if let Some(r) = d.retry_after() {
        out = out.with_retry_after(r);
    }
    if for_request.is_some() {
        out = out.with_delivery(Delivery::NotSent);
    }
    out.with_auth_problem((&d).into()).with_source(e)
}

/// What a token source says when it has no token for a request.
const GETTING_A_TOKEN: &str = "getting a token";

/// msauth's provider is the workspace's token source: Graph, EWS and SMTP take it as it is.
/// Failures are classified as `From<AuthError> for connector::Error` says; a refusal is diagnosed by
/// [`TokenProvider::diagnose_resource_challenge`] (with this application's admin consent URL),
/// whose claims (decoded) the client passes back to [`refresh`](connector::TokenSource::refresh).
#[async_trait::async_trait]
impl connector::TokenSource for TokenProvider {
    async fn token(&self) -> Result<AccessToken, connector::Error> {
        self.access_token()
            .await
            .map_err(|e| classify(e, Some(GETTING_A_TOKEN)))
    }

    async fn refresh(&self, claims: Option<&str>) -> Result<AccessToken, connector::Error> {
        let t = match claims {
            Some(c) => self.refresh_with_claims(c).await,
            None => self.force_refresh().await,
        };
        t.map_err(|e| classify(e, Some(GETTING_A_TOKEN)))
    }

    fn diagnose(&self, refusal: &connector::Refusal<'_>) -> Option<connector::Challenge> {
        let status = http::StatusCode::from_u16(refusal.status()).ok()?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in refusal.headers() {
            // A header that is not valid HTTP cannot carry a challenge msauth reads: skip it.
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        let c = self.diagnose_resource_challenge(status, &headers, refusal.body());
        let mut out = connector::Challenge::new(c.diagnosis().into(), c.should_refresh());
        if let Some(claims) = c.claims() {
            out = out.with_claims(claims);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use connector::{Delivery, ErrorKind, Refusal, TokenSource};

    use super::*;
    use crate::error::ResponseProblem;
    use crate::{Authority, ClientCredential, ClientSecret, Tenant};

    fn token_response(status: u16, headers: &[(&str, &str)], body: &str) -> AuthError {
        let mut b = http::Response::builder()
            .status(status)
            .header("content-type", "application/json");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let r = b.body(body.as_bytes()).unwrap();
        crate::parse_token_response(r, std::time::SystemTime::UNIX_EPOCH, None).unwrap_err()
    }

    /// The one classification, row by row, as a token source reports it.
    #[test]
    fn token_failures_are_classified_once_for_every_protocol() {
        let throttled = token_response(
            429,
            &[("retry-after", "7")],
            r#"{"error":"temporarily_unavailable","error_codes":[50196]}"#,
        );
        let unavailable = token_response(503, &[], r#"{"error":"temporarily_unavailable"}"#);
        let bare_502 = token_response(502, &[], "");
        let network = AuthError::Transport {
            stage: SendStage::MaybeSent,
            message: "connection reset".into(),
        };
        let proxy_page = AuthError::BadResponse {
            status: 200,
            problem: ResponseProblem::Html,
        };
        let malformed = AuthError::BadResponse {
            status: 200,
            problem: ResponseProblem::Malformed("x".into()),
        };
        let no_consent = token_response(
            400,
            &[],
            r#"{"error":"invalid_grant","error_description":"AADSTS65001: no consent","error_codes":[65001]}"#,
        );
        let bad_secret = token_response(
            401,
            &[],
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
        );
        let rows: Vec<(AuthError, ErrorKind)> = vec![
            (throttled, ErrorKind::Throttled),
            (unavailable, ErrorKind::Transient),
            (bare_502, ErrorKind::Transient),
            (network, ErrorKind::Transient),
            (AuthError::Timeout("token".into()), ErrorKind::Transient),
            (proxy_page, ErrorKind::Transient),
            (malformed, ErrorKind::BadResponse),
            (
                AuthError::Config("no scope".into()),
                ErrorKind::Configuration,
            ),
            (no_consent, ErrorKind::Authentication),
            (bad_secret, ErrorKind::Authentication),
            (
                AuthError::SignInRequired("no account".into()),
                ErrorKind::Authentication,
            ),
        ];
        for (e, kind) in rows {
            let shown = e.to_string();
            let summary = e.diagnosis().summary().to_owned();
            let c = classify(e, Some(GETTING_A_TOKEN));
            assert_eq!(c.kind(), kind, "{shown}");
            assert_eq!(c.delivery(), Delivery::NotSent, "{shown}");
            if kind != ErrorKind::Authentication {
                // (An authentication error's message is the diagnosis itself.)
                assert!(c.message().starts_with("getting a token: "), "{c}");
            }
            // msauth's diagnosis text is kept, whatever the kind.
            assert_eq!(
                c.auth_problem().map(|p| p.summary.as_str()),
                Some(summary.as_str())
            );
        }
        let c = classify(
            token_response(429, &[("retry-after", "7")], r#"{"error":"x"}"#),
            Some(GETTING_A_TOKEN),
        );
        assert_eq!(c.retry_after(), Some(Duration::from_secs(7)));
    }

    fn provider(base: &str) -> TokenProvider {
        let authority =
            Authority::microsoft_layout(base, Tenant::parse("contoso.example").unwrap()).unwrap();
        TokenProvider::builder(authority, "00000000-0000-0000-0000-000000000001")
            .credential(ClientCredential::Secret(ClientSecret::new("s3cr3t")))
            .scopes(["https://outlook.office365.com/.default"])
            // The admin consent URL needs the app's registered redirect URI.
            .consent_redirect(url::Url::parse("https://app.example/consented").unwrap())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn an_unreachable_token_endpoint_is_transient_and_not_sent() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let p = provider(&format!("http://{closed}"));
        for e in [
            p.token().await.unwrap_err(),
            p.refresh(Some("{}")).await.unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
            assert!(!e.may_have_taken_effect(), "{e}");
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn the_provider_diagnoses_a_refusal_and_decodes_its_claims() {
        let p = provider("http://127.0.0.1:9");
        let header = r#"Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZX19fQ==""#;
        let c = p
            .diagnose(&Refusal::new(401).with_header("WWW-Authenticate", header))
            .unwrap();
        assert!(c.refresh);
        assert_eq!(
            c.claims.as_deref(),
            Some(r#"{"access_token":{"nbf":{"essential":true}}}"#)
        );
        // EWS's diagnostics header reaches msauth too: no permissions, no point refreshing.
        let c = p
            .diagnose(
                &Refusal::new(401)
                    .with_header("x-ms-diagnostics", "2000008;reason=\"no permissions\"")
                    .with_header("bad header name", "x"),
            )
            .unwrap();
        assert!(!c.refresh);
        assert!(c.problem.consent_url.is_some(), "{:?}", c.problem);
    }
}
