//! The HTTP server: REST API, web UI pages, health and metrics.
//!
//! This is the only crate that speaks axum. It holds no SQL (everything persistent goes through
//! `ledgerflow_store::Store`) and no remote API's wire format. [`app`] builds the whole router
//! from an [`AppState`], so tests can serve it on port 0 exactly as the binary does.
//!
//! Every route requires a signed-in user or an API key except `/healthz`, the sign-in and owner
//! set-up pages (which carry their own CSRF check), and, as they arrive, the OAuth callback and
//! webhook ingress, which have their own checks.

pub mod api;
pub mod auth;
pub mod connect;
pub mod credential_pages;
pub mod error;
pub mod html;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod runtime;
pub mod webhooks;
pub mod workflow_pages;
pub mod workflows_api;
pub mod xero_host;
pub mod xero_triggers;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ledgerflow_store::Store;

/// Settings the server needs at run time.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The URL people and remote services reach this server at. Redirect URLs are built from it,
    /// never from a request's Host header.
    pub public_url: url::Url,
    /// Origin of the Xero sandbox credentials in `sandbox` environment use (`serve --sandbox`).
    pub sandbox_url: Option<String>,
}

pub type Tokens = ledgerflow_oauth::TokenManager<connect::StoreTokens>;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<metrics::Metrics>,
    /// Outgoing HTTP (providers, Xero); one pool for the process.
    pub http: reqwest::Client,
    pub tokens: Arc<Tokens>,
    /// Woken when webhook events are stored, so they are routed without polling delay.
    pub webhook_events: Arc<tokio::sync::Notify>,
    /// Workflows: the engine, the worker pool's state, triggers.
    pub runtime: Arc<runtime::Runtime>,
    /// The process's Xero client and credential connections (shared rate limits).
    pub xero: Arc<xero_host::ServerXeroHost>,
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> Self {
        Self::with_runtime(store, config, runtime::RuntimeConfig::default())
    }

    pub fn with_runtime(
        store: Store,
        config: ServerConfig,
        runtime_config: runtime::RuntimeConfig,
    ) -> Self {
        let config = Arc::new(config);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .connect_timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("Ledgerflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let tokens = Arc::new(ledgerflow_oauth::TokenManager::new(
            connect::StoreTokens {
                store: store.clone(),
                config: config.clone(),
            },
            http.clone(),
        ));
        let xero = Arc::new(xero_host::ServerXeroHost::new(
            store.clone(),
            config.clone(),
            tokens.clone(),
            http.clone(),
        ));
        let engine = ledgerflow_engine::Engine::builder()
            .credentials(Arc::new(runtime::StoreCredentials {
                store: store.clone(),
                tokens: tokens.clone(),
            }))
            .workflows(Arc::new(runtime::StoreWorkflows {
                store: store.clone(),
            }))
            .http_client(http.clone())
            .node(ledgerflow_nodes_xero::XeroNode { host: xero.clone() })
            .node(ledgerflow_nodes_xero::triggers::XeroWebhookTriggerNode)
            .node(ledgerflow_nodes_xero::triggers::XeroPollTriggerNode)
            .build();
        AppState {
            store,
            config,
            metrics: Arc::new(metrics::Metrics::default()),
            http,
            tokens,
            webhook_events: Arc::new(tokio::sync::Notify::new()),
            runtime: Arc::new(runtime::Runtime::new(engine, runtime_config)),
            xero,
        }
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .nest("/api/v1", api::router().merge(workflows_api::router()))
        .route("/credentials", get(pages::credentials_list))
        .route(
            "/credentials/new",
            get(credential_pages::new_page).post(credential_pages::create),
        )
        .route(
            "/credentials/{id}",
            get(credential_pages::detail).post(credential_pages::update),
        )
        .route(
            "/credentials/{id}/connect",
            post(credential_pages::connect_start),
        )
        .route("/credentials/{id}/test", post(credential_pages::test))
        .route(
            "/credentials/{id}/organisations/{tenant}/disconnect",
            post(credential_pages::disconnect),
        )
        .route("/credentials/{id}/delete", post(credential_pages::delete))
        .route("/signout", post(pages::signout))
        .route("/nodes/xero", get(pages::xero_node_docs))
        .route(
            "/workflows",
            get(workflow_pages::list).post(workflow_pages::import),
        )
        .route(
            "/workflows/{id}",
            get(workflow_pages::show).post(workflow_pages::save),
        )
        .route("/workflows/{id}/run", post(workflow_pages::run))
        .route("/workflows/{id}/activate", post(workflow_pages::activate))
        .route(
            "/workflows/{id}/deactivate",
            post(workflow_pages::deactivate),
        )
        .route("/workflows/{id}/delete", post(workflow_pages::delete))
        .route("/executions", get(workflow_pages::executions))
        .route("/executions/{id}", get(workflow_pages::execution))
        .route("/executions/{id}/retry", post(workflow_pages::retry))
        .route("/executions/{id}/cancel", post(workflow_pages::cancel))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_user,
        ));
    let public = Router::new()
        .route("/", get(pages::root))
        .route("/healthz", get(healthz))
        .route(connect::CALLBACK_PATH, get(credential_pages::callback))
        .route(webhooks::XERO_PATH, post(webhooks::xero_ingress))
        .route(
            "/webhook/{*path}",
            axum::routing::any(workflows_api::webhook),
        )
        .route("/setup", get(pages::setup_form).post(pages::setup_submit))
        .route(
            "/signin",
            get(pages::signin_form).post(pages::signin_submit),
        );
    Router::new()
        .merge(protected)
        .merge(public)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes, then lets requests in
/// flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn not_found(req: Request) -> Response {
    error::ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

/// Logs each request (method, route, status, time; never query strings or bodies, which can
/// carry codes and secrets) and records it in the metrics.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let resp = next.run(req).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    state.metrics.record(method.as_str(), &route, status, took);
    tracing::info!(
        method = %method,
        route = %route,
        status,
        ms = took.as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    serde_json::json!({"status": "unavailable", "reason": "database unreachable"}),
                ),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let creds = state.store.count_credentials().await.unwrap_or(-1) as f64;
    let queued = state.store.count_executions("queued").await.unwrap_or(-1) as f64;
    let running = state.store.count_executions("running").await.unwrap_or(-1) as f64;
    let body = state.metrics.render(&[
        ("ledgerflow_credentials", "Credentials stored.", creds),
        (
            "ledgerflow_executions_queued",
            "Executions waiting for a worker.",
            queued,
        ),
        (
            "ledgerflow_executions_running",
            "Executions being run by any server.",
            running,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
