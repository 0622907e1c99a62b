//! The resolved model: what it carries, and that a bad value anywhere is refused when the file
//! is loaded, once, with its key and its line.

use std::path::Path;
use std::sync::Arc;

use super::{GOOD, parsed, refusal};
use crate::config::{Config, ConfigError, Overrides, Service};

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in the text"));
    text[..at].matches('\n').count() + 1
}

/// `GOOD` with `old` replaced by `new` (which must be there once).
fn with(old: &str, new: &str) -> String {
    assert_eq!(GOOD.matches(old).count(), 1, "{old:?}");
    GOOD.replace(old, new)
}

const SECRET_ENV: &str = "client_secret_env = \"HELPDESK_SECRET\"\n";
const NOTIFY: &str = "notify_through = \"out\"\n";
const OUT: &str = "[[outbounds]]\nname = \"out\"\nkind = \"graph\"\n";

#[test]
fn a_bad_value_in_each_checked_place_is_refused_once_with_its_key_and_line() {
    // (what, the broken file, the text on the line the error must name, the key it must name)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "cloud",
            with(SECRET_ENV, &format!("{SECRET_ENV}cloud = \"mars\"\n")),
            "cloud = \"mars\"",
            "cloud",
        ),
        (
            "tenant",
            with(
                "tenant = \"contoso.onmicrosoft.com\"",
                "tenant = \"not a tenant\"",
            ),
            "tenant = \"not a tenant\"",
            "apps.helpdesk.tenant",
        ),
        (
            "authority_base",
            with(
                SECRET_ENV,
                &format!("{SECRET_ENV}authority_base = \"http://login.example/\"\n"),
            ),
            "authority_base",
            "apps.helpdesk.authority_base",
        ),
        (
            "an endpoint in clear to another host",
            with(
                SECRET_ENV,
                &format!(
                    "{SECRET_ENV}[apps.endpoints]\nauthorize = \"https://id.example/a\"\n\
                     token = \"http://id.example/t\"\n"
                ),
            ),
            "token = ",
            "apps.helpdesk.endpoints.token",
        ),
        (
            "an authorize endpoint that is no URL",
            with(
                SECRET_ENV,
                &format!(
                    "{SECRET_ENV}[apps.endpoints]\nauthorize = \"id.example\"\n\
                     token = \"https://id.example/t\"\n"
                ),
            ),
            "authorize = ",
            "apps.helpdesk.endpoints.authorize",
        ),
        (
            "endpoints and authority_base together",
            with(
                SECRET_ENV,
                &format!(
                    "{SECRET_ENV}authority_base = \"http://127.0.0.1:9\"\n[apps.endpoints]\n\
                     authorize = \"https://id.example/a\"\ntoken = \"https://id.example/t\"\n"
                ),
            ),
            "[apps.endpoints]",
            "apps.helpdesk.endpoints",
        ),
        (
            "redirect_uri",
            with(
                SECRET_ENV,
                &format!("{SECRET_ENV}redirect_uri = \"not a url\"\n"),
            ),
            "redirect_uri",
            "apps.helpdesk.redirect_uri",
        ),
        (
            "client_secret_env",
            with("\"HELPDESK_SECRET\"", "\"not-a-variable name\""),
            "client_secret_env",
            "apps.helpdesk.client_secret_env",
        ),
        (
            "acknowledge",
            with("\"move:Processed\"", "\"archive\""),
            "acknowledge = \"archive\"",
            "sources[0] (helpdesk).acknowledge",
        ),
        (
            "no request in flight",
            with(NOTIFY, &format!("{NOTIFY}requests_in_flight = 0\n")),
            "requests_in_flight = 0",
            "sources[0] (helpdesk).requests_in_flight",
        ),
        (
            "a Graph url in clear to another host",
            with(
                NOTIFY,
                &format!("{NOTIFY}url = \"http://graph.contoso.example/v1.0\"\n"),
            ),
            "url = ",
            "sources[0] (helpdesk).url",
        ),
        (
            "an EWS url in clear to another host",
            with(
                "kind = \"graph\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
                "kind = \"ews\"\nurl = \"http://mail.contoso.example/EWS/Exchange.asmx\"\n\
                 app = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
            ),
            "url = ",
            "sources[0] (helpdesk).url",
        ),
        (
            "an outbound's url",
            with(OUT, &format!("{OUT}url = \"ftp://graph.example/\"\n")),
            "url = \"ftp",
            "outbounds[0] (out).url",
        ),
        (
            "send_as",
            with(OUT, &format!("{OUT}send_as = [\"not an address\"]\n")),
            "send_as",
            "outbounds[0] (out).send_as[0]",
        ),
        (
            "a routing alias",
            with("\"billing@contoso.com\"]", "\"billing at contoso\"]"),
            "aliases = ",
            "sources[0] (helpdesk).routing.mailbox.aliases[0]",
        ),
        (
            "a routing rule",
            with(
                "alias = \"billing@contoso.com\"",
                "alias = \"sales@contoso.com\"",
            ),
            "alias = \"sales@",
            "sources[0] (helpdesk).routing.rules[0].alias",
        ),
        (
            "notify_through",
            with(NOTIFY, "notify_through = \"nope\"\n"),
            "notify_through",
            "sources[0] (helpdesk)",
        ),
        (
            "a source's app",
            with(
                "kind = \"graph\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
                "kind = \"graph\"\napp = \"nobody\"\nmailbox = \"helpdesk@contoso.com\"\nacknowledge",
            ),
            "app = \"nobody\"",
            "sources[0] (helpdesk)",
        ),
        (
            "host on a Graph outbound",
            with(OUT, &format!("{OUT}host = \"smtp.example\"\n")),
            "host = ",
            "outbounds[0] (out).host",
        ),
        (
            "a certificate setting without the certificate",
            with(
                SECRET_ENV,
                &format!("{SECRET_ENV}certificate_key_file = \"k.pem\"\n"),
            ),
            "certificate_key_file",
            "apps.helpdesk",
        ),
        (
            "an app without a credential",
            with(SECRET_ENV, ""),
            "[[apps]]",
            "apps.helpdesk",
        ),
        (
            "the webhook in clear to another host",
            format!("{GOOD}\n[handler]\nwebhook = \"http://hooks.contoso.example/mail\"\n"),
            "webhook = ",
            "handler.webhook",
        ),
        (
            "a webhook that is no URL",
            format!("{GOOD}\n[handler]\nbatch_size = 5\nwebhook = \"hooks\"\n"),
            "webhook = ",
            "handler.webhook",
        ),
        (
            "no message handled at once",
            format!("{GOOD}\n[handler]\nbatch_size = 5\nconcurrency = 0\n"),
            "concurrency = ",
            "handler.concurrency",
        ),
        (
            "more at once than the handler allows",
            format!("{GOOD}\n[handler]\nconcurrency = 65\n"),
            "concurrency = ",
            "handler.concurrency",
        ),
        (
            "a wait for throttled sources over an hour",
            format!("{GOOD}\n[handler]\nthrottle_wait_secs = 3601\n"),
            "throttle_wait_secs = ",
            "handler.throttle_wait_secs",
        ),
    ];
    for (what, text, on_line, key) in cases {
        let e = Config::parse(&text, Path::new("m.toml")).unwrap_err();
        let shown = e.to_string();
        let line = line_of(&text, on_line);
        assert!(shown.contains(&format!("line {line}")), "{what}: {shown}");
        assert_eq!(shown.matches("line ").count(), 1, "{what}: {shown}");
        assert!(shown.contains(key), "{what}: {key} not in {shown}");
        // The checks after parsing say which key and line in the error's fields, too.
        if let ConfigError::Invalid {
            key: k, line: l, ..
        } = &e
        {
            assert_eq!(*l, Some(line), "{what}: {shown}");
            assert!(k.starts_with(key), "{what}: {k}");
        }
    }
}

#[test]
fn the_model_carries_the_apps_cloud_authority_router_acknowledgement_and_urls() {
    let text = with(SECRET_ENV, &format!("{SECRET_ENV}cloud = \"gcc-high\"\n"))
        .replace(
            NOTIFY,
            &format!("{NOTIFY}mode = \"delta\"\npoison_folder = \"Bad\"\nrequests_in_flight = 4\n"),
        )
        .replace(OUT, &format!("{OUT}send_as = [\"billing@contoso.com\"]\n"))
        + "\n[[sources]]\nname = \"local\"\nkind = \"ews\"\napp = \"helpdesk\"\n\
           mailbox = \"local@contoso.com\"\nurl = \"http://127.0.0.1:9/EWS/Exchange.asmx\"\n\
           [sources.routing.mailbox]\nprimary = \"local@contoso.com\"\n\
           \n[[outbounds]]\nname = \"smtp\"\nkind = \"smtp\"\napp = \"helpdesk\"\n\
           mailbox = \"helpdesk@contoso.com\"\nport = 2525\n\
           \n[handler]\noutput_dir = \"out\"\nwebhook = \"https://hooks.contoso.example/mail\"\n";
    let c = parsed(&text);

    let app = c.app("helpdesk").unwrap();
    assert_eq!(app.cloud, msauth::Cloud::UsGovL4);
    assert_eq!(
        app.authority.token_endpoint().as_str(),
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );

    let s = c.source("helpdesk").unwrap();
    assert!(Arc::ptr_eq(&s.app, app));
    assert_eq!(
        s.acknowledge,
        connector::Acknowledgement::MoveTo("Processed".into())
    );
    assert_eq!(s.poison_folder, "Bad");
    assert_eq!(s.requests_in_flight, Some(4));
    let route = s
        .router
        .route_mime(b"From: a@fabrikam.example\r\nTo: billing@contoso.com\r\n\r\n");
    assert_eq!(route.project.as_ref().map(|p| p.as_str()), Some("BILL"));
    let Service::Graph(endpoint) = &s.service else {
        panic!("{:?}", s.service)
    };
    assert_eq!(endpoint.base().as_str(), "https://graph.microsoft.us/v1.0/");
    assert_eq!(s.scope, "https://graph.microsoft.us/.default");
    assert_eq!(
        s.delta_state.as_deref(),
        Some(Path::new("out/graph-delta.json"))
    );
    let out = s.notify_through.as_ref().unwrap();
    assert!(Arc::ptr_eq(out, c.outbound("out").unwrap()));
    let billing = addressing::EmailAddress::parse("billing@contoso.com").unwrap();
    assert_eq!(
        out.capabilities,
        addressing::OutboundCapabilities::new().send_as(billing)
    );

    let local = c.source("local").unwrap();
    assert_eq!(local.acknowledge, connector::Acknowledgement::MarkRead);
    assert_eq!(local.poison_folder, "Poison");
    assert!(local.notify_through.is_none() && local.delta_state.is_none());
    assert_eq!(local.requests_in_flight, None);
    // An EWS source takes it too (smaller requests, that many at once); 0 is refused.
    let ews_in_flight = |n: usize| {
        text.replace(
            "url = \"http://127.0.0.1:9/EWS/Exchange.asmx\"\n",
            &format!("url = \"http://127.0.0.1:9/EWS/Exchange.asmx\"\nrequests_in_flight = {n}\n"),
        )
    };
    let c27 = Config::parse(&ews_in_flight(27), Path::new("m.toml")).unwrap();
    assert_eq!(c27.source("local").unwrap().requests_in_flight, Some(27));
    let e = Config::parse(&ews_in_flight(0), Path::new("m.toml")).unwrap_err();
    assert!(e.to_string().contains("requests_in_flight"), "{e}");
    let Service::Ews(url) = &local.service else {
        panic!("{:?}", local.service)
    };
    assert_eq!(url.as_str(), "http://127.0.0.1:9/EWS/Exchange.asmx");
    assert_eq!(local.scope, "https://outlook.office365.us/.default");

    let smtp = c.outbound("smtp").unwrap();
    assert_eq!(smtp.service.address(), "smtp.office365.us:2525");

    assert_eq!(
        c.handler.webhook.as_ref().map(url::Url::as_str),
        Some("https://hooks.contoso.example/mail")
    );
    assert_eq!(c.handler.ledger, Path::new("out/ledger.jsonl"));
    assert_eq!(c.handler.poll_interval, std::time::Duration::from_secs(30));
}

/// `--out` moves the output folder before the paths that follow from it are resolved.
#[test]
fn an_output_override_moves_the_ledger_and_the_delta_state_with_it() {
    let text = with(NOTIFY, &format!("{NOTIFY}mode = \"delta\"\n"));
    let overrides = Overrides {
        output_dir: Some("elsewhere".into()),
    };
    let c = Config::parse_with(&text, Path::new("m.toml"), &overrides).unwrap();
    assert_eq!(c.handler.output_dir, Path::new("elsewhere"));
    assert_eq!(c.handler.ledger, Path::new("elsewhere/ledger.jsonl"));
    assert_eq!(
        c.sources[0].delta_state.as_deref(),
        Some(Path::new("elsewhere/graph-delta.json"))
    );
}

/// A routing section with several problems: each is named with its own key and line.
#[test]
fn each_routing_problem_names_its_key_and_line() {
    let text = with(
        "alias = \"billing@contoso.com\"",
        "alias = \"sales@contoso.com\"",
    ) + "\n[[sources.routing.rules]]\nmatch = \"alias\"\nalias = \"hr@contoso.com\"\nproject = \"HR\"\n";
    let e = refusal(&text);
    let sales = line_of(&text, "alias = \"sales@");
    let hr = line_of(&text, "alias = \"hr@");
    assert!(e.contains("2 problems"), "{e}");
    for (line, key) in [(sales, "rules[0].alias"), (hr, "rules[1].alias")] {
        assert!(
            e.contains(&format!("line {line}: sources[0] (helpdesk).routing.{key}")),
            "{e}"
        );
    }
}

/// The model's Debug never shows an inline secret.
#[test]
fn an_inline_secret_stays_out_of_the_models_debug() {
    const SECRET: &str = "in-line~Secret.0123";
    let text = with(
        "client_secret_env = \"HELPDESK_SECRET\"",
        &format!("client_secret = \"{SECRET}\""),
    );
    let c = parsed(&text);
    let debug = format!("{c:?}");
    assert!(
        debug.contains("helpdesk") && !debug.contains(SECRET),
        "{debug}"
    );
}
