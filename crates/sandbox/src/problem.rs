//! Error responses of the API hosts (`/connections`, `/api.xro/2.0`), in the shapes Xero sends.
//! Token-endpoint errors (`{"error":"invalid_grant"}`) live in `identity`, HTML error pages in
//! `html`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A failed API call. Each variant's doc names its HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// 401: no, malformed, forged or expired bearer token (`detail` is e.g. `TokenExpired: …`).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 401 with `WWW-Authenticate: Bearer error="insufficient_scope"`.
    #[error("insufficient scope: needs {0}")]
    InsufficientScope(String),
    /// 403: `xero-tenant-id` missing, malformed or not connected to this token.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("not found")]
    NotFound,
    /// 400 with Xero's `ValidationException` body (already built).
    #[error("validation exception")]
    Validation(Value),
    /// 400 for a request Xero cannot read (bad JSON, bad `where`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 501: a documented Xero path the sandbox does not emulate.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let instance = crate::state::new_uuid().to_string();
        match self {
            Problem::Unauthorized(detail) => {
                let challenge = if detail.starts_with("TokenExpired") {
                    "Bearer error=\"invalid_token\", error_description=\"The token expired\""
                } else {
                    "Bearer error=\"invalid_token\""
                };
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": detail, "Instance": instance, "Extensions": {}})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                response
            }
            Problem::InsufficientScope(needed) => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"Type": null, "Title": "Unauthorized", "Status": 401,
                        "Detail": "AuthorizationUnsuccessful", "Instance": instance, "Extensions": {}})),
                )
                    .into_response();
                let challenge = format!(
                    "Bearer error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token.\", scope=\"{needed}\""
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Problem::Forbidden(detail) => (
                StatusCode::FORBIDDEN,
                Json(json!({"Type": null, "Title": "Forbidden", "Status": 403, "Detail": detail, "Instance": instance, "Extensions": {}})),
            )
                .into_response(),
            Problem::NotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"Title": "NotFound", "Status": 404, "Detail": "The resource you're looking for cannot be found"})),
            )
                .into_response(),
            Problem::Validation(body) => (StatusCode::BAD_REQUEST, Json(body)).into_response(),
            Problem::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message})),
            )
                .into_response(),
            Problem::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"Title": "MethodNotAllowed", "Status": 405, "Detail": "The method is not allowed for this resource"})),
            )
                .into_response(),
            Problem::NotImplemented(what) => (
                StatusCode::NOT_IMPLEMENTED,
                Json(json!({"Title": "NotImplemented", "Status": 501,
                    "Detail": format!("The Xero sandbox does not emulate {what} yet. It is part of the real Xero API; test it against a Xero demo company.")})),
            )
                .into_response(),
        }
    }
}
