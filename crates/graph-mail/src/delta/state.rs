//! The saved state of one folder and how a round's changes are merged into it.

use std::collections::HashSet;
use std::fmt;

use connector::Error;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::{DeltaItem, MessageMeta};

pub(super) const STATE_VERSION: u32 = 1;

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

impl Pending {
    fn key(&self) -> (i64, u64) {
        (self.received.unwrap_or(i64::MIN), self.seq)
    }

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
        if let Some(r) = nanos(m) {
            self.received = Some(r);
        }
    }
}

fn nanos(m: &MessageMeta) -> Option<i64> {
    m.received
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
}

/// The saved delta state of one folder: the `@odata.deltaLink` to start the next round from,
/// the messages seen but not yet acknowledged (so a restart hands them over again instead of
/// losing them), and the newest receive time seen (so a message that is already read when it
/// shows up is told apart from an old message that merely changed).
///
/// It is stored as JSON ([`to_json`](Self::to_json) / [`from_json`](Self::from_json)); the
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
    #[serde(default)]
    pub(super) pending: Vec<Pending>,
    #[serde(default)]
    next_seq: u64,
}

impl Default for DeltaState {
    fn default() -> Self {
        DeltaState {
            version: STATE_VERSION,
            delta_link: None,
            watermark: None,
            at_watermark: Vec::new(),
            pending: Vec::new(),
            next_seq: 0,
        }
    }
}

impl fmt::Debug for DeltaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The link's query is Graph's sync token: not a credential, but not worth printing.
        f.debug_struct("DeltaState")
            .field("has_delta_link", &self.delta_link.is_some())
            .field("pending", &self.pending.len())
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
        self.pending.iter().map(|p| p.id.as_str()).collect()
    }

    /// The state as JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and vectors always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a state written by [`to_json`](Self::to_json); anything else is a
    /// [`Configuration`](connector::ErrorKind::Configuration) error.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| corrupt(format!("it is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(corrupt("it is not a JSON object"));
        }
        let s: DeltaState = serde_json::from_value(v)
            .map_err(|e| corrupt(format!("it is not a delta state: {e}")))?;
        s.validate()?;
        Ok(s)
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.version != STATE_VERSION {
            return Err(corrupt(format!(
                "version {} is not the supported {STATE_VERSION}",
                self.version
            )));
        }
        let mut ids = HashSet::new();
        for p in &self.pending {
            if p.id.is_empty() {
                return Err(corrupt("a pending message has an empty id"));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(corrupt(format!("message {} is pending twice", p.id)));
            }
            if p.seq >= self.next_seq {
                return Err(corrupt(
                    "a pending message's sequence number is out of range",
                ));
            }
        }
        Ok(())
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
        match (nanos(m), self.watermark) {
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
                    let n = self.pending.len();
                    self.pending.retain(|p| p.id != id);
                    out.removed += n - self.pending.len();
                    listed.remove(&id);
                }
                DeltaItem::Changed(m) => {
                    if let Some(r) = nanos(&m) {
                        newest.push((r, m.id.clone()));
                    }
                    listed.insert(m.id.clone());
                    if let Some(p) = self.pending.iter_mut().find(|p| p.id == m.id) {
                        p.update(&m);
                    } else if before.is_new(&m, first_round) {
                        self.pending.push(Pending {
                            received: nanos(&m),
                            id: m.id,
                            seq: self.next_seq,
                            internet_message_id: m.internet_message_id,
                            to: m.to,
                            cc: m.cc,
                        });
                        self.next_seq += 1;
                        out.added += 1;
                    }
                }
            }
        }
        if full {
            let n = self.pending.len();
            self.pending.retain(|p| listed.contains(&p.id));
            out.removed += n - self.pending.len();
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
        self.pending.sort_by_key(Pending::key);
        self.delta_link = Some(delta_link);
        out
    }

    /// Drops acknowledged messages; whether any was pending.
    pub(super) fn forget(&mut self, ids: &[&str]) -> bool {
        let n = self.pending.len();
        self.pending.retain(|p| !ids.contains(&p.id.as_str()));
        n != self.pending.len()
    }

    /// Up to `max` pending messages after `after`, and whether more follow.
    pub(super) fn page(&self, after: Option<(i64, u64)>, max: usize) -> (Vec<&Pending>, bool) {
        let mut rest = self
            .pending
            .iter()
            .filter(|p| after.is_none_or(|a| p.key() > a));
        let page: Vec<&Pending> = rest.by_ref().take(max).collect();
        (page, rest.next().is_some())
    }
}

fn corrupt(why: impl fmt::Display) -> Error {
    Error::configuration(format!("the saved delta state is unreadable: {why}"))
}

const CURSOR_PREFIX: &str = "delta:";

pub(super) fn cursor_of(p: &Pending) -> String {
    let (r, s) = p.key();
    format!("{CURSOR_PREFIX}{r}:{s}")
}

pub(super) fn parse_cursor(c: &str) -> Result<(i64, u64), Error> {
    let bad = || {
        Error::configuration(format!(
            "{c:?} is not a cursor of a delta-mode Graph source (start a new pass with no cursor)"
        ))
    };
    let rest = c.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let (r, s) = rest.split_once(':').ok_or_else(bad)?;
    Ok((r.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?))
}
