//! Engine boundary tests: n8n imports, execution semantics, sandbox limits, host interfaces.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledgerflow_engine::*;
use secrecy::SecretString;
use serde_json::{json, Value};

fn engine() -> Engine {
    Engine::builder().build()
}

async fn run(engine: &Engine, workflow: Workflow) -> ExecutionResult {
    engine
        .run(
            RunRequest::new(workflow, ExecutionMode::Manual),
            &NoopObserver,
            &CancelToken::new(),
        )
        .await
}

/// Builds a workflow from `(name, type, parameters)` nodes and `(from, output, to, input)` edges.
fn workflow(nodes: Vec<WorkflowNode>, edges: &[(&str, usize, &str, usize)]) -> Workflow {
    let mut connections: BTreeMap<String, Value> = BTreeMap::new();
    for (from, output, to, input) in edges {
        let entry = connections
            .entry(from.to_string())
            .or_insert_with(|| json!({"main": []}));
        let main = entry["main"].as_array_mut().expect("main list");
        while main.len() <= *output {
            main.push(json!([]));
        }
        main[*output]
            .as_array_mut()
            .expect("output list")
            .push(json!({"node": to, "type": "main", "index": input}));
    }
    let mut wf: Workflow =
        serde_json::from_value(json!({"name": "test", "nodes": [], "connections": connections}))
            .expect("workflow shape");
    wf.nodes = nodes;
    wf
}

fn node(name: &str, ty: &str, parameters: Value) -> WorkflowNode {
    WorkflowNode::new(name, ty, parameters)
}

fn set_node(name: &str, field: &str, value: Value, ty: &str) -> WorkflowNode {
    node(
        name,
        "ledgerflow.set",
        json!({"includeOtherFields": true, "assignments": {"assignments": [{"name": field, "value": value, "type": ty}]}}),
    )
}

fn code_node(name: &str, js: &str) -> WorkflowNode {
    node(name, "ledgerflow.code", json!({"jsCode": js}))
}

/// The n8n export used by the import test, written as n8n 1.x exports it.
const N8N_EXPORT: &str = r#"{
  "name": "Invoice triage",
  "nodes": [
    {"parameters": {}, "id": "a1", "name": "When clicking ‘Test workflow’", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "position": [0, 0]},
    {"parameters": {"jsCode": "return [\n  {json: {id: 1, customer: 'Acme', amount: 200}},\n  {json: {id: 2, customer: 'Bolt', amount: 50}},\n  {json: {id: 3, customer: 'Core', amount: 100}},\n  {json: {id: 4, customer: 'Dyne', amount: 120}}\n];"},
     "id": "a2", "name": "Code", "type": "n8n-nodes-base.code", "typeVersion": 2, "position": [220, 0]},
    {"parameters": {"assignments": {"assignments": [
        {"id": "f1", "name": "id", "value": "={{ $json.id }}", "type": "number"},
        {"id": "f2", "name": "total", "value": "={{ $json.amount * 2 }}", "type": "number"},
        {"id": "f3", "name": "label", "value": "={{ $json.customer }} #{{ $json.id }}", "type": "string"},
        {"id": "f4", "name": "customerUpper", "value": "={{ $('Code').item.json.customer.toUpperCase() }}", "type": "string"}
      ]}, "options": {}},
     "id": "a3", "name": "Edit Fields", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [440, 0]},
    {"parameters": {"conditions": {"options": {"caseSensitive": true, "leftValue": "", "typeValidation": "strict", "version": 2},
        "conditions": [{"id": "c1", "leftValue": "={{ $json.total }}", "rightValue": 150, "operator": {"type": "number", "operation": "gt"}}],
        "combinator": "and"}, "options": {}},
     "id": "a4", "name": "If", "type": "n8n-nodes-base.if", "typeVersion": 2.2, "position": [660, 0]},
    {"parameters": {"assignments": {"assignments": [{"id": "h1", "name": "priority", "value": "high", "type": "string"}]}, "includeOtherFields": true, "options": {}},
     "id": "a5", "name": "Tag High", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [880, -100]},
    {"parameters": {"assignments": {"assignments": [{"id": "l1", "name": "priority", "value": "low", "type": "string"}]}, "includeOtherFields": true, "options": {}},
     "id": "a6", "name": "Tag Low", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [880, 100]},
    {"parameters": {}, "id": "a7", "name": "Merge", "type": "n8n-nodes-base.merge", "typeVersion": 3, "position": [1100, 0]},
    {"parameters": {"content": "Triage invoices by total"}, "id": "a8", "name": "Sticky Note", "type": "n8n-nodes-base.stickyNote", "typeVersion": 1, "position": [0, -200]}
  ],
  "pinData": {},
  "connections": {
    "When clicking ‘Test workflow’": {"main": [[{"node": "Code", "type": "main", "index": 0}]]},
    "Code": {"main": [[{"node": "Edit Fields", "type": "main", "index": 0}]]},
    "Edit Fields": {"main": [[{"node": "If", "type": "main", "index": 0}]]},
    "If": {"main": [[{"node": "Tag High", "type": "main", "index": 0}], [{"node": "Tag Low", "type": "main", "index": 0}]]},
    "Tag High": {"main": [[{"node": "Merge", "type": "main", "index": 0}]]},
    "Tag Low": {"main": [[{"node": "Merge", "type": "main", "index": 1}]]}
  },
  "active": false,
  "settings": {"executionOrder": "v1"},
  "versionId": "5b1c",
  "meta": {"templateCredsSetupCompleted": true, "instanceId": "abc"},
  "id": "wf-42",
  "tags": []
}"#;

#[tokio::test]
async fn n8n_export_with_code_set_if_merge_imports_and_runs_like_n8n() {
    let wf = import_n8n_str(N8N_EXPORT).expect("imports");
    assert_eq!(
        wf.node("Edit Fields").map(|n| n.node_type.as_str()),
        Some("ledgerflow.set")
    );
    assert!(wf.node("Sticky Note").is_none(), "sticky notes are dropped");
    let engine = engine();
    engine.validate(&wf).expect("valid");
    let store = InMemoryExecutionStore::new();
    let request = RunRequest::new(wf, ExecutionMode::Manual);
    let id = request.execution_id.clone();
    let result = engine.run(request, &store, &CancelToken::new()).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );

    // n8n: Set v3.4 without includeOtherFields keeps only the assigned fields; If routes by
    // total > 150; Merge (append) outputs input 1's items, then input 2's.
    let high = |id: i64, total: i64, customer: &str| json!({"id": id, "total": total, "label": format!("{customer} #{id}"), "customerUpper": customer.to_uppercase(), "priority": "high"});
    assert_eq!(
        result.output_json("Merge"),
        vec![
            high(1, 400, "Acme"),
            high(3, 200, "Core"),
            high(4, 240, "Dyne"),
            json!({"id": 2, "total": 100, "label": "Bolt #2", "customerUpper": "BOLT", "priority": "low"}),
        ]
    );
    assert_eq!(result.output("If", 0).len(), 3);
    assert_eq!(result.output("If", 1).len(), 1);
    // v1 order: one branch to completion, then the next; the Merge once both inputs arrived.
    let order = store.get(&id).expect("stored").started_nodes;
    assert_eq!(
        order,
        [
            "When clicking ‘Test workflow’",
            "Code",
            "Edit Fields",
            "If",
            "Tag High",
            "Tag Low",
            "Merge"
        ]
    );
    assert_eq!(
        store.get(&id).map(|e| e.status),
        Some(ExecutionStatus::Succeeded)
    );
}

#[test]
fn unsupported_n8n_node_types_are_named_in_the_import_error() {
    let export = json!({
        "name": "Mixed",
        "nodes": [
            {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "parameters": {}},
            {"name": "Post to Slack", "type": "n8n-nodes-base.slack", "typeVersion": 2.2, "parameters": {}},
            {"name": "Ask GPT", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 1, "parameters": {}},
            {"name": "Set", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "parameters": {}}
        ],
        "connections": {}
    });
    let err = import_n8n(export).expect_err("rejects");
    let msg = err.to_string();
    assert!(
        msg.contains("'Post to Slack' (n8n-nodes-base.slack)"),
        "{msg}"
    );
    assert!(
        msg.contains("'Ask GPT' (@n8n/n8n-nodes-langchain.openAi)"),
        "{msg}"
    );
    assert!(!msg.contains("'Set'"), "{msg}");
}

#[test]
fn validation_errors_name_each_problem() {
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            node("Call", "ledgerflow.httpRequest", json!({})),
            node("X", "acme.unknown", json!({})),
        ],
        &[("Start", 0, "Call", 0), ("Start", 0, "Nowhere", 0)],
    );
    let msg = engine().validate(&wf).expect_err("invalid").to_string();
    assert!(
        msg.contains("node 'Call': the HTTP Request has no URL"),
        "{msg}"
    );
    assert!(
        msg.contains("node 'X' has unknown type 'acme.unknown'"),
        "{msg}"
    );
    assert!(msg.contains("'Start' is connected to 'Nowhere'"), "{msg}");
}

/// A node that fails its first `failures` runs, counting calls.
struct Flaky {
    calls: Arc<AtomicUsize>,
    failures: usize,
}

#[async_trait::async_trait]
impl Node for Flaky {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "test.flaky",
            display_name: "Flaky",
            trigger: false,
            raw_parameters: &[],
        }
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Err(NodeError::new(format!(
                "upstream unavailable (call {})",
                n + 1
            )));
        }
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

fn flaky_workflow(max_tries: u32) -> Workflow {
    let mut flaky = node("Flaky", "test.flaky", json!({}));
    flaky.retry_on_fail = true;
    flaky.max_tries = Some(max_tries);
    flaky.wait_between_tries = Some(10);
    workflow(
        vec![node("Start", "ledgerflow.manualTrigger", json!({})), flaky],
        &[("Start", 0, "Flaky", 0)],
    )
}

#[tokio::test]
async fn retry_on_fail_succeeds_after_two_failures() {
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = Engine::builder()
        .node(Flaky {
            calls: calls.clone(),
            failures: 2,
        })
        .build();
    let result = run(&engine, flaky_workflow(3)).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(result.run_data["Flaky"][0].attempts, 3);

    let calls = Arc::new(AtomicUsize::new(0));
    let engine = Engine::builder()
        .node(Flaky {
            calls: calls.clone(),
            failures: 2,
        })
        .build();
    let result = run(&engine, flaky_workflow(2)).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    assert_eq!(
        result.error.map(|e| e.message),
        Some("node 'Flaky': upstream unavailable (call 2)".into())
    );
}

#[tokio::test]
async fn continue_on_fail_turns_the_error_into_an_item() {
    let mut convert = set_node("To number", "n", json!("={{ $json.raw }}"), "number");
    convert.continue_on_fail = true;
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node(
                "Data",
                "return [{json: {raw: '7'}}, {json: {raw: 'seven'}}];",
            ),
            convert,
        ],
        &[("Start", 0, "Data", 0), ("Data", 0, "To number", 0)],
    );
    let result = run(&engine(), wf).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    let out = result.output_json("To number");
    assert_eq!(out[0], json!({"raw": "7", "n": 7}));
    assert_eq!(
        out[1],
        json!({"error": "'n' value \"seven\" can't be converted to a number"})
    );

    // Whole-node failure with onError=continueErrorOutput goes to the extra error output.
    let mut failing = code_node("Boom", "throw new Error('no ledger');");
    failing.on_error = Some(OnError::ContinueErrorOutput);
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            failing,
            node("Ok", "ledgerflow.noOp", json!({})),
            node("Handle", "ledgerflow.noOp", json!({})),
        ],
        &[
            ("Start", 0, "Boom", 0),
            ("Boom", 0, "Ok", 0),
            ("Boom", 1, "Handle", 0),
        ],
    );
    let result = run(&engine(), wf).await;
    assert_eq!(result.status, ExecutionStatus::Succeeded);
    assert!(
        !result.run_data.contains_key("Ok"),
        "nothing on the regular output"
    );
    assert_eq!(
        result.output_json("Handle"),
        vec![json!({"error": "Error: no ledger"})]
    );
}

#[tokio::test]
async fn an_endless_expression_is_stopped_with_a_clear_error() {
    let engine = Engine::builder()
        .limits(SandboxLimits {
            expression_timeout: Duration::from_millis(300),
            ..Default::default()
        })
        .build();
    let expr = "={{ (() => { while (true) {} })() }}";
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            set_node("Spin", "x", json!(expr), "string"),
        ],
        &[("Start", 0, "Spin", 0)],
    );
    let result = run(&engine, wf).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    let msg = result.error.expect("error").message;
    assert!(msg.starts_with("node 'Spin': expression in parameter 'assignments.assignments[0].value' (item 0) failed"), "{msg}");
    assert!(msg.contains("time limit of 300ms"), "{msg}");
    assert!(msg.contains(expr), "{msg}");
}

#[tokio::test]
async fn unbounded_allocation_in_code_is_stopped_with_a_clear_error() {
    let engine = Engine::builder()
        .limits(SandboxLimits {
            memory_bytes: 48 * 1024 * 1024,
            ..Default::default()
        })
        .build();
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node(
                "Hog",
                "const a = []; while (true) { a.push('x'.repeat(1 << 20) + a.length); }",
            ),
        ],
        &[("Start", 0, "Hog", 0)],
    );
    let result = run(&engine, wf).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    let msg = result.error.expect("error").message;
    assert_eq!(
        msg,
        "node 'Hog': stopped: used more than the memory limit of 48 MiB"
    );
}

#[tokio::test]
async fn expressions_and_code_cannot_read_files_env_or_network() {
    let probe = "return [{json: {\
        require: typeof require, process: typeof process, fetch: typeof fetch, \
        xhr: typeof XMLHttpRequest, std: typeof std, os: typeof os, \
        importFs: await import('fs').then(() => 'loaded', e => 'refused') }}];";
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node("Probe", probe),
            set_node(
                "Expr",
                "env",
                json!("={{ typeof process === 'undefined' && typeof require === 'undefined' }}"),
                "boolean",
            ),
        ],
        &[("Start", 0, "Probe", 0), ("Probe", 0, "Expr", 0)],
    );
    let result = run(&engine(), wf).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(
        result.output_json("Expr"),
        vec![
            json!({"require": "undefined", "process": "undefined", "fetch": "undefined", "xhr": "undefined",
            "std": "undefined", "os": "undefined", "importFs": "refused", "env": true})
        ]
    );
}

#[tokio::test]
async fn expression_errors_name_node_parameter_item_and_expression() {
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node("Data", "return [{json: {a: {b: 1}}}, {json: {}}];"),
            set_node("Read", "v", json!("={{ $json.a.b }}"), "number"),
        ],
        &[("Start", 0, "Data", 0), ("Data", 0, "Read", 0)],
    );
    let result = run(&engine(), wf).await;
    let err = result.error.expect("fails");
    assert_eq!(err.node.as_deref(), Some("Read"));
    assert_eq!(err.item_index, Some(1));
    assert!(
        err.message
            .contains("parameter 'assignments.assignments[0].value' (item 1)"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("expression: ={{ $json.a.b }}"),
        "{}",
        err.message
    );
    assert!(err.message.contains("TypeError"), "{}", err.message);
}

#[tokio::test]
async fn nodes_without_input_do_not_run_unless_always_output_data() {
    let mut filter = node(
        "None pass",
        "ledgerflow.filter",
        json!({"conditions": {"conditions": [{"leftValue": "={{ $json.x }}", "rightValue": 5, "operator": {"type": "number", "operation": "gt"}}], "combinator": "and"}}),
    );
    let mut wf = |always: bool| {
        filter.always_output_data = always;
        workflow(
            vec![
                node("Start", "ledgerflow.manualTrigger", json!({})),
                filter.clone(),
                node("After", "ledgerflow.noOp", json!({})),
            ],
            &[("Start", 0, "None pass", 0), ("None pass", 0, "After", 0)],
        )
    };
    let result = run(&engine(), wf(false)).await;
    assert_eq!(result.status, ExecutionStatus::Succeeded);
    assert!(!result.run_data.contains_key("After"));
    let result = run(&engine(), wf(true)).await;
    assert_eq!(result.output_json("After"), vec![json!({})]);
}

#[tokio::test]
async fn execute_once_and_merge_by_key_and_switch() {
    let mut once = set_node("Once", "seen", json!(true), "boolean");
    once.execute_once = true;
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node(
                "Customers",
                "return [{json: {id: 1, name: 'Acme'}}, {json: {id: 2, name: 'Bolt'}}];",
            ),
            code_node(
                "Invoices",
                "return [{json: {id: 2, due: 30}}, {json: {id: 3, due: 5}}];",
            ),
            node(
                "Join",
                "ledgerflow.merge",
                json!({"mode": "combine", "combineBy": "combineByFields", "fieldsToMatchString": "id"}),
            ),
            once,
            node(
                "Route",
                "ledgerflow.switch",
                json!({"mode": "rules", "rules": {"values": [
                {"conditions": {"conditions": [{"leftValue": "={{ $json.due }}", "rightValue": 10, "operator": {"type": "number", "operation": "gt"}}], "combinator": "and"}}
            ]}, "options": {"fallbackOutput": "extra"}}),
            ),
        ],
        &[
            ("Start", 0, "Customers", 0),
            ("Start", 0, "Invoices", 0),
            ("Customers", 0, "Join", 0),
            ("Invoices", 0, "Join", 1),
            ("Invoices", 0, "Once", 0),
            ("Invoices", 0, "Route", 0),
        ],
    );
    let result = run(&engine(), wf).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(
        result.output_json("Join"),
        vec![json!({"id": 2, "name": "Bolt", "due": 30})]
    );
    assert_eq!(
        result.output_json("Once"),
        vec![json!({"id": 2, "due": 30, "seen": true})]
    );
    assert_eq!(result.output("Route", 0).len(), 1);
    assert_eq!(result.output("Route", 1).len(), 1);
}

#[tokio::test]
async fn transform_nodes_shape_items() {
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node("Order", "return [{json: {order: 'A', lines: [{sku: 'b', qty: 2}, {sku: 'a', qty: 1}, {sku: 'b', qty: 2}]}}];"),
            node("Split", "ledgerflow.splitOut", json!({"fieldToSplitOut": "lines"})),
            node("Dedupe", "ledgerflow.removeDuplicates", json!({})),
            node("Sort", "ledgerflow.sort", json!({"sortFieldsUi": {"sortField": [{"fieldName": "sku"}]}})),
            node("First", "ledgerflow.limit", json!({"maxItems": 1, "keep": "lastItems"})),
            node("Collect", "ledgerflow.aggregate", json!({"aggregate": "aggregateIndividualFields", "fieldsToAggregate": {"fieldToAggregate": [{"fieldToAggregate": "sku"}]}})),
        ],
        &[("Start", 0, "Order", 0), ("Order", 0, "Split", 0), ("Split", 0, "Dedupe", 0), ("Dedupe", 0, "Sort", 0), ("Sort", 0, "First", 0), ("Sort", 0, "Collect", 0)],
    );
    let result = run(&engine(), wf).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(result.output_json("Split").len(), 3);
    assert_eq!(
        result.output_json("Sort"),
        vec![json!({"sku": "a", "qty": 1}), json!({"sku": "b", "qty": 2})]
    );
    assert_eq!(
        result.output_json("First"),
        vec![json!({"sku": "b", "qty": 2})]
    );
    assert_eq!(
        result.output_json("Collect"),
        vec![json!({"sku": ["a", "b"]})]
    );
}

#[tokio::test]
async fn execute_workflow_runs_a_sub_workflow_from_the_loader() {
    let sub = workflow(
        vec![
            node("In", "ledgerflow.executeWorkflowTrigger", json!({})),
            set_node("Double", "y", json!("={{ $json.x * 2 }}"), "number"),
        ],
        &[("In", 0, "Double", 0)],
    );
    let loader = StaticWorkflows(HashMap::from([("sub-1".to_string(), sub)]));
    let engine = Engine::builder().workflows(Arc::new(loader)).build();
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node("Data", "return [{json: {x: 1}}, {json: {x: 5}}];"),
            node(
                "Call",
                "ledgerflow.executeWorkflow",
                json!({"source": "database", "workflowId": "sub-1"}),
            ),
        ],
        &[("Start", 0, "Data", 0), ("Data", 0, "Call", 0)],
    );
    let result = run(&engine, wf).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(
        result.output_json("Call"),
        vec![json!({"x": 1, "y": 2}), json!({"x": 5, "y": 10})]
    );
}

/// A node counting its runs, to see what a resume re-runs.
struct Counter(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Node for Counter {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "test.counter",
            display_name: "Counter",
            trigger: false,
            raw_parameters: &[],
        }
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

#[tokio::test]
async fn an_interrupted_execution_resumes_after_the_last_completed_node() {
    let counter = Arc::new(AtomicUsize::new(0));
    let engine = Engine::builder().node(Counter(counter.clone())).build();
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            node("Count", "test.counter", json!({})),
            node(
                "Pause",
                "ledgerflow.wait",
                json!({"resume": "timeInterval", "amount": 1, "unit": "seconds"}),
            ),
            set_node(
                "After",
                "done",
                json!("={{ $('Count').item.json.done === undefined }}"),
                "boolean",
            ),
        ],
        &[
            ("Start", 0, "Count", 0),
            ("Count", 0, "Pause", 0),
            ("Pause", 0, "After", 0),
        ],
    );
    let store = InMemoryExecutionStore::new();
    let cancel = CancelToken::new();
    let request = RunRequest::new(wf, ExecutionMode::Trigger);
    let id = request.execution_id.clone();
    // The "process dies" during the Wait: here, the run is cancelled and its record kept running.
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cancel.cancel();
        })
    };
    let first = engine.run(request, &store, &cancel).await;
    stopper.await.expect("stopper");
    assert_eq!(first.status, ExecutionStatus::Cancelled);
    let checkpoint = store
        .get(&id)
        .and_then(|e| e.checkpoint)
        .expect("checkpoint after Count");
    assert_eq!(checkpoint.last_node_executed.as_deref(), Some("Count"));
    assert_eq!(
        checkpoint.stack.front().map(|e| e.node.as_str()),
        Some("Pause")
    );

    // The state survives a JSON round trip, as it would through the store.
    let text = serde_json::to_string(&checkpoint).expect("serialises");
    let restored: ExecutionState = serde_json::from_str(&text).expect("deserialises");
    let resumed = engine.resume(restored, &store, &CancelToken::new()).await;
    assert_eq!(
        resumed.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        resumed.error
    );
    assert_eq!(
        counter.load(Ordering::SeqCst),
        1,
        "completed nodes are not re-run"
    );
    assert_eq!(resumed.output_json("After"), vec![json!({"done": true})]);
    assert_eq!(resumed.run_data["Count"].len(), 1);
}

#[tokio::test]
async fn crash_recovery_resumes_checkpointed_runs_and_marks_others_crashed() {
    let store = InMemoryExecutionStore::new();
    let wf = Arc::new(workflow(
        vec![node("Start", "ledgerflow.manualTrigger", json!({}))],
        &[],
    ));
    let state = |id: &str| ExecutionState {
        execution_id: id.into(),
        workflow: wf.clone(),
        mode: ExecutionMode::Trigger,
        vars: Default::default(),
        started_at: chrono::Utc::now(),
        now_ms: 0,
        depth: 0,
        run_data: Default::default(),
        stack: Default::default(),
        waiting: Vec::new(),
        last_node_executed: None,
        webhook_response: None,
    };
    store
        .execution_started(&state("no-checkpoint"))
        .await
        .expect("records");
    store
        .execution_started(&state("with-checkpoint"))
        .await
        .expect("records");
    let run = NodeRun {
        start_time: chrono::Utc::now(),
        execution_time_ms: 0,
        attempts: 1,
        source: vec![None],
        input: vec![],
        output: vec![],
        error: None,
    };
    store
        .node_finished(NodeFinished {
            execution_id: "with-checkpoint",
            node: "Start",
            run_index: 0,
            run: &run,
            state: &state("with-checkpoint"),
        })
        .await
        .expect("records");
    let resumable = store.recover();
    assert_eq!(resumable.len(), 1);
    assert_eq!(resumable[0].execution_id, "with-checkpoint");
    assert_eq!(
        store.get("no-checkpoint").map(|e| e.status),
        Some(ExecutionStatus::Crashed)
    );
}

/// Answers every HTTP request with JSON describing whether the secret header came, then a
/// second page when asked for `page=2`.
async fn tiny_server() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            while let Ok(n) = socket.read(&mut buf[read..]).await {
                read += n;
                if n == 0 || buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let request = String::from_utf8_lossy(&buf[..read]).to_string();
            let authorised = request
                .lines()
                .any(|l| l.eq_ignore_ascii_case("x-api-key: s3cret-value"));
            let first_line = request.lines().next().unwrap_or("").to_string();
            let page2 = first_line.contains("page=2");
            let (status, content_type, body) = if first_line.contains("/missing") {
                (
                    "404 Not Found",
                    "text/plain",
                    "no invoice INV-9 here".to_string(),
                )
            } else if first_line.contains("/file") {
                ("200 OK", "application/pdf", "%PDF-1.4 fake".to_string())
            } else if page2 {
                ("200 OK", "application/json", "[]".to_string())
            } else {
                let list = json!([{"invoice": "INV-1", "authorised": authorised}, {"invoice": "INV-2", "authorised": authorised}]);
                ("200 OK", "application/json", list.to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), handle)
}

struct TestCredentials;

#[async_trait::async_trait]
impl CredentialProvider for TestCredentials {
    async fn authenticate(
        &self,
        request: AuthRequest<'_>,
    ) -> Result<Authentication, CredentialError> {
        match (request.credential_type, request.credential.id.as_deref()) {
            ("httpHeaderAuth", Some("cred-1")) => Ok(Authentication::header(
                "X-Api-Key",
                SecretString::from("s3cret-value"),
            )),
            _ => Err(CredentialError(format!(
                "credential '{}' not found",
                request.credential.name
            ))),
        }
    }
}

#[tokio::test]
async fn http_request_authenticates_through_the_host_paginates_and_keeps_secrets_out_of_run_data() {
    let (base, server) = tiny_server().await;
    let mut http = node(
        "Invoices",
        "ledgerflow.httpRequest",
        json!({
            "method": "GET",
            "url": format!("{base}/invoices"),
            "authentication": "genericCredentialType",
            "genericAuthType": "httpHeaderAuth",
            "sendQuery": true,
            "queryParameters": {"parameters": [{"name": "page", "value": "1"}]},
            "options": {"pagination": {"pagination": {
                "paginationMode": "updateAParameterInEachRequest",
                "parameters": {"parameters": [{"type": "qs", "name": "page", "value": "={{ $pageCount + 1 }}"}]},
                "paginationCompleteWhen": "responseIsEmpty",
                "limitPagesFetched": true, "maxRequests": 5
            }}}
        }),
    );
    http.credentials.insert(
        "httpHeaderAuth".into(),
        CredentialRef {
            id: Some("cred-1".into()),
            name: "Billing API".into(),
        },
    );
    let wf = workflow(
        vec![node("Start", "ledgerflow.manualTrigger", json!({})), http],
        &[("Start", 0, "Invoices", 0)],
    );
    let engine = Engine::builder()
        .credentials(Arc::new(TestCredentials))
        .build();
    let store = InMemoryExecutionStore::new();
    let request = RunRequest::new(wf, ExecutionMode::Manual);
    let id = request.execution_id.clone();
    let result = engine.run(request, &store, &CancelToken::new()).await;
    server.abort();
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(
        result.output_json("Invoices"),
        vec![
            json!({"invoice": "INV-1", "authorised": true}),
            json!({"invoice": "INV-2", "authorised": true})
        ]
    );
    let everything = format!(
        "{}{:?}",
        serde_json::to_string(&result).expect("json"),
        store.get(&id)
    );
    assert!(
        !everything.contains("s3cret-value"),
        "the secret leaked into run data"
    );
}

#[tokio::test]
async fn webhook_triggers_expose_path_method_and_responses() {
    let wf = workflow(
        vec![
            node(
                "Hook",
                "ledgerflow.webhook",
                json!({"httpMethod": "POST", "path": "xero/events", "responseMode": "responseNode"}),
            ),
            node(
                "Reply",
                "ledgerflow.respondToWebhook",
                json!({"respondWith": "json", "responseBody": "={{ JSON.stringify({ok: true, n: $json.body.n}) }}", "options": {"responseCode": 202}}),
            ),
        ],
        &[("Hook", 0, "Reply", 0)],
    );
    let triggers = webhook_triggers(&wf);
    assert_eq!(triggers.len(), 1);
    assert_eq!(
        (triggers[0].method.as_str(), triggers[0].path.as_str()),
        ("POST", "xero/events")
    );
    assert_eq!(triggers[0].response_mode, ResponseMode::ResponseNode);

    let mut request = RunRequest::new(wf, ExecutionMode::Webhook);
    request.start_node = Some("Hook".into());
    request.input = vec![WebhookRequest {
        method: "POST".into(),
        body: json!({"n": 3}),
        ..Default::default()
    }
    .into_item()];
    let store = InMemoryExecutionStore::new();
    let id = request.execution_id.clone();
    let result = engine().run(request, &store, &CancelToken::new()).await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    let expected = WebhookResponse {
        status: 202,
        headers: BTreeMap::new(),
        body: WebhookBody::Json(json!({"ok": true, "n": 3})),
    };
    assert_eq!(result.webhook_response, Some(expected.clone()));
    assert_eq!(
        store.get(&id).and_then(|e| e.webhook_response),
        Some(expected)
    );
}

#[test]
fn schedule_triggers_compute_the_next_fire_time() {
    let mut wf = workflow(
        vec![node(
            "Every 15 min",
            "ledgerflow.scheduleTrigger",
            json!({"rule": {"interval": [{"field": "minutes", "minutesInterval": 15}]}}),
        )],
        &[],
    );
    wf.settings.timezone = Some("Europe/London".into());
    let triggers = schedule_triggers(&wf).expect("valid");
    let after = chrono::DateTime::parse_from_rfc3339("2024-06-01T10:07:00Z")
        .expect("date")
        .with_timezone(&chrono::Utc);
    let next = triggers[0].next_fire_after(after).expect("fires");
    assert_eq!(next.to_rfc3339(), "2024-06-01T10:15:00+00:00");
    let item = schedule_item(next, triggers[0].timezone);
    assert_eq!(item.json["Hour"], json!("11"), "London is UTC+1 in June");
}

#[tokio::test]
async fn error_workflow_runs_with_the_failure_as_input() {
    let mut wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node("Fail", "throw new Error('Xero said no');"),
        ],
        &[("Start", 0, "Fail", 0)],
    );
    wf.settings.error_workflow = Some("on-error".into());
    let result = run(&engine(), wf.clone()).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    let handler = workflow(
        vec![
            node("On error", "ledgerflow.errorTrigger", json!({})),
            set_node("Alert", "text", json!("={{ $json.workflow.name }} failed at {{ $json.execution.lastNodeExecuted }}: {{ $json.execution.error.message }}"), "string"),
        ],
        &[("On error", 0, "Alert", 0)],
    );
    let request = error_workflow_request(&wf, &result, ExecutionMode::Manual, handler);
    assert_eq!(request.mode, ExecutionMode::Error);
    let handled = engine()
        .run(request, &NoopObserver, &CancelToken::new())
        .await;
    assert_eq!(
        handled.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        handled.error
    );
    assert_eq!(
        handled.output("Alert", 0)[0].json["text"],
        json!("test failed at Fail: node 'Fail': Error: Xero said no")
    );
}

#[tokio::test]
async fn expressions_see_vars_node_run_index_and_binary() {
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node("Data", "return [{json: {n: 1}, binary: {file: {data: 'aGk=', mimeType: 'text/plain', fileName: 'hi.txt'}}}, {json: {n: 2}}];"),
            node("Read", "ledgerflow.set", json!({"assignments": {"assignments": [
                {"name": "region", "value": "={{ $vars.region }}", "type": "string"},
                {"name": "first", "value": "={{ $input.first().json.n }}", "type": "number"},
                {"name": "viaNode", "value": "={{ $node['Data'].json.n }}", "type": "number"},
                {"name": "run", "value": "={{ $runIndex }}", "type": "number"},
                {"name": "file", "value": "={{ $binary.file ? $binary.file.fileName : 'none' }}", "type": "string"},
                {"name": "mode", "value": "={{ $execution.mode }}", "type": "string"}
            ]}})),
        ],
        &[("Start", 0, "Data", 0), ("Data", 0, "Read", 0)],
    );
    let mut request = RunRequest::new(wf, ExecutionMode::Manual);
    request.vars.insert("region".into(), json!("NZ"));
    let result = engine()
        .run(request, &NoopObserver, &CancelToken::new())
        .await;
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    assert_eq!(
        result.output_json("Read"),
        vec![
            json!({"region": "NZ", "first": 1, "viaNode": 1, "run": 0, "file": "hi.txt", "mode": "manual"}),
            json!({"region": "NZ", "first": 1, "viaNode": 2, "run": 0, "file": "none", "mode": "manual"}),
        ]
    );
}

#[tokio::test]
async fn a_loop_without_exit_is_stopped_by_the_node_run_limit() {
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            node("Again", "ledgerflow.noOp", json!({})),
            node("And again", "ledgerflow.noOp", json!({})),
        ],
        &[
            ("Start", 0, "Again", 0),
            ("Again", 0, "And again", 0),
            ("And again", 0, "Again", 0),
        ],
    );
    let engine = Engine::builder().max_node_runs(50).build();
    let result = run(&engine, wf).await;
    assert_eq!(result.status, ExecutionStatus::Failed);
    let msg = result.error.expect("error").message;
    assert!(msg.contains("ran more than 50 nodes"), "{msg}");
    assert_eq!(result.run_data["Again"].len(), 25);
}

#[tokio::test]
async fn http_errors_name_the_status_and_never_error_and_files_become_items() {
    let (base, server) = tiny_server().await;
    let auth = |mut n: WorkflowNode| {
        n.credentials.insert(
            "httpHeaderAuth".into(),
            CredentialRef {
                id: Some("cred-1".into()),
                name: "Billing API".into(),
            },
        );
        n
    };
    let request_node = |name: &str, path: &str, extra: Value| {
        let mut p = json!({"method": "GET", "url": format!("{base}{path}"), "authentication": "genericCredentialType", "genericAuthType": "httpHeaderAuth"});
        if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
            p.extend(extra);
        }
        auth(node(name, "ledgerflow.httpRequest", p))
    };
    let engine = Engine::builder()
        .credentials(Arc::new(TestCredentials))
        .build();

    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            request_node("Fetch", "/missing", json!({})),
        ],
        &[("Start", 0, "Fetch", 0)],
    );
    let failed = run(&engine, wf).await;
    let err = failed.error.expect("fails");
    assert!(
        err.message
            .contains("returned status 404: no invoice INV-9 here"),
        "{}",
        err.message
    );
    assert!(!serde_json::to_string(&failed.run_data)
        .expect("json")
        .contains("s3cret-value"));

    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            request_node(
                "Tolerant",
                "/missing",
                json!({"options": {"response": {"response": {"neverError": true, "fullResponse": true}}}}),
            ),
            request_node(
                "Pdf",
                "/file",
                json!({"options": {"response": {"response": {"responseFormat": "file", "outputPropertyName": "invoice"}}}}),
            ),
        ],
        &[("Start", 0, "Tolerant", 0), ("Tolerant", 0, "Pdf", 0)],
    );
    let result = run(&engine, wf).await;
    server.abort();
    assert_eq!(
        result.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        result.error
    );
    let tolerant = &result.output_json("Tolerant")[0];
    assert_eq!(
        (tolerant["statusCode"].clone(), tolerant["body"].clone()),
        (json!(404), json!("no invoice INV-9 here"))
    );
    let pdf = &result.output("Pdf", 0)[0];
    let binary = pdf
        .binary
        .as_ref()
        .and_then(|b| b.get("invoice"))
        .expect("binary property");
    assert_eq!(binary.mime_type, "application/pdf");
    assert_eq!(binary.file_name.as_deref(), Some("file"));
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&binary.data)
            .expect("base64"),
        b"%PDF-1.4 fake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_executions_run_off_the_async_workers() {
    let wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            code_node(
                "Busy",
                "let s = 0; for (let i = 0; i < 100000; i++) s += i; return [{json: {s}}];",
            ),
        ],
        &[("Start", 0, "Busy", 0)],
    );
    let store = Arc::new(InMemoryExecutionStore::new());
    let request = RunRequest::new(wf, ExecutionMode::Trigger);
    let id = request.execution_id.clone();
    let result = engine()
        .spawn(request, store.clone(), CancelToken::new())
        .await
        .expect("joins");
    assert_eq!(
        result.output_json("Busy"),
        vec![json!({"s": 4999950000i64})]
    );
    assert_eq!(
        store.get(&id).map(|e| e.status),
        Some(ExecutionStatus::Succeeded)
    );
}

#[tokio::test]
async fn the_workflow_execution_timeout_stops_a_long_run() {
    let mut wf = workflow(
        vec![
            node("Start", "ledgerflow.manualTrigger", json!({})),
            node(
                "Long wait",
                "ledgerflow.wait",
                json!({"resume": "timeInterval", "amount": 30, "unit": "seconds"}),
            ),
        ],
        &[("Start", 0, "Long wait", 0)],
    );
    wf.settings
        .extra
        .insert("executionTimeout".into(), json!(1));
    let started = std::time::Instant::now();
    let result = run(&engine(), wf).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(result.status, ExecutionStatus::Failed);
    let msg = result.error.expect("error").message;
    assert_eq!(
        msg,
        "the execution took longer than its time limit of 1s and was stopped"
    );
}
