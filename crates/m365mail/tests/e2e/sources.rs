//! What the sources ask of the server: delta mode run after run, and fetches and
//! acknowledgements in batches.

use test_support::process::run_once_json;

use crate::support::{BIN, deliver_numbered, large_mailbox, records, write_folder_config};

/// `text`, the folder configuration, acknowledging with `lines` instead of moving the mail to
/// `Processed`.
fn acknowledging(text: &str, lines: &str) -> String {
    let text = text.replace("acknowledge = \"move:Processed\"\n", &format!("{lines}\n"));
    assert!(text.contains(lines), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_source_in_delta_mode_hands_over_only_what_is_new_run_after_run() {
    const N: usize = 25;
    let sb = large_mailbox(N).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| {
        acknowledging(&text, "acknowledge = \"mark-read\"\nmode = \"delta\"")
    });

    let first = run_once_json(BIN, &cfg).await;
    let s = &first["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{first}");
    assert_eq!(s["handled"], N as u64 + 2, "{first}");
    // The state lives next to the ledger.
    assert!(out.join("ledger.jsonl").is_file());
    assert!(out.join("graph-delta.json").is_file());

    // Nothing new: the second run finds nothing and hands nothing over, not even to recover it.
    let second = run_once_json(BIN, &cfg).await;
    let s = &second["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{second}");
    assert_eq!(s["handled"], 0, "{second}");
    assert_eq!(s["recovered"], 0, "{second}");

    // New mail is found by the next run, and only it.
    deliver_numbered(&sb, "billing@contoso.example", "n", "new", 3);
    let third = run_once_json(BIN, &cfg).await;
    let s = &third["sources"][0];
    assert_eq!(s["handled"], 3, "{third}");
    assert_eq!(s["per_project"]["BILLING"], 3, "{third}");

    let seen = records(&out);
    assert_eq!(seen.len(), N + 2 + 3);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "handed over more than once: {twice:?}");
    sb.shutdown().await;
}

/// Runs the folder configuration once with its source made an EWS source marking read, with
/// `extra` source keys and a `batch_size` of 300, over 252 waiting messages; checks that each
/// was handled once and answers the FindItem, GetItem and UpdateItem requests it took.
async fn ews_requests(extra: &str) -> [u64; 3] {
    let sb = large_mailbox(250).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| {
        let text = acknowledging(&text, "acknowledge = \"mark-read\"")
            .replace("kind = \"graph\"", &format!("kind = \"ews\"\n{extra}"))
            .replace(&sb.graph_url(), &sb.ews_url())
            .replace("batch_size = 10", "batch_size = 300");
        assert!(text.contains("kind = \"ews\"") && text.contains("batch_size = 300"));
        text
    });
    sb.admin().clear_request_log();
    let summary = run_once_json(BIN, &cfg).await;
    let s = &summary["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{summary}");
    assert_eq!(s["handled"], 252, "{summary}");
    let seen = records(&out);
    assert_eq!(seen.len(), 252);
    assert!(seen.values().all(|n| *n == 1), "handed over more than once");
    let log = sb.request_log();
    let counts = ["FindItem", "GetItem", "UpdateItem"].map(|op| log.count_operation(op));
    sb.shutdown().await;
    counts
}

/// The handler's `batch_size` is the source's fetch size: an EWS source with a batch of 300
/// lists 252 waiting messages with one FindItem (plus the final empty one that says the folder
/// is drained) instead of one per 100, and downloads them in GetItem chunks of 100; the
/// handler gives the source its acknowledgements together, 100 per UpdateItem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ews_source_fetches_as_many_as_the_handler_batch_per_finditem() {
    assert_eq!(ews_requests("").await, [2, 3, 3]);
}

/// With `requests_in_flight`, an EWS source spends its batch in that many smaller requests: a
/// batch of 300 with 6 in flight lists 252 waiting messages in FindItem pages of 50 (and the
/// final listing that finds the folder drained), each followed by its GetItem, and
/// acknowledges them 50 per UpdateItem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ews_source_with_requests_in_flight_spends_its_batch_in_smaller_requests() {
    assert_eq!(
        ews_requests("requests_in_flight = 6\n").await,
        [6 + 1, 6, 6]
    );
}

/// Over Graph, the handler's acknowledgements (here moves to Processed) travel in `$batch`
/// requests, 20 at most per request, never as one request per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_source_acknowledges_in_batches_not_one_request_per_message() {
    let sb = large_mailbox(58).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| {
        let text = text.replace("batch_size = 10", "batch_size = 20");
        assert!(
            text.contains("acknowledge = \"move:Processed\"") && text.contains("batch_size = 20")
        );
        text
    });
    sb.admin().clear_request_log();

    let summary = run_once_json(BIN, &cfg).await;
    let s = &summary["sources"][0];
    assert_eq!(s["handled"], 60, "{summary}");
    assert_eq!(records(&out).len(), 60);
    let log = sb.request_log();
    let single: u64 = log
        .entries
        .iter()
        .filter(|e| e.path.ends_with("/move") || e.method.eq_ignore_ascii_case("PATCH"))
        .map(|e| e.count)
        .sum();
    assert_eq!(single, 0, "no per-message acknowledgement: {log:?}");
    // Three pages of 20: per page one `$batch` of MIME downloads and one of moves.
    assert_eq!(log.count("POST", "/v1.0/$batch"), 6, "{log:?}");
    sb.shutdown().await;
}

/// `acknowledge = "keep"` with delta mode: every message handed over once, run after run, and
/// not one request to change a message: the deltaLink and the ledger are the record, so the
/// mailbox is left as the customer's mail arrived (unread, in the Inbox) and each message costs
/// one request fewer against its budget. Without delta mode it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_in_delta_mode_hands_everything_over_once_without_touching_the_mailbox() {
    const N: usize = 25;
    let sb = large_mailbox(N).await;
    let (_dir, out, cfg) = write_folder_config(&sb, |text| {
        acknowledging(&text, "acknowledge = \"keep\"\nmode = \"delta\"")
    });
    let unread_before = test_support::harness::inbox_count(&sb.admin(), "helpdesk@contoso.example");
    sb.admin().clear_request_log();
    let first = run_once_json(BIN, &cfg).await;
    let s = &first["sources"][0];
    assert_eq!(s["status"], "ONLINE", "{first}");
    assert_eq!(s["handled"], N as u64 + 2, "{first}");
    let second = run_once_json(BIN, &cfg).await;
    assert_eq!(second["sources"][0]["handled"], 0, "{second}");
    assert_eq!(second["sources"][0]["recovered"], 0, "{second}");

    let log = sb.admin().request_log();
    let changes: u64 = log
        .entries
        .iter()
        .chain(log.batch_items.iter())
        .filter(|e| {
            e.method == "PATCH"
                || e.method == "DELETE"
                || (e.method == "POST" && e.path.ends_with("/move"))
        })
        .map(|e| e.count)
        .sum();
    assert_eq!(changes, 0, "a message was changed: {log:?}");
    assert_eq!(
        test_support::harness::inbox_count(&sb.admin(), "helpdesk@contoso.example"),
        unread_before,
        "everything is still in the Inbox"
    );
    let seen = records(&out);
    assert_eq!(seen.len(), N + 2);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");

    // Listing unread mail would hand the same messages out on every pass: refused.
    let (_dir2, _, unread) =
        write_folder_config(&sb, |text| acknowledging(&text, "acknowledge = \"keep\""));
    let refused = std::process::Command::new(BIN)
        .args(["run", "--once", "--config"])
        .arg(&unread)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("acknowledge") && err.contains("delta"),
        "{err}"
    );
    sb.shutdown().await;
}
