//! Flow nodes: Wait (a duration or until a time; cancellable) and Execute Workflow (runs another
//! workflow loaded through the host's [`crate::WorkflowLoader`]).
//!
//! Wait sleeps inside the execution; it does not park the execution in the store, so long waits
//! hold a worker (and a crash during a wait resumes the wait from the start).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::engine::{sleep_cancellable, ExecutionMode, RunRequest};
use crate::host::NoopObserver;
use crate::item::{Item, PairedItem};
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::run_data::ExecutionStatus;
use crate::workflow::WorkflowNode;

fn description(type_name: &'static str, display_name: &'static str) -> NodeDescription {
    NodeDescription {
        type_name,
        display_name,
        trigger: false,
        raw_parameters: &[],
    }
}

/// Wait: `resume` timeInterval (`amount`, `unit`) or specificTime (`dateTime`).
pub struct WaitNode;

fn wait_duration(p: &Value) -> Result<Duration, String> {
    match p
        .get("resume")
        .and_then(Value::as_str)
        .unwrap_or("timeInterval")
    {
        "specificTime" => {
            let at = p.get("dateTime").and_then(Value::as_str).unwrap_or("");
            let at = chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|_| format!("'Date and Time' {at:?} is not an ISO 8601 date-time"))?;
            Ok((at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO))
        }
        "timeInterval" => {
            let amount = match p.get("amount") {
                Some(Value::Number(n)) => n.as_f64().unwrap_or(1.0),
                Some(Value::String(s)) => s
                    .parse()
                    .map_err(|_| format!("'Wait Amount' {s:?} is not a number"))?,
                _ => 1.0,
            };
            if !(0.0..=31_536_000.0).contains(&amount) {
                return Err(format!("'Wait Amount' {amount} is out of range"));
            }
            let unit = match p.get("unit").and_then(Value::as_str).unwrap_or("hours") {
                "seconds" => 1.0,
                "minutes" => 60.0,
                "hours" => 3600.0,
                "days" => 86400.0,
                other => return Err(format!("'Wait Unit' {other:?} is not supported")),
            };
            Ok(Duration::from_secs_f64(amount * unit))
        }
        other => Err(format!("Wait with resume '{other}' is not supported")),
    }
}

#[async_trait::async_trait]
impl Node for WaitNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.wait", "Wait")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let p = ctx.parameters(0)?;
        let duration = wait_duration(&p).map_err(NodeError::new)?;
        sleep_cancellable(duration, ctx.cancel).await?;
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

/// Execute Workflow: `workflowId`, `mode` once (all items in one run) or each (one run per
/// item), `options.waitForSubWorkflow` (default true; false passes the input through).
pub struct ExecuteWorkflowNode;

#[async_trait::async_trait]
impl Node for ExecuteWorkflowNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.executeWorkflow", "Execute Workflow")
    }

    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        match node.parameters.get("workflowId") {
            Some(Value::String(s)) if !s.is_empty() => Ok(()),
            Some(Value::Number(_)) => Ok(()),
            _ => Err("no workflow to execute: set 'Workflow'".into()),
        }
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let p = ctx.parameters(0)?;
        let id = match p.get("workflowId") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(NodeError::new("no workflow to execute: set 'Workflow'")),
        };
        let workflow = ctx
            .services
            .workflows
            .load(&id)
            .await
            .map_err(|e| NodeError::new(format!("could not load workflow '{id}': {e}")))?;
        let workflow = Arc::new(workflow);
        let items = ctx.items().to_vec();
        let wait = p
            .pointer("/options/waitForSubWorkflow")
            .and_then(Value::as_bool)
            != Some(false);
        let batches: Vec<(Option<usize>, Vec<Item>)> =
            if p.get("mode").and_then(Value::as_str) == Some("each") {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| (Some(i), vec![it.clone()]))
                    .collect()
            } else {
                vec![(None, items.clone())]
            };
        let start = workflow
            .nodes
            .iter()
            .find(|n| n.node_type == "ledgerflow.executeWorkflowTrigger" && !n.disabled)
            .map(|n| n.name.clone());
        let mut out = NodeOutput::single(Vec::new());
        for (index, batch) in batches {
            let mut request = RunRequest::new(workflow.clone(), ExecutionMode::Integrated);
            request.execution_id =
                format!("{}:{}", ctx.execution.execution_id, uuid::Uuid::new_v4());
            request.start_node = start.clone();
            request.input = batch;
            if !wait {
                let engine = ctx.engine.clone();
                let cancel = ctx.cancel.clone();
                let depth = ctx.execution.depth + 1;
                tokio::spawn(async move {
                    engine
                        .run_at_depth(request, &NoopObserver, &cancel, depth)
                        .await;
                });
                continue;
            }
            let result = ctx
                .engine
                .run_at_depth(request, &NoopObserver, ctx.cancel, ctx.execution.depth + 1)
                .await;
            match result.status {
                ExecutionStatus::Succeeded => {
                    out.outputs[0].extend(result.last_output().iter().map(|item| {
                        let mut item = item.clone();
                        item.paired_item = index.map(PairedItem::item);
                        item
                    }))
                }
                ExecutionStatus::Cancelled => return Err(NodeError::cancelled()),
                _ => {
                    let message = result
                        .error
                        .map(|e| e.message)
                        .unwrap_or_else(|| "it failed".into());
                    let e = NodeError::new(format!("workflow '{id}' failed: {message}"));
                    ctx.item_failed(&mut out, index.unwrap_or(0), e)?;
                }
            }
        }
        if !wait {
            return Ok(NodeOutput::single(items));
        }
        Ok(out)
    }
}
