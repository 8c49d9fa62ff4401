//! Xero's identity service: the authorize pages (sign-in and consent), the token endpoint
//! (authorization code with PKCE, refresh-token rotation with a grace period, idle expiry),
//! revocation, OpenID discovery, JWKS, userinfo and the `/connections` tenant list.
//!
//! Owns OAuth semantics only; app registration lives in `portal`/`admin`, the look of pages in
//! `html`. Every expiry decision reads the sandbox clock.

mod authorize;
mod connections;
mod token;

use std::sync::Arc;

use axum::routing::{delete, get, post};
use axum::Router;
use chrono::Duration;

pub use connections::{bearer, Bearer};
pub use token::TokenError;

use crate::state::Sandbox;

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(
            "/identity/connect/authorize",
            get(authorize::authorize).post(authorize::authorize_form),
        )
        .route("/connect/token", post(token::token))
        .route("/connect/revocation", post(token::revocation))
        .route("/connect/userinfo", get(connections::userinfo))
        .route(
            "/.well-known/openid-configuration",
            get(connections::discovery),
        )
        .route(
            "/.well-known/openid-configuration/jwks",
            get(connections::jwks),
        )
        .route("/connections", get(connections::connections))
        .route("/Connections", get(connections::connections))
        .route("/connections/{id}", delete(connections::delete_connection))
        .route("/Connections/{id}", delete(connections::delete_connection))
}

pub(crate) fn chrono_duration(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}
