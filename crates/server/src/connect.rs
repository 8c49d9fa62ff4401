//! Connecting OAuth2 credentials (Xero first): starting consent, the callback, testing,
//! disconnecting organisations and deleting with revocation. Used by the pages, the REST API and
//! the CLI alike, so all three behave the same.
//!
//! Also the database side of the token manager ([`StoreTokens`]).

use std::sync::Arc;

use ledgerflow_oauth::{ClientAuth, ClientConfig, Provider, StoredTokens, TokenError, TokenStore};
use ledgerflow_store::{Credential, StateCheck, Store, Tenant};
use ledgerflow_xero::Endpoints;
use serde::Serialize;

use crate::{AppState, ServerConfig};

/// The redirect path, the same as n8n's so an existing Xero app's redirect URI keeps working.
pub const CALLBACK_PATH: &str = "/rest/oauth2-credential/callback";
/// How long a person has to finish consent.
const STATE_TTL_MS: i64 = 10 * 60 * 1000;

/// Why connecting or using a credential failed, in words for the person who can fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The callback did not come from a consent this server started, or came too late or twice.
    #[error("{0}")]
    BadState(String),
    /// The person declined, or the provider reported an error.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Token(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ledgerflow_store::StoreError> for ConnectError {
    fn from(e: ledgerflow_store::StoreError) -> Self {
        match e {
            ledgerflow_store::StoreError::NotFound(w) => {
                ConnectError::NotFound(format!("{w} not found"))
            }
            other => ConnectError::Internal(other.to_string()),
        }
    }
}

impl From<TokenError> for ConnectError {
    fn from(e: TokenError) -> Self {
        ConnectError::Token(e.to_string())
    }
}

impl From<ConnectError> for crate::error::ApiError {
    fn from(e: ConnectError) -> Self {
        use axum::http::StatusCode;
        let (status, code) = match &e {
            ConnectError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ConnectError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_credential"),
            ConnectError::BadState(_) => (StatusCode::BAD_REQUEST, "invalid_state"),
            ConnectError::Refused(_) => (StatusCode::BAD_REQUEST, "consent_refused"),
            ConnectError::Token(_) => (StatusCode::CONFLICT, "needs_reconnect"),
            ConnectError::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream"),
            ConnectError::Internal(m) => return crate::error::ApiError::internal(m),
        };
        crate::error::ApiError::new(status, code, e.to_string())
    }
}

/// The redirect URL to register with the provider: from the configured public URL only.
pub fn redirect_url(config: &ServerConfig) -> String {
    format!(
        "{}{CALLBACK_PATH}",
        config.public_url.as_str().trim_end_matches('/')
    )
}

/// Xero endpoints for a credential's environment.
pub fn endpoints(
    config: &ServerConfig,
    credential: &Credential,
) -> Result<Endpoints, ConnectError> {
    match credential.data.get("environment").and_then(|v| v.as_str()) {
        Some("sandbox") => {
            let base = config.sandbox_url.as_deref().ok_or_else(|| {
                ConnectError::Invalid(format!(
                    "credential '{}' uses the Xero sandbox, but this server runs without it; start it with `ledgerflow serve --sandbox`",
                    credential.name
                ))
            })?;
            Endpoints::sandbox(base).map_err(|e| ConnectError::Internal(e.to_string()))
        }
        _ => Ok(Endpoints::production()),
    }
}

fn xero_credential(c: &Credential) -> Result<(), ConnectError> {
    if c.type_name != "xeroOAuth2Api" {
        return Err(ConnectError::Invalid(format!(
            "credential '{}' is of type {}, which does not connect with OAuth2",
            c.name, c.type_name
        )));
    }
    Ok(())
}

fn provider(e: &Endpoints) -> Provider {
    Provider {
        authorize_url: e.authorize.clone(),
        token_url: e.token.clone(),
        revocation_url: Some(e.revocation.clone()),
    }
}

async fn client_auth(store: &Store, c: &Credential) -> Result<ClientAuth, ConnectError> {
    let client_id = c
        .data
        .get("clientId")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ConnectError::Invalid(format!(
                "credential '{}' has no Client ID; paste it from your Xero app's Configuration page",
                c.name
            ))
        })?
        .trim()
        .to_string();
    let secrets = store.credential_secrets(&c.id).await?;
    let client_secret = secrets.get("clientSecret").cloned().ok_or_else(|| {
        ConnectError::Invalid(format!(
            "credential '{}' has no Client Secret; generate one on your Xero app's Configuration page and paste it",
            c.name
        ))
    })?;
    Ok(ClientAuth {
        client_id,
        client_secret: Some(client_secret),
    })
}

/// The scopes a credential asks for.
pub fn scopes(c: &Credential) -> String {
    let mode = ledgerflow_xero::ScopeMode::parse(
        c.data
            .get("scopeMode")
            .and_then(|v| v.as_str())
            .unwrap_or("granular"),
    );
    let configured = c
        .data
        .get("scope")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| ledgerflow_xero::default_scopes(mode));
    ledgerflow_xero::normalise_scopes(&configured)
}

/// Starts consent: a single-use `state` bound to the credential and the person, a PKCE
/// verifier, and the provider URL to send them to.
pub async fn start(
    state: &AppState,
    credential_id: &str,
    user_id: &str,
) -> Result<String, ConnectError> {
    let c = state.store.get_credential(credential_id).await?;
    xero_credential(&c)?;
    let endpoints = endpoints(&state.config, &c)?;
    let client = client_auth(&state.store, &c).await?;
    let redirect = redirect_url(&state.config);
    let (oauth_state, hash) = ledgerflow_oauth::new_state();
    let pkce = ledgerflow_oauth::new_pkce();
    state
        .store
        .create_oauth_state(
            &hash,
            &c.id,
            user_id,
            &redirect,
            &pkce.verifier,
            STATE_TTL_MS,
        )
        .await?;
    Ok(ledgerflow_oauth::authorize_url(
        &provider(&endpoints),
        &client.client_id,
        &redirect,
        &scopes(&c),
        &oauth_state,
        &pkce.challenge,
    )
    .to_string())
}

/// What the callback received.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The result of a successful connection.
pub struct Connected {
    pub credential: Credential,
    pub organisations: Vec<Tenant>,
    pub added_now: usize,
}

/// Handles the callback. Nothing about the credential changes unless consent succeeded and the
/// `state` is one this server issued, unused, unexpired, to this same person.
pub async fn finish(
    state: &AppState,
    q: &CallbackQuery,
    signed_in_user: Option<&str>,
) -> Result<Connected, ConnectError> {
    let raw_state = q.state.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        ConnectError::BadState(
            "The answer from Xero has no state, so it cannot be matched to a connection you started. Nothing was changed. Start again with Connect on the credential.".into(),
        )
    })?;
    let pending = match state
        .store
        .take_oauth_state(&ledgerflow_oauth::flow::state_hash(raw_state))
        .await?
    {
        StateCheck::Valid(p) => p,
        StateCheck::Unknown => return Err(ConnectError::BadState(
            "This answer does not belong to a connection started on this server (unknown state). Nothing was changed. Start again with Connect on the credential.".into(),
        )),
        StateCheck::AlreadyUsed => return Err(ConnectError::BadState(
            "This answer was already used (the page was reloaded or the link replayed). Nothing was changed. Check the credential's status, or start again with Connect.".into(),
        )),
        StateCheck::Expired => return Err(ConnectError::BadState(
            "This connection attempt expired: consent must be completed within 10 minutes. Nothing was changed. Start again with Connect.".into(),
        )),
    };
    if signed_in_user != Some(pending.user_id.as_str()) {
        return Err(ConnectError::BadState(
            "This connection was started by a different signed-in person (or you are signed out). Nothing was changed. Sign in and start again with Connect.".into(),
        ));
    }
    if let Some(err) = q.error.as_deref() {
        let detail = q
            .error_description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(ConnectError::Refused(if err == "access_denied" {
            "Access was not granted: consent was cancelled at Xero. Nothing was changed. Click Connect to try again and choose Allow access.".into()
        } else {
            format!("Xero reported an error: {err}{detail}. Nothing was changed. Check the app's settings in Xero's developer portal and connect again.")
        }));
    }
    let code = q.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| {
        ConnectError::Refused("Xero's answer has no authorization code. Nothing was changed. Click Connect to try again.".into())
    })?;
    let c = state.store.get_credential(&pending.credential_id).await?;
    let endpoints = endpoints(&state.config, &c)?;
    let client = client_auth(&state.store, &c).await?;
    let tokens = ledgerflow_oauth::exchange_code(
        &state.http,
        &provider(&endpoints),
        &client,
        code,
        &pending.redirect_uri,
        &pending.pkce_verifier,
    )
    .await
    .map_err(|e| match e {
        ledgerflow_oauth::OAuthError::InvalidClient(_) => ConnectError::Refused(
            "Xero refused the Client ID or Client Secret (invalid_client). Nothing was changed. Copy both again from your app's Configuration page (generate a new secret if needed), save, and connect again.".into(),
        ),
        ledgerflow_oauth::OAuthError::InvalidGrant(_) => ConnectError::Refused(
            "Xero refused the authorization code (invalid_grant): it expired or was already used. Nothing was changed. Click Connect to try again.".into(),
        ),
        other => ConnectError::Upstream(format!("Exchanging the code with Xero failed: {other}. Nothing was changed. Try again.")),
    })?;
    if tokens.refresh_token.is_none() {
        tracing::warn!(credential = %c.id, "consent granted without offline_access: no refresh token");
    }
    let event = ledgerflow_xero::authentication_event_id(&tokens.access_token);
    let conns = ledgerflow_xero::connections(&state.http, &endpoints, &tokens.access_token, None)
        .await
        .map_err(|e| ConnectError::Upstream(format!("Reading the organisations from Xero failed: {e}. Nothing was changed. Try Connect again.")))?;
    let now = ledgerflow_store::now_ms();
    let tenants: Vec<Tenant> = conns
        .iter()
        .map(|conn| Tenant {
            tenant_id: conn.tenant_id.clone(),
            connection_id: conn.id.clone(),
            tenant_name: conn
                .tenant_name
                .clone()
                .unwrap_or_else(|| conn.tenant_id.clone()),
            tenant_type: conn.tenant_type.clone(),
            auth_event_id: conn.auth_event_id.clone(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    let added_now = match &event {
        Some(ev) => tenants
            .iter()
            .filter(|t| t.auth_event_id.as_deref() == Some(ev))
            .count(),
        None => tenants.len(),
    };
    let granted = tokens.scope.clone().unwrap_or_else(|| scopes(&c));
    state
        .store
        .save_connected_tokens(
            &c.id,
            &tokens.access_token,
            tokens.refresh_token.as_ref(),
            now + tokens.expires_in * 1000,
            &granted,
        )
        .await?;
    state.store.upsert_tenants(&c.id, &tenants).await?;
    state.tokens.forget(&c.id);
    tracing::info!(credential = %c.id, organisations = tenants.len(), added_now, "credential connected");
    Ok(Connected {
        organisations: state.store.tenants(&c.id).await?,
        credential: c,
        added_now,
    })
}

/// One organisation's result in a connection test.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganisationCheck {
    pub tenant_id: String,
    pub tenant_name: String,
    pub ok: bool,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub ok: bool,
    pub message: String,
    pub organisations: Vec<OrganisationCheck>,
}

/// Calls Xero with the credential: `/connections`, then `GET /Organisation` per organisation.
pub async fn test(state: &AppState, credential_id: &str) -> Result<TestReport, ConnectError> {
    let c = state.store.get_credential(credential_id).await?;
    xero_credential(&c)?;
    let endpoints = endpoints(&state.config, &c)?;
    let token = match state.tokens.access_token(&c.id).await {
        Ok(t) => t,
        Err(e) => {
            return Ok(TestReport {
                ok: false,
                message: e.to_string(),
                organisations: vec![],
            })
        }
    };
    let conns =
        match ledgerflow_xero::connections(&state.http, &endpoints, &token.token, None).await {
            Ok(c) => c,
            Err(e) => {
                let _ = state.store.record_oauth_error(&c.id, &e.to_string()).await;
                return Ok(TestReport {
                    ok: false,
                    message: format!("Xero's connections endpoint failed: {e}"),
                    organisations: vec![],
                });
            }
        };
    let mut checks = Vec::new();
    for t in state.store.tenants(&c.id).await? {
        let still = conns.iter().any(|conn| conn.tenant_id == t.tenant_id);
        let (ok, message) = if !still {
            (
                false,
                "no longer connected at Xero; reconnect to add it again".to_string(),
            )
        } else {
            match ledgerflow_xero::organisation(&state.http, &endpoints, &token.token, &t.tenant_id)
                .await
            {
                Ok(org) => (
                    true,
                    format!(
                        "GET /Organisation answered: {}",
                        org["Name"].as_str().unwrap_or(&t.tenant_name)
                    ),
                ),
                Err(e) => (false, e.to_string()),
            }
        };
        checks.push(OrganisationCheck {
            tenant_id: t.tenant_id,
            tenant_name: t.tenant_name,
            ok,
            message,
        });
    }
    let ok = !checks.is_empty() && checks.iter().all(|c| c.ok);
    let message = if checks.is_empty() {
        "Connected, but no organisations are authorised; reconnect and tick at least one organisation.".to_string()
    } else if ok {
        format!("Xero answered for all {} organisation(s).", checks.len())
    } else {
        "Some organisations did not answer; see each one.".to_string()
    };
    Ok(TestReport {
        ok,
        message,
        organisations: checks,
    })
}

/// Removes one organisation from the consent at Xero, then from the credential.
pub async fn disconnect(
    state: &AppState,
    credential_id: &str,
    tenant_id: &str,
) -> Result<(), ConnectError> {
    let c = state.store.get_credential(credential_id).await?;
    xero_credential(&c)?;
    let tenant = state
        .store
        .tenants(&c.id)
        .await?
        .into_iter()
        .find(|t| t.tenant_id == tenant_id)
        .ok_or_else(|| {
            ConnectError::NotFound(format!(
                "organisation {tenant_id} is not connected to credential '{}'",
                c.name
            ))
        })?;
    let endpoints = endpoints(&state.config, &c)?;
    let token = state.tokens.access_token(&c.id).await?;
    ledgerflow_xero::delete_connection(
        &state.http,
        &endpoints,
        &token.token,
        &tenant.connection_id,
    )
    .await
    .map_err(|e| {
        ConnectError::Upstream(format!(
            "Xero did not remove the organisation: {e}. Nothing was changed; try again."
        ))
    })?;
    state.store.remove_tenant(&c.id, tenant_id).await?;
    tracing::info!(credential = %c.id, tenant = %tenant_id, "organisation disconnected");
    Ok(())
}

/// Deletes a credential; for a connected OAuth2 credential the refresh token is revoked at the
/// provider first, and a failed revocation stops the deletion unless `force`.
pub async fn delete(
    state: &AppState,
    credential_id: &str,
    force: bool,
) -> Result<(), ConnectError> {
    let c = state.store.get_credential(credential_id).await?;
    // Hold the refresh lease while revoking, so no refresh rotates the token under us (a lease
    // abandoned by a dead process lapses within 30 s).
    let lease = format!("oauth-refresh:{}", c.id);
    let holder = format!("delete-{}", uuid::Uuid::new_v4().simple());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(35);
    while !state.store.try_lease(&lease, &holder, 30_000).await? {
        if std::time::Instant::now() > deadline {
            return Err(ConnectError::Upstream(
                "the credential's token is being refreshed; try deleting again in a moment".into(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let result = revoke_and_delete(state, &c, force).await;
    let _ = state.store.release_lease(&lease, &holder).await;
    result
}

async fn revoke_and_delete(
    state: &AppState,
    c: &Credential,
    force: bool,
) -> Result<(), ConnectError> {
    if c.type_name == "xeroOAuth2Api" {
        if let Some(tokens) = state.store.oauth_tokens(&c.id).await? {
            if let Some(refresh) = tokens.refresh_token {
                let result = async {
                    let endpoints = endpoints(&state.config, c)?;
                    let client = client_auth(&state.store, c).await?;
                    ledgerflow_oauth::revoke(&state.http, &provider(&endpoints), &client, &refresh)
                        .await
                        .map_err(|e| ConnectError::Upstream(e.to_string()))
                }
                .await;
                match result {
                    Ok(()) => tracing::info!(credential = %c.id, "refresh token revoked"),
                    Err(e) if force => tracing::warn!(credential = %c.id, error = %e, "revocation failed; deleting anyway"),
                    Err(e) => {
                        return Err(ConnectError::Upstream(format!(
                            "Could not revoke the connection at Xero ({e}), so the credential was kept. Try again, or delete without revoking."
                        )))
                    }
                }
            }
        }
    }
    state.store.delete_credential(&c.id).await?;
    state.tokens.forget(&c.id);
    Ok(())
}

/// The token manager's storage: the database, plus each credential's client and endpoints.
#[derive(Clone)]
pub struct StoreTokens {
    pub store: Store,
    pub config: Arc<ServerConfig>,
}

fn s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl TokenStore for StoreTokens {
    async fn load(&self, credential_id: &str) -> Result<Option<StoredTokens>, String> {
        let Some(t) = self.store.oauth_tokens(credential_id).await.map_err(s)? else {
            return Ok(None);
        };
        let status = self.store.oauth_status(credential_id).await.map_err(s)?;
        let needs_reconnect = (status.status == "needs_reconnect").then(|| {
            status
                .status_reason
                .unwrap_or_else(|| "reconnect the credential".into())
        });
        Ok(Some(StoredTokens {
            needs_reconnect,
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            access_expires_at_ms: t.access_expires_at,
            issued_at_ms: status.refreshed_at.or(status.connected_at).unwrap_or(0),
            generation: t.generation,
            granted_scope: t.granted_scope,
        }))
    }

    async fn client_config(&self, credential_id: &str) -> Result<ClientConfig, String> {
        let c = self.store.get_credential(credential_id).await.map_err(s)?;
        let e = endpoints(&self.config, &c).map_err(s)?;
        Ok(ClientConfig {
            provider: provider(&e),
            client: client_auth(&self.store, &c).await.map_err(s)?,
        })
    }

    async fn save_refreshed(
        &self,
        credential_id: &str,
        expected_generation: i64,
        tokens: &ledgerflow_oauth::TokenResponse,
        access_expires_at_ms: i64,
        granted_scope: &str,
    ) -> Result<bool, String> {
        self.store
            .save_refreshed_tokens(
                credential_id,
                expected_generation,
                &tokens.access_token,
                tokens.refresh_token.as_ref(),
                access_expires_at_ms,
                granted_scope,
            )
            .await
            .map_err(s)
    }

    async fn mark_needs_reconnect(&self, credential_id: &str, reason: &str) -> Result<(), String> {
        self.store
            .mark_needs_reconnect(credential_id, reason)
            .await
            .map_err(s)
    }

    async fn record_error(&self, credential_id: &str, message: &str) -> Result<(), String> {
        self.store
            .record_oauth_error(credential_id, message)
            .await
            .map_err(s)
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool, String> {
        self.store.try_lease(name, holder, ttl_ms).await.map_err(s)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), String> {
        self.store.release_lease(name, holder).await.map_err(s)
    }

    async fn idle_since(&self, before_ms: i64) -> Result<Vec<String>, String> {
        self.store
            .oauth_credentials_idle_since(before_ms)
            .await
            .map_err(s)
    }
}

/// Keeps refresh tokens alive: every hour, refreshes connected credentials idle for a week,
/// far inside Xero's 60-day idle expiry.
pub async fn run_sweeper(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let (ok, failed) = state
            .tokens
            .sweep(std::time::Duration::from_secs(7 * 86_400))
            .await;
        if ok + failed > 0 {
            tracing::info!(refreshed = ok, failed, "refreshed idle credentials");
        }
    }
}
