//! The standalone sandbox as a child process of the driver, driven through its HTTP admin API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::mail::{MixPlan, SizeClass, bench_seed_toml, message};

/// The demo tenant's id.
pub const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// The demo app's client id.
pub const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
/// The demo app's secret; public (it is in the demo seed) and valid only in the sandbox.
pub const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";

/// A running sandbox process.
pub struct SandboxProc {
    child: Child,
    /// `https://localhost:PORT`.
    pub base_url: String,
    /// The CA certificate the sandbox wrote.
    pub ca: PathBuf,
    http: reqwest::Client,
}

/// What [`SandboxProc::seed`] delivered.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedStats {
    /// Messages delivered.
    pub messages: u64,
    /// Their MIME bytes.
    pub bytes: u64,
    /// Of which HTML with inline images.
    pub html: u64,
    /// Of which with a large attachment.
    pub large: u64,
}

impl SandboxProc {
    /// Starts `bin --tls` on free ports with the benchmark seed, in `dir`.
    pub fn start(bin: &Path, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let seed = dir.join("bench-seed.toml");
        std::fs::write(&seed, bench_seed_toml()).map_err(|e| format!("{}: {e}", seed.display()))?;
        let ca = dir.join("sandbox-ca.pem");
        let _ = std::fs::remove_file(&ca);
        let log = std::fs::File::create(dir.join("sandbox.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .args(["--port", "0", "--smtp-port", "0", "--tls", "--seed"])
            .arg(&seed)
            .arg("--ca-out")
            .arg(&ca)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        // Keep draining stdout so the sandbox never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let Some(base_url) = first
            .strip_prefix("sandbox listening on ")
            .map(str::to_owned)
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the sandbox did not start (first line {first:?}; see {})",
                dir.join("sandbox.log").display()
            ));
        };
        let http = crate::ingest::http_client(Some(&ca))?;
        Ok(SandboxProc {
            child,
            base_url,
            ca,
            http,
        })
    }

    /// The sandbox's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One admin command.
    pub async fn admin(&self, cmd: &Value) -> Result<Value, String> {
        admin(&self.http, &self.base_url, cmd).await
    }

    /// Turns the request budget off (concurrency limits stay as Exchange Online's).
    pub async fn unlimited_budget(&self) -> Result<(), String> {
        self.admin(&json!({"op": "set_throttle", "config": {"budget": null}}))
            .await
            .map(|_| ())
    }

    /// Delivers messages `0..n` of the benchmark mailbox, 4 at a time.
    pub async fn seed(&self, n: usize, plan: MixPlan, seed: u64) -> Result<SeedStats, String> {
        let next = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let html = Arc::new(AtomicU64::new(0));
        let large = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (next, bytes, html, large) =
                (next.clone(), bytes.clone(), html.clone(), large.clone());
            let http = self.http.clone();
            let base = self.base_url.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), String>(());
                    }
                    let m = message(seed, i, plan);
                    bytes.fetch_add(m.mime.len() as u64, Ordering::Relaxed);
                    match m.class {
                        SizeClass::Html => html.fetch_add(1, Ordering::Relaxed),
                        SizeClass::Large => large.fetch_add(1, Ordering::Relaxed),
                        SizeClass::Text => 0,
                    };
                    let from = format!("customer{i}@fabrikam.example");
                    let out = admin(
                        &http,
                        &base,
                        &json!({"op": "inject_mime", "from": from, "to": [m.catch], "mime": m.mime}),
                    )
                    .await?;
                    let delivered = out["delivered"].as_array().map_or(0, Vec::len);
                    if delivered != 1 {
                        return Err(format!("message {i} to {} was not delivered: {out}", m.catch));
                    }
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(SeedStats {
            messages: n as u64,
            bytes: bytes.load(Ordering::Relaxed),
            html: html.load(Ordering::Relaxed),
            large: large.load(Ordering::Relaxed),
        })
    }

    /// `GET /_sandbox/requests`.
    pub async fn requests(&self) -> Result<Value, String> {
        let r = self
            .http
            .get(format!("{}/_sandbox/requests", self.base_url))
            .send()
            .await
            .map_err(|e| format!("request log: {e}"))?;
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| format!("request log: {e}"))
    }

    /// Clears the request log.
    pub async fn clear_requests(&self) -> Result<(), String> {
        self.admin(&json!({"op": "clear_request_log"}))
            .await
            .map(|_| ())
    }

    /// Peak resident memory of the sandbox so far (VmHWM), KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops the sandbox (SIGKILL to this child only).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn admin(http: &reqwest::Client, base: &str, cmd: &Value) -> Result<Value, String> {
    let r = http
        .post(format!("{base}/_sandbox/admin"))
        .header("content-type", "application/json")
        .body(cmd.to_string())
        .send()
        .await
        .map_err(|e| format!("admin {}: {e}", cmd["op"]))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("admin {}: {status} {v}", cmd["op"]));
    }
    Ok(v)
}

/// Endpoint counts from a `GET /_sandbox/requests` answer: `METHOD path` (EWS: `... Operation`)
/// to count, the token requests, and the non-2xx answers.
pub fn summarize_requests(v: &Value) -> (std::collections::BTreeMap<String, u64>, u64, u64) {
    let mut out = std::collections::BTreeMap::new();
    let mut non_success = 0;
    let empty = Vec::new();
    let ops = v["operations"].as_array().unwrap_or(&empty);
    for e in v["entries"].as_array().unwrap_or(&empty) {
        let path = e["path"].as_str().unwrap_or("?");
        let count = e["count"].as_u64().unwrap_or(0);
        let status = e["status"].as_u64().unwrap_or(0);
        if !(200..300).contains(&status) {
            non_success += count;
        }
        // EWS rows are shown split by operation below.
        if path.eq_ignore_ascii_case("/EWS/Exchange.asmx") && !ops.is_empty() {
            continue;
        }
        let key = format!("{} {path}", e["method"].as_str().unwrap_or("?"));
        *out.entry(key).or_insert(0) += count;
    }
    for o in ops {
        let key = format!(
            "{} {} {}",
            o["method"].as_str().unwrap_or("?"),
            o["path"].as_str().unwrap_or("?"),
            o["operation"].as_str().unwrap_or("?")
        );
        *out.entry(key).or_insert(0) += o["count"].as_u64().unwrap_or(0);
    }
    let tokens = v["token_requests"].as_u64().unwrap_or(0);
    (out, tokens, non_success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_summary_splits_ews_and_counts_tokens_and_failures() {
        let v = json!({
            "total": 9, "token_requests": 1,
            "entries": [
                {"method": "POST", "path": "/{tenant}/oauth2/v2.0/token", "status": 200, "count": 1},
                {"method": "POST", "path": "/EWS/Exchange.asmx", "status": 200, "count": 5},
                {"method": "GET", "path": "/v1.0/users/{user}/messages", "status": 429, "count": 3}
            ],
            "operations": [
                {"method": "POST", "path": "/EWS/Exchange.asmx", "operation": "FindItem", "status": 200, "count": 2},
                {"method": "POST", "path": "/EWS/Exchange.asmx", "operation": "GetItem", "status": 200, "count": 3}
            ]
        });
        let (by, tokens, bad) = summarize_requests(&v);
        assert_eq!(tokens, 1);
        assert_eq!(bad, 3);
        assert_eq!(by["POST /EWS/Exchange.asmx FindItem"], 2);
        assert_eq!(by["POST /EWS/Exchange.asmx GetItem"], 3);
        assert!(!by.contains_key("POST /EWS/Exchange.asmx"));
        assert_eq!(by["GET /v1.0/users/{user}/messages"], 3);
    }
}
