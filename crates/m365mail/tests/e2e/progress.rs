//! The progress bar: on a terminal only, never in JSON or to a pipe.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{BIN, deliver_numbered, large_mailbox, records, write_folder_config};

/// Runs `args` under `script`, which gives the command a terminal (a pty) for stdout and stderr
/// as a person's shell would; returns everything the terminal showed. `None` (after saying
/// why) when `script` (util-linux) is missing and `CI` is not set.
fn on_a_terminal(args: &[&str]) -> Option<(bool, String)> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(script) = script else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but `script` (util-linux) is missing"
        );
        eprintln!("SKIPPED terminal check: `script` (util-linux) not found");
        return None;
    };
    let command = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Some((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_mailbox_drains_with_a_progress_bar_on_a_terminal_only() {
    const N: usize = 60;
    let sb = large_mailbox(N).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| text);
    let cfg_s = cfg.display().to_string();

    let terminal =
        tokio::task::spawn_blocking(move || on_a_terminal(&["run", "--once", "--config", &cfg_s]))
            .await
            .unwrap();
    let Some((ok, shown)) = terminal else {
        sb.shutdown().await;
        return;
    };
    assert!(ok, "{shown}");
    // The bar (batch_size 10, so 62 waiting is a large mailbox): the source's name, the bar
    // and the count of the announced total.
    let total = format!("/{}", N + 2);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("helpdesk [") && l.contains(&total)),
        "no progress bar in:\n{shown}"
    );
    assert!(shown.contains("handled:"), "{shown}");
    assert_eq!(records(&out).len(), N + 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_and_output_to_a_pipe_carry_no_progress_bar() {
    const N: usize = 40;
    let sb = large_mailbox(N).await;
    let (_dir, _out, cfg) = write_folder_config(&sb, |text| text);

    // --json on a terminal: everything the terminal shows is the JSON document.
    let cfg_s = cfg.display().to_string();
    let shown = tokio::task::spawn_blocking(move || {
        on_a_terminal(&["run", "--once", "--json", "--config", &cfg_s])
    })
    .await
    .unwrap();
    if let Some((ok, shown)) = shown {
        assert!(ok, "{shown}");
        let v: serde_json::Value = serde_json::from_str(shown.trim())
            .unwrap_or_else(|e| panic!("not clean JSON ({e}):\n{shown:?}"));
        assert_eq!(v["sources"][0]["handled"], N as u64 + 2);
    }

    // Human output to a pipe (a log file, a service manager): no bar either.
    deliver_numbered(&sb, "helpdesk@contoso.example", "d", "more", N);
    let output = Command::new(BIN)
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains(&format!("handled:   {N}")), "{stdout}");
    assert!(!stderr.contains("helpdesk ["), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
    sb.shutdown().await;
}
