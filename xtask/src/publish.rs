//! `cargo xtask publish-check` and `cargo xtask semver`: what a release to crates.io needs, checked
//! on every CI run instead of on release day.
//!
//! * [`publish_check`] runs `cargo publish --workspace --dry-run`: every package without
//!   `publish = false` is packaged as crates.io would receive it and built from that package, in
//!   dependency order, each against the packages of the others (Cargo's local overlay of the
//!   registry), so a file left out of a package, a path dependency without a version or a
//!   missing licence or description fails here. Nothing is uploaded.
//! * [`semver`] holds each published library's public API to its baseline with
//!   `cargo semver-checks`: the baseline is the commit named in `api-baseline/rev` (the API of
//!   the last release; until the first upload, of 0.1.0). A change the baseline's version does
//!   not allow (removing or changing a public item under the same version) fails, with the
//!   lint's explanation; a deliberate break bumps the version (and CHANGELOG.md) or, before the
//!   first release, moves the baseline.

use std::path::Path;

use crate::{have, root, run, run_env};

/// cargo-semver-checks' version, pinned like cargo-deny's: a new release may add lints.
const SEMVER_CHECKS_VERSION: &str = "0.51.0";

/// The file that names the baseline commit, relative to the workspace root.
const BASELINE_FILE: &str = "api-baseline/rev";

/// `cargo publish --workspace --dry-run`. The verification builds each package in a workspace
/// of its own, with a fresh resolution of its dependencies (the newest versions its manifest
/// allows, as a user's first build would get) and the default dev profile; passing this
/// workspace's `opt-level = 1` for dependencies made it slower (8.9 against 4.6 CPU-minutes
/// here), since nothing is shared with the test build either way.
pub(crate) fn publish_check() -> Result<(), String> {
    forget_unpacked_overlays();
    // A build directory of its own, empty at the start and removed at the end: Cargo takes a
    // registry package's build for immutable by name and version, so in the shared target
    // directory a second run built `m365mail` against the first run's `m365mail-graph` 0.1.0.
    let dir = crate::bench::target_dir().join("publish-check");
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_string_lossy().into_owned();
    let result = run_env(
        "cargo",
        &[
            "publish",
            "--workspace",
            "--dry-run",
            "--locked",
            // A developer's uncommitted work is packaged as it is; CI's clone is clean anyway.
            "--allow-dirty",
        ],
        &[("CARGO_TARGET_DIR", dir_s.as_str())],
    );
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Removes the sources Cargo unpacked from earlier dry runs' local registry overlays
/// (`$CARGO_HOME/registry/src/-<hash>`: a registry without a host). Cargo keys them by the
/// overlay's path and the package's name and version only, so a second dry run in the same
/// checkout would build on the first run's sources of `m365mail-graph` 0.1.0, without what was
/// added since. crates.io's unpacked sources are not touched.
fn forget_unpacked_overlays() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&src) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('-') {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The baseline commit: the first line of [`BASELINE_FILE`] that is not blank or a comment.
fn baseline(root: &Path) -> Result<String, String> {
    let path = root.join(BASELINE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rev = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| format!("{}: names no commit", path.display()))?;
    if rev.len() != 40 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{}: {rev:?} is not a full commit hash (40 hex digits)",
            path.display()
        ));
    }
    Ok(rev.to_owned())
}

/// `cargo semver-checks` over every published library against the baseline commit.
pub(crate) fn semver() -> Result<(), String> {
    let root = root();
    let rev = baseline(&root)?;
    let known = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{rev}^{{commit}}")])
        .current_dir(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !known {
        return Err(format!(
            "the API baseline {rev} ({BASELINE_FILE}) is not in this clone's history: a shallow \
             clone? `git fetch --unshallow` and run again"
        ));
    }
    if !have("cargo-semver-checks", &["--version"]) {
        run(
            "cargo",
            &[
                "install",
                "--locked",
                "cargo-semver-checks",
                "--version",
                SEMVER_CHECKS_VERSION,
            ],
        )?;
    }
    // One package at a time, removing semver-checks' build directory after each: it builds
    // every package's rustdoc JSON twice (baseline and current) in a workspace of its own, 7 GB
    // for the eleven together, and a CI machine has run out of disk before (stop 14).
    let scratch = crate::bench::target_dir().join("semver-checks");
    let packages = published(&root)?;
    for package in &packages {
        // semver-checks reads rustdoc's JSON output, which stable toolchains give only to a
        // caller that says it knows the format is unstable; the tool pins the format versions
        // it reads.
        let result = run_env(
            "cargo",
            &[
                "semver-checks",
                "check-release",
                "--package",
                package,
                "--baseline-rev",
                &rev,
            ],
            &[("RUSTC_BOOTSTRAP", "1")],
        );
        let _ = std::fs::remove_dir_all(&scratch);
        result?;
    }
    eprintln!(
        "xtask semver: {} published libraries hold the API of {rev}",
        packages.len()
    );
    Ok(())
}

/// The workspace's packages that are published: those whose manifest does not say
/// `publish = false`, by `cargo metadata`'s `publish` field (`null`: any registry).
fn published(root: &Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata's output: {e}"))?;
    let mut names: Vec<String> = meta["packages"]
        .as_array()
        .ok_or("cargo metadata's output has no packages")?
        .iter()
        .filter(|p| p["publish"].is_null())
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err("no published package in the workspace".into());
    }
    Ok(names)
}
