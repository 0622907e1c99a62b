//! The fleet chaos run's plan and verdict (`cargo xtask chaos --fleet`, issue #17 item 8): the
//! parts that are pure, so they are tested on their own. The binary's `fleet_run` module drives
//! the workers, the two sandbox tenants and the PostgreSQL cluster.
//!
//! Two tenants, each its own sandbox (a sandbox emulates one tenant) with one app registration
//! (client credentials, application permissions for Graph and EWS); the mailboxes alternate
//! between them, and between Graph with delta queries, Graph without, and EWS
//! ([`mailboxes`]). Every source acknowledges by moving to `Processed`, so a mailbox whose
//! mail is all acknowledged has an empty inbox.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One tenant of the run and its app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSpec {
    /// Short name: the app's name in the configuration and the sources' prefix.
    pub name: &'static str,
    /// The tenant id (a GUID).
    pub id: &'static str,
    /// The tenant's mail domain.
    pub domain: &'static str,
    /// The app registration's client id.
    pub client_id: &'static str,
    /// The app's client secret (chaos-only, public).
    pub secret: &'static str,
}

/// The two tenants.
pub const TENANTS: [TenantSpec; 2] = [
    TenantSpec {
        name: "contoso",
        id: "9188040d-6c67-4c5b-b112-36a304b66dad",
        domain: "contoso.example",
        client_id: "00000000-0000-0000-0000-0000000f1ee1",
        secret: "fleet-chaos-contoso-secret-not-for-production",
    },
    TenantSpec {
        name: "northwind",
        id: "5a1d7e2c-3b4f-4c8e-9d0a-6f7e8d9c0b1a",
        domain: "northwind.example",
        client_id: "00000000-0000-0000-0000-0000000f1ee2",
        secret: "fleet-chaos-northwind-secret-not-for-production",
    },
];

/// The folder every source moves handled mail to.
pub const PROCESSED: &str = "Processed";

/// How a mailbox is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Microsoft Graph, listing unread inbox mail.
    Graph,
    /// Microsoft Graph with delta queries (the delta state in the database).
    GraphDelta,
    /// Exchange Web Services.
    Ews,
}

impl Kind {
    /// The configuration's `kind`.
    pub fn protocol(self) -> &'static str {
        match self {
            Kind::Graph | Kind::GraphDelta => "graph",
            Kind::Ews => "ews",
        }
    }
}

/// One mailbox of the run and the source that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Index into [`TENANTS`].
    pub tenant: usize,
    /// Its address.
    pub address: String,
    /// The source's name in the configuration.
    pub source: String,
    /// How it is read.
    pub kind: Kind,
}

/// The run's `n` mailboxes: mailbox `i` belongs to tenant `i % 2` and is read through EWS when
/// `i % 3 == 2`, Graph with delta queries when `i % 3 == 0`, Graph otherwise (2 and 3 are
/// coprime, so each tenant gets every kind).
pub fn mailboxes(n: usize) -> Vec<Mailbox> {
    (0..n)
        .map(|i| {
            let tenant = i % 2;
            let t = &TENANTS[tenant];
            let kind = match i % 3 {
                0 => Kind::GraphDelta,
                1 => Kind::Graph,
                _ => Kind::Ews,
            };
            let local = format!("fleet{:03}", i / 2);
            Mailbox {
                tenant,
                address: format!("{local}@{}", t.domain),
                source: format!("{}-{local}", t.name),
                kind,
            }
        })
        .collect()
}

/// The seed of tenant `t`'s sandbox: the app (client secret, Graph and EWS application
/// permissions, consented), `mailboxes` (those of the run that belong to it) as shared
/// mailboxes, and access tokens that live `token_lifetime_secs`.
pub fn seed_toml(t: &TenantSpec, mailboxes: &[&Mailbox], token_lifetime_secs: u64) -> String {
    let mut s = format!(
        r#"# Written by the fleet chaos run (tools/chaos).
[tenant]
id = "{id}"
display_name = "{name} (fleet chaos)"
domains = ["{domain}"]

[identity]
access_token_lifetime_secs = {token_lifetime_secs}

[[apps]]
client_id = "{client}"
display_name = "Fleet mail handler (chaos)"
application_permissions = ["Mail.ReadWrite", "https://outlook.office365.com/full_access_as_app"]

[[apps.secrets]]
id = "fleet-chaos-1"
value = "{secret}"

[[consent.admin]]
app = "{client}"
application = ["Mail.ReadWrite", "https://outlook.office365.com/full_access_as_app"]
"#,
        id = t.id,
        name = t.name,
        domain = t.domain,
        client = t.client_id,
        secret = t.secret,
    );
    for m in mailboxes {
        s.push_str(&format!(
            "\n[[shared_mailboxes]]\nmail = \"{}\"\n",
            m.address
        ));
    }
    s
}

/// Where tenant `i`'s sandbox listens.
#[derive(Debug, Clone)]
pub struct TenantEndpoints {
    /// The identity platform base (`http://127.0.0.1:PORT`).
    pub authority_base: String,
    /// The Graph base (`.../v1.0`).
    pub graph: String,
    /// The EWS URL.
    pub ews: String,
}

/// The configuration every worker of the fleet runs with: one app per tenant, one source per
/// mailbox (each acknowledging by moving to [`PROCESSED`], mail routed to a project named after
/// the source), the folder handler writing to `out`.
pub fn config_toml(
    endpoints: &[TenantEndpoints; 2],
    mailboxes: &[Mailbox],
    out: &Path,
    poll_interval_secs: u64,
    batch_size: usize,
) -> String {
    let mut s = String::from("# Written by the fleet chaos run (tools/chaos).\n");
    for (t, e) in TENANTS.iter().zip(endpoints) {
        s.push_str(&format!(
            "\n[[apps]]\nname = \"{name}\"\ntenant = \"{id}\"\nauthority_base = \"{base}\"\n\
             client_id = \"{client}\"\nclient_secret = \"{secret}\"\nflow = \"client-credentials\"\n",
            name = t.name,
            id = t.id,
            base = e.authority_base.trim_end_matches('/'),
            client = t.client_id,
            secret = t.secret,
        ));
    }
    for m in mailboxes {
        let e = &endpoints[m.tenant];
        let (url, mode) = match m.kind {
            Kind::Graph => (&e.graph, ""),
            Kind::GraphDelta => (&e.graph, "mode = \"delta\"\n"),
            Kind::Ews => (&e.ews, ""),
        };
        s.push_str(&format!(
            "\n[[sources]]\nname = \"{source}\"\nkind = \"{kind}\"\napp = \"{app}\"\n\
             mailbox = \"{mailbox}\"\nurl = \"{url}\"\nacknowledge = \"move:{PROCESSED}\"\n{mode}\
             \n[sources.routing.mailbox]\nprimary = \"{mailbox}\"\n\
             \n[[sources.routing.rules]]\nmatch = \"default\"\nproject = \"{project}\"\n",
            source = m.source,
            kind = m.kind.protocol(),
            app = TENANTS[m.tenant].name,
            mailbox = m.address,
            project = m.source.to_ascii_uppercase(),
        ));
    }
    s.push_str(&format!(
        "\n[handler]\noutput_dir = {out}\nbatch_size = {batch_size}\npoll_interval_secs = {poll_interval_secs}\n",
        out = test_support::config::toml_string(&out.display().to_string()),
    ));
    s
}

/// Message number `i` of the run: (index of the mailbox it goes to, its `Message-ID` without
/// angle brackets, the MIME). Messages go to the mailboxes in turn.
pub fn message(seed: u64, i: usize, mailboxes: &[Mailbox]) -> (usize, String, String) {
    let mb = i % mailboxes.len().max(1);
    let to = mailboxes
        .get(mb)
        .map_or("nobody@contoso.example", |m| &m.address);
    let id = format!("fleet-{seed}-{i}@fabrikam.example");
    let mime = format!(
        "From: Customer {i} <c{i}@fabrikam.example>\r\nTo: {to}\r\nSubject: fleet chaos {i}\r\n\
         Message-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         message {i} of the fleet chaos run\r\n"
    );
    (mb, id, mime)
}

/// One key's row of `fleet_ledger`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerRow {
    /// Handed over.
    pub handled: bool,
    /// Acknowledged at its source (or found gone).
    pub acknowledged: bool,
    /// Acknowledged by absence.
    pub by_absence: bool,
    /// Parked as poison.
    pub parked: bool,
}

/// Everything the fleet verdict is drawn from.
#[derive(Debug, Clone, Default)]
pub struct FleetEvidence {
    /// The `Message-ID`s delivered.
    pub delivered: BTreeSet<String>,
    /// Folder-handler records: `Message-ID` -> keys of its records.
    pub records: BTreeMap<String, Vec<String>>,
    /// `fleet_ledger`, per key.
    pub ledger: BTreeMap<String, LedgerRow>,
    /// `handled` entries in `fleet_ledger_log`, per key.
    pub handled_entries: BTreeMap<String, u32>,
    /// `Message-ID`s in the `Processed` folders -> copies.
    pub processed: BTreeMap<String, u32>,
    /// Messages still in the inboxes.
    pub waiting: usize,
    /// Entries of `fleet_ledger_log` whose epoch is lower than one recorded before them for
    /// their source (in id order).
    pub epoch_regressions: u64,
    /// Entries recorded under an epoch that was not the lease's at that time (by the lease
    /// history), or under a worker that did not hold it, or after it expired.
    pub stale_entries: u64,
    /// Entries recorded without a fence.
    pub unfenced: u64,
}

/// The comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetVerdict {
    /// Delivered, but not handled: no folder record, or no ledger row saying handled.
    pub lost: Vec<String>,
    /// Handled twice: more than one folder record, more than one `handled` entry in the
    /// ledger's log, or more than one copy in `Processed`.
    pub duplicated: Vec<String>,
    /// Not in a `Processed` folder.
    pub unacknowledged: Vec<String>,
    /// Handled, but the ledger never recorded its acknowledgement.
    pub not_converged: Vec<String>,
    /// Keys the ledger still owes an acknowledgement (handled or parked, not acknowledged).
    pub owed: usize,
    /// Keys acknowledged by absence (reported, not a failure).
    pub by_absence: usize,
    /// Parked keys.
    pub parked: usize,
    /// Records of messages that were never delivered.
    pub unexpected: Vec<String>,
    /// Messages still in an inbox.
    pub waiting: usize,
    /// See [`FleetEvidence::epoch_regressions`].
    pub epoch_regressions: u64,
    /// See [`FleetEvidence::stale_entries`].
    pub stale_entries: u64,
    /// See [`FleetEvidence::unfenced`].
    pub unfenced: u64,
}

impl FleetVerdict {
    /// Nothing lost, nothing twice, everything acknowledged and in the ledger, nothing waiting
    /// or parked, nothing recorded under a stale (or no) fence.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.unacknowledged.is_empty()
            && self.not_converged.is_empty()
            && self.owed == 0
            && self.parked == 0
            && self.unexpected.is_empty()
            && self.waiting == 0
            && self.epoch_regressions == 0
            && self.stale_entries == 0
            && self.unfenced == 0
    }
}

impl FleetEvidence {
    /// Compares.
    pub fn verdict(&self) -> FleetVerdict {
        let mut v = FleetVerdict {
            waiting: self.waiting,
            epoch_regressions: self.epoch_regressions,
            stale_entries: self.stale_entries,
            unfenced: self.unfenced,
            ..FleetVerdict::default()
        };
        for row in self.ledger.values() {
            if (row.handled || row.parked) && !row.acknowledged {
                v.owed += 1;
            }
            v.by_absence += usize::from(row.by_absence);
            v.parked += usize::from(row.parked);
        }
        let mut duplicated = BTreeSet::new();
        for id in &self.delivered {
            let keys = self.records.get(id).map(Vec::as_slice).unwrap_or_default();
            let rows: Vec<LedgerRow> = keys
                .iter()
                .filter_map(|k| self.ledger.get(k).copied())
                .collect();
            if keys.is_empty() || !rows.iter().any(|r| r.handled) {
                v.lost.push(id.clone());
            } else if !rows.iter().any(|r| r.acknowledged) {
                v.not_converged.push(id.clone());
            }
            if keys.len() > 1
                || keys
                    .iter()
                    .any(|k| self.handled_entries.get(k).copied().unwrap_or(0) > 1)
            {
                duplicated.insert(id.clone());
            }
            match self.processed.get(id).copied().unwrap_or(0) {
                0 => v.unacknowledged.push(id.clone()),
                1 => {}
                _ => {
                    duplicated.insert(id.clone());
                }
            }
        }
        v.duplicated = duplicated.into_iter().collect();
        v.unexpected = self
            .records
            .keys()
            .filter(|id| !self.delivered.contains(*id))
            .cloned()
            .collect();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(n: usize) -> FleetEvidence {
        let mut e = FleetEvidence::default();
        for i in 0..n {
            let id = format!("m{i}");
            let key = format!("src|{i}");
            e.delivered.insert(id.clone());
            e.records.insert(id.clone(), vec![key.clone()]);
            e.ledger.insert(
                key.clone(),
                LedgerRow {
                    handled: true,
                    acknowledged: true,
                    ..LedgerRow::default()
                },
            );
            e.handled_entries.insert(key, 1);
            e.processed.insert(id, 1);
        }
        e
    }

    #[test]
    fn a_complete_run_is_clean() {
        let v = clean(4).verdict();
        assert!(v.is_clean(), "{v:?}");
    }

    #[test]
    fn lost_twice_unacknowledged_and_unconverged_are_told_apart() {
        let mut e = clean(6);
        e.records.remove("m0"); // no folder record: lost
        e.ledger.get_mut("src|1").unwrap().handled = false; // ledger never said handled: lost
        e.handled_entries.insert("src|2".into(), 2); // two handled entries: twice
        e.processed.remove("m3"); // still waiting somewhere: unacknowledged
        e.ledger.get_mut("src|4").unwrap().acknowledged = false; // owed
        e.records.get_mut("m5").unwrap().push("src|other".into()); // two records: twice
        let v = e.verdict();
        assert_eq!(v.lost, vec!["m0", "m1"]);
        assert_eq!(v.duplicated, vec!["m2", "m5"]);
        assert_eq!(v.unacknowledged, vec!["m3"]);
        assert_eq!(v.not_converged, vec!["m4"]);
        assert_eq!(v.owed, 1);
        assert!(!v.is_clean());
    }

    #[test]
    fn stale_epochs_unfenced_entries_and_waiting_mail_fail_the_run() {
        for f in [
            |e: &mut FleetEvidence| e.epoch_regressions = 1,
            |e: &mut FleetEvidence| e.stale_entries = 1,
            |e: &mut FleetEvidence| e.unfenced = 1,
            |e: &mut FleetEvidence| e.waiting = 1,
            |e: &mut FleetEvidence| {
                e.processed.insert("m0".into(), 2);
            },
            |e: &mut FleetEvidence| {
                e.records.insert("ghost".into(), vec!["src|g".into()]);
            },
        ] {
            let mut e = clean(2);
            f(&mut e);
            assert!(!e.verdict().is_clean(), "{e:?}");
        }
        // Acknowledged by absence is acknowledged, and counted.
        let mut e = clean(2);
        e.ledger.get_mut("src|0").unwrap().by_absence = true;
        let v = e.verdict();
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.by_absence, 1);
    }

    #[test]
    fn mailboxes_mix_tenants_and_protocols_with_unique_names() {
        let all = mailboxes(200);
        let addresses: BTreeSet<_> = all.iter().map(|m| m.address.clone()).collect();
        let sources: BTreeSet<_> = all.iter().map(|m| m.source.clone()).collect();
        assert_eq!((addresses.len(), sources.len()), (200, 200));
        for (t, spec) in TENANTS.iter().enumerate() {
            let mine: Vec<_> = all.iter().filter(|m| m.tenant == t).collect();
            assert_eq!(mine.len(), 100);
            for k in [Kind::Graph, Kind::GraphDelta, Kind::Ews] {
                assert!(mine.iter().any(|m| m.kind == k), "tenant {t} has no {k:?}");
            }
            assert!(mine.iter().all(|m| m.address.ends_with(spec.domain)));
        }
        // Messages go round the mailboxes, with unique ids.
        let ids: BTreeSet<_> = (0..400).map(|i| message(1, i, &all).1).collect();
        assert_eq!(ids.len(), 400);
        assert_eq!(message(1, 201, &all).0, 1);
    }

    #[test]
    fn the_seeds_load_in_the_sandbox() {
        let all = mailboxes(6);
        for (t, spec) in TENANTS.iter().enumerate() {
            let mine: Vec<&Mailbox> = all.iter().filter(|m| m.tenant == t).collect();
            let seed = sandbox::Seed::from_toml_str(&seed_toml(spec, &mine, 420)).unwrap();
            assert_eq!(seed.tenant().info.id, spec.id);
            assert_eq!(seed.tenant().identity.access_token_lifetime_secs, 420);
            for m in mine {
                assert!(
                    seed.tenant().mailbox(&m.address, 0).is_some(),
                    "{}",
                    m.address
                );
            }
        }
    }

    #[test]
    fn the_configuration_loads_in_m365mail() {
        let e = TenantEndpoints {
            authority_base: "http://127.0.0.1:1/".into(),
            graph: "http://127.0.0.1:1/v1.0".into(),
            ews: "http://127.0.0.1:1/EWS/Exchange.asmx".into(),
        };
        let all = mailboxes(6);
        let text = config_toml(&[e.clone(), e], &all, Path::new("/tmp/out \"x\""), 2, 25);
        let cfg = m365mail::config::Config::parse(&text, Path::new("fleet.toml")).unwrap();
        assert_eq!(cfg.apps.len(), 2);
        assert_eq!(cfg.sources.len(), 6);
        assert_eq!(cfg.sources[2].name, all[2].source);
        assert_eq!(cfg.handler.output_dir, Path::new("/tmp/out \"x\""));
    }
}
