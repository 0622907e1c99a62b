//! The project's automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: exactly what CI runs — fmt check, clippy `--all-targets -D warnings`,
//!   the tests, the small chaos runs (`chaos --small --debug`, then the fleet's, `chaos --fleet
//!   --small --debug`), rustdoc with `-D warnings`, a type-check of the fuzz targets (their own
//!   workspace, `--locked`, warnings denied), `cargo deny check`,
//!   `cargo publish --workspace --dry-run` and `cargo semver-checks`
//!   against the API baseline (`publish.rs`), and the real-client checks (Python libraries nobody here wrote —
//!   exchangelib, msgraph-sdk with azure-identity, MSAL — against the standalone sandbox). It
//!   installs the tools it needs that are missing (cargo-deny from crates.io, xmllint and
//!   python3-venv from Debian) so that it works on a fresh machine.
//! - Both start a throw-away PostgreSQL (`postgres.rs`) for the `fleet` crate's tests and pass
//!   its URL in `M365MAIL_TEST_POSTGRES` (unless that is set already); `ci` fails without one
//!   (install Debian's `postgresql`), `test` runs them skipped.
//! - `cargo xtask test [ARGS]`: only the tests (the README's quick loop); ARGS go to
//!   `cargo test` in place of `--workspace` (e.g. `-p m365mail-sandbox --test it`). The tests
//!   read their fixtures from `testdata/` only: a static check refuses tracked files that point at the
//!   shared reference directory beside the repository, and where it can (root on Linux, with
//!   `unshare`) the tests run with that directory hidden, so CI proves the suite stands alone.
//! - `cargo xtask realclients [exchangelib] [graph-sdk] [msal]`: only the real-client checks
//!   (all three by default), run by `scripts/realclients/run.sh`: one pinned venv under the
//!   target dir, a fresh TLS sandbox per check. `cargo xtask exchangelib`, `graph-sdk` and
//!   `msal` run one each.
//! - `cargo xtask fuzz [--seconds N] [TARGET]`: builds and runs the libFuzzer targets in
//!   `fuzz/` (each for N seconds, default 60, one at a time). Not part of `ci` (which only
//!   type-checks them): it needs cargo-fuzz (installed here when missing) and instrumented builds.
//! - `cargo xtask bench [--n 1000,10000] [--ours-n 100000] [--quick]`: the ingest benchmark
//!   (`tools/bench`, issue 10): release builds, a venv with the Python peers, criterion
//!   micro-benchmarks, then every client against the standalone sandbox; writes BENCHMARKS.md
//!   and bench-results.json. `cargo xtask bench --fleet [--quick]`: the fleet under Exchange
//!   Online's limits and the ledger's writes on one PostgreSQL (`fleet_bench.rs`): the
//!   "Fleet under Exchange Online's limits" section of BENCHMARKS.md. `cargo xtask bench
//!   --replies`: reply extraction (`handler::extract_reply`) against quotequail and
//!   mail-parser-reply on the labelled corpus: the "Reply extraction" section. `cargo xtask
//!   bench --exo`: every client at Exchange Online's pace (issue #23): the ceiling and the
//!   share of it reached, the "At Exchange Online's pace" section.
//! - `cargo xtask chaos [--messages N] [--kills K] [--seed S] [--small]`: the chaos run
//!   (`tools/chaos`, RELIABILITY.md): release builds, then m365mail killed and restarted while
//!   the sandbox injects faults; `--small` (500 messages, 5 kills) is cheap enough for CI, and
//!   `--debug` uses the dev-profile binaries the tests built.
//! - `cargo xtask chaos --fleet [--messages N] [--kills K] [--mailboxes M] [--workers W]
//!   [--small]`: the fleet chaos run (`tools/chaos/src/fleet_run`, `fleet_chaos.rs`,
//!   RELIABILITY.md): workers of a fleet on a throw-away PostgreSQL of its own, SIGKILLed,
//!   SIGSTOPped and cut off from their database while two sandbox tenants inject faults.
//!
//! xtask has no dependencies on purpose: it builds in a second and cannot break with them.

mod bench;
mod chaos;
mod fleet_bench;
mod fleet_chaos;
mod postgres;
mod publish;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci           everything CI runs: fmt, clippy, rustdoc, tests, small chaos runs (single
               process and fleet), cargo deny, publish-check, semver, the real-client
               checks
  test [ARGS]  the workspace tests (ARGS replace --workspace, e.g. -p m365mail-sandbox
               --test it), with the shared reference directory beside the repository
               hidden when possible
  lint         fmt check, clippy --all-targets -D warnings, rustdoc -D warnings, fuzz targets' check
  deny         cargo deny: licences, bans, sources (--advisories: also RustSec, needs GitHub)
  publish-check
               cargo publish --workspace --dry-run: every published crate packaged and built
               from its package, in dependency order (nothing is uploaded)
  semver       cargo semver-checks: each published library's public API against the
               baseline commit in api-baseline/rev (installs cargo-semver-checks if missing)
  realclients [exchangelib] [graph-sdk] [msal]
               real Python clients, unchanged, against the standalone TLS sandbox (default:
               all three): exchangelib (EWS), msgraph-sdk with azure-identity (Graph), MSAL
               (identity); scripts/realclients/
  exchangelib | graph-sdk | msal
               one of them
  fuzz [--seconds N] [TARGET]
               run each fuzz target (or one) for N seconds (default 60); needs cargo-fuzz
  bench [--n 1000,10000] [--ours-n 100000] [--quick]
               ingest benchmark (ours vs exchangelib, msgraph-sdk): BENCHMARKS.md
  bench --fleet [--quick]
               1, 2, 3 m365mail workers on a throw-away PostgreSQL against the throttled
               sandbox (200 mailboxes): msgs/s against the budget-bound ceiling, requests and
               SQL statements per message by source mode, ledger writes per second
  bench --push [--messages N] [--poll-secs S]
               latency (p50, p99) and idle requests per hour of a Graph source with change
               notifications against polling at the default interval: BENCHMARKS.md
  bench --exo [--scales 1x10000,20x500] [--clients C,...] [--median-ms 120] [--sigma 0.6]
              [--max-ms 5000] [--seed 1]
               every client at Exchange Online's pace (latency per request, 4 Graph / 27 EWS
               requests at once, 10,000 per 600 s): the ceiling and the share of it reached
  bench --replies
               reply extraction (handler::extract_reply) against quotequail and
               mail-parser-reply on crates/handler/testdata/replies: BENCHMARKS.md
  chaos [--messages N] [--kills K] [--seed S] [--small] [--push] [--debug]
               m365mail SIGKILLed and restarted K times (default 20) while it handles N messages
               (default 10000) from a faulty sandbox; fails on any loss or duplicate
               (--debug: dev-profile binaries instead of release)
  chaos --fleet [--messages N] [--kills K] [--mailboxes M] [--workers W] [--seed S] [--small]
               W m365mail workers (default 3) on a PostgreSQL of their own drain M mailboxes
               (200) of 2 tenants: N messages (20000), K SIGKILLs (30), a SIGSTOP past the
               lease, a PostgreSQL restart; fails on loss, duplicates, a stale fencing epoch
  help         this text
";

/// The cargo-deny release CI installs when it is missing.
const CARGO_DENY_VERSION: &str = "0.20.2";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let result = match cmd {
        "ci" => ci(),
        "test" => test(&args[1..]),
        "lint" => lint(),
        "deny" => deny(args.iter().any(|a| a == "--advisories")),
        "publish-check" => publish::publish_check(),
        "semver" => publish::semver(),
        "realclients" => realclients(&args[1..]),
        one @ ("exchangelib" | "graph-sdk" | "msal") => realclients(&[one.to_owned()]),
        "fuzz" => fuzz(&args[1..]),
        "bench" if args.iter().any(|a| a == "--fleet") => fleet_bench::bench(&args[1..]),
        "bench" => bench::bench(&args[1..]),
        "chaos" if args.iter().any(|a| a == "--fleet") => fleet_chaos::fleet(&args[1..]),
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

/// The flags of `cargo xtask <command> --fleet` (`--fleet` itself skipped): the ones of
/// `switches` given, and the flags of `with_value` with their values, to pass on in order. An
/// unknown flag is an error naming the ones known.
fn fleet_flags(
    command: &str,
    args: &[String],
    switches: &[&'static str],
    with_value: &[&str],
) -> Result<(Vec<&'static str>, Vec<String>), String> {
    let (mut given, mut pass) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fleet" => {}
            flag if with_value.contains(&flag) => {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                pass.push(a.clone());
                pass.push(v.clone());
            }
            flag => match switches.iter().find(|s| **s == flag) {
                Some(s) => given.push(*s),
                None => {
                    return Err(format!(
                        "{command}: unknown flag {flag:?} ({}, and {} with a value)",
                        switches.join(" "),
                        with_value.join(" ")
                    ));
                }
            },
        }
    }
    Ok((given, pass))
}

/// Adds to `pass` each flag of `defaults` (flag, value, flag, value...) it does not give.
fn add_defaults(pass: &mut Vec<String>, defaults: &[&str]) {
    for pair in defaults.chunks(2) {
        if !pass.iter().any(|p| p == pair[0]) {
            pass.extend(pair.iter().map(|s| (*s).to_owned()));
        }
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
    ensure_postgres()?;
    lint()?;
    if std::env::var_os(postgres::ENV).is_some() {
        test_with(&[], &[])?;
    } else {
        // The fleet crate's tests need a PostgreSQL: a throw-away cluster, stopped when this
        // scope ends, whether the tests passed or not.
        let pg = postgres::Cluster::start()
            .map_err(|e| format!("cannot start PostgreSQL for the tests: {e}"))?;
        test_with(&[], &[(postgres::ENV, pg.url.as_str())])?;
    }
    // The small chaos run (500 messages, 5 SIGKILLs, every fault kind) proves 0 lost, 0 twice,
    // all acknowledged on every CI machine; with the dev-profile binaries the tests just built.
    chaos::chaos(&["--small".into(), "--debug".into(), "--prebuilt".into()])?;
    // Again with the Graph source in push mode (issue #20): notifications dropped, duplicated,
    // delayed and reordered, the subscription removed half-way, still 0 lost and 0 twice.
    chaos::chaos(&[
        "--small".into(),
        "--push".into(),
        "--debug".into(),
        "--prebuilt".into(),
    ])?;
    // The small fleet chaos run (issue #17): 3 workers on a PostgreSQL of its own, 24 mailboxes
    // of 2 tenants, 3,000 messages, 8 SIGKILLs, a SIGSTOP past the lease and a PostgreSQL
    // restart; 0 lost, 0 twice, all acknowledged, the ledger converged, no stale epoch.
    fleet_chaos::fleet(&[
        "--fleet".into(),
        "--small".into(),
        "--debug".into(),
        "--prebuilt".into(),
    ])?;
    deny(false)?;
    publish::publish_check()?;
    publish::semver()?;
    realclients(&[])?;
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
    // As docs.rs builds them (`[package.metadata.docs.rs]`: `--cfg docsrs`, which turns on
    // `doc_cfg` in each library), with the unstable feature allowed on this stable toolchain.
    run_env(
        "cargo",
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[
            ("RUSTDOCFLAGS", "-D warnings --cfg docsrs"),
            ("RUSTC_BOOTSTRAP", "1"),
        ],
    )?;
    // The fuzz targets are a workspace of their own (no cargo-fuzz needed to type-check them):
    // a public API they call that changes, or a dependency their lock file lacks, fails here
    // rather than at the next `cargo xtask fuzz`. Its own target folder keeps the flags apart.
    let fuzz_target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), std::path::PathBuf::from)
        .join("fuzz-check");
    run_env(
        "cargo",
        &[
            "check",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--bins",
            "--locked",
        ],
        &[
            ("RUSTFLAGS", "-D warnings"),
            ("CARGO_TARGET_DIR", &fuzz_target.to_string_lossy()),
        ],
    )
}

/// The tests: `cargo test --workspace --locked`, or `cargo test --locked ARGS`. First the static
/// check that no tracked file points outside the repository for test data; then, where this
/// machine allows it, the run itself cannot see the shared directory beside the repository.
fn test(extra: &[String]) -> Result<(), String> {
    if std::env::var_os(postgres::ENV).is_some() {
        return test_with(extra, &[]);
    }
    match postgres::Cluster::start() {
        Ok(pg) => test_with(extra, &[(postgres::ENV, pg.url.as_str())]),
        Err(e) => {
            eprintln!("xtask test: no PostgreSQL, the fleet tests will be skipped ({e})");
            test_with(extra, &[])
        }
    }
}

/// [`test()`] with `envs` set for the test run.
fn test_with(extra: &[String], envs: &[(&str, &str)]) -> Result<(), String> {
    ensure_xmllint()?;
    self_contained()?;
    let mut args = vec!["test", "--locked"];
    if extra.is_empty() {
        args.push("--workspace");
    } else {
        args.extend(extra.iter().map(String::as_str));
    }
    match shared_to_hide() {
        Ok(shared) => {
            let shared_s = shared.to_string_lossy().into_owned();
            let mut hidden = vec![
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                HIDE_AND_EXEC,
                "sh",
                shared_s.as_str(),
                "cargo",
            ];
            hidden.extend(&args);
            run_env("unshare", &hidden, envs)?;
            eprintln!(
                "xtask test: the tests ran with {} hidden (an empty read-only tmpfs over it, in a \
                 private mount namespace): they need nothing outside the repository",
                shared.display()
            );
            Ok(())
        }
        Err(why) => {
            eprintln!(
                "xtask test: not hiding the shared reference directory ({why}); the static check \
                 above is the proof that no test reads it"
            );
            run_env("cargo", &args, envs)
        }
    }
}

/// Run by `unshare --mount` (a private mount namespace, so the mount is seen by this process tree
/// only and disappears with it): `$1` is the directory to hide, the rest the command to run.
const HIDE_AND_EXEC: &str =
    r#"mount -t tmpfs -o ro,size=1m,mode=0555 xtask-hidden "$1" && shift && exec "$@""#;

/// The shared reference directory beside the repository, when it exists and this machine can
/// hide it (Linux, root, `unshare` from util-linux, and mounting allowed: some containers refuse
/// even root); otherwise why not.
fn shared_to_hide() -> Result<PathBuf, String> {
    if !cfg!(target_os = "linux") {
        return Err("not Linux".into());
    }
    let shared = root()
        .parent()
        .map(|p| p.join("shared"))
        .ok_or("the repository has no parent directory")?;
    if !shared.is_dir() {
        return Err(format!("{} does not exist", shared.display()));
    }
    // The effective uid, from the second field of /proc/self/status's `Uid:` line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        return Err("not running as root, which mounting needs".into());
    }
    if !have("unshare", &["--version"]) {
        return Err("unshare (util-linux) is not installed".into());
    }
    // A dry run of the same mount, so a machine that forbids it falls back instead of failing.
    let shared_s = shared.to_string_lossy();
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .args([HIDE_AND_EXEC, "sh", &shared_s, "true"])
        .output()
        .map_err(|e| format!("unshare could not start: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "mounting over it in a private namespace failed: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    Ok(shared)
}

/// The static half of the proof, run on every machine: no tracked file may name the shared
/// reference directory beside the repository (a relative path climbing into it, or its absolute
/// path on the build machines), because tests must read fixtures from `testdata/` only.
/// Exempt: Markdown (history and provenance notes such as `testdata/reference/README.md` may
/// name where the copies came from; documentation cannot make a test read anything) and
/// `.ci/run` (its header describes the CI machine). The pattern is written so that this file
/// does not match itself. Outside a git checkout the files on disk are searched instead.
fn self_contained() -> Result<(), String> {
    const PATTERN: &str = r"\.\./shared|/work/share[d]";
    let out = Command::new("git")
        .args(["grep", "-n", "-I", "-E", PATTERN, "--", "."])
        .args([":(exclude)*.md", ":(exclude).ci/run"])
        .current_dir(root())
        .output();
    let hits = match out {
        Ok(o) if o.status.code() == Some(0) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) if o.status.code() == Some(1) && o.stderr.is_empty() => String::new(),
        _ => {
            eprintln!("xtask test: git grep unavailable here: searching the files on disk");
            let mut hits = Vec::new();
            search_tree(&root(), &mut hits)?;
            hits.join("\n")
        }
    };
    if hits.is_empty() {
        eprintln!("xtask test: no tracked file points outside the repository for test data");
        Ok(())
    } else {
        Err(format!(
            "these lines point at the shared reference directory outside the repository; \
             copy the fixture into testdata/reference/ and read it from there:\n{hits}"
        ))
    }
}

/// `self_contained` without git: every file under `dir` but build output, `.git` and Markdown.
fn search_tree(dir: &Path, hits: &mut Vec<String>) -> Result<(), String> {
    // Assembled, like PATTERN, so that this file does not match itself.
    const SHARED: &str = "shared";
    let needles = [format!("../{SHARED}"), format!("/work/{SHARED}")];
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let skip = name == ".git"
                || name.starts_with("target")
                || matches!(name.as_str(), "ci-out" | "m365mail-out" | "__pycache__");
            if !skip {
                search_tree(&path, hits)?;
            }
            continue;
        }
        if name.ends_with(".md") || path.ends_with(".ci/run") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if needles
            .iter()
            .any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
        {
            hits.push(path.display().to_string());
        }
    }
    Ok(())
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

/// The fleet tests run against a real PostgreSQL: Debian's `postgresql` when none is found
/// (unless `M365MAIL_TEST_POSTGRES` names a server already).
fn ensure_postgres() -> Result<(), String> {
    if std::env::var_os(postgres::ENV).is_some() || postgres::installed() {
        return Ok(());
    }
    if have("apt-get", &["--version"]) {
        eprintln!("PostgreSQL is missing: installing Debian's postgresql");
        run("apt-get", &["update", "-qq"])?;
        return run_env(
            "apt-get",
            &["install", "-y", "-qq", "postgresql"],
            &[("DEBIAN_FRONTEND", "noninteractive")],
        );
    }
    Err(postgres::INSTALL.into())
}

/// The real-client checks (`scripts/realclients/`): `names` of them, or all when empty.
fn realclients(names: &[String]) -> Result<(), String> {
    const CHECKS: [&str; 3] = ["exchangelib", "graph-sdk", "msal"];
    if let Some(bad) = names.iter().find(|n| !CHECKS.contains(&n.as_str())) {
        return Err(format!(
            "realclients: unknown check {bad:?} (one of {})",
            CHECKS.join(", ")
        ));
    }
    let script = root().join("scripts/realclients/run.sh");
    if !script.exists() {
        return Err(format!("{} is missing", script.display()));
    }
    ensure_python_venv()?;
    let mut args = vec![script.to_string_lossy().into_owned()];
    args.extend(names.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("bash", &args)
}

/// The real-client checks make a venv: Debian splits `venv` (with `ensurepip`) off python3.
fn ensure_python_venv() -> Result<(), String> {
    if have("python3", &["-c", "import ensurepip, venv"]) {
        return Ok(());
    }
    if have("apt-get", &["--version"]) {
        eprintln!("python3's venv is missing: installing Debian's python3-venv");
        run("apt-get", &["update", "-qq"])?;
        return run_env(
            "apt-get",
            &["install", "-y", "-qq", "python3", "python3-venv"],
            &[("DEBIAN_FRONTEND", "noninteractive")],
        );
    }
    Err("the real-client checks need Python 3 with venv: install python3-venv".into())
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
