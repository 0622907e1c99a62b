//! The built-in webhook handler: POST each routed message as JSON.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde_json::json;
use url::Url;

use crate::{Handler, HandlerError, Inbound};

/// POSTs each routed message to a URL as JSON, with an `Idempotency-Key` header equal to
/// [`Inbound::key`]. Redirects are never followed (a redirect is a failure, so a compromised
/// endpoint cannot bounce mail elsewhere).
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
    pub fn new(url: Url) -> Result<Self, HandlerError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| HandlerError::permanent(format!("webhook client: {e}")))?;
        Ok(WebhookHandler { url, client })
    }

    /// The JSON body sent for `msg`.
    pub fn body(msg: &Inbound) -> serde_json::Value {
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
