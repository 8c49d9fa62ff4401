//! A faithful, stateful emulator of Xero: identity (OAuth 2.0 + OpenID Connect), the Accounting
//! API, webhooks, rate limits and fault injection, served over HTTP on one origin.
//!
//! It is the stand-in for Xero in every test of Ledgerflow, the engine of the `--sandbox` demo
//! mode, and a feature users can run for their own offline testing. The product reaches it only
//! over HTTP, exactly as it reaches real Xero; the only other way in is the documented admin API
//! under `/_sandbox` (see [`admin`]).
//!
//! # One origin for every Xero host
//! | Xero | sandbox |
//! |---|---|
//! | `https://login.xero.com/identity/connect/authorize` | `{base}/identity/connect/authorize` |
//! | `https://identity.xero.com/connect/token` | `{base}/connect/token` |
//! | `https://identity.xero.com/connect/revocation` | `{base}/connect/revocation` |
//! | `https://identity.xero.com/connect/userinfo` | `{base}/connect/userinfo` |
//! | `https://identity.xero.com/.well-known/openid-configuration` (+ `/jwks`) | `{base}/.well-known/openid-configuration` (+ `/jwks`) |
//! | `https://api.xero.com/connections` | `{base}/connections`, `DELETE {base}/connections/{id}` |
//! | `https://api.xero.com/api.xro/2.0` | `{base}/api.xro/2.0` (paths case-insensitive) |
//! | developer portal "My Apps" | `{base}/portal` |
//! | online invoice (the link `OnlineInvoice` returns) | `{base}/online-invoice/{InvoiceID}` |
//! | (sandbox only) admin API | `{base}/_sandbox` (see [`admin`]) |
//!
//! # What is emulated
//! - **Identity**: registered apps (web or PKCE, creation date deciding whether broad scopes are
//!   still allowed), a demo app and a demo user with two organisations, sign-in and consent pages
//!   (`auto_approve` skips them), authorization codes (single use, 5 minutes), PKCE `S256`/`plain`,
//!   refresh-token rotation with a 30-minute grace period and 60-day idle expiry, revocation,
//!   EdDSA-signed access and id tokens, discovery, JWKS, userinfo, connections.
//! - **Accounting API** (`/api.xro/2.0`, stateful per organisation, seeded): Accounts,
//!   BankTransactions, BankTransfers, BatchPayments, BrandingThemes, ContactGroups
//!   (+ `/Contacts`), Contacts, CreditNotes (+ `/Allocations`), Currencies, Invoices (+ `/Email`,
//!   `/OnlineInvoice`, `/pdf`), InvoiceReminders/Settings, Items, Journals (`offset` paging),
//!   ManualJournals, Organisation (+ `/Actions`), Payments, PurchaseOrders, Quotes, TaxRates,
//!   TrackingCategories (+ `/Options`), Users; `…/{id}/History` and `…/{id}/Attachments` where
//!   Xero has them; Reports ProfitAndLoss, BalanceSheet, TrialBalance, BankSummary,
//!   ExecutiveSummary, AgedReceivablesByContact, AgedPayablesByContact. Every other documented
//!   path answers 501 with a JSON explanation; undocumented paths 404. JSON with
//!   `Accept: application/json`, XML otherwise (Xero's default), PDF with
//!   `Accept: application/pdf` on documents.
//! - **Limits and failures**: per-organisation and per-app rate limits with Xero's headers,
//!   injected faults (status, delay, dropped connection), a movable clock.
//! - **Webhooks**: signed, batched events for contacts, invoices and credit notes, retried with
//!   back-off (a webhook whose deliveries keep failing is disabled), and the intent-to-receive
//!   check.
//!
//! # Developer portal pages and element ids
//! | page | ids |
//! |---|---|
//! | `GET {base}/portal` ("My Apps") | `#apps`, `#new-app` |
//! | `GET {base}/portal/apps/new` | `#app-name`, `#integration-type` (`web` \| `pkce`), `#company-url`, `#redirect-uri`, `#create-app` |
//! | `GET {base}/portal/apps/{client_id}` | `#client-id`, `#generate-secret`, `#client-secret` (after generating), `#redirect-uris`, `#save-redirect-uris`, `#webhook-url`, `#save-webhook`, `#webhook-status`, `#webhook-key`, `#send-intent`, `#intent-result`, `#message` |
//! | sign-in (`/identity/connect/authorize`) | `#email`, `#password`, `#login`, `#login-error` |
//! | consent | `#organisations` with checkboxes `#org-0`, `#org-1` (`name="tenant"`), `#allow`, `#cancel` |
//! | error page | `#error-title`, `#error-detail` |
//!
//! # Using it
//! ```no_run
//! # async fn demo() -> Result<(), ledgerflow_sandbox::SandboxError> {
//! let sandbox = ledgerflow_sandbox::start(ledgerflow_sandbox::SandboxConfig {
//!     bind: "127.0.0.1:0".parse().expect("address"),
//!     auto_approve: true,
//!     ..Default::default()
//! })
//! .await?;
//! println!("{}", sandbox.describe());
//! let app = sandbox.demo_app();
//! # let _ = app;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Module map: [`identity`] (authorize, token, revocation, discovery, connections), [`portal`]
//! (developer "My Apps" pages), [`admin`] (`/_sandbox` JSON API), [`accounting`] (the Accounting
//! API: resources, queries, reports), [`webhooks`] (signed event delivery), [`limits`] (rate
//! limits), [`faults`] (injected failures), [`clock`] (movable time), [`seed`] (the demo ledger).

pub mod accounting;
pub mod admin;
pub mod clock;
pub mod faults;
mod html;
pub mod identity;
pub mod jwt;
pub mod limits;
mod online;
pub mod portal;
mod problem;
pub mod scopes;
pub mod seed;
mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use limits::RateLimits;
use state::Sandbox;

/// Everything that shapes a sandbox: where it listens, how long tokens live, how big the demo
/// ledger is and whether rate limits apply.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Listen address; port 0 picks a free port. Default `127.0.0.1:8090`.
    pub bind: SocketAddr,
    /// The origin clients use, when it differs from `http://{bind}` (e.g. behind a proxy).
    pub public_base_url: Option<String>,
    /// Test mode: `/identity/connect/authorize` approves every organisation of the demo user
    /// without showing the sign-in and consent pages.
    pub auto_approve: bool,
    /// Access token lifetime (Xero: 30 minutes).
    pub access_token_ttl: Duration,
    /// Authorisation code lifetime (Xero: 5 minutes).
    pub auth_code_ttl: Duration,
    /// How long a rotated refresh token is still accepted (Xero: 30 minutes).
    pub refresh_grace: Duration,
    /// A refresh token unused for this long is dead (Xero: 60 days).
    pub refresh_idle_expiry: Duration,
    /// Contacts generated per demo organisation.
    pub seed_contacts: usize,
    /// Invoices and bills generated per demo organisation.
    pub seed_invoices: usize,
    /// Seed of the random generator behind the demo ledger, so runs are reproducible.
    pub seed: u64,
    /// Redirect URIs registered on the demo app.
    pub demo_redirect_uris: Vec<String>,
    /// Rate limits; `None` switches them off (no 429s and no limit headers).
    pub rate_limits: Option<RateLimits>,
    /// How long webhook events are collected into one batch before delivery.
    pub webhook_batch_delay: Duration,
    /// First retry delay of a failed webhook delivery; doubles on every attempt.
    pub webhook_retry_base: Duration,
    /// Delivery attempts before a batch is given up.
    pub webhook_max_attempts: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8090)),
            public_base_url: None,
            auto_approve: false,
            access_token_ttl: Duration::from_secs(30 * 60),
            auth_code_ttl: Duration::from_secs(5 * 60),
            refresh_grace: Duration::from_secs(30 * 60),
            refresh_idle_expiry: Duration::from_secs(60 * 24 * 60 * 60),
            seed_contacts: 40,
            seed_invoices: 300,
            seed: 2026,
            demo_redirect_uris: vec![
                "http://localhost:5678/rest/oauth2-credential/callback".into(),
                "http://127.0.0.1:5678/rest/oauth2-credential/callback".into(),
                "http://localhost:8080/rest/oauth2-credential/callback".into(),
                "http://127.0.0.1:8080/rest/oauth2-credential/callback".into(),
            ],
            rate_limits: Some(RateLimits::default()),
            webhook_batch_delay: Duration::from_millis(200),
            webhook_retry_base: Duration::from_secs(1),
            webhook_max_attempts: 8,
        }
    }
}

/// The demo app registered in every fresh sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoApp {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listen address is taken or not allowed.
    #[error("sandbox could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Key generation failed.
    #[error("sandbox signing key: {0}")]
    Crypto(String),
    /// Building the sandbox (seeding the demo ledgers) failed.
    #[error("sandbox could not start: {0}")]
    Startup(String),
}

/// A sandbox serving on a socket; dropped or shut down, it stops.
pub struct RunningSandbox {
    base_url: String,
    sandbox: Arc<Sandbox>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl RunningSandbox {
    /// The origin every endpoint lives under, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Credentials of the demo app.
    pub fn demo_app(&self) -> DemoApp {
        self.sandbox.demo_app()
    }

    /// A human description of the sandbox: URLs, demo app and demo user.
    pub fn describe(&self) -> String {
        self.sandbox.describe()
    }

    /// Stops accepting connections, finishes in-flight requests and stops background work.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
        for task in &self.background {
            task.abort();
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.server.abort();
        for task in &self.background {
            task.abort();
        }
    }
}

/// Binds `config.bind` (port 0 allowed) and serves the sandbox on a spawned task.
pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: config.bind,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: config.bind,
        source,
    })?;
    let base_url = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    // Seeding a large ledger takes seconds in a debug build; keep it off the async workers.
    let seed_url = base_url.clone();
    let (sandbox, background) = tokio::task::spawn_blocking(move || Sandbox::new(config, seed_url))
        .await
        .map_err(|e| SandboxError::Startup(e.to_string()))??;
    let app = build_router(sandbox.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "sandbox server stopped");
        }
    });
    tracing::info!(%base_url, "Xero sandbox listening");
    Ok(RunningSandbox {
        base_url,
        sandbox,
        stop: Some(stop),
        server,
        background: vec![background],
    })
}

/// The sandbox as a router, to embed in another server. Its base URL is
/// `config.public_base_url`, or `http://{config.bind}`. Must be called inside a Tokio runtime
/// (the webhook sender is spawned on it).
///
/// # Panics
/// When the signing key cannot be generated (the system random source is unavailable).
pub fn router(config: SandboxConfig) -> Router {
    let base_url = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    let (sandbox, _background) =
        Sandbox::new(config, base_url).expect("the system random source is available");
    build_router(sandbox)
}

fn build_router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .merge(identity::router())
        .merge(portal::router())
        .merge(online::router())
        .merge(accounting::router())
        .layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            faults::middleware,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            state::count_calls,
        ))
        .merge(admin::router())
        .with_state(sandbox)
}
