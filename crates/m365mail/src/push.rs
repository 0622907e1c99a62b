//! Push mode (`mode = "push"`): for a Graph source, the listener Graph's change notifications
//! reach and the subscriber that keeps its subscription alive; for an EWS source, a streaming
//! connection of its own (`ews_mail::streaming`, no listener).
//!
//! A notification is only a hint (see `graph_mail::push`): it wakes the source's task in the
//! pipeline, which runs its ordinary incremental round (a Graph delta round; for EWS a
//! SyncFolderItems catch-up from the saved `sync_state`, which also finds what arrived while the
//! stream was down or the process stopped); the source's poll interval becomes the slow
//! safety timer (`[sources.push] safety_interval_secs`) that catches up what no notification
//! announced. One listener per `listen` address serves every push source bound there, on any
//! path (a reverse proxy may forward `public_url` to it under another path), and answers at
//! once: 200 with the token to Graph's validation request, 202 to notifications, genuine or
//! forged. The listener is started before the subscribers, because Graph validates the URL
//! before it creates a subscription. Subscriptions are recorded (`[sources.push]
//! subscriptions`) and left in place when the process stops, so the next run reuses them.
//!
//! A source's subscriber (or streaming watcher) is its [`Companion`]: it runs while the
//! pipeline serves the source. `m365mail run` serves every source from start to stop;
//! `m365mail worker` serves a source only while it holds the source's lease, so there the
//! subscriber starts when the lease is taken and stops (leaving the subscription in place) when
//! it goes, and the subscription is recorded in the fleet's database for the next holder to
//! reuse ([`FleetPush`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use graph_mail::push::{
    ClientState, FileSubscriptionStore, LifecycleEvent, Notification, PushHub, PushStats,
    PushSubscriber, PushSubscriberBuilder, SubscriptionRecord,
};
use handler::{Companion, Fence, Shutdown, SourceSpec};
use httpcore::StateStore;
use tokio::sync::{Notify, mpsc};

use crate::config::Source;
use crate::connect::anyhow_lite::{Context, Result};
use crate::connect::{self, Providers};

/// The push sources of a configuration, before anything listens.
#[derive(Debug, Default)]
pub struct Push {
    hubs: BTreeMap<SocketAddr, Arc<PushHub>>,
    stores: BTreeMap<std::path::PathBuf, Arc<dyn StateStore<SubscriptionRecord>>>,
    /// A fleet's store, used instead of the `subscriptions` files.
    fleet_store: Option<fleet::PgSubscriptionStore>,
    /// The sources in push mode.
    sources: usize,
}

/// A Graph source's subscriber, started each time the source is served.
struct Subscribing {
    builder: PushSubscriberBuilder,
    hub: Arc<PushHub>,
    wake: Arc<Notify>,
    /// A fleet's store: the record is written under the lease the source is served with.
    fleet_store: Option<fleet::PgSubscriptionStore>,
}

#[async_trait::async_trait]
impl Companion for Subscribing {
    async fn run(&self, fence: Option<Fence>, stop: Shutdown) {
        let builder = match (&self.fleet_store, &fence) {
            (Some(st), Some(f)) => self.builder.clone().store(Arc::new(st.fenced(f))),
            _ => self.builder.clone(),
        };
        let subscriber = builder.build(&self.hub, self.wake.clone());
        subscriber.run(async move { stop.stopped().await }).await;
    }
}

/// An EWS source's streaming watcher, started each time the source is served.
struct Streaming(ews_mail::streaming::StreamingWatcher);

#[async_trait::async_trait]
impl Companion for Streaming {
    async fn run(&self, _fence: Option<Fence>, stop: Shutdown) {
        self.0
            .clone()
            .run(async move { stop.stopped().await })
            .await;
    }
}

impl Push {
    /// Whether any source is in push mode.
    pub fn is_empty(&self) -> bool {
        self.sources == 0
    }

    /// Puts `spec` (of source `s`) in push mode when `s` says so: woken by its notifications,
    /// polled at its safety interval, its subscriber (or streaming watcher) running beside it.
    /// Other sources' specs come back as they are.
    pub fn attach(
        &mut self,
        s: &Source,
        spec: SourceSpec,
        providers: &mut Providers,
    ) -> Result<SourceSpec> {
        if let Some(safety) = s.streaming {
            // EWS: a streaming connection of our own, no listener; the source (built with its
            // `sync_state` by `connect::source`) catches up through SyncFolderItems when woken.
            let client = connect::source_ews_client(providers, s)?;
            let wake = Arc::new(Notify::new());
            // Addressed as the source addresses it: a shared mailbox's folder names the
            // mailbox (a bare distinguished id would watch the signed-in user's own folder).
            let folder = client
                .config()
                .access
                .folder(s.folder.as_deref().unwrap_or("inbox"));
            let watcher = ews_mail::streaming::StreamingWatcher::new(client, folder, wake.clone());
            self.sources += 1;
            return Ok(spec
                .wake_on(wake)
                .poll_every(safety)
                .beside(Arc::new(Streaming(watcher))));
        }
        let Some(p) = &s.push else {
            return Ok(spec);
        };
        let store = match (&self.fleet_store, self.stores.get(&p.subscriptions)) {
            (Some(st), _) => Arc::new(st.clone()) as Arc<dyn StateStore<SubscriptionRecord>>,
            (None, Some(st)) => st.clone(),
            (None, None) => {
                let key = format!("sources.{}.push.subscriptions", s.name);
                let st: Arc<dyn StateStore<SubscriptionRecord>> =
                    Arc::new(FileSubscriptionStore::open(&p.subscriptions).context(&key)?);
                self.stores.insert(p.subscriptions.clone(), st.clone());
                st
            }
        };
        let client = connect::source_graph_client(providers, s)?;
        let wake = Arc::new(Notify::new());
        let builder = PushSubscriber::builder(
            client,
            s.name.clone(),
            s.folder.clone().unwrap_or_else(|| "inbox".into()),
            p.public_url.clone(),
        )
        .store(store);
        let hub = self.hubs.entry(p.listen).or_default().clone();
        self.sources += 1;
        let companion = Subscribing {
            builder,
            hub,
            wake: wake.clone(),
            fleet_store: self.fleet_store.clone(),
        };
        Ok(spec
            .wake_on(wake)
            .poll_every(p.safety_interval)
            .beside(Arc::new(companion)))
    }

    /// Binds every listener, serving until `shutdown`. The subscribers start with their
    /// sources, when the pipeline runs: after this, since Graph validates the URL first.
    pub async fn start(self, shutdown: &Shutdown) -> Result<Running> {
        let mut listening = BTreeMap::new();
        for (addr, hub) in &self.hubs {
            listening.insert(*addr, listen(*addr, hub.clone(), shutdown).await?);
        }
        Ok(Running {
            hubs: self.hubs,
            listening,
        })
    }
}

/// Binds `addr` and serves `hub` there until `shutdown`; returns where it is bound.
async fn listen(addr: SocketAddr, hub: Arc<PushHub>, shutdown: &Shutdown) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("push mode cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("push mode's listener on {addr}: {e}"))?;
    let stop = shutdown.clone();
    let app = router(hub);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.stopped().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "push mode's listener stopped");
        }
    });
    Ok(local)
}

/// Push mode, started: the listeners' addresses and what they have seen.
#[derive(Debug)]
pub struct Running {
    hubs: BTreeMap<SocketAddr, Arc<PushHub>>,
    listening: BTreeMap<SocketAddr, SocketAddr>,
}

impl Running {
    /// Where the listener configured at `listen` is bound (its port when `listen` said 0).
    pub fn local_addr(&self, listen: SocketAddr) -> Option<SocketAddr> {
        self.listening.get(&listen).copied()
    }

    /// What the listener at `listen` has seen.
    pub fn stats(&self, listen: SocketAddr) -> Option<PushStats> {
        self.hubs.get(&listen).map(|h| h.stats())
    }
}

/// The listener: every POST, on any path, goes to `hub`.
pub fn router(hub: Arc<PushHub>) -> axum::Router {
    axum::Router::new().fallback(answer).with_state(hub)
}

async fn answer(
    State(hub): State<Arc<PushHub>>,
    method: http::Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if method != http::Method::POST {
        return http::StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let a = hub.answer(query.as_deref(), &body);
    let status =
        http::StatusCode::from_u16(a.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    match a.content_type {
        Some(ct) => (status, [(http::header::CONTENT_TYPE, ct)], a.body).into_response(),
        None => status.into_response(),
    }
}

/// How often, at most, a worker reads the recorded subscriptions again to check a
/// notification for a subscription it does not know (so that forged notifications cannot make
/// it query the database at their rate).
const RELAY_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Notifications waiting to be checked against the recorded subscriptions; more are dropped
/// (the safety timer catches up).
const RELAY_QUEUE: usize = 256;

/// Push mode in a fleet's worker (`m365mail worker`):
///
/// - subscriptions are recorded in the fleet's database (`fleet_subscriptions`) instead of
///   `[sources.push] subscriptions`, so whichever worker holds a source next renews the one the
///   last holder left instead of making another;
/// - a source's subscriber (or EWS streaming watcher) runs only on the worker holding its
///   lease, as its [`Companion`]: started when the lease is taken, stopped (the subscription
///   left in place) when it goes;
/// - every worker listens on the `listen` address of each push source. A notification for a
///   source this worker does not serve (a load balancer may send it to any worker) is checked
///   against the recorded subscription (its `clientState`, in constant time) and, when genuine,
///   sent to every worker as a PostgreSQL `NOTIFY` ([`fleet::PgWakeups`]); the worker holding
///   the source wakes it;
/// - a subscription no source needs any more (the source removed, or out of push mode) is
///   deleted, under the source's lease, by a worker that saw the change.
pub struct FleetPush {
    state: std::sync::Mutex<FleetState>,
    subscriptions: fleet::PgSubscriptionStore,
    wakeups: fleet::PgWakeups,
    leases: Arc<dyn handler::LeaseStore>,
    worker: String,
    lease_ttl: std::time::Duration,
    shutdown: Shutdown,
    forwarded: mpsc::Sender<Notification>,
}

#[derive(Default)]
struct FleetState {
    push: Push,
    listening: BTreeMap<SocketAddr, SocketAddr>,
    relay: Option<mpsc::Receiver<Notification>>,
    /// The Graph push sources of the last catalog, with what can delete their subscription.
    graph: BTreeMap<String, PushSubscriberBuilder>,
    /// Those of the catalog being built.
    building: BTreeMap<String, PushSubscriberBuilder>,
}

impl std::fmt::Debug for FleetPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetPush")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl FleetPush {
    /// Push mode for the worker `worker` of the fleet in `store`, whose leases are `leases`
    /// (lasting `lease_ttl`); its listeners serve until `shutdown`.
    pub fn new(
        store: &fleet::PgStore,
        leases: Arc<dyn handler::LeaseStore>,
        worker: &str,
        lease_ttl: std::time::Duration,
        shutdown: &Shutdown,
    ) -> Arc<Self> {
        let subscriptions = store.subscriptions();
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        let state = FleetState {
            push: Push {
                fleet_store: Some(subscriptions.clone()),
                ..Push::default()
            },
            relay: Some(rx),
            ..FleetState::default()
        };
        Arc::new(FleetPush {
            state: std::sync::Mutex::new(state),
            subscriptions,
            wakeups: store.wakeups(),
            leases,
            worker: worker.to_owned(),
            lease_ttl,
            shutdown: shutdown.clone(),
            forwarded: tx,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FleetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`Push::attach`], for a worker: the subscription recorded in the fleet's database, and
    /// the listener's unknown notifications checked against the recorded ones.
    pub fn attach(
        &self,
        s: &Source,
        spec: SourceSpec,
        providers: &mut Providers,
    ) -> Result<SourceSpec> {
        let mut st = self.state();
        let spec = st.push.attach(s, spec, providers)?;
        if let Some(p) = &s.push {
            let hub = st.push.hubs.entry(p.listen).or_default().clone();
            hub.forward_unknown(self.forwarded.clone());
            // What can delete its subscription once no source needs it.
            let client = connect::source_graph_client(providers, s)?;
            let builder = PushSubscriber::builder(
                client,
                s.name.clone(),
                s.folder.clone().unwrap_or_else(|| "inbox".into()),
                p.public_url.clone(),
            )
            .store(Arc::new(self.subscriptions.clone()));
            st.building.insert(s.name.clone(), builder);
        }
        Ok(spec)
    }

    /// Binds a listener on `addr` (if none is bound there yet) before any source is attached:
    /// a worker fails at start when it cannot listen, as `run` does.
    pub async fn listen_on(self: &Arc<Self>, addr: SocketAddr) -> Result<()> {
        {
            let mut st = self.state();
            let hub = st.push.hubs.entry(addr).or_default().clone();
            hub.forward_unknown(self.forwarded.clone());
        }
        self.listen().await
    }

    /// Ends a catalog's build: binds the listeners of new `listen` addresses, starts relaying
    /// notifications between workers once there is a listener, and deletes (in the background,
    /// under the source's lease) the subscriptions of Graph push sources the catalog no longer
    /// has.
    pub async fn built(self: &Arc<Self>) -> Result<()> {
        let retired: Vec<(String, PushSubscriberBuilder)> = {
            let mut st = self.state();
            let now = std::mem::take(&mut st.building);
            let before = std::mem::replace(&mut st.graph, now);
            before
                .into_iter()
                .filter(|(k, _)| !st.graph.contains_key(k))
                .collect()
        };
        for (key, builder) in retired {
            tokio::spawn(self.clone().retire(key, builder));
        }
        self.listen().await
    }

    /// Binds the listeners not bound yet, and starts the relays with the first.
    async fn listen(self: &Arc<Self>) -> Result<()> {
        let todo: Vec<(SocketAddr, Arc<PushHub>)> = {
            let st = self.state();
            st.push
                .hubs
                .iter()
                .filter(|(a, _)| !st.listening.contains_key(a))
                .map(|(a, h)| (*a, h.clone()))
                .collect()
        };
        for (addr, hub) in todo {
            let local = listen(addr, hub, &self.shutdown).await?;
            tracing::info!(listen = %local, "push mode's listener is up");
            self.state().listening.insert(addr, local);
        }
        let relay = {
            let mut st = self.state();
            if st.listening.is_empty() {
                None
            } else {
                st.relay.take()
            }
        };
        if let Some(rx) = relay {
            tokio::spawn(relay_notifications(
                rx,
                self.subscriptions.clone(),
                self.wakeups.clone(),
            ));
            tokio::spawn(self.clone().wake_holders());
        }
        Ok(())
    }

    /// Where the listener configured at `listen` is bound.
    pub fn local_addr(&self, listen: SocketAddr) -> Option<SocketAddr> {
        self.state().listening.get(&listen).copied()
    }

    /// What the listener at `listen` has seen.
    pub fn stats(&self, listen: SocketAddr) -> Option<PushStats> {
        self.state().push.hubs.get(&listen).map(|h| h.stats())
    }

    /// Wakes the sources this worker serves when another worker's listener received their
    /// notification; every push source after the listening connection came back.
    async fn wake_holders(self: Arc<Self>) {
        let mut rx = self.wakeups.listen();
        loop {
            let w = tokio::select! {
                () = self.shutdown.stopped() => return,
                w = rx.recv() => match w {
                    Some(w) => w,
                    None => return,
                },
            };
            let st = self.state();
            let keys: Vec<String> = match &w.source {
                Some(k) => vec![k.clone()],
                None => st.graph.keys().cloned().collect(),
            };
            for key in keys {
                let lifecycle = w.lifecycle.as_deref().map(LifecycleEvent::parse);
                let woken = st
                    .push
                    .hubs
                    .values()
                    .any(|h| h.wake(&key, lifecycle.clone()));
                if woken {
                    tracing::debug!(source = %key, "woken by a notification another worker received");
                }
            }
        }
    }

    /// Deletes the subscription of `key` (a source no longer in push mode) under its lease,
    /// so that no holder's subscriber renews it meanwhile; tries for a while, then leaves it to
    /// expire.
    async fn retire(self: Arc<Self>, key: String, builder: PushSubscriberBuilder) {
        let tick = self.lease_ttl / 3;
        for _ in 0..30 {
            // Its holder stops it at its next tick: give it that time.
            if self.shutdown.wait_for(tick).await {
                return;
            }
            let fence = match self
                .leases
                .acquire(&key, &self.worker, self.lease_ttl)
                .await
            {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(source = %key, error = %e, "taking the lease to delete a subscription failed");
                    continue;
                }
            };
            let mut subscriber = builder
                .clone()
                .store(Arc::new(self.subscriptions.fenced(&fence)))
                .build(&PushHub::new(), Arc::new(Notify::new()));
            let done = subscriber.retire().await;
            if let Err(e) = self.leases.release(&fence).await {
                tracing::debug!(source = %key, error = %e, "handing the lease back failed; it expires");
            }
            match done {
                Ok(()) => {
                    tracing::info!(source = %key, "deleted the subscription of a source no longer in push mode");
                    return;
                }
                Err(e) => {
                    tracing::warn!(source = %key, error = %e, "deleting the subscription of a source no longer in push mode failed");
                }
            }
        }
        tracing::warn!(source = %key, "the subscription of a source no longer in push mode was left to expire");
    }
}

/// Checks each notification no subscriber of this worker took against the recorded
/// subscriptions and sends the genuine ones to the worker holding their source.
async fn relay_notifications(
    mut rx: mpsc::Receiver<Notification>,
    subscriptions: fleet::PgSubscriptionStore,
    wakeups: fleet::PgWakeups,
) {
    let mut known: std::collections::HashMap<String, (String, ClientState)> = Default::default();
    let mut refreshed: Option<std::time::Instant> = None;
    while let Some(n) = rx.recv().await {
        let stale = refreshed.is_none_or(|t| t.elapsed() >= RELAY_REFRESH);
        if !known.contains_key(&n.subscription_id) && stale {
            refreshed = Some(std::time::Instant::now());
            match subscriptions.all().await {
                Ok(all) => {
                    known = all
                        .into_iter()
                        .map(|(k, r)| (r.id, (k, r.client_state)))
                        .collect();
                }
                Err(e) => tracing::warn!(error = %e, "reading the recorded subscriptions failed"),
            }
        }
        let Some((source, state)) = known.get(&n.subscription_id) else {
            tracing::warn!(subscription = %n.subscription_id, "ignored a notification: no subscription of the fleet has that id");
            continue;
        };
        if !n.carries(state) {
            tracing::warn!(subscription = %n.subscription_id, "ignored a notification: its clientState is not the subscription's");
            continue;
        }
        let lifecycle = n.lifecycle.as_ref().map(LifecycleEvent::name);
        if let Err(e) = wakeups.send(source, lifecycle).await {
            tracing::warn!(source = %source, error = %e, "waking the source's worker failed; its safety timer catches up");
        }
    }
}
