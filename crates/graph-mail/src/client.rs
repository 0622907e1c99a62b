//! The executor: runs the operations of [`crate::api`] ([`GraphOperation`]) over reqwest with a
//! token, immutable ids, a per-mailbox concurrency limit, retries that honour `Retry-After` as
//! far as each operation's declared idempotency allows, one token refresh on 401, capped
//! bodies, and a connection log line for every attempt; and carries many of them in `$batch`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use connector::retry::{Attempts, RetryAction};
use connector::{ConnectionLog, Delivery, Error, LogLine, ResponseDetails};
use httpcore::BodyError;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use url::Url;

use crate::api::{self, BatchItem, GraphError, GraphOperation, JsonBatch};
use crate::endpoint::Endpoint;
use crate::retry::{Jitter, ProcessJitter, RetryPolicy, Sleeper, TokioSleeper};
use crate::token::TokenSource;

/// The `Prefer` header sent on every request, so message ids survive moves.
pub const PREFER_IMMUTABLE_ID: &str = "IdType=\"ImmutableId\"";
/// Graph's concurrency limit per app and mailbox.
pub const MAX_CONCURRENCY: usize = 4;
/// Default cap of a response body (a MIME message with large attachments fits).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;

use crate::api::Response;
use crate::retry::Idempotency;

/// Builds a [`GraphClient`].
#[derive(Debug)]
pub struct GraphClientBuilder {
    endpoint: Endpoint,
    tokens: Arc<dyn TokenSource>,
    http: Option<reqwest::Client>,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    jitter: Arc<dyn Jitter>,
    log: ConnectionLog,
    max_concurrency: usize,
    max_body: usize,
    timeout: Duration,
}

impl GraphClientBuilder {
    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how the client waits between attempts (tests pass a
    /// [`RecordingSleeper`](crate::retry::RecordingSleeper)).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Sets the jitter source.
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Shares a connection log.
    pub fn log(mut self, log: ConnectionLog) -> Self {
        self.log = log;
        self
    }

    /// Sets the concurrency limit (at most [`MAX_CONCURRENCY`]).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.clamp(1, MAX_CONCURRENCY);
        self
    }

    /// Sets the response body cap.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes.max(1024);
        self
    }

    /// Sets the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses this reqwest client (for custom roots or proxies).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<GraphClient, Error> {
        let http = match self.http {
            Some(h) => h,
            None => {
                httpcore::HttpClientBuilder::new(concat!("graph-mail/", env!("CARGO_PKG_VERSION")))
                    .timeout(self.timeout)
                    .build()
                    .map_err(|e| Error::configuration(format!("building the HTTP client: {e}")))?
            }
        };
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                endpoint: self.endpoint,
                tokens: self.tokens,
                policy: self.policy,
                sleeper: self.sleeper,
                jitter: self.jitter,
                log: self.log,
                permits: Arc::new(Semaphore::new(self.max_concurrency)),
                max_concurrency: self.max_concurrency,
                max_body: self.max_body,
                hold: connector::retry::Hold::default(),
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    tokens: Arc<dyn TokenSource>,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    jitter: Arc<dyn Jitter>,
    log: ConnectionLog,
    permits: Arc<Semaphore>,
    /// The permits' number.
    max_concurrency: usize,
    max_body: usize,
    /// The pause the mailbox asked for, longer than the policy waits for: see
    /// [`GraphClient::held_for`].
    hold: connector::retry::Hold,
}

/// A Graph client for one mailbox. Cloning shares the connection pool, the concurrency limit
/// and the log.
///
/// ```no_run
/// use std::sync::Arc;
/// use graph_mail::{api, Cloud, Endpoint, FnTokenSource, GraphClient, Mailbox};
///
/// # async fn run() -> Result<(), connector::Error> {
/// let ep = Endpoint::cloud(Cloud::Global, Mailbox::user("helpdesk@contoso.com"));
/// let tokens = Arc::new(FnTokenSource::new(|_| Ok("…".into())));
/// let client = GraphClient::builder(ep, tokens).build()?;
/// let folder = client.execute(&api::GetFolder::new("inbox")).await?;
/// println!("{} unread", folder.unread_item_count.unwrap_or(0));
/// let folders = client.batch("reading folders", &[api::GetFolder::new("inbox"), api::GetFolder::new("archive")]).await;
/// println!("{} folders read in one round trip", folders.iter().filter(|f| f.is_ok()).count());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

/// How [`GraphClient::send`] sends a request.
#[derive(Clone, Copy)]
struct Sending<'a> {
    /// What the call does, for errors and logs.
    what: &'a str,
    /// Whether it may be repeated after a lost answer.
    idem: Idempotency,
    /// A second log that gets the lines too (a ping's own).
    extra: Option<&'a ConnectionLog>,
    /// Whether it carries the bearer token.
    auth: bool,
    /// The client's requests in flight it holds.
    slots: usize,
}

enum Attempt {
    Done(Response),
    /// A failure; whether to retry is the error's own classification
    /// ([`Error::retry_action`]) under the policy, except for a 401, where `refresh` says
    /// whether a fresh token may help.
    Fail {
        err: Error,
        refresh: bool,
    },
}

fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl GraphClient {
    /// A builder for `endpoint` with tokens from `tokens`.
    pub fn builder(endpoint: Endpoint, tokens: Arc<dyn TokenSource>) -> GraphClientBuilder {
        GraphClientBuilder {
            endpoint,
            tokens,
            http: None,
            policy: RetryPolicy::default(),
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(ProcessJitter),
            log: ConnectionLog::default(),
            max_concurrency: MAX_CONCURRENCY,
            max_body: DEFAULT_MAX_BODY,
            timeout: Duration::from_secs(100),
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The connection log.
    pub fn log(&self) -> &ConnectionLog {
        &self.inner.log
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// Runs `op`: builds its request, sends it with retries as far as its declared
    /// [`idempotency`](GraphOperation::idempotency) allows (a `SendOnce` operation only when the
    /// service certainly did not accept it), and parses a 2xx answer with the operation's own
    /// [`parse`](GraphOperation::parse). A non-2xx answer is an error carrying Graph's code and
    /// request ids. A request the operation refuses to build is an error before anything is
    /// sent (or any token asked for).
    pub async fn execute<O: GraphOperation + ?Sized>(&self, op: &O) -> Result<O::Output, Error> {
        self.execute_logged(op, None).await
    }

    /// [`execute`](Self::execute), also writing the log lines to `extra` (a ping's own log).
    pub async fn execute_logged<O: GraphOperation + ?Sized>(
        &self,
        op: &O,
        extra: Option<&ConnectionLog>,
    ) -> Result<O::Output, Error> {
        self.execute_holding(op, extra, 1).await
    }

    /// [`execute_logged`](Self::execute_logged), the request holding `slots` of the client's
    /// requests in flight (a `$batch` one per item, up to the limit).
    async fn execute_holding<O: GraphOperation + ?Sized>(
        &self,
        op: &O,
        extra: Option<&ConnectionLog>,
        slots: usize,
    ) -> Result<O::Output, Error> {
        let ep = &self.inner.endpoint;
        let req = op.request(ep)?;
        let how = Sending {
            what: op.what(),
            idem: op.idempotency(),
            extra,
            auth: op.authenticated(),
            slots,
        };
        let r = self.send(req, &how).await?;
        op.parse(ep, &r)
    }

    /// Sends one request with retries, as `how` says.
    async fn send(
        &self,
        req: http::Request<Vec<u8>>,
        how: &Sending<'_>,
    ) -> Result<Response, Error> {
        let Sending {
            what,
            idem,
            extra,
            auth,
            ..
        } = *how;
        let (parts, body) = req.into_parts();
        let body = Bytes::from(body);
        let url = Url::parse(&parts.uri.to_string())
            .map_err(|e| Error::configuration(format!("{what}: bad URL: {e}")))?;
        let mut attempts = Attempts::new("graph");
        let mut refreshed = false;
        let mut token = if auth {
            Some(self.inner.tokens.token().await?)
        } else {
            None
        };
        loop {
            let attempt = attempts.start();
            let outcome = self
                .attempt(how, &parts, &url, body.clone(), token.as_ref())
                .await;
            let (err, refresh) = match outcome {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail { err, refresh } => (err, refresh),
            };
            if err.kind() == connector::ErrorKind::Authentication && auth && !refreshed {
                // One fresh token, then the diagnosis stands.
                refreshed = true;
                if refresh {
                    let claims = err.auth_problem().and_then(|p| p.claims.clone());
                    token = Some(self.inner.tokens.refresh(claims.as_deref()).await?);
                    continue;
                }
                return Err(err);
            }
            let Some(wait) =
                attempts.wait_after(&self.inner.policy, &err, idem, self.inner.jitter.next())
            else {
                return Err(err);
            };
            self.note(
                extra,
                &parts.method,
                &url,
                &format!(
                    "{}; attempt {attempt} failed, retrying in {} ms",
                    err.kind(),
                    wait.as_millis()
                ),
            );
            self.inner.sleeper.sleep(wait).await;
        }
    }

    fn note(&self, extra: Option<&ConnectionLog>, method: &http::Method, url: &Url, note: &str) {
        let line = LogLine::new(OffsetDateTime::now_utc(), method.as_str(), url).note(note);
        if let Some(x) = extra {
            x.push(line.clone());
        }
        self.inner.log.push(line);
    }

    async fn attempt(
        &self,
        how: &Sending<'_>,
        parts: &http::request::Parts,
        url: &Url,
        body: Bytes,
        token: Option<&crate::token::AccessToken>,
    ) -> Attempt {
        let (what, extra) = (how.what, how.extra);
        let mut rb = self
            .inner
            .http
            .request(parts.method.clone(), url.clone())
            .headers(parts.headers.clone())
            .body(body);
        if let Some(t) = token {
            rb = rb
                .bearer_auth(t.secret())
                .header("Prefer", PREFER_IMMUTABLE_ID)
                .header("client-request-id", random_id());
        }
        let started = OffsetDateTime::now_utc();
        let t0 = Instant::now();
        // A `$batch` runs its items at once, each holding one of the mailbox's slots: it takes
        // as many of the client's requests in flight as it has items, up to all of them.
        let slots = u32::try_from(how.slots.clamp(1, self.inner.max_concurrency)).unwrap_or(1);
        let permit = match Arc::clone(&self.inner.permits)
            .acquire_many_owned(slots)
            .await
        {
            Ok(p) => p,
            Err(_) => {
                return Attempt::Fail {
                    err: Error::configuration("the client was shut down"),
                    refresh: false,
                };
            }
        };
        if let Some(left) = self.held_for() {
            drop(permit);
            return Attempt::Fail {
                err: connector::retry::Hold::refusal(what, left),
                refresh: false,
            };
        }
        let sent = rb.send().await;
        let mut line = LogLine::new(started, parts.method.as_str(), url);
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                drop(permit);
                // Connection refused or DNS failure: the request never left. Anything else
                // (timeout, reset) may have reached the service.
                let described = httpcore::log::describe(&e);
                let err = Error::transient(format!("{what}: {described}")).with_delivery(
                    if httpcore::log::never_sent(&e) {
                        Delivery::NotSent
                    } else {
                        Delivery::MaybeSent
                    },
                );
                line = line
                    .duration(t0.elapsed())
                    .note(&format!("no answer: {described}"));
                self.push(extra, line);
                return Attempt::Fail {
                    err,
                    refresh: false,
                };
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut resp = resp;
        let read = httpcore::read_capped(&mut resp, self.inner.max_body).await;
        drop(permit);
        line = httpcore::log::with_request_ids(
            line.status(status).duration(t0.elapsed()),
            &headers,
            &["request-id", "client-request-id"],
        );
        let body = match read {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                let message = e.to_string();
                self.push(extra, line.note(&message));
                let err = match e {
                    BodyError::Transport(_) => Error::transient(format!("{what}: {message}")),
                    _ => Error::bad_response(format!("{what}: {message}")),
                };
                // A 429 or 503 refused the request before its body broke off: not done.
                let delivery = if matches!(status, 429 | 503) {
                    Delivery::Answered
                } else {
                    Delivery::MaybeSent
                };
                return Attempt::Fail {
                    err: err
                        .with_delivery(delivery)
                        .with_response(ResponseDetails::status(status)),
                    refresh: false,
                };
            }
        };
        self.push(extra, line);
        if (200..300).contains(&status) {
            return Attempt::Done(Response {
                status,
                headers,
                body,
            });
        }
        let retry_after = httpcore::retry_after(&headers, SystemTime::now());
        let gerr = GraphError::parse(status, &headers, &body);
        if status == 401 {
            let c = self
                .inner
                .tokens
                .diagnose(&crate::token::refusal(status, &headers, &body))
                .unwrap_or_else(|| crate::token::diagnose_minimal(status, &headers, &body));
            let mut details = ResponseDetails::status(status).with_body(&body);
            if let Some(code) = &gerr.code {
                details = details.with_server_code(code.clone());
            }
            if let Some(id) = gerr.request_id.clone().or(gerr.client_request_id.clone()) {
                details = details.with_request_id(id);
            }
            return Attempt::Fail {
                err: Error::auth(c.problem)
                    .with_delivery(Delivery::Answered)
                    .with_response(details),
                refresh: c.refresh,
            };
        }
        if matches!(status, 429 | 503)
            && let Some(r) = retry_after
        {
            self.inner.hold.hold(r, &self.inner.policy);
        }
        Attempt::Fail {
            err: gerr.into_error(what, &body, retry_after),
            refresh: false,
        }
    }

    /// How long the client still holds its requests, when the mailbox last asked for a pause
    /// longer than the retry policy waits for ([`RetryPolicy::max_retry_after`]). Meanwhile
    /// every request fails at once, unsent, as [`ErrorKind::Throttled`](connector::ErrorKind)
    /// with the time left as its [`retry_after`](Error::retry_after); once the time left is
    /// within what the policy waits for, requests wait for it and go out. A caller (the mail
    /// handler's pipeline) pauses the whole source for that long instead of failing each
    /// message.
    pub fn held_for(&self) -> Option<Duration> {
        self.inner.hold.left()
    }

    fn push(&self, extra: Option<&ConnectionLog>, line: LogLine) {
        if let Some(x) = extra {
            x.push(line.clone());
        }
        self.inner.log.push(line);
    }

    /// Runs many operations through JSON `$batch` (20 per batch), returning one result per
    /// operation, in order, each answer parsed by its own operation. Each item is built from
    /// its operation's parts ([`BatchItem::from_op`]); one that cannot be batched (a MIME body)
    /// is that item's error. Inner failures a retry may help ([`Error::retry_action`] under
    /// the operation's declared idempotency: 429 after its `Retry-After`, 5xx) and 424 (failed
    /// dependency) are resubmitted, within the retry policy; every other inner failure is that
    /// item's error. No item is dropped: an item the service did not answer is an error.
    ///
    /// Graph runs a `$batch`'s items at once, each holding one of the mailbox's concurrency
    /// slots, so each POST holds as many of this client's requests in flight as it has items
    /// (up to all of them): batches sent together take turns instead of having their extra
    /// items answered 429.
    pub async fn batch<O: GraphOperation>(
        &self,
        what: &str,
        ops: &[O],
    ) -> Vec<Result<O::Output, Error>> {
        let ep = &self.inner.endpoint;
        let mut items = Vec::with_capacity(ops.len());
        let mut idems = Vec::with_capacity(ops.len());
        let mut built: Vec<Option<Error>> = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match BatchItem::from_op(ep, i.to_string(), op) {
                Ok(item) => {
                    items.push(item);
                    idems.push(op.idempotency());
                    built.push(None);
                }
                Err(e) => built.push(Some(e)),
            }
        }
        let mut answers = self.run_batch(what, items, &idems).await.into_iter();
        built
            .into_iter()
            .zip(ops)
            .map(|(failed, op)| match failed {
                Some(e) => Err(e),
                None => match answers.next() {
                    Some(Ok(r)) => op.parse(ep, &r),
                    Some(Err(e)) => Err(e),
                    None => Err(Error::bad_response("a batch item got no result")),
                },
            })
            .collect()
    }

    /// [`batch`](Self::batch) for items built beforehand ([`BatchItem::from_op`]), such as
    /// items that depend on others ([`BatchItem::depends_on`]), each with its operation's
    /// declared idempotency. The answers are returned unparsed, in order: hand each to its
    /// operation's [`parse`](GraphOperation::parse).
    pub async fn batch_items(
        &self,
        what: &str,
        items: Vec<(BatchItem, Idempotency)>,
    ) -> Vec<Result<Response, Error>> {
        let (items, idems): (Vec<BatchItem>, Vec<Idempotency>) = items.into_iter().unzip();
        self.run_batch(what, items, &idems).await
    }

    /// The `$batch` rounds of [`batch`](Self::batch): `items[i]` declared `idems[i]`.
    async fn run_batch(
        &self,
        what: &str,
        items: Vec<BatchItem>,
        idems: &[Idempotency],
    ) -> Vec<Result<Response, Error>> {
        let n = items.len();
        let mut results: Vec<Option<Result<Response, Error>>> = (0..n).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..n).collect();
        let mut round = 0u32;
        let mut waited = Duration::ZERO;
        let index: HashMap<String, usize> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.clone(), i))
            .collect();
        while !pending.is_empty() {
            round += 1;
            let mut again: Vec<(usize, Error)> = Vec::new();
            let mut longest: Option<Duration> = None;
            for chunk in pending.chunks(api::MAX_BATCH) {
                let ids: Vec<&str> = chunk.iter().map(|&i| items[i].id.as_str()).collect();
                let batch_items: Vec<BatchItem> = chunk
                    .iter()
                    .map(|&i| {
                        let mut it = items[i].clone().with_header("Prefer", PREFER_IMMUTABLE_ID);
                        // Dependencies already done (or not in this chunk) are dropped.
                        it.depends_on.retain(|d| ids.contains(&d.as_str()));
                        it
                    })
                    .collect();
                // The `$batch` POST may be repeated only if every item in it may.
                let idem = if chunk.iter().all(|&i| idems[i] == Idempotency::Safe) {
                    Idempotency::Safe
                } else {
                    Idempotency::SendOnce
                };
                let answers = self
                    .execute_holding(&JsonBatch::new(batch_items, what, idem), None, chunk.len())
                    .await;
                let answers = match answers {
                    Ok(a) => a,
                    Err(e) => {
                        for &i in chunk {
                            results[i] = Some(Err(copy_error(&e)));
                        }
                        continue;
                    }
                };
                let mut answered = vec![false; chunk.len()];
                for a in answers {
                    let Some(&i) = index.get(&a.id) else { continue };
                    if let Some(pos) = chunk.iter().position(|&c| c == i) {
                        answered[pos] = true;
                    }
                    let retry_after = httpcore::retry_after(&a.headers, SystemTime::now());
                    if (200..300).contains(&a.status) {
                        results[i] = Some(Ok(a.into_response()));
                        continue;
                    }
                    let err = GraphError::parse(a.status, &a.headers, &a.body).into_error(
                        what,
                        &a.body,
                        retry_after,
                    );
                    if matches!(a.status, 429 | 503)
                        && let Some(r) = retry_after
                    {
                        self.inner.hold.hold(r, &self.inner.policy);
                    }
                    let action = err.retry_action(idems[i]);
                    if a.status == 424 || matches!(action, RetryAction::Retry { .. }) {
                        if let Some(r) = retry_after {
                            longest = Some(longest.map_or(r, |l| l.max(r)));
                        }
                        again.push((i, err));
                    } else {
                        results[i] = Some(Err(err));
                    }
                }
                for (pos, &i) in chunk.iter().enumerate() {
                    if !answered[pos] {
                        again.push((
                            i,
                            Error::bad_response(format!(
                                "{what}: the batch answer has no response for item {}",
                                items[i].id
                            ))
                            .with_delivery(Delivery::MaybeSent),
                        ));
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            let only_424 = again
                .iter()
                .all(|(_, e)| e.response().and_then(|r| r.status) == Some(424));
            let wait = if only_424 {
                Some(Duration::ZERO)
            } else {
                self.inner
                    .policy
                    .decide(round, waited, longest, self.inner.jitter.next())
            };
            match wait {
                Some(w) if round < self.inner.policy.max_attempts => {
                    if !w.is_zero() {
                        self.note(
                            None,
                            &http::Method::POST,
                            &self.inner.endpoint.url(&["$batch"]),
                            &format!(
                                "{} batch items to retry in {} ms",
                                again.len(),
                                w.as_millis()
                            ),
                        );
                        // Throttled when any item was; the service's longest wait, if any.
                        let kind = if again
                            .iter()
                            .any(|(_, e)| e.kind() == connector::ErrorKind::Throttled)
                        {
                            connector::ErrorKind::Throttled
                        } else {
                            connector::ErrorKind::Transient
                        };
                        connector::retry::note_wait(&connector::retry::RetryWait::new(
                            "graph", kind, longest, w,
                        ));
                        self.inner.sleeper.sleep(w).await;
                        waited += w;
                    }
                    pending = again.into_iter().map(|(i, _)| i).collect();
                }
                _ => {
                    for (i, e) in again {
                        results[i] = Some(Err(e));
                    }
                    pending = Vec::new();
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::bad_response("a batch item got no result"))))
            .collect()
    }
}

/// A copy of an error for each item of a failed batch (errors are not `Clone`: they may own a
/// source).
pub(crate) fn copy_error(e: &Error) -> Error {
    let mut c = Error::new(e.kind(), e.message()).with_delivery(e.delivery());
    if let Some(r) = e.retry_after() {
        c = c.with_retry_after(r);
    }
    if let Some(p) = e.auth_problem() {
        c = c.with_auth_problem(p.clone());
    }
    if let Some(d) = e.response() {
        c = c.with_response(d.clone());
    }
    c
}
