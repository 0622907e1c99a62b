//! Delta sync: what appeared, changed or left a folder since the last round, with the state
//! (the `@odata.deltaLink` and the messages seen but not yet acknowledged) kept in a
//! [`DeltaStore`] the caller provides.
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
//! `state.rs` holds [`DeltaState`] and how a round is merged into it, `store.rs` the stores,
//! `round.rs` a round's requests ([`sync_folder`]), `mode.rs` the delta mode of
//! [`GraphSource`](crate::GraphSource).

use connector::Error;

use crate::endpoint::{Endpoint, Mailbox};

mod mode;
mod round;
mod state;
mod store;
#[cfg(test)]
mod tests;

pub(crate) use mode::DeltaMode;
pub use round::{DeltaChanges, MAX_PAGES, sync_folder};
pub use state::DeltaState;
pub use store::{FileDeltaStore, MemoryDeltaStore};

/// Where delta state is kept between rounds, one [`DeltaState`] per key (a mailbox and folder,
/// see [`state_key`]).
///
/// The methods are async so that a store can be a database (the `fleet` crate keeps it in
/// PostgreSQL, shared by a fleet of workers) without holding a runtime thread; they should
/// still be quick (a small file write, a database row). `save` must be durable when it returns
/// `Ok`: a source saves after every round and after acknowledgements, and relies on what it
/// saved after a restart.
#[async_trait::async_trait]
pub trait DeltaStore: Send + Sync {
    /// The saved state of `key`, or `None` if there is none (the next round is a full sync).
    async fn load(&self, key: &str) -> Result<Option<DeltaState>, Error>;
    /// Saves the state of `key`.
    async fn save(&self, key: &str, state: &DeltaState) -> Result<(), Error>;
    /// Forgets the state of `key` (its next round is a full sync).
    async fn clear(&self, key: &str) -> Result<(), Error>;
}

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
