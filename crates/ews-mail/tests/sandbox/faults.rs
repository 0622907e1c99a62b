//! Throttling and faults through the sandbox's fault injection and request budget.

use std::time::Duration;

use connector::{ErrorKind, MessageOutbound, MessageSource};
use ews_mail::{EwsOutbound, EwsSource};
use sandbox::{FaultKind, FaultPlan, FaultRule, Protocol};

use crate::support::{app_client, fault_next, message_to_adele, sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_busy_and_503_are_retried_within_limits() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    let src = EwsSource::new(c);
    sb.admin().set_faults(
        FaultPlan::new([
            FaultRule::next(Protocol::Ews, 1, FaultKind::ServerBusy { back_off_ms: 10 }),
            FaultRule::next(Protocol::Ews, 1, FaultKind::ServerError503),
        ])
        .with_seed(1),
    );
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
    assert_eq!(sb.admin().faults_fired(), 2);
    // Persistent busy: retries are capped and the error keeps code, back-off and request id.
    fault_next(
        &sb,
        Protocol::Ews,
        100,
        FaultKind::ServerBusy { back_off_ms: 7 },
    );
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(7)));
    let d = e.response().unwrap();
    assert_eq!(d.server_code.as_deref(), Some("ErrorServerBusy"));
    assert!(d.request_id.is_some());
    assert_eq!(
        sb.admin().faults_fired(),
        4,
        "one attempt plus three retries"
    );
    // A back-off longer than the policy waits for is returned at once.
    fault_next(
        &sb,
        Protocol::Ews,
        100,
        FaultKind::ServerBusy {
            back_off_ms: 600_000,
        },
    );
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(sb.admin().faults_fired(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_not_retried_after_a_reset_connection() {
    let sb = sandbox().await;
    let c = app_client(&sb);
    let out = EwsOutbound::new(c);
    fault_next(&sb, Protocol::Ews, 5, FaultKind::ResetConnection);
    let msg = message_to_adele();
    let e = out.send(&msg).await.unwrap_err();
    assert!(e.may_have_taken_effect(), "{e}");
    assert_eq!(sb.admin().faults_fired(), 1, "no blind retry of a send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_budget_throttling_returns_the_back_off_and_recovers_with_time() {
    let sb = sandbox().await;
    let mut throttle = sandbox::ThrottleConfig::default();
    throttle.budget = Some(2);
    throttle.window_secs = 600;
    sb.admin().set_throttle(throttle);
    let c = app_client(&sb);
    let src = EwsSource::new(c.clone());
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
    assert_eq!(src.count_waiting().await.unwrap(), Some(0));
    // The budget is spent: ErrorServerBusy with a back-off longer than the policy waits for.
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(2) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    // The client now holds its calls for that long: they fail at once, unsent, with the time
    // left, instead of earning one refusal each.
    assert!(c.held_for().is_some_and(|left| left <= wait));
    let refused = sb.request_log().total();
    let e = src.count_waiting().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.delivery(), connector::Delivery::NotSent);
    assert!(
        e.retry_after()
            .is_some_and(|left| left > Duration::from_secs(2) && left <= wait)
    );
    assert_eq!(sb.request_log().total(), refused, "nothing was sent");
    // The sandbox clock moves on instead of the test sleeping; a client that did not hear
    // the refusal (another process, or this one after the wait) is served again.
    sb.admin().advance_clock(601);
    let fresh = EwsSource::new(app_client(&sb));
    assert_eq!(fresh.count_waiting().await.unwrap(), Some(0));
}
