//! The run summary, for people and for scripts.

use std::fmt::Write;
use std::path::Path;

use handler::Summary;

/// The summary as text a person reads.
pub fn summary_text(summary: &Summary, out: &Path) -> String {
    let mut s = String::new();
    for src in &summary.sources {
        let _ = writeln!(s, "\n{}: {}", src.name, src.status);
        if let Some(r) = &src.reason {
            let since = src
                .offline_since
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            let _ = writeln!(s, "  reason:    {r}");
            if !since.is_empty() {
                let _ = writeln!(s, "  offline since {since}");
            }
        }
        if let Some(w) = src.waiting_at_start {
            let _ = writeln!(s, "  waiting:   {w}");
        }
        let _ = writeln!(
            s,
            "  handled:   {}{}",
            src.handled,
            if src.recovered > 0 {
                format!(" (+{} finished after a restart)", src.recovered)
            } else {
                String::new()
            }
        );
        for (project, n) in &src.per_project {
            let _ = writeln!(s, "    {project:<12} {n}");
        }
        if !src.notifications.is_empty() || src.notifications_skipped > 0 {
            let _ = writeln!(
                s,
                "  notifications: {} sent, {} not sent (robots, lists, our own or system addresses, unverified Reply-To, the per-recipient limit)",
                src.notifications.len(),
                src.notifications_skipped
            );
            for n in &src.notifications {
                let _ = writeln!(
                    s,
                    "    to {:<28} from {}{}",
                    n.to,
                    n.from,
                    n.reply_to
                        .as_ref()
                        .map(|r| format!(", Reply-To {r}"))
                        .unwrap_or_default()
                );
            }
        }
        if src.parked > 0 {
            let _ = writeln!(s, "  parked:    {} (poison folder)", src.parked);
        }
        if src.probes > 0 {
            let _ = writeln!(
                s,
                "  probes:    {} (m365mail doctor's test mail: not routed, marked read)",
                src.probes
            );
        }
        if src.failures > 0 {
            let _ = writeln!(s, "  failures:  {} (will be retried)", src.failures);
        }
        if let Some(t) = src.throttled_until {
            let _ = writeln!(
                s,
                "  throttled: the source asked for a pause until {t}; its other mail waits"
            );
        }
        for e in src.errors.iter().take(10) {
            let _ = writeln!(s, "  error:     {e}");
        }
        if src.errors.len() > 10 {
            let _ = writeln!(s, "  ... and {} more errors", src.errors.len() - 10);
        }
    }
    let _ = writeln!(
        s,
        "\nRouted messages and their routing records are in {}/<project>/",
        out.display()
    );
    s
}

/// The summary as JSON.
pub fn summary_json(summary: &Summary, out: &Path) -> serde_json::Value {
    serde_json::json!({
        "output_dir": out.display().to_string(),
        "sources": summary.sources.iter().map(|s| serde_json::json!({
            "name": s.name,
            "status": s.status.to_string(),
            "reason": s.reason,
            "offline_since": s.offline_since.map(|t| t.unix_timestamp()),
            "waiting_at_start": s.waiting_at_start,
            "handled": s.handled,
            "recovered": s.recovered,
            "per_project": s.per_project,
            "notifications": s.notifications.iter().map(|n| serde_json::json!({
                "to": n.to, "from": n.from, "reply_to": n.reply_to, "why": n.why,
            })).collect::<Vec<_>>(),
            "notifications_skipped": s.notifications_skipped,
            "parked": s.parked,
            "probes": s.probes,
            "failures": s.failures,
            "errors": s.errors,
            "throttled_until": s.throttled_until.map(|t| t.unix_timestamp()),
        })).collect::<Vec<_>>(),
    })
}
