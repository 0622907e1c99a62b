//! The helpers the tests share: the binary, the configurations they run, a mailbox full of
//! mail, and what the folder handler wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sandbox::{Sandbox, Seed};
use test_support::config::Config;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_m365mail");

/// A Graph source on the helpdesk that moves handled mail to `Processed`, billing mail its own
/// project, the folder handler writing to `out` and a webhook.
pub(crate) fn config(sb: &Sandbox, out: &Path, hook: &str) -> String {
    Config::demo(sb)
        .helpdesk_graph(sb, "acknowledge = \"move:Processed\"")
        .mailbox(
            "helpdesk@contoso.example",
            &["billing@contoso.example", "support@contoso.example"],
        )
        .alias_rule("billing@contoso.example", "BILLING")
        .default_rule("DESK")
        .handler(out, &format!("webhook = \"{hook}\"\nbatch_size = 10"))
        .text()
}

/// Records written by the folder handler: message id -> how many records name it.
pub(crate) fn records(out: &Path) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for project in std::fs::read_dir(out).into_iter().flatten().flatten() {
        if !project.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(project.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|x| x == "json") {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
                let id = v["message_id"].as_str().unwrap_or("").to_owned();
                *seen.entry(id).or_default() += 1;
            }
        }
    }
    seen
}

/// [`folder_config`], changed by `edit`, written into a new temporary directory: the directory,
/// the handler's output folder in it and the configuration file.
pub(crate) fn write_folder_config(
    sb: &Sandbox,
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("m365mail.toml");
    std::fs::write(&cfg, edit(folder_config(sb, &out))).unwrap();
    (dir, out, cfg)
}

/// `config` without the webhook, for runs that only write to the folder.
pub(crate) fn folder_config(sb: &Sandbox, out: &Path) -> String {
    config(sb, out, "http://127.0.0.1:9/hook")
        .replace("webhook = \"http://127.0.0.1:9/hook\"\n", "")
}

/// A sandbox whose helpdesk has `n` messages waiting (plus the demo seed's two).
pub(crate) async fn large_mailbox(n: usize) -> Sandbox {
    let sb = Sandbox::builder().seed(Seed::demo()).start().await.unwrap();
    deliver_numbered(&sb, "helpdesk@contoso.example", "c", "bulk", n);
    sb
}

/// `n` messages to `to`: the `i`th from `{from}{i}@fabrikam.example`, its subject `{tag} {i}`
/// and its Message-ID `<{tag}-{i}@fabrikam.example>`.
pub(crate) fn deliver_numbered(sb: &Sandbox, to: &str, from: &str, tag: &str, n: usize) {
    for i in 0..n {
        let mime = format!(
            "From: {from}{i}@fabrikam.example\r\nTo: {to}\r\nSubject: {tag} {i}\r\n\
             Message-ID: <{tag}-{i}@fabrikam.example>\r\n\r\nbody {i}\r\n"
        );
        sb.admin().inject_mime(to, &mime).unwrap();
    }
}

/// The command succeeded; else its stderr says why.
pub(crate) fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
