//! Importing workflows exported from n8n.
//!
//! Owns the table from n8n's `n8n-nodes-base.*` type names to ours (`ledgerflow.*`) and the
//! rewriting of older n8n parameter shapes into the shape our nodes read (the newest n8n
//! version of each node). Everything that cannot be mapped is collected, so the person importing
//! gets ONE error listing every unsupported node by name and type. It does not check parameters
//! deeply: that is each node's `validate`, run by [`crate::registry::NodeRegistry::validate`].

use serde_json::{json, Map, Value};

use crate::workflow::Workflow;

/// n8n type name → our type name. Nodes are data here, so adding a mapping is adding a row.
pub const N8N_NODE_TYPES: &[(&str, &str)] = &[
    ("n8n-nodes-base.manualTrigger", "ledgerflow.manualTrigger"),
    (
        "n8n-nodes-base.scheduleTrigger",
        "ledgerflow.scheduleTrigger",
    ),
    ("n8n-nodes-base.webhook", "ledgerflow.webhook"),
    (
        "n8n-nodes-base.respondToWebhook",
        "ledgerflow.respondToWebhook",
    ),
    ("n8n-nodes-base.errorTrigger", "ledgerflow.errorTrigger"),
    (
        "n8n-nodes-base.executeWorkflowTrigger",
        "ledgerflow.executeWorkflowTrigger",
    ),
    ("n8n-nodes-base.set", "ledgerflow.set"),
    ("n8n-nodes-base.if", "ledgerflow.if"),
    ("n8n-nodes-base.switch", "ledgerflow.switch"),
    ("n8n-nodes-base.merge", "ledgerflow.merge"),
    ("n8n-nodes-base.filter", "ledgerflow.filter"),
    ("n8n-nodes-base.splitOut", "ledgerflow.splitOut"),
    ("n8n-nodes-base.aggregate", "ledgerflow.aggregate"),
    ("n8n-nodes-base.limit", "ledgerflow.limit"),
    (
        "n8n-nodes-base.removeDuplicates",
        "ledgerflow.removeDuplicates",
    ),
    ("n8n-nodes-base.sort", "ledgerflow.sort"),
    ("n8n-nodes-base.code", "ledgerflow.code"),
    ("n8n-nodes-base.httpRequest", "ledgerflow.httpRequest"),
    ("n8n-nodes-base.noOp", "ledgerflow.noOp"),
    ("n8n-nodes-base.wait", "ledgerflow.wait"),
    (
        "n8n-nodes-base.executeWorkflow",
        "ledgerflow.executeWorkflow",
    ),
];

/// Canvas-only n8n nodes that carry no behaviour and are dropped on import.
const DROPPED_TYPES: &[&str] = &["n8n-nodes-base.stickyNote"];

/// A node the importer cannot bring over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedNode {
    pub name: String,
    pub node_type: String,
    pub reason: String,
}

/// Why an n8n export could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not an n8n workflow export: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the file is not an n8n workflow export: {0}")]
    Shape(String),
    #[error(
        "{} node(s) cannot be imported: {}",
        .0.len(),
        .0.iter().map(|n| format!("'{}' ({}): {}", n.name, n.node_type, n.reason)).collect::<Vec<_>>().join("; ")
    )]
    Unsupported(Vec<UnsupportedNode>),
}

/// Maps an n8n type name to ours, if supported.
pub fn map_node_type(n8n_type: &str) -> Option<&'static str> {
    N8N_NODE_TYPES
        .iter()
        .find(|(n8n, _)| *n8n == n8n_type)
        .map(|(_, ours)| *ours)
}

/// Imports an n8n export from JSON text.
pub fn import_n8n_str(text: &str) -> Result<Workflow, ImportError> {
    import_n8n(serde_json::from_str(text)?)
}

/// Imports an n8n export (a single workflow object; an array of one workflow is accepted too).
pub fn import_n8n(export: Value) -> Result<Workflow, ImportError> {
    let mut export = match export {
        Value::Array(mut list) if list.len() == 1 => list.remove(0),
        other => other,
    };
    let obj = export
        .as_object_mut()
        .ok_or_else(|| ImportError::Shape("expected a JSON object with 'nodes'".into()))?;
    if !obj.contains_key("name") {
        obj.insert("name".into(), json!("Imported workflow"));
    }
    let nodes = obj
        .get_mut("nodes")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| ImportError::Shape("'nodes' is missing or not a list".into()))?;
    let mut unsupported = Vec::new();
    let mut kept = Vec::with_capacity(nodes.len());
    for mut node in std::mem::take(nodes) {
        let name = node
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        let n8n_type = node
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("(no type)")
            .to_string();
        if DROPPED_TYPES.contains(&n8n_type.as_str()) {
            continue;
        }
        let ours = if n8n_type.starts_with("ledgerflow.") {
            Some(n8n_type.clone())
        } else {
            map_node_type(&n8n_type).map(str::to_string)
        };
        let Some(ours) = ours else {
            unsupported.push(UnsupportedNode {
                name,
                node_type: n8n_type,
                reason: "no Ledgerflow node of this type".into(),
            });
            continue;
        };
        let version = node
            .get("typeVersion")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        let params = node
            .get_mut("parameters")
            .map(Value::take)
            .unwrap_or_else(|| json!({}));
        match convert_parameters(&ours, version, params) {
            Ok((params, version)) => {
                if let Some(o) = node.as_object_mut() {
                    o.insert("type".into(), json!(ours));
                    o.insert("parameters".into(), params);
                    o.insert("typeVersion".into(), json!(version));
                }
                kept.push(node);
            }
            Err(reason) => unsupported.push(UnsupportedNode {
                name,
                node_type: n8n_type,
                reason,
            }),
        }
    }
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }
    *nodes = kept;
    // Connections may mention dropped sticky notes: they never have any, so nothing to prune.
    serde_json::from_value(export).map_err(|e| ImportError::Shape(e.to_string()))
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Rewrites older n8n parameter shapes into the newest, which our nodes read.
/// Returns the parameters and the type version they now correspond to.
fn convert_parameters(ours: &str, version: f64, params: Value) -> Result<(Value, f64), String> {
    match ours {
        "ledgerflow.set" if version < 3.0 => Ok((set_v2_to_v3(&params), 3.4)),
        "ledgerflow.set" if version < 3.3 => Ok((set_v30_to_v34(&params), 3.4)),
        "ledgerflow.if" if version < 2.0 => Ok((if_v1_to_v2(&params)?, 2.2)),
        "ledgerflow.filter" if version < 2.0 => Ok((if_v1_to_v2(&params)?, 2.2)),
        "ledgerflow.switch" if version < 3.0 => Err(format!(
            "Switch version {version} is not supported; replace it with a current Switch node (version 3)"
        )),
        "ledgerflow.merge" if version < 3.0 => Ok((merge_v2_to_v3(&params)?, 3.0)),
        "ledgerflow.httpRequest" if version < 3.0 => Err(format!(
            "HTTP Request version {version} is not supported; replace it with a current HTTP Request node (version 4)"
        )),
        "ledgerflow.code" => {
            let lang = params.get("language").and_then(Value::as_str).unwrap_or("javaScript");
            if lang != "javaScript" {
                return Err(format!("Code in language '{lang}' is not supported, only JavaScript"));
            }
            Ok((params, version))
        }
        "ledgerflow.wait" => {
            let resume = params.get("resume").and_then(Value::as_str).unwrap_or("timeInterval");
            if resume != "timeInterval" && resume != "specificTime" {
                return Err(format!(
                    "Wait with resume '{resume}' is not supported, only a time interval or a specific time"
                ));
            }
            Ok((params, version))
        }
        "ledgerflow.removeDuplicates" => {
            let op = params
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("removeDuplicateInputItems");
            if op != "removeDuplicateInputItems" {
                return Err(format!(
                    "Remove Duplicates operation '{op}' (across executions) is not supported"
                ));
            }
            Ok((params, version))
        }
        "ledgerflow.executeWorkflow" => {
            let mut p = obj(&params);
            let source = p.get("source").and_then(Value::as_str).unwrap_or("database");
            if source != "database" {
                return Err(format!(
                    "Execute Workflow with source '{source}' is not supported, only a stored workflow"
                ));
            }
            // n8n ≥1.1 stores the id as a resource locator {__rl, value, mode}.
            if let Some(rl) = p.get("workflowId").and_then(|v| v.get("value")).cloned() {
                p.insert("workflowId".into(), rl);
            }
            Ok((Value::Object(p), version))
        }
        _ => Ok((params, version)),
    }
}

/// Set v1/v2: `values: {string:[{name,value}], number:[…], boolean:[…]}`, `keepOnlySet`.
fn set_v2_to_v3(p: &Value) -> Value {
    let mut assignments = Vec::new();
    for (kind, ty) in [
        ("string", "string"),
        ("number", "number"),
        ("boolean", "boolean"),
    ] {
        for entry in p
            .pointer(&format!("/values/{kind}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assignments.push(json!({
                "name": entry.get("name").cloned().unwrap_or(json!("propertyName")),
                "value": entry.get("value").cloned().unwrap_or(Value::Null),
                "type": ty,
            }));
        }
    }
    let keep_only = p
        .get("keepOnlySet")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut options = obj(p.get("options").unwrap_or(&Value::Null));
    options.entry("dotNotation").or_insert(json!(true));
    json!({
        "mode": "manual",
        "assignments": {"assignments": assignments},
        "includeOtherFields": !keep_only,
        "options": options,
    })
}

/// Set v3.0–3.2: `fields.values[]{name,type:"stringValue",stringValue}` and `include: none|all|…`.
fn set_v30_to_v34(p: &Value) -> Value {
    let mut out = obj(p);
    let assignments: Vec<Value> = p
        .pointer("/fields/values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let ty = f
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("stringValue");
            let value = f.get(ty).cloned().unwrap_or(Value::Null);
            json!({
                "name": f.get("name").cloned().unwrap_or(json!("")),
                "value": value,
                "type": ty.trim_end_matches("Value"),
            })
        })
        .collect();
    out.remove("fields");
    out.insert("assignments".into(), json!({ "assignments": assignments }));
    let include = p.get("include").and_then(Value::as_str).unwrap_or("none");
    out.insert("includeOtherFields".into(), json!(include != "none"));
    if include == "none" {
        out.remove("include");
    }
    Value::Object(out)
}

/// If/Filter v1: `conditions: {string|number|boolean|dateTime: [{value1, operation, value2}]}`,
/// `combineOperation: all|any`.
fn if_v1_to_v2(p: &Value) -> Result<Value, String> {
    let mut conditions = Vec::new();
    for kind in ["string", "number", "boolean", "dateTime"] {
        for c in p
            .pointer(&format!("/conditions/{kind}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let op = c
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("equal");
            let (ty, operation, single) = match (kind, op) {
                (_, "equal") => (kind, "equals", false),
                (_, "notEqual") => (kind, "notEquals", false),
                ("number", "larger") => ("number", "gt", false),
                ("number", "largerEqual") => ("number", "gte", false),
                ("number", "smaller") => ("number", "lt", false),
                ("number", "smallerEqual") => ("number", "lte", false),
                ("dateTime", "after") => ("dateTime", "after", false),
                ("dateTime", "before") => ("dateTime", "before", false),
                (
                    "string",
                    o @ ("contains" | "notContains" | "startsWith" | "notStartsWith" | "endsWith"
                    | "notEndsWith" | "regex" | "notRegex"),
                ) => ("string", o, false),
                (_, "isEmpty") => (kind, "empty", true),
                (_, "isNotEmpty") => (kind, "notEmpty", true),
                (k, o) => {
                    return Err(format!(
                        "If v1 condition '{o}' on {k} values is not supported"
                    ))
                }
            };
            let ty = if ty == "dateTime" { "dateTime" } else { ty };
            let mut operator = json!({"type": ty, "operation": operation});
            if single {
                operator["singleValue"] = json!(true);
            }
            conditions.push(json!({
                "leftValue": c.get("value1").cloned().unwrap_or(Value::Null),
                "rightValue": c.get("value2").cloned().unwrap_or(Value::Null),
                "operator": operator,
            }));
        }
    }
    let combinator = match p.get("combineOperation").and_then(Value::as_str) {
        Some("any") => "or",
        _ => "and",
    };
    Ok(json!({
        "conditions": {
            "options": {"caseSensitive": true, "typeValidation": "loose"},
            "conditions": conditions,
            "combinator": combinator,
        },
        "options": {},
    }))
}

/// Merge v1/v2 modes → v3 (`append`, `combine` + `combineBy`, `chooseBranch`).
fn merge_v2_to_v3(p: &Value) -> Result<Value, String> {
    let mode = p.get("mode").and_then(Value::as_str).unwrap_or("append");
    Ok(match mode {
        "append" => json!({"mode": "append"}),
        "mergeByIndex" | "mergeByPosition" => json!({
            "mode": "combine", "combineBy": "combineByPosition",
            "options": {"includeUnpaired": p.get("join").and_then(Value::as_str) == Some("outer")},
        }),
        "mergeByKey" | "mergeByFields" => {
            let (f1, f2) = match p.pointer("/mergeByFields/values/0") {
                Some(v) => (v.get("field1").cloned(), v.get("field2").cloned()),
                None => (
                    p.get("propertyName1").cloned(),
                    p.get("propertyName2").cloned(),
                ),
            };
            let join = match p.get("joinMode").and_then(Value::as_str) {
                Some("keepNonMatches") => "keepNonMatches",
                Some("keepEverything") => "keepEverything",
                Some("enrichInput1") | Some("left") => "enrichInput1",
                Some("enrichInput2") => "enrichInput2",
                _ => "keepMatches",
            };
            json!({
                "mode": "combine", "combineBy": "combineByFields",
                "advanced": true,
                "mergeByFields": {"values": [{"field1": f1, "field2": f2}]},
                "joinMode": join,
            })
        }
        "multiplex" => json!({"mode": "combine", "combineBy": "combineAll"}),
        "passThrough" => {
            let output = p.get("output").and_then(Value::as_str).unwrap_or("input1");
            json!({"mode": "chooseBranch", "output": if output == "input2" { "input2" } else { "input1" }})
        }
        "wait" => {
            json!({"mode": "chooseBranch", "chooseBranchMode": "waitForAll", "output": "empty"})
        }
        other => return Err(format!("Merge mode '{other}' is not supported")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_nodes_are_all_named_in_one_error() {
        let err = import_n8n(json!({
            "name": "w",
            "nodes": [
                {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "parameters": {}},
                {"name": "Slack it", "type": "n8n-nodes-base.slack", "typeVersion": 2, "parameters": {}},
                {"name": "Py", "type": "n8n-nodes-base.code", "typeVersion": 2, "parameters": {"language": "python"}}
            ],
            "connections": {}
        }))
        .expect_err("must reject");
        let msg = err.to_string();
        assert!(msg.contains("'Slack it' (n8n-nodes-base.slack)"), "{msg}");
        assert!(msg.contains("'Py' (n8n-nodes-base.code)"), "{msg}");
        assert!(msg.starts_with("2 node(s)"), "{msg}");
    }

    #[test]
    fn set_v2_values_become_assignments() {
        let p = set_v2_to_v3(&json!({
            "keepOnlySet": true,
            "values": {"string": [{"name": "a", "value": "x"}], "number": [{"name": "n", "value": 2}]}
        }));
        assert_eq!(p["includeOtherFields"], json!(false));
        assert_eq!(
            p["assignments"]["assignments"][1],
            json!({"name": "n", "value": 2, "type": "number"})
        );
    }

    #[test]
    fn if_v1_conditions_become_v2_operators() {
        let p = if_v1_to_v2(&json!({
            "conditions": {"number": [{"value1": "={{$json.a}}", "operation": "larger", "value2": 3}]},
            "combineOperation": "any"
        }))
        .expect("maps");
        assert_eq!(p["conditions"]["combinator"], json!("or"));
        assert_eq!(
            p["conditions"]["conditions"][0]["operator"],
            json!({"type": "number", "operation": "gt"})
        );
    }
}
