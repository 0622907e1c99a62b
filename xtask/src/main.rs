//! The project's automation, run as `cargo xtask <command>`.
//!
//! - `cargo xtask ci`: exactly what CI runs — fmt check, clippy `--all-targets -D warnings`,
//!   the tests, rustdoc with `-D warnings`, `cargo deny check`, and the real-client check
//!   (Python's exchangelib against the standalone sandbox). It installs the tools it needs that
//!   are missing (cargo-deny from crates.io, xmllint from Debian) so that it works on a fresh
//!   machine.
//! - `cargo xtask test`: only the tests (the README's quick loop).
//! - `cargo xtask exchangelib`: only the real-client check.
//!
//! xtask has no dependencies on purpose: it builds in a second and cannot break with them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci           everything CI runs: fmt, clippy, tests, rustdoc, cargo deny, exchangelib check
  test         the workspace tests
  lint         fmt check, clippy --all-targets -D warnings, rustdoc -D warnings
  deny         cargo deny check (installs cargo-deny if missing)
  exchangelib  run Python's exchangelib against the standalone sandbox
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
        "deny" => deny(),
        "exchangelib" => exchangelib(),
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
    deny()?;
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

fn deny() -> Result<(), String> {
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
    run("cargo", &["deny", "--all-features", "check"])
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
