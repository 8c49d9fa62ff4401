//! Webhook and Respond to Webhook, and what the server needs to serve webhooks.
//!
//! The server asks [`webhook_triggers`] for each active workflow's webhook paths and methods,
//! turns an incoming request into the trigger item with [`WebhookRequest::into_item`], and runs
//! the workflow from that node. The response depends on the node's `responseMode`:
//! - `onReceived`: answer at once with [`WebhookTrigger::immediate_response`];
//! - `lastNode`: answer with [`crate::ExecutionResult::webhook_response`] when the run ends;
//! - `responseNode`: a Respond to Webhook node decides; the observer's `webhook_response` fires
//!   as soon as it runs (and the result carries it too).
//!
//! This module does not listen on sockets or parse HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::item::{BinaryData, Item};
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::run_data::ExecutionResult;
use crate::workflow::{CredentialRef, Workflow, WorkflowNode};

/// The body of a webhook response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum WebhookBody {
    Empty,
    Json(Value),
    Text(String),
    Binary {
        mime_type: String,
        /// Base64.
        data: String,
    },
}

/// The HTTP response to send to a webhook's caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: WebhookBody,
}

/// When the webhook answers (n8n's `responseMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResponseMode {
    OnReceived,
    LastNode,
    ResponseNode,
}

/// A webhook a workflow listens on.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTrigger {
    pub node: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Path without leading slash, e.g. `xero/invoices`; the server mounts it under its
    /// webhook prefix.
    pub path: String,
    pub response_mode: ResponseMode,
    pub response_code: u16,
    /// `none`, `basicAuth` or `headerAuth` (the server checks it with the credential below).
    pub authentication: String,
    pub credential: Option<CredentialRef>,
    pub response_headers: BTreeMap<String, String>,
}

fn response_headers(p: &Value) -> BTreeMap<String, String> {
    p.pointer("/options/responseHeaders/entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("name")?.as_str()?.to_string(),
                match e.get("value")? {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            ))
        })
        .collect()
}

fn webhook_trigger(node: &WorkflowNode) -> WebhookTrigger {
    let p = &node.parameters;
    let mode = match p.get("responseMode").and_then(Value::as_str) {
        Some("lastNode") => ResponseMode::LastNode,
        Some("responseNode") => ResponseMode::ResponseNode,
        _ => ResponseMode::OnReceived,
    };
    let authentication = p
        .get("authentication")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_string();
    WebhookTrigger {
        node: node.name.clone(),
        method: p
            .get("httpMethod")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase(),
        path: p
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_matches('/')
            .to_string(),
        response_mode: mode,
        response_code: p.get("responseCode").and_then(Value::as_u64).unwrap_or(200) as u16,
        credential: node.credentials.values().next().cloned(),
        authentication,
        response_headers: response_headers(p),
    }
}

impl WebhookTrigger {
    /// The response for `onReceived` mode (n8n's default body).
    pub fn immediate_response(&self) -> WebhookResponse {
        WebhookResponse {
            status: self.response_code,
            headers: self.response_headers.clone(),
            body: WebhookBody::Json(json!({"message": "Workflow was started"})),
        }
    }
}

/// All enabled webhook triggers of a workflow.
pub fn webhook_triggers(workflow: &Workflow) -> Vec<WebhookTrigger> {
    workflow
        .nodes
        .iter()
        .filter(|n| n.node_type == "ledgerflow.webhook" && !n.disabled)
        .map(webhook_trigger)
        .collect()
}

/// An incoming webhook call, as the server hands it to the engine.
#[derive(Debug, Clone, Default)]
pub struct WebhookRequest {
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub params: Map<String, Value>,
    pub query: Map<String, Value>,
    /// Parsed JSON or form body (`Value::Null` when none).
    pub body: Value,
    /// A raw body to attach as binary `data` (for non-JSON payloads).
    pub raw_body: Option<(String, Vec<u8>)>,
}

impl WebhookRequest {
    /// The Webhook node's output item: `{headers, params, query, body}` like n8n.
    pub fn into_item(self) -> Item {
        let mut item = Item::new(json!({
            "headers": self.headers,
            "params": self.params,
            "query": self.query,
            "body": self.body,
        }));
        if let Some((mime_type, bytes)) = self.raw_body {
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            item.binary = Some(BTreeMap::from([(
                "data".to_string(),
                BinaryData {
                    data,
                    mime_type,
                    file_size: Some(bytes.len().to_string()),
                    ..Default::default()
                },
            )]));
        }
        item
    }
}

/// The `lastNode` response of a finished execution started by a webhook in that mode.
pub fn last_node_response(
    workflow: &Workflow,
    result: &ExecutionResult,
) -> Option<WebhookResponse> {
    let start = workflow
        .nodes
        .iter()
        .find(|n| n.node_type == "ledgerflow.webhook" && result.run_data.contains_key(&n.name))?;
    let trigger = webhook_trigger(start);
    if trigger.response_mode != ResponseMode::LastNode {
        return None;
    }
    if result.error.is_some() {
        return Some(WebhookResponse {
            status: 500,
            headers: BTreeMap::new(),
            body: WebhookBody::Json(json!({"message": "Error in workflow"})),
        });
    }
    let items = result.last_output();
    let data = start
        .parameters
        .get("responseData")
        .and_then(Value::as_str)
        .unwrap_or("firstEntryJson");
    let body = match data {
        "allEntries" => {
            WebhookBody::Json(Value::Array(items.iter().map(Item::json_value).collect()))
        }
        "noData" => WebhookBody::Empty,
        "firstEntryBinary" => match items
            .first()
            .and_then(|i| i.binary.as_ref())
            .and_then(|b| b.values().next())
        {
            Some(b) => WebhookBody::Binary {
                mime_type: b.mime_type.clone(),
                data: b.data.clone(),
            },
            None => WebhookBody::Empty,
        },
        _ => WebhookBody::Json(
            items
                .first()
                .map(Item::json_value)
                .unwrap_or_else(|| json!({})),
        ),
    };
    Some(WebhookResponse {
        status: trigger.response_code,
        headers: trigger.response_headers,
        body,
    })
}

/// Webhook trigger node: passes the request item through.
pub struct WebhookNode;

#[async_trait::async_trait]
impl Node for WebhookNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "ledgerflow.webhook",
            display_name: "Webhook",
            trigger: true,
            raw_parameters: &[],
        }
    }
    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        let t = webhook_trigger(node);
        if t.path.is_empty() {
            return Err("the webhook has no path: set 'Path'".into());
        }
        if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&t.method.as_str()) {
            return Err(format!(
                "HTTP method '{}' is not supported for webhooks",
                t.method
            ));
        }
        Ok(())
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

/// Respond to Webhook: sets the response and passes its input through.
pub struct RespondToWebhookNode;

#[async_trait::async_trait]
impl Node for RespondToWebhookNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "ledgerflow.respondToWebhook",
            display_name: "Respond to Webhook",
            trigger: false,
            raw_parameters: &[],
        }
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items = ctx.items().to_vec();
        let p = ctx.parameters(0)?;
        let mut headers = response_headers(&p);
        let mut status = p
            .pointer("/options/responseCode")
            .and_then(Value::as_u64)
            .unwrap_or(200) as u16;
        let body = match p
            .get("respondWith")
            .and_then(Value::as_str)
            .unwrap_or("firstIncomingItem")
        {
            "allIncomingItems" => {
                WebhookBody::Json(Value::Array(items.iter().map(Item::json_value).collect()))
            }
            "json" => match p.get("responseBody") {
                Some(Value::String(s)) => {
                    WebhookBody::Json(serde_json::from_str(s).map_err(|e| {
                        NodeError::new(format!("'Response Body' is not valid JSON: {e}"))
                    })?)
                }
                Some(v) => WebhookBody::Json(v.clone()),
                None => WebhookBody::Json(json!({})),
            },
            "text" => WebhookBody::Text(match p.get("responseBody") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            }),
            "noData" => WebhookBody::Empty,
            "redirect" => {
                let url = p
                    .get("redirectURL")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                headers.insert("location".into(), url);
                status = p
                    .pointer("/options/responseCode")
                    .and_then(Value::as_u64)
                    .unwrap_or(307) as u16;
                WebhookBody::Empty
            }
            "binary" => match items
                .first()
                .and_then(|i| i.binary.as_ref())
                .and_then(|b| b.values().next())
            {
                Some(b) => WebhookBody::Binary {
                    mime_type: b.mime_type.clone(),
                    data: b.data.clone(),
                },
                None => {
                    return Err(NodeError::new(
                        "no binary data in the first incoming item to respond with",
                    ))
                }
            },
            "firstIncomingItem" => WebhookBody::Json(
                items
                    .first()
                    .map(Item::json_value)
                    .unwrap_or_else(|| json!({})),
            ),
            other => {
                return Err(NodeError::new(format!(
                    "'Respond With' value '{other}' is not supported"
                )))
            }
        };
        ctx.respond_to_webhook(WebhookResponse {
            status,
            headers,
            body,
        });
        Ok(NodeOutput::single(items))
    }
}
