//! The Markdown report (BENCHMARKS.md) of a run's [`Results`].

use std::fmt::Write as _;

use super::*;

pub(super) fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{x:.digits$}"))
}

pub(super) fn fmt_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

pub(super) const OURS: [(&str, &str); 2] =
    [("graph-mail", "msgraph-sdk"), ("ews-mail", "exchangelib")];

impl Results {
    fn run(&self, client: &str, n: u64) -> Option<&Run> {
        self.runs.iter().find(|r| r.client == client && r.n == n)
    }

    fn ns(&self) -> Vec<u64> {
        let mut ns: Vec<u64> = self.runs.iter().map(|r| r.n).collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    }

    /// The goals of issue 10, each with the measured value and whether it is met.
    pub fn goals(&self) -> Vec<(String, String, Option<bool>)> {
        let mut out = Vec::new();
        for n in self.ns() {
            for (ours, peer) in OURS {
                for other in ["msgraph-sdk", "exchangelib"] {
                    let _ = peer;
                    let (Some(a), Some(b)) = (self.run(ours, n), self.run(other, n)) else {
                        continue;
                    };
                    let (Some(x), Some(y)) = (a.msgs_per_sec(), b.msgs_per_sec()) else {
                        out.push((
                            format!("{ours} ≥ 10× {other} msgs/s, N={n}"),
                            "a run failed (see its row)".into(),
                            None,
                        ));
                        continue;
                    };
                    let ratio = x / y;
                    out.push((
                        format!("{ours} ≥ 10× {other} msgs/s, N={n}"),
                        format!("{ratio:.1}×"),
                        Some(ratio >= 10.0),
                    ));
                }
            }
            for (ours, _) in OURS {
                if let Some(r) = self.run(ours, n)
                    && let (Some(got), Some(min)) = (r.requests_per_1000(), r.minimum_per_1000())
                {
                    let ratio = got / min;
                    out.push((
                        format!("{ours} requests ≤ 1.25× protocol minimum, N={n}"),
                        format!("{got:.1} vs {min:.1} per 1,000 = {ratio:.2}×"),
                        Some(ratio <= 1.25),
                    ));
                }
            }
        }
        for (ours, _) in OURS {
            for r in self
                .runs
                .iter()
                .filter(|r| r.client == ours && r.failure.is_none())
            {
                out.push((
                    format!("{ours} one token request per token lifetime, N={}", r.n),
                    format!("{} token request(s)", r.token_requests),
                    Some(r.token_requests == 1),
                ));
            }
        }
        if let Some(t) = &self.tokens {
            out.push((
                format!("one token request for {} concurrent callers", t.callers),
                format!(
                    "{} request(s); {} after expiry",
                    t.token_requests, t.token_requests_after_expiry
                ),
                Some(t.token_requests == 1 && t.token_requests_after_expiry == 1),
            ));
        }
        for (ours, _) in OURS {
            if let (Some(small), Some(big)) = (self.run(ours, 10_000), self.run(ours, 100_000))
                && small.failure.is_none()
                && big.failure.is_none()
                && small.peak_rss_kib > 0
            {
                let ratio = big.peak_rss_kib as f64 / small.peak_rss_kib as f64;
                out.push((
                    format!("{ours} peak RSS at 100,000 ≤ 1.2× at 10,000"),
                    format!("{ratio:.2}×"),
                    Some(ratio <= 1.2),
                ));
            }
        }
        if let Some(c) = &self.capacity {
            for (ours, ceiling) in [
                ("graph-mail", c.graph_ceiling_msgs_per_sec),
                ("ews-mail", c.ews_ceiling_msgs_per_sec),
            ] {
                let best = self
                    .runs
                    .iter()
                    .filter(|r| r.client == ours)
                    .filter_map(Run::msgs_per_sec)
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
                if let Some(b) = best
                    && ceiling > 0.0
                {
                    let caveat = if c.failed() > 0 {
                        "; the capacity run had failed requests"
                    } else {
                        ""
                    };
                    out.push((
                        format!("{ours}: fraction of the sandbox's ceiling"),
                        format!(
                            "{:.0}% ({b:.0} of {ceiling:.0} msgs/s{caveat})",
                            100.0 * b / ceiling
                        ),
                        None,
                    ));
                }
            }
        }
        out
    }

    /// Notes that follow from the results themselves (load, what was not run, method).
    pub fn derived_notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let loads: Vec<f64> = self.runs.iter().filter_map(|r| r.load_before).collect();
        if let (Some(lo), Some(hi)) = (
            loads.iter().copied().reduce(f64::min),
            loads.iter().copied().reduce(f64::max),
        ) {
            let cores = self.machine.cores.max(1) as f64;
            let mut n = format!(
                "Load: the 1-minute load average before the jobs was {lo:.1} to {hi:.1} on {} cores \
                 (each job's value is in the mailbox notes above).",
                self.machine.cores
            );
            if hi > cores {
                n.push_str(
                    " Other processes were running on this machine during the run, so absolute \
                     rates are low and noisy; the side-by-side ratios come from the same \
                     conditions and are the comparison to read.",
                );
            }
            out.push(n);
        }
        let ns = self.ns();
        if !ns.contains(&100_000) {
            out.push(
                "Our clients were not run at N=100,000 in this report, so the memory goal (peak \
                 RSS at 100,000 within 1.2× of 10,000) is not measured here."
                    .into(),
            );
        }
        for r in self.runs.iter().filter(|r| r.failure.is_some()) {
            out.push(format!(
                "{} at N={} did not complete (see its row); its figures are left out of the ratios \
                 and goals.",
                r.client, r.n
            ));
        }
        if self.micro.is_empty() {
            out.push("Criterion micro-benchmarks were not collected in this run.".into());
        }
        out.push(
            "Throttling: the sandbox's request budget per app and mailbox (10,000 per 10 minutes) \
             is turned off for every run (`set_throttle` with `budget: null`) so a large run \
             measures the client rather than the window; the concurrency limits stay as Exchange \
             Online's (4 for Graph, 27 for EWS)."
                .into(),
        );
        out.push(
            "Every run gets a fresh sandbox process with the same deterministic mailbox (seeded \
             through the HTTP admin API's `inject_mime`); the request log is cleared after \
             seeding, so the counts are exactly the client's requests."
                .into(),
        );
        if self.capacity.is_some() {
            out.push(
                "The capacity test's load tool (wrk) runs on the same cores as the sandbox, so the \
                 ceiling is a lower bound; it uses 4 connections because the sandbox, as Exchange \
                 Online, allows 4 concurrent Graph requests per app and mailbox."
                    .into(),
            );
        }
        out
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Ingest throughput, round trips, tokens and memory of our clients (`graph-mail`, \
             `ews-mail`) and the Python peers (`msgraph-sdk`, `exchangelib`) against the same \
             standalone sandbox, in one run (issue 10). Generated by `cargo xtask bench`; the raw \
             numbers are in [bench-results.json](bench-results.json).\n"
        );
        let m = &self.machine;
        let _ = writeln!(s, "- **Date (UTC):** {}", self.date);
        let _ = writeln!(
            s,
            "- **Machine:** {} ({}), {} cores, {} MiB RAM, {}",
            m.cpu, m.kind, m.cores, m.memory_mib, m.os
        );
        let _ = writeln!(s, "- **Commands:**\n");
        let _ = writeln!(s, "```sh");
        for c in &self.commands {
            let _ = writeln!(s, "{c}");
        }
        let _ = writeln!(s, "```\n");
        let _ = writeln!(s, "## Ingest job\n");
        let _ = writeln!(
            s,
            "The job: ping, fetch every unread Inbox message with its MIME, parse it (mail-parser; \
             Python's `email` for the peers), route it by the address it was sent to, mark it \
             read. Each client runs as a child process of the driver against a freshly started and \
             seeded sandbox process (`sandbox --tls`), so the sandbox's CPU is not charged to it; \
             CPU time and peak RSS come from the child's rusage, requests from the sandbox's \
             request log.\n"
        );
        if let Some(mix) = &self.mix {
            let _ = writeln!(
                s,
                "Mailbox: N unread messages, 3/4 plain text of 1–6 KB, 1/4 HTML of 8–25 KB with 1–2 \
                 inline images (5–20 KB each), and every {}th message a 1–5 MB attachment, at most \
                 {} in all (the cap keeps the sandbox's memory sane at 100,000); addressed in \
                 rotation to the five aliases, sub-addresses (`support+printer@`, `billing+invoices@`, \
                 ...) and the primary address (plain and `+urgent`).",
                mix.large_every, mix.large_cap
            );
        }
        for n in &self.mailbox_notes {
            let _ = writeln!(s, "- {n}");
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| client | N | msgs/s | CPU ms/msg | HTTP req per 1,000 | protocol min per 1,000 | × min | token req | peak RSS MiB | routed as expected | notes |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
        for r in &self.runs {
            let ratio = match (r.requests_per_1000(), r.minimum_per_1000()) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "—".into(),
            };
            let mut notes = Vec::new();
            if let Some(f) = &r.failure {
                notes.push(format!("**failed:** {}", f.replace('|', "\\|")));
            }
            if r.non_success > 0 {
                notes.push(format!("{} non-2xx answers", r.non_success));
            }
            if r.failure.is_none() && r.fetched != r.n {
                notes.push(format!("fetched {} of {}", r.fetched, r.n));
            }
            let version = if r.version.is_empty() {
                r.client.clone()
            } else {
                r.version.clone()
            };
            let _ = writeln!(
                s,
                "| {version} | {} | {} | {} | {} | {} | {ratio} | {} | {} | {} | {} |",
                r.n,
                fmt_opt(r.msgs_per_sec(), 0),
                fmt_opt(r.cpu_ms_per_msg(), 2),
                fmt_opt(r.requests_per_1000(), 1),
                fmt_opt(r.minimum_per_1000(), 1),
                if r.failure.is_none() {
                    r.token_requests.to_string()
                } else {
                    "—".into()
                },
                if r.peak_rss_kib > 0 {
                    format!("{:.0}", r.peak_rss_kib as f64 / 1024.0)
                } else {
                    "—".into()
                },
                if r.failure.is_none() {
                    if r.routed_as_expected {
                        "yes"
                    } else {
                        "**no**"
                    }
                } else {
                    "—"
                },
                notes.join("; ")
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "msgs/s = acknowledged messages / the job's wall time as the client measured it (start-up \
             and imports excluded); CPU ms/msg = the child's user+system CPU (start-up included) / \
             messages. HTTP requests exclude token requests. Protocol minimum: Graph = {}; EWS = {}. \
             Sign-in and ping are not in the minimum.\n",
            minimum_explained(Protocol::Graph),
            minimum_explained(Protocol::Ews)
        );
        let mut ratio_rows = Vec::new();
        for n in self.ns() {
            for (ours, peer) in OURS {
                if let (Some(a), Some(b)) = (self.run(ours, n), self.run(peer, n)) {
                    let t = match (a.msgs_per_sec(), b.msgs_per_sec()) {
                        (Some(x), Some(y)) if y > 0.0 => format!("{:.1}×", x / y),
                        _ => "—".into(),
                    };
                    let c = match (a.cpu_ms_per_msg(), b.cpu_ms_per_msg()) {
                        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                        _ => "—".into(),
                    };
                    let q = match (a.requests_per_1000(), b.requests_per_1000()) {
                        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                        _ => "—".into(),
                    };
                    let m = if a.peak_rss_kib > 0 && b.peak_rss_kib > 0 && b.failure.is_none() {
                        format!("{:.2}", a.peak_rss_kib as f64 / b.peak_rss_kib as f64)
                    } else {
                        "—".into()
                    };
                    ratio_rows.push(format!("| {ours} / {peer} | {n} | {t} | {c} | {q} | {m} |"));
                }
            }
        }
        if !ratio_rows.is_empty() {
            let _ = writeln!(s, "### Ratios ours / peer (same protocol)\n");
            let _ = writeln!(
                s,
                "| pair | N | throughput | CPU per msg | requests | peak RSS |\n|---|---:|---:|---:|---:|---:|"
            );
            for r in ratio_rows {
                let _ = writeln!(s, "{r}");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "### Requests per endpoint\n");
        for r in self.runs.iter().filter(|r| !r.requests.is_empty()) {
            let parts: Vec<String> = r
                .requests
                .iter()
                .map(|(k, v)| format!("`{k}` {v}"))
                .collect();
            let _ = writeln!(s, "- {} N={}: {}", r.client, r.n, parts.join(", "));
        }
        let _ = writeln!(s);
        if let Some(c) = &self.capacity {
            let _ = writeln!(s, "## Sandbox serving capacity\n");
            let _ = writeln!(
                s,
                "{}, {} concurrent connections, against a mailbox of {} messages (the same mix).\n",
                c.tool, c.concurrency, c.mailbox_messages
            );
            let _ = writeln!(
                s,
                "| request | responses | failed (non-2xx; socket errors) | seconds | 2xx per second | latency p50 | p99 | max |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in &c.rates {
                let failed = if r.failed > 0 {
                    format!(
                        "**{}** ({}; {})",
                        r.failed,
                        r.non_2xx,
                        r.socket_errors.total()
                    )
                } else {
                    "0".into()
                };
                let lat = |f: fn(&Latency) -> f64| {
                    r.latency
                        .as_ref()
                        .map_or_else(|| "—".into(), |l| fmt_time(f(l) * 1e6))
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {failed} | {:.1} | {:.0} | {} | {} | {} |",
                    r.request,
                    r.requests,
                    r.seconds,
                    r.per_sec,
                    lat(|l| l.p50_ms),
                    lat(|l| l.p99_ms),
                    lat(|l| l.max_ms),
                );
            }
            if c.failed() > 0 {
                let _ = writeln!(
                    s,
                    "\n**The capacity run had {} failed requests** (see the table): the rates count \
                     only 2xx answers, so the ceiling below is not a clean measurement.",
                    c.failed()
                );
            }
            let _ = writeln!(
                s,
                "\nCeiling for the minimal request mix (per message: 1/{GRAPH_MAX_PAGE} list page + \
                 1/{GRAPH_MAX_BATCH} MIME $batch + 1/{GRAPH_MAX_BATCH} PATCH $batch for Graph; \
                 1/{EWS_MAX_PAGE} FindItem + 1/{EWS_MAX_BATCH} GetItem + 1/{EWS_MAX_BATCH} UpdateItem \
                 for EWS; time per message = Σ share / rate): **Graph {:.0} msgs/s, EWS {:.0} msgs/s**.\n",
                c.graph_ceiling_msgs_per_sec, c.ews_ceiling_msgs_per_sec
            );
        }
        if let Some(t) = &self.tokens {
            let _ = writeln!(s, "## Token provider under concurrency\n");
            let _ = writeln!(
                s,
                "{} concurrent callers of one msauth `TokenProvider` (client credentials) against the \
                 sandbox's token endpoint: {} succeeded, {} distinct token(s), **{} token request(s)**. \
                 After the sandbox marked every token expired, the same {} callers again: **{} token \
                 request(s)**.\n",
                t.callers,
                t.succeeded,
                t.distinct_tokens,
                t.token_requests,
                t.callers,
                t.token_requests_after_expiry
            );
        }
        if !self.micro.is_empty() {
            let _ = writeln!(s, "## Micro-benchmarks (criterion)\n");
            let _ = writeln!(s, "| benchmark | mean | throughput |\n|---|---:|---:|");
            for b in &self.micro {
                let tp = match (b.bytes, b.elements) {
                    (Some(by), _) if b.mean_ns > 0.0 => {
                        format!("{:.0} MiB/s", by as f64 / (b.mean_ns / 1e9) / 1_048_576.0)
                    }
                    (_, Some(el)) if b.mean_ns > 0.0 => {
                        format!("{:.0} elem/s", el as f64 / (b.mean_ns / 1e9))
                    }
                    _ => "—".into(),
                };
                let _ = writeln!(s, "| `{}` | {} | {tp} |", b.id, fmt_time(b.mean_ns));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "## Goals of issue 10\n");
        let _ = writeln!(s, "| goal | measured | met |\n|---|---|---|");
        for (g, v, ok) in self.goals() {
            let met = match ok {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            let _ = writeln!(s, "| {g} | {v} | {met} |");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "## Notes\n");
        for n in self.notes.iter().chain(&self.derived_notes()) {
            let _ = writeln!(s, "- {n}");
        }
        let _ = writeln!(s);
        s
    }
}
