//! REST API for workflows and executions under `/api/v1`, and the public webhook trigger
//! route `/webhook/{path}`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledgerflow_engine::{WebhookBody, WebhookRequest};
use ledgerflow_store::{ExecutionFilter, ExecutionRecord, WorkflowRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::runtime;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/workflows", get(list).post(create))
        .route("/workflows/{id}", get(show).put(update).delete(remove))
        .route("/workflows/{id}/activate", post(activate))
        .route("/workflows/{id}/deactivate", post(deactivate))
        .route("/workflows/{id}/run", post(run))
        .route("/executions", get(executions))
        .route("/executions/{id}", get(execution))
        .route("/executions/{id}/retry", post(retry))
        .route("/executions/{id}/cancel", post(cancel))
}

fn workflow_json(w: &WorkflowRecord, with_definition: bool) -> Value {
    let mut v = json!(w);
    if with_definition {
        v["definition"] = serde_json::from_str(&w.definition).unwrap_or(Value::Null);
    }
    v
}

/// An execution as the API shows it; run data and trigger input when `full`.
pub fn execution_json(e: &ExecutionRecord, full: bool) -> Value {
    let mut v = json!(e);
    if let (Some(started), Some(finished)) = (e.started_at, e.finished_at) {
        v["durationMs"] = json!(finished - started);
    }
    if full {
        v["runData"] = e
            .run_data
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        v["triggerData"] = serde_json::from_str(&e.trigger_data).unwrap_or(Value::Null);
    }
    v
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let all = state.store.workflows().await?;
    Ok(Json(
        json!({"data": all.iter().map(|w| workflow_json(w, false)).collect::<Vec<_>>()}),
    ))
}

async fn create(State(state): State<AppState>, body: Bytes) -> ApiResult<impl IntoResponse> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8 JSON"))?;
    let w = runtime::create_workflow(&state, text).await?;
    Ok((StatusCode::CREATED, Json(workflow_json(&w, true))))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(workflow_json(&state.store.workflow(&id).await?, true)))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the body is not UTF-8 JSON"))?;
    Ok(Json(workflow_json(
        &runtime::update_workflow(&state, &id, text).await?,
        true,
    )))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.delete_workflow(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn activate(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(workflow_json(
        &runtime::set_active(&state, &id, true).await?,
        false,
    )))
}

async fn deactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(workflow_json(
        &runtime::set_active(&state, &id, false).await?,
        false,
    )))
}

#[derive(Deserialize, Default)]
struct RunQuery {
    /// Wait up to this many seconds for the execution to end.
    #[serde(default)]
    wait: Option<u64>,
}

async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> ApiResult<impl IntoResponse> {
    let e = runtime::run_manual(&state, &id).await?;
    let e = match q.wait {
        Some(secs) => runtime::wait_for(&state, &e.id, Duration::from_secs(secs.min(300))).await?,
        None => e,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(execution_json(&e, q.wait.is_some())),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExecutionsQuery {
    workflow_id: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn executions(
    State(state): State<AppState>,
    Query(q): Query<ExecutionsQuery>,
) -> ApiResult<Json<Value>> {
    let list = state
        .store
        .executions(&ExecutionFilter {
            workflow_id: q.workflow_id,
            status: q.status,
            limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
        })
        .await?;
    Ok(Json(
        json!({"data": list.iter().map(|e| execution_json(e, false)).collect::<Vec<_>>()}),
    ))
}

async fn execution(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(execution_json(
        &state.store.execution(&id).await?,
        true,
    )))
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let e = runtime::retry(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(execution_json(&e, false))))
}

async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let cancelled = runtime::cancel(&state, &id).await?;
    Ok(Json(json!({"cancelled": cancelled})))
}

/// `ANY /webhook/{path}`: starts the active workflow listening there.
pub async fn webhook(
    State(state): State<AppState>,
    Path(path): Path<String>,
    method: Method,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_map: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let content_type = header_map.get("content-type").cloned().unwrap_or_default();
    let (parsed, raw) = if body.is_empty() {
        (Value::Object(Map::new()), None)
    } else if content_type.contains("json") {
        match serde_json::from_slice(&body) {
            Ok(v) => (v, None),
            Err(e) => {
                return ApiError::bad_request(
                    "invalid_json",
                    format!("the request body is not valid JSON: {e}"),
                )
                .into_response()
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let map: Map<String, Value> = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        (Value::Object(map), None)
    } else {
        (
            Value::Object(Map::new()),
            Some((content_type.clone(), body.to_vec())),
        )
    };
    let request = WebhookRequest {
        method: method.as_str().to_string(),
        headers: header_map,
        params: Map::new(),
        query: query
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        body: parsed,
        raw_body: raw,
    };
    match runtime::handle_webhook(&state, method.as_str(), &path, request).await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            let mut resp = match r.body {
                WebhookBody::Json(v) => (status, Json(v)).into_response(),
                WebhookBody::Text(t) => (status, t).into_response(),
                WebhookBody::Empty => status.into_response(),
                WebhookBody::Binary { mime_type, data } => {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    (
                        status,
                        [(axum::http::header::CONTENT_TYPE, mime_type)],
                        bytes,
                    )
                        .into_response()
                }
            };
            for (k, v) in r.headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::try_from(k.as_str()),
                    axum::http::HeaderValue::try_from(v.as_str()),
                ) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}
