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

/// The kind of problem behind a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Problem {
    /// The user (or admin) has not consented to the app and scopes (65001, `consent_required`).
    ConsentRequired,
    /// The scopes need an administrator's approval (90094).
    AdminConsentRequired,
    /// The person asked an admin for approval; waiting for the admin (90095).
    AdminApprovalPending,
    /// Consent was declined (65004).
    ConsentDeclined,
    /// The user is not assigned to the application and assignment is required (50105).
    UserNotAssigned,
    /// The application does not exist in that tenant or cloud (700016).
    ApplicationNotFound,
    /// The application is disabled (7000112).
    ApplicationDisabled,
    /// Wrong client secret, often the secret's id instead of its value (7000215).
    InvalidClientSecret,
    /// The client secret has expired (7000222).
    ExpiredClientSecret,
    /// The certificate or assertion was rejected (700027, 50012).
    CertificateRejected,
    /// The app is not allowed to use public-client flows, or a credential is missing (7000218).
    CredentialMissing,
    /// Multi-factor authentication is required (50076, 50158).
    MfaRequired,
    /// The user must register for multi-factor authentication (50079).
    MfaEnrollmentRequired,
    /// Conditional Access blocked the sign-in (53003).
    BlockedByConditionalAccess,
    /// Some interaction is required (`interaction_required`, 50058).
    InteractionRequired,
    /// The refresh token expired or was revoked (700082, 70008, 50173, 70043, 70000).
    SignInExpired,
    /// Tenant not found, or wrong cloud (90002).
    TenantNotFound,
    /// Single-tenant application used with `/common`, or grant not supported there (50194).
    WrongTenantEndpoint,
    /// The account is not in the tenant (50020, 50034).
    AccountNotInTenant,
    /// Wrong user name or password (50126).
    InvalidCredentials,
    /// The redirect URI does not match the registration (50011).
    RedirectMismatch,
    /// The scope is invalid (70011).
    InvalidScope,
    /// The resource is not in the tenant (500011).
    ResourceNotFound,
    /// The authorization code was already used or is invalid (54005, 501481, 700005).
    CodeUnusable,
    /// The device-code sign-in was declined.
    DeviceCodeDeclined,
    /// The device code expired.
    DeviceCodeExpired,
    /// The device code was not recognised.
    BadDeviceCode,
    /// A temporary service problem (5xx, `temporarily_unavailable`, transient AADSTS codes).
    Transient,
    /// Too many requests (429, 50196).
    Throttled,
    /// A resource (Graph/EWS) wants a token with more claims (CAE / Conditional Access).
    ClaimsChallenge,
    /// A resource rejected the access token (expired, wrong audience, revoked).
    TokenRejected,
    /// A resource says the application lacks permission (consent missing or mailbox scoping).
    PermissionMissing,
    /// No token and no silent way to get one.
    SignInRequired,
    /// The sign-in redirect was unusable or forged.
    BadRedirect,
    /// A network failure.
    Network,
    /// The service answered with something that is not a token or error.
    BadResponse,
    /// The local cache is unusable.
    CacheUnusable,
    /// A local configuration problem.
    Configuration,
    /// Anything else.
    Other,
}

/// What the caller (or the person) should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Retry the same request, after `retry_after` if given.
    Retry,
    /// Get a new token (with `claims` if given) and retry once.
    RefreshToken,
    /// Start an interactive sign-in (pass `claims` if given). Daemons: alert an operator.
    SignIn,
    /// An administrator must grant consent: open `consent_url`.
    AdminConsent,
    /// An administrator must change something in the tenant or app registration.
    ContactAdmin,
    /// The configuration of this program is wrong.
    FixConfiguration,
    /// Stop; nothing automatic will help.
    Stop,
}

/// What a failure means and what to do: code, summary, remediation, consent URL, retry advice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    code: Option<u32>,
    error: String,
    problem: Problem,
    action: Action,
    summary: String,
    remediation: String,
    consent_url: Option<Url>,
    retryable: bool,
    retry_after: Option<Duration>,
    claims: Option<String>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
}

impl Diagnosis {
    /// A diagnosis with the given problem, action and texts; the rest empty.
    pub fn new(
        problem: Problem,
        action: Action,
        summary: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        Diagnosis {
            code: None,
            error: String::new(),
            problem,
            action,
            summary: summary.into(),
            remediation: remediation.into(),
            consent_url: None,
            retryable: matches!(action, Action::Retry),
            retry_after: None,
            claims: None,
            trace_id: None,
            correlation_id: None,
        }
    }

    /// The AADSTS code, if known.
    pub fn code(&self) -> Option<u32> {
        self.code
    }
    /// The OAuth `error` string (or a resource error code), possibly empty.
    pub fn error(&self) -> &str {
        &self.error
    }
    /// The kind of problem.
    pub fn problem(&self) -> Problem {
        self.problem
    }
    /// What to do next.
    pub fn action(&self) -> Action {
        self.action
    }
    /// One sentence: what went wrong.
    pub fn summary(&self) -> &str {
        &self.summary
    }
    /// What the person should do.
    pub fn remediation(&self) -> &str {
        &self.remediation
    }
    /// The admin consent URL, where consent is the cure and the context was known.
    pub fn consent_url(&self) -> Option<&Url> {
        self.consent_url.as_ref()
    }
    /// Whether retrying the same request later may succeed.
    pub fn retryable(&self) -> bool {
        self.retryable
    }
    /// How long the server asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    /// A claims request (JSON) to pass on the next token request or sign-in.
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }
    /// The service's trace id.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }
    /// The service's correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// Attaches the admin consent URL — only where consent is the cure (consent or permission
    /// missing, application not found in the tenant); otherwise the diagnosis is unchanged.
    pub fn with_consent_url(mut self, url: Url) -> Self {
        if matches!(
            self.problem,
            Problem::ConsentRequired
                | Problem::AdminConsentRequired
                | Problem::ApplicationNotFound
                | Problem::PermissionMissing
        ) || self.action == Action::AdminConsent
        {
            self.remediation = format!("{} Admin consent URL: {url}", self.remediation);
            self.consent_url = Some(url);
        }
        self
    }

    /// One human-readable paragraph: summary, remediation and support ids.
    pub fn explain(&self) -> String {
        let mut s = format!("{} {}", self.summary, self.remediation);
        if let Some(c) = self.code {
            s.push_str(&format!(" (AADSTS{c}"));
            if let Some(t) = &self.trace_id {
                s.push_str(&format!(", trace id {t}"));
            }
            if let Some(c) = &self.correlation_id {
                s.push_str(&format!(", correlation id {c}"));
            }
            s.push(')');
        }
        s
    }
}

impl std::fmt::Display for Diagnosis {
    /// The same text as [`Diagnosis::explain`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.explain())
    }
}

/// Every AADSTS code with specific handling, for documentation and tests.
pub const HANDLED_CODES: &[u32] = &[
    65001, 65004, 90094, 90095, 50105, 700016, 7000112, 7000215, 7000222, 700027, 50012, 7000218,
    50076, 50158, 50079, 53003, 50058, 700082, 70008, 50173, 70043, 70000, 700084, 90002, 50194,
    9001023, 90124, 90130, 50020, 50034, 50126, 50011, 70011, 500011, 54005, 501481, 700005, 70016,
    70019, 50033, 90006, 90024, 90033, 90090, 50196,
];

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

fn by_code(code: u32) -> Option<Entry> {
    use Action::*;
    use Problem::*;
    Some(match code {
        65001 => e(
            ConsentRequired,
            AdminConsent,
            "The user or administrator has not consented to this application and its permissions.",
            "Sign in interactively to consent; for application permissions an administrator must grant admin consent.",
        ),
        90094 => e(
            AdminConsentRequired,
            AdminConsent,
            "The admin has not approved this application yet: the requested permissions need an administrator's consent.",
            "Ask a tenant administrator to grant admin consent.",
        ),
        90095 => e(
            AdminApprovalPending,
            ContactAdmin,
            "An administrator's approval was requested and is pending.",
            "Wait until an administrator approves the request (admin consent workflow), then sign in again.",
        ),
        65004 => e(
            ConsentDeclined,
            Stop,
            "Consent was declined.",
            "Sign in again and accept the permissions, or ask an administrator to grant consent.",
        ),
        50105 => e(
            UserNotAssigned,
            ContactAdmin,
            "The signed-in user is not assigned to this application, and the application requires assignment.",
            "An administrator must assign the user (Enterprise applications > the app > Users and groups) or turn off 'Assignment required'.",
        ),
        700016 => e(
            ApplicationNotFound,
            FixConfiguration,
            "The application was not found in this tenant.",
            "Check the client id, tenant and cloud; if they are right, an administrator must consent to the application in this tenant.",
        ),
        7000112 => e(
            ApplicationDisabled,
            ContactAdmin,
            "The application is disabled in this tenant.",
            "An administrator must enable the application.",
        ),
        7000215 => e(
            InvalidClientSecret,
            FixConfiguration,
            "The client secret is wrong.",
            "Use the secret's Value (not its Secret ID) from the app registration's Certificates & secrets page.",
        ),
        7000222 => e(
            ExpiredClientSecret,
            FixConfiguration,
            "The client secret has expired.",
            "Create a new client secret in the app registration and update this program's configuration.",
        ),
        700027 => e(
            CertificateRejected,
            FixConfiguration,
            "The certificate assertion was rejected (the signature did not validate with any registered key).",
            "Upload this certificate to the app registration (Certificates & secrets) or configure the one that is registered.",
        ),
        50012 => e(
            CertificateRejected,
            FixConfiguration,
            "The client assertion or certificate is invalid.",
            "Check that the certificate is registered on the application, not expired, and that the clock is right.",
        ),
        7000218 => e(
            CredentialMissing,
            FixConfiguration,
            "The request has no client credential and the application is not a public client.",
            "Enable 'Allow public client flows' in the app registration for device code, or configure a client secret or certificate.",
        ),
        50076 => e(
            MfaRequired,
            SignIn,
            "Multi-factor authentication is required.",
            "Sign in interactively and complete multi-factor authentication.",
        ),
        50158 => e(
            MfaRequired,
            SignIn,
            "An external security challenge was not satisfied.",
            "Sign in interactively and complete the challenge.",
        ),
        50079 => e(
            MfaEnrollmentRequired,
            SignIn,
            "The user must register for multi-factor authentication.",
            "Sign in interactively and register a second factor.",
        ),
        53003 => e(
            BlockedByConditionalAccess,
            ContactAdmin,
            "Access was blocked by a Conditional Access policy.",
            "Give an administrator the correlation id and time; they can see which policy applied in the sign-in logs.",
        ),
        50058 => e(
            InteractionRequired,
            SignIn,
            "No signed-in session was found for a silent sign-in.",
            "Sign in interactively.",
        ),
        700082 => e(
            SignInExpired,
            SignIn,
            "The saved sign-in expired because it was not used for a long time.",
            "Sign in again.",
        ),
        70008 => e(
            SignInExpired,
            SignIn,
            "The saved sign-in has expired or was revoked.",
            "Sign in again.",
        ),
        50173 => e(
            SignInExpired,
            SignIn,
            "The saved sign-in was revoked (for example after a password change or a session revocation).",
            "Sign in again.",
        ),
        70043 => e(
            SignInExpired,
            SignIn,
            "The saved sign-in expired because of a Conditional Access sign-in frequency policy.",
            "Sign in again.",
        ),
        70000 => e(
            SignInExpired,
            SignIn,
            "The saved sign-in (grant) is invalid.",
            "Sign in again.",
        ),
        700084 => e(
            SignInExpired,
            SignIn,
            "The refresh token for a single-page application expired (24 hour limit).",
            "Sign in again.",
        ),
        90002 => e(
            TenantNotFound,
            FixConfiguration,
            "The tenant was not found.",
            "Check the tenant id or domain and the cloud (global, US Government, China).",
        ),
        50194 => e(
            WrongTenantEndpoint,
            FixConfiguration,
            "The application is single-tenant and cannot use the /common endpoint.",
            "Configure the tenant id (or /organizations for multi-tenant applications).",
        ),
        9001023 | 90124 | 90130 => e(
            WrongTenantEndpoint,
            FixConfiguration,
            "This grant or application is not supported on /common or /consumers.",
            "Use /organizations or the tenant id.",
        ),
        50020 => e(
            AccountNotInTenant,
            FixConfiguration,
            "The account is not a member or guest of this tenant.",
            "Sign in to the account's home tenant (or /organizations), or ask an administrator to invite the account.",
        ),
        50034 => e(
            AccountNotInTenant,
            SignIn,
            "The account does not exist in this tenant.",
            "Check the user name and tenant.",
        ),
        50126 => e(
            InvalidCredentials,
            SignIn,
            "The user name or password is wrong.",
            "Sign in again with the right credentials.",
        ),
        50011 => e(
            RedirectMismatch,
            FixConfiguration,
            "The redirect URI does not match the ones registered for the application.",
            "Register this exact redirect URI (scheme, host, port and path) in the app registration.",
        ),
        70011 => e(
            InvalidScope,
            FixConfiguration,
            "The requested scope is invalid.",
            "Request one resource per token, do not mix '.default' with other scopes, and use '{resource}/.default' for application permissions.",
        ),
        500011 => e(
            ResourceNotFound,
            FixConfiguration,
            "The resource (e.g. Exchange Online) was not found in this tenant.",
            "Check the scope's host and the tenant; the tenant may not have that service.",
        ),
        54005 => e(
            CodeUnusable,
            SignIn,
            "The authorization code was already redeemed.",
            "Start the sign-in again; codes are single-use.",
        ),
        501481 => e(
            CodeUnusable,
            SignIn,
            "The PKCE code verifier does not match the code challenge.",
            "Start the sign-in again.",
        ),
        700005 => e(
            CodeUnusable,
            SignIn,
            "The authorization code belongs to another tenant or was already used.",
            "Start the sign-in again with the right tenant.",
        ),
        70016 => e(
            InteractionRequired,
            Retry,
            "The device-code sign-in is still pending.",
            "Keep polling.",
        ),
        70019 => e(
            DeviceCodeExpired,
            SignIn,
            "The device code expired.",
            "Start the device-code sign-in again.",
        ),
        50033 | 90006 | 90024 | 90033 | 90090 => e(
            Transient,
            Retry,
            "The identity service had a temporary problem.",
            "Retry shortly.",
        ),
        50196 => e(
            Throttled,
            Retry,
            "Tokens are requested too often (loop detected).",
            "Cache tokens and wait before retrying.",
        ),
        _ => return None,
    })
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
                crate::cert::Pkcs12Error::WrongPassword => {
                    "Check the PKCS#12 password (the one chosen when the .pfx was exported)."
                }
                _ => {
                    "Export the certificate with its private key again (a .pfx with a password, or PEM)."
                }
            },
        ),
    }
}

/// Parameters of a `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3, plus Microsoft's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// `realm`.
    pub realm: Option<String>,
    /// `error` (e.g. `invalid_token`, `insufficient_claims`).
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `authorization_uri`.
    pub authorization_uri: Option<String>,
    /// `claims`, as sent (base64 JSON for CAE).
    pub claims: Option<String>,
}

impl BearerChallenge {
    /// Parses the `Bearer` challenge out of a `WWW-Authenticate` value, if there is one.
    pub fn parse(header: &str) -> Option<BearerChallenge> {
        // Hand-written: no maintained small crate parses RFC 7235 auth-params with quoted
        // strings; the grammar we need (token=token / token="quoted") is small.
        let lower = header.to_ascii_lowercase();
        let start = find_scheme(&lower, "bearer")?;
        let mut rest = &header[start + "bearer".len()..];
        let mut ch = BearerChallenge::default();
        loop {
            rest = rest.trim_start_matches([' ', ',', '\t']);
            let Some(eq) = rest.find('=') else { break };
            let name = rest[..eq].trim().to_ascii_lowercase();
            if name.contains(' ') {
                break; // next scheme
            }
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                out.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => out.push(c),
                    }
                }
                value = out;
                rest = q.get(end..).unwrap_or("");
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_owned();
                rest = &rest[end..];
            }
            match name.as_str() {
                "realm" => ch.realm = Some(value),
                "error" => ch.error = Some(value),
                "error_description" => ch.error_description = Some(value),
                "authorization_uri" => ch.authorization_uri = Some(value),
                "claims" => ch.claims = Some(value),
                _ => {}
            }
        }
        Some(ch)
    }
}

fn find_scheme(lower: &str, scheme: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(scheme) {
        let at = from + i;
        let before_ok = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b',');
        let after = lower.as_bytes().get(at + scheme.len());
        if before_ok && matches!(after, None | Some(b' ')) {
            return Some(at);
        }
        from = at + scheme.len();
    }
    None
}

/// The result of [`diagnose_resource_challenge`]: what a 401/403 from Graph or EWS means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceChallenge {
    diagnosis: Diagnosis,
    bearer: Option<BearerChallenge>,
    claims: Option<String>,
    refresh_once: bool,
}

impl ResourceChallenge {
    /// The diagnosis.
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.diagnosis
    }
    /// The parsed `Bearer` challenge, if the response had one.
    pub fn bearer(&self) -> Option<&BearerChallenge> {
        self.bearer.as_ref()
    }
    /// The decoded claims JSON of a claims challenge: pass it to
    /// [`TokenProvider::refresh_with_claims`](crate::TokenProvider::refresh_with_claims).
    pub fn claims(&self) -> Option<&str> {
        self.claims.as_deref()
    }
    /// Whether getting a fresh token and retrying once may help. Never retry more than once.
    pub fn should_refresh(&self) -> bool {
        self.refresh_once
    }
    /// Attaches the admin consent URL (where consent is the cure).
    pub fn with_consent_url(mut self, url: &Url) -> Self {
        self.diagnosis = self.diagnosis.with_consent_url(url.clone());
        self
    }
}

/// Diagnoses a 401 or 403 from Microsoft Graph or EWS.
///
/// Reads `WWW-Authenticate` (Bearer `error`, `error_description`, `authorization_uri`,
/// `claims`), `x-ms-diagnostics` (EWS) and the body (Graph's `{"error":{"code":…}}`). A claims
/// challenge (`insufficient_claims`, CAE) yields [`ResourceChallenge::claims`] and
/// [`should_refresh`](ResourceChallenge::should_refresh): refresh once with those claims. Use
/// [`TokenProvider::diagnose_resource_challenge`](crate::TokenProvider::diagnose_resource_challenge)
/// to get the admin consent URL filled in.
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use msauth::{diagnose_resource_challenge, Problem};
/// let mut h = HeaderMap::new();
/// h.insert("www-authenticate", HeaderValue::from_static(
///     r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=""#));
/// let c = diagnose_resource_challenge(StatusCode::UNAUTHORIZED, &h, b"");
/// assert_eq!(c.diagnosis().problem(), Problem::ClaimsChallenge);
/// assert!(c.should_refresh());
/// assert_eq!(c.claims(), Some(r#"{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}"#));
/// ```
pub fn diagnose_resource_challenge(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> ResourceChallenge {
    use Action::*;
    use Problem::*;
    let bearer = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(BearerChallenge::parse);
    let ms_diag = headers
        .get("x-ms-diagnostics")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body_code, body_message) = graph_error(body);
    let bearer_error = bearer
        .as_ref()
        .and_then(|b| b.error.clone())
        .unwrap_or_default();
    let raw_claims = bearer.as_ref().and_then(|b| b.claims.clone());
    let claims = raw_claims.as_deref().map(decode_claims);

    let mut d;
    let mut refresh_once = false;
    if bearer_error == "insufficient_claims" || claims.is_some() {
        d = Diagnosis::new(
            ClaimsChallenge,
            RefreshToken,
            "The service wants a token with additional claims (Continuous Access Evaluation or Conditional Access).",
            "Get a new token with the claims from the challenge and retry once; if that needs interaction, sign in again.",
        );
        refresh_once = true;
    } else if ms_diag.contains("2000008") || ms_diag.to_ascii_lowercase().contains("no permissions")
    {
        d = Diagnosis::new(
            PermissionMissing,
            AdminConsent,
            "The admin has not approved this application yet: its token carries no permissions for this mailbox service.",
            "An administrator must grant admin consent for the application's permissions.",
        );
    } else if status == http::StatusCode::FORBIDDEN {
        let lower = body_code.to_ascii_lowercase();
        if lower.contains("accessdenied")
            || lower.contains("requestdenied")
            || lower.contains("forbidden")
            || body_code.is_empty()
        {
            d = Diagnosis::new(
                PermissionMissing,
                AdminConsent,
                "Access denied: the admin has not approved this application's mail permissions yet, or the mailbox is outside the application's allowed scope.",
                "An administrator must grant admin consent for the mail permissions (or widen the application access policy / RBAC scope to this mailbox).",
            );
        } else {
            d = Diagnosis::new(
                PermissionMissing,
                ContactAdmin,
                "The service refused the request (403).",
                "Check the application's permissions and the mailbox.",
            );
        }
    } else if status == http::StatusCode::UNAUTHORIZED {
        let text = format!(
            "{body_message} {}",
            bearer
                .as_ref()
                .and_then(|b| b.error_description.clone())
                .unwrap_or_default()
        )
        .to_ascii_lowercase();
        if text.contains("expired") || text.contains("lifetime") {
            d = Diagnosis::new(
                TokenRejected,
                RefreshToken,
                "The access token has expired.",
                "Get a new token and retry once.",
            );
            refresh_once = true;
        } else if text.contains("audience") {
            d = Diagnosis::new(
                TokenRejected,
                FixConfiguration,
                "The access token is for a different service (wrong audience).",
                "Request the token with this service's scope (Graph: https://graph.microsoft.com/.default, EWS: https://outlook.office365.com/.default).",
            );
        } else {
            d = Diagnosis::new(
                TokenRejected,
                AdminConsent,
                "The service rejected a valid-looking token: usually the admin has not approved this application yet.",
                "An administrator must grant admin consent; if consent exists, get a new token and retry once.",
            );
            refresh_once = true;
        }
    } else {
        d = Diagnosis::new(
            Other,
            Stop,
            format!("Unexpected HTTP {} from the service.", status.as_u16()),
            "Not an authentication problem.",
        );
    }
    d.error = if !bearer_error.is_empty() {
        bearer_error
    } else {
        body_code
    };
    d.claims = claims.clone();
    ResourceChallenge {
        diagnosis: d,
        bearer,
        claims,
        refresh_once,
    }
}

/// Merges a claims request (JSON, e.g. from a challenge) with client capabilities (`cp1`) into
/// the `claims` parameter of a token or authorize request: capabilities go under
/// `access_token.xms_cc.values`. Returns `None` when there is nothing to send.
///
/// ```
/// let merged = msauth::merge_claims(Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#), &["cp1"])?;
/// assert_eq!(merged.as_deref(), Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1"},"xms_cc":{"values":["cp1"]}}}"#));
/// assert_eq!(msauth::merge_claims(None, &[])?, None);
/// # Ok::<(), msauth::AuthError>(())
/// ```
pub fn merge_claims(
    claims: Option<&str>,
    capabilities: &[&str],
) -> Result<Option<String>, AuthError> {
    if capabilities.is_empty() {
        return Ok(claims.map(str::to_owned));
    }
    let mut root = match claims {
        Some(c) => serde_json::from_str::<serde_json::Value>(c)
            .map_err(|_| AuthError::Config("the claims request is not JSON".into()))?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let Some(obj) = root.as_object_mut() else {
        return Err(AuthError::Config(
            "the claims request is not a JSON object".into(),
        ));
    };
    let at = obj
        .entry("access_token")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let Some(at) = at.as_object_mut() else {
        return Err(AuthError::Config(
            "claims access_token is not a JSON object".into(),
        ));
    };
    at.insert(
        "xms_cc".into(),
        serde_json::json!({ "values": capabilities }),
    );
    Ok(Some(root.to_string()))
}

/// Claims in a challenge are base64 (standard or URL-safe, padded or not); decode to JSON. If it
/// does not decode, it is passed through as sent (some servers send plain JSON).
fn decode_claims(raw: &str) -> String {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(raw.trim())
            && let Ok(s) = String::from_utf8(bytes)
        {
            return s;
        }
    }
    raw.to_owned()
}

fn graph_error(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Outer>(body) {
        Ok(o) => (o.error.code, o.error.message),
        Err(_) => (String::new(), String::new()),
    }
}
