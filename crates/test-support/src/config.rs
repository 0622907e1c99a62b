//! The text of an `m365mail` configuration, section by section, over the sandbox's demo app
//! registration ([`DEMO_APP`]). Each method appends a section (or a few lines) in order, as
//! one would write the file: `[sources.routing.*]` belong to the `[[sources]]` before them.

use std::path::Path;

use sandbox::Sandbox;

use crate::DEMO_APP;

/// `client_secret = "..."`: the demo app's secret, for [`Config::app`]'s `extra`.
pub const SECRET_LINE: &str = "client_secret = \"demo-secret-do-not-use-in-production\"";

/// An `m365mail` configuration being written.
#[derive(Debug, Clone, Default)]
pub struct Config {
    text: String,
}

impl Config {
    /// Nothing yet.
    pub fn new() -> Self {
        Config::default()
    }

    /// An app named `demo` in the sandbox's tenant with the demo app's secret
    /// (client-credentials sign-in).
    pub fn demo(sb: &Sandbox) -> Self {
        Config::new().sandbox_app(sb, "demo", SECRET_LINE)
    }

    /// An app named `name` in the sandbox's tenant that a person signs in to with `flow`
    /// (`browser`, `device-code`), its tokens cached in `token_cache`.
    pub fn person(sb: &Sandbox, name: &str, flow: &str, token_cache: &Path) -> Self {
        let cache = toml_string(&token_cache.display().to_string());
        Config::new().sandbox_app(
            sb,
            name,
            &format!("flow = \"{flow}\"\ntoken_cache = {cache}"),
        )
    }

    /// The demo app and one EWS source `name` in push mode reading `mailbox` (all of it to the
    /// project `DESK`), the handler writing to `out`. Its safety timer and the poll interval are
    /// an hour: only the stream (and its catch-ups) can bring mail within a test's bounds.
    pub fn ews_push(sb: &Sandbox, name: &str, mailbox: &str, out: &Path) -> Self {
        Config::demo(sb)
            .source(
                name,
                "ews",
                "demo",
                mailbox,
                &sb.ews_url(),
                "mode = \"push\"",
            )
            .section("[sources.push]\nsafety_interval_secs = 3600")
            .mailbox(mailbox, &[])
            .default_rule("DESK")
            .handler(out, "poll_interval_secs = 3600")
    }

    /// `[[apps]]` named `name` for [`DEMO_APP`] in the sandbox's tenant, then the lines of
    /// `extra` (the credential, `flow`, `token_cache`, ...).
    pub fn sandbox_app(self, sb: &Sandbox, name: &str, extra: &str) -> Self {
        self.app(name, &sb.tenant_id(), sb.base_url(), extra)
    }

    /// `[[apps]]` named `name` for [`DEMO_APP`] in `tenant`, signing in at `authority_base`,
    /// then the lines of `extra`.
    pub fn app(self, name: &str, tenant: &str, authority_base: &str, extra: &str) -> Self {
        let base = authority_base.trim_end_matches('/');
        self.section(&format!(
            "[[apps]]\nname = \"{name}\"\ntenant = \"{tenant}\"\nauthority_base = \"{base}\"\n\
             client_id = \"{DEMO_APP}\"\n{extra}"
        ))
    }

    /// `[[sources]]`: `name` of `kind` (`graph`, `ews`) signing in as `app`, reading `mailbox`
    /// at `url`, then the lines of `extra` (`acknowledge`, `notify_through`, ...).
    pub fn source(
        self,
        name: &str,
        kind: &str,
        app: &str,
        mailbox: &str,
        url: &str,
        extra: &str,
    ) -> Self {
        self.section(&format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"{kind}\"\napp = \"{app}\"\n\
             mailbox = \"{mailbox}\"\nurl = \"{url}\"\n{extra}"
        ))
    }

    /// `[[sources]]` `helpdesk`: the app `demo` reading the sandbox's helpdesk mailbox
    /// (`helpdesk@contoso.example`) over Graph, then the lines of `extra`.
    pub fn helpdesk_graph(self, sb: &Sandbox, extra: &str) -> Self {
        let url = sb.graph_url();
        self.source(
            "helpdesk",
            "graph",
            "demo",
            "helpdesk@contoso.example",
            &url,
            extra,
        )
    }

    /// The last source's `[sources.routing.mailbox]`: its primary address and aliases.
    pub fn mailbox(self, primary: &str, aliases: &[&str]) -> Self {
        let aliases = if aliases.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = aliases.iter().map(|a| format!("\"{a}\"")).collect();
            format!("aliases = [{}]\n", quoted.join(", "))
        };
        self.section(&format!(
            "[sources.routing.mailbox]\nprimary = \"{primary}\"\n{aliases}"
        ))
    }

    /// A rule of the last source: mail to `alias` belongs to `project`.
    pub fn alias_rule(self, alias: &str, project: &str) -> Self {
        self.section(&format!(
            "[[sources.routing.rules]]\nmatch = \"alias\"\nalias = \"{alias}\"\n\
             project = \"{project}\""
        ))
    }

    /// The last source's default rule: the rest belongs to `project`.
    pub fn default_rule(self, project: &str) -> Self {
        self.section(&format!(
            "[[sources.routing.rules]]\nmatch = \"default\"\nproject = \"{project}\""
        ))
    }

    /// `[[outbounds]]`: `name` of `kind` (`graph`, `smtp`) signing in as `app`, sending as
    /// `mailbox`, then the lines of `extra` (`url`, `host`, `port`, ...).
    pub fn outbound(self, name: &str, kind: &str, app: &str, mailbox: &str, extra: &str) -> Self {
        self.section(&format!(
            "[[outbounds]]\nname = \"{name}\"\nkind = \"{kind}\"\napp = \"{app}\"\n\
             mailbox = \"{mailbox}\"\n{extra}"
        ))
    }

    /// `[handler]` writing to `out`, then the lines of `extra` (`webhook`, `batch_size`, ...).
    pub fn handler(self, out: &Path, extra: &str) -> Self {
        let out = toml_string(&out.display().to_string());
        self.section(&format!("[handler]\noutput_dir = {out}\n{extra}"))
    }

    /// Any text, as a section of its own.
    pub fn section(mut self, text: &str) -> Self {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(text.trim_end_matches('\n'));
        self.text.push('\n');
        self
    }

    /// The configuration's text.
    pub fn text(&self) -> String {
        self.text.clone()
    }

    /// Writes it to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.text).expect("configuration written");
    }
}

/// A TOML basic string, quotes included (paths may hold quotes or backslashes).
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secret_line_holds_the_demo_secret() {
        assert!(super::SECRET_LINE.contains(crate::DEMO_SECRET));
    }
}
