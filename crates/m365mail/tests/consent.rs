//! `m365mail consent-url` (issue #22): the admin consent URL asks for the scopes of the
//! resources the app is used with, and is refused, naming the key to set, without the redirect
//! URI the adminconsent endpoint requires.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_m365mail");

const APP: &str = "[[apps]]\nname = \"helpdesk\"\ntenant = \"contoso.example\"\n\
    client_id = \"00000000-0000-0000-0000-000000000001\"\nclient_secret_env = \"HELPDESK_SECRET\"\n";

/// The least routing a source needs.
const ROUTING: &str = "[sources.routing.mailbox]\nprimary = \"helpdesk@contoso.example\"\n";

fn consent_url(config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m365mail.toml");
    std::fs::write(&path, config).expect("write");
    let out = Command::new(BIN)
        .args(["consent-url", "--config"])
        .arg(&path)
        // Not read by consent-url any more, but the command before issue #22 wanted it.
        .env("HELPDESK_SECRET", "unused")
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scope_of(url: &str) -> String {
    url::Url::parse(url.trim())
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .expect("scope")
}

#[test]
fn an_app_used_only_for_ews_and_smtp_is_asked_consent_for_exchange_not_graph() {
    let config = format!(
        "{APP}redirect_uri = \"https://app.example/consented\"\n\n\
         [[sources]]\nname = \"in\"\nkind = \"ews\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.example\"\n{ROUTING}\n\
         [[outbounds]]\nname = \"out\"\nkind = \"smtp\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.example\"\n"
    );
    let (ok, stdout, stderr) = consent_url(&config);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(scope_of(&stdout), "https://outlook.office365.com/.default");
    assert!(
        stdout.contains("redirect_uri=https%3A%2F%2Fapp.example%2Fconsented"),
        "{stdout}"
    );

    // Graph and EWS: both resources.
    let config = format!(
        "{APP}redirect_uri = \"https://app.example/consented\"\n\n\
         [[sources]]\nname = \"in\"\nkind = \"graph\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.example\"\n{ROUTING}\n\
         [[outbounds]]\nname = \"out\"\nkind = \"ews\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.example\"\n"
    );
    let (ok, stdout, stderr) = consent_url(&config);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        scope_of(&stdout),
        "https://graph.microsoft.com/.default https://outlook.office365.com/.default"
    );
}

#[test]
fn without_a_redirect_uri_there_is_no_url_but_the_key_to_set() {
    let config = format!(
        "{APP}\n[[sources]]\nname = \"in\"\nkind = \"graph\"\napp = \"helpdesk\"\nmailbox = \"helpdesk@contoso.example\"\n{ROUTING}"
    );
    let (ok, stdout, stderr) = consent_url(&config);
    assert!(!ok, "{stdout}");
    assert!(!stdout.contains("adminconsent"), "{stdout}");
    assert!(stderr.contains("apps.helpdesk.redirect_uri"), "{stderr}");
}
