//! Bearer-token checks shared with the Accounting API, OpenID discovery, JWKS, userinfo, and the
//! `/connections` tenant list.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::problem::Problem;
use crate::scopes;
use crate::state::{lock, Connection, Sandbox};

/// What an access token proves.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub client_id: String,
    pub user_id: Uuid,
    pub auth_event_id: Uuid,
    pub scopes: Vec<String>,
}

/// Validates the `Authorization: Bearer` header against the signing key and the sandbox clock.
pub fn bearer(sandbox: &Sandbox, headers: &HeaderMap) -> Result<Bearer, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| Problem::Unauthorized("AuthenticationUnsuccessful".into()))?;
    let claims = sandbox
        .signer
        .verify(token.trim())
        .ok_or_else(|| Problem::Unauthorized("AuthenticationUnsuccessful".into()))?;
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let now = sandbox.clock.now();
    if exp <= now.timestamp() {
        let at = DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or(now);
        return Err(Problem::Unauthorized(format!(
            "TokenExpired: token expired at {}",
            at.format("%m/%d/%Y %H:%M:%S")
        )));
    }
    let uuid = |key: &str| {
        claims[key]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| Problem::Unauthorized("AuthenticationUnsuccessful".into()))
    };
    Ok(Bearer {
        client_id: claims["client_id"].as_str().unwrap_or_default().to_owned(),
        user_id: uuid("xero_userid")?,
        auth_event_id: uuid("authentication_event_id")?,
        scopes: claims["scope"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(super) async fn discovery(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let base = &sandbox.base_url;
    Json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/.well-known/openid-configuration/jwks"),
        "authorization_endpoint": format!("{base}/identity/connect/authorize"),
        "token_endpoint": format!("{base}/connect/token"),
        "userinfo_endpoint": format!("{base}/connect/userinfo"),
        "revocation_endpoint": format!("{base}/connect/revocation"),
        "scopes_supported": scopes::IDENTITY.iter().chain(scopes::CURRENT).chain(scopes::BROAD_RETIRED).collect::<Vec<_>>(),
        "claims_supported": ["sub", "xero_userid", "email", "given_name", "family_name", "name", "preferred_username", "global_session_id", "authentication_event_id"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "request_parameter_supported": false,
    }))
}

pub(super) async fn jwks(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(sandbox.signer.jwks())
}

pub(super) async fn userinfo(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap) -> Response {
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let world = lock(&sandbox.world);
    let Some(user) = world.user(bearer.user_id) else {
        return Problem::Unauthorized("AuthenticationUnsuccessful".into()).into_response();
    };
    Json(json!({
        "sub": user.id.simple().to_string(),
        "xero_userid": user.id,
        "email": user.email,
        "preferred_username": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "name": format!("{} {}", user.given_name, user.family_name),
    }))
    .into_response()
}

fn connection_json(c: &Connection, tenant_name: &str) -> Value {
    // Xero's seven fractional digits, no zone designator.
    let fmt = |d: &DateTime<Utc>| {
        format!(
            "{}.{:07}",
            d.format("%Y-%m-%dT%H:%M:%S"),
            d.timestamp_subsec_nanos() / 100
        )
    };
    json!({
        "id": c.id,
        "authEventId": c.auth_event_id,
        "tenantId": c.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": tenant_name,
        "createdDateUtc": fmt(&c.created),
        "updatedDateUtc": fmt(&c.updated),
    })
}

pub(super) async fn connections(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let filter = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authEventId"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let world = lock(&sandbox.world);
    let list: Vec<Value> = world
        .connections
        .iter()
        .filter(|c| c.client_id == bearer.client_id && c.user_id == bearer.user_id)
        .filter(|c| {
            filter
                .as_ref()
                .is_none_or(|f| c.auth_event_id.to_string() == *f)
        })
        .map(|c| {
            let name = world
                .org(c.tenant_id)
                .map(|o| o.name.as_str())
                .unwrap_or("");
            connection_json(c, name)
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

pub(super) async fn delete_connection(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::NotFound.into_response();
    };
    let mut world = lock(&sandbox.world);
    let before = world.connections.len();
    world.connections.retain(|c| {
        !(c.id == id && c.client_id == bearer.client_id && c.user_id == bearer.user_id)
    });
    if world.connections.len() == before {
        return Problem::NotFound.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}
