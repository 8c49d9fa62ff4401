//! Xero specifics the rest of the product needs: where Xero's endpoints are (real Xero or the
//! sandbox), which scopes to ask for, the Connections API (which organisations a consent reaches),
//! reading the claims of Xero's access tokens, the rate-limited Accounting API [`client`], and
//! the resource [`catalogue`].
//!
//! This crate knows nothing of workflows, storage or web frameworks.

pub mod catalogue;
pub mod client;
pub mod dates;
pub mod limiter;
pub mod testing;

pub use client::{AccessTokens, ApiError, ApiRequest, ApiResponse, Body, Target, XeroClient};
pub use limiter::LimitConfig;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// Xero's hosts, or one origin serving them all (the sandbox).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub revocation: Url,
    pub connections: Url,
    pub api_base: Url,
    /// Where a person registers an app and gets its Client ID and Secret.
    pub developer_portal: Url,
    pub sandbox: bool,
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("built-in URL")
}

impl Endpoints {
    pub fn production() -> Endpoints {
        Endpoints {
            authorize: url("https://login.xero.com/identity/connect/authorize"),
            token: url("https://identity.xero.com/connect/token"),
            revocation: url("https://identity.xero.com/connect/revocation"),
            connections: url("https://api.xero.com/connections"),
            api_base: url("https://api.xero.com/api.xro/2.0/"),
            developer_portal: url("https://developer.xero.com/app/manage"),
            sandbox: false,
        }
    }

    /// The Ledgerflow Xero sandbox at `base` (e.g. `http://127.0.0.1:8090`).
    pub fn sandbox(base: &str) -> Result<Endpoints, url::ParseError> {
        let base = Url::parse(base.trim_end_matches('/'))?;
        let at = |p: &str| base.join(p);
        Ok(Endpoints {
            authorize: at("/identity/connect/authorize")?,
            token: at("/connect/token")?,
            revocation: at("/connect/revocation")?,
            connections: at("/connections")?,
            api_base: at("/api.xro/2.0/")?,
            developer_portal: at("/portal")?,
            sandbox: true,
        })
    }
}

/// Scopes every connection asks for: sign-in identity and refresh tokens.
pub const IDENTITY_SCOPES: &[&str] = &["offline_access", "openid", "profile", "email"];

/// Broad scopes, for apps created before 2 March 2026 (until they migrate, by September 2027).
pub const BROAD_SCOPES: &[&str] = &[
    "accounting.settings",
    "accounting.contacts",
    "accounting.transactions",
    "accounting.attachments",
    "accounting.journals.read",
    "accounting.reports.read",
    "accounting.budgets.read",
];

/// Which family of scopes an app may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeMode {
    Granular,
    Broad,
}

impl ScopeMode {
    pub fn parse(s: &str) -> ScopeMode {
        if s.eq_ignore_ascii_case("broad") {
            ScopeMode::Broad
        } else {
            ScopeMode::Granular
        }
    }
}

/// The default scope string for a mode.
pub fn default_scopes(mode: ScopeMode) -> String {
    let granular = catalogue::granular_scopes();
    let api: &[&str] = match mode {
        ScopeMode::Granular => &granular,
        ScopeMode::Broad => BROAD_SCOPES,
    };
    IDENTITY_SCOPES
        .iter()
        .chain(api)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Normalises a scope string; `offline_access` is always added, since without it the connection
/// dies after 30 minutes.
pub fn normalise_scopes(scopes: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in std::iter::once("offline_access").chain(scopes.split_whitespace()) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// One organisation a consent reaches (Xero's `GET /connections` element).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: String,
    #[serde(default)]
    pub auth_event_id: Option<String>,
    pub tenant_id: String,
    pub tenant_type: String,
    #[serde(default)]
    pub tenant_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    #[error("could not reach Xero: {0}")]
    Transport(String),
    #[error("Xero refused the access token (401): {0}")]
    Unauthorized(String),
    #[error("Xero answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("Xero's answer was not understood: {0}")]
    BadResponse(String),
}

fn transport(e: reqwest::Error) -> XeroError {
    XeroError::Transport(e.without_url().to_string())
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response, XeroError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let auth = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            ["Detail", "Message", "detail", "message", "error"]
                .iter()
                .find_map(|k| v[k].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    if status.as_u16() == 401 {
        let detail = if auth.contains("insufficient_scope") {
            format!("{detail} (insufficient_scope)")
        } else {
            detail
        };
        return Err(XeroError::Unauthorized(detail));
    }
    Err(XeroError::Status {
        status: status.as_u16(),
        message: detail,
    })
}

/// `GET /connections`, optionally only those of one consent.
pub async fn connections(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    access_token: &SecretString,
    auth_event_id: Option<&str>,
) -> Result<Vec<Connection>, XeroError> {
    let mut url = endpoints.connections.clone();
    if let Some(ev) = auth_event_id {
        url.query_pairs_mut().append_pair("authEventId", ev);
    }
    let resp = http
        .get(url)
        .bearer_auth(access_token.expose_secret())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(transport)?;
    check(resp)
        .await?
        .json()
        .await
        .map_err(|e| XeroError::BadResponse(e.to_string()))
}

/// `DELETE /connections/{id}`: the organisation leaves the consent.
pub async fn delete_connection(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    access_token: &SecretString,
    connection_id: &str,
) -> Result<(), XeroError> {
    let url = endpoints
        .connections
        .join(&format!("connections/{connection_id}"))
        .map_err(|e| XeroError::BadResponse(e.to_string()))?;
    let resp = http
        .delete(url)
        .bearer_auth(access_token.expose_secret())
        .send()
        .await
        .map_err(transport)?;
    match check(resp).await {
        Ok(_) => Ok(()),
        // Already gone at Xero: the goal is reached.
        Err(XeroError::Status { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `GET /Organisation` for one tenant: the organisation's name, to prove the connection works.
pub async fn organisation(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    access_token: &SecretString,
    tenant_id: &str,
) -> Result<Value, XeroError> {
    let url = endpoints
        .api_base
        .join("Organisation")
        .map_err(|e| XeroError::BadResponse(e.to_string()))?;
    let resp = http
        .get(url)
        .bearer_auth(access_token.expose_secret())
        .header("xero-tenant-id", tenant_id)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(transport)?;
    let v: Value = check(resp)
        .await?
        .json()
        .await
        .map_err(|e| XeroError::BadResponse(e.to_string()))?;
    v["Organisations"]
        .get(0)
        .cloned()
        .ok_or_else(|| XeroError::BadResponse("no organisation in the answer".into()))
}

/// Claims of an access token (a JWT), read without verifying the signature: the token came
/// straight from Xero's token endpoint, and only informational claims are read.
pub fn access_token_claims(token: &SecretString) -> Option<Value> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = B64URL.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The consent an access token came from (`authentication_event_id`).
pub fn authentication_event_id(token: &SecretString) -> Option<String> {
    access_token_claims(token)?
        .get("authentication_event_id")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_endpoints_live_on_one_origin() {
        let e = Endpoints::sandbox("http://127.0.0.1:8090/").unwrap();
        assert_eq!(e.token.as_str(), "http://127.0.0.1:8090/connect/token");
        assert_eq!(
            e.authorize.as_str(),
            "http://127.0.0.1:8090/identity/connect/authorize"
        );
        assert_eq!(
            e.api_base.join("Organisation").unwrap().as_str(),
            "http://127.0.0.1:8090/api.xro/2.0/Organisation"
        );
        assert_eq!(
            e.connections.join("connections/abc").unwrap().as_str(),
            "http://127.0.0.1:8090/connections/abc"
        );
    }

    #[test]
    fn scopes_always_include_offline_access_once() {
        assert_eq!(
            normalise_scopes("openid accounting.contacts"),
            "offline_access openid accounting.contacts"
        );
        assert_eq!(
            normalise_scopes("offline_access  openid openid"),
            "offline_access openid"
        );
        let granular = default_scopes(ScopeMode::Granular);
        assert!(
            granular.contains("accounting.invoices")
                && !granular.contains("accounting.transactions")
        );
        assert!(default_scopes(ScopeMode::Broad).contains("accounting.transactions"));
    }

    #[test]
    fn event_id_is_read_from_the_token_claims() {
        let payload = B64URL.encode(br#"{"authentication_event_id":"ev-1","scope":["openid"]}"#);
        let token = SecretString::from(format!("h.{payload}.s"));
        assert_eq!(authentication_event_id(&token).as_deref(), Some("ev-1"));
        assert!(authentication_event_id(&SecretString::from("junk".to_string())).is_none());
    }
}
