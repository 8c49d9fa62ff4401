//! The node contract: the [`Node`] trait every node type implements, the [`NodeContext`] a node
//! runs with, what it returns ([`NodeOutput`]) and how it fails ([`NodeError`]); plus the
//! [`NodeRegistry`] that maps type names to implementations.
//!
//! Nothing here knows which node types exist: core nodes register themselves in
//! [`crate::nodes::register_core`], integrations (e.g. Xero) register theirs from their own crate.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::expression::{ExpressionError, JsError, ParamTree, Sandbox};
use crate::host::{CancelToken, CredentialProvider, WorkflowLoader};
use crate::item::{Item, PairedItem};
use crate::nodes::webhook::WebhookResponse;
use crate::workflow::{OnError, ValidationError, Workflow, WorkflowNode, WorkflowProblem};

/// Static facts about a node type.
#[derive(Debug, Clone, Copy)]
pub struct NodeDescription {
    /// Our type name, e.g. `ledgerflow.set`.
    pub type_name: &'static str,
    pub display_name: &'static str,
    /// Triggers start executions; their input is what the host hands to the run.
    pub trigger: bool,
    /// Parameter keys that are not templates (e.g. a Code node's `jsCode`).
    pub raw_parameters: &'static [&'static str],
}

/// A node type. Implementations are stateless: everything per run comes in the context.
#[async_trait::async_trait]
pub trait Node: Send + Sync {
    fn description(&self) -> NodeDescription;

    /// Number of main inputs (Merge has 2).
    fn inputs(&self, _node: &WorkflowNode) -> usize {
        1
    }

    /// Number of main outputs (If has 2), not counting an error output.
    fn outputs(&self, _node: &WorkflowNode) -> usize {
        1
    }

    /// Checks parameters that can be checked before running; the message names the fix.
    fn validate(&self, _node: &WorkflowNode) -> Result<(), String> {
        Ok(())
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError>;
}

/// What a node produced: items per output, plus items that failed when the node continues on
/// failure (routed by the executor to output 0 or to the error output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeOutput {
    pub outputs: Vec<Vec<Item>>,
    pub error_items: Vec<Item>,
}

impl NodeOutput {
    pub fn single(items: Vec<Item>) -> Self {
        NodeOutput {
            outputs: vec![items],
            error_items: Vec::new(),
        }
    }

    pub fn many(outputs: Vec<Vec<Item>>) -> Self {
        NodeOutput {
            outputs,
            error_items: Vec::new(),
        }
    }
}

/// A node failure. The message is for people: it says what failed and, where possible, why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    pub message: String,
    pub description: Option<String>,
    pub item_index: Option<usize>,
    /// The execution was cancelled while the node ran: never retried, never continued.
    pub cancelled: bool,
}

impl NodeError {
    pub fn new(message: impl Into<String>) -> Self {
        NodeError {
            message: message.into(),
            description: None,
            item_index: None,
            cancelled: false,
        }
    }

    pub fn at_item(mut self, index: usize) -> Self {
        self.item_index.get_or_insert(index);
        self
    }

    pub fn cancelled() -> Self {
        NodeError {
            cancelled: true,
            ..NodeError::new("the execution was cancelled")
        }
    }
}

impl From<ExpressionError> for NodeError {
    fn from(e: ExpressionError) -> Self {
        let cancelled = e.error == JsError::Cancelled;
        NodeError {
            item_index: Some(e.item_index),
            cancelled,
            ..NodeError::new(e.to_string())
        }
    }
}

/// Services a node may use, provided by the host.
#[derive(Clone)]
pub struct Services {
    pub credentials: Arc<dyn CredentialProvider>,
    pub workflows: Arc<dyn WorkflowLoader>,
    pub http: reqwest::Client,
}

/// Facts about the running execution.
#[derive(Debug, Clone)]
pub struct ExecutionInfo {
    pub execution_id: String,
    pub mode: String,
    /// 0 for a top-level execution, +1 per Execute Workflow level.
    pub depth: usize,
}

/// Everything a node sees while it runs.
pub struct NodeContext<'a> {
    pub node: &'a WorkflowNode,
    pub workflow: &'a Workflow,
    /// Items per main input index (empty when an input received nothing).
    pub inputs: Vec<Arc<Vec<Item>>>,
    pub run_index: usize,
    pub execution: &'a ExecutionInfo,
    pub services: &'a Services,
    pub engine: &'a Engine,
    pub cancel: &'a CancelToken,
    pub(crate) params: &'a ParamTree,
    pub(crate) sandbox: &'a mut Sandbox,
    pub(crate) webhook_response: &'a mut Option<WebhookResponse>,
}

impl NodeContext<'_> {
    /// Items of main input 0.
    pub fn items(&self) -> &[Item] {
        self.input(0)
    }

    /// Items of main input `index`.
    pub fn input(&self, index: usize) -> &[Item] {
        self.inputs.get(index).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The node's parameters with expressions evaluated for item `item_index` of input 0.
    pub fn parameters(&mut self, item_index: usize) -> Result<Value, NodeError> {
        Ok(self.sandbox.evaluate_tree(self.params, item_index)?)
    }

    /// The evaluated parameters decoded into `T`; a decoding failure names the node's
    /// parameters as the thing to fix.
    pub fn parameters_as<T: DeserializeOwned>(
        &mut self,
        item_index: usize,
    ) -> Result<T, NodeError> {
        let value = self.parameters(item_index)?;
        serde_json::from_value(value)
            .map_err(|e| NodeError::new(format!("invalid parameters: {e}")).at_item(item_index))
    }

    /// Parameters as written, expressions unevaluated.
    pub fn raw_parameters(&self) -> &Value {
        &self.node.parameters
    }

    /// Evaluates one template or literal string for item `item_index`.
    pub fn evaluate(&mut self, source: &str, item_index: usize) -> Result<Value, NodeError> {
        self.sandbox
            .evaluate_str(source, item_index)
            .map_err(|e| js_node_error(e, item_index))
    }

    /// The execution's JavaScript sandbox (for nodes that run code).
    pub fn sandbox(&mut self) -> &mut Sandbox {
        self.sandbox
    }

    /// Whether failed items become error items instead of failing the node.
    pub fn continues_on_fail(&self) -> bool {
        self.node.error_mode() != OnError::StopWorkflow
    }

    /// Records a failed item: as an error item when the node continues on failure, otherwise
    /// returns the error so the node fails.
    pub fn item_failed(
        &self,
        out: &mut NodeOutput,
        index: usize,
        error: NodeError,
    ) -> Result<(), NodeError> {
        if self.continues_on_fail() && !error.cancelled {
            out.error_items.push(error_item(&error.message, index));
            Ok(())
        } else {
            Err(error.at_item(index))
        }
    }

    /// Sets the response to a webhook-started execution (Respond to Webhook).
    pub fn respond_to_webhook(&mut self, response: WebhookResponse) {
        *self.webhook_response = Some(response);
    }
}

/// Converts a sandbox error into a node error.
pub fn js_node_error(e: JsError, item_index: usize) -> NodeError {
    NodeError {
        cancelled: e == JsError::Cancelled,
        ..NodeError::new(e.to_string()).at_item(item_index)
    }
}

/// The item n8n emits for a failure when continuing: `{ "error": message }`.
pub fn error_item(message: &str, index: usize) -> Item {
    Item {
        paired_item: Some(PairedItem::item(index)),
        ..Item::new(json!({ "error": message }))
    }
}

/// Node types by name.
#[derive(Clone, Default)]
pub struct NodeRegistry {
    nodes: HashMap<String, Arc<dyn Node>>,
}

impl std::fmt::Debug for NodeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.nodes.keys().collect();
        names.sort();
        f.debug_struct("NodeRegistry")
            .field("nodes", &names)
            .finish()
    }
}

impl NodeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        NodeRegistry::default()
    }

    /// A registry with the core nodes.
    pub fn with_core_nodes() -> Self {
        let mut registry = NodeRegistry::new();
        crate::nodes::register_core(&mut registry);
        registry
    }

    /// Adds (or replaces) a node type under its description's type name.
    pub fn register(&mut self, node: impl Node + 'static) {
        let name = node.description().type_name.to_string();
        self.nodes.insert(name, Arc::new(node));
    }

    pub fn get(&self, type_name: &str) -> Option<&Arc<dyn Node>> {
        self.nodes.get(type_name)
    }

    pub fn type_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Structural checks plus: every type exists, every node's parameters validate, and
    /// connections reach existing inputs.
    pub fn validate(&self, workflow: &Workflow) -> Result<(), ValidationError> {
        let mut problems = workflow.structural_problems();
        for node in &workflow.nodes {
            match self.get(&node.node_type) {
                None => {
                    let hint = if crate::import::map_node_type(&node.node_type).is_some() {
                        " (an n8n type: import the workflow with the n8n importer)".to_string()
                    } else {
                        String::new()
                    };
                    problems.push(WorkflowProblem::UnknownType {
                        node: node.name.clone(),
                        node_type: node.node_type.clone(),
                        hint,
                    });
                }
                Some(imp) => {
                    if let Err(message) = imp.validate(node) {
                        problems.push(WorkflowProblem::InvalidNode {
                            node: node.name.clone(),
                            message,
                        });
                    }
                }
            }
        }
        for (source, conns) in &workflow.connections {
            for c in conns.main.iter().flatten() {
                let Some(target) = workflow.node(&c.node) else {
                    continue;
                };
                let Some(imp) = self.get(&target.node_type) else {
                    continue;
                };
                let inputs = imp.inputs(target);
                if c.index >= inputs {
                    problems.push(WorkflowProblem::InvalidNode {
                        node: target.name.clone(),
                        message: format!(
                            "'{source}' is connected to input {} but the node has {inputs} input(s)",
                            c.index + 1
                        ),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                workflow: workflow.name.clone(),
                problems,
            })
        }
    }
}
