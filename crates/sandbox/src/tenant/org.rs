//! Tenant identity, organisation settings (Exchange and Entra), application access policies and
//! identity settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::apps::{ApiResource, Permission};
use super::yes;

/// Basic tenant identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
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

pub(super) fn default_org_name() -> String {
    "Sandbox Organisation".into()
}
pub(super) fn default_cloud() -> String {
    "global".into()
}

/// Organisation settings (Exchange `Set-OrganizationConfig` and Entra consent settings).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
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
    /// Not an Exchange setting: answer a refused XOAUTH2 token the way Gmail does, with a `334`
    /// error challenge (base64 JSON: `status`, `schemes`, `scope`, `error`,
    /// `error_description`, `www_authenticate`) and `535 5.7.3` after the client's empty
    /// response. Default `false`: as Office 365 does, `535 5.7.3 Authentication unsuccessful`
    /// at once, with no reason. For testing clients that must handle both forms.
    pub smtp_auth_error_challenge: bool,
    /// SMTP client submission: refuse a `MAIL FROM` the authenticated mailbox may not send as
    /// with `550 5.7.60 SMTP; Client does not have permissions to send as this sender`
    /// (default `true`). Reported of Exchange Online, not in Microsoft's reference; with
    /// `false` only the `From` header is checked (`554 5.2.252` at the end of `DATA`).
    pub smtp_check_envelope_sender: bool,
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
#[non_exhaustive]
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
            smtp_auth_error_challenge: false,
            smtp_check_envelope_sender: true,
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
#[non_exhaustive]
pub struct AppAccessPolicy {
    /// The app the policy applies to.
    pub app_id: String,
    /// Mailbox or group addresses in scope (group membership is expanded).
    pub scope: Vec<String>,
    /// Restrict to / deny the scope.
    pub mode: PolicyMode,
}

impl AppAccessPolicy {
    /// A policy that lets the app `app_id` reach only (`RestrictAccess`) or every mailbox but
    /// (`DenyAccess`) the mailboxes and group members in `scope`.
    pub fn new(
        app_id: impl Into<String>,
        scope: impl IntoIterator<Item = impl Into<String>>,
        mode: PolicyMode,
    ) -> Self {
        AppAccessPolicy {
            app_id: app_id.into(),
            scope: scope.into_iter().map(Into::into).collect(),
            mode,
        }
    }
}

/// Token lifetimes and identity behaviour.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
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
