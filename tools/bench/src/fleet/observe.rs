//! What the fleet bench watches from outside the workers: PostgreSQL (a database and role per
//! scenario, `pg_stat_statements` and `pg_stat_database`, the ledger's acknowledged count) and
//! the CPU time of each process involved (`/proc`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};

/// The role the workers connect as, so that `pg_stat_statements` tells their statements from
/// the bench's own queries.
pub const WORKER_ROLE: &str = "m365mail_bench";

/// A connection to the cluster as its administrator.
pub struct Pg {
    admin: Client,
    host: String,
    port: u16,
}

/// A connection to `url`, its connection task spawned.
pub(crate) async fn connect(url: &str) -> Result<Client, String> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A PostgreSQL error with the server's message (tokio-postgres's `Display` says only
/// "db error").
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => e.to_string(),
    }
}

/// One scenario's statement counts (`pg_stat_statements`, the workers' role only) and
/// transaction and row counters (`pg_stat_database`, everybody's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PgCounts {
    /// Statements the workers ran (calls), `BEGIN` and `COMMIT` included.
    pub statements: i64,
    /// Of those, per kind of statement (see [`statement_kind`]).
    pub by_kind: BTreeMap<String, i64>,
    /// Committed transactions in the database (the bench's own few queries included).
    pub xact_commit: i64,
    /// Rolled back.
    pub xact_rollback: i64,
    /// Rows inserted.
    pub tup_inserted: i64,
    /// Rows updated.
    pub tup_updated: i64,
}

impl PgCounts {
    /// `self - before`.
    pub fn since(&self, before: &PgCounts) -> PgCounts {
        let mut by_kind = self.by_kind.clone();
        for (k, v) in &before.by_kind {
            *by_kind.entry(k.clone()).or_default() -= v;
        }
        by_kind.retain(|_, v| *v != 0);
        PgCounts {
            statements: self.statements - before.statements,
            by_kind,
            xact_commit: self.xact_commit - before.xact_commit,
            xact_rollback: self.xact_rollback - before.xact_rollback,
            tup_inserted: self.tup_inserted - before.tup_inserted,
            tup_updated: self.tup_updated - before.tup_updated,
        }
    }
}

/// A short name for a statement's text, to group `pg_stat_statements` rows by what they do.
pub fn statement_kind(query: &str) -> String {
    let q: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = q.to_ascii_lowercase();
    let table = |t: &str| lower.contains(t);
    let verb = lower.split(' ').next().unwrap_or("").to_owned();
    let what = if verb == "begin" || verb == "start" {
        return "BEGIN".to_owned();
    } else if verb == "commit" || verb == "rollback" {
        return verb.to_ascii_uppercase();
    } else if table("fleet_ledger_log") {
        "ledger log"
    } else if table("from fleet_leases") && verb == "select" && table("for share") {
        "fence check"
    } else if table("fleet_ledger") {
        "ledger"
    } else if table("fleet_leases") {
        "leases"
    } else if table("fleet_workers") {
        "heartbeat"
    } else if table("fleet_delta") {
        "delta state"
    } else if table("fleet_source_status") {
        "status"
    } else if table("fleet_config") {
        "catalog"
    } else if table("fleet_token") {
        "tokens"
    } else {
        "other"
    };
    format!("{what}: {}", verb.to_ascii_uppercase())
}

impl Pg {
    /// Connects to the cluster at `admin_url` (a superuser), makes sure `pg_stat_statements`
    /// is there (it must be in `shared_preload_libraries`) and the workers' role exists.
    pub async fn connect(admin_url: &str) -> Result<Pg, String> {
        let cfg: tokio_postgres::Config = admin_url
            .parse()
            .map_err(|e| format!("the PostgreSQL URL: {e}"))?;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => return Err("the PostgreSQL URL needs a TCP host".into()),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let admin = connect(admin_url).await?;
        admin
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .map_err(|e| {
                format!(
                    "pg_stat_statements is needed (shared_preload_libraries = \
                     'pg_stat_statements'): {}",
                    pg_error(&e)
                )
            })?;
        let exists = admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&WORKER_ROLE])
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !exists {
            admin
                .batch_execute(&format!("CREATE ROLE {WORKER_ROLE} LOGIN"))
                .await
                .map_err(|e| format!("creating the workers' role: {}", pg_error(&e)))?;
        }
        Ok(Pg { admin, host, port })
    }

    /// Creates database `name` (dropping an old one) owned by the workers' role; returns the
    /// URL the workers use.
    pub async fn create_db(&self, name: &str) -> Result<String, String> {
        // Apart: CREATE DATABASE refuses to run in the implicit transaction of a multi-statement
        // query.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name} OWNER {WORKER_ROLE}"),
        ] {
            self.admin
                .batch_execute(&sql)
                .await
                .map_err(|e| format!("{sql}: {}", pg_error(&e)))?;
        }
        Ok(self.url(WORKER_ROLE, name))
    }

    /// `postgres://user@host:port/db`.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@{}:{}/{db}", self.host, self.port)
    }

    /// A connection to database `db` as the administrator (for the bench's own queries).
    pub async fn observer(&self, db: &str) -> Result<Client, String> {
        connect(&self.url("postgres", db)).await
    }

    /// Forgets the statement counts so far.
    pub async fn reset_statements(&self) -> Result<(), String> {
        self.admin
            .batch_execute("SELECT pg_stat_statements_reset()")
            .await
            .map_err(|e| format!("pg_stat_statements_reset: {e}"))
    }

    /// The counts of database `db` now.
    pub async fn counts(&self, db: &str) -> Result<PgCounts, String> {
        let rows = self
            .admin
            .query(
                "SELECT s.query, s.calls FROM pg_stat_statements s \
                 JOIN pg_roles r ON r.oid = s.userid \
                 JOIN pg_database d ON d.oid = s.dbid \
                 WHERE r.rolname = $1 AND d.datname = $2",
                &[&WORKER_ROLE, &db],
            )
            .await
            .map_err(|e| format!("reading pg_stat_statements: {e}"))?;
        let mut c = PgCounts::default();
        for r in rows {
            let query: String = r.get(0);
            let calls: i64 = r.get(1);
            c.statements += calls;
            *c.by_kind.entry(statement_kind(&query)).or_default() += calls;
        }
        let row = self
            .admin
            .query_one(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated \
                 FROM pg_stat_database WHERE datname = $1",
                &[&db],
            )
            .await
            .map_err(|e| format!("reading pg_stat_database: {e}"))?;
        c.xact_commit = row.get(0);
        c.xact_rollback = row.get(1);
        c.tup_inserted = row.get(2);
        c.tup_updated = row.get(3);
        Ok(c)
    }

    /// `SHOW name`.
    pub async fn setting(&self, name: &str) -> String {
        match self.admin.query_one(&format!("SHOW {name}"), &[]).await {
            Ok(r) => r.get(0),
            Err(e) => format!("? ({e})"),
        }
    }

    /// The server's version string.
    pub async fn version(&self) -> String {
        match self.admin.query_one("SHOW server_version", &[]).await {
            Ok(r) => r.get(0),
            Err(e) => format!("? ({e})"),
        }
    }
}

/// Acknowledged keys in the ledger of the database `observer` is connected to (0 before the
/// schema exists).
pub async fn acknowledged(observer: &Client) -> i64 {
    observer
        .query_one("SELECT count(*) FROM fleet_ledger WHERE acknowledged", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

/// What the ledger holds on disk: (rows, bytes) of `fleet_ledger` and of `fleet_ledger_log`,
/// indexes and TOAST included.
pub async fn ledger_size(observer: &Client) -> ((i64, i64), (i64, i64)) {
    let q = "SELECT (SELECT count(*) FROM fleet_ledger), pg_total_relation_size('fleet_ledger'), \
             (SELECT count(*) FROM fleet_ledger_log), pg_total_relation_size('fleet_ledger_log')";
    match observer.query_one(q, &[]).await {
        Ok(r) => ((r.get(0), r.get(1)), (r.get(2), r.get(3))),
        Err(_) => ((0, 0), (0, 0)),
    }
}

/// Sources leased now, per worker.
pub async fn leases(observer: &Client) -> BTreeMap<String, i64> {
    observer
        .query(
            "SELECT worker, count(*) FROM fleet_leases \
             WHERE worker IS NOT NULL AND expires_at > now() GROUP BY worker",
            &[],
        )
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                .collect()
        })
        .unwrap_or_default()
}

/// User + system CPU time of process `pid`, in clock ticks (`/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields after it follow the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15), so index 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The postmaster of the cluster in `data` and its children (the backends).
pub fn postgres_pids(data: &Path) -> Vec<u32> {
    let Some(master) = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return Vec::new();
    };
    let mut out = vec![master];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.filter_map(Result::ok) {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && parent_of(pid) == Some(master)
            {
                out.push(pid);
            }
        }
    }
    out
}

/// Busy and total CPU ticks of the whole machine (`/proc/stat`, every core).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// CPU time spent over an interval, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSplit {
    /// The workers (`m365mail worker`).
    pub workers: f64,
    /// This process: the in-process sandbox, the mail delivery that keeps the mailboxes
    /// topped up, and the bench's own queries.
    pub sandbox_and_driver: f64,
    /// PostgreSQL (postmaster and backends).
    pub postgres: f64,
    /// Every other process on the machine.
    pub others: f64,
    /// Idle (and I/O wait).
    pub idle: f64,
    /// Wall time of the interval.
    pub wall: f64,
    /// Cores.
    pub cores: usize,
}

/// A reading of the CPU counters at one moment.
#[derive(Clone, Debug, Default)]
pub struct CpuReading {
    workers: u64,
    own: u64,
    postgres: u64,
    busy: u64,
    total: u64,
}

/// Reads the counters of `workers`, this process, the cluster in `pg_data`, and the machine.
pub fn cpu_reading(workers: &[u32], pg_data: Option<&Path>) -> CpuReading {
    let (busy, total) = machine_ticks().unwrap_or((0, 0));
    CpuReading {
        workers: workers.iter().filter_map(|p| cpu_ticks(*p)).sum(),
        own: cpu_ticks(std::process::id()).unwrap_or(0),
        postgres: pg_data
            .map(|d| postgres_pids(d).iter().filter_map(|p| cpu_ticks(*p)).sum())
            .unwrap_or(0),
        busy,
        total,
    }
}

impl CpuSplit {
    /// The CPU time between two readings over `wall` seconds. Backends that ended in between
    /// are not counted (the workers keep their connections, so few do).
    pub fn between(a: &CpuReading, b: &CpuReading, wall: f64, cores: usize) -> CpuSplit {
        let s = |x: u64, y: u64| y.saturating_sub(x) as f64 / TICKS_PER_SEC;
        let workers = s(a.workers, b.workers);
        let own = s(a.own, b.own);
        let postgres = s(a.postgres, b.postgres);
        let busy = s(a.busy, b.busy);
        let total = s(a.total, b.total);
        CpuSplit {
            workers,
            sandbox_and_driver: own,
            postgres,
            others: (busy - workers - own - postgres).max(0.0),
            idle: (total - busy).max(0.0),
            wall,
            cores,
        }
    }

    /// `x` seconds of CPU as a share of one core over the interval, in percent.
    pub fn pct(&self, x: f64) -> f64 {
        if self.wall > 0.0 {
            100.0 * x / self.wall
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_grouped_by_what_they_do() {
        assert_eq!(statement_kind("BEGIN"), "BEGIN");
        assert_eq!(statement_kind("START TRANSACTION"), "BEGIN");
        assert_eq!(
            statement_kind("SELECT 1 FROM fleet_leases WHERE source = $1 FOR SHARE"),
            "fence check: SELECT"
        );
        assert_eq!(
            statement_kind("INSERT INTO fleet_ledger_log (key) SELECT 1"),
            "ledger log: INSERT"
        );
        assert_eq!(
            statement_kind("UPDATE  fleet_ledger AS l SET x = 1"),
            "ledger: UPDATE"
        );
        let a = PgCounts {
            statements: 10,
            by_kind: [("BEGIN".to_owned(), 4)].into(),
            ..PgCounts::default()
        };
        let mut b = a.clone();
        b.statements = 25;
        b.by_kind.insert("BEGIN".into(), 9);
        b.by_kind.insert("COMMIT".into(), 5);
        let d = b.since(&a);
        assert_eq!(d.statements, 15);
        assert_eq!(d.by_kind.get("BEGIN"), Some(&5));
        assert_eq!(d.by_kind.get("COMMIT"), Some(&5));
    }

    #[test]
    fn reads_its_own_cpu_time() {
        assert!(cpu_ticks(std::process::id()).is_some());
        let (busy, total) = machine_ticks().unwrap_or((0, 1));
        assert!(busy <= total);
    }
}
