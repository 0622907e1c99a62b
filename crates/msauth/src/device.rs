//! Device code flow (RFC 8628) as an explicit state machine: time is passed in, the caller
//! sends the requests and sleeps.

use std::time::{Duration, SystemTime};

use url::Url;

use crate::authority::Authority;
use crate::error::{AuthError, DeviceFlowError};
use crate::secret::DeviceCode;
use crate::token::{
    ClientCredential, Grant, TokenRequest, TokenResponse, error_from_response, form_post,
    json_body, later, malformed, parse_token_response,
};

/// Extra wait added on each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Interval used when the server sends none (RFC 8628 default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The start of a device-code sign-in: `POST {device endpoint}` with `client_id` and `scope`.
#[derive(Clone, Debug)]
pub struct DeviceCodeRequest {
    client_id: String,
    scopes: Vec<String>,
}

impl DeviceCodeRequest {
    /// A device-code start for `client_id` and `scopes`.
    pub fn new(
        client_id: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        DeviceCodeRequest {
            client_id: client_id.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// The HTTP request.
    pub fn to_http(&self, authority: &Authority) -> Result<http::Request<Vec<u8>>, AuthError> {
        let mut f = url::form_urlencoded::Serializer::new(String::new());
        f.append_pair("client_id", &self.client_id);
        f.append_pair("scope", &self.scopes.join(" "));
        form_post(authority.device_endpoint()?, f.finish().into_bytes())
    }

    /// Parses the device authorization response and starts the polling state machine.
    pub fn parse_response(
        &self,
        resp: http::Response<&[u8]>,
        now: SystemTime,
    ) -> Result<DeviceCodeFlow, AuthError> {
        if !resp.status().is_success() {
            return Err(error_from_response(&resp, now, None));
        }
        let status = resp.status().as_u16();
        #[derive(serde::Deserialize)]
        struct Raw {
            device_code: String,
            user_code: String,
            #[serde(alias = "verification_url")]
            verification_uri: String,
            #[serde(default)]
            verification_uri_complete: Option<String>,
            expires_in: serde_json::Value,
            #[serde(default)]
            interval: Option<serde_json::Value>,
            #[serde(default)]
            message: Option<String>,
        }
        let raw: Raw = json_body(&resp)?;
        let malformed = |m: &str| malformed(status, m);
        let secs = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let expires_in =
            secs(&raw.expires_in).ok_or_else(|| malformed("expires_in is not a number"))?;
        let interval = match &raw.interval {
            Some(v) => {
                Duration::from_secs(secs(v).ok_or_else(|| malformed("interval is not a number"))?)
            }
            None => DEFAULT_INTERVAL,
        };
        let verification_uri = Url::parse(&raw.verification_uri)
            .map_err(|_| malformed("verification_uri is not a URL"))?;
        Ok(DeviceCodeFlow {
            client_id: self.client_id.clone(),
            scopes: self.scopes.clone(),
            device_code: DeviceCode::new(raw.device_code),
            user_code: raw.user_code,
            verification_uri,
            verification_uri_complete: raw
                .verification_uri_complete
                .and_then(|u| Url::parse(&u).ok()),
            message: raw.message,
            expires_at: later(now, Duration::from_secs(expires_in)),
            interval,
            next_poll_at: later(now, interval),
            finished: false,
        })
    }
}

/// What happened after a poll.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DevicePoll {
    /// Not yet: poll again at (or after) this time.
    Pending {
        /// Earliest time for the next poll.
        next_poll_at: SystemTime,
    },
    /// Signed in.
    Token(Box<TokenResponse>),
}

/// A device-code sign-in waiting for the person. Show [`user_code`](Self::user_code) and
/// [`verification_uri`](Self::verification_uri) (or [`message`](Self::message)), then loop:
/// wait until [`next_poll_at`](Self::next_poll_at), send [`poll_request`](Self::poll_request),
/// feed the response to [`handle_response`](Self::handle_response).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use msauth::{Authority, ClientCredential, DevicePoll, DeviceCodeRequest, Endpoints};
/// let authority = Authority::custom(
///     Endpoints::new("http://127.0.0.1:1/authorize", "http://127.0.0.1:1/token")?
///         .with_device("http://127.0.0.1:1/devicecode")?,
/// );
/// let start = DeviceCodeRequest::new("app", ["Mail.Read"]);
/// let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
/// let reply = http::Response::builder().status(200).header("content-type", "application/json").body(
///     &br#"{"device_code":"dc","user_code":"ABCD","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5}"#[..])?;
/// let mut flow = start.parse_response(reply, t0)?;
/// assert_eq!(flow.next_poll_at(), t0 + Duration::from_secs(5));
/// let _poll = flow.poll_request(&authority, &ClientCredential::None, t0 + Duration::from_secs(5))?;
/// let pending = http::Response::builder().status(400).header("content-type", "application/json")
///     .body(&br#"{"error":"slow_down"}"#[..])?;
/// match flow.handle_response(pending, t0 + Duration::from_secs(6))? {
///     DevicePoll::Pending { next_poll_at } => assert_eq!(next_poll_at, t0 + Duration::from_secs(16)),
///     other => panic!("expected pending, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeviceCodeFlow {
    client_id: String,
    scopes: Vec<String>,
    device_code: DeviceCode,
    user_code: String,
    verification_uri: Url,
    verification_uri_complete: Option<Url>,
    message: Option<String>,
    expires_at: SystemTime,
    interval: Duration,
    next_poll_at: SystemTime,
    finished: bool,
}

impl DeviceCodeFlow {
    /// The scopes being requested.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
    /// The code the person types.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }
    /// Where the person types it.
    pub fn verification_uri(&self) -> &Url {
        &self.verification_uri
    }
    /// A URL with the code embedded, if the server sent one (Microsoft does not).
    pub fn verification_uri_complete(&self) -> Option<&Url> {
        self.verification_uri_complete.as_ref()
    }
    /// The server's ready-made instruction text, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
    /// When the device code expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
    /// The current polling interval (grows by 5 s on each `slow_down`).
    pub fn interval(&self) -> Duration {
        self.interval
    }
    /// Earliest time for the next poll.
    pub fn next_poll_at(&self) -> SystemTime {
        self.next_poll_at
    }
    /// Whether the flow has ended (token or terminal error).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The poll request. Fails with [`DeviceFlowError::Expired`] once `now` is past the expiry
    /// and with [`DeviceFlowError::Finished`] after the end. Polling before
    /// [`next_poll_at`](Self::next_poll_at) is the caller's bug; the request is still built, the
    /// server will answer `slow_down`.
    pub fn poll_request(
        &mut self,
        authority: &Authority,
        credential: &ClientCredential,
        now: SystemTime,
    ) -> Result<http::Request<Vec<u8>>, AuthError> {
        if self.finished {
            return Err(DeviceFlowError::Finished.into());
        }
        if now >= self.expires_at {
            self.finished = true;
            return Err(DeviceFlowError::Expired.into());
        }
        TokenRequest::new(
            self.client_id.clone(),
            Grant::DeviceCode(self.device_code.clone()),
            Vec::<String>::new(),
        )
        .to_http(authority, credential, now)
    }

    /// Handles a poll response at `now`.
    pub fn handle_response(
        &mut self,
        resp: http::Response<&[u8]>,
        now: SystemTime,
    ) -> Result<DevicePoll, AuthError> {
        if self.finished {
            return Err(DeviceFlowError::Finished.into());
        }
        match parse_token_response(resp, now, None) {
            Ok(t) => {
                self.finished = true;
                Ok(DevicePoll::Token(Box::new(t)))
            }
            Err(AuthError::Service(e)) => match e.response.error.as_str() {
                "authorization_pending" => {
                    self.next_poll_at = later(now, self.interval);
                    Ok(DevicePoll::Pending {
                        next_poll_at: self.next_poll_at,
                    })
                }
                "slow_down" => {
                    tracing::debug!(
                        interval_secs = self.interval.as_secs() + SLOW_DOWN_STEP.as_secs(),
                        "device code: slow_down"
                    );
                    self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
                    self.next_poll_at = later(now, self.interval);
                    Ok(DevicePoll::Pending {
                        next_poll_at: self.next_poll_at,
                    })
                }
                "authorization_declined" | "access_denied" => self.fail(DeviceFlowError::Declined),
                "expired_token" => self.fail(DeviceFlowError::Expired),
                "bad_verification_code" => self.fail(DeviceFlowError::BadVerificationCode),
                _ if e.diagnosis.retryable() => {
                    // Transient (5xx, 429, temporarily_unavailable): keep polling, honouring Retry-After.
                    let wait = e.retry_after.unwrap_or(self.interval).max(self.interval);
                    self.next_poll_at = later(now, wait);
                    Ok(DevicePoll::Pending {
                        next_poll_at: self.next_poll_at,
                    })
                }
                _ => {
                    self.finished = true;
                    Err(AuthError::Service(e))
                }
            },
            Err(other) => Err(other),
        }
    }

    fn fail(&mut self, e: DeviceFlowError) -> Result<DevicePoll, AuthError> {
        self.finished = true;
        Err(e.into())
    }
}
