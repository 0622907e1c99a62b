//! A fleet of mail handlers on PostgreSQL: the state the workers share, behind the traits the
//! rest of the toolkit already speaks.
//!
//! One `m365mail run` on local files needs none of this. Several workers serving the same
//! sources (for availability, or because one machine is not enough) share what follows, each
//! kept here in one PostgreSQL database:
//!
//! | backend | trait | what it keeps |
//! |---|---|---|
//! | [`PgLedger`] | [`handler::LedgerStore`] | what was handled, notified, acknowledged, parked; every entry fenced by the writer's lease |
//! | [`PgLeases`] | [`handler::LeaseStore`] | which worker serves which source (leases with fencing epochs), and which workers are alive |
//! | [`PgTokenStore`] | [`msauth::TokenStore`] | the token cache, with a fleet-wide lock so that one worker signs in or refreshes at a time |
//! | [`PgDeltaStore`], a [`PgStateStore`] | [`StateStore`](httpcore::StateStore)`<`[`DeltaState`](graph_mail::delta::DeltaState)`>` | Graph delta links and the messages seen but not yet acknowledged |
//! | [`PgEwsSyncStore`], a [`PgStateStore`] | [`StateStore`](httpcore::StateStore)`<`[`SourceSyncState`](ews_mail::sync::SourceSyncState)`>` | EWS SyncFolderItems states and the messages seen but not yet acknowledged |
//! | [`PgSubscriptionStore`] | [`StateStore`](httpcore::StateStore)`<`[`SubscriptionRecord`](graph_mail::push::SubscriptionRecord)`>` | push mode's Graph subscriptions, reused by a source's next holder |
//!
//! [`PgStore::connect`] opens a connection pool and brings the schema up to date (the program
//! creates and migrates its own tables, see below); its accessors hand out the backends,
//! cheap clones sharing the pool.
//!
//! ```no_run
//! use std::sync::Arc;
//! use fleet::PgStore;
//! use handler::{LeaseStore, LedgerStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect("postgres://m365mail@db.internal/m365mail").await?;
//! let leases: Arc<dyn LeaseStore> = Arc::new(store.leases());
//! let ledger: Arc<dyn LedgerStore> = Arc::new(store.ledger());
//! // The token cache and the delta state, for msauth's provider and graph-mail's source.
//! let tokens: Arc<dyn msauth::TokenStore> = Arc::new(store.tokens());
//! let delta: Arc<dyn httpcore::StateStore<graph_mail::delta::DeltaState>> = Arc::new(store.delta());
//! if let Some(fence) = leases.acquire("helpdesk", "worker-1", std::time::Duration::from_secs(30)).await? {
//!     // Every write carries the fence: refused once another worker took the lease over.
//!     ledger.append(vec![("helpdesk|<1@x>".into(), handler::Entry::Acknowledged)], Some(&fence)).await?;
//! }
//! # let _ = (tokens, delta);
//! # Ok(()) }
//! ```
//!
//! # Why these crates
//!
//! tokio-postgres is the asynchronous PostgreSQL client the rest of the Rust ecosystem builds
//! on: plain SQL with typed parameters, pipelining, no compile-time database and no ORM, on the
//! tokio runtime the workspace already uses, with a small dependency tree (no TLS or type
//! features beyond `serde_json`'s jsonb). deadpool-postgres is the thin pool made for it: it
//! caches prepared statements per connection, recycles a connection only after checking it is
//! still open, and adds nothing else; sqlx would have brought its own pool, macros and drivers
//! we do not use, and diesel a synchronous ORM.
//!
//! # The schema
//!
//! The tables (all named `fleet_*`, so the database can be shared) are created by the program
//! itself: `fleet_schema` holds the version, and the migrations are an ordered list of SQL
//! steps embedded in this crate. Each worker applies the steps it finds missing when it
//! connects, in one transaction under an advisory lock, so that workers starting together do
//! not race. A database whose version is newer than this program knows is refused
//! ([`StoreError::SchemaTooNew`]) rather than misread.
//!
//! - `fleet_ledger`: one row per key, the folded [`handler::Record`] as columns;
//!   `fleet_ledger_log`: every entry as recorded (key, the fence's source, worker and epoch,
//!   the entry as jsonb, the database's time), so an audit can check that nothing was recorded
//!   under a stale epoch.
//! - `fleet_leases` (source, worker or NULL once released, epoch, expiry) and `fleet_workers`
//!   (heartbeats). All expiry is by the database's clock, never a worker's.
//! - `fleet_tokens`: msauth's cache entries; `fleet_delta`: graph-mail's delta states.
//! - `fleet_subscriptions`: push mode's Graph subscriptions, one per source, with their
//!   `clientState` (a secret, kept like the tokens). Wake-ups between workers are not stored:
//!   they are `NOTIFY`s on the channel `m365mail_push` ([`PgWakeups`]).
//!
//! # Security
//!
//! The password of the URL never appears in `Debug`, `Display` or an error of this crate.
//! Tokens are stored as msauth's `FileStore` stores them: not encrypted, refresh tokens
//! included; so are push subscriptions' `clientState`s. Whoever can read `fleet_tokens` can act as the application, so restrict the
//! database's access accordingly (its own role and database, TLS or a private network); this
//! crate connects without TLS (`sslmode=disable` or `prefer`), for a database on the same host
//! or a trusted network.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod catalog;
mod delta;
mod leases;
mod ledger;
mod push;
mod schema;
mod status;
mod tokens;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

pub use catalog::{ConfigEntry, EntryKind, PgCatalog};
pub use delta::{PgDeltaStore, PgEwsSyncStore, PgStateStore};
pub use leases::PgLeases;
pub use ledger::PgLedger;
pub use push::{PgSubscriptionStore, PgWakeups, Wakeup};
pub use status::{FleetStatus, PgStatus, SourceEvent, SourceStatus, WorkerStatus};
pub use tokens::PgTokenStore;

/// What [`PgStore::connect`] and the store's own calls can fail with. Never carries the
/// password of the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL (or key-value connection string) could not be parsed.
    #[error("the PostgreSQL URL is not valid: {reason}")]
    InvalidUrl {
        /// Why (with any password removed).
        reason: String,
    },
    /// The database could not be reached, or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// `user@host:port/database`.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// A statement failed (while migrating the schema, for example).
    #[error("PostgreSQL at {target}: {reason}")]
    Database {
        /// `user@host:port/database`.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The database's schema was migrated by a newer version of this program; this one does not
    /// know it and refuses to use it. Upgrade this worker.
    #[error(
        "the fleet schema in the database is version {found}, newer than this program knows \
         (version {known}): upgrade this worker before pointing it at that database"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i32,
        /// The newest version this program knows.
        known: i32,
    },
    /// [`PgStore::connect`] was called outside a tokio runtime.
    #[error("the PostgreSQL store needs a tokio runtime")]
    NoRuntime,
}

/// How [`PgStore::connect_with`] sizes and waits for its pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgOptions {
    /// Connections in the pool (default 16): the most statements one worker runs at once.
    /// The leases and heartbeats have two more of their own.
    pub pool_size: usize,
    /// How long an operation waits for a connection, and a connection for the server, before
    /// it fails (default 10 s): the pipeline then treats the store as unavailable and tries
    /// again later.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A connection pool to the fleet's database, with the schema up to date: hands out the
/// backends. Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    /// The leases' and heartbeats' own connections ([`LEASE_POOL_SIZE`]), so that a renewal
    /// never queues behind the ledger's and the delta state's traffic in `pool`.
    lease_pool: Pool,
    /// For the token store's dedicated lock connections.
    pub(crate) config: tokio_postgres::Config,
    /// `user@host:port/database`, for messages: never the password.
    pub(crate) target: String,
    /// The password as given and as decoded, removed from every message.
    secrets: Vec<String>,
    /// The runtime the blocking token store runs its queries on.
    pub(crate) handle: tokio::runtime::Handle,
}

/// The pool's connection target only: never the password, the pool or the configuration.
impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or a
    /// key-value string such as `host=... dbname=...`) with the default [`PgOptions`], and
    /// creates or migrates the schema. Must be called within a tokio runtime: the token store
    /// runs its queries on it.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// [`connect`](Self::connect) with options.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let secrets = url_secrets(url);
        let redact = |s: String| redact_all(s, &secrets);
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StoreError::InvalidUrl {
                    reason: redact(e.to_string()),
                })?;
        let mut secrets = secrets.clone();
        if let Some(pw) = config.get_password() {
            let pw = String::from_utf8_lossy(pw).into_owned();
            if !pw.is_empty() && !secrets.contains(&pw) {
                secrets.push(pw);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("m365mail-fleet");
        }
        let target = target_of(&config);
        let handle = tokio::runtime::Handle::try_current().map_err(|_| StoreError::NoRuntime)?;
        let build = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    // A connection the server closed is noticed and replaced, without a round
                    // trip on every checkout.
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(options.timeout))
                .create_timeout(Some(options.timeout))
                .recycle_timeout(Some(options.timeout))
                .build()
                .map_err(|e| StoreError::Connect {
                    target: target.clone(),
                    reason: redact_all(e.to_string(), &secrets),
                })
        };
        let pool = build(options.pool_size.max(1))?;
        let lease_pool = build(LEASE_POOL_SIZE)?;
        let inner = Inner {
            pool,
            lease_pool,
            config,
            target,
            secrets,
            handle,
        };
        let mut client = inner.pool.get().await.map_err(|e| StoreError::Connect {
            target: inner.target.clone(),
            reason: inner.reason(&e),
        })?;
        // Redact what the migration's errors say too.
        match schema::migrate(&mut client, &inner.target).await {
            Ok(_) => {}
            Err(StoreError::Database { target, reason }) => {
                return Err(StoreError::Database {
                    target,
                    reason: redact_all(reason, &inner.secrets),
                });
            }
            Err(e) => return Err(e),
        }
        drop(client);
        Ok(PgStore {
            inner: Arc::new(inner),
        })
    }

    /// The schema version this program creates and understands.
    pub fn schema_version() -> i32 {
        schema::known_version()
    }

    /// The ledger ([`handler::LedgerStore`]).
    pub fn ledger(&self) -> PgLedger {
        PgLedger::new(self.inner.clone())
    }

    /// The leases and heartbeats ([`handler::LeaseStore`]).
    pub fn leases(&self) -> PgLeases {
        PgLeases::new(self.inner.clone())
    }

    /// The token cache ([`msauth::TokenStore`], blocking: see [`PgTokenStore`]).
    pub fn tokens(&self) -> PgTokenStore {
        PgTokenStore::new(self.inner.clone())
    }

    /// The Graph delta state ([`graph_mail::delta::DeltaState`]s).
    pub fn delta(&self) -> PgDeltaStore {
        PgDeltaStore::new(self.inner.clone(), "fleet_delta")
    }

    /// The EWS sync state ([`ews_mail::sync::SourceSyncState`]s).
    pub fn ews_sync(&self) -> PgEwsSyncStore {
        PgEwsSyncStore::new(self.inner.clone(), "fleet_ews_sync")
    }

    /// The apps, sources and outbounds kept in the database, changed while the fleet runs.
    pub fn catalog(&self) -> PgCatalog {
        PgCatalog::new(self.inner.clone())
    }

    /// What workers report of their sources, and the fleet at a glance.
    pub fn status(&self) -> PgStatus {
        PgStatus::new(self.inner.clone())
    }

    /// Push mode's Graph subscriptions ([`graph_mail::push::SubscriptionRecord`]s), reused by
    /// whichever worker holds a source next.
    pub fn subscriptions(&self) -> PgSubscriptionStore {
        PgSubscriptionStore::new(self.inner.clone())
    }

    /// Push mode's wake-ups between workers (`NOTIFY`/`LISTEN`).
    pub fn wakeups(&self) -> PgWakeups {
        PgWakeups::new(self.inner.clone())
    }
}

/// Connections kept for leases and heartbeats, beside [`PgOptions::pool_size`]: a worker renews
/// its leases one at a time, so two are plenty. The fleet chaos run (`cargo xtask chaos
/// --fleet`) found renewals sharing the one pool: a worker that had just taken its share of 67
/// sources renewed them a round trip every ~0.5 s, each waiting for a connection behind the
/// first passes' ledger writes, so the leases it renewed last expired under it (57 taken over
/// from a live worker in the first 16 s of a run without a single kill).
const LEASE_POOL_SIZE: usize = 2;

impl Inner {
    /// A pooled connection.
    pub(crate) async fn client(
        &self,
    ) -> Result<deadpool_postgres::Client, deadpool_postgres::PoolError> {
        self.pool.get().await
    }

    /// A connection for the leases and heartbeats, from their own pool.
    pub(crate) async fn lease_client(
        &self,
    ) -> Result<deadpool_postgres::Client, deadpool_postgres::PoolError> {
        self.lease_pool.get().await
    }

    /// A transient [`connector::Error`] for a failure of `what` (the delta state, the push
    /// subscriptions: the backends graph-mail's traits see), without the password.
    pub(crate) fn transient(
        &self,
        what: &str,
        e: &(dyn std::error::Error + 'static),
    ) -> connector::Error {
        connector::Error::transient(format!(
            "{what} in PostgreSQL at {}: {}",
            self.target,
            self.reason(e)
        ))
    }

    /// Runs `sql` (prepared once per pooled connection) for the backend of `what`; a failure
    /// is [`transient`](Self::transient).
    pub(crate) async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, connector::Error> {
        let client = self.client().await.map_err(|e| self.transient(what, &e))?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.transient(what, &e))?;
        client
            .query(&stmt, params)
            .await
            .map_err(|e| self.transient(what, &e))
    }

    /// The text of an error and its causes, without the password.
    pub(crate) fn reason(&self, e: &(dyn std::error::Error + 'static)) -> String {
        redact_all(chain(e), &self.secrets)
    }
}

/// The text of a client error (its cause included), for messages.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => chain(e),
    }
}

/// An error's text followed by its causes' (each once).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>()
        && let Some(db) = pg.as_db_error()
    {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(db) = c
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
        {
            return format!("{text}: {} ({})", db.message(), db.code().code());
        }
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// `user@host:port/database` of a configuration.
fn target_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// The password of a `postgres://user:password@host/...` URL as written (percent-encoded or
/// not); key-value strings' passwords are found by the parser instead.
fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return Vec::new();
    };
    match userinfo.split_once(':') {
        Some((_, pw)) if !pw.is_empty() => vec![pw.to_owned()],
        _ => Vec::new(),
    }
}

fn redact_all(mut text: String, secrets: &[String]) -> String {
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_of_a_url_is_found_as_written() {
        assert_eq!(url_secrets("postgres://u:p%40ss@h:5/db"), ["p%40ss"]);
        assert_eq!(url_secrets("postgresql://u:a:b@h/db?x=@"), ["a:b"]);
        assert!(url_secrets("postgres://u@h/db").is_empty());
        assert!(url_secrets("host=h user=u").is_empty());
        assert_eq!(
            redact_all("x p%40ss y".into(), &["p%40ss".into()]),
            "x *** y"
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_an_error_without_the_password() {
        for url in [
            "postgres://u:hunter2secret@h:notaport/db",
            "host=h password=hunter2secret port=x",
            "postgres://u:hunter2secret@h/db?sslmode=bogus",
        ] {
            let e = PgStore::connect(url).await.unwrap_err();
            assert!(matches!(e, StoreError::InvalidUrl { .. }), "{e:?}");
            assert!(!e.to_string().contains("hunter2secret"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
        }
    }

    #[test]
    fn the_target_names_user_host_port_and_database() {
        let c: tokio_postgres::Config = "postgres://ann:pw@db.example:6543/mail".parse().unwrap();
        assert_eq!(target_of(&c), "ann@db.example:6543/mail");
    }
}
