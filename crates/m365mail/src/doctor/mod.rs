//! `m365mail doctor`: is the tenant ready for this configuration? For each source and outbound
//! it checks, through the APIs the configured app already has, what a helpdesk's operator
//! otherwise finds out from a customer:
//!
//! | check | what | how |
//! |---|---|---|
//! | `sign-in` | the app gets a token | a token request (delegated: a refresh of the cached sign-in) |
//! | `consent` | the token carries the permissions the connection needs | `roles` / `scp` in the token against [`checks::needed`] |
//! | `user-assignment` | the signed-in person may use the app | AADSTS50105 at the refresh |
//! | `ews-allowed` | EWS lets this app in (`EwsEnabled`, `EwsAllowedAppIDs`) | an EWS request answered 403 |
//! | `mailbox-not-group` | the pickup address is a mailbox | Graph 404 `ErrorInvalidUser` / EWS `ErrorNonExistentMailbox`; then Graph `GET /groups` (with `GroupMember.Read.All`) tells a group from a typo |
//! | `application-access` | no application access policy or RBAC for Applications scope keeps the app out of the mailbox (app-only) | 403 `ErrorAccessDenied` with the permissions in the token |
//! | `mailbox-access` | the signed-in person has rights on the mailbox (delegated) | the same 403 |
//! | `plus-addressing` | mail to `mailbox+probe-…@` arrives | a probe |
//! | `alias-receives` | each configured alias receives | a probe to each |
//! | `send-from-alias` | a message sent from an alias keeps it as `From` (`SendFromAliasEnabled`) | a probe from the alias to the mailbox |
//! | `probe-cleanup` | the probes were deleted again (only reported when that failed) | |
//!
//! Each [`Finding`] is [`Status::Pass`], [`Status::Fail`] or [`Status::Unknown`] (the fact could
//! not be determined with the app's access, and the detail says why), with a detail and, for a
//! failure, the fix: the Entra admin center path or the Exchange Online PowerShell command.
//!
//! Probes are sent from the pickup mailbox (or its alias) to itself over the source's own
//! connection. They carry [`handler::probe::PROBE_HEADER`] and the subject marker
//! [`handler::probe::PROBE_SUBJECT_MARKER`], so a mail handler running at the same time never
//! routes them (it only marks them read), and they are deleted afterwards from the inbox and
//! from Sent Items, with the non-delivery reports about them. The doctor waits for them at most
//! [`Options::probe_wait`].
//!
//! ```no_run
//! # async fn doc() -> Result<(), String> {
//! let config = m365mail::config::Config::load(std::path::Path::new("m365mail.toml"))
//!     .map_err(|e| e.to_string())?;
//! let report = m365mail::doctor::run_doctor(&config, &m365mail::doctor::Options::default()).await?;
//! print!("{}", report.text());
//! std::process::exit(if report.failed() { 1 } else { 0 });
//! # }
//! ```

pub mod checks;
mod probes;

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::config::{App, Config, Flow, Outbound, Service, Source};
use crate::connect::{self, MailboxClient, Providers};
use checks::{Access, Arrival, Resource, TokenFacts, Use, fix};
pub use probes::Probe;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ready.
    Pass,
    /// Not ready: the finding says why and how to fix it.
    Fail,
    /// Could not be determined with the app's access (the detail says why).
    Unknown,
}

impl Status {
    /// `pass`, `fail` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

/// What is checked (the module documentation has the table). The names are stable: scripts
/// read them from `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Check {
    /// The app gets a token.
    SignIn,
    /// The token carries the permissions the connection needs.
    Consent,
    /// The signed-in person may use the app (*assignment required*).
    UserAssignment,
    /// EWS lets the app in.
    EwsAllowed,
    /// The pickup address is a mailbox, not a group.
    MailboxNotGroup,
    /// No application access policy or RBAC for Applications scope keeps the app out.
    ApplicationAccess,
    /// The signed-in person has rights on the mailbox.
    MailboxAccess,
    /// Plus addressing delivers.
    PlusAddressing,
    /// An alias receives.
    AliasReceives,
    /// Sending from an alias keeps it.
    SendFromAlias,
    /// The probes were deleted.
    ProbeCleanup,
}

impl Check {
    /// The stable name (`consent`, `send-from-alias`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Check::SignIn => "sign-in",
            Check::Consent => "consent",
            Check::UserAssignment => "user-assignment",
            Check::EwsAllowed => "ews-allowed",
            Check::MailboxNotGroup => "mailbox-not-group",
            Check::ApplicationAccess => "application-access",
            Check::MailboxAccess => "mailbox-access",
            Check::PlusAddressing => "plus-addressing",
            Check::AliasReceives => "alias-receives",
            Check::SendFromAlias => "send-from-alias",
            Check::ProbeCleanup => "probe-cleanup",
        }
    }
}

/// One verdict about one source or outbound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// `source NAME` or `outbound NAME`.
    pub target: String,
    /// What was checked.
    pub check: Check,
    /// What exactly, when a check runs more than once: the resource (`graph`, `ews`, `smtp`),
    /// the alias or the probe's address.
    pub about: Option<String>,
    /// The verdict.
    pub status: Status,
    /// What was seen, for a person.
    pub detail: String,
    /// For a failure: the portal path or PowerShell command that fixes it.
    pub fix: Option<String>,
}

/// Everything the doctor found, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The findings, per source and outbound in configuration order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any check failed (the command then exits nonzero).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    /// The findings of `check`.
    pub fn of(&self, check: Check) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.check == check)
    }

    /// The report as JSON: `{"ok": bool, "findings": [{"target", "check", "about", "status",
    /// "detail", "fix"}]}` (`about` and `fix` may be `null`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": !self.failed(),
            "findings": self.findings,
        })
    }

    /// The report for a person: per target, one line per check, the fix below a failure.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut last = "";
        for f in &self.findings {
            if f.target != last {
                let _ = writeln!(out, "{}", f.target);
                last = &f.target;
            }
            let about = f
                .about
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<8} {}{about}: {}",
                f.status.as_str().to_ascii_uppercase(),
                f.check.name(),
                f.detail
            );
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "           fix: {fix}");
            }
        }
        let (fail, unknown) = (
            self.findings
                .iter()
                .filter(|f| f.status == Status::Fail)
                .count(),
            self.findings
                .iter()
                .filter(|f| f.status == Status::Unknown)
                .count(),
        );
        let _ = writeln!(
            out,
            "{} checks: {} failed, {} unknown",
            self.findings.len(),
            fail,
            unknown
        );
        out
    }
}

/// How the doctor runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Only this source (and the outbound it notifies through); `None`: every source and
    /// outbound.
    pub source: Option<String>,
    /// How long to wait for probes to arrive (default 30 s; Exchange Online usually delivers
    /// within seconds).
    pub probe_wait: Duration,
    /// Send probes at all (default `true`); without them plus addressing, aliases and sending
    /// from an alias are not checked.
    pub probes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: None,
            probe_wait: Duration::from_secs(30),
            probes: true,
        }
    }
}

impl Options {
    /// Only `source`.
    pub fn source(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }

    /// Wait at most `wait` for probes.
    pub fn probe_wait(mut self, wait: Duration) -> Self {
        self.probe_wait = wait;
        self
    }

    /// Send probes or not.
    pub fn probes(mut self, probes: bool) -> Self {
        self.probes = probes;
        self
    }
}

/// Checks the tenant's readiness for `config` (see the module documentation). An error only for
/// a `--source` the configuration does not have.
pub async fn run_doctor(config: &Config, options: &Options) -> Result<Report, String> {
    let sources: Vec<&Source> = config
        .sources
        .iter()
        .filter(|s| options.source.as_ref().is_none_or(|n| n == &s.name))
        .collect();
    if let Some(name) = &options.source
        && sources.is_empty()
    {
        return Err(format!("no source called {name:?} in the configuration"));
    }
    let mut outbounds: Vec<&Outbound> = Vec::new();
    match &options.source {
        None => outbounds.extend(config.outbounds.iter().map(|o| o.as_ref())),
        Some(_) => {
            for s in &sources {
                if let Some(o) = &s.notify_through
                    && !outbounds.iter().any(|x| x.name == o.name)
                {
                    outbounds.push(o);
                }
            }
        }
    }
    let mut doctor = Doctor {
        config,
        options,
        providers: Providers::default(),
        report: Report::default(),
    };
    for s in sources {
        doctor.source(s).await;
    }
    for o in outbounds {
        doctor.outbound(o).await;
    }
    Ok(doctor.report)
}

/// One source or outbound being checked.
struct Conn<'a> {
    /// `source NAME` / `outbound NAME`.
    target: &'a str,
    app: &'a App,
    mailbox: &'a str,
    /// The configuration key of the mailbox, for fixes.
    mailbox_key: String,
    resource: Resource,
    is_source: bool,
    /// For an address that is no mailbox: whether a group has it (`Err`: why that cannot be
    /// told).
    group: Option<Result<Option<String>, String>>,
}

struct Doctor<'a> {
    config: &'a Config,
    options: &'a Options,
    providers: Providers,
    report: Report,
}

/// A new finding.
fn finding(
    target: &str,
    check: Check,
    about: Option<&str>,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Finding {
    Finding {
        target: target.to_owned(),
        check,
        about: about.map(str::to_owned),
        status,
        detail: detail.into(),
        fix,
    }
}

fn resource_of(service: &Service) -> Resource {
    match service {
        Service::Graph(_) => Resource::Graph,
        Service::Ews(_) => Resource::Ews,
        Service::Smtp(_) => Resource::Smtp,
    }
}

impl Doctor<'_> {
    fn push(&mut self, f: Finding) {
        self.report.findings.push(f);
    }

    /// The admin consent URL of `app`, when the configuration allows one.
    fn consent_url(&self, app: &App) -> Option<String> {
        let scopes = self.config.consent_scopes(app);
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        msauth::admin_consent_url(
            &app.authority,
            &app.client_id,
            &scopes,
            app.redirect_uri.as_ref(),
            None,
        )
        .ok()
        .map(|u| u.to_string())
    }

    /// `sign-in`, `user-assignment` and `consent` for one connection; the token's facts when
    /// there is a token.
    async fn sign_in(
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

    fn sign_in_failed(
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
    fn access(&mut self, c: &Conn<'_>, facts: Option<&TokenFacts>, access: &Access) {
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

    async fn source(&mut self, s: &Source) {
        let target = format!("source {}", s.name);
        let resource = resource_of(&s.service);
        let facts = self
            .sign_in(&target, &s.app, &s.scope, resource, Use::Read)
            .await;
        let client = match connect::mailbox_client(&mut self.providers, s) {
            Ok(c) => c,
            Err(e) => {
                self.push(finding(
                    &target,
                    Check::MailboxNotGroup,
                    Some(&s.mailbox),
                    Status::Unknown,
                    format!("no connection: {e}"),
                    None,
                ));
                return;
            }
        };
        let access = match probes::reach(&client).await {
            Ok(()) => Access::Reached,
            Err(e) => checks::classify(&e),
        };
        let key = format!("sources.{}.mailbox", s.name);
        let group = match &access {
            Access::NotAMailbox(_) => {
                Some(probes::find_group(&client, &s.mailbox).await.map_err(|e| {
                    match e.kind() {
                        connector::ErrorKind::Unsupported => {
                            "EWS cannot list groups; Microsoft Graph with GroupMember.Read.All can"
                                .to_owned()
                        }
                        _ => format!(
                            "looking the address up among groups needs GroupMember.Read.All: {}",
                            e.message()
                        ),
                    }
                }))
            }
            _ => None,
        };
        let conn = Conn {
            target: &target,
            app: &s.app,
            mailbox: &s.mailbox,
            mailbox_key: key,
            resource,
            is_source: true,
            group,
        };
        self.access(&conn, facts.as_ref(), &access);
        if self.options.probes {
            let cannot = if access != Access::Reached {
                Some("the mailbox could not be reached".to_owned())
            } else {
                facts.as_ref().and_then(|f| {
                    let missing = f.missing(&checks::needed(resource, Use::Send, f.app_only));
                    (!missing.is_empty()).then(|| {
                        format!(
                            "the source's token lacks {} to send a probe",
                            missing.join(", ")
                        )
                    })
                })
            };
            self.probes(s, &target, &client, cannot).await;
        }
    }

    async fn outbound(&mut self, o: &Outbound) {
        let target = format!("outbound {}", o.name);
        let resource = resource_of(&o.service);
        let facts = self
            .sign_in(&target, &o.app, &o.scope, resource, Use::Send)
            .await;
        let client = match connect::outbound_client(&mut self.providers, o) {
            Ok(Some(c)) => c,
            // SMTP: the token and its permissions are all the doctor checks.
            Ok(None) => return,
            Err(e) => {
                self.push(finding(
                    &target,
                    Check::SignIn,
                    Some(resource.name()),
                    Status::Unknown,
                    format!("no connection: {e}"),
                    None,
                ));
                return;
            }
        };
        let result = match &client {
            // A message without recipients: Graph checks token, mailbox and From, then refuses
            // the message itself; nothing is sent.
            MailboxClient::Graph(c) => {
                match c.execute(&graph_mail::api::SendProbe::new(None)).await {
                    Err(e)
                        if e.response().and_then(|r| r.server_code.as_deref())
                            == Some("ErrorInvalidRecipients") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e),
                    Ok(()) => Ok(()),
                }
            }
            MailboxClient::Ews(_) => probes::reach(&client).await,
        };
        let access = match result {
            Ok(()) => Access::Reached,
            Err(e) => checks::classify(&e),
        };
        let key = format!("outbounds.{}.mailbox", o.name);
        let conn = Conn {
            target: &target,
            app: &o.app,
            mailbox: &o.mailbox,
            mailbox_key: key,
            resource,
            is_source: false,
            group: None,
        };
        self.access(&conn, facts.as_ref(), &access);
    }

    /// `plus-addressing`, `alias-receives` and `send-from-alias` by probes, then their
    /// deletion. `cannot`: why no probe can be sent (each check is then unknown).
    async fn probes(
        &mut self,
        s: &Source,
        target: &str,
        client: &MailboxClient,
        cannot: Option<String>,
    ) {
        let identity = s.router.mailbox();
        let primary = identity.primary().to_string();
        let aliases: Vec<String> = identity.aliases().iter().map(|a| a.to_string()).collect();
        let run = run_id();
        let mut list: Vec<(Check, String, Probe)> = Vec::new();
        let id = |n: usize| format!("probe-{run}{n}");
        let (local, domain) = primary.rsplit_once('@').unwrap_or((&primary, ""));
        list.push((
            Check::PlusAddressing,
            String::new(),
            Probe {
                id: id(0),
                what: "plus addressing".into(),
                from: s.mailbox.clone(),
                to: format!("{local}+{}@{domain}", id(0)),
            },
        ));
        for (i, alias) in aliases.iter().enumerate() {
            list.push((
                Check::AliasReceives,
                alias.clone(),
                Probe {
                    id: id(2 * i + 1),
                    what: format!("alias {alias}"),
                    from: s.mailbox.clone(),
                    to: alias.clone(),
                },
            ));
        }
        if let Some(alias) = aliases.first() {
            list.push((
                Check::SendFromAlias,
                alias.clone(),
                Probe {
                    id: id(2 * aliases.len() + 2),
                    what: format!("sent from {alias}"),
                    from: alias.clone(),
                    to: primary.clone(),
                },
            ));
        } else {
            self.push(finding(
                target,
                Check::SendFromAlias,
                None,
                Status::Pass,
                "no aliases configured: nothing is sent from an alias",
                None,
            ));
        }
        if let Some(why) = cannot {
            for (check, about, p) in &list {
                let about = if about.is_empty() { &p.to } else { about };
                self.push(finding(
                    target,
                    *check,
                    Some(about),
                    Status::Unknown,
                    format!("no probe was sent: {why}"),
                    None,
                ));
            }
            return;
        }

        // Send every probe, then wait for them together.
        let sender = client.outbound();
        let mut outcome: Vec<Option<Result<Arrival, String>>> = Vec::with_capacity(list.len());
        for (_, _, p) in &list {
            outcome.push(match sender.send(&p.message()).await {
                Ok(_) => None,
                Err(e) => Some(Err(format!("sending the probe failed: {e}"))),
            });
        }
        let deadline = tokio::time::Instant::now() + self.options.probe_wait;
        let mut search_error;
        loop {
            match probes::find(client, "inbox", &run).await {
                Ok(found) => {
                    for ((_, _, p), o) in list.iter().zip(outcome.iter_mut()) {
                        if o.is_none() {
                            *o = arrival(p, &found).map(Ok);
                        }
                    }
                    search_error = None;
                }
                Err(e) => search_error = Some(e.to_string()),
            }
            let now = tokio::time::Instant::now();
            if outcome.iter().all(Option::is_some) || now >= deadline {
                break;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_secs(1))).await;
        }
        let wait = self.options.probe_wait.as_secs();
        for ((check, about, p), o) in list.iter().zip(outcome) {
            let o = match (o, &search_error) {
                (Some(o), _) => o,
                (None, Some(e)) => Err(format!("the inbox could not be searched: {e}")),
                (None, None) => Ok(Arrival::Missing),
            };
            let f = self.judge(s, target, *check, about, p, o, wait);
            self.push(f);
        }
        self.clean_up(target, client, &run).await;
    }

    /// The finding about one probe.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        s: &Source,
        target: &str,
        check: Check,
        about: &str,
        p: &Probe,
        arrival: Result<Arrival, String>,
        wait: u64,
    ) -> Finding {
        let arrival = match arrival {
            Ok(a) => a,
            Err(e) => {
                let about = if about.is_empty() { &p.to } else { about };
                return finding(target, check, Some(about), Status::Unknown, e, None);
            }
        };
        let not_seen = match arrival {
            Arrival::Bounced => "came back undeliverable".to_owned(),
            _ => format!("did not arrive within {wait} s"),
        };
        match check {
            Check::PlusAddressing => {
                let uses = s.router.mailbox().plus_addressing();
                match arrival {
                    Arrival::Arrived { .. } => finding(
                        target,
                        check,
                        Some(&p.to),
                        Status::Pass,
                        "a probe to the plus address arrived",
                        None,
                    ),
                    _ if !uses => finding(
                        target,
                        check,
                        Some(&p.to),
                        Status::Pass,
                        format!(
                            "a probe to the plus address {not_seen}, but the configuration \
                             routes without sub-addresses (plus_addressing = false)"
                        ),
                        None,
                    ),
                    _ => finding(
                        target,
                        check,
                        Some(&p.to),
                        Status::Fail,
                        format!(
                            "a probe to the plus address {not_seen}: plus addressing is off \
                             (DisablePlusAddressInRecipients), so mail to sub-addresses such as \
                             support+printer@ never reaches the mailbox"
                        ),
                        Some(fix::plus_addressing()),
                    ),
                }
            }
            Check::AliasReceives => match arrival {
                Arrival::Arrived { .. } => finding(
                    target,
                    check,
                    Some(about),
                    Status::Pass,
                    format!("a probe to {about} arrived"),
                    None,
                ),
                _ => finding(
                    target,
                    check,
                    Some(about),
                    Status::Fail,
                    format!(
                        "a probe to {about} {not_seen}: it is not (yet) an address of {}; a \
                         new alias may take up to 24 hours to receive mail",
                        s.mailbox
                    ),
                    Some(fix::alias(about, &s.mailbox)),
                ),
            },
            _ => {
                // Send from alias.
                let Arrival::Arrived { from } = arrival else {
                    return finding(
                        target,
                        check,
                        Some(about),
                        Status::Unknown,
                        format!("the probe sent from {about} {not_seen}"),
                        None,
                    );
                };
                let from = from.unwrap_or_default();
                let relying: Vec<String> = self
                    .config
                    .outbounds
                    .iter()
                    .filter(|o| {
                        o.capabilities.send_from_alias_enabled
                            && (o.mailbox.eq_ignore_ascii_case(&s.mailbox)
                                || s.notify_through.as_ref().is_some_and(|n| n.name == o.name))
                    })
                    .map(|o| o.name.clone())
                    .collect();
                if from.eq_ignore_ascii_case(about) {
                    finding(
                        target,
                        check,
                        Some(about),
                        Status::Pass,
                        format!(
                            "a probe sent from {about} arrived from {about}: the tenant keeps \
                             aliases (SendFromAliasEnabled is on)"
                        ),
                        None,
                    )
                } else if relying.is_empty() {
                    finding(
                        target,
                        check,
                        Some(about),
                        Status::Pass,
                        format!(
                            "a probe sent from {about} arrived from {from}: SendFromAliasEnabled \
                             is off, and the configuration already answers from the primary \
                             address (send_from_alias_enabled = false)"
                        ),
                        None,
                    )
                } else {
                    finding(
                        target,
                        check,
                        Some(about),
                        Status::Fail,
                        format!(
                            "a probe sent from {about} arrived from {from}: SendFromAliasEnabled \
                             is off, so answers meant to come from an alias leave from the \
                             primary address, but {} says send_from_alias_enabled = true",
                            relying
                                .iter()
                                .map(|o| format!("outbound {o}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Some(fix::send_from_alias(&relying)),
                    )
                }
            }
        }
    }

    /// Deletes this run's probes (and the reports about them) from the inbox and Sent Items;
    /// reports only a failure.
    async fn clean_up(&mut self, target: &str, client: &MailboxClient, run: &str) {
        let mut problems = Vec::new();
        for folder in ["inbox", "sentitems"] {
            match probes::find(client, folder, run).await {
                Ok(found) => {
                    let ids = found.into_iter().map(|f| f.id).collect();
                    if let Err(e) = probes::delete(client, ids).await {
                        problems.push(format!("{folder}: {e}"));
                    }
                }
                Err(e) => problems.push(format!("{folder}: {e}")),
            }
        }
        if !problems.is_empty() {
            self.push(finding(
                target,
                Check::ProbeCleanup,
                None,
                Status::Fail,
                format!(
                    "the probes (subject containing probe-{run}) could not all be deleted: {}",
                    problems.join("; ")
                ),
                Some("delete them by hand; a mail handler leaves them alone".into()),
            ));
        }
    }
}

/// What became of probe `p`, judging by the messages `found` (`None`: nothing yet).
fn arrival(p: &Probe, found: &[probes::Found]) -> Option<Arrival> {
    let header = handler::probe::PROBE_HEADER;
    let copy = found.iter().find(|f| {
        probes::header(&f.mime, header).is_some_and(|v| v.trim().eq_ignore_ascii_case(&p.id))
    });
    if let Some(copy) = copy {
        return Some(Arrival::Arrived {
            from: probes::header(&copy.mime, "from").map(|f| probes::address_of(&f)),
        });
    }
    // A non-delivery report quotes the probe's subject (and so its id) without being it.
    let bounced = found.iter().any(|f| {
        probes::header(&f.mime, header).is_none() && probes::contains(&f.mime, p.id.as_bytes())
    });
    bounced.then_some(Arrival::Bounced)
}

/// Ten random hex digits naming one doctor run (not a secret: they only tell this run's
/// probes from an earlier one's).
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(mime: &str) -> probes::Found {
        probes::Found {
            id: probes::FoundId::Graph("1".into()),
            mime: mime.as_bytes().to_vec(),
        }
    }

    fn probe() -> Probe {
        Probe {
            id: "probe-0123456789a".into(),
            what: "plus addressing".into(),
            from: "helpdesk@contoso.example".into(),
            to: "helpdesk+probe-0123456789a@contoso.example".into(),
        }
    }

    #[test]
    fn a_probe_is_found_by_its_header_and_a_bounce_by_its_id() {
        let p = probe();
        assert_eq!(arrival(&p, &[]), None);
        let copy = found(
            "From: \"Billing\" <billing@contoso.example>\r\nX-M365Mail-Probe: probe-0123456789a\r\n\r\nx",
        );
        assert_eq!(
            arrival(&p, &[copy]),
            Some(Arrival::Arrived {
                from: Some("billing@contoso.example".into())
            })
        );
        let ndr = found(
            "From: postmaster@contoso.example\r\nSubject: Undeliverable: [m365mail doctor probe] plus addressing probe-0123456789a\r\n\r\nx",
        );
        assert_eq!(arrival(&p, &[ndr]), Some(Arrival::Bounced));
        let other = found("From: a@b\r\nX-M365Mail-Probe: probe-0123456789b\r\n\r\nx");
        assert_eq!(arrival(&p, &[other]), None);
    }

    #[test]
    fn run_ids_make_valid_probe_ids() {
        let run = run_id();
        assert_eq!(run.len(), 10);
        assert!(handler::probe::is_probe_id(&format!("probe-{run}0")));
        assert_ne!(run, run_id());
    }

    #[test]
    fn the_report_fails_on_any_failure_and_says_so_in_json() {
        let mut r = Report::default();
        r.findings.push(finding(
            "source s",
            Check::Consent,
            Some("graph"),
            Status::Pass,
            "ok",
            None,
        ));
        assert!(!r.failed());
        r.findings.push(finding(
            "source s",
            Check::PlusAddressing,
            None,
            Status::Fail,
            "bounced",
            Some(fix::plus_addressing()),
        ));
        assert!(r.failed());
        let j = r.to_json();
        assert_eq!(j["ok"], false);
        assert_eq!(j["findings"][1]["check"], "plus-addressing");
        assert_eq!(j["findings"][1]["status"], "fail");
        assert_eq!(j["findings"][0]["about"], "graph");
        assert!(
            j["findings"][1]["fix"]
                .as_str()
                .unwrap()
                .contains("DisablePlusAddress")
        );
        let text = r.text();
        assert!(text.contains("FAIL     plus-addressing: bounced"), "{text}");
        assert!(text.contains("2 checks: 1 failed, 0 unknown"), "{text}");
    }
}
