//! Run data: the serialisable record of an execution (per node run: source, input, output,
//! timing, error) and its final status.
//!
//! Owns the shapes the host stores as JSON. It does not store anything itself and does not
//! decide what is kept: size capping for persistence lives in [`crate::host`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::item::Item;

/// Status of an execution. The engine produces `Running` → `Succeeded | Failed | Cancelled`;
/// `Queued` and `Crashed` are the host's (queued in the store; found running after a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Crashed,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::Crashed => "crashed",
        }
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::Running)
    }
}

/// Which node run produced an input: output `output` of run `run` of node `node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub node: String,
    pub output: usize,
    pub run: usize,
}

/// An error as recorded in run data (never contains secrets: messages are built from
/// responses and expressions, not from credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRecord {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
}

/// One run of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRun {
    pub start_time: DateTime<Utc>,
    pub execution_time_ms: u64,
    /// Attempts made (more than 1 only with `retryOnFail`).
    pub attempts: u32,
    /// Per input index, the node run that fed it.
    pub source: Vec<Option<SourceRef>>,
    /// Per input index, the items received.
    pub input: Vec<Arc<Vec<Item>>>,
    /// Per output index, the items produced.
    pub output: Vec<Arc<Vec<Item>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
}

/// All node runs of an execution: node name → runs in order.
pub type RunData = BTreeMap<String, Vec<NodeRun>>;

/// The outcome of running a workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionResult {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub run_data: RunData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_node_executed: Option<String>,
    /// The response for a webhook-started execution, when one was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_response: Option<crate::nodes::webhook::WebhookResponse>,
}

impl ExecutionResult {
    /// Output items of the last run of `node` on output `output` (empty if it did not run).
    pub fn output(&self, node: &str, output: usize) -> &[Item] {
        self.run_data
            .get(node)
            .and_then(|runs| runs.last())
            .and_then(|run| run.output.get(output))
            .map(|o| o.as_slice())
            .unwrap_or(&[])
    }

    /// JSON of the output items of the last run of `node` on output 0.
    pub fn output_json(&self, node: &str) -> Vec<serde_json::Value> {
        self.output(node, 0).iter().map(Item::json_value).collect()
    }

    /// Output 0 of the last node executed: what n8n returns for "last node" responses and
    /// what Execute Workflow hands back to its caller.
    pub fn last_output(&self) -> &[Item] {
        match &self.last_node_executed {
            Some(node) => self.output(node, 0),
            None => &[],
        }
    }
}
