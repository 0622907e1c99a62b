//! The doctor's sign-in checks: `sign-in`, `user-assignment` and `consent` from the token
//! request and the token, and `ews-allowed`, `mailbox-not-group`, `application-access` and
//! `mailbox-access` from the first request the token is used for.

use super::*;

impl Doctor<'_> {
    /// `sign-in`, `user-assignment` and `consent` for one connection; the token's facts when
    /// there is a token.
    pub(super) async fn sign_in(
        &mut self,
        target: &str,
        app: &App,
        scope: &str,
        resource: Resource,
        usage: Use,
    ) -> Option<TokenFacts> {
        let about = Some(resource.name());
        let app_only = app.flow == Flow::ClientCredentials;
        let provider = match self.providers.token_provider(app, scope) {
            Ok(p) => p,
            Err(e) => {
                self.push(finding(
                    target,
                    Check::SignIn,
                    about,
                    Status::Fail,
                    format!("no token provider: {e}"),
                    None,
                ));
                return None;
            }
        };
        // A delegated sign-in is refreshed now, so that Entra checks assignment and consent
        // today rather than when the cached token was issued.
        let token = if app_only {
            provider.access_token().await
        } else {
            provider.force_refresh().await
        };
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                self.sign_in_failed(target, app, resource, usage, &e.diagnosis());
                return None;
            }
        };
        let facts = TokenFacts::read(token.secret());
        let who = facts
            .as_ref()
            .and_then(|f| f.user.clone())
            .map(|u| format!("for {u}"))
            .unwrap_or_else(|| {
                if app_only {
                    "app-only".into()
                } else {
                    "delegated".into()
                }
            });
        self.push(finding(
            target,
            Check::SignIn,
            about,
            Status::Pass,
            format!("a token for {} ({who})", resource.api()),
            None,
        ));
        let assignment = if app_only {
            "app-only sign-in: assignment required applies to people signing in, not to the app"
                .to_owned()
        } else {
            format!("the sign-in was refreshed {who}: the person may use the app")
        };
        self.push(finding(
            target,
            Check::UserAssignment,
            about,
            Status::Pass,
            assignment,
            None,
        ));
        match &facts {
            None => self.push(finding(
                target,
                Check::Consent,
                about,
                Status::Unknown,
                "the token is not a readable JWT, so its permissions cannot be read",
                None,
            )),
            Some(f) => {
                let missing = f.missing(&checks::needed(resource, usage, f.app_only));
                if missing.is_empty() {
                    self.push(finding(
                        target,
                        Check::Consent,
                        about,
                        Status::Pass,
                        format!("the token carries {}", f.permissions.join(", ")),
                        None,
                    ));
                } else {
                    let url = self.consent_url(app);
                    let kind = if f.app_only { "roles" } else { "scp" };
                    let have = if f.permissions.is_empty() {
                        "none".to_owned()
                    } else {
                        f.permissions.join(", ")
                    };
                    self.push(finding(
                        target,
                        Check::Consent,
                        about,
                        Status::Fail,
                        format!(
                            "the token lacks {} (its {kind}: {have}): nobody has consented to \
                             them for this tenant",
                            missing.join(", ")
                        ),
                        Some(fix::consent(
                            &app.client_id,
                            resource.api(),
                            &missing,
                            f.app_only,
                            url.as_deref(),
                        )),
                    ));
                }
            }
        }
        facts
    }

    pub(super) fn sign_in_failed(
        &mut self,
        target: &str,
        app: &App,
        resource: Resource,
        usage: Use,
        d: &msauth::Diagnosis,
    ) {
        use msauth::Problem;
        let about = Some(resource.name());
        let said = d.explain();
        let before = "the sign-in was refused before this could be checked";
        match d.problem() {
            Problem::UserNotAssigned => {
                self.push(finding(
                    target,
                    Check::SignIn,
                    about,
                    Status::Fail,
                    "refused: the person is not assigned to the app (AADSTS50105)",
                    None,
                ));
                self.push(finding(
                    target,
                    Check::UserAssignment,
                    about,
                    Status::Fail,
                    format!(
                        "the app requires assignment and the signed-in person is not assigned: \
                         {said}"
                    ),
                    Some(fix::assignment(&app.client_id, None)),
                ));
                self.push(finding(
                    target,
                    Check::Consent,
                    about,
                    Status::Unknown,
                    before,
                    None,
                ));
            }
            Problem::ConsentRequired
            | Problem::AdminConsentRequired
            | Problem::AdminApprovalPending
            | Problem::ConsentDeclined => {
                let needed = checks::needed(resource, usage, false);
                let missing: Vec<&str> = needed.iter().filter_map(|g| g.first().copied()).collect();
                let url = d
                    .consent_url()
                    .map(|u| u.to_string())
                    .or_else(|| self.consent_url(app));
                self.push(finding(
                    target,
                    Check::SignIn,
                    about,
                    Status::Fail,
                    "refused: consent is missing",
                    None,
                ));
                self.push(finding(
                    target,
                    Check::UserAssignment,
                    about,
                    Status::Unknown,
                    before,
                    None,
                ));
                self.push(finding(
                    target,
                    Check::Consent,
                    about,
                    Status::Fail,
                    said,
                    Some(fix::consent(
                        &app.client_id,
                        resource.api(),
                        &missing,
                        false,
                        url.as_deref(),
                    )),
                ));
            }
            Problem::SignInRequired | Problem::SignInExpired | Problem::InteractionRequired => {
                self.push(finding(
                    target,
                    Check::SignIn,
                    about,
                    Status::Fail,
                    format!("no usable sign-in of a person is cached: {said}"),
                    Some(fix::login(&app.name, resource.name())),
                ));
                for check in [Check::UserAssignment, Check::Consent] {
                    self.push(finding(
                        target,
                        check,
                        about,
                        Status::Unknown,
                        "nobody is signed in to check it with",
                        None,
                    ));
                }
            }
            _ => {
                self.push(finding(
                    target,
                    Check::SignIn,
                    about,
                    Status::Fail,
                    said,
                    Some(d.remediation().to_owned()).filter(|r| !r.is_empty()),
                ));
                for check in [Check::UserAssignment, Check::Consent] {
                    self.push(finding(target, check, about, Status::Unknown, before, None));
                }
            }
        }
    }

    /// `ews-allowed`, `mailbox-not-group` and `application-access` / `mailbox-access` from how
    /// a request to the mailbox went.
    pub(super) fn access(&mut self, c: &Conn<'_>, facts: Option<&TokenFacts>, access: &Access) {
        let Conn {
            target,
            app,
            mailbox,
            resource,
            is_source,
            ..
        } = *c;
        let mailbox_key = c.mailbox_key.as_str();
        let app_only = app.flow == Flow::ClientCredentials;
        let why = |a: &Access| match a {
            Access::Reached => String::new(),
            Access::EwsBlocked => "EWS refused the app before the mailbox was looked at".into(),
            Access::NotAMailbox(w)
            | Access::Denied(w)
            | Access::TokenRefused(w)
            | Access::Other(w) => format!("the mailbox could not be reached: {w}"),
        };
        if resource == Resource::Ews {
            let (status, detail, fix) = match access {
                Access::EwsBlocked => (
                    Status::Fail,
                    format!(
                        "Exchange answered 403 to a valid token: EWS is disabled for app {} \
                         (EwsEnabled / EwsAllowedAppIDs, or EWSEnabled of the mailbox)",
                        app.client_id
                    ),
                    Some(fix::ews(&app.client_id)),
                ),
                Access::Reached | Access::NotAMailbox(_) | Access::Denied(_) => {
                    (Status::Pass, "EWS answered the app".to_owned(), None)
                }
                other => (Status::Unknown, why(other), None),
            };
            self.push(finding(
                target,
                Check::EwsAllowed,
                Some(mailbox),
                status,
                detail,
                fix,
            ));
        }
        if is_source {
            let (status, detail, fix) = match access {
                Access::Reached => (
                    Status::Pass,
                    format!("{mailbox} is a mailbox: its inbox opened"),
                    None,
                ),
                Access::NotAMailbox(w) => {
                    let which = match &c.group {
                        Some(Ok(Some(name))) => format!(
                            "it is a group ({name:?}), whose mail goes to its members and which no \
                             app can read as a mailbox"
                        ),
                        Some(Ok(None)) => "no group has that address either: a contact, a \
                                           mistyped address, or a mailbox not yet created"
                            .to_owned(),
                        Some(Err(why)) => format!(
                            "a group, a contact or a mistyped address; which cannot be told \
                             ({why})"
                        ),
                        None => "a group, a contact or a mistyped address".to_owned(),
                    };
                    (
                        Status::Fail,
                        format!("{mailbox} is not a mailbox ({w}): {which}"),
                        Some(fix::not_a_mailbox(mailbox, mailbox_key)),
                    )
                }
                other => (Status::Unknown, why(other), None),
            };
            self.push(finding(
                target,
                Check::MailboxNotGroup,
                Some(mailbox),
                status,
                detail,
                fix,
            ));
        }
        let lacks_permissions = facts.is_none_or(|f| {
            !f.missing(&checks::needed(
                resource,
                if is_source { Use::Read } else { Use::Send },
                f.app_only,
            ))
            .is_empty()
        });
        let check = if app_only {
            Check::ApplicationAccess
        } else {
            Check::MailboxAccess
        };
        let user = facts.and_then(|f| f.user.as_deref());
        let (status, detail, fix) = match access {
            Access::Reached => (Status::Pass, format!("the app reaches {mailbox}"), None),
            Access::Denied(w) if lacks_permissions => (
                Status::Unknown,
                format!("refused ({w}), but the token lacks permissions first (see consent)"),
                None,
            ),
            Access::Denied(w) if app_only => (
                Status::Fail,
                format!(
                    "refused with the permissions in the token ({w}): an application access \
                     policy or an RBAC for Applications scope keeps app {} out of {mailbox}",
                    app.client_id
                ),
                Some(fix::application_access(&app.client_id, mailbox)),
            ),
            Access::Denied(w) => (
                Status::Fail,
                format!(
                    "refused ({w}): {} has no rights on {mailbox}",
                    user.unwrap_or("the signed-in person")
                ),
                Some(fix::mailbox_rights(mailbox, user)),
            ),
            other => (Status::Unknown, why(other), None),
        };
        self.push(finding(target, check, Some(mailbox), status, detail, fix));
    }
}
