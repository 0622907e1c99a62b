//! Where subscriptions are recorded between runs: in memory, or one JSON file.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ClientState;

/// A subscription as recorded: enough to reuse it after a restart (its id and secret) and to
/// tell whether it still fits the configuration (its resource and URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubscriptionRecord {
    /// Graph's id.
    pub id: String,
    /// The resource it watches.
    pub resource: String,
    /// Where its notifications go.
    pub notification_url: String,
    /// Its secret (the record file is readable by its owner only).
    pub client_state: ClientState,
    /// When it expires unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expiration: OffsetDateTime,
}

impl SubscriptionRecord {
    /// A record of subscription `id`.
    pub fn new(
        id: impl Into<String>,
        resource: impl Into<String>,
        notification_url: impl Into<String>,
        client_state: ClientState,
        expiration: OffsetDateTime,
    ) -> Self {
        SubscriptionRecord {
            id: id.into(),
            resource: resource.into(),
            notification_url: notification_url.into(),
            client_state,
            expiration,
        }
    }
}

impl httpcore::KeptState for SubscriptionRecord {
    const WHAT: &'static str = "subscription record";
    const VERSION: u32 = 1;
    const ON_DISCARD: &'static str = "to subscribe anew (the recorded subscription lapses \
        when it expires)";
}

/// [`SubscriptionRecord`]s in memory: [`httpcore::MemoryStore`] (tests; a restart forgets, so
/// the subscription leaks until it expires).
pub type MemorySubscriptionStore = httpcore::MemoryStore<SubscriptionRecord>;

/// [`SubscriptionRecord`]s in one JSON file, rewritten atomically and readable by its owner
/// only (`0600`: it holds each subscription's `clientState`): [`httpcore::FileStore`]. One
/// process should own the file.
pub type FileSubscriptionStore = httpcore::FileStore<SubscriptionRecord>;
