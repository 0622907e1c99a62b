//! The database schema, created and migrated by the program itself.
//!
//! `fleet_schema` holds one row, the version: the number of [`MIGRATIONS`] applied. Every
//! worker runs [`migrate`] when it connects; the steps it has not seen yet are applied in one
//! transaction under an advisory lock, so that workers starting together neither race nor see
//! half a schema. A database migrated by a newer program (a version this one does not know) is
//! refused rather than used with a schema it may misread.

use tokio_postgres::Client;

use crate::StoreError;

/// The key of the advisory lock migrations run under (any constant works, as long as every
/// version of the program uses the same one): "m365fleet" in ASCII.
const MIGRATION_LOCK: i64 = 0x6d33_3635_666c_6565;

/// The migrations, in order: the schema at version `n` is the first `n` applied. Append only:
/// never edit a step that has shipped.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the ledger, its log, the leases, the workers, the token cache and the delta state.
    r#"
    CREATE TABLE fleet_ledger (
        key text COLLATE "C" PRIMARY KEY,
        attempts bigint NOT NULL DEFAULT 0,
        handled boolean NOT NULL DEFAULT false,
        project text,
        notification_attempted boolean NOT NULL DEFAULT false,
        notified_from text,
        acknowledged boolean NOT NULL DEFAULT false,
        acknowledged_by_absence boolean NOT NULL DEFAULT false,
        parked text,
        acknowledged_at timestamptz
    );
    -- The acknowledgements still owed: few rows, read at every start of a source.
    CREATE INDEX fleet_ledger_owed ON fleet_ledger (key)
        WHERE NOT acknowledged AND (handled OR parked IS NOT NULL);
    CREATE INDEX fleet_ledger_expiry ON fleet_ledger (acknowledged_at) WHERE acknowledged;

    -- Every entry as it was recorded, with the fence it was recorded under (NULL without one),
    -- so that an audit can check that nothing was recorded under a stale epoch.
    CREATE TABLE fleet_ledger_log (
        id bigserial PRIMARY KEY,
        key text COLLATE "C" NOT NULL,
        source text,
        worker text,
        epoch bigint,
        entry jsonb NOT NULL,
        at timestamptz NOT NULL
    );
    CREATE INDEX fleet_ledger_log_key ON fleet_ledger_log (key);

    -- One row per source ever leased; `worker` is NULL once released. The epoch only grows.
    CREATE TABLE fleet_leases (
        source text COLLATE "C" PRIMARY KEY,
        worker text COLLATE "C",
        epoch bigint NOT NULL,
        expires_at timestamptz NOT NULL
    );

    CREATE TABLE fleet_workers (
        worker text COLLATE "C" PRIMARY KEY,
        expires_at timestamptz NOT NULL
    );

    -- msauth's token cache: `key` is the CacheKey as JSON, `token` the CachedToken as msauth's
    -- FileStore writes it (not encrypted).
    CREATE TABLE fleet_tokens (
        key text COLLATE "C" PRIMARY KEY,
        authority text NOT NULL,
        client_id text NOT NULL,
        account text,
        token jsonb NOT NULL,
        expires_at bigint NOT NULL,
        updated_at timestamptz NOT NULL
    );

    -- graph-mail's delta state per mailbox folder.
    CREATE TABLE fleet_delta (
        key text COLLATE "C" PRIMARY KEY,
        state jsonb NOT NULL,
        updated_at timestamptz NOT NULL
    );
    "#,
    // 2: the configuration entries operators change while the fleet runs (apps, sources,
    // outbounds as TOML fragments), its version, and what each worker last saw of a source.
    r#"
    CREATE TABLE fleet_config (
        kind text COLLATE "C" NOT NULL CHECK (kind IN ('app', 'source', 'outbound')),
        name text COLLATE "C" NOT NULL,
        toml text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE fleet_config_version (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version bigint NOT NULL
    );
    INSERT INTO fleet_config_version (version) VALUES (0);

    CREATE TABLE fleet_source_status (
        source text COLLATE "C" PRIMARY KEY,
        worker text NOT NULL,
        online boolean NOT NULL,
        reason text,
        offline_since timestamptz,
        waiting bigint,
        oldest_waiting timestamptz,
        last_pass_started timestamptz,
        last_pass_finished timestamptz,
        updated_at timestamptz NOT NULL
    );
    "#,
    // 3: threads (handler's LedgerStore::remember_threads): a reference a later message may name
    // (a Message-ID, a conversation) → the key of its thread's first message.
    r#"
    CREATE TABLE fleet_threads (
        reference text COLLATE "C" PRIMARY KEY,
        root text COLLATE "C" NOT NULL,
        remembered_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX fleet_threads_remembered_at ON fleet_threads (remembered_at);
    "#,
    // 4: push mode's Graph subscriptions (graph-mail's SubscriptionRecord), one per source, so
    // that the source's next holder reuses the subscription; `client_state` is its secret, kept
    // like fleet_tokens' tokens (not encrypted). `expires_at` in Unix seconds.
    r#"
    CREATE TABLE fleet_subscriptions (
        key text COLLATE "C" PRIMARY KEY,
        id text COLLATE "C" NOT NULL,
        resource text NOT NULL,
        notification_url text NOT NULL,
        client_state text NOT NULL,
        expires_at bigint NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX fleet_subscriptions_id ON fleet_subscriptions (id);
    "#,
    // 5: ews-mail's sync state per mailbox folder (EWS sources in push or delta mode): the
    // SyncFolderItems SyncState and the messages seen but not yet acknowledged, so that the
    // source's next holder catches up where the last one left off.
    r#"
    CREATE TABLE fleet_ews_sync (
        key text COLLATE "C" PRIMARY KEY,
        state jsonb NOT NULL,
        updated_at timestamptz NOT NULL
    );
    "#,
    // 6: a source paused by its service (throttled, with a wait), until when, as its worker
    // last reported; cleared when a pass begins.
    r#"
    ALTER TABLE fleet_source_status ADD COLUMN paused_until timestamptz;
    "#,
];

/// The schema version this program knows: the number of migrations.
pub(crate) fn known_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the schema to [`known_version`] (a no-op if it is there), or refuses a newer one.
/// Returns the version found before.
pub(crate) async fn migrate(client: &mut Client, target: &str) -> Result<i32, StoreError> {
    let steps = MIGRATIONS;
    let db = |e: tokio_postgres::Error| StoreError::Database {
        target: target.to_owned(),
        reason: crate::describe(&e),
    };
    let known = known_version();
    let tx = client.transaction().await.map_err(db)?;
    // Held until the transaction ends: a second worker waits here, then finds the schema done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fleet_schema (
             one boolean PRIMARY KEY DEFAULT true CHECK (one),
             version integer NOT NULL
         )",
    )
    .await
    .map_err(db)?;
    let found: i32 = tx
        .query_opt("SELECT version FROM fleet_schema", &[])
        .await
        .map_err(db)?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(db)?
        .unwrap_or(0);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for (i, step) in steps.iter().enumerate().skip(start) {
        tx.batch_execute(step)
            .await
            .map_err(|e| StoreError::Database {
                target: target.to_owned(),
                reason: format!("migration {} failed: {}", i + 1, crate::describe(&e)),
            })?;
    }
    if found < known {
        tx.execute(
            "INSERT INTO fleet_schema (one, version) VALUES (true, $1)
             ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
            &[&known],
        )
        .await
        .map_err(db)?;
        tracing::info!(from = found, to = known, "fleet schema migrated");
    }
    tx.commit().await.map_err(db)?;
    Ok(found)
}
