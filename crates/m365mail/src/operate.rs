//! Operating a running fleet: `m365mail sources add|list|show|remove|set-routing` change the
//! apps, sources and outbounds kept in its database (workers pick a change up at their next
//! tick), and `m365mail status` shows the fleet at a glance.

use std::path::Path;
use std::time::SystemTime;

use fleet::{ConfigEntry, EntryKind, FleetStatus, PgStore};

use crate::catalog;
use crate::connect::anyhow_lite::Result;

/// The fleet's database and its configuration file.
pub struct Fleet {
    store: PgStore,
    file_text: String,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("store", &self.store)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Where a source is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// In the configuration file.
    File,
    /// In the fleet's database.
    Store,
}

impl Fleet {
    /// Connects to the fleet's database at `store_url`, with the configuration file at `path`.
    pub async fn open(path: &Path, store_url: &str) -> Result<Fleet> {
        let store = PgStore::connect(store_url)
            .await
            .map_err(|e| format!("--store: {e}"))?;
        let file_text =
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Fleet {
            store,
            file_text,
            path: path.to_path_buf(),
        })
    }

    async fn entries(&self) -> Result<Vec<ConfigEntry>> {
        Ok(self
            .store
            .catalog()
            .entries()
            .await
            .map_err(|e| e.to_string())?
            .1)
    }

    /// The entries of `text` and the fleet's configuration as it would be with them (nothing
    /// is stored).
    async fn with_added(&self, text: &str) -> Result<(Vec<ConfigEntry>, crate::config::Config)> {
        let new = catalog::entries_of(text)?;
        if new.is_empty() {
            return Err("nothing to add: no [[apps]], [[sources]] or [[outbounds]]".into());
        }
        let mut all: Vec<ConfigEntry> = self
            .entries()
            .await?
            .into_iter()
            .filter(|e| !new.iter().any(|n| n.kind == e.kind && n.name == e.name))
            .collect();
        all.extend(new.iter().cloned());
        let (cfg, _) = catalog::resolve(&self.file_text, &self.path, &all)?;
        Ok((new, cfg))
    }

    /// The fleet's configuration as [`add`](Self::add)ing `text` would make it, checked by
    /// the same rules, without storing anything: what needs the new entries before the
    /// workers see them (a sign-in saved first) uses it.
    pub async fn preview(&self, text: &str) -> Result<crate::config::Config> {
        Ok(self.with_added(text).await?.1)
    }

    /// Adds (or replaces) the `[[apps]]`, `[[sources]]` and `[[outbounds]]` of `text`, after
    /// checking that the fleet's configuration with them resolves; returns what was stored.
    pub async fn add(&self, text: &str) -> Result<Vec<(EntryKind, String)>> {
        let (new, _) = self.with_added(text).await?;
        let cat = self.store.catalog();
        // Apps and outbounds first: a worker that reads between two puts finds what a new
        // source refers to.
        let mut ordered = new;
        ordered.sort_by_key(|e| match e.kind {
            EntryKind::Source => 1,
            _ => 0,
        });
        let mut done = Vec::new();
        for e in ordered {
            cat.put(e.kind, &e.name, &e.toml)
                .await
                .map_err(|err| err.to_string())?;
            done.push((e.kind, e.name));
        }
        Ok(done)
    }

    /// Removes the entry `kind`/`name` from the database, after checking that nothing left
    /// refers to it.
    pub async fn remove(&self, kind: EntryKind, name: &str) -> Result<()> {
        let all = self.entries().await?;
        if !all.iter().any(|e| e.kind == kind && e.name == name) {
            return Err(self.not_in_store(kind, name));
        }
        let rest: Vec<ConfigEntry> = all
            .into_iter()
            .filter(|e| !(e.kind == kind && e.name == name))
            .collect();
        catalog::resolve(&self.file_text, &self.path, &rest)?;
        self.store
            .catalog()
            .remove(kind, name)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn not_in_store(&self, kind: EntryKind, name: &str) -> String {
        let in_file = catalog::merge(&self.file_text, &[])
            .ok()
            .and_then(|doc| {
                doc.get(catalog::array_of(kind))
                    .and_then(toml::Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .any(|v| v.get("name").and_then(toml::Value::as_str) == Some(name))
                    })
            })
            .unwrap_or(false);
        if in_file {
            format!(
                "{kind} {name:?} is defined in {}: change it there",
                self.path.display()
            )
        } else {
            format!("there is no {kind} {name:?} in the fleet's database")
        }
    }

    /// Replaces the routing of the source `name` (kept in the database) with `routing`: the
    /// TOML of its `[sources.routing]` table (`[mailbox]` and `[[rules]]`).
    pub async fn set_routing(&self, name: &str, routing: &str) -> Result<()> {
        let all = self.entries().await?;
        let Some(entry) = all
            .iter()
            .find(|e| e.kind == EntryKind::Source && e.name == name)
        else {
            return Err(self.not_in_store(EntryKind::Source, name));
        };
        let mut table: toml::Table = entry.toml.parse().map_err(|e: toml::de::Error| {
            format!("source {name} in the database: {}", e.message())
        })?;
        let routing: toml::Table = routing
            .parse()
            .map_err(|e: toml::de::Error| format!("the routing is not TOML: {}", e.message()))?;
        table.insert("routing".into(), toml::Value::Table(routing));
        let toml = toml::to_string(&table).map_err(|e| e.to_string())?;
        let mut changed: Vec<ConfigEntry> = all
            .into_iter()
            .filter(|e| !(e.kind == EntryKind::Source && e.name == name))
            .collect();
        changed.push(ConfigEntry::new(EntryKind::Source, name, toml.clone()));
        catalog::resolve(&self.file_text, &self.path, &changed)?;
        self.store
            .catalog()
            .put(EntryKind::Source, name, &toml)
            .await
            .map_err(|e| e.to_string())
    }

    /// Every source of the fleet with where it is defined, in configuration order.
    pub async fn sources(&self) -> Result<Vec<(String, Origin)>> {
        let entries = self.entries().await?;
        let (cfg, _) = catalog::resolve(&self.file_text, &self.path, &entries)?;
        Ok(cfg
            .sources
            .iter()
            .map(|s| {
                let stored = entries
                    .iter()
                    .any(|e| e.kind == EntryKind::Source && e.name == s.name);
                let origin = if stored { Origin::Store } else { Origin::File };
                (s.name.clone(), origin)
            })
            .collect())
    }

    /// The TOML of the source `name` as the fleet resolves it (its app and outbound too).
    pub async fn show(&self, name: &str) -> Result<String> {
        let entries = self.entries().await?;
        let (cfg, doc) = catalog::resolve(&self.file_text, &self.path, &entries)?;
        if cfg.source(name).is_none() {
            return Err(format!("there is no source {name:?}"));
        }
        Ok(catalog::fingerprint(&doc, name))
    }

    /// The fleet's configuration (the file with the database's entries), resolved, and the
    /// merged document it was resolved from.
    pub async fn config(&self) -> Result<(crate::config::Config, toml::Table)> {
        let entries = self.entries().await?;
        catalog::resolve(&self.file_text, &self.path, &entries)
    }

    /// The token cache and delta and sync state the fleet's workers share (a sign-in saved here is the
    /// one the workers use).
    pub fn stores(&self) -> crate::connect::SharedStores {
        crate::connect::SharedStores::of_fleet(&self.store)
    }

    /// The fleet at a glance.
    pub async fn status(&self) -> Result<FleetStatus> {
        let names: Vec<String> = self.sources().await?.into_iter().map(|(n, _)| n).collect();
        self.store
            .status()
            .fleet(&names)
            .await
            .map_err(|e| e.to_string())
    }
}

fn ago(now: SystemTime, then: Option<SystemTime>) -> String {
    match then {
        None => "-".into(),
        Some(t) => match now.duration_since(t) {
            Ok(d) if d.as_secs() < 120 => format!("{}s ago", d.as_secs()),
            Ok(d) if d.as_secs() < 7200 => format!("{}m ago", d.as_secs() / 60),
            Ok(d) => format!("{}h ago", d.as_secs() / 3600),
            Err(_) => "now".into(),
        },
    }
}

fn rfc3339(t: Option<SystemTime>) -> serde_json::Value {
    t.and_then(|t| {
        time::OffsetDateTime::from(t)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// `status` as text: a line per source, then a line per worker.
pub fn status_text(s: &FleetStatus) -> String {
    let mut out = format!(
        "{:<20} {:<8} {:<10} {:>8} {:<10} {:<12} {:<24} {:>5}\n",
        "SOURCE", "STATUS", "SINCE", "WAITING", "OLDEST", "LAST PASS", "WORKER", "OWED"
    );
    for src in &s.sources {
        let paused = src
            .paused_until
            .and_then(|t| t.duration_since(s.now).ok())
            .filter(|_| src.online == Some(true));
        let status = match src.online {
            Some(true) if paused.is_some() => "PAUSED",
            Some(true) => "ONLINE",
            Some(false) => "OFFLINE",
            None => "-",
        };
        let since = if src.online == Some(false) {
            ago(s.now, src.offline_since)
        } else {
            "-".into()
        };
        let worker = src.lease.as_ref().map_or("(none)", |l| l.0.as_str());
        out.push_str(&format!(
            "{:<20} {:<8} {:<10} {:>8} {:<10} {:<12} {:<24} {:>5}\n",
            src.source,
            status,
            since,
            src.waiting.map_or("-".into(), |w| w.to_string()),
            ago(s.now, src.oldest_waiting),
            ago(s.now, src.last_pass.1),
            worker,
            src.owed
        ));
        if let (Some(false), Some(reason)) = (src.online, &src.reason) {
            out.push_str(&format!("    {reason}\n"));
        }
        if let Some(left) = paused {
            out.push_str(&format!(
                "    throttled by the service: asked nothing for {}s more\n",
                left.as_secs()
            ));
        }
    }
    out.push_str(&format!(
        "\n{:<24} {:<16} SOURCES\n",
        "WORKER", "HEARTBEAT UNTIL"
    ));
    for w in &s.workers {
        let until = match w.heartbeat_until.duration_since(s.now) {
            Ok(d) => format!("in {}s", d.as_secs()),
            Err(_) => "expired".into(),
        };
        out.push_str(&format!(
            "{:<24} {:<16} {}\n",
            w.worker,
            until,
            w.sources.join(", ")
        ));
    }
    out
}

/// `status --json`.
pub fn status_json(s: &FleetStatus) -> serde_json::Value {
    serde_json::json!({
        "now": rfc3339(Some(s.now)),
        "sources": s.sources.iter().map(|src| serde_json::json!({
            "name": src.source,
            "status": match src.online { Some(true) => "ONLINE", Some(false) => "OFFLINE", None => "UNKNOWN" },
            "reason": src.reason,
            "offline_since": rfc3339(src.offline_since),
            "waiting": src.waiting,
            "oldest_waiting": rfc3339(src.oldest_waiting),
            "oldest_waiting_age_secs": src.oldest_waiting.and_then(|t| s.now.duration_since(t).ok()).map(|d| d.as_secs()),
            "last_pass_started": rfc3339(src.last_pass.0),
            "last_pass_finished": rfc3339(src.last_pass.1),
            "worker": src.lease.as_ref().map(|l| l.0.clone()),
            "epoch": src.lease.as_ref().map(|l| l.1),
            "lease_until": rfc3339(src.lease.as_ref().map(|l| l.2)),
            "acknowledgements_owed": src.owed,
            "paused_until": rfc3339(src.paused_until.filter(|t| *t > s.now)),
        })).collect::<Vec<_>>(),
        "workers": s.workers.iter().map(|w| serde_json::json!({
            "name": w.worker,
            "heartbeat_until": rfc3339(Some(w.heartbeat_until)),
            "sources": w.sources,
        })).collect::<Vec<_>>(),
    })
}
