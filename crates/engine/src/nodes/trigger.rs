//! Trigger nodes (Manual, Schedule, Error, Execute Workflow Trigger) and schedule computation.
//!
//! A trigger node passes the items the host started the run with straight through. The host
//! decides *when* to start: for schedules it asks [`schedule_triggers`] for each trigger's rules
//! and [`ScheduleTrigger::next_fire_after`] for the next time, then runs the workflow from that
//! node with [`schedule_item`] as input. This module does not keep timers or leases.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde_json::{json, Value};

use crate::item::Item;
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::workflow::{Workflow, WorkflowNode};

fn trigger(type_name: &'static str, display_name: &'static str) -> NodeDescription {
    NodeDescription {
        type_name,
        display_name,
        trigger: true,
        raw_parameters: &[],
    }
}

async fn pass_through(ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
    let items = ctx.items().to_vec();
    Ok(NodeOutput::single(if items.is_empty() {
        vec![Item::empty()]
    } else {
        items
    }))
}

/// Manual Trigger: one empty item (or what the host passed).
pub struct ManualTriggerNode;

#[async_trait::async_trait]
impl Node for ManualTriggerNode {
    fn description(&self) -> NodeDescription {
        trigger("ledgerflow.manualTrigger", "Manual Trigger")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        pass_through(ctx).await
    }
}

/// Error Trigger: starts an error workflow with the failure ([`crate::error_workflow_item`]).
pub struct ErrorTriggerNode;

#[async_trait::async_trait]
impl Node for ErrorTriggerNode {
    fn description(&self) -> NodeDescription {
        trigger("ledgerflow.errorTrigger", "Error Trigger")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        pass_through(ctx).await
    }
}

/// Execute Workflow Trigger: receives the caller's items.
pub struct ExecuteWorkflowTriggerNode;

#[async_trait::async_trait]
impl Node for ExecuteWorkflowTriggerNode {
    fn description(&self) -> NodeDescription {
        trigger(
            "ledgerflow.executeWorkflowTrigger",
            "Execute Workflow Trigger",
        )
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        pass_through(ctx).await
    }
}

/// Schedule Trigger (n8n v1.2 `rule.interval[]`).
pub struct ScheduleTriggerNode;

#[async_trait::async_trait]
impl Node for ScheduleTriggerNode {
    fn description(&self) -> NodeDescription {
        trigger("ledgerflow.scheduleTrigger", "Schedule Trigger")
    }
    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        schedule_rules(&node.parameters).map(|_| ())
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        pass_through(ctx).await
    }
}

/// One schedule rule as a cron pattern (with seconds).
#[derive(Debug, Clone)]
pub struct ScheduleRule {
    pub cron: String,
    parsed: Cron,
}

impl ScheduleRule {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| format!("cron expression '{pattern}' is not valid: {e}"))?;
        Ok(ScheduleRule {
            cron: pattern.to_string(),
            parsed,
        })
    }

    /// The first fire time strictly after `after`, evaluated in `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz);
        self.parsed
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

fn num(v: &Value, key: &str, default: u64) -> u64 {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(default),
        Some(Value::String(s)) => s.parse().unwrap_or(default),
        _ => default,
    }
}

/// Translates n8n's `rule.interval[]` into cron rules, as n8n does internally.
pub fn schedule_rules(parameters: &Value) -> Result<Vec<ScheduleRule>, String> {
    let intervals = parameters
        .pointer("/rule/interval")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![json!({})]);
    let mut rules = Vec::new();
    for (i, r) in intervals.iter().enumerate() {
        let field = r.get("field").and_then(Value::as_str).unwrap_or("days");
        let at_h = num(r, "triggerAtHour", 0);
        let at_m = num(r, "triggerAtMinute", 0);
        let step = |key: &str| num(r, key, 1).max(1);
        let cron = match field {
            "seconds" => format!("*/{} * * * * *", step("secondsInterval")),
            "minutes" => format!("0 */{} * * * *", step("minutesInterval")),
            "hours" => format!("0 {at_m} */{} * * *", step("hoursInterval")),
            "days" => format!("0 {at_m} {at_h} */{} * *", step("daysInterval")),
            "weeks" => {
                let days: Vec<String> = r
                    .get("triggerAtDay")
                    .and_then(Value::as_array)
                    .map(|d| d.iter().map(|v| v.to_string()).collect())
                    .unwrap_or_else(|| vec!["0".into()]);
                if step("weeksInterval") > 1 {
                    return Err(format!(
                        "rule {}: every {} weeks is not supported; use a cron expression",
                        i + 1,
                        step("weeksInterval")
                    ));
                }
                format!("0 {at_m} {at_h} * * {}", days.join(","))
            }
            "months" => format!(
                "0 {at_m} {at_h} {} */{} *",
                num(r, "triggerAtDayOfMonth", 1).clamp(1, 31),
                step("monthsInterval")
            ),
            "cronExpression" => r
                .get("expression")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string(),
            other => return Err(format!("rule {}: unknown interval '{other}'", i + 1)),
        };
        rules.push(ScheduleRule::parse(&cron).map_err(|e| format!("rule {}: {e}", i + 1))?);
    }
    Ok(rules)
}

/// A schedule trigger of a workflow, as the host needs it to plan runs.
#[derive(Debug, Clone)]
pub struct ScheduleTrigger {
    pub node: String,
    pub rules: Vec<ScheduleRule>,
    pub timezone: Tz,
}

impl ScheduleTrigger {
    /// The next fire time of any rule strictly after `after`.
    pub fn next_fire_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.rules
            .iter()
            .filter_map(|r| r.next_after(after, self.timezone))
            .min()
    }
}

/// The workflow's time zone (settings), or UTC.
pub fn workflow_timezone(workflow: &Workflow) -> Tz {
    workflow
        .settings
        .timezone
        .as_deref()
        .and_then(|tz| tz.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

/// All enabled schedule triggers of a workflow.
pub fn schedule_triggers(workflow: &Workflow) -> Result<Vec<ScheduleTrigger>, String> {
    let tz = workflow_timezone(workflow);
    workflow
        .nodes
        .iter()
        .filter(|n| n.node_type == "ledgerflow.scheduleTrigger" && !n.disabled)
        .map(|n| {
            Ok(ScheduleTrigger {
                node: n.name.clone(),
                rules: schedule_rules(&n.parameters)
                    .map_err(|e| format!("node '{}': {e}", n.name))?,
                timezone: tz,
            })
        })
        .collect()
}

/// The item a Schedule Trigger emits when it fires at `at` (n8n's fields).
pub fn schedule_item(at: DateTime<Utc>, tz: Tz) -> Item {
    let local = tz.from_utc_datetime(&at.naive_utc());
    Item::new(json!({
        "timestamp": local.to_rfc3339(),
        "Readable date": local.format("%B %-d %Y, %-I:%M:%S %P").to_string(),
        "Readable time": local.format("%-I:%M:%S %P").to_string(),
        "Day of week": local.format("%A").to_string(),
        "Year": local.format("%Y").to_string(),
        "Month": local.format("%B").to_string(),
        "Day of month": local.format("%d").to_string(),
        "Hour": local.format("%H").to_string(),
        "Minute": local.format("%M").to_string(),
        "Second": local.format("%S").to_string(),
        "Timezone": format!("{} (UTC{})", tz.name(), local.format("%:z")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_cron_compute_next_fire_times_in_the_workflow_timezone() {
        let rules = schedule_rules(&json!({"rule": {"interval": [
            {"field": "days", "triggerAtHour": 9, "triggerAtMinute": 30}
        ]}}))
        .expect("valid");
        let trigger = ScheduleTrigger {
            node: "S".into(),
            rules,
            timezone: "Pacific/Auckland".parse().expect("tz"),
        };
        // 2024-05-01 00:00 UTC is 12:00 in Auckland: next 09:30 Auckland is 2024-05-01 21:30 UTC.
        let after = Utc
            .with_ymd_and_hms(2024, 5, 1, 0, 0, 0)
            .single()
            .expect("date");
        let next = trigger.next_fire_after(after).expect("fires");
        assert_eq!(
            next,
            Utc.with_ymd_and_hms(2024, 5, 1, 21, 30, 0)
                .single()
                .expect("date")
        );

        let rules = schedule_rules(&json!({"rule": {"interval": [
            {"field": "cronExpression", "expression": "0 */15 * * * *"},
            {"field": "minutes", "minutesInterval": 10}
        ]}}))
        .expect("valid");
        let trigger = ScheduleTrigger {
            node: "S".into(),
            rules,
            timezone: Tz::UTC,
        };
        let after = Utc
            .with_ymd_and_hms(2024, 5, 1, 10, 1, 0)
            .single()
            .expect("date");
        assert_eq!(
            trigger.next_fire_after(after),
            Utc.with_ymd_and_hms(2024, 5, 1, 10, 10, 0).single()
        );
    }

    #[test]
    fn invalid_cron_is_a_validation_error() {
        let err = schedule_rules(&json!({"rule": {"interval": [{"field": "cronExpression", "expression": "61 * * * *"}]}}))
            .expect_err("invalid");
        assert!(
            err.contains("rule 1: cron expression '61 * * * *' is not valid"),
            "{err}"
        );
    }
}
