//! The tenant model: directory (users, shared mailboxes, groups), organisation settings, app
//! registrations and consent, and the [`Seed`] file format it is loaded from.
//!
//! A seed is a TOML (or JSON) document; every table except `[tenant]` is optional. See
//! `src/seed/demo.toml` (also available as [`Seed::demo`]) for a complete, commented example.
//!
//! ```
//! let seed = sandbox::Seed::from_toml_str(r#"
//!     [tenant]
//!     id = "11111111-2222-3333-4444-555555555555"
//!     domains = ["contoso.example"]
//!
//!     [[users]]
//!     mail = "adele@contoso.example"
//!     aliases = ["sales@contoso.example"]
//! "#).unwrap();
//! assert_eq!(seed.tenant().mailboxes.len(), 1);
//! ```
//!
//! The model is in four parts: the directory (`directory`: mailboxes and groups), organisation
//! and identity settings (`org`), app registrations, permissions and consent (`apps`), and the
//! seed file (`seed`); [`Tenant`] holds them together and answers directory questions.

pub(crate) mod apps;
mod directory;
pub(crate) mod org;
pub(crate) mod seed;

use std::collections::BTreeSet;

use serde::Serialize;

// `ApiResource`, `Seed`, `SeedError` and `SenderAuthVerdict` are public at the crate root only
// (`sandbox::Seed`, ...): one path per public type.
pub(crate) use self::apps::ApiResource;
pub use self::apps::{
    AdminGrant, AppCertificate, AppRegistration, ClientSecret, Consents, Permission, SecretString,
};
pub use self::directory::{Group, Mailbox, MailboxKind, MailboxRight, ServicePrincipal};
pub(crate) use self::org::SenderAuthVerdict;
pub use self::org::{AppAccessPolicy, IdentitySettings, OrgSettings, PolicyMode, TenantInfo};
pub(crate) use self::seed::Seed;
pub use self::seed::SeedMessage;

/// The whole tenant model, held by the running sandbox behind a lock.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Tenant {
    /// Tenant id and domains.
    pub info: TenantInfo,
    /// Organisation settings.
    pub org: OrgSettings,
    /// Token lifetimes and identity behaviour.
    pub identity: IdentitySettings,
    /// User and shared mailboxes.
    pub mailboxes: Vec<Mailbox>,
    /// Groups and distribution lists.
    pub groups: Vec<Group>,
    /// App registrations.
    pub apps: Vec<AppRegistration>,
    /// Consent grants.
    pub consents: Consents,
    /// Service principals registered in Exchange Online (`New-ServicePrincipal`), for SMTP
    /// AUTH app-only access.
    pub service_principals: Vec<ServicePrincipal>,
}

/// What an address resolves to in the directory.
#[derive(Clone, Copy, Debug)]
pub enum Resolved<'a> {
    /// A user or shared mailbox.
    Mailbox(&'a Mailbox),
    /// A group.
    Group(&'a Group),
}

impl Tenant {
    /// Whether `name` (GUID or verified domain, case-insensitive) names this tenant.
    pub fn is_named(&self, name: &str) -> bool {
        self.info.id.eq_ignore_ascii_case(name)
            || self
                .info
                .domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(name))
    }

    /// The mailbox with this primary address, UPN, id or active alias.
    pub fn mailbox(&self, address: &str, now: i64) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.answers_to(address, now))
    }

    /// Mutable access to a mailbox by primary address, UPN, id or alias (pending included).
    pub fn mailbox_mut(&mut self, address: &str) -> Option<&mut Mailbox> {
        self.mailboxes
            .iter_mut()
            .find(|m| m.answers_to(address, i64::MAX))
    }

    /// A user (kind [`MailboxKind::User`]) by address, UPN or id.
    pub fn user(&self, address: &str, now: i64) -> Option<&Mailbox> {
        self.mailbox(address, now)
            .filter(|m| m.kind == MailboxKind::User)
    }

    /// The group with this address (primary or alias) or id.
    pub fn group(&self, address: &str) -> Option<&Group> {
        self.groups.iter().find(|g| {
            g.mail.eq_ignore_ascii_case(address)
                || g.id.eq_ignore_ascii_case(address)
                || g.aliases.iter().any(|a| a.eq_ignore_ascii_case(address))
        })
    }

    /// Resolves an address to a mailbox or group.
    pub fn resolve(&self, address: &str, now: i64) -> Option<Resolved<'_>> {
        if let Some(m) = self.mailbox(address, now) {
            return Some(Resolved::Mailbox(m));
        }
        self.group(address).map(Resolved::Group)
    }

    /// The app registration with this client id.
    pub fn app(&self, client_id: &str) -> Option<&AppRegistration> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Mutable app registration.
    pub fn app_mut(&mut self, client_id: &str) -> Option<&mut AppRegistration> {
        self.apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The Exchange registration of an app's service principal, by app id or object id.
    pub fn service_principal(&self, identity: &str) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|sp| sp.is(identity))
    }

    /// Whether `mailbox` holds `right` on `target`: named in its list directly (address, UPN,
    /// id or alias) or through a group.
    pub fn mailbox_holds(&self, target: &Mailbox, right: MailboxRight, mailbox: &Mailbox) -> bool {
        right
            .trustees(target)
            .iter()
            .any(|t| mailbox.answers_to(t, i64::MAX) || self.is_member(t, mailbox))
    }

    /// Whether the Exchange-registered service principal `sp` holds `right` on `target`.
    pub fn service_principal_holds(
        &self,
        target: &Mailbox,
        right: MailboxRight,
        sp: &ServicePrincipal,
    ) -> bool {
        right.trustees(target).iter().any(|t| sp.is(t))
    }

    /// Whether `member` (a mailbox) is in group `group_address`, directly or through nested groups.
    pub fn is_member(&self, group_address: &str, member: &Mailbox) -> bool {
        self.expand_group(group_address)
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&member.mail))
    }

    /// Primary addresses of every mailbox reachable through a group (nested groups expanded once
    /// each; cycles are safe).
    pub fn expand_group(&self, group_address: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut stack = vec![group_address.to_ascii_lowercase()];
        while let Some(g) = stack.pop() {
            let Some(group) = self.group(&g) else {
                continue;
            };
            if !seen.insert(group.mail.to_ascii_lowercase()) {
                continue;
            }
            for m in &group.members {
                if let Some(mb) = self.mailbox(m, i64::MAX) {
                    if !out.contains(&mb.mail) {
                        out.push(mb.mail.clone());
                    }
                } else {
                    stack.push(m.to_ascii_lowercase());
                }
            }
        }
        out
    }

    /// Whether `user` is assigned to `app` (directly or through a group).
    pub fn is_assigned(&self, app: &AppRegistration, user: &Mailbox) -> bool {
        app.assigned
            .iter()
            .any(|a| user.answers_to(a, i64::MAX) || self.is_member(a, user))
    }

    /// Whether the app's access policies allow it to reach `mailbox`.
    pub fn app_policy_allows(&self, app_id: &str, mailbox: &Mailbox) -> bool {
        self.org
            .app_access_policies
            .iter()
            .filter(|p| p.app_id.eq_ignore_ascii_case(app_id))
            .all(|p| {
                let in_scope = p
                    .scope
                    .iter()
                    .any(|s| mailbox.answers_to(s, i64::MAX) || self.is_member(s, mailbox));
                match p.mode {
                    PolicyMode::RestrictAccess => in_scope,
                    PolicyMode::DenyAccess => !in_scope,
                }
            })
    }

    /// Whether `domain` is one of the tenant's verified domains.
    pub fn is_own_domain(&self, domain: &str) -> bool {
        self.info
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

fn yes() -> bool {
    true
}

/// A stable GUID-shaped id derived from a name (so seeds need not spell out object ids).
pub(crate) fn stable_guid(name: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, name.to_ascii_lowercase().as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn display_from_address(mail: &str) -> String {
    let local = mail.split('@').next().unwrap_or(mail);
    let mut out = String::new();
    for (i, part) in local.split(['.', '_', '-']).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut c = part.chars();
        if let Some(f) = c.next() {
            out.extend(f.to_uppercase());
            out.push_str(c.as_str());
        }
    }
    out
}
