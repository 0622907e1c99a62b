//! The fleet run's PostgreSQL: restarting the cluster (it is the run's own, started by
//! `cargo xtask chaos --fleet` the way the tests' throw-away cluster is), the lease history the
//! audit needs, and the audit's queries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use m365_chaos::fleet::LedgerRow;
use tokio_postgres::NoTls;

use crate::Res;

use super::workers::Kill;

/// How to reach and restart the cluster.
#[derive(Debug, Clone)]
pub(crate) struct PgControl {
    /// The database the workers share.
    pub(crate) url: String,
    /// `pg_ctl`.
    pub(crate) pg_ctl: PathBuf,
    /// The cluster's data directory (its settings are in its `postgresql.conf`, so a plain
    /// `pg_ctl start` brings it back on the same port).
    pub(crate) data: PathBuf,
    /// The server's log file.
    pub(crate) log: PathBuf,
    /// The user the server runs as (`postgres` when this runs as root), or this process's.
    pub(crate) user: Option<String>,
}

impl PgControl {
    fn pg_ctl(&self, args: &[&str]) -> Res<()> {
        let data = self.data.to_string_lossy().into_owned();
        let mut cmd = match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&self.pg_ctl);
                c
            }
            None => Command::new(&self.pg_ctl),
        };
        cmd.args(["-D", &data]).args(args);
        let out = cmd
            .output()
            .map_err(|e| format!("could not start {}: {e}", self.pg_ctl.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Stops the server (`fast`: connections are closed, as in a restart or failover).
    pub(crate) fn stop(&self) -> Res<()> {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"])
    }

    /// Starts it again.
    pub(crate) fn start(&self) -> Res<()> {
        let log = self.log.to_string_lossy().into_owned();
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "start"])
    }
}

pub(crate) async fn connect(url: &str) -> Res<tokio_postgres::Client> {
    let (client, conn) =
        tokio::time::timeout(Duration::from_secs(10), tokio_postgres::connect(url, NoTls))
            .await
            .map_err(|_| "connecting to PostgreSQL timed out".to_owned())?
            .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
    tokio::spawn(conn);
    Ok(client)
}

/// The lease history: every insert and update of `fleet_leases` (acquire, renew, release), with
/// the database's clock at the change. A trigger, so it misses nothing; installed before any
/// worker starts.
const HISTORY: &str = "
CREATE TABLE chaos_lease_history (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    worker text,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX chaos_lease_history_source_at ON chaos_lease_history (source, at);
CREATE FUNCTION chaos_lease_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_lease_history (source, worker, epoch, expires_at, at)
    VALUES (NEW.source, NEW.worker, NEW.epoch, NEW.expires_at, clock_timestamp());
    RETURN NULL;
END $$;
CREATE TRIGGER chaos_lease_audit AFTER INSERT OR UPDATE ON fleet_leases
    FOR EACH ROW EXECUTE FUNCTION chaos_lease_audit();
";

/// Creates the fleet schema (as the first worker would) and the lease history. Refuses a
/// database that has served a fleet already: the audit must see every lease from the first.
pub(crate) async fn prepare(url: &str) -> Res<()> {
    fleet::PgStore::connect(url)
        .await
        .map_err(|e| format!("creating the fleet schema: {e}"))?;
    let client = connect(url).await?;
    let used: i64 = client
        .query_one("SELECT count(*) FROM fleet_leases", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if used > 0 {
        return Err(format!(
            "the database at {url} has served a fleet already ({used} leases): the fleet chaos \
             run needs a fresh one"
        ));
    }
    client
        .batch_execute(HISTORY)
        .await
        .map_err(|e| format!("installing the lease history: {e}"))
}

/// Sources `worker` holds now, with their epochs.
pub(crate) async fn held_by(url: &str, worker: &str) -> Res<BTreeMap<String, i64>> {
    let client = connect(url).await?;
    let rows = client
        .query(
            "SELECT source, epoch FROM fleet_leases \
             WHERE worker = $1 AND expires_at > clock_timestamp()",
            &[&worker],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Of the sources `held` (source -> epoch) by `worker`, how many another worker leased at a
/// higher epoch before `before` (by the lease history).
pub(crate) async fn taken_over(
    url: &str,
    held: &BTreeMap<String, i64>,
    worker: &str,
    before: SystemTime,
) -> Res<usize> {
    let client = connect(url).await?;
    let sources: Vec<&str> = held.keys().map(String::as_str).collect();
    let epochs: Vec<i64> = held.values().copied().collect();
    let n: i64 = client
        .query_one(
            "SELECT count(DISTINCT h.source) FROM chaos_lease_history h \
             JOIN unnest($1::text[], $2::int8[]) AS p(source, epoch) ON h.source = p.source \
             WHERE h.epoch > p.epoch AND h.worker IS NOT NULL AND h.worker <> $3 AND h.at < $4",
            &[&sources, &epochs, &worker, &before],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Keys the ledger owes an acknowledgement, and keys handled and acknowledged.
pub(crate) async fn convergence(url: &str) -> Res<(i64, i64)> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE (handled OR parked IS NOT NULL) AND NOT acknowledged), \
                    count(*) FILTER (WHERE handled AND acknowledged) FROM fleet_ledger",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((row.get(0), row.get(1)))
}

/// The first lease change (acquire or renewal) by each of `workers` after `after`.
pub(crate) async fn first_lease_writes(
    url: &str,
    workers: &[String],
    after: SystemTime,
) -> Res<BTreeMap<String, SystemTime>> {
    let client = connect(url).await?;
    let rows = client
        .query(
            "SELECT worker, min(at) FROM chaos_lease_history \
             WHERE at > $1 AND worker = ANY($2) GROUP BY worker",
            &[&after, &workers],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Leases that still name one of `workers` (after they were stopped cleanly: none, for a
/// clean stop hands every lease back). A worker SIGKILLed near the end may still be named by
/// a lease nobody has needed to take over since; that is not counted.
pub(crate) async fn named(url: &str, workers: &[String]) -> Res<i64> {
    let client = connect(url).await?;
    client
        .query_one(
            "SELECT count(*) FROM fleet_leases WHERE worker = ANY($1)",
            &[&workers],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| e.to_string())
}

/// Takeovers (a new epoch) of a lease that had expired under a worker that was alive: never
/// SIGKILLed, not the paused one during its pause, and not during the PostgreSQL outage. Each
/// is churn: a worker too slow to renew in time (its sources stop, another takes them over).
pub(crate) async fn lapsed(
    url: &str,
    killed: &[String],
    paused: &str,
    pause: (SystemTime, SystemTime),
    outage: (SystemTime, SystemTime),
) -> Res<i64> {
    let client = connect(url).await?;
    client
        .query_one(
            "WITH h AS ( \
                 SELECT epoch, at, lag(worker) OVER w AS pw, lag(epoch) OVER w AS pe, \
                        lag(expires_at) OVER w AS pexp \
                 FROM chaos_lease_history WINDOW w AS (PARTITION BY source ORDER BY at, id)) \
             SELECT count(*) FROM h \
             WHERE epoch > pe AND pw IS NOT NULL AND pexp < at \
               AND NOT (pw = ANY($1)) \
               AND NOT (pw = $2 AND pexp BETWEEN $3 AND $4) \
               AND NOT (pexp BETWEEN $5 AND $6)",
            &[&killed, &paused, &pause.0, &pause.1, &outage.0, &outage.1],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| e.to_string())
}

/// What the database says at the end.
#[derive(Debug, Default)]
pub(crate) struct Audit {
    pub(crate) ledger: BTreeMap<String, LedgerRow>,
    pub(crate) handled_entries: BTreeMap<String, u32>,
    pub(crate) log_entries: i64,
    pub(crate) epoch_regressions: u64,
    pub(crate) stale_entries: u64,
    pub(crate) stale_samples: Vec<String>,
    pub(crate) unfenced: u64,
    /// Lease changes recorded (acquire, renew, release).
    pub(crate) history: i64,
    /// Leases taken: (sources, epochs granted in all, the highest epoch).
    pub(crate) grants: (i64, i64, i64),
    /// Leases not handed back by the workers stopped cleanly at the end (see [`named`]).
    pub(crate) held: i64,
    /// Leases that expired under a live worker and were taken again (see [`lapsed`]).
    pub(crate) lapsed: i64,
}

/// An entry's fence is stale unless the lease history's last change to its source at or before
/// the entry's transaction began names the same worker and epoch and had not expired. Sound
/// because the fenced append checks (and holds, `FOR SHARE`) the lease row in its own
/// transaction: a takeover either waits for the append to commit (and is recorded after it) or
/// commits first (and the append's check fails).
const STALE: &str = "
SELECT l.id, l.key, l.source, l.worker, l.epoch, h.worker, h.epoch, l.at, h.expires_at
FROM fleet_ledger_log l
LEFT JOIN LATERAL (
    SELECT worker, epoch, expires_at FROM chaos_lease_history h
    WHERE h.source = l.source AND h.at <= l.at ORDER BY h.at DESC, h.id DESC LIMIT 1
) h ON true
WHERE l.epoch IS NOT NULL
  AND (h.epoch IS NULL OR h.epoch <> l.epoch OR h.worker IS DISTINCT FROM l.worker
       OR h.expires_at <= l.at)
ORDER BY l.id";

/// The same regression check as `crates/m365mail/tests/fleet.rs`: per source, in id order, no
/// entry's epoch is below one recorded before it.
const REGRESSIONS: &str = "
SELECT count(*) FROM (
    SELECT epoch, max(epoch) OVER (PARTITION BY source ORDER BY id
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM fleet_ledger_log) AS t
WHERE epoch < before";

pub(crate) async fn audit(url: &str) -> Res<Audit> {
    let client = connect(url).await?;
    let q = |e: tokio_postgres::Error| format!("audit query: {e}");
    let mut a = Audit::default();
    for r in client
        .query(
            "SELECT key, handled, acknowledged, acknowledged_by_absence, parked IS NOT NULL \
             FROM fleet_ledger",
            &[],
        )
        .await
        .map_err(q)?
    {
        a.ledger.insert(
            r.get(0),
            LedgerRow {
                handled: r.get(1),
                acknowledged: r.get(2),
                by_absence: r.get(3),
                parked: r.get(4),
            },
        );
    }
    for r in client
        .query(
            "SELECT key, count(*) FROM fleet_ledger_log WHERE entry->>'state' = 'handled' \
             GROUP BY key",
            &[],
        )
        .await
        .map_err(q)?
    {
        let n: i64 = r.get(1);
        a.handled_entries
            .insert(r.get(0), u32::try_from(n).unwrap_or(u32::MAX));
    }
    let one = |sql: &'static str| {
        let client = &client;
        async move {
            let n: i64 = client.query_one(sql, &[]).await.map_err(q)?.get(0);
            Ok::<i64, String>(n)
        }
    };
    a.log_entries = one("SELECT count(*) FROM fleet_ledger_log").await?;
    a.unfenced = one("SELECT count(*) FROM fleet_ledger_log WHERE epoch IS NULL")
        .await?
        .unsigned_abs();
    a.epoch_regressions = one(REGRESSIONS).await?.unsigned_abs();
    let stale = client.query(STALE, &[]).await.map_err(q)?;
    a.stale_entries = stale.len() as u64;
    for r in stale.iter().take(10) {
        let (id, key, source): (i64, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        let (worker, epoch): (Option<String>, Option<i64>) = (r.get(3), r.get(4));
        let (h_worker, h_epoch): (Option<String>, Option<i64>) = (r.get(5), r.get(6));
        a.stale_samples.push(format!(
            "log #{id} {key} ({}): {} at epoch {}, but the lease was {} at epoch {}",
            source.unwrap_or_default(),
            worker.unwrap_or_default(),
            epoch.unwrap_or(-1),
            h_worker.unwrap_or_else(|| "free".into()),
            h_epoch.map_or_else(|| "none".into(), |e| e.to_string()),
        ));
    }
    a.history = one("SELECT count(*) FROM chaos_lease_history").await?;
    let g = client
        .query_one(
            "SELECT count(*), coalesce(sum(epoch), 0)::bigint, coalesce(max(epoch), 0) \
             FROM fleet_leases",
            &[],
        )
        .await
        .map_err(q)?;
    a.grants = (g.get(0), g.get(1), g.get(2));
    Ok(a)
}

/// For each kill, how long until every source the killed worker held was leased again at a
/// higher epoch (by the lease history): the kill-to-takeover delay, per kill.
pub(crate) async fn takeover_delays(url: &str, kills: &[Kill]) -> Vec<Option<Duration>> {
    let Ok(client) = connect(url).await else {
        return kills.iter().map(|_| None).collect();
    };
    let mut out = Vec::new();
    for k in kills {
        if k.held.is_empty() {
            out.push(None);
            continue;
        }
        let mut worst = Some(Duration::ZERO);
        for (source, epoch) in &k.held {
            let row = client
                .query_opt(
                    "SELECT min(at) FROM chaos_lease_history \
                     WHERE source = $1 AND epoch > $2 AND at > $3 AND worker IS NOT NULL",
                    &[source, epoch, &k.wall],
                )
                .await
                .ok()
                .flatten()
                .and_then(|r| r.get::<_, Option<SystemTime>>(0));
            worst = match (worst, row.and_then(|t| t.duration_since(k.wall).ok())) {
                (Some(w), Some(d)) => Some(w.max(d)),
                _ => None,
            };
        }
        out.push(worst);
    }
    out
}
