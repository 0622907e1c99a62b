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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value (client secret) that never appears in `Debug`, `Display` or serialised output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Only call this where the value is compared or sent on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// The two resource APIs tokens can be issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiResource {
    /// Microsoft Graph, `https://graph.microsoft.com`.
    Graph,
    /// Office 365 Exchange Online (EWS, SMTP, IMAP), `https://outlook.office365.com`.
    Exchange,
}

impl ApiResource {
    /// The resource URI used in scopes and as the token audience.
    pub fn uri(self) -> &'static str {
        match self {
            ApiResource::Graph => "https://graph.microsoft.com",
            ApiResource::Exchange => "https://outlook.office365.com",
        }
    }

    /// The well-known application id of the resource service principal.
    pub fn app_id(self) -> &'static str {
        match self {
            ApiResource::Graph => "00000003-0000-0000-c000-000000000000",
            ApiResource::Exchange => "00000002-0000-0ff1-ce00-000000000000",
        }
    }

    /// Recognises a resource from a scope prefix or audience value (URI or app id).
    pub fn from_identifier(s: &str) -> Option<Self> {
        let s = s.trim_end_matches('/').to_ascii_lowercase();
        match s.as_str() {
            "https://graph.microsoft.com" | "00000003-0000-0000-c000-000000000000" => {
                Some(ApiResource::Graph)
            }
            "https://outlook.office365.com"
            | "https://outlook.office.com"
            | "https://ps.outlook.com"
            | "00000002-0000-0ff1-ce00-000000000000" => Some(ApiResource::Exchange),
            _ => None,
        }
    }
}

/// A permission of a resource API: a delegated scope (`Mail.Read`) or an app role (`Mail.Read`,
/// `full_access_as_app`). Written in seeds as `Mail.Read` (Graph) or with the resource prefix,
/// e.g. `https://outlook.office365.com/EWS.AccessAsUser.All`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    /// The API the permission belongs to.
    pub resource: ApiResource,
    /// The permission name, e.g. `Mail.Read`.
    pub name: String,
}

impl Permission {
    /// Builds a permission.
    pub fn new(resource: ApiResource, name: impl Into<String>) -> Self {
        Self {
            resource,
            name: name.into(),
        }
    }

    /// Parses `Mail.Read` (Graph), `https://graph.microsoft.com/Mail.Read` or
    /// `https://outlook.office.com/EWS.AccessAsUser.All`. Returns `None` for an unknown resource
    /// or an empty name. `.default` parses as a permission named `.default`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if let Some(idx) = s.rfind('/') {
            if !s.contains("://") {
                return None;
            }
            let (res, name) = (&s[..idx], &s[idx + 1..]);
            let resource = ApiResource::from_identifier(res)?;
            if name.is_empty() {
                return None;
            }
            Some(Self::new(resource, name))
        } else {
            Some(Self::new(ApiResource::Graph, s))
        }
    }

    /// Case-insensitive name comparison (Entra treats scope names case-insensitively).
    pub fn is(&self, resource: ApiResource, name: &str) -> bool {
        self.resource == resource && self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.resource.uri(), self.name)
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Permission::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a permission: {s:?}")))
    }
}

/// Basic tenant identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInfo {
    /// Tenant id (a GUID).
    pub id: String,
    /// Display name of the organisation.
    #[serde(default = "default_org_name")]
    pub display_name: String,
    /// Verified domains; the first is the default domain.
    pub domains: Vec<String>,
    /// Cloud name (informational), `global` by default.
    #[serde(default = "default_cloud")]
    pub cloud: String,
}

fn default_org_name() -> String {
    "Sandbox Organisation".into()
}
fn default_cloud() -> String {
    "global".into()
}
fn yes() -> bool {
    true
}

/// Organisation settings (Exchange `Set-OrganizationConfig` and Entra consent settings).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrgSettings {
    /// `DisablePlusAddressInRecipients` (default `false`: plus addressing is on).
    pub disable_plus_address_in_recipients: bool,
    /// `SendFromAliasEnabled` (default `false`: aliases on sent mail are rewritten to the primary).
    pub send_from_alias_enabled: bool,
    /// `EwsEnabled`: `None` (unset) allows EWS, `Some(false)` blocks it for every app,
    /// `Some(true)` allows it subject to [`OrgSettings::ews_allowed_app_ids`].
    pub ews_enabled: Option<bool>,
    /// `EwsAllowedAppIDs`: with `EwsEnabled` set to `true`, only these apps may use EWS; with
    /// `EwsEnabled` unset the list has no effect (protocol.md §3, `Set-OrganizationConfig`).
    pub ews_allowed_app_ids: Option<Vec<String>>,
    /// Seconds before an alias added at run time receives mail (real tenants: up to 24 h).
    pub alias_propagation_delay_secs: u64,
    /// Whether users may consent to apps themselves (Entra "user consent settings").
    #[serde(default = "yes")]
    pub users_can_consent: bool,
    /// Delegated permissions users can never consent to themselves (need admin approval).
    pub admin_only_scopes: Vec<Permission>,
    /// Largest message accepted by SMTP and internal submission, in bytes (default 35 MB).
    pub max_message_size: usize,
    /// Application access policies (RBAC for Applications): restrict an app to some mailboxes.
    pub app_access_policies: Vec<AppAccessPolicy>,
    /// Users who may grant admin consent (global administrators). Empty: anyone may (demo).
    pub admins: Vec<String>,
    /// `Set-TransportConfig -SmtpClientAuthenticationDisabled` (default `false`): when set, SMTP
    /// AUTH client submission is refused with `535 5.7.139`.
    pub smtp_client_authentication_disabled: bool,
    /// The sender-authentication verdict (SPF, DKIM, DMARC, composite) stamped on mail from
    /// outside the organisation, by the domain of its `From` header (lowercase keys, matched
    /// case-insensitively). The sandbox cannot check SPF or DKIM, so it claims nothing it was not
    /// told: unlisted domains get [`SenderAuthVerdict::None`]. In a seed:
    /// `[organization.sender_authentication]` with `"fabrikam.example" = "pass"`; at run time:
    /// [`crate::Admin::set_sender_authentication`]. See [`crate::delivery`] for the header.
    pub sender_authentication: BTreeMap<String, SenderAuthVerdict>,
}

/// A sender-authentication verdict, as Exchange Online's `Authentication-Results` header states
/// it for SPF, DKIM, DMARC and composite authentication (`compauth`). Serialised lowercase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderAuthVerdict {
    /// Authenticated: `spf=pass`, `dkim=pass`, `dmarc=pass`, `compauth=pass reason=100`.
    Pass,
    /// Explicitly failed (a spoof): `spf=fail`, `dkim=fail`, `dmarc=fail`,
    /// `compauth=fail reason=000`.
    Fail,
    /// Nothing to check (no SPF record, not signed, no DMARC policy): `spf=none`, `dkim=none`,
    /// `dmarc=none`, `compauth=none reason=905`. The default.
    #[default]
    None,
}

impl SenderAuthVerdict {
    /// `pass`, `fail` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::None => "none",
        }
    }
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            disable_plus_address_in_recipients: false,
            send_from_alias_enabled: false,
            ews_enabled: None,
            ews_allowed_app_ids: None,
            alias_propagation_delay_secs: 0,
            users_can_consent: true,
            admin_only_scopes: ["User.Read.All", "Directory.Read.All", "Group.Read.All"]
                .iter()
                .map(|n| Permission::new(ApiResource::Graph, *n))
                .collect(),
            max_message_size: 35 * 1024 * 1024,
            app_access_policies: Vec::new(),
            admins: Vec::new(),
            smtp_client_authentication_disabled: false,
            sender_authentication: BTreeMap::new(),
        }
    }
}

impl OrgSettings {
    /// The sender-authentication verdict for mail whose `From` is in `domain`
    /// (case-insensitive; [`SenderAuthVerdict::None`] when the domain is not listed).
    pub fn sender_authentication_for(&self, domain: &str) -> SenderAuthVerdict {
        self.sender_authentication
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }

    /// Whether plus addressing is on.
    pub fn plus_addressing(&self) -> bool {
        !self.disable_plus_address_in_recipients
    }

    /// Whether the app may use EWS under `EwsEnabled` / `EwsAllowedAppIDs`: `false` blocks every
    /// app, `true` allows the listed apps (every app when there is no list), and unset allows
    /// every app whatever the list says.
    pub fn ews_allowed_for(&self, app_id: &str) -> bool {
        match self.ews_enabled {
            Some(false) => false,
            Some(true) => match &self.ews_allowed_app_ids {
                Some(ids) => ids.iter().any(|i| i.eq_ignore_ascii_case(app_id)),
                None => true,
            },
            None => true,
        }
    }
}

/// How an [`AppAccessPolicy`] treats its mailbox list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyMode {
    /// The app may reach only the listed mailboxes.
    RestrictAccess,
    /// The app may reach every mailbox except the listed ones.
    DenyAccess,
}

/// An application access policy (`New-ApplicationAccessPolicy`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppAccessPolicy {
    /// The app the policy applies to.
    pub app_id: String,
    /// Mailbox or group addresses in scope (group membership is expanded).
    pub scope: Vec<String>,
    /// Restrict to / deny the scope.
    pub mode: PolicyMode,
}

/// Token lifetimes and identity behaviour.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySettings {
    /// Access token lifetime in seconds (`expires_in`), default 3599.
    pub access_token_lifetime_secs: u64,
    /// Refresh token lifetime in seconds (inactivity), default 90 days.
    pub refresh_token_lifetime_secs: u64,
    /// Authorization code lifetime in seconds, default 600.
    pub auth_code_lifetime_secs: u64,
    /// Device code lifetime in seconds, default 900.
    pub device_code_lifetime_secs: u64,
    /// Device code polling interval in seconds, default 5.
    pub device_code_interval_secs: u64,
    /// Invalidate the old refresh token when a new one is issued (Entra does not; default false).
    pub revoke_rotated_refresh_tokens: bool,
    /// Largest accepted form body at the identity endpoints, in bytes.
    pub max_form_bytes: usize,
    /// Answer `slow_down` (RFC 8628) to a device-code poll that comes sooner than `interval`
    /// after the previous one. Off by default: Entra is not documented to send it.
    pub enforce_device_poll_interval: bool,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 3599,
            refresh_token_lifetime_secs: 90 * 24 * 3600,
            auth_code_lifetime_secs: 600,
            device_code_lifetime_secs: 900,
            device_code_interval_secs: 5,
            revoke_rotated_refresh_tokens: false,
            max_form_bytes: 64 * 1024,
            enforce_device_poll_interval: false,
        }
    }
}

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

    fn fill_defaults(&mut self) {
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

/// A client secret of an app registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// Key id (shown in the portal; not the secret).
    #[serde(default)]
    pub id: String,
    /// The secret value.
    pub value: SecretString,
    /// Expiry (RFC 3339); `None` never expires.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires: Option<time::OffsetDateTime>,
}

/// A certificate credential of an app registration: the PEM of the public certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCertificate {
    /// PEM (`-----BEGIN CERTIFICATE-----`) of the certificate.
    pub pem: String,
}

impl AppCertificate {
    /// The DER bytes of the certificate, or `None` if the PEM is unreadable.
    pub fn der(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let body: String = self
            .pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    }
}

/// An app registration (and its enterprise application settings).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Client secrets.
    #[serde(default)]
    pub secrets: Vec<ClientSecret>,
    /// Certificates for client assertions.
    #[serde(default)]
    pub certificates: Vec<AppCertificate>,
    /// Registered redirect URIs (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// "Allow public client flows" (device code, public auth code).
    #[serde(default)]
    pub allow_public_client_flows: bool,
    /// Requested delegated permissions (used by `.default` and the consent page).
    #[serde(default)]
    pub delegated_permissions: Vec<Permission>,
    /// Requested application permissions (app roles).
    #[serde(default)]
    pub application_permissions: Vec<Permission>,
    /// "Assignment required" on the enterprise application.
    #[serde(default)]
    pub user_assignment_required: bool,
    /// Assigned users and groups (addresses).
    #[serde(default)]
    pub assigned: Vec<String>,
    /// Whether the app is enabled for sign-in.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl AppRegistration {
    /// A public client app with defaults.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            display_name: String::new(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            redirect_uris: Vec::new(),
            allow_public_client_flows: false,
            delegated_permissions: Vec::new(),
            application_permissions: Vec::new(),
            user_assignment_required: false,
            assigned: Vec::new(),
            enabled: true,
        }
    }

    /// Whether the app has a credential (secret or certificate) and so is a confidential client.
    pub fn is_confidential(&self) -> bool {
        !self.secrets.is_empty() || !self.certificates.is_empty()
    }
}

/// Admin (tenant-wide) consent for one app.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminGrant {
    /// Delegated permissions consented for all users.
    #[serde(default)]
    pub delegated: BTreeSet<Permission>,
    /// Application permissions (app roles) granted.
    #[serde(default)]
    pub application: BTreeSet<Permission>,
}

/// Consent state of the tenant.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Consents {
    /// Admin consent per client id.
    pub admin: BTreeMap<String, AdminGrant>,
    /// User consent per client id, then per user object id.
    pub user: BTreeMap<String, BTreeMap<String, BTreeSet<Permission>>>,
}

impl Consents {
    /// Delegated permissions in force for `user_id` and `client_id`, with where each came from.
    pub fn delegated(&self, client_id: &str, user_id: &str) -> BTreeSet<Permission> {
        let mut set = self
            .admin
            .get(client_id)
            .map(|g| g.delegated.clone())
            .unwrap_or_default();
        if let Some(u) = self.user.get(client_id).and_then(|m| m.get(user_id)) {
            set.extend(u.iter().cloned());
        }
        set
    }

    /// Delegated permissions consented tenant-wide by an admin.
    pub fn admin_delegated(&self, client_id: &str) -> BTreeSet<Permission> {
        self.admin
            .get(client_id)
            .map(|g| g.delegated.clone())
            .unwrap_or_default()
    }

    /// Application permissions granted to `client_id`.
    pub fn application(&self, client_id: &str) -> BTreeSet<Permission> {
        self.admin
            .get(client_id)
            .map(|g| g.application.clone())
            .unwrap_or_default()
    }
}

/// The whole tenant model, held by the running sandbox behind a lock.
#[derive(Clone, Debug, Serialize)]
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

/// A message placed in a mailbox when the sandbox starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    messages: Vec<SeedMessage>,
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

const DEMO_SEED: &str = include_str!("seed/demo.toml");

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
            g.mail = g.mail.trim().to_ascii_lowercase();
            if g.id.is_empty() {
                g.id = stable_guid(&g.mail);
            }
            if g.display_name.is_empty() {
                g.display_name = display_from_address(&g.mail);
            }
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
        let tenant = Tenant {
            info: f.tenant,
            org: f.organization,
            identity: f.identity,
            mailboxes,
            groups,
            apps: f.apps,
            consents,
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
    fn permission_parsing() {
        let p = Permission::parse("Mail.Read").unwrap();
        assert!(p.is(ApiResource::Graph, "mail.read"));
        let p = Permission::parse("https://outlook.office.com/EWS.AccessAsUser.All").unwrap();
        assert_eq!(p.resource, ApiResource::Exchange);
        assert!(Permission::parse("https://example.com/x").is_none());
        assert!(Permission::parse("").is_none());
        assert_eq!(
            p.to_string(),
            "https://outlook.office365.com/EWS.AccessAsUser.All"
        );
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

    #[test]
    fn secrets_are_redacted() {
        let s = SecretString::new("hunter2-value");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }
}
