//! Token manager figures, printed: access-token hand-out latency when the token is fresh (p50,
//! p99), throughput under 200 concurrent callers, and refresh calls per credential when 200
//! callers meet an expired token. Against the Xero sandbox over loopback, SQLite store.
//! Run with `cargo bench -p ledgerflow-server --bench tokens`.

use std::time::{Duration, Instant};

use ledgerflow_server::connect::{self, CallbackQuery};
use ledgerflow_server::{AppState, ServerConfig};
use ledgerflow_store::{Keyring, NewCredential, Store};
use serde_json::{json, Map, Value};

async fn connected_credential(state: &AppState, sandbox: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app: Value = http
        .post(format!("{sandbox}/_sandbox/apps"))
        .json(&json!({"name": "bench", "redirect_uris": [connect::redirect_url(&state.config)]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = state
        .store
        .create_owner("bench@example.com", "x")
        .await
        .unwrap();
    let obj = |v: Value| -> Map<String, Value> { v.as_object().unwrap().clone() };
    let cred = state
        .store
        .create_credential(NewCredential {
            name: "bench".into(),
            type_name: "xeroOAuth2Api".into(),
            public: obj(json!({"clientId": app["client_id"], "environment": "sandbox"})),
            secret: obj(json!({"clientSecret": app["client_secret"]})),
        })
        .await
        .unwrap();
    let authorize = connect::start(state, &cred.id, &owner.id).await.unwrap();
    let back = http.get(&authorize).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let q: std::collections::HashMap<String, String> = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let query = CallbackQuery {
        code: q.get("code").cloned(),
        state: q.get("state").cloned(),
        ..Default::default()
    };
    connect::finish(state, &query, Some(&owner.id))
        .await
        .unwrap();
    cred.id
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sandbox = ledgerflow_sandbox::start(ledgerflow_sandbox::SandboxConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        auto_approve: true,
        rate_limits: None,
        seed_invoices: 5,
        access_token_ttl: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &ledgerflow_store::sqlite_url(home.path()),
        Keyring::load(home.path(), None).unwrap(),
    )
    .await
    .unwrap();
    let state = AppState::new(
        store,
        ServerConfig {
            public_url: "http://127.0.0.1:8080".parse().unwrap(),
            sandbox_url: Some(sandbox.base_url()),
        },
    );
    let cred = connected_credential(&state, &sandbox.base_url()).await;

    // Fresh token, one caller at a time.
    state.tokens.access_token(&cred).await.unwrap();
    let n = 100_000;
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        state.tokens.access_token(&cred).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "token hand-out, fresh token ({n} calls): p50 {:.2} µs, p99 {:.2} µs",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );

    // 200 concurrent callers.
    let per = 2_000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (tokens, cred) = (state.tokens.clone(), cred.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                tokens.access_token(&cred).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "token hand-out, 200 concurrent callers: {:.0} tokens/s ({} calls in {:.2} s)",
        (200 * per) as f64 / secs,
        200 * per,
        secs
    );

    // 200 callers meet an expired token: how many refreshes reach Xero.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let before = state.tokens.refresh_count();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (tokens, cred) = (state.tokens.clone(), cred.clone());
        tasks.push(tokio::spawn(async move {
            tokens.access_token(&cred).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "200 concurrent callers on an expired token: {} refresh call(s) for the credential, all served in {:.1} ms",
        state.tokens.refresh_count() - before,
        started.elapsed().as_secs_f64() * 1e3
    );
    sandbox.shutdown().await;
}
