//! Internal submission gets no `Authentication-Results` (the submission half of
//! `tests/it/sender_auth.rs`'s `internal_mail_gets_no_authentication_results`).

use super::common::*;

#[tokio::test]
async fn internal_submission_gets_no_authentication_results() {
    let sb = start().await;
    // Internal submission (Graph sendMail / EWS SendAndSaveCopy).
    let report = crate::delivery::submit(
        sb.state(),
        "adele.vance@contoso.example",
        b"From: adele.vance@contoso.example\r\nTo: billing@contoso.example\r\nSubject: sent\r\n\r\nhi\r\n",
        false,
    )
    .unwrap();
    assert_eq!(report.delivered.len(), 1);
    assert!(auth_results(&headers(&report.delivered[0].2.mime)).is_empty());
}
