//! Graph change notifications (issue #20 item 3): a subscription exists only after its
//! notification URL answered the validation request; new mail in the watched folder is
//! announced with the subscription's `clientState` (never the message itself); the lifetime
//! is bounded; expiry and removal end it; and the delivery faults drop, duplicate and reorder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::*;

const HELPDESK: &str = "helpdesk@contoso.example";

/// How the receiver answers validation requests.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// The token, as `text/plain`.
    Echo,
    /// 200 with something else.
    WrongToken,
}

/// A notification endpoint on loopback: answers validation requests, hands every other POST
/// body (parsed JSON) to the test.
struct Receiver {
    url: String,
    bodies: mpsc::UnboundedReceiver<Value>,
    validations: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct Hook {
    tx: mpsc::UnboundedSender<Value>,
    answer: Answer,
    validations: Arc<Mutex<Vec<String>>>,
}

async fn hook(
    State(h): State<Hook>,
    Query(q): Query<Vec<(String, String)>>,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> axum::response::Response {
    if let Some((_, token)) = q.iter().find(|(k, _)| k == "validationToken") {
        assert!(
            headers[http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "a validation request is text/plain"
        );
        assert!(body.is_empty(), "a validation request has no body");
        h.validations.lock().unwrap().push(token.clone());
        let text = match h.answer {
            Answer::Echo => token.clone(),
            Answer::WrongToken => "nope".into(),
        };
        return ([(http::header::CONTENT_TYPE, "text/plain")], text).into_response();
    }
    let _ =
        h.tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
    http::StatusCode::ACCEPTED.into_response()
}

async fn receiver(answer: Answer) -> Receiver {
    let (tx, bodies) = mpsc::unbounded_channel();
    let validations = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(Hook {
            tx,
            answer,
            validations: validations.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://{addr}/hook"),
        bodies,
        validations,
    }
}

impl Receiver {
    /// The next body POSTed (a generous bound so a broken sandbox fails instead of hanging).
    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(30), self.bodies.recv())
            .await
            .expect("a notification arrives")
            .expect("receiver open")
    }
}

async fn call(
    sb: &sandbox::Sandbox,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = client()
        .request(method.parse().unwrap(), format!("{}{path}", sb.graph_url()))
        .bearer_auth(graph_token(sb, &["Mail.ReadWrite"]));
    let (status, _, v) = send_json(r, body).await;
    (status, v)
}

/// `POST /subscriptions` with `body`: the status and the answer.
async fn post_subscription(sb: &sandbox::Sandbox, body: Value) -> (u16, Value) {
    call(sb, "POST", "/subscriptions", Some(body)).await
}

fn in_minutes(m: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(m);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn subscription(url: &str, lifecycle: Option<&str>) -> Value {
    let mut b = json!({
        "changeType": "created",
        "notificationUrl": url,
        "resource": format!("users/{HELPDESK}/mailFolders('Inbox')/messages"),
        "expirationDateTime": in_minutes(60),
        "clientState": "s3cret-state",
    });
    if let Some(l) = lifecycle {
        b["lifecycleNotificationUrl"] = json!(l);
    }
    b
}

fn deliver(sb: &sandbox::Sandbox, subject: &str) {
    let mime =
        format!("From: c@fabrikam.example\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n\r\nbody\r\n");
    deliver_mime(sb, HELPDESK, &mime);
}

/// The id of the inbox message with `subject`.
fn id_of(sb: &sandbox::Sandbox, subject: &str) -> String {
    inbox(sb, HELPDESK)
        .into_iter()
        .find(|m| m.props.subject == subject)
        .expect("delivered")
        .id
}

#[tokio::test]
async fn a_validated_subscription_announces_new_mail_with_its_client_state() {
    let sb = start().await;
    let mut rx = receiver(Answer::Echo).await;
    let (status, sub) = post_subscription(&sb, subscription(&rx.url, None)).await;
    assert_eq!(status, 201, "{sub}");
    let validations = rx.validations.lock().unwrap().clone();
    assert_eq!(validations.len(), 1, "validated once, before it existed");
    assert!(
        validations[0].starts_with("Validation: Testing client application reachability"),
        "Graph's token, decoded by the receiver: {}",
        validations[0]
    );
    assert_eq!(sub["changeType"], "created");
    assert_eq!(sub["clientState"], "s3cret-state");
    assert_eq!(sub["applicationId"], DEMO_APP);
    let id = sub["id"].as_str().unwrap().to_string();

    deliver(&sb, "first");
    let n = rx.next().await;
    let item = &n["value"][0];
    assert_eq!(n["value"].as_array().unwrap().len(), 1);
    assert_eq!(item["subscriptionId"], id.as_str());
    assert_eq!(item["clientState"], "s3cret-state");
    assert_eq!(item["changeType"], "created");
    assert_eq!(item["tenantId"], TENANT_ID);
    assert_eq!(
        item["resourceData"]["@odata.type"],
        "#Microsoft.Graph.Message"
    );
    assert_eq!(item["resourceData"]["id"], id_of(&sb, "first").as_str());
    assert!(item["resource"].as_str().unwrap().starts_with("Users/"));
    assert!(item.get("body").is_none() && item["resourceData"].get("subject").is_none());

    // Listed, read and deleted; then no longer there.
    let (status, list) = call(&sb, "GET", "/subscriptions", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["value"][0]["id"], id.as_str());
    let (status, _) = call(&sb, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&sb, "DELETE", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&sb, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(status, 404, "{body}");
    assert!(sb.admin().subscriptions().is_empty());
}

#[tokio::test]
async fn a_notification_url_that_fails_validation_gets_no_subscription() {
    let sb = start().await;
    let rx = receiver(Answer::WrongToken).await;
    let (status, body) = post_subscription(&sb, subscription(&rx.url, None)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "ValidationError");
    assert!(sb.admin().subscriptions().is_empty());

    // A lifecycle URL is validated too.
    let good = receiver(Answer::Echo).await;
    let (status, body) = post_subscription(&sb, subscription(&good.url, Some(&rx.url))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "ValidationError");

    // Nobody listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let (status, body) = post_subscription(&sb, subscription(&closed, None)).await;
    assert_eq!(status, 400, "{body}");
    assert!(sb.admin().subscriptions().is_empty());
}

#[tokio::test]
async fn the_lifetime_is_bounded_renewed_by_patch_and_ends_at_expiry() {
    let sb = start().await;
    let rx = receiver(Answer::Echo).await;
    let mut b = subscription(&rx.url, None);
    b["expirationDateTime"] = json!(in_minutes(10_080 + 5));
    let (status, body) = post_subscription(&sb, b.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "ExtensionError");
    assert_eq!(
        body["error"]["message"],
        "Subscription expiration can only be 10080 minutes in the future."
    );

    b["expirationDateTime"] = json!(in_minutes(30));
    let (status, sub) = post_subscription(&sb, b).await;
    assert_eq!(status, 201, "{sub}");
    let id = sub["id"].as_str().unwrap().to_string();
    let path = format!("/subscriptions/{id}");
    let (status, body) = call(
        &sb,
        "PATCH",
        &path,
        Some(json!({"expirationDateTime": in_minutes(20_000)})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("ExtensionError"))
    );
    let renewed = in_minutes(10_000);
    let (status, body) = call(
        &sb,
        "PATCH",
        &path,
        Some(json!({"expirationDateTime": renewed})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["expirationDateTime"], sub["expirationDateTime"]);
    let (status, body) = call(&sb, "PATCH", &path, Some(json!({"clientState": "other"}))).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("InvalidRequest"))
    );

    // Past its expiry the subscription is gone.
    sb.admin().advance_clock(10_001 * 60);
    let (status, _) = call(&sb, "GET", &path, None).await;
    assert_eq!(status, 404);
    assert!(sb.admin().subscriptions().is_empty());
}

#[tokio::test]
async fn removal_and_lifecycle_events_reach_the_lifecycle_url() {
    let sb = start().await;
    let rx = receiver(Answer::Echo).await;
    let mut life = receiver(Answer::Echo).await;
    let (status, sub) = post_subscription(&sb, subscription(&rx.url, Some(&life.url))).await;
    assert_eq!(status, 201, "{sub}");
    let id = sub["id"].as_str().unwrap();
    assert_eq!(sub["lifecycleNotificationUrl"], life.url.as_str());

    sb.admin()
        .lifecycle_event(id, sandbox::LifecycleEvent::Missed)
        .unwrap();
    let n = life.next().await;
    assert_eq!(n["value"][0]["lifecycleEvent"], "missed");
    assert_eq!(n["value"][0]["clientState"], "s3cret-state");
    assert_eq!(n["value"][0]["subscriptionId"], id);
    assert_eq!(sb.admin().subscriptions().len(), 1, "missed keeps it");

    let r = admin_json(
        &sb,
        &json!({"op": "remove_subscription", "id": id}).to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let n = life.next().await;
    assert_eq!(n["value"][0]["lifecycleEvent"], "subscriptionRemoved");
    assert!(sb.admin().subscriptions().is_empty());
    let (status, _) = call(&sb, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn delivery_faults_drop_duplicate_and_reorder() {
    let sb = start().await;
    let mut rx = receiver(Answer::Echo).await;
    let (status, sub) = post_subscription(&sb, subscription(&rx.url, None)).await;
    assert_eq!(status, 201, "{sub}");
    let msg_id = |n: &Value| {
        n["value"][0]["resourceData"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Dropped: counted, never sent; the next one (faults off) arrives.
    let mut faults = sandbox::NotificationFaults::default();
    faults.drop_rate = 1.0;
    sb.admin().set_notification_faults(faults);
    deliver(&sb, "dropped");
    for _ in 0..600 {
        if sb.admin().notification_stats().dropped == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sb.admin().notification_stats().dropped, 1);
    sb.admin().set_notification_faults(Default::default());
    deliver(&sb, "after");
    assert_eq!(msg_id(&rx.next().await), id_of(&sb, "after"));

    // Duplicated: the same notification twice.
    let mut faults = sandbox::NotificationFaults::default();
    faults.duplicate_rate = 1.0;
    sb.admin().set_notification_faults(faults);
    deliver(&sb, "twice");
    let (a, b) = (rx.next().await, rx.next().await);
    assert_eq!(a, b);
    assert_eq!(msg_id(&a), id_of(&sb, "twice"));

    // Reordered: each pair arrives swapped.
    let mut faults = sandbox::NotificationFaults::default();
    faults.reorder = true;
    sb.admin().set_notification_faults(faults);
    deliver(&sb, "one");
    deliver(&sb, "two");
    let (first, second) = (msg_id(&rx.next().await), msg_id(&rx.next().await));
    assert_eq!((first, second), (id_of(&sb, "two"), id_of(&sb, "one")));

    // Delayed: still delivered.
    let mut faults = sandbox::NotificationFaults::default();
    faults.max_delay_ms = 200;
    faults.seed = 3;
    sb.admin().set_notification_faults(faults);
    deliver(&sb, "late");
    assert_eq!(msg_id(&rx.next().await), id_of(&sb, "late"));
}

#[tokio::test]
async fn only_the_watched_folder_is_announced() {
    let sb = start().await;
    let mut rx = receiver(Answer::Echo).await;
    let mut b = subscription(&rx.url, None);
    b["resource"] = json!(format!("/users/{HELPDESK}/mailFolders/archive/messages"));
    let (status, sub) = post_subscription(&sb, b).await;
    assert_eq!(status, 201, "{sub}");
    deliver(&sb, "inbox only");
    // Moving it into the watched folder creates it there.
    let id = id_of(&sb, "inbox only");
    let (status, moved) = call(
        &sb,
        "POST",
        &format!("/users/{HELPDESK}/messages/{id}/move"),
        Some(json!({"destinationId": "archive"})),
    )
    .await;
    assert_eq!(status, 201, "{moved}");
    let n = rx.next().await;
    // The inbox delivery came first and was not announced: the first notification is the move.
    assert_eq!(n["value"][0]["resourceData"]["id"], moved["id"]);
}
