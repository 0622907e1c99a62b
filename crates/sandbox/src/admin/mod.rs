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

mod apply;
mod command;
pub(crate) mod web;

use command::default_sender;
pub use command::{AdminCommand, AdminOutcome};

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

/// Typed admin handle for a running sandbox. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Admin {
    state: AppState,
}

impl Admin {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
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
        let tenant_id = st.tenant().info.id.clone();
        st.notifier().lifecycle(&tenant_id, &sub, event);
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
        let group = Group::new(mail, members.iter().copied());
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
            policy: AppAccessPolicy::new(app_id, scope.iter().copied(), mode),
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

    /// Makes each admitted EWS request hold its slot longer the more it carries: `millis` per
    /// KiB of its request and answer together, on top of the [`Latency`](crate::Latency) drawn
    /// for it (`None`: no such time, the default).
    ///
    /// The drawn latency is the same for a one-line request and for a GetItem of 100 MIME
    /// bodies; an EWS request carries up to hundreds of items where a Graph request carries
    /// one message or one page of a listing, so for EWS that alone would make a large request
    /// free. Exchange Online budgets EWS by the server time a caller's requests use, not by
    /// their count; Microsoft publishes no figure for that time, so the value is an assumption
    /// to be set from what one measures against a real tenant.
    pub fn set_ews_time_per_kib(&self, millis: Option<f64>) {
        self.state.faults().set_ews_time_per_kib(millis);
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
pub(super) fn trustee_name(
    t: &Tenant,
    user: &str,
    right: MailboxRight,
) -> Result<String, AdminError> {
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
pub(super) fn trustee_names(t: &Tenant, user: &str) -> Vec<String> {
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
