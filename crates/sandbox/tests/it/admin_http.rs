//! Who may use the HTTP admin API (`/_sandbox/*`): JSON only, the sandbox's own Host and Origin,
//! the admin token, and the opt-in for binding beyond loopback (security issue #24, item 3).

use serde_json::{Value, json};

use crate::common::*;

const STOLEN: &str = "attacker-chosen-secret";

/// The attack of issue #24: a page posts this as a `text/plain` form.
fn add_secret_command() -> String {
    json!({"op": "add_secret", "app": DEMO_APP,
           "secret": {"id": "attack", "value": STOLEN}})
    .to_string()
}

/// A client-credentials token request with `secret` for the demo app.
async fn token_with(sb: &sandbox::Sandbox, secret: &str) -> (u16, Value) {
    client_credentials(&sb.token_url(TENANT), DEMO_APP, secret, GRAPH_DEFAULT).await
}

/// Sends a request, returns (status, JSON body).
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn admin_post(sb: &sandbox::Sandbox, body: String) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/_sandbox/admin", sb.base_url()))
        .body(body)
}

/// [`admin_post`] as `application/json`.
fn admin_post_json(sb: &sandbox::Sandbox, body: String) -> reqwest::RequestBuilder {
    admin_post(sb, body).header("content-type", "application/json")
}

/// `GET /_sandbox/tenant`.
fn tenant_get(sb: &sandbox::Sandbox) -> reqwest::RequestBuilder {
    client().get(format!("{}/_sandbox/tenant", sb.base_url()))
}

fn secret_count(sb: &sandbox::Sandbox) -> usize {
    sb.admin()
        .tenant()
        .app(DEMO_APP)
        .map(|a| a.secrets.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_cross_site_text_plain_add_secret_is_refused_and_the_secret_does_not_work() {
    let sb = start().await;
    let before = secret_count(&sb);
    let (s, v) = token_with(&sb, STOLEN).await;
    assert_aad(s, &v, 401, "invalid_client", 7000215);

    // As a browser sends a `<form enctype="text/plain">` from another site: the Origin gives
    // it away.
    let (s, v) = send(
        admin_post(&sb, add_secret_command())
            .header("content-type", "text/plain")
            .header("origin", "https://evil.example"),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("foreign_origin")),
        "{v}"
    );
    // Without Origin (an old browser, a plugin): the content type alone refuses it.
    for ct in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ] {
        let mut req = admin_post(&sb, add_secret_command());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let (s, v) = send(req).await;
        assert_eq!(s, 415, "{ct:?}: {v}");
        assert_eq!(v["ok"], false);
        assert_eq!(v["code"], "unsupported_media_type");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("application/json")),
            "{v}"
        );
    }
    assert_eq!(secret_count(&sb), before, "no secret was added");
    let (s, v) = token_with(&sb, STOLEN).await;
    assert_aad(s, &v, 401, "invalid_client", 7000215);

    // The same command as JSON (what the sandbox's own callers send) works, so the refusals
    // above are about how it was sent, not what it says.
    let (s, v) = send(
        admin_post(&sb, add_secret_command())
            .header("content-type", "application/json; charset=utf-8"),
    )
    .await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    assert_eq!(secret_count(&sb), before + 1);
    let (s, v) = token_with(&sb, STOLEN).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token"].is_string());
}

#[tokio::test]
async fn admin_routes_refuse_a_host_that_is_not_the_sandbox() {
    let sb = start().await;
    let port = sb.http_addr().port();
    let alias = json!({"op": "add_alias", "mailbox": "helpdesk@contoso.example",
                       "alias": "rebound@contoso.example"})
    .to_string();
    // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        format!("0.0.0.0:{port}"),
        "localhost".to_string(),
    ] {
        for path in ["/_sandbox/tenant", "/_sandbox/requests", "/_sandbox/outbox"] {
            let (s, v) = send(
                client()
                    .get(format!("{}{path}", sb.base_url()))
                    .header("host", &host),
            )
            .await;
            assert_eq!(
                (s, v["code"].as_str()),
                (403, Some("wrong_host")),
                "{host} {path}"
            );
            assert!(
                v["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(&format!("127.0.0.1:{port}"))),
                "the error says which addresses are allowed: {v}"
            );
        }
        let (s, v) = send(admin_post_json(&sb, alias.clone()).header("host", &host)).await;
        assert_eq!((s, v["code"].as_str()), (403, Some("wrong_host")), "{host}");
    }
    assert!(
        sb.admin()
            .tenant()
            .mailbox("rebound@contoso.example", i64::MAX)
            .is_none(),
        "a refused command changes nothing"
    );
    // The sandbox's own names are fine.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (s, _) = send(tenant_get(&sb).header("host", &host)).await;
        assert_eq!(s, 200, "{host}");
    }
    // The mail and identity endpoints are not admin routes and are unaffected.
    let (s, _) = send(
        client()
            .get(format!(
                "{}/{TENANT}/v2.0/.well-known/openid-configuration",
                sb.base_url()
            ))
            .header("host", format!("evil.example:{port}")),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn admin_routes_refuse_a_foreign_origin_and_accept_their_own() {
    let sb = start().await;
    let port = sb.http_addr().port();
    let clear = || json!({"op": "clear_request_log"}).to_string();
    for origin in [
        "https://evil.example".to_string(),
        format!("http://evil.example:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_string(),
    ] {
        for req in [tenant_get(&sb), admin_post_json(&sb, clear())] {
            let (s, v) = send(req.header("origin", &origin)).await;
            assert_eq!(
                (s, v["code"].as_str()),
                (403, Some("foreign_origin")),
                "{origin}"
            );
        }
    }
    // Same origin (a page served by the sandbox itself) is accepted.
    for origin in [
        sb.base_url().to_string(),
        format!("http://localhost:{port}"),
    ] {
        let (s, v) = send(tenant_get(&sb).header("origin", &origin)).await;
        assert_eq!(s, 200, "{origin}: {v}");
        let (s, v) = send(admin_post_json(&sb, clear()).header("origin", &origin)).await;
        assert_eq!((s, &v["ok"]), (200, &json!(true)), "{origin}: {v}");
    }
}

#[tokio::test]
async fn an_admin_token_is_required_when_configured() {
    const TOKEN: &str = "it-admin-token-0123456789";
    let sb = sandbox::Sandbox::builder()
        .admin_token(TOKEN)
        .start()
        .await
        .expect("sandbox starts");
    assert_eq!(sb.admin_token().map(|t| t.expose()), Some(TOKEN));
    assert!(
        !format!("{sb:?}").contains(TOKEN),
        "the token is not in Debug"
    );
    let tenant_url = format!("{}/_sandbox/tenant", sb.base_url());
    let alias = || {
        json!({"op": "add_alias", "mailbox": "helpdesk@contoso.example",
               "alias": "tokened@contoso.example"})
        .to_string()
    };
    for auth in [
        None,
        Some("Bearer wrong-token".to_string()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ] {
        let mut get = client().get(&tenant_url);
        let mut post = admin_post_json(&sb, alias());
        if let Some(a) = &auth {
            get = get.header("authorization", a);
            post = post.header("authorization", a);
        }
        let resp = get.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], "unauthorized");
        assert!(!v.to_string().contains(TOKEN), "the token is not echoed");
        assert_eq!(send(post).await.0, 401, "{auth:?}");
    }
    assert!(
        sb.admin()
            .tenant()
            .mailbox("tokened@contoso.example", i64::MAX)
            .is_none()
    );
    let bearer = format!("Bearer {TOKEN}");
    let (s, _) = send(client().get(&tenant_url).header("authorization", &bearer)).await;
    assert_eq!(s, 200);
    let (s, v) = send(admin_post_json(&sb, alias()).header("authorization", &bearer)).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    // The token does not excuse a foreign Host.
    let (s, _) = send(
        client()
            .get(&tenant_url)
            .header("authorization", &bearer)
            .header("host", "evil.example"),
    )
    .await;
    assert_eq!(s, 403);
    // The in-process admin handle needs no token.
    sb.admin()
        .add_alias("helpdesk@contoso.example", "inprocess@contoso.example")
        .unwrap();
}

#[tokio::test]
async fn by_default_on_loopback_no_token_is_needed() {
    let sb = start().await;
    assert!(sb.admin_token().is_none());
    let (s, _) = get_json(&format!("{}/_sandbox/tenant", sb.base_url())).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn binding_beyond_loopback_needs_an_explicit_opt_in() {
    use std::net::SocketAddr;
    // Nothing is bound: the builder refuses before binding.
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let e = sandbox::Sandbox::builder()
            .http_addr(addr)
            .start()
            .await
            .expect_err("refused");
        assert!(
            matches!(e, sandbox::StartError::NotLoopback { what: "HTTP", addr: a } if a == addr),
            "{e}"
        );
        assert!(e.to_string().contains("allow_non_loopback"), "{e}");
        let e = sandbox::Sandbox::builder()
            .smtp_addr(Some(addr))
            .start()
            .await
            .expect_err("refused");
        assert!(
            matches!(e, sandbox::StartError::NotLoopback { what: "SMTP", .. }),
            "{e}"
        );
    }
    // An unusable token is refused with a clear error, not silently ignored.
    let e = sandbox::Sandbox::builder()
        .admin_token("")
        .start()
        .await
        .expect_err("refused");
    assert!(matches!(e, sandbox::StartError::AdminToken(_)), "{e}");
    // The standalone binary refuses too, and says how to opt in.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_m365mail-sandbox"))
        .args(["--port", "0", "--smtp-port", "0", "--bind", "0.0.0.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-non-loopback"), "{err}");
}

/// The switches `m365mail doctor`'s tests turn (issue #19, item 3) work over HTTP too: assignment
/// required and assignments, removing an alias and a group, application access policies.
#[tokio::test]
async fn the_doctor_misconfigurations_switch_on_and_off_over_http() {
    let sb = start().await;
    let post = |cmd: Value| {
        let sb = &sb;
        async move { send(admin_post_json(sb, cmd.to_string())).await }
    };
    let app = || sb.admin().tenant().app(DEMO_APP).cloned().unwrap();
    assert_eq!(
        post(json!({"op": "set_assignment_required", "app": DEMO_APP, "required": true}))
            .await
            .0,
        200
    );
    assert!(app().user_assignment_required);
    post(json!({"op": "assign_user", "app": DEMO_APP, "principal": ALEX})).await;
    assert_eq!(
        post(json!({"op": "unassign_user", "app": DEMO_APP, "principal": ALEX}))
            .await
            .0,
        200
    );
    assert!(app().assigned.is_empty());
    let (status, body) =
        post(json!({"op": "unassign_user", "app": DEMO_APP, "principal": ALEX})).await;
    assert_eq!(status, 404, "{body}");
    post(json!({"op": "set_assignment_required", "app": DEMO_APP, "required": false})).await;
    assert!(!app().user_assignment_required);

    let helpdesk = "helpdesk@contoso.example";
    let (status, body) =
        post(json!({"op": "remove_alias", "mailbox": helpdesk, "alias": "sales@contoso.example"}))
            .await;
    assert_eq!(status, 200, "{body}");
    let t = sb.admin().tenant();
    assert!(t.resolve("sales@contoso.example", i64::MAX).is_none());

    assert_eq!(
        post(json!({"op": "remove_group", "group": "team@contoso.example"}))
            .await
            .0,
        200
    );
    assert!(sb.admin().tenant().group("team@contoso.example").is_none());

    let policy = json!({"app_id": DEMO_APP, "scope": [ALEX], "mode": "RestrictAccess"});
    let (status, body) = post(json!({"op": "add_app_access_policy", "policy": policy})).await;
    assert_eq!(status, 200, "{body}");
    let t = sb.admin().tenant();
    let mb = t.mailbox(helpdesk, i64::MAX).unwrap();
    assert!(!t.app_policy_allows(DEMO_APP, mb));
    assert_eq!(
        post(json!({"op": "remove_app_access_policies", "app_id": DEMO_APP}))
            .await
            .0,
        200
    );
    let t = sb.admin().tenant();
    assert!(t.app_policy_allows(DEMO_APP, t.mailbox(helpdesk, i64::MAX).unwrap()));
}

/// Exchange Online's pace over HTTP: a latency set with `set_latency`, slot holds recorded
/// with `record_slots` and read back from `GET /_sandbox/slots`, each at least the latency.
#[tokio::test]
async fn latency_and_slot_recording_are_driven_over_http() {
    let sb = start().await;
    for cmd in [
        r#"{"op":"set_latency","latency":{"median_ms":50,"sigma":0.0,"max_ms":50}}"#,
        r#"{"op":"record_slots","on":true}"#,
    ] {
        let r = admin_json(&sb, cmd).await;
        assert_eq!(r.status(), 200, "{cmd}: {}", r.text().await.unwrap());
    }
    let graph = graph_token(&sb, &["Mail.ReadWrite"]);
    let r = client()
        .get(format!(
            "{}/users/helpdesk@contoso.example/mailFolders/inbox",
            sb.graph_url()
        ))
        .bearer_auth(&graph)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let slots: Value = client()
        .get(format!("{}/_sandbox/slots", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slots = slots.as_array().unwrap();
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!(slots[0]["protocol"], "graph");
    let held = slots[0]["end_us"].as_u64().unwrap() - slots[0]["start_us"].as_u64().unwrap();
    assert!(held >= 50_000, "{held}");
}
