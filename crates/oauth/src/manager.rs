//! The token manager: the one place that hands out access tokens.
//!
//! - A token is refreshed ahead of expiry (5 minutes, or half its life when it lives shorter).
//! - Refresh is single-flight per credential: within a process by a mutex per credential, and
//!   across processes by a lease in the shared database. After taking the lease the tokens are
//!   read again, so a refresh someone else just did is used instead of repeated.
//! - The rotated refresh token is stored, conditionally on nobody else having refreshed, before
//!   the new access token is handed to anyone. If the process dies after the provider rotated the
//!   token but before it was stored, the old refresh token is still in the database, and Xero
//!   accepts it again within its 30-minute grace period.
//! - `invalid_grant` marks the credential `needs_reconnect` with the reason; later calls fail at
//!   once without calling the provider, so a dead credential causes no retry storm. Transient
//!   failures are remembered for a few seconds, so callers queued behind a failing refresh share its
//!   error instead of each trying again.
//! - [`TokenManager::sweep`] refreshes credentials left idle, so a refresh token never reaches the
//!   provider's idle expiry (Xero: 60 days) unused.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::flow::{self, ClientAuth, OAuthError, Provider};

/// Tokens and status as the store keeps them.
#[derive(Clone)]
pub struct StoredTokens {
    /// `connected` or `needs_reconnect`.
    pub needs_reconnect: Option<String>,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_expires_at_ms: i64,
    /// When the access token was issued (connection or last refresh).
    pub issued_at_ms: i64,
    pub generation: i64,
    pub granted_scope: String,
}

/// The provider and client a credential uses.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub provider: Provider,
    pub client: ClientAuth,
}

/// Storage the manager needs. Implemented over the database by the server.
pub trait TokenStore: Clone + Send + Sync + 'static {
    fn load(
        &self,
        credential_id: &str,
    ) -> impl Future<Output = Result<Option<StoredTokens>, String>> + Send;
    fn client_config(
        &self,
        credential_id: &str,
    ) -> impl Future<Output = Result<ClientConfig, String>> + Send;
    /// Stores refreshed tokens if the stored generation is still `expected_generation`.
    fn save_refreshed(
        &self,
        credential_id: &str,
        expected_generation: i64,
        tokens: &flow::TokenResponse,
        access_expires_at_ms: i64,
        granted_scope: &str,
    ) -> impl Future<Output = Result<bool, String>> + Send;
    fn mark_needs_reconnect(
        &self,
        credential_id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    fn record_error(
        &self,
        credential_id: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> impl Future<Output = Result<bool, String>> + Send;
    fn release_lease(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Credentials whose tokens were last issued before `before_ms`.
    fn idle_since(
        &self,
        before_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, String>> + Send;
}

/// An access token ready to use, with its expiry.
#[derive(Clone)]
pub struct AccessToken {
    pub token: SecretString,
    pub expires_at_ms: i64,
    pub granted_scope: String,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the credential has never been connected; open it and click Connect")]
    NeverConnected,
    #[error("the credential needs reconnecting: {0}")]
    NeedsReconnect(String),
    #[error("refreshing the access token failed: {0}; it will be tried again")]
    Refresh(OAuthError),
    #[error("another process has been refreshing this credential's token for too long; try again")]
    Busy,
    #[error("token storage failed: {0}")]
    Store(String),
}

/// Refresh when less than this is left, or half the token's life if it lives shorter.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;
/// How long a process may hold the refresh lease (longer than a refresh call can take).
const LEASE_TTL_MS: i64 = 30_000;
/// How long callers share the error of a failed (transient) refresh before someone tries again.
const FAILURE_HOLD: Duration = Duration::from_secs(5);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn fresh(expires_at_ms: i64, issued_at_ms: i64, now: i64) -> bool {
    let life = (expires_at_ms - issued_at_ms).max(0);
    let margin = REFRESH_MARGIN_MS.min(life / 2);
    expires_at_ms - margin > now
}

#[derive(Default)]
struct PerCredential {
    lock: Arc<tokio::sync::Mutex<()>>,
    cached: Option<(AccessToken, i64)>,
    failed: Option<(Instant, OAuthError)>,
}

pub struct TokenManager<S: TokenStore> {
    store: S,
    http: reqwest::Client,
    /// Names this process in leases.
    holder: String,
    state: Mutex<HashMap<String, PerCredential>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl<S: TokenStore> TokenManager<S> {
    pub fn new(store: S, http: reqwest::Client) -> Self {
        TokenManager {
            store,
            http,
            holder: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            state: Mutex::new(HashMap::new()),
            refreshes: Default::default(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Refresh calls this process has made to providers.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn with_state<R>(&self, id: &str, f: impl FnOnce(&mut PerCredential) -> R) -> R {
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(id.to_string()).or_default())
    }

    /// Forgets cached tokens of a credential (after a reconnect, disconnect or delete).
    pub fn forget(&self, credential_id: &str) {
        // Keep the per-credential lock: a task may hold it right now.
        self.with_state(credential_id, |s| {
            s.cached = None;
            s.failed = None;
        });
    }

    /// A valid access token for the credential, refreshing it first if it is close to expiry.
    pub async fn access_token(&self, credential_id: &str) -> Result<AccessToken, TokenError> {
        self.get(credential_id, None).await
    }

    /// For a token the provider rejected as expired: refresh unless the stored token is
    /// already a different one (someone refreshed meanwhile), and return the new one.
    pub async fn force_refresh(
        &self,
        credential_id: &str,
        rejected: &SecretString,
    ) -> Result<AccessToken, TokenError> {
        self.get(credential_id, Some(rejected.expose_secret().to_string()))
            .await
    }

    async fn get(&self, id: &str, rejected: Option<String>) -> Result<AccessToken, TokenError> {
        let usable = |t: &AccessToken, issued: i64| {
            fresh(t.expires_at_ms, issued, now_ms())
                && rejected
                    .as_deref()
                    .is_none_or(|r| r != t.token.expose_secret())
        };
        // Fast path: a cached token with time to spare.
        let (lock, cached) = self.with_state(id, |s| (s.lock.clone(), s.cached.clone()));
        if let Some((t, issued)) = &cached {
            if usable(t, *issued) {
                return Ok(t.clone());
            }
        }
        let _guard = lock.lock().await;
        // Someone in this process may have refreshed while we waited.
        if let Some((t, issued)) = self.with_state(id, |s| s.cached.clone()) {
            if usable(&t, issued) {
                return Ok(t);
            }
        }
        let stored = self.load(id).await?;
        if let Some(t) = usable_stored(&stored, &usable) {
            return Ok(self.cache(id, t, stored.issued_at_ms));
        }
        if let Some(err) = self.with_state(id, |s| {
            s.failed
                .as_ref()
                .filter(|(at, _)| at.elapsed() < FAILURE_HOLD)
                .map(|(_, e)| e.clone())
        }) {
            return still_valid(&stored, rejected.as_deref()).ok_or(TokenError::Refresh(err));
        }
        // Across processes: one refresher per credential.
        let lease = format!("oauth-refresh:{id}");
        // One holder name per acquisition: a renewal can never be mistaken for someone else's.
        let holder = format!("{}-{}", self.holder, uuid::Uuid::new_v4().simple());
        let deadline = Instant::now() + Duration::from_millis(LEASE_TTL_MS as u64 + 5_000);
        loop {
            if self
                .store
                .try_lease(&lease, &holder, LEASE_TTL_MS)
                .await
                .map_err(TokenError::Store)?
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let stored = self.load(id).await?;
            if let Some(t) = usable_stored(&stored, &usable) {
                return Ok(self.cache(id, t, stored.issued_at_ms));
            }
            if Instant::now() > deadline {
                return still_valid(&stored, rejected.as_deref()).ok_or(TokenError::Busy);
            }
        }
        // Released when this scope ends, also if the caller stops waiting half way.
        let _release = LeaseGuard {
            store: self.store.clone(),
            name: lease,
            holder,
        };
        let result = self.refresh_holding_lease(id, &usable).await;
        match result {
            // A transient failure while the current token still has time left: use it.
            Err(TokenError::Refresh(e)) => match self
                .load(id)
                .await
                .ok()
                .and_then(|s| still_valid(&s, rejected.as_deref()))
            {
                Some(t) => {
                    tracing::warn!(credential = %id, error = %e, "refresh failed; the current access token is still valid");
                    Ok(t)
                }
                None => Err(TokenError::Refresh(e)),
            },
            other => other,
        }
    }

    async fn load(&self, id: &str) -> Result<StoredTokens, TokenError> {
        let stored = self
            .store
            .load(id)
            .await
            .map_err(TokenError::Store)?
            .ok_or(TokenError::NeverConnected)?;
        if let Some(reason) = &stored.needs_reconnect {
            return Err(TokenError::NeedsReconnect(reason.clone()));
        }
        Ok(stored)
    }

    fn cache(&self, id: &str, t: AccessToken, issued: i64) -> AccessToken {
        self.with_state(id, |s| {
            s.cached = Some((t.clone(), issued));
            s.failed = None;
        });
        t
    }

    async fn refresh_holding_lease(
        &self,
        id: &str,
        usable: &impl Fn(&AccessToken, i64) -> bool,
    ) -> Result<AccessToken, TokenError> {
        // Re-read now that we hold the lease: another process may have just refreshed.
        let stored = self.load(id).await?;
        if let Some(t) = usable_stored(&stored, usable) {
            return Ok(self.cache(id, t, stored.issued_at_ms));
        }
        let Some(refresh_token) = stored.refresh_token.clone() else {
            let reason = "the access token expired and there is no refresh token (the offline_access scope was not granted); reconnect with offline_access";
            self.store
                .mark_needs_reconnect(id, reason)
                .await
                .map_err(TokenError::Store)?;
            return Err(TokenError::NeedsReconnect(reason.into()));
        };
        let config = self
            .store
            .client_config(id)
            .await
            .map_err(TokenError::Store)?;
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let issued = now_ms();
        match flow::refresh(&self.http, &config.provider, &config.client, &refresh_token).await {
            Ok(mut resp) => {
                // A provider may leave the refresh token out (RFC 6749 §6): keep the current one.
                if resp.refresh_token.is_none() {
                    resp.refresh_token = Some(refresh_token.clone());
                }
                let expires = issued + resp.expires_in * 1000;
                let scope = resp
                    .scope
                    .clone()
                    .unwrap_or_else(|| stored.granted_scope.clone());
                let saved = self
                    .store
                    .save_refreshed(id, stored.generation, &resp, expires, &scope)
                    .await
                    .map_err(TokenError::Store)?;
                if !saved {
                    // Only possible if our lease expired mid-call and another process refreshed:
                    // theirs is stored, ours is not; use theirs.
                    tracing::warn!(credential = %id, "a concurrent refresh won; using its tokens");
                    let stored = self.load(id).await?;
                    return Ok(self.cache(id, to_access(&stored), stored.issued_at_ms));
                }
                tracing::info!(credential = %id, "access token refreshed");
                Ok(self.cache(
                    id,
                    AccessToken {
                        token: resp.access_token,
                        expires_at_ms: expires,
                        granted_scope: scope,
                    },
                    issued,
                ))
            }
            Err(OAuthError::InvalidGrant(desc)) => {
                // Someone may have refreshed (or reconnected) since we read the token we used.
                if let Ok(latest) = self.load(id).await {
                    if latest.generation != stored.generation {
                        return Ok(self.cache(id, to_access(&latest), latest.issued_at_ms));
                    }
                }
                let reason = format!(
                    "the provider refused the refresh token (invalid_grant{}); it was revoked, expired after 60 days unused, or already used. Reconnect the credential",
                    desc.map(|d| format!(": {d}")).unwrap_or_default()
                );
                tracing::warn!(credential = %id, "refresh token refused; credential needs reconnecting");
                self.store
                    .mark_needs_reconnect(id, &reason)
                    .await
                    .map_err(TokenError::Store)?;
                self.forget(id);
                Err(TokenError::NeedsReconnect(reason))
            }
            Err(OAuthError::InvalidClient(desc)) => {
                let reason = format!(
                    "the provider refused the client id or secret (invalid_client{}); update the Client Secret and reconnect",
                    desc.map(|d| format!(": {d}")).unwrap_or_default()
                );
                self.store
                    .mark_needs_reconnect(id, &reason)
                    .await
                    .map_err(TokenError::Store)?;
                Err(TokenError::NeedsReconnect(reason))
            }
            Err(e) => {
                tracing::warn!(credential = %id, error = %e, "token refresh failed");
                let _ = self.store.record_error(id, &e.to_string()).await;
                self.with_state(id, |s| s.failed = Some((Instant::now(), e.clone())));
                Err(TokenError::Refresh(e))
            }
        }
    }

    /// Refreshes every connected credential whose tokens were issued more than `idle_for` ago.
    /// Returns (refreshed, failed).
    pub async fn sweep(&self, idle_for: Duration) -> (usize, usize) {
        let before = now_ms() - idle_for.as_millis() as i64;
        let ids = match self.store.idle_since(before).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "token sweep could not list credentials");
                return (0, 0);
            }
        };
        let (mut ok, mut failed) = (0, 0);
        for id in ids {
            // Force a refresh: the current access token may still be fresh.
            let current = self.load(&id).await.map(|s| s.access_token);
            let result = match current {
                Ok(t) => self.force_refresh(&id, &t).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => ok += 1,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(credential = %id, error = %e, "idle credential could not be refreshed");
                }
            }
        }
        (ok, failed)
    }
}

/// The stored access token when it still has at least 30 seconds and is not the rejected one.
fn still_valid(stored: &StoredTokens, rejected: Option<&str>) -> Option<AccessToken> {
    let ok = stored.access_expires_at_ms > now_ms() + 30_000
        && rejected.is_none_or(|r| r != stored.access_token.expose_secret());
    ok.then(|| to_access(stored))
}

/// Releases a refresh lease when dropped, from a task of its own.
struct LeaseGuard<S: TokenStore> {
    store: S,
    name: String,
    holder: String,
}

impl<S: TokenStore> Drop for LeaseGuard<S> {
    fn drop(&mut self) {
        let (store, name, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = store.release_lease(&name, &holder).await {
                    tracing::warn!(lease = %name, error = %e, "could not release the refresh lease; it will expire");
                }
            });
        }
    }
}

fn to_access(stored: &StoredTokens) -> AccessToken {
    AccessToken {
        token: stored.access_token.clone(),
        expires_at_ms: stored.access_expires_at_ms,
        granted_scope: stored.granted_scope.clone(),
    }
}

fn usable_stored(
    stored: &StoredTokens,
    usable: &impl Fn(&AccessToken, i64) -> bool,
) -> Option<AccessToken> {
    let t = to_access(stored);
    usable(&t, stored.issued_at_ms).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_refreshed_five_minutes_early_or_at_half_life() {
        let min = 60_000;
        // 30-minute token: fresh until 5 minutes before expiry.
        assert!(fresh(30 * min, 0, 24 * min));
        assert!(!fresh(30 * min, 0, 26 * min));
        // 2-second token: fresh for its first second.
        assert!(fresh(2_000, 0, 900));
        assert!(!fresh(2_000, 0, 1_100));
    }
}
