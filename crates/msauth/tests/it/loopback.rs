//! The loopback redirect listener, driven by a fake browser over TCP.

use std::time::Duration;

use msauth::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn browser_get(url: &url::Url, path_and_query: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", url.port().unwrap()))
        .await
        .unwrap();
    s.write_all(format!("GET {path_and_query} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn pending(redirect: url::Url) -> PendingAuthorization {
    let a = Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap();
    AuthorizationRequest::new("app", redirect, ["Mail.Read"])
        .build_with(&a, "s-1".into(), PkceVerifier::new("v".repeat(43)))
        .unwrap()
        .1
}

type Waiting = tokio::task::JoinHandle<Result<AuthorizationCode, AuthError>>;

/// `l` waiting (for `timeout` at most) for the code of a sign-in to its redirect URI: that URI,
/// and the wait.
fn waiting(l: LoopbackListener, timeout: Duration) -> (url::Url, Waiting) {
    let redirect = l.redirect_uri().clone();
    let p = pending(redirect.clone());
    let wait = tokio::spawn(async move { l.wait_for_code(&p, timeout).await });
    (redirect, wait)
}

/// The browser brings the real code with the sign-in's state: answered 200, and the sign-in
/// ends with that code.
async fn assert_the_real_code_ends_it(redirect: &url::Url, wait: Waiting) {
    let page = browser_get(redirect, "/?code=the-real-code&state=s-1").await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert_eq!(wait.await.unwrap().unwrap().secret(), "the-real-code");
}

#[tokio::test]
async fn receives_the_code_after_ignoring_other_paths() {
    let l = LoopbackListener::bind("/callback").await.unwrap();
    let redirect = l.redirect_uri().clone();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(redirect.path(), "/callback");
    let p = pending(redirect.clone());
    let wait = tokio::spawn({
        let p = p.clone();
        async move { l.wait_for_code(&p, Duration::from_secs(30)).await }
    });
    let favicon = browser_get(&redirect, "/favicon.ico").await;
    assert!(favicon.starts_with("HTTP/1.1 404"), "{favicon}");
    let page = browser_get(&redirect, "/callback?code=the-code&state=s-1").await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("text/html") && page.contains("Signed in"));
    assert_eq!(wait.await.unwrap().unwrap().secret(), "the-code");
}

/// Sends each forged request (each must get 400) and checks the sign-in is still waiting
/// after each.
async fn forge(redirect: &url::Url, wait: &Waiting, requests: &[&str]) {
    for r in requests {
        let page = browser_get(redirect, r).await;
        assert!(page.starts_with("HTTP/1.1 400"), "{r}: {page}");
        assert!(!page.contains("Signed in"), "{r}: {page}");
        // Give a listener that (wrongly) stopped a moment to finish its task.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!wait.is_finished(), "the forged {r:?} ended the sign-in");
    }
}

/// Security issue #24: any local process can reach the listener, so an `?error=` without this
/// sign-in's state must not end it; the real redirect that follows is still received.
#[tokio::test]
async fn a_forged_error_without_the_right_state_does_not_end_the_sign_in() {
    let l = LoopbackListener::bind("/").await.unwrap();
    let (redirect, wait) = waiting(l, Duration::from_secs(30));
    forge(
        &redirect,
        &wait,
        &[
            "/?error=access_denied",
            "/?error=access_denied&error_description=AADSTS65004%3A+declined",
            "/?error=access_denied&state=wrong",
            "/?error=access_denied&state=",
            "/?error=access_denied&state=s-1x",
            "/?state=wrong&error=access_denied&state=s-1",
            "/",
        ],
    )
    .await;
    assert_the_real_code_ends_it(&redirect, wait).await;
}

/// A code with a wrong (or no) state is ignored too: it neither ends the sign-in nor is
/// redeemed, and the real code that follows is.
#[tokio::test]
async fn a_forged_code_with_a_wrong_state_is_ignored() {
    let l = LoopbackListener::bind_host("localhost", "/").await.unwrap();
    let (redirect, wait) = waiting(l, Duration::from_secs(30));
    assert_eq!(redirect.host_str(), Some("localhost"));
    forge(
        &redirect,
        &wait,
        &["/?code=x&state=wrong", "/?code=x", "/?code=x&state=S-1"],
    )
    .await;
    assert_the_real_code_ends_it(&redirect, wait).await;
}

/// The real error redirect (it carries the state: Microsoft echoes it) still ends the sign-in
/// with that error, diagnosed.
#[tokio::test]
async fn an_error_with_the_right_state_ends_the_sign_in_with_that_error() {
    let l = LoopbackListener::bind("/").await.unwrap();
    let (redirect, wait) = waiting(l, Duration::from_secs(30));
    let page = browser_get(
        &redirect,
        "/?error=access_denied&error_description=AADSTS65004%3A+declined&state=s-1",
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("Sign-in failed"), "{page}");
    let e = wait.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, AuthError::Redirect(RedirectError::Denied { error, .. }) if error == "access_denied"),
        "{e:?}"
    );
    assert_eq!(e.diagnosis().code(), Some(65004));
}

/// Forged requests alone leave the sign-in waiting until its timeout, which says they were
/// ignored.
#[tokio::test]
async fn forged_requests_alone_end_in_the_timeout() {
    let l = LoopbackListener::bind("/").await.unwrap();
    let (redirect, wait) = waiting(l, Duration::from_millis(500));
    for r in ["/?error=access_denied", "/?code=x&state=wrong"] {
        let page = browser_get(&redirect, r).await;
        assert!(page.starts_with("HTTP/1.1 400"), "{r}: {page}");
    }
    let e = wait.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, AuthError::Timeout(m) if m.contains("2 request(s)")),
        "{e:?}"
    );
}

#[tokio::test]
async fn localhost_redirects_are_also_accepted_on_ipv6() {
    let l = LoopbackListener::bind_host("localhost", "/cb")
        .await
        .unwrap();
    assert!(
        !LoopbackListener::bind("/cb")
            .await
            .unwrap()
            .listens_on_ipv6()
    );
    if !l.listens_on_ipv6() {
        // No IPv6 loopback on this machine: nothing more to check.
        assert!(std::net::TcpListener::bind("[::1]:0").is_err());
        return;
    }
    let (redirect, wait) = waiting(l, Duration::from_secs(30));
    let mut s = tokio::net::TcpStream::connect(("::1", redirect.port().unwrap()))
        .await
        .unwrap();
    s.write_all(b"GET /cb?code=v6-code&state=s-1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert_eq!(wait.await.unwrap().unwrap().secret(), "v6-code");
}

#[tokio::test]
async fn times_out_and_rejects_non_loopback_hosts() {
    let l = LoopbackListener::bind("/").await.unwrap();
    let p = pending(l.redirect_uri().clone());
    let e = l
        .wait_for_code(&p, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Timeout(_)), "{e:?}");
    assert!(e.is_retryable());
    assert!(matches!(
        LoopbackListener::bind_host("example.com", "/").await,
        Err(AuthError::Config(_))
    ));
}

/// The listener is reachable from this machine only: every address it accepts on is a loopback
/// address (no `0.0.0.0`/`[::]` wildcard), with either redirect host.
#[tokio::test]
async fn listens_on_loopback_addresses_only() {
    for host in ["127.0.0.1", "localhost"] {
        let l = LoopbackListener::bind_host(host, "/cb").await.unwrap();
        let addrs = l.local_addrs();
        assert_eq!(addrs.len(), 1 + usize::from(l.listens_on_ipv6()), "{host}");
        let port = l.redirect_uri().port().unwrap();
        for a in addrs {
            assert!(a.ip().is_loopback(), "{host}: {a}");
            assert_eq!(a.port(), port, "{host}: {a}");
        }
        assert!(
            l.local_addrs()
                .iter()
                .any(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST)
        );
    }
}
