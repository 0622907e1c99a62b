//! `m365-chaos --fleet`: the fleet chaos run (issue #17 item 8). `W` `m365mail worker`
//! processes share one PostgreSQL database and drain `M` mailboxes of two sandbox tenants (one
//! sandbox each: a sandbox emulates one tenant) through Graph and EWS while the sandboxes
//! inject the single-process run's faults, workers are SIGKILLed and restarted, one worker is
//! SIGSTOPped past its lease and resumed, and PostgreSQL is stopped and started again mid-run.
//! The verdict comes from the database (ledger, its log, a lease history kept by a trigger),
//! the folder handler's records and the mailboxes. See `m365_chaos::fleet` for the plan and the
//! verdict, RELIABILITY.md for the figures.
//!
//! The cluster is the run's own: `cargo xtask chaos --fleet` starts a throw-away one (as for
//! the tests, `xtask/src/postgres.rs`) and passes `--pg-url --pg-ctl --pg-data --pg-log
//! [--pg-user]`, so the run can restart it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use m365_chaos::fleet::{self as plan, FleetEvidence, Mailbox, PROCESSED, TENANTS};
use m365_chaos::{Rates, fault_plan, kill_points};
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use sandbox::{Admin, Sandbox, Seed, ThrottleConfig};

use crate::mailbox::ids_in;
use crate::{Patience, Res, blocking, handler_bin, work_folder};

mod pg;
mod report;
mod workers;

use pg::{PgControl, takeover_delays};
use report::*;
use workers::*;

/// The fleet chaos run: m365mail workers on one PostgreSQL, killed, paused and cut off from
/// their database, against two faulty sandbox tenants.
#[derive(Parser, Debug)]
#[command(name = "m365-chaos --fleet")]
pub(crate) struct FleetArgs {
    /// Selects this run (`m365-chaos --fleet ...`).
    #[arg(long)]
    fleet: bool,
    /// Messages delivered over the run, in turn to each mailbox.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) messages: usize,
    /// Mailboxes (sources), alternately of the two tenants; Graph, Graph delta and EWS mixed.
    #[arg(long, default_value_t = 200)]
    pub(crate) mailboxes: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    pub(crate) workers: usize,
    /// SIGKILLs of a worker (each restarted at once), at random moments.
    #[arg(long, default_value_t = 30)]
    pub(crate) kills: usize,
    /// Seed of the faults, the kill schedule and the choice of victims.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// The m365mail binary (default: `m365mail` beside this program).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Keep the run's files (configuration, workers' logs, output, report) here.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Multiplies every fault rate (0 turns rate-based faults off).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) fault_scale: f64,
    /// Messages waiting per mailbox at most: delivery keeps this far ahead of the fleet.
    #[arg(long, default_value_t = 40)]
    backlog: usize,
    /// Messages delivered per second at most (0: as fast as the backlog allows). Mail then
    /// arrives over the whole run, so the kills, the pause and the restart meet a fleet at
    /// work rather than one that drained everything in its first seconds.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) rate: f64,
    /// The workers' lease time (`m365mail worker --lease-secs`).
    #[arg(long, default_value_t = 5)]
    pub(crate) lease_secs: u64,
    /// The sources' poll interval.
    #[arg(long, default_value_t = 1)]
    pub(crate) poll_secs: u64,
    /// Messages fetched per page.
    #[arg(long, default_value_t = 25)]
    batch_size: usize,
    /// Access-token lifetime in the sandboxes (msauth renews 300 s before expiry, so a token
    /// is used for this minus 300 s).
    #[arg(long, default_value_t = 420)]
    pub(crate) token_lifetime: u64,
    /// How long the paused worker stays stopped (default: twice the lease time plus 2 s).
    #[arg(long)]
    stop_secs: Option<u64>,
    /// How long PostgreSQL stays down between its stop and its start.
    #[arg(long, default_value_t = 5)]
    pub(crate) pg_down: u64,
    /// The database the workers share (a fresh one).
    #[arg(long)]
    pg_url: String,
    /// `pg_ctl` of the cluster.
    #[arg(long)]
    pg_ctl: PathBuf,
    /// The cluster's data directory.
    #[arg(long)]
    pg_data: PathBuf,
    /// The cluster's server log.
    #[arg(long)]
    pg_log: PathBuf,
    /// The user the cluster runs as (`postgres` when run as root).
    #[arg(long)]
    pg_user: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// Give up when nothing was acknowledged for this many seconds.
    #[arg(long, default_value_t = 300)]
    stall: u64,
}

/// Runs the fleet chaos run; `m365-chaos --fleet` lands here.
pub(crate) fn main() -> ExitCode {
    crate::run_to_verdict("fleet chaos", run(FleetArgs::parse()))
}

/// The sandbox of one tenant.
struct Tenant {
    sb: Sandbox,
    admin: Admin,
}

#[allow(clippy::too_many_lines)]
async fn run(args: FleetArgs) -> Res<bool> {
    let bin = handler_bin(args.bin.as_deref())?;
    if args.workers < 2 || args.mailboxes < args.workers || args.messages == 0 {
        return Err("a fleet needs 2 workers or more, a mailbox per worker, and messages".into());
    }
    // The temporary folder, if any, lives as long as `_tmp`.
    let (_tmp, dir) = work_folder(args.work_dir.as_deref())?;
    let out = dir.join("out");
    let cfg = dir.join("m365mail.toml");
    let pgc = PgControl {
        url: args.pg_url.clone(),
        pg_ctl: args.pg_ctl.clone(),
        data: args.pg_data.clone(),
        log: args.pg_log.clone(),
        user: args.pg_user.clone(),
    };
    pg::prepare(&pgc.url).await?;

    // Two tenants, a sandbox each, with the single-process run's faults (seeded per tenant).
    let mailboxes = plan::mailboxes(args.mailboxes);
    let s = args.fault_scale.max(0.0);
    let r = Rates::default();
    let rates = Rates {
        throttle: r.throttle * s,
        unavailable: r.unavailable * s,
        gateway_timeout: r.gateway_timeout * s,
        server_busy: r.server_busy * s,
        reset: r.reset * s,
        slow: r.slow * s,
    };
    let mut tenants = Vec::new();
    for (t, spec) in TENANTS.iter().enumerate() {
        let mine: Vec<&Mailbox> = mailboxes.iter().filter(|m| m.tenant == t).collect();
        let seed = Seed::from_toml_str(&plan::seed_toml(spec, &mine, args.token_lifetime))
            .map_err(|e| format!("the {} seed: {e}", spec.name))?;
        let sb = Sandbox::builder()
            .seed(seed)
            .start()
            .await
            .map_err(|e| format!("starting the {} sandbox: {e}", spec.name))?;
        let admin = sb.admin();
        // As in the single-process run: the per-window request budget off (the run is about
        // faults), the concurrency limits on.
        let mut throttle = ThrottleConfig::default();
        throttle.budget = None;
        admin.set_throttle(throttle);
        admin.set_faults(fault_plan(args.seed.wrapping_add(t as u64), &rates));
        tenants.push(Tenant { sb, admin });
    }
    // The folder each mailbox's mail is moved to, as an administrator would create it.
    let mut processed_ids = Vec::with_capacity(mailboxes.len());
    for m in &mailboxes {
        let f = tenants[m.tenant]
            .admin
            .store()
            .create_folder(&m.address, None, PROCESSED)
            .map_err(|e| format!("creating {PROCESSED} in {}: {e}", m.address))?;
        processed_ids.push(f.id);
    }
    let endpoints: Vec<plan::TenantEndpoints> = tenants
        .iter()
        .map(|t| plan::TenantEndpoints {
            authority_base: t.sb.base_url().to_string(),
            graph: t.sb.graph_url(),
            ews: t.sb.ews_url(),
        })
        .collect();
    let endpoints: [plan::TenantEndpoints; 2] =
        endpoints.try_into().map_err(|_| "two tenants".to_owned())?;
    std::fs::write(
        &cfg,
        plan::config_toml(
            &endpoints,
            &mailboxes,
            &out,
            args.poll_secs,
            args.batch_size,
        ),
    )
    .map_err(|e| format!("{}: {e}", cfg.display()))?;

    // The messages, queued per mailbox.
    let mut queues: Vec<Vec<(String, String)>> = vec![Vec::new(); mailboxes.len()];
    for i in 0..args.messages {
        let (mb, id, mime) = plan::message(args.seed, i, &mailboxes);
        queues[mb].push((id, mime));
    }
    for q in &mut queues {
        q.reverse();
    }
    let total = args.messages;
    let mut injected = vec![0usize; mailboxes.len()];
    let mut delivered: BTreeSet<String> = BTreeSet::new();
    let mut inject_error = None;

    let t0 = Instant::now();
    let spawner = Spawner {
        bin: bin.clone(),
        cfg: cfg.clone(),
        url: pgc.url.clone(),
        lease_secs: args.lease_secs,
        t0,
    };
    let mut slots: Vec<Slot> = Vec::new();
    for slot in 1..=args.workers {
        let name = worker_name(slot, 0);
        let log = dir.join(format!("worker-{slot}.log"));
        let child = spawner.spawn(&name, &log)?;
        slots.push(Slot {
            index: slot,
            child: Some(child),
            name,
            generation: 0,
            log,
            respawn_at: None,
        });
    }
    eprintln!(
        "fleet chaos: {} workers, {} mailboxes ({} tenants), {total} messages, {} kills, \
         lease {} s, files in {}",
        args.workers,
        mailboxes.len(),
        TENANTS.len(),
        args.kills,
        args.lease_secs,
        dir.display()
    );

    let points = kill_points(args.seed, total, args.kills);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x666c_6565);
    let mut next_kill = 0usize;
    let mut armed: Option<Instant> = None;
    let mut kills: Vec<Kill> = Vec::new();
    let mut exits: Vec<Exit> = Vec::new();
    let stop_at = total * 30 / 100;
    let restart_at = total * 60 / 100;
    let stop_secs = args.stop_secs.unwrap_or(2 * args.lease_secs + 2);
    let mut pause = Pause::default();
    let mut paused_slot: Option<(usize, Instant)> = None;
    let mut resumed_slot: Option<usize> = None;
    let pg_down = Arc::new(AtomicBool::new(false));
    let mut pg_recent_until: Option<Instant> = None;
    let mut restart = Restart::default();
    let mut restart_task: Option<tokio::task::JoinHandle<Restart>> = None;
    let mut patience = Patience::new(t0, args.timeout, args.stall);
    let mut last_ack_at = Duration::ZERO;
    let mut timed_out = None;

    loop {
        // Acknowledged: in the Processed folders.
        let mut done = 0usize;
        for (i, m) in mailboxes.iter().enumerate() {
            let store = tenants[m.tenant].admin.store();
            let acked = store
                .folder(&m.address, &processed_ids[i])
                .map(|f| f.total_count)
                .unwrap_or(0);
            done += acked;
            // Deliver, keeping at most `backlog` waiting, and at most `rate` a second.
            let waiting = injected[i].saturating_sub(acked);
            for _ in 0..args.backlog.saturating_sub(waiting) {
                if args.rate > 0.0
                    && delivered.len() as f64 >= args.rate * t0.elapsed().as_secs_f64()
                {
                    break;
                }
                let Some((id, mime)) = queues[i].pop() else {
                    break;
                };
                match tenants[m.tenant].admin.inject_mime(&m.address, &mime) {
                    Ok(_) => {
                        delivered.insert(id);
                        injected[i] += 1;
                    }
                    Err(e) => inject_error = Some(format!("delivering {id}: {e}")),
                }
            }
        }
        if patience.progress(done) {
            last_ack_at = t0.elapsed();
        }
        let pg_is_down =
            pg_down.load(Ordering::SeqCst) || pg_recent_until.is_some_and(|u| Instant::now() < u);

        // SIGKILL at random moments: once past the next point, after a random 0-500 ms, a
        // random worker (not the paused one), restarted at once.
        if next_kill < points.len() && done >= points[next_kill] {
            let at = *armed.get_or_insert_with(|| {
                Instant::now() + Duration::from_millis(rng.random_range(0..500))
            });
            // Not the paused worker, nor the resumed one until it has had three lease times
            // to show it rejoins.
            let rejoining = pause
                .resumed_at
                .filter(|r| t0.elapsed() < *r + Duration::from_secs(3 * args.lease_secs))
                .and(resumed_slot);
            let candidates: Vec<usize> = (0..slots.len())
                .filter(|i| paused_slot.is_none_or(|(p, _)| p != *i))
                .filter(|i| rejoining != Some(*i))
                .filter(|i| slots[*i].child.is_some())
                .collect();
            if Instant::now() >= at
                && let Some(&victim) = candidates.choose(&mut rng)
            {
                let name = slots[victim].name.clone();
                let held = if pg_is_down {
                    BTreeMap::new()
                } else {
                    tokio::time::timeout(Duration::from_secs(2), pg::held_by(&pgc.url, &name))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default()
                };
                if let Some(mut child) = slots[victim].child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                kills.push(Kill {
                    at: t0.elapsed(),
                    wall: SystemTime::now(),
                    acknowledged: done,
                    worker: name.clone(),
                    held,
                });
                eprintln!(
                    "fleet chaos: SIGKILL {} of {} ({name}) at {:.1} s ({done} of {total} acknowledged)",
                    kills.len(),
                    args.kills,
                    t0.elapsed().as_secs_f64()
                );
                next_kill += 1;
                armed = None;
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
                let s = &mut slots[victim];
                s.generation += 1;
                s.name = worker_name(s.index, s.generation);
                s.child = Some(spawner.spawn(&s.name, &s.log)?);
            }
        }

        // Workers must not exit by themselves; one that does is restarted a second later.
        for s in &mut slots {
            let exited = match s.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                Some(Err(e)) => Some(format!("cannot wait: {e}")),
                _ => None,
            };
            if let Some(status) = exited {
                s.child = None;
                exits.push(Exit {
                    at: t0.elapsed(),
                    worker: s.name.clone(),
                    status,
                    while_pg_down: pg_is_down,
                });
                eprintln!(
                    "fleet chaos: worker {} exited by itself at {:.1} s{}",
                    s.name,
                    t0.elapsed().as_secs_f64(),
                    if pg_is_down { " (PostgreSQL down)" } else { "" }
                );
                s.respawn_at = Some(Instant::now() + Duration::from_secs(1));
            }
            if s.child.is_none() && s.respawn_at.is_some_and(|t| Instant::now() >= t) {
                s.respawn_at = None;
                s.generation += 1;
                s.name = worker_name(s.index, s.generation);
                s.child = Some(spawner.spawn(&s.name, &s.log)?);
            }
        }

        // SIGSTOP one worker that holds sources, past its lease; then SIGCONT.
        if pause.stopped_at.is_none() && done >= stop_at && !pg_is_down {
            let mut candidates = Vec::new();
            for (i, s) in slots.iter().enumerate() {
                if s.child.is_some() {
                    let held = pg::held_by(&pgc.url, &s.name).await.unwrap_or_default();
                    if !held.is_empty() {
                        candidates.push((i, held));
                    }
                }
            }
            if let Some((i, held)) = candidates.choose(&mut rng).cloned()
                && let Some(child) = &slots[i].child
                && signal(child, "-STOP")
            {
                pause.worker = slots[i].name.clone();
                pause.held = held;
                pause.stopped_at = Some(t0.elapsed());
                pause.stopped_wall = Some(SystemTime::now());
                paused_slot = Some((i, Instant::now() + Duration::from_secs(stop_secs)));
                eprintln!(
                    "fleet chaos: SIGSTOP {} ({} sources) at {:.1} s for {stop_secs} s",
                    pause.worker,
                    pause.held.len(),
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        if let Some((i, until)) = paused_slot
            && Instant::now() >= until
        {
            match pg::taken_over(&pgc.url, &pause.held, &pause.worker, SystemTime::now()).await {
                Ok(n) => pause.taken_over = n,
                Err(e) => eprintln!("fleet chaos: counting the paused worker's takeovers: {e}"),
            }
            pause.log_path = slots[i].log.clone();
            pause.log_from = log_len(&slots[i].log);
            if let Some(child) = &slots[i].child {
                signal(child, "-CONT");
            }
            pause.resumed_at = Some(t0.elapsed());
            pause.resumed_wall = Some(SystemTime::now());
            paused_slot = None;
            resumed_slot = Some(i);
            eprintln!(
                "fleet chaos: SIGCONT {} at {:.1} s ({} of its {} sources taken over meanwhile)",
                pause.worker,
                t0.elapsed().as_secs_f64(),
                pause.taken_over,
                pause.held.len()
            );
        }

        // Stop PostgreSQL once the pause is over and 60 % is acknowledged; start it again
        // `pg_down` seconds later.
        if restart_task.is_none()
            && restart.started_at.is_none()
            && pause
                .resumed_at
                .is_some_and(|r| t0.elapsed() >= r + Duration::from_secs(2 * args.lease_secs))
            && done >= restart_at
        {
            let workers: Vec<String> = slots
                .iter()
                .filter(|s| s.child.is_some())
                .map(|s| s.name.clone())
                .collect();
            let (pgc, down, flag) = (pgc.clone(), args.pg_down, pg_down.clone());
            eprintln!(
                "fleet chaos: stopping PostgreSQL at {:.1} s for {down} s",
                t0.elapsed().as_secs_f64()
            );
            restart_task = Some(tokio::spawn(async move {
                let mut r = Restart {
                    workers,
                    stopping_wall: Some(SystemTime::now()),
                    ..Restart::default()
                };
                flag.store(true, Ordering::SeqCst);
                let p = pgc.clone();
                if let Err(e) = blocking(move || p.stop()).await.and_then(|r| r) {
                    r.error = Some(e);
                }
                r.stopped_at = Some(t0.elapsed());
                tokio::time::sleep(Duration::from_secs(down)).await;
                if let Err(e) = blocking(move || pgc.start()).await.and_then(|r| r) {
                    r.error = Some(r.error.map_or(e.clone(), |x| format!("{x}; {e}")));
                }
                r.started_at = Some(t0.elapsed());
                r.started_wall = Some(SystemTime::now());
                flag.store(false, Ordering::SeqCst);
                r
            }));
        }
        if restart_task.as_ref().is_some_and(|t| t.is_finished())
            && let Some(task) = restart_task.take()
        {
            restart = task.await.map_err(|e| format!("the restart task: {e}"))?;
            // Workers restarted into the outage may still be failing to connect for a moment.
            pg_recent_until = Some(Instant::now() + Duration::from_secs(3));
            eprintln!(
                "fleet chaos: PostgreSQL started again at {:.1} s{}",
                t0.elapsed().as_secs_f64(),
                restart
                    .error
                    .as_deref()
                    .map(|e| format!(" (ERROR: {e})"))
                    .unwrap_or_default()
            );
            if restart.error.is_some() {
                timed_out = Some("PostgreSQL could not be restarted".to_owned());
                break;
            }
        }

        let all_in = queues.iter().all(Vec::is_empty);
        if all_in
            && done >= total
            && next_kill >= points.len()
            && pause.resumed_at.is_some()
            && restart.started_at.is_some()
        {
            break;
        }
        if let Some(why) = patience.gives_up(done, total) {
            timed_out = Some(why);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run_time = last_ack_at;
    if let Some((i, _)) = paused_slot.take()
        && let Some(child) = &slots[i].child
    {
        signal(child, "-CONT");
    }
    if let Some(task) = restart_task.take() {
        restart = task.await.map_err(|e| format!("the restart task: {e}"))?;
    }

    // Every worker that went into the outage (and was not killed since) must have come back:
    // give it time to show it (a run whose mail was all handled before the restart ends here
    // a moment after the start).
    if let Some(at) = restart.started_wall {
        let killed: BTreeSet<String> = kills.iter().map(|k| k.worker.clone()).collect();
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_secs(60) {
            let back = pg::first_lease_writes(&pgc.url, &restart.workers, at)
                .await
                .unwrap_or_default();
            if restart
                .workers
                .iter()
                .all(|w| back.contains_key(w) || killed.contains(w))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // The ledger must converge: owed acknowledgements are made again from it on later passes.
    let converge_start = Instant::now();
    let mut converged_after = None;
    if timed_out.is_none() {
        while converge_start.elapsed() < Duration::from_secs(60) {
            if let Ok((owed, acked)) = pg::convergence(&pgc.url).await
                && owed == 0
                && usize::try_from(acked).unwrap_or(0) >= delivered.len()
            {
                converged_after = Some(converge_start.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // A clean stop (SIGTERM) hands every lease back.
    for s in &slots {
        if let Some(c) = &s.child {
            signal(c, "-TERM");
        }
    }
    let mut final_exits = Vec::new();
    for s in &mut slots {
        let Some(mut c) = s.child.take() else {
            final_exits.push((s.name.clone(), "not running".to_owned(), false));
            continue;
        };
        let start = Instant::now();
        let status = loop {
            if let Ok(Some(st)) = c.try_wait() {
                break Some(st);
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        final_exits.push(match status {
            Some(st) => (s.name.clone(), st.to_string(), st.success()),
            None => (
                s.name.clone(),
                "did not stop on SIGTERM within 30 s: killed".to_owned(),
                false,
            ),
        });
    }

    // The evidence.
    let mut audit = pg::audit(&pgc.url).await?;
    let stopped: Vec<String> = final_exits.iter().map(|(n, _, _)| n.clone()).collect();
    audit.held = pg::named(&pgc.url, &stopped).await?;
    // Leases that ran out under a worker that was alive and well: not killed, not paused,
    // not cut off by the outage (each window widened by a lease time).
    let lease = Duration::from_secs(args.lease_secs);
    let killed: Vec<String> = kills.iter().map(|k| k.worker.clone()).collect();
    let never = (SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH);
    let paused = match (pause.stopped_wall, pause.resumed_wall) {
        (Some(a), Some(b)) => (a, b + lease),
        _ => never,
    };
    let outage = match (restart.stopping_wall, restart.started_wall) {
        (Some(a), Some(b)) => (a, b + lease),
        _ => never,
    };
    audit.lapsed = pg::lapsed(&pgc.url, &killed, &pause.worker, paused, outage).await?;
    let mut processed: BTreeMap<String, u32> = BTreeMap::new();
    let mut waiting = 0usize;
    for (i, m) in mailboxes.iter().enumerate() {
        let store = tenants[m.tenant].admin.store();
        for id in ids_in(store, &m.address, &processed_ids[i]) {
            *processed.entry(id).or_default() += 1;
        }
        waiting += store
            .folder(&m.address, "inbox")
            .map(|f| f.total_count)
            .unwrap_or(0);
    }
    let evidence = FleetEvidence {
        delivered: delivered.clone(),
        records: m365_chaos::read_records(&out).map_err(|e| e.to_string())?,
        ledger: audit.ledger.clone(),
        handled_entries: audit.handled_entries.clone(),
        processed,
        waiting,
        epoch_regressions: audit.epoch_regressions,
        stale_entries: audit.stale_entries,
        unfenced: audit.unfenced,
    };
    let verdict = evidence.verdict();

    // Takeovers: how soon each killed worker's sources were served again (a lease change at a
    // higher epoch), and each worker's first lease change after PostgreSQL came back.
    let takeovers = takeover_delays(&pgc.url, &kills).await;
    let recovered = match restart.started_wall {
        Some(at) => pg::first_lease_writes(&pgc.url, &restart.workers, at)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(w, t)| (w, t.duration_since(at).unwrap_or_default()))
            .collect(),
        None => BTreeMap::new(),
    };
    let pause_rejoined = match pause.resumed_wall {
        Some(at) => pg::first_lease_writes(&pgc.url, std::slice::from_ref(&pause.worker), at)
            .await
            .unwrap_or_default()
            .get(&pause.worker)
            .and_then(|t| t.duration_since(at).ok()),
        None => None,
    };
    let pause_log = std::fs::read(&pause.log_path)
        .map(|b| {
            let from = usize::try_from(pause.log_from).unwrap_or(0).min(b.len());
            String::from_utf8_lossy(&b[from..]).into_owned()
        })
        .unwrap_or_default();
    let logs: String = slots
        .iter()
        .map(|s| std::fs::read_to_string(&s.log).unwrap_or_default())
        .collect();

    let per_tenant: Vec<TenantFigures> = tenants
        .iter()
        .zip(TENANTS.iter())
        .map(|(t, spec)| TenantFigures::of(spec.name, &t.admin))
        .collect();
    let killed_workers: BTreeSet<&str> = kills.iter().map(|k| k.worker.as_str()).collect();
    // A worker that went into the outage must have come back (unless killed in the meantime).
    let not_recovered: Vec<String> = restart
        .workers
        .iter()
        .filter(|w| !recovered.contains_key(*w) && !killed_workers.contains(w.as_str()))
        .cloned()
        .collect();
    let bad_exits: Vec<&Exit> = exits.iter().filter(|e| !e.while_pg_down).collect();
    let pass = verdict.is_clean()
        && timed_out.is_none()
        && inject_error.is_none()
        && kills.len() >= args.kills
        && pause.resumed_at.is_some()
        && restart.started_at.is_some()
        && restart.error.is_none()
        && not_recovered.is_empty()
        && bad_exits.is_empty()
        && converged_after.is_some()
        && audit.held == 0
        && final_exits.iter().all(|(_, _, ok)| *ok);
    let report = render(&Report {
        args: &args,
        delivered: delivered.len(),
        mailboxes: &mailboxes,
        run_time,
        kills: &kills,
        takeovers: &takeovers,
        exits: &exits,
        pause: &pause,
        pause_rejoined,
        pause_log: &pause_log,
        restart: &restart,
        recovered: &recovered,
        not_recovered: &not_recovered,
        tenants: &per_tenant,
        audit: &audit,
        verdict: &verdict,
        converged_after,
        final_exits: &final_exits,
        logs: &logs,
        timed_out: timed_out.as_deref(),
        inject_error: inject_error.as_deref(),
        pass,
    });
    println!("{report}");
    let _ = std::fs::write(dir.join("chaos-report.txt"), &report);
    if let Some(d) = &args.work_dir {
        eprintln!("fleet chaos: files kept in {}", d.display());
    }
    for t in tenants {
        t.sb.shutdown().await;
    }
    Ok(pass)
}
