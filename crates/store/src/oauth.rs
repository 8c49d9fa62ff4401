//! OAuth data of credentials: pending authorisations (`state` + PKCE verifier), token sets with
//! their status, and the organisations (tenants) a credential reaches.
//!
//! Tokens and PKCE verifiers are sealed by the vault. A `state` is stored only as a hash and is
//! consumed by one conditional update, so it works once, within its expiry, on any process.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::{now_ms, Result, Store, StoreError, OAUTH_STATES, OAUTH_TOKENS};

/// The outcome of presenting a `state` at the callback.
#[derive(Debug)]
pub enum StateCheck {
    Valid(PendingAuthorization),
    Unknown,
    AlreadyUsed,
    Expired,
}

#[derive(Debug)]
pub struct PendingAuthorization {
    pub credential_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub pkce_verifier: SecretString,
}

/// Tokens as stored. `generation` counts refreshes, to tell whether someone else refreshed.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: i64,
    pub granted_scope: String,
    pub generation: i64,
}

/// What a person may see of a credential's connection.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OAuthStatus {
    /// `connected`, `needs_reconnect` or `never_connected`.
    pub status: String,
    pub status_reason: Option<String>,
    pub granted_scopes: Vec<String>,
    pub access_expires_at: Option<i64>,
    pub connected_at: Option<i64>,
    pub refreshed_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// An organisation a credential reaches.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub tenant_id: String,
    pub connection_id: String,
    pub tenant_name: String,
    pub tenant_type: String,
    /// The consent (authentication event) that added it.
    pub auth_event_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn seal_tokens(
    store: &Store,
    credential_id: &str,
    access: &str,
    refresh: Option<&str>,
) -> Result<(Vec<u8>, u32)> {
    let plain = json!({"access_token": access, "refresh_token": refresh}).to_string();
    Ok(store
        .keyring
        .seal(&OAUTH_TOKENS.label(credential_id), plain.as_bytes())?)
}

impl Store {
    /// Records a pending authorisation under the hash of its `state`.
    pub async fn create_oauth_state(
        &self,
        state_hash: &str,
        credential_id: &str,
        user_id: &str,
        redirect_uri: &str,
        pkce_verifier: &SecretString,
        ttl_ms: i64,
    ) -> Result<()> {
        let (sealed, version) = self.keyring.seal(
            &OAUTH_STATES.label(state_hash),
            pkce_verifier.expose_secret().as_bytes(),
        )?;
        let now = now_ms();
        // Old states are dead weight: clear them as new ones are made.
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now - 86_400_000)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, credential_id, user_id, redirect_uri, sealed_verifier, key_version, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(state_hash)
        .bind(credential_id)
        .bind(user_id)
        .bind(redirect_uri)
        .bind(sealed)
        .bind(i64::from(version))
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Consumes a `state`: valid once, before it expires.
    pub async fn take_oauth_state(&self, state_hash: &str) -> Result<StateCheck> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL AND expires_at >= $1",
        )
        .bind(now)
        .bind(state_hash)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT credential_id, user_id, redirect_uri, sealed_verifier, key_version, expires_at, used_at FROM oauth_states WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(StateCheck::Unknown);
        };
        if done.rows_affected() == 0 {
            let used: Option<i64> = row.try_get("used_at")?;
            return Ok(if used.is_some() {
                StateCheck::AlreadyUsed
            } else {
                StateCheck::Expired
            });
        }
        let sealed: Vec<u8> = row.try_get("sealed_verifier")?;
        let version = row.try_get::<i64, _>("key_version")? as u32;
        let verifier = self
            .keyring
            .open(&OAUTH_STATES.label(state_hash), version, &sealed)?;
        Ok(StateCheck::Valid(PendingAuthorization {
            credential_id: row.try_get("credential_id")?,
            user_id: row.try_get("user_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            pkce_verifier: SecretString::from(
                String::from_utf8(verifier)
                    .map_err(|_| StoreError::Corrupt("PKCE verifier".into()))?,
            ),
        }))
    }

    /// Stores tokens from a new consent: status `connected`, errors cleared.
    pub async fn save_connected_tokens(
        &self,
        credential_id: &str,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        access_expires_at: i64,
        granted_scope: &str,
    ) -> Result<()> {
        let (sealed, version) = seal_tokens(
            self,
            credential_id,
            access_token.expose_secret(),
            refresh_token.map(|t| t.expose_secret()),
        )?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO credential_oauth (credential_id, status, status_reason, sealed_tokens, key_version, access_expires_at, granted_scope, connected_at, refreshed_at, generation, last_error, last_error_at, updated_at) \
             VALUES ($1, 'connected', NULL, $2, $3, $4, $5, $6, NULL, 0, NULL, NULL, $6) \
             ON CONFLICT (credential_id) DO UPDATE SET status = 'connected', status_reason = NULL, sealed_tokens = excluded.sealed_tokens, \
             key_version = excluded.key_version, access_expires_at = excluded.access_expires_at, granted_scope = excluded.granted_scope, \
             connected_at = excluded.connected_at, refreshed_at = NULL, generation = credential_oauth.generation + 1, last_error = NULL, last_error_at = NULL, updated_at = excluded.updated_at",
        )
        .bind(credential_id)
        .bind(sealed)
        .bind(i64::from(version))
        .bind(access_expires_at)
        .bind(granted_scope)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores refreshed tokens if nobody else refreshed since `expected_generation`.
    /// Returns false when the stored generation moved on (the caller must re-read).
    pub async fn save_refreshed_tokens(
        &self,
        credential_id: &str,
        expected_generation: i64,
        access_token: &SecretString,
        refresh_token: Option<&SecretString>,
        access_expires_at: i64,
        granted_scope: &str,
    ) -> Result<bool> {
        let (sealed, version) = seal_tokens(
            self,
            credential_id,
            access_token.expose_secret(),
            refresh_token.map(|t| t.expose_secret()),
        )?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE credential_oauth SET sealed_tokens = $1, key_version = $2, access_expires_at = $3, granted_scope = $4, \
             refreshed_at = $5, updated_at = $5, generation = generation + 1, last_error = NULL, last_error_at = NULL, status = 'connected', status_reason = NULL \
             WHERE credential_id = $6 AND generation = $7",
        )
        .bind(sealed)
        .bind(i64::from(version))
        .bind(access_expires_at)
        .bind(granted_scope)
        .bind(now)
        .bind(credential_id)
        .bind(expected_generation)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The stored tokens, or `None` when the credential was never connected.
    pub async fn oauth_tokens(&self, credential_id: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT sealed_tokens, key_version, access_expires_at, granted_scope, generation FROM credential_oauth WHERE credential_id = $1",
        )
        .bind(credential_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.try_get("sealed_tokens")?;
        let version = row.try_get::<i64, _>("key_version")? as u32;
        let plain = self
            .keyring
            .open(&OAUTH_TOKENS.label(credential_id), version, &sealed)?;
        let v: serde_json::Value = serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Corrupt(format!("tokens of credential {credential_id}")))?;
        let access = v["access_token"].as_str().unwrap_or_default().to_string();
        let refresh = v["refresh_token"]
            .as_str()
            .map(|s| SecretString::from(s.to_string()));
        Ok(Some(TokenRecord {
            access_token: SecretString::from(access),
            refresh_token: refresh,
            access_expires_at: row.try_get("access_expires_at")?,
            granted_scope: row.try_get("granted_scope")?,
            generation: row.try_get("generation")?,
        }))
    }

    /// Marks a credential as needing a person to reconnect it; `reason` is shown to them.
    pub async fn mark_needs_reconnect(&self, credential_id: &str, reason: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE credential_oauth SET status = 'needs_reconnect', status_reason = $1, last_error = $1, last_error_at = $2, updated_at = $2 WHERE credential_id = $3",
        )
        .bind(reason)
        .bind(now)
        .bind(credential_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failure that did not end the connection (network, 5xx).
    pub async fn record_oauth_error(&self, credential_id: &str, message: &str) -> Result<()> {
        sqlx::query(
            "UPDATE credential_oauth SET last_error = $1, last_error_at = $2 WHERE credential_id = $3",
        )
        .bind(message)
        .bind(now_ms())
        .bind(credential_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn oauth_status(&self, credential_id: &str) -> Result<OAuthStatus> {
        let row = sqlx::query(
            "SELECT status, status_reason, granted_scope, access_expires_at, connected_at, refreshed_at, last_error, last_error_at FROM credential_oauth WHERE credential_id = $1",
        )
        .bind(credential_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(OAuthStatus {
                status: "never_connected".into(),
                ..Default::default()
            });
        };
        let scope: String = r.try_get("granted_scope")?;
        Ok(OAuthStatus {
            status: r.try_get("status")?,
            status_reason: r.try_get("status_reason")?,
            granted_scopes: scope.split_whitespace().map(str::to_string).collect(),
            access_expires_at: Some(r.try_get("access_expires_at")?),
            connected_at: Some(r.try_get("connected_at")?),
            refreshed_at: r.try_get("refreshed_at")?,
            last_error: r.try_get("last_error")?,
            last_error_at: r.try_get("last_error_at")?,
        })
    }

    /// Removes stored tokens (after revocation); the credential shows `never_connected` again.
    pub async fn clear_oauth(&self, credential_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM credential_oauth WHERE credential_id = $1")
            .bind(credential_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM credential_tenants WHERE credential_id = $1")
            .bind(credential_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Credential ids with tokens whose last refresh (or connection) is older than `before_ms`.
    pub async fn oauth_credentials_idle_since(&self, before_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT credential_id FROM credential_oauth WHERE status = 'connected' AND COALESCE(refreshed_at, connected_at) < $1",
        )
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("credential_id")?))
            .collect()
    }

    /// Adds or updates organisations; those not listed are kept (reconnecting never loses any).
    pub async fn upsert_tenants(&self, credential_id: &str, tenants: &[Tenant]) -> Result<()> {
        let now = now_ms();
        for t in tenants {
            sqlx::query(
                "INSERT INTO credential_tenants (credential_id, tenant_id, connection_id, tenant_name, tenant_type, auth_event_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (credential_id, tenant_id) DO UPDATE SET connection_id = excluded.connection_id, tenant_name = excluded.tenant_name, \
                 tenant_type = excluded.tenant_type, auth_event_id = COALESCE(excluded.auth_event_id, credential_tenants.auth_event_id), updated_at = excluded.updated_at",
            )
            .bind(credential_id)
            .bind(&t.tenant_id)
            .bind(&t.connection_id)
            .bind(&t.tenant_name)
            .bind(&t.tenant_type)
            .bind(t.auth_event_id.as_deref())
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn tenants(&self, credential_id: &str) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT tenant_id, connection_id, tenant_name, tenant_type, auth_event_id, created_at, updated_at FROM credential_tenants WHERE credential_id = $1 ORDER BY tenant_name, tenant_id",
        )
        .bind(credential_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tenant {
                    tenant_id: r.try_get("tenant_id")?,
                    connection_id: r.try_get("connection_id")?,
                    tenant_name: r.try_get("tenant_name")?,
                    tenant_type: r.try_get("tenant_type")?,
                    auth_event_id: r.try_get("auth_event_id")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    pub async fn remove_tenant(&self, credential_id: &str, tenant_id: &str) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM credential_tenants WHERE credential_id = $1 AND tenant_id = $2",
        )
        .bind(credential_id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "organisation {tenant_id} of credential {credential_id}"
            )));
        }
        Ok(())
    }
}
