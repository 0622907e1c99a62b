//! What an SMTP server's refusal means: the XOAUTH2 error challenge and the reply codes.
//!
//! Values without I/O, so every mapping is tested without a server.

use connector::{AuthProblem, Delivery, Error, ErrorKind, ResponseDetails};

/// The error challenge a server sends on a `334` reply when it refuses an XOAUTH2 token:
/// base64 of a small JSON object (`{"status":"401","schemes":"bearer","scope":…}`; the sandbox
/// and some servers add `error`, `error_description` and a full `www_authenticate`).
///
/// lettre's own `auth` answers such a challenge blindly and loses it, which is why this crate
/// runs the XOAUTH2 exchange itself over lettre's connection.
///
/// ```
/// use smtp_mail::AuthChallenge;
///
/// // base64 of {"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}
/// let c = AuthChallenge::decode(
///     "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL291dGxvb2sub2ZmaWNlMzY1LmNvbS8uZGVmYXVsdCJ9",
/// )
/// .unwrap();
/// assert_eq!(c.status.as_deref(), Some("401"));
/// assert_eq!(c.scope.as_deref(), Some("https://outlook.office365.com/.default"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthChallenge {
    /// `status`, an HTTP-like status (`401`, `400`).
    pub status: Option<String>,
    /// `schemes` (`bearer`).
    pub schemes: Option<String>,
    /// `scope`: the scope a token must carry.
    pub scope: Option<String>,
    /// `error` (`invalid_token`), when the server says.
    pub error: Option<String>,
    /// `error_description`, when the server says.
    pub error_description: Option<String>,
    /// A complete `WWW-Authenticate` value, when the server sends one.
    pub www_authenticate: Option<String>,
}

impl AuthChallenge {
    /// Decodes the text of a `334` reply. `None` if it is not base64 JSON (a real SASL
    /// continuation, or garbage).
    pub fn decode(text: &str) -> Option<Self> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let obj = v.as_object()?;
        let field = |name: &str| {
            obj.get(name).and_then(|v| match v {
                serde_json::Value::String(s) => Some(bounded(s)),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        Some(AuthChallenge {
            status: field("status"),
            schemes: field("schemes"),
            scope: field("scope"),
            error: field("error"),
            error_description: field("error_description"),
            www_authenticate: field("www_authenticate"),
        })
    }

    /// A `WWW-Authenticate` value for this challenge: the server's own, or one built from its
    /// fields (for msauth's resource-challenge diagnosis).
    pub fn www_authenticate(&self) -> String {
        if let Some(w) = &self.www_authenticate {
            return w.clone();
        }
        let clean = |s: &str| s.replace(['"', '\\', '\r', '\n'], "'");
        let mut parts = Vec::new();
        parts.push(format!(
            "error=\"{}\"",
            clean(self.error.as_deref().unwrap_or("invalid_token"))
        ));
        if let Some(d) = &self.error_description {
            parts.push(format!("error_description=\"{}\"", clean(d)));
        }
        if let Some(s) = &self.scope {
            parts.push(format!("scope=\"{}\"", clean(s)));
        }
        format!("Bearer {}", parts.join(", "))
    }

    /// One line for a person: the description, or the status and scope.
    pub fn summary(&self) -> String {
        match (&self.error_description, &self.status, &self.scope) {
            (Some(d), _, _) => d.clone(),
            (None, Some(s), Some(scope)) => {
                format!("the server refused the token (status {s}; it wants scope {scope})")
            }
            (None, Some(s), None) => format!("the server refused the token (status {s})"),
            _ => "the server refused the token".to_owned(),
        }
    }
}

/// Keeps at most 1 KiB of a server-provided string.
fn bounded(s: &str) -> String {
    connector::bounded(s, 1024)
}

/// An SMTP reply: the basic code, the enhanced status code (RFC 3463) and the text.
///
/// ```
/// use smtp_mail::Reply;
///
/// let r = Reply::parse(535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.");
/// assert_eq!(r.enhanced.as_deref(), Some("5.7.139"));
/// assert!(r.is_smtp_auth_disabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code, when the text starts with one.
    pub enhanced: Option<String>,
    /// The text (bounded; never contains anything the client sent).
    pub text: String,
}

impl Reply {
    /// A reply from its code and text (the enhanced code is read from the text).
    pub fn parse(code: u16, text: &str) -> Self {
        let text = bounded(text.trim());
        let enhanced = text
            .split_whitespace()
            .next()
            .filter(|w| {
                let parts: Vec<&str> = w.split('.').collect();
                parts.len() == 3
                    && parts
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(str::to_owned);
        Reply {
            code,
            enhanced,
            text,
        }
    }

    /// Reads the reply out of lettre's error text (`permanent error (535): 5.7.3 …`).
    pub(crate) fn from_lettre(e: &lettre::transport::smtp::Error) -> Option<Self> {
        let code = e.status()?;
        let code: u16 = code.to_string().parse().ok()?;
        let text = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        Some(Reply::parse(code, &text))
    }

    /// `535 5.7.139` (or the text naming `SmtpClientAuthentication` as disabled): SMTP AUTH is
    /// turned off for the tenant or the mailbox.
    pub fn is_smtp_auth_disabled(&self) -> bool {
        self.enhanced.as_deref() == Some("5.7.139")
            || self
                .text
                .to_ascii_lowercase()
                .contains("smtpclientauthentication is disabled")
    }

    /// `530 5.7.30` / `550 5.7.30`: basic authentication refused (never sent by this crate,
    /// but a proxy may rewrite).
    pub fn is_basic_auth_refused(&self) -> bool {
        self.enhanced.as_deref() == Some("5.7.30")
    }

    /// `5.2.252` (or `SendAsDenied`): the identity may not send as the `From` address; or
    /// `5.7.60` ("Client does not have permissions to send as this sender"): not as the
    /// envelope sender (`MAIL FROM`).
    pub fn is_send_as_denied(&self) -> bool {
        self.is_envelope_send_as_denied()
            || self.enhanced.as_deref() == Some("5.2.252")
            || self.text.contains("SendAsDenied")
    }

    /// `5.7.60`: the envelope sender (`MAIL FROM`) is an address the identity may not send as.
    pub fn is_envelope_send_as_denied(&self) -> bool {
        self.enhanced.as_deref() == Some("5.7.60")
            || self
                .text
                .to_ascii_lowercase()
                .contains("does not have permissions to send as this sender")
    }

    /// `code enhanced`, for [`ResponseDetails::server_code`].
    pub fn server_code(&self) -> String {
        match &self.enhanced {
            Some(e) => format!("{} {e}", self.code),
            None => self.code.to_string(),
        }
    }

    pub(crate) fn details(&self) -> ResponseDetails {
        ResponseDetails::default()
            .with_server_code(self.server_code())
            .with_body(self.text.as_bytes())
    }
}

/// The diagnosis of SMTP AUTH being disabled (`535 5.7.139`).
pub fn smtp_auth_disabled(mailbox: &str) -> AuthProblem {
    AuthProblem::new(
        "SMTP AUTH is disabled for this mailbox or tenant",
        format!(
            "an Exchange administrator must allow SMTP client submission: \
             `Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false` for \
             the mailbox (it overrides the organisation), or \
             `Set-TransportConfig -SmtpClientAuthenticationDisabled $false` for the tenant; or \
             send through Graph instead"
        ),
    )
    .with_code("5.7.139")
}

/// The diagnosis of a token refused twice (`535 5.7.3`) when the token source has none.
pub fn token_refused(mailbox: &str, challenge: Option<&AuthChallenge>) -> AuthProblem {
    let why = challenge
        .map(AuthChallenge::summary)
        .unwrap_or_else(|| "Authentication unsuccessful".to_owned());
    AuthProblem::new(
        format!("the SMTP server refused the access token for {mailbox} (535 5.7.3): {why}"),
        "check that the token is for https://outlook.office365.com with SMTP.Send (delegated) or \
         SMTP.SendAsApp (app-only, with the service principal registered in Exchange and \
         FullAccess on the mailbox), that the signed-in identity may use this mailbox, and that \
         SMTP AUTH is not disabled for this mailbox or tenant",
    )
    .with_code("5.7.3")
}

/// The diagnosis of an app-only token refused twice (`535 5.7.3`): besides the token itself,
/// Exchange Online accepts an app on SMTP only when its service principal is registered in
/// Exchange and holds FullAccess on the mailbox named in `user=` — and answers every one of
/// these refusals with the same `535 5.7.3`, so the diagnosis names them all, registration
/// first. `app_id` is the token's (`appid`), when it could be read.
///
/// ```
/// let p = smtp_mail::app_token_refused("helpdesk@contoso.com", Some("11111111-2222-3333-4444-555555555555"), None);
/// assert_eq!(p.code.as_deref(), Some("5.7.3"));
/// assert!(p.remediation.contains("New-ServicePrincipal -AppId 11111111-2222-3333-4444-555555555555"));
/// assert!(p.remediation.contains("Add-MailboxPermission -Identity helpdesk@contoso.com"));
/// ```
pub fn app_token_refused(
    mailbox: &str,
    app_id: Option<&str>,
    challenge: Option<&AuthChallenge>,
) -> AuthProblem {
    let why = challenge
        .map(AuthChallenge::summary)
        .unwrap_or_else(|| "Authentication unsuccessful".to_owned());
    let app = app_id.unwrap_or("<application (client) id>");
    AuthProblem::new(
        format!("the SMTP server refused the app-only sign-in to {mailbox} (535 5.7.3): {why}"),
        format!(
            "Exchange Online accepts an application on SMTP AUTH only when its service principal \
             is registered in Exchange and holds FullAccess on the mailbox; an Exchange \
             administrator runs `New-ServicePrincipal -AppId {app} -ObjectId <object id of the \
             Enterprise application, not of the app registration>`, then \
             `Add-MailboxPermission -Identity {mailbox} -User <that service principal's object \
             id> -AccessRights FullAccess`. Also check that SMTP.SendAsApp has admin consent, that \
             the token is for https://outlook.office365.com/.default, and that SMTP AUTH is not \
             disabled for this mailbox or tenant"
        ),
    )
    .with_code("5.7.3")
}

/// The error for a refused `From` or `MAIL FROM` (`5.2.252`, `5.7.60`): `mailbox` (XOAUTH2's
/// `user=`) may not send as `from`, and what an Exchange administrator runs about it; with an
/// app-only token the app's service principal may hold the right instead.
pub(crate) fn send_as_error(mailbox: &str, from: &str, app_only: bool, reply: &Reply) -> Error {
    let mut message = connector::send_as_denied(mailbox, from);
    if app_only {
        message.push_str(
            " (with an app-only token the app's service principal may hold Send As instead: \
             `-Trustee <service principal object id>`)",
        );
    }
    message.push_str(&format!(" [{}: {}]", reply.server_code(), reply.text));
    Error::refused(message)
        .with_delivery(Delivery::Answered)
        .with_response(reply.details())
}

/// The error for a refused `AUTH` reply (after any refresh).
pub(crate) fn auth_error(problem: AuthProblem, reply: Option<&Reply>) -> Error {
    let mut e = Error::auth(problem).with_delivery(Delivery::NotSent);
    if let Some(r) = reply {
        e = e.with_response(r.details());
    }
    e
}

/// The error for a refused command of a send (`MAIL`, `RCPT`, `DATA`, end of data).
pub(crate) fn send_error(what: &str, reply: &Reply) -> Error {
    let message = format!("{what}: {}", reply.text);
    let e = if reply.is_send_as_denied() {
        Error::refused(format!(
            "{what}: the server refused Send As: {}",
            reply.text
        ))
    } else if (400..500).contains(&reply.code) {
        Error::new(ErrorKind::Transient, message)
    } else if reply.code == 535 || reply.code == 530 {
        Error::new(ErrorKind::Authentication, message)
    } else {
        Error::refused(message)
    };
    // The server answered: the message was not accepted.
    e.with_delivery(Delivery::Answered)
        .with_response(reply.details())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn challenge_decodes_office365_json() {
        let c = AuthChallenge::decode(&b64(
            r#"{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}"#,
        ))
        .expect("decodes");
        assert_eq!(c.schemes.as_deref(), Some("bearer"));
        assert!(c.summary().contains("status 401"));
        assert!(
            c.www_authenticate()
                .starts_with("Bearer error=\"invalid_token\"")
        );
    }

    #[test]
    fn challenge_keeps_description_and_escapes_quotes() {
        let c = AuthChallenge::decode(&b64(
            r#"{"status":401,"error":"invalid_token","error_description":"Lifetime \"validation\" failed"}"#,
        ))
        .expect("decodes");
        assert_eq!(c.status.as_deref(), Some("401"));
        assert_eq!(c.summary(), "Lifetime \"validation\" failed");
        assert!(
            c.www_authenticate()
                .contains("error_description=\"Lifetime 'validation' failed\"")
        );
    }

    #[test]
    fn garbage_is_not_a_challenge() {
        assert_eq!(AuthChallenge::decode(""), None);
        assert_eq!(AuthChallenge::decode("not base64 !!"), None);
        assert_eq!(AuthChallenge::decode(&b64("[1,2]")), None);
        assert_eq!(AuthChallenge::decode(&b64("plain text")), None);
    }

    #[test]
    fn oversized_fields_are_bounded() {
        let long = "x".repeat(100_000);
        let c = AuthChallenge::decode(&b64(&format!(r#"{{"error_description":"{long}"}}"#)))
            .expect("decodes");
        assert!(c.summary().len() < 1100);
    }

    #[test]
    fn replies_map_to_kinds() {
        let disabled = Reply::parse(
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        );
        assert!(disabled.is_smtp_auth_disabled());
        assert_eq!(disabled.server_code(), "535 5.7.139");
        let by_text = Reply::parse(
            535,
            "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox",
        );
        assert!(by_text.is_smtp_auth_disabled());
        assert!(!Reply::parse(535, "5.7.3 Authentication unsuccessful").is_smtp_auth_disabled());

        let denied = send_error(
            "sending",
            &Reply::parse(554, "5.2.252 SendAsDenied; a not allowed to send as b"),
        );
        assert_eq!(denied.kind(), ErrorKind::Refused);
        assert!(!denied.may_have_taken_effect());
        assert!(denied.to_string().contains("554 5.2.252"), "{denied}");
        let busy = send_error("sending", &Reply::parse(451, "4.3.0 try later"));
        assert!(busy.is_retryable());
        assert!(!busy.may_have_taken_effect());
        let too_big = send_error("sending", &Reply::parse(552, "5.3.4 too big"));
        assert_eq!(too_big.kind(), ErrorKind::Refused);
        assert_eq!(Reply::parse(250, "OK").enhanced, None);
        assert_eq!(Reply::parse(250, "2.0.0.1 OK").enhanced, None);
    }

    #[test]
    fn disabled_diagnosis_tells_what_to_run() {
        let p = smtp_auth_disabled("helpdesk@contoso.example");
        assert_eq!(p.code.as_deref(), Some("5.7.139"));
        assert!(p.summary.contains("SMTP AUTH is disabled"));
        assert!(
            p.remediation
                .contains("Set-CASMailbox -Identity helpdesk@contoso.example")
        );
    }
}
