//! The file's own tests: what is read, what is refused, and what a refusal says.

use std::path::Path;

use super::resolve::{parse_message, secret_values};
use super::*;

mod clouds;
mod model;

pub(super) const GOOD: &str = r#"
[[apps]]
name = "helpdesk"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_env = "HELPDESK_SECRET"

[[sources]]
name = "helpdesk"
kind = "graph"
app = "helpdesk"
mailbox = "helpdesk@contoso.com"
acknowledge = "move:Processed"
notify_through = "out"

[sources.routing.mailbox]
primary = "helpdesk@contoso.com"
aliases = ["billing@contoso.com"]

[[sources.routing.rules]]
match = "alias"
alias = "billing@contoso.com"
project = "BILL"

[[outbounds]]
name = "out"
kind = "graph"
app = "helpdesk"
mailbox = "helpdesk@contoso.com"
"#;

/// `text` read as the file `m.toml`.
fn parsed(text: &str) -> Config {
    Config::parse(text, Path::new("m.toml")).unwrap()
}

/// [`GOOD`] with its outbound of `kind`, then the lines of `lines`.
fn with_outbound(kind: &str, lines: &str) -> String {
    GOOD.replace(
        "[[outbounds]]\nname = \"out\"\nkind = \"graph\"",
        &format!("[[outbounds]]\nname = \"out\"\nkind = \"{kind}\"\n{lines}"),
    )
}

/// [`GOOD`] with the lines of `lines` added to its source.
fn with_source_lines(lines: &str) -> String {
    GOOD.replace(
        "notify_through = \"out\"\n",
        &format!("notify_through = \"out\"\n{lines}\n"),
    )
}

/// `text` (one of [`GOOD`]'s) with its source of `kind` instead of Graph.
fn source_kind(text: &str, kind: &str) -> String {
    text.replace(
        "[[sources]]\nname = \"helpdesk\"\nkind = \"graph\"",
        &format!("[[sources]]\nname = \"helpdesk\"\nkind = \"{kind}\""),
    )
}

/// Why `text`, read as the file `m.toml`, is refused.
fn refusal(text: &str) -> String {
    Config::parse(text, Path::new("m.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn a_complete_file_loads() {
    let c = parsed(GOOD);
    assert_eq!(c.sources[0].service.kind(), Kind::Graph);
    assert_eq!(
        c.sources[0].acknowledge,
        connector::Acknowledgement::MoveTo("Processed".into())
    );
    assert_eq!(c.handler.max_attempts, 3);
}

#[test]
fn the_cloud_is_parsed_when_the_file_is_loaded_and_a_wrong_one_names_its_key() {
    use msauth::Cloud;
    let c = parsed(GOOD);
    assert_eq!(c.apps[0].cloud, Cloud::Global);
    let secret = "client_secret_env = \"HELPDESK_SECRET\"";
    for (name, cloud) in [
        ("global", Cloud::Global),
        ("us-gov-l4", Cloud::UsGovL4),
        ("us-government", Cloud::UsGovL4),
        ("gcc-high", Cloud::UsGovL4),
        ("us-gov-l5", Cloud::UsGovL5),
        ("dod", Cloud::UsGovL5),
        ("china", Cloud::China),
    ] {
        let text = GOOD.replace(secret, &format!("{secret}\ncloud = \"{name}\""));
        let c = parsed(&text);
        assert_eq!(c.apps[0].cloud, cloud, "{name}");
    }
    let text = GOOD.replace(secret, &format!("{secret}\ncloud = \"germany\""));
    let e = refusal(&text);
    assert!(e.contains("line 7") && e.contains("key `cloud`"), "{e}");
    assert!(e.contains("\"germany\"") && e.contains("us-gov-l4"), "{e}");
}

#[test]
fn smtp_is_an_outbound_kind_only() {
    let smtp = with_outbound("smtp", "host = \"smtp.office365.us\"\nport = 587");
    let c = parsed(&smtp);
    assert_eq!(c.outbounds[0].service.kind(), Kind::Smtp);
    let Service::Smtp(smtp) = &c.outbounds[0].service else {
        panic!("{:?}", c.outbounds[0].service)
    };
    assert_eq!(smtp.host, "smtp.office365.us");
    assert_eq!(smtp.port, 587);

    let bad = source_kind(GOOD, "smtp");
    let e = refusal(&bad);
    assert!(e.contains("only sends"), "{e}");
}

#[test]
fn every_connection_takes_a_ca_file_but_only_smtp_takes_host_and_port() {
    let smtp = with_outbound("smtp", "ca_file = \"ca.pem\"");
    let c = parsed(&smtp);
    assert_eq!(c.outbounds[0].ca_file.as_deref(), Some(Path::new("ca.pem")));

    let graph = with_outbound("graph", "ca_file = \"ca.pem\"");
    let c = parsed(&graph);
    assert_eq!(c.outbounds[0].ca_file.as_deref(), Some(Path::new("ca.pem")));

    let source = with_source_lines("ca_file = \"src.pem\"");
    let c = parsed(&source);
    assert_eq!(c.sources[0].ca_file.as_deref(), Some(Path::new("src.pem")));
    assert_eq!(c.handler.max_message_bytes, 150 << 20);

    let port = with_outbound("graph", "port = 25");
    let e = refusal(&port);
    assert!(
        e.contains("(out).port") && e.contains("only for kind"),
        "{e}"
    );
}

#[test]
fn delta_mode_keeps_its_graph_and_ews_state_next_to_the_ledger() {
    let delta = with_source_lines("mode = \"delta\"");
    let c = parsed(&delta);
    assert_eq!(
        c.sources[0].delta_state.as_deref(),
        Some(Path::new("m365mail-out/graph-delta.json"))
    );
    let moved = format!("{delta}\n[handler]\nledger = \"/var/lib/m365mail/ledger.jsonl\"\n");
    let c = parsed(&moved);
    assert_eq!(
        c.sources[0].delta_state.as_deref(),
        Some(Path::new("/var/lib/m365mail/graph-delta.json"))
    );
    let own = delta.replace(
        "mode = \"delta\"\n",
        "mode = \"delta\"\ndelta_state = \"state/helpdesk.json\"\n",
    );
    let c = parsed(&own);
    assert_eq!(
        c.sources[0].delta_state.as_deref(),
        Some(Path::new("state/helpdesk.json"))
    );

    // EWS: SyncFolderItems, its state in sync_state (ews-sync.json beside the ledger).
    let ews = source_kind(&delta, "ews");
    let c = parsed(&ews);
    assert_eq!(c.sources[0].delta_state, None);
    assert_eq!(
        c.sources[0].sync_state.as_deref(),
        Some(Path::new("m365mail-out/ews-sync.json"))
    );
    let own = ews.replace(
        "mode = \"delta\"\n",
        "mode = \"delta\"\nsync_state = \"state/ews.json\"\n",
    );
    let c = parsed(&own);
    assert_eq!(
        c.sources[0].sync_state.as_deref(),
        Some(Path::new("state/ews.json"))
    );
    let e = refusal(&ews.replace(
        "mode = \"delta\"\n",
        "mode = \"delta\"\ndelta_state = \"x.json\"\n",
    ));
    assert!(
        e.contains("(helpdesk).delta_state") && e.contains("sync_state") && e.contains("line"),
        "{e}"
    );
    let e = refusal(&delta.replace(
        "mode = \"delta\"\n",
        "mode = \"delta\"\nsync_state = \"x.json\"\n",
    ));
    assert!(
        e.contains("(helpdesk).sync_state") && e.contains("EWS") && e.contains("line"),
        "{e}"
    );
    let unread_ews = source_kind(&with_source_lines("sync_state = \"x.json\""), "ews");
    let e = refusal(&unread_ews);
    assert!(e.contains("sync_state: only with mode"), "{e}");
    let stray = with_source_lines("delta_state = \"x.json\"");
    let e = refusal(&stray);
    assert!(e.contains("delta_state: only with mode"), "{e}");
    let typo = delta.replace("mode = \"delta\"", "mode = \"deltas\"");
    let e = refusal(&typo);
    assert!(e.contains("deltas") && e.contains("line"), "{e}");
}

#[test]
fn errors_name_the_key_and_line() {
    let bad = GOOD.replace(
        "kind = \"graph\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
        "kind = \"imap\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
    );
    let e = refusal(&bad);
    assert!(e.contains("line 10"), "{e}");
    assert!(e.contains("imap"), "{e}");

    let typo = GOOD.replace("notify_through", "notify_thru");
    let e = refusal(&typo);
    assert!(e.contains("notify_thru"), "{e}");
}

#[test]
fn references_must_exist() {
    let e = refusal(&GOOD.replace("notify_through = \"out\"", "notify_through = \"nope\""));
    assert!(e.contains("notify_through \"nope\""), "{e}");
    let e = refusal(&GOOD.replace(
        "acknowledge = \"move:Processed\"",
        "acknowledge = \"archive\"",
    ));
    assert!(e.contains("acknowledge"), "{e}");
}

#[test]
fn a_delegated_apps_account_keys_its_tokens_and_an_app_only_one_has_none() {
    let secret = "client_secret_env = \"HELPDESK_SECRET\"";
    let delegated = GOOD.replace(
        secret,
        "flow = \"browser\"\naccount = \"Adele.Vance@Contoso.com\"",
    );
    let c = parsed(&delegated);
    let app = &c.apps[0];
    assert_eq!(app.account.as_deref(), Some("adele.vance@contoso.com"));
    let provider = crate::connect::provider(app, app.graph_scope()).unwrap();
    assert_eq!(
        provider.cache_key().account.as_deref(),
        Some("adele.vance@contoso.com"),
        "the token cache's key carries the account"
    );
    let without = GOOD.replace(secret, "flow = \"browser\"");
    let c = parsed(&without);
    let provider = crate::connect::provider(&c.apps[0], c.apps[0].graph_scope()).unwrap();
    assert_eq!(provider.cache_key().account, None, "the app's one sign-in");
    for (extra, words) in [
        (
            format!("{secret}\naccount = \"adele.vance@contoso.com\""),
            "signs in as the app",
        ),
        (
            "flow = \"browser\"\naccount = \"not an address\"".to_owned(),
            "not an account's address",
        ),
    ] {
        let e = refusal(&GOOD.replace(secret, &extra));
        assert!(e.contains("account"), "{e}");
        assert!(e.contains(words), "{e}");
    }
}

#[test]
fn a_daemon_needs_a_secret_source() {
    let e = refusal(&GOOD.replace("client_secret_env = \"HELPDESK_SECRET\"", ""));
    assert!(e.contains("client_secret_env"), "{e}");
}

#[test]
fn a_certificate_replaces_the_secret_and_its_settings_are_checked() {
    let parse = |text: &str| Config::parse(text, Path::new("m.toml"));
    let cert = GOOD.replace(
        "client_secret_env = \"HELPDESK_SECRET\"",
        "certificate_file = \"app.pfx\"\ncertificate_password_env = \"PFX\"\nassertion_algorithm = \"rs256\"",
    );
    let c = parse(&cert).unwrap();
    let Credential::Certificate(certificate) = &c.apps[0].credential else {
        panic!("{:?}", c.apps[0].credential)
    };
    assert_eq!(certificate.file, Path::new("app.pfx"));
    assert_eq!(certificate.password_env.as_deref(), Some("PFX"));
    assert_eq!(certificate.algorithm, msauth::AssertionAlgorithm::Rs256);
    // Both a secret and a certificate: ambiguous, refused.
    let both = GOOD.replace(
        "client_secret_env = \"HELPDESK_SECRET\"",
        "client_secret_env = \"S\"\ncertificate_file = \"app.pfx\"",
    );
    let e = parse(&both).unwrap_err().to_string();
    assert!(e.contains("not both"), "{e}");
    // Certificate settings without the certificate: refused, named.
    let stray = GOOD.replace(
        "client_secret_env = \"HELPDESK_SECRET\"",
        "client_secret_env = \"S\"\ncertificate_key_file = \"k.pem\"",
    );
    let e = parse(&stray).unwrap_err().to_string();
    assert!(e.contains("need certificate_file"), "{e}");
    // An algorithm we do not know: the key is named.
    let alg = cert.replace("\"rs256\"", "\"es256\"");
    let e = parse(&alg).unwrap_err().to_string();
    assert!(
        e.contains("es256") || e.contains("assertion_algorithm"),
        "{e}"
    );
}

#[test]
fn an_inline_secret_stays_out_of_debug_and_parse_errors() {
    const SECRET: &str = "in-line~Secret.0123";
    let inline = GOOD.replace(
        "client_secret_env = \"HELPDESK_SECRET\"",
        &format!("client_secret = \"{SECRET}\""),
    );
    let c = parsed(&inline);
    let Credential::Secret(SecretSource::Inline(secret)) = &c.apps[0].credential else {
        panic!("{:?}", c.apps[0].credential)
    };
    assert_eq!(secret.secret(), SECRET);
    let debug = format!("{c:?} {:?}", c.apps[0]);
    assert!(!debug.contains(SECRET), "{debug}");

    // toml quotes the offending line; ours names line, column and key instead.
    let typo = inline.replace("client_secret =", "client_secrt =");
    let e = refusal(&typo);
    assert!(!e.contains(SECRET), "{e}");
    assert!(e.contains("line 6") && e.contains("client_secrt"), "{e}");
    // A type error may quote the value itself: cut out.
    let quoted = toml::from_str::<File>("[[apps]]\nclient_secret = 5\n").unwrap_err();
    assert!(
        !parse_message("[[apps]]\nclient_secret = \"abcd1234\"\n", &quoted).contains("abcd1234")
    );
    let e = refusal(&inline.replace(&format!("\"{SECRET}\""), &format!("\"{SECRET}")));
    assert!(!e.contains(SECRET) && e.contains("line 6"), "{e}");
    // The secret itself where the variable's name belongs: refused without repeating it.
    let misplaced = GOOD.replace("\"HELPDESK_SECRET\"", &format!("\"{SECRET}\""));
    let e = refusal(&misplaced);
    assert!(
        !e.contains(SECRET) && e.contains("client_secret_env"),
        "{e}"
    );
}

#[test]
fn secret_values_are_found_under_secret_keys_only() {
    let text = "client_secret = \"s3cr3t-value\"\napps.password = 'pw-value'\n\
                client_secret_env = \"NAME_OF_VAR\"\nname = \"helpdesk\"\n";
    let found = secret_values(text);
    assert!(found.contains(&"s3cr3t-value".to_string()), "{found:?}");
    assert!(found.contains(&"pw-value".to_string()), "{found:?}");
    assert!(
        !found.iter().any(|v| v == "NAME_OF_VAR" || v == "helpdesk"),
        "{found:?}"
    );
}

#[test]
fn the_notification_settings_build_the_policy() {
    let text = format!(
        "{GOOD}\n[notifications]\nreply_to = \"from-only\"\nsubject_max_chars = 10\n\
         own_domains = [\"contoso.com\"]\nper_recipient_max = 0\n"
    );
    let file: File = toml::from_str(&text).unwrap();
    assert_eq!(file.notifications.reply_to, Some(ReplyToName::FromOnly));
    let policy = parsed(&text).notifications;
    assert_eq!(policy.template().subject_max_chars, 10);
    // per_recipient_max = 0: no limit.
    assert!((0..50).all(|_| policy.admit("a@fabrikam.example")));
    let limited = parsed(GOOD).notifications;
    assert_eq!(
        (0..50)
            .filter(|_| limited.admit("a@fabrikam.example"))
            .count(),
        5
    );
    let bad = format!("{GOOD}\n[notifications]\nreply_to = \"always\"\n");
    let e = refusal(&bad);
    assert!(e.contains("reply_to") && e.contains("always"), "{e}");
}

#[test]
fn the_subject_token_prefix_reaches_the_pipeline() {
    let text = format!("{GOOD}\n[handler]\nsubject_token = \"HELP\"\n");
    let c = parsed(&text);
    assert_eq!(c.handler.options().subject_token.as_deref(), Some("HELP"));
    let c = parsed(GOOD);
    assert_eq!(c.handler.options().subject_token, None);
}

#[test]
fn the_wait_for_throttled_sources_reaches_the_pipeline() {
    let c = parsed(&format!("{GOOD}\n[handler]\nthrottle_wait_secs = 900\n"));
    assert_eq!(
        c.handler.options().throttle_wait,
        std::time::Duration::from_secs(900)
    );
    // Unset: `run --once` does not wait, as the pipeline's own default.
    assert_eq!(
        parsed(GOOD).handler.options().throttle_wait,
        std::time::Duration::ZERO
    );
    assert_eq!(
        handler::Options::default().throttle_wait,
        std::time::Duration::ZERO
    );
}

#[test]
fn the_handlers_concurrency_reaches_the_pipeline() {
    let c = parsed(&format!("{GOOD}\n[handler]\nconcurrency = 16\n"));
    assert_eq!(c.handler.options().concurrency, 16);
    // Unset, the pipeline's own default.
    assert_eq!(
        parsed(GOOD).handler.options().concurrency,
        handler::Options::default().concurrency
    );
}
