//! graph-mail against the in-process sandbox: the conformance kit, throttling and fault paths,
//! delta, upload sessions, and the request count of a 1,000-message ingest.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector::conformance::run;
use connector::{
    Acknowledgement, Envelope, ErrorKind, MessageId, MessageOutbound, MessageSource,
    OutgoingMessage,
};
use graph_mail::retry::{RecordingSleeper, RetryPolicy, SeededJitter};
use graph_mail::{
    Endpoint, FnTokenSource, GraphClient, GraphOutbound, GraphSource, Mailbox, SourceConfig,
};
use sandbox::store::ListQuery;
use sandbox::{ApiResource, FaultKind, FaultPlan, FaultRule, Protocol, Sandbox, Trigger};
use test_support::harness::{GRAPH_UNKNOWN_ID, assert_ran};
use test_support::scripted::{self, Reply};
use test_support::tokens::delegated;
use test_support::{SandboxHarness, SandboxTokens};

const APP: &str = test_support::DEMO_APP;

struct Env {
    sb: Sandbox,
    sleeper: Arc<RecordingSleeper>,
    tokens: Arc<SandboxTokens>,
}

async fn env() -> Env {
    let sb = test_support::start().await;
    Env {
        tokens: SandboxTokens::graph_app(&sb),
        sb,
        sleeper: Arc::new(RecordingSleeper::default()),
    }
}

impl Env {
    fn client(&self, mailbox: Mailbox) -> GraphClient {
        let ep = Endpoint::custom(&self.sb.graph_url(), mailbox).expect("endpoint");
        GraphClient::builder(ep, self.tokens.clone())
            .sleeper(self.sleeper.clone())
            .jitter(Arc::new(SeededJitter::new(1)))
            .build()
            .expect("client")
    }

    fn source(&self, address: &str) -> GraphSource {
        GraphSource::new(self.client(Mailbox::user(address)), SourceConfig::default())
    }

    fn seed(&self, to: &str, n: usize, tag: &str) {
        for i in 0..n {
            let mime = format!(
                "Message-ID: <{tag}-{i}@test.invalid>\r\nFrom: c{i}@fabrikam.example\r\nTo: {to}\r\nSubject: {tag} {i}\r\n\r\nbody {i}\r\n"
            );
            self.sb
                .admin()
                .inject("c@fabrikam.example", &[to.to_owned()], mime.as_bytes())
                .expect("inject");
        }
    }

    /// Faults for Graph requests from now on (fault seed 1).
    fn faults(&self, rules: Vec<FaultRule>) {
        self.sb.admin().set_faults(FaultPlan { seed: 1, rules });
    }

    /// `kind` on the next `n` Graph requests.
    fn fault_next(&self, n: u32, kind: FaultKind) {
        self.faults(vec![FaultRule::next(Protocol::Graph, n, kind)]);
    }

    /// The messages in `address`'s Inbox, read from the store.
    fn inbox(&self, address: &str) -> Vec<sandbox::store::Message> {
        self.sb
            .admin()
            .store()
            .list(address, Some("inbox"), &ListQuery::default())
            .expect("list")
            .items
    }

    /// The conformance kit's harness on `address`, able to break sign-in.
    fn harness(self, address: &str, source: GraphSource) -> SandboxHarness {
        let outbound = GraphOutbound::new(self.client(Mailbox::user(address)));
        SandboxHarness::new(self.sb, address, source, GRAPH_UNKNOWN_ID)
            .with_outbound(outbound)
            .breaking_auth(&[], &["Mail.ReadWrite", "Mail.Send"])
    }
}

/// Fetches 100 at a time and marks each batch read until a fetch is empty (no batch may have
/// failures); the ids handed over, in order.
async fn fetch_and_mark_read_until_empty(source: &GraphSource) -> Vec<MessageId> {
    let mut handled = Vec::new();
    loop {
        let batch = source.fetch(None, 100).await.expect("fetch");
        assert!(batch.failed.is_empty());
        if batch.messages.is_empty() {
            return handled;
        }
        let acks: Vec<_> = batch
            .messages
            .iter()
            .map(|m| (m.id.clone(), Acknowledgement::MarkRead))
            .collect();
        for r in source.acknowledge_many(&acks).await {
            r.expect("ack");
        }
        handled.extend(batch.messages.into_iter().map(|m| m.id));
    }
}

/// Runs the conformance kit: at least 15 checks, all passed, `ran` among them.
async fn assert_conformance(h: &SandboxHarness, ran: &[&str]) {
    let report = run(h).await;
    eprintln!("{report}");
    assert!(report.checks.len() >= 15, "{report}");
    assert!(report.passed(), "{report}");
    assert_ran(&report, ran);
}

#[tokio::test]
async fn conformance_kit_passes() {
    let env = env().await;
    let tokens = env.tokens.clone();
    let source = env.source("megan.bowen@contoso.example");
    let h = env.harness("megan.bowen@contoso.example", source);
    assert_conformance(
        &h,
        &[
            "outbound_send_arrives",
            "outbound_send_reads_back",
            "broken_auth_fetch_fails",
        ],
    )
    .await;
    // The broken-auth check made the client ask for exactly one fresh token per failing call.
    assert!(tokens.refreshes() >= 1);
}

#[tokio::test]
async fn a_thousand_messages_take_about_a_hundred_requests() {
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 1000, "bulk");
    env.sb.admin().clear_request_log();
    let source = env.source(to);
    let handled = fetch_and_mark_read_until_empty(&source).await;
    assert_eq!(handled.len(), 1000);
    let log = env.sb.request_log();
    // 10 listings + 1 empty listing, 50 batches of 20 MIME downloads, 50 batches of 20 marks.
    assert_eq!(log.count("POST", "/v1.0/$batch"), 100, "{log:?}");
    assert_eq!(
        log.count("GET", "/v1.0/users/{user}/mailFolders/{folder}/messages"),
        11
    );
    assert_eq!(log.total(), 111, "{log:?}");
    // Without batching it would be 1 + 1000 downloads + 1000 marks per pass: ~2,011.
    assert_eq!(source.count_waiting().await.expect("count"), Some(0));
}

#[tokio::test]
async fn throttling_honours_retry_after() {
    let env = env().await;
    env.fault_next(
        2,
        FaultKind::Throttle {
            retry_after_secs: 7,
        },
    );
    let source = env.source("helpdesk@contoso.example");
    assert_eq!(source.count_waiting().await.expect("count"), Some(2));
    assert_eq!(
        env.sleeper.waits(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
    assert_eq!(env.sb.request_log().count_status(429), 2);
    let log = source.client().log().render();
    assert!(log.contains("-> 429"), "{log}");
    assert!(log.contains("request-id="), "{log}");
}

#[tokio::test]
async fn server_errors_back_off_then_give_up_at_the_attempt_cap() {
    let env = env().await;
    env.faults(vec![FaultRule {
        protocol: Some(Protocol::Graph),
        app_id: None,
        mailbox: None,
        trigger: Trigger::Rate(1.0),
        fault: FaultKind::ServerError503,
    }]);
    let ep = Endpoint::custom(
        &env.sb.graph_url(),
        Mailbox::user("helpdesk@contoso.example"),
    )
    .expect("endpoint");
    let client = GraphClient::builder(ep, env.tokens.clone())
        .sleeper(env.sleeper.clone())
        .jitter(Arc::new(SeededJitter::new(3)))
        .retry(RetryPolicy::default().with_max_attempts(4))
        .build()
        .expect("client");
    let source = GraphSource::new(client, SourceConfig::default());
    let err = source.count_waiting().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.response().and_then(|r| r.status), Some(503));
    assert_eq!(env.sb.request_log().count_status(503), 4, "4 attempts");
    let waits = env.sleeper.waits();
    assert_eq!(waits.len(), 3);
    // Exponential with equal jitter: each wait lies in [step/2, step].
    for (i, w) in waits.iter().enumerate() {
        let step = Duration::from_millis(500) * (1 << i);
        assert!(*w >= step / 2 && *w <= step, "wait {i}: {w:?}");
    }
}

#[tokio::test]
async fn a_reset_connection_is_retried_for_reads_but_a_send_is_not_repeated() {
    let env = env().await;
    env.fault_next(1, FaultKind::ResetConnection);
    let source = env.source("helpdesk@contoso.example");
    assert_eq!(source.count_waiting().await.expect("count"), Some(2));
    assert_eq!(env.sleeper.waits().len(), 1);

    // 504 on a send: the service may have accepted it, so it is not retried.
    env.fault_next(1, FaultKind::GatewayTimeout504);
    env.sb.admin().clear_request_log();
    let out = GraphOutbound::new(env.client(Mailbox::user("helpdesk@contoso.example")));
    let msg = OutgoingMessage::raw(
        Envelope::new("helpdesk@contoso.example", vec!["adele.vance@contoso.example".into()]),
        b"From: helpdesk@contoso.example\r\nTo: adele.vance@contoso.example\r\nSubject: once\r\n\r\nx\r\n".to_vec(),
    );
    let err = out.send(&msg).await.unwrap_err();
    assert!(err.may_have_taken_effect(), "{err}");
    assert_eq!(
        env.sb
            .request_log()
            .count("POST", "/v1.0/users/{user}/sendMail"),
        1
    );

    // 503 on a send: certainly not accepted, so it is retried and goes out once.
    env.fault_next(1, FaultKind::ServerError503);
    out.send(&msg).await.expect("send after 503");
    let adele = env.inbox("adele.vance@contoso.example");
    assert_eq!(adele.len(), 1, "sent exactly once");
}

#[tokio::test]
async fn inner_batch_throttling_is_retried_and_nothing_is_dropped() {
    let env = env().await;
    let to = "adele.vance@contoso.example";
    env.seed(to, 5, "inner");
    // The listing passes; the first two $value items of the batch are throttled.
    env.faults(vec![FaultRule {
        protocol: Some(Protocol::Graph),
        app_id: None,
        mailbox: None,
        trigger: Trigger::After { skip: 1, count: 2 },
        fault: FaultKind::Throttle {
            retry_after_secs: 3,
        },
    }]);
    let source = env.source(to);
    let batch = source.fetch(None, 10).await.expect("fetch");
    assert_eq!(batch.messages.len(), 5);
    assert!(batch.failed.is_empty());
    assert_eq!(env.sleeper.waits(), vec![Duration::from_secs(3)]);
    assert_eq!(env.sb.request_log().count("POST", "/v1.0/$batch"), 2);

    // A message deleted between listing and acknowledging fails alone, the rest succeed.
    let mut acks: Vec<_> = batch
        .messages
        .iter()
        .map(|m| (m.id.clone(), Acknowledgement::MoveTo("Done".into())))
        .collect();
    acks.push((
        MessageId::new("AAkALgAAAAAAHYQDEapmEc2byACqAC-nope"),
        Acknowledgement::MarkRead,
    ));
    let results = source.acknowledge_many(&acks).await;
    assert_eq!(results.len(), 6);
    assert!(results[..5].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(results[5].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn withdrawn_consent_is_diagnosed_after_one_refresh() {
    let env = env().await;
    env.sb.admin().revoke_admin_consent(APP).expect("revoke");
    let source = env.source("helpdesk@contoso.example");
    let report = source.ping().await;
    assert!(!report.is_online());
    assert!(report.auth.is_some(), "{report}");
    assert_eq!(env.tokens.refreshes(), 1);
    let rendered = format!("{report} {:?} {}", report.log, report.to_json());
    assert!(
        !rendered.contains("eyJ"),
        "no token in the report: {rendered}"
    );
    let err = source.fetch(None, 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.response().and_then(|r| r.status), Some(401));
    assert!(!format!("{err} {err:?}").contains("eyJ"));
    assert_eq!(env.tokens.refreshes(), 2);
}

#[tokio::test]
async fn send_as_rights_are_checked_and_diagnosed() {
    let env = env().await;
    let tokens = Arc::new(SandboxTokens::new(
        &env.sb,
        delegated("helpdesk@contoso.example", &["Mail.ReadWrite", "Mail.Send"]),
        ApiResource::Graph,
    ));
    let ep = Endpoint::custom(&env.sb.graph_url(), Mailbox::Me).expect("endpoint");
    let client = GraphClient::builder(ep, tokens).build().expect("client");
    let out = GraphOutbound::new(client.clone());
    assert!(out.ping().await.is_online());
    // helpdesk has Send As on the shared mailbox projects@, not on adele.
    let denied = GraphOutbound::new(client.clone()).ping_from("adele.vance@contoso.example");
    let report = denied.ping().await;
    assert!(!report.is_online());
    assert!(
        report
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("may not send as"),
        "{report}"
    );
    assert!(
        GraphOutbound::new(client.clone())
            .ping_from("projects@contoso.example")
            .ping()
            .await
            .is_online()
    );
    let msg = |from: &str| {
        OutgoingMessage::raw(
            Envelope::new(from, vec!["alex.wilber@contoso.example".into()]),
            format!(
                "From: {from}\r\nTo: alex.wilber@contoso.example\r\nSubject: as {from}\r\n\r\nx\r\n"
            )
            .into_bytes(),
        )
    };
    let err = out
        .send(&msg("adele.vance@contoso.example"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(
        err.response().and_then(|r| r.server_code.as_deref()),
        Some("ErrorSendAsDenied")
    );
    assert!(!err.may_have_taken_effect());
    let receipt = out
        .send(&msg("projects@contoso.example"))
        .await
        .expect("send as");
    assert_eq!(receipt.from.as_deref(), Some("projects@contoso.example"));
}

#[tokio::test]
async fn delta_tracks_changes_and_recovers_from_lost_state() {
    use graph_mail::delta::{DeltaState, DeltaStore, MemoryDeltaStore, state_key, sync_folder};
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 12, "delta");
    let client = env.client(Mailbox::user(to));
    let store = MemoryDeltaStore::default();
    let first = sync_folder(&client, &store, "inbox")
        .await
        .expect("first round");
    assert_eq!(first.changed.len(), 12, "two pages of ten");
    assert!(!first.resynced);
    let again = sync_folder(&client, &store, "inbox")
        .await
        .expect("quiet round");
    assert!(again.changed.is_empty() && again.removed.is_empty());

    let source = GraphSource::new(client.clone(), SourceConfig::default());
    let ids: Vec<MessageId> = first
        .changed
        .iter()
        .map(|m| MessageId::new(m.id.clone()))
        .collect();
    source
        .acknowledge(&ids[0], &Acknowledgement::MarkRead)
        .await
        .expect("read");
    source
        .acknowledge(&ids[1], &Acknowledgement::Delete)
        .await
        .expect("delete");
    env.seed(to, 1, "late");
    let third = sync_folder(&client, &store, "inbox")
        .await
        .expect("third round");
    assert_eq!(third.removed, vec![ids[1].as_str().to_owned()]);
    assert_eq!(third.changed.len(), 2, "{third:?}");
    assert!(
        third
            .changed
            .iter()
            .any(|m| m.id == ids[0].as_str() && m.is_read == Some(true))
    );

    // A state the server no longer knows: a full resync.
    let key = state_key(client.endpoint(), "inbox");
    let saved = store.load(&key).await.expect("load").expect("saved state");
    assert!(saved.delta_link().is_some());
    let broken =
        DeltaState::from_json(&saved.to_json().replace("deltatoken=", "deltatoken=999999"))
            .expect("state");
    store.save(&key, &broken).await.expect("save");
    let resync = sync_folder(&client, &store, "inbox").await.expect("resync");
    assert!(resync.resynced);
    assert_eq!(
        resync.changed.len(),
        12,
        "11 left of the first 12, plus the late one"
    );
}

#[tokio::test]
async fn large_attachments_go_through_an_upload_session() {
    let env = env().await;
    let client = env.client(Mailbox::user("helpdesk@contoso.example"));
    let out = GraphOutbound::new(client.clone());
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mime = b"From: helpdesk@contoso.example\r\nTo: adele.vance@contoso.example\r\nSubject: big\r\nMessage-ID: <big@test.invalid>\r\n\r\nsee attachment\r\n";
    let big_msg = OutgoingMessage::raw(
        Envelope::new(
            "helpdesk@contoso.example",
            vec!["adele.vance@contoso.example".into()],
        ),
        [mime.as_slice(), &big].concat(),
    );
    // A 5 MB text with no attachment to cut out cannot become a draft either.
    let err = out.send(&big_msg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(!err.may_have_taken_effect());
    out.send_with_upload(mime, &[("data.bin".into(), big.clone())])
        .await
        .expect("send with upload");
    let log = env.sb.request_log();
    assert_eq!(
        log.count("PUT", "/v1.0/_upload/{session}"),
        2,
        "two chunks of ≤4 MB"
    );
    // The upload URL's own token (its query) never reaches the connection log.
    let rendered = client.log().render();
    assert!(rendered.contains("/v1.0/_upload/"), "{rendered}");
    assert!(!rendered.contains("authtoken"), "{rendered}");
    let inbox = env.inbox("adele.vance@contoso.example");
    let m = &inbox[0];
    assert!(m.props.has_attachments);
    let parsed = mail_parser_len(&m.mime);
    assert_eq!(parsed, big.len());
}

fn mail_parser_len(mime: &[u8]) -> usize {
    // The base64 block after the attachment's part headers, decoded.
    let text = String::from_utf8_lossy(mime);
    let start = text.find("filename=\"data.bin\"").expect("attachment part");
    let body_start = text[start..].find("\r\n\r\n").expect("part body") + start + 4;
    let body_end = text[body_start..].find("\r\n--").expect("part end") + body_start;
    use base64::Engine;
    let b64: String = text[body_start..body_end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
        .len()
}

#[tokio::test]
async fn own_mail_sent_arrives_and_reads_back() {
    let env = env().await;
    let me = "megan.bowen@contoso.example";
    let out = GraphOutbound::new(env.client(Mailbox::user(me)));
    assert!(out.ping().await.is_online());
    let msg = OutgoingMessage::raw(
        Envelope::new(me, vec![me.into()]),
        format!("From: Megan <{me}>\r\nTo: {me}\r\nSubject: to myself\r\nMessage-ID: <self@test.invalid>\r\n\r\nhello me\r\n").into_bytes(),
    );
    let receipt = out.send(&msg).await.expect("send");
    assert_eq!(receipt.from.as_deref(), Some(me));
    let source = env.source(me);
    let batch = source.fetch(None, 10).await.expect("fetch");
    assert_eq!(batch.messages.len(), 1);
    let m = &batch.messages[0];
    assert_eq!(
        m.internet_message_id.as_deref(),
        Some("<self@test.invalid>")
    );
    assert!(String::from_utf8_lossy(&m.mime).contains("hello me"));
    assert_eq!(m.recipients, vec![me.to_owned()]);
    let sent = env
        .sb
        .admin()
        .store()
        .folder(me, "sentitems")
        .expect("sent items");
    assert_eq!(sent.total_count, 1);
}

#[tokio::test]
async fn msauth_token_provider_drives_the_client_and_diagnoses_withdrawn_consent() {
    use msauth::{Authority, ClientCredential, ClientSecret, Endpoints, TokenProvider};
    let env = env().await;
    let tenant = "contoso.example";
    let endpoints = Endpoints::new(
        &format!("{}/{tenant}/oauth2/v2.0/authorize", env.sb.base_url()),
        &env.sb.token_url(tenant),
    )
    .expect("endpoints");
    let provider = TokenProvider::builder(Authority::custom(endpoints), APP)
        .credential(ClientCredential::Secret(ClientSecret::new(
            "demo-secret-do-not-use-in-production",
        )))
        .scopes(["https://graph.microsoft.com/.default"])
        .build()
        .expect("provider");
    let ep = Endpoint::custom(
        &env.sb.graph_url(),
        Mailbox::user("helpdesk@contoso.example"),
    )
    .expect("endpoint");
    let client = GraphClient::builder(ep, Arc::new(provider))
        .sleeper(env.sleeper.clone())
        .build()
        .expect("client");
    let source = GraphSource::new(client, SourceConfig::default());
    let report = source.ping().await;
    assert!(report.is_online(), "{report}");
    assert_eq!(report.waiting, Some(2));
    let batch = source.fetch(None, 10).await.expect("fetch");
    assert_eq!(batch.messages.len(), 2);

    env.sb.admin().revoke_admin_consent(APP).expect("revoke");
    let report = source.ping().await;
    assert!(!report.is_online());
    let reason = report.reason.clone().unwrap_or_default();
    eprintln!("{report}");
    assert!(!reason.is_empty());
    assert!(report.auth.is_some(), "{report}");
    assert!(
        !format!("{report:?}").contains("demo-secret"),
        "no secret in the report"
    );
}

/// A Graph stand-in that holds every request until the test releases it, counting how many are
/// in flight at once.
#[tokio::test]
async fn at_most_four_requests_are_in_flight_per_mailbox() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::Semaphore;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    {
        let (in_flight, max_seen, release) = (in_flight.clone(), max_seen.clone(), release.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (in_flight, max_seen, release) =
                    (in_flight.clone(), max_seen.clone(), release.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            continue;
                        }
                        buf.clear();
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        if let Ok(p) = release.acquire().await {
                            p.forget();
                        }
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        let body = br#"{"id":"inbox","displayName":"Inbox","totalItemCount":3,"unreadItemCount":3}"#;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        if sock.write_all(head.as_bytes()).await.is_err()
                            || sock.write_all(body).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
    }
    let ep = Endpoint::custom(
        &format!("http://{addr}/v1.0"),
        Mailbox::user("x@contoso.example"),
    )
    .expect("endpoint");
    let client = GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("t".into()))))
        .build()
        .expect("client");
    let source = Arc::new(GraphSource::new(client, SourceConfig::default()));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.count_waiting().await })
        })
        .collect();
    // Wait for the first four to arrive, then give a fifth every chance to (it must not).
    for _ in 0..500 {
        if in_flight.load(Ordering::SeqCst) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(in_flight.load(Ordering::SeqCst), 4);
    release.add_permits(10);
    for c in calls {
        assert_eq!(c.await.expect("join").expect("count"), Some(3));
    }
    assert_eq!(max_seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn failed_dependencies_are_resubmitted_with_their_dependency() {
    use graph_mail::api::{self, BatchItem, GraphOperation};
    let env = env().await;
    env.fault_next(
        1,
        FaultKind::Throttle {
            retry_after_secs: 2,
        },
    );
    let client = env.client(Mailbox::user("helpdesk@contoso.example"));
    let ep = client.endpoint().clone();
    let ops = [api::GetFolder::new("inbox"), api::GetFolder::new("drafts")];
    let first = BatchItem::from_op(&ep, "1", &ops[0]).expect("item");
    let second = BatchItem::from_op(&ep, "2", &ops[1])
        .expect("item")
        .depends_on(vec!["1".into()]);
    let results = client
        .batch_items(
            "reading folders",
            vec![
                (first, ops[0].idempotency()),
                (second, ops[1].idempotency()),
            ],
        )
        .await;
    let names: Vec<Option<String>> = results
        .iter()
        .zip(&ops)
        .map(|(r, op)| {
            let r = r.as_ref().expect("item succeeded after resubmission");
            op.parse(&ep, r).expect("folder").display_name
        })
        .collect();
    assert_eq!(names, vec![Some("Inbox".into()), Some("Drafts".into())]);
    // One wait, the inner 429's Retry-After; the 424 dependent went along without its own.
    assert_eq!(env.sleeper.waits(), vec![Duration::from_secs(2)]);
    assert_eq!(env.sb.request_log().count("POST", "/v1.0/$batch"), 2);
}

/// A server that answers every request with `status`, `content_type` and `body`.
async fn fixed_server(status: u16, content_type: &'static str, body: String) -> String {
    let reply = Reply::new(status, body).header("Content-Type", content_type);
    format!("{}/v1.0", scripted::serve(vec![reply]).await.url)
}

#[tokio::test]
async fn wrong_content_types_and_oversized_bodies_are_typed_errors() {
    let html = fixed_server(200, "text/html", "<html>proxy login</html>".into()).await;
    let big = fixed_server(200, "application/json", " ".repeat(300 * 1024)).await;
    let truncated = fixed_server(200, "application/json", "{\"value\":[{\"id\":\"a\"".into()).await;
    for (base, cap) in [(html, None), (big, Some(64 * 1024)), (truncated, None)] {
        let ep = Endpoint::custom(&base, Mailbox::Me).expect("endpoint");
        let mut b = GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("t".into()))))
            .retry(RetryPolicy::never());
        if let Some(c) = cap {
            b = b.max_body(c);
        }
        let source = GraphSource::new(b.build().expect("client"), SourceConfig::default());
        let err = source.fetch(None, 10).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadResponse, "{base}: {err}");
        let err = source.count_waiting().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadResponse, "{base}: {err}");
    }
}

#[tokio::test]
async fn a_mailbox_the_app_may_not_reach_pings_offline_with_the_reason() {
    use sandbox::tenant::{AppAccessPolicy, PolicyMode};
    let env = env().await;
    env.sb.admin().update_org(|o| {
        o.app_access_policies.push(AppAccessPolicy {
            app_id: APP.into(),
            scope: vec!["adele.vance@contoso.example".into()],
            mode: PolicyMode::DenyAccess,
        })
    });
    let report = env.source("adele.vance@contoso.example").ping().await;
    assert!(!report.is_online());
    let reason = report.reason.clone().unwrap_or_default();
    assert!(reason.contains("ErrorAccessDenied"), "{reason}");
    assert!(reason.contains("HTTP 403"), "{reason}");
    assert!(report.log.iter().any(|l| l.status == Some(403)));
    assert!(
        env.source("helpdesk@contoso.example")
            .ping()
            .await
            .is_online()
    );
    assert_eq!(
        env.tokens.refreshes(),
        0,
        "a 403 is not cured by a new token"
    );
}

#[tokio::test]
async fn json_send_with_html_reply_to_cc_and_attachment() {
    use graph_mail::api::JsonMail;
    let env = env().await;
    let out = GraphOutbound::new(env.client(Mailbox::user("helpdesk@contoso.example")));
    let mut mail = JsonMail::text(
        "Your ticket",
        "<p>We are on it.</p>",
        vec!["alex.wilber@contoso.example".into()],
    );
    mail.html = true;
    mail.cc = vec!["adele.vance@contoso.example".into()];
    mail.reply_to = vec!["billing@contoso.example".into()];
    mail.attachments = vec![("note.txt".into(), "text/plain".into(), b"hello".to_vec())];
    mail.save_to_sent_items = false;
    out.send_json(&mail).await.expect("send");
    let store = env.sb.admin();
    let alex = env.inbox("alex.wilber@contoso.example");
    let p = &alex[0].props;
    assert_eq!(p.subject, "Your ticket");
    assert!(
        p.body_html
            .as_deref()
            .unwrap_or("")
            .contains("We are on it.")
    );
    assert_eq!(p.reply_to[0].address, "billing@contoso.example");
    assert!(p.has_attachments);
    let adele = store
        .store()
        .folder("adele.vance@contoso.example", "inbox")
        .expect("folder");
    assert_eq!(adele.total_count, 1, "cc delivered");
    let sent = store
        .store()
        .folder("helpdesk@contoso.example", "sentitems")
        .expect("folder");
    assert_eq!(sent.total_count, 0, "saveToSentItems false");
}

fn delta_source(
    env: &Env,
    address: &str,
    store: Arc<dyn graph_mail::delta::DeltaStore>,
) -> GraphSource {
    GraphSource::new(env.client(Mailbox::user(address)), SourceConfig::default()).with_delta(store)
}

#[tokio::test]
async fn conformance_kit_passes_in_delta_mode() {
    use graph_mail::delta::MemoryDeltaStore;
    let env = env().await;
    let address = "megan.bowen@contoso.example";
    let source = delta_source(&env, address, Arc::new(MemoryDeltaStore::default()));
    assert!(source.is_delta());
    assert_eq!(source.capabilities().sync, connector::SyncKind::Incremental);
    let h = env.harness(address, source);
    assert_conformance(
        &h,
        &[
            "count_after_acks",
            "acknowledged_messages_are_not_fetched_again",
            "outbound_send_reads_back",
            "broken_auth_fetch_fails",
        ],
    )
    .await;
    // Delta mode never listed unread mail: it only asked for changes.
    let log = h.sandbox().request_log();
    assert_eq!(
        log.count("GET", "/v1.0/users/{user}/mailFolders/{folder}/messages"),
        0,
        "{log:?}"
    );
    assert!(
        log.count(
            "GET",
            "/v1.0/users/{user}/mailFolders/{folder}/messages/delta"
        ) > 0
    );
}

fn seqs(batch: &connector::Batch) -> Vec<String> {
    batch
        .messages
        .iter()
        .map(|m| m.internet_message_id.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn delta_mode_handles_removed_and_recovers_from_lost_state() {
    use graph_mail::delta::{DeltaState, DeltaStore, MemoryDeltaStore, state_key};
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 3, "dm");
    let store = Arc::new(MemoryDeltaStore::default());
    let source = delta_source(&env, to, store.clone());
    let first = source.fetch(None, 10).await.expect("first fetch");
    assert_eq!(
        seqs(&first),
        [
            "<dm-0@test.invalid>",
            "<dm-1@test.invalid>",
            "<dm-2@test.invalid>"
        ]
    );
    let ids: Vec<MessageId> = first.messages.iter().map(|m| m.id.clone()).collect();
    source
        .acknowledge(&ids[0], &Acknowledgement::MarkRead)
        .await
        .expect("ack");
    // Someone else deletes message 1 and moves message 2 away: both come back as @removed.
    let other = env.source(to);
    other
        .acknowledge(&ids[1], &Acknowledgement::Delete)
        .await
        .expect("delete");
    other
        .acknowledge(&ids[2], &Acknowledgement::MoveTo("archive".into()))
        .await
        .expect("move");
    env.seed(to, 1, "late");
    let second = source.fetch(None, 10).await.expect("second fetch");
    assert_eq!(
        seqs(&second),
        ["<late-0@test.invalid>"],
        "read, deleted and moved mail is not handed over"
    );
    assert_eq!(source.count_waiting().await.expect("count"), Some(1));

    // The server forgets the state (410 syncStateNotFound): a full resync that keeps what is
    // waiting and brings nothing acknowledged back.
    let key = state_key(source.client().endpoint(), "inbox");
    let saved = store.load(&key).await.expect("load").expect("state");
    let expired =
        DeltaState::from_json(&saved.to_json().replace("deltatoken=", "deltatoken=999999"))
            .expect("state");
    store.save(&key, &expired).await.expect("save");
    // A fresh source over the same store (a restart) reads the state from the store.
    let restarted = delta_source(&env, to, store.clone());
    env.sb.admin().clear_request_log();
    env.seed(to, 1, "during");
    let third = restarted.fetch(None, 10).await.expect("resync fetch");
    assert_eq!(
        seqs(&third),
        ["<late-0@test.invalid>", "<during-0@test.invalid>"]
    );
    assert_eq!(env.sb.request_log().count_status(410), 1);
    assert_ne!(
        store
            .load(&key)
            .await
            .expect("load")
            .expect("state")
            .delta_link(),
        expired.delta_link(),
        "the resync saved a fresh link"
    );

    // A saved link for another host is never followed: a full resync instead.
    let foreign = DeltaState::from_json(
        &store
            .load(&key)
            .await
            .expect("load")
            .expect("state")
            .to_json()
            .replace("http://127.0.0.1", "https://attacker.example"),
    )
    .expect("state");
    assert!(
        foreign
            .delta_link()
            .is_some_and(|l| l.contains("attacker.example"))
    );
    store.save(&key, &foreign).await.expect("save");
    let again = delta_source(&env, to, store.clone());
    let fourth = again
        .fetch(None, 10)
        .await
        .expect("fetch after a foreign link");
    assert_eq!(seqs(&fourth), seqs(&third));
    let link = store.load(&key).await.expect("load").expect("state");
    assert!(!link.delta_link().unwrap_or("").contains("attacker"));
}

#[tokio::test]
async fn delta_mode_survives_a_restart_with_a_file_store() {
    use graph_mail::delta::FileDeltaStore;
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("graph-delta.json");
    env.seed(to, 5, "fs");
    let first_ids: Vec<MessageId>;
    {
        let source = delta_source(
            &env,
            to,
            Arc::new(FileDeltaStore::open(&path).expect("open")),
        );
        // Page through two at a time: the cursor pages the saved set without a new round.
        let page1 = source.fetch(None, 2).await.expect("page 1");
        assert_eq!(page1.messages.len(), 2);
        let page2 = source.fetch(page1.next.as_ref(), 2).await.expect("page 2");
        assert_eq!(seqs(&page2), ["<fs-2@test.invalid>", "<fs-3@test.invalid>"]);
        first_ids = page1.messages.iter().map(|m| m.id.clone()).collect();
        let results = source
            .acknowledge_many(&[
                (first_ids[0].clone(), Acknowledgement::MarkRead),
                (
                    first_ids[1].clone(),
                    Acknowledgement::MoveTo("Processed".into()),
                ),
            ])
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Dropped here without a further round: the process "ends".
    }
    env.seed(to, 1, "after");
    let source = delta_source(
        &env,
        to,
        Arc::new(FileDeltaStore::open(&path).expect("reopen")),
    );
    let batch = source.fetch(None, 10).await.expect("fetch after restart");
    assert_eq!(
        seqs(&batch),
        [
            "<fs-2@test.invalid>",
            "<fs-3@test.invalid>",
            "<fs-4@test.invalid>",
            "<after-0@test.invalid>"
        ],
        "the unacknowledged messages come back, the acknowledged ones do not"
    );
    assert!(batch.messages.iter().all(|m| !first_ids.contains(&m.id)));

    // A damaged file is a clear error, not a panic and not a silent restart.
    std::fs::write(&path, b"{\"version\":1,\"states\":{\"x\":{\"pending\":[{").expect("write");
    let err = FileDeltaStore::open(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("graph-delta.json"), "{err}");
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| ((i % 251) as u8) ^ salt).collect()
}

#[tokio::test]
async fn send_picks_a_draft_and_upload_sessions_for_large_messages() {
    use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
    let env = env().await;
    let from = "helpdesk@contoso.example";
    let to = "adele.vance@contoso.example";
    let out = GraphOutbound::new(env.client(Mailbox::user(from)));
    let octet = ContentType::parse("application/octet-stream").expect("ct");
    let files = [
        ("twelve.bin", pattern(12 * 1024 * 1024, 1)),
        ("five.bin", pattern(5 * 1024 * 1024, 2)),
        ("two-a.bin", pattern(2 * 1024 * 1024, 3)),
        ("two-b.bin", pattern(2 * 1024 * 1024, 4)),
        ("small.txt", b"a small file\r\n".repeat(100)),
    ];
    let mut mp =
        MultiPart::mixed().singlepart(SinglePart::plain(String::from("The files you asked for.")));
    for (name, bytes) in &files {
        mp = mp.singlepart(Attachment::new((*name).to_owned()).body(bytes.clone(), octet.clone()));
    }
    let msg = lettre::Message::builder()
        .from(from.parse().expect("from"))
        .to(to.parse().expect("to"))
        .subject("large files")
        .message_id(Some("<large-send@test.invalid>".into()))
        .in_reply_to("<request-42@fabrikam.example>".into())
        .multipart(mp)
        .expect("message");
    let outgoing = OutgoingMessage::from(msg);
    assert!(outgoing.mime().len() > 25 * 1024 * 1024);
    env.sb.admin().clear_request_log();
    let receipt = out.send(&outgoing).await.expect("send");
    assert_eq!(receipt.from.as_deref(), Some(from));

    let log = env.sb.request_log();
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/sendMail"),
        0,
        "{log:?}"
    );
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/messages"),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.count(
            "POST",
            "/v1.0/users/{user}/messages/{id}/attachments/createUploadSession"
        ),
        2,
        "the 12 MB and 5 MB files"
    );
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/messages/{id}/attachments"),
        1,
        "one 2 MB file in one request; the other stays in the draft's MIME"
    );
    // 12 MiB in 3.75 MiB chunks: 4; 5 MiB: 2.
    assert_eq!(log.count("PUT", "/v1.0/_upload/{session}"), 6, "{log:?}");
    assert_eq!(
        log.count("POST", "/v1.0/users/{user}/messages/{id}/send"),
        1
    );

    let inbox = env.inbox(to);
    let m = inbox
        .iter()
        .find(|m| m.props.internet_message_id.as_deref() == Some("<large-send@test.invalid>"))
        .expect("delivered");
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.mime)
        .expect("received MIME parses");
    assert_eq!(parsed.subject(), Some("large files"));
    assert!(
        format!("{:?}", parsed.in_reply_to()).contains("request-42@fabrikam.example"),
        "headers survive the draft"
    );
    assert!(
        parsed
            .body_text(0)
            .is_some_and(|t| t.contains("The files you asked for."))
    );
    use mail_parser::MimeHeaders;
    for (name, bytes) in &files {
        let got: Vec<_> = parsed
            .attachments()
            .filter(|a| a.attachment_name() == Some(*name))
            .collect();
        assert_eq!(got.len(), 1, "{name} arrives exactly once");
        assert!(
            got[0].contents() == bytes.as_slice(),
            "{name} arrives intact"
        );
    }
    // Nothing is left in the sender's drafts.
    let drafts = env
        .sb
        .admin()
        .store()
        .list(from, Some("drafts"), &ListQuery::default())
        .expect("drafts");
    assert!(drafts.items.is_empty());
}

/// A fake Graph that creates drafts and hands out an upload session on another host.
async fn upload_elsewhere_server() -> scripted::Server {
    scripted::serve_with(|request| {
        let line = request.lines().next().unwrap_or("");
        let (status, body) = if line.starts_with("POST") && line.contains("/createUploadSession")
        {
            (
                201,
                r#"{"uploadUrl":"https://uploads.attacker.example/up?authtoken=x","nextExpectedRanges":["0-"]}"#,
            )
        } else if line.starts_with("POST") && line.contains("/messages ") {
            (201, r#"{"id":"draft-1"}"#)
        } else if line.starts_with("DELETE") {
            (204, "")
        } else {
            (
                404,
                r#"{"error":{"code":"ErrorItemNotFound","message":"no"}}"#,
            )
        };
        Reply::new(status, body).header("Content-Type", "application/json")
    })
    .await
}

#[tokio::test]
async fn an_upload_url_on_another_host_is_refused_and_the_draft_discarded() {
    let server = upload_elsewhere_server().await;
    let base = format!("{}/v1.0", server.url);
    let ep = Endpoint::custom(&base, Mailbox::user("helpdesk@contoso.example")).expect("endpoint");
    let client = GraphClient::builder(ep, Arc::new(FnTokenSource::new(|_| Ok("t".into()))))
        .retry(RetryPolicy::never())
        .build()
        .expect("client");
    let out = GraphOutbound::new(client);
    let err = out
        .send_with_upload(
            b"From: helpdesk@contoso.example\r\nTo: a@fabrikam.example\r\nSubject: x\r\n\r\nx\r\n",
            &[("big.bin".into(), pattern(4 * 1024 * 1024, 9))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse, "{err}");
    assert!(err.to_string().contains("attacker.example"), "{err}");
    assert!(!err.may_have_taken_effect(), "nothing was sent");
    let seen = server.request_lines();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("DELETE ") && l.contains("/messages/draft-1")),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|l| l.contains("/send")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.starts_with("PUT")), "{seen:?}");
}

#[tokio::test]
async fn a_thousand_messages_in_delta_mode_take_about_a_hundred_and_twenty_requests() {
    use graph_mail::delta::MemoryDeltaStore;
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 1000, "dbulk");
    env.sb.admin().clear_request_log();
    let source = delta_source(&env, to, Arc::new(MemoryDeltaStore::default()));
    let mut handled = std::collections::HashSet::new();
    for id in fetch_and_mark_read_until_empty(&source).await {
        assert!(handled.insert(id), "handed over twice");
    }
    assert_eq!(handled.len(), 1000);
    let log = env.sb.request_log();
    let delta = "/v1.0/users/{user}/mailFolders/{folder}/messages/delta";
    // The first round lists 1,000 messages in 10 pages of 100; each later round (10) reads the
    // 100 read-marks of the last pass in one page. 50 batches of MIME, 50 of marks.
    assert_eq!(log.count("GET", delta), 20, "{log:?}");
    assert_eq!(log.count("POST", "/v1.0/$batch"), 100, "{log:?}");
    assert_eq!(log.total(), 120, "{log:?}");
    assert_eq!(source.count_waiting().await.expect("count"), Some(0));
}

#[tokio::test]
async fn delta_mode_hands_over_mail_someone_read_before_the_handler_saw_it() {
    use graph_mail::delta::MemoryDeltaStore;
    let env = env().await;
    let to = "alex.wilber@contoso.example";
    env.seed(to, 1, "seen");
    let source = delta_source(&env, to, Arc::new(MemoryDeltaStore::default()));
    let first = source.fetch(None, 10).await.expect("first");
    assert_eq!(seqs(&first), ["<seen-0@test.invalid>"]);
    source
        .acknowledge(&first.messages[0].id, &Acknowledgement::MarkRead)
        .await
        .expect("ack");
    // A person opens the next message in Outlook before the handler's next round.
    env.seed(to, 1, "opened");
    let people = env.source(to);
    let unread = people.fetch(None, 10).await.expect("list");
    assert_eq!(seqs(&unread), ["<opened-0@test.invalid>"]);
    people
        .acknowledge(&unread.messages[0].id, &Acknowledgement::MarkRead)
        .await
        .expect("read in Outlook");
    let second = source.fetch(None, 10).await.expect("second");
    assert_eq!(
        seqs(&second),
        ["<opened-0@test.invalid>"],
        "read on arrival is still new; our own read mark is not"
    );
    // Unread polling would have missed it.
    assert!(
        people
            .fetch(None, 10)
            .await
            .expect("list")
            .messages
            .is_empty()
    );
}
