//! msauth's token cache in PostgreSQL ([`PgTokenStore`]).

use std::sync::Arc;

use msauth::{CacheError, CacheKey, CachedToken, RefreshToken, StoreGuard, TokenStore};
use tokio_postgres::NoTls;

use crate::Inner;

/// The advisory lock every worker's sign-ins and refreshes take turns on: "m365toks" in ASCII.
const TOKEN_LOCK: i64 = 0x6d33_3635_746f_6b73;

/// How long [`PgTokenStore::lock`] waits for another worker's sign-in or refresh before it
/// fails: long enough for a token request with its retries, short enough that a hung holder does not stop
/// the fleet's sign-ins for good.
const LOCK_TIMEOUT: &str = "SET lock_timeout = '5min'";

/// msauth's token cache in PostgreSQL, shared by a fleet: with it, N workers make one token
/// request where each would have made its own, and a refresh token rotated by one is the one
/// the next uses.
///
/// The entries live in `fleet_tokens` (the [`CacheKey`] as JSON, and the [`CachedToken`] as
/// msauth's `FileStore` writes it: **not encrypted**, refresh tokens included; whoever can read
/// the table can act as the application, so restrict the database's access accordingly).
///
/// [`lock`](TokenStore::lock) is fleet-wide: it opens a dedicated connection (not from the
/// pool) and takes a PostgreSQL advisory lock on it, and the [`StoreGuard`] it returns owns that
/// connection. Dropping the guard closes the connection, which frees the lock; so does the
/// worker dying (the server ends the session when the connection drops). While one worker signs
/// in or refreshes, the others wait in `lock`, then [`load`](TokenStore::load) the token it
/// saved instead of asking for their own. `load`, `save`, `remove` and `find_refresh_token` use
/// the pool.
///
/// # Blocking
///
/// [`TokenStore`] is a blocking trait, and msauth's `TokenProvider` calls it on tokio's
/// blocking thread pool (`spawn_blocking`). Each method runs its queries with
/// `Handle::block_on` on the runtime [`PgStore::connect`](crate::PgStore::connect) ran in: call
/// them from a blocking thread (or a thread outside the runtime), **never from async code** on a
/// runtime thread, where tokio panics rather than block the runtime.
#[derive(Clone, Debug)]
pub struct PgTokenStore {
    inner: Arc<Inner>,
}

/// What a [`StoreGuard`] of [`PgTokenStore::lock`] holds: the connection holding the advisory
/// lock. Dropping the client ends the connection (its task sends the server a goodbye and
/// ends), and the server frees the lock with the session.
struct LockConnection {
    _client: tokio_postgres::Client,
}

impl PgTokenStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgTokenStore { inner }
    }

    fn io(&self, e: &(dyn std::error::Error + 'static)) -> CacheError {
        CacheError::Io {
            path: format!("postgres {} (fleet_tokens)", self.inner.target),
            reason: self.inner.reason(e),
        }
    }

    fn corrupt(&self, reason: String) -> CacheError {
        CacheError::Corrupt {
            path: format!("postgres {} (fleet_tokens)", self.inner.target),
            reason,
        }
    }

    fn key_json(&self, key: &CacheKey) -> Result<String, CacheError> {
        serde_json::to_string(key).map_err(|e| self.corrupt(format!("a key that is not JSON: {e}")))
    }

    /// Runs `f` with a pooled connection on the store's runtime, blocking this thread.
    fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, CacheError> {
        self.inner.handle.block_on(async {
            let client = self.inner.client().await.map_err(|e| self.io(&e))?;
            f(&client).await.map_err(|e| self.io(&e))
        })
    }
}

impl TokenStore for PgTokenStore {
    fn lock(&self) -> Result<StoreGuard, CacheError> {
        self.inner.handle.block_on(async {
            let (client, connection) = self
                .inner
                .config
                .connect(NoTls)
                .await
                .map_err(|e| self.io(&e))?;
            // The connection runs on the store's runtime until the client is dropped.
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %crate::describe(&e), "token lock connection ended");
                }
            });
            client
                .batch_execute(LOCK_TIMEOUT)
                .await
                .map_err(|e| self.io(&e))?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&TOKEN_LOCK])
                .await
                .map_err(|e| self.io(&e))?;
            Ok(StoreGuard::new(LockConnection { _client: client }))
        })
    }

    fn load(&self, key: &CacheKey) -> Result<Option<CachedToken>, CacheError> {
        let k = self.key_json(key)?;
        let token: Option<serde_json::Value> = self.with_client(async |c| {
            let stmt = c
                .prepare_cached("SELECT token FROM fleet_tokens WHERE key = $1")
                .await?;
            c.query_opt(&stmt, &[&k])
                .await?
                .map(|row| row.try_get(0))
                .transpose()
        })?;
        token
            .map(serde_json::from_value)
            .transpose()
            // serde_json's messages name positions and expected types, never values.
            .map_err(|e| self.corrupt(format!("not a cached token: {e}")))
    }

    fn save(&self, key: &CacheKey, token: &CachedToken) -> Result<(), CacheError> {
        let k = self.key_json(key)?;
        let value = serde_json::to_value(token)
            .map_err(|e| self.corrupt(format!("a token that is not JSON: {e}")))?;
        let expires_at = i64::try_from(token.expires_at).unwrap_or(i64::MAX);
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "INSERT INTO fleet_tokens \
                         (key, authority, client_id, account, token, expires_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, now()) \
                     ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, \
                         expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at",
                )
                .await?;
            c.execute(
                &stmt,
                &[
                    &k,
                    &key.authority,
                    &key.client_id,
                    &key.account,
                    &value,
                    &expires_at,
                ],
            )
            .await
            .map(drop)
        })
    }

    fn remove(&self, key: &CacheKey) -> Result<(), CacheError> {
        let k = self.key_json(key)?;
        self.with_client(async |c| {
            let stmt = c
                .prepare_cached("DELETE FROM fleet_tokens WHERE key = $1")
                .await?;
            c.execute(&stmt, &[&k]).await.map(drop)
        })
    }

    /// The refresh token of the newest entry (by access-token expiry) with the same authority,
    /// client and account, as msauth's own stores choose it; none for app-only keys.
    fn find_refresh_token(
        &self,
        key: &CacheKey,
    ) -> Result<Option<(CacheKey, RefreshToken)>, CacheError> {
        let Some(account) = &key.account else {
            return Ok(None);
        };
        let found: Option<(String, serde_json::Value)> = self.with_client(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT key, token FROM fleet_tokens \
                     WHERE authority = $1 AND client_id = $2 AND account = $3 \
                       AND jsonb_typeof(token -> 'refresh_token') = 'string' \
                     ORDER BY expires_at DESC, key DESC LIMIT 1",
                )
                .await?;
            c.query_opt(&stmt, &[&key.authority, &key.client_id, account])
                .await?
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .transpose()
        })?;
        let Some((k, token)) = found else {
            return Ok(None);
        };
        let k: CacheKey =
            serde_json::from_str(&k).map_err(|e| self.corrupt(format!("not a cache key: {e}")))?;
        let token: CachedToken = serde_json::from_value(token)
            .map_err(|e| self.corrupt(format!("not a cached token: {e}")))?;
        Ok(token.refresh_token.map(|rt| (k, rt)))
    }
}
