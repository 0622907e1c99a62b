//! Delta sync of one folder: what appeared, changed or left since the last round, with the
//! `@odata.deltaLink` kept in a store the caller provides.
//!
//! ```no_run
//! use graph_mail::delta::{sync_folder, MemoryDeltaStore};
//! # async fn run(client: graph_mail::GraphClient) -> Result<(), connector::Error> {
//! let store = MemoryDeltaStore::default(); // or a file / database behind the trait
//! let first = sync_folder(&client, &store, "inbox").await?; // everything in the folder
//! let next = sync_folder(&client, &store, "inbox").await?;  // only what changed since
//! for id in &next.removed { println!("{id} left the folder"); }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use connector::Error;

use crate::api::{self, DeltaItem, MessageMeta};
use crate::client::{GraphClient, Idempotency};

/// Where delta links are kept between rounds, one per folder.
pub trait DeltaStore: Send + Sync {
    /// The saved delta link of `folder`.
    fn load(&self, folder: &str) -> Option<String>;
    /// Saves the delta link of `folder`.
    fn save(&self, folder: &str, link: &str);
    /// Forgets the state of `folder` (its next round is a full resync).
    fn clear(&self, folder: &str);
}

/// A [`DeltaStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryDeltaStore(Mutex<HashMap<String, String>>);

impl DeltaStore for MemoryDeltaStore {
    fn load(&self, folder: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(folder)
            .cloned()
    }

    fn save(&self, folder: &str, link: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(folder.to_owned(), link.to_owned());
    }

    fn clear(&self, folder: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(folder);
    }
}

/// The outcome of one delta round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaChanges {
    /// Messages that appeared or changed.
    pub changed: Vec<MessageMeta>,
    /// Ids of messages that left the folder.
    pub removed: Vec<String>,
    /// The saved state was gone (`syncStateNotFound` / `resyncRequired`) and this round is a
    /// full resync: `changed` lists the whole folder.
    pub resynced: bool,
}

/// Most pages one round follows (a guard against a server that never ends a round).
pub const MAX_PAGES: usize = 10_000;

fn is_resync(e: &Error) -> bool {
    e.response()
        .and_then(|r| r.server_code.as_deref())
        .is_some_and(|c| {
            c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired")
        })
}

/// Runs one delta round of `folder`, following next links to the delta link and saving it. An
/// expired state is discarded and the round restarts as a full resync. The state is saved only
/// when the round completed, so a failed round is repeated, never skipped.
pub async fn sync_folder(
    client: &GraphClient,
    store: &dyn DeltaStore,
    folder: &str,
) -> Result<DeltaChanges, Error> {
    match round(client, store, folder).await {
        Err(e) if is_resync(&e) => {
            store.clear(folder);
            let mut c = round(client, store, folder).await?;
            c.resynced = true;
            Ok(c)
        }
        other => other,
    }
}

async fn round(
    client: &GraphClient,
    store: &dyn DeltaStore,
    folder: &str,
) -> Result<DeltaChanges, Error> {
    let ep = client.endpoint();
    let mut req = match store.load(folder) {
        Some(link) => api::follow_link(ep, &link)?,
        None => api::delta(ep, folder)?,
    };
    let mut out = DeltaChanges::default();
    for _ in 0..MAX_PAGES {
        let r = client
            .execute("reading folder changes", req, Idempotency::Safe)
            .await?;
        let page = api::parse_delta_page(ep, r.json()?)?;
        for item in page.items {
            match item {
                DeltaItem::Changed(m) => out.changed.push(m),
                DeltaItem::Removed { id, .. } => out.removed.push(id),
            }
        }
        match (page.next_link, page.delta_link) {
            (Some(next), _) => req = api::follow_link(ep, &next)?,
            (None, Some(delta)) => {
                store.save(folder, &delta);
                return Ok(out);
            }
            (None, None) => return Err(Error::bad_response("a delta page without links")),
        }
    }
    Err(Error::bad_response(format!(
        "a delta round did not end within {MAX_PAGES} pages"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryDeltaStore::default();
        assert_eq!(s.load("inbox"), None);
        s.save("inbox", "https://x/delta?$deltatoken=1");
        assert_eq!(
            s.load("inbox").as_deref(),
            Some("https://x/delta?$deltatoken=1")
        );
        s.clear("inbox");
        assert_eq!(s.load("inbox"), None);
    }

    #[test]
    fn resync_codes_are_recognised() {
        let e = Error::refused("x").with_response(
            connector::ResponseDetails::status(410).with_server_code("SyncStateNotFound"),
        );
        assert!(is_resync(&e));
        assert!(!is_resync(&Error::refused("x")));
    }
}
