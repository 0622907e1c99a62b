//! Ping reports: is a connection usable right now, and if not, what should a person do?

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::AuthProblem;
use crate::log::{ConnectionLog, LogLine};

/// Whether a connection works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum PingStatus {
    /// The connection signed in and reached its mailbox.
    Online,
    /// It did not; [`PingReport::reason`] says why.
    Offline,
}

impl fmt::Display for PingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PingStatus::Online => "ONLINE",
            PingStatus::Offline => "OFFLINE",
        })
    }
}

/// The answer to "does this connection work?", for people and for scripts.
///
/// ```
/// use connector::{ConnectionLog, PingReport, PingStatus};
///
/// let report = PingReport::online(Some(12), ConnectionLog::default());
/// assert_eq!(report.status, PingStatus::Online);
/// assert_eq!(report.waiting, Some(12));
///
/// let down = PingReport::offline(
///     "the domain admin must approve this application: open https://login.example/adminconsent",
///     ConnectionLog::default(),
/// );
/// assert!(down.to_string().starts_with("OFFLINE"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PingReport {
    /// ONLINE or OFFLINE.
    pub status: PingStatus,
    /// For OFFLINE: what is wrong and what to do, for a person.
    pub reason: Option<String>,
    /// The authentication diagnosis, when sign-in or consent is the problem.
    pub auth: Option<AuthProblem>,
    /// Messages waiting, where the connection can count (sources only).
    pub waiting: Option<u64>,
    /// When the ping finished.
    pub checked_at: OffsetDateTime,
    /// What the ping did, line by line (no secrets).
    pub log: Vec<LogLine>,
    /// When the service refused the ping for throttling and said how long to wait: that wait.
    /// The connection is reported OFFLINE, but the mail handler takes it as a pause of the
    /// source, not a fault of its connection.
    pub throttled_for: Option<std::time::Duration>,
}

impl PingReport {
    /// An ONLINE report.
    pub fn online(waiting: Option<u64>, log: ConnectionLog) -> Self {
        PingReport {
            status: PingStatus::Online,
            reason: None,
            auth: None,
            waiting,
            checked_at: OffsetDateTime::now_utc(),
            log: log.lines(),
            throttled_for: None,
        }
    }

    /// An OFFLINE report with a reason a person can act on.
    pub fn offline(reason: impl Into<String>, log: ConnectionLog) -> Self {
        PingReport {
            status: PingStatus::Offline,
            reason: Some(reason.into()),
            auth: None,
            waiting: None,
            checked_at: OffsetDateTime::now_utc(),
            log: log.lines(),
            throttled_for: None,
        }
    }

    /// An OFFLINE report built from an error: its message is the reason, an authentication
    /// diagnosis is kept, and so is the wait of a throttled answer
    /// ([`throttled_for`](Self::throttled_for)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use connector::{ConnectionLog, Error, PingReport};
    ///
    /// let busy = Error::throttled("429", Some(Duration::from_secs(240)));
    /// let r = PingReport::from_error(&busy, ConnectionLog::default());
    /// assert!(!r.is_online());
    /// assert_eq!(r.throttled_for, Some(Duration::from_secs(240)));
    /// let down = Error::transient("connection refused");
    /// assert_eq!(PingReport::from_error(&down, ConnectionLog::default()).throttled_for, None);
    /// ```
    pub fn from_error(err: &crate::Error, log: ConnectionLog) -> Self {
        let mut r = PingReport::offline(err.to_string(), log);
        r.auth = err.auth_problem().cloned();
        r.throttled_for = err.throttled_for();
        if let Some(auth) = &r.auth {
            r.reason = Some(auth.to_string());
        }
        r
    }

    /// Whether the connection is ONLINE.
    pub fn is_online(&self) -> bool {
        self.status == PingStatus::Online
    }

    /// The report as JSON, for `--json` output.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "reason": self.reason,
            "auth_code": self.auth.as_ref().and_then(|a| a.code.clone()),
            "consent_url": self.auth.as_ref().and_then(|a| a.consent_url.as_ref().map(|u| u.to_string())),
            "waiting": self.waiting,
            "checked_at": self.checked_at.unix_timestamp(),
            "log": self.log.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for PingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(w) = self.waiting {
            write!(f, ", {w} waiting")?;
        }
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}
