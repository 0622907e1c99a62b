//! [`AppState`]: everything a request handler can reach — the tenant model, the mail store, the
//! fault/throttle controller, the request log, the clock and the configuration.
//!
//! This is the shared internal API the identity, Graph and EWS modules are written against. It is
//! cheap to clone (one `Arc`). Locks are `std::sync` locks: never hold one across an `.await`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::OffsetDateTime;

use std::time::Duration;

use crate::faults::{Admission, FaultController, FaultKind, Protocol};
use crate::identity::grants::IdentityState;
use crate::outbox::OutboxEntry;
use crate::reqlog::RequestLog;
use crate::store::MailStore;
use crate::tenant::Tenant;

/// The sandbox's notion of "now": the system clock plus an offset that tests can advance (through
/// [`crate::Admin::advance_clock`]) instead of sleeping. Token expiry, alias propagation, device
/// code expiry and throttling windows all read this clock.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// Current time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }

    /// Current time as unix seconds.
    pub(crate) fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves the clock forward by `secs` seconds (negative moves it back).
    pub(crate) fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

/// Static configuration of a running sandbox.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Base URL clients use, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub base_url: String,
    /// Whether links in answers (Graph's `@odata.nextLink`/`deltaLink`) name the host the
    /// client called (its `Host`), as a service does; false when a public base URL was
    /// configured (behind a proxy the `Host` seen here is not the client's).
    pub(crate) links_follow_host: bool,
    /// Who may use the HTTP admin API (Host, Origin, admin token).
    pub(crate) admin_access: crate::admin_guard::AdminAccess,
}

/// Shared state of a running sandbox. See the module documentation.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("base_url", &self.inner.config.base_url)
            .finish_non_exhaustive()
    }
}

struct Shared {
    tenant: RwLock<Tenant>,
    store: MailStore,
    faults: FaultController,
    reqlog: Arc<RequestLog>,
    clock: Clock,
    config: Config,
    identity: IdentityState,
    outbox: Mutex<Vec<OutboxEntry>>,
    notifier: Arc<crate::notify::Notifier>,
}

impl AppState {
    /// Decides whether a request may proceed: the fault plan first (a slow answer waits
    /// here), then the throttling budget. See [`crate::faults`].
    pub(crate) async fn admit(&self, protocol: Protocol, app_id: &str, mailbox: &str) -> Admission {
        let fault = self.faults().pick_fault(protocol, app_id, mailbox);
        match fault {
            Some(FaultKind::Slow { millis }) => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            Some(FaultKind::Throttle { retry_after_secs }) => {
                return Admission::Throttled {
                    retry_after: Duration::from_secs(retry_after_secs),
                };
            }
            Some(f) => return Admission::Fault(f),
            None => {}
        }
        match self
            .faults()
            .take_slot(protocol, app_id, mailbox, self.clock().now_unix())
        {
            Ok(g) => {
                // The service's own time, spent holding the slot (see `Latency`).
                if let Some(d) = self.faults().draw_latency() {
                    tokio::time::sleep(d).await;
                }
                Admission::Proceed(g)
            }
            Err(retry_after) => Admission::Throttled { retry_after },
        }
    }

    pub(crate) fn new(tenant: Tenant, config: Config, clock: Clock, fault_seed: u64) -> Self {
        let store = MailStore::new();
        for m in &tenant.mailboxes {
            store.ensure_mailbox(&m.mail);
        }
        Self {
            inner: Arc::new(Shared {
                tenant: RwLock::new(tenant),
                store,
                faults: FaultController::new(fault_seed),
                reqlog: Arc::default(),
                clock,
                config,
                identity: IdentityState::new(),
                outbox: Mutex::new(Vec::new()),
                notifier: Arc::new(crate::notify::Notifier::new()),
            }),
        }
    }

    /// Read access to the tenant model. Do not hold the guard across `.await`.
    pub(crate) fn tenant(&self) -> RwLockReadGuard<'_, Tenant> {
        self.inner
            .tenant
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to the tenant model (admin changes). Do not hold the guard across `.await`.
    pub(crate) fn tenant_mut(&self) -> RwLockWriteGuard<'_, Tenant> {
        self.inner
            .tenant
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The mail store.
    pub(crate) fn store(&self) -> &MailStore {
        &self.inner.store
    }

    /// The fault injection and throttling controller (see [`AppState::admit`]).
    pub(crate) fn faults(&self) -> &FaultController {
        &self.inner.faults
    }

    /// The request log.
    pub(crate) fn reqlog(&self) -> &RequestLog {
        &self.inner.reqlog
    }

    /// The request log, shared with the router's middleware.
    pub(crate) fn reqlog_handle(&self) -> Arc<RequestLog> {
        Arc::clone(&self.inner.reqlog)
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Configuration (base URL).
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Base URL without trailing slash, e.g. `http://127.0.0.1:41234`.
    pub(crate) fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    pub(crate) fn identity(&self) -> &IdentityState {
        &self.inner.identity
    }

    /// Graph's change-notification subscriptions and their delivery.
    pub(crate) fn notifier(&self) -> &Arc<crate::notify::Notifier> {
        &self.inner.notifier
    }

    /// Mail sent to addresses outside the tenant.
    pub(crate) fn outbox(&self) -> MutexGuard<'_, Vec<OutboxEntry>> {
        self.inner
            .outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
