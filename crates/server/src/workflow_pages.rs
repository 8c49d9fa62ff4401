//! Workflow and execution pages: the workflow list with import, a workflow's own page (its graph
//! drawn as inline SVG, the JSON editor, Run, Activate/Deactivate, recent executions, Delete),
//! the execution list with filters, and an execution's page with every node's input and output.
//!
//! Pages call the workflow runtime ([`crate::runtime`]) for everything that changes state, so
//! the checks a page shows are the same ones the API applies. This module draws; it does not
//! parse workflow JSON itself, run anything, or decide what a valid workflow is.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ledgerflow_engine::{NodeRegistry, OnError, Workflow, WorkflowNode};
use ledgerflow_store::workflows::status;
use ledgerflow_store::{ExecutionFilter, ExecutionRecord, WorkflowRecord};
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::html::{alert, esc, page, when};
use crate::runtime;
use crate::AppState;

type FormData = Form<HashMap<String, String>>;

/// Executions listed on a workflow's page.
const RECENT_EXECUTIONS: i64 = 20;
/// Executions listed on the executions page.
const LISTED_EXECUTIONS: i64 = 100;

fn user_of(p: &Principal) -> Option<(&str, &str)> {
    Some((p.user.email.as_str(), p.csrf.as_deref().unwrap_or("")))
}

fn csrf_input(p: &Principal) -> String {
    format!(
        r#"<input type="hidden" name="_csrf" value="{}">"#,
        esc(p.csrf.as_deref().unwrap_or(""))
    )
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or("")
}

/// Styles used only by these pages (the shared layout lives in [`crate::html`]).
const PAGE_CSS: &str = r#"<style>
.badge.active,.badge.succeeded{background:#ecfdf3;color:var(--ok)}
.badge.inactive,.badge.cancelled{background:#f2f4f7;color:var(--muted)}
.badge.failed,.badge.crashed{background:#fef3f2;color:var(--bad)}
.badge.running,.badge.queued{background:#eff8ff;color:#175cd3}
.badge.running:before,.badge.queued:before{animation:lf-pulse 1s infinite alternate}
@keyframes lf-pulse{from{opacity:1}to{opacity:.25}}
.toggle{display:inline-flex;align-items:center;gap:8px;border:1px solid #cfd4dc;background:#fff;border-radius:99px;padding:4px 12px 4px 5px;font:inherit;font-size:13px;font-weight:600;color:var(--ink);cursor:pointer}
.toggle i{display:inline-block;width:30px;height:18px;border-radius:99px;background:#d0d5dd;position:relative}
.toggle i:after{content:"";position:absolute;top:2px;left:2px;width:14px;height:14px;border-radius:50%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.2)}
.toggle.on i{background:var(--ok)}.toggle.on i:after{left:14px}
form.inline{display:inline}
.tags{display:flex;flex-wrap:wrap;gap:4px}
.graph{overflow-x:auto;padding:4px 0}.graph svg{display:block;margin:0 auto}
textarea.json{min-height:320px;tab-size:2}
.json-error{margin-top:10px}
.alert ul{margin:6px 0 0;padding-left:20px}
.filters{display:flex;gap:12px;align-items:end;margin-bottom:16px}.filters label{margin:0 0 4px}.filters select{width:auto;min-width:180px}
td.num,th.num{text-align:right;white-space:nowrap}
details.node{border:1px solid var(--line);border-radius:8px;margin:0 0 10px;background:#fff}
details.node>summary{cursor:pointer;padding:10px 14px;display:flex;gap:10px;align-items:center;flex-wrap:wrap;list-style:none}
details.node>summary::-webkit-details-marker{display:none}
details.node>summary:before{content:"▸";color:var(--muted)}details.node[open]>summary:before{content:"▾"}
details.node.error{border-color:#fecdca}
.node-body{padding:0 14px 14px}
.io{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px}
.io h3{font-size:14px;margin:8px 0 6px}
pre.item{background:#f9fafb;border:1px solid var(--line);border-radius:6px;padding:8px 10px;margin:0 0 8px;font-size:12px;line-height:1.45;overflow:auto;max-height:360px;white-space:pre-wrap;word-break:break-word}
.muted{color:var(--muted)}
dl.kv{margin:0}.ok-mark{color:var(--ok);font-weight:700}.bad-mark{color:var(--bad);font-weight:700}
</style>"#;

/// Checks the JSON in a form's textarea before it is sent, so a typo is caught without a round
/// trip; the server checks again (and checks everything else).
const JSON_CHECK_SCRIPT: &str = r#"<script>
document.querySelectorAll('form[data-json]').forEach(function (form) {
  form.addEventListener('submit', function (e) {
    var text = form.querySelector('textarea'), out = form.querySelector('.json-error');
    try { JSON.parse(text.value); out.hidden = true; }
    catch (err) {
      e.preventDefault();
      out.textContent = 'This is not valid JSON (' + err.message + '). Fix it, then try again.';
      out.hidden = false; text.focus();
    }
  });
});
document.querySelectorAll('[data-example]').forEach(function (b) {
  b.addEventListener('click', function () {
    var t = document.getElementById(b.dataset.target); t.value = b.dataset.example; t.focus();
  });
});
</script>"#;

/// A workflow to start from: Manual Trigger → Set.
const EXAMPLE_WORKFLOW: &str = r#"{
  "name": "Hello Ledgerflow",
  "nodes": [
    {"name": "When clicking Run", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "position": [0, 0], "parameters": {}},
    {"name": "Set greeting", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [240, 0],
     "parameters": {"assignments": {"assignments": [{"name": "greeting", "value": "Hello from Ledgerflow", "type": "string"}]}}}
  ],
  "connections": {"When clicking Run": {"main": [[{"node": "Set greeting", "type": "main", "index": 0}]]}}
}"#;

/// An error message as HTML: the engine's multi-problem messages become lists.
fn error_box(message: &str) -> String {
    if message.is_empty() {
        return String::new();
    }
    // "workflow 'X' is not valid:\n- a\n- b"
    if let Some((head, rest)) = message.split_once("\n- ") {
        let items: String = rest
            .split("\n- ")
            .map(|p| format!("<li>{}</li>", esc(p)))
            .collect();
        return format!(
            r#"<div class="alert error" role="alert"><strong>{}</strong><ul>{items}</ul></div>"#,
            esc(head)
        );
    }
    // "2 node(s) cannot be imported: 'A' (type): reason; 'B' (type): reason"
    if let Some((head, rest)) = message.split_once("cannot be imported: ") {
        let items: String = rest
            .split("; '")
            .enumerate()
            .map(|(i, p)| {
                let p = if i == 0 {
                    p.to_string()
                } else {
                    format!("'{p}")
                };
                format!("<li>{}</li>", esc(&p))
            })
            .collect();
        return format!(
            r#"<div class="alert error" role="alert"><strong>{}cannot be imported:</strong><ul>{items}</ul></div>"#,
            esc(head)
        );
    }
    alert("error", message)
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: node types, status badges, durations
// ---------------------------------------------------------------------------------------------

/// The core node types, for display names and port counts. Integration nodes (Xero) are not
/// in it; they are drawn with one input and one output and a name derived from their type.
fn core_nodes() -> &'static NodeRegistry {
    static REGISTRY: OnceLock<NodeRegistry> = OnceLock::new();
    REGISTRY.get_or_init(NodeRegistry::with_core_nodes)
}

/// A short, human name for a node type: `ledgerflow.httpRequest` → "HTTP Request".
pub fn type_label(node_type: &str) -> String {
    if let Some(n) = core_nodes().get(node_type) {
        return match n.description().display_name {
            "Edit Fields (Set)" => "Set".to_string(),
            "No Operation, do nothing" => "No Op".to_string(),
            other => other.to_string(),
        };
    }
    // Integration nodes: their type name in words, `ledgerflow.xeroPollTrigger` → "Xero Poll
    // Trigger".
    let short = node_type.rsplit('.').next().unwrap_or(node_type);
    let mut words = String::new();
    for (i, c) in short.chars().enumerate() {
        if i == 0 {
            words.extend(c.to_uppercase());
        } else {
            if c.is_uppercase() {
                words.push(' ');
            }
            words.push(c);
        }
    }
    if words.is_empty() {
        node_type.to_string()
    } else {
        words
    }
}

fn is_trigger(node: &WorkflowNode) -> bool {
    match core_nodes().get(&node.node_type) {
        Some(n) => n.description().trigger,
        // Integration triggers follow n8n's naming: `…Trigger`.
        None => node.node_type.ends_with("Trigger"),
    }
}

/// How a workflow can start, as tag labels: "Manual", "Schedule", "Webhook", …
fn trigger_kinds(workflow: &Workflow) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for node in workflow
        .nodes
        .iter()
        .filter(|n| is_trigger(n) && !n.disabled)
    {
        let kind = match node.node_type.as_str() {
            "ledgerflow.executeWorkflowTrigger" => "Called by a workflow".to_string(),
            "ledgerflow.errorTrigger" => "Error workflow".to_string(),
            other => type_label(other).trim_end_matches(" Trigger").to_string(),
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn status_label(s: &str) -> &str {
    match s {
        status::QUEUED => "Queued",
        status::RUNNING => "Running",
        status::SUCCEEDED => "Succeeded",
        status::FAILED => "Failed",
        status::CANCELLED => "Cancelled",
        status::CRASHED => "Crashed",
        other => other,
    }
}

const STATUSES: &[&str] = &[
    status::QUEUED,
    status::RUNNING,
    status::SUCCEEDED,
    status::FAILED,
    status::CANCELLED,
    status::CRASHED,
];

/// A coloured badge for an execution status.
pub fn status_badge(s: &str) -> String {
    format!(
        r#"<span class="badge {cls}" data-status="{cls}">{label}</span>"#,
        cls = esc(s),
        label = esc(status_label(s)),
    )
}

fn active_badge(active: bool) -> &'static str {
    if active {
        r#"<span class="badge active">Active</span>"#
    } else {
        r#"<span class="badge inactive">Inactive</span>"#
    }
}

fn is_unfinished(e: &ExecutionRecord) -> bool {
    e.status == status::QUEUED || e.status == status::RUNNING
}

/// A duration for people: "85 ms", "2.4 s", "3 min 5 s", "2 h 10 min".
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

/// How long an execution took, or has been running so far.
fn execution_duration(e: &ExecutionRecord) -> String {
    match (e.started_at, e.finished_at) {
        (Some(s), Some(f)) => format_duration(f - s),
        (Some(s), None) => format!("{} so far", format_duration(ledgerflow_store::now_ms() - s)),
        _ => "—".to_string(),
    }
}

/// A date-time to the second, for executions.
fn when_exact(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn toggle_form(p: &Principal, w: &WorkflowRecord, from: &str, id_attr: &str) -> String {
    let (action, label, title) = if w.active {
        (
            "deactivate",
            "Deactivate",
            "Stop its triggers (webhooks, schedules) from starting it",
        )
    } else {
        (
            "activate",
            "Activate",
            "Let its triggers (webhooks, schedules) start it",
        )
    };
    format!(
        r#"<form class="inline" method="post" action="/workflows/{id}/{action}">{csrf}<input type="hidden" name="from" value="{from}"><button class="toggle{on}" type="submit"{id_attr} title="{title}"><i></i>{label}</button></form>"#,
        id = esc(&w.id),
        csrf = csrf_input(p),
        on = if w.active { " on" } else { "" },
        id_attr = if id_attr.is_empty() {
            String::new()
        } else {
            format!(r#" id="{id_attr}""#)
        },
    )
}

fn executions_table(
    list: &[ExecutionRecord],
    names: &HashMap<String, String>,
    show_workflow: bool,
) -> String {
    let rows: String = list
        .iter()
        .map(|e| {
            let workflow = if show_workflow {
                let name = names
                    .get(&e.workflow_id)
                    .map(|n| {
                        format!(
                            r#"<a href="/workflows/{}">{}</a>"#,
                            esc(&e.workflow_id),
                            esc(n)
                        )
                    })
                    .unwrap_or_else(|| r#"<span class="muted">(deleted)</span>"#.to_string());
                format!("<td>{name}</td>")
            } else {
                String::new()
            };
            format!(
                r#"<tr class="execution" data-id="{id}"><td>{badge}</td>{workflow}<td><span class="tag">{mode}</span></td><td>{started}</td><td class="num">{duration}</td><td class="num"><a href="/executions/{id}">#{short}</a></td></tr>"#,
                id = esc(&e.id),
                badge = status_badge(&e.status),
                mode = esc(&e.mode),
                started = e
                    .started_at
                    .map(when_exact)
                    .unwrap_or_else(|| format!("queued {}", when_exact(e.created_at))),
                duration = execution_duration(e),
                short = esc(short_id(&e.id)),
            )
        })
        .collect();
    format!(
        r#"<table class="executions"><thead><tr><th>Status</th>{wf}<th>Mode</th><th>Started</th><th class="num">Duration</th><th class="num">Execution</th></tr></thead><tbody>{rows}</tbody></table>"#,
        wf = if show_workflow {
            "<th>Workflow</th>"
        } else {
            ""
        },
    )
}

// ---------------------------------------------------------------------------------------------
// GET /workflows, POST /workflows (import)
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize, Default)]
pub struct ListNotice {
    #[serde(default)]
    deleted: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListNotice>,
) -> Result<Html<String>, ApiError> {
    let notice = if q.deleted.is_some() {
        alert("ok", "Workflow deleted.")
    } else {
        String::new()
    };
    list_page(&state, &p, &notice, "", "").await
}

/// Imports a workflow pasted into the list page's form.
pub async fn import(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): FormData,
) -> Result<Response, ApiError> {
    let text = field(&form, "json");
    if text.trim().is_empty() {
        let html = list_page(
            &state,
            &p,
            "",
            "Paste the workflow's JSON into the box first (an n8n export or a Ledgerflow workflow).",
            text,
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
    }
    match runtime::create_workflow(&state, text).await {
        Ok(record) => {
            tracing::info!(workflow = %record.id, "workflow imported from the web UI");
            Ok(Redirect::to(&format!("/workflows/{}?imported=1", record.id)).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let html = list_page(&state, &p, "", &e.message, text).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

async fn list_page(
    state: &AppState,
    p: &Principal,
    notice: &str,
    import_error: &str,
    import_text: &str,
) -> Result<Html<String>, ApiError> {
    let workflows = state.store.workflows().await?;
    let rows: String = workflows
        .iter()
        .map(|w| {
            let (tags, nodes) = match runtime::load(w) {
                Ok(def) => (
                    trigger_kinds(&def)
                        .iter()
                        .map(|k| format!(r#"<span class="tag">{}</span>"#, esc(k)))
                        .collect::<String>(),
                    format!(
                        "{} node{}",
                        def.nodes.len(),
                        if def.nodes.len() == 1 { "" } else { "s" }
                    ),
                ),
                Err(_) => (
                    r#"<span class="muted">unreadable</span>"#.to_string(),
                    String::new(),
                ),
            };
            let tags = if tags.is_empty() {
                r#"<span class="muted">none</span>"#.to_string()
            } else {
                tags
            };
            format!(
                r#"<tr class="workflow" data-id="{id}"><td><a href="/workflows/{id}"><strong>{name}</strong></a><div class="hint">{nodes}</div></td><td><div class="tags">{tags}</div></td><td>{badge}</td><td>{updated}</td><td style="text-align:right">{toggle}</td></tr>"#,
                id = esc(&w.id),
                name = esc(&w.name),
                badge = active_badge(w.active),
                updated = when(w.updated_at),
                toggle = toggle_form(p, w, "list", ""),
            )
        })
        .collect();
    let table = if workflows.is_empty() {
        r#"<div class="card empty" id="no-workflows"><p><strong>No workflows yet.</strong></p><p>A workflow is a chain of nodes: a trigger that starts it, then steps that read, change and send data.<br>Import one below: export it from n8n (workflow menu → Download) or write it as JSON, paste it in, and click Import.</p></div>"#.to_string()
    } else {
        format!(
            r#"<table id="workflows"><thead><tr><th>Name</th><th>Triggers</th><th>Status</th><th>Updated</th><th></th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let body = format!(
        r##"{PAGE_CSS}<div class="row"><div><h1>Workflows</h1><p class="sub" style="margin:0">Automations this server runs. Activate a workflow so its webhook or schedule can start it; run any workflow by hand from its page.</p></div>
<div class="actions" style="margin:0"><a class="btn secondary" href="/executions">Executions</a><a class="btn" href="#import-card">Import workflow</a></div></div>{notice}{table}
<section class="card" id="import-card" style="margin-top:20px"><h2>Import workflow</h2>
<p class="hint" style="margin-top:0">Paste an n8n workflow export (or the nodes copied from the n8n canvas), or a Ledgerflow workflow JSON. Nodes Ledgerflow cannot run are listed by name so you can replace them.</p>
{error}<form method="post" action="/workflows" data-json>{csrf}
<label for="import-json">Workflow JSON</label><textarea class="json" id="import-json" name="json" spellcheck="false" placeholder='{{"name": "…", "nodes": [ … ], "connections": {{ … }} }}'>{text}</textarea>
<div class="alert error json-error" role="alert" hidden></div>
<div class="actions"><button class="btn" type="submit" id="import">Import</button>
<button class="btn secondary" type="button" id="import-example" data-target="import-json" data-example="{example}">Fill in an example</button></div></form></section>{JSON_CHECK_SCRIPT}"##,
        error = error_box(import_error),
        csrf = csrf_input(p),
        text = esc(import_text),
        example = esc(EXAMPLE_WORKFLOW),
    );
    Ok(page("Workflows", "workflows", user_of(p), &body))
}

// ---------------------------------------------------------------------------------------------
// GET/POST /workflows/{id}, run, activate, deactivate, delete
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize, Default)]
pub struct ShowNotice {
    #[serde(default)]
    imported: Option<String>,
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    activated: Option<String>,
    #[serde(default)]
    deactivated: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ShowNotice>,
) -> Result<Html<String>, ApiError> {
    let record = state.store.workflow(&id).await?;
    let notice = if q.imported.is_some() {
        alert(
            "ok",
            "Workflow imported. Click Run to try it, or Activate it so its trigger can start it.",
        )
    } else if q.saved.is_some() {
        alert("ok", "Saved.")
    } else if q.activated.is_some() {
        alert("ok", "Workflow activated: its triggers now start it.")
    } else if q.deactivated.is_some() {
        alert(
            "ok",
            "Workflow deactivated: its triggers no longer start it.",
        )
    } else {
        String::new()
    };
    show_page(&state, &p, &record, &notice, None).await
}

/// Saves the JSON editor's text.
pub async fn save(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): FormData,
) -> Result<Response, ApiError> {
    let record = state.store.workflow(&id).await?;
    let text = field(&form, "json");
    match runtime::update_workflow(&state, &id, text).await {
        Ok(_) => Ok(Redirect::to(&format!("/workflows/{id}?saved=1")).into_response()),
        Err(e) if e.status.is_client_error() => {
            let html = show_page(
                &state,
                &p,
                &record,
                &error_box(&format!("Not saved: {}", e.message)),
                Some(text),
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Queues a manual run and shows its execution.
pub async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Redirect, ApiError> {
    let execution = runtime::run_manual(&state, &id).await?;
    Ok(Redirect::to(&format!("/executions/{}", execution.id)))
}

pub async fn activate(
    state: State<AppState>,
    p: Extension<Principal>,
    id: Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    set_active(state, p, id, form, true).await
}

pub async fn deactivate(
    state: State<AppState>,
    p: Extension<Principal>,
    id: Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    set_active(state, p, id, form, false).await
}

async fn set_active(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): FormData,
    active: bool,
) -> Result<Response, ApiError> {
    let from_list = field(&form, "from") == "list";
    match runtime::set_active(&state, &id, active).await {
        Ok(_) if from_list => Ok(Redirect::to("/workflows").into_response()),
        Ok(_) => Ok(Redirect::to(&format!(
            "/workflows/{id}?{}=1",
            if active { "activated" } else { "deactivated" }
        ))
        .into_response()),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let record = state.store.workflow(&id).await?;
            let message = format!(
                "Could not {} “{}”: {}",
                if active { "activate" } else { "deactivate" },
                record.name,
                e.message
            );
            let html = if from_list {
                list_page(&state, &p, &error_box(&message), "", "").await?
            } else {
                show_page(&state, &p, &record, &error_box(&message), None).await?
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Deletes a workflow and its executions, cancelling any that are still running.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Redirect, ApiError> {
    state.store.workflow(&id).await?;
    let unfinished = state
        .store
        .executions(&ExecutionFilter {
            workflow_id: Some(id.clone()),
            status: Some(status::RUNNING.to_string()),
            limit: Some(1000),
        })
        .await?;
    for e in unfinished {
        runtime::cancel(&state, &e.id).await?;
    }
    state.store.delete_workflow(&id).await?;
    tracing::info!(workflow = %id, "workflow deleted from the web UI");
    Ok(Redirect::to("/workflows?deleted=1"))
}

async fn show_page(
    state: &AppState,
    p: &Principal,
    record: &WorkflowRecord,
    notice: &str,
    editor_text: Option<&str>,
) -> Result<Html<String>, ApiError> {
    let csrf = csrf_input(p);
    let id = esc(&record.id);
    let (graph, tags) = match runtime::load(record) {
        Ok(w) => (
            graph_svg(&w),
            trigger_kinds(&w)
                .iter()
                .map(|k| format!(r#"<span class="tag">{}</span>"#, esc(k)))
                .collect::<String>(),
        ),
        Err(e) => (alert("error", &e), String::new()),
    };
    let text = match editor_text {
        Some(t) => t.to_string(),
        // The stored text keeps n8n's key order. Its `active` is always false (activation is
        // the switch above, not part of the definition), so it is left out rather than shown
        // wrong.
        None => record
            .definition
            .replacen("\n  \"active\": false,\n", "\n", 1),
    };
    let recent = state
        .store
        .executions(&ExecutionFilter {
            workflow_id: Some(record.id.clone()),
            status: None,
            limit: Some(RECENT_EXECUTIONS),
        })
        .await?;
    let recent_html = if recent.is_empty() {
        r#"<p class="hint">Not run yet. Click <strong>Run</strong> to run it now.</p>"#.to_string()
    } else {
        format!(
            r#"{}<p class="hint"><a href="/executions?workflow={id}">All executions of this workflow →</a></p>"#,
            executions_table(&recent, &HashMap::new(), false)
        )
    };
    let body = format!(
        r#"{PAGE_CSS}<p><a href="/workflows">← Workflows</a></p>
<div class="row"><div><h1 id="workflow-name">{name}</h1><p class="sub" style="margin:0;display:flex;gap:8px;align-items:center;flex-wrap:wrap"><span id="active-status">{badge}</span>{tags}<span class="hint" style="margin:0">Version {version} · updated {updated}</span></p></div>
<div class="actions" style="margin:0;align-items:center">{toggle}
<form class="inline" method="post" action="/workflows/{id}/run">{csrf}<button class="btn" type="submit" id="run">▶ Run</button></form></div></div>
{notice}
<section class="card" id="graph"><h2>Graph</h2><div class="graph">{graph}</div></section>
<section class="card" id="editor"><h2>Workflow JSON</h2>
<form method="post" action="/workflows/{id}" data-json>{csrf}
<textarea class="json" id="workflow-json" name="json" spellcheck="false" aria-label="Workflow JSON">{text}</textarea>
<div class="hint">The same shape n8n exports: <code>nodes</code> (name, type, parameters, position) and <code>connections</code> by node name. Saving checks every node first.</div>
<div class="alert error json-error" role="alert" hidden></div>
<div class="actions"><button class="btn" type="submit" id="save">Save</button><a class="btn secondary" href="/workflows/{id}">Discard changes</a></div></form></section>
<section class="card" id="recent-executions"><h2>Recent executions</h2>{recent_html}</section>
<section class="card"><h2>Delete</h2><p class="hint" style="margin-top:0">Deletes the workflow and all its executions. Running executions are cancelled.</p>
<form method="post" action="/workflows/{id}/delete" onsubmit="return confirm('Delete this workflow and all its executions?')">{csrf}<button class="btn secondary" type="submit" id="delete">Delete workflow</button></form></section>{JSON_CHECK_SCRIPT}"#,
        name = esc(&record.name),
        badge = active_badge(record.active),
        version = record.version,
        updated = when(record.updated_at),
        toggle = toggle_form(p, record, "show", "toggle-active"),
        text = esc(&text),
    );
    Ok(page(&record.name, "workflows", user_of(p), &body))
}

// ---------------------------------------------------------------------------------------------
// GET /executions, GET /executions/{id}, retry, cancel
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize, Default)]
pub struct ExecutionQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    workflow: Option<String>,
}

pub async fn executions(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ExecutionQuery>,
) -> Result<Html<String>, ApiError> {
    let status_filter = q
        .status
        .filter(|s| STATUSES.contains(&s.as_str()))
        .map(|s| s.to_string());
    let workflow_filter = q.workflow.filter(|w| !w.is_empty());
    let workflows = state.store.workflows().await?;
    let names: HashMap<String, String> = workflows
        .iter()
        .map(|w| (w.id.clone(), w.name.clone()))
        .collect();
    let list = state
        .store
        .executions(&ExecutionFilter {
            workflow_id: workflow_filter.clone(),
            status: status_filter.clone(),
            limit: Some(LISTED_EXECUTIONS),
        })
        .await?;
    let status_options: String = std::iter::once(("", "All statuses"))
        .chain(STATUSES.iter().map(|s| (*s, status_label(s))))
        .map(|(value, label)| {
            format!(
                r#"<option value="{value}"{sel}>{label}</option>"#,
                sel = if status_filter.as_deref().unwrap_or("") == value {
                    " selected"
                } else {
                    ""
                },
            )
        })
        .collect();
    let workflow_options: String = std::iter::once((String::new(), "All workflows".to_string()))
        .chain(workflows.iter().map(|w| (w.id.clone(), w.name.clone())))
        .map(|(value, label)| {
            format!(
                r#"<option value="{}"{}>{}</option>"#,
                esc(&value),
                if workflow_filter.as_deref().unwrap_or("") == value {
                    " selected"
                } else {
                    ""
                },
                esc(&label),
            )
        })
        .collect();
    let filtered = status_filter.is_some() || workflow_filter.is_some();
    let table = if list.is_empty() {
        if filtered {
            r#"<div class="card empty"><p><strong>No executions match these filters.</strong></p><p><a href="/executions">Show all executions</a></p></div>"#.to_string()
        } else {
            r#"<div class="card empty"><p><strong>No executions yet.</strong></p><p>An execution is one run of a workflow. Open a workflow and click Run, or activate it so its trigger starts it.</p><p><a class="btn" href="/workflows">Go to workflows</a></p></div>"#.to_string()
        }
    } else {
        executions_table(&list, &names, true)
    };
    let body = format!(
        r#"{PAGE_CSS}<div class="row"><div><h1>Executions</h1><p class="sub" style="margin:0">Every run of every workflow, newest first (the latest {LISTED_EXECUTIONS}).</p></div></div>
<form class="filters" method="get" action="/executions">
<div><label for="status">Status</label><select id="status" name="status" onchange="this.form.submit()">{status_options}</select></div>
<div><label for="workflow">Workflow</label><select id="workflow" name="workflow" onchange="this.form.submit()">{workflow_options}</select></div>
<noscript><button class="btn secondary" type="submit">Filter</button></noscript></form>{table}"#
    );
    Ok(page("Executions", "executions", user_of(&p), &body))
}

#[derive(serde::Deserialize, Default)]
pub struct ExecutionNotice {
    #[serde(default)]
    error: Option<String>,
}

pub async fn execution(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ExecutionNotice>,
) -> Result<Html<String>, ApiError> {
    let e = state.store.execution(&id).await?;
    let notice = q
        .error
        .as_deref()
        .map(|m| alert("error", m))
        .unwrap_or_default();
    execution_page(&state, &p, &e, &notice).await
}

/// Runs an ended execution again with the same trigger data.
pub async fn retry(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match runtime::retry(&state, &id).await {
        Ok(new) => Ok(Redirect::to(&format!("/executions/{}", new.id)).into_response()),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let record = state.store.execution(&id).await?;
            let html = execution_page(
                &state,
                &p,
                &record,
                &alert("error", &format!("Not retried: {}", e.message)),
            )
            .await?;
            Ok((StatusCode::CONFLICT, html).into_response())
        }
        Err(e) => Err(e),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Redirect, ApiError> {
    state.store.execution(&id).await?;
    runtime::cancel(&state, &id).await?;
    Ok(Redirect::to(&format!("/executions/{id}")))
}

async fn execution_page(
    state: &AppState,
    p: &Principal,
    e: &ExecutionRecord,
    notice: &str,
) -> Result<Html<String>, ApiError> {
    let csrf = csrf_input(p);
    let id = esc(&e.id);
    let workflow = state.store.workflow(&e.workflow_id).await.ok();
    let definition = workflow.as_ref().and_then(|w| runtime::load(w).ok());
    let workflow_link = match &workflow {
        Some(w) => format!(
            r#"<a href="/workflows/{}" id="workflow-link">{}</a>"#,
            esc(&w.id),
            esc(&w.name)
        ),
        None => r#"<span class="muted">(deleted)</span>"#.to_string(),
    };
    let unfinished = is_unfinished(e);
    let mut actions = String::new();
    if unfinished {
        actions.push_str(&format!(
            r#"<form class="inline" method="post" action="/executions/{id}/cancel" onsubmit="return confirm('Cancel this execution?')">{csrf}<button class="btn secondary" type="submit" id="cancel">Cancel</button></form>"#
        ));
    } else if workflow.is_some() {
        actions.push_str(&format!(
            r#"<form class="inline" method="post" action="/executions/{id}/retry">{csrf}<button class="btn" type="submit" id="retry">↻ Retry</button></form>"#
        ));
    }
    let error = match &e.error {
        Some(msg) if !msg.is_empty() => error_box(msg),
        _ => String::new(),
    };
    let refresh = if unfinished {
        // Keeps the page current while the run progresses; stops once the execution has ended.
        r#"<meta http-equiv="refresh" content="1"><p class="hint" id="live">This page refreshes every second until the execution ends.</p>"#
    } else {
        ""
    };
    let run_data: Option<RunDataJson> = e
        .run_data
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    let graph = match &definition {
        Some(w) => format!(
            r#"<section class="card" id="graph"><h2>Graph</h2><div class="graph">{}</div><p class="hint">Green nodes ran, red failed, faded ones did not run; each output shows how many items it passed on.</p></section>"#,
            render_graph(
                w,
                Some(&run_data.as_ref().map(run_marks).unwrap_or_default())
            )
        ),
        None => String::new(),
    };
    let opt = |v: Option<i64>| v.map(when_exact).unwrap_or_else(|| "—".to_string());
    let retry_of = match &e.retry_of {
        Some(r) => format!(
            r#"<dt>Retry of</dt><dd><a href="/executions/{r}">#{short}</a></dd>"#,
            r = esc(r),
            short = esc(short_id(r)),
        ),
        None => String::new(),
    };
    let body = format!(
        r#"{PAGE_CSS}<p><a href="/executions">← Executions</a></p>
<div class="row"><div><h1>Execution <span class="muted">#{short}</span></h1><p class="sub" style="margin:0">{workflow_link} · <span id="status">{badge}</span></p></div>
<div class="actions" style="margin:0">{actions}</div></div>
{refresh}{notice}{error}
{graph}<section class="card" id="details"><dl class="kv">
<dt>Status</dt><dd>{label}</dd><dt>Workflow</dt><dd>{workflow_link}</dd><dt>Mode</dt><dd><span class="tag">{mode}</span></dd>
<dt>Queued</dt><dd>{queued}</dd><dt>Started</dt><dd>{started}</dd><dt>Finished</dt><dd>{finished}</dd><dt>Duration</dt><dd>{duration}</dd>{retry_of}
<dt>Execution id</dt><dd><code>{id}</code></dd></dl></section>
<section class="card" id="nodes"><h2>Nodes</h2>{nodes}</section>"#,
        short = esc(short_id(&e.id)),
        badge = status_badge(&e.status),
        label = esc(status_label(&e.status)),
        mode = esc(&e.mode),
        queued = when_exact(e.created_at),
        started = opt(e.started_at),
        finished = opt(e.finished_at),
        duration = execution_duration(e),
        nodes = node_runs_html(e, run_data.as_ref(), definition.as_ref()),
    );
    Ok(page(
        &format!("Execution {}", short_id(&e.id)),
        "executions",
        user_of(p),
        &body,
    ))
}

/// One node's runs as stored in `run_data` (see `ledgerflow_engine::capped_run_json`).
struct NodeRuns<'a> {
    name: &'a str,
    runs: &'a [Value],
    started: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// An execution's `run_data`: node name → that node's runs.
type RunDataJson = BTreeMap<String, Vec<Value>>;

fn run_marks(run_data: &RunDataJson) -> HashMap<String, RunMark> {
    run_data
        .iter()
        .map(|(name, runs)| {
            let mut mark = RunMark {
                failed: runs.iter().any(|r| !r["error"].is_null()),
                outputs: Vec::new(),
            };
            for run in runs {
                for (k, list) in run["output"].as_array().into_iter().flatten().enumerate() {
                    if mark.outputs.len() <= k {
                        mark.outputs.resize(k + 1, 0);
                    }
                    mark.outputs[k] += count_items(&Value::Array(vec![list.clone()]));
                }
            }
            (name.clone(), mark)
        })
        .collect()
}

fn node_runs_html(
    e: &ExecutionRecord,
    run_data: Option<&RunDataJson>,
    workflow: Option<&Workflow>,
) -> String {
    let Some(run_data) = run_data.filter(|r| !r.is_empty()) else {
        return match e.status.as_str() {
            status::QUEUED => r#"<p class="hint">Waiting for a worker to start it…</p>"#.into(),
            status::RUNNING => {
                r#"<p class="hint">Running; nodes appear here as they finish.</p>"#.into()
            }
            _ => r#"<p class="hint">No node ran.</p>"#.into(),
        };
    };
    // In the order they ran, not by name.
    let mut nodes: Vec<NodeRuns> = run_data
        .iter()
        .map(|(name, runs)| NodeRuns {
            name,
            runs,
            started: runs
                .first()
                .and_then(|r| r["startTime"].as_str())
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()),
        })
        .collect();
    nodes.sort_by_key(|n| n.started);
    let failed_node = nodes
        .iter()
        .position(|n| n.runs.iter().any(|r| !r["error"].is_null()));
    let open_at = failed_node.or(nodes.len().checked_sub(1));
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let node = workflow.and_then(|w| w.node(n.name));
            node_html(n, node, open_at == Some(i))
        })
        .collect()
}

fn count_items(lists: &Value) -> usize {
    lists
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(|item| match item.get("truncated").and_then(Value::as_u64) {
            Some(n) if item.get("json").is_none() => n as usize,
            _ => 1,
        })
        .sum()
}

fn items_label(n: usize) -> String {
    format!("{n} item{}", if n == 1 { "" } else { "s" })
}

fn node_html(n: &NodeRuns, node: Option<&WorkflowNode>, open: bool) -> String {
    let has_error = n.runs.iter().any(|r| !r["error"].is_null());
    let items_in: usize = n.runs.iter().map(|r| count_items(&r["input"])).sum();
    let items_out: usize = n.runs.iter().map(|r| count_items(&r["output"])).sum();
    let ms: u64 = n
        .runs
        .iter()
        .filter_map(|r| r["executionTimeMs"].as_u64())
        .sum();
    let type_tag = node
        .map(|w| {
            format!(
                r#"<span class="tag">{}</span>"#,
                esc(&type_label(&w.node_type))
            )
        })
        .unwrap_or_default();
    let labels = node.map(output_labels).unwrap_or_default();
    let runs: String = n
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let heading = if n.runs.len() > 1 {
                format!(
                    r#"<h3>Run {} <span class="muted">· {} ms</span></h3>"#,
                    i + 1,
                    r["executionTimeMs"].as_u64().unwrap_or(0)
                )
            } else {
                String::new()
            };
            let error = match r["error"].as_object() {
                Some(err) => {
                    let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                    let description = err
                        .get("description")
                        .and_then(Value::as_str)
                        .map(|d| format!(" — {d}"))
                        .unwrap_or_default();
                    let item = err
                        .get("itemIndex")
                        .and_then(Value::as_u64)
                        .map(|i| format!(" (item {})", i + 1))
                        .unwrap_or_default();
                    alert("error", &format!("{message}{description}{item}"))
                }
                None => String::new(),
            };
            let attempts = match r["attempts"].as_u64() {
                Some(a) if a > 1 => format!(r#"<p class="hint">Took {a} attempts.</p>"#),
                _ => String::new(),
            };
            format!(
                r#"{heading}{error}{attempts}<div class="io"><div class="node-input"><h3>Input</h3>{input}</div><div class="node-output"><h3>Output</h3>{output}</div></div>"#,
                input = item_lists(&r["input"], "Input", &[]),
                output = item_lists(&r["output"], "Output", &labels),
            )
        })
        .collect();
    format!(
        r#"<details class="node{err_cls}" data-node="{name}"{open}><summary><strong>{name}</strong>{type_tag}{mark}<span class="hint" style="margin:0">in {items_in} · out {items_out} · {ms} ms{runs_note}</span></summary><div class="node-body">{runs}</div></details>"#,
        err_cls = if has_error { " error" } else { "" },
        name = esc(n.name),
        open = if open { " open" } else { "" },
        mark = if has_error {
            r#"<span class="bad-mark">✗ failed</span>"#
        } else {
            r#"<span class="ok-mark">✓</span>"#
        },
        items_in = items_label(items_in),
        items_out = items_label(items_out),
        runs_note = if n.runs.len() > 1 {
            format!(" · {} runs", n.runs.len())
        } else {
            String::new()
        },
    )
}

/// The item lists of one run's input or output: one block per input/output index.
fn item_lists(lists: &Value, what: &str, labels: &[String]) -> String {
    let lists: Vec<&Vec<Value>> = lists
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .collect();
    if lists.iter().all(|l| l.is_empty()) {
        return r#"<p class="hint">No items.</p>"#.to_string();
    }
    let several = lists.len() > 1;
    lists
        .iter()
        .enumerate()
        .map(|(i, items)| {
            let title = if several {
                match labels.get(i).filter(|l| !l.is_empty()) {
                    Some(l) => format!("{what} {} ({l}): ", i + 1),
                    None => format!("{what} {}: ", i + 1),
                }
            } else {
                String::new()
            };
            let count: usize = count_items(&Value::Array(vec![Value::Array((*items).clone())]));
            let body: String = items
                .iter()
                .enumerate()
                .map(|(n, item)| item_html(n, item))
                .collect();
            format!(
                r#"<p class="hint item-count">{}{}</p>{body}"#,
                esc(&title),
                items_label(count)
            )
        })
        .collect()
}

fn item_html(index: usize, item: &Value) -> String {
    if let (Some(n), None) = (
        item.get("truncated").and_then(Value::as_u64),
        item.get("json"),
    ) {
        return format!(
            r#"<p class="hint">… {} more not kept (the execution record keeps up to the size limit per list).</p>"#,
            items_label(n as usize)
        );
    }
    let json = item.get("json").cloned().unwrap_or(Value::Null);
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    let binary: String = item
        .get("binary")
        .and_then(Value::as_object)
        .map(|bin| {
            bin.iter()
                .map(|(key, b)| {
                    let mut parts = vec![b["mimeType"].as_str().unwrap_or("").to_string()];
                    if let Some(f) = b["fileName"].as_str() {
                        parts.push(f.to_string());
                    }
                    if let Some(d) = b["data"].as_str() {
                        parts.push(d.to_string());
                    }
                    parts.retain(|s| !s.is_empty());
                    format!(
                        r#"<div class="hint">Binary <code>{}</code>: {}</div>"#,
                        esc(key),
                        esc(&parts.join(", "))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        r#"<div class="hint" style="margin:0 0 2px">Item {}</div><pre class="item">{}</pre>{binary}"#,
        index + 1,
        esc(&pretty)
    )
}

// ---------------------------------------------------------------------------------------------
// The workflow graph as SVG
// ---------------------------------------------------------------------------------------------

const NODE_W: f64 = 160.0;
const NODE_H: f64 = 58.0;
const PORT_GAP: f64 = 20.0;
/// Space kept between boxes, so edges and output labels stay visible.
const GAP_X: f64 = 56.0;
const GAP_Y: f64 = 34.0;
const MARGIN: f64 = 24.0;
/// The graph shrinks to fit its card down to this scale; below it, text would be too small to
/// read, so the card scrolls sideways instead.
const MIN_DISPLAY_SCALE: f64 = 0.68;

/// The labels of a node's outputs, in order: "" for a lone main output; "true"/"false" for If;
/// rule names or numbers for Switch; "error" for the error output of `onError:
/// continueErrorOutput`.
fn output_labels(node: &WorkflowNode) -> Vec<String> {
    let main = core_nodes()
        .get(&node.node_type)
        .map_or(1, |n| n.outputs(node))
        .max(1);
    let mut labels: Vec<String> = match node.node_type.as_str() {
        "ledgerflow.if" => vec!["true".into(), "false".into()],
        "ledgerflow.switch" => {
            let rules = node
                .parameters
                .pointer("/rules/values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            (0..main)
                .map(|i| match rules.get(i) {
                    Some(r) => r
                        .get("outputKey")
                        .and_then(Value::as_str)
                        .filter(|k| {
                            !k.is_empty()
                                && r.get("renameOutput").and_then(Value::as_bool) == Some(true)
                        })
                        .map_or_else(|| i.to_string(), str::to_string),
                    None if i == rules.len() && !rules.is_empty() => "fallback".into(),
                    None => i.to_string(),
                })
                .collect()
        }
        _ if main > 1 => (0..main).map(|i| i.to_string()).collect(),
        _ => vec![String::new()],
    };
    if node.error_mode() == OnError::ContinueErrorOutput {
        if labels.len() == 1 && labels[0].is_empty() {
            labels[0] = "success".into();
        }
        labels.push("error".into());
    }
    labels
}

/// A node placed on the drawing.
#[derive(Debug, Clone)]
struct Placed {
    x: f64,
    y: f64,
    h: f64,
    inputs: usize,
    outputs: Vec<String>,
}

impl Placed {
    fn output_port(&self, i: usize) -> (f64, f64) {
        let n = self.outputs.len().max(1) as f64;
        (
            self.x + NODE_W,
            self.y + self.h * (i as f64 + 1.0) / (n + 1.0),
        )
    }
    fn input_port(&self, i: usize) -> (f64, f64) {
        let n = self.inputs.max(1) as f64;
        (self.x, self.y + self.h * (i as f64 + 1.0) / (n + 1.0))
    }
}

/// Places every node: at its canvas `position`, scaled so no two boxes overlap, or, when the
/// positions cannot be used (all equal, or far too close), in columns by distance from the
/// triggers.
fn layout(w: &Workflow) -> Vec<Placed> {
    let index: HashMap<&str, usize> = w
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut placed: Vec<Placed> = w
        .nodes
        .iter()
        .map(|n| Placed {
            x: n.position[0],
            y: n.position[1],
            h: NODE_H,
            // Triggers have no input unless something is connected to them.
            inputs: if is_trigger(n) {
                0
            } else {
                core_nodes()
                    .get(&n.node_type)
                    .map_or(1, |t| t.inputs(n))
                    .max(1)
            },
            outputs: output_labels(n),
        })
        .collect();
    for (source, conns) in &w.connections {
        if let Some(&s) = index.get(source.as_str()) {
            while placed[s].outputs.len() < conns.main.len() {
                let i = placed[s].outputs.len();
                placed[s].outputs.push(i.to_string());
            }
        }
        for c in conns.main.iter().flatten() {
            if let Some(&t) = index.get(c.node.as_str()) {
                placed[t].inputs = placed[t].inputs.max(c.index + 1);
            }
        }
    }
    for p in &mut placed {
        let ports = p.outputs.len().max(p.inputs) as f64;
        p.h = NODE_H.max(ports * PORT_GAP + 16.0);
    }
    let tallest = placed.iter().map(|p| p.h).fold(NODE_H, f64::max);

    // The smallest uniform scale at which every pair of boxes is apart horizontally or
    // vertically.
    let mut scale: f64 = 0.0;
    for (i, a) in placed.iter().enumerate() {
        for b in &placed[i + 1..] {
            let (dx, dy) = ((a.x - b.x).abs(), (a.y - b.y).abs());
            let need_x = if dx > 0.0 {
                (NODE_W + GAP_X) / dx
            } else {
                f64::INFINITY
            };
            let need_y = if dy > 0.0 {
                (tallest + GAP_Y) / dy
            } else {
                f64::INFINITY
            };
            scale = scale.max(need_x.min(need_y));
        }
    }
    if placed.len() < 2 {
        scale = 1.0;
    }
    if scale.is_finite() && scale <= 4.0 {
        for p in &mut placed {
            p.x *= scale;
            p.y *= scale;
        }
    } else {
        auto_layout(w, &index, &mut placed, tallest);
    }
    let min_x = placed.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
    let min_y = placed.iter().map(|p| p.y).fold(f64::INFINITY, f64::min);
    for p in &mut placed {
        p.x = p.x - min_x + MARGIN;
        p.y = p.y - min_y + MARGIN;
    }
    placed
}

/// Columns by longest path from the nodes nothing feeds (edges that close a loop are ignored);
/// rows in definition order.
fn auto_layout(w: &Workflow, index: &HashMap<&str, usize>, placed: &mut [Placed], row_h: f64) {
    let n = w.nodes.len();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut fed = vec![false; n];
    for (source, conns) in &w.connections {
        let Some(&s) = index.get(source.as_str()) else {
            continue;
        };
        for c in conns.main.iter().flatten() {
            if let Some(&t) = index.get(c.node.as_str()) {
                next[s].push(t);
                fed[t] = true;
            }
        }
    }
    // Depth-first from the roots gives a topological order of the graph without its back edges.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        next: &[Vec<usize>],
        marks: &mut [Mark],
        order: &mut Vec<usize>,
        back: &mut HashSet<(usize, usize)>,
    ) {
        marks[i] = Mark::Open;
        for &t in &next[i] {
            match marks[t] {
                Mark::New => visit(t, next, marks, order, back),
                Mark::Open => {
                    back.insert((i, t));
                }
                Mark::Done => {}
            }
        }
        marks[i] = Mark::Done;
        order.push(i);
    }
    let mut marks = vec![Mark::New; n];
    let mut order = Vec::with_capacity(n);
    let mut back = HashSet::new();
    let roots = (0..n).filter(|&i| !fed[i]).chain(0..n);
    for i in roots.collect::<Vec<_>>() {
        if marks[i] == Mark::New {
            visit(i, &next, &mut marks, &mut order, &mut back);
        }
    }
    let mut depth = vec![0usize; n];
    for &s in order.iter().rev() {
        for &t in &next[s] {
            if !back.contains(&(s, t)) && t != s {
                depth[t] = depth[t].max(depth[s] + 1);
            }
        }
    }
    let mut rows: HashMap<usize, usize> = HashMap::new();
    for (i, p) in placed.iter_mut().enumerate() {
        let row = rows.entry(depth[i]).or_insert(0);
        p.x = depth[i] as f64 * (NODE_W + GAP_X);
        p.y = *row as f64 * (row_h + GAP_Y);
        *row += 1;
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn edge_path((x1, y1): (f64, f64), (x2, y2): (f64, f64)) -> String {
    // Forward edges curve gently; backward ones (loops) swing out wide enough to be seen.
    let bend = if x2 > x1 + 20.0 {
        ((x2 - x1) / 2.0).max(30.0)
    } else {
        90.0
    };
    format!(
        "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
        x1 + bend,
        x2 - bend
    )
}

/// What one node did in an execution, for drawing it on the graph.
#[derive(Debug, Default)]
struct RunMark {
    failed: bool,
    /// Items per output, summed over the node's runs.
    outputs: Vec<usize>,
}

/// The workflow drawn as inline SVG: nodes as rounded boxes at their canvas positions (scaled to
/// fit), labelled with name and type; edges from each output port to the target's input port.
/// Nodes with several outputs (If, Switch, error outputs) get one labelled port per output.
pub fn graph_svg(workflow: &Workflow) -> String {
    render_graph(workflow, None)
}

/// The graph with an execution drawn on it: nodes that ran, failed or did not run, and the
/// number of items on each output.
fn render_graph(workflow: &Workflow, marks: Option<&HashMap<String, RunMark>>) -> String {
    if workflow.nodes.is_empty() {
        return r#"<p class="hint">This workflow has no nodes.</p>"#.to_string();
    }
    let placed = layout(workflow);
    let index: HashMap<&str, usize> = workflow
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let width = placed.iter().map(|p| p.x + NODE_W).fold(0.0, f64::max) + MARGIN + 70.0;
    let height = placed.iter().map(|p| p.y + p.h).fold(0.0, f64::max) + MARGIN;
    let mark_of = |name: &str| marks.and_then(|m| m.get(name));
    let items_on =
        |name: &str, out: usize| mark_of(name).map(|m| m.outputs.get(out).copied().unwrap_or(0));

    let mut edges = String::new();
    let mut used_outputs: HashSet<(usize, usize)> = HashSet::new();
    for (source, conns) in &workflow.connections {
        let Some(&s) = index.get(source.as_str()) else {
            continue;
        };
        for (out, targets) in conns.main.iter().enumerate() {
            for c in targets {
                let Some(&t) = index.get(c.node.as_str()) else {
                    continue;
                };
                used_outputs.insert((s, out));
                let from = placed[s].output_port(out);
                let to = placed[t].input_port(c.index);
                let label = placed[s].outputs.get(out).map(String::as_str).unwrap_or("");
                let mut cls = String::new();
                if label == "error" {
                    cls.push_str(" error");
                }
                if items_on(source, out).is_some_and(|n| n > 0) {
                    cls.push_str(" live");
                }
                edges.push_str(&format!(
                    r#"<path class="edge{cls}" data-from="{from_name}" data-to="{to_name}" d="{d}" marker-end="url(#lf-arrow)"/>"#,
                    from_name = esc(source),
                    to_name = esc(&c.node),
                    d = edge_path(from, to),
                ));
            }
        }
    }

    let mut nodes = String::new();
    for (i, (node, p)) in workflow.nodes.iter().zip(&placed).enumerate() {
        let trigger = is_trigger(node);
        let kind = type_label(&node.node_type);
        let mut classes = String::from("node");
        if trigger {
            classes.push_str(" trigger");
        }
        if node.disabled {
            classes.push_str(" disabled");
        }
        match (marks, mark_of(&node.name)) {
            (Some(_), Some(m)) if m.failed => classes.push_str(" failed"),
            (Some(_), Some(_)) => classes.push_str(" ran"),
            (Some(_), None) => classes.push_str(" skipped"),
            (None, _) => {}
        }
        let mut ports = String::new();
        for k in 0..p.inputs {
            let (x, y) = p.input_port(k);
            ports.push_str(&format!(
                r#"<circle class="port" cx="{x:.1}" cy="{y:.1}" r="4"/>"#
            ));
        }
        for (k, label) in p.outputs.iter().enumerate() {
            let (x, y) = p.output_port(k);
            let connected = used_outputs.contains(&(i, k));
            ports.push_str(&format!(
                r#"<circle class="port{}" cx="{x:.1}" cy="{y:.1}" r="4"/>"#,
                if connected { "" } else { " open" }
            ));
            let text = match (items_on(&node.name, k), label.is_empty()) {
                (Some(n), true) => items_label(n),
                (Some(n), false) => format!("{} · {n}", truncate(label, 10)),
                (None, _) => truncate(label, 12),
            };
            if !text.is_empty() {
                ports.push_str(&format!(
                    r#"<text class="out-label{cls}" x="{:.1}" y="{:.1}">{}</text>"#,
                    x + 7.0,
                    y - 6.0,
                    esc(&text),
                    cls = match label.as_str() {
                        "true" | "success" => " yes",
                        "false" | "error" => " no",
                        _ => "",
                    },
                ));
            }
        }
        let accent = if trigger {
            format!(
                r#"<rect class="accent" x="{:.1}" y="{:.1}" width="4" height="{:.1}" rx="2"/>"#,
                p.x + 4.0,
                p.y + 9.0,
                p.h - 18.0,
            )
        } else {
            String::new()
        };
        let cy = p.y + p.h / 2.0;
        let kind = if node.disabled {
            format!("{kind} · disabled")
        } else {
            kind
        };
        nodes.push_str(&format!(
            r#"<g class="{classes}" data-name="{name}"><title>{name} ({type_full}){disabled}</title><rect x="{x:.1}" y="{y:.1}" width="{NODE_W}" height="{h:.1}" rx="10"/>{accent}<text class="name" x="{tx:.1}" y="{ny:.1}">{name_short}</text><text class="type" x="{tx:.1}" y="{ty:.1}">{kind}</text>{ports}</g>"#,
            name = esc(&node.name),
            type_full = esc(&node.node_type),
            disabled = if node.disabled { " — disabled" } else { "" },
            x = p.x,
            y = p.y,
            h = p.h,
            tx = p.x + 16.0,
            ny = cy - 3.0,
            ty = cy + 15.0,
            name_short = esc(&truncate(&node.name, 16)),
            kind = esc(&truncate(&kind, 21)),
        ));
    }

    format!(
        r##"<svg class="workflow-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" style="width:100%;max-width:{width:.0}px;min-width:{min_width:.0}px;height:auto" role="img" aria-label="Workflow graph: {count} nodes">
<defs><marker id="lf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#98a2b3"/></marker></defs>
<style>
.workflow-graph .edge{{fill:none;stroke:#98a2b3;stroke-width:2}}.workflow-graph .edge.error{{stroke:#f97066;stroke-dasharray:5 4}}.workflow-graph .edge.live{{stroke:#32d583;stroke-width:2.5}}
.workflow-graph .node rect{{fill:#fff;stroke:#98a2b3;stroke-width:1.5}}.workflow-graph .node.trigger rect{{stroke:#0b6bcb}}
.workflow-graph .node .accent{{fill:#0b6bcb;stroke:none}}
.workflow-graph .node.disabled{{opacity:.55}}.workflow-graph .node.disabled rect{{stroke-dasharray:5 4}}
.workflow-graph .node.ran rect{{stroke:#067647;stroke-width:2}}.workflow-graph .node.failed rect{{stroke:#b42318;stroke-width:2;fill:#fef3f2}}.workflow-graph .node.skipped{{opacity:.5}}
.workflow-graph text{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}}
.workflow-graph .name{{font-size:14px;font-weight:600;fill:#1f2430}}.workflow-graph .type{{font-size:12px;fill:#667085}}
.workflow-graph .port{{fill:#fff;stroke:#667085;stroke-width:1.5}}.workflow-graph .port.open{{stroke:#d0d5dd}}
.workflow-graph .out-label{{font-size:11px;font-weight:600;fill:#667085}}.workflow-graph .out-label.yes{{fill:#067647}}.workflow-graph .out-label.no{{fill:#b42318}}
</style>
{edges}{nodes}</svg>"##,
        min_width = width * MIN_DISPLAY_SCALE,
        count = workflow.nodes.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workflow(v: Value) -> Workflow {
        serde_json::from_value(v).expect("a workflow")
    }

    fn overlaps(a: &Placed, b: &Placed) -> bool {
        a.x < b.x + NODE_W && b.x < a.x + NODE_W && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn graph_draws_every_node_edge_and_labelled_if_outputs() {
        let w = workflow(json!({
            "name": "w",
            "nodes": [
                {"name": "Start", "type": "ledgerflow.manualTrigger", "position": [0, 0], "parameters": {}},
                {"name": "Big <order>?", "type": "ledgerflow.if", "position": [220, 0], "parameters": {}},
                {"name": "Yes", "type": "ledgerflow.set", "position": [440, -100], "parameters": {}},
                {"name": "No", "type": "ledgerflow.noOp", "position": [440, 100], "parameters": {}}
            ],
            "connections": {
                "Start": {"main": [[{"node": "Big <order>?", "type": "main", "index": 0}]]},
                "Big <order>?": {"main": [
                    [{"node": "Yes", "type": "main", "index": 0}],
                    [{"node": "No", "type": "main", "index": 0}]
                ]}
            }
        }));
        let svg = graph_svg(&w);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches(r#"<g class="node"#).count(), 4);
        assert_eq!(svg.matches(r#"<path class="edge""#).count(), 3);
        // Names are escaped, never raw markup.
        assert!(svg.contains("Big &lt;order&gt;?"));
        assert!(!svg.contains("Big <order>"));
        // The If's two outputs are separate, labelled ports.
        assert!(svg.contains(">true</text>") && svg.contains(">false</text>"));
        let placed = layout(&w);
        let (t, f) = (placed[1].output_port(0), placed[1].output_port(1));
        assert!(f.1 - t.1 >= 15.0, "true and false ports apart: {t:?} {f:?}");
        assert!(svg.contains(r#"data-from="Start" data-to="Big &lt;order&gt;?""#));
        assert!(svg.contains(">Set</text>"), "type short name shown");
        assert!(svg.contains(r#"class="node trigger""#));
    }

    #[test]
    fn nodes_without_positions_are_laid_out_without_overlap() {
        let w = workflow(json!({
            "name": "w",
            "nodes": [
                {"name": "A", "type": "ledgerflow.manualTrigger", "parameters": {}},
                {"name": "B", "type": "ledgerflow.set", "parameters": {}},
                {"name": "C", "type": "ledgerflow.set", "parameters": {}},
                {"name": "D", "type": "ledgerflow.merge", "parameters": {}}
            ],
            "connections": {
                "A": {"main": [[{"node": "B", "index": 0}, {"node": "C", "index": 0}]]},
                "B": {"main": [[{"node": "D", "index": 0}]]},
                "C": {"main": [[{"node": "D", "index": 1}]]},
                "D": {"main": [[{"node": "A", "index": 0}]]}
            }
        }));
        let placed = layout(&w);
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                assert!(!overlaps(a, b), "{a:?} overlaps {b:?}");
            }
        }
        // Columns follow the flow: A, then B and C, then D.
        assert!(placed[0].x < placed[1].x && placed[1].x == placed[2].x);
        assert!(placed[3].x > placed[1].x);
        assert_eq!(placed[3].inputs, 2, "Merge has two inputs");
        assert_eq!(graph_svg(&w).matches(r#"<path class="edge""#).count(), 5);
    }

    #[test]
    fn close_canvas_positions_are_spread_apart() {
        let w = workflow(json!({
            "name": "w",
            "nodes": [
                {"name": "A", "type": "ledgerflow.manualTrigger", "position": [100, 100], "parameters": {}},
                {"name": "B", "type": "ledgerflow.set", "position": [200, 100], "parameters": {}}
            ],
            "connections": {"A": {"main": [[{"node": "B", "index": 0}]]}}
        }));
        let placed = layout(&w);
        assert!(!overlaps(&placed[0], &placed[1]));
        assert!(placed[1].x - placed[0].x >= NODE_W + GAP_X - 0.01);
    }

    #[test]
    fn switch_and_error_outputs_get_their_own_labelled_ports() {
        let mut switch = WorkflowNode::new(
            "Route",
            "ledgerflow.switch",
            json!({"rules": {"values": [
                {"conditions": {}, "renameOutput": true, "outputKey": "NZ"},
                {"conditions": {}}
            ]}, "options": {"fallbackOutput": "extra"}}),
        );
        assert_eq!(output_labels(&switch), ["NZ", "1", "fallback"]);
        switch.on_error = Some(OnError::ContinueErrorOutput);
        assert_eq!(
            output_labels(&switch).last().map(String::as_str),
            Some("error")
        );
        let mut http = WorkflowNode::new("Call", "ledgerflow.httpRequest", json!({}));
        assert_eq!(output_labels(&http), [""]);
        http.on_error = Some(OnError::ContinueErrorOutput);
        assert_eq!(output_labels(&http), ["success", "error"]);
    }

    #[test]
    fn execution_graph_marks_what_ran_failed_and_did_not_run_with_item_counts() {
        let w = workflow(json!({
            "name": "w",
            "nodes": [
                {"name": "Start", "type": "ledgerflow.manualTrigger", "position": [0, 0], "parameters": {}},
                {"name": "Check", "type": "ledgerflow.if", "position": [220, 0], "parameters": {}},
                {"name": "Yes", "type": "ledgerflow.code", "position": [440, -100], "parameters": {}},
                {"name": "No", "type": "ledgerflow.noOp", "position": [440, 100], "parameters": {}}
            ],
            "connections": {
                "Start": {"main": [[{"node": "Check", "index": 0}]]},
                "Check": {"main": [[{"node": "Yes", "index": 0}], [{"node": "No", "index": 0}]]}
            }
        }));
        let item = json!({"json": {}});
        let run_data: RunDataJson = serde_json::from_value(json!({
            "Start": [{"input": [[item]], "output": [[item]], "error": null}],
            "Check": [{"input": [[item]], "output": [[item, item, {"truncated": 3}], []], "error": null}],
            "Yes": [{"input": [[item]], "output": [], "error": {"message": "boom"}}]
        }))
        .unwrap();
        let svg = render_graph(&w, Some(&run_marks(&run_data)));
        assert!(svg.contains(r#"<g class="node trigger ran" data-name="Start">"#));
        assert!(svg.contains(r#"<g class="node failed" data-name="Yes">"#));
        assert!(svg.contains(r#"<g class="node skipped" data-name="No">"#));
        assert!(svg.contains(">true · 5</text>") && svg.contains(">false · 0</text>"));
        assert!(svg.contains(r#"class="edge live" data-from="Check" data-to="Yes""#));
        assert!(svg.contains(r#"class="edge" data-from="Check" data-to="No""#));
        // Without an execution, nothing is marked.
        let plain = graph_svg(&w);
        assert!(!plain.contains(r#"skipped" data-name"#) && !plain.contains(r#"ran" data-name"#));
        assert!(plain.contains(">true</text>"));
    }

    #[test]
    fn trigger_kinds_name_core_and_integration_triggers() {
        let w = workflow(json!({
            "name": "w",
            "nodes": [
                {"name": "A", "type": "ledgerflow.manualTrigger", "parameters": {}},
                {"name": "B", "type": "ledgerflow.webhook", "parameters": {}},
                {"name": "C", "type": "ledgerflow.xeroPollTrigger", "parameters": {}},
                {"name": "D", "type": "ledgerflow.xeroTrigger", "parameters": {}},
                {"name": "E", "type": "ledgerflow.scheduleTrigger", "parameters": {}, "disabled": true},
                {"name": "F", "type": "ledgerflow.xero", "parameters": {}}
            ],
            "connections": {}
        }));
        assert_eq!(
            trigger_kinds(&w),
            ["Manual", "Webhook", "Xero Poll", "Xero"]
        );
        assert_eq!(type_label("ledgerflow.xero"), "Xero");
        assert_eq!(type_label("ledgerflow.set"), "Set");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(85), "85 ms");
        assert_eq!(format_duration(2_400), "2.4 s");
        assert_eq!(format_duration(185_000), "3 min 5 s");
        assert_eq!(format_duration(7_800_000), "2 h 10 min");
    }

    #[test]
    fn import_errors_list_each_unsupported_node() {
        let html = error_box("2 node(s) cannot be imported: 'Send mail' (n8n-nodes-base.emailSend): no Ledgerflow node of this type; 'Old <switch>' (n8n-nodes-base.switch): Switch version 2 is not supported; replace it");
        assert_eq!(html.matches("<li>").count(), 2, "{html}");
        assert!(html.contains("Old &lt;switch&gt;"));
        assert!(html.contains("is not supported; replace it"));
    }
}
