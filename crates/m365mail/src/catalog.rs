//! A fleet's configuration: the file every worker is started with, plus the apps, sources and
//! outbounds kept in the database (`fleet::PgCatalog`), which `m365mail sources` changes while
//! the fleet runs.
//!
//! Each database entry is the TOML of one `[[apps]]`, `[[sources]]` (with its routing) or
//! `[[outbounds]]` table, exactly as the file would have it. The two are merged into one
//! configuration and resolved as a file is ([`Config::parse`]), so a database entry is checked
//! by the same rules, with the same messages. An entry never holds a secret: an app in the
//! database names its secret by reference (`client_secret_env`, `client_secret_file`, or a
//! certificate file with `certificate_password_env`), resolved on each worker from its own
//! environment and files, so the database never stores one; an inline `client_secret` is
//! refused. (A reference rather than encryption: the operator keeps secrets where they already
//! keep them, per machine, and a database dump reveals none.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fleet::{ConfigEntry, EntryKind, PgCatalog};
use handler::{CatalogSource, SourceCatalog};

use crate::config::Config;
use crate::connect::anyhow_lite::Result;
use crate::connect::{Providers, SharedStores};
use crate::push::FleetPush;

/// The configuration file's table that holds entries of `kind`.
pub(crate) fn array_of(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::App => "apps",
        EntryKind::Outbound => "outbounds",
        _ => "sources",
    }
}

/// Keys an entry in the database may not have: secrets in clear text.
const INLINE_SECRETS: &[&str] = &["client_secret"];

/// The entries of a TOML document of `[[apps]]`, `[[sources]]` and `[[outbounds]]` tables (what
/// `m365mail sources add --file` reads), each checked: a name, and no secret in clear text.
pub fn entries_of(text: &str) -> Result<Vec<ConfigEntry>> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // toml's message quotes the offending line, which may hold a secret: only where.
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        format!("not TOML{at}: {}", e.message())
    })?;
    let mut out = Vec::new();
    for (key, value) in &doc {
        let kind = match key.as_str() {
            "apps" => EntryKind::App,
            "sources" => EntryKind::Source,
            "outbounds" => EntryKind::Outbound,
            other => {
                return Err(format!(
                    "[{other}]: only [[apps]], [[sources]] and [[outbounds]] can be kept in the \
                     fleet's database (the [handler] and [notifications] sections stay in the file)"
                ));
            }
        };
        let tables = value
            .as_array()
            .ok_or_else(|| format!("{key}: write it as [[{key}]] tables"))?;
        for t in tables {
            let t = t
                .as_table()
                .ok_or_else(|| format!("{key}: write it as [[{key}]] tables"))?;
            out.push(entry(kind, t)?);
        }
    }
    Ok(out)
}

/// One entry from its table.
fn entry(kind: EntryKind, table: &toml::Table) -> Result<ConfigEntry> {
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| format!("[[{}]]: every entry needs a `name`", array_of(kind)))?
        .to_owned();
    if let Some(secret) = INLINE_SECRETS.iter().find(|k| table.contains_key(**k)) {
        return Err(format!(
            "{}.{name}.{secret}: a secret is never stored in the fleet's database; name it by \
             reference instead (client_secret_env or client_secret_file, read on each worker)",
            array_of(kind)
        ));
    }
    let toml = toml::to_string(table).map_err(|e| format!("{name}: {e}"))?;
    Ok(ConfigEntry::new(kind, name, toml))
}

/// The file's text with `entries` added to its arrays. An entry whose kind and name the file
/// already has is refused: the file is the operator's, the database does not override it.
pub fn merge(file_text: &str, entries: &[ConfigEntry]) -> Result<toml::Table> {
    let mut doc: toml::Table = file_text.parse().map_err(|e: toml::de::Error| {
        format!("the configuration file is not TOML: {}", e.message())
    })?;
    for e in entries {
        let table: toml::Table = e
            .toml
            .parse()
            .map_err(|err: toml::de::Error| format!("{} {}: {}", e.kind, e.name, err.message()))?;
        let array = doc
            .entry(array_of(e.kind))
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        let toml::Value::Array(items) = array else {
            return Err(format!(
                "{} in the file is not an array of tables",
                array_of(e.kind)
            ));
        };
        let clash = items
            .iter()
            .any(|v| v.get("name").and_then(toml::Value::as_str) == Some(e.name.as_str()));
        if clash {
            return Err(format!(
                "{} {:?} is in the configuration file and in the fleet's database; remove one",
                e.kind, e.name
            ));
        }
        items.push(toml::Value::Table(table));
    }
    Ok(doc)
}

/// [`merge`], resolved into a [`Config`] (paths relative to `path`'s folder).
pub fn resolve(
    file_text: &str,
    path: &Path,
    entries: &[ConfigEntry],
) -> Result<(Config, toml::Table)> {
    let doc = merge(file_text, entries)?;
    let text = toml::to_string(&doc).map_err(|e| e.to_string())?;
    let cfg = Config::parse(&text, path).map_err(|e| {
        // Lines are the merged document's: the key in the message is what names the entry.
        format!("the configuration with the fleet's entries: {e}")
    })?;
    Ok((cfg, doc))
}

/// What identifies a source's configuration: its table, its app's and its outbound's.
pub fn fingerprint(doc: &toml::Table, source: &str) -> String {
    let find = |array: &str, name: &str| -> String {
        doc.get(array)
            .and_then(toml::Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|v| v.get("name").and_then(toml::Value::as_str) == Some(name))
            })
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let table = find("sources", source);
    let parsed: Option<toml::Table> = table.parse().ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|t| t.get(k))
            .and_then(toml::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    format!(
        "{table}\n{}\n{}",
        find("apps", &field("app")),
        find("outbounds", &field("notify_through"))
    )
}

/// The sources of a running fleet ([`SourceCatalog`]): the file's and the database's, rebuilt
/// when the database's entries change.
pub struct StoreCatalog {
    catalog: PgCatalog,
    file_text: String,
    path: PathBuf,
    stores: SharedStores,
    /// Connections' token providers, kept while the apps do not change.
    providers: Mutex<(String, Providers)>,
    /// Push mode, when the worker serves it.
    push: Option<Arc<FleetPush>>,
}

impl std::fmt::Debug for StoreCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCatalog")
            .field("catalog", &self.catalog)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StoreCatalog {
    /// The catalog of the file `path` (whose text is `file_text`) and `catalog`'s entries, its
    /// connections keeping their tokens and delta state in `stores`.
    pub fn new(catalog: PgCatalog, file_text: String, path: PathBuf, stores: SharedStores) -> Self {
        let providers = Providers::shared(stores.clone());
        StoreCatalog {
            catalog,
            file_text,
            path,
            stores,
            providers: Mutex::new((String::new(), providers)),
            push: None,
        }
    }

    /// Sources in push mode (`mode = "push"`) are served in push mode through `push`: woken
    /// by their notifications, their subscriptions recorded in the fleet's database. Without
    /// it they are polled every poll interval.
    pub fn with_push(mut self, push: Arc<FleetPush>) -> Self {
        self.push = Some(push);
        self
    }

    /// The sources of `cfg` (whose merged document is `doc`, its apps `apps`).
    fn specs(&self, cfg: &Config, doc: &toml::Table, apps: String) -> Result<Vec<CatalogSource>> {
        let mut guard = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if guard.0 != apps {
            // An app changed: its connections start afresh (their tokens stay in the store).
            *guard = (apps, Providers::shared(self.stores.clone()));
        }
        let mut out = Vec::with_capacity(cfg.sources.len());
        for s in &cfg.sources {
            let mut spec = crate::handling::spec(cfg, s, &mut guard.1)?;
            if let Some(push) = &self.push {
                spec = push.attach(s, spec, &mut guard.1)?;
            }
            out.push(CatalogSource::new(spec, fingerprint(doc, &s.name)));
        }
        Ok(out)
    }

    async fn build(&self) -> Result<Vec<CatalogSource>> {
        let (_, entries) = self.catalog.entries().await.map_err(|e| e.to_string())?;
        let (cfg, doc) = resolve(&self.file_text, &self.path, &entries)?;
        let apps = doc.get("apps").map(ToString::to_string).unwrap_or_default();
        let out = self.specs(&cfg, &doc, apps)?;
        if let Some(push) = &self.push {
            push.built().await?;
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl SourceCatalog for StoreCatalog {
    async fn version(&self) -> std::result::Result<i64, String> {
        self.catalog.version().await.map_err(|e| e.to_string())
    }

    async fn sources(&self) -> std::result::Result<Vec<CatalogSource>, String> {
        self.build().await
    }
}
