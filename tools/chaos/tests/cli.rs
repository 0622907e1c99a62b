//! The `m365-chaos` command line, run as a child process.
//!
//! Besides checking the refusals below, this test makes `cargo test --workspace` build the
//! `m365-chaos` binary with the test build's features, so `cargo xtask ci` can run the small
//! chaos run on those very binaries instead of building the workspace a second time.

use std::process::Command;

fn chaos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_m365-chaos"))
}

#[test]
fn a_missing_handler_binary_is_a_setup_error_that_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-m365mail");
    let out = chaos()
        .arg("--bin")
        .arg(&missing)
        .args(["--messages", "10", "--kills", "1"])
        .output()
        .expect("run m365-chaos");
    assert_eq!(out.status.code(), Some(2), "setup errors exit 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no m365mail binary at") && err.contains("no-such-m365mail"),
        "stderr: {err}"
    );
}

#[test]
fn an_unknown_flag_is_refused_before_anything_starts() {
    let out = chaos()
        .arg("--kill-everything")
        .output()
        .expect("run m365-chaos");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kill-everything"), "stderr: {err}");
}
