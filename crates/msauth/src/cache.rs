//! Token cache: keys, entries, the [`TokenStore`] trait, an in-memory store and a file store.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::authority::Authority;
use crate::error::CacheError;
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::token::TokenResponse;

/// What a cached token is for: authority, client, account and scopes (normalised: lower-case,
/// sorted, de-duplicated).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub struct CacheKey {
    /// The authority's [`cache_id`](Authority::cache_id) (its token endpoint).
    pub authority: String,
    /// The client id.
    pub client_id: String,
    /// The account (e.g. UPN), or `None` for app-only tokens.
    pub account: Option<String>,
    /// The scopes.
    pub scopes: Vec<String>,
}

impl CacheKey {
    /// A key; scopes are normalised.
    pub fn new(
        authority: &Authority,
        client_id: &str,
        account: Option<&str>,
        scopes: &[impl AsRef<str>],
    ) -> Self {
        let mut scopes: Vec<String> = scopes
            .iter()
            .map(|s| s.as_ref().to_ascii_lowercase())
            .collect();
        scopes.sort();
        scopes.dedup();
        CacheKey {
            authority: authority.cache_id(),
            client_id: client_id.to_owned(),
            account: account.map(str::to_ascii_lowercase),
            scopes,
        }
    }
}

/// A cached token set.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CachedToken {
    /// The access token, if one is cached.
    pub access_token: Option<AccessToken>,
    /// Access token expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The newest refresh token.
    pub refresh_token: Option<RefreshToken>,
    /// The ID token, if any.
    #[serde(default)]
    pub id_token: Option<IdToken>,
    /// Granted scopes, as reported.
    #[serde(default)]
    pub scope: Option<String>,
}

impl CachedToken {
    /// An entry from a token response. A response without a refresh token keeps `previous`
    /// (the server did not rotate it); a response with one replaces it.
    pub fn from_response(resp: &TokenResponse, previous: Option<RefreshToken>) -> Self {
        CachedToken {
            access_token: Some(resp.access_token.clone()),
            expires_at: unix(resp.expires_at),
            refresh_token: resp.refresh_token.clone().or(previous),
            id_token: resp.id_token.clone(),
            scope: resp.scope.clone(),
        }
    }

    /// An entry holding only a refresh token (e.g. imported from another cache).
    pub fn refresh_only(refresh_token: RefreshToken) -> Self {
        CachedToken {
            access_token: None,
            expires_at: 0,
            refresh_token: Some(refresh_token),
            id_token: None,
            scope: None,
        }
    }

    /// When the access token expires.
    pub fn expires_at(&self) -> SystemTime {
        crate::token::later(SystemTime::UNIX_EPOCH, Duration::from_secs(self.expires_at))
    }

    /// The access token, if it is still valid for at least `skew` after `now`.
    pub fn fresh_access_token(&self, now: SystemTime, skew: Duration) -> Option<&AccessToken> {
        let at = self.access_token.as_ref()?;
        (self.expires_at() > crate::token::later(now, skew)).then_some(at)
    }
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    unix(t)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Proof of exclusive access to a store, released on drop. Stores without cross-process
/// locking return [`StoreGuard::none`].
pub struct StoreGuard {
    _held: Option<Box<dyn Any + Send>>,
}

impl StoreGuard {
    /// A guard that holds nothing.
    pub fn none() -> Self {
        StoreGuard { _held: None }
    }

    /// A guard that keeps `held` (a lock file, a database transaction…) until dropped.
    pub fn new(held: impl Any + Send) -> Self {
        StoreGuard {
            _held: Some(Box::new(held)),
        }
    }
}

impl fmt::Debug for StoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreGuard")
    }
}

/// Where tokens are kept.
///
/// Methods are blocking; the [`TokenProvider`](crate::TokenProvider) calls them on a blocking
/// thread. It always takes [`lock`](Self::lock), then [`load`](Self::load)s (so a token rotated
/// by another process is seen), requests a token, and [`save`](Self::save)s before dropping the
/// guard. Implementations shared between processes must make `lock` exclusive across them.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// Takes exclusive access until the guard is dropped.
    fn lock(&self) -> Result<StoreGuard, CacheError>;
    /// Reads the entry for `key` (from the backing storage, not a stale copy).
    fn load(&self, key: &CacheKey) -> Result<Option<CachedToken>, CacheError>;
    /// Writes the entry for `key`.
    fn save(&self, key: &CacheKey, token: &CachedToken) -> Result<(), CacheError>;
    /// Deletes the entry for `key`.
    fn remove(&self, key: &CacheKey) -> Result<(), CacheError>;

    /// A refresh token of the same authority, client and account saved under *other* scopes
    /// (refresh tokens are bound to user and client, not to a resource), preferring the most
    /// recently refreshed entry, with the key it is saved under. Lets one sign-in serve Graph and
    /// EWS. The default finds none.
    fn find_refresh_token(
        &self,
        key: &CacheKey,
    ) -> Result<Option<(CacheKey, RefreshToken)>, CacheError> {
        let _ = key;
        Ok(None)
    }
}

/// The refresh token of the newest entry that shares `key`'s authority, client and account.
fn sibling_refresh_token<'a>(
    entries: impl Iterator<Item = (&'a CacheKey, &'a CachedToken)>,
    key: &CacheKey,
) -> Option<(CacheKey, RefreshToken)> {
    // App-only entries have no account and no refresh token to share.
    key.account.as_ref()?;
    entries
        .filter(|(k, t)| {
            k.authority == key.authority
                && k.client_id == key.client_id
                && k.account == key.account
                && t.refresh_token.is_some()
        })
        .max_by_key(|(_, t)| t.expires_at)
        .and_then(|(k, t)| Some((k.clone(), t.refresh_token.clone()?)))
}

/// An in-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<CacheKey, CachedToken>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, CachedToken>> {
        // A poisoned map is still a consistent map: every write is a single insert/remove.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TokenStore for MemoryStore {
    fn lock(&self) -> Result<StoreGuard, CacheError> {
        // The provider's single-flight mutex already serialises refreshes in one process.
        Ok(StoreGuard::none())
    }
    fn load(&self, key: &CacheKey) -> Result<Option<CachedToken>, CacheError> {
        Ok(self.map().get(key).cloned())
    }
    fn save(&self, key: &CacheKey, token: &CachedToken) -> Result<(), CacheError> {
        self.map().insert(key.clone(), token.clone());
        Ok(())
    }
    fn remove(&self, key: &CacheKey) -> Result<(), CacheError> {
        self.map().remove(key);
        Ok(())
    }
    fn find_refresh_token(
        &self,
        key: &CacheKey,
    ) -> Result<Option<(CacheKey, RefreshToken)>, CacheError> {
        Ok(sibling_refresh_token(self.map().iter(), key))
    }
}

const FORMAT: &str = "msauth-token-cache";
const VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: CacheKey,
    token: CachedToken,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    format: String,
    version: u32,
    entries: Vec<Entry>,
    checksum: String,
}

/// A JSON file shared safely between processes.
///
/// * created with mode 0600 (Unix); a file that other users may read or write (mode wider than
///   0600, e.g. after a copy or a `chmod`) is refused with [`CacheError::Permissions`];
/// * written atomically (temporary file in the same directory, `fsync`, rename);
/// * locked across processes with an exclusive lock on `<file>.lock` (`std::fs::File::lock`);
/// * a SHA-256 checksum over the entries detects truncation and hand edits: a corrupt or
///   tampered file gives [`CacheError::Corrupt`], asking for a new sign-in.
///
/// ```
/// use msauth::{Authority, CacheKey, CachedToken, Cloud, FileStore, RefreshToken, Tenant, TokenStore};
/// let dir = std::env::temp_dir().join(format!("msauth-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = FileStore::new(dir.join("tokens.json"));
/// let key = CacheKey::new(&Authority::microsoft(Cloud::Global, Tenant::Organizations)?, "app", Some("a@b.c"), &["Mail.Read"]);
/// let _guard = store.lock()?;
/// store.save(&key, &CachedToken::refresh_only(RefreshToken::new("rt")))?;
/// assert_eq!(store.load(&key)?.and_then(|t| t.refresh_token), Some(RefreshToken::new("rt")));
/// # drop(_guard); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path` (the file is created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: std::io::Error) -> CacheError {
        CacheError::Io {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> CacheError {
        CacheError::Corrupt {
            path: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn read_all(&self) -> Result<BTreeMap<CacheKey, CachedToken>, CacheError> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.io(e)),
        };
        // The mode of the file actually opened (not of the path, which could change between a
        // check and the open). A file others may read has leaked its tokens; one others may
        // write may hold tokens they planted: refuse both, as ssh does with its keys.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = file
                .metadata()
                .map_err(|e| self.io(e))?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %self.path.display(), mode = format!("{mode:03o}"), "token cache open to other users");
                return Err(CacheError::Permissions {
                    path: self.path.display().to_string(),
                    mode,
                });
            }
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| self.io(e))?;
        // serde_json's messages name positions and expected tokens, never values.
        let file: FileFormat = serde_json::from_slice(&bytes)
            .map_err(|e| self.corrupt(format!("not a token cache: {e}")))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(self.corrupt(format!(
                "unknown format {:?} version {}",
                file.format, file.version
            )));
        }
        if checksum(&file.entries)? != file.checksum {
            tracing::warn!(path = %self.path.display(), "token cache checksum mismatch");
            return Err(self.corrupt("checksum mismatch (the file was modified outside msauth)"));
        }
        Ok(file.entries.into_iter().map(|e| (e.key, e.token)).collect())
    }

    fn write_all(&self, map: BTreeMap<CacheKey, CachedToken>) -> Result<(), CacheError> {
        let entries: Vec<Entry> = map
            .into_iter()
            .map(|(key, token)| Entry { key, token })
            .collect();
        let file = FileFormat {
            format: FORMAT.into(),
            version: VERSION,
            checksum: checksum(&entries)?,
            entries,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| self.corrupt(e.to_string()))?;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        httpcore::fs::create_private_dir_all(dir)
            .and_then(|()| {
                httpcore::fs::write_atomic(&self.path, &json, httpcore::fs::FileMode::OwnerOnly)
            })
            .map_err(|e| self.io(e))
    }
}

fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o
}

fn checksum(entries: &[Entry]) -> Result<String, CacheError> {
    let bytes = serde_json::to_vec(entries).map_err(|e| CacheError::Corrupt {
        path: String::new(),
        reason: e.to_string(),
    })?;
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    Ok(d.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

impl TokenStore for FileStore {
    fn lock(&self) -> Result<StoreGuard, CacheError> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let f = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| self.io(e))?;
        f.lock().map_err(|e| self.io(e))?;
        Ok(StoreGuard::new(f))
    }

    fn load(&self, key: &CacheKey) -> Result<Option<CachedToken>, CacheError> {
        Ok(self.read_all()?.remove(key))
    }

    fn save(&self, key: &CacheKey, token: &CachedToken) -> Result<(), CacheError> {
        let mut map = self.read_all()?;
        map.insert(key.clone(), token.clone());
        self.write_all(map)
    }

    fn remove(&self, key: &CacheKey) -> Result<(), CacheError> {
        let mut map = self.read_all()?;
        map.remove(key);
        self.write_all(map)
    }

    fn find_refresh_token(
        &self,
        key: &CacheKey,
    ) -> Result<Option<(CacheKey, RefreshToken)>, CacheError> {
        Ok(sibling_refresh_token(self.read_all()?.iter(), key))
    }
}
