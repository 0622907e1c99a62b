//! Delta sync: what appeared, changed or left a folder since the last round, with the state
//! (the `@odata.deltaLink` and the messages seen but not yet acknowledged) kept in a
//! [`StateStore`](httpcore::StateStore)`<`[`DeltaState`]`>` the caller provides, one state per
//! key (a mailbox and folder, see [`state_key`]).
//!
//! Two ways to use it:
//!
//! - **As a message source mode**: [`GraphSource::with_delta`](crate::GraphSource::with_delta)
//!   makes a [`GraphSource`](crate::GraphSource) find new mail through delta rounds instead of
//!   listing unread mail. See the crate documentation for when to choose which.
//! - **As a helper**: [`sync_folder`] runs one round and returns the raw changes.
//!
//! ```no_run
//! use graph_mail::delta::{sync_folder, MemoryDeltaStore};
//! # async fn run(client: graph_mail::GraphClient) -> Result<(), connector::Error> {
//! let store = MemoryDeltaStore::default(); // or FileDeltaStore, or a database behind the trait
//! let first = sync_folder(&client, &store, "inbox").await?; // everything in the folder
//! let next = sync_folder(&client, &store, "inbox").await?;  // only what changed since
//! for id in &next.removed { println!("{id} left the folder"); }
//! # Ok(()) }
//! ```
//!
//! ## Stores
//!
//! Delta state is kept through httpcore's [`StateStore`](httpcore::StateStore), the one trait
//! under every source's saved state (ews-mail's sync state and the push subscriptions use it
//! too). `save` must be durable when it returns `Ok`: a source saves after every round and
//! after acknowledgements, and relies on what it saved after a restart; `clear` makes the
//! key's next round a full sync.
//!
//! [`MemoryDeltaStore`] forgets everything when the process ends: the next start is a full
//! resync. [`FileDeltaStore`] keeps every key in one JSON file, rewritten atomically (a
//! temporary file in the same directory, synced, then renamed over the old one), so a crash
//! leaves the old state or the new one, never half of each. A file that cannot be read is a
//! [`Configuration`](connector::ErrorKind::Configuration) error naming the file, never a
//! panic and never a silent restart. A database is one small async trait away: [`DeltaState`]
//! turns into JSON and back (the `fleet` crate's `PgDeltaStore` keeps it in PostgreSQL).
//!
//! ## Files
//!
//! `state.rs` holds [`DeltaState`] and how a round is merged into it, `round.rs` a round's
//! requests ([`sync_folder`]), `mode.rs` the delta mode of [`GraphSource`](crate::GraphSource).

use crate::endpoint::{Endpoint, Mailbox};

mod mode;
mod round;
mod state;
#[cfg(test)]
mod tests;

pub(crate) use mode::DeltaMode;
pub use round::{DeltaChanges, MAX_PAGES, sync_folder};
pub use state::DeltaState;

/// [`DeltaState`]s in memory: [`httpcore::MemoryStore`] (a restart is a full resync).
pub type MemoryDeltaStore = httpcore::MemoryStore<DeltaState>;

/// [`DeltaState`]s in one owner-only JSON file, rewritten atomically: [`httpcore::FileStore`].
///
/// ```no_run
/// use std::sync::Arc;
/// use graph_mail::delta::FileDeltaStore;
/// # fn run(source: graph_mail::GraphSource) -> Result<(), connector::Error> {
/// let store = FileDeltaStore::open("/var/lib/m365mail/graph-delta.json")?; // created on first save
/// let source = source.with_delta(Arc::new(store));
/// # Ok(()) }
/// ```
pub type FileDeltaStore = httpcore::FileStore<DeltaState>;

/// The key a [`GraphSource`](crate::GraphSource) in delta mode and [`sync_folder`] use for a
/// folder of an endpoint's mailbox: `me/mailFolders/inbox`,
/// `users/helpdesk@contoso.com/mailFolders/inbox`. The host is not part of it; a saved link
/// that points at another host than the endpoint's is discarded (a full resync), never
/// followed.
pub fn state_key(ep: &Endpoint, folder: &str) -> String {
    match ep.mailbox() {
        Mailbox::Me => format!("me/mailFolders/{folder}"),
        Mailbox::User(u) => format!("users/{}/mailFolders/{folder}", u.to_ascii_lowercase()),
    }
}
