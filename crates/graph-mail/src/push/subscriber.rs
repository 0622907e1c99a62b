//! [`PushSubscriber`]: one source's subscription, kept alive.

use std::sync::Arc;
use std::time::Duration;

use connector::{Error, ErrorKind};
use httpcore::StateStore;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use url::Url;

use super::{ClientState, LifecycleEvent, MemorySubscriptionStore, PushHub, SubscriptionRecord};
use crate::GraphClient;
use crate::api::{
    CreateSubscription, DeleteSubscription, RenewSubscription, folder_messages_resource,
};

/// The lifetime asked for by default: 10,000 minutes, under Graph's 10,080 for messages.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(10_000 * 60);
/// Renewed this long before expiry by default.
const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(12 * 3600);
/// The first and the longest pause after a failed (re)subscription.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// The pause after the `failures`-th failed (re)subscription in a row: the workspace's one
/// backoff shape ([`connector::retry::RetryPolicy::backoff`], doubling from [`RETRY_FIRST`] to
/// [`RETRY_MAX`], with the process's jitter), so many sources subscribing again after an outage
/// do not all ask at the same moment.
fn pause_after(failures: u32) -> Duration {
    use connector::retry::{Jitter, ProcessJitter, RetryPolicy};
    RetryPolicy::default()
        .with_backoff(RETRY_FIRST, RETRY_MAX)
        .backoff(failures, ProcessJitter.next())
}

/// Builds a [`PushSubscriber`]. Cloned, it builds another for the same source (a fleet's
/// worker builds one each time it takes the source's lease).
#[derive(Debug, Clone)]
pub struct PushSubscriberBuilder {
    client: GraphClient,
    key: String,
    folder: String,
    notification_url: Url,
    store: Arc<dyn StateStore<SubscriptionRecord>>,
    lifetime: Duration,
    renew_before: Duration,
}

impl PushSubscriberBuilder {
    /// Where the subscription is recorded (default: in memory, so a restart cannot reuse it).
    pub fn store(mut self, store: Arc<dyn StateStore<SubscriptionRecord>>) -> Self {
        self.store = store;
        self
    }

    /// The lifetime asked for at each creation and renewal (default 10,000 minutes; Graph
    /// refuses more than 10,080 for messages).
    pub fn lifetime(mut self, d: Duration) -> Self {
        self.lifetime = d;
        self
    }

    /// How long before expiry the subscription is renewed (default 12 hours; at most half the
    /// lifetime is used).
    pub fn renew_before(mut self, d: Duration) -> Self {
        self.renew_before = d;
        self
    }

    /// The subscriber: genuine notifications that reach `hub` wake `wake`, which whoever
    /// drives the source waits on (the handler pipeline's `SourceSpec::wake_on`).
    pub fn build(self, hub: &Arc<PushHub>, wake: Arc<Notify>) -> PushSubscriber {
        let (tx, rx) = mpsc::unbounded_channel();
        let resource = folder_messages_resource(self.client.endpoint(), &self.folder);
        PushSubscriber {
            client: self.client,
            key: self.key,
            resource,
            notification_url: self.notification_url,
            store: self.store,
            lifetime: self.lifetime,
            renew_before: self.renew_before.min(self.lifetime / 2),
            hub: hub.clone(),
            wake,
            lifecycle_tx: tx,
            lifecycle_rx: rx,
            current: None,
        }
    }
}

/// Keeps the subscription of one source alive; see the [module documentation](super).
///
/// ```no_run
/// use std::sync::Arc;
/// use graph_mail::push::{FileSubscriptionStore, PushHub, PushSubscriber};
/// # async fn run(client: graph_mail::GraphClient) -> Result<(), connector::Error> {
/// let hub = PushHub::new(); // served by the listener at the public URL below
/// let wake = Arc::new(tokio::sync::Notify::new()); // the source's pipeline waits on it
/// let subscriber = PushSubscriber::builder(
///     client,
///     "helpdesk",
///     "inbox",
///     url::Url::parse("https://mail.example.com/graph-notifications").unwrap(),
/// )
/// .store(Arc::new(FileSubscriptionStore::open("graph-subscriptions.json")?))
/// .build(&hub, wake.clone());
/// tokio::spawn(subscriber.run(std::future::pending()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PushSubscriber {
    client: GraphClient,
    key: String,
    resource: String,
    notification_url: Url,
    store: Arc<dyn StateStore<SubscriptionRecord>>,
    lifetime: Duration,
    renew_before: Duration,
    hub: Arc<PushHub>,
    wake: Arc<Notify>,
    lifecycle_tx: mpsc::UnboundedSender<LifecycleEvent>,
    lifecycle_rx: mpsc::UnboundedReceiver<LifecycleEvent>,
    current: Option<SubscriptionRecord>,
}

fn after(d: Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() + d
}

impl PushSubscriber {
    /// A subscriber for `folder` of `client`'s mailbox, recorded under `key`, with
    /// notifications sent to `notification_url` (lifecycle notifications too).
    pub fn builder(
        client: GraphClient,
        key: impl Into<String>,
        folder: impl Into<String>,
        notification_url: Url,
    ) -> PushSubscriberBuilder {
        PushSubscriberBuilder {
            client,
            key: key.into(),
            folder: folder.into(),
            notification_url,
            store: Arc::new(MemorySubscriptionStore::default()),
            lifetime: DEFAULT_LIFETIME,
            renew_before: DEFAULT_RENEW_BEFORE,
        }
    }

    /// The live subscription, once [`ensure`](Self::ensure) has made or found one.
    pub fn current(&self) -> Option<&SubscriptionRecord> {
        self.current.as_ref()
    }

    fn register(&self, client_state: &ClientState, id: Option<String>) {
        self.hub.register(
            &self.key,
            client_state.clone(),
            id,
            self.wake.clone(),
            self.lifecycle_tx.clone(),
        );
    }

    /// Makes sure a subscription is live: the recorded one renewed when it still fits (same
    /// resource and URL) and Graph still has it; otherwise a recorded one that no longer fits
    /// is deleted and a new one created (the listener must be serving: Graph validates the URL
    /// first). Records the result.
    pub async fn ensure(&mut self) -> Result<SubscriptionRecord, Error> {
        let recorded = match self.current.take() {
            Some(r) => Some(r),
            None => self.store.load(&self.key).await?,
        };
        if let Some(rec) = recorded {
            if rec.resource == self.resource
                && rec.notification_url == self.notification_url.as_str()
            {
                self.register(&rec.client_state, Some(rec.id.clone()));
                match self.renew(rec).await {
                    Ok(r) => return Ok(r),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            } else {
                tracing::info!(source = %self.key, "deleting a recorded subscription that no longer fits the configuration");
                match self.client.execute(&DeleteSubscription::new(&rec.id)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            self.store.clear(&self.key).await?;
        }
        self.create().await
    }

    async fn create(&mut self) -> Result<SubscriptionRecord, Error> {
        let client_state = ClientState::generate();
        // Registered first: Graph may notify before its answer to the creation arrives.
        self.register(&client_state, None);
        let sub = self
            .client
            .execute(&CreateSubscription {
                resource: self.resource.clone(),
                notification_url: self.notification_url.clone(),
                lifecycle_url: Some(self.notification_url.clone()),
                expiration: after(self.lifetime),
                client_state: client_state.clone(),
            })
            .await?;
        self.hub.set_id(&self.key, &sub.id);
        let rec = SubscriptionRecord::new(
            sub.id,
            self.resource.clone(),
            self.notification_url.as_str(),
            client_state,
            sub.expiration,
        );
        if let Err(e) = self.store.save(&self.key, &rec).await {
            // Unrecorded, no run would reuse or delete it: deleted now rather than leaked (a
            // fleet's store refuses the record once this worker lost the source).
            if let Err(d) = self.client.execute(&DeleteSubscription::new(&rec.id)).await {
                tracing::warn!(source = %self.key, subscription = %rec.id, error = %d, "deleting a subscription that could not be recorded failed; it expires on its own");
            }
            return Err(e);
        }
        tracing::info!(source = %self.key, subscription = %rec.id, "subscribed to new mail");
        self.current = Some(rec.clone());
        Ok(rec)
    }

    async fn renew(&mut self, mut rec: SubscriptionRecord) -> Result<SubscriptionRecord, Error> {
        let sub = self
            .client
            .execute(&RenewSubscription::new(&rec.id, after(self.lifetime)))
            .await?;
        rec.expiration = sub.expiration;
        self.store.save(&self.key, &rec).await?;
        self.current = Some(rec.clone());
        Ok(rec)
    }

    /// Deletes the live subscription and forgets it (a source taken out of push mode).
    pub async fn delete(&mut self) -> Result<(), Error> {
        let Some(rec) = self.current.take() else {
            return Ok(());
        };
        match self.client.execute(&DeleteSubscription::new(&rec.id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.store.clear(&self.key).await
    }

    /// Deletes the recorded subscription, if any, and forgets it, without making another: for
    /// a source taken out of push mode (or removed) whose subscription no one will reuse.
    pub async fn retire(&mut self) -> Result<(), Error> {
        if self.current.is_none() {
            self.current = self.store.load(&self.key).await?;
        }
        self.delete().await
    }

    /// Keeps the subscription alive until `stop` completes: ensures one (retrying with growing
    /// pauses, while the source's safety timer covers), wakes the source after each
    /// (re)subscription, renews before expiry and answers lifecycle events. The subscription
    /// is left in place at the end, recorded, for the next run (or a fleet's next holder of
    /// the source) to reuse, and the hub forgets it.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let (hub, key) = (self.hub.clone(), self.key.clone());
        self.keep_alive(stop).await;
        hub.unregister(&key);
    }

    async fn keep_alive(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut failures = 0;
        loop {
            let rec = match self.current.clone() {
                Some(r) => r,
                None => match self.ensure().await {
                    Ok(r) => {
                        failures = 0;
                        // Whatever arrived while no subscription was live.
                        self.wake.notify_one();
                        r
                    }
                    Err(e) => {
                        tracing::warn!(source = %self.key, error = %e, "subscribing to new mail failed; the safety timer covers");
                        failures += 1;
                        tokio::select! {
                            () = &mut stop => return,
                            () = tokio::time::sleep(pause_after(failures)) => {}
                        }
                        continue;
                    }
                },
            };
            let until_renewal = (rec.expiration - OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO)
                .saturating_sub(self.renew_before);
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(until_renewal) => {
                    self.renew_or_recreate(rec).await;
                }
                ev = self.lifecycle_rx.recv() => match ev {
                    Some(LifecycleEvent::SubscriptionRemoved) => {
                        tracing::info!(source = %self.key, "the subscription was removed; subscribing again");
                        self.current = None;
                        let _ = self.store.clear(&self.key).await;
                    }
                    Some(LifecycleEvent::ReauthorizationRequired) => self.renew_or_recreate(rec).await,
                    // `missed` and unknown events: the hub already woke the source.
                    Some(_) | None => {}
                },
            }
        }
    }

    /// Renews; a subscription Graph no longer has is made again on the next turn.
    async fn renew_or_recreate(&mut self, rec: SubscriptionRecord) {
        match self.renew(rec).await {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %self.key, error = %e, "renewing the subscription failed; subscribing again");
                self.current = None;
            }
        }
    }
}
