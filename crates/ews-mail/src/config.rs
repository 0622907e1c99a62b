//! What an [`EwsClient`](crate::EwsClient) is built from: the endpoint, the credentials, the
//! mailbox and how it is reached, and the retry, size and timing knobs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use connector::ConnectionLog;
use connector::retry::ProcessJitter;
use url::Url;

use crate::soap::ServerVersion;
use crate::types::FolderId;
use crate::xml::DEFAULT_MAX_RESPONSE;

pub use connector::{AccessToken, Challenge, Refusal, StaticToken, TokenSource};

connector::secret_type!(
    /// The password of [`Credentials::BasicOnPremises`], redacted in `Debug` and `Display`.
    Password
);

/// How the client signs in.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// OAuth bearer tokens (Exchange Online, modern-auth on-premises), from the workspace's
    /// token seam: msauth's `TokenProvider` as it is, or a [`StaticToken`].
    Bearer(Arc<dyn TokenSource>),
    /// HTTP Basic authentication: explicit opt-in for on-premises servers only (Exchange Online
    /// turned it off in 2022).
    BasicOnPremises {
        /// User name (`DOMAIN\user` or UPN).
        user: String,
        /// Password.
        password: Password,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Bearer(t) => f.debug_tuple("Bearer").field(t).finish(),
            Credentials::BasicOnPremises { user, .. } => f
                .debug_struct("BasicOnPremises")
                .field("user", user)
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

/// Whose mailbox the client works on, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailboxAccess {
    /// The signed-in user's own mailbox (delegated `EWS.AccessAsUser.All`).
    Own(String),
    /// A shared or delegated mailbox reached with the user's token: folders are addressed with
    /// `DistinguishedFolderId/Mailbox`.
    Shared(String),
    /// App-only (`full_access_as_app`): every request carries `ExchangeImpersonation` for this
    /// mailbox.
    Impersonate(String),
}

impl MailboxAccess {
    /// The mailbox's primary SMTP address.
    pub fn address(&self) -> &str {
        match self {
            MailboxAccess::Own(a) | MailboxAccess::Shared(a) | MailboxAccess::Impersonate(a) => a,
        }
    }

    /// A well-known folder of this mailbox, addressed as the access mode requires.
    pub fn folder(&self, well_known: &str) -> FolderId {
        match self {
            MailboxAccess::Shared(a) => FolderId::distinguished_in(well_known, a),
            _ => FolderId::distinguished(well_known),
        }
    }
}

pub use connector::retry::RetryPolicy;

/// A source of jitter in `[0, 1]` for back-off: any [`connector::retry::Jitter`], a closure
/// `|| 0.5` included. The default is the process's shared [`ProcessJitter`].
pub type Jitter = Arc<dyn connector::retry::Jitter>;

/// Client configuration: [`EwsConfig::new`], then set the fields to change.
#[derive(Clone)]
#[non_exhaustive]
pub struct EwsConfig {
    /// The EWS endpoint ([`EXCHANGE_ONLINE`](crate::EXCHANGE_ONLINE) or an on-premises URL).
    /// It must be `https`, or `http` on a loopback host (127.0.0.0/8, `::1`, `localhost`); the
    /// client refuses anything else ([`check_endpoint`](crate::check_endpoint)).
    pub endpoint: Url,
    /// How to sign in.
    pub credentials: Credentials,
    /// Whose mailbox.
    pub access: MailboxAccess,
    /// `RequestServerVersion`.
    pub version: ServerVersion,
    /// Retries.
    pub retry: RetryPolicy,
    /// Largest response read, in bytes.
    pub max_response: usize,
    /// Timeout of one HTTP exchange.
    pub timeout: Duration,
    /// Jitter for backoff.
    pub jitter: Jitter,
    /// How the client waits between attempts (default [`httpcore::TokioSleeper`]; tests record
    /// the waits with [`httpcore::RecordingSleeper`] instead of sleeping), the same seam as
    /// graph-mail's.
    pub sleeper: Arc<dyn httpcore::Sleeper>,
    /// Where requests are logged (no secrets).
    pub log: ConnectionLog,
}

impl fmt::Debug for EwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EwsConfig")
            .field("endpoint", &self.endpoint.as_str())
            .field("credentials", &self.credentials)
            .field("access", &self.access)
            .field("version", &self.version)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl EwsConfig {
    /// A configuration with defaults: Exchange 2016 schema, 64 MiB responses, 100 s timeout,
    /// the workspace's [`RetryPolicy::default`].
    pub fn new(endpoint: Url, credentials: Credentials, access: MailboxAccess) -> Self {
        EwsConfig {
            endpoint,
            credentials,
            access,
            version: ServerVersion::default(),
            retry: RetryPolicy::default(),
            max_response: DEFAULT_MAX_RESPONSE,
            timeout: Duration::from_secs(100),
            jitter: Arc::new(ProcessJitter),
            sleeper: Arc::new(httpcore::TokioSleeper),
            log: ConnectionLog::default(),
        }
    }

    /// Sets the schema version.
    pub fn with_version(mut self, v: ServerVersion) -> Self {
        self.version = v;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Sets the response cap.
    pub fn with_max_response(mut self, bytes: usize) -> Self {
        self.max_response = bytes;
        self
    }

    /// Sets the jitter source.
    pub fn with_jitter(mut self, j: Jitter) -> Self {
        self.jitter = j;
        self
    }

    /// Sets how the client waits between attempts.
    pub fn with_sleeper(mut self, s: Arc<dyn httpcore::Sleeper>) -> Self {
        self.sleeper = s;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Credentials::Bearer(Arc::new(StaticToken(AccessToken::new(
            "eyJsecret.token.value",
        ))));
        assert!(!format!("{c:?}").contains("eyJsecret"));
        let b = Credentials::BasicOnPremises {
            user: "u".into(),
            password: Password::new("hunter2"),
        };
        assert!(!format!("{b:?}").contains("hunter2"));
        let url = Url::parse("https://x/EWS/Exchange.asmx").unwrap();
        let cfg = EwsConfig::new(url, b, MailboxAccess::Own("u@x".into()));
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
