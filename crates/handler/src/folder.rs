//! The built-in folder handler: one `.eml`, its text and attachments, and one JSON routing
//! record per message, in a folder per project.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use httpcore::fs::{FileMode, create_private_dir_all, sync_dir, write_replacing};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::content::{AttachmentKind, ContentError, ContentLimits, MessageContent};
use crate::{Handler, HandlerError, Inbound};

/// Writes each routed message to `<root>/<project>/<id>.eml` with a `<id>.json` routing record
/// beside it (project, catch address, rule, sender policy, source, key), its text in
/// `<id>.txt` and its attachments in `<id>.files/` (safe names; one over the
/// [`ContentLimits`] is listed in the record with the reason, not written).
///
/// Everything it writes is readable by the owner only (files `0600`, folders `0700`), as a
/// mail store is.
///
/// Writing is atomic (temporary file, then rename), durable before [`Handler::handle`] returns
/// (each file and the folder synced), and idempotent by [`Inbound::key`]: a message handed over
/// twice is written once, and one whose record is there without every file it names (a crash
/// part-way) is written again.
#[derive(Debug, Clone)]
pub struct FolderHandler {
    root: PathBuf,
    limits: ContentLimits,
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
    /// The text file's name (`<id>.txt`), when the message has text.
    pub text: Option<String>,
    /// Whether the message has an HTML body (it is in the `.eml`).
    pub has_html: bool,
    /// The attachments, in order.
    pub attachments: Vec<AttachmentRecord>,
    /// Attachments beyond the limit's count, not listed.
    pub attachments_left_out: usize,
    /// Why the content could not be read (the `.eml` is still written), if it could not.
    pub content_error: Option<String>,
    /// The key of the thread's first message: this message's own key when it starts one.
    pub thread_root: String,
    /// The earlier message it answers, and by which reference, if one was found.
    pub thread: Option<crate::ThreadMatch>,
    /// The ticket system's subject token (`HELP-123`), if configured and present.
    pub subject_token: Option<String>,
}

/// An attachment in a [`RoutingRecord`].
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct AttachmentRecord {
    /// Its safe name.
    pub name: String,
    /// Where it was written, relative to the record (`<id>.files/<name>`), or `null` when
    /// it was not.
    pub file: Option<String>,
    /// Why it was not written (over the size limit, or a write error).
    pub refused: Option<String>,
    /// `type/subtype`.
    pub content_type: String,
    /// Size in bytes.
    pub size: usize,
    /// The `Content-ID`.
    pub content_id: Option<String>,
    /// Shown inline in the body.
    pub inline: bool,
    /// `file`, `message` or `tnef`.
    pub kind: AttachmentKind,
}

impl FolderHandler {
    /// A handler writing under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderHandler {
            root: root.into(),
            limits: ContentLimits::default(),
        }
    }

    /// Uses `limits` for attachments instead of [`ContentLimits::default`].
    pub fn with_limits(mut self, limits: ContentLimits) -> Self {
        self.limits = limits;
        self
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
        if !dir.is_dir() {
            create_private_dir_all(&dir)?;
            // The new folder's own entry, so that what is written in it survives a crash.
            sync_dir(&self.root)?;
        }
        let stem = file_stem(&msg.key);
        let json_path = dir.join(format!("{stem}.json"));
        if written_whole(&dir, &json_path) {
            // Already written: idempotent by key. A run that stopped before its last step may
            // have left the folder unsynced, so it is synced again before the message counts.
            return sync_dir(&dir);
        }
        // Each file's content is synced before it is renamed into place, and the folder once
        // at the end: two fsyncs fewer for a message with text than a synced folder per file.
        // Until then a crash may keep the record and lose a file renamed before it; the record
        // alone does not count as written ([`written_whole`]), so the message is written again.
        let eml = format!("{stem}.eml");
        write_replacing(&dir.join(&eml), &msg.raw.mime, FileMode::OwnerOnly)?;
        let (content, content_error) = match MessageContent::parse(&msg.raw.mime, &self.limits) {
            Ok(c) => (c, None),
            Err(e) => (MessageContent::default(), Some(e.to_string())),
        };
        let text = match &content.text {
            Some(t) => {
                let name = format!("{stem}.txt");
                write_replacing(&dir.join(&name), t.as_bytes(), FileMode::OwnerOnly)?;
                Some(name)
            }
            None => None,
        };
        let files = format!("{stem}.files");
        if content.attachments.iter().any(|a| a.bytes().is_ok()) {
            create_private_dir_all(&dir.join(&files))?;
        }
        let mut attachments = Vec::with_capacity(content.attachments.len());
        for a in &content.attachments {
            let (file, refused) = match a.save_in(&dir.join(&files)) {
                Ok(_) => (Some(format!("{files}/{}", a.name)), None),
                // Too large: listed with the reason. A write that failed is tried again with
                // the whole message.
                Err(e @ ContentError::TooLarge { .. }) => (None, Some(e.to_string())),
                Err(e) => return Err(std::io::Error::other(e)),
            };
            attachments.push(AttachmentRecord {
                name: a.name.clone(),
                file,
                refused,
                content_type: a.content_type.clone(),
                size: a.size,
                content_id: a.content_id.clone(),
                inline: a.inline,
                kind: a.kind,
            });
        }
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
            text,
            has_html: content.html.is_some(),
            attachments,
            attachments_left_out: content.attachments_left_out,
            content_error,
            thread_root: msg.thread_root().to_owned(),
            thread: msg.thread().cloned(),
            subject_token: msg.subject_token().map(str::to_owned),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        // The record is written last: with the files it names, it means the message is
        // completely written.
        write_replacing(&json_path, &json, FileMode::OwnerOnly)?;
        sync_dir(&dir)
    }
}

/// What a routing record says was written beside it.
#[derive(Deserialize)]
struct WrittenFiles {
    eml: String,
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<WrittenAttachment>,
}

#[derive(Deserialize)]
struct WrittenAttachment {
    file: Option<String>,
}

/// Whether the record at `json_path` is there and readable, and every file it names is in
/// `dir`: the mark of a message written whole.
fn written_whole(dir: &Path, json_path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(json_path) else {
        return false;
    };
    let Ok(record) = serde_json::from_slice::<WrittenFiles>(&bytes) else {
        return false;
    };
    std::iter::once(record.eml)
        .chain(record.text)
        .chain(record.attachments.into_iter().filter_map(|a| a.file))
        .all(|name| dir.join(name).is_file())
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
