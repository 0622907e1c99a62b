//! `m365-bench ledger-memory`: the local ledger's peak memory as the count of handled messages
//! grows (issue #17: it must stay flat). Each size runs in a child process of its own
//! (`ledger-fill`), measured by rusage, so that one size's memory does not carry into the next.

use std::path::Path;
use std::time::Instant;

use handler::{Entry, Ledger};

use crate::usage;

/// Fills a ledger at `path` (or one in memory) with `entries` messages, each handled then
/// acknowledged, 1,000 per write as the pipeline's acknowledgement chunks do; returns a JSON
/// line of what it holds.
pub fn fill(path: &Path, entries: usize, in_memory: bool) -> Result<String, String> {
    let ledger = if in_memory {
        Ledger::in_memory()
    } else {
        Ledger::open(path).map_err(|e| e.to_string())?
    };
    let start = Instant::now();
    let mut i = 0;
    while i < entries {
        let end = (i + 1000).min(entries);
        // A key as long as a Graph immutable id's.
        let keys: Vec<String> = (i..end)
            .map(|n| format!("helpdesk|AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A{n:0>110}"))
            .collect();
        let handled: Vec<(String, Entry)> = keys
            .iter()
            .map(|k| {
                let project = Some("DESK".to_owned());
                (k.clone(), Entry::Handled { project })
            })
            .collect();
        ledger.append_many(&handled).map_err(|e| e.to_string())?;
        let acked: Vec<(String, Entry)> =
            keys.into_iter().map(|k| (k, Entry::Acknowledged)).collect();
        ledger.append_many(&acked).map_err(|e| e.to_string())?;
        i = end;
    }
    let seconds = start.elapsed().as_secs_f64();
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut index = path.as_os_str().to_owned();
    index.push(".acked.redb");
    Ok(serde_json::json!({
        "entries": entries,
        "keys": ledger.len(),
        "in_memory_records": ledger.records().len(),
        "file_bytes": size(path),
        "index_bytes": size(Path::new(&index)),
        "seconds": seconds,
    })
    .to_string())
}

/// Runs [`fill`] for each size in a child process and prints its peak RSS.
pub fn memory(sizes: &[usize], in_memory: bool) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = exe.to_string_lossy().into_owned();
    println!("| messages | peak RSS (MiB) | wall (s) | records in memory | ledger file | index |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let dir = tempfile_dir()?;
        let path = dir.join("ledger.jsonl");
        let out = dir.join("fill.json");
        let mut args = vec![
            "ledger-fill".to_owned(),
            "--path".to_owned(),
            path.display().to_string(),
            "--entries".to_owned(),
            n.to_string(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        if in_memory {
            args.push("--in-memory".to_owned());
        }
        let u = usage::measure(&exe, &args)?;
        if u.exit_code != Some(0) {
            return Err(format!("ledger-fill {n} failed ({:?})", u.exit_code));
        }
        let filled: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))?,
        )
        .map_err(|e| e.to_string())?;
        println!(
            "| {n} | {:.1} | {:.1} | {} | {} KiB | {} KiB |",
            u.max_rss_kib as f64 / 1024.0,
            u.wall_seconds,
            filled["in_memory_records"],
            filled["file_bytes"].as_u64().unwrap_or(0) / 1024,
            filled["index_bytes"].as_u64().unwrap_or(0) / 1024,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "m365-bench-ledger-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
