//! Starting workflows from Xero: routing stored webhook events to active Xero Triggers, and
//! polling for new or updated records for Xero Polling Triggers.
//!
//! Webhook events were stored before Xero got its 200 (see [`crate::webhooks`]); here each
//! pending event is claimed by one process, matched to active workflows, optionally enriched with
//! the full record, and turned into executions. Polls are claimed per interval with a lease, so
//! with several processes on one database each poll runs once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ledgerflow_engine::{ExecutionMode, Item, Workflow, WorkflowNode};
use ledgerflow_nodes_xero::triggers::{
    PollTriggerParams, WebhookTriggerParams, POLL_TRIGGER, WEBHOOK_TRIGGER,
};
use ledgerflow_nodes_xero::{XeroConnection, XeroHost};
use ledgerflow_store::WebhookEvent;
use ledgerflow_xero::{catalogue, ApiRequest, Target};
use serde_json::{json, Value};

use crate::runtime::{enqueue, TriggerData};
use crate::AppState;

pub fn spawn(state: &AppState) {
    tokio::spawn(route_events(state.clone()));
    tokio::spawn(poll(state.clone()));
}

fn trigger_nodes<'a>(w: &'a Workflow, kind: &str) -> impl Iterator<Item = &'a WorkflowNode> + 'a {
    let kind = kind.to_string();
    w.nodes
        .iter()
        .filter(move |n| n.node_type == kind && !n.disabled)
}

async fn connection_for(state: &AppState, node: &WorkflowNode) -> Option<XeroConnection> {
    let r = node
        .credentials
        .get(ledgerflow_nodes_xero::node::CREDENTIAL_TYPE)?;
    match state.xero.connection(r).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(node = %node.name, error = %e, "Xero trigger cannot use its credential");
            None
        }
    }
}

fn collection(category: &str) -> Option<&'static str> {
    match category {
        "INVOICE" => Some("Invoices"),
        "CONTACT" => Some("Contacts"),
        "CREDITNOTE" => Some("CreditNotes"),
        _ => None,
    }
}

/// The event as a trigger item, with the full record when asked for.
async fn event_item(
    state: &AppState,
    conn: &XeroConnection,
    event: &WebhookEvent,
    fetch: bool,
) -> Item {
    let mut json: Value = serde_json::from_str(&event.payload).unwrap_or_else(|_| json!({}));
    if fetch {
        let target = Target {
            credential_id: conn.credential_id.clone(),
            tenant_id: Some(event.tenant_id.clone()),
            endpoints: conn.endpoints.clone(),
        };
        let path = match collection(&event.event_category) {
            Some(c) => format!("{c}/{}", event.resource_id),
            None => event.resource_url.clone(),
        };
        match state
            .xero
            .client
            .send(&target, &ApiRequest::get(path))
            .await
        {
            Ok(resp) => {
                let key = collection(&event.event_category)
                    .and_then(catalogue::resource)
                    .map(|r| r.key)
                    .unwrap_or("");
                let record = resp
                    .json
                    .as_ref()
                    .and_then(|v| v[key].get(0).cloned())
                    .or(resp.json)
                    .unwrap_or(Value::Null);
                json["record"] = record;
            }
            Err(e) => json["recordError"] = json!(e.to_string()),
        }
    }
    Item::new(json)
}

async fn route_events(state: AppState) {
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(1), state.webhook_events.notified()).await;
        if let Err(e) = route_once(&state).await {
            tracing::warn!(error = %e, "routing Xero webhook events failed; will try again");
        }
    }
}

/// Routes every pending event once. Returns how many events were handled.
pub async fn route_once(state: &AppState) -> Result<usize, String> {
    // Fetching full records waits on Xero's limits: a router gets ten minutes before its events
    // are handed to another.
    let stale = ledgerflow_store::now_ms() - 600_000;
    state
        .store
        .requeue_stale_webhook_events(stale)
        .await
        .map_err(|e| e.to_string())?;
    let pending = state
        .store
        .pending_webhook_events(500)
        .await
        .map_err(|e| e.to_string())?;
    if pending.is_empty() {
        return Ok(0);
    }
    let active = state
        .store
        .active_workflows()
        .await
        .map_err(|e| e.to_string())?;
    let mut listeners = Vec::new();
    for record in &active {
        let Ok(w) = state.runtime.parsed(record) else {
            continue;
        };
        for node in trigger_nodes(&w, WEBHOOK_TRIGGER) {
            let Ok(params) =
                serde_json::from_value::<WebhookTriggerParams>(node.parameters.clone())
            else {
                continue;
            };
            if let Some(conn) = connection_for(state, node).await {
                listeners.push((record.id.clone(), node.name.clone(), params, conn));
            }
        }
    }
    let mut handled = 0;
    // Per (workflow, node): items for one execution per delivery pass.
    let mut batches: HashMap<(String, String), Vec<Item>> = HashMap::new();
    // Events that fed a batch are finished only once the batch is queued.
    let mut batched_events: Vec<String> = Vec::new();
    for event in pending {
        if !state
            .store
            .claim_webhook_event(&event.id)
            .await
            .map_err(|e| e.to_string())?
        {
            continue; // another process has it
        }
        let mut used = false;
        for (workflow_id, node, params, conn) in &listeners {
            if conn.credential_id != event.credential_id {
                continue;
            }
            let tenant_name = conn
                .tenants
                .iter()
                .find(|t| t.0 == event.tenant_id)
                .map(|t| t.1.as_str())
                .unwrap_or("");
            if !params.wants(
                &event.tenant_id,
                tenant_name,
                &event.event_category,
                &event.event_type,
            ) {
                continue;
            }
            used = true;
            let item = event_item(state, conn, &event, params.fetch_record).await;
            if params.per_delivery() {
                batches
                    .entry((workflow_id.clone(), node.clone()))
                    .or_default()
                    .push(item);
                if !batched_events.contains(&event.id) {
                    batched_events.push(event.id.clone());
                }
            } else {
                let data = TriggerData {
                    start_node: Some(node.clone()),
                    items: vec![item],
                };
                enqueue(state, workflow_id, ExecutionMode::Trigger, &data, None)
                    .await
                    .map_err(|e| e.message)?;
            }
        }
        if !batched_events.contains(&event.id) {
            state
                .store
                .finish_webhook_event(&event.id, if used { "processed" } else { "ignored" })
                .await
                .map_err(|e| e.to_string())?;
        }
        handled += 1;
    }
    for ((workflow_id, node), items) in batches {
        let data = TriggerData {
            start_node: Some(node),
            items,
        };
        enqueue(state, &workflow_id, ExecutionMode::Trigger, &data, None)
            .await
            .map_err(|e| e.message)?;
    }
    for id in batched_events {
        state
            .store
            .finish_webhook_event(&id, "processed")
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(handled)
}

/// A polling trigger's cursor: the newest `UpdatedDateUTC` seen (to the second) and the ids
/// seen at exactly that second, so records changed in the same second are neither lost nor
/// repeated.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct Cursor {
    pub since: String,
    pub ids: Vec<String>,
}

async fn poll(state: AppState) {
    let mut next_due: HashMap<(String, String), Instant> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(active) = state.store.active_workflows().await else {
            continue;
        };
        for record in active {
            let Ok(w) = state.runtime.parsed(&record) else {
                continue;
            };
            for node in trigger_nodes(&w, POLL_TRIGGER) {
                let Ok(params) = PollTriggerParams::parse(&node.parameters) else {
                    continue;
                };
                let key = (record.id.clone(), node.name.clone());
                if next_due.get(&key).is_some_and(|due| *due > Instant::now()) {
                    continue;
                }
                let interval = Duration::from_secs(params.interval_seconds);
                next_due.insert(key, Instant::now() + interval);
                // One poll per interval across processes.
                let lease = format!("poll:{}:{}", record.id, node.name);
                let ttl = interval.as_millis() as i64 - 100;
                match state
                    .store
                    .try_lease(&lease, &state.runtime.worker_id, ttl.max(100))
                    .await
                {
                    Ok(true) => {}
                    _ => continue,
                }
                if let Err(e) = poll_once(&state, &record.id, node, &params).await {
                    tracing::warn!(workflow = %record.id, node = %node.name, error = %e, "Xero poll failed; will try at the next interval");
                }
            }
        }
    }
}

fn seconds(rfc3339: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
        .map(|d| d - chrono::Duration::nanoseconds(d.timestamp_subsec_nanos() as i64))
}

/// One poll: reads what changed since the cursor, starts one execution with the matching
/// records (if any), then moves the cursor. Returns the number of API calls made.
pub async fn poll_once(
    state: &AppState,
    workflow_id: &str,
    node: &WorkflowNode,
    params: &PollTriggerParams,
) -> Result<u64, String> {
    let conn = connection_for(state, node)
        .await
        .ok_or("the credential is not usable")?;
    let tenant = match params
        .organisation
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(o) => conn
            .tenants
            .iter()
            .find(|(id, name)| id.eq_ignore_ascii_case(o) || name.eq_ignore_ascii_case(o))
            .cloned()
            .ok_or_else(|| format!("organisation '{o}' is not connected to the credential"))?,
        None => conn
            .tenants
            .first()
            .cloned()
            .ok_or("the credential reaches no organisation")?,
    };
    let (resource, bill) = ledgerflow_nodes_xero::params::resolve_resource(&params.resource)
        .ok_or("unknown resource")?;
    let cursor_key = format!("{}@{}", node.name, tenant.0);
    let Some(saved) = state
        .store
        .poll_cursor(workflow_id, &cursor_key)
        .await
        .map_err(|e| e.to_string())?
    else {
        // First activation: start from now (or the backfill date); nothing fires yet unless backfilling.
        let since = match &params.backfill_from {
            Some(d) => {
                let x = ledgerflow_xero::dates::to_xero(d)?;
                let x = if x.len() == 10 {
                    format!("{x}T00:00:00")
                } else {
                    x
                };
                format!("{x}Z")
            }
            None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let cursor = Cursor { since, ids: vec![] };
        state
            .store
            .save_poll_cursor(
                workflow_id,
                &cursor_key,
                &serde_json::to_string(&cursor).unwrap_or_default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if params.backfill_from.is_none() {
            return Ok(0);
        }
        return Box::pin(poll_once(state, workflow_id, node, params)).await;
    };
    let cursor: Cursor = serde_json::from_str(&saved).map_err(|e| e.to_string())?;
    let since = seconds(&cursor.since).ok_or("the poll cursor is unreadable")?;
    let target = Target {
        credential_id: conn.credential_id.clone(),
        tenant_id: Some(tenant.0.clone()),
        endpoints: conn.endpoints.clone(),
    };
    let mut req = ApiRequest::get(resource.name).query("order", "UpdatedDateUTC ASC");
    let mut wheres: Vec<String> = params
        .where_
        .iter()
        .filter(|w| !w.trim().is_empty())
        .cloned()
        .collect();
    if let Some(kind) = bill {
        wheres.push(format!("Type==\"{kind}\""));
    } else if resource.name == "Invoices" && params.resource.to_lowercase().starts_with("invoice") {
        // "invoice" means sales invoices here, as "bill" means purchase ones.
        wheres.push("Type==\"ACCREC\"".into());
    }
    if !wheres.is_empty() {
        req = req.query(
            "where",
            wheres
                .iter()
                .map(|w| format!("({w})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        );
    }
    req.if_modified_since = Some(since);
    let before = state
        .xero
        .client
        .stats
        .sent
        .load(std::sync::atomic::Ordering::Relaxed);
    let records = state
        .xero
        .client
        .pages(target, resource, req)
        .collect(None)
        .await
        .map_err(|e| e.to_string())?;
    let calls = state
        .xero
        .client
        .stats
        .sent
        .load(std::sync::atomic::Ordering::Relaxed)
        - before;
    let mut newest = since;
    let mut changed = Vec::new();
    for r in records {
        let id = r[resource.id_field]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(updated) = r["UpdatedDateUTC"].as_str().and_then(seconds) else {
            continue;
        };
        if updated < since || (updated == since && cursor.ids.contains(&id)) {
            continue;
        }
        if updated > newest {
            newest = updated;
        }
        changed.push((id, updated, r));
    }
    let ids: Vec<String> = changed.iter().map(|(id, _, _)| id.clone()).collect();
    // Seen ids are recorded only after the execution is queued, so a failed poll is repeated
    // with the same "new" verdicts.
    let new_ids = state
        .store
        .poll_unseen(workflow_id, &cursor_key, &ids)
        .await
        .map_err(|e| e.to_string())?;
    let items: Vec<Item> = changed
        .iter()
        .filter_map(|(id, _, r)| {
            let is_new = new_ids.contains(id);
            let wanted = match params.event.as_str() {
                "new" => is_new,
                "updated" => !is_new,
                _ => true,
            };
            wanted.then(|| {
                let mut j = r.clone();
                j["xeroEvent"] = json!(if is_new { "new" } else { "updated" });
                Item::new(j)
            })
        })
        .collect();
    if !items.is_empty() {
        let data = TriggerData {
            start_node: Some(node.name.clone()),
            items,
        };
        enqueue(state, workflow_id, ExecutionMode::Trigger, &data, None)
            .await
            .map_err(|e| e.message)?;
    }
    state
        .store
        .poll_mark_seen(workflow_id, &cursor_key, &new_ids)
        .await
        .map_err(|e| e.to_string())?;
    let next = Cursor {
        since: newest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ids: {
            let mut at_newest: Vec<String> = changed
                .iter()
                .filter(|(_, u, _)| *u == newest)
                .map(|(id, _, _)| id.clone())
                .collect();
            if newest == since {
                at_newest.extend(cursor.ids.iter().cloned());
            }
            at_newest.sort();
            at_newest.dedup();
            at_newest
        },
    };
    state
        .store
        .save_poll_cursor(
            workflow_id,
            &cursor_key,
            &serde_json::to_string(&next).unwrap_or_default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(calls)
}
