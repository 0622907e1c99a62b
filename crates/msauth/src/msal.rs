//! Reading MSAL's unified token cache (the JSON written by MSAL.NET, MSAL Python, MSAL Java…),
//! so a person already signed in with an MSAL-based tool keeps that sign-in.
//!
//! Writing is limited to updating or adding a refresh token ([`MsalCache::set_refresh_token`])
//! and serialising the whole document back ([`MsalCache::to_json`]); every other entry and
//! field is kept as it was read.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::cache::{CacheKey, CachedToken, TokenStore};
use crate::error::CacheError;
use crate::secret::{AccessToken, RefreshToken};

/// Login hosts that MSAL treats as one environment (Microsoft's instance discovery aliases).
const ALIASES: &[&[&str]] = &[
    &[
        "login.microsoftonline.com",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    ],
    &["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    &["login.microsoftonline.us", "login.usgovcloudapi.net"],
];

/// Whether two login hosts are the same cloud.
pub fn same_environment(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || ALIASES.iter().any(|set| {
            set.iter().any(|h| h.eq_ignore_ascii_case(a))
                && set.iter().any(|h| h.eq_ignore_ascii_case(b))
        })
}

/// An account in an MSAL cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsalAccount {
    /// `uid.utid`.
    pub home_account_id: String,
    /// Login host.
    pub environment: String,
    /// Tenant of this account record.
    pub realm: Option<String>,
    /// User principal name.
    pub username: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

/// A refresh token in an MSAL cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsalRefreshToken {
    /// `uid.utid` of the account.
    pub home_account_id: String,
    /// Login host.
    pub environment: String,
    /// The client it was issued to.
    pub client_id: String,
    /// `"1"` for a family-of-client-ids token usable by other Microsoft first-party clients.
    pub family_id: Option<String>,
    /// The token.
    pub secret: RefreshToken,
}

/// An access token in an MSAL cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsalAccessToken {
    /// `uid.utid` of the account.
    pub home_account_id: String,
    /// Login host.
    pub environment: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Tenant.
    pub realm: Option<String>,
    /// Space-separated scopes (`target`).
    pub target: String,
    /// Expiry.
    pub expires_on: SystemTime,
    /// The token.
    pub secret: AccessToken,
}

/// A parsed MSAL unified token cache.
///
/// ```
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/reference/samples/identity/msal-dotnet/SingleCloudTokenCache.json");
/// let cache = msauth::MsalCache::parse(&std::fs::read(path)?)?;
/// let rt = cache.refresh_token_for("0615b6ca-88d4-4884-8729-b178178f7c27", "user2@bogavrilLTD.onmicrosoft.com", "login.microsoftonline.com");
/// assert!(rt.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MsalCache {
    raw: RawDoc,
    accounts: Vec<MsalAccount>,
    refresh_tokens: Vec<MsalRefreshToken>,
    access_tokens: Vec<MsalAccessToken>,
}

/// The document as read, for writing back. Debug is redacted: it holds secrets.
#[derive(Clone, Default)]
struct RawDoc(serde_json::Map<String, Value>);

impl std::fmt::Debug for RawDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawDoc([redacted])")
    }
}

fn corrupt(reason: impl Into<String>) -> CacheError {
    CacheError::Corrupt {
        path: "MSAL token cache".into(),
        reason: reason.into(),
    }
}

fn s(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn req(v: &Value, k: &str, what: &str) -> Result<String, CacheError> {
    s(v, k).ok_or_else(|| corrupt(format!("{what} entry without {k}")))
}

fn entries<'a>(root: &'a Value, section: &str) -> impl Iterator<Item = &'a Value> {
    root.get(section)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
}

/// Removes trailing commas before `}` or `]` outside strings. MSAL.NET writes and accepts them
/// (its JSON reader allows trailing commas; some of its own test caches have them), serde_json
/// does not; no lenient JSON crate is in the workspace, and this is a few lines.
fn strip_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

impl MsalCache {
    /// Parses the cache JSON (a UTF-8 byte-order mark and trailing commas are tolerated).
    /// Unknown sections and fields are ignored. The legacy ADAL/MSAL.NET "dictionary" format is
    /// not supported and gives a clear error.
    pub fn parse(bytes: &[u8]) -> Result<Self, CacheError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))?;
        let root: Value = serde_json::from_str(&strip_trailing_commas(text))
            .map_err(|e| corrupt(format!("not JSON: {e}")))?;
        if root.is_array() {
            return Err(corrupt(
                "legacy dictionary format (list of Key/Value pairs) is not supported; sign in again",
            ));
        }
        if !root.is_object() {
            return Err(corrupt("not an MSAL unified cache object"));
        }
        let mut cache = MsalCache {
            raw: RawDoc(root.as_object().cloned().unwrap_or_default()),
            ..Default::default()
        };
        for v in entries(&root, "Account") {
            cache.accounts.push(MsalAccount {
                home_account_id: req(v, "home_account_id", "Account")?,
                environment: req(v, "environment", "Account")?,
                realm: s(v, "realm"),
                username: s(v, "username"),
                name: s(v, "name"),
            });
        }
        for v in entries(&root, "RefreshToken") {
            cache.refresh_tokens.push(MsalRefreshToken {
                home_account_id: req(v, "home_account_id", "RefreshToken")?,
                environment: req(v, "environment", "RefreshToken")?,
                client_id: req(v, "client_id", "RefreshToken")?,
                family_id: s(v, "family_id").filter(|f| !f.is_empty()),
                secret: RefreshToken::new(req(v, "secret", "RefreshToken")?),
            });
        }
        for v in entries(&root, "AccessToken") {
            // MSAL.NET writes a string of seconds; MSAL Python writes a float.
            let expires: f64 = req(v, "expires_on", "AccessToken")?
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| corrupt("AccessToken expires_on is not a number"))?;
            cache.access_tokens.push(MsalAccessToken {
                home_account_id: req(v, "home_account_id", "AccessToken")?,
                environment: req(v, "environment", "AccessToken")?,
                client_id: req(v, "client_id", "AccessToken")?,
                realm: s(v, "realm"),
                target: s(v, "target").unwrap_or_default(),
                expires_on: crate::token::later(
                    SystemTime::UNIX_EPOCH,
                    Duration::from_secs(expires as u64),
                ),
                secret: AccessToken::new(req(v, "secret", "AccessToken")?),
            });
        }
        Ok(cache)
    }

    /// The accounts.
    pub fn accounts(&self) -> &[MsalAccount] {
        &self.accounts
    }
    /// The refresh tokens.
    pub fn refresh_tokens(&self) -> &[MsalRefreshToken] {
        &self.refresh_tokens
    }
    /// The access tokens.
    pub fn access_tokens(&self) -> &[MsalAccessToken] {
        &self.access_tokens
    }

    /// The refresh token of `client_id` for the account `username` (case-insensitive) at the
    /// login host `environment` (aliases such as `login.windows.net` match).
    pub fn refresh_token_for(
        &self,
        client_id: &str,
        username: &str,
        environment: &str,
    ) -> Option<&MsalRefreshToken> {
        let homes: Vec<&str> = self
            .accounts
            .iter()
            .filter(|a| {
                a.username
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(username))
                    && same_environment(&a.environment, environment)
            })
            .map(|a| a.home_account_id.as_str())
            .collect();
        self.refresh_tokens.iter().find(|rt| {
            rt.client_id.eq_ignore_ascii_case(client_id)
                && homes.contains(&rt.home_account_id.as_str())
                && same_environment(&rt.environment, environment)
        })
    }

    /// Sets the refresh token of `client_id` for `home_account_id` at `environment` (after a
    /// rotation, for instance), adding the entry if there is none. The entry key follows MSAL:
    /// `{home_account_id}-{environment}-refreshtoken-{client_id}--`.
    pub fn set_refresh_token(
        &mut self,
        home_account_id: &str,
        environment: &str,
        client_id: &str,
        token: &RefreshToken,
    ) {
        let existing = self.refresh_tokens.iter_mut().find(|rt| {
            rt.home_account_id == home_account_id
                && rt.client_id.eq_ignore_ascii_case(client_id)
                && same_environment(&rt.environment, environment)
        });
        let (env, key_env) = match existing {
            Some(rt) => {
                rt.secret = token.clone();
                (rt.environment.clone(), rt.environment.clone())
            }
            None => {
                self.refresh_tokens.push(MsalRefreshToken {
                    home_account_id: home_account_id.to_owned(),
                    environment: environment.to_owned(),
                    client_id: client_id.to_owned(),
                    family_id: None,
                    secret: token.clone(),
                });
                (environment.to_owned(), environment.to_owned())
            }
        };
        let section = self
            .raw
            .0
            .entry("RefreshToken")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !section.is_object() {
            *section = Value::Object(serde_json::Map::new());
        }
        if let Some(map) = section.as_object_mut() {
            let found = map.iter_mut().find(|(_, v)| {
                s(v, "home_account_id").as_deref() == Some(home_account_id)
                    && s(v, "client_id").is_some_and(|c| c.eq_ignore_ascii_case(client_id))
                    && s(v, "environment").is_some_and(|e| same_environment(&e, &env))
            });
            match found {
                Some((_, v)) => {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("secret".into(), token.secret().into());
                    }
                }
                None => {
                    let key = format!("{home_account_id}-{key_env}-refreshtoken-{client_id}--")
                        .to_ascii_lowercase();
                    map.insert(
                        key,
                        serde_json::json!({
                            "home_account_id": home_account_id,
                            "environment": key_env,
                            "client_id": client_id,
                            "credential_type": "RefreshToken",
                            "secret": token.secret(),
                        }),
                    );
                }
            }
        }
    }

    /// The whole cache as MSAL JSON (entries and fields not understood here are kept).
    pub fn to_json(&self) -> String {
        Value::Object(self.raw.0.clone()).to_string()
    }

    /// Copies the refresh token for `client_id`/`username` into `store` under `key`, so that a
    /// [`TokenProvider`](crate::TokenProvider) with that key refreshes from it. Returns whether
    /// one was found. Takes the store's lock.
    pub fn import_into(
        &self,
        store: &dyn TokenStore,
        key: &CacheKey,
        client_id: &str,
        username: &str,
        environment: &str,
    ) -> Result<bool, CacheError> {
        let Some(rt) = self.refresh_token_for(client_id, username, environment) else {
            return Ok(false);
        };
        let _guard = store.lock()?;
        store.save(key, &CachedToken::refresh_only(rt.secret.clone()))?;
        Ok(true)
    }
}
