//! EWS errors: [`EwsError`] (its documentation is the module's) and the conversion into
//! [`connector::Error`].

use std::fmt;
use std::time::Duration;

use connector::{AuthProblem, Delivery, ErrorKind, ResponseDetails};

use crate::xml::XmlError;

/// `ResponseClass` of an EWS response message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// The operation succeeded.
    Success,
    /// It succeeded partly; the payload may be incomplete.
    Warning,
    /// It failed; `ResponseCode` says why.
    Error,
}

impl ResponseClass {
    /// Parses the attribute value leniently (unknown values count as `Error`).
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "Success" => ResponseClass::Success,
            "Warning" => ResponseClass::Warning,
            _ => ResponseClass::Error,
        }
    }
}

/// An EWS `ResponseCode` failure, from a response message or a SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseError {
    /// `ResponseClass` (`Error` for faults).
    pub class: ResponseClass,
    /// The `ResponseCode`, for example `ErrorItemNotFound`.
    pub code: String,
    /// `MessageText`, for people.
    pub text: String,
    /// `MessageXml` name/value pairs (`BackOffMilliseconds`, `LineNumber`, …).
    pub message_xml: Vec<(String, String)>,
}

impl ResponseError {
    /// A response error with a code and text.
    pub fn new(code: impl Into<String>, text: impl Into<String>) -> Self {
        ResponseError {
            class: ResponseClass::Error,
            code: code.into(),
            text: text.into(),
            message_xml: Vec::new(),
        }
    }

    /// A value from `MessageXml`.
    pub fn xml_value(&self, name: &str) -> Option<&str> {
        self.message_xml
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `BackOffMilliseconds` from `MessageXml`, if the server sent one.
    pub fn back_off(&self) -> Option<Duration> {
        self.xml_value("BackOffMilliseconds")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis)
    }

    /// What a caller can do about this code.
    pub fn kind(&self) -> ErrorKind {
        classify_code(&self.code)
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.text.is_empty() {
            write!(f, ": {}", self.text)?;
        }
        Ok(())
    }
}

/// Maps an EWS `ResponseCode` to what the caller can do (protocol reference §3.5).
pub(crate) fn classify_code(code: &str) -> ErrorKind {
    match code {
        "ErrorServerBusy" | "ErrorExceededConnectionCount" | "ErrorTooManyObjectsOpened" => {
            ErrorKind::Throttled
        }
        "ErrorInternalServerTransientError"
        | "ErrorTimeoutExpired"
        | "ErrorMailboxStoreUnavailable"
        | "ErrorMailboxMoveInProgress"
        | "ErrorConnectionFailed"
        | "ErrorInternalServerError"
        | "ErrorBatchProcessingStopped" => ErrorKind::Transient,
        "ErrorItemNotFound"
        | "ErrorFolderNotFound"
        | "ErrorNonExistentMailbox"
        | "ErrorInvalidIdMalformed"
        | "ErrorInvalidIdNotAnItemAttachmentId"
        | "ErrorMailboxNotFound" => ErrorKind::NotFound,
        "ErrorInvalidSyncStateData"
        | "ErrorStaleObject"
        | "ErrorIrresolvableConflict"
        | "ErrorInvalidChangeKey" => ErrorKind::Refused,
        "ErrorSchemaValidation" | "ErrorInvalidRequest" | "ErrorInvalidServerVersion" => {
            ErrorKind::BadResponse
        }
        _ => ErrorKind::Refused,
    }
}

/// Every way an EWS call can fail: what the server said (ResponseCode, MessageText,
/// MessageXml, SOAP faults, HTTP statuses), classified for retry the way smithy-rs classifies
/// ([`EwsError::kind`], [`EwsError::is_retryable`]). [`EwsClient`](crate::EwsClient) converts
/// it into [`connector::Error`] with every detail kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EwsError {
    /// The server answered the operation (or one item of it) with a `ResponseCode`.
    #[error("EWS answered {0}")]
    Response(ResponseError),
    /// A SOAP fault (usually HTTP 500).
    #[error("EWS SOAP fault {fault_code}: {error}")]
    Fault {
        /// `faultcode`.
        fault_code: String,
        /// The `ResponseCode`/`Message` from `detail` (or `faultstring`).
        error: ResponseError,
    },
    /// An HTTP status without a readable SOAP body.
    #[error("EWS answered HTTP {status}")]
    Http {
        /// The status.
        status: u16,
        /// `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// 401 after one token refresh, or a token that could not be obtained.
    #[error("EWS refused the sign-in: {0}")]
    Unauthorized(Box<AuthProblem>),
    /// HTTP 403 with a valid token: EWS is switched off for this app or organisation.
    #[error("EWS is not allowed for this application (HTTP 403)")]
    Forbidden,
    /// The response was not understandable XML, or not the expected shape.
    #[error("unreadable EWS response: {0}")]
    BadXml(String),
    /// The network failed (connect, TLS, reset, timeout).
    #[error("connection to EWS failed: {message}")]
    Transport {
        /// What failed.
        message: String,
        /// Whether the request may have reached the server.
        maybe_sent: bool,
    },
    /// Our configuration is wrong.
    #[error("EWS configuration: {0}")]
    Config(String),
    /// The answer came from another URL than the endpoint: the caller's reqwest client followed
    /// a redirect (EWS never needs one). Build it with `redirect::Policy::none()`.
    #[error(
        "EWS answered from {host} after a redirect, which is refused: the HTTP client must not \
         follow redirects (reqwest::redirect::Policy::none())"
    )]
    Redirected {
        /// The host the redirect led to.
        host: String,
    },
}

impl From<XmlError> for EwsError {
    fn from(e: XmlError) -> Self {
        EwsError::BadXml(e.to_string())
    }
}

impl EwsError {
    /// What a caller can do.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EwsError::Response(r) => r.kind(),
            EwsError::Fault { error, .. } => error.kind(),
            EwsError::Http { status, .. } => match status {
                429 => ErrorKind::Throttled,
                401 => ErrorKind::Authentication,
                403 => ErrorKind::Refused,
                404 => ErrorKind::NotFound,
                s if *s >= 500 => ErrorKind::Transient,
                _ => ErrorKind::BadResponse,
            },
            EwsError::Unauthorized(_) => ErrorKind::Authentication,
            EwsError::Forbidden => ErrorKind::Refused,
            EwsError::BadXml(_) | EwsError::Redirected { .. } => ErrorKind::BadResponse,
            EwsError::Transport { .. } => ErrorKind::Transient,
            EwsError::Config(_) => ErrorKind::Configuration,
        }
    }

    /// The `ResponseCode`, if the server gave one.
    pub fn response_code(&self) -> Option<&str> {
        match self {
            EwsError::Response(r) | EwsError::Fault { error: r, .. } => Some(&r.code),
            _ => None,
        }
    }

    /// The server's back-off hint (`BackOffMilliseconds`, `Retry-After`).
    pub fn back_off(&self) -> Option<Duration> {
        match self {
            EwsError::Response(r) | EwsError::Fault { error: r, .. } => r.back_off(),
            EwsError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

/// Context of a failed call, for the converted [`connector::Error`].
#[derive(Debug, Clone, Default)]
pub(crate) struct CallContext {
    /// HTTP status of the last answer.
    pub status: Option<u16>,
    /// The server's request id (`request-id`, `X-BEServer`…).
    pub request_id: Option<String>,
    /// A bounded copy of the body.
    pub body: Option<String>,
    /// Whether the request may have taken effect.
    pub maybe_sent: bool,
}

/// Converts an EWS error into the connector's error, keeping ResponseCode, MessageText, the
/// MessageXml values and the request id.
pub(crate) fn into_connector(err: EwsError, what: &str, ctx: &CallContext) -> connector::Error {
    let kind = err.kind();
    let mut details = ResponseDetails::default();
    details.status = ctx.status;
    details.request_id = ctx.request_id.clone();
    details.body_excerpt = ctx.body.clone();
    let mut message = format!("{what}: {err}");
    if let EwsError::Response(r) | EwsError::Fault { error: r, .. } = &err {
        details.server_code = Some(r.code.clone());
        if !r.message_xml.is_empty() {
            let pairs: Vec<String> = r
                .message_xml
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            message.push_str(&format!(" [MessageXml: {}]", pairs.join(", ")));
        }
    }
    let back_off = err.back_off();
    let delivery = delivery(&err, ctx);
    let mut out = match err {
        EwsError::Unauthorized(problem) => {
            connector::Error::auth(*problem).with_delivery(Delivery::Answered)
        }
        _ => connector::Error::new(kind, message),
    };
    if let Some(b) = back_off {
        out = out.with_retry_after(b);
    }
    if let Some(d) = delivery {
        out = out.with_delivery(d);
    }
    out.with_response(details)
}

/// How far a transient failure got, which decides whether a send may be retried
/// ([`connector::Error::retry_action`]); `None` keeps the kind's default.
fn delivery(err: &EwsError, ctx: &CallContext) -> Option<Delivery> {
    if err.kind() != ErrorKind::Transient {
        return None;
    }
    Some(match err {
        // Connection refused or DNS: the request never left.
        EwsError::Transport { maybe_sent, .. } if !maybe_sent && !ctx.maybe_sent => {
            Delivery::NotSent
        }
        EwsError::Transport { .. } => Delivery::MaybeSent,
        // A status without a SOAP answer: 503 refused the request, but a 500 without a fault or
        // a gateway's 502/504 may come after EWS did the work.
        EwsError::Http { status, .. } if *status != 503 => Delivery::MaybeSent,
        // EWS answered (a ResponseCode, a fault, a 503).
        _ if ctx.maybe_sent => Delivery::MaybeSent,
        _ if ctx.status.is_some() => Delivery::Answered,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify_code("ErrorServerBusy"), ErrorKind::Throttled);
        assert_eq!(
            classify_code("ErrorExceededConnectionCount"),
            ErrorKind::Throttled
        );
        assert_eq!(classify_code("ErrorItemNotFound"), ErrorKind::NotFound);
        assert_eq!(
            classify_code("ErrorNonExistentMailbox"),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify_code("ErrorMailboxStoreUnavailable"),
            ErrorKind::Transient
        );
        assert_eq!(
            classify_code("ErrorImpersonateUserDenied"),
            ErrorKind::Refused
        );
        assert_eq!(classify_code("ErrorSendAsDenied"), ErrorKind::Refused);
    }

    #[test]
    fn conversion_keeps_code_text_xml_and_request_id() {
        let mut r = ResponseError::new(
            "ErrorServerBusy",
            "The server cannot service this request right now.",
        );
        r.message_xml
            .push(("BackOffMilliseconds".into(), "1500".into()));
        let ctx = CallContext {
            status: Some(500),
            request_id: Some("req-42".into()),
            body: None,
            maybe_sent: false,
        };
        let e = into_connector(EwsError::Response(r), "listing the inbox", &ctx);
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        let d = e.response().unwrap();
        assert_eq!(d.server_code.as_deref(), Some("ErrorServerBusy"));
        assert_eq!(d.request_id.as_deref(), Some("req-42"));
        let s = e.to_string();
        assert!(s.contains("cannot service"), "{s}");
        assert!(s.contains("BackOffMilliseconds=1500"), "{s}");
    }
}
