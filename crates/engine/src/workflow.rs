//! The workflow model: a workflow in n8n's JSON shape (`name`, `nodes[]`, `connections` keyed by
//! node name, `settings`), plus structural validation.
//!
//! This module owns the data shape and the checks that do not need node implementations
//! (unique names, connections that point at existing nodes). It does not know node types:
//! checking that a type exists and that its parameters make sense is done by
//! [`crate::registry::NodeRegistry::validate`], and translating n8n's own type names is the job
//! of [`crate::import`].

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workflow definition. Serialises to (and deserialises from) the same JSON shape n8n exports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Host-assigned identifier (n8n exports it as a string); optional in files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub active: bool,
    pub nodes: Vec<WorkflowNode>,
    /// `source node name → connection type ("main") → output index → targets`.
    #[serde(default)]
    pub connections: BTreeMap<String, NodeConnections>,
    #[serde(default)]
    pub settings: WorkflowSettings,
    /// Anything else n8n exports (`pinData`, `meta`, `tags`, `versionId`…), kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The outgoing connections of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeConnections {
    /// Output index → targets. `null` entries in n8n exports become empty lists.
    #[serde(default, deserialize_with = "deserialize_outputs")]
    pub main: Vec<Vec<Connection>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn deserialize_outputs<'de, D>(d: D) -> Result<Vec<Vec<Connection>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Vec<Option<Vec<Connection>>> = Vec::deserialize(d)?;
    Ok(raw.into_iter().map(Option::unwrap_or_default).collect())
}

/// One edge: to input `index` of node `node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub node: String,
    #[serde(rename = "type", default = "main_type")]
    pub kind: String,
    #[serde(default)]
    pub index: usize,
}

fn main_type() -> String {
    "main".into()
}

/// What happens when a node fails (n8n's `onError`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// The execution fails.
    #[default]
    StopWorkflow,
    /// The error becomes an item `{ "error": message }` on the node's first output.
    ContinueRegularOutput,
    /// The error becomes an item on an extra, last output (the "error output").
    ContinueErrorOutput,
}

/// One node of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowNode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub node_type: String,
    #[serde(default = "one")]
    pub type_version: f64,
    #[serde(default)]
    pub position: [f64; 2],
    #[serde(default = "empty_object")]
    pub parameters: Value,
    /// Credential type → reference, e.g. `{"httpHeaderAuth": {"id": "7", "name": "My API"}}`.
    /// References only: the secrets stay with the host's [`crate::CredentialProvider`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub credentials: BTreeMap<String, CredentialRef>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub execute_once: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub always_output_data: bool,
    /// Legacy flag; `true` means the same as `onError: continueRegularOutput`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub continue_on_fail: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub retry_on_fail: bool,
    /// Attempts in total when `retryOnFail` (n8n's default 3, clamped to 2..=5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tries: Option<u32>,
    /// Milliseconds between attempts (n8n's default 1000, clamped to 0..=5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_between_tries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn one() -> f64 {
    1.0
}
fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn is_false(b: &bool) -> bool {
    !*b
}

impl WorkflowNode {
    /// A node with defaults, handy for building workflows in code.
    pub fn new(name: impl Into<String>, node_type: impl Into<String>, parameters: Value) -> Self {
        WorkflowNode {
            id: None,
            name: name.into(),
            node_type: node_type.into(),
            type_version: 1.0,
            position: [0.0, 0.0],
            parameters,
            credentials: BTreeMap::new(),
            disabled: false,
            execute_once: false,
            always_output_data: false,
            continue_on_fail: false,
            on_error: None,
            retry_on_fail: false,
            max_tries: None,
            wait_between_tries: None,
            notes: None,
            extra: BTreeMap::new(),
        }
    }

    /// The effective error behaviour, folding the legacy `continueOnFail` flag in.
    pub fn error_mode(&self) -> OnError {
        match self.on_error {
            Some(mode) => mode,
            None if self.continue_on_fail => OnError::ContinueRegularOutput,
            None => OnError::StopWorkflow,
        }
    }

    /// Attempts in total: 1 unless `retryOnFail`, then `maxTries` clamped like n8n does.
    pub fn attempts(&self) -> u32 {
        if self.retry_on_fail {
            self.max_tries.unwrap_or(3).clamp(2, 5)
        } else {
            1
        }
    }

    /// Wait between attempts, clamped like n8n does.
    pub fn retry_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.wait_between_tries.unwrap_or(1000).min(5000))
    }
}

/// A reference to a credential stored by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
}

/// Workflow settings (n8n's `settings`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSettings {
    /// Only `"v1"` ordering is implemented; older values are accepted and run as v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_order: Option<String>,
    /// Id of the workflow to run when this one fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_workflow: Option<String>,
    /// IANA time zone for schedules and `$now`-based date helpers, e.g. `Pacific/Auckland`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A structural problem in a workflow, phrased so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowProblem {
    #[error("the workflow has no nodes")]
    NoNodes,
    #[error("two nodes are named '{0}': node names must be unique, rename one of them")]
    DuplicateName(String),
    #[error("a node has an empty name: give every node a name")]
    EmptyName,
    #[error("connections start at node '{0}', but no node has that name")]
    UnknownSource(String),
    #[error("node '{from}' is connected to '{to}', but no node has that name")]
    UnknownTarget { from: String, to: String },
    #[error("node '{node}' has unknown type '{node_type}'{hint}")]
    UnknownType {
        node: String,
        node_type: String,
        hint: String,
    },
    #[error("node '{node}': {message}")]
    InvalidNode { node: String, message: String },
    #[error("time zone '{0}' in the workflow settings is not an IANA time zone name")]
    UnknownTimezone(String),
}

/// All problems found in a workflow; displays one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow '{workflow}' is not valid:\n- {}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n- "))]
pub struct ValidationError {
    pub workflow: String,
    pub problems: Vec<WorkflowProblem>,
}

impl Workflow {
    /// Parses a workflow from JSON text (our own format or an n8n export that was already imported).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn node(&self, name: &str) -> Option<&WorkflowNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Targets connected to `output` of `node`, in the order n8n v1 runs them: top to bottom,
    /// then left to right on the canvas.
    pub fn targets(&self, node: &str, output: usize) -> Vec<&Connection> {
        let Some(list) = self.connections.get(node).and_then(|c| c.main.get(output)) else {
            return Vec::new();
        };
        let mut targets: Vec<&Connection> = list.iter().collect();
        targets.sort_by(|a, b| {
            let pa = self.node(&a.node).map(|n| n.position).unwrap_or_default();
            let pb = self.node(&b.node).map(|n| n.position).unwrap_or_default();
            pa[1].total_cmp(&pb[1]).then(pa[0].total_cmp(&pb[0]))
        });
        targets
    }

    /// Names of nodes that feed `node`, with the input index they feed.
    pub fn parents(&self, node: &str) -> Vec<(&str, usize, usize)> {
        let mut parents = Vec::new();
        for (source, conns) in &self.connections {
            for (output, list) in conns.main.iter().enumerate() {
                for c in list {
                    if c.node == node {
                        parents.push((source.as_str(), output, c.index));
                    }
                }
            }
        }
        parents
    }

    /// Structural checks that need no node implementations.
    pub fn structural_problems(&self) -> Vec<WorkflowProblem> {
        let mut problems = Vec::new();
        if self.nodes.is_empty() {
            problems.push(WorkflowProblem::NoNodes);
        }
        let mut seen = HashSet::new();
        for node in &self.nodes {
            if node.name.trim().is_empty() {
                problems.push(WorkflowProblem::EmptyName);
            } else if !seen.insert(node.name.as_str()) {
                problems.push(WorkflowProblem::DuplicateName(node.name.clone()));
            }
        }
        let names: HashMap<&str, ()> = self.nodes.iter().map(|n| (n.name.as_str(), ())).collect();
        for (source, conns) in &self.connections {
            if !names.contains_key(source.as_str()) {
                problems.push(WorkflowProblem::UnknownSource(source.clone()));
            }
            for c in conns.main.iter().flatten() {
                if !names.contains_key(c.node.as_str()) {
                    problems.push(WorkflowProblem::UnknownTarget {
                        from: source.clone(),
                        to: c.node.clone(),
                    });
                }
            }
        }
        if let Some(tz) = &self.settings.timezone {
            if !tz.is_empty() && tz != "DEFAULT" && tz.parse::<chrono_tz::Tz>().is_err() {
                problems.push(WorkflowProblem::UnknownTimezone(tz.clone()));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn n8n_connections_with_null_outputs_parse() {
        let wf: Workflow = serde_json::from_value(json!({
            "name": "w",
            "nodes": [
                {"name": "A", "type": "ledgerflow.noOp", "parameters": {}},
                {"name": "B", "type": "ledgerflow.noOp", "parameters": {}}
            ],
            "connections": {"A": {"main": [null, [{"node": "B", "type": "main", "index": 0}]]}}
        }))
        .expect("parses");
        assert!(wf.targets("A", 0).is_empty());
        assert_eq!(wf.targets("A", 1)[0].node, "B");
        assert!(wf.structural_problems().is_empty());
    }

    #[test]
    fn structural_problems_name_the_nodes() {
        let wf: Workflow = serde_json::from_value(json!({
            "name": "w",
            "nodes": [
                {"name": "A", "type": "x", "parameters": {}},
                {"name": "A", "type": "x", "parameters": {}}
            ],
            "connections": {"A": {"main": [[{"node": "Missing", "type": "main", "index": 0}]]}},
            "settings": {"timezone": "Mars/Olympus"}
        }))
        .expect("parses");
        let problems = wf.structural_problems();
        assert!(problems.contains(&WorkflowProblem::DuplicateName("A".into())));
        assert!(problems.contains(&WorkflowProblem::UnknownTarget {
            from: "A".into(),
            to: "Missing".into()
        }));
        assert!(problems.contains(&WorkflowProblem::UnknownTimezone("Mars/Olympus".into())));
    }

    #[test]
    fn continue_on_fail_folds_into_error_mode_and_retries_clamp() {
        let mut n = WorkflowNode::new("A", "x", json!({}));
        assert_eq!(n.error_mode(), OnError::StopWorkflow);
        n.continue_on_fail = true;
        assert_eq!(n.error_mode(), OnError::ContinueRegularOutput);
        n.on_error = Some(OnError::ContinueErrorOutput);
        assert_eq!(n.error_mode(), OnError::ContinueErrorOutput);
        assert_eq!(n.attempts(), 1);
        n.retry_on_fail = true;
        n.max_tries = Some(10);
        assert_eq!(n.attempts(), 5);
    }
}
