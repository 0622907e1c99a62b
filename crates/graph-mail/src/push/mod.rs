//! Push mode: Graph change notifications as a *hint* to catch up, never as the message.
//!
//! Graph can POST to an HTTPS URL of ours when a message is created in a folder (a
//! *subscription* on `…/mailFolders('inbox')/messages`). Notifications are unreliable by
//! design — late, duplicated, out of order, or missing, and subscriptions expire or are
//! removed — so this module never takes a notification for the message. It only wakes the
//! source, which then runs its ordinary delta round ([`crate::GraphSource::with_delta`]): the
//! deltaLink, not the notification, says what is new, and a slow safety timer in the pipeline
//! catches up whatever no notification announced.
//!
//! The pieces, I/O at the edges:
//!
//! - [`ClientState`]: the secret each subscription is created with and each genuine
//!   notification carries back. Random, compared in constant time, never in `Debug` or logs.
//! - [`PushHub`]: what the listener answers, whatever HTTP server carries it (`m365mail`
//!   uses axum): Graph's validation request (`?validationToken=…`) is answered with the token
//!   as `text/plain`; a notification body is parsed, each notification whose subscription id
//!   and `clientState` match a registered subscription wakes that source (a lifecycle event is
//!   also handed to its subscriber), and anything else is counted as forged and ignored. The
//!   answer is always quick (`202 Accepted`): the work happens on the source's task.
//! - [`PushSubscriber`]: keeps one subscription alive for one source — reuses the recorded
//!   one after a restart (renewing it), or deletes a recorded one that no longer fits the
//!   configuration and creates a new one; renews before expiry; answers lifecycle events
//!   (`subscriptionRemoved` → create a new one, `reauthorizationRequired` → renew, `missed` →
//!   catch up); and wakes the source after every (re)subscription, so that mail that arrived
//!   while no subscription was live is caught up.
//! - [`SubscriptionRecord`]: a subscription as recorded between runs, in any
//!   [`StateStore`](httpcore::StateStore) ([`FileSubscriptionStore`], one JSON file written
//!   atomically and readable by its owner only, since it holds each `clientState`;
//!   [`MemorySubscriptionStore`] for tests; the `fleet` crate's PostgreSQL table).
//!
//! ```
//! use graph_mail::push::{ClientState, PushHub};
//!
//! let hub = PushHub::new();
//! // Graph's validation request: the token comes back as text/plain.
//! let a = hub.answer(Some("validationToken=Validation%3A+hello"), b"");
//! assert_eq!((a.status, a.content_type, a.body.as_str()), (200, Some("text/plain"), "Validation: hello"));
//! // A notification for no subscription of ours (or with the wrong clientState) is ignored.
//! let forged = br#"{"value":[{"subscriptionId":"x","clientState":"guess","changeType":"created"}]}"#;
//! assert_eq!(hub.answer(None, forged).status, 202);
//! assert_eq!(hub.stats().forged, 1);
//! # let _ = ClientState::generate();
//! ```

mod hub;
mod store;
mod subscriber;

pub use hub::{Answer, LifecycleEvent, Notification, PushHub, PushStats, parse_notifications};
pub use store::{FileSubscriptionStore, MemorySubscriptionStore, SubscriptionRecord};
pub use subscriber::{PushSubscriber, PushSubscriberBuilder};

use serde::{Deserialize, Serialize};

/// The secret a subscription is created with (`clientState`); Graph sends it back in every
/// notification, and a notification without it is not Graph's. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientState(String);

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientState(<redacted>)")
    }
}

impl ClientState {
    /// A fresh random secret: 64 hex digits (two version-4 UUIDs, 244 random bits; Graph takes
    /// up to 128 characters).
    pub fn generate() -> Self {
        ClientState(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    /// A given secret (a recorded one, or a test's).
    pub fn from_secret(secret: impl Into<String>) -> Self {
        ClientState(secret.into())
    }

    /// The secret, for the subscription request only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this secret, compared in time that does not depend on where they
    /// differ.
    pub fn matches(&self, other: &str) -> bool {
        connector::constant_time_eq(self.0.as_bytes(), other.as_bytes())
    }
}

/// The validation token of Graph's validation request (`?validationToken=…`, URL-decoded), if
/// `query` carries one.
pub fn validation_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests;
