//! The saved state of one folder and how a round's changes are merged into it.

use std::collections::HashSet;
use std::fmt;

use connector::waiting::{Waiting, WaitingEntry, received_nanos};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::{DeltaItem, MessageMeta};

const STATE_VERSION: u32 = 1;

fn state_version() -> u32 {
    STATE_VERSION
}

/// A message seen in the folder's delta stream and not acknowledged yet: everything needed to
/// hand it over again after a restart without asking Graph for its properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) id: String,
    /// Order of first appearance, a tie-breaker for equal receive times.
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    internet_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    to: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cc: Vec<String>,
    /// `receivedDateTime` in Unix nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received: Option<i64>,
}

impl WaitingEntry for Pending {
    fn id(&self) -> &str {
        &self.id
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn received(&self) -> Option<i64> {
        self.received
    }
}

impl Pending {
    pub(super) fn meta(&self) -> MessageMeta {
        MessageMeta {
            id: self.id.clone(),
            internet_message_id: self.internet_message_id.clone(),
            subject: None,
            to: self.to.clone(),
            cc: self.cc.clone(),
            received: self
                .received
                .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok()),
            is_read: None,
            headers: Vec::new(),
        }
    }

    fn update(&mut self, m: &MessageMeta) {
        if m.internet_message_id.is_some() {
            self.internet_message_id.clone_from(&m.internet_message_id);
        }
        if !m.to.is_empty() || !m.cc.is_empty() {
            self.to.clone_from(&m.to);
            self.cc.clone_from(&m.cc);
        }
        if let Some(r) = received_nanos(m.received) {
            self.received = Some(r);
        }
    }
}

/// The saved delta state of one folder: the `@odata.deltaLink` to start the next round from,
/// the messages seen but not yet acknowledged (so a restart hands them over again instead of
/// losing them), and the newest receive time seen (so a message that is already read when it
/// shows up is told apart from an old message that merely changed).
///
/// It is stored as JSON ([`KeptState::to_json`](httpcore::KeptState::to_json), read back checked by
/// [`KeptState::from_json`](httpcore::KeptState::from_json)); the
/// delta link inside is a credential-free URL, but treat the state like any other mailbox data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    #[serde(default = "state_version")]
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) delta_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    watermark: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    at_watermark: Vec<String>,
    #[serde(flatten)]
    waiting: Waiting<Pending>,
}

impl Default for DeltaState {
    fn default() -> Self {
        DeltaState {
            version: STATE_VERSION,
            delta_link: None,
            watermark: None,
            at_watermark: Vec::new(),
            waiting: Waiting::default(),
        }
    }
}

impl fmt::Debug for DeltaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The link's query is Graph's sync token: not a credential, but not worth printing.
        f.debug_struct("DeltaState")
            .field("has_delta_link", &self.delta_link.is_some())
            .field("pending", &self.waiting.len())
            .field("watermark", &self.watermark)
            .finish()
    }
}

/// How a round's changes were merged into the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Merged {
    pub(super) added: usize,
    pub(super) removed: usize,
}

impl DeltaState {
    /// An empty state: the next round is a full sync.
    pub fn new() -> Self {
        Self::default()
    }

    /// The delta link the next round starts from, if a round has completed.
    pub fn delta_link(&self) -> Option<&str> {
        self.delta_link.as_deref()
    }

    /// Ids of the messages seen and not yet acknowledged, oldest first.
    pub fn pending_ids(&self) -> Vec<&str> {
        self.waiting.ids()
    }

    /// The messages seen and not yet acknowledged, oldest first.
    pub(super) fn pending(&self) -> &[Pending] {
        self.waiting.entries()
    }

    /// Whether a changed message this state has not seen is new mail. Unread messages are.
    /// A read one is new only if it arrived after everything seen so far (someone read it
    /// before this round); older read messages are changes to mail already seen (including
    /// this source's own "mark read" acknowledgements). On the very first sync, read messages
    /// are history.
    fn is_new(&self, m: &MessageMeta, first_round: bool) -> bool {
        if m.is_read != Some(true) {
            return true;
        }
        match (received_nanos(m.received), self.watermark) {
            (Some(r), Some(w)) => r > w || (r == w && !self.at_watermark.contains(&m.id)),
            (Some(_), None) => !first_round,
            (None, _) => false,
        }
    }

    /// Merges one complete round. `full` says the round listed the whole folder (a first
    /// sync or a resync): pending messages it did not list have left the folder.
    pub(super) fn merge(
        &mut self,
        items: Vec<DeltaItem>,
        delta_link: String,
        full: bool,
    ) -> Merged {
        let first_round = full && self.delta_link.is_none();
        let mut out = Merged::default();
        let mut listed: HashSet<String> = HashSet::new();
        let mut newest: Vec<(i64, String)> = Vec::new();
        // Judged against the state before this round (a watermark moved mid-round would hide
        // read messages listed after a newer one).
        let before = self.clone();
        for item in items {
            match item {
                DeltaItem::Removed { id, .. } => {
                    out.removed += self.waiting.retain(|p| p.id != id);
                    listed.remove(&id);
                }
                DeltaItem::Changed(m) => {
                    if let Some(r) = received_nanos(m.received) {
                        newest.push((r, m.id.clone()));
                    }
                    listed.insert(m.id.clone());
                    if let Some(p) = self.waiting.get_mut(&m.id) {
                        p.update(&m);
                    } else if before.is_new(&m, first_round) {
                        self.waiting.push_with(|seq| Pending {
                            received: received_nanos(m.received),
                            id: m.id,
                            seq,
                            internet_message_id: m.internet_message_id,
                            to: m.to,
                            cc: m.cc,
                        });
                        out.added += 1;
                    }
                }
            }
        }
        if full {
            out.removed += self.waiting.retain(|p| listed.contains(&p.id));
        }
        if let Some(max) = newest.iter().map(|(r, _)| *r).max() {
            let at: Vec<String> = newest
                .into_iter()
                .filter(|(r, _)| *r == max)
                .map(|(_, id)| id)
                .collect();
            match self.watermark {
                Some(w) if w == max => {
                    for id in at {
                        if !self.at_watermark.contains(&id) {
                            self.at_watermark.push(id);
                        }
                    }
                }
                Some(w) if w > max => {}
                _ => {
                    self.watermark = Some(max);
                    self.at_watermark = at;
                }
            }
        }
        self.waiting.sort();
        self.delta_link = Some(delta_link);
        out
    }

    /// Drops acknowledged messages; whether any was pending.
    pub(super) fn forget(&mut self, ids: &[&str]) -> bool {
        self.waiting.forget(ids)
    }

    /// The messages seen and not yet acknowledged, to page through
    /// ([`Waiting::page_at`] with [`CURSORS`]).
    pub(super) fn waiting(&self) -> &Waiting<Pending> {
        &self.waiting
    }
}

/// The prefix of a delta-mode source's cursors, and the source they name when refused.
pub(super) const CURSORS: (&str, &str) = ("delta:", "a delta-mode Graph source");

impl httpcore::KeptState for DeltaState {
    const WHAT: &'static str = "delta state";
    const VERSION: u32 = STATE_VERSION;
    const ON_DISCARD: &'static str = "to start a full resync";

    fn check(&self) -> Result<(), String> {
        connector::waiting::check_version(self.version, STATE_VERSION)?;
        self.waiting.check()
    }
}
