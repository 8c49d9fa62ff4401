//! Engine throughput: executions per second of a 5-node workflow (Manual Trigger → Set with an
//! expression → If → Code → No Op) on 1 and on 1,000 items, raw expression evaluations per
//! second, and peak RSS. Plain `Instant` timing; run with `cargo bench -p ledgerflow-engine`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledgerflow_engine::expression::{ExpressionGlobals, ParamTree, Sandbox};
use ledgerflow_engine::{
    CancelToken, Engine, ExecutionMode, ExecutionStatus, Item, NoopObserver, RunRequest,
    SandboxLimits, Workflow,
};
use serde_json::json;

fn five_node_workflow() -> Workflow {
    serde_json::from_value(json!({
        "name": "bench",
        "nodes": [
            {"name": "Start", "type": "ledgerflow.manualTrigger", "parameters": {}},
            {"name": "Set", "type": "ledgerflow.set", "parameters": {
                "includeOtherFields": true,
                "assignments": {"assignments": [{"name": "total", "value": "={{ $json.amount * 2 }}", "type": "number"}]}
            }},
            {"name": "If", "type": "ledgerflow.if", "parameters": {
                "conditions": {"conditions": [{"leftValue": "={{ $json.total }}", "rightValue": 10, "operator": {"type": "number", "operation": "gt"}}], "combinator": "and"}
            }},
            {"name": "Code", "type": "ledgerflow.code", "parameters": {
                "jsCode": "for (const item of items) { item.json.flagged = item.json.total > 1000; }\nreturn items;"
            }},
            {"name": "NoOp", "type": "ledgerflow.noOp", "parameters": {}}
        ],
        "connections": {
            "Start": {"main": [[{"node": "Set", "type": "main", "index": 0}]]},
            "Set": {"main": [[{"node": "If", "type": "main", "index": 0}]]},
            "If": {"main": [[{"node": "Code", "type": "main", "index": 0}], []]},
            "Code": {"main": [[{"node": "NoOp", "type": "main", "index": 0}]]}
        }
    }))
    .expect("bench workflow")
}

fn items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| {
            Item::new(json!({"id": i, "amount": (i % 1000) as i64, "customer": format!("C{i}")}))
        })
        .collect()
}

fn executions_per_second(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    n_items: usize,
    budget: Duration,
) -> f64 {
    let workflow = Arc::new(five_node_workflow());
    let input = items(n_items);
    let cancel = CancelToken::new();
    let once = || {
        let mut request = RunRequest::new(workflow.clone(), ExecutionMode::Manual);
        request.input = input.clone();
        let result = rt.block_on(engine.run(request, &NoopObserver, &cancel));
        assert_eq!(
            result.status,
            ExecutionStatus::Succeeded,
            "{:?}",
            result.error
        );
    };
    once(); // warm-up
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget {
        once();
        runs += 1;
    }
    runs as f64 / started.elapsed().as_secs_f64()
}

fn expression_evaluations_per_second(budget: Duration) -> f64 {
    let mut sandbox = Sandbox::new(
        SandboxLimits::default(),
        &ExpressionGlobals::default(),
        Arc::new(AtomicBool::new(false)),
    )
    .expect("sandbox");
    let input = Arc::new(items(1000));
    sandbox.begin_node("Set", 0, input, vec![]);
    let tree = ParamTree::compile(&json!("={{ $json.amount * 2 + 1 }}"), &[]);
    let started = Instant::now();
    let mut evaluations = 0u64;
    while started.elapsed() < budget {
        for i in 0..1000 {
            sandbox.evaluate_tree(&tree, i).expect("evaluates");
        }
        evaluations += 1000;
    }
    evaluations as f64 / started.elapsed().as_secs_f64()
}

/// Where the time goes in one 1,000-item run (per node, from run data).
fn node_breakdown(rt: &tokio::runtime::Runtime, engine: &Engine) -> String {
    let mut request = RunRequest::new(five_node_workflow(), ExecutionMode::Manual);
    request.input = items(1000);
    let started = Instant::now();
    let result = rt.block_on(engine.run(request, &NoopObserver, &CancelToken::new()));
    let total = started.elapsed();
    let mut parts: Vec<String> = ["Start", "Set", "If", "Code", "NoOp"]
        .iter()
        .map(|n| format!("{n} {}ms", result.run_data[*n][0].execution_time_ms))
        .collect();
    parts.push(format!("total {}ms", total.as_millis()));
    parts.join(", ")
}

/// Cost of a fresh sandbox (runtime, context, prelude): paid once per execution.
fn sandbox_setup_micros() -> f64 {
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        let sandbox = Sandbox::new(
            SandboxLimits::default(),
            &ExpressionGlobals::default(),
            Arc::new(AtomicBool::new(false)),
        )
        .expect("sandbox");
        drop(sandbox);
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Engine::builder().build();
    let budget = Duration::from_secs(3);
    let one = executions_per_second(&rt, &engine, 1, budget);
    println!("5-node workflow, 1 item:        {one:>10.0} executions/s");
    let thousand = executions_per_second(&rt, &engine, 1000, budget);
    println!(
        "5-node workflow, 1,000 items:   {thousand:>10.1} executions/s ({:.0} items/s)",
        thousand * 1000.0
    );
    println!(
        "  per node (1,000 items):       {}",
        node_breakdown(&rt, &engine)
    );
    let evals = expression_evaluations_per_second(budget);
    println!("expression evaluations:         {evals:>10.0} evaluations/s");
    println!(
        "sandbox setup per execution:    {:>10.0} µs",
        sandbox_setup_micros()
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS:                       {rss:>10.1} MiB");
    }
}
