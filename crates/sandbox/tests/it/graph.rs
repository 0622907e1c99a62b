//! The sandbox's Graph v1.0 mail endpoints, exercised over HTTP.

use base64::Engine;
use sandbox::{ApiResource, FaultKind, FaultPlan, FaultRule, Protocol};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{DEMO_APP, delegated_token, folder_count, graph_token_rw, send_json, start};

const HELPDESK: &str = "helpdesk@contoso.example";

struct G {
    sb: sandbox::Sandbox,
    http: reqwest::Client,
    token: String,
}

impl G {
    async fn new() -> G {
        let sb = start().await;
        let token = graph_token_rw(&sb);
        G {
            sb,
            http: reqwest::Client::new(),
            token,
        }
    }

    /// A request to `url` with the app's token and nothing else.
    fn raw(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// [`G::call`] on a path under the helpdesk mailbox (`/users/helpdesk@…{rest}`).
    async fn helpdesk(
        &self,
        method: &str,
        rest: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.call(method, &format!("/users/{HELPDESK}{rest}"), body)
            .await
    }

    /// [`G::raw`] on a path under the helpdesk mailbox.
    fn helpdesk_raw(&self, method: reqwest::Method, rest: &str) -> reqwest::RequestBuilder {
        self.raw(method, &self.url(&format!("/users/{HELPDESK}{rest}")))
    }

    /// Creates folder `name` in the helpdesk mailbox, under `parent` (the top level when `None`).
    async fn create_folder(
        &self,
        parent: Option<&str>,
        name: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let rest = match parent {
            Some(p) => format!("/mailFolders/{p}/childFolders"),
            None => "/mailFolders".to_owned(),
        };
        self.helpdesk("POST", &rest, Some(json!({ "displayName": name })))
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.graph_url())
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .request(method.parse().expect("method"), self.url(path))
            .bearer_auth(&self.token)
            .header("Prefer", "IdType=\"ImmutableId\"");
        send_json(r, body).await
    }
}

#[tokio::test]
async fn folders_counts_and_creation() {
    let g = G::new().await;
    let (s, h, inbox) = g.helpdesk("GET", "/mailFolders/inbox", None).await;
    assert_eq!(s, 200);
    assert!(h.contains_key("request-id"));
    assert_eq!(inbox["displayName"], "Inbox");
    assert_eq!(inbox["totalItemCount"], 2);
    assert_eq!(inbox["unreadItemCount"], 2);
    let (s, _, f) = g.create_folder(None, "Processed").await;
    assert_eq!(s, 201);
    let (s, _, dup) = g.create_folder(None, "processed").await;
    assert_eq!(s, 409);
    assert_eq!(dup["error"]["code"], "ErrorFolderExists");
    let (_, _, found) = g
        .helpdesk(
            "GET",
            "/mailFolders?$filter=displayName%20eq%20'Processed'",
            None,
        )
        .await;
    assert_eq!(found["value"][0]["id"], f["id"]);
    let (s, _, child) = g
        .create_folder(Some(f["id"].as_str().unwrap_or("")), "2026")
        .await;
    assert_eq!(s, 201);
    assert_eq!(child["parentFolderId"], f["id"]);
}

#[tokio::test]
async fn listing_filters_orders_and_pages() {
    let g = G::new().await;
    for i in 0..5 {
        g.sb.admin()
            .inject_mime(
                HELPDESK,
                &format!("Subject: n{i}\r\nMessage-ID: <n{i}@x>\r\n\r\nb\r\n"),
            )
            .expect("inject");
    }
    let base = format!("/users/{HELPDESK}/mailFolders/inbox/messages");
    let (s, _, e) = g
        .call(
            "GET",
            &format!("{base}?$filter=isRead%20eq%20false&$orderby=receivedDateTime%20asc"),
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(e["error"]["code"], "InefficientFilter");
    let (s, _, _) = g.call("GET", &format!("{base}?$top=1001"), None).await;
    assert_eq!(s, 400);
    let q = "$filter=receivedDateTime%20ge%201900-01-01T00:00:00Z%20and%20isRead%20eq%20false&$orderby=receivedDateTime%20asc&$top=4&$select=subject,internetMessageId";
    let (s, _, p1) = g.call("GET", &format!("{base}?{q}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(p1["value"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        p1["value"][0]["subject"], "Invoice 4711 is wrong",
        "oldest first"
    );
    assert!(
        p1["value"][0].get("body").is_none(),
        "only selected properties"
    );
    assert!(p1["value"][0].get("internetMessageHeaders").is_none());
    let next = p1["@odata.nextLink"]
        .as_str()
        .expect("next link")
        .to_owned();
    assert!(next.starts_with(&g.sb.graph_url()));
    let resp = g
        .raw(reqwest::Method::GET, &next)
        .send()
        .await
        .expect("next");
    let p2: Value = resp.json().await.expect("json");
    assert_eq!(p2["value"].as_array().map(Vec::len), Some(3));
    assert!(p2.get("@odata.nextLink").is_none());
    let id = p2["value"][0]["id"].as_str().expect("id").to_owned();
    let (_, _, with_headers) = g
        .helpdesk(
            "GET",
            &format!("/messages/{id}?$select=internetMessageHeaders"),
            None,
        )
        .await;
    assert!(
        with_headers["internetMessageHeaders"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    );
}

#[tokio::test]
async fn mutations_mime_and_ids() {
    let g = G::new().await;
    let (_, _, list) = g.helpdesk("GET", "/messages?$select=id", None).await;
    let id = list["value"][0]["id"].as_str().expect("id").to_owned();
    let resp = g
        .helpdesk_raw(reqwest::Method::GET, &format!("/messages/{id}/$value"))
        .send()
        .await
        .expect("value");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert!(resp.text().await.expect("text").contains("Message-ID:"));
    let (s, _, m) = g
        .helpdesk(
            "PATCH",
            &format!("/messages/{id}"),
            Some(json!({"isRead": true})),
        )
        .await;
    assert_eq!((s, m["isRead"].clone()), (200, json!(true)));
    let (s, _, moved) = g
        .helpdesk(
            "POST",
            &format!("/messages/{id}/move"),
            Some(json!({"destinationId": "archive"})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(moved["id"], id.as_str(), "immutable ids survive moves");
    // Without the immutable-id preference the id changes on move.
    let r = g
        .helpdesk_raw(reqwest::Method::POST, &format!("/messages/{id}/move"))
        .json(&json!({"destinationId": "inbox"}))
        .send()
        .await
        .expect("move");
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.expect("json");
    assert_ne!(v["id"], id.as_str());
    let (s, _, _) = g.helpdesk("DELETE", &format!("/messages/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, _, e) = g.helpdesk("GET", "/messages/nope", None).await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "ErrorItemNotFound");
    assert!(e["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn auth_and_mailbox_errors() {
    let g = G::new().await;
    let r = g
        .http
        .get(g.url(&format!("/users/{HELPDESK}/messages")))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap_or("")
            .starts_with("Bearer")
    );
    let (s, _, e) = g
        .call("GET", "/users/nobody@contoso.example/messages", None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "ErrorInvalidUser");
    let (s, _, _) = g.call("GET", "/me/messages", None).await;
    assert_eq!(s, 400, "/me needs a delegated token");
    g.sb.admin().revoke_admin_consent(DEMO_APP).expect("revoke");
    let (s, h, e) = g.helpdesk("GET", "/messages", None).await;
    assert_eq!(s, 401);
    assert!(h.contains_key("www-authenticate"));
    assert_eq!(e["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn throttling_and_faults() {
    let g = G::new().await;
    g.sb.admin().set_faults(FaultPlan::new([
        FaultRule::next(
            Protocol::Graph,
            1,
            FaultKind::Throttle {
                retry_after_secs: 5,
            },
        ),
        FaultRule::next(Protocol::Graph, 1, FaultKind::GatewayTimeout504),
    ]));
    let path = format!("/users/{HELPDESK}/mailFolders/inbox");
    let (s, h, e) = g.call("GET", &path, None).await;
    assert_eq!((s, h["retry-after"].to_str().unwrap_or("")), (429, "5"));
    assert_eq!(e["error"]["code"], "ApplicationThrottled");
    let (s, _, _) = g.call("GET", &path, None).await;
    assert_eq!(s, 504);
    let (s, _, _) = g.call("GET", &path, None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn send_mail_json_and_mime() {
    let g = G::new().await;
    let (s, _, _) = g
        .helpdesk("POST", "/sendMail",
            Some(json!({"message": {"subject": "json", "body": {"contentType": "Text", "content": "hi"},
                "toRecipients": [{"emailAddress": {"address": "adele.vance@contoso.example"}}]}})),
        )
        .await;
    assert_eq!(s, 202);
    let mime = "From: helpdesk@contoso.example\r\nTo: adele.vance@contoso.example\r\nSubject: mime\r\n\r\nhello\r\n";
    let send_text = |body: String| {
        g.helpdesk_raw(reqwest::Method::POST, "/sendMail")
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(mime);
    let r = send_text(b64).await.expect("send");
    assert_eq!(r.status().as_u16(), 202);
    let r = send_text("not base64 !!!".into()).await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "ErrorMimeContentInvalidBase64String");
    let (s, _, e) = g
        .helpdesk(
            "POST",
            "/sendMail",
            Some(json!({"message": {"subject": "none", "toRecipients": []}})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("ErrorInvalidRecipients"))
    );
    let adele =
        g.sb.admin()
            .store()
            .folder("adele.vance@contoso.example", "inbox")
            .expect("folder");
    assert_eq!(adele.total_count, 2);
    let sent =
        g.sb.admin()
            .store()
            .folder(HELPDESK, "sentitems")
            .expect("folder");
    assert_eq!(sent.total_count, 2, "saveToSentItems defaults to true");
}

#[tokio::test]
async fn draft_send_needs_content_length() {
    let g = G::new().await;
    let (s, _, d) = g
        .helpdesk("POST", "/messages",
            Some(json!({"subject": "draft", "toRecipients": [{"emailAddress": {"address": "adele.vance@contoso.example"}}]})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(d["isDraft"], true);
    let id = d["id"].as_str().expect("id").to_owned();
    // A raw POST without Content-Length, as some clients send it.
    let addr = g.sb.http_addr();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST /v1.0/users/{HELPDESK}/messages/{id}/send HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        g.token
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    let r = g
        .helpdesk_raw(reqwest::Method::POST, &format!("/messages/{id}/send"))
        .header("Content-Length", "0")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(folder_count(&g.sb, HELPDESK, "drafts"), 0);
}

#[tokio::test]
async fn batch_limits_dependencies_and_inner_statuses() {
    let g = G::new().await;
    let reqs: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{HELPDESK}/mailFolders/inbox")}))
        .collect();
    let (s, _, _) = g
        .call("POST", "/$batch", Some(json!({"requests": reqs})))
        .await;
    assert_eq!(s, 400);
    g.sb.admin().set_faults(FaultPlan::new([FaultRule::next(
        Protocol::Graph,
        1,
        FaultKind::Throttle {
            retry_after_secs: 2,
        },
    )]));
    // Both batches: a (throttled), b (missing), c (depends on b), and a last item d.
    let batch = |d: Value| {
        Some(json!({"requests": [
            {"id": "a", "method": "GET", "url": format!("/users/{HELPDESK}/mailFolders/inbox")},
            {"id": "b", "method": "GET", "url": format!("/users/{HELPDESK}/messages/missing")},
            {"id": "c", "method": "GET", "url": format!("/users/{HELPDESK}/mailFolders/inbox"), "dependsOn": ["b"]},
            d
        ]}))
    };
    let patch_without_content_type = json!({"id": "d", "method": "PATCH",
        "url": format!("/users/{HELPDESK}/messages/missing"), "body": {"isRead": true}});
    let (s, _, b) = g
        .call("POST", "/$batch", batch(patch_without_content_type))
        .await;
    assert_eq!(s, 400, "a body without Content-Type is refused");
    assert_eq!(b["error"]["code"], "BadRequest");
    let list = json!({"id": "d", "method": "GET",
        "url": format!("/users/{HELPDESK}/messages?$top=1&$select=id")});
    let (s, _, b) = g.call("POST", "/$batch", batch(list)).await;
    assert_eq!(s, 200);
    let status = |id: &str| {
        b["responses"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["id"] == id))
            .map(|x| x["status"].clone())
    };
    assert_eq!(
        status("a"),
        Some(json!(429)),
        "the first inner request is throttled"
    );
    assert_eq!(status("b"), Some(json!(404)));
    assert_eq!(status("c"), Some(json!(424)));
    assert_eq!(status("d"), Some(json!(200)));
}

#[tokio::test]
async fn delta_links_and_removals() {
    let g = G::new().await;
    let path = format!("/users/{HELPDESK}/mailFolders/inbox/messages/delta?$select=subject");
    let (s, _, first) = g.call("GET", &path, None).await;
    assert_eq!(s, 200);
    assert_eq!(first["value"].as_array().map(Vec::len), Some(2));
    let delta = first["@odata.deltaLink"]
        .as_str()
        .expect("delta link")
        .to_owned();
    let gone = first["value"][0]["id"].as_str().expect("id").to_owned();
    let (s, _, _) = g
        .helpdesk("DELETE", &format!("/messages/{gone}"), None)
        .await;
    assert_eq!(s, 204);
    let r = g
        .raw(reqwest::Method::GET, &delta)
        .header("Prefer", "IdType=\"ImmutableId\"")
        .send()
        .await
        .expect("delta");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["value"][0]["id"], gone.as_str());
    assert_eq!(v["value"][0]["@removed"]["reason"], "deleted");
    let bad = delta.replace("deltatoken=", "deltatoken=99999");
    let r = g
        .raw(reqwest::Method::GET, &bad)
        .send()
        .await
        .expect("delta");
    assert_eq!(r.status().as_u16(), 410);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn a_mailbox_outside_the_app_access_policy_is_forbidden() {
    use sandbox::tenant::{AppAccessPolicy, PolicyMode};
    let g = G::new().await;
    g.sb.admin().update_org(|o| {
        o.app_access_policies.push(AppAccessPolicy::new(
            DEMO_APP,
            [HELPDESK],
            PolicyMode::RestrictAccess,
        ))
    });
    let (s, _, _) = g.helpdesk("GET", "/mailFolders/inbox", None).await;
    assert_eq!(s, 200);
    let (s, _, e) = g
        .call(
            "GET",
            "/users/adele.vance@contoso.example/mailFolders/inbox",
            None,
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(e["error"]["code"], "ErrorAccessDenied");
}

#[tokio::test]
async fn send_on_behalf_sets_the_sender() {
    let g = G::new().await;
    g.sb.admin().update_tenant(|t| {
        if let Some(m) = t.mailbox_mut("adele.vance@contoso.example") {
            m.send_on_behalf.push(HELPDESK.into());
        }
    });
    let token = delegated_token(&g.sb, HELPDESK, &["Mail.Send"], ApiResource::Graph);
    let r = g
        .http
        .post(g.url("/me/sendMail"))
        .bearer_auth(&token)
        .json(&json!({"message": {"subject": "obo", "from": {"emailAddress": {"address": "adele.vance@contoso.example"}},
            "toRecipients": [{"emailAddress": {"address": "alex.wilber@contoso.example"}}]}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 202);
    let inbox =
        g.sb.admin()
            .store()
            .list(
                "alex.wilber@contoso.example",
                Some("inbox"),
                &sandbox::store::ListQuery::default(),
            )
            .expect("list");
    let p = &inbox.items[0].props;
    assert_eq!(
        p.from.as_ref().map(|f| f.address.as_str()),
        Some("adele.vance@contoso.example")
    );
    assert_eq!(
        p.sender.as_ref().map(|f| f.address.as_str()),
        Some(HELPDESK)
    );
}
