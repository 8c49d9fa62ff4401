//! Workflow and webhook figures, printed, for the whole server over loopback (SQLite):
//! a 5-node webhook workflow (Webhook → Set with an expression → If → Code → Respond to Webhook)
//! on 1 item and on 1,000 items, and signed Xero webhook deliveries accepted per second with
//! their acknowledgement latency. Run with `cargo bench -p ledgerflow-server --bench workflows`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledgerflow_server::{AppState, ServerConfig};
use ledgerflow_store::{Keyring, NewCredential, Store};
use serde_json::{json, Map, Value};

fn node(name: &str, ty: &str, version: f64, params: Value) -> Value {
    json!({"id": name, "name": name, "type": ty, "typeVersion": version, "position": [0, 0], "parameters": params})
}

fn workflow(path: &str, items: usize) -> Value {
    let code = "return $input.all().map(i => ({json: {...i.json, checked: true}}));";
    let make = format!(
        "return Array.from({{length: {items}}}, (_, n) => ({{json: {{n, amount: n % 500}}}}));"
    );
    json!({"name": format!("bench {path}"), "nodes": [
        node("Hook", "n8n-nodes-base.webhook", 2.0, json!({"httpMethod": "POST", "path": path, "responseMode": "responseNode"})),
        node("Items", "n8n-nodes-base.code", 2.0, json!({"jsCode": make})),
        node("Tax", "n8n-nodes-base.set", 3.4, json!({"mode": "manual", "includeOtherFields": true, "assignments": {"assignments": [
            {"id": "a", "name": "withTax", "value": "={{ $json.amount * 1.15 }}", "type": "number"}]}, "options": {}})),
        node("Big?", "n8n-nodes-base.if", 2.2, json!({"conditions": {"options": {"caseSensitive": true, "leftValue": "", "typeValidation": "strict"},
            "conditions": [{"id": "c", "leftValue": "={{ $json.withTax }}", "rightValue": 100, "operator": {"type": "number", "operation": "gt"}}], "combinator": "and"}, "options": {}})),
        node("Check", "n8n-nodes-base.code", 2.0, json!({"jsCode": code})),
        node("Reply", "n8n-nodes-base.respondToWebhook", 1.1, json!({"respondWith": "json", "responseBody": "={{ JSON.stringify({count: $input.all().length}) }}"})),
    ], "connections": {
        "Hook": {"main": [[{"node": "Items", "type": "main", "index": 0}]]},
        "Items": {"main": [[{"node": "Tax", "type": "main", "index": 0}]]},
        "Tax": {"main": [[{"node": "Big?", "type": "main", "index": 0}]]},
        "Big?": {"main": [[{"node": "Check", "type": "main", "index": 0}], [{"node": "Check", "type": "main", "index": 0}]]},
        "Check": {"main": [[{"node": "Reply", "type": "main", "index": 0}]]},
    }})
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3
}

async fn load(
    url: &str,
    body: String,
    headers: Vec<(String, String)>,
    total: usize,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let per = total / concurrency;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, body, headers) =
            (http.clone(), url.to_string(), body.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let mut r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (k, v) in &headers {
                    r = r.header(k, v);
                }
                let resp = r.send().await.unwrap();
                assert!(resp.status().is_success(), "{}", resp.status());
                let _ = resp.bytes().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / secs, all)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &ledgerflow_store::sqlite_url(home.path()),
        Keyring::load(home.path(), None).unwrap(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        store,
        ServerConfig {
            public_url: base.parse().unwrap(),
            sandbox_url: None,
        },
    );
    ledgerflow_server::runtime::spawn(&state);
    tokio::spawn(ledgerflow_server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));

    for (path, items, total) in [("one", 1usize, 2000usize), ("thousand", 1000, 100)] {
        let wf =
            ledgerflow_server::runtime::create_workflow(&state, &workflow(path, items).to_string())
                .await
                .unwrap();
        ledgerflow_server::runtime::set_active(&state, &wf.id, true)
            .await
            .unwrap();
        let url = format!("{base}/webhook/{path}");
        // Warm up.
        load(&url, "{}".into(), vec![], 16, 4).await;
        let (rate, lat) = load(&url, "{}".into(), vec![], total, 8).await;
        println!(
            "5-node webhook workflow, {items} item(s): {rate:.0} executions/s (8 concurrent callers, {} runs), latency p50 {:.1} ms, p99 {:.1} ms",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }

    // Signed Xero webhook deliveries.
    let obj = |v: Value| -> Map<String, Value> { v.as_object().unwrap().clone() };
    let key = "bench-webhook-key";
    let cred = state
        .store
        .create_credential(NewCredential {
            name: "Xero".into(),
            type_name: "xeroOAuth2Api".into(),
            public: obj(json!({"clientId": "x", "environment": "production"})),
            secret: obj(json!({"clientSecret": "y", "webhookKey": key})),
        })
        .await
        .unwrap();
    let url = format!("{base}/webhooks/xero/{}", cred.id);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let make = |n: usize| {
        json!({"events": [{"resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/x", "resourceId": format!("inv-{n}"),
            "eventDateUtc": "2026-12-03T10:00:00.000", "eventType": "UPDATE", "eventCategory": "INVOICE",
            "tenantId": "t", "tenantType": "ORGANISATION"}], "firstEventSequence": n, "lastEventSequence": n, "entropy": "E"})
        .to_string()
    };
    // Each request gets its own event; the signature covers the body.
    let http = reqwest::Client::new();
    let total = 4000;
    let concurrency = 16;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, counter) = (http.clone(), url.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let body = make(n);
                let sig = {
                    use base64::Engine;
                    use hmac::Mac;
                    let mut mac =
                        hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
                    mac.update(body.as_bytes());
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
                };
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .header("x-xero-signature", sig)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "signed Xero webhook deliveries: {:.0} accepted/s ({} deliveries, {concurrency} concurrent), acknowledgement p50 {:.2} ms, p99 {:.2} ms",
        lat.len() as f64 / secs,
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    println!(
        "peak RSS of this process (server, engine and load generator): {:.1} MiB",
        peak_rss_mib()
    );
}
