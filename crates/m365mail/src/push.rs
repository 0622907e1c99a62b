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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use graph_mail::push::{
    FileSubscriptionStore, PushHub, PushStats, PushSubscriber, PushSubscriberBuilder,
    SubscriptionStore,
};
use handler::{Shutdown, SourceSpec};
use tokio::sync::Notify;

use crate::config::Source;
use crate::connect::anyhow_lite::{Context, Result};
use crate::connect::{self, Providers};

/// The push sources of a configuration, before anything listens or subscribes.
#[derive(Debug, Default)]
pub struct Push {
    hubs: BTreeMap<SocketAddr, Arc<PushHub>>,
    subscribers: Vec<(SocketAddr, PushSubscriberBuilder, Arc<Notify>)>,
    stores: BTreeMap<std::path::PathBuf, Arc<dyn SubscriptionStore>>,
    watchers: Vec<ews_mail::streaming::StreamingWatcher>,
}

impl Push {
    /// Whether any source is in push mode.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.watchers.is_empty()
    }

    /// Puts `spec` (of source `s`) in push mode when `s` says so: woken by its notifications,
    /// polled at its safety interval. Other sources' specs come back as they are.
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
            self.watchers
                .push(ews_mail::streaming::StreamingWatcher::new(
                    client,
                    folder,
                    wake.clone(),
                ));
            return Ok(spec.wake_on(wake).poll_every(safety));
        }
        let Some(p) = &s.push else {
            return Ok(spec);
        };
        let store = match self.stores.get(&p.subscriptions) {
            Some(st) => st.clone(),
            None => {
                let key = format!("sources.{}.push.subscriptions", s.name);
                let st: Arc<dyn SubscriptionStore> =
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
        self.hubs.entry(p.listen).or_default();
        self.subscribers.push((p.listen, builder, wake.clone()));
        Ok(spec.wake_on(wake).poll_every(p.safety_interval))
    }

    /// Binds every listener, then starts every subscriber; both run until `shutdown`.
    pub async fn start(self, shutdown: &Shutdown) -> Result<Running> {
        let mut listening = BTreeMap::new();
        for (addr, hub) in &self.hubs {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("push mode cannot listen on {addr}: {e}"))?;
            let local = listener
                .local_addr()
                .map_err(|e| format!("push mode's listener on {addr}: {e}"))?;
            let stop = shutdown.clone();
            let app = router(hub.clone());
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.stopped().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "push mode's listener stopped");
                }
            });
            listening.insert(*addr, local);
        }
        for (addr, builder, wake) in self.subscribers {
            let Some(hub) = self.hubs.get(&addr) else {
                continue;
            };
            let subscriber = builder.build(hub, wake);
            let stop = shutdown.clone();
            tokio::spawn(subscriber.run(async move { stop.stopped().await }));
        }
        for watcher in self.watchers {
            let stop = shutdown.clone();
            tokio::spawn(watcher.run(async move { stop.stopped().await }));
        }
        Ok(Running {
            hubs: self.hubs,
            listening,
        })
    }
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
