//! The demo: the embedded sandbox with the demo helpdesk tenant, its mail, and a configuration
//! pointing at it. Used by `m365mail run` (and `ping`, `route`, `send`) without `--config`.

use std::path::Path;

use sandbox::{Sandbox, Seed};

use crate::config::Config;
use crate::connect::anyhow_lite::{Context, Result};

/// The demo app registration's client id (in the sandbox's demo seed).
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
/// The demo app's client secret. Public, in the sandbox's demo seed: DEMO ONLY.
pub const DEMO_SECRET: &str = "demo-secret-do-not-use-in-production";

/// Mail the demo delivers: (envelope recipient, message). Customers write to the helpdesk's
/// aliases and sub-addresses, a robot sends an auto-reply, a server bounces, one customer Bccs
/// the helpdesk, and the shared projects mailbox gets mail for its own aliases.
pub fn demo_mail() -> Vec<(&'static str, String)> {
    let m = |n: u32, from: &str, to: &str, subject: &str, extra: &str| -> String {
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Date: Tue, 03 Nov 2026 09:{n:02}:00 +0000\r\nMessage-ID: <demo-{n}@fabrikam.example>\r\n\
             {extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{subject}. Thanks!\r\n"
        )
    };
    vec![
        (
            "sales@contoso.example",
            m(
                10,
                "Pradeep Gupta <pradeep@fabrikam.example>",
                "sales@contoso.example",
                "Quote for 40 licences",
                "",
            ),
        ),
        (
            "hr@contoso.example",
            m(
                11,
                "Isaiah Langer <isaiah@fabrikam.example>",
                "hr@contoso.example",
                "Application for the support role",
                "",
            ),
        ),
        (
            "it@contoso.example",
            m(
                12,
                "Grady Archie <grady@fabrikam.example>",
                "IT <it@contoso.example>",
                "VPN drops every hour",
                "",
            ),
        ),
        (
            "helpdesk@contoso.example",
            m(
                13,
                "Joni Sherman <joni@fabrikam.example>",
                "Contoso Helpdesk <helpdesk@contoso.example>",
                "Where do I send feedback?",
                "",
            ),
        ),
        (
            "billing@contoso.example",
            m(
                14,
                "Lynne Robbins <lynne@fabrikam.example>",
                "billing@contoso.example",
                "Refund for order 1002",
                "",
            ),
        ),
        (
            "support@contoso.example",
            m(
                15,
                "Miriam Graham <miriam@fabrikam.example>",
                "someone@fabrikam.example",
                "Cc'd to support",
                "Cc: support@contoso.example\r\n",
            ),
        ),
        (
            "support+printer@contoso.example",
            m(
                16,
                "Debra Berger <debra@fabrikam.example>",
                "support+printer@contoso.example",
                "Toner is empty",
                "",
            ),
        ),
        (
            "helpdesk+payments@contoso.example",
            m(
                17,
                "Diego Siciliani <diego@fabrikam.example>",
                "helpdesk+payments@contoso.example",
                "Card declined",
                "",
            ),
        ),
        (
            "helpdesk@contoso.example",
            m(
                18,
                "Johanna Lorenz <johanna@fabrikam.example>",
                "undisclosed-recipients:;",
                "Bcc'd to the helpdesk",
                "",
            ),
        ),
        (
            "support@contoso.example",
            m(
                19,
                "Out of office <ooo@fabrikam.example>",
                "support@contoso.example",
                "Automatic reply: I am away",
                "Auto-Submitted: auto-replied\r\n",
            ),
        ),
        (
            "billing@contoso.example",
            m(
                20,
                "Mail Delivery Subsystem <MAILER-DAEMON@fabrikam.example>",
                "billing@contoso.example",
                "Undeliverable: your invoice",
                "",
            ),
        ),
        (
            "alpha@contoso.example",
            m(
                21,
                "Patti Fernandez <patti@fabrikam.example>",
                "alpha@contoso.example",
                "Alpha milestone review",
                "",
            ),
        ),
        (
            "beta@contoso.example",
            m(
                22,
                "Lee Gu <lee@fabrikam.example>",
                "beta@contoso.example",
                "Beta test feedback",
                "",
            ),
        ),
        (
            "projects@contoso.example",
            m(
                23,
                "Christie Cline <christie@fabrikam.example>",
                "projects@contoso.example",
                "New project request",
                "",
            ),
        ),
    ]
}

/// The demo configuration, pointing at a running sandbox: both sources poll.
pub fn demo_config(sb: &Sandbox, output_dir: &Path) -> Result<Config> {
    demo_config_with(sb, output_dir, "", "")
}

/// The demo configuration with both sources in push mode (`m365mail run --push`): the Graph
/// source subscribes to change notifications, which reach a listener on `127.0.0.1:port`
/// (plain HTTP, allowed to loopback only), and the EWS source keeps a streaming subscription.
pub fn demo_push_config(sb: &Sandbox, output_dir: &Path, port: u16) -> Result<Config> {
    let record = output_dir.join("graph-subscriptions.json");
    let graph = format!(
        "mode = \"push\"\n\n[sources.push]\npublic_url = \"http://127.0.0.1:{port}/graph/notify\"\n\
         listen = \"127.0.0.1:{port}\"\nsubscriptions = \"{}\"\n",
        record.display().to_string().replace('\\', "/")
    );
    demo_config_with(sb, output_dir, &graph, "mode = \"push\"\n")
}

/// The helpdesk's aliases, each with the project its mail goes to.
const HELPDESK_ALIASES: &[(&str, &str)] = &[
    ("billing@contoso.example", "BILLING"),
    ("support@contoso.example", "SUPPORT"),
    ("sales@contoso.example", "SALES"),
    ("hr@contoso.example", "HR"),
    ("it@contoso.example", "IT"),
];

/// The shared projects mailbox's aliases, each with its project.
const PROJECTS_ALIASES: &[(&str, &str)] = &[
    ("alpha@contoso.example", "ALPHA"),
    ("beta@contoso.example", "BETA"),
];

/// The `aliases` array of a source's `[sources.routing.mailbox]`.
fn toml_aliases(aliases: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = aliases.iter().map(|(a, _)| format!("\"{a}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// One `[[sources.routing.rules]]` an alias, sending its mail to its project.
fn alias_rules(aliases: &[(&str, &str)]) -> String {
    aliases
        .iter()
        .map(|(alias, project)| {
            format!(
                "[[sources.routing.rules]]\nmatch = \"alias\"\nalias = \"{alias}\"\nproject = \"{project}\"\n\n"
            )
        })
        .collect()
}

/// The demo's text with `graph_mode` and `ews_mode` added to the Graph and the EWS source.
fn demo_config_with(
    sb: &Sandbox,
    output_dir: &Path,
    graph_mode: &str,
    ews_mode: &str,
) -> Result<Config> {
    let text = format!(
        r#"
[[apps]]
name = "demo"
tenant = "{tenant}"
authority_base = "{base}"
client_id = "{DEMO_CLIENT_ID}"
client_secret = "{DEMO_SECRET}"
flow = "client-credentials"
redirect_uri = "http://localhost"

[[sources]]
name = "helpdesk (Graph)"
kind = "graph"
app = "demo"
mailbox = "helpdesk@contoso.example"
url = "{graph}"
acknowledge = "move:Processed"
notify_through = "helpdesk (Graph)"
{graph_mode}
[sources.routing.mailbox]
primary = "helpdesk@contoso.example"
aliases = {helpdesk_aliases}

[[sources.routing.rules]]
match = "detail"
detail = "printer"
project = "FACILITIES"

[[sources.routing.rules]]
match = "detail"
detail = "payments"
project = "PAYMENTS"

{helpdesk_alias_rules}[[sources.routing.rules]]
match = "default"
project = "HELPDESK"

[[sources]]
name = "projects (EWS)"
kind = "ews"
app = "demo"
mailbox = "projects@contoso.example"
url = "{ews}"
acknowledge = "mark-read"
notify_through = "projects (EWS)"
{ews_mode}
[sources.routing.mailbox]
primary = "projects@contoso.example"
aliases = {projects_aliases}

{projects_alias_rules}[[sources.routing.rules]]
match = "default"
project = "PROJECTS"

[[outbounds]]
name = "helpdesk (Graph)"
kind = "graph"
app = "demo"
mailbox = "helpdesk@contoso.example"
url = "{graph}"
send_from_alias_enabled = true

[[outbounds]]
name = "projects (EWS)"
kind = "ews"
app = "demo"
mailbox = "projects@contoso.example"
url = "{ews}"
send_from_alias_enabled = false

[handler]
output_dir = "{out}"
batch_size = 10
"#,
        tenant = sb.tenant_id(),
        base = sb.base_url().trim_end_matches('/'),
        graph = sb.graph_url(),
        ews = sb.ews_url(),
        out = output_dir.display().to_string().replace('\\', "/"),
        helpdesk_aliases = toml_aliases(HELPDESK_ALIASES),
        helpdesk_alias_rules = alias_rules(HELPDESK_ALIASES),
        projects_aliases = toml_aliases(PROJECTS_ALIASES),
        projects_alias_rules = alias_rules(PROJECTS_ALIASES),
    );
    Config::parse(&text, Path::new("(demo configuration)")).map_err(|e| e.to_string())
}

/// Starts the embedded sandbox with the demo tenant and delivers the demo mail.
pub async fn start(with_mail: bool) -> Result<Sandbox> {
    let sb = Sandbox::builder()
        .seed(Seed::demo())
        .smtp_addr(None)
        .start()
        .await
        .context("starting the embedded sandbox")?;
    // The demo tenant lets mail go out from aliases (`Set-OrganizationConfig
    // -SendFromAliasEnabled $true`), so answers come from the very address customers wrote to.
    sb.admin()
        .update_org(|org| org.send_from_alias_enabled = true);
    if with_mail {
        let admin = sb.admin();
        for (to, mime) in demo_mail() {
            admin
                .inject_mime(to, &mime)
                .context(format!("delivering demo mail to {to}"))?;
        }
    }
    Ok(sb)
}
