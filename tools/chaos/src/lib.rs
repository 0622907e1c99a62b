//! The chaos run (`cargo xtask chaos`): the `m365mail` handler, as a child process that is
//! killed with SIGKILL at random moments and restarted, drains a Graph source and an EWS source
//! of an in-process sandbox tenant that injects faults at configured rates, expires access
//! tokens, revokes the delegated source's refresh token and withdraws then grants consent again.
//! At the end the handler's records are compared with what was delivered.
//!
//! This library holds the parts that decide the verdict and that the run is built from, so they
//! are tested on their own: the configuration the handler runs with ([`config_toml`]), the
//! messages ([`message`]), the fault plan ([`fault_plan`]), the kill schedule
//! ([`kill_points`]), and the comparison ([`Evidence`], [`Verdict`]). The binary
//! (`src/main.rs`) drives the processes and the sandbox.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::{Rng as _, SeedableRng as _};
use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol};
use test_support::config::toml_string;

pub mod fleet;
mod records;

pub use records::{LedgerFacts, ReadError, normalize_id, read_ledger, read_records};

/// The pickup mailbox read over Graph, app-only (client credentials).
pub const GRAPH_MAILBOX: &str = "helpdesk@contoso.example";
/// The shared mailbox read over EWS, delegated (Adele signs in with a device code).
pub const EWS_MAILBOX: &str = "projects@contoso.example";
/// The user who signs in for the delegated source.
pub const DELEGATED_USER: &str = "adele.vance@contoso.example";
/// The sandbox demo seed's app registration (both apps of the configuration use it).
pub const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
/// The demo seed's public, demo-only client secret.
pub const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";
/// The Graph source's name in the configuration.
pub const GRAPH_SOURCE: &str = "helpdesk-graph";
/// The EWS source's name in the configuration.
pub const EWS_SOURCE: &str = "projects-ews";
/// The folder the Graph source moves handled mail to.
pub const PROCESSED: &str = "Processed";

/// Where the handler's configuration points.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The sandbox tenant id.
    pub tenant: String,
    /// The identity platform base (`http://127.0.0.1:PORT`).
    pub authority_base: String,
    /// The Graph base (`.../v1.0`).
    pub graph: String,
    /// The EWS URL.
    pub ews: String,
    /// The webhook the handler posts each message to.
    pub webhook: String,
}

/// The `m365mail` configuration of the run: a Graph source with an app-only token and an EWS
/// source with a delegated token cached in `token_cache` (signed in with `m365mail login`), a
/// durable ledger, the folder handler and a webhook. The Graph source acknowledges by moving to
/// `Processed`, the EWS source by marking read (moving from the shared mailbox fails with
/// `ErrorMoveCopyFailed` in the sandbox: see RELIABILITY.md).
pub fn config_toml(e: &Endpoints, out_dir: &Path, token_cache: &Path) -> String {
    config_toml_with(e, out_dir, token_cache, None)
}

/// Push mode (`m365-chaos --push`): for the Graph source, where its listener binds (a loopback
/// port, also its public URL) and its subscription record; the safety timer of both sources
/// (the EWS source streams, and catches up through SyncFolderItems from `ews-sync.json` beside
/// the ledger).
#[derive(Debug, Clone)]
pub struct GraphPush {
    /// The listener's loopback port.
    pub port: u16,
    /// The safety timer, in seconds.
    pub safety_secs: u64,
    /// The subscription record.
    pub record: std::path::PathBuf,
}

/// [`config_toml`], with both sources in push mode when `push` says so.
pub fn config_toml_with(
    e: &Endpoints,
    out_dir: &Path,
    token_cache: &Path,
    push: Option<&GraphPush>,
) -> String {
    let graph_push = push
        .map(|p| {
            format!(
                "mode = \"push\"\n\n[sources.push]\npublic_url = \"http://127.0.0.1:{port}/graph\"\n\
                 listen = \"127.0.0.1:{port}\"\nsafety_interval_secs = {safety}\nsubscriptions = {record}\n",
                port = p.port,
                safety = p.safety_secs,
                record = toml_string(&p.record.display().to_string()),
            )
        })
        .unwrap_or_default();
    let ews_push = push
        .map(|p| {
            format!(
                "mode = \"push\"\n\n[sources.push]\nsafety_interval_secs = {}\n",
                p.safety_secs
            )
        })
        .unwrap_or_default();
    format!(
        r#"# Written by the chaos run (tools/chaos).
[[apps]]
name = "daemon"
tenant = "{tenant}"
authority_base = "{base}"
client_id = "{CLIENT_ID}"
client_secret = "{DEMO_SECRET}"
flow = "client-credentials"

[[apps]]
name = "adele"
tenant = "{tenant}"
authority_base = "{base}"
client_id = "{CLIENT_ID}"
flow = "device-code"
token_cache = {cache}

[[sources]]
name = "{GRAPH_SOURCE}"
kind = "graph"
app = "daemon"
mailbox = "{GRAPH_MAILBOX}"
url = "{graph}"
acknowledge = "move:{PROCESSED}"
# Single requests 4 at once: in polling mode each download is handed over as it ends.
requests_in_flight = 4
{graph_push}
[sources.routing.mailbox]
primary = "{GRAPH_MAILBOX}"
aliases = ["billing@contoso.example", "support@contoso.example"]

[[sources.routing.rules]]
match = "alias"
alias = "billing@contoso.example"
project = "BILLING"

[[sources.routing.rules]]
match = "default"
project = "DESK"

[[sources]]
name = "{EWS_SOURCE}"
kind = "ews"
app = "adele"
mailbox = "{EWS_MAILBOX}"
url = "{ews}"
acknowledge = "mark-read"
# FindItem pages of 5, five requests at once, each page handed over as it is downloaded.
requests_in_flight = 5
{ews_push}
[sources.routing.mailbox]
primary = "{EWS_MAILBOX}"
aliases = ["alpha@contoso.example", "beta@contoso.example"]

[[sources.routing.rules]]
match = "alias"
alias = "alpha@contoso.example"
project = "ALPHA"

[[sources.routing.rules]]
match = "default"
project = "PROJECTS"

[handler]
output_dir = {out}
webhook = "{hook}"
batch_size = 25
poll_interval_secs = 1
"#,
        tenant = e.tenant,
        base = e.authority_base.trim_end_matches('/'),
        graph = e.graph,
        ews = e.ews,
        hook = e.webhook,
        cache = toml_string(&token_cache.display().to_string()),
        out = toml_string(&out_dir.display().to_string()),
    )
}

/// Which source a message is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The Graph source's mailbox.
    Graph,
    /// The EWS source's mailbox.
    Ews,
}

/// Message number `i` of the run: (envelope recipient, the source it belongs to, its
/// `Message-ID` without angle brackets, the MIME). Even numbers go to the Graph mailbox, odd
/// ones to the EWS mailbox, each to one of the mailbox's addresses in turn.
pub fn message(seed: u64, i: usize) -> (&'static str, Source, String, String) {
    let (to, source) = match i % 4 {
        0 => ("billing@contoso.example", Source::Graph),
        1 => ("alpha@contoso.example", Source::Ews),
        2 => (GRAPH_MAILBOX, Source::Graph),
        _ => (EWS_MAILBOX, Source::Ews),
    };
    let id = format!("chaos-{seed}-{i}@fabrikam.example");
    let mime = format!(
        "From: Customer {i} <c{i}@fabrikam.example>\r\nTo: {to}\r\nSubject: chaos {i}\r\n\
         Message-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nmessage {i} of the chaos run\r\n"
    );
    (to, source, id, mime)
}

/// The rates the sandbox injects faults at, per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// 429 with `Retry-After` (Graph) / `ErrorServerBusy` (EWS), one second.
    pub throttle: f64,
    /// 503 Service Unavailable.
    pub unavailable: f64,
    /// 504 Gateway Timeout.
    pub gateway_timeout: f64,
    /// EWS `ErrorServerBusy` with `BackOffMilliseconds` (EWS only).
    pub server_busy: f64,
    /// The connection dropped mid-response.
    pub reset: f64,
    /// A response delayed by [`SLOW_MILLIS`].
    pub slow: f64,
}

/// How long a slow response is held back.
pub const SLOW_MILLIS: u64 = 300;

impl Default for Rates {
    fn default() -> Self {
        Rates {
            throttle: 0.01,
            unavailable: 0.01,
            gateway_timeout: 0.01,
            server_busy: 0.015,
            reset: 0.01,
            slow: 0.01,
        }
    }
}

/// The fault plan: every fault kind on Graph and EWS at `rates`, seeded.
pub fn fault_plan(seed: u64, rates: &Rates) -> FaultPlan {
    let mut rules = Vec::new();
    for protocol in [Protocol::Graph, Protocol::Ews] {
        rules.push(FaultRule::rate(
            protocol,
            rates.throttle,
            FaultKind::Throttle {
                retry_after_secs: 1,
            },
        ));
        rules.push(FaultRule::rate(
            protocol,
            rates.unavailable,
            FaultKind::ServerError503,
        ));
        rules.push(FaultRule::rate(
            protocol,
            rates.gateway_timeout,
            FaultKind::GatewayTimeout504,
        ));
        if protocol == Protocol::Ews {
            rules.push(FaultRule::rate(
                protocol,
                rates.server_busy,
                FaultKind::ServerBusy { back_off_ms: 200 },
            ));
        }
        rules.push(FaultRule::rate(
            protocol,
            rates.reset,
            FaultKind::ResetConnection,
        ));
        rules.push(FaultRule::rate(
            protocol,
            rates.slow,
            FaultKind::Slow {
                millis: SLOW_MILLIS,
            },
        ));
    }
    FaultPlan::new(rules).with_seed(seed)
}

/// The progress points (messages acknowledged, out of `messages`) at which the handler is
/// killed: `kills` points drawn from the seeded generator between 2 % and 95 % of the run,
/// sorted, distinct.
pub fn kill_points(seed: u64, messages: usize, kills: usize) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let lo = messages / 50;
    let hi = (messages * 95 / 100).max(lo + 1);
    let mut points: BTreeSet<usize> = BTreeSet::new();
    // Fewer distinct points than kills only for tiny runs: then some points repeat in effect.
    let room = hi - lo;
    while points.len() < kills.min(room) {
        points.insert(rng.random_range(lo..hi));
    }
    let mut v: Vec<usize> = points.into_iter().collect();
    while v.len() < kills {
        v.push(hi);
    }
    v
}

/// Everything the verdict is drawn from.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The `Message-ID`s delivered to the two mailboxes.
    pub delivered: BTreeSet<String>,
    /// Folder-handler records: `Message-ID` -> keys of its records.
    pub records: BTreeMap<String, Vec<String>>,
    /// The ledger.
    pub ledger: LedgerFacts,
    /// Webhook deliveries: `Message-ID` -> (key -> deliveries).
    pub webhook: BTreeMap<String, BTreeMap<String, u32>>,
    /// `Message-ID`s acknowledged (Graph: in `Processed`; EWS: read) -> copies.
    pub processed: BTreeMap<String, u32>,
    /// Messages still in the two inboxes.
    pub waiting: usize,
    /// Messages in the poison folders.
    pub poisoned: usize,
}

/// The comparison of the handler's records with what was delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Delivered, but no record says it was handled.
    pub lost: Vec<String>,
    /// Handled twice: more than one folder record, handed to the webhook under more than one
    /// key, more than one `handled` line in the ledger, or more than one copy acknowledged.
    pub duplicated: Vec<String>,
    /// Handled, but not acknowledged at its source (not moved to `Processed` / not read).
    pub unacknowledged: Vec<String>,
    /// Acknowledged at the source, but the ledger never recorded it: the acknowledgement took
    /// effect and its answer was lost (or the handler was killed before recording it), and the
    /// pipeline did not make the owed acknowledgement again from its ledger before it was
    /// stopped. A failure: the ledger must converge.
    pub ledger_unconfirmed: Vec<String>,
    /// Keys the ledger records as acknowledged by absence (an owed acknowledgement made again
    /// found the message gone: EWS ids change on a move). Reported, not a failure.
    pub acknowledged_by_absence: usize,
    /// Records of messages that were never delivered.
    pub unexpected: Vec<String>,
    /// Webhook deliveries repeated with the same `Idempotency-Key`: the crash window between a
    /// handler's side effect and the ledger's record (ARCHITECTURE.md), not a duplicate.
    pub same_key_repeats: u32,
    /// Messages still waiting in an inbox.
    pub waiting: usize,
    /// Messages parked as poison.
    pub poisoned: usize,
}

impl Verdict {
    /// Nothing lost, nothing handled twice, everything acknowledged (at the source and in the
    /// ledger), nothing left waiting.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.unacknowledged.is_empty()
            && self.ledger_unconfirmed.is_empty()
            && self.unexpected.is_empty()
            && self.waiting == 0
            && self.poisoned == 0
    }
}

impl Evidence {
    /// Compares.
    pub fn verdict(&self) -> Verdict {
        let mut v = Verdict {
            waiting: self.waiting,
            poisoned: self.poisoned,
            acknowledged_by_absence: self.ledger.absent.len(),
            ..Verdict::default()
        };
        let mut duplicated = BTreeSet::new();
        for id in &self.delivered {
            let Some(keys) = self.records.get(id) else {
                v.lost.push(id.clone());
                continue;
            };
            if keys.len() > 1 {
                duplicated.insert(id.clone());
            }
            for key in keys {
                if self.ledger.handled.get(key).copied().unwrap_or(0) > 1 {
                    duplicated.insert(id.clone());
                }
            }
            match self.webhook.get(id) {
                Some(by_key) if by_key.len() > 1 => {
                    duplicated.insert(id.clone());
                }
                Some(_) => {}
                // The folder handler wrote it but the webhook never got it: the handler
                // chain did not complete, so it is not handled.
                None => v.lost.push(id.clone()),
            }
            match self.processed.get(id).copied().unwrap_or(0) {
                0 => v.unacknowledged.push(id.clone()),
                1 => {}
                _ => {
                    duplicated.insert(id.clone());
                }
            }
            if !keys.iter().any(|k| self.ledger.acknowledged.contains(k)) {
                v.ledger_unconfirmed.push(id.clone());
            }
        }
        v.duplicated = duplicated.into_iter().collect();
        v.unexpected = self
            .records
            .keys()
            .chain(self.webhook.keys())
            .filter(|id| !self.delivered.contains(*id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        v.same_key_repeats = self
            .webhook
            .values()
            .flat_map(|by_key| by_key.values())
            .map(|n| n.saturating_sub(1))
            .sum();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(n: usize) -> Evidence {
        let mut e = Evidence::default();
        for i in 0..n {
            let id = format!("m{i}");
            let key = format!("src|{i}");
            e.delivered.insert(id.clone());
            e.records.insert(id.clone(), vec![key.clone()]);
            e.ledger.handled.insert(key.clone(), 1);
            e.ledger.acknowledged.insert(key.clone());
            e.webhook
                .insert(id.clone(), BTreeMap::from([(key.clone(), 1)]));
            e.processed.insert(id, 1);
        }
        e
    }

    #[test]
    fn a_complete_run_is_clean() {
        let v = clean(5).verdict();
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.same_key_repeats, 0);
    }

    #[test]
    fn a_message_without_a_record_is_lost() {
        let mut e = clean(3);
        e.records.remove("m1");
        let v = e.verdict();
        assert_eq!(v.lost, vec!["m1".to_owned()]);
        assert!(!v.is_clean());
        // Written to the folder but never reaching the webhook is lost too.
        let mut e = clean(3);
        e.webhook.remove("m2");
        assert_eq!(e.verdict().lost, vec!["m2".to_owned()]);
    }

    #[test]
    fn handling_twice_is_caught_by_any_record() {
        let mut e = clean(4);
        e.records.get_mut("m0").unwrap().push("src|other".into());
        e.ledger.handled.insert("src|1".into(), 2);
        e.webhook
            .get_mut("m2")
            .unwrap()
            .insert("src|another".into(), 1);
        e.processed.insert("m3".into(), 2);
        let v = e.verdict();
        assert_eq!(v.duplicated, vec!["m0", "m1", "m2", "m3"]);
        assert!(!v.is_clean());
    }

    #[test]
    fn same_key_webhook_repeats_are_counted_but_are_not_duplicates() {
        let mut e = clean(3);
        *e.webhook.get_mut("m1").unwrap().get_mut("src|1").unwrap() = 3;
        let v = e.verdict();
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.same_key_repeats, 2);
    }

    #[test]
    fn unacknowledged_waiting_parked_and_unexpected_fail_the_run() {
        let mut e = clean(3);
        e.processed.remove("m0");
        let v = e.verdict();
        assert_eq!(v.unacknowledged, vec!["m0".to_owned()]);
        assert!(!v.is_clean());
        // Acknowledged at the source but never in the ledger: the ledger did not converge.
        let mut e = clean(3);
        e.ledger.acknowledged.remove("src|1");
        let v = e.verdict();
        assert_eq!(v.ledger_unconfirmed, vec!["m1".to_owned()]);
        assert!(!v.is_clean(), "{v:?}");
        // Acknowledged by absence is acknowledged.
        let mut e = clean(3);
        e.ledger.absent.insert("src|1".into());
        let v = e.verdict();
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.acknowledged_by_absence, 1);

        let mut e = clean(2);
        e.waiting = 1;
        assert!(!e.verdict().is_clean());
        let mut e = clean(2);
        e.poisoned = 1;
        assert!(!e.verdict().is_clean());
        let mut e = clean(2);
        e.records.insert("ghost".into(), vec!["src|g".into()]);
        assert_eq!(e.verdict().unexpected, vec!["ghost".to_owned()]);
    }

    #[test]
    fn the_ledgers_history_segments_count_and_carried_lines_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.jsonl");
        std::fs::write(
            dir.path().join("ledger.jsonl.history.000001"),
            "{\"key\":\"s|1\",\"state\":\"handled\",\"project\":null}\n\
             {\"key\":\"s|2\",\"state\":\"handled\",\"project\":null}\n\
             {\"key\":\"s|1\",\"state\":\"acknowledged\",\"at\":1}\n",
        )
        .unwrap();
        // The compaction carried s|2 over; then s|2 was handled again: that one counts.
        std::fs::write(
            &ledger,
            "{\"key\":\"s|2\",\"state\":\"handled\",\"project\":null,\"carried\":true}\n\
             {\"key\":\"s|2\",\"state\":\"handled\",\"project\":null}\n",
        )
        .unwrap();
        let f = read_ledger(&ledger).unwrap();
        assert_eq!(f.handled["s|1"], 1);
        assert_eq!(f.handled["s|2"], 2);
        assert!(f.acknowledged.contains("s|1") && !f.acknowledged.contains("s|2"));
    }

    #[test]
    fn records_and_ledger_are_read_from_disk_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("DESK");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("a.json"),
            r#"{"key":"s|1","message_id":"<x@y>","subject":"s"}"#,
        )
        .unwrap();
        std::fs::write(p.join("a.eml"), "not json").unwrap();
        let r = read_records(dir.path()).unwrap();
        assert_eq!(r["x@y"], vec!["s|1".to_owned()]);

        let ledger = dir.path().join("ledger.jsonl");
        std::fs::write(
            &ledger,
            "{\"key\":\"s|1\",\"state\":\"handled\",\"project\":null}\n\
             {\"key\":\"s|1\",\"state\":\"acknowledged\"}\n\
             {\"key\":\"s|3\",\"state\":\"acknowledged_by_absence\"}\n{\"key\":\"s|2\",\"sta",
        )
        .unwrap();
        let f = read_ledger(&ledger).unwrap();
        assert_eq!(f.handled["s|1"], 1);
        assert!(f.acknowledged.contains("s|1"));
        assert!(f.acknowledged.contains("s|3") && f.absent.contains("s|3"));
        assert!(!f.absent.contains("s|1"));
        assert!(!f.handled.contains_key("s|2"));

        // Garbage before the last line is an error, not a guess.
        std::fs::write(
            &ledger,
            "garbage\n{\"key\":\"s|1\",\"state\":\"handled\"}\n",
        )
        .unwrap();
        assert!(matches!(read_ledger(&ledger), Err(ReadError::Format(..))));
        // A record without a Message-ID is refused with the file named.
        std::fs::write(p.join("b.json"), r#"{"key":"s|2"}"#).unwrap();
        let e = read_records(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.json"), "{e}");
    }

    #[test]
    fn kill_points_are_seeded_sorted_and_inside_the_run() {
        let a = kill_points(1, 10_000, 20);
        assert_eq!(a, kill_points(1, 10_000, 20));
        assert_ne!(a, kill_points(2, 10_000, 20));
        assert_eq!(a.len(), 20);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&p| (200..9_500).contains(&p)), "{a:?}");
        // A tiny run still gets every kill.
        assert_eq!(kill_points(3, 10, 5).len(), 5);
    }

    #[test]
    fn messages_alternate_between_the_sources_with_unique_ids() {
        let all: Vec<_> = (0..8).map(|i| message(9, i)).collect();
        let ids: BTreeSet<_> = all.iter().map(|m| m.2.clone()).collect();
        assert_eq!(ids.len(), 8);
        assert_eq!(all.iter().filter(|m| m.1 == Source::Graph).count(), 4);
        for (to, _, id, mime) in &all {
            assert!(mime.contains(&format!("Message-ID: <{id}>")));
            assert!(mime.contains(&format!("To: {to}")));
        }
    }

    /// Endpoints nothing listens on: the configuration is only parsed.
    fn endpoints() -> Endpoints {
        Endpoints {
            tenant: "t".into(),
            authority_base: "http://127.0.0.1:1/".into(),
            graph: "http://127.0.0.1:1/v1.0".into(),
            ews: "http://127.0.0.1:1/EWS/Exchange.asmx".into(),
            webhook: "http://127.0.0.1:2/hook".into(),
        }
    }

    #[test]
    fn the_configuration_loads_in_m365mail_shape_with_awkward_paths() {
        let e = endpoints();
        let out = Path::new("/tmp/a \"b\"\\c");
        let text = config_toml(&e, out, Path::new("/tmp/t.json"));
        // m365mail itself accepts it, and the awkward path survives quoting.
        let cfg = m365mail::config::Config::parse(&text, Path::new("chaos.toml")).unwrap();
        assert_eq!(cfg.handler.output_dir, out);
        assert_eq!(cfg.sources.len(), 2);
        assert_eq!(cfg.sources[1].name, EWS_SOURCE);
        assert_eq!(cfg.apps[1].flow, m365mail::config::Flow::DeviceCode);
        assert_eq!(
            cfg.apps[1].token_cache.as_deref(),
            Some(Path::new("/tmp/t.json"))
        );
    }

    #[test]
    fn push_puts_both_sources_in_push_mode() {
        let e = endpoints();
        let push = GraphPush {
            port: 8425,
            safety_secs: 3,
            record: "/tmp/subs.json".into(),
        };
        let text = config_toml_with(
            &e,
            Path::new("/tmp/out"),
            Path::new("/tmp/t.json"),
            Some(&push),
        );
        let cfg = m365mail::config::Config::parse(&text, Path::new("chaos.toml")).unwrap();
        let (graph, ews) = (&cfg.sources[0], &cfg.sources[1]);
        assert!(graph.push.is_some() && graph.delta_state.is_some());
        assert_eq!(ews.streaming, Some(std::time::Duration::from_secs(3)));
        assert_eq!(
            ews.sync_state.as_deref(),
            Some(Path::new("/tmp/out/ews-sync.json"))
        );
    }

    #[test]
    fn the_fault_plan_covers_every_kind_on_both_protocols() {
        let plan = fault_plan(4, &Rates::default());
        let kinds = |p: Protocol| -> BTreeSet<&'static str> {
            plan.rules
                .iter()
                .filter(|r| r.protocol == Some(p))
                .map(|r| r.fault.name())
                .collect()
        };
        assert_eq!(kinds(Protocol::Graph).len(), 5);
        assert_eq!(kinds(Protocol::Ews).len(), 6);
        assert!(kinds(Protocol::Ews).contains("server_busy"));
        assert_eq!(plan.seed, 4);
    }
}
