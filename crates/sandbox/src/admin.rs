//! The admin API under `/_sandbox`: the only documented way into the sandbox's state besides
//! the Xero endpoints themselves. JSON in, JSON out, no authentication (bind to localhost).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /_sandbox` | this index |
//! | `POST /_sandbox/reset` | back to a fresh start (demo app keeps its credentials) |
//! | `GET /_sandbox/apps` | registered apps (with secrets and webhook keys) |
//! | `POST /_sandbox/apps` | register an app: `{name, integration_type: "web"\|"pkce", redirect_uris, company_url?, created?: "YYYY-MM-DD", webhook_url?}` |
//! | `GET /_sandbox/apps/{client_id}` | one app |
//! | `PUT /_sandbox/apps/{client_id}/webhook` | `{url}`: set (or with `null` clear) the webhook delivery URL; returns the key |
//! | `POST /_sandbox/apps/{client_id}/webhook/intent` | run the intent-to-receive check |
//! | `GET /_sandbox/tenants` | organisations and their tenant ids |
//! | `GET /_sandbox/clock` | sandbox time and its offset |
//! | `POST /_sandbox/clock/advance` | `{seconds}`: move time forward |
//! | `GET /_sandbox/counters` | calls per endpoint, token calls per grant type, highest concurrency per tenant |
//! | `GET /_sandbox/limits`, `PUT /_sandbox/limits` | rate limits (`null` switches them off) |
//! | `GET /_sandbox/faults`, `POST /_sandbox/faults`, `DELETE /_sandbox/faults` | fault rules (see [`crate::faults::Fault`]) |
//! | `DELETE /_sandbox/faults/{id}` | remove one rule |
//! | `GET /_sandbox/webhooks` | webhook delivery attempts |
//! | `POST /_sandbox/webhooks/events` | queue an event as if the record had changed: `{tenant_id, category: "INVOICE"\|"CONTACT"\|"CREDITNOTE", event_type?: "CREATE"\|"UPDATE", resource_id}` |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::faults::Fault;
use crate::limits::RateLimits;
use crate::state::{lock, random_token, App, IntegrationType, Sandbox};
use crate::webhooks::intent_to_receive;

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/_sandbox", get(index))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/apps", get(list_apps).post(create_app))
        .route("/_sandbox/apps/{client_id}", get(get_app))
        .route("/_sandbox/apps/{client_id}/webhook", put(set_webhook))
        .route("/_sandbox/apps/{client_id}/webhook/intent", post(intent))
        .route("/_sandbox/tenants", get(tenants))
        .route("/_sandbox/clock", get(clock))
        .route("/_sandbox/clock/advance", post(advance))
        .route("/_sandbox/counters", get(counters))
        .route("/_sandbox/limits", get(get_limits).put(set_limits))
        .route(
            "/_sandbox/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sandbox/faults/{id}", delete(remove_fault))
        .route("/_sandbox/webhooks", get(deliveries))
        .route("/_sandbox/webhooks/events", post(queue_event))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no {what}")})),
    )
        .into_response()
}

async fn index(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!({
        "name": "Xero sandbox admin API",
        "base_url": sandbox.base_url,
        "endpoints": [
            {"method": "POST", "path": "/_sandbox/reset", "does": "back to a fresh start; the demo app keeps its credentials"},
            {"method": "GET", "path": "/_sandbox/apps", "does": "registered apps with client secrets and webhook keys"},
            {"method": "POST", "path": "/_sandbox/apps", "does": "register an app", "body": {"name": "string", "integration_type": "web | pkce", "redirect_uris": ["string"], "company_url": "string?", "created": "YYYY-MM-DD? (before 2026-03-02 allows broad scopes)", "webhook_url": "string?"}},
            {"method": "GET", "path": "/_sandbox/apps/{client_id}", "does": "one app"},
            {"method": "PUT", "path": "/_sandbox/apps/{client_id}/webhook", "does": "set or clear the webhook delivery URL", "body": {"url": "string | null"}},
            {"method": "POST", "path": "/_sandbox/apps/{client_id}/webhook/intent", "does": "send a correctly and a wrongly signed empty batch; passes on 200 then 401"},
            {"method": "GET", "path": "/_sandbox/tenants", "does": "organisations and tenant ids"},
            {"method": "GET", "path": "/_sandbox/clock", "does": "sandbox time and offset from real time"},
            {"method": "POST", "path": "/_sandbox/clock/advance", "does": "move time forward", "body": {"seconds": "integer"}},
            {"method": "GET", "path": "/_sandbox/counters", "does": "calls per endpoint, token calls per grant type, highest concurrency per tenant"},
            {"method": "GET", "path": "/_sandbox/limits", "does": "current rate limits (null = off)"},
            {"method": "PUT", "path": "/_sandbox/limits", "does": "replace rate limits; null switches them off", "body": {"concurrent": 5, "per_minute": 60, "per_day": 5000, "app_per_minute": 10000}},
            {"method": "GET", "path": "/_sandbox/faults", "does": "fault rules"},
            {"method": "POST", "path": "/_sandbox/faults", "does": "add a fault rule", "body": {"method": "GET?", "path": "/api.xro/2.0/Invoices (prefix, case-insensitive)", "status": "500 | 503 | 429 ?", "delay_ms": "integer?", "drop_connection": "bool?", "lose_response": "bool? (run the endpoint, then cut the connection: the change happens, the answer is lost)", "probability": "0..1?", "count": "integer?"}},
            {"method": "DELETE", "path": "/_sandbox/faults", "does": "remove all fault rules"},
            {"method": "DELETE", "path": "/_sandbox/faults/{id}", "does": "remove one fault rule"},
            {"method": "GET", "path": "/_sandbox/webhooks", "does": "webhook delivery attempts"},
            {"method": "POST", "path": "/_sandbox/webhooks/events", "does": "queue a webhook event as if a record had changed", "body": {"tenant_id": "uuid", "category": "INVOICE | CONTACT | CREDITNOTE", "event_type": "CREATE | UPDATE (default UPDATE)", "resource_id": "uuid"}}
        ]
    }))
}

async fn reset(State(sandbox): State<Arc<Sandbox>>) -> Response {
    // Seeding a large ledger takes seconds; keep it off the async workers.
    let worker = sandbox.clone();
    match tokio::task::spawn_blocking(move || worker.reset()).await {
        Ok(()) => Json(json!({"reset": true})).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": format!("reset failed: {error}")})),
        )
            .into_response(),
    }
}

/// Token endpoint calls of one grant type (successful and failed) in a `GET /_sandbox/counters`
/// answer, whose `grant_types` are keyed `"<grant type> ok"` and `"<grant type> error"`.
pub fn token_calls(counters: &Value, grant_type: &str) -> u64 {
    counters["grant_types"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.split(' ').next() == Some(grant_type))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// An app as the admin API shows it: everything, secrets included.
pub fn app_json(app: &App) -> Value {
    json!({
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "name": app.name,
        "integration_type": app.integration_type,
        "company_url": app.company_url,
        "redirect_uris": app.redirect_uris,
        "created": app.created,
        "webhook_url": app.webhook_url,
        "webhook_key": app.webhook_key,
        "webhook_status": if app.webhook_disabled { "disabled" } else { "enabled" },
    })
}

async fn list_apps(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let world = lock(&sandbox.world);
    Json(Value::Array(world.apps.iter().map(app_json).collect()))
}

async fn get_app(State(sandbox): State<Arc<Sandbox>>, Path(client_id): Path<String>) -> Response {
    match lock(&sandbox.world).app(&client_id) {
        Some(app) => Json(app_json(app)).into_response(),
        None => not_found("app with that client id"),
    }
}

#[derive(Debug, Deserialize)]
struct NewApp {
    name: String,
    #[serde(default = "default_type")]
    integration_type: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    company_url: String,
    #[serde(default)]
    created: Option<NaiveDate>,
    #[serde(default)]
    webhook_url: Option<String>,
}

fn default_type() -> String {
    "web".into()
}

/// Checks a redirect URI the way Xero's portal does: absolute, no fragment, https unless local.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|_| format!("'{uri}' is not an absolute URL"))?;
    if url.fragment().is_some() {
        return Err(format!("'{uri}' must not contain a fragment"));
    }
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && local) {
        return Err(format!(
            "'{uri}' must use https (http is allowed for localhost only)"
        ));
    }
    Ok(())
}

/// Registers an app; used by the admin API and the portal.
pub fn register_app(
    sandbox: &Sandbox,
    name: &str,
    integration_type: IntegrationType,
    company_url: &str,
    redirect_uris: Vec<String>,
    created: Option<NaiveDate>,
    with_secret: bool,
) -> Result<App, String> {
    if name.trim().is_empty() {
        return Err("App name is required".into());
    }
    if redirect_uris.is_empty() {
        return Err("At least one redirect URI is required".into());
    }
    if redirect_uris.len() > 50 {
        return Err("An app can have at most 50 redirect URIs".into());
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri)?;
    }
    let app = App {
        client_id: random_token(32).to_uppercase(),
        client_secret: (with_secret && integration_type == IntegrationType::Web)
            .then(|| random_token(48)),
        name: name.trim().to_owned(),
        integration_type,
        company_url: company_url.trim().to_owned(),
        redirect_uris,
        created: created.unwrap_or_else(|| sandbox.clock.now().date_naive()),
        webhook_url: None,
        webhook_key: random_token(64),
        webhook_disabled: false,
    };
    lock(&sandbox.world).apps.push(app.clone());
    Ok(app)
}

async fn create_app(State(sandbox): State<Arc<Sandbox>>, Json(new): Json<NewApp>) -> Response {
    let Some(kind) = IntegrationType::parse(&new.integration_type) else {
        return bad_request("integration_type must be 'web' or 'pkce'");
    };
    if let Some(url) = &new.webhook_url {
        if url::Url::parse(url).is_err() {
            return bad_request(format!("webhook_url '{url}' is not an absolute URL"));
        }
    }
    let mut app = match register_app(
        &sandbox,
        &new.name,
        kind,
        &new.company_url,
        new.redirect_uris,
        new.created,
        true,
    ) {
        Ok(app) => app,
        Err(message) => return bad_request(message),
    };
    if let Some(url) = new.webhook_url {
        if let Some(stored) = lock(&sandbox.world).app_mut(&app.client_id) {
            stored.webhook_url = Some(url.clone());
        }
        app.webhook_url = Some(url);
    }
    (StatusCode::CREATED, Json(app_json(&app))).into_response()
}

#[derive(Debug, Deserialize)]
struct WebhookSetting {
    url: Option<String>,
}

async fn set_webhook(
    State(sandbox): State<Arc<Sandbox>>,
    Path(client_id): Path<String>,
    Json(setting): Json<WebhookSetting>,
) -> Response {
    if let Some(url) = &setting.url {
        if url::Url::parse(url).is_err() {
            return bad_request(format!("'{url}' is not an absolute URL"));
        }
    }
    let mut world = lock(&sandbox.world);
    let Some(app) = world.app_mut(&client_id) else {
        return not_found("app with that client id");
    };
    app.webhook_url = setting.url;
    app.webhook_disabled = false;
    Json(json!({"url": app.webhook_url, "key": app.webhook_key, "status": "enabled"}))
        .into_response()
}

async fn intent(State(sandbox): State<Arc<Sandbox>>, Path(client_id): Path<String>) -> Response {
    let target = lock(&sandbox.world)
        .app(&client_id)
        .map(|a| (a.webhook_url.clone(), a.webhook_key.clone()));
    match target {
        None => not_found("app with that client id"),
        Some((None, _)) => bad_request("the app has no webhook delivery URL"),
        Some((Some(url), key)) => {
            let report = intent_to_receive(&url, &key).await;
            if report.passed {
                crate::webhooks::set_disabled(&sandbox, &client_id, false);
            }
            Json(report).into_response()
        }
    }
}

async fn tenants(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let world = lock(&sandbox.world);
    Json(Value::Array(
        world
            .orgs
            .iter()
            .map(|o| json!({"tenantId": o.tenant_id, "tenantName": o.name, "shortCode": o.short_code}))
            .collect(),
    ))
}

async fn clock(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!({"now": sandbox.clock.now(), "offset_seconds": sandbox.clock.offset_seconds()}))
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance(State(sandbox): State<Arc<Sandbox>>, Json(by): Json<Advance>) -> Response {
    if by.seconds < 0 {
        return bad_request("the sandbox clock only moves forward");
    }
    sandbox.clock.advance(chrono::Duration::seconds(by.seconds));
    Json(json!({"now": sandbox.clock.now(), "offset_seconds": sandbox.clock.offset_seconds()}))
        .into_response()
}

async fn counters(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let mut counters = lock(&sandbox.counters).clone();
    counters.max_concurrency = sandbox
        .limits
        .max_in_flight()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Json(json!(counters))
}

async fn get_limits(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!(sandbox.limits.limits()))
}

async fn set_limits(
    State(sandbox): State<Arc<Sandbox>>,
    Json(limits): Json<Option<RateLimits>>,
) -> Json<Value> {
    sandbox.limits.set_limits(limits);
    Json(json!(sandbox.limits.limits()))
}

async fn list_faults(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!(*lock(&sandbox.faults)))
}

async fn add_fault(State(sandbox): State<Arc<Sandbox>>, Json(fault): Json<Fault>) -> Response {
    if let Some(status) = fault.status {
        if !(400..=599).contains(&status) {
            return bad_request("status must be an HTTP error status such as 500, 503 or 429");
        }
    }
    if fault.status.is_none()
        && fault.delay_ms.is_none()
        && !fault.drop_connection
        && !fault.lose_response
    {
        return bad_request("a fault needs a status, a delay_ms, drop_connection or lose_response");
    }
    if fault.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return bad_request("probability must be between 0 and 1");
    }
    let created = fault.clone();
    lock(&sandbox.faults).push(fault);
    (StatusCode::CREATED, Json(json!(created))).into_response()
}

async fn clear_faults(State(sandbox): State<Arc<Sandbox>>) -> StatusCode {
    lock(&sandbox.faults).clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<Uuid>) -> StatusCode {
    let mut faults = lock(&sandbox.faults);
    let before = faults.len();
    faults.retain(|f| f.id != id);
    if faults.len() == before {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn deliveries(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!(sandbox.outbox.log()))
}

#[derive(Debug, Deserialize)]
struct QueuedEvent {
    tenant_id: Uuid,
    category: String,
    #[serde(default)]
    event_type: Option<String>,
    resource_id: String,
}

async fn queue_event(
    State(sandbox): State<Arc<Sandbox>>,
    Json(event): Json<QueuedEvent>,
) -> Response {
    let (category, resource) = match event.category.to_ascii_uppercase().as_str() {
        "INVOICE" => ("INVOICE", "Invoices"),
        "CONTACT" => ("CONTACT", "Contacts"),
        "CREDITNOTE" => ("CREDITNOTE", "CreditNotes"),
        _ => return bad_request("category must be INVOICE, CONTACT or CREDITNOTE"),
    };
    let event_type = match event
        .event_type
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("UPDATE") => "UPDATE",
        Some("CREATE") => "CREATE",
        Some(_) => return bad_request("event_type must be CREATE or UPDATE"),
    };
    if lock(&sandbox.world).org(event.tenant_id).is_none() {
        return not_found("organisation with that tenant id");
    }
    sandbox.outbox.push(crate::webhooks::Event {
        tenant_id: event.tenant_id,
        category,
        event_type,
        resource,
        resource_id: event.resource_id,
        at: sandbox.clock.now(),
    });
    (StatusCode::ACCEPTED, Json(json!({"queued": true}))).into_response()
}
