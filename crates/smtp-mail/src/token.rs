//! Where the XOAUTH2 access token comes from: the workspace's one token seam,
//! [`connector::TokenSource`], and the scopes SMTP AUTH needs.
//!
//! `msauth`'s `TokenProvider` is a [`TokenSource`] (configure it with [`DELEGATED_SCOPE`] or
//! [`APP_SCOPE`]); [`FnTokenSource`] wraps a closure for tests and for tokens obtained
//! elsewhere.
//!
//! SMTP carries no claims challenge: Office 365's XOAUTH2 error challenge is
//! `{"status","schemes","scope"}` only, so the one refresh after a refusal passes the claims of
//! a full `www_authenticate` in the challenge when a server sends one (the sandbox may), and
//! none otherwise.

use connector::Refusal;

use crate::diagnosis::AuthChallenge;

pub use connector::{AccessToken, FnTokenSource, StaticToken, TokenSource};

/// The delegated scope for SMTP AUTH (`SMTP.Send`, on the Office 365 Exchange Online API).
pub const DELEGATED_SCOPE: &str = "https://outlook.office.com/SMTP.Send";

/// The app-only scope for SMTP AUTH (grants the `SMTP.SendAsApp` role the admin consented to).
pub const APP_SCOPE: &str = "https://outlook.office365.com/.default";

/// The `WWW-Authenticate` value of a decoded challenge, kept for a [`Refusal`] to borrow.
pub(crate) struct ChallengeHeader(String, u16);

impl ChallengeHeader {
    /// The challenge's `WWW-Authenticate` value and status (401 unless it says otherwise).
    pub(crate) fn of(challenge: &AuthChallenge) -> Self {
        let status = challenge
            .status
            .as_deref()
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|s| (400..600).contains(s))
            .unwrap_or(401);
        ChallengeHeader(challenge.www_authenticate(), status)
    }

    /// The challenge as the protocol-neutral refusal a token source diagnoses.
    pub(crate) fn refusal(&self) -> Refusal<'_> {
        Refusal::new(self.1).with_header("www-authenticate", &self.0)
    }
}
