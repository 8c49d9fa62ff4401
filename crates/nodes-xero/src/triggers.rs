//! Xero triggers. Both start executions with items the host prepares; as nodes they pass those
//! items on.
//!
//! - **Xero Trigger** (`ledgerflow.xeroTrigger`): Xero webhook events for the credential,
//!   filtered by organisation, category (contact, invoice, credit note; unknown categories pass
//!   when the filter is empty or `*`) and event type (create, update); optionally with the full
//!   record fetched; one execution per event or per delivery.
//! - **Xero Polling Trigger** (`ledgerflow.xeroPollTrigger`): new and/or updated records of a
//!   resource, found with `If-Modified-Since` and a cursor (time plus the ids already seen at that
//!   second), every `intervalSeconds`.

use async_trait::async_trait;
use ledgerflow_engine::{Node, NodeContext, NodeDescription, NodeError, NodeOutput, WorkflowNode};
use serde::Deserialize;
use serde_json::Value;

use crate::params::{resolve_resource, StringList};

pub const WEBHOOK_TRIGGER: &str = "ledgerflow.xeroTrigger";
pub const POLL_TRIGGER: &str = "ledgerflow.xeroPollTrigger";

/// The Xero Trigger's parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTriggerParams {
    /// Tenant ids or names; empty or `all` = every organisation of the credential.
    #[serde(default)]
    pub organisations: StringList,
    /// `INVOICE`, `CONTACT`, `CREDITNOTE`, …; empty or `*` = all (unknown ones included).
    #[serde(default)]
    pub categories: StringList,
    /// `CREATE`, `UPDATE`; empty = both.
    #[serde(default)]
    pub event_types: StringList,
    /// Fetch the full record (through the rate-limited client) before the workflow starts.
    #[serde(default)]
    pub fetch_record: bool,
    /// `event` (one execution per event, the default) or `delivery` (one per batch).
    #[serde(default)]
    pub execution_per: Option<String>,
}

fn matches(list: &StringList, value: &str) -> bool {
    list.0.is_empty()
        || list
            .0
            .iter()
            .any(|v| v == "*" || v.eq_ignore_ascii_case("all") || v.eq_ignore_ascii_case(value))
}

impl WebhookTriggerParams {
    pub fn wants(
        &self,
        tenant_id: &str,
        tenant_name: &str,
        category: &str,
        event_type: &str,
    ) -> bool {
        (matches(&self.organisations, tenant_id) || matches(&self.organisations, tenant_name))
            && matches(&self.categories, category)
            && matches(&self.event_types, event_type)
    }

    pub fn per_delivery(&self) -> bool {
        self.execution_per.as_deref() == Some("delivery")
    }
}

/// The polling trigger's parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollTriggerParams {
    /// invoice, bill, contact, payment, creditNote, bankTransaction, item, quote, purchaseOrder,
    /// manualJournal.
    pub resource: String,
    /// `new`, `updated` or `newOrUpdated` (default).
    #[serde(default = "new_or_updated")]
    pub event: String,
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    #[serde(default = "sixty")]
    pub interval_seconds: u64,
    /// A tenant id or name (or empty when the credential reaches one organisation).
    #[serde(default)]
    pub organisation: Option<String>,
    /// Start from this date instead of from activation (`YYYY-MM-DD` or RFC 3339).
    #[serde(default)]
    pub backfill_from: Option<String>,
}

fn new_or_updated() -> String {
    "newOrUpdated".into()
}

fn sixty() -> u64 {
    60
}

pub const POLLABLE: &[&str] = &[
    "Invoices",
    "Contacts",
    "Payments",
    "CreditNotes",
    "BankTransactions",
    "Items",
    "Quotes",
    "PurchaseOrders",
    "ManualJournals",
];

impl PollTriggerParams {
    pub fn parse(v: &Value) -> Result<PollTriggerParams, String> {
        let p: PollTriggerParams =
            serde_json::from_value(v.clone()).map_err(|e| format!("invalid parameters: {e}"))?;
        let (r, _) = resolve_resource(&p.resource)
            .ok_or_else(|| format!("unknown resource '{}'", p.resource))?;
        if !POLLABLE.contains(&r.name) {
            return Err(format!(
                "{} cannot be polled; use one of: invoice, bill, {}",
                r.name,
                POLLABLE[1..].join(", ")
            ));
        }
        if !["new", "updated", "newOrUpdated"].contains(&p.event.as_str()) {
            return Err(format!(
                "event '{}' must be new, updated or newOrUpdated",
                p.event
            ));
        }
        if p.interval_seconds == 0 {
            return Err("intervalSeconds must be at least 1".into());
        }
        Ok(p)
    }
}

pub struct XeroWebhookTriggerNode;
pub struct XeroPollTriggerNode;

fn has_credential(node: &WorkflowNode) -> Result<(), String> {
    if node.credentials.contains_key(crate::node::CREDENTIAL_TYPE) {
        Ok(())
    } else {
        Err("choose a Xero OAuth2 API credential (credentials.xeroOAuth2Api)".into())
    }
}

#[async_trait]
impl Node for XeroWebhookTriggerNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: WEBHOOK_TRIGGER,
            display_name: "Xero Trigger",
            trigger: true,
            raw_parameters: &[],
        }
    }

    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        has_credential(node)?;
        serde_json::from_value::<WebhookTriggerParams>(node.parameters.clone())
            .map(|_| ())
            .map_err(|e| format!("invalid parameters: {e}"))
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

#[async_trait]
impl Node for XeroPollTriggerNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: POLL_TRIGGER,
            display_name: "Xero Polling Trigger",
            trigger: true,
            raw_parameters: &[],
        }
    }

    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        has_credential(node)?;
        PollTriggerParams::parse(&node.parameters).map(|_| ())
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhook_filters_are_open_by_default_and_case_insensitive() {
        let p: WebhookTriggerParams = serde_json::from_value(json!({})).unwrap();
        assert!(
            p.wants("t", "Org", "SUBSCRIPTION", "UPDATE"),
            "unknown categories pass"
        );
        let p: WebhookTriggerParams =
            serde_json::from_value(json!({"categories": "invoice", "eventTypes": ["create"]}))
                .unwrap();
        assert!(p.wants("t", "Org", "INVOICE", "CREATE"));
        assert!(!p.wants("t", "Org", "INVOICE", "UPDATE"));
        assert!(!p.wants("t", "Org", "CONTACT", "CREATE"));
        let p: WebhookTriggerParams =
            serde_json::from_value(json!({"organisations": ["Org B"]})).unwrap();
        assert!(!p.wants("t", "Org A", "INVOICE", "CREATE"));
        assert!(p.wants("t2", "org b", "INVOICE", "CREATE"));
    }

    #[test]
    fn polling_parameters_are_checked() {
        assert!(PollTriggerParams::parse(&json!({"resource": "invoice"})).is_ok());
        assert!(PollTriggerParams::parse(&json!({"resource": "bill", "event": "new"})).is_ok());
        assert!(PollTriggerParams::parse(&json!({"resource": "account"}))
            .unwrap_err()
            .contains("cannot be polled"));
        assert!(
            PollTriggerParams::parse(&json!({"resource": "invoice", "event": "deleted"})).is_err()
        );
    }
}
