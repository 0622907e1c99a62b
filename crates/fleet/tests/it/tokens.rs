//! PgTokenStore: one sign-in or refresh at a time across the fleet, the lock freed when its
//! holder goes, and a rotated refresh token is what the next worker uses.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet::PgStore;
use msauth::{
    Authority, CacheKey, CachedToken, ClientCredential, ClientSecret, Endpoints, RefreshToken,
    Tenant, TokenProvider, TokenStore,
};

use crate::db_or_skip;

fn key(account: Option<&str>, scopes: &[&str]) -> CacheKey {
    let authority = Authority::custom(
        Endpoints::new(
            "https://login.example/authorize",
            "https://login.example/token",
        )
        .unwrap(),
    );
    CacheKey::new(&authority, "app", account, scopes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_worker_holds_the_lock_at_a_time() {
    let db = db_or_skip!();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let started = Instant::now();
    const WORKERS: usize = 4;
    const ROUNDS: usize = 5;
    for _ in 0..WORKERS {
        // Each worker has its own store (its own pool), as separate processes would.
        let tokens = PgStore::connect(db.url()).await.unwrap().tokens();
        let (inside, most) = (inside.clone(), most.clone());
        // As msauth's provider calls it: on tokio's blocking pool.
        set.spawn_blocking(move || {
            for _ in 0..ROUNDS {
                let guard = tokens.lock().unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                inside.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two workers held the lock at once"
    );
    assert!(started.elapsed() >= Duration::from_millis(20 * (WORKERS * ROUNDS) as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lock_is_freed_by_the_server() {
    let db = db_or_skip!();
    let a = PgStore::connect(db.url()).await.unwrap().tokens();
    let b = PgStore::connect(db.url()).await.unwrap().tokens();
    let held = tokio::task::spawn_blocking(move || a.lock().unwrap())
        .await
        .unwrap();
    let waiting = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        b.lock().map(|g| (g, t.elapsed()))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the lock is held: the second worker waits"
    );
    // The holder's session dies (a SIGKILLed worker's connection does the same) while its
    // guard is still alive in this process.
    let killed: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let (_g, waited) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the lock was freed with its session")
        .unwrap()
        .unwrap();
    assert!(waited >= Duration::from_millis(300));
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_round_trip_and_a_rotated_refresh_token_is_what_the_next_worker_loads() {
    let db = db_or_skip!();
    let one = PgStore::connect(db.url()).await.unwrap().tokens();
    let two = PgStore::connect(db.url()).await.unwrap().tokens();
    tokio::task::spawn_blocking(move || {
        let mail = key(Some("Alice@Contoso.example"), &["Mail.Read"]);
        let ews = key(
            Some("alice@contoso.example"),
            &["https://outlook.office365.com/.default"],
        );
        let app = key(None, &["https://graph.microsoft.com/.default"]);
        assert_eq!(one.load(&mail).unwrap(), None);
        assert_eq!(one.find_refresh_token(&ews).unwrap(), None);
        {
            let _g = one.lock().unwrap();
            one.save(&mail, &CachedToken::refresh_only(RefreshToken::new("rt-1")))
                .unwrap();
        }
        // Rotated by the first worker: the second loads the new one.
        {
            let _g = one.lock().unwrap();
            one.save(&mail, &CachedToken::refresh_only(RefreshToken::new("rt-2")))
                .unwrap();
        }
        let _g = two.lock().unwrap();
        let loaded = two.load(&mail).unwrap().unwrap();
        assert_eq!(loaded.refresh_token, Some(RefreshToken::new("rt-2")));
        // A sibling under other scopes is found for the same account, never for app-only keys.
        assert_eq!(
            two.find_refresh_token(&ews).unwrap(),
            Some((mail.clone(), RefreshToken::new("rt-2")))
        );
        two.save(
            &app,
            &CachedToken::refresh_only(RefreshToken::new("rt-app")),
        )
        .unwrap();
        assert_eq!(two.find_refresh_token(&app).unwrap(), None);
        two.remove(&mail).unwrap();
        assert_eq!(one.load(&mail).unwrap(), None);
        assert_eq!(two.find_refresh_token(&ews).unwrap(), None);
        assert!(one.load(&app).unwrap().is_some());
    })
    .await
    .unwrap();
    // The secrets are stored as msauth's FileStore writes them (the row is the serde form).
    let raw: serde_json::Value = db
        .client()
        .await
        .query_one("SELECT token FROM fleet_tokens", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(raw["refresh_token"], "rt-app");
}

const APP: &str = "00000000-0000-0000-0000-00000000d3e0";
const SECRET: &str = "demo-secret-do-not-use-in-production";

/// Several workers, each its own TokenProvider over its own PgTokenStore, asking the sandbox's
/// identity platform for a token at once: one token request in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_sharing_the_store_make_one_token_request() {
    let db = db_or_skip!();
    let sb = sandbox::Sandbox::builder()
        .seed(sandbox::Seed::demo())
        .start()
        .await
        .unwrap();
    let authority =
        Authority::microsoft_layout(sb.base_url(), Tenant::parse(&sb.tenant_id()).unwrap())
            .unwrap();
    let token_requests = || -> u64 {
        sb.request_log()
            .entries
            .iter()
            .filter(|e| e.path.ends_with("/oauth2/v2.0/token"))
            .map(|e| e.count)
            .sum()
    };
    const WORKERS: usize = 6;
    let mut providers = Vec::new();
    for _ in 0..WORKERS {
        let store = PgStore::connect(db.url()).await.unwrap();
        providers.push(
            TokenProvider::builder(authority.clone(), APP)
                .credential(ClientCredential::Secret(ClientSecret::new(SECRET)))
                .scopes(["https://graph.microsoft.com/.default"])
                .store(Arc::new(store.tokens()))
                .build()
                .unwrap(),
        );
    }
    let before = token_requests();
    let mut set = tokio::task::JoinSet::new();
    for p in &providers {
        for _ in 0..10 {
            let p = p.clone();
            set.spawn(async move { p.access_token().await.map(|t| t.secret().to_owned()) });
        }
    }
    let mut tokens = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        tokens.insert(r.unwrap().unwrap());
    }
    assert_eq!(tokens.len(), 1, "every worker got the one token");
    assert_eq!(token_requests() - before, 1);
}

/// Two workers refreshing in turn, every access token expiring at once: each refresh rotates
/// the refresh token, and a worker that used a superseded one would be refused. None is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_refreshing_in_turn_never_use_a_superseded_refresh_token() {
    let db = db_or_skip!();
    // (current generation, refused requests)
    let state = Arc::new(Mutex::new((0u32, 0u32)));
    let s2 = state.clone();
    let server = test_support::scripted::serve_with(move |req| {
        let mut st = s2.lock().unwrap();
        let sent = req
            .split("refresh_token=")
            .nth(1)
            .map(|v| v.split('&').next().unwrap_or("").trim().to_owned());
        if sent != Some(format!("rt-{}", st.0)) {
            st.1 += 1;
            return test_support::scripted::Reply::new(
                400,
                r#"{"error":"invalid_grant","error_codes":[70008]}"#,
            )
            .header("Content-Type", "application/json");
        }
        st.0 += 1;
        test_support::scripted::Reply::ok(format!(
            r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":0,"refresh_token":"rt-{n}"}}"#,
            n = st.0
        ))
        .header("Content-Type", "application/json")
    })
    .await;
    let authority = Authority::custom(
        Endpoints::new(
            &format!("{}/authorize", server.url),
            &format!("{}/token", server.url),
        )
        .unwrap(),
    );
    const ROUNDS: u32 = 10;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(PgStore::connect(db.url()).await.unwrap().tokens());
        workers.push((
            TokenProvider::builder(authority.clone(), "app")
                .scopes(["Mail.Read"])
                .account("alice")
                .store(store.clone())
                .skew(Duration::ZERO)
                .build()
                .unwrap(),
            store,
        ));
    }
    let key = workers[0].0.cache_key().clone();
    let first = workers[0].1.clone();
    tokio::task::spawn_blocking(move || {
        first.save(&key, &CachedToken::refresh_only(RefreshToken::new("rt-0")))
    })
    .await
    .unwrap()
    .unwrap();
    let mut set = tokio::task::JoinSet::new();
    for (p, _) in &workers {
        let p = p.clone();
        set.spawn(async move {
            for _ in 0..ROUNDS {
                let t = p.access_token().await.unwrap();
                assert!(t.secret().starts_with("at-"));
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let (generation, refused) = *state.lock().unwrap();
    assert_eq!(refused, 0, "a worker used a superseded refresh token");
    assert_eq!(generation, 2 * ROUNDS);
    let (p, store) = &workers[1];
    let (store, key) = (store.clone(), p.cache_key().clone());
    let last = tokio::task::spawn_blocking(move || store.load(&key))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        last.refresh_token,
        Some(RefreshToken::new(format!("rt-{}", 2 * ROUNDS)))
    );
}
