//! [`GraphOperation`]: a Graph call as a value that builds its request, parses its answer and
//! says whether it may be repeated, as ews-mail's `Operation` and ruma's request types do.

use super::*;

pub use connector::retry::Idempotency;

/// One Graph call as a value: it builds its request ([`build`](Self::build), or
/// [`request`](Self::request) for the whole `http::Request`), parses a successful answer
/// ([`parse`](Self::parse)) and declares whether repeating it after a lost answer is harmless
/// ([`idempotency`](Self::idempotency)). No I/O: the executor
/// ([`GraphClient::execute`](crate::GraphClient::execute)) sends it, retries as the declared
/// idempotency allows, turns a non-2xx answer into an error (Graph's code and request ids,
/// through [`GraphError`]) and hands a 2xx answer to `parse`;
/// [`GraphClient::batch`](crate::GraphClient::batch) carries many of them in `$batch`
/// ([`BatchItem::from_op`]), each answer parsed by its own operation.
///
/// ```
/// use graph_mail::api::{self, GraphOperation, Idempotency, Response};
/// use graph_mail::{Endpoint, Mailbox};
///
/// let ep = Endpoint::custom("http://127.0.0.1:8080/v1.0", Mailbox::Me)?;
/// let op = api::GetFolder::new("inbox");
/// let req = op.request(&ep)?;
/// assert_eq!(req.uri().path(), "/v1.0/me/mailFolders/inbox");
/// assert_eq!(op.idempotency(), Idempotency::Safe);
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
/// let answer = Response::new(200, headers, &br#"{"id":"AQMk","unreadItemCount":3}"#[..]);
/// assert_eq!(op.parse(&ep, &answer)?.unread_item_count, Some(3));
/// # Ok::<(), connector::Error>(())
/// ```
pub trait GraphOperation {
    /// What a successful answer parses into.
    type Output;

    /// What the call does, for errors and logs (`downloading a message`).
    fn what(&self) -> &str;

    /// Whether repeating the request after a lost answer is harmless ([`Idempotency::Safe`]:
    /// reads, flag updates, moves and deletes by immutable id) or could act twice
    /// ([`Idempotency::SendOnce`]: sends, drafts, new folders). The executor retries a
    /// `SendOnce` operation only when the service certainly did not accept it.
    fn idempotency(&self) -> Idempotency;

    /// Whether the request carries the bearer token (and the `Prefer`/`client-request-id`
    /// headers that go with it). An upload chunk, sent to a pre-authenticated URL, does not.
    fn authenticated(&self) -> bool {
        true
    }

    /// The request's parts, without `Authorization` or `Prefer: IdType` (the executor adds
    /// those). Inputs the service would refuse (an empty name, a body over Graph's limit, a
    /// link to another host) are refused here, before anything is sent.
    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error>;

    /// The request as `http::Request<Vec<u8>>`.
    fn request(&self, ep: &Endpoint) -> Result<http::Request<Vec<u8>>, Error> {
        self.build(ep)?.into_http()
    }

    /// Reads a successful (2xx) answer.
    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<Self::Output, Error>;
}

/// The body of an [`OpRequest`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body {
    /// No body.
    Empty,
    /// JSON, sent as `application/json`; a `$batch` item carries the value as it is.
    Json(Value),
    /// Other bytes with their content type (base64 MIME as `text/plain`, an upload chunk);
    /// never batched.
    Bytes {
        /// The `Content-Type`.
        content_type: &'static str,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// The parts of a request an operation builds: what becomes an `http::Request` or a `$batch`
/// item, without being read back from either.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpRequest {
    /// The method.
    pub method: http::Method,
    /// The URL (under the endpoint's base, except an upload session's URL).
    pub url: Url,
    /// `Accept: application/json`, sent unless the answer is not Graph's (an upload chunk).
    pub accept_json: bool,
    /// Headers besides `Accept` and `Content-Type`: `Prefer: odata.maxpagesize`,
    /// `Content-Length: 0`, `Content-Range`.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Body,
}

impl OpRequest {
    /// A request to `url` that accepts JSON, without extra headers.
    pub fn new(method: http::Method, url: Url, body: Body) -> Self {
        OpRequest {
            method,
            url,
            accept_json: true,
            headers: http::HeaderMap::new(),
            body,
        }
    }

    /// A `GET` of `url` that accepts JSON, without a body or extra headers.
    pub fn get(url: Url) -> Self {
        OpRequest::new(http::Method::GET, url, Body::Empty)
    }

    /// Appends a header.
    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The request as `http::Request<Vec<u8>>`: `Accept`, `Content-Type` from the body, then
    /// the extra headers.
    pub fn into_http(self) -> Result<http::Request<Vec<u8>>, Error> {
        let mut b = http::Request::builder()
            .method(self.method)
            .uri(self.url.as_str());
        if self.accept_json {
            b = b.header(http::header::ACCEPT, "application/json");
        }
        let body = match self.body {
            Body::Empty => Vec::new(),
            Body::Json(v) => {
                b = b.header(http::header::CONTENT_TYPE, "application/json");
                v.to_string().into_bytes()
            }
            Body::Bytes {
                content_type,
                bytes,
            } => {
                b = b.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
        };
        let url = self.url;
        let mut req = b.body(body).map_err(|e| {
            Error::configuration(format!("building a Graph request for {url}: {e}"))
        })?;
        for (name, value) in &self.headers {
            req.headers_mut().append(name, value.clone());
        }
        Ok(req)
    }
}

/// A successful answer, as [`GraphOperation::parse`] reads it: from the wire, or one item of a
/// `$batch` answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Response {
    /// HTTP status (2xx).
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body, at most the client's body cap.
    pub body: bytes::Bytes,
}

impl Response {
    /// An answer with `status`, `headers` and `body`.
    pub fn new(status: u16, headers: http::HeaderMap, body: impl Into<bytes::Bytes>) -> Self {
        Response {
            status,
            headers,
            body: body.into(),
        }
    }

    /// Checks that the answer is JSON (a proxy's HTML error page is not).
    pub fn json(&self) -> Result<&[u8], Error> {
        self.expect_type(&["application/json"])
    }

    /// Checks that the answer is a MIME message (`text/plain` as Graph sends `/$value`, or
    /// `message/rfc822`).
    pub fn mime(&self) -> Result<&[u8], Error> {
        self.expect_type(&["text/plain", "message/rfc822", "application/octet-stream"])
    }

    fn expect_type(&self, types: &[&str]) -> Result<&[u8], Error> {
        let ct = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let base = ct.split(';').next().unwrap_or("").trim();
        if types.iter().any(|t| base.eq_ignore_ascii_case(t)) {
            Ok(&self.body)
        } else {
            Err(Error::bad_response(format!(
                "Graph answered with content type {ct:?}, expected {}",
                types.join(" or ")
            ))
            .with_response(ResponseDetails::status(self.status).with_body(&self.body)))
        }
    }
}
