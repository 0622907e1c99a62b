//! [`Waiting`]: the messages an incremental source (graph-mail's delta mode, ews-mail's sync
//! mode) has seen and not yet acknowledged, kept in its saved state so that a restart hands
//! them over again; oldest first, paged with cursors.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One waiting message: its id, the order it was first seen in (a tie-breaker) and when it
/// arrived.
pub trait WaitingEntry {
    /// The message's id at the source.
    fn id(&self) -> &str;
    /// Order of first appearance (given by [`Waiting::push_with`]).
    fn seq(&self) -> u64;
    /// When it arrived, in Unix nanoseconds, if known.
    fn received(&self) -> Option<i64>;
    /// Where it sorts: arrival, then first appearance.
    fn order(&self) -> (i64, u64) {
        (self.received().unwrap_or(i64::MIN), self.seq())
    }
}

/// The waiting messages of a saved state, serialized as `pending` and `next_seq` (flatten it
/// into the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting<T> {
    #[serde(default = "Vec::new")]
    pending: Vec<T>,
    #[serde(default)]
    next_seq: u64,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Waiting {
            pending: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<T: WaitingEntry> Waiting<T> {
    /// The entries, oldest first (after [`sort`](Self::sort)).
    pub fn entries(&self) -> &[T] {
        &self.pending
    }

    /// The entry of `id`, to update.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.pending.iter_mut().find(|p| p.id() == id)
    }

    /// The ids, oldest first (after [`sort`](Self::sort)).
    pub fn ids(&self) -> Vec<&str> {
        self.pending.iter().map(|p| p.id()).collect()
    }

    /// Whether `id` waits.
    pub fn contains(&self, id: &str) -> bool {
        self.pending.iter().any(|p| p.id() == id)
    }

    /// Adds the entry `make` builds with the next sequence number.
    pub fn push_with(&mut self, make: impl FnOnce(u64) -> T) {
        self.pending.push(make(self.next_seq));
        self.next_seq += 1;
    }

    /// Keeps the entries `keep` says; how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let n = self.pending.len();
        self.pending.retain(|p| keep(p));
        n - self.pending.len()
    }

    /// Drops `ids` (acknowledged, or gone); whether any was waiting.
    pub fn forget(&mut self, ids: &[&str]) -> bool {
        self.retain(|p| !ids.contains(&p.id())) > 0
    }

    /// Puts the entries in order: arrival, then first appearance.
    pub fn sort(&mut self) {
        self.pending.sort_by_key(T::order);
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Up to `max` entries after the one `after` points at, and whether more follow.
    pub fn page(&self, after: Option<(i64, u64)>, max: usize) -> (Vec<&T>, bool) {
        let mut rest = self
            .pending
            .iter()
            .filter(|p| after.is_none_or(|a| p.order() > a));
        let page: Vec<&T> = rest.by_ref().take(max).collect();
        (page, rest.next().is_some())
    }

    /// The page a caller asks for with `cursor`: up to `max` entries after the one the cursor
    /// points at (from the oldest for `None`), and the cursor of the next page when more
    /// follow. Cursors are [`cursor_of`]'s with `prefix`; any other is refused as
    /// [`parse_cursor`] refuses it, naming `source`.
    ///
    /// ```
    /// # use connector::waiting::{Waiting, WaitingEntry};
    /// # #[derive(Clone)] struct Seen(String, u64);
    /// # impl WaitingEntry for Seen {
    /// #     fn id(&self) -> &str { &self.0 }
    /// #     fn seq(&self) -> u64 { self.1 }
    /// #     fn received(&self) -> Option<i64> { None }
    /// # }
    /// let mut w = Waiting::default();
    /// for id in ["a", "b", "c"] {
    ///     w.push_with(|seq| Seen(id.into(), seq));
    /// }
    /// let source = "a delta-mode Graph source";
    /// let (first, next) = w.page_at(None, 2, "delta:", source).unwrap();
    /// assert_eq!(first.iter().map(|e| e.id()).collect::<Vec<_>>(), ["a", "b"]);
    /// let (rest, next) = w.page_at(next.as_deref(), 2, "delta:", source).unwrap();
    /// assert_eq!((rest.len(), next), (1, None));
    /// assert!(w.page_at(Some("sync:1:2"), 2, "delta:", source).is_err());
    /// ```
    pub fn page_at(
        &self,
        cursor: Option<&str>,
        max: usize,
        prefix: &str,
        source: &str,
    ) -> Result<(Vec<&T>, Option<String>), Error> {
        let after = cursor
            .map(|c| parse_cursor(prefix, source, c))
            .transpose()?;
        let (page, more) = self.page(after, max);
        let next = if more {
            page.last().map(|e| cursor_of(prefix, *e))
        } else {
            None
        };
        Ok((page, next))
    }

    /// Why a read-back set is impossible (an empty or repeated id, a sequence number not yet
    /// given), if it is.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        for p in &self.pending {
            if p.id().is_empty() {
                return Err("a pending message has an empty id".into());
            }
            if !ids.insert(p.id()) {
                return Err(format!("message {} is pending twice", p.id()));
            }
            if p.seq() >= self.next_seq {
                return Err("a pending message's sequence number is out of range".into());
            }
        }
        Ok(())
    }
}

/// When a message arrived as its [`WaitingEntry::received`]: Unix nanoseconds (`None` for
/// `None`, or out of `i64`'s range, centuries away).
pub fn received_nanos(at: Option<time::OffsetDateTime>) -> Option<i64> {
    at.and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
}

/// Why a saved state of `version` cannot be read by code that supports `supported`, if it
/// cannot.
pub fn check_version(version: u32, supported: u32) -> Result<(), String> {
    if version == supported {
        Ok(())
    } else {
        Err(format!(
            "version {version} is not the supported {supported}"
        ))
    }
}

/// The cursor of the page after `entry`: `{prefix}{received}:{seq}`.
pub fn cursor_of(prefix: &str, entry: &impl WaitingEntry) -> String {
    let (r, s) = entry.order();
    format!("{prefix}{r}:{s}")
}

/// Reads a cursor of [`cursor_of`] with `prefix`; anything else is a
/// [`Configuration`](crate::ErrorKind::Configuration) error saying whose cursor it is not
/// (`source`: "a delta-mode Graph source").
pub fn parse_cursor(prefix: &str, source: &str, c: &str) -> Result<(i64, u64), Error> {
    let bad = || {
        Error::configuration(format!(
            "{c:?} is not a cursor of {source} (start a new pass with no cursor)"
        ))
    };
    let rest = c.strip_prefix(prefix).ok_or_else(bad)?;
    let (r, s) = rest.split_once(':').ok_or_else(bad)?;
    Ok((r.parse().map_err(|_| bad())?, s.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct E(String, u64, Option<i64>);

    impl WaitingEntry for E {
        fn id(&self) -> &str {
            &self.0
        }
        fn seq(&self) -> u64 {
            self.1
        }
        fn received(&self) -> Option<i64> {
            self.2
        }
    }

    #[test]
    fn entries_are_paged_in_arrival_order_and_forgotten() {
        let mut w: Waiting<E> = Waiting::default();
        w.push_with(|s| E("late".into(), s, Some(20)));
        w.push_with(|s| E("early".into(), s, Some(10)));
        w.push_with(|s| E("unknown".into(), s, None));
        w.sort();
        let (p, more) = w.page(None, 2);
        assert!(more);
        assert_eq!(
            p.iter().map(|e| e.id()).collect::<Vec<_>>(),
            ["unknown", "early"]
        );
        let after = parse_cursor("x:", "a test", &cursor_of("x:", p[1])).unwrap();
        let (p, more) = w.page(Some(after), 2);
        assert!(!more);
        assert_eq!(p[0].id(), "late");
        assert!(parse_cursor("x:", "a test", "y:1:2").is_err());
        assert_eq!(w.ids(), ["unknown", "early", "late"]);
        assert!(w.forget(&["early"]) && !w.forget(&["early"]));
        assert_eq!(w.len(), 2);
        assert!(w.check().is_ok());
        let twice: Waiting<E> =
            serde_json::from_str(r#"{"pending":[["a",0,null],["a",1,null]],"next_seq":2}"#)
                .unwrap();
        assert!(twice.check().unwrap_err().contains("twice"));
        let ahead: Waiting<E> =
            serde_json::from_str(r#"{"pending":[["a",3,null]],"next_seq":1}"#).unwrap();
        assert!(ahead.check().is_err());
    }

    #[test]
    fn receive_times_and_versions_are_read_as_saved_states_need() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_500).unwrap();
        assert_eq!(received_nanos(Some(t)), Some(1_500));
        assert_eq!(received_nanos(None), None);
        assert!(check_version(1, 1).is_ok());
        assert_eq!(
            check_version(2, 1).unwrap_err(),
            "version 2 is not the supported 1"
        );
    }
}
