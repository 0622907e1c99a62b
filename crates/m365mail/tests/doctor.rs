//! `m365mail doctor` against the in-process sandbox (issue #19, item 2): for each
//! misconfiguration the doctor checks, the tenant is switched into it at run time and the doctor
//! names it with its fix (and exits nonzero), then switched back and the check passes. Also: a
//! ready tenant passes everything, and the probes are gone afterwards.

use std::path::{Path, PathBuf};

use sandbox::tenant::PolicyMode;
use sandbox::{Sandbox, Seed};
use serde_json::Value;
use test_support::DEMO_APP;
use test_support::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");
const HELPDESK: &str = "helpdesk@contoso.example";
const MEGAN: &str = "megan.bowen@contoso.example";

async fn start() -> Sandbox {
    Sandbox::builder()
        .seed(Seed::demo())
        .start()
        .await
        .expect("sandbox")
}

/// A configuration file in a fresh temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    path: PathBuf,
}

fn write(text: String) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m365mail.toml");
    std::fs::write(&path, text).unwrap();
    Setup { dir, path }
}

/// The helpdesk read over `kind` (`graph`, `ews`) by the demo app (app-only), its aliases
/// `aliases`, answering through a Graph outbound `notify` that counts on SendFromAliasEnabled.
fn helpdesk(sb: &Sandbox, kind: &str, mailbox: &str, aliases: &[&str]) -> String {
    let url = if kind == "ews" {
        sb.ews_url()
    } else {
        sb.graph_url()
    };
    let graph = sb.graph_url();
    let out = std::env::temp_dir().join("m365mail-doctor-unused-out");
    Config::demo(sb)
        .source(
            "helpdesk",
            kind,
            "demo",
            mailbox,
            &url,
            "notify_through = \"notify\"",
        )
        .mailbox(mailbox, aliases)
        .default_rule("DESK")
        .outbound(
            "notify",
            "graph",
            "demo",
            mailbox,
            &format!("url = \"{graph}\"\nsend_from_alias_enabled = true"),
        )
        .handler(&out, "")
        .text()
}

/// What one doctor run said.
struct Run {
    code: Option<i32>,
    json: Value,
    stdout: String,
}

impl Run {
    /// The finding of `check` for `target` (and `about`, when given).
    fn finding(&self, target: &str, check: &str, about: Option<&str>) -> &Value {
        self.json["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| {
                f["target"] == target
                    && f["check"] == check
                    && about.is_none_or(|a| f["about"].as_str() == Some(a))
            })
            .unwrap_or_else(|| panic!("no {check} ({about:?}) for {target}: {}", self.stdout))
    }

    /// What the finding of `check` for `target` (and `about`) says in its detail.
    fn detail(&self, target: &str, check: &str, about: Option<&str>) -> &str {
        self.finding(target, check, about)["detail"]
            .as_str()
            .expect("a detail")
    }

    /// Asserts that the detail of `check` for `target` (and `about`) says `words`.
    fn assert_says(&self, target: &str, check: &str, about: Option<&str>, words: &str) {
        let detail = self.detail(target, check, about);
        assert!(detail.contains(words), "{}", self.stdout);
    }

    fn status(&self, target: &str, check: &str, about: Option<&str>) -> &str {
        self.finding(target, check, about)["status"]
            .as_str()
            .unwrap_or("")
    }

    /// Asserts `check` failed with a fix containing every one of `words`, and the run exited 1.
    fn assert_fails(&self, target: &str, check: &str, about: Option<&str>, words: &[&str]) {
        let f = self.finding(target, check, about);
        assert_eq!(f["status"], "fail", "{f}");
        let fix = f["fix"].as_str().unwrap_or_default();
        for w in words {
            assert!(fix.contains(w), "the fix for {check} lacks {w:?}: {f}");
        }
        assert_eq!(self.code, Some(1), "{}", self.stdout);
    }

    fn assert_passes(&self, target: &str, check: &str, about: Option<&str>) {
        let f = self.finding(target, check, about);
        assert_eq!(f["status"], "pass", "{f}");
    }

    /// Every finding passed and the run exited 0.
    fn assert_all_pass(&self) {
        let bad: Vec<&Value> = self.json["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["status"] != "pass")
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert_eq!(self.code, Some(0), "{}", self.stdout);
        assert_eq!(self.json["ok"], true);
    }
}

async fn doctor(config: &Path, extra: &[&str]) -> Run {
    let output = tokio::process::Command::new(BIN)
        .arg("doctor")
        .arg("--config")
        .arg(config)
        .args(["--json", "--probe-wait-secs", "2"])
        .args(extra)
        .output()
        .await
        .expect("m365mail doctor ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Run {
        code: output.status.code(),
        json,
        stdout,
    }
}

/// Probe messages left in `mailbox`'s inbox and Sent Items (the probes themselves and the
/// non-delivery reports about them).
fn probes_left(sb: &Sandbox, mailbox: &str) -> Vec<String> {
    let mut left = Vec::new();
    for folder in ["inbox", "sentitems"] {
        let page = sb
            .admin()
            .store()
            .list(mailbox, Some(folder), &sandbox::store::ListQuery::default())
            .unwrap();
        for m in page.items {
            let text = String::from_utf8_lossy(&m.mime);
            if text.contains("m365mail doctor probe") {
                left.push(format!(
                    "{folder}: {}",
                    text.lines()
                        .find(|l| l.starts_with("Subject"))
                        .unwrap_or("")
                ));
            }
        }
    }
    left
}

const SOURCE: &str = "source helpdesk";
const OUTBOUND: &str = "outbound notify";
const ALIASES: &[&str] = &["billing@contoso.example", "support@contoso.example"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_tenant_passes_every_check_and_no_probe_is_left() {
    let sb = start().await;
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let s = write(helpdesk(&sb, "graph", HELPDESK, ALIASES));
    let run = doctor(&s.path, &[]).await;
    run.assert_all_pass();
    for check in [
        "sign-in",
        "consent",
        "user-assignment",
        "mailbox-not-group",
        "application-access",
        "plus-addressing",
        "send-from-alias",
    ] {
        run.assert_passes(SOURCE, check, None);
    }
    for alias in ALIASES {
        run.assert_passes(SOURCE, "alias-receives", Some(alias));
    }
    for check in ["sign-in", "consent", "application-access"] {
        run.assert_passes(OUTBOUND, check, None);
    }
    assert_eq!(probes_left(&sb, HELPDESK), Vec::<String>::new());
    drop(s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_admin_consent_is_named_with_the_portal_path() {
    let sb = start().await;
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let s = write(helpdesk(&sb, "graph", HELPDESK, ALIASES));
    sb.admin().revoke_admin_consent(DEMO_APP).unwrap();
    let run = doctor(&s.path, &["--no-probes"]).await;
    run.assert_fails(
        SOURCE,
        "consent",
        Some("graph"),
        &[
            "Enterprise applications > 00000000-0000-0000-0000-00000000d3e0 > Permissions > Grant admin consent",
            "Mail.ReadWrite",
        ],
    );
    run.assert_fails(OUTBOUND, "consent", Some("graph"), &["Mail.Send"]);
    // Refused with no permissions at all: the access checks cannot blame a policy.
    assert_eq!(run.status(SOURCE, "application-access", None), "unknown");

    sb.admin()
        .grant_admin_consent(DEMO_APP, &[], &["Mail.ReadWrite", "Mail.Send"])
        .unwrap();
    let run = doctor(&s.path, &["--no-probes"]).await;
    run.assert_passes(SOURCE, "consent", Some("graph"));
    run.assert_passes(OUTBOUND, "consent", Some("graph"));
    run.assert_all_pass();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_not_assigned_to_the_app_is_named_with_the_fix() {
    let sb = start().await;
    sb.admin()
        .update_identity(|i| i.device_code_interval_secs = 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tokens.json");
    let text = Config::person(&sb, "me", "device-code", &cache)
        .source("mine", "graph", "me", MEGAN, &sb.graph_url(), "")
        .mailbox(MEGAN, &[])
        .default_rule("DESK")
        .handler(&dir.path().join("out"), "")
        .text();
    let path = dir.path().join("m365mail.toml");
    std::fs::write(&path, text).unwrap();

    // Megan signs in once (what `m365mail login` does), approving the device code at once.
    let cfg = m365mail::config::Config::load(&path).unwrap();
    let app = cfg.app("me").unwrap();
    let provider = m365mail::connect::provider(app, app.graph_scope()).unwrap();
    let admin = sb.admin();
    provider
        .sign_in_with_device_code(move |flow| {
            admin.approve_device_code(flow.user_code(), MEGAN).unwrap();
        })
        .await
        .expect("signed in");
    let target = "source mine";
    let run = doctor(&path, &[]).await;
    run.assert_all_pass();

    sb.admin().set_assignment_required(DEMO_APP, true).unwrap();
    let run = doctor(&path, &["--no-probes"]).await;
    run.assert_fails(
        target,
        "user-assignment",
        Some("graph"),
        &[
            "Enterprise applications > 00000000-0000-0000-0000-00000000d3e0 > Users and groups",
            "Assignment required? to No",
        ],
    );
    run.assert_says(target, "user-assignment", None, "AADSTS50105");

    sb.admin().assign_user(DEMO_APP, MEGAN).unwrap();
    let run = doctor(&path, &["--no-probes"]).await;
    run.assert_passes(target, "user-assignment", Some("graph"));
    run.assert_all_pass();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_blocked_for_the_app_is_named_with_the_powershell() {
    let sb = start().await;
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let s = write(helpdesk(&sb, "ews", HELPDESK, ALIASES));
    sb.admin().update_org(|o| {
        o.ews_enabled = Some(true);
        o.ews_allowed_app_ids = Some(vec!["11111111-1111-1111-1111-111111111111".into()]);
    });
    let run = doctor(&s.path, &[]).await;
    run.assert_fails(
        SOURCE,
        "ews-allowed",
        None,
        &[
            "Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs",
            "00000000-0000-0000-0000-00000000d3e0",
        ],
    );
    assert_eq!(run.status(SOURCE, "plus-addressing", None), "unknown");

    sb.admin().update_org(|o| {
        o.ews_allowed_app_ids = Some(vec![DEMO_APP.into()]);
    });
    // Allowed again: every check passes over EWS, probes included, and none is left.
    let run = doctor(&s.path, &[]).await;
    run.assert_passes(SOURCE, "ews-allowed", None);
    run.assert_all_pass();
    assert_eq!(probes_left(&sb, HELPDESK), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_where_the_pickup_mailbox_should_be_is_named() {
    let sb = start().await;
    let desk = "desk@contoso.example";
    sb.admin()
        .add_group(desk, &["alex.wilber@contoso.example"])
        .unwrap();
    let s = write(helpdesk(&sb, "graph", desk, &[]));
    let run = doctor(&s.path, &[]).await;
    run.assert_fails(
        SOURCE,
        "mailbox-not-group",
        Some(desk),
        &[
            "Get-Recipient -Identity desk@contoso.example",
            "sources.helpdesk.mailbox",
        ],
    );
    let detail = |run: &Run| {
        run.detail(SOURCE, "mailbox-not-group", Some(desk))
            .to_owned()
    };
    // The demo app may not read groups: a group, a contact or a typo, it cannot tell which.
    let said = detail(&run);
    assert!(
        said.contains("cannot be told") && said.contains("GroupMember.Read.All"),
        "{said}"
    );
    // The same over EWS, which has no way to look groups up at all.
    let ews = write(helpdesk(&sb, "ews", desk, &[]));
    let over_ews = doctor(&ews.path, &["--no-probes"]).await;
    over_ews.assert_fails(SOURCE, "mailbox-not-group", Some(desk), &["Get-Recipient"]);
    assert!(
        detail(&over_ews).contains("EWS cannot list groups"),
        "{}",
        over_ews.stdout
    );
    // With a directory permission, Graph says what it is.
    sb.admin()
        .grant_admin_consent(DEMO_APP, &[], &["GroupMember.Read.All"])
        .unwrap();
    let run = doctor(&s.path, &["--no-probes"]).await;
    run.assert_fails(SOURCE, "mailbox-not-group", Some(desk), &["Get-Recipient"]);
    assert!(detail(&run).contains("it is a group"), "{}", run.stdout);

    sb.admin().remove_group(desk).unwrap();
    sb.admin().add_user(desk).unwrap();
    let run = doctor(&s.path, &[]).await;
    run.assert_passes(SOURCE, "mailbox-not-group", Some(desk));
    run.assert_all_pass();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_addressing_off_is_named_and_the_bounce_is_cleaned_up() {
    let sb = start().await;
    sb.admin().update_org(|o| {
        o.send_from_alias_enabled = true;
        o.disable_plus_address_in_recipients = true;
    });
    let s = write(helpdesk(&sb, "graph", HELPDESK, ALIASES));
    let run = doctor(&s.path, &[]).await;
    run.assert_fails(
        SOURCE,
        "plus-addressing",
        None,
        &["Set-OrganizationConfig -DisablePlusAddressInRecipients $false"],
    );
    let detail = run.finding(SOURCE, "plus-addressing", None)["detail"].clone();
    assert!(
        detail.as_str().unwrap().contains("undeliverable"),
        "{detail}"
    );
    assert_eq!(probes_left(&sb, HELPDESK), Vec::<String>::new());

    // The same, as a person reads it.
    let text = std::process::Command::new(BIN)
        .args(["doctor", "--probe-wait-secs", "1", "--config"])
        .arg(&s.path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL     plus-addressing"), "{out}");
    assert!(out.contains("fix: Exchange Online PowerShell: Set-OrganizationConfig -DisablePlusAddressInRecipients $false"), "{out}");

    sb.admin()
        .update_org(|o| o.disable_plus_address_in_recipients = false);
    let run = doctor(&s.path, &[]).await;
    run.assert_passes(SOURCE, "plus-addressing", None);
    run.assert_all_pass();
    assert_eq!(probes_left(&sb, HELPDESK), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_that_does_not_receive_yet_is_named_with_the_24_hours() {
    let sb = start().await;
    let fresh = "newproject@contoso.example";
    sb.admin().update_org(|o| {
        o.send_from_alias_enabled = true;
        o.alias_propagation_delay_secs = 3600;
    });
    sb.admin().add_alias(HELPDESK, fresh).unwrap();
    let s = write(helpdesk(
        &sb,
        "graph",
        HELPDESK,
        &["billing@contoso.example", fresh],
    ));
    let run = doctor(&s.path, &[]).await;
    run.assert_fails(
        SOURCE,
        "alias-receives",
        Some(fresh),
        &[
            "Set-Mailbox -Identity helpdesk@contoso.example -EmailAddresses",
            "24 hours",
        ],
    );
    run.assert_says(SOURCE, "alias-receives", Some(fresh), "up to 24 hours");
    run.assert_passes(SOURCE, "alias-receives", Some("billing@contoso.example"));
    assert_eq!(probes_left(&sb, HELPDESK), Vec::<String>::new());

    // An hour later the alias receives.
    sb.admin().advance_clock(3600);
    let run = doctor(&s.path, &[]).await;
    run.assert_passes(SOURCE, "alias-receives", Some(fresh));
    run.assert_all_pass();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_from_alias_off_while_the_configuration_counts_on_it_is_named() {
    let sb = start().await;
    // The demo tenant leaves SendFromAliasEnabled off; the outbound says it is on.
    let s = write(helpdesk(&sb, "graph", HELPDESK, ALIASES));
    let run = doctor(&s.path, &[]).await;
    run.assert_fails(
        SOURCE,
        "send-from-alias",
        Some("billing@contoso.example"),
        &[
            "Set-OrganizationConfig -SendFromAliasEnabled $true",
            "outbounds.notify.send_from_alias_enabled = false",
        ],
    );
    run.assert_says(
        SOURCE,
        "send-from-alias",
        None,
        "arrived from helpdesk@contoso.example",
    );
    assert_eq!(probes_left(&sb, HELPDESK), Vec::<String>::new());

    // With the configuration saying so, the rewriting tenant is what it expects.
    let honest = write(helpdesk(&sb, "graph", HELPDESK, ALIASES).replace(
        "send_from_alias_enabled = true",
        "send_from_alias_enabled = false",
    ));
    doctor(&honest.path, &[]).await.assert_all_pass();

    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let run = doctor(&s.path, &[]).await;
    run.assert_passes(SOURCE, "send-from-alias", Some("billing@contoso.example"));
    run.assert_all_pass();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_access_policy_keeping_the_app_out_is_named() {
    let sb = start().await;
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let s = write(helpdesk(&sb, "graph", HELPDESK, ALIASES));
    sb.admin()
        .add_app_access_policy(
            DEMO_APP,
            &["alex.wilber@contoso.example"],
            PolicyMode::RestrictAccess,
        )
        .unwrap();
    let run = doctor(&s.path, &[]).await;
    for target in [SOURCE, OUTBOUND] {
        run.assert_fails(
            target,
            "application-access",
            Some(HELPDESK),
            &[
                "Test-ApplicationAccessPolicy -Identity helpdesk@contoso.example -AppId",
                "New-ApplicationAccessPolicy",
            ],
        );
    }
    assert_eq!(run.status(SOURCE, "plus-addressing", None), "unknown");
    // Only the source asked for: the outbound it notifies through comes along.
    let one = doctor(&s.path, &["--source", "helpdesk", "--no-probes"]).await;
    one.assert_fails(
        OUTBOUND,
        "application-access",
        None,
        &["Test-ApplicationAccessPolicy"],
    );

    sb.admin().remove_app_access_policies(DEMO_APP).unwrap();
    let run = doctor(&s.path, &[]).await;
    run.assert_passes(SOURCE, "application-access", Some(HELPDESK));
    run.assert_passes(OUTBOUND, "application-access", Some(HELPDESK));
    run.assert_all_pass();
}

/// While the doctor waits, its probes (and the bounce of one) sit in the pickup mailbox; a
/// handler running at that moment hands none of them to a project: it marks them read and
/// leaves them for the doctor to delete, and handles the customer's mail beside them as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_handler_never_routes_a_probe_or_its_bounce() {
    let sb = start().await;
    let probe = "From: billing@contoso.example\r\nTo: helpdesk@contoso.example\r\n\
        Subject: [m365mail doctor probe] sent from billing@contoso.example probe-0a1b2c3d4e5\r\n\
        X-M365Mail-Probe: probe-0a1b2c3d4e5\r\nMessage-ID: <probe-1@contoso.example>\r\n\r\nprobe\r\n";
    let bounce = "From: Microsoft Outlook <postmaster@contoso.example>\r\n\
        To: helpdesk@contoso.example\r\nX-MS-Exchange-Message-Is-Ndr: \r\n\
        Subject: Undeliverable: [m365mail doctor probe] plus addressing probe-0a1b2c3d4e6\r\n\
        Message-ID: <ndr-1@contoso.example>\r\n\r\nDelivery has failed\r\n";
    let customer = "From: nestor@fabrikam.example\r\nTo: billing@contoso.example\r\n\
        Subject: invoice\r\nMessage-ID: <c-1@fabrikam.example>\r\n\r\nhello\r\n";
    let admin = sb.admin();
    admin
        .inject(
            "billing@contoso.example",
            &[HELPDESK.to_owned()],
            probe.as_bytes(),
        )
        .unwrap();
    admin
        .inject(
            "postmaster@contoso.example",
            &[HELPDESK.to_owned()],
            bounce.as_bytes(),
        )
        .unwrap();
    admin
        .inject_mime("billing@contoso.example", customer)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = helpdesk(&sb, "graph", HELPDESK, ALIASES)
        .replace(
            "notify_through = \"notify\"",
            "acknowledge = \"move:Processed\"",
        )
        .replace(
            &std::env::temp_dir()
                .join("m365mail-doctor-unused-out")
                .display()
                .to_string(),
            &out.display().to_string(),
        );
    let path = dir.path().join("m365mail.toml");
    std::fs::write(&path, text).unwrap();
    let output = tokio::process::Command::new(BIN)
        .args(["run", "--once", "--json", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    let s = &summary["sources"][0];
    assert_eq!(s["probes"], 2, "{summary}");
    // The demo seed's two messages and the customer's.
    assert_eq!(s["handled"], 3, "{summary}");
    assert_eq!(
        s["per_project"],
        serde_json::json!({"DESK": 3}),
        "{summary}"
    );
    let inbox = sb
        .admin()
        .store()
        .list(
            HELPDESK,
            Some("inbox"),
            &sandbox::store::ListQuery::default(),
        )
        .unwrap()
        .items;
    assert_eq!(inbox.len(), 2, "only the probe and the bounce stay");
    assert!(inbox.iter().all(|m| m.is_read));
    // Nothing the handler wrote names a probe.
    let mut written = String::new();
    for project in std::fs::read_dir(&out).unwrap().flatten() {
        if project.path().is_dir() {
            for f in std::fs::read_dir(project.path()).unwrap().flatten() {
                written.push_str(&String::from_utf8_lossy(&std::fs::read(f.path()).unwrap()));
            }
        }
    }
    assert!(
        written.contains("invoice"),
        "the customer's mail was written"
    );
    assert!(!written.contains("m365mail doctor probe"), "{written}");
}
