//! The host interface: what the server implements around the engine.
//!
//! - [`CredentialProvider`]: turns a node's credential reference into headers/query to add to an
//!   HTTP request. Secrets stay with the host; the engine never stores them in run data.
//! - [`WorkflowLoader`]: loads another workflow for Execute Workflow.
//! - [`ExecutionObserver`]: receives execution and node events, with the resumable
//!   [`ExecutionState`], so an execution can be persisted, resumed after a crash or marked
//!   crashed. [`InMemoryExecutionStore`] is the test implementation.
//! - [`CancelToken`]: cancels a running execution.
//!
//! This module owns no storage technology: no SQL here, only traits and in-memory fakes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::engine::ExecutionState;
use crate::item::Item;
use crate::nodes::webhook::WebhookResponse;
use crate::run_data::{ExecutionResult, ExecutionStatus, NodeRun};
use crate::workflow::{CredentialRef, Workflow};

/// Cancels an execution: checked between nodes, during waits and HTTP calls, and inside
/// JavaScript (via the sandbox's interrupt handler).
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl CancelToken {
    pub fn new() -> Self {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }
}

/// What the engine asks the host to authenticate.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// `httpBasicAuth`, `httpHeaderAuth`, `httpQueryAuth`, or a predefined type such as
    /// `xeroOAuth2Api`.
    pub credential_type: &'a str,
    pub credential: &'a CredentialRef,
    pub node: &'a str,
    pub method: &'a str,
    pub url: &'a str,
}

/// Headers and query parameters to add to a request. Values are secrets: they are added to
/// the outgoing request only, never to run data or logs.
#[derive(Debug, Default)]
pub struct Authentication {
    pub headers: Vec<(String, SecretString)>,
    pub query: Vec<(String, SecretString)>,
}

impl Authentication {
    /// `Authorization: Basic …` for an `httpBasicAuth` credential.
    pub fn basic(user: &str, password: &SecretString) -> Self {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose_secret()));
        Authentication::header(
            "Authorization",
            SecretString::from(format!("Basic {token}")),
        )
    }

    /// One header, for an `httpHeaderAuth` credential.
    pub fn header(name: &str, value: SecretString) -> Self {
        Authentication {
            headers: vec![(name.to_string(), value)],
            query: Vec::new(),
        }
    }

    /// `Authorization: Bearer …`, e.g. for an OAuth2 access token.
    pub fn bearer(token: &SecretString) -> Self {
        Authentication::header(
            "Authorization",
            SecretString::from(format!("Bearer {}", token.expose_secret())),
        )
    }
}

/// A credential could not be used; the message names the credential and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// Implemented by the host: signs requests for a node's credential.
#[async_trait::async_trait]
pub trait CredentialProvider: Send + Sync {
    async fn authenticate(
        &self,
        request: AuthRequest<'_>,
    ) -> Result<Authentication, CredentialError>;
}

/// A provider for hosts without credentials: every request for one fails clearly.
#[derive(Debug, Default)]
pub struct NoCredentials;

#[async_trait::async_trait]
impl CredentialProvider for NoCredentials {
    async fn authenticate(
        &self,
        request: AuthRequest<'_>,
    ) -> Result<Authentication, CredentialError> {
        Err(CredentialError(format!(
            "credential '{}' ({}) is not available: no credential store is configured",
            request.credential.name, request.credential_type
        )))
    }
}

/// Implemented by the host: loads workflows for Execute Workflow.
#[async_trait::async_trait]
pub trait WorkflowLoader: Send + Sync {
    async fn load(&self, workflow_id: &str) -> Result<Workflow, String>;
}

/// A loader over a fixed map, for tests and embedding.
#[derive(Debug, Default, Clone)]
pub struct StaticWorkflows(pub HashMap<String, Workflow>);

#[async_trait::async_trait]
impl WorkflowLoader for StaticWorkflows {
    async fn load(&self, workflow_id: &str) -> Result<Workflow, String> {
        self.0
            .get(workflow_id)
            .cloned()
            .ok_or_else(|| format!("workflow '{workflow_id}' does not exist"))
    }
}

/// The observer could not record progress; the execution stops as failed rather than run on
/// unrecorded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not record execution progress: {0}")]
pub struct ObserverError(pub String);

/// A node is about to run.
#[derive(Debug)]
pub struct NodeStarted<'a> {
    pub execution_id: &'a str,
    pub node: &'a str,
    pub run_index: usize,
}

/// A node finished (successfully or not). `state` is everything needed to resume the execution
/// after this node: persist it (as JSON) to survive a crash.
#[derive(Debug)]
pub struct NodeFinished<'a> {
    pub execution_id: &'a str,
    pub node: &'a str,
    pub run_index: usize,
    pub run: &'a NodeRun,
    pub state: &'a ExecutionState,
}

impl NodeFinished<'_> {
    /// The run as JSON with input/output capped at `max_bytes` per list (what to store for
    /// display; see [`capped_run_json`]).
    pub fn capped_run(&self, max_bytes: usize) -> Value {
        capped_run_json(self.run, max_bytes)
    }
}

/// Implemented by the host to persist executions. All methods default to doing nothing.
#[async_trait::async_trait]
pub trait ExecutionObserver: Send + Sync {
    async fn execution_started(&self, _state: &ExecutionState) -> Result<(), ObserverError> {
        Ok(())
    }
    async fn node_started(&self, _event: NodeStarted<'_>) -> Result<(), ObserverError> {
        Ok(())
    }
    async fn node_finished(&self, _event: NodeFinished<'_>) -> Result<(), ObserverError> {
        Ok(())
    }
    /// A Respond to Webhook node decided the response: the host may answer the caller now,
    /// while the execution goes on.
    async fn webhook_response(&self, _execution_id: &str, _response: &WebhookResponse) {}
    async fn execution_finished(&self, _result: &ExecutionResult) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoopObserver;

impl ExecutionObserver for NoopObserver {}

/// Size-capped JSON of a node run for display and storage: items are kept while the
/// serialised size stays under `max_bytes` per input/output list, then replaced by a marker
/// `{"truncated": N}`; binary `data` is replaced by its size.
pub fn capped_run_json(run: &NodeRun, max_bytes: usize) -> Value {
    let cap_list = |items: &[Item]| -> Value {
        let mut kept = Vec::new();
        let mut size = 0usize;
        for (i, item) in items.iter().enumerate() {
            let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
            if let Some(bin) = v.get_mut("binary").and_then(Value::as_object_mut) {
                for data in bin.values_mut() {
                    if let Some(d) = data.get("data").and_then(Value::as_str) {
                        let len = d.len() * 3 / 4;
                        data["data"] = json!(format!("<{len} bytes omitted>"));
                    }
                }
            }
            size += v.to_string().len();
            if size > max_bytes {
                kept.push(json!({"truncated": items.len() - i}));
                break;
            }
            kept.push(v);
        }
        Value::Array(kept)
    };
    json!({
        "startTime": run.start_time,
        "executionTimeMs": run.execution_time_ms,
        "attempts": run.attempts,
        "source": run.source,
        "input": run.input.iter().map(|l| cap_list(l)).collect::<Vec<_>>(),
        "output": run.output.iter().map(|l| cap_list(l)).collect::<Vec<_>>(),
        "error": run.error,
    })
}

/// One execution as the in-memory store keeps it.
#[derive(Debug, Clone)]
pub struct StoredExecution {
    pub status: ExecutionStatus,
    /// `(node, run index, capped run JSON)` in completion order.
    pub node_runs: Vec<(String, usize, Value)>,
    pub started_nodes: Vec<String>,
    /// The latest resumable state (after the last completed node).
    pub checkpoint: Option<ExecutionState>,
    pub result: Option<ExecutionResult>,
    pub webhook_response: Option<WebhookResponse>,
}

/// An [`ExecutionObserver`] keeping everything in memory; also shows the host what to store.
#[derive(Debug, Default)]
pub struct InMemoryExecutionStore {
    executions: Mutex<HashMap<String, StoredExecution>>,
    /// Per-list size cap for stored input/output JSON.
    pub max_item_bytes: usize,
}

impl InMemoryExecutionStore {
    pub fn new() -> Self {
        InMemoryExecutionStore {
            executions: Mutex::new(HashMap::new()),
            max_item_bytes: 64 * 1024,
        }
    }

    pub fn get(&self, execution_id: &str) -> Option<StoredExecution> {
        self.lock().get(execution_id).cloned()
    }

    /// What a host does at startup: executions still `running` were interrupted. Those with a
    /// checkpoint are returned for resuming; the others are marked crashed.
    pub fn recover(&self) -> Vec<ExecutionState> {
        let mut resumable = Vec::new();
        for exec in self.lock().values_mut() {
            if exec.status == ExecutionStatus::Running {
                match &exec.checkpoint {
                    Some(state) => resumable.push(state.clone()),
                    None => exec.status = ExecutionStatus::Crashed,
                }
            }
        }
        resumable
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredExecution>> {
        self.executions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl ExecutionObserver for InMemoryExecutionStore {
    async fn execution_started(&self, state: &ExecutionState) -> Result<(), ObserverError> {
        let mut map = self.lock();
        let entry = map
            .entry(state.execution_id.clone())
            .or_insert_with(|| StoredExecution {
                status: ExecutionStatus::Running,
                node_runs: Vec::new(),
                started_nodes: Vec::new(),
                checkpoint: None,
                result: None,
                webhook_response: None,
            });
        entry.status = ExecutionStatus::Running;
        Ok(())
    }

    async fn node_started(&self, event: NodeStarted<'_>) -> Result<(), ObserverError> {
        if let Some(e) = self.lock().get_mut(event.execution_id) {
            e.started_nodes.push(event.node.to_string());
        }
        Ok(())
    }

    async fn node_finished(&self, event: NodeFinished<'_>) -> Result<(), ObserverError> {
        let capped = event.capped_run(self.max_item_bytes.max(1));
        if let Some(e) = self.lock().get_mut(event.execution_id) {
            e.node_runs
                .push((event.node.to_string(), event.run_index, capped));
            e.checkpoint = Some(event.state.clone());
        }
        Ok(())
    }

    async fn webhook_response(&self, execution_id: &str, response: &WebhookResponse) {
        if let Some(e) = self.lock().get_mut(execution_id) {
            e.webhook_response = Some(response.clone());
        }
    }

    async fn execution_finished(&self, result: &ExecutionResult) -> Result<(), ObserverError> {
        if let Some(e) = self.lock().get_mut(&result.execution_id) {
            e.status = result.status;
            e.result = Some(result.clone());
        }
        Ok(())
    }
}
