//! The workflow runtime around the engine: workflows in and out of the store, a worker pool
//! claiming queued executions, progress saved after every node (resumable after a crash), the
//! error workflow, cancellation, webhook and schedule triggers, stale-execution recovery and
//! retention.
//!
//! The engine runs workflows; this module decides when, records what happened, and implements
//! the engine's host traits over the store ([`StoreCredentials`], [`StoreWorkflows`],
//! [`StoreObserver`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ledgerflow_engine::{
    capped_run_json, error_workflow_item, import_n8n, schedule_item, schedule_triggers,
    AuthRequest, Authentication, CancelToken, CredentialError, CredentialProvider, CredentialRef,
    Engine, ExecutionMode, ExecutionObserver, ExecutionResult, ExecutionState, ExecutionStatus,
    Item, NodeFinished, ObserverError, RunRequest, WebhookResponse, Workflow, WorkflowLoader,
};
use ledgerflow_store::workflows::status;
use ledgerflow_store::{ExecutionRecord, Store, WorkflowRecord};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::error::ApiError;
use crate::{AppState, Tokens};

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Executions run at once by this process.
    pub concurrency: usize,
    /// A running execution whose worker has not reported for this long is recovered.
    pub stale_after: Duration,
    /// Finished executions older than this are deleted.
    pub retention: Duration,
    /// Per input/output list, bytes of items kept in an execution's record.
    pub max_item_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            concurrency: 8,
            stale_after: Duration::from_secs(30),
            retention: Duration::from_secs(30 * 86_400),
            max_item_bytes: 64 * 1024,
        }
    }
}

/// What a workflow's execution was started with.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TriggerData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_node: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
}

pub struct Runtime {
    pub engine: Engine,
    pub config: RuntimeConfig,
    /// Names this process in execution claims.
    pub worker_id: String,
    wake: Notify,
    running: Mutex<HashMap<String, CancelToken>>,
    webhook_waiters: Mutex<HashMap<String, oneshot::Sender<WebhookResponse>>>,
    /// Parsed active workflows by id, with the version they were parsed at: triggers look at
    /// them several times a second.
    parsed: Mutex<HashMap<String, (i64, Arc<Workflow>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runtime {
    pub fn new(engine: Engine, config: RuntimeConfig) -> Runtime {
        Runtime {
            engine,
            config,
            worker_id: format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            webhook_waiters: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// A stored workflow parsed, reusing the last parse while its version is unchanged.
    pub fn parsed(&self, record: &WorkflowRecord) -> Result<Arc<Workflow>, String> {
        if let Some((version, w)) = lock(&self.parsed).get(&record.id) {
            if *version == record.version && w.active == record.active {
                return Ok(w.clone());
            }
        }
        let w = Arc::new(load(record)?);
        lock(&self.parsed).insert(record.id.clone(), (record.version, w.clone()));
        Ok(w)
    }

    /// Wakes the workers (something was queued).
    pub fn wake(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }
}

/// Reads a workflow from JSON: n8n exports (types mapped, unsupported nodes named) or our own
/// shape, then checks it against the node registry.
pub fn parse_workflow(engine: &Engine, text: &str) -> Result<Workflow, String> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| format!("the workflow is not valid JSON: {e}"))?;
    ledgerflow_nodes_xero::n8n::rewrite_xero_nodes(&mut value);
    let workflow = import_n8n(value).map_err(|e| e.to_string())?;
    engine.validate(&workflow).map_err(|e| e.to_string())?;
    schedule_triggers(&workflow)?;
    Ok(workflow)
}

fn to_json(w: &Workflow) -> String {
    let mut w = w.clone();
    w.id = None;
    w.active = false;
    serde_json::to_string_pretty(&w).unwrap_or_default()
}

/// The stored workflow as the engine sees it, with its id and active flag.
pub fn load(record: &WorkflowRecord) -> Result<Workflow, String> {
    let mut w: Workflow = serde_json::from_str(&record.definition)
        .map_err(|e| format!("stored workflow {} is unreadable: {e}", record.id))?;
    w.id = Some(record.id.clone());
    w.active = record.active;
    Ok(w)
}

fn invalid(msg: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_workflow",
        msg,
    )
}

pub async fn create_workflow(state: &AppState, text: &str) -> Result<WorkflowRecord, ApiError> {
    let w = parse_workflow(&state.runtime.engine, text).map_err(invalid)?;
    let record = state.store.create_workflow(&w.name, &to_json(&w)).await?;
    if serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["active"].as_bool())
        == Some(true)
    {
        return set_active(state, &record.id, true).await;
    }
    Ok(record)
}

pub async fn update_workflow(
    state: &AppState,
    id: &str,
    text: &str,
) -> Result<WorkflowRecord, ApiError> {
    let w = parse_workflow(&state.runtime.engine, text).map_err(invalid)?;
    Ok(state
        .store
        .update_workflow(id, &w.name, &to_json(&w))
        .await?)
}

pub async fn set_active(
    state: &AppState,
    id: &str,
    active: bool,
) -> Result<WorkflowRecord, ApiError> {
    let record = state.store.workflow(id).await?;
    if active {
        let w = load(&record).map_err(ApiError::internal)?;
        let has_trigger = !ledgerflow_engine::webhook_triggers(&w).is_empty()
            || !schedule_triggers(&w).map_err(invalid)?.is_empty()
            || w.nodes.iter().any(|n| {
                [
                    ledgerflow_nodes_xero::triggers::WEBHOOK_TRIGGER,
                    ledgerflow_nodes_xero::triggers::POLL_TRIGGER,
                ]
                .contains(&n.node_type.as_str())
            });
        if !has_trigger {
            return Err(invalid(
                "this workflow has no trigger that can start it on its own (Webhook, Schedule Trigger, Xero Trigger or Xero Polling Trigger); run it by hand instead".into(),
            ));
        }
    }
    Ok(state.store.set_workflow_active(id, active).await?)
}

/// Queues an execution of a workflow.
pub async fn enqueue(
    state: &AppState,
    workflow_id: &str,
    mode: ExecutionMode,
    trigger: &TriggerData,
    retry_of: Option<&str>,
) -> Result<ExecutionRecord, ApiError> {
    let data = serde_json::to_string(trigger).map_err(ApiError::internal)?;
    let record = state
        .store
        .enqueue_execution(workflow_id, mode.as_str(), &data, retry_of)
        .await?;
    state.runtime.wake();
    Ok(record)
}

/// Queues a manual run.
pub async fn run_manual(state: &AppState, workflow_id: &str) -> Result<ExecutionRecord, ApiError> {
    state.store.workflow(workflow_id).await?;
    enqueue(
        state,
        workflow_id,
        ExecutionMode::Manual,
        &TriggerData::default(),
        None,
    )
    .await
}

/// Waits until an execution has ended (or `timeout`).
pub async fn wait_for(
    state: &AppState,
    id: &str,
    timeout: Duration,
) -> Result<ExecutionRecord, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let e = state.store.execution(id).await?;
        if ![status::QUEUED, status::RUNNING].contains(&e.status.as_str()) {
            return Ok(e);
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn retry(state: &AppState, id: &str) -> Result<ExecutionRecord, ApiError> {
    let old = state.store.execution(id).await?;
    if [status::QUEUED, status::RUNNING].contains(&old.status.as_str()) {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "still_running",
            "the execution has not ended; cancel it first or wait",
        ));
    }
    let trigger: TriggerData = serde_json::from_str(&old.trigger_data).unwrap_or_default();
    enqueue(
        state,
        &old.workflow_id,
        ExecutionMode::Retry,
        &trigger,
        Some(&old.id),
    )
    .await
}

pub async fn cancel(state: &AppState, id: &str) -> Result<bool, ApiError> {
    let cancelled = state.store.cancel_execution(id).await?;
    if let Some(token) = lock(&state.runtime.running).get(id) {
        token.cancel();
    }
    Ok(cancelled)
}

/// Starts the worker pool, recovery and retention, and the scheduler.
pub fn spawn(state: &AppState) {
    for _ in 0..state.runtime.config.concurrency.max(1) {
        tokio::spawn(worker(state.clone()));
    }
    tokio::spawn(maintenance(state.clone()));
    tokio::spawn(scheduler(state.clone()));
    crate::xero_triggers::spawn(state);
}

async fn worker(state: AppState) {
    loop {
        let claimed = state.store.claim_execution(&state.runtime.worker_id).await;
        match claimed {
            Ok(Some(record)) => {
                execute(&state, record).await;
            }
            Ok(None) => {
                // Other processes queue work too: look again within a second.
                let _ = tokio::time::timeout(Duration::from_secs(1), state.runtime.wake.notified())
                    .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not claim executions");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_prune = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        tick.tick().await;
        let stale =
            ledgerflow_store::now_ms() - state.runtime.config.stale_after.as_millis() as i64;
        match state.store.recover_stale_executions(stale).await {
            Ok((requeued, crashed)) => {
                if !requeued.is_empty() || !crashed.is_empty() {
                    tracing::warn!(
                        resumed = requeued.len(),
                        crashed = crashed.len(),
                        "recovered executions of a stopped process"
                    );
                    state.runtime.wake();
                }
            }
            Err(e) => tracing::error!(error = %e, "stale execution recovery failed"),
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = std::time::Instant::now();
            let before =
                ledgerflow_store::now_ms() - state.runtime.config.retention.as_millis() as i64;
            let _ = state
                .store
                .prune_leases(ledgerflow_store::now_ms() - 86_400_000)
                .await;
            if let Ok(n) = state.store.prune_executions(before).await {
                if n > 0 {
                    tracing::info!(deleted = n, "old executions deleted (retention)");
                }
            }
        }
    }
}

/// Runs one claimed execution to its end and records it.
pub async fn execute(state: &AppState, record: ExecutionRecord) {
    let id = record.id.clone();
    let cancel = CancelToken::new();
    lock(&state.runtime.running).insert(id.clone(), cancel.clone());
    let outcome = execute_inner(state, &record, &cancel).await;
    lock(&state.runtime.running).remove(&id);
    lock(&state.runtime.webhook_waiters).remove(&id);
    if let Err(message) = outcome {
        tracing::warn!(execution = %id, error = %message, "execution could not run");
        let _ = state
            .store
            .finish_execution(
                &id,
                &state.runtime.worker_id,
                status::FAILED,
                None,
                Some(&message),
            )
            .await;
    }
}

fn mode_of(s: &str) -> ExecutionMode {
    serde_json::from_value(json!(s)).unwrap_or(ExecutionMode::Manual)
}

async fn execute_inner(
    state: &AppState,
    record: &ExecutionRecord,
    cancel: &CancelToken,
) -> Result<(), String> {
    let wf_record = state
        .store
        .workflow(&record.workflow_id)
        .await
        .map_err(|e| e.to_string())?;
    let workflow = load(&wf_record)?;
    let mode = mode_of(&record.mode);
    let observer = Arc::new(StoreObserver {
        store: state.store.clone(),
        runtime: state.runtime.clone(),
        worker: state.runtime.worker_id.clone(),
        max_item_bytes: state.runtime.config.max_item_bytes,
        runs: Mutex::new(
            record
                .run_data
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default(),
        ),
        last_saved: Mutex::new(std::time::Instant::now()),
    });
    let checkpoint = state
        .store
        .execution_checkpoint(&record.id)
        .await
        .map_err(|e| e.to_string())?;
    // A heartbeat while nodes run (a long Wait or HTTP call must not look like a dead process).
    let beat = {
        let (store, id, worker) = (
            state.store.clone(),
            record.id.clone(),
            state.runtime.worker_id.clone(),
        );
        let cancel = cancel.clone();
        let every = (state.runtime.config.stale_after / 3).max(Duration::from_millis(200));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match store.heartbeat_execution(&id, &worker, None).await {
                    Ok(true) => {}
                    // Cancelled (or taken over): stop the run.
                    Ok(false) => {
                        cancel.cancel();
                        return;
                    }
                    Err(_) => {}
                }
            }
        })
    };
    let saved = checkpoint.and_then(|c| serde_json::from_str::<ExecutionState>(&c).ok());
    let request = if saved.is_none() {
        let trigger: TriggerData = serde_json::from_str(&record.trigger_data).unwrap_or_default();
        let mut request = RunRequest::new(workflow.clone(), mode);
        request.execution_id = record.id.clone();
        request.start_node = trigger.start_node;
        if !trigger.items.is_empty() {
            request.input = trigger.items;
        }
        Some(request)
    } else {
        None
    };
    // On the blocking pool: JavaScript is CPU-bound and must not stall the async workers.
    let (engine, obs, token, wf) = (
        state.runtime.engine.clone(),
        observer.clone(),
        cancel.clone(),
        Arc::new(workflow.clone()),
    );
    let handle = tokio::runtime::Handle::current();
    let exec_id = record.id.clone();
    let joined = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            match (saved, request) {
                (Some(mut s), _) => {
                    tracing::info!(execution = %exec_id, "resuming after the last completed node");
                    s.workflow = wf;
                    engine.resume(s, obs.as_ref(), &token).await
                }
                (None, Some(req)) => engine.run(req, obs.as_ref(), &token).await,
                (None, None) => unreachable!("a request is built when there is no checkpoint"),
            }
        })
    })
    .await;
    let result = match joined {
        Ok(r) => r,
        Err(e) => {
            beat.abort();
            return Err(format!("the execution stopped unexpectedly: {e}"));
        }
    };
    beat.abort();
    let runs = serde_json::to_string(&*lock(&observer.runs)).unwrap_or_default();
    let status = match result.status {
        ExecutionStatus::Succeeded => status::SUCCEEDED,
        ExecutionStatus::Cancelled => status::CANCELLED,
        _ => status::FAILED,
    };
    let error = result.error.as_ref().map(|e| match &e.node {
        Some(node) => format!("{node}: {}", e.message),
        None => e.message.clone(),
    });
    let recorded = state
        .store
        .finish_execution(
            &record.id,
            &state.runtime.worker_id,
            status,
            Some(&runs),
            error.as_deref(),
        )
        .await
        .map_err(|e| e.to_string())?;
    if !recorded {
        // Cancelled, or recovered and handed to another worker meanwhile: its outcome stands.
        tracing::warn!(execution = %record.id, "execution ended here after it was cancelled or taken over; not recorded");
        return Ok(());
    }
    if let Some(tx) = lock(&state.runtime.webhook_waiters).remove(&record.id) {
        let response = result
            .webhook_response
            .clone()
            .or_else(|| ledgerflow_engine::nodes::webhook::last_node_response(&workflow, &result))
            .unwrap_or_else(|| WebhookResponse {
                status: if status == status::SUCCEEDED {
                    200
                } else {
                    500
                },
                headers: BTreeMap::new(),
                body: ledgerflow_engine::WebhookBody::Json(if status == status::SUCCEEDED {
                    json!({"message": "Workflow executed"})
                } else {
                    json!({"message": "Error in workflow", "error": error})
                }),
            });
        let _ = tx.send(response);
    }
    if status == status::FAILED && mode != ExecutionMode::Error {
        start_error_workflow(state, &workflow, &result, mode).await;
    }
    tracing::info!(execution = %record.id, workflow = %record.workflow_id, status, "execution ended");
    Ok(())
}

async fn start_error_workflow(
    state: &AppState,
    workflow: &Workflow,
    result: &ExecutionResult,
    mode: ExecutionMode,
) {
    let Some(target) = workflow
        .settings
        .error_workflow
        .clone()
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    let item = error_workflow_item(workflow, result, mode);
    let trigger = TriggerData {
        start_node: None,
        items: vec![item],
    };
    match enqueue(state, &target, ExecutionMode::Error, &trigger, None).await {
        Ok(e) => tracing::info!(execution = %e.id, workflow = %target, "error workflow started"),
        Err(e) => {
            tracing::warn!(workflow = %target, error = %e.message, "error workflow could not start")
        }
    }
}

/// Persists progress: display run data (size-capped) and the resumable state. It is saved
/// before and after every node that acts on the outside world (HTTP, Xero, sub-workflows,
/// waits), and otherwise at most every [`CHECKPOINT_EVERY`]: after a crash, work resumes from
/// the last save, and the nodes it re-runs have no outside effects.
pub struct StoreObserver {
    store: Store,
    runtime: Arc<Runtime>,
    worker: String,
    max_item_bytes: usize,
    runs: Mutex<BTreeMap<String, Vec<Value>>>,
    last_saved: Mutex<std::time::Instant>,
}

/// The longest a run of side-effect-free nodes goes without a checkpoint.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Node types whose work reaches outside the execution: always checkpointed after.
const OUTSIDE_EFFECTS: &[&str] = &[
    "ledgerflow.httpRequest",
    "ledgerflow.xero",
    "ledgerflow.executeWorkflow",
    "ledgerflow.wait",
];

#[async_trait]
impl ExecutionObserver for StoreObserver {
    async fn node_finished(&self, event: NodeFinished<'_>) -> Result<(), ObserverError> {
        let outside = |name: &str| {
            event
                .state
                .workflow
                .node(name)
                .is_some_and(|n| OUTSIDE_EFFECTS.contains(&n.node_type.as_str()))
        };
        // Save after a node with outside effects, and before one (so a crash during it resumes
        // just before it rather than further back).
        let effects = outside(event.node)
            || event
                .state
                .stack
                .front()
                .is_some_and(|next| outside(&next.node));
        let due = lock(&self.last_saved).elapsed() >= CHECKPOINT_EVERY;
        if !effects && !due {
            let json = capped_run_json(event.run, self.max_item_bytes);
            let mut runs = lock(&self.runs);
            let list = runs.entry(event.node.to_string()).or_default();
            if list.len() > event.run_index {
                list[event.run_index] = json;
            } else {
                list.push(json);
            }
            return Ok(());
        }
        *lock(&self.last_saved) = std::time::Instant::now();
        let runs = {
            let mut runs = lock(&self.runs);
            let list = runs.entry(event.node.to_string()).or_default();
            let json = capped_run_json(event.run, self.max_item_bytes);
            if list.len() > event.run_index {
                list[event.run_index] = json;
            } else {
                list.push(json);
            }
            serde_json::to_string(&*runs).map_err(|e| ObserverError(e.to_string()))?
        };
        let checkpoint =
            serde_json::to_string(event.state).map_err(|e| ObserverError(e.to_string()))?;
        let mine = self
            .store
            .checkpoint_execution(event.execution_id, &self.worker, &runs, &checkpoint)
            .await
            .map_err(|e| ObserverError(e.to_string()))?;
        if !mine {
            // Cancelled or taken over by recovery: stop here.
            if let Some(t) = lock(&self.runtime.running).get(event.execution_id) {
                t.cancel();
            }
        }
        Ok(())
    }

    async fn webhook_response(&self, execution_id: &str, response: &WebhookResponse) {
        if let Some(tx) = lock(&self.runtime.webhook_waiters).remove(execution_id) {
            let _ = tx.send(response.clone());
        }
    }
}

/// Signs the engine's requests with stored credentials.
pub struct StoreCredentials {
    pub store: Store,
    pub tokens: Arc<Tokens>,
}

impl StoreCredentials {
    async fn find(
        &self,
        r: &CredentialRef,
        type_name: &str,
    ) -> Result<ledgerflow_store::Credential, CredentialError> {
        if let Some(id) = r.id.as_deref().filter(|s| !s.is_empty()) {
            if let Ok(c) = self.store.get_credential(id).await {
                return Ok(c);
            }
        }
        // Imported workflows carry another system's ids: match by name and type.
        let all = self
            .store
            .list_credentials()
            .await
            .map_err(|e| CredentialError(e.to_string()))?;
        all.into_iter()
            .find(|c| c.name == r.name && c.type_name == type_name)
            .ok_or_else(|| {
                CredentialError(format!(
                    "credential '{}' ({type_name}) does not exist; create it under Credentials with this name, or pick another in the node",
                    r.name
                ))
            })
    }
}

#[async_trait]
impl CredentialProvider for StoreCredentials {
    async fn authenticate(
        &self,
        request: AuthRequest<'_>,
    ) -> Result<Authentication, CredentialError> {
        let c = self
            .find(request.credential, request.credential_type)
            .await?;
        if c.type_name != request.credential_type {
            return Err(CredentialError(format!(
                "credential '{}' is of type {}, not {}",
                c.name, c.type_name, request.credential_type
            )));
        }
        let secrets = || async {
            self.store
                .credential_secrets(&c.id)
                .await
                .map_err(|e| CredentialError(e.to_string()))
        };
        let text = |k: &str| {
            c.data
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match c.type_name.as_str() {
            "httpBasicAuth" => {
                let s = secrets().await?;
                let pw = s
                    .get("password")
                    .cloned()
                    .unwrap_or_else(|| secrecy::SecretString::from(String::new()));
                Ok(Authentication::basic(&text("user"), &pw))
            }
            "httpHeaderAuth" => {
                let s = secrets().await?;
                let value = s
                    .get("value")
                    .cloned()
                    .unwrap_or_else(|| secrecy::SecretString::from(String::new()));
                Ok(Authentication::header(&text("name"), value))
            }
            "xeroOAuth2Api" => {
                let t = self
                    .tokens
                    .access_token(&c.id)
                    .await
                    .map_err(|e| CredentialError(format!("credential '{}': {e}", c.name)))?;
                Ok(Authentication::bearer(&t.token))
            }
            other => Err(CredentialError(format!(
                "credential type {other} cannot sign HTTP requests"
            ))),
        }
    }
}

/// Loads sub-workflows for Execute Workflow.
pub struct StoreWorkflows {
    pub store: Store,
}

#[async_trait]
impl WorkflowLoader for StoreWorkflows {
    async fn load(&self, workflow_id: &str) -> Result<Workflow, String> {
        let r = self
            .store
            .workflow(workflow_id)
            .await
            .map_err(|e| e.to_string())?;
        load(&r)
    }
}

/// Starts the execution for a webhook call and answers as the Webhook node says.
pub async fn handle_webhook(
    state: &AppState,
    method: &str,
    path: &str,
    request: ledgerflow_engine::WebhookRequest,
) -> Result<WebhookResponse, ApiError> {
    let path = path.trim_matches('/');
    let mut found = None;
    let mut other_method = false;
    for record in state.store.active_workflows().await? {
        let Ok(w) = state.runtime.parsed(&record) else {
            continue;
        };
        for t in ledgerflow_engine::webhook_triggers(&w) {
            if t.path == path {
                if t.method == method {
                    found = Some((record.id.clone(), t));
                    break;
                }
                other_method = true;
            }
        }
        if found.is_some() {
            break;
        }
    }
    let Some((workflow_id, trigger)) = found else {
        return Err(if other_method {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "wrong_method",
                format!("webhook '{path}' does not accept {method}"),
            )
        } else {
            ApiError::not_found(format!(
                "no active workflow listens on webhook '{path}' ({method}); activate the workflow"
            ))
        });
    };
    let mut request = request;
    if trigger.authentication != "none" {
        let checked_header = check_webhook_auth(state, &trigger, &request).await?;
        if let Some(name) = checked_header {
            request
                .headers
                .retain(|k, _| !k.eq_ignore_ascii_case(&name));
        }
    }
    // Credentials a caller sent never reach run data.
    request.headers.retain(|k, _| {
        !["authorization", "proxy-authorization", "cookie"]
            .contains(&k.to_ascii_lowercase().as_str())
    });
    let data = TriggerData {
        start_node: Some(trigger.node.clone()),
        items: vec![request.into_item()],
    };
    let trigger_json = serde_json::to_string(&data).map_err(ApiError::internal)?;
    if trigger.response_mode == ledgerflow_engine::ResponseMode::OnReceived {
        enqueue(state, &workflow_id, ExecutionMode::Webhook, &data, None).await?;
        return Ok(trigger.immediate_response());
    }
    // The caller waits: run it in this process.
    let record = state
        .store
        .start_claimed_execution(
            &workflow_id,
            "webhook",
            &trigger_json,
            &state.runtime.worker_id,
        )
        .await?;
    let (tx, rx) = oneshot::channel();
    lock(&state.runtime.webhook_waiters).insert(record.id.clone(), tx);
    let st = state.clone();
    tokio::spawn(async move { execute(&st, record).await });
    match tokio::time::timeout(Duration::from_secs(300), rx).await {
        Ok(Ok(response)) => Ok(response),
        _ => Err(ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the workflow did not answer in time; see its execution",
        )),
    }
}

/// Checks a webhook's basic or header authentication; returns the header name a header-auth
/// credential uses (to be kept out of run data).
async fn check_webhook_auth(
    state: &AppState,
    trigger: &ledgerflow_engine::WebhookTrigger,
    request: &ledgerflow_engine::WebhookRequest,
) -> Result<Option<String>, ApiError> {
    let refused = || ApiError::unauthorized("this webhook requires authentication");
    let cred_ref = trigger.credential.as_ref().ok_or_else(refused)?;
    let type_name = if trigger.authentication == "basicAuth" {
        "httpBasicAuth"
    } else {
        "httpHeaderAuth"
    };
    let provider = StoreCredentials {
        store: state.store.clone(),
        tokens: state.tokens.clone(),
    };
    let c = provider
        .find(cred_ref, type_name)
        .await
        .map_err(|_| refused())?;
    let secrets = state.store.credential_secrets(&c.id).await?;
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut expected_name = String::new();
    let (got, expected) = if type_name == "httpBasicAuth" {
        use base64::Engine as _;
        let user = c
            .data
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pw = secrets
            .get("password")
            .map(|p| p.expose_secret().to_string())
            .unwrap_or_default();
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        );
        (header("authorization"), want)
    } else {
        expected_name = c
            .data
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let want = secrets
            .get("value")
            .map(|p| p.expose_secret().to_string())
            .unwrap_or_default();
        (header(&expected_name), want)
    };
    use subtle::ConstantTimeEq;
    match got {
        Some(g)
            if g.len() == expected.len() && bool::from(g.as_bytes().ct_eq(expected.as_bytes())) =>
        {
            Ok((type_name == "httpHeaderAuth").then_some(expected_name))
        }
        _ => Err(refused()),
    }
}

/// Fires schedule triggers of active workflows. Each tick is claimed with a lease named after
/// the workflow, node and tick time, so with several processes on one database it fires once.
async fn scheduler(state: AppState) {
    let mut next: HashMap<(String, String), chrono::DateTime<chrono::Utc>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        let Ok(active) = state.store.active_workflows().await else {
            continue;
        };
        let mut seen = Vec::new();
        for record in active {
            let Ok(w) = state.runtime.parsed(&record) else {
                continue;
            };
            let Ok(triggers) = schedule_triggers(&w) else {
                continue;
            };
            for t in triggers {
                let key = (record.id.clone(), t.node.clone());
                seen.push(key.clone());
                let due = *next.entry(key.clone()).or_insert_with(|| {
                    t.next_fire_after(now)
                        .unwrap_or(now + chrono::Duration::days(3650))
                });
                if due > now {
                    continue;
                }
                next.insert(
                    key,
                    t.next_fire_after(now)
                        .unwrap_or(now + chrono::Duration::days(3650)),
                );
                let lease = format!(
                    "schedule:{}:{}:{}",
                    record.id,
                    t.node,
                    due.timestamp_millis()
                );
                match state
                    .store
                    .try_lease(&lease, &state.runtime.worker_id, 86_400_000)
                    .await
                {
                    Ok(true) => {
                        let data = TriggerData {
                            start_node: Some(t.node.clone()),
                            items: vec![schedule_item(due, t.timezone)],
                        };
                        if let Err(e) =
                            enqueue(&state, &record.id, ExecutionMode::Trigger, &data, None).await
                        {
                            tracing::warn!(workflow = %record.id, error = %e.message, "schedule could not start the workflow");
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "schedule lease failed"),
                }
            }
        }
        next.retain(|k, _| seen.contains(k));
    }
}
