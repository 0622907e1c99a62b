//! MSAL unified token caches from MSAL.NET's own test resources.

use std::time::{Duration, SystemTime};

use msauth::*;

fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../testdata/reference/samples/identity/msal-dotnet/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{path}: {e} (MSAL.NET's cache files are committed under testdata/reference/: \
             restore them with `git checkout -- testdata`)"
        )
    })
}

#[test]
fn single_cloud_cache() {
    let c = MsalCache::parse(&sample("SingleCloudTokenCache.json")).unwrap();
    assert_eq!(c.accounts().len(), 2);
    assert_eq!(c.refresh_tokens().len(), 2);
    assert_eq!(c.access_tokens().len(), 2);
    let rt = c
        .refresh_token_for(
            "0615b6ca-88d4-4884-8729-b178178f7c27",
            "USER2@bogavrilLTD.onmicrosoft.com",
            "login.microsoftonline.com",
        )
        .unwrap();
    assert_eq!(
        rt.home_account_id,
        "ae821e4d-f408-451a-af82-882691148603.49f548d0-12b7-4169-a390-bb5304d24462"
    );
    assert_eq!(rt.environment, "login.windows.net");
    assert_eq!(rt.secret.secret(), "secret");
    assert!(!format!("{rt:?}").contains("\"secret\""));
    let at = c
        .access_tokens()
        .iter()
        .find(|a| a.home_account_id == rt.home_account_id)
        .unwrap();
    assert_eq!(
        at.expires_on,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_554_225_481)
    );
    assert!(at.target.contains("User.Read"));
    // Other clients, users or clouds do not match.
    assert!(
        c.refresh_token_for(
            "other-client",
            "user2@bogavrilLTD.onmicrosoft.com",
            "login.microsoftonline.com"
        )
        .is_none()
    );
    assert!(
        c.refresh_token_for(
            "0615b6ca-88d4-4884-8729-b178178f7c27",
            "nobody@x",
            "login.microsoftonline.com"
        )
        .is_none()
    );
    assert!(
        c.refresh_token_for(
            "0615b6ca-88d4-4884-8729-b178178f7c27",
            "user2@bogavrilLTD.onmicrosoft.com",
            "login.microsoftonline.us"
        )
        .is_none()
    );
}

#[test]
fn multi_cloud_multi_tenant_and_python_caches() {
    let c = MsalCache::parse(&sample("MultiCloudTokenCache.json")).unwrap();
    let envs: Vec<&str> = c
        .accounts()
        .iter()
        .map(|a| a.environment.as_str())
        .collect();
    assert!(
        envs.contains(&"login.partner.microsoftonline.cn"),
        "{envs:?}"
    );
    let cn = c
        .accounts()
        .iter()
        .find(|a| a.environment == "login.partner.microsoftonline.cn")
        .unwrap();
    assert_eq!(
        cn.username.as_deref(),
        Some("usercn@cloudcn.partner.onmschina.cn")
    );

    let c = MsalCache::parse(&sample("MultiTenantTokenCache.json")).unwrap();
    // One person, two tenant records: the home account's refresh token is found.
    let rt = c
        .refresh_token_for(
            "1d18b3b0-251b-4714-a02a-9956cec86c2d",
            "user@domain.com",
            "login.microsoftonline.com",
        )
        .unwrap();
    assert_eq!(
        rt.home_account_id,
        "6eeda3a1-c3b9-4e92-a94d-965a50c06de7.72f988bf-86f1-41af-91ab-2d7cd011db47"
    );

    let c = MsalCache::parse(&sample("cachecompat_python.bin")).unwrap();
    // MSAL Python writes expires_on as a float.
    assert_eq!(
        c.access_tokens()[0].expires_on,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_548_847_834)
    );
    assert!(
        c.refresh_token_for(
            "52d50834-b9a0-4948-9f62-1a3d283003d6",
            "abhi@ddobalianoutlook.onmicrosoft.com",
            "login.windows.net"
        )
        .is_some()
    );

    for f in [
        "MultiTenantOBOTokenCache.json",
        "token_cache_one_acc_seed.json",
    ] {
        let c = MsalCache::parse(&sample(f)).unwrap();
        assert!(!c.refresh_tokens().is_empty(), "{f}");
    }
}

#[test]
fn trailing_commas_are_tolerated_and_legacy_formats_refused() {
    // MSAL.NET's "cache from the future" and expected-cache files contain trailing commas.
    let c = MsalCache::parse(&sample("CacheFromTheFuture.json")).unwrap();
    assert!(c.refresh_tokens().iter().any(|r| r.environment == "env_1"));
    MsalCache::parse(&sample("ExpectedTokenCache.json")).unwrap();
    let e = MsalCache::parse(&sample("cachecompat_dotnet_dictionary.bin")).unwrap_err();
    assert!(e.to_string().contains("legacy dictionary"), "{e}");
    for bad in [
        &b"not json"[..],
        b"[1",
        b"42",
        br#"{"RefreshToken":{"k":{"environment":"e"}}}"#,
        b"\xff\xfe",
    ] {
        assert!(
            matches!(MsalCache::parse(bad), Err(CacheError::Corrupt { .. })),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // A comma inside a string stays.
    let c = MsalCache::parse(
        br#"{"Account":{"a":{"home_account_id":"h","environment":"e","username":"x,}"},}}"#,
    )
    .unwrap();
    assert_eq!(c.accounts()[0].username.as_deref(), Some("x,}"));
}

#[tokio::test]
async fn imported_refresh_token_is_used_by_the_provider() {
    let c = MsalCache::parse(&sample("SingleCloudTokenCache.json")).unwrap();
    let server = crate::support::Server::start(std::sync::Arc::new(|seen| {
        assert_eq!(
            crate::support::field(&seen.body, "refresh_token").as_deref(),
            Some("secret")
        );
        crate::support::Reply::json(
            200,
            r#"{"access_token":"new","expires_in":3600,"refresh_token":"rotated"}"#,
        )
    }))
    .await;
    let store = std::sync::Arc::new(MemoryStore::new());
    let p = TokenProvider::builder(server.authority(), "0615b6ca-88d4-4884-8729-b178178f7c27")
        .scopes(["Mail.Read"])
        .account("user2@bogavrilLTD.onmicrosoft.com")
        .store(store.clone())
        .build()
        .unwrap();
    assert!(
        c.import_into(
            store.as_ref(),
            p.cache_key(),
            "0615b6ca-88d4-4884-8729-b178178f7c27",
            "user2@bogavrilLTD.onmicrosoft.com",
            "login.microsoftonline.com"
        )
        .unwrap()
    );
    assert_eq!(p.access_token().await.unwrap().secret(), "new");
    assert_eq!(
        store.load(p.cache_key()).unwrap().unwrap().refresh_token,
        Some(RefreshToken::new("rotated"))
    );
}

#[test]
fn rotated_refresh_token_written_back_keeps_everything_else() {
    let original = sample("SingleCloudTokenCache.json");
    let mut c = MsalCache::parse(&original).unwrap();
    let home = "ae821e4d-f408-451a-af82-882691148603.49f548d0-12b7-4169-a390-bb5304d24462";
    c.set_refresh_token(
        home,
        "login.microsoftonline.com",
        "0615b6ca-88d4-4884-8729-b178178f7c27",
        &RefreshToken::new("rotated-rt"),
    );
    assert!(!format!("{c:?}").contains("rotated-rt"));
    let json = c.to_json();
    let back = MsalCache::parse(json.as_bytes()).unwrap();
    let rt = back
        .refresh_token_for(
            "0615b6ca-88d4-4884-8729-b178178f7c27",
            "user2@bogavrilLTD.onmicrosoft.com",
            "login.windows.net",
        )
        .unwrap();
    assert_eq!(rt.secret.secret(), "rotated-rt");
    assert_eq!(
        rt.environment, "login.windows.net",
        "the existing entry is updated, not duplicated"
    );
    assert_eq!(back.refresh_tokens().len(), 2);
    assert_eq!(back.accounts().len(), 2);
    assert_eq!(back.access_tokens().len(), 2);
    // Fields msauth does not model survive (AppMetadata, client_info, cached_at).
    let before: serde_json::Value =
        serde_json::from_slice(original.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&original))
            .unwrap();
    let after: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(before["AppMetadata"], after["AppMetadata"]);
    assert_eq!(before["AccessToken"], after["AccessToken"]);
    assert_eq!(before["Account"], after["Account"]);

    // A new client gets a new entry with MSAL's key layout.
    c.set_refresh_token(
        home,
        "login.windows.net",
        "NEW-CLIENT",
        &RefreshToken::new("n"),
    );
    let after: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
    let key = format!("{home}-login.windows.net-refreshtoken-new-client--");
    assert_eq!(after["RefreshToken"][&key]["secret"], "n");
    assert_eq!(
        after["RefreshToken"][&key]["credential_type"],
        "RefreshToken"
    );
    assert_eq!(
        MsalCache::parse(c.to_json().as_bytes())
            .unwrap()
            .refresh_tokens()
            .len(),
        3
    );

    // Starting from an empty cache works too.
    let mut empty = MsalCache::parse(b"{}").unwrap();
    empty.set_refresh_token(
        "u.t",
        "login.microsoftonline.com",
        "c",
        &RefreshToken::new("x"),
    );
    assert_eq!(
        MsalCache::parse(empty.to_json().as_bytes())
            .unwrap()
            .refresh_tokens()[0]
            .secret
            .secret(),
        "x"
    );
}
