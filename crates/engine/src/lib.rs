//! Ledgerflow's workflow engine: n8n-shaped workflows, a v1-order executor, JavaScript
//! expressions in a QuickJS sandbox, and the core nodes.
//!
//! The engine knows no SQL, no HTTP server and no Xero: the host (the server) implements
//! [`CredentialProvider`], [`WorkflowLoader`] and [`ExecutionObserver`], registers extra nodes
//! through [`NodeRegistry`] / [`EngineBuilder::node`], and calls [`Engine::run`].
//!
//! ```no_run
//! # async fn demo(json: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use ledgerflow_engine::{import_n8n_str, CancelToken, Engine, ExecutionMode, NoopObserver, RunRequest};
//! let workflow = import_n8n_str(json)?;
//! let engine = Engine::builder().build();
//! engine.validate(&workflow)?;
//! let result = engine
//!     .run(RunRequest::new(workflow, ExecutionMode::Manual), &NoopObserver, &CancelToken::new())
//!     .await;
//! println!("{:?}", result.status);
//! # Ok(()) }
//! ```
//!
//! Module map: [`workflow`] (model), [`import`] (n8n importer), [`item`] (data), [`engine`]
//! (executor), [`expression`] (sandbox), [`node`] (node trait, registry), [`nodes`] (core
//! nodes), [`host`] (host traits, in-memory store), [`run_data`] (execution records).

pub mod engine;
pub mod expression;
pub mod host;
pub mod import;
pub mod item;
pub mod node;
pub mod nodes;
pub mod run_data;
pub mod workflow;

pub use engine::{Engine, EngineBuilder, ExecutionMode, ExecutionState, RunRequest, StackEntry};
pub use expression::{ExpressionError, JsError, SandboxLimits};
pub use host::{
    capped_run_json, AuthRequest, Authentication, CancelToken, CredentialError, CredentialProvider,
    ExecutionObserver, InMemoryExecutionStore, NoCredentials, NodeFinished, NodeStarted,
    NoopObserver, ObserverError, StaticWorkflows, WorkflowLoader,
};
pub use import::{import_n8n, import_n8n_str, ImportError, UnsupportedNode};
pub use item::{BinaryData, Item, PairedItem, PairedItemRef};
pub use node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput, NodeRegistry};
pub use nodes::trigger::{schedule_item, schedule_triggers, ScheduleRule, ScheduleTrigger};
pub use nodes::webhook::{
    webhook_triggers, ResponseMode, WebhookBody, WebhookRequest, WebhookResponse, WebhookTrigger,
};
pub use run_data::{ErrorRecord, ExecutionResult, ExecutionStatus, NodeRun, RunData, SourceRef};
pub use workflow::{CredentialRef, OnError, ValidationError, Workflow, WorkflowNode};

/// The request that runs `error_workflow` for a failed execution of `workflow` (named in its
/// `settings.errorWorkflow`): starts at the error workflow's Error Trigger with
/// [`error_workflow_item`] as input.
pub fn error_workflow_request(
    workflow: &Workflow,
    result: &ExecutionResult,
    mode: ExecutionMode,
    error_workflow: Workflow,
) -> RunRequest {
    let start = error_workflow
        .nodes
        .iter()
        .find(|n| n.node_type == "ledgerflow.errorTrigger" && !n.disabled)
        .map(|n| n.name.clone());
    let mut request = RunRequest::new(error_workflow, ExecutionMode::Error);
    request.start_node = start;
    request.input = vec![error_workflow_item(workflow, result, mode)];
    request
}

/// The input item for a workflow's error workflow (started at its Error Trigger), in n8n's
/// shape: `{execution: {id, error: {message}, lastNodeExecuted, mode}, workflow: {id, name}}`.
pub fn error_workflow_item(
    workflow: &Workflow,
    result: &ExecutionResult,
    mode: ExecutionMode,
) -> Item {
    Item::new(serde_json::json!({
        "execution": {
            "id": result.execution_id,
            "error": {
                "message": result.error.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
                "node": result.error.as_ref().and_then(|e| e.node.clone()),
            },
            "lastNodeExecuted": result.last_node_executed,
            "mode": mode.as_str(),
        },
        "workflow": {"id": workflow.id, "name": workflow.name},
    }))
}
