//! Killed and restarted mid-batch: every message handled exactly once.

use std::process::{Command, Stdio};
use std::time::Duration;

use sandbox::{Sandbox, Seed};

use crate::support::{BIN, assert_success, config, records};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_mid_batch_every_message_is_handled_exactly_once() {
    const N: usize = 300;
    const KILLS: usize = 20;
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    let admin = sb.admin();
    // The demo seed delivers two messages of its own.
    for i in 0..N - 2 {
        let to = if i % 3 == 0 {
            "billing@contoso.example"
        } else {
            "helpdesk@contoso.example"
        };
        let mime = format!(
            "From: c{i}@fabrikam.example\r\nTo: {to}\r\nSubject: crash test {i}\r\n\
             Message-ID: <crash-{i}@fabrikam.example>\r\n\r\nbody {i}\r\n"
        );
        admin.inject_mime(to, &mime).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let hook = test_support::webhook::Receiver::start().await.unwrap();
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, config(&sb, &out, hook.url())).unwrap();

    // Kill the handler mid-run, as a crash would: each time after it has handed over a few
    // more messages (a fixed sequence, so the test is reproducible whatever the machine's speed).
    let mut kills = 0;
    for i in 0..KILLS {
        let mut child = Command::new(BIN)
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let target = hook.delivered() as u32 + 1 + (i as u32 * 5) % 7;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if hook.delivered() as u32 >= target {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = child.wait();
    }
    // Then let it finish.
    let status = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            Command::new(BIN)
                .args(["run", "--once", "--config"])
                .arg(&cfg)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_success(&status);
    assert!(
        kills >= KILLS / 2,
        "only {kills} runs were killed mid-flight"
    );

    // Nothing lost, nothing written twice.
    let seen = records(&out);
    assert_eq!(seen.len(), N, "messages with a record: {}", seen.len());
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    // All acknowledged: nothing waits in the inbox.
    let waiting = Command::new(BIN)
        .args(["ping", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&waiting.stdout).unwrap();
    assert_eq!(ping[0]["waiting"], 0, "{ping}");
    // Every message reached the webhook; a repeat is possible only for a message in flight at
    // a kill (between the webhook's answer and the ledger's record), and carries the same
    // Idempotency-Key so the receiver can drop it.
    let (distinct, repeats) = {
        let d = hook.count_by_key();
        (d.len(), d.values().map(|n| n - 1).sum::<u32>())
    };
    assert_eq!(distinct, N);
    assert!(
        repeats as usize <= kills * 4,
        "{repeats} repeats for {kills} kills"
    );
    eprintln!(
        "{kills} kills, {repeats} webhook repeats (same Idempotency-Key), {N} messages, 0 lost, 0 written twice"
    );
    sb.shutdown().await;
}
