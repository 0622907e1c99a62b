//! [`OutboxEntry`]: a message that left the tenant, kept in the sandbox's outbox (written by
//! delivery, read through the admin API).

use serde::Serialize;
use time::OffsetDateTime;

/// A message that left the tenant (recorded, not sent anywhere).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// Envelope sender.
    pub from: String,
    /// External recipients.
    pub recipients: Vec<String>,
    /// The MIME as it would have left.
    #[serde(serialize_with = "ser_mime")]
    pub mime: bytes::Bytes,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn ser_mime<S: serde::Serializer>(m: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(m))
}
