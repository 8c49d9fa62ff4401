//! Conditions as n8n's If v2, Filter v2 and Switch v3 write them
//! (`conditions.conditions[]{leftValue,rightValue,operator{type,operation}}`, `combinator`), and
//! the three nodes built on them.
//!
//! Owns operator semantics and type validation (strict by default, as n8n: a string where a
//! number is expected is an error naming both; `looseTypeValidation` converts instead).

use serde_json::{json, Value};

use crate::item::Item;
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::workflow::WorkflowNode;

const REGEX_TEST: &str = "(p, s, i) => { const m = /^\\/(.*)\\/([a-z]*)$/s.exec(p); \
    const re = m ? new RegExp(m[1], m[2] + (i && !m[2].includes('i') ? 'i' : '')) : new RegExp(p, i ? 'i' : ''); \
    return re.test(s); }";

struct Options {
    case_sensitive: bool,
    loose: bool,
}

fn options(conditions: &Value, params: &Value) -> Options {
    let opts = conditions.get("options").cloned().unwrap_or(Value::Null);
    let loose = opts.get("typeValidation").and_then(Value::as_str) == Some("loose")
        || params.get("looseTypeValidation").and_then(Value::as_bool) == Some(true)
        || params
            .pointer("/options/looseTypeValidation")
            .and_then(Value::as_bool)
            == Some(true);
    let ignore_case = params
        .pointer("/options/ignoreCase")
        .and_then(Value::as_bool)
        == Some(true);
    Options {
        case_sensitive: opts
            .get("caseSensitive")
            .and_then(Value::as_bool)
            .unwrap_or(true)
            && !ignore_case,
        loose,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(side: &str, v: &Value, expected: &str) -> String {
    format!(
        "wrong type: the {side} value {} is {} but the condition expects {expected} \
         (change the operator's type, or enable 'Convert types where required')",
        v,
        type_name(v)
    )
}

fn as_number(v: &Value, loose: bool, side: &str) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) if loose => {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| wrong_type(side, v, "a number"))
        }
        Value::Bool(b) if loose => Ok(Some(if *b { 1.0 } else { 0.0 })),
        _ => Err(wrong_type(side, v, "a number")),
    }
}

fn as_string(v: &Value, loose: bool, side: &str) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(_) | Value::Bool(_) if loose => Ok(Some(v.to_string())),
        Value::Array(_) | Value::Object(_) if loose => Ok(Some(v.to_string())),
        _ => Err(wrong_type(side, v, "a string")),
    }
}

fn as_bool(v: &Value, loose: bool, side: &str) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if loose => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" | "" => Ok(Some(false)),
            _ => Err(wrong_type(side, v, "a boolean")),
        },
        Value::Number(n) if loose => Ok(Some(n.as_f64() != Some(0.0))),
        _ => Err(wrong_type(side, v, "a boolean")),
    }
}

fn as_date(v: &Value, side: &str) -> Result<Option<chrono::DateTime<chrono::FixedOffset>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc()
                        .fixed_offset()
                })
            })
            .map(Some)
            .map_err(|_| format!("the {side} value '{s}' is not a date (use ISO 8601, e.g. 2024-05-01T10:00:00Z)")),
        Value::Number(n) => Ok(n
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.fixed_offset())),
        _ => Err(wrong_type(side, v, "a date")),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Evaluates one condition. `regex` tests a JavaScript regular expression.
fn evaluate(
    condition: &Value,
    opts: &Options,
    regex: &mut dyn FnMut(&str, &str, bool) -> Result<bool, String>,
) -> Result<bool, String> {
    let left = condition.get("leftValue").cloned().unwrap_or(Value::Null);
    let right = condition.get("rightValue").cloned().unwrap_or(Value::Null);
    let ty = condition
        .pointer("/operator/type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let op = condition
        .pointer("/operator/operation")
        .and_then(Value::as_str)
        .unwrap_or("equals");
    match op {
        "exists" => return Ok(!left.is_null()),
        "notExists" => return Ok(left.is_null()),
        "empty" => return Ok(is_empty(&left)),
        "notEmpty" => return Ok(!is_empty(&left)),
        _ => {}
    }
    let loose = opts.loose;
    match ty {
        "string" => {
            let l = as_string(&left, loose, "left")?.unwrap_or_default();
            let r = match &right {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let (l, r) = if opts.case_sensitive {
                (l, r)
            } else {
                (l.to_lowercase(), r.to_lowercase())
            };
            Ok(match op {
                "equals" => l == r,
                "notEquals" => l != r,
                "contains" => l.contains(&r),
                "notContains" => !l.contains(&r),
                "startsWith" => l.starts_with(&r),
                "notStartsWith" => !l.starts_with(&r),
                "endsWith" => l.ends_with(&r),
                "notEndsWith" => !l.ends_with(&r),
                "regex" => regex(&r, &l, !opts.case_sensitive)?,
                "notRegex" => !regex(&r, &l, !opts.case_sensitive)?,
                other => return Err(format!("unknown string operation '{other}'")),
            })
        }
        "number" => {
            let l = as_number(&left, loose, "left")?;
            let r = as_number(&right, true, "right")?;
            let (Some(l), Some(r)) = (l, r) else {
                return Ok(op == "notEquals" && l != r);
            };
            Ok(match op {
                "equals" => l == r,
                "notEquals" => l != r,
                "gt" => l > r,
                "lt" => l < r,
                "gte" => l >= r,
                "lte" => l <= r,
                other => return Err(format!("unknown number operation '{other}'")),
            })
        }
        "boolean" => {
            let l = as_bool(&left, loose, "left")?;
            Ok(match op {
                "true" => l == Some(true),
                "false" => l == Some(false),
                "equals" => l == as_bool(&right, true, "right")?,
                "notEquals" => l != as_bool(&right, true, "right")?,
                other => return Err(format!("unknown boolean operation '{other}'")),
            })
        }
        "dateTime" => {
            let l = as_date(&left, "left")?;
            let r = as_date(&right, "right")?;
            let (Some(l), Some(r)) = (l, r) else {
                return Ok(false);
            };
            Ok(match op {
                "equals" => l == r,
                "notEquals" => l != r,
                "after" => l > r,
                "before" => l < r,
                "afterOrEquals" => l >= r,
                "beforeOrEquals" => l <= r,
                other => return Err(format!("unknown date operation '{other}'")),
            })
        }
        "array" => {
            let arr = match &left {
                Value::Array(a) => a.clone(),
                Value::Null => Vec::new(),
                Value::String(s) if loose => {
                    serde_json::from_str(s).map_err(|_| wrong_type("left", &left, "an array"))?
                }
                _ => return Err(wrong_type("left", &left, "an array")),
            };
            let len = arr.len() as f64;
            let n = || as_number(&right, true, "right").map(|n| n.unwrap_or(0.0));
            Ok(match op {
                "contains" => arr.contains(&right),
                "notContains" => !arr.contains(&right),
                "lengthEquals" => len == n()?,
                "lengthNotEquals" => len != n()?,
                "lengthGt" => len > n()?,
                "lengthLt" => len < n()?,
                "lengthGte" => len >= n()?,
                "lengthLte" => len <= n()?,
                other => return Err(format!("unknown array operation '{other}'")),
            })
        }
        "object" => Err(format!("unknown object operation '{op}'")),
        other => Err(format!("unknown condition type '{other}'")),
    }
}

/// Evaluates a `conditions` block (already expression-evaluated) for one item.
pub fn conditions_pass(
    ctx: &mut NodeContext<'_>,
    conditions: &Value,
    params: &Value,
) -> Result<bool, String> {
    let opts = options(conditions, params);
    let list = conditions
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let any = conditions.get("combinator").and_then(Value::as_str) == Some("or");
    let mut regex = |pattern: &str, text: &str, ignore_case: bool| -> Result<bool, String> {
        ctx.sandbox()
            .call_helper(
                REGEX_TEST,
                &[json!(pattern), json!(text), json!(ignore_case)],
            )
            .map(|v| v == Value::Bool(true))
            .map_err(|e| format!("regular expression '{pattern}': {e}"))
    };
    if list.is_empty() {
        return Ok(true);
    }
    for (i, c) in list.iter().enumerate() {
        let pass =
            evaluate(c, &opts, &mut regex).map_err(|e| format!("condition {}: {e}", i + 1))?;
        if any && pass {
            return Ok(true);
        }
        if !any && !pass {
            return Ok(false);
        }
    }
    Ok(!any)
}

/// Routes each item by its conditions; `route` maps (item index, parameters) → output or None.
fn each_item(
    ctx: &mut NodeContext<'_>,
    outputs: usize,
    mut route: impl FnMut(&mut NodeContext<'_>, &Value) -> Result<Vec<usize>, String>,
) -> Result<NodeOutput, NodeError> {
    let items: Vec<Item> = ctx.items().to_vec();
    let mut out = NodeOutput::many(vec![Vec::new(); outputs]);
    for (i, item) in items.into_iter().enumerate() {
        let result = ctx
            .parameters(i)
            .and_then(|params| route(ctx, &params).map_err(|m| NodeError::new(m).at_item(i)));
        match result {
            Ok(targets) => {
                for t in targets {
                    if let Some(o) = out.outputs.get_mut(t) {
                        o.push(item.clone().paired(i));
                    }
                }
            }
            Err(e) => ctx.item_failed(&mut out, i, e)?,
        }
    }
    Ok(out)
}

fn description(type_name: &'static str, display_name: &'static str) -> NodeDescription {
    NodeDescription {
        type_name,
        display_name,
        trigger: false,
        raw_parameters: &[],
    }
}

/// If: output 0 "true", output 1 "false".
pub struct IfNode;

#[async_trait::async_trait]
impl Node for IfNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.if", "If")
    }
    fn outputs(&self, _node: &WorkflowNode) -> usize {
        2
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        each_item(ctx, 2, |ctx, params| {
            let conditions = params.get("conditions").cloned().unwrap_or(Value::Null);
            Ok(vec![if conditions_pass(ctx, &conditions, params)? {
                0
            } else {
                1
            }])
        })
    }
}

/// Filter: keeps items that pass.
pub struct FilterNode;

#[async_trait::async_trait]
impl Node for FilterNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.filter", "Filter")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        each_item(ctx, 1, |ctx, params| {
            let conditions = params.get("conditions").cloned().unwrap_or(Value::Null);
            Ok(if conditions_pass(ctx, &conditions, params)? {
                vec![0]
            } else {
                vec![]
            })
        })
    }
}

/// Switch v3: `mode` rules (`rules.values[]{conditions}`, `options.fallbackOutput`,
/// `options.allMatchingOutputs`) or expression (`numberOutputs`, `output`).
pub struct SwitchNode;

fn switch_outputs(node: &WorkflowNode) -> usize {
    let p = &node.parameters;
    if p.get("mode").and_then(Value::as_str) == Some("expression") {
        return p.get("numberOutputs").and_then(Value::as_u64).unwrap_or(4) as usize;
    }
    let rules = p
        .pointer("/rules/values")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let extra = p.pointer("/options/fallbackOutput").and_then(Value::as_str) == Some("extra");
    rules + usize::from(extra)
}

#[async_trait::async_trait]
impl Node for SwitchNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.switch", "Switch")
    }
    fn outputs(&self, node: &WorkflowNode) -> usize {
        switch_outputs(node).max(1)
    }
    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        if switch_outputs(node) == 0 {
            return Err("the Switch has no routing rules: add at least one".into());
        }
        Ok(())
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let outputs = switch_outputs(ctx.node).max(1);
        each_item(ctx, outputs, |ctx, params| {
            if params.get("mode").and_then(Value::as_str) == Some("expression") {
                let o = params
                    .get("output")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| {
                        "the output expression must give a number (the output index)".to_string()
                    })?;
                if o < 0.0 || o as usize >= outputs {
                    return Err(format!("output index {o} is outside 0..{}", outputs - 1));
                }
                return Ok(vec![o as usize]);
            }
            let rules = params
                .pointer("/rules/values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let all = params
                .pointer("/options/allMatchingOutputs")
                .and_then(Value::as_bool)
                == Some(true);
            let mut targets = Vec::new();
            for (i, rule) in rules.iter().enumerate() {
                let conditions = rule.get("conditions").cloned().unwrap_or(Value::Null);
                if conditions_pass(ctx, &conditions, params)
                    .map_err(|e| format!("rule {}: {e}", i + 1))?
                {
                    targets.push(i);
                    if !all {
                        break;
                    }
                }
            }
            if targets.is_empty() {
                match params.pointer("/options/fallbackOutput") {
                    Some(Value::String(s)) if s == "extra" => targets.push(rules.len()),
                    Some(Value::Number(n)) => targets.extend(n.as_u64().map(|n| n as usize)),
                    Some(Value::String(s)) => targets.extend(s.parse::<usize>().ok()),
                    _ => {}
                }
            }
            Ok(targets)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: Value, loose: bool) -> Result<bool, String> {
        let mut no_regex = |_: &str, _: &str, _: bool| Ok(false);
        evaluate(
            &c,
            &Options {
                case_sensitive: true,
                loose,
            },
            &mut no_regex,
        )
    }

    #[test]
    fn operators_follow_n8n() {
        let c = |l: Value, r: Value, ty: &str, op: &str| json!({"leftValue": l, "rightValue": r, "operator": {"type": ty, "operation": op}});
        assert_eq!(
            check(c(json!(5), json!(3), "number", "gt"), false),
            Ok(true)
        );
        assert_eq!(
            check(c(json!("abc"), json!("b"), "string", "contains"), false),
            Ok(true)
        );
        assert_eq!(
            check(c(json!(true), Value::Null, "boolean", "true"), false),
            Ok(true)
        );
        assert_eq!(
            check(c(json!([1, 2]), json!(2), "array", "lengthEquals"), false),
            Ok(true)
        );
        assert_eq!(
            check(
                c(
                    json!("2024-05-02"),
                    json!("2024-05-01T00:00:00Z"),
                    "dateTime",
                    "after"
                ),
                false
            ),
            Ok(true)
        );
        assert_eq!(
            check(c(Value::Null, Value::Null, "string", "exists"), false),
            Ok(false)
        );
    }

    #[test]
    fn strict_types_reject_strings_for_numbers_and_loose_converts() {
        let c = json!({"leftValue": "5", "rightValue": 3, "operator": {"type": "number", "operation": "gt"}});
        let err = check(c.clone(), false).expect_err("strict");
        assert!(
            err.contains("is a string but the condition expects a number"),
            "{err}"
        );
        assert_eq!(check(c, true), Ok(true));
    }
}
