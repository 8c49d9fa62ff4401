//! Received webhook events, stored before they are acknowledged, so an event that was answered
//! 200 is never lost; and per-credential delivery health.
//!
//! An event's id is a hash of what identifies it (credential, organisation, category, type,
//! resource, time), so a duplicate delivery inserts nothing.

use serde::Serialize;
use sqlx::Row;

use crate::{now_ms, Result, Store};

/// One event as received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub id: String,
    pub credential_id: String,
    pub tenant_id: String,
    pub event_category: String,
    pub event_type: String,
    pub resource_id: String,
    pub resource_url: String,
    pub event_date: String,
    /// The event's JSON as Xero sent it.
    pub payload: String,
    pub received_at: i64,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebhookHealth {
    pub deliveries: i64,
    pub events: i64,
    pub duplicates: i64,
    pub bad_signatures: i64,
    pub last_delivery_at: Option<i64>,
    pub last_bad_signature_at: Option<i64>,
    /// When an empty, correctly signed batch (Xero's "intent to receive" probe) was answered.
    pub intent_probe_at: Option<i64>,
}

impl WebhookHealth {
    /// Intent to receive passes when both probes were answered: a correct one (200) and a
    /// wrongly signed one (401), the latter after or around the former.
    pub fn intent_passed(&self) -> bool {
        self.intent_probe_at.is_some() && self.last_bad_signature_at.is_some()
    }
}

fn event_row(r: &sqlx::any::AnyRow) -> Result<WebhookEvent> {
    Ok(WebhookEvent {
        id: r.try_get("id")?,
        credential_id: r.try_get("credential_id")?,
        tenant_id: r.try_get("tenant_id")?,
        event_category: r.try_get("event_category")?,
        event_type: r.try_get("event_type")?,
        resource_id: r.try_get("resource_id")?,
        resource_url: r.try_get("resource_url")?,
        event_date: r.try_get("event_date")?,
        payload: r.try_get("payload")?,
        received_at: r.try_get("received_at")?,
        status: r.try_get("status")?,
    })
}

impl Store {
    async fn touch_health(&self, credential_id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_health (credential_id, deliveries, events, duplicates, bad_signatures) VALUES ($1, 0, 0, 0, 0) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(credential_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a signed delivery's events in one transaction; returns how many were new.
    pub async fn record_webhook_delivery(
        &self,
        credential_id: &str,
        events: &[WebhookEvent],
    ) -> Result<usize> {
        self.touch_health(credential_id).await?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut new = 0;
        for e in events {
            let done = sqlx::query(
                "INSERT INTO webhook_events (id, credential_id, tenant_id, event_category, event_type, resource_id, resource_url, event_date, payload, received_at, status) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending') ON CONFLICT (id) DO NOTHING",
            )
            .bind(&e.id)
            .bind(credential_id)
            .bind(&e.tenant_id)
            .bind(&e.event_category)
            .bind(&e.event_type)
            .bind(&e.resource_id)
            .bind(&e.resource_url)
            .bind(&e.event_date)
            .bind(&e.payload)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            new += done.rows_affected() as usize;
        }
        let duplicates = (events.len() - new) as i64;
        let intent = if events.is_empty() { Some(now) } else { None };
        sqlx::query(
            "UPDATE webhook_health SET deliveries = deliveries + 1, events = events + $1, duplicates = duplicates + $2, last_delivery_at = $3, \
             intent_probe_at = COALESCE($4, intent_probe_at) WHERE credential_id = $5",
        )
        .bind(new as i64)
        .bind(duplicates)
        .bind(now)
        .bind(intent)
        .bind(credential_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Counts a delivery refused for its signature.
    pub async fn record_bad_webhook_signature(&self, credential_id: &str) -> Result<()> {
        self.touch_health(credential_id).await?;
        sqlx::query(
            "UPDATE webhook_health SET bad_signatures = bad_signatures + 1, last_bad_signature_at = $1 WHERE credential_id = $2",
        )
        .bind(now_ms())
        .bind(credential_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn webhook_health(&self, credential_id: &str) -> Result<WebhookHealth> {
        let row = sqlx::query(
            "SELECT deliveries, events, duplicates, bad_signatures, last_delivery_at, last_bad_signature_at, intent_probe_at FROM webhook_health WHERE credential_id = $1",
        )
        .bind(credential_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(WebhookHealth::default());
        };
        Ok(WebhookHealth {
            deliveries: r.try_get("deliveries")?,
            events: r.try_get("events")?,
            duplicates: r.try_get("duplicates")?,
            bad_signatures: r.try_get("bad_signatures")?,
            last_delivery_at: r.try_get("last_delivery_at")?,
            last_bad_signature_at: r.try_get("last_bad_signature_at")?,
            intent_probe_at: r.try_get("intent_probe_at")?,
        })
    }

    /// Events not yet handed to workflows, oldest first.
    pub async fn pending_webhook_events(&self, limit: i64) -> Result<Vec<WebhookEvent>> {
        let rows = sqlx::query(
            "SELECT id, credential_id, tenant_id, event_category, event_type, resource_id, resource_url, event_date, payload, received_at, status \
             FROM webhook_events WHERE status = 'pending' ORDER BY received_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// Claims a pending event for routing (only one process gets it).
    pub async fn claim_webhook_event(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_events SET status = 'routing', processed_at = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a claimed event done (`processed`, or `ignored` when no workflow wanted it).
    pub async fn finish_webhook_event(&self, id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE webhook_events SET status = $1, processed_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events whose routing was claimed before `before_ms` by a process that stopped: pending again.
    pub async fn requeue_stale_webhook_events(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE webhook_events SET status = 'pending' WHERE status = 'routing' AND processed_at < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Events of a credential in any state, newest first (for the UI and tests).
    pub async fn webhook_events(
        &self,
        credential_id: &str,
        limit: i64,
    ) -> Result<Vec<WebhookEvent>> {
        let rows = sqlx::query(
            "SELECT id, credential_id, tenant_id, event_category, event_type, resource_id, resource_url, event_date, payload, received_at, status \
             FROM webhook_events WHERE credential_id = $1 ORDER BY received_at DESC, id LIMIT $2",
        )
        .bind(credential_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// Marks an event handled (`processed`, or `ignored` when no workflow wanted it); false if
    /// another process already did.
    pub async fn mark_webhook_event(&self, id: &str, status: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_events SET status = $1, processed_at = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(status)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
