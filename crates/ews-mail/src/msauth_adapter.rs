//! [`MsauthTokens`]: msauth's `TokenProvider` as a [`TokenSource`].

use async_trait::async_trait;
use connector::AuthProblem;

use crate::client::{BearerToken, TokenSource};

/// Adapts an [`msauth::TokenProvider`] (configured for `https://outlook.office365.com/.default`
/// or `EWS.AccessAsUser.All`) to the client: tokens come from its cache, a 401 forces one
/// refresh, and a persistent 401 is diagnosed by msauth.
#[derive(Debug, Clone)]
pub struct MsauthTokens(pub msauth::TokenProvider);

fn problem(e: &msauth::AuthError) -> AuthProblem {
    AuthProblem::from(&e.diagnosis())
}

#[async_trait]
impl TokenSource for MsauthTokens {
    async fn token(&self) -> Result<BearerToken, connector::Error> {
        self.0
            .access_token()
            .await
            .map(|t| BearerToken::new(t.secret()))
            .map_err(|e| connector::Error::auth(problem(&e)))
    }

    async fn refresh(&self) -> Result<BearerToken, connector::Error> {
        self.0
            .force_refresh()
            .await
            .map(|t| BearerToken::new(t.secret()))
            .map_err(|e| connector::Error::auth(problem(&e)))
    }

    fn diagnose(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> Option<AuthProblem> {
        let status = http::StatusCode::from_u16(status).ok()?;
        let c = self.0.diagnose_resource_challenge(status, headers, body);
        Some(AuthProblem::from(c.diagnosis()))
    }
}
