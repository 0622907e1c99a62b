//! The file store: permissions, atomic replace, survival across instances, corruption.

use msauth::*;

fn key(account: &str) -> CacheKey {
    CacheKey::new(
        &Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap(),
        "app",
        Some(account),
        &["Mail.Read", "offline_access"],
    )
}

#[test]
fn round_trip_mode_and_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileStore::new(&path);
    assert_eq!(store.load(&key("a")).unwrap(), None);
    let _g = store.lock().unwrap();
    let entry = CachedToken::refresh_only(RefreshToken::new("rt-a"));
    store.save(&key("a"), &entry).unwrap();
    store
        .save(
            &key("b"),
            &CachedToken::refresh_only(RefreshToken::new("rt-b")),
        )
        .unwrap();
    drop(_g);
    // A new instance (a restart) sees both.
    let again = FileStore::new(&path);
    assert_eq!(again.load(&key("a")).unwrap(), Some(entry));
    assert_eq!(
        again.load(&key("B")).unwrap().unwrap().refresh_token,
        Some(RefreshToken::new("rt-b"))
    );
    again.remove(&key("a")).unwrap();
    assert_eq!(store.load(&key("a")).unwrap(), None);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn missing_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("a/b/tokens.json"));
    store
        .save(
            &key("a"),
            &CachedToken::refresh_only(RefreshToken::new("rt")),
        )
        .unwrap();
    assert!(store.load(&key("a")).unwrap().is_some());
}

#[test]
fn scope_order_and_case_do_not_split_the_cache() {
    let a = Authority::microsoft(Cloud::Global, Tenant::Organizations).unwrap();
    assert_eq!(
        CacheKey::new(
            &a,
            "app",
            Some("A@x"),
            &["Mail.Read", "offline_access", "mail.read"]
        ),
        CacheKey::new(&a, "app", Some("a@x"), &["offline_access", "Mail.Read"])
    );
    assert_ne!(
        CacheKey::new(&a, "app", None, &["x"]),
        CacheKey::new(&a, "app2", None, &["x"])
    );
}

#[test]
fn corrupt_or_tampered_files_ask_for_a_new_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileStore::new(&path);
    store
        .save(
            &key("a"),
            &CachedToken::refresh_only(RefreshToken::new("rt")),
        )
        .unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    for bad in [
        "".to_owned(),
        "garbage".to_owned(),
        good[..good.len() / 2].to_owned(),
        good.replace("\"rt\"", "\"rt2\""),
        good.replace("\"version\": 1", "\"version\": 9"),
        r#"{"format":"msauth-token-cache","version":1,"entries":[],"checksum":"00"}"#.to_owned(),
    ] {
        std::fs::write(&path, &bad).unwrap();
        let e = store.load(&key("a")).unwrap_err();
        assert!(matches!(e, CacheError::Corrupt { .. }), "{bad}: {e:?}");
        assert!(e.to_string().contains("sign in again"), "{e}");
        assert_eq!(AuthError::from(e).diagnosis().action(), Action::SignIn);
    }
}
