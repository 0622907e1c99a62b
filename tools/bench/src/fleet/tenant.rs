//! The fleet bench's tenant: one sandbox with one app (client credentials, Graph and EWS
//! application permissions, consented), the mailboxes each scenario reads, the mail they are
//! fed, and the `m365mail` configuration every worker of a scenario runs with.

use std::path::Path;

use sandbox::{Admin, Sandbox, Seed};

/// The tenant id.
pub const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// The tenant's mail domain.
pub const DOMAIN: &str = "contoso.example";
/// The app's client id.
pub const CLIENT_ID: &str = "00000000-0000-0000-0000-0000000be4c1";
/// The app's client secret (bench-only, public).
pub const SECRET: &str = "fleet-bench-secret-not-for-production";
/// The folder `move:` sources move handled mail to.
pub const PROCESSED: &str = "Processed";

/// How a source reads its mailbox and acknowledges what it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Short name (`graph-unread-read`, ...).
    pub name: &'static str,
    /// EWS instead of Graph.
    pub ews: bool,
    /// Graph delta queries or EWS SyncFolderItems (`mode = "delta"`).
    pub delta: bool,
    /// Acknowledge by moving to [`PROCESSED`] instead of marking read.
    pub move_ack: bool,
    /// Acknowledge by changing nothing (`acknowledge = "keep"`, delta sources only).
    pub keep: bool,
}

impl Mode {
    /// Every mode the bench knows.
    pub const ALL: [Mode; 9] = [
        Mode::new("graph-unread-read", false, false, false),
        Mode::new("graph-unread-move", false, false, true),
        Mode::new("graph-delta-read", false, true, false),
        Mode::new("graph-delta-move", false, true, true),
        Mode {
            keep: true,
            ..Mode::new("graph-delta-keep", false, true, false)
        },
        Mode::new("ews-read", true, false, false),
        Mode::new("ews-move", true, false, true),
        Mode::new("ews-delta-read", true, true, false),
        Mode {
            keep: true,
            ..Mode::new("ews-delta-keep", true, true, false)
        },
    ];

    const fn new(name: &'static str, ews: bool, delta: bool, move_ack: bool) -> Mode {
        Mode {
            name,
            ews,
            delta,
            move_ack,
            keep: false,
        }
    }

    /// The mode called `name`.
    pub fn by_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name == name)
    }

    /// How the configuration says it: `kind`, `mode` and `acknowledge`.
    pub fn describe(self) -> String {
        format!(
            "kind = \"{}\"{}, acknowledge = \"{}\"",
            if self.ews { "ews" } else { "graph" },
            if self.delta { ", mode = \"delta\"" } else { "" },
            self.acknowledge()
        )
    }

    fn acknowledge(self) -> String {
        if self.keep {
            "keep".to_owned()
        } else if self.move_ack {
            format!("move:{PROCESSED}")
        } else {
            "mark-read".to_owned()
        }
    }
}

/// One mailbox of a scenario and the source reading it.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// Its address.
    pub address: String,
    /// The source's name.
    pub source: String,
    /// How it is read.
    pub mode: Mode,
}

/// `n` fresh mailboxes for scenario `tag` (a scenario never reads another's mailboxes, so
/// each starts from an empty inbox and an empty delta history).
pub fn mailboxes(tag: &str, n: usize, mode: Mode) -> Vec<Mailbox> {
    (0..n)
        .map(|i| Mailbox {
            address: format!("{tag}-{i:03}@{DOMAIN}"),
            source: format!("{tag}-{i:03}"),
            mode,
        })
        .collect()
}

/// Starts the sandbox with the bench's app, over plain HTTP.
pub async fn start() -> Result<Sandbox, String> {
    start_with(None).await
}

/// Starts the sandbox with the bench's app, serving HTTPS when `tls` is given (for clients
/// that refuse a plain-HTTP authority, such as the Python peers).
pub async fn start_with(tls: Option<sandbox::TlsOptions>) -> Result<Sandbox, String> {
    let seed = format!(
        r#"# Written by the fleet bench (tools/bench).
[tenant]
id = "{TENANT_ID}"
display_name = "Contoso (fleet bench)"
domains = ["{DOMAIN}"]

[[apps]]
client_id = "{CLIENT_ID}"
display_name = "Fleet mail handler (bench)"
application_permissions = ["Mail.ReadWrite", "https://outlook.office365.com/full_access_as_app"]

[[apps.secrets]]
id = "fleet-bench-1"
value = "{SECRET}"

[[consent.admin]]
app = "{CLIENT_ID}"
application = ["Mail.ReadWrite", "https://outlook.office365.com/full_access_as_app"]
"#
    );
    let seed = Seed::from_toml_str(&seed).map_err(|e| format!("the bench seed: {e}"))?;
    let mut builder = Sandbox::builder().seed(seed);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    builder
        .start()
        .await
        .map_err(|e| format!("starting the sandbox: {e}"))
}

/// Creates `mailboxes` as shared mailboxes (with a [`PROCESSED`] folder for `move:` sources).
pub fn create(admin: &Admin, mailboxes: &[Mailbox]) -> Result<(), String> {
    for m in mailboxes {
        admin
            .add_shared_mailbox(&m.address, &[])
            .map_err(|e| format!("adding {}: {e}", m.address))?;
        if m.mode.move_ack {
            admin
                .store()
                .create_folder(&m.address, None, PROCESSED)
                .map_err(|e| format!("creating {PROCESSED} in {}: {e}", m.address))?;
        }
    }
    Ok(())
}

/// Message `n` to `to`: plain text of about 1 KB, as a customer writes.
pub fn message(to: &str, n: u64) -> String {
    let line = "Hello, the printer on the second floor prints every page twice since Monday. ";
    format!(
        "From: Customer {n} <c{n}@fabrikam.example>\r\nTo: {to}\r\nSubject: Ticket {n}\r\n\
         Message-ID: <bench-{n}@fabrikam.example>\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        line.repeat(11)
    )
}

/// Messages waiting in `m`'s inbox: unread ones (mark-read sources leave read mail behind).
pub fn waiting(admin: &Admin, m: &Mailbox) -> usize {
    admin
        .store()
        .folder(&m.address, "inbox")
        .map_or(0, |f| f.unread_count)
}

/// Tops each mailbox up to `level` waiting messages; returns how many were delivered.
/// `next` numbers the messages across the run.
pub fn top_up(
    admin: &Admin,
    mailboxes: &[Mailbox],
    level: usize,
    next: &mut u64,
) -> Result<usize, String> {
    let mut delivered = 0;
    for m in mailboxes {
        for _ in waiting(admin, m)..level {
            admin
                .inject_mime(&m.address, &message(&m.address, *next))
                .map_err(|e| format!("delivering to {}: {e}", m.address))?;
            *next += 1;
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// TOML's basic string for `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The configuration of a scenario's workers: the app (trusting `ca_file` when the sandbox
/// serves HTTPS), one source per mailbox (mail routed to a project named after the source;
/// every source with `requests_in_flight` when given), the folder handler writing to `out`.
/// `[handler]` is the last table, so a caller may append keys to it.
pub fn config_toml(
    sb: &Sandbox,
    mailboxes: &[Mailbox],
    out: &Path,
    poll_interval_secs: u64,
    batch_size: usize,
    ca_file: Option<&Path>,
    requests_in_flight: Option<usize>,
) -> String {
    let mut s = format!(
        "# Written by the fleet bench (tools/bench).\n\n[[apps]]\nname = \"bench\"\n\
         tenant = \"{TENANT_ID}\"\nauthority_base = {}\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{SECRET}\"\nflow = \"client-credentials\"\n",
        toml_string(sb.base_url().trim_end_matches('/'))
    );
    // The app's token requests and each source's connection trust it.
    let ca_line = ca_file.map_or(String::new(), |ca| {
        format!("ca_file = {}\n", toml_string(&ca.display().to_string()))
    });
    s.push_str(&ca_line);
    for m in mailboxes {
        let url = if m.mode.ews {
            sb.ews_url()
        } else {
            sb.graph_url()
        };
        s.push_str(&format!(
            "\n[[sources]]\nname = \"{source}\"\nkind = \"{kind}\"\napp = \"bench\"\n\
             mailbox = \"{mailbox}\"\nurl = {url}\nacknowledge = \"{ack}\"\n{delta}{ca}{in_flight}\
             \n[sources.routing.mailbox]\nprimary = \"{mailbox}\"\n\
             \n[[sources.routing.rules]]\nmatch = \"default\"\nproject = \"{project}\"\n",
            source = m.source,
            kind = if m.mode.ews { "ews" } else { "graph" },
            mailbox = m.address,
            url = toml_string(&url),
            ack = m.mode.acknowledge(),
            // A delta state file per source: one file shared by every source is written whole
            // on each save (the `m365mail run` default; a fleet keeps it in PostgreSQL).
            delta = if m.mode.delta {
                let (key, file) = if m.mode.ews {
                    ("sync_state", format!("sync-{}.json", m.source))
                } else {
                    ("delta_state", format!("delta-{}.json", m.source))
                };
                format!(
                    "mode = \"delta\"\n{key} = {}\n",
                    toml_string(&out.join(file).display().to_string())
                )
            } else {
                String::new()
            },
            project = m.source.to_ascii_uppercase(),
            ca = ca_line,
            in_flight = match requests_in_flight {
                Some(n) => format!("requests_in_flight = {n}\n"),
                None => String::new(),
            },
        ));
    }
    s.push_str(&format!(
        "\n[handler]\noutput_dir = {out}\nbatch_size = {batch_size}\n\
         poll_interval_secs = {poll_interval_secs}\n",
        out = toml_string(&out.display().to_string()),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_named_and_described() {
        let m = Mode::by_name("graph-delta-move").unwrap_or(Mode::ALL[0]);
        assert!(m.delta && m.move_ack && !m.ews);
        assert_eq!(
            m.describe(),
            "kind = \"graph\", mode = \"delta\", acknowledge = \"move:Processed\""
        );
        assert!(Mode::by_name("nope").is_none());
        let boxes = mailboxes("a", 2, m);
        assert_eq!(boxes[1].address, "a-001@contoso.example");
        assert!(message(&boxes[0].address, 7).len() > 900);
    }
}
