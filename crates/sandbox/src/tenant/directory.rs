//! The directory: user and shared mailboxes (with aliases) and groups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{display_from_address, stable_guid, yes};

/// Kind of a [`Mailbox`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// Trustees with FullAccess to this mailbox: mailboxes (address or UPN), groups (their
    /// members), or Exchange-registered service principals (app id or object id, see
    /// [`ServicePrincipal`]).
    #[serde(default)]
    pub full_access: Vec<String>,
    /// Trustees with Send As on this mailbox (as for `full_access`). Sending with this
    /// mailbox in `From` from any other mailbox needs Send As or Send on Behalf.
    #[serde(default)]
    pub send_as: Vec<String>,
    /// Trustees with Send on Behalf on this mailbox (mailboxes or groups): the message goes out
    /// with this mailbox in `From` and the sending mailbox in `Sender`.
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
#[non_exhaustive]
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

impl Group {
    /// A group with these members, its id and display name derived from the address as a
    /// seed's are (the type is `#[non_exhaustive]`: set aliases on the value).
    ///
    /// ```
    /// use sandbox::{Seed, tenant::Group};
    ///
    /// let mut seed = Seed::demo();
    /// let group = Group::new("Team@Contoso.example", ["helpdesk@contoso.example"]);
    /// assert_eq!(group.mail, "team@contoso.example");
    /// assert!(!group.id.is_empty());
    /// seed.tenant_mut().groups.push(group);
    /// assert!(seed.tenant().group("team@contoso.example").is_some());
    /// ```
    pub fn new<M: Into<String>>(mail: &str, members: impl IntoIterator<Item = M>) -> Self {
        let mut group = Group {
            id: String::new(),
            mail: mail.to_string(),
            display_name: String::new(),
            aliases: Vec::new(),
            members: members.into_iter().map(Into::into).collect(),
        };
        group.fill_defaults();
        group
    }

    /// Normalises the address and derives what was left out: the id and the display name (a
    /// group in Graph always has one). Seeds, [`Group::new`] and the admin API's `AddGroup` go
    /// through here, so a group looks the same however it was made.
    pub(crate) fn fill_defaults(&mut self) {
        self.mail = self.mail.trim().to_ascii_lowercase();
        if self.id.is_empty() {
            self.id = stable_guid(&self.mail);
        }
        if self.display_name.is_empty() {
            self.display_name = display_from_address(&self.mail);
        }
    }
}

/// A mailbox right an Exchange administrator grants (`Add-MailboxPermission`,
/// `Add-RecipientPermission`, `Set-Mailbox -GrantSendOnBehalfTo`). Serialised snake_case:
/// `full_access`, `send_as`, `send_on_behalf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MailboxRight {
    /// FullAccess: open and read the mailbox (`Add-MailboxPermission -AccessRights
    /// FullAccess`); for SMTP AUTH app-only access, what the service principal needs on the
    /// mailbox named in `user=`.
    FullAccess,
    /// Send As: mail in the mailbox's name, indistinguishable from its own
    /// (`Add-RecipientPermission -AccessRights SendAs`).
    SendAs,
    /// Send on Behalf: mail "from" the mailbox with the sender shown
    /// (`Set-Mailbox -GrantSendOnBehalfTo`).
    SendOnBehalf,
}

impl MailboxRight {
    /// The mailbox's list of trustees holding this right.
    pub fn trustees(self, mailbox: &Mailbox) -> &Vec<String> {
        match self {
            MailboxRight::FullAccess => &mailbox.full_access,
            MailboxRight::SendAs => &mailbox.send_as,
            MailboxRight::SendOnBehalf => &mailbox.send_on_behalf,
        }
    }

    /// Mutable list of trustees holding this right.
    pub fn trustees_mut(self, mailbox: &mut Mailbox) -> &mut Vec<String> {
        match self {
            MailboxRight::FullAccess => &mut mailbox.full_access,
            MailboxRight::SendAs => &mut mailbox.send_as,
            MailboxRight::SendOnBehalf => &mut mailbox.send_on_behalf,
        }
    }
}

/// An application's service principal as registered in Exchange Online
/// (`New-ServicePrincipal -AppId … -ObjectId …`). SMTP AUTH with an app-only token
/// (`SMTP.SendAsApp`) needs it, and FullAccess on the mailbox named in XOAUTH2's `user=`
/// (`Add-MailboxPermission -Identity <mailbox> -User <service principal> -AccessRights
/// FullAccess`). Mailbox permission lists name it by app id or object id.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServicePrincipal {
    /// The application (client) id.
    pub app_id: String,
    /// The object id of the app's Enterprise application in Entra ID (not the app
    /// registration's); derived from the app id when omitted.
    #[serde(default)]
    pub object_id: String,
    /// Display name (informational).
    #[serde(default)]
    pub display_name: String,
}

impl ServicePrincipal {
    /// A registration for `app_id` with the derived object id.
    pub fn new(app_id: impl Into<String>) -> Self {
        let mut sp = Self {
            app_id: app_id.into(),
            object_id: String::new(),
            display_name: String::new(),
        };
        sp.fill_defaults();
        sp
    }

    pub(crate) fn fill_defaults(&mut self) {
        self.app_id = self.app_id.trim().to_ascii_lowercase();
        self.object_id = self.object_id.trim().to_ascii_lowercase();
        if self.object_id.is_empty() {
            self.object_id = stable_guid(&format!("service-principal:{}", self.app_id));
        }
    }

    /// Whether `identity` (a trustee in a permission list) names this service principal: its
    /// app id or its object id (case-insensitive).
    pub fn is(&self, identity: &str) -> bool {
        let identity = identity.trim();
        self.app_id.eq_ignore_ascii_case(identity) || self.object_id.eq_ignore_ascii_case(identity)
    }
}
