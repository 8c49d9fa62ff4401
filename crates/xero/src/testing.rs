//! For tests of this and other crates: a real consent against an auto-approving Xero (the
//! sandbox) and a token source that refreshes like the token manager does, with a count of
//! refreshes. Not used by the product.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use ledgerflow_oauth::{ClientAuth, Provider};
use secrecy::SecretString;

use crate::{AccessTokens, Connection, Endpoints};

pub struct ConsentTokens {
    access: Mutex<SecretString>,
    refresh_token: Mutex<SecretString>,
    provider: Provider,
    client: ClientAuth,
    refreshes: AtomicU32,
}

impl ConsentTokens {
    /// Refreshes done through [`AccessTokens::refresh`].
    pub fn refreshes(&self) -> u32 {
        self.refreshes.load(Ordering::SeqCst)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AccessTokens for ConsentTokens {
    async fn token(&self, _: &str) -> Result<SecretString, String> {
        Ok(lock(&self.access).clone())
    }

    async fn refresh(&self, _: &str, _: &SecretString) -> Result<SecretString, String> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let rt = lock(&self.refresh_token).clone();
        let t =
            ledgerflow_oauth::refresh(&reqwest::Client::new(), &self.provider, &self.client, &rt)
                .await
                .map_err(|e| e.to_string())?;
        if let Some(r) = t.refresh_token.clone() {
            *lock(&self.refresh_token) = r;
        }
        *lock(&self.access) = t.access_token.clone();
        Ok(t.access_token)
    }
}

/// Consents as an app on an auto-approving Xero at `endpoints` (no pages), and returns the
/// tokens and the organisations reached.
pub async fn consent(
    endpoints: &Endpoints,
    client_id: &str,
    client_secret: &str,
    redirect_uri: &str,
    scopes: &str,
) -> Result<(ConsentTokens, Vec<Connection>), String> {
    let provider = Provider {
        authorize_url: endpoints.authorize.clone(),
        token_url: endpoints.token.clone(),
        revocation_url: Some(endpoints.revocation.clone()),
    };
    let client = ClientAuth {
        client_id: client_id.to_string(),
        client_secret: Some(SecretString::from(client_secret.to_string())),
    };
    let pkce = ledgerflow_oauth::new_pkce();
    let url = ledgerflow_oauth::authorize_url(
        &provider,
        client_id,
        redirect_uri,
        scopes,
        "state",
        &pkce.challenge,
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("the authorize endpoint did not redirect (is auto-approve on?)")?
        .to_string();
    let code = url::Url::parse(&location)
        .map_err(|e| e.to_string())?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no code in {location}"))?;
    let tokens = ledgerflow_oauth::exchange_code(
        &http,
        &provider,
        &client,
        &code,
        redirect_uri,
        &pkce.verifier,
    )
    .await
    .map_err(|e| e.to_string())?;
    let conns = crate::connections(&http, endpoints, &tokens.access_token, None)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        ConsentTokens {
            access: Mutex::new(tokens.access_token),
            refresh_token: Mutex::new(
                tokens
                    .refresh_token
                    .ok_or("no refresh token (offline_access)")?,
            ),
            provider,
            client,
            refreshes: AtomicU32::new(0),
        },
        conns,
    ))
}
