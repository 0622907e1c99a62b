//! The `m365mail` binary, run from an async test (its `CARGO_BIN_EXE_m365mail` path is only
//! known to the crate that builds it, so the caller passes it in).

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};

/// `bin run --once --json --config cfg`, run off the async runtime; its output, whatever it is.
pub async fn run_once(bin: &str, cfg: &Path) -> Output {
    let (bin, cfg) = (bin.to_owned(), cfg.to_path_buf());
    tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["run", "--once", "--json", "--config"])
            .arg(&cfg)
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

/// [`run_once`], which must succeed; its JSON summary.
pub async fn run_once_json(bin: &str, cfg: &Path) -> serde_json::Value {
    let output = run_once(bin, cfg).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

/// A child process that is killed (and reaped) when this is dropped, so that a test that fails
/// half-way leaves no process behind. Derefs to the [`std::process::Child`].
#[derive(Debug)]
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        // After a wait that already reaped it, both fail harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port: bound, then released, for a listener (a spawned worker's, or one
/// whose URL must be known before it starts) to take right after.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

/// Sends `sig` (`-TERM`, `-STOP`, `-CONT`, ...) to `child` through `kill(1)`; whether `kill`
/// said it did.
pub fn signal(child: &Child, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGTERM to `child`, then waits for it: how it ended (a worker that stops cleanly exits 0).
pub fn terminate(child: &mut Child) -> std::io::Result<ExitStatus> {
    if !signal(child, "-TERM") {
        return Err(std::io::Error::other(format!(
            "kill -TERM {} failed",
            child.id()
        )));
    }
    child.wait()
}
