//! `m365-bench ledger-load`: how many ledger writes one PostgreSQL takes (issue #18 item 5,
//! SCALING.md). Concurrent tasks, each holding the lease of a source of its own (as each
//! source of a fleet is served by one worker), make fenced appends through
//! `fleet::PgStore::ledger()` for a few seconds:
//!
//! - `single`: one entry per append (a message recorded as handled);
//! - `batch100`: 100 entries per append (a page's acknowledgements);
//! - `message`: what the pipeline writes per message: a `get`, a one-entry `handled` append,
//!   and every 100 messages one 100-entry `acknowledged` append (messages per second).
//!
//! Each row runs with `fsync` on and off (`ALTER SYSTEM` and a reload; restored afterwards),
//! on a pool of as many connections as tasks.

use std::time::{Duration, Instant};

use handler::{Entry, LeaseStore as _, LedgerStore as _};
use serde::{Deserialize, Serialize};

/// `m365-bench ledger-load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// An administrator's URL of the cluster (a database `bench_ledger_load` is created).
    #[arg(long)]
    pub pg_url: String,
    /// Seconds per row.
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Rows: `WORKLOAD:CONCURRENCY`, WORKLOAD one of `single`, `batch100`, `message`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "single:1,single:16,single:64,batch100:1,batch100:16,message:16,message:64"
    )]
    pub rows: Vec<String>,
    /// `fsync` settings to run every row with.
    #[arg(long, value_delimiter = ',', default_value = "on,off")]
    pub fsync: Vec<String>,
    /// The JSON results.
    #[arg(long, default_value = "target/bench/ledger-load.json")]
    pub json: std::path::PathBuf,
}

/// One row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadRow {
    /// `on` or `off`.
    pub fsync: String,
    /// `single`, `batch100` or `message`.
    pub workload: String,
    /// Concurrent tasks (and connections).
    pub concurrency: usize,
    /// Appends per second.
    pub appends_per_sec: f64,
    /// Entries per second.
    pub entries_per_sec: f64,
    /// Messages per second (`message` only).
    pub messages_per_sec: Option<f64>,
    /// Mean latency of one append (for `message`: of one message's writes), ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Failed operations.
    pub errors: u64,
}

/// Every row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResults {
    /// The server and its settings.
    pub postgres: String,
    /// Seconds per row.
    pub secs: u64,
    /// The rows.
    pub rows: Vec<LoadRow>,
}

/// Runs `m365-bench ledger-load`.
pub fn main(args: &LoadArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let results = rt.block_on(run(args))?;
    if let Some(dir) = args.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(
        &args.json,
        serde_json::to_vec_pretty(&results).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", args.json.display()))?;
    Ok(())
}

async fn show(c: &tokio_postgres::Client, name: &str) -> String {
    c.query_one(&format!("SHOW {name}"), &[])
        .await
        .map_or_else(|e| format!("? ({e})"), |r| r.get(0))
}

async fn set_fsync(c: &tokio_postgres::Client, value: &str) -> Result<(), String> {
    if value != "on" && value != "off" {
        return Err(format!("--fsync {value:?}: on or off"));
    }
    for sql in [
        format!("ALTER SYSTEM SET fsync = {value}"),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        c.batch_execute(&sql).await.map_err(|e| {
            format!(
                "setting fsync: {sql}: {}",
                crate::fleet::observe::pg_error(&e)
            )
        })?;
    }
    // The reload is asynchronous: wait until a new session sees it.
    for _ in 0..50 {
        if show(c, "fsync").await == value {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("fsync did not become {value}"))
}

fn db_url(admin_url: &str, db: &str) -> String {
    match admin_url.rsplit_once('/') {
        Some((base, _)) if base.contains("://") && base.matches('/').count() >= 2 => {
            format!("{base}/{db}")
        }
        _ => format!("{admin_url} dbname={db}"),
    }
}

async fn run(args: &LoadArgs) -> Result<LoadResults, String> {
    let c = crate::fleet::observe::connect(&args.pg_url).await?;
    let fsync_before = show(&c, "fsync").await;
    for sql in [
        "DROP DATABASE IF EXISTS bench_ledger_load WITH (FORCE)",
        "CREATE DATABASE bench_ledger_load",
    ] {
        c.batch_execute(sql)
            .await
            .map_err(|e| format!("{sql}: {}", crate::fleet::observe::pg_error(&e)))?;
    }
    let url = db_url(&args.pg_url, "bench_ledger_load");
    let mut results = LoadResults {
        postgres: format!(
            "PostgreSQL {}, synchronous_commit = {}, shared_buffers = {}, fsync as in each row",
            show(&c, "server_version").await,
            show(&c, "synchronous_commit").await,
            show(&c, "shared_buffers").await
        ),
        secs: args.secs,
        rows: Vec::new(),
    };
    let mut run_no = 0u32;
    let outcome = async {
        for fsync in &args.fsync {
            set_fsync(&c, fsync).await?;
            for spec in &args.rows {
                let (workload, n) = spec
                    .split_once(':')
                    .ok_or_else(|| format!("--rows {spec:?}: WORKLOAD:CONCURRENCY"))?;
                let n: usize = n
                    .parse()
                    .map_err(|_| format!("--rows {spec:?}: WORKLOAD:CONCURRENCY"))?;
                run_no += 1;
                let row = one(&url, fsync, workload, n.max(1), args.secs, run_no).await?;
                eprintln!(
                    "ledger load: fsync {fsync}, {workload} × {n}: {:.0} appends/s, {:.0} \
                     entries/s{}, mean {:.2} ms, p99 {:.2} ms, {} errors",
                    row.appends_per_sec,
                    row.entries_per_sec,
                    row.messages_per_sec
                        .map(|m| format!(", {m:.0} messages/s"))
                        .unwrap_or_default(),
                    row.mean_ms,
                    row.p99_ms,
                    row.errors
                );
                results.rows.push(row);
            }
        }
        Ok::<(), String>(())
    }
    .await;
    let _ = set_fsync(&c, &fsync_before).await;
    let _ = c.batch_execute("ALTER SYSTEM RESET fsync").await;
    let _ = c.batch_execute("SELECT pg_reload_conf()").await;
    outcome?;
    Ok(results)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn one(
    url: &str,
    fsync: &str,
    workload: &str,
    concurrency: usize,
    secs: u64,
    run_no: u32,
) -> Result<LoadRow, String> {
    let mut options = fleet::PgOptions::default();
    options.pool_size = concurrency;
    let store = fleet::PgStore::connect_with(url, options)
        .await
        .map_err(|e| format!("connecting the store: {e}"))?;
    let leases = store.leases();
    let ttl = Duration::from_secs(3600);
    let mut fences = Vec::new();
    for i in 0..concurrency {
        let source = format!("load{run_no}-s{i}");
        let fence = leases
            .acquire(&source, "ledger-load", ttl)
            .await
            .map_err(|e| format!("leasing {source}: {e}"))?
            .ok_or_else(|| format!("{source} is held by someone else"))?;
        fences.push(fence);
    }
    let per_append = match workload {
        "single" | "message" => 1,
        "batch100" => 100,
        other => return Err(format!("unknown workload {other:?}")),
    };
    let until = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for fence in fences {
        let ledger = store.ledger();
        let workload = workload.to_owned();
        tasks.spawn(async move {
            let (mut appends, mut entries, mut messages, mut errors) = (0u64, 0u64, 0u64, 0u64);
            let mut lat = Vec::new();
            let mut n = 0u64;
            let mut handled: Vec<String> = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let keys: Vec<String> = (0..per_append)
                    .map(|_| {
                        n += 1;
                        format!("{}|m{n}", fence.source)
                    })
                    .collect();
                if workload == "message" {
                    let key = &keys[0];
                    if ledger.get(key).await.is_err() {
                        errors += 1;
                    }
                }
                let batch: Vec<(String, Entry)> = keys
                    .iter()
                    .map(|k| {
                        (
                            k.clone(),
                            Entry::Handled {
                                project: Some("BENCH".into()),
                            },
                        )
                    })
                    .collect();
                match ledger.append(batch, Some(&fence)).await {
                    Ok(()) => {
                        appends += 1;
                        entries += keys.len() as u64;
                    }
                    Err(_) => errors += 1,
                }
                if workload == "message" {
                    handled.extend(keys);
                    if handled.len() >= 100 {
                        let acks: Vec<(String, Entry)> = handled
                            .drain(..)
                            .map(|k| (k, Entry::Acknowledged))
                            .collect();
                        let count = acks.len() as u64;
                        match ledger.append(acks, Some(&fence)).await {
                            Ok(()) => {
                                appends += 1;
                                entries += count;
                            }
                            Err(_) => errors += 1,
                        }
                    }
                    messages += 1;
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (appends, entries, messages, errors, lat)
        });
    }
    let (mut appends, mut entries, mut messages, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut lat: Vec<f64> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (a, e, m, x, l) = r.map_err(|e| format!("a load task: {e}"))?;
        appends += a;
        entries += e;
        messages += m;
        errors += x;
        lat.extend(l);
    }
    let wall = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().sum::<f64>() / lat.len() as f64
    };
    Ok(LoadRow {
        fsync: fsync.to_owned(),
        workload: workload.to_owned(),
        concurrency,
        appends_per_sec: appends as f64 / wall,
        entries_per_sec: entries as f64 / wall,
        messages_per_sec: (workload == "message").then(|| messages as f64 / wall),
        mean_ms: mean,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_percentiles() {
        assert_eq!(
            db_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
