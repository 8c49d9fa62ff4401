//! Xero client and node figures, printed, against the sandbox over loopback:
//! calls and wall time to read 20,000 invoices under Xero's default limits (with the theoretical
//! minimum), calls to create 500 contacts, and the client's overhead per call with limits off.
//! Run with `cargo bench -p ledgerflow-nodes-xero --bench xero`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ledgerflow_nodes_xero::{run, Input, XeroConnection};
use ledgerflow_xero::{catalogue, ApiRequest, Endpoints, LimitConfig, Target, XeroClient};
use secrecy::ExposeSecret;
use serde_json::json;

async fn setup(
    tune: impl FnOnce(&mut ledgerflow_sandbox::SandboxConfig),
) -> (
    ledgerflow_sandbox::RunningSandbox,
    XeroClient<ledgerflow_xero::testing::ConsentTokens>,
    XeroConnection,
) {
    let mut config = ledgerflow_sandbox::SandboxConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        auto_approve: true,
        ..Default::default()
    };
    tune(&mut config);
    let sandbox = ledgerflow_sandbox::start(config).await.unwrap();
    let endpoints = Endpoints::sandbox(&sandbox.base_url()).unwrap();
    let demo = sandbox.demo_app();
    let scopes = ledgerflow_xero::default_scopes(ledgerflow_xero::ScopeMode::Granular);
    let (tokens, conns) = ledgerflow_xero::testing::consent(
        &endpoints,
        &demo.client_id,
        &demo.client_secret,
        &demo.redirect_uris[0],
        &scopes,
    )
    .await
    .unwrap();
    let conn = XeroConnection {
        credential_id: "bench".into(),
        endpoints,
        tenants: conns
            .into_iter()
            .map(|c| (c.tenant_id, c.tenant_name.unwrap_or_default()))
            .collect(),
        granted_scopes: scopes.split_whitespace().map(str::to_string).collect(),
    };
    (
        sandbox,
        XeroClient::new(reqwest::Client::new(), tokens, LimitConfig::default()),
        conn,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // 20,000 invoices, Xero's default limits on.
    let (sandbox, client, conn) = setup(|c| c.seed_invoices = 20_000).await;
    let target = Target {
        credential_id: "bench".into(),
        tenant_id: Some(conn.tenants[0].0.clone()),
        endpoints: conn.endpoints.clone(),
    };
    let started = Instant::now();
    let all = client
        .pages(
            target.clone(),
            catalogue::resource("Invoices").unwrap(),
            ApiRequest::get("Invoices"),
        )
        .collect(None)
        .await
        .unwrap();
    let took = started.elapsed();
    let calls = client.stats.sent.load(Ordering::Relaxed);
    let minimum = all.len().div_ceil(1000);
    println!(
        "read {} invoices: {calls} calls in {:.2} s, {} 429s; theoretical minimum {minimum} calls (pages of 1,000), {:.2} min of rate budget at 60/min",
        all.len(),
        took.as_secs_f64(),
        client.stats.rate_limited.load(Ordering::Relaxed),
        minimum as f64 / 60.0
    );

    // 500 contacts from 500 items.
    let before = client.stats.sent.load(Ordering::Relaxed);
    let inputs: Vec<Input> = (0..500)
        .map(|i| Input {
            params: serde_json::from_value(json!({"resource": "contact", "operation": "create", "organisation": conn.tenants[0].0,
                "fields": {"Name": format!("Bench contact {i}")}})).unwrap(),
            attachment: None,
        })
        .collect();
    let started = Instant::now();
    let out = run(&client, &conn, "bench-contacts", &inputs).await;
    println!(
        "create 500 contacts: {} calls, {:.2} s, {} failed",
        client.stats.sent.load(Ordering::Relaxed) - before,
        started.elapsed().as_secs_f64(),
        out.iter().filter(|o| o.is_err()).count()
    );
    // Client overhead per call, limits off on both sides (the sandbox's and the client's own
    // limiter): the client against a bare request to the same URL.
    reqwest::Client::new()
        .put(format!("{}/_sandbox/limits", sandbox.base_url()))
        .json(&serde_json::Value::Null)
        .send()
        .await
        .unwrap();
    let unlimited = LimitConfig {
        concurrent: 1_000,
        per_minute: usize::MAX,
        window: std::time::Duration::from_secs(60),
    };
    let demo = sandbox.demo_app();
    let scopes = ledgerflow_xero::default_scopes(ledgerflow_xero::ScopeMode::Granular);
    let (tokens, _) = ledgerflow_xero::testing::consent(
        &conn.endpoints,
        &demo.client_id,
        &demo.client_secret,
        &demo.redirect_uris[0],
        &scopes,
    )
    .await
    .unwrap();
    let client = XeroClient::new(reqwest::Client::new(), tokens, unlimited);
    let target = Target {
        credential_id: "bench".into(),
        tenant_id: Some(conn.tenants[0].0.clone()),
        endpoints: conn.endpoints.clone(),
    };
    let token = ledgerflow_xero::AccessTokens::token(client.tokens(), "bench")
        .await
        .unwrap();
    let raw = reqwest::Client::new();
    let url = format!("{}/api.xro/2.0/Currencies", sandbox.base_url());
    let n = 3000;
    for _ in 0..200 {
        client
            .send(&target, &ApiRequest::get("Currencies"))
            .await
            .unwrap();
    }
    let t = Instant::now();
    for _ in 0..n {
        let r = raw
            .get(&url)
            .bearer_auth(token.expose_secret())
            .header("xero-tenant-id", &conn.tenants[0].0)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let _: serde_json::Value = r.json().await.unwrap();
    }
    let bare = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        client
            .send(&target, &ApiRequest::get("Currencies"))
            .await
            .unwrap();
    }
    let full = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "client overhead per call (limits off): {:.1} µs ({:.1} µs per call through the client, {:.1} µs bare)",
        (full - bare) * 1e6,
        full * 1e6,
        bare * 1e6
    );
    drop(sandbox);
}
