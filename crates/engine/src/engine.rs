//! The executor: runs a workflow from a start node in n8n v1 order and produces run data.
//!
//! Order (n8n `executionOrder: "v1"`): a stack of node runs; after a node runs, the nodes it
//! feeds are put at the *front* of the stack, output 0's targets first (each output's targets
//! top-to-bottom, left-to-right on the canvas), so one branch runs to completion before the
//! next. A node is only scheduled for a non-empty output. Nodes with several inputs (Merge)
//! wait until every input has data; when nothing else is left to run, waiting nodes run with
//! what they have. Per node: `disabled` (input passes through), `executeOnce` (first item only),
//! retries (`retryOnFail`, `maxTries`, `waitBetweenTries`), `onError`/`continueOnFail`,
//! `alwaysOutputData` (an empty item when nothing came out).
//!
//! The whole executor state is [`ExecutionState`], serialisable, handed to the observer after
//! every node so the host can resume an execution after a crash ([`Engine::resume`]).
//! It does not persist anything itself and knows no node type except through the registry.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::expression::{ExpressionGlobals, ParamTree, RunView, Sandbox, SandboxLimits};
use crate::host::{
    CancelToken, CredentialProvider, ExecutionObserver, NoCredentials, NodeFinished, NodeStarted,
    StaticWorkflows, WorkflowLoader,
};
use crate::item::{Item, PairedItem};
use crate::node::{
    error_item, ExecutionInfo, NodeContext, NodeError, NodeOutput, NodeRegistry, Services,
};
use crate::nodes::webhook::WebhookResponse;
use crate::run_data::{ErrorRecord, ExecutionResult, ExecutionStatus, NodeRun, SourceRef};
use crate::workflow::{OnError, ValidationError, Workflow};

/// How an execution was started (n8n's execution modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    Manual,
    Trigger,
    Webhook,
    Error,
    Integrated,
    Retry,
    Cli,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Manual => "manual",
            ExecutionMode::Trigger => "trigger",
            ExecutionMode::Webhook => "webhook",
            ExecutionMode::Error => "error",
            ExecutionMode::Integrated => "integrated",
            ExecutionMode::Retry => "retry",
            ExecutionMode::Cli => "cli",
        }
    }
}

/// A request to run a workflow. Serialisable, so the host can queue it in its store and a
/// worker can claim and run it later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRequest {
    pub execution_id: String,
    pub workflow: Arc<Workflow>,
    pub mode: ExecutionMode,
    /// The node to start at; by default the first trigger (Manual Trigger preferred), else the
    /// first node without parents.
    pub start_node: Option<String>,
    /// Items handed to the start node (a webhook's request, a schedule's tick…);
    /// by default one empty item.
    pub input: Vec<Item>,
    /// `$vars`.
    pub vars: Map<String, Value>,
}

impl RunRequest {
    pub fn new(workflow: impl Into<Arc<Workflow>>, mode: ExecutionMode) -> Self {
        RunRequest {
            execution_id: uuid::Uuid::new_v4().to_string(),
            workflow: workflow.into(),
            mode,
            start_node: None,
            input: vec![Item::empty()],
            vars: Map::new(),
        }
    }
}

/// One scheduled node run: the node and its input per input index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackEntry {
    pub node: String,
    pub inputs: Vec<Option<Arc<Vec<Item>>>>,
    pub sources: Vec<Option<SourceRef>>,
}

/// The complete, serialisable state of an execution. Persist it after each node to resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionState {
    pub execution_id: String,
    pub workflow: Arc<Workflow>,
    pub mode: ExecutionMode,
    pub vars: Map<String, Value>,
    pub started_at: DateTime<Utc>,
    pub now_ms: i64,
    pub depth: usize,
    pub run_data: crate::run_data::RunData,
    pub stack: VecDeque<StackEntry>,
    pub waiting: Vec<StackEntry>,
    pub last_node_executed: Option<String>,
    pub webhook_response: Option<WebhookResponse>,
}

/// The workflow engine: a node registry plus the host's services. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    registry: NodeRegistry,
    services: Services,
    limits: SandboxLimits,
    max_depth: usize,
    max_node_runs: usize,
    max_execution_time: Option<Duration>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("registry", &self.inner.registry)
            .finish()
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    registry: NodeRegistry,
    credentials: Arc<dyn CredentialProvider>,
    workflows: Arc<dyn WorkflowLoader>,
    http: Option<reqwest::Client>,
    limits: SandboxLimits,
    max_depth: usize,
    max_node_runs: usize,
    max_execution_time: Option<Duration>,
}

impl EngineBuilder {
    /// Replaces the registry (by default: the core nodes).
    pub fn registry(mut self, registry: NodeRegistry) -> Self {
        self.registry = registry;
        self
    }
    /// Registers one more node type (e.g. an integration's).
    pub fn node(mut self, node: impl crate::node::Node + 'static) -> Self {
        self.registry.register(node);
        self
    }
    pub fn credentials(mut self, provider: Arc<dyn CredentialProvider>) -> Self {
        self.credentials = provider;
        self
    }
    pub fn workflows(mut self, loader: Arc<dyn WorkflowLoader>) -> Self {
        self.workflows = loader;
        self
    }
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }
    pub fn limits(mut self, limits: SandboxLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Maximum nesting of Execute Workflow (default 10).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
    /// Maximum node runs in one execution (default 100,000), so a loop in a workflow that never
    /// exits ends as a failure instead of running forever.
    pub fn max_node_runs(mut self, runs: usize) -> Self {
        self.max_node_runs = runs;
        self
    }
    /// Longest an execution may run (default: no limit); a workflow's own
    /// `settings.executionTimeout` can only shorten it.
    pub fn max_execution_time(mut self, limit: Option<Duration>) -> Self {
        self.max_execution_time = limit;
        self
    }
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                registry: self.registry,
                services: Services {
                    credentials: self.credentials,
                    workflows: self.workflows,
                    http: self.http.unwrap_or_default(),
                },
                limits: self.limits,
                max_depth: self.max_depth,
                max_node_runs: self.max_node_runs,
                max_execution_time: self.max_execution_time,
            }),
        }
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

enum Step {
    Continue,
    Stop(ExecutionStatus, Option<ErrorRecord>),
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            registry: NodeRegistry::with_core_nodes(),
            credentials: Arc::new(NoCredentials),
            workflows: Arc::new(StaticWorkflows::default()),
            http: None,
            limits: SandboxLimits::default(),
            max_depth: 10,
            max_node_runs: 100_000,
            max_execution_time: None,
        }
    }

    pub fn registry(&self) -> &NodeRegistry {
        &self.inner.registry
    }

    /// Checks a workflow against the registry (types exist, parameters valid, connections).
    pub fn validate(&self, workflow: &Workflow) -> Result<(), ValidationError> {
        self.inner.registry.validate(workflow)
    }

    /// Runs a workflow to the end (or failure, or cancellation). Never panics on user input:
    /// an invalid workflow yields a `failed` result whose error lists the problems.
    pub async fn run(
        &self,
        request: RunRequest,
        observer: &dyn ExecutionObserver,
        cancel: &CancelToken,
    ) -> ExecutionResult {
        self.run_at_depth(request, observer, cancel, 0).await
    }

    pub(crate) fn run_at_depth<'a>(
        &'a self,
        request: RunRequest,
        observer: &'a dyn ExecutionObserver,
        cancel: &'a CancelToken,
        depth: usize,
    ) -> BoxFuture<'a, ExecutionResult> {
        Box::pin(async move {
            let started_at = Utc::now();
            let mut state = ExecutionState {
                execution_id: request.execution_id,
                workflow: request.workflow,
                mode: request.mode,
                vars: request.vars,
                started_at,
                now_ms: started_at.timestamp_millis(),
                depth,
                run_data: Default::default(),
                stack: VecDeque::new(),
                waiting: Vec::new(),
                last_node_executed: None,
                webhook_response: None,
            };
            if let Err(e) = self.validate(&state.workflow) {
                return self.fail_early(state, e.to_string(), observer).await;
            }
            if depth > self.inner.max_depth {
                let msg = format!(
                    "workflows call each other more than {} levels deep (a loop of Execute Workflow nodes?)",
                    self.inner.max_depth
                );
                return self.fail_early(state, msg, observer).await;
            }
            let start = match self.start_node(&state.workflow, request.start_node.as_deref()) {
                Ok(s) => s,
                Err(msg) => return self.fail_early(state, msg, observer).await,
            };
            state.stack.push_back(StackEntry {
                node: start,
                inputs: vec![Some(Arc::new(request.input))],
                sources: vec![None],
            });
            self.drive(state, observer, cancel).await
        })
    }

    /// Runs a workflow on tokio's blocking pool, so JavaScript (CPU-bound, up to the Code
    /// time limit) never stalls the async workers serving HTTP. Needs a multi-threaded runtime.
    /// This is how a worker should start a claimed execution.
    pub fn spawn(
        &self,
        request: RunRequest,
        observer: Arc<dyn ExecutionObserver>,
        cancel: CancelToken,
    ) -> tokio::task::JoinHandle<ExecutionResult> {
        let engine = self.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            handle.block_on(async move { engine.run(request, observer.as_ref(), &cancel).await })
        })
    }

    /// Continues an execution from a persisted state (after the last completed node).
    pub async fn resume(
        &self,
        state: ExecutionState,
        observer: &dyn ExecutionObserver,
        cancel: &CancelToken,
    ) -> ExecutionResult {
        if let Err(e) = self.validate(&state.workflow) {
            return self.fail_early(state, e.to_string(), observer).await;
        }
        self.drive(state, observer, cancel).await
    }

    fn start_node(&self, workflow: &Workflow, requested: Option<&str>) -> Result<String, String> {
        if let Some(name) = requested {
            return workflow
                .node(name)
                .map(|n| n.name.clone())
                .ok_or_else(|| format!("start node '{name}' does not exist in the workflow"));
        }
        let is_trigger = |t: &str| {
            self.inner
                .registry
                .get(t)
                .map(|n| n.description().trigger)
                .unwrap_or(false)
        };
        let enabled = || workflow.nodes.iter().filter(|n| !n.disabled);
        enabled()
            .find(|n| n.node_type == "ledgerflow.manualTrigger")
            .or_else(|| enabled().find(|n| is_trigger(&n.node_type)))
            .or_else(|| enabled().find(|n| workflow.parents(&n.name).is_empty()))
            .map(|n| n.name.clone())
            .ok_or_else(|| "the workflow has no node to start from: add a trigger".to_string())
    }

    async fn fail_early(
        &self,
        state: ExecutionState,
        message: String,
        observer: &dyn ExecutionObserver,
    ) -> ExecutionResult {
        let result = ExecutionResult {
            execution_id: state.execution_id,
            status: ExecutionStatus::Failed,
            started_at: state.started_at,
            finished_at: Utc::now(),
            run_data: state.run_data,
            error: Some(ErrorRecord {
                message,
                description: None,
                node: None,
                item_index: None,
            }),
            last_node_executed: state.last_node_executed,
            webhook_response: state.webhook_response,
        };
        let _ = observer.execution_finished(&result).await;
        result
    }

    async fn drive(
        &self,
        mut state: ExecutionState,
        observer: &dyn ExecutionObserver,
        cancel: &CancelToken,
    ) -> ExecutionResult {
        let globals = ExpressionGlobals {
            workflow_id: state.workflow.id.clone(),
            workflow_name: state.workflow.name.clone(),
            workflow_active: state.workflow.active,
            execution_id: state.execution_id.clone(),
            execution_mode: state.mode.as_str().to_string(),
            vars: state.vars.clone(),
            now_ms: state.now_ms,
        };
        // The run's own token: cancelled by the caller's token or by the execution time limit.
        let run_cancel = CancelToken::new();
        let limit = execution_timeout(&state.workflow, self.inner.max_execution_time);
        let timed_out = std::sync::atomic::AtomicBool::new(false);
        let watch = async {
            match limit {
                Some(limit) => tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(limit) => timed_out.store(true, std::sync::atomic::Ordering::SeqCst),
                },
                None => cancel.cancelled().await,
            }
            run_cancel.cancel();
            std::future::pending::<()>().await
        };
        let run = async {
            match Sandbox::new(self.inner.limits.clone(), &globals, run_cancel.flag()) {
                Err(e) => (
                    ExecutionStatus::Failed,
                    Some(ErrorRecord {
                        message: e.to_string(),
                        description: None,
                        node: None,
                        item_index: None,
                    }),
                ),
                Ok(mut sandbox) => {
                    self.drive_with(&mut state, &mut sandbox, observer, &run_cancel)
                        .await
                }
            }
        };
        let (mut status, mut error) = tokio::select! {
            outcome = run => outcome,
            _ = watch => unreachable!("the watcher never completes"),
        };
        if status == ExecutionStatus::Cancelled
            && timed_out.load(std::sync::atomic::Ordering::SeqCst)
        {
            status = ExecutionStatus::Failed;
            error = Some(ErrorRecord {
                message: format!(
                    "the execution took longer than its time limit of {}s and was stopped",
                    limit.map_or(0, |l| l.as_secs())
                ),
                description: None,
                node: state.last_node_executed.clone(),
                item_index: None,
            });
        }
        let result = ExecutionResult {
            execution_id: state.execution_id.clone(),
            status,
            started_at: state.started_at,
            finished_at: Utc::now(),
            run_data: std::mem::take(&mut state.run_data),
            error,
            last_node_executed: state.last_node_executed.take(),
            webhook_response: state.webhook_response.take(),
        };
        let mut result = result;
        if result.webhook_response.is_none() {
            result.webhook_response =
                crate::nodes::webhook::last_node_response(&state.workflow, &result);
        }
        if let Err(e) = observer.execution_finished(&result).await {
            tracing::warn!(execution = %result.execution_id, error = %e, "execution result not recorded");
        }
        result
    }

    async fn drive_with(
        &self,
        state: &mut ExecutionState,
        sandbox: &mut Sandbox,
        observer: &dyn ExecutionObserver,
        cancel: &CancelToken,
    ) -> (ExecutionStatus, Option<ErrorRecord>) {
        let observer_failed = |e: crate::host::ObserverError| {
            (
                ExecutionStatus::Failed,
                Some(ErrorRecord {
                    message: e.to_string(),
                    description: None,
                    node: None,
                    item_index: None,
                }),
            )
        };
        if let Err(e) = observer.execution_started(state).await {
            return observer_failed(e);
        }
        // Compile every node's parameters once.
        let mut trees = std::collections::HashMap::new();
        for node in &state.workflow.nodes {
            let raw = self
                .inner
                .registry
                .get(&node.node_type)
                .map(|n| n.description().raw_parameters)
                .unwrap_or(&[]);
            trees.insert(node.name.clone(), ParamTree::compile(&node.parameters, raw));
            sandbox.add_node(&node.name, node.parameters.clone());
        }
        // Runs recorded before a resume are visible to expressions again.
        for (name, runs) in &state.run_data {
            for run in runs {
                sandbox.record_run(
                    name,
                    RunView {
                        sources: run.source.clone(),
                        outputs: run.output.clone(),
                    },
                );
            }
        }
        let mut node_runs: usize = state.run_data.values().map(Vec::len).sum();
        loop {
            if cancel.is_cancelled() {
                return (ExecutionStatus::Cancelled, None);
            }
            node_runs += 1;
            if node_runs > self.inner.max_node_runs {
                let message = format!(
                    "the execution ran more than {} nodes: does the workflow loop without an exit?",
                    self.inner.max_node_runs
                );
                return (
                    ExecutionStatus::Failed,
                    Some(ErrorRecord {
                        message,
                        description: None,
                        node: state.last_node_executed.clone(),
                        item_index: None,
                    }),
                );
            }
            let entry = match state.stack.pop_front() {
                Some(e) => e,
                None if !state.waiting.is_empty() => state.waiting.remove(0),
                None => return (ExecutionStatus::Succeeded, None),
            };
            let run_index = state.run_data.get(&entry.node).map_or(0, Vec::len);
            if let Err(e) = observer
                .node_started(NodeStarted {
                    execution_id: &state.execution_id,
                    node: &entry.node,
                    run_index,
                })
                .await
            {
                return observer_failed(e);
            }
            let node_name = entry.node.clone();
            let step = self
                .run_node(state, sandbox, &trees, entry, run_index, observer, cancel)
                .await;
            if let Some(runs) = state.run_data.get(&node_name) {
                if let Some(run) = runs.last() {
                    let event = NodeFinished {
                        execution_id: &state.execution_id,
                        node: &node_name,
                        run_index,
                        run,
                        state,
                    };
                    if let Err(e) = observer.node_finished(event).await {
                        return observer_failed(e);
                    }
                }
            }
            if let Step::Stop(status, error) = step {
                return (status, error);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_node(
        &self,
        state: &mut ExecutionState,
        sandbox: &mut Sandbox,
        trees: &std::collections::HashMap<String, ParamTree>,
        entry: StackEntry,
        run_index: usize,
        observer: &dyn ExecutionObserver,
        cancel: &CancelToken,
    ) -> Step {
        let workflow = state.workflow.clone();
        let Some(node) = workflow.node(&entry.node) else {
            return Step::Stop(
                ExecutionStatus::Failed,
                Some(ErrorRecord {
                    message: format!("node '{}' no longer exists in the workflow", entry.node),
                    description: None,
                    node: Some(entry.node.clone()),
                    item_index: None,
                }),
            );
        };
        let Some(imp) = self.inner.registry.get(&node.node_type).cloned() else {
            return Step::Stop(
                ExecutionStatus::Failed,
                Some(ErrorRecord {
                    message: format!("node '{}' has unknown type '{}'", node.name, node.node_type),
                    description: None,
                    node: Some(node.name.clone()),
                    item_index: None,
                }),
            );
        };
        let mut inputs: Vec<Arc<Vec<Item>>> = entry
            .inputs
            .iter()
            .map(|i| i.clone().unwrap_or_default())
            .collect();
        if node.execute_once {
            for input in &mut inputs {
                if input.len() > 1 {
                    *input = Arc::new(input[..1].to_vec());
                }
            }
        }
        let started = Utc::now();
        let clock = Instant::now();
        let output_count = imp.outputs(node);
        let info = ExecutionInfo {
            execution_id: state.execution_id.clone(),
            mode: state.mode.as_str().to_string(),
            depth: state.depth,
        };
        let empty = ParamTree::Static(Value::Object(Map::new()));
        let tree = trees.get(&node.name).unwrap_or(&empty);
        let mut attempts = 0;
        let result = if node.disabled {
            // n8n passes a disabled node's first input straight through.
            Ok(NodeOutput::single(
                inputs.first().map(|i| i.to_vec()).unwrap_or_default(),
            ))
        } else {
            let max = node.attempts();
            loop {
                attempts += 1;
                sandbox.begin_node(
                    &node.name,
                    run_index,
                    inputs.first().cloned().unwrap_or_default(),
                    entry.sources.clone(),
                );
                let before = state.webhook_response.clone();
                let mut ctx = NodeContext {
                    node,
                    workflow: &workflow,
                    inputs: inputs.clone(),
                    run_index,
                    execution: &info,
                    services: &self.inner.services,
                    engine: self,
                    cancel,
                    params: tree,
                    sandbox,
                    webhook_response: &mut state.webhook_response,
                };
                let outcome = tokio::select! {
                    r = imp.execute(&mut ctx) => r,
                    _ = cancel.cancelled() => Err(NodeError::cancelled()),
                };
                drop(ctx);
                if state.webhook_response != before {
                    if let Some(response) = &state.webhook_response {
                        observer
                            .webhook_response(&state.execution_id, response)
                            .await;
                    }
                }
                match outcome {
                    Err(e) if !e.cancelled && attempts < max => {
                        tracing::debug!(node = %node.name, attempt = attempts, error = %e, "node failed, retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(node.retry_wait()) => {}
                            _ = cancel.cancelled() => break Err(NodeError::cancelled()),
                        }
                    }
                    other => break other,
                }
            }
        };
        let mut record_error = None;
        let mut outputs: Vec<Vec<Item>> = match result {
            Ok(mut out) => {
                out.outputs
                    .resize_with(output_count.max(out.outputs.len()), Vec::new);
                route_error_items(&mut out, node.error_mode());
                out.outputs
            }
            Err(e) if e.cancelled => return Step::Stop(ExecutionStatus::Cancelled, None),
            Err(e) => {
                let record = ErrorRecord {
                    message: format!("node '{}': {}", node.name, e.message),
                    description: e.description.clone(),
                    node: Some(node.name.clone()),
                    item_index: e.item_index,
                };
                match node.error_mode() {
                    OnError::StopWorkflow => {
                        let run = NodeRun {
                            start_time: started,
                            execution_time_ms: clock.elapsed().as_millis() as u64,
                            attempts,
                            source: entry.sources.clone(),
                            input: inputs,
                            output: Vec::new(),
                            error: Some(record.clone()),
                        };
                        state
                            .run_data
                            .entry(node.name.clone())
                            .or_default()
                            .push(run);
                        state.last_node_executed = Some(node.name.clone());
                        return Step::Stop(ExecutionStatus::Failed, Some(record));
                    }
                    mode => {
                        record_error = Some(record);
                        let mut out = NodeOutput {
                            outputs: vec![Vec::new(); output_count],
                            error_items: vec![error_item(&e.message, e.item_index.unwrap_or(0))],
                        };
                        route_error_items(&mut out, mode);
                        out.outputs
                    }
                }
            }
        };
        if node.always_output_data && outputs.iter().all(Vec::is_empty) {
            if outputs.is_empty() {
                outputs.push(Vec::new());
            }
            outputs[0].push(Item::empty());
        }
        fill_paired_items(&mut outputs, inputs.first().map_or(0, |i| i.len()));
        let outputs: Vec<Arc<Vec<Item>>> = outputs.into_iter().map(Arc::new).collect();
        let run = NodeRun {
            start_time: started,
            execution_time_ms: clock.elapsed().as_millis() as u64,
            attempts,
            source: entry.sources.clone(),
            input: inputs,
            output: outputs.clone(),
            error: record_error,
        };
        sandbox.record_run(
            &node.name,
            RunView {
                sources: run.source.clone(),
                outputs: outputs.clone(),
            },
        );
        state
            .run_data
            .entry(node.name.clone())
            .or_default()
            .push(run);
        state.last_node_executed = Some(node.name.clone());
        self.schedule_children(state, &workflow, &node.name, run_index, &outputs);
        Step::Continue
    }

    fn schedule_children(
        &self,
        state: &mut ExecutionState,
        workflow: &Workflow,
        node: &str,
        run_index: usize,
        outputs: &[Arc<Vec<Item>>],
    ) {
        let mut ready = Vec::new();
        for (output, items) in outputs.iter().enumerate() {
            if items.is_empty() {
                continue;
            }
            for conn in workflow.targets(node, output) {
                let Some(child) = workflow.node(&conn.node) else {
                    continue;
                };
                let inputs = self
                    .inner
                    .registry
                    .get(&child.node_type)
                    .map_or(1, |imp| imp.inputs(child))
                    .max(conn.index + 1);
                let source = SourceRef {
                    node: node.to_string(),
                    output,
                    run: run_index,
                };
                if inputs == 1 {
                    ready.push(StackEntry {
                        node: child.name.clone(),
                        inputs: vec![Some(items.clone())],
                        sources: vec![Some(source)],
                    });
                    continue;
                }
                let slot = state.waiting.iter().position(|w| {
                    w.node == child.name && w.inputs.get(conn.index).is_some_and(Option::is_none)
                });
                let index = match slot {
                    Some(i) => i,
                    None => {
                        state.waiting.push(StackEntry {
                            node: child.name.clone(),
                            inputs: vec![None; inputs],
                            sources: vec![None; inputs],
                        });
                        state.waiting.len() - 1
                    }
                };
                let waiting = &mut state.waiting[index];
                waiting.inputs[conn.index] = Some(items.clone());
                waiting.sources[conn.index] = Some(source);
                if waiting.inputs.iter().all(Option::is_some) {
                    ready.push(state.waiting.remove(index));
                }
            }
        }
        for entry in ready.into_iter().rev() {
            state.stack.push_front(entry);
        }
    }
}

/// The time limit of an execution: the workflow's `settings.executionTimeout` (seconds, n8n's
/// setting; -1 or absent = none), capped by the engine's maximum.
fn execution_timeout(workflow: &Workflow, max: Option<Duration>) -> Option<Duration> {
    let own = workflow
        .settings
        .extra
        .get("executionTimeout")
        .and_then(Value::as_f64)
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64);
    match (own, max) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Moves a node's error items to output 0 (`continueRegularOutput`) or to an extra last output
/// (`continueErrorOutput`).
fn route_error_items(out: &mut NodeOutput, mode: OnError) {
    let errors = std::mem::take(&mut out.error_items);
    match mode {
        OnError::ContinueErrorOutput => out.outputs.push(errors),
        _ => {
            if out.outputs.is_empty() {
                out.outputs.push(Vec::new());
            }
            out.outputs[0].extend(errors);
        }
    }
}

/// n8n's automatic pairing: with one input item everything pairs to it; with equal counts,
/// item i pairs to input i.
fn fill_paired_items(outputs: &mut [Vec<Item>], input_len: usize) {
    for output in outputs.iter_mut() {
        let same_len = output.len() == input_len;
        for (i, item) in output.iter_mut().enumerate() {
            if item.paired_item.is_none() {
                if input_len == 1 {
                    item.paired_item = Some(PairedItem::item(0));
                } else if same_len {
                    item.paired_item = Some(PairedItem::item(i));
                }
            }
        }
    }
}

/// Waits `duration` unless cancelled first (then returns a cancellation error).
pub async fn sleep_cancellable(duration: Duration, cancel: &CancelToken) -> Result<(), NodeError> {
    tokio::select! {
        _ = tokio::time::sleep(duration) => Ok(()),
        _ = cancel.cancelled() => Err(NodeError::cancelled()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn execution_futures_can_be_spawned_on_a_multithreaded_runtime() {
        let engine = Engine::builder().build();
        let observer = crate::host::NoopObserver;
        let cancel = CancelToken::new();
        let request = RunRequest::new(Workflow::default(), ExecutionMode::Manual);
        let future = engine.run(request, &observer, &cancel);
        assert_send(&future);
    }
}
