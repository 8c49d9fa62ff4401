//! Xero webhook ingress: `POST /webhooks/xero/{credential_id}`.
//!
//! The signature (`x-xero-signature` = base64 HMAC-SHA256 of the raw body under the credential's
//! webhook key) is checked on the raw bytes, in constant time, before anything is parsed. A bad
//! signature gets 401; a good one gets 200 with an empty body once the events are stored, which
//! takes a single transaction, far inside Xero's 5 seconds. Routing events to workflows happens
//! afterwards, from the store. Xero's "intent to receive" probes (empty batches, some wrongly
//! signed) pass whether or not any workflow listens.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use ledgerflow_store::WebhookEvent;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

pub const XERO_PATH: &str = "/webhooks/xero/{credential_id}";

/// The URL to paste into the Xero app's webhook settings.
pub fn delivery_url(config: &crate::ServerConfig, credential_id: &str) -> String {
    format!(
        "{}/webhooks/xero/{credential_id}",
        config.public_url.as_str().trim_end_matches('/')
    )
}

/// True when `signature` is the base64 HMAC-SHA256 of `body` under `key` (constant time).
pub fn signature_valid(key: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    match B64.decode(signature.trim()) {
        Ok(sig) => mac.verify_slice(&sig).is_ok(),
        Err(_) => false,
    }
}

fn field(e: &Value, name: &str) -> String {
    e.get(name)
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// An event's identity: the same event delivered twice has the same id.
fn event_id(credential_id: &str, e: &Value) -> String {
    let key = [
        credential_id.to_string(),
        field(e, "tenantId").to_lowercase(),
        field(e, "eventCategory").to_lowercase(),
        field(e, "eventType").to_lowercase(),
        field(e, "resourceId").to_lowercase(),
        field(e, "eventDateUtc"),
    ]
    .join("|");
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub async fn xero_ingress(
    State(state): State<AppState>,
    Path(credential_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cred = state.store.get_credential(&credential_id).await?;
    if cred.type_name != "xeroOAuth2Api" {
        return Err(ApiError::not_found(format!("credential {credential_id}")));
    }
    let secrets = state.store.credential_secrets(&cred.id).await?;
    let Some(key) = secrets.get("webhookKey") else {
        tracing::warn!(credential = %cred.id, "Xero webhook refused: no webhook key configured");
        return Ok((
            StatusCode::UNAUTHORIZED,
            "no webhook key is configured for this credential: paste the Xero app's webhook key into it",
        )
            .into_response());
    };
    let signature = headers
        .get("x-xero-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !signature_valid(key.expose_secret().as_bytes(), &body, signature) {
        tracing::warn!(credential = %cred.id, "Xero webhook refused: bad signature");
        state.store.record_bad_webhook_signature(&cred.id).await?;
        return Ok(StatusCode::UNAUTHORIZED.into_response());
    }
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_payload",
            format!("the webhook body is not Xero's JSON ({e})"),
        )
    })?;
    let events: Vec<WebhookEvent> = payload["events"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| WebhookEvent {
                    id: event_id(&cred.id, e),
                    credential_id: cred.id.clone(),
                    tenant_id: field(e, "tenantId"),
                    event_category: field(e, "eventCategory").to_uppercase(),
                    event_type: field(e, "eventType").to_uppercase(),
                    resource_id: field(e, "resourceId"),
                    resource_url: field(e, "resourceUrl"),
                    event_date: field(e, "eventDateUtc"),
                    payload: e.to_string(),
                    received_at: 0,
                    status: "pending".into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let new = state
        .store
        .record_webhook_delivery(&cred.id, &events)
        .await?;
    tracing::info!(credential = %cred.id, events = events.len(), new, "Xero webhook delivery stored");
    state.webhook_events.notify_one();
    // Xero wants 200 with an empty body.
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_against_the_raw_body() {
        let key = b"webhook-key";
        let body = br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"x"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(body);
        let good = B64.encode(mac.finalize().into_bytes());
        assert!(signature_valid(key, body, &good));
        assert!(!signature_valid(key, b"{}", &good));
        assert!(!signature_valid(b"other", body, &good));
        assert!(!signature_valid(key, body, "not base64!"));
        assert!(!signature_valid(key, body, ""));
    }
}
