//! The ledger in PostgreSQL ([`PgLedger`]).

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use handler::{Entry, Fence, LedgerError, LedgerStore, Record};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::Inner;

/// The columns of a record, in the order [`record_of`] reads them after the key.
const COLUMNS: &str = "attempts, handled, project, notification_attempted, notified_from, \
                       acknowledged, acknowledged_by_absence, parked, acknowledged_at";

/// The fence check: the lease row still names this worker at this epoch, unexpired by the
/// database's clock. `FOR SHARE` keeps another worker from taking the lease over until this
/// transaction ends, so nothing is recorded after a takeover.
const FENCE_CHECK: &str = "SELECT 1 FROM fleet_leases \
     WHERE source = $1 AND worker = $2 AND epoch = $3 AND expires_at > clock_timestamp() \
     FOR SHARE";

/// Makes sure every key has a row to lock (rows for new keys are created empty, in key order,
/// by this transaction; a concurrent creator of the same key waits for it).
const ENSURE_ROWS: &str = "INSERT INTO fleet_ledger (key) \
     SELECT k FROM unnest($1::text[]) AS k ORDER BY k COLLATE \"C\" \
     ON CONFLICT (key) DO NOTHING";

const UPDATE_ROWS: &str = "UPDATE fleet_ledger AS l SET \
     attempts = v.attempts, handled = v.handled, project = v.project, \
     notification_attempted = v.notification_attempted, notified_from = v.notified_from, \
     acknowledged = v.acknowledged, acknowledged_by_absence = v.acknowledged_by_absence, \
     parked = v.parked, acknowledged_at = v.acknowledged_at \
     FROM unnest($1::text[], $2::int8[], $3::bool[], $4::text[], $5::bool[], $6::text[], \
                 $7::bool[], $8::bool[], $9::text[], $10::timestamptz[]) \
          AS v(key, attempts, handled, project, notification_attempted, notified_from, \
               acknowledged, acknowledged_by_absence, parked, acknowledged_at) \
     WHERE l.key = v.key";

const INSERT_LOG: &str = "INSERT INTO fleet_ledger_log (key, source, worker, epoch, entry, at) \
     SELECT v.key, $2, $3, $4, v.entry, now() \
     FROM unnest($1::text[], $5::jsonb[]) WITH ORDINALITY AS v(key, entry, n) ORDER BY v.n";

/// The pipeline's ledger in PostgreSQL: a [`handler::LedgerStore`] shared by every worker of
/// a fleet.
///
/// Each key is a row of `fleet_ledger` holding its folded [`Record`]; each entry is also
/// appended to `fleet_ledger_log` with the fence it was written under. An
/// [`append`](LedgerStore::append) is one transaction: with a fence it first checks (and holds,
/// `FOR SHARE`) the lease row, refusing with [`LedgerError::Fenced`] unless that worker still
/// holds it at that epoch by the database's clock; then it locks the keys' rows in key order
/// (so that concurrent appends cannot deadlock), folds the entries in with
/// [`Record::apply`] at the database's time, and writes the rows and the log. A failure to
/// reach the database is [`LedgerError::Backend`] (`postgres`): nothing was recorded, try again.
#[derive(Clone, Debug)]
pub struct PgLedger {
    inner: Arc<Inner>,
}

impl PgLedger {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        PgLedger { inner }
    }

    fn backend(&self, e: &(dyn std::error::Error + 'static)) -> LedgerError {
        LedgerError::Backend {
            backend: "postgres",
            reason: self.inner.reason(e),
        }
    }

    fn corrupt(reason: String) -> LedgerError {
        LedgerError::Backend {
            backend: "postgres",
            reason: format!("fleet_ledger holds a value this program cannot read: {reason}"),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, LedgerError> {
        self.inner.client().await.map_err(|e| self.backend(&e))
    }

    /// A pooled connection and `sql` prepared on it (once per connection).
    async fn prepared(
        &self,
        sql: &str,
    ) -> Result<(deadpool_postgres::Client, tokio_postgres::Statement), LedgerError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.backend(&e))?;
        Ok((client, stmt))
    }
}

/// The record in `row`, whose first column is the key and the next ones [`COLUMNS`].
fn record_of(row: &Row) -> Result<Record, tokio_postgres::Error> {
    let mut r = Record::default();
    let attempts: i64 = row.try_get(1)?;
    // Written from a u32: anything else was not written by this program; saturate.
    r.attempts = u32::try_from(attempts.max(0)).unwrap_or(u32::MAX);
    r.handled = row.try_get(2)?;
    r.project = row.try_get(3)?;
    r.notification_attempted = row.try_get(4)?;
    r.notified_from = row.try_get(5)?;
    r.acknowledged = row.try_get(6)?;
    r.acknowledged_by_absence = row.try_get(7)?;
    r.parked = row.try_get(8)?;
    r.acknowledged_at = row.try_get::<_, Option<SystemTime>>(9)?;
    Ok(r)
}

/// The columns of the records to write, one array per column (for `unnest`).
#[derive(Default)]
struct Columns {
    key: Vec<String>,
    attempts: Vec<i64>,
    handled: Vec<bool>,
    project: Vec<Option<String>>,
    notification_attempted: Vec<bool>,
    notified_from: Vec<Option<String>>,
    acknowledged: Vec<bool>,
    acknowledged_by_absence: Vec<bool>,
    parked: Vec<Option<String>>,
    acknowledged_at: Vec<Option<SystemTime>>,
}

impl Columns {
    fn push(&mut self, key: String, r: Record) {
        self.key.push(key);
        self.attempts.push(i64::from(r.attempts));
        self.handled.push(r.handled);
        self.project.push(r.project);
        self.notification_attempted.push(r.notification_attempted);
        self.notified_from.push(r.notified_from);
        self.acknowledged.push(r.acknowledged);
        self.acknowledged_by_absence.push(r.acknowledged_by_absence);
        self.parked.push(r.parked);
        self.acknowledged_at.push(r.acknowledged_at);
    }
}

#[async_trait]
impl LedgerStore for PgLedger {
    async fn get(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        let sql = format!("SELECT key, {COLUMNS} FROM fleet_ledger WHERE key = $1");
        let (client, stmt) = self.prepared(&sql).await?;
        let row = client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(|e| self.backend(&e))?;
        row.as_ref()
            .map(record_of)
            .transpose()
            .map_err(|e| Self::corrupt(e.to_string()))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Record>>, LedgerError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT key, {COLUMNS} FROM fleet_ledger WHERE key = ANY($1)");
        let (client, stmt) = self.prepared(&sql).await?;
        let rows = client
            .query(&stmt, &[&keys])
            .await
            .map_err(|e| self.backend(&e))?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get(0).map_err(|e| self.backend(&e))?;
            let record = record_of(row).map_err(|e| Self::corrupt(e.to_string()))?;
            found.insert(key, record);
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn append(
        &self,
        entries: Vec<(String, Entry)>,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let epoch = fence
            .map(|f| i64::try_from(f.epoch))
            .transpose()
            .map_err(|_| Self::corrupt("a fence epoch beyond the database's bigint".into()))?;
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let json: Vec<serde_json::Value> = entries
            .iter()
            .map(|(_, e)| serde_json::to_value(e))
            .collect::<Result<_, _>>()
            .map_err(|e| Self::corrupt(format!("an entry that is not JSON: {e}")))?;
        let db = |e: tokio_postgres::Error| self.backend(&e);

        let mut client = self.client().await?;
        let select = format!(
            "SELECT key, {COLUMNS}, now() FROM fleet_ledger WHERE key = ANY($1) \
             ORDER BY key FOR UPDATE"
        );
        let (s_fence, s_ensure, s_select, s_update, s_log) = tokio::try_join!(
            client.prepare_cached(FENCE_CHECK),
            client.prepare_cached(ENSURE_ROWS),
            client.prepare_cached(&select),
            client.prepare_cached(UPDATE_ROWS),
            client.prepare_cached(INSERT_LOG),
        )
        .map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        // The fence check, the rows' creation and their locking go out together (pipelined):
        // the server runs them in order, and a refused fence rolls all of it back.
        let fenced = async {
            match (fence, epoch) {
                (Some(f), Some(epoch)) => Ok(Some(
                    tx.query_opt(&s_fence, &[&f.source, &f.worker, &epoch])
                        .await?
                        .is_some(),
                )),
                _ => Ok(None),
            }
        };
        let key_params: [&(dyn ToSql + Sync); 1] = [&keys];
        let (held, _, rows) = tokio::try_join!(
            biased;
            fenced,
            tx.execute(&s_ensure, &key_params),
            tx.query(&s_select, &key_params),
        )
        .map_err(db)?;
        if let (Some(false), Some(f)) = (held, fence) {
            // Dropping the transaction rolls it back: nothing is recorded.
            drop(tx);
            return Err(LedgerError::Fenced { fence: f.clone() });
        }
        let mut records: std::collections::BTreeMap<String, Record> =
            std::collections::BTreeMap::new();
        let mut now = None;
        for row in &rows {
            let key: String = row.try_get(0).map_err(db)?;
            let record = record_of(row).map_err(|e| Self::corrupt(e.to_string()))?;
            now = Some(row.try_get::<_, SystemTime>(10).map_err(db)?);
            records.insert(key, record);
        }
        let now = now.unwrap_or_else(SystemTime::now);
        for (key, entry) in &entries {
            records.entry(key.clone()).or_default().apply(entry, now);
        }
        let mut cols = Columns::default();
        for (key, record) in records {
            cols.push(key, record);
        }
        let log_keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        let (source, worker) = (fence.map(|f| &f.source), fence.map(|f| &f.worker));
        let update_params: [&(dyn ToSql + Sync); 10] = [
            &cols.key,
            &cols.attempts,
            &cols.handled,
            &cols.project,
            &cols.notification_attempted,
            &cols.notified_from,
            &cols.acknowledged,
            &cols.acknowledged_by_absence,
            &cols.parked,
            &cols.acknowledged_at,
        ];
        let log_params: [&(dyn ToSql + Sync); 5] = [&log_keys, &source, &worker, &epoch, &json];
        tokio::try_join!(
            biased;
            tx.execute(&s_update, &update_params),
            tx.execute(&s_log, &log_params),
        )
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn unacknowledged(&self, prefix: &str) -> Result<Vec<(String, Record)>, LedgerError> {
        // starts_with: the prefix is taken literally (no LIKE wildcards in source names).
        let sql = format!(
            "SELECT key, {COLUMNS} FROM fleet_ledger \
             WHERE NOT acknowledged AND (handled OR parked IS NOT NULL) \
               AND starts_with(key, $1) ORDER BY key"
        );
        let (client, stmt) = self.prepared(&sql).await?;
        let rows = client
            .query(&stmt, &[&prefix])
            .await
            .map_err(|e| self.backend(&e))?;
        rows.iter()
            .map(|row| {
                let key: String = row.try_get(0)?;
                Ok((key, record_of(row)?))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| Self::corrupt(e.to_string()))
    }

    async fn expire(&self, cutoff: SystemTime) -> Result<usize, LedgerError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH gone AS ( \
                     DELETE FROM fleet_ledger \
                     WHERE acknowledged AND acknowledged_at < $1 RETURNING key), \
                 log AS ( \
                     DELETE FROM fleet_ledger_log WHERE key IN (SELECT key FROM gone)) \
                 SELECT count(*) FROM gone",
            )
            .await
            .map_err(|e| self.backend(&e))?;
        let row = client
            .query_one(&stmt, &[&cutoff])
            .await
            .map_err(|e| self.backend(&e))?;
        let n: i64 = row.try_get(0).map_err(|e| self.backend(&e))?;
        let threads = client
            .prepare_cached("DELETE FROM fleet_threads WHERE remembered_at < $1")
            .await
            .map_err(|e| self.backend(&e))?;
        client
            .execute(&threads, &[&cutoff])
            .await
            .map_err(|e| self.backend(&e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn remember_threads(&self, pairs: &[(String, String)]) -> Result<(), LedgerError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let (references, roots): (Vec<&str>, Vec<&str>) = pairs
            .iter()
            .map(|(r, root)| (r.as_str(), root.as_str()))
            .unzip();
        // One statement for a page. The first root a reference was remembered under stays: a
        // later message of the same conversation must not move it.
        let (client, stmt) = self
            .prepared(
                "INSERT INTO fleet_threads (reference, root) \
                 SELECT r, root FROM unnest($1::text[], $2::text[]) AS t(r, root) \
                 ON CONFLICT (reference) DO NOTHING",
            )
            .await?;
        client
            .execute(&stmt, &[&references, &roots])
            .await
            .map_err(|e| self.backend(&e))?;
        Ok(())
    }

    async fn find_thread(
        &self,
        refs: &[String],
    ) -> Result<Option<handler::ThreadMatch>, LedgerError> {
        if refs.is_empty() {
            return Ok(None);
        }
        let (client, stmt) = self
            .prepared(
                "SELECT t.reference, t.root FROM unnest($1::text[]) WITH ORDINALITY AS r(ref, n) \
                 JOIN fleet_threads t ON t.reference = r.ref ORDER BY r.n LIMIT 1",
            )
            .await?;
        let row = client
            .query_opt(&stmt, &[&refs])
            .await
            .map_err(|e| self.backend(&e))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let by: String = row.try_get(0).map_err(|e| self.backend(&e))?;
                let root: String = row.try_get(1).map_err(|e| self.backend(&e))?;
                Ok(Some(handler::ThreadMatch::new(root, by)))
            }
        }
    }
}
