//! Webhook delivery as Xero does it: changes to contacts, invoices and credit notes of a tenant
//! become events, batched for a short delay and POSTed to every app that has a webhook URL and a
//! connection to that tenant, signed with `x-xero-signature` = base64(HMAC-SHA256(webhook key,
//! raw body)). A non-200 answer is retried with exponential back-off; when every attempt fails
//! the app's webhook is disabled until its URL is saved again or the intent-to-receive check
//! passes. That check sends one correctly and one wrongly signed empty batch and expects 200
//! then 401.
//!
//! Events carry no record data: receivers fetch `resourceUrl`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::state::{lock, random_token, Sandbox};

/// One change in a tenant.
#[derive(Debug, Clone)]
pub struct Event {
    pub tenant_id: Uuid,
    /// `CONTACT`, `INVOICE`, `CREDITNOTE`.
    pub category: &'static str,
    /// `CREATE` or `UPDATE`.
    pub event_type: &'static str,
    /// Resource collection used in `resourceUrl`, e.g. `Invoices`.
    pub resource: &'static str,
    pub resource_id: String,
    pub at: DateTime<Utc>,
}

/// One delivery attempt, as the admin API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub client_id: String,
    pub url: String,
    pub attempt: u32,
    pub events: usize,
    pub first_event_sequence: u64,
    pub last_event_sequence: u64,
    /// HTTP status the receiver answered, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub delivered: bool,
    pub at: DateTime<Utc>,
}

/// The queue of events waiting for delivery, and the log of deliveries.
#[derive(Debug)]
pub struct Outbox {
    sender: mpsc::UnboundedSender<Event>,
    sequence: AtomicU64,
    log: Mutex<Vec<Delivery>>,
}

impl Outbox {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Self {
                sender,
                sequence: AtomicU64::new(0),
                log: Mutex::default(),
            },
            receiver,
        )
    }

    /// Queues an event; delivery happens in the background.
    pub fn push(&self, event: Event) {
        // Only fails when the sender task is gone, i.e. the sandbox is shutting down.
        let _ = self.sender.send(event);
    }

    pub fn log(&self) -> Vec<Delivery> {
        lock(&self.log).clone()
    }

    pub fn clear_log(&self) {
        lock(&self.log).clear();
    }

    fn record(&self, delivery: Delivery) {
        lock(&self.log).push(delivery);
    }
}

/// `base64(HMAC-SHA256(key, body))`, the value of `x-xero-signature`.
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Collects events into batches and hands each app its share.
pub async fn run_sender(sandbox: Weak<Sandbox>, mut receiver: mpsc::UnboundedReceiver<Event>) {
    let http = client();
    while let Some(first) = receiver.recv().await {
        let Some(strong) = sandbox.upgrade() else {
            return;
        };
        let delay = strong.config.webhook_batch_delay;
        drop(strong);
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + delay;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
            batch.push(event);
        }
        let Some(sandbox) = sandbox.upgrade() else {
            return;
        };
        for (client_id, (url, key, events)) in route(&sandbox, &batch) {
            let first_seq = sandbox
                .outbox
                .sequence
                .fetch_add(events.len() as u64, Ordering::Relaxed)
                + 1;
            let last_seq = first_seq + events.len() as u64 - 1;
            let body = json!({
                "events": events,
                "firstEventSequence": first_seq,
                "lastEventSequence": last_seq,
                "entropy": random_token(20).to_uppercase(),
            })
            .to_string();
            tokio::spawn(deliver(
                sandbox.clone(),
                http.clone(),
                Delivery {
                    id: crate::state::new_uuid(),
                    client_id,
                    url,
                    attempt: 0,
                    events: events.len(),
                    first_event_sequence: first_seq,
                    last_event_sequence: last_seq,
                    status: None,
                    error: None,
                    delivered: false,
                    at: sandbox.clock.now(),
                },
                key,
                body,
            ));
        }
    }
}

type Routed = BTreeMap<String, (String, String, Vec<Value>)>;

/// Events per app: every app with a webhook URL and a connection to the event's tenant.
fn route(sandbox: &Sandbox, batch: &[Event]) -> Routed {
    let world = lock(&sandbox.world);
    let mut routed = Routed::new();
    for event in batch {
        for app in &world.apps {
            let Some(url) = app.webhook_url.as_ref().filter(|_| !app.webhook_disabled) else {
                continue;
            };
            let connected = world
                .connections
                .iter()
                .any(|c| c.client_id == app.client_id && c.tenant_id == event.tenant_id);
            if !connected {
                continue;
            }
            routed
                .entry(app.client_id.clone())
                .or_insert_with(|| (url.clone(), app.webhook_key.clone(), Vec::new()))
                .2
                .push(json!({
                    "resourceUrl": format!("{}/api.xro/2.0/{}/{}", sandbox.base_url, event.resource, event.resource_id),
                    "resourceId": event.resource_id,
                    "eventDateUtc": event.at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
                    "eventType": event.event_type,
                    "eventCategory": event.category,
                    "tenantId": event.tenant_id,
                    "tenantType": "ORGANISATION",
                }));
        }
    }
    routed
}

async fn deliver(
    sandbox: std::sync::Arc<Sandbox>,
    http: reqwest::Client,
    mut delivery: Delivery,
    key: String,
    body: String,
) {
    let signature = signature(&key, body.as_bytes());
    let max = sandbox.config.webhook_max_attempts.max(1);
    let mut wait = sandbox.config.webhook_retry_base;
    for attempt in 1..=max {
        delivery.attempt = attempt;
        delivery.at = sandbox.clock.now();
        let result = http
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("x-xero-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(response) => {
                delivery.status = Some(response.status().as_u16());
                delivery.error = None;
                delivery.delivered = response.status().as_u16() == 200;
            }
            Err(error) => {
                delivery.status = None;
                delivery.error = Some(error.to_string());
                delivery.delivered = false;
            }
        }
        sandbox.outbox.record(delivery.clone());
        if delivery.delivered {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    // Xero disables a webhook whose deliveries keep failing.
    set_disabled(&sandbox, &delivery.client_id, true);
    tracing::warn!(url = %delivery.url, "webhook batch given up after {max} attempts; webhook disabled");
}

/// Disables or re-enables an app's webhook deliveries.
pub fn set_disabled(sandbox: &Sandbox, client_id: &str, disabled: bool) {
    if let Some(app) = lock(&sandbox.world).app_mut(client_id) {
        app.webhook_disabled = disabled;
    }
}

/// The outcome of an intent-to-receive check.
#[derive(Debug, Clone, Serialize)]
pub struct IntentReport {
    pub url: String,
    /// Status answered to the correctly signed probe (200 expected).
    pub correctly_signed_status: Option<u16>,
    /// Status answered to the wrongly signed probe (401 expected).
    pub wrongly_signed_status: Option<u16>,
    pub passed: bool,
    pub detail: String,
}

/// Sends the two probes Xero sends when a webhook is set up.
pub async fn intent_to_receive(url: &str, key: &str) -> IntentReport {
    let http = client();
    let probe = |key: String| {
        let http = http.clone();
        let url = url.to_owned();
        async move {
            let body = json!({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                "entropy": random_token(20).to_uppercase()})
            .to_string();
            http.post(url)
                .header("content-type", "application/json")
                .header("x-xero-signature", signature(&key, body.as_bytes()))
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok()
        }
    };
    let good = probe(key.to_owned()).await;
    let bad = probe(format!("{key}-not-the-key")).await;
    let passed = good == Some(200) && bad == Some(401);
    let describe = |s: Option<u16>| s.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    let detail = if passed {
        "Intent to receive confirmed: 200 for the signed probe, 401 for the wrongly signed one."
            .to_owned()
    } else {
        format!(
            "Intent to receive failed: expected 200 for the correctly signed probe (got {}) and 401 for the wrongly signed probe (got {}).",
            describe(good),
            describe(bad)
        )
    };
    IntentReport {
        url: url.to_owned(),
        correctly_signed_status: good,
        wrongly_signed_status: bad,
        passed,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2: 5bdcc146bf60754e…64ec3843 in base64.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }
}
