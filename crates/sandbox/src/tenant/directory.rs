//! The directory: user and shared mailboxes (with aliases) and groups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{display_from_address, stable_guid, yes};

/// Kind of a [`Mailbox`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxKind {
    /// A user who can sign in, with a mailbox.
    #[default]
    User,
    /// A shared mailbox (no sign-in; reached through FullAccess / SendAs grants).
    Shared,
}

/// A mailbox (user or shared).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbox {
    /// Object id (GUID); derived from the address when omitted.
    #[serde(default)]
    pub id: String,
    /// Primary SMTP address.
    pub mail: String,
    /// User principal name (sign-in name); the primary address when omitted.
    #[serde(default)]
    pub upn: String,
    /// Display name; derived from the address when omitted.
    #[serde(default)]
    pub display_name: String,
    /// Secondary SMTP addresses (proxy addresses).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// User or shared mailbox (set by the seed table it appears in).
    #[serde(default)]
    pub kind: MailboxKind,
    /// Whether the account may sign in.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Users (addresses/UPNs) with FullAccess to this mailbox.
    #[serde(default)]
    pub full_access: Vec<String>,
    /// Users with Send As on this mailbox.
    #[serde(default)]
    pub send_as: Vec<String>,
    /// Users with Send on Behalf on this mailbox.
    #[serde(default)]
    pub send_on_behalf: Vec<String>,
    /// Aliases added at run time, with the unix time from which they receive mail.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_aliases: BTreeMap<String, i64>,
}

impl Mailbox {
    /// A user mailbox with defaults for everything but the address.
    pub fn user(mail: impl Into<String>) -> Self {
        let mut m = Self {
            id: String::new(),
            mail: mail.into(),
            upn: String::new(),
            display_name: String::new(),
            aliases: Vec::new(),
            kind: MailboxKind::User,
            enabled: true,
            full_access: Vec::new(),
            send_as: Vec::new(),
            send_on_behalf: Vec::new(),
            pending_aliases: BTreeMap::new(),
        };
        m.fill_defaults();
        m
    }

    pub(super) fn fill_defaults(&mut self) {
        self.mail = self.mail.trim().to_ascii_lowercase();
        if self.id.is_empty() {
            self.id = stable_guid(&self.mail);
        }
        if self.upn.is_empty() {
            self.upn = self.mail.clone();
        }
        if self.display_name.is_empty() {
            self.display_name = display_from_address(&self.mail);
        }
        for a in &mut self.aliases {
            *a = a.trim().to_ascii_lowercase();
        }
    }

    /// Whether `address` is this mailbox's primary address, UPN, id or an alias that is active at
    /// `now` (unix seconds).
    pub fn answers_to(&self, address: &str, now: i64) -> bool {
        self.mail.eq_ignore_ascii_case(address)
            || self.upn.eq_ignore_ascii_case(address)
            || self.id.eq_ignore_ascii_case(address)
            || self.aliases.iter().any(|a| {
                a.eq_ignore_ascii_case(address)
                    && self
                        .pending_aliases
                        .get(a)
                        .is_none_or(|effective| *effective <= now)
            })
    }

    /// Whether `address` is an alias of this mailbox that does not receive mail yet at `now`.
    pub fn alias_pending(&self, address: &str, now: i64) -> bool {
        self.pending_aliases
            .iter()
            .any(|(a, eff)| a.eq_ignore_ascii_case(address) && *eff > now)
    }
}

/// A group or distribution list: mail to its address goes to every member's mailbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Object id (GUID); derived from the address when omitted.
    #[serde(default)]
    pub id: String,
    /// Primary SMTP address.
    pub mail: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Secondary addresses.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Member addresses (mailboxes or other groups).
    #[serde(default)]
    pub members: Vec<String>,
}
