//! Turning identity failures into something a person can act on.
//!
//! [`diagnose`] maps a token-endpoint error (AADSTS code, `error` string, HTTP status) to a
//! [`Diagnosis`]; [`diagnose_resource_challenge`] does the same for a 401/403 from Graph or EWS.
//! The table of codes is in the crate's `TROUBLESHOOTING.md`.

use std::time::Duration;

use base64::Engine as _;
use url::Url;

use crate::error::{
    AuthError, DeviceFlowError, ErrorResponse, RedirectError, ResponseProblem, SendStage,
};

mod challenge;
mod codes;
pub(crate) mod kinds;

pub use challenge::*;
pub use codes::HANDLED_CODES;
pub use kinds::{Action, Diagnosis, Problem};

use codes::by_code;

struct Entry {
    problem: Problem,
    action: Action,
    summary: &'static str,
    remediation: &'static str,
}

const fn e(
    problem: Problem,
    action: Action,
    summary: &'static str,
    remediation: &'static str,
) -> Entry {
    Entry {
        problem,
        action,
        summary,
        remediation,
    }
}

fn by_error(error: &str, status: u16) -> Entry {
    use Action::*;
    use Problem::*;
    match error {
        "temporarily_unavailable" | "server_error" => e(
            Transient,
            Retry,
            "The identity service had a temporary problem.",
            "Retry shortly.",
        ),
        "slow_down" => e(
            Throttled,
            Retry,
            "Polling too fast.",
            "Wait longer between polls.",
        ),
        "authorization_pending" => e(
            InteractionRequired,
            Retry,
            "The device-code sign-in is still pending.",
            "Keep polling.",
        ),
        "authorization_declined" | "access_denied" => e(
            DeviceCodeDeclined,
            Stop,
            "The sign-in was declined.",
            "Sign in again and approve the request.",
        ),
        "expired_token" => e(
            DeviceCodeExpired,
            SignIn,
            "The device code expired.",
            "Start the device-code sign-in again.",
        ),
        "bad_verification_code" => e(
            BadDeviceCode,
            Stop,
            "The identity service did not recognise the device code.",
            "Start the sign-in again; report a bug if it repeats.",
        ),
        "consent_required" => e(
            ConsentRequired,
            AdminConsent,
            "Consent is missing for the requested permissions.",
            "Sign in interactively to consent, or ask an administrator to grant admin consent.",
        ),
        "interaction_required" => e(
            InteractionRequired,
            SignIn,
            "The identity service needs the person to interact (MFA, consent, policy).",
            "Sign in interactively.",
        ),
        "invalid_grant" => e(
            SignInExpired,
            SignIn,
            "The saved sign-in or code cannot be used any more.",
            "Sign in again.",
        ),
        "invalid_client" => e(
            Configuration,
            FixConfiguration,
            "The application's credential was rejected.",
            "Check the client id, secret or certificate.",
        ),
        "unauthorized_client" => e(
            Configuration,
            FixConfiguration,
            "The application may not use this grant.",
            "Check the app registration's platform settings.",
        ),
        "invalid_scope" => e(
            InvalidScope,
            FixConfiguration,
            "The requested scope is invalid.",
            "Fix the scope list.",
        ),
        "invalid_request" | "unsupported_grant_type" | "invalid_resource" => e(
            Configuration,
            FixConfiguration,
            "The identity service rejected the request as invalid.",
            "Check the configuration; report a bug if it is right.",
        ),
        _ if status == 429 => e(
            Throttled,
            Retry,
            "The identity service is throttling requests.",
            "Wait (Retry-After) and retry.",
        ),
        _ if status >= 500 => e(
            Transient,
            Retry,
            "The identity service had a server error.",
            "Retry shortly.",
        ),
        _ => e(
            Other,
            Stop,
            "The identity service refused the request.",
            "See the error description; contact an administrator with the correlation id.",
        ),
    }
}

/// Diagnoses a token-endpoint error.
///
/// `consent_url` is the admin consent URL for this application, attached where consent is the
/// cure (see [`admin_consent_url`](crate::admin_consent_url)).
///
/// ```
/// use msauth::{diagnose, Action, ErrorResponse, Problem};
/// let mut body = ErrorResponse::new("invalid_grant");
/// body.error_codes = vec![700082];
/// let d = diagnose(400, &body, None, None);
/// assert_eq!(d.problem(), Problem::SignInExpired);
/// assert_eq!(d.action(), Action::SignIn);
/// assert!(!d.retryable());
/// ```
pub fn diagnose(
    status: u16,
    body: &ErrorResponse,
    retry_after: Option<Duration>,
    consent_url: Option<&Url>,
) -> Diagnosis {
    let code = body.code();
    let mut entry = code
        .and_then(by_code)
        .unwrap_or_else(|| by_error(&body.error, status));
    // Transport-level classification wins for throttling and server errors without a known code.
    if code.and_then(by_code).is_none() {
        if status == 429 {
            entry = by_error("", 429);
        } else if status >= 500 && entry.problem == Problem::Other {
            entry = by_error("", status);
        }
    }
    // A Conditional Access failure that asks for claims can be cured by signing in with them.
    if body.claims.is_some() && entry.problem == Problem::BlockedByConditionalAccess {
        entry.action = Action::SignIn;
    }
    let mut d = Diagnosis::new(
        entry.problem,
        entry.action,
        entry.summary,
        entry.remediation,
    );
    d.code = code;
    d.error = body.error.clone();
    d.retry_after = retry_after;
    d.retryable = matches!(entry.action, Action::Retry) || status == 429 || status >= 500;
    d.claims = body.claims.clone();
    d.trace_id = body.trace_id.clone();
    d.correlation_id = body.correlation_id.clone();
    if let Some(url) = consent_url {
        d = d.with_consent_url(url.clone());
    }
    d
}

pub(crate) fn diagnose_auth_error(err: &AuthError) -> Diagnosis {
    use Action::*;
    use Problem::*;
    match err {
        AuthError::Service(s) => s.diagnosis.clone(),
        AuthError::BadResponse { status, problem } => {
            let mut d = Diagnosis::new(
                BadResponse,
                Retry,
                format!("The identity service returned {problem}."),
                "Check proxies between this machine and the identity service; retry later.",
            );
            d.retryable = *status >= 500
                || matches!(problem, ResponseProblem::Truncated | ResponseProblem::Html);
            d
        }
        AuthError::EndpointNotFound { url, problem } => Diagnosis::new(
            Configuration,
            FixConfiguration,
            format!("There is no identity endpoint at {url}: it answered HTTP 404 with {problem}."),
            "A wrong address is not transient: check the authority in the configuration (the \
             tenant, the login host, or the authority base URL and its path), then try again.",
        ),
        AuthError::Transport { stage, message } => {
            let mut d = Diagnosis::new(
                Network,
                Retry,
                format!("Could not reach the identity service: {message}."),
                "Check the network connection and retry.",
            );
            d.retryable = true;
            if *stage == SendStage::MaybeSent {
                d.remediation
                    .push_str(" The request may have reached the service.");
            }
            d
        }
        AuthError::Authority(e) => Diagnosis::new(
            Configuration,
            FixConfiguration,
            e.to_string(),
            "Fix the authority configuration.",
        ),
        AuthError::Config(m) => Diagnosis::new(
            Configuration,
            FixConfiguration,
            m.clone(),
            "Fix the configuration.",
        ),
        AuthError::Redirect(RedirectError::Denied { error, description }) => {
            let body = ErrorResponse {
                error: error.clone(),
                error_description: description.clone(),
                ..Default::default()
            };
            diagnose(400, &body, None, None)
        }
        AuthError::Redirect(e) => Diagnosis::new(
            BadRedirect,
            SignIn,
            e.to_string(),
            "Start the sign-in again.",
        ),
        AuthError::DeviceFlow(DeviceFlowError::Declined) => Diagnosis::new(
            DeviceCodeDeclined,
            Stop,
            err.to_string(),
            "Sign in again and approve the request.",
        ),
        AuthError::DeviceFlow(DeviceFlowError::Expired) => Diagnosis::new(
            DeviceCodeExpired,
            SignIn,
            err.to_string(),
            "Start the device-code sign-in again and finish within the time shown.",
        ),
        AuthError::DeviceFlow(_) => Diagnosis::new(
            BadDeviceCode,
            Stop,
            err.to_string(),
            "Start the sign-in again.",
        ),
        AuthError::SignInRequired(m) => Diagnosis::new(
            SignInRequired,
            SignIn,
            format!("Sign-in required: {m}."),
            "Sign in interactively (browser or device code).",
        ),
        AuthError::Cache(e) => Diagnosis::new(
            CacheUnusable,
            SignIn,
            e.to_string(),
            match e {
                crate::error::CacheError::Permissions { .. } => {
                    "Make the token cache file private to its owner (chmod 600) if nobody else \
                     could have changed it; otherwise delete it and sign in again."
                }
                _ => "Delete the token cache file and sign in again.",
            },
        ),
        AuthError::Timeout(m) => {
            let mut d = Diagnosis::new(Network, Retry, format!("Timed out: {m}."), "Try again.");
            d.retryable = true;
            d
        }
        AuthError::Certificate(m) => Diagnosis::new(
            CertificateRejected,
            FixConfiguration,
            m.clone(),
            "Check the certificate and private key files.",
        ),
        AuthError::Pkcs12(e) => Diagnosis::new(
            CertificateRejected,
            FixConfiguration,
            e.to_string(),
            match e {
                crate::error::Pkcs12Error::WrongPassword => {
                    "Check the PKCS#12 password (the one chosen when the .pfx was exported)."
                }
                _ => {
                    "Export the certificate with its private key again (a .pfx with a password, or PEM)."
                }
            },
        ),
    }
}

impl AuthError {
    /// What this failure means and what to do about it.
    pub fn diagnosis(&self) -> Diagnosis {
        diagnose_auth_error(self)
    }
}
