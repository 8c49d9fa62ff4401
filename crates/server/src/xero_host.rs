//! The Xero node's host: which organisations and scopes a credential has, and one rate-limited
//! Xero client for the whole process (so every execution shares each organisation's budget),
//! taking its tokens from the token manager.

use std::sync::Arc;

use async_trait::async_trait;
use ledgerflow_engine::CredentialRef;
use ledgerflow_nodes_xero::{Input, Outcome, XeroConnection, XeroHost};
use ledgerflow_store::Store;
use ledgerflow_xero::{AccessTokens, LimitConfig, XeroClient};
use secrecy::SecretString;

use crate::{ServerConfig, Tokens};

/// Access tokens for the Xero client, from the token manager.
pub struct ManagerTokens(pub Arc<Tokens>);

impl AccessTokens for ManagerTokens {
    async fn token(&self, credential_id: &str) -> Result<SecretString, String> {
        self.0
            .access_token(credential_id)
            .await
            .map(|t| t.token)
            .map_err(|e| e.to_string())
    }

    async fn refresh(
        &self,
        credential_id: &str,
        rejected: &SecretString,
    ) -> Result<SecretString, String> {
        self.0
            .force_refresh(credential_id, rejected)
            .await
            .map(|t| t.token)
            .map_err(|e| e.to_string())
    }
}

pub type Client = XeroClient<ManagerTokens>;

pub struct ServerXeroHost {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub client: Arc<Client>,
}

impl ServerXeroHost {
    pub fn new(
        store: Store,
        config: Arc<ServerConfig>,
        tokens: Arc<Tokens>,
        http: reqwest::Client,
    ) -> Self {
        ServerXeroHost {
            store,
            config,
            client: Arc::new(XeroClient::new(
                http,
                ManagerTokens(tokens),
                LimitConfig::default(),
            )),
        }
    }
}

#[async_trait]
impl XeroHost for ServerXeroHost {
    async fn connection(&self, r: &CredentialRef) -> Result<XeroConnection, String> {
        let by_id = match r.id.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => self.store.get_credential(id).await.ok(),
            None => None,
        };
        let cred = match by_id {
            Some(c) => c,
            None => self
                .store
                .list_credentials()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|c| c.type_name == "xeroOAuth2Api" && c.name == r.name)
                .ok_or_else(|| {
                    format!(
                        "Xero credential '{}' does not exist; create it under Credentials (Xero OAuth2 API) with this name and connect it",
                        r.name
                    )
                })?,
        };
        let status = self
            .store
            .oauth_status(&cred.id)
            .await
            .map_err(|e| e.to_string())?;
        match status.status.as_str() {
            "connected" => {}
            "needs_reconnect" => {
                return Err(format!(
                    "Xero credential '{}' needs reconnecting: {}",
                    cred.name,
                    status.status_reason.unwrap_or_default()
                ))
            }
            _ => {
                return Err(format!(
                    "Xero credential '{}' was never connected; open it and click Connect",
                    cred.name
                ))
            }
        }
        let endpoints =
            crate::connect::endpoints(&self.config, &cred).map_err(|e| e.to_string())?;
        let tenants = self
            .store
            .tenants(&cred.id)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|t| (t.tenant_id, t.tenant_name))
            .collect();
        Ok(XeroConnection {
            credential_id: cred.id,
            endpoints,
            tenants,
            granted_scopes: status.granted_scopes,
        })
    }

    async fn run(
        &self,
        connection: &XeroConnection,
        run_key: &str,
        inputs: &[Input],
    ) -> Vec<Outcome> {
        ledgerflow_nodes_xero::run(&self.client, connection, run_key, inputs).await
    }
}
