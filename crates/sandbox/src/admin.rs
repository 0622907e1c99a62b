//! The admin API: the sandbox's stand-in for the Azure portal and Exchange PowerShell.
//!
//! In process, use the typed [`Admin`] handle from [`crate::Sandbox::admin`]. Over HTTP (the
//! standalone server), send the same operations as JSON [`AdminCommand`]s:
//!
//! ```text
//! POST /_sandbox/admin          {"op": "grant_admin_consent", "app": "…", "delegated": ["Mail.Read"]}
//! GET  /_sandbox/requests       request log
//! GET  /_sandbox/slots          concurrency slot holds (after `record_slots`)
//! GET  /_sandbox/outbox         mail sent outside the tenant
//! GET  /_sandbox/tenant         the tenant model (secrets redacted)
//! GET  /_sandbox/subscriptions  Graph subscriptions and what their notifications did
//! ```
//!
//! Over HTTP the admin API answers only requests addressed to the sandbox itself (`Host`), not
//! sent cross-site (`Origin`), and, when an admin token is configured (always when bound beyond
//! loopback), carrying `Authorization: Bearer <token>`; `POST /_sandbox/admin` takes only
//! `Content-Type: application/json` (`415` otherwise). Refusals are JSON
//! `{"ok": false, "code": …, "error": …}`. See [`crate::SandboxBuilder::allow_non_loopback`] and
//! [`crate::SandboxBuilder::admin_token`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::delivery::{self, DeliveryReport, OutboxEntry};
use crate::faults::{FaultPlan, ThrottleConfig};
use crate::identity::MintRequest;
use crate::identity::grants::DeviceStatus;
use crate::reqlog::RequestLogSnapshot;
use crate::state::AppState;
use crate::tenant::{AppAccessPolicy, PolicyMode};
use crate::tenant::{
    AppRegistration, ClientSecret, Group, IdentitySettings, Mailbox, MailboxKind, MailboxRight,
    OrgSettings, Permission, SecretString, SenderAuthVerdict, ServicePrincipal, Tenant,
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

fn default_sender() -> String {
    "sender@external.example".into()
}

/// Why an admin operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A named user, mailbox, app or code does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation conflicts with existing state (duplicate address, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The operation's input is invalid.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// The outcome of an [`AdminCommand`] (JSON over HTTP).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
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
    fn ok() -> Self {
        Self {
            ok: true,
            delivered: Vec::new(),
            rejected: Vec::new(),
            count: None,
        }
    }
}

/// Typed admin handle for a running sandbox. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Admin {
    state: AppState,
}

impl Admin {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Applies one admin command.
    pub fn apply(&self, cmd: AdminCommand) -> Result<AdminOutcome, AdminError> {
        let st = &self.state;
        let now = st.clock().now_unix();
        match cmd {
            AdminCommand::AddMailbox { mut mailbox } => {
                let fresh = Mailbox::user(mailbox.mail.clone());
                if mailbox.id.is_empty() {
                    mailbox.id = fresh.id;
                }
                if mailbox.upn.is_empty() {
                    mailbox.upn = fresh.upn;
                }
                if mailbox.display_name.is_empty() {
                    mailbox.display_name = fresh.display_name;
                }
                mailbox.mail = fresh.mail;
                let mut t = st.tenant_mut();
                if t.resolve(&mailbox.mail, i64::MAX).is_some() {
                    return Err(AdminError::Conflict(mailbox.mail));
                }
                st.store().ensure_mailbox(&mailbox.mail);
                t.mailboxes.push(mailbox);
            }
            AdminCommand::AddGroup { mut group } => {
                group.mail = group.mail.to_ascii_lowercase();
                if group.id.is_empty() {
                    group.id = crate::tenant::stable_guid(&group.mail);
                }
                let mut t = st.tenant_mut();
                if t.resolve(&group.mail, i64::MAX).is_some() {
                    return Err(AdminError::Conflict(group.mail));
                }
                t.groups.push(group);
            }
            AdminCommand::AddAlias { mailbox, alias } => {
                let alias = alias.trim().to_ascii_lowercase();
                if !alias.contains('@') {
                    return Err(AdminError::Invalid(format!("{alias} is not an address")));
                }
                let mut t = st.tenant_mut();
                if t.resolve(&alias, i64::MAX).is_some() {
                    return Err(AdminError::Conflict(alias));
                }
                let delay = t.org.alias_propagation_delay_secs as i64;
                let mb = t
                    .mailbox_mut(&mailbox)
                    .ok_or(AdminError::NotFound(mailbox))?;
                mb.aliases.push(alias.clone());
                if delay > 0 {
                    mb.pending_aliases.insert(alias, now + delay);
                }
            }
            AdminCommand::SetUserEnabled { user, enabled } => {
                let mut t = st.tenant_mut();
                t.mailbox_mut(&user)
                    .ok_or(AdminError::NotFound(user))?
                    .enabled = enabled;
            }
            AdminCommand::AddApp { app } => {
                let mut t = st.tenant_mut();
                if t.app(&app.client_id).is_some() {
                    return Err(AdminError::Conflict(app.client_id));
                }
                t.apps.push(app);
            }
            AdminCommand::AddSecret { app, secret } => {
                let mut t = st.tenant_mut();
                t.app_mut(&app)
                    .ok_or(AdminError::NotFound(app))?
                    .secrets
                    .push(secret);
            }
            AdminCommand::AssignUser { app, principal } => {
                let mut t = st.tenant_mut();
                t.app_mut(&app)
                    .ok_or(AdminError::NotFound(app))?
                    .assigned
                    .push(principal);
            }
            AdminCommand::GrantAdminConsent {
                app,
                delegated,
                application,
            } => {
                let mut t = st.tenant_mut();
                let g = t.consents.admin.entry(app).or_default();
                g.delegated.extend(delegated);
                g.application.extend(application);
            }
            AdminCommand::RevokeAdminConsent { app } => {
                st.tenant_mut().consents.admin.remove(&app);
            }
            AdminCommand::GrantUserConsent { app, user, scopes } => {
                let mut t = st.tenant_mut();
                let uid = t
                    .user(&user, i64::MAX)
                    .map(|u| u.id.clone())
                    .ok_or(AdminError::NotFound(user))?;
                t.consents
                    .user
                    .entry(app)
                    .or_default()
                    .entry(uid)
                    .or_default()
                    .extend(scopes);
            }
            AdminCommand::RevokeUserConsent { app, user } => {
                let mut t = st.tenant_mut();
                let uid = t
                    .user(&user, i64::MAX)
                    .map(|u| u.id.clone())
                    .ok_or(AdminError::NotFound(user))?;
                if let Some(m) = t.consents.user.get_mut(&app) {
                    m.remove(&uid);
                }
            }
            AdminCommand::SetAssignmentRequired { app, required } => {
                st.tenant_mut()
                    .app_mut(&app)
                    .ok_or(AdminError::NotFound(app))?
                    .user_assignment_required = required;
            }
            AdminCommand::UnassignUser { app, principal } => {
                let mut t = st.tenant_mut();
                let a = t.app_mut(&app).ok_or(AdminError::NotFound(app))?;
                let before = a.assigned.len();
                a.assigned.retain(|p| !p.eq_ignore_ascii_case(&principal));
                if a.assigned.len() == before {
                    return Err(AdminError::NotFound(format!(
                        "{principal} is not assigned to {}",
                        a.client_id
                    )));
                }
            }
            AdminCommand::RemoveAlias { mailbox, alias } => {
                let mut t = st.tenant_mut();
                let mb = t
                    .mailbox_mut(&mailbox)
                    .ok_or(AdminError::NotFound(mailbox))?;
                let before = mb.aliases.len();
                mb.aliases.retain(|a| !a.eq_ignore_ascii_case(&alias));
                mb.pending_aliases
                    .retain(|a, _| !a.eq_ignore_ascii_case(&alias));
                if mb.aliases.len() == before {
                    return Err(AdminError::NotFound(format!(
                        "{alias} is no alias of {}",
                        mb.mail
                    )));
                }
            }
            AdminCommand::RemoveGroup { group } => {
                let mut t = st.tenant_mut();
                let id = t
                    .group(&group)
                    .map(|g| g.id.clone())
                    .ok_or(AdminError::NotFound(group))?;
                t.groups.retain(|g| g.id != id);
            }
            AdminCommand::AddAppAccessPolicy { policy } => {
                if uuid::Uuid::parse_str(&policy.app_id).is_err() {
                    return Err(AdminError::Invalid(format!(
                        "{:?} is not a GUID",
                        policy.app_id
                    )));
                }
                st.tenant_mut().org.app_access_policies.push(policy);
            }
            AdminCommand::RemoveAppAccessPolicies { app_id } => {
                let mut t = st.tenant_mut();
                let policies = &mut t.org.app_access_policies;
                let before = policies.len();
                policies.retain(|p| !p.app_id.eq_ignore_ascii_case(&app_id));
                if policies.len() == before {
                    return Err(AdminError::NotFound(format!(
                        "no application access policy for {app_id}"
                    )));
                }
            }
            AdminCommand::SetSenderAuthentication { domain, verdict } => {
                let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
                let valid = !domain.is_empty()
                    && domain
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if !valid {
                    return Err(AdminError::Invalid(format!("{domain:?} is not a domain")));
                }
                let mut t = st.tenant_mut();
                let map = &mut t.org.sender_authentication;
                map.retain(|d, _| !d.eq_ignore_ascii_case(&domain));
                map.insert(domain, verdict);
            }
            AdminCommand::AddMailboxPermission {
                mailbox,
                user,
                right,
            } => {
                let mut t = st.tenant_mut();
                let trustee = trustee_name(&t, &user, right)?;
                let target = t
                    .mailbox_mut(&mailbox)
                    .ok_or(AdminError::NotFound(mailbox))?;
                let list = right.trustees_mut(target);
                if !list.iter().any(|u| u.eq_ignore_ascii_case(&trustee)) {
                    list.push(trustee);
                }
            }
            AdminCommand::RemoveMailboxPermission {
                mailbox,
                user,
                right,
            } => {
                let mut t = st.tenant_mut();
                let names = trustee_names(&t, &user);
                let target = t
                    .mailbox_mut(&mailbox)
                    .ok_or(AdminError::NotFound(mailbox))?;
                let list = right.trustees_mut(target);
                let before = list.len();
                list.retain(|u| !names.iter().any(|n| n.eq_ignore_ascii_case(u)));
                if list.len() == before {
                    return Err(AdminError::NotFound(format!(
                        "{user} holds no such right on {}",
                        target.mail
                    )));
                }
            }
            AdminCommand::RegisterServicePrincipal {
                app_id,
                object_id,
                display_name,
            } => {
                let mut sp = ServicePrincipal {
                    app_id,
                    object_id: object_id.unwrap_or_default(),
                    display_name: display_name.unwrap_or_default(),
                };
                sp.fill_defaults();
                for id in [&sp.app_id, &sp.object_id] {
                    if uuid::Uuid::parse_str(id).is_err() {
                        return Err(AdminError::Invalid(format!("{id:?} is not a GUID")));
                    }
                }
                let mut t = st.tenant_mut();
                if t.service_principal(&sp.app_id).is_some()
                    || t.service_principal(&sp.object_id).is_some()
                {
                    return Err(AdminError::Conflict(sp.app_id));
                }
                t.service_principals.push(sp);
            }
            AdminCommand::RemoveServicePrincipal { app_id } => {
                let mut t = st.tenant_mut();
                let sp = t
                    .service_principal(&app_id)
                    .cloned()
                    .ok_or(AdminError::NotFound(app_id))?;
                t.service_principals.retain(|o| !o.is(&sp.app_id));
                for mb in &mut t.mailboxes {
                    for right in [
                        MailboxRight::FullAccess,
                        MailboxRight::SendAs,
                        MailboxRight::SendOnBehalf,
                    ] {
                        right.trustees_mut(mb).retain(|u| !sp.is(u));
                    }
                }
            }
            AdminCommand::SetOrg { settings } => st.tenant_mut().org = settings,
            AdminCommand::SetIdentity { settings } => st.tenant_mut().identity = settings,
            AdminCommand::InjectMime { from, to, mime } => {
                let report = self.inject(&from, &to, mime.as_bytes())?;
                let mut out = AdminOutcome::ok();
                out.delivered = report.delivered.into_iter().map(|(_, mb, _)| mb).collect();
                out.rejected = report
                    .rejected
                    .into_iter()
                    .map(|(r, e)| (r, e.to_string()))
                    .collect();
                return Ok(out);
            }
            AdminCommand::SetFaults { plan } => st.faults().set_plan(plan),
            AdminCommand::SetThrottle { config } => st.faults().set_throttle(config),
            AdminCommand::SetLatency { latency } => st.faults().set_latency(latency),
            AdminCommand::RecordSlots { on } => st.faults().record_slots(on),
            AdminCommand::ApproveDeviceCode { user_code, user } => {
                let uid = st
                    .tenant()
                    .user(&user, now)
                    .map(|u| u.id.clone())
                    .ok_or(AdminError::NotFound(user))?;
                self.set_device_status(&user_code, DeviceStatus::Approved(uid))?;
            }
            AdminCommand::DeclineDeviceCode { user_code } => {
                self.set_device_status(&user_code, DeviceStatus::Declined)?;
            }
            AdminCommand::ExpireAccessTokens => st.identity().expire_issued_tokens(),
            AdminCommand::RevokeRefreshTokens { user } => {
                let uid = match user {
                    Some(u) => Some(
                        st.tenant()
                            .user(&u, now)
                            .map(|u| u.id.clone())
                            .ok_or(AdminError::NotFound(u))?,
                    ),
                    None => None,
                };
                let mut out = AdminOutcome::ok();
                out.count = Some(st.identity().revoke_refresh_tokens(uid.as_deref(), None));
                return Ok(out);
            }
            AdminCommand::AdvanceClock { secs } => st.clock().advance(secs),
            AdminCommand::ClearRequestLog => st.reqlog().clear(),
            AdminCommand::SetNotificationFaults { faults } => st.notifier().set_faults(faults),
            AdminCommand::RemoveSubscription { id } => {
                self.lifecycle_event(&id, crate::LifecycleEvent::SubscriptionRemoved)?;
            }
            AdminCommand::SendLifecycleNotification { id, event } => {
                self.lifecycle_event(&id, event)?;
            }
        }
        Ok(AdminOutcome::ok())
    }

    /// Sends a lifecycle notification for the subscription `id`; `subscriptionRemoved` also
    /// removes it. Needs a Tokio runtime (the notification is sent on a task).
    pub fn lifecycle_event(
        &self,
        id: &str,
        event: crate::LifecycleEvent,
    ) -> Result<(), AdminError> {
        let st = &self.state;
        let sub = st
            .notifier()
            .get(id, st.clock().now())
            .ok_or_else(|| AdminError::NotFound(format!("subscription {id}")))?;
        if event == crate::LifecycleEvent::SubscriptionRemoved {
            st.notifier().remove(id);
        }
        st.notifier().lifecycle(st, &sub, event);
        Ok(())
    }

    /// Sets the faults in the delivery of Graph change notifications.
    pub fn set_notification_faults(&self, faults: crate::NotificationFaults) {
        self.state.notifier().set_faults(faults);
    }

    /// The live Graph subscriptions: id, app, mailbox, resource and expiry.
    pub fn subscriptions(&self) -> Vec<crate::SubscriptionSummary> {
        let st = &self.state;
        st.notifier()
            .list(st.clock().now())
            .into_iter()
            .map(|s| crate::SubscriptionSummary {
                id: s.id,
                app_id: s.app_id,
                mailbox: s.mailbox,
                resource: s.resource,
                expiration: s.expiration,
            })
            .collect()
    }

    /// How many EWS streaming subscriptions exist.
    pub fn ews_subscriptions(&self) -> usize {
        self.state.notifier().ews_count()
    }

    /// Takes EWS streaming notifications down (`true`) or brings them back (`false`), the
    /// fault of a mailbox server failing over: while down, every EWS streaming subscription is
    /// lost (open GetStreamingEvents connections end with `ConnectionStatus` `Closed`, and a
    /// later one for them is answered `ErrorInvalidSubscription`), and Subscribe and
    /// GetStreamingEvents are answered 503 with `Retry-After: 1`, as the load balancer in
    /// front of it answers. Mail keeps arriving and every other operation works, so what
    /// arrives meanwhile is announced by no notification: only a catch-up finds it.
    pub fn set_ews_streaming_down(&self, down: bool) {
        self.state.notifier().set_ews_down(down);
    }

    /// What the change-notification machinery has done so far.
    pub fn notification_stats(&self) -> crate::NotificationStats {
        self.state.notifier().stats()
    }

    fn set_device_status(&self, user_code: &str, status: DeviceStatus) -> Result<(), AdminError> {
        let mut inner = self.state.identity().inner();
        let g = inner
            .devices
            .values_mut()
            .find(|g| {
                g.user_code.eq_ignore_ascii_case(user_code) && g.status == DeviceStatus::Pending
            })
            .ok_or_else(|| AdminError::NotFound(format!("pending device code {user_code}")))?;
        g.status = status;
        Ok(())
    }

    /// Adds a user mailbox with default settings.
    pub fn add_user(&self, mail: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::AddMailbox {
            mailbox: Mailbox::user(mail),
        })
        .map(drop)
    }

    /// Adds a shared mailbox; `full_access` users get FullAccess and Send As.
    pub fn add_shared_mailbox(&self, mail: &str, full_access: &[&str]) -> Result<(), AdminError> {
        let mut m = Mailbox::user(mail);
        m.kind = MailboxKind::Shared;
        m.full_access = full_access.iter().map(|s| s.to_string()).collect();
        m.send_as = m.full_access.clone();
        self.apply(AdminCommand::AddMailbox { mailbox: m })
            .map(drop)
    }

    /// Grants `user` (a mailbox or group address, or a registered service principal's app id or
    /// object id) `right` on `mailbox`: `Add-MailboxPermission` (FullAccess),
    /// `Add-RecipientPermission` (Send As), `Set-Mailbox -GrantSendOnBehalfTo`.
    pub fn add_mailbox_permission(
        &self,
        mailbox: &str,
        user: &str,
        right: MailboxRight,
    ) -> Result<(), AdminError> {
        self.apply(AdminCommand::AddMailboxPermission {
            mailbox: mailbox.into(),
            user: user.into(),
            right,
        })
        .map(drop)
    }

    /// Withdraws `right` on `mailbox` from `user`.
    pub fn remove_mailbox_permission(
        &self,
        mailbox: &str,
        user: &str,
        right: MailboxRight,
    ) -> Result<(), AdminError> {
        self.apply(AdminCommand::RemoveMailboxPermission {
            mailbox: mailbox.into(),
            user: user.into(),
            right,
        })
        .map(drop)
    }

    /// Registers the app's service principal in Exchange (`New-ServicePrincipal`) with the
    /// derived object id, which it returns.
    pub fn register_service_principal(&self, app_id: &str) -> Result<String, AdminError> {
        self.apply(AdminCommand::RegisterServicePrincipal {
            app_id: app_id.into(),
            object_id: None,
            display_name: None,
        })?;
        Ok(ServicePrincipal::new(app_id).object_id)
    }

    /// Removes the app's service principal from Exchange, with every mailbox right it held.
    pub fn remove_service_principal(&self, app_id: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::RemoveServicePrincipal {
            app_id: app_id.into(),
        })
        .map(drop)
    }

    /// Adds a group (distribution list) with member addresses.
    pub fn add_group(&self, mail: &str, members: &[&str]) -> Result<(), AdminError> {
        let group = Group {
            id: String::new(),
            mail: mail.to_string(),
            display_name: String::new(),
            aliases: Vec::new(),
            members: members.iter().map(|m| m.to_string()).collect(),
        };
        self.apply(AdminCommand::AddGroup { group }).map(drop)
    }

    /// Assigns a user or group to an app ("user assignment required").
    pub fn assign_user(&self, app: &str, principal: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::AssignUser {
            app: app.into(),
            principal: principal.into(),
        })
        .map(drop)
    }

    /// Turns the app's *Assignment required?* on or off.
    pub fn set_assignment_required(&self, app: &str, required: bool) -> Result<(), AdminError> {
        self.apply(AdminCommand::SetAssignmentRequired {
            app: app.into(),
            required,
        })
        .map(drop)
    }

    /// Removes a user's or group's assignment to an app.
    pub fn unassign_user(&self, app: &str, principal: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::UnassignUser {
            app: app.into(),
            principal: principal.into(),
        })
        .map(drop)
    }

    /// Removes an alias (pending or active) from a mailbox.
    pub fn remove_alias(&self, mailbox: &str, alias: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::RemoveAlias {
            mailbox: mailbox.into(),
            alias: alias.into(),
        })
        .map(drop)
    }

    /// Removes a group by address or id.
    pub fn remove_group(&self, group: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::RemoveGroup {
            group: group.into(),
        })
        .map(drop)
    }

    /// Adds an application access policy: the app may reach only (`RestrictAccess`) or every
    /// mailbox but (`DenyAccess`) the mailboxes and group members in `scope`.
    pub fn add_app_access_policy(
        &self,
        app_id: &str,
        scope: &[&str],
        mode: PolicyMode,
    ) -> Result<(), AdminError> {
        self.apply(AdminCommand::AddAppAccessPolicy {
            policy: AppAccessPolicy {
                app_id: app_id.into(),
                scope: scope.iter().map(|s| s.to_string()).collect(),
                mode,
            },
        })
        .map(drop)
    }

    /// Removes every application access policy of the app.
    pub fn remove_app_access_policies(&self, app_id: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::RemoveAppAccessPolicies {
            app_id: app_id.into(),
        })
        .map(drop)
    }

    /// Enables or disables a user's sign-in (live tokens of a disabled user stop working).
    pub fn set_user_enabled(&self, user: &str, enabled: bool) -> Result<(), AdminError> {
        self.apply(AdminCommand::SetUserEnabled {
            user: user.into(),
            enabled,
        })
        .map(drop)
    }

    /// Adds an alias (subject to the propagation delay).
    pub fn add_alias(&self, mailbox: &str, alias: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::AddAlias {
            mailbox: mailbox.into(),
            alias: alias.into(),
        })
        .map(drop)
    }

    /// Adds an app registration.
    pub fn add_app(&self, app: AppRegistration) -> Result<(), AdminError> {
        self.apply(AdminCommand::AddApp { app }).map(drop)
    }

    /// Adds a client secret (optionally expiring) to an app.
    pub fn add_secret(
        &self,
        app: &str,
        value: &str,
        expires: Option<time::OffsetDateTime>,
    ) -> Result<(), AdminError> {
        let secret = ClientSecret {
            id: uuid::Uuid::new_v4().to_string(),
            value: SecretString::new(value),
            expires,
        };
        self.apply(AdminCommand::AddSecret {
            app: app.into(),
            secret,
        })
        .map(drop)
    }

    /// Grants tenant-wide admin consent (permission strings as in seeds: `Mail.Read`,
    /// `https://outlook.office365.com/full_access_as_app`).
    pub fn grant_admin_consent(
        &self,
        app: &str,
        delegated: &[&str],
        application: &[&str],
    ) -> Result<(), AdminError> {
        let p = |v: &[&str]| -> Result<Vec<Permission>, AdminError> {
            v.iter()
                .map(|s| Permission::parse(s).ok_or_else(|| AdminError::Invalid(s.to_string())))
                .collect()
        };
        self.apply(AdminCommand::GrantAdminConsent {
            app: app.into(),
            delegated: p(delegated)?,
            application: p(application)?,
        })
        .map(drop)
    }

    /// Withdraws the app's admin consent.
    pub fn revoke_admin_consent(&self, app: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::RevokeAdminConsent { app: app.into() })
            .map(drop)
    }

    /// Grants a user's own consent to scopes.
    pub fn grant_user_consent(
        &self,
        app: &str,
        user: &str,
        scopes: &[&str],
    ) -> Result<(), AdminError> {
        let scopes = scopes
            .iter()
            .map(|s| Permission::parse(s).ok_or_else(|| AdminError::Invalid(s.to_string())))
            .collect::<Result<_, _>>()?;
        self.apply(AdminCommand::GrantUserConsent {
            app: app.into(),
            user: user.into(),
            scopes,
        })
        .map(drop)
    }

    /// Withdraws a user's consent.
    pub fn revoke_user_consent(&self, app: &str, user: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::RevokeUserConsent {
            app: app.into(),
            user: user.into(),
        })
        .map(drop)
    }

    /// Sets the sender-authentication verdict for external mail whose `From` is in `domain`
    /// (case-insensitive): the `Authentication-Results` header delivery stamps on it says
    /// `pass`, `fail` or `none` (see [`crate::delivery`]). Unlisted domains get `none`.
    pub fn set_sender_authentication(
        &self,
        domain: &str,
        verdict: SenderAuthVerdict,
    ) -> Result<(), AdminError> {
        self.apply(AdminCommand::SetSenderAuthentication {
            domain: domain.into(),
            verdict,
        })
        .map(drop)
    }

    /// Changes organisation settings in place.
    pub fn update_org(&self, f: impl FnOnce(&mut OrgSettings)) {
        f(&mut self.state.tenant_mut().org);
    }

    /// Changes identity settings (token lifetimes, rotation) in place.
    pub fn update_identity(&self, f: impl FnOnce(&mut IdentitySettings)) {
        f(&mut self.state.tenant_mut().identity);
    }

    /// Changes anything in the tenant model in place.
    pub fn update_tenant(&self, f: impl FnOnce(&mut Tenant)) {
        f(&mut self.state.tenant_mut());
    }

    /// A copy of the tenant model.
    pub fn tenant(&self) -> Tenant {
        self.state.tenant().clone()
    }

    /// Delivers MIME as if it arrived over SMTP with this envelope.
    pub fn inject(
        &self,
        from: &str,
        to: &[String],
        mime: &[u8],
    ) -> Result<DeliveryReport, AdminError> {
        delivery::deliver(&self.state, from, to, mime)
            .map_err(|e| AdminError::Invalid(e.to_string()))
    }

    /// Delivers MIME to one recipient (envelope sender `sender@external.example`).
    pub fn inject_mime(&self, to: &str, mime: &str) -> Result<DeliveryReport, AdminError> {
        self.inject(&default_sender(), &[to.to_string()], mime.as_bytes())
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.state.faults().set_plan(plan);
    }

    /// Replaces the throttling limits.
    pub fn set_throttle(&self, config: ThrottleConfig) {
        self.state.faults().set_throttle(config);
    }

    /// Sets (or, with `None`, removes) the latency every admitted Graph and EWS request takes
    /// while it holds its concurrency slot ([`Latency`](crate::Latency)).
    pub fn set_latency(&self, latency: Option<crate::Latency>) {
        self.state.faults().set_latency(latency);
    }

    /// Starts recording each request's hold on a concurrency slot afresh (`true`), or stops
    /// and forgets them (`false`). See [`slot_uses`](Self::slot_uses).
    pub fn record_slots(&self, on: bool) {
        self.state.faults().record_slots(on);
    }

    /// The slot holds recorded since [`record_slots`](Self::record_slots)`(true)`, in the
    /// order they ended; with [`busy_fraction`](crate::busy_fraction), how much of the time
    /// every allowed request slot of an app and mailbox was busy.
    pub fn slot_uses(&self) -> Vec<crate::SlotUse> {
        self.state.faults().slot_uses()
    }

    /// Number of faults injected since the plan was set.
    pub fn faults_fired(&self) -> u64 {
        self.state.faults().fired()
    }

    /// Faults injected since the plan was set, per protocol and
    /// [`FaultKind::name`](crate::FaultKind::name); kinds that never fired are absent.
    pub fn faults_fired_by_kind(&self) -> Vec<(crate::Protocol, &'static str, u64)> {
        self.state.faults().fired_by_kind()
    }

    /// The request log.
    pub fn request_log(&self) -> RequestLogSnapshot {
        self.state.reqlog().snapshot()
    }

    /// Clears the request log.
    pub fn clear_request_log(&self) {
        self.state.reqlog().clear();
    }

    /// Mints an access token directly (see [`MintRequest`]).
    pub fn mint_token(&self, req: &MintRequest) -> Result<String, AdminError> {
        crate::identity::token_mint(&self.state, req).map_err(AdminError::NotFound)
    }

    /// Approves a pending device code as `user`.
    pub fn approve_device_code(&self, user_code: &str, user: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::ApproveDeviceCode {
            user_code: user_code.into(),
            user: user.into(),
        })
        .map(drop)
    }

    /// Declines a pending device code.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), AdminError> {
        self.apply(AdminCommand::DeclineDeviceCode {
            user_code: user_code.into(),
        })
        .map(drop)
    }

    /// Makes every access token issued so far count as expired.
    pub fn expire_access_tokens(&self) {
        self.state.identity().expire_issued_tokens();
    }

    /// Revokes refresh tokens of one user (`Some`) or everyone; returns how many.
    pub fn revoke_refresh_tokens(&self, user: Option<&str>) -> Result<usize, AdminError> {
        let out = self.apply(AdminCommand::RevokeRefreshTokens {
            user: user.map(str::to_string),
        })?;
        Ok(out.count.unwrap_or(0))
    }

    /// Moves the sandbox clock forward by `secs` seconds.
    pub fn advance_clock(&self, secs: i64) {
        self.state.clock().advance(secs);
    }

    /// Mail sent to external recipients.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        self.state.outbox().clone()
    }

    /// The mail store (to inspect mailboxes in tests).
    pub fn store(&self) -> &crate::store::MailStore {
        self.state.store()
    }
}

/// The name a permission list stores for trustee `user`: a mailbox's primary address, a
/// group's address, or a registered service principal's app id (FullAccess and Send As only:
/// Send on Behalf goes to recipients). Unknown trustees are refused, as Exchange refuses them.
fn trustee_name(t: &Tenant, user: &str, right: MailboxRight) -> Result<String, AdminError> {
    if let Some(m) = t.mailbox(user, i64::MAX) {
        return Ok(m.mail.clone());
    }
    if let Some(g) = t.group(user) {
        return Ok(g.mail.clone());
    }
    match t.service_principal(user) {
        Some(sp) if right != MailboxRight::SendOnBehalf => Ok(sp.app_id.clone()),
        Some(_) => Err(AdminError::Invalid(format!(
            "Send on Behalf is granted to recipients, not to the service principal {user}"
        ))),
        None => Err(AdminError::NotFound(format!(
            "{user} is no mailbox, group or registered service principal (New-ServicePrincipal)"
        ))),
    }
}

/// Every name under which `user` may stand in a permission list.
fn trustee_names(t: &Tenant, user: &str) -> Vec<String> {
    let mut names = vec![user.to_string()];
    if let Some(m) = t.mailbox(user, i64::MAX) {
        names.extend([m.mail.clone(), m.upn.clone(), m.id.clone()]);
        names.extend(m.aliases.iter().cloned());
    }
    if let Some(g) = t.group(user) {
        names.extend([g.mail.clone(), g.id.clone()]);
        names.extend(g.aliases.iter().cloned());
    }
    if let Some(sp) = t.service_principal(user) {
        names.extend([sp.app_id.clone(), sp.object_id.clone()]);
    }
    names
}

/// Whether a `Content-Type` value is `application/json` (parameters such as `charset` allowed).
fn is_json(content_type: Option<&http::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn post_admin(
    State(state): State<AppState>,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // A browser sends `text/plain`, form or multipart bodies cross-site without asking; JSON
    // needs a CORS preflight the sandbox never answers. So only JSON is an admin command.
    if !is_json(headers.get(http::header::CONTENT_TYPE)) {
        return crate::admin_guard::refuse(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "admin commands must be sent with `Content-Type: application/json`, not {}",
                headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| format!("{:?}", String::from_utf8_lossy(v.as_bytes())))
                    .unwrap_or_else(|| "none".into())
            ),
        );
    }
    let cmd: AdminCommand = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                http::StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"ok": false, "error": e.to_string()})),
            )
                .into_response();
        }
    };
    match Admin::new(state).apply(cmd) {
        Ok(o) => Json(o).into_response(),
        Err(e) => {
            let status = match e {
                AdminError::NotFound(_) => http::StatusCode::NOT_FOUND,
                AdminError::Conflict(_) => http::StatusCode::CONFLICT,
                AdminError::Invalid(_) => http::StatusCode::BAD_REQUEST,
            };
            (
                status,
                Json(serde_json::json!({"ok": false, "error": e.to_string()})),
            )
                .into_response()
        }
    }
}

async fn get_slots(State(state): State<AppState>) -> Response {
    Json(state.faults().slot_uses()).into_response()
}

async fn get_requests(State(state): State<AppState>) -> Response {
    let snap = state.reqlog().snapshot();
    Json(serde_json::json!({
        "total": snap.total(),
        "token_requests": snap.token_requests(),
        "graph_requests_as_counted": snap.graph_requests_as_counted(),
        "entries": snap.entries,
        "operations": snap.operations,
        "batch_items": snap.batch_items,
    }))
    .into_response()
}

async fn get_outbox(State(state): State<AppState>) -> Response {
    Json(state.outbox().clone()).into_response()
}

async fn get_subscriptions(State(state): State<AppState>) -> Response {
    let admin = Admin::new(state);
    Json(serde_json::json!({
        "subscriptions": admin.subscriptions(),
        "stats": admin.notification_stats(),
    }))
    .into_response()
}

async fn get_tenant(State(state): State<AppState>) -> Response {
    Json(state.tenant().clone()).into_response()
}

pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/_sandbox/admin", post(post_admin))
        .route("/_sandbox/requests", get(get_requests))
        .route("/_sandbox/slots", get(get_slots))
        .route("/_sandbox/outbox", get(get_outbox))
        .route("/_sandbox/tenant", get(get_tenant))
        .route("/_sandbox/subscriptions", get(get_subscriptions))
        // Host, Origin and admin token, before anything else (see `admin_guard`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.config().admin_access.clone(),
            crate::admin_guard::middleware,
        ))
        // `inject_mime` carries whole messages: allow Exchange Online's default 35 MB maximum
        // message size (base64 and JSON escaping included), not axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
}
