//! Two processes refreshing in a loop against one cache file must never lose a rotated refresh
//! token. The test binary re-runs itself (`child_refresher`) as the two children.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msauth::*;

use crate::support::{Reply, Server, authority_at, field};

const ITERATIONS: u32 = 20;

#[test]
fn two_processes_never_lose_a_rotated_refresh_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = Arc::new(Mutex::new((0u32, 0u32))); // (current generation, rejected requests)
    let s2 = state.clone();
    let server = rt.block_on(Server::start(Arc::new(move |seen| {
        let mut st = s2.lock().unwrap();
        if field(&seen.body, "refresh_token") != Some(format!("rt-{}", st.0)) {
            st.1 += 1;
            return Reply::json(400, r#"{"error":"invalid_grant","error_codes":[70008]}"#);
        }
        st.0 += 1;
        // expires_in 0: every access_token() call has to refresh.
        Reply::json(
            200,
            format!(
                r#"{{"access_token":"at-{n}","expires_in":0,"refresh_token":"rt-{n}"}}"#,
                n = st.0
            ),
        )
    })));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("shared.json");
    let store = FileStore::new(&cache);
    let key = CacheKey::new(
        &authority_at(&server.base),
        "app",
        Some("alice"),
        &["Mail.Read"],
    );
    store
        .save(&key, &CachedToken::refresh_only(RefreshToken::new("rt-0")))
        .unwrap();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "cross_process::child_refresher",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("MSAUTH_CHILD_BASE", &server.base)
                .env("MSAUTH_CHILD_CACHE", &cache)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child failed");
    }
    let (generation, rejected) = *state.lock().unwrap();
    assert_eq!(rejected, 0, "a process used a superseded refresh token");
    assert_eq!(generation, 2 * ITERATIONS);
    let last = store.load(&key).unwrap().unwrap();
    assert_eq!(
        last.refresh_token,
        Some(RefreshToken::new(format!("rt-{}", 2 * ITERATIONS)))
    );
    drop(server);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// Run only as a child of the test above.
#[test]
#[ignore = "child process of two_processes_never_lose_a_rotated_refresh_token"]
fn child_refresher() {
    let (Ok(base), Ok(cache)) = (
        std::env::var("MSAUTH_CHILD_BASE"),
        std::env::var("MSAUTH_CHILD_CACHE"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let p = TokenProvider::builder(authority_at(&base), "app")
            .scopes(["Mail.Read"])
            .account("alice")
            .store(Arc::new(FileStore::new(cache)))
            .skew(Duration::ZERO)
            .build()
            .unwrap();
        for _ in 0..ITERATIONS {
            let t = p.access_token().await.unwrap();
            assert!(t.secret().starts_with("at-"));
        }
    });
}
