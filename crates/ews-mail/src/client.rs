//! The I/O layer: [`EwsClient`] (its documentation is the module's).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use connector::retry::{Attempts, Idempotency};
use connector::{AuthProblem, Challenge, ConnectionLog, LogLine, Refusal};
use httpcore::BodyError;
use time::OffsetDateTime;

use crate::config::{Credentials, EwsConfig, MailboxAccess};
use crate::endpoint::check_endpoint;
use crate::error::{CallContext, EwsError, into_connector};
use crate::soap::{self, Operation, RequestHeader, response_messages};

/// The Exchange Online EWS endpoint: no autodiscover needed.
pub const EXCHANGE_ONLINE: &str = "https://outlook.office365.com/EWS/Exchange.asmx";

/// An EWS client for one mailbox: runs [`Operation`]s over HTTPS with reqwest, with
/// authentication, impersonation, `X-AnchorMailbox`, a response size cap, retries for
/// throttling and transient failures, and one token refresh on 401.
///
/// The endpoint must be `https`, or plain `http` on a loopback host
/// ([`check_endpoint`](crate::check_endpoint)): [`EwsClient::new`] and
/// [`EwsClient::with_http`] refuse anything else before a token is asked for. Redirects are
/// not followed: EWS has no use for them, and a redirect could carry the request (with its
/// `Authorization` header when the host and port stay the same, as on an `https` to `http` move
/// on one port) somewhere else. A 3xx is reported as an error; an answer that a caller's own
/// reqwest client reached by following a redirect is refused ([`EwsError::Redirected`]).
#[derive(Debug, Clone)]
pub struct EwsClient {
    cfg: Arc<EwsConfig>,
    http: reqwest::Client,
    /// The pause the mailbox asked for, longer than the policy waits for: see
    /// [`EwsClient::held_for`]. Shared by the client's clones.
    hold: Arc<connector::retry::Hold>,
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// What an answer means for a call: see [`EwsClient::classify`].
enum Classified<O: Operation> {
    /// The operation's result.
    Result(O::Response),
    /// A 401 that one fresh token may cure, with the claims challenge if there was one.
    Refresh(Option<String>),
    /// A refusal no retry can help (the sign-in, a 403).
    Refused(connector::Error),
    /// A failure the retry policy decides on.
    Failed(connector::Error),
}

const REQUEST_ID_HEADERS: &[&str] = &["request-id", "x-ms-request-id", "x-requestid", "x-beserver"];

fn request_id(headers: &http::HeaderMap) -> Option<(String, String)> {
    REQUEST_ID_HEADERS.iter().find_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| ((*h).to_string(), v.to_string()))
    })
}

/// The configuration error for an endpoint credentials may not be sent to.
fn refuse_endpoint(cfg: &EwsConfig) -> Result<(), connector::Error> {
    check_endpoint(&cfg.endpoint)
        .map_err(|e| connector::Error::configuration(format!("EWS endpoint: {e}")).with_source(e))
}

impl EwsClient {
    /// A client with its own HTTP connection pool (no redirects followed).
    ///
    /// Refuses, with a [`connector::ErrorKind::Configuration`] error whose source is a
    /// [`EndpointError`](crate::EndpointError), an endpoint that is not `https` or loopback `http`.
    /// Nothing is sent and no token is asked for.
    pub fn new(cfg: EwsConfig) -> Result<Self, connector::Error> {
        refuse_endpoint(&cfg)?;
        let http =
            httpcore::HttpClientBuilder::new(concat!("ews-mail/", env!("CARGO_PKG_VERSION")))
                .timeout(cfg.timeout)
                .build()
                .map_err(|e| {
                    connector::Error::configuration(format!("building the HTTP client: {e}"))
                })?;
        Ok(Self::checked(cfg, http))
    }

    /// A client over a caller's reqwest client (custom roots, proxies), refusing an endpoint
    /// that is not `https` or loopback `http` as [`EwsClient::new`] does.
    ///
    /// Build `http` with `redirect(reqwest::redirect::Policy::none())`: an answer reached
    /// through a redirect is refused anyway ([`EwsError::Redirected`]), but by then the request
    /// went to the redirect target (reqwest drops `Authorization` only when the host or port
    /// changes).
    pub fn with_http(cfg: EwsConfig, http: reqwest::Client) -> Result<Self, connector::Error> {
        refuse_endpoint(&cfg)?;
        Ok(Self::checked(cfg, http))
    }

    /// The client, once `cfg`'s endpoint passed [`refuse_endpoint`].
    fn checked(cfg: EwsConfig, http: reqwest::Client) -> Self {
        EwsClient {
            cfg: Arc::new(cfg),
            http,
            hold: Arc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EwsConfig {
        &self.cfg
    }

    /// The request log.
    pub fn log(&self) -> &ConnectionLog {
        &self.cfg.log
    }

    /// The SOAP header every request carries.
    pub fn header(&self) -> RequestHeader {
        RequestHeader {
            version: self.cfg.version,
            impersonate: match &self.cfg.access {
                MailboxAccess::Impersonate(a) => Some(a.clone()),
                _ => None,
            },
        }
    }

    /// The `Authorization` header: a cached token, or (`refresh`) a fresh one asked for with
    /// the claims challenge of the refusal, if it had one.
    async fn auth_header(
        &self,
        refresh: Option<Option<&str>>,
    ) -> Result<http::HeaderValue, connector::Error> {
        let mut v = match &self.cfg.credentials {
            Credentials::Bearer(src) => {
                let t = match refresh {
                    Some(claims) => src.refresh(claims).await?,
                    None => src.token().await?,
                };
                http::HeaderValue::from_str(&format!("Bearer {}", t.secret()))
            }
            Credentials::BasicOnPremises { user, password } => {
                use base64::Engine as _;
                let raw = format!("{user}:{}", password.secret());
                http::HeaderValue::from_str(&format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
        }
        .map_err(|_| {
            connector::Error::configuration("the credential is not a valid header value")
        })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// A SOAP POST of `body` to the endpoint with `auth`.
    fn post(&self, body: String, auth: http::HeaderValue) -> reqwest::RequestBuilder {
        self.http
            .post(self.cfg.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header(http::header::AUTHORIZATION, auth)
            .header("X-AnchorMailbox", self.cfg.access.address())
            .header("Accept", "text/xml")
            .body(body)
    }

    /// Sends `body` and hands back the answer with its body unread, its log line (status and
    /// request ids) still to be pushed: the part of a call that a streaming answer shares.
    /// A transport failure or a redirected answer is logged here and is an error.
    async fn send_unread(
        &self,
        op: &str,
        body: String,
        auth: http::HeaderValue,
        timeout: Option<Duration>,
    ) -> Result<(reqwest::Response, LogLine, Instant), EwsError> {
        let started = Instant::now();
        let at = OffsetDateTime::now_utc();
        // The operation name is the note, so a log shows which operations a job ran.
        let line = LogLine::new(at, "POST", &self.cfg.endpoint).note(op);
        let mut request = self.post(body, auth);
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let resp = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let message = httpcore::log::describe(&e);
                self.cfg.log.push(
                    line.duration(started.elapsed())
                        .note(&format!("{op} failed: {message}")),
                );
                return Err(EwsError::Transport {
                    message,
                    maybe_sent: !httpcore::log::never_sent(&e),
                });
            }
        };
        let line = httpcore::log::with_request_ids(
            line.status(resp.status().as_u16()),
            resp.headers(),
            REQUEST_ID_HEADERS,
        );
        if resp.url() != &self.cfg.endpoint {
            // A caller's reqwest client followed a redirect: this answer is not the endpoint's.
            let host = resp.url().host_str().unwrap_or("").to_owned();
            self.cfg.log.push(
                line.duration(started.elapsed())
                    .note(&format!("{op}: redirected to {host}, refused")),
            );
            return Err(EwsError::Redirected { host });
        }
        Ok((resp, line, started))
    }

    /// Reads the body of an answer [`send_unread`](Self::send_unread) handed back, up to the
    /// response cap, and logs the call.
    async fn read_answer(
        &self,
        op: &str,
        (mut resp, line, started): (reqwest::Response, LogLine, Instant),
    ) -> Result<Answer, EwsError> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let limit = self.cfg.max_response;
        let body = match httpcore::read_capped(&mut resp, limit).await {
            Ok(b) => b,
            Err(BodyError::TooLarge { .. }) => {
                self.cfg
                    .log
                    .push(line.note(&format!("{op}: response too large")));
                return Err(EwsError::BadXml(format!(
                    "the response is larger than {limit} bytes"
                )));
            }
            Err(e) => {
                self.cfg.log.push(
                    line.duration(started.elapsed())
                        .note(&format!("{op}: body failed: {e}")),
                );
                return Err(EwsError::Transport {
                    message: e.to_string(),
                    maybe_sent: true,
                });
            }
        };
        self.cfg.log.push(line.duration(started.elapsed()));
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn send_once(
        &self,
        op: &str,
        body: &str,
        auth: http::HeaderValue,
    ) -> Result<Answer, EwsError> {
        let unread = self.send_unread(op, body.to_string(), auth, None).await?;
        self.read_answer(op, unread).await
    }

    /// What an answer means for a call of `O` (`refreshed`: whether a fresh token was already
    /// tried): a result, a 401 that one fresh token may cure (with the claims challenge, if
    /// any), a refusal no retry can help, or a failure the retry policy decides on.
    fn classify<O: Operation>(&self, a: &Answer, what: &str, refreshed: bool) -> Classified<O> {
        let ctx = CallContext {
            status: Some(a.status),
            request_id: request_id(&a.headers).map(|(_, v)| v),
            body: (a.status != 200).then(|| connector::excerpt(&a.body)),
            maybe_sent: false,
        };
        match self.interpret::<O>(a) {
            Ok(r) => Classified::Result(r),
            Err(EwsError::Http { status: 401, .. }) => {
                let challenge = self.diagnose_401(a);
                if !refreshed
                    && challenge.refresh
                    && matches!(self.cfg.credentials, Credentials::Bearer(_))
                {
                    Classified::Refresh(challenge.claims)
                } else {
                    Classified::Refused(into_connector(
                        EwsError::Unauthorized(Box::new(challenge.problem)),
                        what,
                        &ctx,
                    ))
                }
            }
            Err(EwsError::Forbidden) => Classified::Refused(forbidden(what, &ctx)),
            Err(e) => Classified::Failed(into_connector(e, what, &ctx)),
        }
    }

    /// Interprets one answer. `Ok(Ok(r))` is a result; `Ok(Err(e))` a call-level failure.
    fn interpret<O: Operation>(&self, a: &Answer) -> Result<O::Response, EwsError> {
        match a.status {
            401 => {
                return Err(EwsError::Http {
                    status: 401,
                    retry_after: None,
                });
            }
            403 => return Err(EwsError::Forbidden),
            200 | 500 => {}
            s => {
                return Err(EwsError::Http {
                    status: s,
                    retry_after: httpcore::retry_after(&a.headers, SystemTime::now()),
                });
            }
        }
        let env = match soap::parse_envelope(&a.body, self.cfg.max_response) {
            Ok(env) => env,
            Err(EwsError::BadXml(m)) if a.status == 500 => {
                tracing::debug!("unreadable 500 body: {m}");
                return Err(EwsError::Http {
                    status: 500,
                    retry_after: httpcore::retry_after(&a.headers, SystemTime::now()),
                });
            }
            Err(e) => return Err(e),
        };
        let expected = format!("{}Response", O::NAME);
        if env.body.name != expected {
            return Err(EwsError::BadXml(format!(
                "expected <{expected}>, found <{}>",
                env.body.name
            )));
        }
        // A batch where every message failed with a throttling or transient code (ErrorServerBusy
        // in a 200) is a call-level failure: retry the whole call.
        if let Ok(msgs) = response_messages(&env.body)
            && !msgs.is_empty()
            && msgs
                .iter()
                .all(|m| m.as_ref().is_err_and(|e| e.kind().is_retryable()))
            && let Some(Err(e)) = msgs.into_iter().next()
        {
            return Err(EwsError::Response(e));
        }
        O::parse(&env.body)
    }

    /// Sends `op` and hands back the HTTP answer unread, for an answer that streams
    /// (GetStreamingEvents, read envelope by envelope with [`crate::streaming`]): a 200 comes
    /// back as it is; any other answer is read and means what it means for [`call`](Self::call)
    /// (a 401 diagnosed, with one fresh token and its claims challenge; a refusal; a SOAP
    /// fault), without retries (the caller reconnects). `read_for` bounds the whole answer,
    /// beyond the client's own timeout.
    pub async fn open_stream<O: Operation>(
        &self,
        op: &O,
        read_for: Duration,
    ) -> Result<reqwest::Response, connector::Error> {
        let what = format!("EWS {}", O::NAME);
        let body = soap::envelope(op, &self.header());
        let mut refreshed = false;
        let mut auth = self.auth_header(None).await?;
        loop {
            let (resp, line, started) = self
                .send_unread(O::NAME, body.clone(), auth.clone(), Some(read_for))
                .await
                .map_err(|e| into_connector(e, &what, &CallContext::default()))?;
            if resp.status() == http::StatusCode::OK {
                self.cfg.log.push(line.duration(started.elapsed()));
                return Ok(resp);
            }
            let a = self
                .read_answer(O::NAME, (resp, line, started))
                .await
                .map_err(|e| into_connector(e, &what, &CallContext::default()))?;
            match self.classify::<O>(&a, &what, refreshed) {
                Classified::Refresh(claims) => {
                    refreshed = true;
                    auth = self.auth_header(Some(claims.as_deref())).await?;
                }
                Classified::Refused(e) | Classified::Failed(e) => return Err(e),
                Classified::Result(_) => {
                    return Err(connector::Error::bad_response(format!(
                        "{what}: HTTP {} with a result instead of a stream",
                        a.status
                    )));
                }
            }
        }
    }

    /// Runs an operation: one request, retried within the policy when the error's own
    /// classification allows it ([`connector::Error::retry_action`]: throttling and transient
    /// failures, but an operation that is not idempotent only when EWS certainly did not act on
    /// it), with one token refresh on 401.
    pub async fn call<O: Operation>(&self, op: &O) -> Result<O::Response, connector::Error> {
        let what = format!("EWS {}", O::NAME);
        let idempotency = if O::IDEMPOTENT {
            Idempotency::Safe
        } else {
            Idempotency::SendOnce
        };
        let body = soap::envelope(op, &self.header());
        let mut refreshed = false;
        let mut attempts = Attempts::new("ews");
        let mut auth = self.auth_header(None).await?;
        loop {
            let attempt = attempts.start();
            let sent = match self.held_for() {
                Some(left) => Err(connector::retry::Hold::refusal(&what, left)),
                None => Ok(self.send_once(O::NAME, &body, auth.clone()).await),
            };
            let err = match sent {
                Err(held) => held,
                Ok(Err(e)) => into_connector(e, &what, &CallContext::default()),
                Ok(Ok(a)) => match self.classify::<O>(&a, &what, refreshed) {
                    Classified::Result(r) => return Ok(r),
                    Classified::Refresh(claims) => {
                        // One fresh token, with the claims challenge if there was one.
                        refreshed = true;
                        auth = self.auth_header(Some(claims.as_deref())).await?;
                        continue;
                    }
                    Classified::Refused(e) => return Err(e),
                    Classified::Failed(e) => {
                        if let Some(wait) = e.throttled_for() {
                            self.hold.hold(wait, &self.cfg.retry);
                        }
                        e
                    }
                },
            };
            let Some(delay) =
                attempts.wait_after(&self.cfg.retry, &err, idempotency, self.cfg.jitter.next())
            else {
                return Err(err);
            };
            tracing::debug!(op = O::NAME, attempt, ?delay, "retrying EWS call: {err}");
            self.cfg.sleeper.sleep(delay).await;
        }
    }

    /// How long the client still holds its calls, when the mailbox last asked for a pause
    /// longer than the retry policy waits for
    /// ([`RetryPolicy::max_retry_after`](connector::retry::RetryPolicy)). Meanwhile every call
    /// fails at once, unsent, as [`connector::ErrorKind::Throttled`] with the time left as its
    /// `retry_after`; once the time left is within what the policy waits for, a call waits for
    /// it and goes out. The mail handler's pipeline pauses the whole source for that long.
    pub fn held_for(&self) -> Option<Duration> {
        self.hold.left()
    }

    /// What a 401 means: the token source's diagnosis, or else Exchange Online's
    /// `x-ms-diagnostics` (code, category, reason), or else EWS's own reading of the
    /// `WWW-Authenticate` challenge (its description and claims). A fresh token may help unless
    /// the source's diagnosis says otherwise.
    fn diagnose_401(&self, a: &Answer) -> Challenge {
        let refusal = refusal(a);
        if let Credentials::Bearer(src) = &self.cfg.credentials
            && let Some(c) = src.diagnose(&refusal)
        {
            return c;
        }
        let desc = refusal
            .bearer_param("error_description")
            .unwrap_or_default();
        // Exchange Online's reason is in x-ms-diagnostics, with an empty body.
        let ms = refusal.ms_diagnostics();
        let no_permissions = ms.as_ref().is_some_and(|m| {
            !m.says_expired()
                && (m.code == Some(2000008) || m.category.as_deref() == Some("invalid_grant"))
        });
        let consent = desc.contains("AADSTS65001")
            || desc.to_ascii_lowercase().contains("consent")
            || no_permissions;
        // Anything else it says: its code, category and reason as msauth reads them (the
        // token provider's reading too), before the words of the challenge.
        if !consent
            && ms.is_some()
            && refusal.bearer_param("claims").is_none()
            && let Ok(status) = http::StatusCode::from_u16(a.status)
        {
            let c = msauth::diagnose_resource_challenge(status, &a.headers, &a.body);
            return Challenge::new(c.diagnosis().into(), c.should_refresh());
        }
        let mut p = if consent {
            match self.cfg.access {
                MailboxAccess::Impersonate(_) => AuthProblem::new(
                    "the application lacks admin consent for full_access_as_app on Exchange",
                    "a tenant administrator must grant admin consent for the application permission full_access_as_app",
                ),
                _ => AuthProblem::new(
                    "EWS refused the token because admin consent is missing: legacy EWS connections do not work with user consent",
                    "a tenant administrator must grant admin consent for EWS.AccessAsUser.All to this application",
                ),
            }
        } else if desc.to_ascii_lowercase().contains("expired") {
            AuthProblem::new(
                "the access token expired and could not be renewed",
                "sign in again",
            )
        } else {
            AuthProblem::new(
                format!(
                    "EWS refused the access token ({})",
                    if desc.is_empty() {
                        "no reason given"
                    } else {
                        &desc
                    }
                ),
                "check that the token is for https://outlook.office365.com and sign in again",
            )
        };
        if desc.contains("AADSTS65001") {
            p = p.with_code("AADSTS65001");
        } else if let Some(m) = ms.as_ref().filter(|_| no_permissions) {
            // The server's words, and its code; a fresh token carries the same permissions.
            p.summary = format!("{} ({})", p.summary, m.describe());
            if let Some(code) = m.code {
                p = p.with_code(code.to_string());
            }
        }
        let claims = refusal.bearer_param("claims");
        if let Some(c) = &claims {
            p = p.with_claims(c.clone());
        }
        let challenge = Challenge::new(p, !(no_permissions && claims.is_none()));
        match claims {
            Some(c) => challenge.with_claims(c),
            None => challenge,
        }
    }
}

/// A 401 answer as the protocol-neutral [`Refusal`] a [`TokenSource`] diagnoses (headers that
/// are not text are left out).
fn refusal(a: &Answer) -> Refusal<'_> {
    a.headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .fold(Refusal::new(a.status).with_body(&a.body), |r, (n, v)| {
            r.with_header(n, v)
        })
}

fn forbidden(what: &str, ctx: &CallContext) -> connector::Error {
    connector::Error::refused(format!(
        "{what}: EWS answered 403 with a valid token: EWS is disabled for this application \
         (the organisation's EwsEnabled / EwsAllowedAppIDs policy) — ask the Exchange admin to \
         add the app id to EwsAllowedAppIDs, or use the Microsoft Graph connection instead"
    ))
    .with_response(
        connector::ResponseDetails::status(403)
            .with_server_code("EwsDisabledForApp")
            .with_body(ctx.body.as_deref().unwrap_or("").as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_description_is_read() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer client_id=\"x\", error=\"invalid_token\", error_description=\"AADSTS65001: no consent\""),
        );
        let a = Answer {
            status: 401,
            headers: h,
            body: Vec::new(),
        };
        assert_eq!(
            refusal(&a).bearer_param("error_description").as_deref(),
            Some("AADSTS65001: no consent")
        );
    }
}
