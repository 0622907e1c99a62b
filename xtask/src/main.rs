//! The project's automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: exactly what CI runs — fmt check, clippy `--all-targets -D warnings`,
//!   the tests, the small chaos run (`chaos --small --debug`), rustdoc with `-D warnings`,
//!   `cargo deny check`, and the real-client check
//!   (Python's exchangelib against the standalone sandbox). It installs the tools it needs that
//!   are missing (cargo-deny from crates.io, xmllint from Debian) so that it works on a fresh
//!   machine.
//! - `cargo xtask test`: only the tests (the README's quick loop).
//! - `cargo xtask exchangelib`: only the real-client check.
//! - `cargo xtask fuzz [--seconds N] [TARGET]`: builds and runs the libFuzzer targets in
//!   `fuzz/` (each for N seconds, default 60, one at a time). Not part of `ci`: it needs
//!   cargo-fuzz (installed here when missing) and instrumented builds.
//! - `cargo xtask bench [--n 1000,10000] [--ours-n 100000] [--quick]`: the ingest benchmark
//!   (`tools/bench`, issue 10): release builds, a venv with the Python peers, criterion
//!   micro-benchmarks, then every client against the standalone sandbox; writes BENCHMARKS.md
//!   and bench-results.json.
//! - `cargo xtask chaos [--messages N] [--kills K] [--seed S] [--small]`: the chaos run
//!   (`tools/chaos`, RELIABILITY.md): release builds, then m365mail killed and restarted while
//!   the sandbox injects faults; `--small` (500 messages, 5 kills) is cheap enough for CI, and
//!   `--debug` uses the dev-profile binaries the tests built.
//!
//! xtask has no dependencies on purpose: it builds in a second and cannot break with them.

mod bench;
mod chaos;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci           everything CI runs: fmt, clippy, rustdoc, tests, small chaos run, cargo deny,
               exchangelib check
  test         the workspace tests
  lint         fmt check, clippy --all-targets -D warnings, rustdoc -D warnings
  deny         cargo deny: licences, bans, sources (--advisories: also RustSec, needs GitHub)
  exchangelib  run Python's exchangelib against the standalone sandbox
  fuzz [--seconds N] [TARGET]
               run each fuzz target (or one) for N seconds (default 60); needs cargo-fuzz
  bench [--n 1000,10000] [--ours-n 100000] [--quick]
               ingest benchmark (ours vs exchangelib, msgraph-sdk): BENCHMARKS.md
  chaos [--messages N] [--kills K] [--seed S] [--small] [--debug]
               m365mail SIGKILLed and restarted K times (default 20) while it handles N messages
               (default 10000) from a faulty sandbox; fails on any loss or duplicate
               (--debug: dev-profile binaries instead of release)
  help         this text
";

/// The cargo-deny release CI installs when it is missing.
const CARGO_DENY_VERSION: &str = "0.20.2";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let result = match cmd {
        "ci" => ci(),
        "test" => test(),
        "lint" => lint(),
        "deny" => deny(args.iter().any(|a| a == "--advisories")),
        "exchangelib" => exchangelib(),
        "fuzz" => fuzz(&args[1..]),
        "bench" => bench::bench(&args[1..]),
        "chaos" => chaos::chaos(&args[1..]),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // xtask/ is one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_env(program, args, &[])
}

fn run_env(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed with {status}",
            args.join(" ")
        ))
    }
}

fn have(program: &str, probe: &[&str]) -> bool {
    Command::new(program)
        .args(probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ci() -> Result<(), String> {
    ensure_xmllint()?;
    lint()?;
    test()?;
    // The small chaos run (500 messages, 5 SIGKILLs, every fault kind) proves 0 lost, 0 twice,
    // all acknowledged on every CI machine; with the dev-profile binaries the tests just built.
    chaos::chaos(&["--small".into(), "--debug".into(), "--prebuilt".into()])?;
    deny(false)?;
    exchangelib()?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn lint() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run_env(
        "cargo",
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

fn test() -> Result<(), String> {
    ensure_xmllint()?;
    run("cargo", &["test", "--workspace", "--locked"])
}

/// Licences, bans and sources always; advisories only when asked, because the RustSec database
/// is fetched from GitHub, which this project's build machines cannot reach.
fn deny(advisories: bool) -> Result<(), String> {
    if !have("cargo-deny", &["--version"]) {
        run(
            "cargo",
            &[
                "install",
                "--locked",
                "cargo-deny",
                "--version",
                CARGO_DENY_VERSION,
            ],
        )?;
    }
    let mut args = vec![
        "deny",
        "--all-features",
        "check",
        "bans",
        "licenses",
        "sources",
    ];
    if advisories {
        args.push("advisories");
    }
    run("cargo", &args)
}

/// The EWS tests validate XML with `xmllint` against Microsoft's schema.
fn ensure_xmllint() -> Result<(), String> {
    if have("xmllint", &["--version"]) {
        return Ok(());
    }
    if have("apt-get", &["--version"]) {
        eprintln!("xmllint is missing: installing Debian's libxml2-utils");
        run("apt-get", &["update", "-qq"])?;
        return run("apt-get", &["install", "-y", "-qq", "libxml2-utils"]);
    }
    Err("xmllint is needed by the EWS schema tests: install libxml2-utils".into())
}

fn exchangelib() -> Result<(), String> {
    let script = root().join("scripts/exchangelib_check.sh");
    if !script.exists() {
        return Err(format!("{} is missing", script.display()));
    }
    run("bash", &[&script.to_string_lossy()])
}

/// Builds and runs the cargo-fuzz targets one at a time (a 2-core machine), each seeded from
/// `fuzz/corpus/<target>` (read-only: new inputs go to a scratch corpus in the target dir), and
/// prints libFuzzer's run count per target. Stable Rust: `RUSTC_BOOTSTRAP=1` lets cargo-fuzz pass
/// its `-Z` flags; no sanitizer, since the code under test has no `unsafe` of its own.
fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            let v = it.next().ok_or("--seconds needs a value")?;
            seconds = v
                .parse()
                .map_err(|_| format!("--seconds: not a number: {v:?}"))?;
        } else if a.starts_with('-') {
            return Err(format!("fuzz: unknown option {a:?}\n\n{HELP}"));
        } else {
            only = Some(a.clone());
        }
    }
    let fuzz_dir = root().join("fuzz");
    let mut targets: Vec<String> = std::fs::read_dir(fuzz_dir.join("fuzz_targets"))
        .map_err(|e| format!("cannot list fuzz/fuzz_targets: {e}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".rs")
                .map(str::to_string)
        })
        .collect();
    targets.sort();
    if let Some(t) = &only {
        if !targets.contains(t) {
            return Err(format!(
                "no fuzz target {t:?}; targets: {}",
                targets.join(" ")
            ));
        }
        targets = vec![t.clone()];
    }
    if !have("cargo", &["fuzz", "--version"]) {
        run("cargo", &["install", "--locked", "cargo-fuzz"])?;
    }
    let target_dir = env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| fuzz_dir.join("target"));
    let target_dir_s = target_dir.to_string_lossy().into_owned();
    let bootstrap = [("RUSTC_BOOTSTRAP", "1")];
    // `-O`: without it cargo-fuzz forces debug assertions on every crate through RUSTFLAGS,
    // overriding fuzz/Cargo.toml's profile, which keeps them on everywhere but in mail-parser
    // (see the comment there).
    let common = [
        "-O",
        "--sanitizer",
        "none",
        "--target-dir",
        target_dir_s.as_str(),
    ];
    let mut build = vec!["fuzz", "build"];
    build.extend(common);
    run_env("cargo", &build, &bootstrap)?;
    let max_time = format!("-max_total_time={seconds}");
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for t in &targets {
        let scratch = target_dir.join("fuzz-corpus").join(t);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let scratch_s = scratch.to_string_lossy().into_owned();
        let seeds = fuzz_dir
            .join("corpus")
            .join(t)
            .to_string_lossy()
            .into_owned();
        let mut cmd = vec!["fuzz", "run"];
        cmd.extend(common);
        cmd.extend([t.as_str(), scratch_s.as_str(), seeds.as_str(), "--"]);
        cmd.extend([max_time.as_str(), "-print_final_stats=1"]);
        eprintln!("$ cargo {}", cmd.join(" "));
        let mut child = Command::new("cargo")
            .args(&cmd)
            .envs(bootstrap)
            .current_dir(root())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
        // Echo libFuzzer's output while keeping the final run count for the summary.
        let mut runs = String::from("?");
        let stderr = child.stderr.take().ok_or("no stderr from cargo fuzz")?;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(rest) = line.strip_prefix("stat::number_of_executed_units:") {
                runs = rest.trim().to_string();
            }
        }
        let status = child
            .wait()
            .map_err(|e| format!("cargo fuzz run {t}: {e}"))?;
        if status.success() {
            summary.push(format!("{t}: {runs} runs in {seconds}s, no crash"));
        } else {
            // A crash: libFuzzer has written the input to fuzz/artifacts/<target>/. Carry on
            // with the other targets and fail at the end.
            failed.push(t.as_str());
            summary.push(format!(
                "{t}: FAILED ({status}) after {runs} runs; input in fuzz/artifacts/{t}/"
            ));
        }
    }
    for s in &summary {
        eprintln!("xtask fuzz: {s}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {}", failed.join(" ")))
    }
}
