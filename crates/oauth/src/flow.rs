//! The authorization-code flow with PKCE, token refresh and revocation, as plain functions.
//!
//! Confidential clients authenticate to the token endpoint with HTTP Basic (as Xero requires);
//! PKCE (S256) is always used, even with a client secret. Provider error bodies
//! (`{"error":"invalid_grant"}`) become [`OAuthError`] variants a caller can act on.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

/// Where a provider's endpoints are.
#[derive(Debug, Clone)]
pub struct Provider {
    pub authorize_url: Url,
    pub token_url: Url,
    pub revocation_url: Option<Url>,
}

/// How the client proves who it is at the token endpoint.
#[derive(Clone)]
pub struct ClientAuth {
    pub client_id: String,
    /// `None` for public (PKCE-only) clients.
    pub client_secret: Option<SecretString>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A PKCE pair: the verifier stays with us, the challenge goes in the authorize URL.
pub struct Pkce {
    pub verifier: SecretString,
    pub challenge: String,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    B64URL.encode(buf)
}

/// A new PKCE verifier (43 characters, 256 bits) and its S256 challenge.
pub fn new_pkce() -> Pkce {
    let verifier = random_b64(32);
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier: SecretString::from(verifier),
        challenge,
    }
}

/// A new `state` (256 random bits) and the hash under which it is stored.
pub fn new_state() -> (String, String) {
    let state = random_b64(32);
    let hash = state_hash(&state);
    (state, hash)
}

/// The stored form of a `state`: a copy of the database cannot be replayed at the callback.
pub fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The URL to send a person to for consent.
pub fn authorize_url(
    provider: &Provider,
    client_id: &str,
    redirect_uri: &str,
    scopes: &str,
    state: &str,
    pkce_challenge: &str,
) -> Url {
    let mut url = provider.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scopes)
        .append_pair("state", state)
        .append_pair("code_challenge", pkce_challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

/// What a token endpoint returned.
#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

pub struct TokenResponse {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Seconds the access token lives, as the provider said (Xero: 1800).
    pub expires_in: i64,
    /// Space-separated scopes granted, when the provider echoes them.
    pub scope: Option<String>,
    pub id_token: Option<SecretString>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is invalid, used or expired: a person must connect again.
    #[error("the provider refused the grant (invalid_grant{})", describe(.0))]
    InvalidGrant(Option<String>),
    /// Wrong client id or secret.
    #[error("the provider refused the client id or secret (invalid_client{}); check the Client ID and Client Secret", describe(.0))]
    InvalidClient(Option<String>),
    /// Any other error the provider named.
    #[error("the provider answered {status} {error}{}", describe(.description))]
    Provider {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The provider could not be reached, timed out, or broke the connection.
    #[error("could not reach the provider: {0}")]
    Transport(String),
    /// The provider answered something that is not a token response.
    #[error("the provider's answer was not understood: {0}")]
    BadResponse(String),
}

fn describe(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl OAuthError {
    /// Worth trying again later (the provider did not reject the request itself).
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Transport(_) => true,
            OAuthError::Provider { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

fn transport(e: reqwest::Error) -> OAuthError {
    // reqwest's Display never includes request bodies; URLs here carry no secrets.
    OAuthError::Transport(e.without_url().to_string())
}

async fn token_request(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientAuth,
    form: &[(&str, &str)],
) -> Result<TokenResponse, OAuthError> {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut req = http.post(provider.token_url.clone());
    match &client.client_secret {
        Some(secret) => {
            req = req.basic_auth(&client.client_id, Some(secret.expose_secret()));
        }
        None => fields.push(("client_id", &client.client_id)),
    }
    let resp = req
        .header("accept", "application/json")
        .form(&fields)
        .send()
        .await
        .map_err(transport)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(transport)?;
    if !status.is_success() {
        #[derive(Deserialize)]
        struct ErrBody {
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }
        return Err(match serde_json::from_slice::<ErrBody>(&body) {
            Ok(e) if e.error == "invalid_grant" => OAuthError::InvalidGrant(e.error_description),
            Ok(e) if e.error == "invalid_client" => OAuthError::InvalidClient(e.error_description),
            Ok(e) => OAuthError::Provider {
                status: status.as_u16(),
                error: e.error,
                description: e.error_description,
            },
            Err(_) => OAuthError::Provider {
                status: status.as_u16(),
                error: status.canonical_reason().unwrap_or("error").to_string(),
                description: None,
            },
        });
    }
    let raw: RawTokenResponse = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::BadResponse(format!("token response: {e}")))?;
    Ok(TokenResponse {
        access_token: SecretString::from(raw.access_token),
        refresh_token: raw.refresh_token.map(SecretString::from),
        expires_in: raw.expires_in.unwrap_or(1800),
        scope: raw.scope,
        id_token: raw.id_token.map(SecretString::from),
    })
}

/// Exchanges an authorization code (with the PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientAuth,
    code: &str,
    redirect_uri: &str,
    pkce_verifier: &SecretString,
) -> Result<TokenResponse, OAuthError> {
    token_request(
        http,
        provider,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce_verifier.expose_secret()),
        ],
    )
    .await
}

/// Uses a refresh token. With Xero the answer carries a new refresh token; the old one is spent.
pub async fn refresh(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientAuth,
    refresh_token: &SecretString,
) -> Result<TokenResponse, OAuthError> {
    token_request(
        http,
        provider,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ],
    )
    .await
}

/// Revokes a refresh token (and with it the grant). A provider without a revocation endpoint
/// is a no-op.
pub async fn revoke(
    http: &reqwest::Client,
    provider: &Provider,
    client: &ClientAuth,
    token: &SecretString,
) -> Result<(), OAuthError> {
    let Some(url) = &provider.revocation_url else {
        return Ok(());
    };
    let mut req = http.post(url.clone());
    let mut fields = vec![("token", token.expose_secret())];
    match &client.client_secret {
        Some(s) => req = req.basic_auth(&client.client_id, Some(s.expose_secret())),
        None => fields.push(("client_id", client.client_id.as_str())),
    }
    let resp = req.form(&fields).send().await.map_err(transport)?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(OAuthError::Provider {
            status: resp.status().as_u16(),
            error: "revocation failed".into(),
            description: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        let p = new_pkce();
        assert_eq!(p.verifier.expose_secret().len(), 43);
        let expected = B64URL.encode(Sha256::digest(p.verifier.expose_secret().as_bytes()));
        assert_eq!(p.challenge, expected);
        assert_ne!(new_pkce().challenge, p.challenge);
    }

    #[test]
    fn authorize_url_carries_state_pkce_and_exact_redirect() {
        let provider = Provider {
            authorize_url: "https://login.example.com/identity/connect/authorize"
                .parse()
                .unwrap(),
            token_url: "https://id.example.com/connect/token".parse().unwrap(),
            revocation_url: None,
        };
        let (state, hash) = new_state();
        assert_eq!(hash, state_hash(&state));
        let url = authorize_url(
            &provider,
            "cid",
            "http://localhost:8080/rest/oauth2-credential/callback",
            "openid offline_access",
            &state,
            "chal",
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(
            q["redirect_uri"],
            "http://localhost:8080/rest/oauth2-credential/callback"
        );
        assert_eq!(q["state"], state);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid offline_access");
        assert_eq!(q["response_type"], "code");
    }
}
