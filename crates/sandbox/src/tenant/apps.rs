//! App registrations (secrets, certificates, permissions), the resource APIs their tokens are
//! for, and consent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::yes;

/// A secret value (client secret) that never appears in `Debug`, `Display` or serialised output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Only call this where the value is sent on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, in time that depends neither on where they differ nor
    /// on their lengths (both are hashed first). The sandbox's one comparison of secrets:
    /// client secrets at the token endpoint, the admin token at the admin API.
    pub fn matches(&self, given: &str) -> bool {
        let da = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        let db = ring::digest::digest(&ring::digest::SHA256, given.as_bytes());
        da.as_ref()
            .iter()
            .zip(db.as_ref())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
#[non_exhaustive]
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
#[non_exhaustive]
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

    /// How a token response's `scope` names the permission: Graph's without the resource
    /// prefix (`Mail.Read`), every other resource's with it
    /// (`https://outlook.office365.com/EWS.AccessAsUser.All`), as Entra ID answers. Clients
    /// such as MSAL cache by these names, so the prefixed form would never hit their cache.
    pub fn response_scope(&self) -> String {
        match self.resource {
            ApiResource::Graph => self.name.clone(),
            ApiResource::Exchange => self.to_string(),
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

/// A client secret of an app registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
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

impl ClientSecret {
    /// A secret that never expires (the type is `#[non_exhaustive]`: set `expires` on the
    /// value). On a running sandbox, [`Admin::add_secret`](crate::Admin::add_secret) adds one.
    ///
    /// ```
    /// use sandbox::tenant::{AppRegistration, ClientSecret};
    ///
    /// let mut app = AppRegistration::new("11111111-2222-3333-4444-555555555555");
    /// app.secrets.push(ClientSecret::new("key-1", "s3cret"));
    /// assert!(app.is_confidential());
    /// assert!(app.secrets[0].value.matches("s3cret"));
    /// assert!(!format!("{:?}", app.secrets[0]).contains("s3cret"));
    /// ```
    pub fn new(id: impl Into<String>, value: impl Into<String>) -> Self {
        ClientSecret {
            id: id.into(),
            value: SecretString::new(value),
            expires: None,
        }
    }
}

/// A certificate credential of an app registration: the PEM of the public certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AppCertificate {
    /// PEM (`-----BEGIN CERTIFICATE-----`) of the certificate.
    pub pem: String,
}

impl AppCertificate {
    /// The certificate whose PEM (`-----BEGIN CERTIFICATE-----`) is `pem`. It is read when a
    /// client signs in with it: an unreadable one refuses that sign-in.
    pub fn from_pem(pem: impl Into<String>) -> Self {
        AppCertificate { pem: pem.into() }
    }

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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn secrets_are_redacted() {
        let s = SecretString::new("hunter2-value");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }
}
