//! The built-in folder handler: one `.eml` and one JSON routing record per message, in a folder
//! per project.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use httpcore::fs::{FileMode, create_private_dir_all, write_atomic};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Handler, HandlerError, Inbound};

/// Writes each routed message to `<root>/<project>/<id>.eml` with a `<id>.json` routing record
/// beside it (project, catch address, rule, sender policy, source, key).
///
/// Writing is atomic (temporary file, then rename) and idempotent by [`Inbound::key`]: a
/// message handed over twice is written once.
#[derive(Debug, Clone)]
pub struct FolderHandler {
    root: PathBuf,
}

/// The routing record written beside each message.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct RoutingRecord<'a> {
    /// The source's name.
    pub source: &'a str,
    /// The idempotency key.
    pub key: &'a str,
    /// The project key, or `null`.
    pub project: Option<&'a str>,
    /// The catch address, or `null` when undetermined.
    pub catch_address: Option<String>,
    /// The rule's position and kind, as text.
    pub rule: Option<String>,
    /// How the route was decided, in words.
    pub route_explained: String,
    /// The sender chosen for answers, in words.
    pub sender_policy: Option<String>,
    /// The `Message-ID`.
    pub message_id: Option<&'a str>,
    /// The subject.
    pub subject: &'a str,
    /// The sender.
    pub from: Option<&'a str>,
    /// The `.eml` file's name.
    pub eml: String,
}

impl FolderHandler {
    /// A handler writing under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderHandler { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder a project's messages go to.
    pub fn project_dir(&self, project: Option<&str>) -> PathBuf {
        self.root.join(safe_name(project.unwrap_or("_unrouted")))
    }

    fn write(&self, msg: &Inbound) -> std::io::Result<()> {
        let dir = self.project_dir(msg.project());
        create_private_dir_all(&dir)?;
        let stem = file_stem(&msg.key);
        let json_path = dir.join(format!("{stem}.json"));
        if json_path.exists() {
            return Ok(()); // already written: idempotent by key
        }
        let eml = format!("{stem}.eml");
        write_atomic(&dir.join(&eml), &msg.raw.mime, FileMode::OwnerOnly)?;
        let record = RoutingRecord {
            source: &msg.source,
            key: &msg.key,
            project: msg.project(),
            catch_address: msg.route.catch_address().map(|a| a.to_string()),
            rule: msg
                .route
                .rule
                .map(|r| format!("#{} ({:?})", r.index + 1, r.kind)),
            route_explained: msg.route.explain(),
            sender_policy: msg.sender.as_ref().map(|s| s.explain()),
            message_id: msg.message_id(),
            subject: msg.subject(),
            from: msg.from_address(),
            eml,
        };
        let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        // The record is written last: its presence means the message is completely written.
        write_atomic(&json_path, &json, FileMode::OwnerOnly)
    }
}

#[async_trait]
impl Handler for FolderHandler {
    async fn handle(&self, message: &Inbound) -> Result<(), HandlerError> {
        let this = self.clone();
        let msg = message.clone();
        tokio::task::spawn_blocking(move || this.write(&msg))
            .await
            .map_err(|e| HandlerError::retry(format!("writer task: {e}")))?
            .map_err(|e| HandlerError::retry(format!("writing to {}: {e}", self.root.display())))
    }
}

/// A file-name-safe, collision-free name for a key.
fn file_stem(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Keeps letters, digits, `-`, `_` and `.` (not leading), so a project key cannot climb out of
/// the root folder.
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "_".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_cannot_escape_the_root() {
        assert_eq!(safe_name("../../etc"), "_.._etc");
        assert_eq!(safe_name("PAY"), "PAY");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("a/b\\c"), "a_b_c");
    }

    #[test]
    fn stems_differ_per_key() {
        assert_ne!(file_stem("a|1"), file_stem("a|2"));
        assert_eq!(file_stem("a|1").len(), 24);
    }
}
