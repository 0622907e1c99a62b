//! `EwsSource::with_item_chunk`: an unread fetch listed in FindItem pages, several listings and
//! GetItems in flight at once, acknowledgements in chunks at once; the cursor and a failed
//! listing in the middle of a fetch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector::conformance;
use connector::{Cursor, ErrorKind, MessageSource, RawMessage};
use ews_mail::{EwsClient, EwsSource, MAX_BATCH, MAX_PAGE};
use sandbox::{FaultKind, FaultPlan, Latency, most_in_flight};

use crate::support::{
    app_client, ews_503s, ews_faults, harness, mark_read, numbered, sandbox, seeded, unique_imids,
};

/// A source fetching up to `MAX_PAGE` in FindItem pages of `chunk`, `in_flight` requests at
/// once.
fn paged(c: EwsClient, chunk: usize, in_flight: usize) -> EwsSource {
    EwsSource::new(c)
        .with_max_batch(MAX_PAGE)
        .with_item_chunk(chunk)
        .with_fetch_concurrency(in_flight)
}

fn imids(messages: &[RawMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m.internet_message_id.clone().expect("a Message-ID"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_kit_passes_with_small_chunks_in_flight_at_once() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    let source = paged(c.clone(), 3, 5);
    let report = conformance::run(&harness(sb, source, c)).await;
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_lists_and_downloads_its_pages_at_once_and_acknowledges_in_chunks_at_once() {
    let (sb, c) = seeded("pages", 45).await;
    let src = paged(c, 10, 5);
    // Each request holds its slot a while, so that requests in flight together overlap.
    sb.admin().set_latency(Some(Latency::fixed(150)));
    sb.admin().clear_request_log();
    sb.admin().record_slots(true);
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert!(b.failed.is_empty(), "{:?}", b.failed);
    assert_eq!(b.next, None);
    let want: Vec<String> = (0..45).map(|i| format!("<pages-{i}@x>")).collect();
    assert_eq!(imids(&b.messages), want, "oldest first, each once");
    let log = sb.request_log();
    assert_eq!(log.count_operation("FindItem"), 5, "{log:?}");
    assert_eq!(log.count_operation("GetItem"), 5, "{log:?}");
    // One FindItem of 1,000 and one GetItem would never have two requests in flight.
    let fetched = sb.admin().slot_uses();
    assert!(most_in_flight(&fetched) >= 3, "{fetched:?}");

    sb.admin().record_slots(true);
    mark_read(&src, &b.messages).await;
    assert_eq!(sb.request_log().count_operation("UpdateItem"), 5);
    let acked = sb.admin().slot_uses();
    assert!(most_in_flight(&acked) >= 3, "{acked:?}");
    sb.admin().record_slots(false);
    sb.admin().set_latency(None);
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_pages_continues_where_it_stopped() {
    let (_sb, c) = seeded("cursor", 45).await;
    let src = paged(c, 10, 4);
    let first = src.fetch(None, 25).await.unwrap();
    assert_eq!(unique_imids(&first.messages), numbered("cursor", 0..25));
    assert_eq!(first.next.as_ref().map(Cursor::as_str), Some("25"));
    let rest = src.fetch(first.next.as_ref(), MAX_PAGE).await.unwrap();
    assert_eq!(unique_imids(&rest.messages), numbered("cursor", 25..45));
    assert_eq!(rest.next, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_fails_ends_the_batch_before_its_page() {
    let (sb, c) = seeded("cut", 45).await;
    // One request at a time: without a count the first listing goes alone, then its page's
    // download; the other four listings ask for the slot before any other download, in order.
    let src = paged(c, 10, 1);
    // The fourth listing (the fifth request) and its three retries fail.
    sb.admin().set_faults(ews_503s(4, 4));
    sb.admin().clear_request_log();
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert_eq!(sb.admin().faults_fired(), 4);
    // Nothing after the failed listing is listed or downloaded: it could not be handed over.
    let log = sb.request_log();
    assert_eq!(log.count_operation("GetItem"), 3, "{log:?}");
    // Three listings, then the failed one and its three retries; not the fifth.
    assert_eq!(log.count_operation("FindItem"), 3 + 4, "{log:?}");
    assert!(b.failed.is_empty(), "{:?}", b.failed);
    assert_eq!(unique_imids(&b.messages), numbered("cut", 0..30));
    assert_eq!(b.next.as_ref().map(Cursor::as_str), Some("30"));
    let rest = src.fetch(b.next.as_ref(), MAX_PAGE).await.unwrap();
    assert_eq!(unique_imids(&rest.messages), numbered("cut", 30..45));
    // The first listing failing fails the fetch, as one FindItem would.
    sb.admin().set_faults(ews_503s(0, 4));
    let e = src.fetch(None, MAX_PAGE).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
}

/// The folder's count (from the ping) says how many are waiting, so a fetch lists every page at
/// once instead of waiting for its first listing; acknowledged messages come off that count, so
/// the fetch after them lists once, not a page for each message it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_count_lets_a_fetch_list_all_its_pages_at_once() {
    let (sb, c) = seeded("hint", 45).await;
    let src = paged(c, 10, 5);
    assert_eq!(src.ping().await.waiting, Some(45));
    sb.admin().set_latency(Some(Latency::fixed(300)));
    sb.admin().clear_request_log();
    sb.admin().record_slots(true);
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert_eq!(unique_imids(&b.messages), numbered("hint", 0..45));
    assert_eq!(b.next, None);
    assert_eq!(sb.request_log().count_operation("FindItem"), 5);
    // The five listings start together: none waits for the first to end.
    let uses = sb.admin().slot_uses();
    let first_end = uses.iter().map(|u| u.end_us).min().unwrap();
    let started_before = uses.iter().filter(|u| u.start_us < first_end).count();
    assert_eq!(started_before, 5, "{uses:?}");
    sb.admin().record_slots(false);
    sb.admin().set_latency(None);

    mark_read(&src, &b.messages).await;
    sb.admin().clear_request_log();
    let empty = src.fetch(None, MAX_PAGE).await.unwrap();
    assert!(empty.messages.is_empty() && empty.next.is_none());
    assert_eq!(sb.request_log().count_operation("FindItem"), 1);
}

/// A fetch and acknowledgements running at once (a pipeline fetching the next page while it
/// acknowledges this one) share the source's requests in flight: together they never have
/// more than `with_fetch_concurrency` out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_and_acknowledgements_at_once_share_the_requests_in_flight() {
    let (sb, c) = seeded("share", 60).await;
    let src = paged(c, 5, 3);
    let first = src.fetch(None, 30).await.unwrap();
    assert_eq!(first.messages.len(), 30);
    sb.admin().set_latency(Some(Latency::fixed(100)));
    sb.admin().record_slots(true);
    let (ahead, ()) = tokio::join!(
        src.fetch(first.next.as_ref(), 30),
        mark_read(&src, &first.messages)
    );
    ahead.unwrap();
    let uses = sb.admin().slot_uses();
    // 6 acknowledgement requests and at least one listing, never more than 3 at once.
    assert!(uses.len() >= 7, "{uses:?}");
    assert_eq!(most_in_flight(&uses), 3, "{uses:?}");
    sb.admin().record_slots(false);
    sb.admin().set_latency(None);
}

/// `fetch_in_parts` hands each page over once it is downloaded, and the parts are what `fetch`
/// gives (`fetch` in listing order); the first part comes while later pages are still in
/// flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_parts_hands_each_page_over_as_it_arrives() {
    let (sb, c) = seeded("parts", 45).await;
    let src = paged(c, 10, 2);
    // Two requests in flight and 100 ms each: five pages take three rounds of requests or more.
    sb.admin().set_latency(Some(Latency::fixed(100)));
    let (parts, done, next) = in_parts(&src, 25).await;
    sb.admin().set_latency(None);
    assert_eq!(next.as_ref().map(Cursor::as_str), Some("25"));
    let mut sizes: Vec<usize> = parts.iter().map(|(_, m)| m.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 10, 10], "one part per page");
    let mut handed: Vec<String> = parts.iter().flat_map(|(_, m)| m.clone()).collect();
    handed.sort();
    let mut want: Vec<String> = (0..25).map(|i| format!("<parts-{i}@x>")).collect();
    want.sort();
    assert_eq!(handed, want, "each once");
    // The first part was handed over before the last one had been downloaded.
    assert!(
        parts[0].0 + Duration::from_millis(100) <= done,
        "{parts:?} {done:?}"
    );
    // The same fetch, whole, oldest first.
    let whole = src.fetch(None, 25).await.unwrap();
    let oldest_first: Vec<String> = (0..25).map(|i| format!("<parts-{i}@x>")).collect();
    assert_eq!(imids(&whole.messages), oldest_first);
    assert_eq!(whole.next, next);
}

/// A page whose download is slow holds back no other: the pages after it (their listings
/// done) are handed over while it is still on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_page_holds_back_no_other() {
    let (sb, c) = seeded("slow", 30).await;
    let src = paged(c, 10, 3);
    // The folder's count, so that the three pages are listed at once.
    assert_eq!(src.count_waiting().await.unwrap(), Some(30));
    // The three FindItems go first; the first GetItem sent, whichever page's, takes 1.5 s.
    sb.admin()
        .set_faults(ews_faults(3, 1, FaultKind::Slow { millis: 1_500 }));
    let (parts, _, next) = in_parts(&src, 30).await;
    sb.admin().set_faults(FaultPlan::default());
    assert_eq!(next, None);
    let early: Vec<usize> = parts
        .iter()
        .filter(|(at, _)| *at < Duration::from_millis(1_000))
        .map(|(_, m)| m.len())
        .collect();
    assert_eq!(early, [10, 10], "{parts:?}");
    assert_eq!(parts.len(), 3, "{parts:?}");
}

/// `src.fetch_in_parts(None, max)`: each part's arrival (from the start) and Message-IDs, when
/// the fetch ended, and its next cursor.
async fn in_parts(
    src: &EwsSource,
    max: usize,
) -> (Vec<(Duration, Vec<String>)>, Duration, Option<Cursor>) {
    let started = Instant::now();
    let parts = Mutex::new(Vec::new());
    let keep = |part: connector::Batch| {
        assert!(part.failed.is_empty(), "{:?}", part.failed);
        parts
            .lock()
            .unwrap()
            .push((started.elapsed(), imids(&part.messages)));
    };
    let next = src.fetch_in_parts(None, max, &keep).await.unwrap();
    (parts.into_inner().unwrap(), started.elapsed(), next)
}

/// Fewer waiting than pages of the chunk would keep every request slot busy with: smaller
/// pages, one a slot, so that no slot idles while a few larger downloads run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_waiting_than_the_slots_would_fill_are_listed_in_smaller_pages() {
    let (sb, c) = seeded("few", 40).await;
    let src = paged(c, 20, 8);
    assert_eq!(src.count_waiting().await.unwrap(), Some(40));
    sb.admin().clear_request_log();
    let b = src.fetch(None, MAX_PAGE).await.unwrap();
    assert_eq!(unique_imids(&b.messages), numbered("few", 0..40));
    assert_eq!(b.messages.len(), 40, "each once");
    assert_eq!(b.next, None);
    let log = sb.request_log();
    // 40 waiting and 8 slots: 8 pages of 5, not 2 of 20.
    assert_eq!(log.count_operation("FindItem"), 8, "{log:?}");
    assert_eq!(log.count_operation("GetItem"), 8, "{log:?}");
}

/// A source listing in pages fetches more than one FindItem lists at once; a source listing
/// with one FindItem a fetch stays at `MAX_PAGE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_in_pages_may_hold_more_than_one_finditem_lists() {
    let (sb, c) = seeded("big", 1500).await;
    let one = EwsSource::new(c.clone()).with_max_batch(MAX_BATCH);
    assert_eq!(one.capabilities().max_batch, MAX_PAGE);
    let paged = EwsSource::new(c)
        .with_max_batch(MAX_BATCH)
        .with_item_chunk(100)
        .with_fetch_concurrency(10);
    assert_eq!(paged.capabilities().max_batch, MAX_BATCH);
    assert_eq!(paged.count_waiting().await.unwrap(), Some(1500));
    sb.admin().clear_request_log();
    let b = paged.fetch(None, 2000).await.unwrap();
    assert!(b.failed.is_empty(), "{:?}", b.failed);
    assert_eq!(unique_imids(&b.messages), numbered("big", 0..1500));
    assert_eq!(b.messages.len(), 1500, "each once");
    assert_eq!(b.next, None);
    assert_eq!(sb.request_log().count_operation("FindItem"), 15);
    let b = one.fetch(None, 2000).await.unwrap();
    assert_eq!(b.messages.len(), MAX_PAGE);
    assert!(b.next.is_some());
}

/// A fetch with more pages than request slots lists every page before it hands any over, so
/// that acknowledging the first pages as they come (as the handler does) cannot shift the
/// unread listing under the later pages' listings: the fetch hands over exactly the messages
/// first in the folder, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_a_fetchs_first_pages_shifts_none_of_its_later_listings() {
    let (sb, c) = seeded("shift", 60).await;
    let src = Arc::new(paged(c, 5, 3));
    assert_eq!(src.count_waiting().await.unwrap(), Some(60));
    // Each request takes a while, so the first pages are downloaded and acknowledged while
    // the later ones would still be listed.
    sb.admin().set_latency(Some(Latency::fixed(30)));
    // 40 of 60 in pages of 5, three requests in flight: eight pages.
    let (handed, _) = acknowledging_each_part(&src, 40).await;
    sb.admin().set_latency(None);
    assert_eq!(handed.len(), 40, "each once");
    assert_eq!(unique_imids(&handed), numbered("shift", 0..40));
    assert_eq!(src.count_waiting().await.unwrap(), Some(20));
}

/// A fetch with no more pages than request slots lists them all at once; acknowledging the
/// first pages as they come waits until the slowest listing has answered, so that it lists
/// the messages that were there when the fetch began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_wait_for_the_slowest_listing_of_a_fetch() {
    let (sb, c) = seeded("slowlist", 40).await;
    let src = Arc::new(paged(c, 10, 3));
    assert_eq!(src.count_waiting().await.unwrap(), Some(40));
    // The three listings go at once; the last to arrive answers a second late, after the
    // other pages were downloaded and handed over.
    sb.admin()
        .set_faults(ews_faults(2, 1, FaultKind::Slow { millis: 1_000 }));
    let (handed, next) = acknowledging_each_part(&src, 30).await;
    assert_eq!(sb.admin().faults_fired(), 1);
    sb.admin().set_faults(FaultPlan::default());
    assert_eq!(handed.len(), 30, "each once");
    assert_eq!(unique_imids(&handed), numbered("slowlist", 0..30));
    assert_eq!(next.as_ref().map(Cursor::as_str), Some("30"));
    assert_eq!(src.count_waiting().await.unwrap(), Some(10));
}

/// `src.fetch_in_parts(None, max)`, each part marked read as it comes, as the handler does:
/// the messages handed over and the next cursor, once every acknowledgement has ended.
async fn acknowledging_each_part(
    src: &Arc<EwsSource>,
    max: usize,
) -> (Vec<RawMessage>, Option<Cursor>) {
    let handed = Mutex::new(Vec::new());
    let acks = Mutex::new(Vec::new());
    let keep = |part: connector::Batch| {
        assert!(part.failed.is_empty(), "{:?}", part.failed);
        handed.lock().unwrap().extend(part.messages.iter().cloned());
        let src = src.clone();
        acks.lock().unwrap().push(tokio::spawn(async move {
            mark_read(&src, &part.messages).await;
        }));
    };
    let next = src.fetch_in_parts(None, max, &keep).await.unwrap();
    for ack in acks.into_inner().unwrap() {
        ack.await.unwrap();
    }
    (handed.into_inner().unwrap(), next)
}
