//! Outbounds with PING and the right to send as each address, and the routing page's address
//! check.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbounds_with_ping_and_routing_with_an_address_tested() {
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    let h = http();
    for path in [
        "/console/outbounds",
        "/console/routing?address=x%40y.example",
    ] {
        let r = h.get(format!("{}{path}", c.url)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path} needs the operator");
    }
    let r = h
        .post(format!("{}/console/outbounds/helpdesk-out/ping", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (cookie, _) = operator_login(&c).await;
    let get = |path: String| {
        let h = h.clone();
        let cookie = cookie.clone();
        async move {
            let r = h.get(path).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let page = get(format!("{}/console/outbounds", c.url)).await;
    assert!(page.contains("id=\"outbound-helpdesk-out\""), "{page}");
    let csrf = csrf_of(&page);
    let ping = format!("{}/console/outbounds/helpdesk-out/ping", c.url);
    let r = h
        .post(&ping)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let report = ping_outbound(&c, &cookie, &csrf, "helpdesk-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(report.contains("id=\"ping-log\""), "{report}");

    let page = get(format!(
        "{}/console/routing?source=helpdesk&address=billing%2Binvoice%40contoso.example",
        c.url
    ))
    .await;
    assert!(page.contains("id=\"route-project\">BILL<"), "{page}");
    assert!(
        page.contains("billing@contoso.example"),
        "the rule table: {page}"
    );
    let page = get(format!(
        "{}/console/routing?source=helpdesk&address=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        c.url
    ))
    .await;
    assert!(!page.contains("<script>"), "escaped: {page}");
    for p in [&page, &report] {
        assert!(!p.contains(test_support::DEMO_SECRET));
        assert!(!p.contains("eyJ"));
    }
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_is_created_then_its_ping_shows_the_right_to_send_as_each_alias() {
    let sb = sandbox().await;
    let c = console(&sb, None).await;
    let h = http();
    let url = format!("{}/console/outbounds", c.url);
    let r = h
        .post(&url)
        .form(&[("name", "desk-out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no session");
    let (cookie, _) = operator_login(&c).await;
    let page = page_of(&c, &cookie, "/console/outbounds").await;
    assert!(page.contains("id=\"create-outbound\""), "{page}");
    assert!(page.contains("<option value=\"demo\">"), "the apps: {page}");
    let csrf = csrf_of(&page);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&c.config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = std::fs::read_to_string(&c.config).unwrap();
    let create = |fields: Vec<(&'static str, &'static str)>, with_csrf: bool| {
        let h = h.clone();
        let cookie = cookie.clone();
        let url = url.clone();
        let mut fields: Vec<(&str, String)> =
            fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        if with_csrf {
            fields.push(("csrf", csrf.clone()));
        }
        async move {
            let r = h
                .post(url)
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let good = vec![
        ("name", "desk-out"),
        ("kind", "graph"),
        ("app", "demo"),
        ("mailbox", "helpdesk@contoso.example"),
        ("send_from_alias_enabled", "true"),
    ];
    let (status, _) = create(good.clone(), false).await;
    assert_eq!(status, 403, "no CSRF token");
    assert_eq!(std::fs::read_to_string(&c.config).unwrap(), before);
    let with = |k: &'static str, v: &'static str| {
        good.iter()
            .map(|&(gk, gv)| if gk == k { (gk, v) } else { (gk, gv) })
            .collect::<Vec<_>>()
    };
    for (fields, words) in [
        (with("app", "nope"), "no app called &quot;nope&quot;"),
        (with("mailbox", "not an address"), "is not an address"),
        (with("name", "bad name!"), "is not 1 to 64"),
        (with("kind", "imap"), "unknown kind"),
    ] {
        let (status, page) = create(fields, true).await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("id=\"create-error\""), "{page}");
        assert!(page.contains(words), "{words}: {page}");
        assert!(!page.contains("id=\"outbound-desk-out\""), "{page}");
        assert_eq!(std::fs::read_to_string(&c.config).unwrap(), before);
    }
    let (status, page) = create(good.clone(), true).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"outbound-created\""), "{page}");
    assert!(page.contains("id=\"outbound-desk-out\""), "listed: {page}");
    let after = std::fs::read_to_string(&c.config).unwrap();
    assert!(after.starts_with(&before), "appended: {after}");
    assert!(after.contains("name = \"desk-out\""), "{after}");
    assert!(after.contains("send_from_alias_enabled = true"), "{after}");
    let mode = std::fs::metadata(&c.config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its permissions");
    let (status, page) = create(good.clone(), true).await;
    assert_eq!(status, 400, "a second desk-out: {page}");
    assert!(page.contains("exists already"), "{page}");
    assert_eq!(std::fs::read_to_string(&c.config).unwrap(), after);

    let ping = |name: &'static str| ping_outbound(&c, &cookie, &csrf, name);
    let report = ping("desk-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(
        send_as_row(&report, "helpdesk@contoso.example").contains("ALLOWED"),
        "{report}"
    );

    // The source notifies through helpdesk-out; one alias is the mailbox's own, the other is
    // another mailbox, which an app-only token may put in From only with Send As on it.
    let other = "adele.vance@contoso.example";
    console_config(
        &sb,
        &c.config,
        "helpdesk@contoso.example",
        &["billing@contoso.example", other],
        "notify_through = \"helpdesk-out\"",
    );
    let report = ping("helpdesk-out").await;
    assert!(report.contains("id=\"ping-status\">ONLINE"), "{report}");
    assert!(
        send_as_row(&report, "billing@contoso.example").contains("ALLOWED"),
        "{report}"
    );
    let row = send_as_row(&report, other);
    assert!(row.contains("REFUSED"), "{row}");
    assert!(row.contains("may not send as"), "{row}");
    sb.admin()
        .add_mailbox_permission(
            other,
            "helpdesk@contoso.example",
            sandbox::tenant::MailboxRight::SendAs,
        )
        .unwrap();
    let report = ping("helpdesk-out").await;
    assert!(send_as_row(&report, other).contains("ALLOWED"), "{report}");
    assert!(!report.contains(test_support::DEMO_SECRET));
    assert!(!report.contains("eyJ"));
    drop(c);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_and_smtp_outbounds_ping_shows_the_right_to_send_as_each_address() {
    const HELPDESK: &str = "helpdesk@contoso.example";
    const BILLING: &str = "billing@contoso.example";
    let sb = sandbox().await;
    test_support::tokens::allow_smtp_send_as_app(&sb);
    let c = console(&sb, None).await;
    let dir = c.config.parent().unwrap().to_path_buf();
    let ca = dir.join("smtp-ca.pem");
    std::fs::write(&ca, sb.smtp_ca_pem().unwrap()).unwrap();
    let smtp = sb.smtp_addr().unwrap();
    // Each sends as the helpdesk and may be asked for one of its aliases and for Adele.
    let send_as = format!("send_as = [\"{BILLING}\", \"{ADELE}\"]");
    Config::new()
        .sandbox_app(&sb, "demo", SECRET_LINE)
        .outbound(
            "ews-out",
            "ews",
            "demo",
            HELPDESK,
            &format!("url = \"{}\"\n{send_as}", sb.ews_url()),
        )
        .outbound(
            "smtp-out",
            "smtp",
            "demo",
            HELPDESK,
            &format!(
                "host = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\n{send_as}",
                smtp.port(),
                ca.display()
            ),
        )
        .handler(&dir.join("out"), "")
        .write(&c.config);
    let (cookie, _) = operator_login(&c).await;
    let csrf = csrf_of(&page_of(&c, &cookie, "/console/outbounds").await);
    let ping = |name: &'static str| ping_outbound(&c, &cookie, &csrf, name);
    let kept = || {
        let admin = sb.admin();
        let n = |mailbox: &str, folder: &str| {
            admin
                .store()
                .list(mailbox, Some(folder), &sandbox::store::ListQuery::default())
                .unwrap()
                .items
                .len()
        };
        (
            n(HELPDESK, "sentitems"),
            n(HELPDESK, "drafts"),
            n(ADELE, "inbox"),
            admin.outbox().len(),
        )
    };
    let before = kept();

    // Not granted: the helpdesk's own alias may be sent as, Adele's mailbox may not.
    for name in ["ews-out", "smtp-out"] {
        let report = ping(name).await;
        assert!(
            report.contains("id=\"ping-status\">ONLINE"),
            "{name}: {report}"
        );
        assert!(
            send_as_row(&report, HELPDESK).contains("ALLOWED"),
            "{name}: {report}"
        );
        assert!(
            send_as_row(&report, BILLING).contains("ALLOWED"),
            "{name}: {report}"
        );
        let row = send_as_row(&report, ADELE);
        assert!(row.contains("REFUSED"), "{name}: {row}");
        assert!(
            row.contains("helpdesk@contoso.example may not send as adele.vance@contoso.example"),
            "{name}: {row}"
        );
        assert!(row.contains("Add-RecipientPermission"), "{name}: {row}");
        assert!(!report.contains("NOT CHECKED"), "{name}: {report}");
        assert!(!report.contains(test_support::DEMO_SECRET));
        assert!(!report.contains("eyJ"));
    }
    assert!(
        send_as_row(&ping("smtp-out").await, BILLING).contains("MAIL FROM accepted"),
        "an SMTP verdict says what it checked"
    );

    // Granted: allowed through both.
    sb.admin()
        .add_mailbox_permission(ADELE, HELPDESK, sandbox::tenant::MailboxRight::SendAs)
        .unwrap();
    for name in ["ews-out", "smtp-out"] {
        let report = ping(name).await;
        assert!(
            send_as_row(&report, ADELE).contains("ALLOWED"),
            "{name}: {report}"
        );
    }
    assert_eq!(
        kept(),
        before,
        "(sent items, drafts, Adele's inbox, outbox): nothing sent"
    );
    drop(c);
    sb.shutdown().await;
}

/// Presses a source's "Check addresses" on the Routing page: the page.
async fn check_addresses(c: &Console, cookie: &str, source: &str) -> String {
    let page = page_of(c, cookie, "/console/routing").await;
    assert!(page.contains(&format!("id=\"check-{source}\"")), "{page}");
    let path = format!("/console/routing/{source}/check");
    let r = post_as(c, cookie, &path, &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The row of `check` (about `address`, if given) in an address check's answer.
fn finding_row<'a>(page: &'a str, check: &str, address: Option<&str>) -> &'a str {
    page.split("<tr class=\"finding\"")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .find(|r| {
            r.contains(&format!("data-check=\"{check}\""))
                && address.is_none_or(|a| r.contains(&format!("<td>{a}</td>")))
        })
        .unwrap_or_else(|| panic!("no {check} finding for {address:?}: {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_check_addresses_names_plus_addressing_off_a_pending_alias_and_a_group() {
    let sb = sandbox().await;
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let c = console(&sb, None).await;
    let r = http()
        .post(format!("{}/console/routing/helpdesk/check", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no session");
    let (cookie, _) = operator_login(&c).await;
    let r = http()
        .post(format!("{}/console/routing/helpdesk/check", c.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");

    // A ready tenant: every address check passes.
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(page.contains("id=\"address-status\">PASS"), "{page}");
    for check in ["mailbox-not-group", "plus-addressing", "alias-receives"] {
        assert!(finding_row(&page, check, None).contains(">PASS<"), "{page}");
    }

    // Plus addressing off.
    sb.admin()
        .update_org(|o| o.disable_plus_address_in_recipients = true);
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(page.contains("id=\"address-status\">WARNINGS"), "{page}");
    let row = finding_row(&page, "plus-addressing", None);
    assert!(row.contains(">FAIL<"), "{row}");
    assert!(
        row.contains("fix: Exchange Online PowerShell: Set-OrganizationConfig -DisablePlusAddressInRecipients $false"),
        "{row}"
    );
    sb.admin()
        .update_org(|o| o.disable_plus_address_in_recipients = false);
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(
        finding_row(&page, "plus-addressing", None).contains(">PASS<"),
        "{page}"
    );

    // An alias that does not receive yet.
    let fresh = "newproject@contoso.example";
    sb.admin()
        .update_org(|o| o.alias_propagation_delay_secs = 3600);
    sb.admin()
        .add_alias("helpdesk@contoso.example", fresh)
        .unwrap();
    console_config(
        &sb,
        &c.config,
        "helpdesk@contoso.example",
        &["billing@contoso.example", fresh],
        "",
    );
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    let row = finding_row(&page, "alias-receives", Some(fresh));
    assert!(row.contains(">FAIL<"), "{row}");
    assert!(row.contains("up to 24 hours"), "{row}");
    assert!(
        row.contains("fix: ") && row.contains("Set-Mailbox -Identity helpdesk@contoso.example"),
        "{row}"
    );
    assert!(
        finding_row(&page, "alias-receives", Some("billing@contoso.example")).contains(">PASS<"),
        "{page}"
    );
    sb.admin().advance_clock(3600);
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(
        finding_row(&page, "alias-receives", Some(fresh)).contains(">PASS<"),
        "{page}"
    );

    // The pickup address is a group.
    let desk = "desk@contoso.example";
    sb.admin()
        .add_group(desk, &["alex.wilber@contoso.example"])
        .unwrap();
    console_config(&sb, &c.config, desk, &[], "");
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    let row = finding_row(&page, "mailbox-not-group", Some(desk));
    assert!(row.contains(">FAIL<"), "{row}");
    assert!(
        row.contains("Get-Recipient -Identity desk@contoso.example"),
        "{row}"
    );
    sb.admin().remove_group(desk).unwrap();
    sb.admin().add_user(desk).unwrap();
    let page = check_addresses(&c, &cookie, "helpdesk").await;
    assert!(
        finding_row(&page, "mailbox-not-group", Some(desk)).contains(">PASS<"),
        "{page}"
    );
    assert!(page.contains("id=\"address-status\">PASS"), "{page}");
    assert!(!page.contains(test_support::DEMO_SECRET));
    drop(c);
    sb.shutdown().await;
}
