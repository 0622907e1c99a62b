//! Where access tokens come from, and what a 401 means.
//!
//! The client asks a [`TokenSource`] (the workspace's one token seam, defined in `connector`)
//! for a bearer token before each request, asks it once for a fresh one when Graph answers 401
//! — passing on the claims challenge of the `WWW-Authenticate` header, if any — and asks it to
//! [`diagnose`](TokenSource::diagnose) the 401. `msauth`'s `TokenProvider` implements the trait
//! (delegated and app-only alike); [`FnTokenSource`] wraps a closure, for tests and for tokens
//! obtained elsewhere. A source that does not diagnose gets Graph's own reading of the refusal,
//! [`diagnose_minimal`].

use connector::AuthProblem;
pub use connector::{AccessToken, Challenge, FnTokenSource, Refusal, StaticToken, TokenSource};

/// A 401 as the protocol-neutral [`Refusal`] a [`TokenSource`] diagnoses.
pub(crate) fn refusal<'a>(
    status: u16,
    headers: &'a http::HeaderMap,
    body: &'a [u8],
) -> Refusal<'a> {
    headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .fold(Refusal::new(status).with_body(body), |r, (n, v)| {
            r.with_header(n, v)
        })
}

/// Reads a bearer challenge without `msauth`: enough to say "sign-in was refused" and why, and
/// to find the claims challenge to pass on.
pub fn diagnose_minimal(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Challenge {
    let r = refusal(status, headers, body);
    let error = r.bearer_param("error");
    let description = r
        .bearer_param("error_description")
        .or_else(|| crate::api::GraphError::parse(status, headers, body).message)
        .unwrap_or_else(|| format!("Graph refused the access token (HTTP {status})"));
    let claims = r.bearer_param("claims");
    let mut problem = AuthProblem::new(
        description,
        "sign in again; if this persists, check that an administrator granted the application its Mail permissions",
    );
    if let Some(e) = error {
        problem = problem.with_code(e);
    }
    if let Some(c) = &claims {
        problem = problem.with_claims(c.clone());
    }
    let challenge = Challenge::new(problem, status == 401);
    match claims {
        Some(c) => challenge.with_claims(c),
        None => challenge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_diagnosis_reads_the_bearer_challenge() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(
                "Bearer realm=\"\", authorization_uri=\"https://login.example/common/oauth2/authorize\", client_id=\"00000003\", error=\"invalid_token\", error_description=\"Consent for Mail.Read was withdrawn\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnt9fQ==\"",
            ),
        );
        let c = diagnose_minimal(401, &h, b"");
        assert_eq!(c.problem.code.as_deref(), Some("invalid_token"));
        assert_eq!(c.problem.summary, "Consent for Mail.Read was withdrawn");
        assert_eq!(c.claims.as_deref(), Some("eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="));
        assert!(c.refresh);
    }

    #[test]
    fn minimal_diagnosis_without_header_uses_the_graph_error() {
        let body = br#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}}"#;
        let c = diagnose_minimal(401, &http::HeaderMap::new(), body);
        assert_eq!(c.problem.summary, "Access token has expired.");
        assert_eq!(c.problem.code, None);
    }
}
