//! [`IdentityState`]: what the identity platform remembers between requests — its signing key,
//! authorization codes, refresh tokens, device codes and client-assertion ids seen — held by
//! [`crate::AppState`].

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::jwt;
use crate::locks::lock;

#[derive(Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) user_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) challenge: Option<(String, String)>,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: i64,
    pub(crate) redeemed: bool,
}

#[derive(Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: i64,
    pub(crate) revoked: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

#[derive(Clone)]
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) user_code: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: i64,
    pub(crate) status: DeviceStatus,
    /// Sandbox-clock time of the last poll (for `slow_down`).
    pub(crate) last_poll: Option<i64>,
}

#[derive(Default)]
pub(crate) struct IdInner {
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) refresh: HashMap<String, RefreshGrant>,
    pub(crate) devices: HashMap<String, DeviceGrant>,
    pub(crate) jtis: HashSet<String>,
}

/// Identity-platform state: signing key, outstanding codes, refresh tokens, device codes and
/// assertion ids seen. Its `Debug` shows counts only (codes and tokens are secrets).
pub(crate) struct IdentityState {
    key: jwt::SigningKey,
    inner: Mutex<IdInner>,
    /// Bumped by "expire every access token issued so far".
    token_generation: AtomicU64,
}

impl std::fmt::Debug for IdentityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = lock(&self.inner);
        f.debug_struct("IdentityState")
            .field("codes", &i.codes.len())
            .field("refresh_tokens", &i.refresh.len())
            .field("device_codes", &i.devices.len())
            .finish_non_exhaustive()
    }
}

impl IdentityState {
    pub(crate) fn new() -> Self {
        Self {
            key: jwt::SigningKey::emulator(),
            inner: Mutex::new(IdInner::default()),
            token_generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn key(&self) -> &jwt::SigningKey {
        &self.key
    }

    pub(crate) fn inner(&self) -> std::sync::MutexGuard<'_, IdInner> {
        lock(&self.inner)
    }

    /// The generation new access tokens carry; a token of an older generation is expired.
    pub(crate) fn token_generation(&self) -> u64 {
        self.token_generation.load(Ordering::SeqCst)
    }

    /// Makes every access token issued so far count as expired, and only those: a token issued
    /// a moment later (even within the same second) is valid. A timestamp cut-off could not
    /// tell them apart, because `iat` has whole seconds, and a client refreshing right after
    /// the expiry got a dead token again.
    pub(crate) fn expire_issued_tokens(&self) {
        self.token_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Revokes every refresh token of a user (optionally only for one app). Returns how many.
    pub(crate) fn revoke_refresh_tokens(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
    ) -> usize {
        let mut i = self.inner();
        let mut n = 0;
        for g in i.refresh.values_mut() {
            if user_id.is_none_or(|u| u == g.user_id)
                && client_id.is_none_or(|c| c.eq_ignore_ascii_case(&g.client_id))
                && !g.revoked
            {
                g.revoked = true;
                n += 1;
            }
        }
        n
    }
}
