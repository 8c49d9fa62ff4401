//! The workflow and execution pages, driven as a browser would: import through the form, see the
//! workflow listed and drawn, run it, read its execution, and the errors a person can cause.

use std::time::Duration;

use ledgerflow_server::html::esc;
use ledgerflow_server::runtime;
use reqwest::header::COOKIE;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{Session, TestApp};

/// A test app (its worker pool runs queued executions) with the owner signed in.
async fn app_with_workers() -> (TestApp, Session) {
    let app = TestApp::spawn().await;
    let session = app.set_up_owner().await;
    (app, session)
}

fn manual_then_set(name: &str, greeting: &str) -> Value {
    json!({
        "name": name,
        "nodes": [
            {"name": "When clicking Run", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
             "position": [0, 0], "parameters": {}},
            {"name": "Set greeting", "type": "n8n-nodes-base.set", "typeVersion": 3.4,
             "position": [220, 0], "parameters": {"assignments": {"assignments": [
                {"name": "greeting", "value": greeting, "type": "string"}
             ]}}}
        ],
        "connections": {"When clicking Run": {"main": [[{"node": "Set greeting", "type": "main", "index": 0}]]}}
    })
}

async fn get_page(app: &TestApp, s: &Session, path: &str) -> (StatusCode, String) {
    let resp = app
        .http
        .get(app.url(path))
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Posts a form; returns the status, the redirect target (if any) and the body.
async fn submit(
    app: &TestApp,
    s: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut form = vec![("_csrf", s.csrf.as_str())];
    form.extend_from_slice(fields);
    let resp = app
        .http
        .post(app.url(path))
        .header(COOKIE, &s.cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, location, resp.text().await.unwrap())
}

/// Imports through the list page's form and returns the new workflow's id.
async fn import_workflow(app: &TestApp, s: &Session, workflow: &Value) -> String {
    let text = serde_json::to_string_pretty(workflow).unwrap();
    let (status, location, body) = submit(app, s, "/workflows", &[("json", &text)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    location
        .strip_prefix("/workflows/")
        .and_then(|rest| rest.split('?').next())
        .expect("redirect to the workflow page")
        .to_string()
}

/// The text of the textarea with `id`, as the page holds it (escaped).
fn textarea<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!(r#"id="{id}""#))
        .expect("the textarea is on the page");
    let open = start + html[start..].find('>').unwrap() + 1;
    let close = open + html[open..].find("</textarea>").unwrap();
    &html[open..close]
}

fn svg(html: &str) -> &str {
    let start = html.find("<svg").expect("the page draws the graph");
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}

#[tokio::test]
async fn an_imported_workflow_is_listed_drawn_run_and_its_execution_shows_each_nodes_items() {
    let (app, s) = app_with_workers().await;

    let (status, html) = get_page(&app, &s, "/workflows").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"id="no-workflows""#),
        "empty state explains what to do"
    );
    assert!(html.contains(r#"id="import-json""#) && html.contains(r#"id="import""#));

    let id = import_workflow(&app, &s, &manual_then_set("Greeter", "Hello <world>")).await;
    let record = app.store.workflow(&id).await.unwrap();
    assert_eq!(record.name, "Greeter");

    let (_, html) = get_page(&app, &s, "/workflows").await;
    assert!(html.contains(&format!(
        r#"<a href="/workflows/{id}"><strong>Greeter</strong></a>"#
    )));
    assert!(
        html.contains(r#"<span class="tag">Manual</span>"#),
        "trigger kind shown"
    );
    assert!(html.contains(r#"<span class="badge inactive">Inactive</span>"#));
    assert!(html.contains(&format!(r#"action="/workflows/{id}/activate""#)));
    assert!(!html.contains(r#"id="no-workflows""#));

    let (status, html) = get_page(&app, &s, &format!("/workflows/{id}?imported=1")).await;
    assert_eq!(status, 200);
    let graph = svg(&html);
    assert!(graph.contains("When clicking Run") && graph.contains("Set greeting"));
    assert!(graph.contains(r#"data-from="When clicking Run" data-to="Set greeting""#));
    let editor: Value = serde_json::from_str(
        &textarea(&html, "workflow-json")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
    .expect("the editor holds the workflow as JSON");
    assert_eq!(editor["nodes"][1]["type"], "ledgerflow.set");
    assert!(html.contains(r#"id="run""#) && html.contains(r#"id="save""#));

    let (status, location, _) = submit(&app, &s, &format!("/workflows/{id}/run"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let execution = location
        .strip_prefix("/executions/")
        .expect("redirect to the execution page")
        .to_string();
    let done = runtime::wait_for(&app.state, &execution, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.status, "succeeded", "{:?}", done.error);

    let (status, html) = get_page(&app, &s, &location).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"data-status="succeeded""#));
    assert!(
        !html.contains(r#"http-equiv="refresh""#),
        "a finished execution stays put"
    );
    assert!(html.contains(r#"data-node="Set greeting""#));
    // The Set node's output item, pretty-printed and escaped.
    assert!(
        html.contains("&quot;greeting&quot;: &quot;Hello &lt;world&gt;&quot;"),
        "{html}"
    );
    assert!(!html.contains("Hello <world>"));
    assert!(html.contains(&format!(r#"href="/workflows/{id}""#)));

    // Listed, and filtered by status and workflow.
    let (_, html) = get_page(&app, &s, "/executions").await;
    assert!(html.contains(&format!(r#"href="/executions/{execution}""#)));
    assert!(html.contains("Greeter"));
    let (_, html) = get_page(&app, &s, "/executions?status=failed").await;
    assert!(!html.contains(&format!(r#"href="/executions/{execution}""#)));
    let (_, html) = get_page(
        &app,
        &s,
        &format!("/executions?status=succeeded&workflow={id}"),
    )
    .await;
    assert!(html.contains(&format!(r#"href="/executions/{execution}""#)));
    let (_, html) = get_page(&app, &s, &format!("/workflows/{id}")).await;
    assert!(
        html.contains(&format!(r#"href="/executions/{execution}""#)),
        "recent executions on the workflow page"
    );

    // Retry runs it again as a new execution.
    let (status, location, _) =
        submit(&app, &s, &format!("/executions/{execution}/retry"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let again = location.strip_prefix("/executions/").unwrap();
    assert_ne!(again, execution);
    let again = runtime::wait_for(&app.state, again, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(again.retry_of.as_deref(), Some(execution.as_str()));
    assert_eq!(again.status, "succeeded");
}

#[tokio::test]
async fn invalid_json_and_unsupported_nodes_are_refused_and_the_text_is_kept() {
    let (app, s) = app_with_workers().await;

    let broken = r#"{"name": "Half", "nodes": ["#;
    let (status, _, html) = submit(&app, &s, "/workflows", &[("json", broken)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("not valid JSON"), "{html}");
    assert_eq!(textarea(&html, "import-json"), esc(broken));

    let unsupported = serde_json::to_string_pretty(&json!({
        "name": "Report mailer",
        "nodes": [
            {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "parameters": {}},
            {"name": "Send the report", "type": "n8n-nodes-base.emailSend", "typeVersion": 2, "parameters": {}},
            {"name": "Ask the AI", "type": "@n8n/n8n-nodes-langchain.agent", "typeVersion": 1, "parameters": {}}
        ],
        "connections": {}
    }))
    .unwrap();
    let (status, _, html) = submit(&app, &s, "/workflows", &[("json", &unsupported)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for needle in [
        "Send the report",
        "n8n-nodes-base.emailSend",
        "Ask the AI",
        "@n8n/n8n-nodes-langchain.agent",
    ] {
        assert!(html.contains(&esc(needle)), "error names {needle}: {html}");
    }
    assert_eq!(textarea(&html, "import-json"), esc(&unsupported));
    assert!(app.store.workflows().await.unwrap().is_empty());

    // The editor refuses the same way and keeps the edit; the stored workflow is unchanged.
    let id = import_workflow(&app, &s, &manual_then_set("Kept", "hi")).await;
    let before = app.store.workflow(&id).await.unwrap();
    let (status, _, html) =
        submit(&app, &s, &format!("/workflows/{id}"), &[("json", broken)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Not saved") && html.contains("not valid JSON"));
    assert_eq!(textarea(&html, "workflow-json"), esc(broken));
    let after = app.store.workflow(&id).await.unwrap();
    assert_eq!(
        (after.version, after.definition),
        (before.version, before.definition)
    );
}

#[tokio::test]
async fn saving_the_editor_updates_the_workflow_and_delete_removes_it() {
    let (app, s) = app_with_workers().await;
    let id = import_workflow(&app, &s, &manual_then_set("Draft", "one")).await;

    let edited = serde_json::to_string(&manual_then_set("Final", "two")).unwrap();
    let (status, location, _) =
        submit(&app, &s, &format!("/workflows/{id}"), &[("json", &edited)]).await;
    assert_eq!(
        (status, location.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("/workflows/{id}?saved=1").as_str()
        )
    );
    let record = app.store.workflow(&id).await.unwrap();
    assert_eq!((record.name.as_str(), record.version), ("Final", 2));
    let (_, html) = get_page(&app, &s, &location).await;
    assert!(html.contains(r#"<h1 id="workflow-name">Final</h1>"#));

    let (status, location, _) = submit(&app, &s, &format!("/workflows/{id}/delete"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/workflows?deleted=1")
    );
    assert!(app.store.workflow(&id).await.is_err());
    let (status, _) = get_page(&app, &s, &format!("/workflows/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn activation_without_a_trigger_shows_why_and_a_webhook_workflow_activates() {
    let (app, s) = app_with_workers().await;
    let manual = import_workflow(&app, &s, &manual_then_set("By hand", "x")).await;

    let (status, _, html) = submit(
        &app,
        &s,
        &format!("/workflows/{manual}/activate"),
        &[("from", "show")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Could not activate"), "{html}");
    assert!(html.contains("no trigger that can start it"), "{html}");
    assert!(html.contains(r#"<h1 id="workflow-name">By hand</h1>"#));
    assert!(!app.store.workflow(&manual).await.unwrap().active);

    // From the list, the list shows the error.
    let (status, _, html) = submit(
        &app,
        &s,
        &format!("/workflows/{manual}/activate"),
        &[("from", "list")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("no trigger that can start it") && html.contains(r#"id="workflows""#));

    let hook = import_workflow(
        &app,
        &s,
        &json!({
            "name": "Hook",
            "nodes": [{"name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
                       "parameters": {"path": "pages-test", "httpMethod": "POST"}}],
            "connections": {}
        }),
    )
    .await;
    let (status, location, _) = submit(
        &app,
        &s,
        &format!("/workflows/{hook}/activate"),
        &[("from", "show")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("/workflows/{hook}?activated=1").as_str()
        )
    );
    assert!(app.store.workflow(&hook).await.unwrap().active);
    let (_, html) = get_page(&app, &s, &location).await;
    assert!(html.contains(r#"<span class="badge active">Active</span>"#));
    assert!(html.contains(&format!(r#"action="/workflows/{hook}/deactivate""#)));

    let (status, location, _) = submit(
        &app,
        &s,
        &format!("/workflows/{hook}/deactivate"),
        &[("from", "list")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/workflows")
    );
    assert!(!app.store.workflow(&hook).await.unwrap().active);
}

#[tokio::test]
async fn a_running_execution_page_refreshes_itself_and_can_be_cancelled() {
    let (app, s) = app_with_workers().await;
    let id = import_workflow(&app, &s,
            &json!({
                "name": "Slow",
                "nodes": [
                    {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "parameters": {}},
                    {"name": "Wait a minute", "type": "n8n-nodes-base.wait", "typeVersion": 1.1,
                     "parameters": {"resume": "timeInterval", "amount": 60, "unit": "seconds"}}
                ],
                "connections": {"Start": {"main": [[{"node": "Wait a minute", "type": "main", "index": 0}]]}}
            }),
        )
        .await;
    let (_, location, _) = submit(&app, &s, &format!("/workflows/{id}/run"), &[]).await;
    let execution = location.strip_prefix("/executions/").unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.store.execution(&execution).await.unwrap().status != "running" {
        assert!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (_, html) = get_page(&app, &s, &location).await;
    assert!(html.contains(r#"data-status="running""#));
    assert!(html.contains(r#"<meta http-equiv="refresh" content="1">"#));
    assert!(html.contains(r#"id="cancel""#) && !html.contains(r#"id="retry""#));

    let (status, back, _) = submit(&app, &s, &format!("/executions/{execution}/cancel"), &[]).await;
    assert_eq!(
        (status, back.as_str()),
        (StatusCode::SEE_OTHER, location.as_str())
    );
    let ended = runtime::wait_for(&app.state, &execution, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(ended.status, "cancelled");
    let (_, html) = get_page(&app, &s, &location).await;
    assert!(html.contains(r#"data-status="cancelled""#));
    assert!(!html.contains(r#"http-equiv="refresh""#));
    assert!(html.contains(r#"id="retry""#));
}
