//! What a diagnosis says: the problem, the action, and the [`Diagnosis`] that carries them.

use std::time::Duration;

use url::Url;

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
    pub(super) code: Option<u32>,
    pub(super) error: String,
    pub(super) problem: Problem,
    pub(super) action: Action,
    pub(super) summary: String,
    pub(super) remediation: String,
    pub(super) consent_url: Option<Url>,
    pub(super) retryable: bool,
    pub(super) retry_after: Option<Duration>,
    pub(super) claims: Option<String>,
    pub(super) trace_id: Option<String>,
    pub(super) correlation_id: Option<String>,
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
