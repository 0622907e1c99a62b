//! [`PushHub`]: the listener's answers and the routing of notifications to subscribers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use connector::Error;
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};

use super::{ClientState, validation_token};

/// A lifecycle event (`lifecycleEvent` of a lifecycle notification).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// Graph removed the subscription: create a new one.
    SubscriptionRemoved,
    /// The subscription must be reauthorized (renewed) or it is removed.
    ReauthorizationRequired,
    /// Notifications were missed: catch up.
    Missed,
    /// An event this version does not know (the source still catches up).
    Other(String),
}

impl LifecycleEvent {
    /// The event of its name in Graph's `lifecycleEvent` (an unknown name is [`Other`](Self::Other)).
    pub fn parse(s: &str) -> Self {
        match s {
            "subscriptionRemoved" => LifecycleEvent::SubscriptionRemoved,
            "reauthorizationRequired" => LifecycleEvent::ReauthorizationRequired,
            "missed" => LifecycleEvent::Missed,
            other => LifecycleEvent::Other(other.to_owned()),
        }
    }

    /// Its name in Graph's `lifecycleEvent`.
    pub fn name(&self) -> &str {
        match self {
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::Missed => "missed",
            LifecycleEvent::Other(s) => s,
        }
    }
}

/// One notification of a `changeNotificationCollection`, as far as push mode reads it: whose
/// it is and whether it is a lifecycle event. The resource data is not read: the delta round
/// finds the message. `Debug` leaves out the `clientState`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notification {
    /// The subscription it is for.
    pub subscription_id: String,
    client_state: Option<String>,
    /// `Some` for a lifecycle notification.
    pub lifecycle: Option<LifecycleEvent>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("subscription_id", &self.subscription_id)
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

impl Notification {
    /// Whether it carries `state` as its `clientState`, compared in constant time: how a
    /// notification for a subscription registered elsewhere (another worker of a fleet) is
    /// told from a forged one.
    pub fn carries(&self, state: &ClientState) -> bool {
        self.client_state
            .as_deref()
            .is_some_and(|c| state.matches(c))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNotification {
    subscription_id: String,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    lifecycle_event: Option<String>,
}

#[derive(Deserialize)]
struct RawCollection {
    value: Vec<RawNotification>,
}

/// Parses a notification POST body (`{"value": [ … ]}`, change or lifecycle notifications).
pub fn parse_notifications(body: &[u8]) -> Result<Vec<Notification>, Error> {
    let raw: RawCollection = serde_json::from_slice(body).map_err(|e| {
        Error::bad_response(format!("a change notification could not be read: {e}"))
    })?;
    Ok(raw
        .value
        .into_iter()
        .map(|n| Notification {
            subscription_id: n.subscription_id,
            client_state: n.client_state,
            lifecycle: n.lifecycle_event.as_deref().map(LifecycleEvent::parse),
        })
        .collect())
}

/// What the listener answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer {
    /// The HTTP status: 200 to a validation request, 202 to notifications (genuine or not), 400
    /// to a body that is no notification collection.
    pub status: u16,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// The body (the validation token, or empty).
    pub body: String,
}

/// What the hub has seen, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushStats {
    /// Validation requests answered.
    pub validations: u64,
    /// Genuine change notifications (each woke its source).
    pub hints: u64,
    /// Genuine lifecycle notifications.
    pub lifecycle: u64,
    /// Notifications ignored: unknown subscription or wrong `clientState`.
    pub forged: u64,
    /// Notifications for no subscription registered here, handed to
    /// [`PushHub::forward_unknown`]'s channel to be checked elsewhere.
    pub forwarded: u64,
    /// Sources woken by [`PushHub::wake`] (a notification checked elsewhere).
    pub woken_from_elsewhere: u64,
    /// Bodies that were no notification collection.
    pub malformed: u64,
}

struct Entry {
    subscription_id: Option<String>,
    client_state: ClientState,
    wake: Arc<Notify>,
    lifecycle: mpsc::UnboundedSender<LifecycleEvent>,
}

/// Answers Graph's validation requests and routes notifications to the subscriptions
/// registered by [`PushSubscriber`](super::PushSubscriber)s. One hub can serve any number of
/// sources on one listener. See the [module documentation](super).
#[derive(Default)]
pub struct PushHub {
    entries: Mutex<BTreeMap<String, Entry>>,
    stats: Mutex<PushStats>,
    unknown: Mutex<Option<mpsc::Sender<Notification>>>,
}

impl std::fmt::Debug for PushHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushHub")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl PushHub {
    /// An empty hub.
    pub fn new() -> Arc<Self> {
        Arc::new(PushHub::default())
    }

    /// What has been seen so far.
    pub fn stats(&self) -> PushStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut PushStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Registers (or replaces) the subscription of `key`: notifications carrying
    /// `client_state` (and, once known, `subscription_id`) wake `wake`; lifecycle events also
    /// go to `lifecycle`.
    pub(crate) fn register(
        &self,
        key: &str,
        client_state: ClientState,
        subscription_id: Option<String>,
        wake: Arc<Notify>,
        lifecycle: mpsc::UnboundedSender<LifecycleEvent>,
    ) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key.to_owned(),
                Entry {
                    subscription_id,
                    client_state,
                    wake,
                    lifecycle,
                },
            );
    }

    /// Forgets the subscription of `key` (its subscriber stopped): its notifications are no
    /// longer this hub's to place.
    pub(crate) fn unregister(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Hands the notifications that match no subscription registered here to `to`, instead of
    /// ignoring them as forged: in a fleet, a notification may reach a worker that does not
    /// serve its source, and whoever reads `to` checks it against the recorded subscriptions
    /// ([`Notification::carries`]) and wakes the worker that does. When `to` is full the
    /// notification is dropped (counted as forged): the source's safety timer catches up.
    pub fn forward_unknown(&self, to: mpsc::Sender<Notification>) {
        *self.unknown.lock().unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    /// Wakes the source registered here under `key` (and hands `lifecycle` to its subscriber),
    /// for a notification that reached another listener and was checked there. `false` when
    /// no subscriber of `key` is registered here.
    pub fn wake(&self, key: &str, lifecycle: Option<LifecycleEvent>) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = entries.get(key) else {
            return false;
        };
        e.wake.notify_one();
        if let Some(ev) = lifecycle {
            let _ = e.lifecycle.send(ev);
        }
        drop(entries);
        self.count(|s| s.woken_from_elsewhere += 1);
        true
    }

    /// Records the id Graph gave the subscription of `key`.
    pub(crate) fn set_id(&self, key: &str, id: &str) {
        if let Some(e) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(key)
        {
            e.subscription_id = Some(id.to_owned());
        }
    }

    /// The answer to a POST with `query` and `body`. Quick: a genuine notification only wakes
    /// its source.
    pub fn answer(&self, query: Option<&str>, body: &[u8]) -> Answer {
        if let Some(token) = validation_token(query) {
            self.count(|s| s.validations += 1);
            return Answer {
                status: 200,
                content_type: Some("text/plain"),
                body: token,
            };
        }
        let notifications = match parse_notifications(body) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "ignored a POST that is no notification");
                self.count(|s| s.malformed += 1);
                return Answer {
                    status: 400,
                    content_type: None,
                    body: String::new(),
                };
            }
        };
        for n in notifications {
            self.route(&n);
        }
        Answer {
            status: 202,
            content_type: None,
            body: String::new(),
        }
    }

    fn route(&self, n: &Notification) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let genuine = entries.values().find(|e| {
            n.client_state
                .as_deref()
                .is_some_and(|c| e.client_state.matches(c))
                && e.subscription_id
                    .as_deref()
                    .is_none_or(|id| id == n.subscription_id)
        });
        let Some(e) = genuine else {
            drop(entries);
            let forward = self
                .unknown
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(tx) = forward
                && n.client_state.is_some()
                && tx.try_send(n.clone()).is_ok()
            {
                self.count(|s| s.forwarded += 1);
                return;
            }
            tracing::warn!(
                subscription = %n.subscription_id,
                "ignored a notification: no subscription of ours with that clientState"
            );
            self.count(|s| s.forged += 1);
            return;
        };
        e.wake.notify_one();
        match &n.lifecycle {
            Some(ev) => {
                let _ = e.lifecycle.send(ev.clone());
                drop(entries);
                self.count(|s| s.lifecycle += 1);
            }
            None => {
                drop(entries);
                self.count(|s| s.hints += 1);
            }
        }
    }
}
