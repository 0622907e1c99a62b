//! Push mode in a fleet: graph-mail's subscription records in PostgreSQL
//! ([`PgSubscriptionStore`]), and the wake-ups one worker sends another with
//! `NOTIFY`/`LISTEN` ([`PgWakeups`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connector::Error;
use graph_mail::push::{ClientState, SubscriptionRecord};
use handler::Fence;
use httpcore::StateStore;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::Inner;

/// The channel wake-ups are sent on.
const CHANNEL: &str = "m365mail_push";

/// graph-mail's subscription records in PostgreSQL (`fleet_subscriptions`, one row per source):
/// whichever worker holds a source's lease next reuses (renews) the subscription the last
/// holder made, instead of making another and leaking the first, and any worker can check a
/// notification that reached its listener for a source another worker holds
/// ([`find`](Self::find)).
///
/// Each row holds the subscription's `clientState`, the secret that tells Graph's
/// notifications from forged ones. It is kept as `fleet_tokens` keeps tokens: **not
/// encrypted**, so restrict the database's access accordingly. It never appears in `Debug`,
/// logs or errors of this crate (graph-mail's `ClientState` redacts itself).
///
/// The expiry is kept to the second. A database that cannot be reached is a transient
/// [`Error`]; a row this program cannot read is a configuration error naming the key.
///
/// A store [`fenced`](Self::fenced) by a source's lease writes only while that lease holds, by
/// the database's clock: a worker that lost the source (paused, cut off) cannot overwrite the
/// record its next holder keeps.
#[derive(Clone, Debug)]
pub struct PgSubscriptionStore {
    inner: Arc<Inner>,
    fence: Option<Fence>,
}

const COLUMNS: &str = "key, id, resource, notification_url, client_state, expires_at";

impl PgSubscriptionStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgSubscriptionStore { inner, fence: None }
    }

    /// This store, writing (saving, clearing) only while `fence` holds its source's lease;
    /// a write refused for a lost lease is an error.
    pub fn fenced(&self, fence: &Fence) -> Self {
        PgSubscriptionStore {
            inner: self.inner.clone(),
            fence: Some(fence.clone()),
        }
    }

    /// Runs the write `sql`, whose parameters after `params` are the fence's source, worker
    /// and epoch when fenced (`$n IS NULL` otherwise); refused when it changed no row while
    /// fenced.
    async fn write(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), Error> {
        let epoch = self
            .fence
            .as_ref()
            .map(|f| i64::try_from(f.epoch).unwrap_or(i64::MAX));
        let (source, worker) = (
            self.fence.as_ref().map(|f| f.source.as_str()),
            self.fence.as_ref().map(|f| f.worker.as_str()),
        );
        let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.to_vec();
        all.extend([
            &source as &(dyn tokio_postgres::types::ToSql + Sync),
            &worker,
            &epoch,
        ]);
        let rows = self.run(sql, &all).await?;
        match &self.fence {
            Some(f) if rows.is_empty() => Err(Error::transient(format!(
                "the subscription record was not written: {f} no longer holds the lease"
            ))),
            _ => Ok(()),
        }
    }

    fn transient(&self, e: &(dyn std::error::Error + 'static)) -> Error {
        self.inner.transient("push subscriptions", e)
    }

    async fn run(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Error> {
        self.inner.query("push subscriptions", sql, params).await
    }

    /// The key and record of a row (in [`COLUMNS`] order).
    fn record_of(&self, row: &tokio_postgres::Row) -> Result<(String, SubscriptionRecord), Error> {
        let get =
            |i: usize| -> Result<String, Error> { row.try_get(i).map_err(|e| self.transient(&e)) };
        let key = get(0)?;
        let expires: i64 = row.try_get(5).map_err(|e| self.transient(&e))?;
        let expiration = OffsetDateTime::from_unix_timestamp(expires).map_err(|_| {
            Error::configuration(format!(
                "the push subscription of {key} in PostgreSQL at {} has an expiry out of range; \
                 delete its row in fleet_subscriptions to subscribe anew",
                self.inner.target
            ))
        })?;
        let record = SubscriptionRecord::new(
            get(1)?,
            get(2)?,
            get(3)?,
            ClientState::from_secret(get(4)?),
            expiration,
        );
        Ok((key, record))
    }

    /// The source (key) and record of subscription `id`, if a worker recorded it: how a worker
    /// checks a notification for a source it does not serve.
    pub async fn find(&self, id: &str) -> Result<Option<(String, SubscriptionRecord)>, Error> {
        let rows = self
            .run(
                &format!("SELECT {COLUMNS} FROM fleet_subscriptions WHERE id = $1"),
                &[&id],
            )
            .await?;
        rows.first().map(|r| self.record_of(r)).transpose()
    }

    /// Every recorded subscription, by source.
    pub async fn all(&self) -> Result<Vec<(String, SubscriptionRecord)>, Error> {
        let rows = self
            .run(
                &format!("SELECT {COLUMNS} FROM fleet_subscriptions ORDER BY key"),
                &[],
            )
            .await?;
        rows.iter().map(|r| self.record_of(r)).collect()
    }
}

#[async_trait]
impl StateStore<SubscriptionRecord> for PgSubscriptionStore {
    async fn load(&self, key: &str) -> Result<Option<SubscriptionRecord>, Error> {
        let rows = self
            .run(
                &format!("SELECT {COLUMNS} FROM fleet_subscriptions WHERE key = $1"),
                &[&key],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| self.record_of(r))
            .transpose()?
            .map(|(_, r)| r))
    }

    async fn save(&self, key: &str, record: &SubscriptionRecord) -> Result<(), Error> {
        let expires = record.expiration.unix_timestamp();
        let secret = record.client_state.expose();
        self.write(
            &format!(
                "INSERT INTO fleet_subscriptions \
                     (key, id, resource, notification_url, client_state, expires_at, updated_at) \
                 SELECT $1, $2, $3, $4, $5, $6, now() WHERE {HELD} \
                 ON CONFLICT (key) DO UPDATE SET id = EXCLUDED.id, \
                     resource = EXCLUDED.resource, \
                     notification_url = EXCLUDED.notification_url, \
                     client_state = EXCLUDED.client_state, expires_at = EXCLUDED.expires_at, \
                     updated_at = EXCLUDED.updated_at \
                 RETURNING 1"
            ),
            &[
                &key,
                &record.id,
                &record.resource,
                &record.notification_url,
                &secret,
                &expires,
            ],
        )
        .await
    }

    async fn clear(&self, key: &str) -> Result<(), Error> {
        // Fenced, a clear of a row already gone is no refusal: the lease is checked apart.
        self.write(
            &format!(
                "WITH held AS (SELECT 1 WHERE {HELD_2}), \
                 gone AS (DELETE FROM fleet_subscriptions WHERE key = $1 \
                          AND EXISTS (SELECT 1 FROM held)) \
                 SELECT 1 FROM held"
            ),
            &[&key],
        )
        .await
    }
}

/// The write's fence check, its parameters after the six of a save: unfenced (`$7` NULL), or
/// the lease row still names the worker at the epoch, unexpired by the database's clock.
const HELD: &str = "($7::text IS NULL OR EXISTS (SELECT 1 FROM fleet_leases \
     WHERE source = $7 AND worker = $8 AND epoch = $9 AND expires_at > clock_timestamp()))";

/// [`HELD`] for a write with one parameter before the fence's.
const HELD_2: &str = "($2::text IS NULL OR EXISTS (SELECT 1 FROM fleet_leases \
     WHERE source = $2 AND worker = $3 AND epoch = $4 AND expires_at > clock_timestamp()))";

/// What one worker tells the others: a genuine notification for `source` reached its
/// listener (checked against the source's recorded `clientState`), or the connection that
/// listens was made again (`source` is `None`: wake every source, a wake-up may have been
/// missed meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wakeup {
    /// The source to wake; `None` after the listening connection was made again.
    pub source: Option<String>,
    /// The lifecycle event the notification carried (`subscriptionRemoved`, ...), if any.
    pub lifecycle: Option<String>,
}

/// Wake-ups between the workers of a fleet, over PostgreSQL's `NOTIFY`/`LISTEN` (channel
/// `m365mail_push`): a notification may reach any worker's listener (a load balancer in front
/// of them), but only the worker holding the source's lease runs its delta round. The worker
/// that received it sends a wake-up ([`send`](Self::send)); every worker listens
/// ([`listen`](Self::listen)) and wakes the sources it serves. The payload names the source
/// and the lifecycle event, never a secret. `NOTIFY` is delivered to the sessions listening
/// when it commits, at most once; one that is lost (a listening connection that was down) is
/// caught up by the source's safety timer, and a worker wakes all its push sources when its
/// listening connection comes back.
#[derive(Clone, Debug)]
pub struct PgWakeups {
    inner: Arc<Inner>,
}

impl PgWakeups {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgWakeups { inner }
    }

    /// Tells every listening worker to wake `source` (with `lifecycle`, the lifecycle event the
    /// notification carried).
    pub async fn send(&self, source: &str, lifecycle: Option<&str>) -> Result<(), Error> {
        let payload = serde_json::json!({ "source": source, "lifecycle": lifecycle }).to_string();
        self.inner
            .query(
                "push wake-ups",
                "SELECT pg_notify($1, $2)",
                &[&CHANNEL, &payload],
            )
            .await
            .map(drop)
    }

    /// Listens on a connection of its own (not from the pool), made again with growing pauses
    /// when it drops, until the receiver is dropped. Each wake-up sent by any worker (this one
    /// included) arrives once; after each reconnection a [`Wakeup`] without a source arrives.
    pub fn listen(&self) -> mpsc::Receiver<Wakeup> {
        let (tx, rx) = mpsc::channel(1024);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(200);
            let mut first = true;
            while !tx.is_closed() {
                match listen_once(&inner, &tx, first).await {
                    Ok(()) => return,
                    Err(reason) => {
                        tracing::warn!(error = %reason, retry_in = ?pause, "listening for push wake-ups failed");
                    }
                }
                first = false;
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        });
        rx
    }
}

/// One listening connection, until it fails (`Err`) or the receiver is gone (`Ok`).
async fn listen_once(inner: &Inner, tx: &mpsc::Sender<Wakeup>, first: bool) -> Result<(), String> {
    let (client, mut connection) = inner
        .config
        .connect(NoTls)
        .await
        .map_err(|e| inner.reason(&e))?;
    let (msgs_tx, mut msgs) = mpsc::unbounded_channel();
    // The connection is driven here: its messages (the notifications) go to `msgs`.
    let driver = tokio::spawn(async move {
        loop {
            let m = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            let end = !matches!(m, Some(Ok(_)));
            if msgs_tx.send(m).is_err() || end {
                return;
            }
        }
    });
    let _abort = AbortOnDrop(driver);
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| inner.reason(&e))?;
    if !first
        && tx
            .send(Wakeup {
                source: None,
                lifecycle: None,
            })
            .await
            .is_err()
    {
        return Ok(());
    }
    loop {
        let m = tokio::select! {
            () = tx.closed() => return Ok(()),
            m = msgs.recv() => m,
        };
        match m {
            Some(Some(Ok(AsyncMessage::Notification(n)))) => {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(n.payload()) else {
                    continue;
                };
                let field = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
                let Some(source) = field("source") else {
                    continue;
                };
                let w = Wakeup {
                    source: Some(source),
                    lifecycle: field("lifecycle"),
                };
                if tx.send(w).await.is_err() {
                    return Ok(());
                }
            }
            Some(Some(Ok(_))) => {}
            Some(Some(Err(e))) => return Err(inner.reason(&e)),
            Some(None) | None => return Err("the connection ended".into()),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
