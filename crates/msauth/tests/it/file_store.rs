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

/// A cache file that other users may read (its tokens may have been copied) or write (its tokens
/// may have been planted) is refused with a typed error naming the mode, before it is parsed;
/// saving does not silently repair it either. Mode 0600 and 0400 are fine.
#[cfg(unix)]
#[test]
fn a_cache_file_open_to_other_users_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let store = FileStore::new(&path);
    let token = CachedToken::refresh_only(RefreshToken::new("rt-perm"));
    store.save(&key("a"), &token).unwrap();
    let chmod =
        |mode: u32| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    for mode in [
        0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o777, 0o610,
    ] {
        chmod(mode);
        let e = store.load(&key("a")).unwrap_err();
        assert_eq!(
            e,
            CacheError::Permissions {
                path: path.display().to_string(),
                mode
            },
            "{mode:o}"
        );
        assert!(e.to_string().contains(&format!("mode {mode:03o}")), "{e}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!format!("{e} {e:?}").contains("rt-perm"));
        let d = AuthError::from(e).diagnosis();
        assert_eq!(d.problem(), Problem::CacheUnusable);
        assert!(d.explain().contains("chmod 600"), "{}", d.explain());
        // Neither save, remove nor the sibling search reads past it.
        assert!(matches!(
            store.save(&key("b"), &token),
            Err(CacheError::Permissions { .. })
        ));
        assert!(matches!(
            store.remove(&key("a")),
            Err(CacheError::Permissions { .. })
        ));
        assert!(matches!(
            store.find_refresh_token(&key("a")),
            Err(CacheError::Permissions { .. })
        ));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            mode,
            "the file was rewritten"
        );
    }
    for mode in [0o600, 0o400] {
        chmod(mode);
        assert_eq!(
            store.load(&key("a")).unwrap().and_then(|t| t.refresh_token),
            Some(RefreshToken::new("rt-perm")),
            "{mode:o}"
        );
    }
    // A file msauth writes is 0600 again, whatever the umask.
    chmod(0o600);
    store.save(&key("b"), &token).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
