//! `cargo xtask bench [--n 1000,10000] [--ours-n 100000] [--quick]`: the ingest benchmark of
//! issue 10, end to end on a fresh machine.
//!
//! 1. builds the sandbox and the driver (`tools/bench`, package `m365-bench`) in release;
//! 2. makes a Python venv under the target dir and pip-installs the peers at pinned versions;
//! 3. runs the criterion micro-benchmarks (`m365-bench`'s hot paths, `addressing`'s routing);
//! 4. installs Debian's `wrk` if it is missing (the sandbox capacity test's load tool);
//! 5. runs `m365-bench run`, which measures the sandbox's capacity with wrk, starts a fresh
//!    sandbox process per client and N, seeds it, runs each client as a measured child process
//!    and writes `BENCHMARKS.md` and `bench-results.json` at the workspace root.
//!
//! `--quick` is for trying the pipeline: N=200 for everyone, no 100,000 run, short criterion and
//! capacity measurements.
//!
//! `cargo xtask bench --push`: push against polling only (issue #20, a few minutes): the
//! latency from the sandbox accepting a message to the handler being handed it, p50 and p99,
//! with Graph change notifications and with polling at the default interval, and the requests
//! an idle mailbox costs per hour; the "Mail as it arrives" section of BENCHMARKS.md.
//!
//! `cargo xtask bench --exo [--scales 1x10000,20x500] [--clients ...] [--median-ms 120]
//! [--sigma 0.6] [--max-ms 5000] [--seed 1]`: every client at Exchange Online's pace (issue
//! #23): a latency drawn per request and Exchange Online's throttling in the sandbox; the
//! ceiling each client's requests per message allow and the share of it reached (`m365-bench
//! exo`, the "At Exchange Online's pace" section of BENCHMARKS.md).
//!
//! `cargo xtask bench --replies`: reply extraction only (issue #21 item 2, a few seconds): builds
//! `m365-bench`, makes the same venv (the reply peers quotequail and mail-parser-reply are pinned
//! with the others) and runs `m365-bench replies`, which runs `handler::extract_reply` and
//! `scripts/bench/reply_peers.py` over `crates/handler/testdata/replies/corpus.jsonl` and writes
//! the "Reply extraction" section of BENCHMARKS.md (per-case results under
//! `target/bench/replies/`).

use std::path::PathBuf;

use crate::{have, root, run, run_env};

/// The peers, pinned to the versions the report was made with.
const PEERS: &[&str] = &[
    "exchangelib==5.6.0",
    "msgraph-sdk==1.65.0",
    "azure-identity==1.27.0",
    "Deprecated==1.3.1",
    "quotequail==0.5.4",
    "mail-parser-reply==1.36",
];

/// The capacity test drives the sandbox with Debian's `wrk` (issue 5 item 8); installed here
/// when missing, as `ensure_xmllint` does for the schema tests.
fn ensure_wrk() -> Result<(), String> {
    // `wrk -v` exits with 1 after its banner: that it starts is enough.
    let runs = || std::process::Command::new("wrk").arg("-v").output().is_ok();
    if runs() {
        return Ok(());
    }
    if have("apt-get", &["--version"]) {
        eprintln!("wrk is missing: installing Debian's wrk");
        run("apt-get", &["update", "-qq"])?;
        run("apt-get", &["install", "-y", "-qq", "wrk"])?;
        if runs() {
            return Ok(());
        }
    }
    Err("the sandbox capacity test needs wrk: install Debian's wrk (apt-get install wrk)".into())
}

/// `cargo build --release --locked` with `args` (the packages, `--bin`).
pub(crate) fn build_release(args: &[&str]) -> Result<(), String> {
    let mut argv = vec!["build", "--release", "--locked"];
    argv.extend_from_slice(args);
    run("cargo", &argv)
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"))
}

fn venv() -> Result<PathBuf, String> {
    let venv = target_dir().join("bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
    }
    let have = std::process::Command::new(&python)
        .args([
            "-c",
            "import exchangelib, msgraph, azure.identity, deprecated, quotequail, mailparser_reply",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        let pip = venv.join("bin/pip").to_string_lossy().into_owned();
        // scripts/bench/requirements.txt pins every package the peers pull in (a pip freeze);
        // without it, the peers themselves at the pinned versions.
        let req = root().join("scripts/bench/requirements.txt");
        if req.exists() {
            run(&pip, &["install", "--quiet", "-r", &req.to_string_lossy()])?;
        } else {
            let mut args = vec!["install", "--quiet"];
            args.extend_from_slice(PEERS);
            run(&pip, &args)?;
        }
    }
    Ok(python)
}

/// The benchmarks but the fleet's (`--fleet` goes to `fleet_bench::bench`, from `main`).
pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--replies") {
        return replies(args);
    }
    if args.iter().any(|a| a == "--push") {
        return push(args);
    }
    if args.iter().any(|a| a == "--exo") {
        return exo(args);
    }
    let mut n = "1000,10000".to_owned();
    let mut ours_n = "100000".to_owned();
    let mut quick = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--n" => n = it.next().ok_or("--n needs a value")?.clone(),
            "--ours-n" => ours_n = it.next().ok_or("--ours-n needs a value")?.clone(),
            "--quick" => quick = true,
            other => return Err(format!("bench: unknown option {other:?}")),
        }
    }
    if quick {
        n = "200".into();
        ours_n = String::new();
    }
    build_release(&["-p", "m365mail-sandbox", "--bin", "m365mail-sandbox"])?;
    // A separate build: `--bin m365mail-sandbox` would select only that binary of every package.
    build_release(&["-p", "m365-bench"])?;
    ensure_wrk()?;
    let python = venv()?;
    let (warm, measure) = if quick { ("0.5", "1") } else { ("1", "3") };
    for (pkg, bench) in [
        ("m365-bench", "hot_paths"),
        ("m365mail-addressing", "route"),
    ] {
        run(
            "cargo",
            &[
                "bench",
                "--locked",
                "-p",
                pkg,
                "--bench",
                bench,
                "--",
                "--warm-up-time",
                warm,
                "--measurement-time",
                measure,
            ],
        )?;
    }
    let target = target_dir();
    let release = target.join("release");
    let mut cmd_line = format!("cargo xtask bench --n {n}");
    if !ours_n.is_empty() {
        cmd_line.push_str(&format!(" --ours-n {ours_n}"));
    }
    if quick {
        cmd_line = "cargo xtask bench --quick".into();
    }
    cmd_line.push_str("   # runs the commands below, in this order");
    let cap_seconds = if quick { "1" } else { "5" };
    let driver_line = format!(
        "target/release/m365-bench run --sandbox-bin target/release/m365mail-sandbox --n {n}{} \
         --python target/bench-venv/bin/python --work target/bench --criterion target/criterion \
         --capacity-seconds {}",
        if ours_n.is_empty() {
            String::new()
        } else {
            format!(" --ours-n {ours_n}")
        },
        cap_seconds
    );
    let sandbox = release
        .join("m365mail-sandbox")
        .to_string_lossy()
        .into_owned();
    let py = python.to_string_lossy().into_owned();
    let work = target.join("bench").to_string_lossy().into_owned();
    let crit = target.join("criterion").to_string_lossy().into_owned();
    let driver = release.join("m365-bench").to_string_lossy().into_owned();
    let mut argv: Vec<String> = vec![
        "run".into(),
        "--sandbox-bin".into(),
        sandbox,
        "--n".into(),
        n.clone(),
        "--python".into(),
        py,
        "--work".into(),
        work,
        "--criterion".into(),
        crit,
        "--capacity-seconds".into(),
        cap_seconds.into(),
        "--command".into(),
        cmd_line,
        "--command".into(),
        format!(
            "cargo bench -p m365-bench --bench hot_paths -- --warm-up-time {warm} --measurement-time {measure}"
        ),
        "--command".into(),
        format!(
            "cargo bench -p m365mail-addressing --bench route -- --warm-up-time {warm} --measurement-time {measure}"
        ),
        "--command".into(),
        driver_line,
        "--command".into(),
        format!(
            "# its capacity test, per request kind K: wrk -t 2 -c 4 -d {cap_seconds}s --timeout 30s \
             --latency -s target/bench/capacity/wrk-K.lua -H \"Authorization: Bearer $TOKEN\" URL"
        ),
    ];
    if !ours_n.is_empty() {
        argv.push("--ours-n".into());
        argv.push(ours_n);
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_env(&driver, &argv, &[])
}

/// `cargo xtask bench --push`: push against polling (issue #20), a few minutes: builds
/// `m365-bench` and runs `m365-bench push`, which writes its section of BENCHMARKS.md. Other
/// arguments go to it (`--messages N`, `--poll-secs S`, `--gap-ms MS`, `--idle-secs S`).
fn push(args: &[String]) -> Result<(), String> {
    build_release(&["-p", "m365-bench"])?;
    let driver = target_dir().join("release/m365-bench");
    let md = root().join("BENCHMARKS.md").to_string_lossy().into_owned();
    let mut argv = vec!["push".to_owned(), "--md".into(), md];
    argv.extend(args.iter().filter(|a| *a != "--push").cloned());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_env(&driver.to_string_lossy(), &argv, &[])
}

/// `cargo xtask bench --exo`: every client at Exchange Online's pace (issue #23): builds
/// `m365-bench` and `m365mail` in release, makes the peers' venv and runs `m365-bench exo`,
/// which prints its table and writes `bench-exo-results.json`. Other arguments go to it
/// (`--scales 1x10000,20x500`, `--clients ...`, `--median-ms 120`, `--sigma 0.6`,
/// `--max-ms 5000`, `--seed 1`, `--batch-size 200`, `--in-flight 4`).
fn exo(args: &[String]) -> Result<(), String> {
    build_release(&["-p", "m365-bench", "-p", "m365mail"])?;
    let python = venv()?;
    let release = target_dir().join("release");
    let root = root();
    let mut argv = vec![
        "exo".to_owned(),
        "--bin".into(),
        release.join("m365mail").to_string_lossy().into_owned(),
        "--python".into(),
        python.to_string_lossy().into_owned(),
        "--scripts".into(),
        root.join("scripts/bench").to_string_lossy().into_owned(),
        "--work".into(),
        target_dir()
            .join("bench/exo")
            .to_string_lossy()
            .into_owned(),
        "--json".into(),
        root.join("bench-exo-results.json")
            .to_string_lossy()
            .into_owned(),
    ];
    argv.extend(args.iter().filter(|a| *a != "--exo").cloned());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_env(&release.join("m365-bench").to_string_lossy(), &argv, &[])
}

/// `cargo xtask bench --replies`: reply extraction against quotequail and mail-parser-reply.
fn replies(args: &[String]) -> Result<(), String> {
    if let Some(other) = args.iter().find(|a| *a != "--replies") {
        return Err(format!("bench --replies: unknown option {other:?}"));
    }
    build_release(&["-p", "m365-bench"])?;
    let python = venv()?;
    let driver = target_dir().join("release/m365-bench");
    let root = root();
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    let argv = [
        "replies".to_owned(),
        "--corpus".into(),
        path("crates/handler/testdata/replies/corpus.jsonl"),
        "--python".into(),
        python.to_string_lossy().into_owned(),
        "--script".into(),
        path("scripts/bench/reply_peers.py"),
        "--work".into(),
        target_dir()
            .join("bench/replies")
            .to_string_lossy()
            .into_owned(),
        "--md".into(),
        path("BENCHMARKS.md"),
        "--json".into(),
        target_dir()
            .join("bench/replies/results.json")
            .to_string_lossy()
            .into_owned(),
        "--command".into(),
        "cargo xtask bench --replies   # runs the command below".into(),
        "--command".into(),
        "target/release/m365-bench replies --python target/bench-venv/bin/python \
         --corpus crates/handler/testdata/replies/corpus.jsonl"
            .into(),
    ];
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_env(&driver.to_string_lossy(), &argv, &[])
}
