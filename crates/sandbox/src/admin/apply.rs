//! [`Admin::apply`]: one [`AdminCommand`] carried out through the typed handle.

use crate::identity::grants::DeviceStatus;
use crate::tenant::{Mailbox, MailboxRight, ServicePrincipal};

use super::command::{AdminCommand, AdminOutcome};
use super::{Admin, AdminError, trustee_name, trustee_names};

impl Admin {
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
                group.fill_defaults();
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
}
