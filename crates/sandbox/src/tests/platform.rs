//! Internal submission and the fault controller's admission, checked at the sandbox's own entry
//! points (`delivery::submit`, `AppState::admit`; moved from `tests/it/platform.rs`).

use std::time::Duration;

use super::common::*;
use crate::faults::{
    Admission, FaultKind, FaultPlan, FaultRule, Protocol, ThrottleConfig, Trigger,
};
use crate::store::ListQuery;

#[tokio::test]
async fn internal_submit_rewrites_from_strips_bcc_records_outbox_and_ndrs() {
    let sb = start().await;
    let st = sb.state();
    let mime = b"From: Billing <billing@contoso.example>\r\nTo: adele.vance@contoso.example, partner@fabrikam.example\r\nCc: nobody@contoso.example\r\nBcc: alex.wilber@contoso.example\r\nSubject: Your invoice\r\n\r\nSee attached.\r\n";
    let report = crate::delivery::submit(st, "helpdesk@contoso.example", mime, true).unwrap();
    assert_eq!(
        report.external,
        vec!["partner@fabrikam.example".to_string()]
    );
    assert_eq!(report.rejected.len(), 1);
    let adele = inbox(&sb, "adele.vance@contoso.example");
    let got = adele
        .iter()
        .find(|m| m.props.subject == "Your invoice")
        .unwrap();
    assert_eq!(
        got.props.from.as_ref().unwrap().address,
        "helpdesk@contoso.example",
        "alias rewritten to primary"
    );
    assert!(got.props.bcc.is_empty() && got.props.header("Bcc").is_none());
    assert!(
        got.props.internet_message_id.is_some() && got.props.sent.is_some(),
        "Message-ID and Date added"
    );
    assert!(
        inbox(&sb, "alex.wilber@contoso.example")
            .iter()
            .any(|m| m.props.subject == "Your invoice"),
        "Bcc recipient gets a copy"
    );
    let sent = sb
        .admin()
        .store()
        .list(
            "helpdesk@contoso.example",
            Some("sentitems"),
            &ListQuery::default(),
        )
        .unwrap()
        .items;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].props.bcc.len(), 1, "Sent Items keeps Bcc");
    let outbox = sb.admin().outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        outbox[0].recipients,
        vec!["partner@fabrikam.example".to_string()]
    );
    assert!(
        inbox(&sb, "helpdesk@contoso.example")
            .iter()
            .any(|m| m.props.subject == "Undeliverable: Your invoice"),
        "NDR for the unknown internal recipient"
    );
    // With SendFromAliasEnabled the alias is kept.
    sb.admin().update_org(|o| o.send_from_alias_enabled = true);
    let mime = b"From: billing@contoso.example\r\nTo: adele.vance@contoso.example\r\nSubject: kept alias\r\n\r\nx\r\n";
    crate::delivery::submit(st, "helpdesk@contoso.example", mime, false).unwrap();
    let got = inbox(&sb, "adele.vance@contoso.example")
        .into_iter()
        .find(|m| m.props.subject == "kept alias")
        .unwrap();
    assert_eq!(
        got.props.from.as_ref().unwrap().address,
        "billing@contoso.example"
    );
    assert!(matches!(
        crate::delivery::submit(st, "nobody@contoso.example", mime, false),
        Err(crate::delivery::DeliveryError::UnknownSender(_))
    ));
    assert!(matches!(
        crate::delivery::submit(
            st,
            "helpdesk@contoso.example",
            b"Subject: none\r\n\r\nx",
            false
        ),
        Err(crate::delivery::DeliveryError::NoRecipients)
    ));
}

async fn admit_sequence(sb: &crate::Sandbox, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let a = sb
            .state()
            .admit(Protocol::Graph, DEMO_APP, "helpdesk@contoso.example")
            .await;
        out.push(match a {
            Admission::Proceed(_) => "ok".to_string(),
            Admission::Throttled { retry_after } => format!("429/{}", retry_after.as_secs()),
            Admission::Fault(f) => format!("{f:?}"),
        });
    }
    out
}

#[tokio::test]
async fn fault_plans_are_deterministic() {
    let sb = start().await;
    let plan = FaultPlan::new([
        FaultRule::next(
            Protocol::Graph,
            2,
            FaultKind::Throttle {
                retry_after_secs: 3,
            },
        ),
        FaultRule::rate(Protocol::Graph, 0.5, FaultKind::ServerError503),
    ])
    .with_seed(42);
    sb.admin().set_faults(plan.clone());
    let a = admit_sequence(&sb, 30).await;
    assert_eq!(&a[..2], &["429/3", "429/3"]);
    let errors = a[2..].iter().filter(|s| s.contains("503")).count();
    assert!(
        errors > 3 && errors < 25,
        "rate 0.5 over 28 requests: {errors}"
    );
    sb.admin().set_faults(plan);
    let b = admit_sequence(&sb, 30).await;
    assert_eq!(a, b, "same seed, same sequence");
    // Filters: EWS requests are not affected by Graph rules; After{skip,count}.
    sb.admin().set_faults(
        FaultPlan::new([FaultRule::new(
            Trigger::After { skip: 1, count: 1 },
            FaultKind::GatewayTimeout504,
        )
        .on(Protocol::Graph)])
        .with_seed(1),
    );
    let ews = sb
        .state()
        .admit(Protocol::Ews, DEMO_APP, "helpdesk@contoso.example")
        .await;
    assert!(matches!(ews, Admission::Proceed(_)));
    assert_eq!(
        admit_sequence(&sb, 3).await,
        vec!["ok", "GatewayTimeout504", "ok"]
    );
    assert_eq!(sb.admin().faults_fired(), 1);
}

#[tokio::test]
async fn concurrency_and_budget_throttling() {
    let sb = start().await;
    let st = sb.state();
    let mut guards = Vec::new();
    for _ in 0..4 {
        match st
            .admit(Protocol::Graph, DEMO_APP, "helpdesk@contoso.example")
            .await
        {
            Admission::Proceed(g) => guards.push(g),
            other => panic!("expected a slot, got {other:?}"),
        }
    }
    assert!(matches!(
        st.admit(Protocol::Graph, DEMO_APP, "helpdesk@contoso.example")
            .await,
        Admission::Throttled { .. }
    ));
    // Another mailbox has its own slots.
    assert!(matches!(
        st.admit(Protocol::Graph, DEMO_APP, "adele.vance@contoso.example")
            .await,
        Admission::Proceed(_)
    ));
    guards.pop();
    assert!(matches!(
        st.admit(Protocol::Graph, DEMO_APP, "helpdesk@contoso.example")
            .await,
        Admission::Proceed(_)
    ));
    drop(guards);
    sb.admin().set_throttle(ThrottleConfig {
        budget: Some(3),
        window_secs: 60,
        ..ThrottleConfig::default()
    });
    for _ in 0..3 {
        assert!(matches!(
            st.admit(Protocol::Graph, DEMO_APP, "alex.wilber@contoso.example")
                .await,
            Admission::Proceed(_)
        ));
    }
    match st
        .admit(Protocol::Graph, DEMO_APP, "alex.wilber@contoso.example")
        .await
    {
        Admission::Throttled { retry_after } => {
            assert!(retry_after <= Duration::from_secs(60) && retry_after >= Duration::from_secs(1))
        }
        other => panic!("budget exhausted, got {other:?}"),
    }
    sb.admin().advance_clock(61);
    assert!(matches!(
        st.admit(Protocol::Graph, DEMO_APP, "alex.wilber@contoso.example")
            .await,
        Admission::Proceed(_)
    ));
}

/// Graph counts every request inside a `$batch` against the app's and mailbox's limits: each
/// item takes one unit of the window's budget and a concurrency slot while it runs, and is
/// answered 429 inside the batch when either is used up; the envelope costs nothing. The
/// request log counts the items, so a client's requests can be counted as Graph counts them.
#[tokio::test]
async fn batch_items_count_one_by_one_against_the_budget_and_the_concurrency() {
    let sb = start().await;
    let st = sb.state();
    let token = graph_token(&sb, &["Mail.ReadWrite"]);
    let batch = |mailbox: &str, n: usize| {
        let requests: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({"id": i.to_string(), "method": "GET",
                    "url": format!("/users/{mailbox}/mailFolders/inbox")})
            })
            .collect();
        let url = format!("{}/$batch", sb.graph_url());
        let token = token.clone();
        async move {
            let resp = client()
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "requests": requests }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status().as_u16(),
                200,
                "the envelope itself is never throttled"
            );
            let body: serde_json::Value = resp.json().await.unwrap();
            let mut statuses: Vec<(u64, u64)> = body["responses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let id: u64 = r["id"].as_str().unwrap().parse().unwrap();
                    (id, r["status"].as_u64().unwrap())
                })
                .collect();
            statuses.sort_unstable();
            statuses.into_iter().map(|(_, s)| s).collect::<Vec<u64>>()
        }
    };
    const HELPDESK: &str = "helpdesk@contoso.example";
    sb.admin().set_throttle(ThrottleConfig {
        budget: Some(25),
        window_secs: 600,
        ..ThrottleConfig::default()
    });
    sb.admin().clear_request_log();
    assert_eq!(batch(HELPDESK, 20).await, vec![200; 20]);
    // 5 of the budget left: the first 5 items of the next batch, then 429 until the window ends.
    let second = batch(HELPDESK, 20).await;
    assert_eq!(second[..5], [200; 5]);
    assert_eq!(second[5..], [429; 15]);
    assert!(matches!(
        st.admit(Protocol::Graph, DEMO_APP, HELPDESK).await,
        Admission::Throttled { .. }
    ));
    let log = sb.admin().request_log();
    assert_eq!(log.count("POST", crate::reqlog::BATCH_PATH), 2);
    assert_eq!(log.batch_item_total(), 40);
    assert_eq!(log.graph_requests_as_counted(), 40);
    let throttled: u64 = log
        .batch_items
        .iter()
        .filter(|e| e.status == 429)
        .map(|e| e.count)
        .sum();
    assert_eq!(throttled, 15);
    assert!(
        log.batch_items
            .iter()
            .all(|e| e.method == "GET" && e.path == "/users/{user}/mailFolders/{id}"),
        "{:?}",
        log.batch_items
    );

    // Concurrency: with the mailbox's 4 slots held, every item is refused; with one free, the
    // items (run one after another) take it in turn.
    sb.admin().set_throttle(ThrottleConfig::default());
    let mut guards = Vec::new();
    for _ in 0..4 {
        match st.admit(Protocol::Graph, DEMO_APP, ALEX).await {
            Admission::Proceed(g) => guards.push(g),
            other => panic!("expected a slot, got {other:?}"),
        }
    }
    assert_eq!(batch(ALEX, 3).await, vec![429; 3]);
    guards.pop();
    assert_eq!(batch(ALEX, 3).await, vec![200; 3]);
}

/// The latency model's draws: their median is the median asked for, none is over the cap, the
/// tail is long (the 95th percentile well above the median), a σ of 0 gives the median every
/// time, and the same seed gives the same draws.
#[test]
fn latency_draws_follow_the_model() {
    use rand::SeedableRng as _;
    let model = crate::Latency::exchange_online();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut ms: Vec<f64> = (0..20_000)
        .map(|_| model.draw(&mut rng).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    let p95 = ms[ms.len() * 95 / 100];
    assert!((median - 120.0).abs() < 6.0, "median {median}");
    assert!(p95 > 250.0 && p95 < 400.0, "p95 {p95}");
    assert!(ms.iter().all(|m| *m <= 5_000.0 && *m >= 0.0));
    let fixed = crate::Latency::fixed(40);
    assert!((0..100).all(|_| fixed.draw(&mut rng) == Duration::from_millis(40)));
    let draws = |seed| {
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        (0..10).map(|_| model.draw(&mut r)).collect::<Vec<_>>()
    };
    assert_eq!(draws(3), draws(3));
}

#[test]
fn busy_fraction_counts_the_time_every_slot_was_held() {
    let use_ = |s: u64, e: u64| crate::SlotUse {
        protocol: Protocol::Graph,
        app_id: "a".into(),
        mailbox: "m".into(),
        start_us: s,
        end_us: e,
    };
    // Two slots: both held from 10 to 20 and from 30 to 40 (a slot handed straight on at 30).
    let uses = [use_(0, 20), use_(10, 30), use_(30, 40), use_(30, 50)];
    assert_eq!(crate::busy_fraction(&uses, 2, 0, 100), 0.2);
    assert_eq!(crate::busy_fraction(&uses, 1, 0, 50), 1.0);
    assert_eq!(crate::busy_fraction(&uses, 2, 10, 20), 1.0);
    assert_eq!(crate::busy_fraction(&uses, 3, 0, 100), 0.0);
    assert_eq!(crate::busy_fraction(&[], 1, 0, 100), 0.0);
    assert_eq!(crate::busy_fraction(&uses, 2, 50, 50), 0.0);
}

/// With a latency set, each admitted request holds its slot at least that long (tokio's
/// sleep never ends early), the concurrency limit is never exceeded, and requests beyond it
/// are throttled; the recorded holds say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_spent_holding_a_slot_and_recorded() {
    let sb = start().await;
    sb.admin().set_throttle(ThrottleConfig {
        graph_concurrency: 2,
        budget: None,
        ..ThrottleConfig::default()
    });
    sb.admin().set_latency(Some(crate::Latency::fixed(300)));
    sb.admin().record_slots(true);
    let st = sb.state().clone();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            matches!(
                st.admit(Protocol::Graph, DEMO_APP, "helpdesk@contoso.example")
                    .await,
                Admission::Proceed(_)
            )
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 2, "the third finds both slots taken");
    let uses = sb.admin().slot_uses();
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert!(
        uses.iter().all(|u| u.end_us - u.start_us >= 30_000),
        "{uses:?}"
    );
    assert_eq!(uses[0].mailbox, "helpdesk@contoso.example");
    // Stopped: forgotten, and nothing more recorded; no latency any more.
    sb.admin().record_slots(false);
    sb.admin().set_latency(None);
    let _ = st
        .admit(Protocol::Graph, DEMO_APP, "helpdesk@contoso.example")
        .await;
    assert!(sb.admin().slot_uses().is_empty());
}
