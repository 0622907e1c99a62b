//! The built-in webhook handler (documented on [`WebhookHandler`]).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde_json::json;
use url::Url;

use crate::{Handler, HandlerError, Inbound};

/// Why a [`WebhookHandler`] cannot be built. Messages name the scheme and host only, never the
/// whole URL (its path or query may carry a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL is neither `https` nor `http`.
    #[error("the webhook URL's scheme {scheme:?} is not supported: use https")]
    UnsupportedScheme {
        /// The scheme given.
        scheme: String,
    },
    /// Plain `http` to a host that is not loopback: every message would cross the network in
    /// clear.
    #[error(
        "the webhook URL is plain http to {host:?}, which is not a loopback host: messages would \
         cross the network in clear; use https (http only to localhost, 127.0.0.0/8 or ::1)"
    )]
    InsecureHttp {
        /// The host given.
        host: String,
    },
    /// The HTTP client could not be built.
    #[error("the webhook's HTTP client cannot be built: {0}")]
    Client(String),
}

/// POSTs each routed message to a URL as JSON, with an `Idempotency-Key` header equal to
/// [`Inbound::key`]. Redirects are never followed (a redirect is a failure, so a compromised
/// endpoint cannot bounce mail elsewhere).
///
/// Each POST carries the whole message (its MIME, base64), so the URL must protect it in
/// transit: [`WebhookHandler::new`] accepts `https` to any host and plain `http` only to a
/// loopback host (`localhost`, `127.0.0.0/8`, `::1`), and refuses anything else with a
/// [`WebhookError`].
///
/// A 2xx answer means handled; 408, 429 and 5xx are retried on a later run; other answers park
/// the message.
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    url: Url,
    client: reqwest::Client,
}

impl WebhookHandler {
    /// A handler posting to `url` with a 30-second timeout.
    ///
    /// # Errors
    ///
    /// [`WebhookError::UnsupportedScheme`] unless `url` is `https` or `http`;
    /// [`WebhookError::InsecureHttp`] for `http` to a host that is not loopback (`localhost`,
    /// an address in `127.0.0.0/8`, or `::1`; a name that merely resolves there does not
    /// count). Nothing is sent.
    ///
    /// ```
    /// use handler::WebhookHandler;
    /// use handler::WebhookError;
    ///
    /// let url = |u: &str| url::Url::parse(u).unwrap();
    /// assert!(WebhookHandler::new(url("https://hooks.example/mail")).is_ok());
    /// assert!(WebhookHandler::new(url("http://127.0.0.1:8080/mail")).is_ok());
    /// assert!(matches!(
    ///     WebhookHandler::new(url("http://hooks.example/mail")),
    ///     Err(WebhookError::InsecureHttp { .. })
    /// ));
    /// ```
    pub fn new(url: Url) -> Result<Self, WebhookError> {
        Self::check_url(&url)?;
        let client =
            httpcore::HttpClientBuilder::new(concat!("handler/", env!("CARGO_PKG_VERSION")))
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(WebhookHandler { url, client })
    }

    /// The rule [`new`](Self::new) applies to its URL, without building the handler (for a
    /// configuration checked before anything runs): `https`, or `http` to loopback only.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), except [`WebhookError::Client`].
    pub fn check_url(url: &Url) -> Result<(), WebhookError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if connector::is_loopback(url) => Ok(()),
            "http" => Err(WebhookError::InsecureHttp {
                host: url.host_str().unwrap_or_default().to_owned(),
            }),
            other => Err(WebhookError::UnsupportedScheme {
                scheme: other.to_owned(),
            }),
        }
    }

    /// The JSON body sent for `msg`: the route and headers, the content read from the MIME
    /// (`text`, `html`, `attachments` without their bytes, `content_error` when it could not be
    /// read) and the whole MIME in base64 (where the attachments' bytes are).
    pub fn body(msg: &Inbound) -> serde_json::Value {
        let (content, content_error) = match msg.content(&crate::ContentLimits::default()) {
            Ok(c) => (c, None),
            Err(e) => (crate::MessageContent::default(), Some(e.to_string())),
        };
        let attachments: Vec<serde_json::Value> = content
            .attachments
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "content_type": a.content_type,
                    "size": a.size,
                    "content_id": a.content_id,
                    "inline": a.inline,
                    "kind": a.kind,
                })
            })
            .collect();
        json!({
            "source": msg.source,
            "key": msg.key,
            "project": msg.project(),
            "catch_address": msg.route.catch_address().map(|a| a.to_string()),
            "route": msg.route.explain(),
            "sender_policy": msg.sender.as_ref().map(|s| s.explain()),
            "reply_from": msg.sender.as_ref().map(|s| s.from.to_string()),
            "reply_to": msg.sender.as_ref().and_then(|s| s.reply_to.as_ref().map(|r| r.to_string())),
            "message_id": msg.message_id(),
            "subject": msg.subject(),
            "from": msg.from_address(),
            "thread_root": msg.thread_root(),
            "thread": msg.thread(),
            "subject_token": msg.subject_token(),
            "text": content.text,
            "html": content.html,
            "attachments": attachments,
            "content_error": content_error,
            "mime_base64": base64::engine::general_purpose::STANDARD.encode(&msg.raw.mime),
        })
    }
}

#[async_trait]
impl Handler for WebhookHandler {
    async fn handle(&self, message: &Inbound) -> Result<(), HandlerError> {
        let resp = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", &message.key)
            .json(&Self::body(message))
            .send()
            .await
            .map_err(|e| HandlerError::retry(format!("webhook: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
            Err(HandlerError::retry(format!("webhook answered {status}")))
        } else if status.is_redirection() {
            Err(HandlerError::permanent(format!(
                "webhook answered {status} (a redirect): redirects are not followed"
            )))
        } else {
            Err(HandlerError::permanent(format!(
                "webhook answered {status}"
            )))
        }
    }
}
