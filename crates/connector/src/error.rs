//! One error type for every connection, with kinds a caller can act on.
//!
//! The design follows smithy-rs' split between *actionable* information (the [`ErrorKind`], the
//! [`AuthProblem`] diagnosis, `retry_after`) and *informative* context (the server's status,
//! error code, request id and a bounded copy of the body in [`ResponseDetails`]). Every error
//! also says where the request got to ([`Delivery`]), so a caller never retries a send that the
//! service may already have accepted.

use std::fmt;
use std::time::Duration;

use url::Url;

/// Largest copy of a response body an [`Error`] keeps, in bytes.
///
/// Bodies are kept for diagnosis only; a hostile or broken server must not make an error value
/// hold megabytes.
pub const MAX_BODY_EXCERPT: usize = 2048;

/// What went wrong, in terms of what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Sign-in, token or consent failed. [`Error::auth_problem`] says what a person must do.
    Authentication,
    /// The service asked us to slow down (HTTP 429, EWS `ErrorServerBusy`).
    /// [`Error::retry_after`] says when to try again, if the service said.
    Throttled,
    /// A failure that may pass by itself: a timeout, a reset connection, a 5xx.
    Transient,
    /// The service understood the request and refused it for good (403, send-as denied, a
    /// mailbox that may not be reached). Retrying will not help.
    Refused,
    /// The mailbox, folder or message does not exist (any more).
    NotFound,
    /// The service answered something we could not understand: malformed JSON or XML, a
    /// truncated or oversized body, an unexpected content type.
    BadResponse,
    /// Our own configuration is wrong or incomplete (a missing setting, an invalid URL).
    Configuration,
    /// The connection cannot do this at all (see its capabilities).
    Unsupported,
}

impl ErrorKind {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }

    /// A short lowercase name, stable for logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::Refused => "refused",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a request got before it failed.
///
/// A send with [`Delivery::MaybeSent`] must not be retried blindly: the service may already have
/// accepted it, and a retry could deliver the mail twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// The request never left this process (bad configuration, no token, connection refused).
    NotSent,
    /// The request may have reached the service (timeout, connection reset mid-response).
    MaybeSent,
    /// The service answered: it received the request and said no, or answered nonsense.
    Answered,
}

/// What a person must do about an authentication or consent failure.
///
/// `msauth` fills this from its typed diagnosis; it is plain data here so that every connection
/// can carry it without depending on `msauth`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthProblem {
    /// The identity platform's code, for example `AADSTS65001`, when there is one.
    pub code: Option<String>,
    /// One sentence saying what is wrong, for example "the domain admin must approve this
    /// application".
    pub summary: String,
    /// What to do about it, for a person.
    pub remediation: String,
    /// Where consent is the cure: the admin consent URL to open.
    pub consent_url: Option<Url>,
    /// A claims challenge to pass to the next sign-in (Conditional Access, CAE).
    pub claims: Option<String>,
}

impl AuthProblem {
    /// A problem with a summary and remediation text.
    pub fn new(summary: impl Into<String>, remediation: impl Into<String>) -> Self {
        AuthProblem {
            code: None,
            summary: summary.into(),
            remediation: remediation.into(),
            consent_url: None,
            claims: None,
        }
    }

    /// Sets the identity platform's code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the admin consent URL that cures this problem.
    pub fn with_consent_url(mut self, url: Url) -> Self {
        self.consent_url = Some(url);
        self
    }

    /// Sets the claims challenge.
    pub fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }
}

impl fmt::Display for AuthProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        let summary = self.summary.trim_end_matches('.');
        write!(f, "{summary}")?;
        if !self.remediation.is_empty() {
            write!(f, ". {}", self.remediation)?;
        }
        if let Some(url) = &self.consent_url {
            // The remediation text may already name the URL.
            if !self.remediation.contains(url.as_str()) {
                write!(f, " (open {url})")?;
            }
        }
        Ok(())
    }
}

/// What the service said, kept for diagnosis and support requests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ResponseDetails {
    /// HTTP status, when there was an HTTP answer.
    pub status: Option<u16>,
    /// The service's own error code: Graph's `error.code`, an EWS `ResponseCode`, an OAuth
    /// `error`.
    pub server_code: Option<String>,
    /// The service's request id (`request-id`, `client-request-id`, `X-BEServer`,
    /// `trace_id`), for support.
    pub request_id: Option<String>,
    /// The first [`MAX_BODY_EXCERPT`] bytes of the body, lossily decoded.
    pub body_excerpt: Option<String>,
}

impl ResponseDetails {
    /// Details with just an HTTP status.
    pub fn status(status: u16) -> Self {
        ResponseDetails {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Sets the server's error code.
    pub fn with_server_code(mut self, code: impl Into<String>) -> Self {
        self.server_code = Some(code.into());
        self
    }

    /// Sets the server's request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Keeps a bounded copy of `body` (at most [`MAX_BODY_EXCERPT`] bytes, cut on a character
    /// boundary).
    pub fn with_body(mut self, body: &[u8]) -> Self {
        self.body_excerpt = Some(excerpt(body));
        self
    }
}

/// What a refused `From` means and what an Exchange administrator runs about it: the text of
/// every connection's send-as refusal (Graph and EWS `ErrorSendAsDenied`, SMTP `5.2.252` and
/// `5.7.60`). `sender` is whoever submitted — the mailbox sent from, or the signed-in user —
/// and `from` the address in `From` (or `MAIL FROM`).
///
/// ```
/// let text = connector::send_as_denied("helpdesk@contoso.com", "billing@contoso.com");
/// assert!(text.starts_with("helpdesk@contoso.com may not send as billing@contoso.com"));
/// assert!(text.contains(
///     "Add-RecipientPermission -Identity billing@contoso.com -Trustee helpdesk@contoso.com -AccessRights SendAs"
/// ));
/// ```
pub fn send_as_denied(sender: &str, from: &str) -> String {
    format!(
        "{sender} may not send as {from}: it holds neither Send As nor Send on Behalf on {from}; \
         an Exchange administrator grants Send As with `Add-RecipientPermission -Identity {from} \
         -Trustee {sender} -AccessRights SendAs` (the mail looks sent by {from}) or Send on Behalf \
         with `Set-Mailbox -Identity {from} -GrantSendOnBehalfTo @{{Add=\"{sender}\"}}` (shown \
         as sent by {sender} on behalf of {from}); an alias of {sender} itself needs no grant"
    )
}

/// A bounded, lossily decoded copy of `body`.
pub fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_BODY_EXCERPT)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if body.len() > MAX_BODY_EXCERPT {
        text.push_str("…[truncated]");
    }
    text
}

/// At most `max` bytes of a server-provided string, cut at a character boundary, with `…`
/// where it was cut: the one bound on text a server put in a challenge or a reply.
///
/// ```
/// assert_eq!(connector::bounded("short", 8), "short");
/// assert_eq!(connector::bounded("ééé", 3), "é…");
/// ```
pub fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The error of every message source and outbound.
///
/// ```
/// use connector::{Error, ErrorKind};
/// use std::time::Duration;
///
/// let err = Error::throttled("Graph answered 429", Some(Duration::from_secs(2)));
/// assert_eq!(err.kind(), ErrorKind::Throttled);
/// assert!(err.is_retryable());
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    delivery: Delivery,
    retry_after: Option<Duration>,
    auth: Option<Box<AuthProblem>>,
    response: Option<Box<ResponseDetails>>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind`. The message should say what was being done, for a person.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let delivery = match kind {
            ErrorKind::Configuration | ErrorKind::Unsupported => Delivery::NotSent,
            ErrorKind::Transient => Delivery::MaybeSent,
            _ => Delivery::Answered,
        };
        Error {
            kind,
            message: message.into(),
            delivery,
            retry_after: None,
            auth: None,
            response: None,
            source: None,
        }
    }

    /// An authentication or consent failure with its diagnosis.
    pub fn auth(problem: AuthProblem) -> Self {
        let message = problem.to_string();
        Error::new(ErrorKind::Authentication, message).with_auth_problem(problem)
    }

    /// The service asked us to slow down.
    pub fn throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        let mut e = Error::new(ErrorKind::Throttled, message);
        e.retry_after = retry_after;
        e
    }

    /// A failure that may pass by itself.
    pub fn transient(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Transient, message)
    }

    /// The service refused for good.
    pub fn refused(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Refused, message)
    }

    /// The thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// The service answered something we could not understand.
    pub fn bad_response(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadResponse, message)
    }

    /// Our configuration is wrong.
    pub fn configuration(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Configuration, message)
    }

    /// The connection cannot do this.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// Sets how far the request got.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Sets when to retry.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// Attaches an authentication diagnosis.
    pub fn with_auth_problem(mut self, problem: AuthProblem) -> Self {
        self.auth = Some(Box::new(problem));
        self
    }

    /// Attaches what the service said.
    pub fn with_response(mut self, details: ResponseDetails) -> Self {
        self.response = Some(Box::new(details));
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong, in terms of what the caller can do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind or the details.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Whether the request may already have taken effect at the service. A send for which this
    /// is true must not be retried without a way to detect duplicates.
    pub fn may_have_taken_effect(&self) -> bool {
        match self.delivery {
            Delivery::NotSent => false,
            Delivery::MaybeSent => true,
            // The service answered with an error: 4xx/5xx answers mean the operation did not
            // happen, except a bad response to a request that may have succeeded.
            Delivery::Answered => self.kind == ErrorKind::BadResponse,
        }
    }

    /// Whether a retry of the request that failed with this error may help (smithy-rs's
    /// classification, kept beside the error rather than in each executor): throttling and
    /// transient failures may pass; a request that may already have taken effect is retried
    /// only when it is [`Idempotency::Safe`](crate::retry::Idempotency::Safe); the service's
    /// [`retry_after`](Self::retry_after) comes along. [`RetryPolicy`](crate::retry::RetryPolicy)
    /// decides when.
    ///
    /// ```
    /// use connector::retry::{Idempotency, RetryAction};
    /// use connector::{Delivery, Error};
    ///
    /// let reset = Error::transient("the connection was reset").with_delivery(Delivery::MaybeSent);
    /// assert_eq!(reset.retry_action(Idempotency::Safe), RetryAction::Retry { after: None });
    /// assert_eq!(reset.retry_action(Idempotency::SendOnce), RetryAction::Forbidden);
    /// ```
    pub fn retry_action(
        &self,
        idempotency: crate::retry::Idempotency,
    ) -> crate::retry::RetryAction {
        use crate::retry::{Idempotency, RetryAction};
        if !self.is_retryable() {
            RetryAction::No
        } else if idempotency == Idempotency::SendOnce && self.may_have_taken_effect() {
            RetryAction::Forbidden
        } else {
            RetryAction::Retry {
                after: self.retry_after,
            }
        }
    }

    /// How far the request got.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// When the service asked us to retry.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The pause a throttled answer asked for: [`retry_after`](Self::retry_after) when the
    /// error is [`ErrorKind::Throttled`] and the wait is not zero. A caller that gets one
    /// pauses the whole source or job for that long (the mail handler does) rather than
    /// failing each message.
    ///
    /// ```
    /// use std::time::Duration;
    /// use connector::Error;
    ///
    /// let wait = Some(Duration::from_secs(240));
    /// assert_eq!(Error::throttled("429", wait).throttled_for(), wait);
    /// assert_eq!(Error::throttled("429", None).throttled_for(), None);
    /// assert_eq!(Error::transient("503").with_retry_after(Duration::from_secs(5)).throttled_for(), None);
    /// ```
    pub fn throttled_for(&self) -> Option<Duration> {
        if self.kind != ErrorKind::Throttled {
            return None;
        }
        self.retry_after.filter(|w| !w.is_zero())
    }

    /// The authentication diagnosis, for [`ErrorKind::Authentication`].
    pub fn auth_problem(&self) -> Option<&AuthProblem> {
        self.auth.as_deref()
    }

    /// What the service said.
    pub fn response(&self) -> Option<&ResponseDetails> {
        self.response.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(r) = &self.response {
            if let Some(status) = r.status {
                write!(f, " (HTTP {status}")?;
                if let Some(code) = &r.server_code {
                    write!(f, ", {code}")?;
                }
                if let Some(id) = &r.request_id {
                    write!(f, ", request id {id}")?;
                }
                write!(f, ")")?;
            } else if let Some(code) = &r.server_code {
                write!(f, " ({code})")?;
            }
        }
        if let Some(after) = self.retry_after {
            write!(f, "; retry after {} ms", after.as_millis())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_say_whether_a_retry_may_help() {
        assert!(Error::throttled("x", None).is_retryable());
        assert!(Error::transient("x").is_retryable());
        for e in [
            Error::refused("x"),
            Error::not_found("x"),
            Error::bad_response("x"),
            Error::configuration("x"),
            Error::unsupported("x"),
            Error::auth(AuthProblem::new("consent missing", "ask the admin")),
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn delivery_decides_whether_a_request_may_have_taken_effect() {
        assert!(!Error::configuration("no url").may_have_taken_effect());
        assert!(Error::transient("reset").may_have_taken_effect());
        assert!(!Error::refused("403").may_have_taken_effect());
        assert!(
            !Error::transient("connect refused")
                .with_delivery(Delivery::NotSent)
                .may_have_taken_effect()
        );
    }

    #[test]
    fn body_excerpt_is_bounded() {
        let body = vec![b'a'; MAX_BODY_EXCERPT * 10];
        let d = ResponseDetails::status(500).with_body(&body);
        let text = d.body_excerpt.unwrap_or_default();
        assert!(text.len() < MAX_BODY_EXCERPT + 20);
        assert!(text.ends_with("[truncated]"));
    }

    #[test]
    fn display_names_status_code_and_request_id() {
        let e = Error::refused("sending as billing@contoso.com").with_response(
            ResponseDetails::status(403)
                .with_server_code("ErrorSendAsDenied")
                .with_request_id("abc-123"),
        );
        assert_eq!(
            e.to_string(),
            "refused: sending as billing@contoso.com (HTTP 403, ErrorSendAsDenied, request id abc-123)"
        );
    }

    #[test]
    fn auth_error_carries_consent_url() {
        let url = Url::parse("https://login.example/common/adminconsent?client_id=1").unwrap();
        let e = Error::auth(
            AuthProblem::new(
                "the domain admin must approve this application",
                "ask an administrator",
            )
            .with_code("AADSTS90094")
            .with_consent_url(url.clone()),
        );
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert_eq!(
            e.auth_problem().and_then(|p| p.consent_url.clone()),
            Some(url.clone())
        );
        assert!(e.to_string().contains("AADSTS90094"));
        assert_eq!(e.to_string().matches(url.as_str()).count(), 1);
        let named = AuthProblem::new("admin approval needed.", format!("Open {url}"))
            .with_consent_url(url.clone());
        assert_eq!(named.to_string().matches(url.as_str()).count(), 1);
        assert!(!named.to_string().contains(".."));
    }
}
