//! The REST API under `/api/v1`: credential types and credentials.
//!
//! Shapes follow n8n's public API where one exists (a credential is created as
//! `{"name","type","data":{…}}`), so scripts written for it need few changes. Secret fields are
//! write-only: responses list which are set (`secretFieldsSet`) and never their values.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use ledgerflow_store::{CredentialPatch, NewCredential};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::connect;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A JSON body whose rejection is a clear API error instead of axum's plain text.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!(
                    "the JSON does not have the expected shape: {}",
                    e.body_text()
                ),
            )),
            Err(e) => Err(ApiError::bad_request("invalid_body", e.body_text())),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/credential-types", get(list_types))
        .route("/credential-types/{name}", get(get_type))
        .route(
            "/credentials",
            get(list_credentials).post(create_credential),
        )
        .route(
            "/credentials/{id}",
            get(get_credential)
                .patch(update_credential)
                .delete(delete_credential),
        )
        .route("/credentials/{id}/connect", post(connect_url))
        .route("/credentials/{id}/test", post(test_credential))
        .route(
            "/credentials/{id}/organisations/{tenant}",
            delete(disconnect_organisation),
        )
        .route("/openapi.json", get(openapi))
}

async fn list_types() -> Json<Value> {
    Json(json!({"data": ledgerflow_credentials::all().collect::<Vec<_>>()}))
}

async fn get_type(Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let ty = ledgerflow_credentials::get(&name)
        .ok_or_else(|| ApiError::not_found(format!("credential type '{name}'")))?;
    Ok(Json(json!(ty)))
}

async fn list_credentials(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"data": state.store.list_credentials().await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default = "empty_object")]
    data: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

async fn create_credential(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    let name = body.name.trim();
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "`name` must not be empty",
        ));
    }
    let split = ledgerflow_credentials::split_new(&body.type_name, &body.data)?;
    let cred = state
        .store
        .create_credential(NewCredential {
            name: name.to_string(),
            type_name: body.type_name,
            public: split.public,
            secret: split.secret,
        })
        .await?;
    tracing::info!(credential = %cred.id, r#type = %cred.type_name, "credential created");
    Ok((StatusCode::CREATED, Json(cred)))
}

/// A credential with, for OAuth2 types, its connection: status, scopes, expiry, organisations.
pub async fn credential_view(state: &AppState, id: &str) -> ApiResult<Value> {
    let cred = state.store.get_credential(id).await?;
    let mut v = json!(cred);
    let oauth = ledgerflow_credentials::get(&cred.type_name)
        .is_some_and(|t| t.auth == ledgerflow_credentials::AuthKind::OAuth2);
    if oauth {
        let mut conn = json!(state.store.oauth_status(id).await?);
        conn["organisations"] = json!(state.store.tenants(id).await?);
        conn["redirectUrl"] = json!(connect::redirect_url(&state.config));
        v["connection"] = conn;
        let health = state.store.webhook_health(id).await?;
        let mut hooks = json!(health);
        hooks["deliveryUrl"] = json!(crate::webhooks::delivery_url(&state.config, id));
        hooks["keySet"] = json!(cred.secret_fields_set.iter().any(|f| f == "webhookKey"));
        hooks["intentToReceivePassed"] = json!(health.intent_passed());
        v["webhooks"] = hooks;
    }
    Ok(v)
}

async fn get_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(credential_view(&state, &id).await?))
}

async fn connect_url(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let url = connect::start(&state, &id, &p.user.id).await?;
    Ok(Json(json!({
        "authorizeUrl": url,
        "redirectUrl": connect::redirect_url(&state.config),
        "expiresInSeconds": 600,
        "note": "Open authorizeUrl in a browser signed in to Ledgerflow as the same user; it works once."
    })))
}

async fn test_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<connect::TestReport>> {
    Ok(Json(connect::test(&state, &id).await?))
}

async fn disconnect_organisation(
    State(state): State<AppState>,
    Path((id, tenant)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    connect::disconnect(&state, &id, &tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    data: Option<Value>,
}

async fn update_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<impl IntoResponse> {
    let existing = state.store.get_credential(&id).await?;
    let ty = ledgerflow_credentials::get(&existing.type_name).ok_or_else(|| {
        ApiError::internal(format!(
            "credential {id} has unknown type {}",
            existing.type_name
        ))
    })?;
    let split = match &body.data {
        Some(d) => ty.split(d)?,
        None => Default::default(),
    };
    if body.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "`name` must not be empty",
        ));
    }
    let cred = state
        .store
        .update_credential(
            &id,
            CredentialPatch {
                name: body.name.map(|n| n.trim().to_string()),
                public: split.public,
                secret: split.secret,
            },
        )
        .await?;
    Ok(Json(cred))
}

#[derive(Deserialize, Default)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    connect::delete(&state, &id, q.force).await?;
    tracing::info!(credential = %id, "credential deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(state.config.public_url.as_str()))
}
