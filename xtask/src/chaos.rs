//! `cargo xtask chaos [--messages N] [--kills K] [--seed S] [other m365-chaos flags]`: builds
//! the release `m365mail` and `m365-chaos` binaries and runs the chaos run (tools/chaos): the
//! handler killed with SIGKILL at random moments and restarted while the in-process sandbox
//! injects faults, expires tokens, revokes a refresh token and withdraws consent. Fails on any
//! lost, duplicated or unacknowledged message. `--small` is the quick run for CI: 500 messages,
//! 5 kills, every fault kind. `--debug` builds and runs the dev-profile binaries instead, which
//! `cargo test` has mostly built already. `--prebuilt` (with `--debug`) skips the build and runs
//! the binaries `cargo test --workspace` has just built (both have integration tests, so the test
//! build makes them): CI runs `--small --debug --prebuilt` right after the tests, because a
//! `cargo build -p ...` resolves features differently from the test build and would compile a
//! second copy of much of the dependency tree, which costs minutes and gigabytes of disk.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run};

/// The single-process chaos run (`--fleet` goes to `fleet_chaos::fleet`, from `main`).
pub(crate) fn chaos(args: &[String]) -> Result<(), String> {
    let mut pass: Vec<String> = Vec::new();
    let mut debug = false;
    let mut prebuilt = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--debug" => debug = true,
            "--push" => pass.push(a.clone()),
            "--prebuilt" => prebuilt = true,
            "--small" => pass.extend(
                ["--messages", "500", "--kills", "5", "--expire-every", "5"].map(String::from),
            ),
            "--messages" | "--kills" | "--seed" | "--work-dir" | "--fault-scale" | "--backlog"
            | "--expire-every" | "--timeout" => {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                pass.push(a.clone());
                pass.push(v.clone());
            }
            other => {
                return Err(format!(
                    "chaos: unknown flag {other:?} (--messages N --kills K --seed S --small --push --debug --prebuilt \
                     --work-dir DIR --fault-scale F --backlog N --expire-every SECS --timeout SECS)"
                ));
            }
        }
    }
    let out = binaries(debug, prebuilt)?;
    let bin = out.join("m365mail");
    let chaos = out.join("m365-chaos");
    eprintln!(
        "$ {} --bin {} {}",
        chaos.display(),
        bin.display(),
        pass.join(" ")
    );
    let status = Command::new(&chaos)
        .arg("--bin")
        .arg(&bin)
        .args(&pass)
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not start {}: {e}", chaos.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the chaos run failed ({status})"))
    }
}

/// Builds the `m365mail` and `m365-chaos` binaries (release, or dev with `debug`; nothing with
/// `prebuilt`, which needs `debug`) and returns the folder they are in.
pub(crate) fn binaries(debug: bool, prebuilt: bool) -> Result<PathBuf, String> {
    let (profile, dir) = if debug {
        ("dev", "debug")
    } else {
        ("release", "release")
    };
    if prebuilt && !debug {
        return Err("chaos: --prebuilt runs the binaries `cargo test` built: add --debug".into());
    }
    if !prebuilt {
        run(
            "cargo",
            &[
                "build",
                "--profile",
                profile,
                "--locked",
                "-p",
                "m365mail",
                "-p",
                "m365-chaos",
            ],
        )?;
    }
    Ok(crate::bench::target_dir().join(dir))
}
