//! Errors: what failed, at which stage, and (through [`AuthError::diagnosis`]) what to do.

use std::fmt;
use std::time::Duration;

use crate::authority::AuthorityError;
use crate::diagnosis::kinds::Diagnosis;

/// The JSON error body of an OAuth 2.0 endpoint (RFC 6749 §5.2) with Microsoft's extra fields.
///
/// Hand-written rather than `oauth2::StandardErrorResponse` because that type drops
/// `error_codes`, `trace_id`, `correlation_id`, `timestamp`, `suberror` and `claims`, which
/// support cases and diagnosis need. Every member except `error` is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct ErrorResponse {
    /// The OAuth error string, e.g. `invalid_grant`. Branch on this and `error_codes`.
    pub error: String,
    /// Human text (starts `AADSTSnnnnn:` at Microsoft). Log it; never parse it.
    #[serde(default)]
    pub error_description: Option<String>,
    /// AADSTS numbers.
    #[serde(default)]
    pub error_codes: Vec<u32>,
    /// Developer link.
    #[serde(default)]
    pub error_uri: Option<String>,
    /// Server timestamp.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Trace id, for support.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Correlation id, for support.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Sub-classification of `invalid_grant` / `interaction_required`.
    #[serde(default)]
    pub suberror: Option<String>,
    /// A claims request (JSON) to pass on the next sign-in, from Conditional Access failures.
    #[serde(default)]
    pub claims: Option<String>,
}

impl ErrorResponse {
    /// An error body with only the `error` string.
    pub fn new(error: impl Into<String>) -> Self {
        ErrorResponse {
            error: error.into(),
            ..Default::default()
        }
    }

    /// The first AADSTS code, if any.
    pub fn code(&self) -> Option<u32> {
        self.error_codes.first().copied().or_else(|| {
            // Some servers send the code only in the description ("AADSTS50011: ...").
            let d = self.error_description.as_deref()?;
            let rest = d.strip_prefix("AADSTS")?;
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        })
    }
}

/// The identity service answered with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// HTTP status.
    pub status: u16,
    /// The parsed error body (for 429/5xx without a JSON body: `error` is `http_<status>`).
    pub response: ErrorResponse,
    /// The server's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// What it means and what to do.
    pub diagnosis: Diagnosis,
}

/// Whether a failed request may have reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendStage {
    /// The request never left (connection refused, DNS, TLS): safe to retry.
    NotSent,
    /// The request may have been processed (e.g. connection dropped while waiting).
    MaybeSent,
}

/// What was wrong with a response that is not a usable token or error body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// An HTML page (typically from a proxy or captive portal) instead of JSON.
    Html,
    /// A content type other than JSON.
    WrongContentType(String),
    /// The body ended early.
    Truncated,
    /// The body exceeded the limit (bytes).
    TooLarge(usize),
    /// JSON that does not have the expected shape.
    Malformed(String),
    /// An empty body.
    Empty,
    /// A redirect: token endpoints never redirect, so this is refused.
    Redirect,
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseProblem::Html => {
                f.write_str("an HTML page instead of JSON (a proxy or captive portal in the way?)")
            }
            ResponseProblem::WrongContentType(ct) => {
                write!(f, "content type {ct:?} instead of application/json")
            }
            ResponseProblem::Truncated => f.write_str("a truncated body"),
            ResponseProblem::TooLarge(limit) => write!(f, "a body larger than {limit} bytes"),
            ResponseProblem::Malformed(why) => write!(f, "malformed JSON: {why}"),
            ResponseProblem::Empty => f.write_str("an empty body"),
            ResponseProblem::Redirect => {
                f.write_str("a redirect, which token endpoints never send")
            }
        }
    }
}

/// A problem with the local token cache.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache file is not valid (corrupt, truncated, edited or from another program).
    #[error("token cache {path} is unreadable ({reason}); delete it and sign in again")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The cache file may be read or written by other users (Unix mode wider than 0600): its
    /// tokens could have been copied or replaced, so it is not used.
    #[error(
        "token cache {path} is open to other users (mode {mode:03o}, expected 600); not used: \
         if the file is yours and untouched, `chmod 600` it, else delete it and sign in again"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits (`mode & 0o777`).
        mode: u32,
    },
    /// An I/O failure reading, writing or locking the cache.
    #[error("token cache {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error text.
        reason: String,
    },
}

/// Everything that can go wrong getting a token.
///
/// Every variant maps to a [`Diagnosis`] through [`AuthError::diagnosis`]. No variant carries a
/// secret: `Display` and `Debug` are safe to log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The identity service refused the request.
    #[error("{}", service_message(.0))]
    Service(Box<ServiceError>),
    /// The response was neither a token nor an error body.
    #[error("the identity service (HTTP {status}) returned {problem}")]
    BadResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        problem: ResponseProblem,
    },
    /// The endpoint answered 404 with something other than an identity service's JSON error: no
    /// such endpoint at that address (a wrong authority URL or path), which retrying will not
    /// change.
    #[error("no identity endpoint at {url} (HTTP 404, {problem}): check the authority URL")]
    EndpointNotFound {
        /// The endpoint asked (no query string, no credential: token endpoints take their
        /// parameters in the body).
        url: String,
        /// What came back instead.
        problem: ResponseProblem,
    },
    /// A network failure.
    #[error("network error talking to the identity service ({stage:?}): {message}")]
    Transport {
        /// Whether the request may have been sent.
        stage: SendStage,
        /// The transport's message (no URL query, no body).
        message: String,
    },
    /// An authority problem.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// A local configuration problem (missing scope, public client asked for app-only token…).
    #[error("configuration: {0}")]
    Config(String),
    /// The sign-in redirect could not be used.
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    /// The device-code flow ended without a token.
    #[error(transparent)]
    DeviceFlow(#[from] DeviceFlowError),
    /// No cached token and no way to get one silently: an interactive sign-in is needed.
    #[error("sign-in required: {0}")]
    SignInRequired(String),
    /// The token cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Waiting for something took too long.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The certificate or private key could not be used.
    #[error("certificate credential: {0}")]
    Certificate(String),
    /// A PKCS#12 (`.pfx`/`.p12`) key file could not be opened.
    #[error(transparent)]
    Pkcs12(#[from] Pkcs12Error),
}

fn service_message(e: &ServiceError) -> String {
    let mut s = format!(
        "{} (HTTP {}, {}",
        e.diagnosis.summary(),
        e.status,
        e.response.error
    );
    if let Some(code) = e.response.code() {
        s.push_str(&format!(", AADSTS{code}"));
    }
    if let Some(t) = &e.response.trace_id {
        s.push_str(&format!(", trace id {t}"));
    }
    if let Some(c) = &e.response.correlation_id {
        s.push_str(&format!(", correlation id {c}"));
    }
    s.push(')');
    s
}

impl AuthError {
    /// The service error, if the identity service refused.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            AuthError::Service(e) => Some(e),
            _ => None,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.diagnosis().retryable()
    }
}

/// Problems with the redirect of a browser sign-in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// The authorization server returned an error (`error` / `error_description`).
    #[error("sign-in failed: {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        /// The `error` parameter.
        error: String,
        /// The `error_description` parameter.
        description: Option<String>,
    },
    /// `state` missing or different from the one sent: possible cross-site request forgery.
    #[error("the sign-in response does not belong to this sign-in (state mismatch); start again")]
    StateMismatch,
    /// No `code` in the redirect.
    #[error("the sign-in response has no authorization code")]
    MissingCode,
    /// The text is not a URL or query string.
    #[error("not a redirect URL: {0}")]
    Unparsable(String),
}

/// Terminal outcomes of the device-code flow other than a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceFlowError {
    /// The person declined (`authorization_declined` or `access_denied`).
    #[error("the sign-in was declined on the other device")]
    Declined,
    /// The code expired before the person finished (`expired_token`).
    #[error("the device code expired; start the sign-in again")]
    Expired,
    /// The server did not recognise the device code (`bad_verification_code`): a bug.
    #[error("the identity service did not recognise the device code")]
    BadVerificationCode,
    /// The flow already finished.
    #[error("the device-code flow has already finished")]
    Finished,
}

/// Why a PKCS#12 (`.pfx`/`.p12`) file could not be used. No variant carries the password or key
/// material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs12Error {
    /// The password does not open the file (its integrity check or decryption failed).
    #[error("the PKCS#12 file's password is wrong (or the file is damaged)")]
    WrongPassword,
    /// Not a PKCS#12 file, or a damaged one.
    #[error("not a readable PKCS#12 file: {0}")]
    Corrupt(String),
    /// A readable file that uses an encryption or integrity algorithm not supported here.
    #[error("the PKCS#12 file uses an unsupported algorithm: {0}")]
    Unsupported(String),
    /// The file holds no private key (a certificate-only export).
    #[error("the PKCS#12 file holds no private key; export the certificate with its private key")]
    NoPrivateKey,
    /// The file holds more than one private key: which one to use would be a guess.
    #[error("the PKCS#12 file holds several private keys; export only the application's")]
    SeveralPrivateKeys,
    /// No certificate in the file belongs to the private key.
    #[error("the PKCS#12 file holds no certificate for its private key")]
    NoCertificate,
}
