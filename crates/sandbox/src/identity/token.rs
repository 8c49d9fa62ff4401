//! The token endpoint (authorization code with PKCE; refresh-token rotation with a grace period
//! and idle expiry), token signing, and revocation.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::chrono_duration;
use crate::state::{lock, random_token, App, Grant, IntegrationType, RefreshRecord, Sandbox};

/// A token endpoint error, `{"error": "…"}` with status 400 as Xero sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
}

impl TokenError {
    fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({"error": self.code()}))).into_response()
    }
}

/// Reads the form body and authenticates the client (HTTP Basic or body credentials; PKCE apps
/// send only `client_id`).
fn client_and_form(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(App, HashMap<String, String>), TokenError> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(|b64| {
            let decoded = STANDARD
                .decode(b64.trim())
                .map_err(|_| TokenError::InvalidClient)?;
            let text = String::from_utf8(decoded).map_err(|_| TokenError::InvalidClient)?;
            let (id, secret) = text.split_once(':').ok_or(TokenError::InvalidClient)?;
            Ok::<_, TokenError>((id.to_owned(), Some(secret.to_owned())))
        })
        .transpose()?;
    let (client_id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id")
                .cloned()
                .ok_or(TokenError::InvalidClient)?,
            form.get("client_secret").cloned(),
        ),
    };
    let app = lock(&sandbox.world)
        .app(&client_id)
        .cloned()
        .ok_or(TokenError::InvalidClient)?;
    match (app.integration_type, &app.client_secret, secret) {
        (IntegrationType::Pkce, _, None) => {}
        (_, Some(expected), Some(given))
            if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) => {}
        _ => return Err(TokenError::InvalidClient),
    }
    Ok((app, form))
}

pub(super) async fn token(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let grant_type = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let result =
        client_and_form(&sandbox, &headers, &body).and_then(|(app, form)| {
            match grant_type.as_str() {
                "authorization_code" => exchange_code(&sandbox, &app, &form),
                "refresh_token" => refresh(&sandbox, &app, &form),
                "client_credentials" => Err(TokenError::UnauthorizedClient),
                _ => Err(TokenError::UnsupportedGrantType),
            }
        });
    let outcome = if result.is_ok() { "ok" } else { "error" };
    *lock(&sandbox.counters)
        .grant_types
        .entry(format!("{grant_type} {outcome}"))
        .or_default() += 1;
    match result {
        Ok(tokens) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(tokens),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

fn verify_pkce(challenge: &(String, String), verifier: Option<&String>) -> bool {
    let Some(verifier) = verifier else {
        return false;
    };
    let computed = match challenge.1.as_str() {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.clone(),
    };
    bool::from(computed.as_bytes().ct_eq(challenge.0.as_bytes()))
}

fn exchange_code(
    sandbox: &Sandbox,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    let code = form.get("code").ok_or(TokenError::InvalidRequest)?;
    let now = sandbox.clock.now();
    let mut world = lock(&sandbox.world);
    let entry = world.codes.get_mut(code).ok_or(TokenError::InvalidGrant)?;
    if entry.used || entry.expires <= now || entry.client_id != app.client_id {
        return Err(TokenError::InvalidGrant);
    }
    if form.get("redirect_uri") != Some(&entry.redirect_uri) {
        return Err(TokenError::InvalidGrant);
    }
    match &entry.challenge {
        Some(challenge) if !verify_pkce(challenge, form.get("code_verifier")) => {
            return Err(TokenError::InvalidGrant)
        }
        Some(_) => {}
        None if app.integration_type == IntegrationType::Pkce => {
            return Err(TokenError::InvalidGrant)
        }
        None => {}
    }
    entry.used = true;
    let code = entry.clone();
    let grant_id = Uuid::new_v4();
    world.grants.insert(
        grant_id,
        Grant {
            client_id: app.client_id.clone(),
            user_id: code.user_id,
            auth_event_id: code.auth_event_id,
            scopes: code.scopes.clone(),
            revoked: false,
        },
    );
    drop(world);
    Ok(issue_tokens(sandbox, grant_id, code.nonce.as_deref()))
}

fn refresh(
    sandbox: &Sandbox,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    let presented = form
        .get("refresh_token")
        .ok_or(TokenError::InvalidRequest)?;
    let now = sandbox.clock.now();
    let grace = chrono_duration(sandbox.config.refresh_grace);
    let idle = chrono_duration(sandbox.config.refresh_idle_expiry);
    let grant_id = {
        let mut world = lock(&sandbox.world);
        let record = world
            .refresh_tokens
            .get(presented)
            .cloned()
            .ok_or(TokenError::InvalidGrant)?;
        let grant = world
            .grants
            .get(&record.grant_id)
            .ok_or(TokenError::InvalidGrant)?;
        if grant.revoked || grant.client_id != app.client_id {
            return Err(TokenError::InvalidGrant);
        }
        let usable = match record.rotated {
            None => now - record.issued <= idle,
            Some(rotated) => now - rotated <= grace,
        };
        if !usable {
            return Err(TokenError::InvalidGrant);
        }
        if record.rotated.is_none() {
            if let Some(r) = world.refresh_tokens.get_mut(presented) {
                r.rotated = Some(now);
            }
        }
        // Rotated tokens past their grace period can never be used again: forget them.
        world
            .refresh_tokens
            .retain(|_, r| r.rotated.is_none_or(|at| now - at <= grace));
        record.grant_id
    };
    Ok(issue_tokens(sandbox, grant_id, None))
}

/// Signs an access token (and id token when `openid` was granted) and, with `offline_access`,
/// adds a new refresh token to the grant.
fn issue_tokens(sandbox: &Sandbox, grant_id: Uuid, nonce: Option<&str>) -> Value {
    let now = sandbox.clock.now();
    let mut world = lock(&sandbox.world);
    let Some(grant) = world.grants.get(&grant_id).cloned() else {
        return json!({"error": "invalid_grant"});
    };
    let ttl = sandbox.config.access_token_ttl.as_secs() as i64;
    let iat = now.timestamp();
    let sub = grant.user_id.simple().to_string();
    let access = sandbox.signer.sign(&json!({
        "nbf": iat,
        "exp": iat + ttl,
        "iat": iat,
        "iss": sandbox.base_url,
        "aud": format!("{}/resources", sandbox.base_url),
        "client_id": grant.client_id,
        "sub": sub,
        "auth_time": iat,
        "xero_userid": grant.user_id,
        "global_session_id": grant_id.simple().to_string(),
        "sid": grant_id.simple().to_string(),
        "jti": Uuid::new_v4().simple().to_string(),
        "authentication_event_id": grant.auth_event_id,
        "scope": grant.scopes,
        "amr": ["pwd"],
    }));
    let mut response = json!({
        "access_token": access,
        "expires_in": ttl,
        "token_type": "Bearer",
        "scope": grant.scopes.join(" "),
    });
    if grant.scopes.iter().any(|s| s == "offline_access") {
        let refresh = random_token(64);
        world.refresh_tokens.insert(
            refresh.clone(),
            RefreshRecord {
                grant_id,
                issued: now,
                rotated: None,
            },
        );
        response["refresh_token"] = json!(refresh);
    }
    if grant.scopes.iter().any(|s| s == "openid") {
        if let Some(user) = world.user(grant.user_id) {
            let mut claims = json!({
                "nbf": iat, "exp": iat + 300, "iat": iat,
                "iss": sandbox.base_url, "aud": grant.client_id,
                "sub": sub, "auth_time": iat, "at_hash": URL_SAFE_NO_PAD.encode(&Sha256::digest(access.as_bytes())[..16]),
                "xero_userid": user.id, "global_session_id": grant_id.simple().to_string(),
                "sid": grant_id.simple().to_string(),
            });
            if grant.scopes.iter().any(|s| s == "email") {
                claims["email"] = json!(user.email);
                claims["preferred_username"] = json!(user.email);
            }
            if grant.scopes.iter().any(|s| s == "profile") {
                claims["given_name"] = json!(user.given_name);
                claims["family_name"] = json!(user.family_name);
                claims["name"] = json!(format!("{} {}", user.given_name, user.family_name));
            }
            if let Some(nonce) = nonce {
                claims["nonce"] = json!(nonce);
            }
            response["id_token"] = json!(sandbox.signer.sign(&claims));
        }
    }
    response
}

pub(super) async fn revocation(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (app, form) = match client_and_form(&sandbox, &headers, &body) {
        Ok(pair) => pair,
        Err(error) => return error.into_response(),
    };
    let Some(token) = form.get("token") else {
        return TokenError::InvalidRequest.into_response();
    };
    let mut world = lock(&sandbox.world);
    let grant_id = world.refresh_tokens.get(token).map(|r| r.grant_id);
    if let Some(grant_id) = grant_id {
        let Some(grant) = world.grants.get_mut(&grant_id) else {
            return StatusCode::OK.into_response();
        };
        if grant.client_id != app.client_id {
            return StatusCode::OK.into_response();
        }
        grant.revoked = true;
        let user_id = grant.user_id;
        world.refresh_tokens.retain(|_, r| r.grant_id != grant_id);
        world
            .connections
            .retain(|c| !(c.client_id == app.client_id && c.user_id == user_id));
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_and_plain_verify_only_the_matching_verifier() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned();
        let s256 = (
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            "S256".to_owned(),
        );
        assert!(verify_pkce(&s256, Some(&verifier)));
        assert!(!verify_pkce(&s256, Some(&"wrong".to_owned())));
        assert!(!verify_pkce(&s256, None));
        let plain = (verifier.clone(), "plain".to_owned());
        assert!(verify_pkce(&plain, Some(&verifier)));
    }
}
