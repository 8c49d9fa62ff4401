//! The shared state of one sandbox: registered apps, the demo user, organisations and their
//! ledgers, OAuth grants and connections, counters. Handlers lock [`World`] briefly and never
//! across an `.await`; each organisation's ledger has its own lock so a long report does not
//! block the identity endpoints.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::accounting::ledger::Ledger;
use crate::clock::Clock;
use crate::faults::Fault;
use crate::jwt::TokenSigner;
use crate::limits::Limiter;
use crate::webhooks::Outbox;
use crate::{DemoApp, SandboxConfig, SandboxError};

/// How an app authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IntegrationType {
    /// Confidential client with a secret ("Web app").
    #[serde(rename = "web")]
    Web,
    /// Public client proving possession with PKCE, no secret.
    #[serde(rename = "pkce")]
    Pkce,
}

impl IntegrationType {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "web" | "web app" | "webapp" => Some(Self::Web),
            "pkce" | "mobile" | "desktop" => Some(Self::Pkce),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Web => "Web app",
            Self::Pkce => "Auth code with PKCE",
        }
    }
}

/// An app registered in the developer portal.
#[derive(Debug, Clone, Serialize)]
pub struct App {
    pub client_id: String,
    /// `None` until a secret is generated (and always for PKCE apps).
    #[serde(skip_serializing)]
    pub client_secret: Option<String>,
    pub name: String,
    pub integration_type: IntegrationType,
    pub company_url: String,
    pub redirect_uris: Vec<String>,
    /// Decides whether broad scopes are still allowed (before 2 March 2026).
    pub created: NaiveDate,
    pub webhook_url: Option<String>,
    #[serde(skip_serializing)]
    pub webhook_key: String,
    /// Set when deliveries kept failing, as Xero disables a webhook; saving the URL or passing
    /// the intent-to-receive check enables it again.
    pub webhook_disabled: bool,
}

/// A Xero user who can sign in on the consent page.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    pub given_name: String,
    pub family_name: String,
    pub tenants: Vec<Uuid>,
}

/// An organisation (tenant) and its ledger.
#[derive(Debug, Clone)]
pub struct Org {
    pub tenant_id: Uuid,
    pub name: String,
    pub short_code: String,
    pub ledger: Arc<Mutex<Ledger>>,
}

/// An authorisation code waiting to be exchanged.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub user_id: Uuid,
    pub auth_event_id: Uuid,
    pub challenge: Option<(String, String)>,
    pub nonce: Option<String>,
    pub expires: DateTime<Utc>,
    pub used: bool,
}

/// One consent's chain of refresh tokens.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub user_id: Uuid,
    pub auth_event_id: Uuid,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

/// One refresh token of a grant.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub grant_id: Uuid,
    pub issued: DateTime<Utc>,
    /// When it was exchanged for a newer token; it stays usable for the grace period.
    pub rotated: Option<DateTime<Utc>>,
}

/// A tenant connected to an app by a user, as `GET /connections` lists it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub auth_event_id: Uuid,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Identity and registry state.
#[derive(Debug, Default)]
pub struct World {
    pub apps: Vec<App>,
    pub users: Vec<User>,
    pub orgs: Vec<Org>,
    pub login_tickets: HashMap<String, (Uuid, DateTime<Utc>)>,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<Uuid, Grant>,
    pub refresh_tokens: HashMap<String, RefreshRecord>,
    pub connections: Vec<Connection>,
}

impl World {
    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    pub fn app_mut(&mut self, client_id: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.client_id == client_id)
    }

    pub fn user(&self, id: Uuid) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn org(&self, tenant_id: Uuid) -> Option<&Org> {
        self.orgs.iter().find(|o| o.tenant_id == tenant_id)
    }
}

/// Calls seen since the last reset, for the admin API.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// `"METHOD /path/template"` → calls.
    pub endpoints: BTreeMap<String, u64>,
    /// Token endpoint grant type → successful and failed calls.
    pub grant_types: BTreeMap<String, u64>,
    /// Tenant id → highest number of Accounting calls in flight at once.
    pub max_concurrency: BTreeMap<String, usize>,
}

/// One running sandbox.
pub struct Sandbox {
    pub config: SandboxConfig,
    pub base_url: String,
    pub clock: Clock,
    pub signer: TokenSigner,
    pub world: Mutex<World>,
    pub limits: Limiter,
    pub counters: Mutex<Counters>,
    pub faults: Mutex<Vec<Fault>>,
    pub outbox: Outbox,
    demo: DemoApp,
}

/// The demo user's sign-in, shown by [`Sandbox::describe`].
pub const DEMO_EMAIL: &str = "demo@sandbox.ledgerflow.dev";
pub const DEMO_PASSWORD: &str = "sandbox";
/// The demo organisations.
pub const DEMO_ORGS: &[(&str, &str)] = &[
    ("Sandbox Trading Ltd", "!SbTr1"),
    ("Sandbox Services Ltd", "!SbSv2"),
];

thread_local! {
    static ID_STATE: std::cell::Cell<u64> = std::cell::Cell::new(rand::thread_rng().gen());
}

/// A random (version 4) UUID for record ids. Seeding creates hundreds of thousands of them, so
/// they come from a per-thread SplitMix64 sequence seeded from the system generator rather than
/// a system call or a cryptographic generator each; ids need to be unique, not secret.
pub fn new_uuid() -> Uuid {
    let next = || {
        ID_STATE.with(|state| {
            let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let (high, low) = (next(), next());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_le_bytes());
    bytes[8..].copy_from_slice(&low.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A random token of `len` URL-safe characters.
pub fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (state stays usable).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sandbox {
    /// Builds a sandbox and spawns its webhook sender.
    pub fn new(
        config: SandboxConfig,
        base_url: String,
    ) -> Result<(Arc<Self>, tokio::task::JoinHandle<()>), SandboxError> {
        let demo = DemoApp {
            client_id: random_token(32).to_uppercase(),
            client_secret: random_token(48),
            redirect_uris: config.demo_redirect_uris.clone(),
        };
        let (outbox, receiver) = Outbox::new();
        let sandbox = Arc::new(Self {
            limits: Limiter::new(config.rate_limits.clone()),
            signer: TokenSigner::generate()?,
            clock: Clock::default(),
            world: Mutex::new(World::default()),
            counters: Mutex::new(Counters::default()),
            faults: Mutex::new(Vec::new()),
            outbox,
            demo,
            base_url: base_url.trim_end_matches('/').to_owned(),
            config,
        });
        sandbox.reset();
        let sender = tokio::spawn(crate::webhooks::run_sender(
            Arc::downgrade(&sandbox),
            receiver,
        ));
        Ok((sandbox, sender))
    }

    pub fn demo_app(&self) -> DemoApp {
        self.demo.clone()
    }

    /// Back to the state of a fresh start: demo app, demo user, freshly seeded ledgers, real
    /// time, no grants, counters, faults or webhook history.
    pub fn reset(&self) {
        self.clock.reset();
        let now = self.clock.now();
        let mut world = World::default();
        world.apps.push(App {
            client_id: self.demo.client_id.clone(),
            client_secret: Some(self.demo.client_secret.clone()),
            name: "Ledgerflow Sandbox Demo".into(),
            integration_type: IntegrationType::Web,
            company_url: "https://ledgerflow.dev".into(),
            redirect_uris: self.demo.redirect_uris.clone(),
            created: now.date_naive(),
            webhook_url: None,
            webhook_key: random_token(64),
            webhook_disabled: false,
        });
        // Organisations are seeded in parallel: a 20,000-invoice ledger takes a few seconds
        // in an unoptimised build.
        let orgs: Vec<Org> = std::thread::scope(|scope| {
            let workers: Vec<_> = DEMO_ORGS
                .iter()
                .enumerate()
                .map(|(index, (name, short_code))| {
                    scope.spawn(move || {
                        let tenant_id = Uuid::new_v4();
                        let ledger = crate::seed::demo_ledger(
                            &crate::seed::SeedSpec {
                                name,
                                short_code,
                                tenant_id,
                                contacts: self.config.seed_contacts,
                                invoices: self.config.seed_invoices,
                                seed: self.config.seed.wrapping_add(index as u64),
                            },
                            now,
                        );
                        Org {
                            tenant_id,
                            name: (*name).to_owned(),
                            short_code: (*short_code).to_owned(),
                            ledger: Arc::new(Mutex::new(ledger)),
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|worker| worker.join().ok())
                .collect()
        });
        let tenants = orgs.iter().map(|o| o.tenant_id).collect();
        world.orgs = orgs;
        world.users.push(User {
            id: Uuid::new_v4(),
            email: DEMO_EMAIL.into(),
            password: DEMO_PASSWORD.into(),
            given_name: "Demo".into(),
            family_name: "User".into(),
            tenants,
        });
        *lock(&self.world) = world;
        *lock(&self.counters) = Counters::default();
        lock(&self.faults).clear();
        self.limits.reset();
        self.outbox.clear_log();
    }

    /// Counts one call of an endpoint.
    pub fn count(&self, key: String) {
        *lock(&self.counters).endpoints.entry(key).or_default() += 1;
    }

    pub fn describe(&self) -> String {
        let world = lock(&self.world);
        let orgs: Vec<String> = world
            .orgs
            .iter()
            .map(|o| format!("    - {} (tenant {})", o.name, o.tenant_id))
            .collect();
        let base = &self.base_url;
        format!(
            "Xero sandbox at {base}\n\
             \n\
             Demo app\n\
             \x20   client id:      {client_id}\n\
             \x20   client secret:  {client_secret}\n\
             \x20   redirect URIs:  {redirects}\n\
             Demo user (consent page sign-in)\n\
             \x20   email:     {DEMO_EMAIL}\n\
             \x20   password:  {DEMO_PASSWORD}\n\
             \x20   organisations:\n{orgs}\n\
             \n\
             Endpoints\n\
             \x20   authorize:     {base}/identity/connect/authorize\n\
             \x20   token:         {base}/connect/token\n\
             \x20   revocation:    {base}/connect/revocation\n\
             \x20   connections:   {base}/connections\n\
             \x20   accounting:    {base}/api.xro/2.0\n\
             \x20   discovery:     {base}/.well-known/openid-configuration\n\
             \x20   My Apps:       {base}/portal\n\
             \x20   admin API:     {base}/_sandbox\n",
            client_id = self.demo.client_id,
            client_secret = self.demo.client_secret,
            redirects = self.demo.redirect_uris.join(", "),
            orgs = orgs.join("\n"),
        )
    }
}

/// Counts every call outside the Accounting API (which counts its own, per resource).
pub async fn count_calls(
    State(sandbox): State<Arc<Sandbox>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.to_ascii_lowercase().starts_with("/api.xro/") {
        let template = request
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| path.to_owned());
        sandbox.count(format!("{} {}", request.method(), template));
    }
    next.run(request).await
}
