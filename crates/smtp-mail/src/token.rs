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

/// Whether `token` is app-only, and the app it was issued to (`appid`, else `azp`), read from
/// its claims without verifying it: Microsoft's tokens for Exchange are JWTs, and an app-only
/// one carries `roles` and no `scp` (`idtyp` = `app` when the optional claim is on). Only to
/// word a diagnosis; `None` when the token is not a readable JWT.
pub(crate) fn app_only(token: &AccessToken) -> Option<(bool, Option<String>)> {
    use base64::Engine as _;
    let payload = token.secret().split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    let app = text("idtyp") == Some("app")
        || (claims.get("roles").is_some_and(serde_json::Value::is_array)
            && claims.get("scp").is_none());
    Some((app, text("appid").or(text("azp")).map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> AccessToken {
        use base64::Engine as _;
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        AccessToken::new(format!("{}.{}.sig", b(r#"{"alg":"RS256"}"#), b(claims)))
    }

    #[test]
    fn app_only_tokens_are_told_from_their_claims() {
        assert_eq!(
            app_only(&jwt(r#"{"appid":"a-1","roles":["SMTP.SendAsApp"]}"#)),
            Some((true, Some("a-1".into())))
        );
        assert_eq!(
            app_only(&jwt(r#"{"azp":"a-2","idtyp":"app"}"#)),
            Some((true, Some("a-2".into())))
        );
        assert_eq!(
            app_only(&jwt(r#"{"appid":"a-3","scp":"SMTP.Send","roles":[]}"#)),
            Some((false, Some("a-3".into())))
        );
        assert_eq!(app_only(&AccessToken::new("opaque")), None);
        assert_eq!(app_only(&AccessToken::new("a.!!!.c")), None);
    }
}
