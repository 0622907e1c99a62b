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
mod probing;
mod signin;

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
#[non_exhaustive]
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
}

#[cfg(test)]
mod tests {
    use super::probing::{arrival, run_id};
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
