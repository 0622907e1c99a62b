//! Throttling, server errors, reset connections, failed batch dependencies, bad bodies and the
//! limit on requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector::{
    Acknowledgement, Envelope, ErrorKind, MessageId, MessageOutbound, MessageSource,
    OutgoingMessage,
};
use graph_mail::retry::{RetryPolicy, SeededJitter};
use graph_mail::{Endpoint, GraphClient, GraphOutbound, GraphSource, Mailbox, SourceConfig};
use sandbox::{FaultKind, FaultRule, Protocol, Trigger};
use test_support::scripted::{self, Reply};

use crate::support::{env, fixed_token_client};

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
    env.faults(vec![FaultRule::rate(
        Protocol::Graph,
        1.0,
        FaultKind::ServerError503,
    )]);
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
    env.faults(vec![
        FaultRule::new(
            Trigger::After { skip: 1, count: 2 },
            FaultKind::Throttle {
                retry_after_secs: 3,
            },
        )
        .on(Protocol::Graph),
    ]);
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
    let client = fixed_token_client(
        &format!("http://{addr}/v1.0"),
        Mailbox::user("x@contoso.example"),
    )
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
        let mut b = fixed_token_client(&base, Mailbox::Me).retry(RetryPolicy::never());
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

/// Without `$batch`, MIME downloads and acknowledgements go as single requests, up to
/// `in_flight` at once (issue #23: each that ends makes room for the next, so the mailbox's
/// four slots stay busy), and every answer still goes with its own message.
#[tokio::test]
async fn single_requests_keep_up_to_in_flight_slots_busy_and_answers_stay_with_their_message() {
    let e = env().await;
    let mb = "helpdesk@contoso.example";
    e.seed(mb, 12, "pool");
    let admin = e.sb.admin();
    // Every request holds its slot long enough for the others to overlap it.
    admin.set_latency(Some(sandbox::Latency::fixed(150)));
    for (in_flight, expect) in [(1usize, 1usize), (4, 4)] {
        admin.record_slots(true);
        let source = GraphSource::new(
            e.client(Mailbox::user(mb)),
            SourceConfig::default()
                .max_batch(12)
                .use_batch(false)
                .in_flight(in_flight),
        );
        let batch = source.fetch(None, 12).await.expect("fetch");
        assert_eq!(batch.messages.len(), 12, "{:?}", batch.failed);
        for m in &batch.messages {
            let imid = m.internet_message_id.as_deref().expect("Message-ID");
            let mime = String::from_utf8_lossy(&m.mime);
            assert!(mime.contains(imid), "{imid} got another message's MIME");
        }
        let downloads: Vec<_> = admin
            .slot_uses()
            .into_iter()
            .filter(|u| u.protocol == Protocol::Graph)
            .collect();
        // The listing, then the 12 downloads.
        assert_eq!(downloads.len(), 13);
        assert_eq!(
            sandbox::most_in_flight(&downloads),
            expect,
            "in_flight {in_flight}"
        );
        if in_flight == 4 {
            let unread = |e: &crate::support::Env| {
                e.sb.admin()
                    .store()
                    .folder(mb, "inbox")
                    .map_or(0, |f| f.unread_count)
            };
            let before = unread(&e);
            admin.record_slots(true);
            let acks: Vec<_> = batch
                .messages
                .iter()
                .map(|m| (m.id.clone(), Acknowledgement::MarkRead))
                .collect();
            let results = source.acknowledge_many(&acks).await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            assert_eq!(sandbox::most_in_flight(&admin.slot_uses()), 4);
            assert_eq!(unread(&e), before - 12);
        }
    }
    admin.set_latency(None);
}

/// Without `$batch`, `fetch_in_parts` hands each message over as soon as its download ends
/// (those that end together as one part, oldest first), so a pipeline handles and acknowledges
/// the first messages of a page while the rest download; together the parts are the page.
#[tokio::test]
async fn single_requests_hand_each_download_over_as_it_ends() {
    let e = env().await;
    let mb = "helpdesk@contoso.example";
    e.seed(mb, 12, "parts");
    e.sb.admin().set_latency(Some(sandbox::Latency::fixed(100)));
    let source = GraphSource::new(
        e.client(Mailbox::user(mb)),
        SourceConfig::default()
            .max_batch(12)
            .use_batch(false)
            .in_flight(4),
    );
    let parts: std::sync::Mutex<Vec<connector::Batch>> = Default::default();
    let next = source
        .fetch_in_parts(None, 12, &|part| parts.lock().unwrap().push(part))
        .await
        .expect("fetch in parts");
    e.sb.admin().set_latency(None);
    let parts = parts.into_inner().unwrap();
    // Four downloads in flight at a time: no part holds more than four, so twelve make three
    // parts at least (the whole page as one part before).
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let mut got = Vec::new();
    for part in &parts {
        assert!(part.failed.is_empty(), "{:?}", part.failed);
        assert!(part.messages.len() <= 4, "{}", part.messages.len());
        let received: Vec<_> = part.messages.iter().map(|m| m.received).collect();
        assert!(received.is_sorted(), "oldest first within a part");
        for m in &part.messages {
            let imid = m.internet_message_id.clone().expect("Message-ID");
            assert!(String::from_utf8_lossy(&m.mime).contains(&imid));
            got.push(imid);
        }
    }
    let whole = source.fetch(None, 12).await.expect("fetch");
    let mut want: Vec<_> = whole
        .messages
        .iter()
        .filter_map(|m| m.internet_message_id.clone())
        .collect();
    assert_eq!(want.len(), 12);
    assert_eq!(next, whole.next, "the cursor a fetch gives");
    got.sort();
    want.sort();
    assert_eq!(got, want, "each message once");
}

/// A `$batch` runs its items at once, each holding one of the mailbox's four slots: it takes as
/// many of the client's requests in flight as it has items. Two batches of 20 sent together
/// then go one after the other instead of running 40 items against 4 slots (Graph answers the
/// extra items 429, and each waits out its `Retry-After`).
#[tokio::test]
async fn batches_sent_together_take_turns_instead_of_being_throttled() {
    let e = env().await;
    let mb = "helpdesk@contoso.example";
    let admin = e.sb.admin();
    admin.set_throttle(sandbox::ThrottleConfig::default());
    admin.set_latency(Some(sandbox::Latency::fixed(50)));
    admin.clear_request_log();
    let client = e.client(Mailbox::user(mb));
    let reads: Vec<graph_mail::api::GetFolder> = (0..20)
        .map(|_| graph_mail::api::GetFolder::new("inbox"))
        .collect();
    let (a, b) = tokio::join!(
        client.batch("reading folders", &reads),
        client.batch("reading folders", &reads)
    );
    admin.set_latency(None);
    assert!(a.iter().chain(&b).all(Result::is_ok), "{a:?} {b:?}");
    let log = e.sb.request_log();
    let throttled: u64 = log
        .batch_items
        .iter()
        .filter(|i| i.status == 429)
        .map(|i| i.count)
        .sum();
    assert_eq!(throttled, 0, "{log:?}");
    assert_eq!(log.batch_item_total(), 40, "{log:?}");
}

/// A `Retry-After` longer than the policy waits for (as Exchange Online answers once a
/// mailbox's budget of requests is spent) holds every request of the client until then: each
/// fails at once, unsent, as throttled with the time left, so the caller can pause the whole
/// source instead of earning a refusal per message. Once the time left is within what the
/// policy waits for, a request waits for it and goes out. (Real sleeps of about 3 s: the hold
/// is kept on the clock, not on the test's recording sleeper.)
#[tokio::test]
async fn a_long_retry_after_holds_every_request_of_the_client_until_its_time() {
    let env = env().await;
    env.fault_next(
        1,
        FaultKind::Throttle {
            retry_after_secs: 3,
        },
    );
    let ep = Endpoint::custom(
        &env.sb.graph_url(),
        Mailbox::user("helpdesk@contoso.example"),
    )
    .expect("endpoint");
    let client = GraphClient::builder(ep, env.tokens.clone())
        .retry(RetryPolicy::default().with_max_retry_after(Duration::from_secs(1)))
        .build()
        .expect("client");
    let source = GraphSource::new(client.clone(), SourceConfig::default());
    assert_eq!(client.held_for(), None);
    let err = source.count_waiting().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    let t0 = std::time::Instant::now();
    let held = client.held_for().expect("the client holds its requests");
    assert!(
        held > Duration::from_secs(1) && held <= Duration::from_secs(3),
        "{held:?}"
    );
    let sent = env.sb.request_log().total();
    // Held: refused at once, and nothing reaches the service.
    let err = source.count_waiting().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.delivery(), connector::Delivery::NotSent);
    let left = err.retry_after().expect("the time left");
    assert!(left > Duration::from_secs(1) && left <= held, "{left:?}");
    assert_eq!(env.sb.request_log().total(), sent, "no request was sent");
    // Within the policy's wait: the request waits for the rest of the hold, then goes out.
    tokio::time::sleep(held.saturating_sub(Duration::from_millis(700))).await;
    assert_eq!(source.count_waiting().await.expect("count"), Some(2));
    assert!(
        std::time::Instant::now() >= t0 + held,
        "sent before the hold ended"
    );
    assert_eq!(env.sb.request_log().total(), sent + 1);
    assert_eq!(client.held_for(), None);
}
