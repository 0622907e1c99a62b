//! [`Seed`]: the TOML or JSON file a tenant is loaded from, and its checks.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Tenant;
use super::apps::{AppRegistration, Consents, Permission};
use super::directory::{Group, Mailbox, MailboxKind, MailboxRight, ServicePrincipal};
use super::org::{IdentitySettings, OrgSettings, TenantInfo, default_cloud, default_org_name};

/// A message placed in a mailbox when the sandbox starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SeedMessage {
    /// Mailbox address (primary or alias).
    pub mailbox: String,
    /// Well-known folder name (default `inbox`) or the display name of a top-level folder, which
    /// is created when it does not exist.
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Whether the message starts read.
    #[serde(default)]
    pub is_read: bool,
    /// The RFC 822 message.
    pub mime: String,
}

fn default_folder() -> String {
    "inbox".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    tenant: TenantInfo,
    #[serde(default)]
    organization: OrgSettings,
    #[serde(default)]
    identity: IdentitySettings,
    #[serde(default)]
    users: Vec<Mailbox>,
    #[serde(default)]
    shared_mailboxes: Vec<Mailbox>,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    apps: Vec<AppRegistration>,
    #[serde(default)]
    consent: ConsentSeed,
    #[serde(default)]
    service_principals: Vec<ServicePrincipalSeed>,
    #[serde(default)]
    messages: Vec<SeedMessage>,
}

/// `[[service_principals]]`: an app registered in Exchange (`New-ServicePrincipal`), with the
/// mailboxes it gets FullAccess (and Send As) on, written onto those mailboxes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicePrincipalSeed {
    app_id: String,
    #[serde(default)]
    object_id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    full_access: Vec<String>,
    #[serde(default)]
    send_as: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsentSeed {
    #[serde(default)]
    admin: Vec<AdminConsentSeed>,
    #[serde(default)]
    user: Vec<UserConsentSeed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminConsentSeed {
    app: String,
    #[serde(default)]
    delegated: Vec<Permission>,
    #[serde(default)]
    application: Vec<Permission>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserConsentSeed {
    app: String,
    user: String,
    scopes: Vec<Permission>,
}

/// Why a seed could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// TOML syntax or shape error (the message names the line and field).
    #[error("seed is not valid TOML for the sandbox: {0}")]
    Toml(String),
    /// JSON syntax or shape error.
    #[error("seed is not valid JSON for the sandbox: {0}")]
    Json(String),
    /// The file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content is well-formed but inconsistent.
    #[error("invalid seed: {0}")]
    Invalid(String),
}

/// A tenant seed: the directory, settings, apps, consent and initial messages.
#[derive(Clone, Debug)]
pub struct Seed {
    tenant: Tenant,
    messages: Vec<SeedMessage>,
}

const DEMO_SEED: &str = include_str!("../seed/demo.toml");

impl Seed {
    /// Parses a TOML seed.
    pub fn from_toml_str(s: &str) -> Result<Self, SeedError> {
        let file: SeedFile = toml::from_str(s).map_err(|e| SeedError::Toml(e.to_string()))?;
        Self::from_file(file)
    }

    /// Parses a JSON seed (same structure as TOML).
    pub fn from_json_str(s: &str) -> Result<Self, SeedError> {
        let file: SeedFile = serde_json::from_str(s).map_err(|e| SeedError::Json(e.to_string()))?;
        Self::from_file(file)
    }

    /// Reads a seed file; `.json` files are JSON, everything else TOML.
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<Self, SeedError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json_str(&text)
        } else {
            Self::from_toml_str(&text)
        }
    }

    /// The demo helpdesk tenant shipped with the crate (`src/seed/demo.toml`): pickup mailbox
    /// `helpdesk@contoso.example` with aliases, users, a shared mailbox, a group and a demo app.
    pub fn demo() -> Self {
        match Self::from_toml_str(DEMO_SEED) {
            Ok(s) => s,
            // The demo seed is compiled in and covered by a unit test.
            Err(e) => unreachable!("the embedded demo seed is invalid: {e}"),
        }
    }

    /// A minimal tenant (`contoso.example`, no users) to build on with the admin API.
    pub fn empty() -> Self {
        let tenant = Tenant {
            info: TenantInfo {
                id: "9188040d-6c67-4c5b-b112-36a304b66dad".into(),
                display_name: default_org_name(),
                domains: vec!["contoso.example".into()],
                cloud: default_cloud(),
            },
            org: OrgSettings::default(),
            identity: IdentitySettings::default(),
            mailboxes: Vec::new(),
            groups: Vec::new(),
            apps: Vec::new(),
            consents: Consents::default(),
            service_principals: Vec::new(),
        };
        Self {
            tenant,
            messages: Vec::new(),
        }
    }

    /// The tenant model this seed describes.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Mutable tenant model, to adjust a seed in code before starting.
    pub fn tenant_mut(&mut self) -> &mut Tenant {
        &mut self.tenant
    }

    /// Initial messages.
    pub fn messages(&self) -> &[SeedMessage] {
        &self.messages
    }

    pub(crate) fn into_parts(self) -> (Tenant, Vec<SeedMessage>) {
        (self.tenant, self.messages)
    }

    fn from_file(f: SeedFile) -> Result<Self, SeedError> {
        if f.tenant.domains.is_empty() {
            return Err(SeedError::Invalid(
                "[tenant] needs at least one domain".into(),
            ));
        }
        if uuid::Uuid::parse_str(&f.tenant.id).is_err() {
            return Err(SeedError::Invalid(format!(
                "[tenant] id {:?} is not a GUID",
                f.tenant.id
            )));
        }
        let mut mailboxes = Vec::new();
        for (mut m, kind) in f.users.into_iter().map(|m| (m, MailboxKind::User)).chain(
            f.shared_mailboxes
                .into_iter()
                .map(|m| (m, MailboxKind::Shared)),
        ) {
            m.kind = kind;
            m.fill_defaults();
            if !m.mail.contains('@') {
                return Err(SeedError::Invalid(format!(
                    "mailbox {:?} is not an address",
                    m.mail
                )));
            }
            mailboxes.push(m);
        }
        let mut groups = f.groups;
        for g in &mut groups {
            g.fill_defaults();
        }
        // Every address may be used once across mailboxes and groups.
        let mut seen = BTreeSet::new();
        let all = mailboxes
            .iter()
            .flat_map(|m| std::iter::once(&m.mail).chain(m.aliases.iter()))
            .chain(
                groups
                    .iter()
                    .flat_map(|g| std::iter::once(&g.mail).chain(g.aliases.iter())),
            );
        for a in all {
            if !seen.insert(a.to_ascii_lowercase()) {
                return Err(SeedError::Invalid(format!("address {a:?} is used twice")));
            }
        }
        let mut consents = Consents::default();
        for a in f.consent.admin {
            let g = consents.admin.entry(a.app).or_default();
            g.delegated.extend(a.delegated);
            g.application.extend(a.application);
        }
        for u in f.consent.user {
            let user = mailboxes
                .iter()
                .find(|m| m.answers_to(&u.user, i64::MAX))
                .ok_or_else(|| {
                    SeedError::Invalid(format!("user consent names unknown user {:?}", u.user))
                })?;
            consents
                .user
                .entry(u.app)
                .or_default()
                .entry(user.id.clone())
                .or_default()
                .extend(u.scopes);
        }
        let mut service_principals: Vec<ServicePrincipal> = Vec::new();
        for s in f.service_principals {
            let mut sp = ServicePrincipal {
                app_id: s.app_id,
                object_id: s.object_id,
                display_name: s.display_name,
            };
            sp.fill_defaults();
            if uuid::Uuid::parse_str(&sp.app_id).is_err()
                || uuid::Uuid::parse_str(&sp.object_id).is_err()
            {
                return Err(SeedError::Invalid(format!(
                    "service principal {:?} / {:?}: app id and object id must be GUIDs",
                    sp.app_id, sp.object_id
                )));
            }
            if service_principals.iter().any(|o| o.is(&sp.app_id)) {
                return Err(SeedError::Invalid(format!(
                    "service principal {:?} is registered twice",
                    sp.app_id
                )));
            }
            for (right, list) in [
                (MailboxRight::FullAccess, &s.full_access),
                (MailboxRight::SendAs, &s.send_as),
            ] {
                for address in list {
                    let mb = mailboxes
                        .iter_mut()
                        .find(|m| m.answers_to(address, i64::MAX))
                        .ok_or_else(|| {
                            SeedError::Invalid(format!(
                                "service principal {:?} names unknown mailbox {address:?}",
                                sp.app_id
                            ))
                        })?;
                    right.trustees_mut(mb).push(sp.app_id.clone());
                }
            }
            service_principals.push(sp);
        }
        let tenant = Tenant {
            info: f.tenant,
            org: f.organization,
            identity: f.identity,
            mailboxes,
            groups,
            apps: f.apps,
            consents,
            service_principals,
        };
        for m in &f.messages {
            if tenant.mailbox(&m.mailbox, i64::MAX).is_none() {
                return Err(SeedError::Invalid(format!(
                    "message for unknown mailbox {:?}",
                    m.mailbox
                )));
            }
        }
        Ok(Self {
            tenant,
            messages: f.messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_seed_loads() {
        let s = Seed::demo();
        assert!(s.tenant().mailbox("helpdesk@contoso.example", 0).is_some());
        assert!(!s.tenant().apps.is_empty());
    }

    #[test]
    fn seed_errors_are_readable() {
        let e = Seed::from_toml_str("[tenant]\nid = \"x\"\ndomains=[\"a.example\"]").unwrap_err();
        assert!(e.to_string().contains("not a GUID"), "{e}");
        let e = Seed::from_toml_str("[tenant\n").unwrap_err();
        assert!(matches!(e, SeedError::Toml(_)));
        let e = Seed::from_toml_str(
            "[tenant]\nid=\"9188040d-6c67-4c5b-b112-36a304b66dad\"\ndomains=[\"a.example\"]\n[[users]]\nmail=\"a@a.example\"\nbogus=1\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
