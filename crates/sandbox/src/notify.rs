//! Graph change notifications: the subscriptions of the tenant, the validation request a
//! notification URL must answer before a subscription exists, the notifications POSTed when a
//! message is created in a subscribed folder, lifecycle notifications, and the faults a
//! subscriber must survive.
//!
//! Shapes follow Microsoft's documentation ("Receive change notifications through webhooks",
//! "Reduce missing subscriptions and change notifications", the `subscription`,
//! `changeNotification` and `changeNotificationCollection` resources):
//!
//! - **Validation.** Before a subscription is created (and when `PATCH` changes its
//!   `notificationUrl`), Graph POSTs to the URL with `?validationToken=…` (URL-encoded; the
//!   token here is Graph's documented "Validation: Testing client application reachability for
//!   subscription Request-Id: …", spaces and colons included), `Content-Type: text/plain;
//!   charset=utf-8` and an empty body. The endpoint must answer within 10 seconds with 200,
//!   `Content-Type: text/plain` and the decoded token as its body; anything else refuses the
//!   subscription (400 `ValidationError`). A `lifecycleNotificationUrl` is validated the same
//!   way.
//! - **Notifications.** For each message created in the subscribed folder (delivered, saved,
//!   copied or moved there), a `changeNotificationCollection` is POSTed as JSON: one
//!   `changeNotification` with `subscriptionId`, `subscriptionExpirationDateTime`,
//!   `changeType: "created"`, `resource` (`Users/{user id}/Messages/{id}`), `resourceData`
//!   (`@odata.type`, `@odata.id`, `@odata.etag`, `id`), `clientState` and `tenantId` — never
//!   the message itself. The endpoint must answer 2xx within 3 seconds; otherwise the
//!   notification is sent again after 1, 2 and 4 seconds, then given up (Graph retries for up to
//!   4 hours; the sandbox keeps its tests short).
//! - **Expiry.** A subscription past its `expirationDateTime` is gone: no more notifications, and
//!   `GET`/`PATCH`/`DELETE` answer 404.
//! - **Lifecycle notifications** (`subscriptionRemoved`, `reauthorizationRequired`, `missed`) go
//!   to the `lifecycleNotificationUrl` when there is one, with `subscriptionId`,
//!   `subscriptionExpirationDateTime`, `tenantId`, `clientState` and `lifecycleEvent`. The
//!   admin API removes a subscription (as the service does when it must) or sends one.
//!
//! Faults ([`NotificationFaults`], set through the admin API): notifications dropped,
//! duplicated, delayed by a random time (which also reorders them), or held back and sent after
//! the next one of the same subscription (reordered), each drawn from a seeded generator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::locks::lock;
use crate::store::Created;

/// The longest a subscription to Outlook messages may live: 10,080 minutes (under 7 days),
/// Graph's documented maximum for messages, events and contacts.
pub(crate) const MAX_LIFETIME_MINUTES: i64 = 10_080;

/// How long a notification URL has to answer a validation request.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a notification URL has to answer a change notification.
const NOTIFICATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The pauses before sending a failed notification again.
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// How long a notification held back to be reordered waits for the next one before it is sent
/// anyway.
const REORDER_HOLD: Duration = Duration::from_millis(500);

/// Faults in the delivery of change notifications. Rates are probabilities from 0 to 1. Start
/// from the default, no faults, and set the ones wanted; the type may gain faults.
///
/// Through the admin API:
///
/// ```json
/// {"op": "set_notification_faults", "faults": {"drop_rate": 0.2, "duplicate_rate": 0.1,
///  "max_delay_ms": 2000, "reorder": true, "seed": 7}}
/// ```
///
/// In Rust, the same faults:
///
/// ```
/// use sandbox::NotificationFaults;
///
/// let mut faults = NotificationFaults::default();
/// faults.drop_rate = 0.2;
/// faults.duplicate_rate = 0.1;
/// faults.max_delay_ms = 2_000;
/// faults.reorder = true;
/// faults.seed = 7;
/// let json = r#"{"drop_rate": 0.2, "duplicate_rate": 0.1, "max_delay_ms": 2000,
///                "reorder": true, "seed": 7}"#;
/// assert_eq!(serde_json::from_str::<NotificationFaults>(json).unwrap(), faults);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NotificationFaults {
    /// The share of change notifications never sent.
    pub drop_rate: f64,
    /// The share of change notifications sent twice.
    pub duplicate_rate: f64,
    /// Each notification waits a random time from 0 to this many milliseconds before it is
    /// sent, so later ones may overtake it.
    pub max_delay_ms: u64,
    /// Each notification is held back until the next one of its subscription has been sent
    /// (or half a second has passed): every pair arrives swapped.
    pub reorder: bool,
    /// Seed of the generator the faults are drawn from.
    pub seed: u64,
}

/// A lifecycle event Graph sends to a subscription's `lifecycleNotificationUrl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// The subscription was removed by the service; the subscriber must create a new one.
    SubscriptionRemoved,
    /// The subscription needs reauthorizing (`POST /subscriptions/{id}/reauthorize`, or a
    /// `PATCH` of its expiry) before it is removed.
    ReauthorizationRequired,
    /// Notifications were missed; the subscriber must catch up (delta).
    Missed,
}

impl LifecycleEvent {
    /// The `lifecycleEvent` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::Missed => "missed",
        }
    }
}

/// What the notification machinery did, for tests and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NotificationStats {
    /// Validation requests sent.
    pub validations: u64,
    /// Change notifications sent and answered with 2xx (a duplicate counts twice).
    pub delivered: u64,
    /// Change notifications dropped by a fault.
    pub dropped: u64,
    /// Change notifications duplicated by a fault.
    pub duplicated: u64,
    /// Change notifications given up after their retries.
    pub failed: u64,
    /// Lifecycle notifications sent.
    pub lifecycle: u64,
}

/// A live subscription, as the admin API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SubscriptionSummary {
    /// Its id.
    pub id: String,
    /// The app that made it.
    pub app_id: String,
    /// The mailbox's primary address.
    pub mailbox: String,
    /// The resource, as given.
    pub resource: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expiration: OffsetDateTime,
}

/// One subscription, as the tenant keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) app_id: String,
    pub(crate) creator_id: String,
    /// The mailbox's primary address.
    pub(crate) mailbox: String,
    /// The mailbox owner's object id (for `resource` in notifications).
    pub(crate) user_id: String,
    /// The folder watched; `None` for every message of the mailbox (`/messages`).
    pub(crate) folder_id: Option<String>,
    pub(crate) resource: String,
    pub(crate) change_type: String,
    pub(crate) notification_url: String,
    pub(crate) lifecycle_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expiration: OffsetDateTime,
    pub(crate) tls_version: String,
}

/// An EWS streaming subscription (`Subscribe` with `StreamingSubscriptionRequest`): its events
/// wait here until a `GetStreamingEvents` connection takes them.
#[derive(Debug)]
pub(crate) struct EwsSubscription {
    pub(crate) app_id: String,
    /// The account that made it, which alone may use it (the signed-in user, or the mailbox an
    /// app impersonates): a delegate's subscription to a shared mailbox is the delegate's.
    pub(crate) owner: String,
    /// The watched mailbox's primary address.
    pub(crate) mailbox: String,
    /// The folder ids watched.
    pub(crate) folders: Vec<String>,
    /// `NewMailEvent` asked for.
    pub(crate) new_mail: bool,
    /// `CreatedEvent` asked for.
    pub(crate) created: bool,
    pub(crate) events: Vec<EwsEvent>,
}

/// One event of an EWS subscription.
#[derive(Debug, Clone)]
pub(crate) struct EwsEvent {
    /// `NewMailEvent` or `CreatedEvent`.
    pub(crate) kind: &'static str,
    pub(crate) id: String,
    pub(crate) change_key: String,
    pub(crate) folder_id: String,
    pub(crate) at: OffsetDateTime,
}

/// The tenant's subscriptions and the delivery of their notifications.
pub(crate) struct Notifier {
    ews: Mutex<BTreeMap<String, EwsSubscription>>,
    /// Woken (all waiters) whenever an EWS subscription gets an event.
    ews_events: tokio::sync::Notify,
    /// EWS streaming notifications are down (the admin API's fault, see `Admin`).
    ews_down: AtomicBool,
    subs: Mutex<BTreeMap<String, Subscription>>,
    faults: Mutex<(NotificationFaults, StdRng)>,
    /// Per subscription, a notification held back to be reordered (its unique key and body).
    held: Mutex<BTreeMap<String, (u64, Value)>>,
    next_key: AtomicU64,
    client: reqwest::Client,
    stats: Mutex<NotificationStats>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    pub(crate) fn new() -> Self {
        // The sandbox is no client of ours and uses none of the client crates (httpcore
        // included); it never follows redirects, as Graph does not.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("sandbox-graph-notifications")
            .build()
            .unwrap_or_default();
        Notifier {
            ews: Mutex::default(),
            ews_events: tokio::sync::Notify::new(),
            ews_down: AtomicBool::new(false),
            subs: Mutex::default(),
            faults: Mutex::new((NotificationFaults::default(), StdRng::seed_from_u64(0))),
            held: Mutex::default(),
            next_key: AtomicU64::new(0),
            client,
            stats: Mutex::default(),
        }
    }

    /// Sets the delivery faults (and reseeds their generator).
    pub(crate) fn set_faults(&self, faults: NotificationFaults) {
        let rng = StdRng::seed_from_u64(faults.seed);
        *lock(&self.faults) = (faults, rng);
    }

    pub(crate) fn stats(&self) -> NotificationStats {
        lock(&self.stats).clone()
    }

    fn count(&self, f: impl FnOnce(&mut NotificationStats)) {
        f(&mut lock(&self.stats));
    }

    /// Forgets subscriptions that expired before `now`.
    fn purge(&self, now: OffsetDateTime) {
        lock(&self.subs).retain(|_, s| s.expiration > now);
    }

    /// A live subscription by id.
    pub(crate) fn get(&self, id: &str, now: OffsetDateTime) -> Option<Subscription> {
        self.purge(now);
        lock(&self.subs).get(id).cloned()
    }

    /// The live subscriptions, in id order.
    pub(crate) fn list(&self, now: OffsetDateTime) -> Vec<Subscription> {
        self.purge(now);
        lock(&self.subs).values().cloned().collect()
    }

    pub(crate) fn insert(&self, s: Subscription) {
        lock(&self.subs).insert(s.id.clone(), s);
    }

    /// Changes a live subscription; `None` when there is none by that id.
    pub(crate) fn update(
        &self,
        id: &str,
        now: OffsetDateTime,
        f: impl FnOnce(&mut Subscription),
    ) -> Option<Subscription> {
        self.purge(now);
        let mut subs = lock(&self.subs);
        let s = subs.get_mut(id)?;
        f(s);
        Some(s.clone())
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Subscription> {
        lock(&self.held).remove(id);
        lock(&self.subs).remove(id)
    }

    /// Sends the validation request to `url` and checks the answer: `Err` says why it failed.
    pub(crate) async fn validate(&self, url: &str) -> Result<(), String> {
        self.count(|s| s.validations += 1);
        let token = format!(
            "Validation: Testing client application reachability for subscription Request-Id: {}",
            uuid::Uuid::new_v4()
        );
        let mut target = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        target
            .query_pairs_mut()
            .append_pair("validationToken", &token);
        let resp = self
            .client
            .post(target)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .timeout(VALIDATION_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        let status = resp.status().as_u16();
        let text_plain = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"));
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if status != 200 {
            return Err(format!("it answered {status}"));
        }
        if !text_plain {
            return Err("the answer was not text/plain".into());
        }
        if body.as_ref() != token.as_bytes() {
            return Err("the answer was not the validation token".into());
        }
        Ok(())
    }

    /// Sends `event` to the subscription's lifecycle URL, if it has one.
    pub(crate) fn lifecycle(
        self: &Arc<Self>,
        tenant_id: &str,
        s: &Subscription,
        event: LifecycleEvent,
    ) {
        let Some(url) = s.lifecycle_url.clone() else {
            return;
        };
        let body = json!({ "value": [{
            "subscriptionId": s.id,
            "subscriptionExpirationDateTime": crate::graph::render::datetime(s.expiration),
            "tenantId": tenant_id,
            "clientState": s.client_state,
            "lifecycleEvent": event.as_str(),
        }]});
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("a lifecycle notification needs a Tokio runtime; not sent");
            return;
        };
        self.count(|c| c.lifecycle += 1);
        let n = Arc::clone(self);
        rt.spawn(async move { n.post(&url, &body).await });
    }

    /// Records a new EWS streaming subscription; returns its id.
    pub(crate) fn ews_subscribe(&self, sub: EwsSubscription) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        lock(&self.ews).insert(id.clone(), sub);
        id
    }

    /// How many EWS subscriptions exist.
    pub(crate) fn ews_count(&self) -> usize {
        lock(&self.ews).len()
    }

    /// The app and the account that made EWS subscription `id`, if it exists.
    pub(crate) fn ews_owner(&self, id: &str) -> Option<(String, String)> {
        lock(&self.ews)
            .get(id)
            .map(|s| (s.app_id.clone(), s.owner.clone()))
    }

    /// Ends EWS subscription `id`.
    pub(crate) fn ews_unsubscribe(&self, id: &str) -> bool {
        let gone = lock(&self.ews).remove(id).is_some();
        // Open connections notice at once.
        self.ews_events.notify_waiters();
        gone
    }

    /// Takes EWS streaming down (every subscription lost, open connections closed) or
    /// brings it back up.
    pub(crate) fn set_ews_down(&self, down: bool) {
        self.ews_down.store(down, Ordering::SeqCst);
        if down {
            lock(&self.ews).clear();
            self.ews_events.notify_waiters();
        }
    }

    /// Whether EWS streaming is down.
    pub(crate) fn ews_down(&self) -> bool {
        self.ews_down.load(Ordering::SeqCst)
    }

    /// Takes the waiting events of the subscriptions `ids` (those still alive): per
    /// subscription, its events; `None` for one that no longer exists.
    pub(crate) fn ews_take(&self, ids: &[String]) -> Vec<(String, Option<Vec<EwsEvent>>)> {
        let mut subs = lock(&self.ews);
        ids.iter()
            .map(|id| {
                let events = subs.get_mut(id).map(|s| std::mem::take(&mut s.events));
                (id.clone(), events)
            })
            .collect()
    }

    /// Completes when some EWS subscription gets an event (or one ends).
    pub(crate) fn ews_events(&self) -> &tokio::sync::Notify {
        &self.ews_events
    }

    fn on_created_ews(&self, at: OffsetDateTime, c: &Created) {
        let mut any = false;
        for s in lock(&self.ews).values_mut() {
            if !s.mailbox.eq_ignore_ascii_case(&c.mailbox) || !s.folders.contains(&c.folder_id) {
                continue;
            }
            let event = |kind| EwsEvent {
                kind,
                id: c.id.clone(),
                change_key: c.change_key.clone(),
                folder_id: c.folder_id.clone(),
                at,
            };
            if s.new_mail && c.new_mail {
                s.events.push(event("NewMailEvent"));
                any = true;
            }
            if s.created {
                s.events.push(event("CreatedEvent"));
                any = true;
            }
        }
        if any {
            self.ews_events.notify_waiters();
        }
    }

    /// Notifies every live subscription that watches the folder of `c`, created at `now` in the
    /// tenant `tenant_id`.
    pub(crate) fn on_created(self: &Arc<Self>, now: OffsetDateTime, tenant_id: &str, c: &Created) {
        self.on_created_ews(now, c);
        let subs: Vec<Subscription> = self
            .list(now)
            .into_iter()
            .filter(|s| {
                s.mailbox.eq_ignore_ascii_case(&c.mailbox)
                    && s.folder_id.as_ref().is_none_or(|f| *f == c.folder_id)
            })
            .collect();
        if subs.is_empty() {
            return;
        }
        for s in subs {
            let resource = format!("Users/{}/Messages/{}", s.user_id, c.id);
            let body = json!({ "value": [{
                "subscriptionId": s.id,
                "subscriptionExpirationDateTime": crate::graph::render::datetime(s.expiration),
                "changeType": "created",
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Message",
                    "@odata.id": resource,
                    "@odata.etag": format!("W/\"{}\"", c.change_key),
                    "id": c.id,
                },
                "clientState": s.client_state,
                "tenantId": tenant_id,
            }]});
            self.deliver(&s, body);
        }
    }

    /// Sends one change notification through the fault plan.
    fn deliver(self: &Arc<Self>, s: &Subscription, body: Value) {
        let (drop, copies, delay, reorder) = {
            let mut g = lock(&self.faults);
            let (f, rng) = &mut *g;
            let drop = f.drop_rate > 0.0 && rng.random_bool(f.drop_rate.min(1.0));
            let twice = f.duplicate_rate > 0.0 && rng.random_bool(f.duplicate_rate.min(1.0));
            let delay = match f.max_delay_ms {
                0 => Duration::ZERO,
                max => Duration::from_millis(rng.random_range(0..=max)),
            };
            (drop, if twice { 2 } else { 1 }, delay, f.reorder)
        };
        if drop {
            self.count(|c| c.dropped += 1);
            return;
        }
        if copies > 1 {
            self.count(|c| c.duplicated += 1);
        }
        let mut bodies = vec![body; copies];
        if reorder {
            let key = self.next_key.fetch_add(1, Ordering::Relaxed);
            let earlier = lock(&self.held).remove(&s.id);
            match earlier {
                // This one goes first, the one held back after it.
                Some((_, prev)) => bodies.push(prev),
                None => {
                    let Some(first) = bodies.pop() else { return };
                    lock(&self.held).insert(s.id.clone(), (key, first));
                    let (n, id, url) = (Arc::clone(self), s.id.clone(), s.notification_url.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(REORDER_HOLD).await;
                        let mine = {
                            let mut held = lock(&n.held);
                            match held.get(&id) {
                                Some((k, _)) if *k == key => held.remove(&id).map(|(_, b)| b),
                                _ => None,
                            }
                        };
                        if let Some(b) = mine {
                            n.send_with_retries(&url, &b).await;
                        }
                    });
                }
            }
        }
        if bodies.is_empty() {
            return;
        }
        let (n, url) = (Arc::clone(self), s.notification_url.clone());
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            for b in bodies {
                n.send_with_retries(&url, &b).await;
            }
        });
    }

    /// POSTs a change notification, again after each pause while it fails.
    async fn send_with_retries(&self, url: &str, body: &Value) {
        for pause in std::iter::once(Duration::ZERO).chain(RETRY_PAUSES) {
            tokio::time::sleep(pause).await;
            if self.post(url, body).await {
                self.count(|c| c.delivered += 1);
                return;
            }
        }
        self.count(|c| c.failed += 1);
    }

    /// One POST of a notification body; whether it was answered with 2xx in time.
    async fn post(&self, url: &str, body: &Value) -> bool {
        let sent = self
            .client
            .post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(serde_json::to_vec(body).unwrap_or_default())
            .timeout(NOTIFICATION_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(r) => r.status().is_success(),
            Err(e) => {
                tracing::debug!(error = %e, "a change notification was not delivered");
                false
            }
        }
    }
}
