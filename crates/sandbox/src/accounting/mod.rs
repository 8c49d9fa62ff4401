//! The Accounting API under `/api.xro/2.0`.
pub mod ledger;
pub mod model;

use std::sync::Arc;

use axum::Router;

use crate::state::Sandbox;

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new()
}
