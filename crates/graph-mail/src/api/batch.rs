//! JSON `$batch`: many requests in one round trip, and their answers.

use super::*;

/// One request of a JSON `$batch`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchItem {
    /// Unique id within the batch.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// URL relative to the version root (`/users/x/messages/y/$value`).
    pub url: String,
    /// Headers (`Content-Type` is required with a body).
    pub headers: BTreeMap<String, String>,
    /// JSON body.
    pub body: Option<Value>,
    /// Ids this request runs after.
    pub depends_on: Vec<String>,
}

impl BatchItem {
    /// The batch item of an operation, built from the parts it asks for ([`GraphOperation::build`]):
    /// its URL relative to the version root, its JSON body as a value and its extra headers
    /// (`Content-Length` aside, which a JSON batch item has no use for). Nothing is read back
    /// from a built request. Only operations under the Graph base with no body or a JSON body
    /// can be batched: a MIME body goes on its own.
    pub fn from_op<O: GraphOperation + ?Sized>(
        ep: &Endpoint,
        id: impl Into<String>,
        op: &O,
    ) -> Result<Self, Error> {
        let req = op.build(ep)?;
        let rel = ep.relative(&req.url).ok_or_else(|| {
            Error::configuration(format!(
                "batch item {} is not under the Graph base",
                req.url
            ))
        })?;
        let mut headers = BTreeMap::new();
        let body = match req.body {
            Body::Empty => None,
            Body::Json(v) => {
                headers.insert("Content-Type".to_owned(), "application/json".to_owned());
                Some(v)
            }
            Body::Bytes { .. } => {
                return Err(Error::unsupported(
                    "only JSON bodies are batched; send MIME bodies on their own",
                ));
            }
        };
        for (name, value) in &req.headers {
            if name == http::header::CONTENT_LENGTH {
                continue;
            }
            let value = value
                .to_str()
                .map_err(|e| Error::configuration(format!("batch item header {name}: {e}")))?;
            headers.insert(name.as_str().to_owned(), value.to_owned());
        }
        Ok(BatchItem {
            id: id.into(),
            method: req.method.as_str().to_owned(),
            url: rel,
            headers,
            body,
            depends_on: Vec::new(),
        })
    }

    /// Adds a header to the item; a header of the same name (in any case) gets `value`
    /// appended after a comma, as `Prefer` preferences combine.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        match self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(value);
            }
            None => {
                self.headers.insert(name.to_owned(), value.to_owned());
            }
        }
        self
    }

    /// Makes the item run after `ids`.
    pub fn depends_on(mut self, ids: Vec<String>) -> Self {
        self.depends_on = ids;
        self
    }
}

/// `POST {base}/$batch`: at most [`MAX_BATCH`] items with unique ids whose dependencies exist;
/// its answer parses into one [`BatchResponseItem`] per answered id ([`parse_batch`]).
///
/// The executor's [`GraphClient::batch`](crate::GraphClient::batch) builds one from
/// operations and hands each answer to its own operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JsonBatch {
    /// The items.
    pub items: Vec<BatchItem>,
    /// What the batch does, for errors and logs.
    pub what: String,
    /// [`Idempotency::Safe`] when every item is.
    pub idempotency: Idempotency,
}

impl JsonBatch {
    /// A batch of `items` (`what` for errors; `idempotency` the least safe of the items').
    pub fn new(items: Vec<BatchItem>, what: impl Into<String>, idempotency: Idempotency) -> Self {
        JsonBatch {
            items,
            what: what.into(),
            idempotency,
        }
    }

    /// The item ids, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.id.as_str()).collect()
    }
}

impl GraphOperation for JsonBatch {
    type Output = Vec<BatchResponseItem>;

    fn what(&self) -> &str {
        &self.what
    }

    fn idempotency(&self) -> Idempotency {
        self.idempotency
    }

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let items = &self.items;
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(Error::configuration(format!(
                "a batch holds 1 to {MAX_BATCH} requests, not {}",
                items.len()
            )));
        }
        let mut ids = HashSet::new();
        for i in items {
            if !ids.insert(i.id.as_str()) {
                return Err(Error::configuration(format!(
                    "batch id {} is used twice",
                    i.id
                )));
            }
        }
        let reqs: Vec<Value> = items
            .iter()
            .map(|i| {
                if let Some(d) = i.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
                    return Err(Error::configuration(format!(
                        "batch item {} depends on unknown item {d}",
                        i.id
                    )));
                }
                let mut v = json!({ "id": i.id, "method": i.method, "url": i.url });
                if !i.headers.is_empty() {
                    v["headers"] = json!(i.headers);
                }
                if let Some(b) = &i.body {
                    v["body"] = b.clone();
                }
                if !i.depends_on.is_empty() {
                    v["dependsOn"] = json!(i.depends_on);
                }
                Ok(v)
            })
            .collect::<Result<_, Error>>()?;
        Ok(OpRequest::new(
            http::Method::POST,
            ep.url(&["$batch"]),
            Body::Json(json!({ "requests": reqs })),
        ))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<Vec<BatchResponseItem>, Error> {
        parse_batch(response.json()?, &self.ids())
    }
}

/// One answer of a JSON `$batch`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchResponseItem {
    /// The request's id.
    pub id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its headers (`Retry-After`, `Content-Type`, …).
    pub headers: http::HeaderMap,
    /// Its body: JSON re-serialized, or the decoded bytes of a non-JSON body (Graph base64-encodes
    /// those).
    pub body: Vec<u8>,
}

impl BatchResponseItem {
    /// The item's answer as a [`Response`], for its operation's [`GraphOperation::parse`].
    pub fn into_response(self) -> Response {
        Response::new(self.status, self.headers, self.body)
    }
}

/// Parses a `$batch` answer. Answers for ids that were not sent are refused; the caller treats
/// sent ids without an answer as failed (never as done).
pub fn parse_batch(body: &[u8], sent: &[&str]) -> Result<Vec<BatchResponseItem>, Error> {
    #[derive(Deserialize)]
    struct RawItem {
        id: String,
        status: u16,
        #[serde(default)]
        headers: Option<BTreeMap<String, Value>>,
        #[serde(default)]
        body: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Raw {
        responses: Vec<RawItem>,
    }
    let raw: Raw = parse_json("a batch", body)?;
    let mut seen = HashSet::new();
    raw.responses
        .into_iter()
        .map(|r| {
            if !sent.contains(&r.id.as_str()) || !seen.insert(r.id.clone()) {
                return Err(bad(
                    "a batch",
                    format!("unexpected or repeated item id {:?}", r.id),
                ));
            }
            let mut headers = http::HeaderMap::new();
            for (k, v) in r.headers.unwrap_or_default() {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&v),
                ) {
                    headers.insert(n, v);
                }
            }
            let is_json = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|ct| ct.contains("json"));
            let body = match r.body {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) if !is_json => base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| bad("a batch item body", e))?,
                Some(v) => v.to_string().into_bytes(),
            };
            Ok(BatchResponseItem {
                id: r.id,
                status: r.status,
                headers,
                body,
            })
        })
        .collect()
}
