//! The conformance kit, in listing and in delta mode, and the request count of a 1,000-message
//! ingest in each.

use std::sync::Arc;

use connector::MessageSource;

use crate::support::{assert_conformance, delta_source, env, fetch_and_mark_read_until_empty};

/// The checks the listing-mode runs leave out.
const SKIPPED: &[&str] = &[
    "outbound_send_arrives",
    "outbound_send_reads_back",
    "broken_auth_fetch_fails",
];

#[tokio::test]
async fn conformance_kit_passes() {
    let env = env().await;
    let tokens = env.tokens.clone();
    let source = env.source("megan.bowen@contoso.example");
    let h = env.harness("megan.bowen@contoso.example", source);
    assert_conformance(&h, SKIPPED).await;
    // The broken-auth check made the client ask for exactly one fresh token per failing call.
    assert!(tokens.refreshes() >= 1);
}

/// Single requests four at once: the fetch in parts hands each download over as it ends.
#[tokio::test]
async fn conformance_kit_passes_with_single_requests() {
    let env = env().await;
    let mb = "megan.bowen@contoso.example";
    let source = graph_mail::GraphSource::new(
        env.client(graph_mail::Mailbox::user(mb)),
        graph_mail::SourceConfig::default()
            .use_batch(false)
            .in_flight(4),
    );
    let h = env.harness(mb, source);
    assert_conformance(&h, SKIPPED).await;
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
            "stable_cursors_survive_acknowledgements",
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
