//! [`AdminCommand`], the admin API's JSON vocabulary, and [`AdminOutcome`], its answer.

use serde::{Deserialize, Serialize};

use crate::faults::{FaultPlan, ThrottleConfig};
use crate::tenant::AppAccessPolicy;
use crate::tenant::{
    AppRegistration, ClientSecret, Group, IdentitySettings, Mailbox, MailboxRight, OrgSettings,
    Permission, SenderAuthVerdict,
};

/// One admin operation (the JSON body of `POST /_sandbox/admin`, tagged by `op`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdminCommand {
    /// Adds a user (or shared mailbox, with `kind = "shared"`).
    AddMailbox {
        /// The mailbox.
        mailbox: Mailbox,
    },
    /// Adds a group.
    AddGroup {
        /// The group.
        group: Group,
    },
    /// Adds an alias; it receives mail after the organisation's propagation delay.
    AddAlias {
        /// Mailbox address.
        mailbox: String,
        /// The new alias.
        alias: String,
    },
    /// Enables or disables a user's sign-in.
    SetUserEnabled {
        /// User address.
        user: String,
        /// Enabled?
        enabled: bool,
    },
    /// Adds an app registration.
    AddApp {
        /// The app.
        app: AppRegistration,
    },
    /// Adds a client secret to an app.
    AddSecret {
        /// Client id.
        app: String,
        /// The secret.
        secret: ClientSecret,
    },
    /// Assigns a user or group to an app.
    AssignUser {
        /// Client id.
        app: String,
        /// User or group address.
        principal: String,
    },
    /// Grants tenant-wide admin consent.
    GrantAdminConsent {
        /// Client id.
        app: String,
        /// Delegated permissions.
        #[serde(default)]
        delegated: Vec<Permission>,
        /// Application permissions.
        #[serde(default)]
        application: Vec<Permission>,
    },
    /// Removes the app's admin consent (delegated and application).
    RevokeAdminConsent {
        /// Client id.
        app: String,
    },
    /// Grants a user's own consent.
    GrantUserConsent {
        /// Client id.
        app: String,
        /// User address.
        user: String,
        /// Scopes.
        scopes: Vec<Permission>,
    },
    /// Removes a user's consent for an app.
    RevokeUserConsent {
        /// Client id.
        app: String,
        /// User address.
        user: String,
    },
    /// Turns *Assignment required?* on or off (Entra admin center > Enterprise applications >
    /// the app > Properties): with it on, only assigned users and groups may sign in
    /// (AADSTS50105 otherwise, at sign-in and at every refresh):
    /// `{"op":"set_assignment_required","app":"…","required":true}`.
    SetAssignmentRequired {
        /// Client id.
        app: String,
        /// Whether users must be assigned.
        required: bool,
    },
    /// Removes a user's or group's assignment to an app (Enterprise applications > the app >
    /// Users and groups > Remove).
    UnassignUser {
        /// Client id.
        app: String,
        /// User or group address, as assigned.
        principal: String,
    },
    /// Removes an alias from a mailbox (`Set-Mailbox -EmailAddresses @{remove='smtp:…'}`),
    /// pending or active: `{"op":"remove_alias","mailbox":"…","alias":"…"}`.
    RemoveAlias {
        /// Mailbox address.
        mailbox: String,
        /// The alias.
        alias: String,
    },
    /// Removes a group (distribution list) by address or id.
    RemoveGroup {
        /// The group's address or id.
        group: String,
    },
    /// Adds an application access policy (`New-ApplicationAccessPolicy -AppId … -PolicyScopeGroupId
    /// … -AccessRight RestrictAccess|DenyAccess`):
    /// `{"op":"add_app_access_policy","policy":{"app_id":"…","scope":["…"],"mode":"RestrictAccess"}}`.
    AddAppAccessPolicy {
        /// The policy.
        policy: AppAccessPolicy,
    },
    /// Removes every application access policy of an app (`Remove-ApplicationAccessPolicy`).
    RemoveAppAccessPolicies {
        /// The app's client id.
        app_id: String,
    },
    /// Grants a mailbox right, as `Add-MailboxPermission -AccessRights FullAccess`,
    /// `Add-RecipientPermission -AccessRights SendAs` or `Set-Mailbox -GrantSendOnBehalfTo`:
    /// `{"op":"add_mailbox_permission","mailbox":"billing@contoso.example",
    /// "user":"helpdesk@contoso.example","right":"send_as"}`. `user` is a mailbox or group
    /// address, or (FullAccess, Send As) a service principal registered with
    /// `register_service_principal`, by app id or object id.
    AddMailboxPermission {
        /// The mailbox the right is on (address, alias or id).
        mailbox: String,
        /// The trustee.
        user: String,
        /// `full_access`, `send_as` or `send_on_behalf`.
        right: MailboxRight,
    },
    /// Withdraws a mailbox right (`Remove-MailboxPermission`, `Remove-RecipientPermission`,
    /// `Set-Mailbox -GrantSendOnBehalfTo @{Remove=…}`); live tokens lose it at once.
    RemoveMailboxPermission {
        /// The mailbox the right is on.
        mailbox: String,
        /// The trustee, as it was granted (or any other name of the same mailbox or service
        /// principal).
        user: String,
        /// `full_access`, `send_as` or `send_on_behalf`.
        right: MailboxRight,
    },
    /// Registers an app's service principal in Exchange (`New-ServicePrincipal -AppId …
    /// -ObjectId …`), which SMTP AUTH app-only access needs:
    /// `{"op":"register_service_principal","app_id":"…"}`; `object_id` (the Enterprise
    /// application's) is derived from the app id when omitted.
    RegisterServicePrincipal {
        /// The app's client id.
        app_id: String,
        /// The Enterprise application's object id.
        #[serde(default)]
        object_id: Option<String>,
        /// Display name.
        #[serde(default)]
        display_name: Option<String>,
    },
    /// Removes an app's service principal from Exchange (`Remove-ServicePrincipal`) and every
    /// mailbox right it held.
    RemoveServicePrincipal {
        /// App id or object id.
        app_id: String,
    },
    /// Sets the sender-authentication verdict stamped (`Authentication-Results`) on external
    /// mail whose `From` is in `domain`:
    /// `{"op":"set_sender_authentication","domain":"fabrikam.example","verdict":"pass"}`.
    SetSenderAuthentication {
        /// The `From` domain (case-insensitive).
        domain: String,
        /// `pass`, `fail` or `none` (`none` is also what unlisted domains get).
        verdict: SenderAuthVerdict,
    },
    /// Replaces the organisation settings (sender-authentication verdicts included).
    SetOrg {
        /// New settings.
        settings: OrgSettings,
    },
    /// Replaces the identity settings (token lifetimes, rotation).
    SetIdentity {
        /// New settings.
        settings: IdentitySettings,
    },
    /// Delivers MIME to recipients as if it arrived over SMTP.
    InjectMime {
        /// Envelope sender.
        #[serde(default = "default_sender")]
        from: String,
        /// Envelope recipients.
        to: Vec<String>,
        /// The RFC 822 message.
        mime: String,
    },
    /// Replaces the fault plan.
    SetFaults {
        /// The plan.
        plan: FaultPlan,
    },
    /// Replaces the throttling limits.
    SetThrottle {
        /// The limits.
        config: ThrottleConfig,
    },
    /// Sets the latency added to every admitted Graph and EWS request (`null`: none).
    SetLatency {
        /// The latency model.
        latency: Option<crate::faults::Latency>,
    },
    /// Starts recording each request's hold on a concurrency slot afresh (`true`; read them
    /// with `GET /_sandbox/slots`), or stops and forgets them (`false`).
    RecordSlots {
        /// On or off.
        on: bool,
    },
    /// Approves a pending device code as a user.
    ApproveDeviceCode {
        /// The user code shown to the user.
        user_code: String,
        /// The user approving.
        user: String,
    },
    /// Declines a pending device code.
    DeclineDeviceCode {
        /// The user code.
        user_code: String,
    },
    /// Makes every access token issued so far count as expired.
    ExpireAccessTokens,
    /// Revokes refresh tokens (of one user, or all).
    RevokeRefreshTokens {
        /// User address; all users when omitted.
        #[serde(default)]
        user: Option<String>,
    },
    /// Moves the sandbox clock forward.
    AdvanceClock {
        /// Seconds.
        secs: i64,
    },
    /// Clears the request log.
    ClearRequestLog,
    /// Sets the faults in the delivery of Graph change notifications
    /// (`{"op":"set_notification_faults","faults":{"drop_rate":0.5}}`).
    SetNotificationFaults {
        /// The faults.
        faults: crate::NotificationFaults,
    },
    /// Removes a Graph subscription as the service does when it must: it is gone, and a
    /// `subscriptionRemoved` lifecycle notification goes to its `lifecycleNotificationUrl`
    /// (`{"op":"remove_subscription","id":"…"}`).
    RemoveSubscription {
        /// The subscription's id.
        id: String,
    },
    /// Sends a lifecycle notification for a Graph subscription
    /// (`{"op":"send_lifecycle_notification","id":"…","event":"missed"}`).
    SendLifecycleNotification {
        /// The subscription's id.
        id: String,
        /// `subscriptionRemoved` (the subscription is removed too), `reauthorizationRequired`
        /// or `missed`.
        event: crate::LifecycleEvent,
    },
}

pub(super) fn default_sender() -> String {
    "sender@external.example".into()
}

/// The outcome of an [`AdminCommand`] (JSON over HTTP).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub struct AdminOutcome {
    /// Always `true` on success.
    pub ok: bool,
    /// Delivered mailboxes (inject).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delivered: Vec<String>,
    /// Rejected recipients with reasons (inject).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<(String, String)>,
    /// Count (revocations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl AdminOutcome {
    pub(super) fn ok() -> Self {
        Self {
            ok: true,
            delivered: Vec::new(),
            rejected: Vec::new(),
            count: None,
        }
    }
}
