//! Sandbox figures, printed: start-up time and resident memory with the default seed and with
//! 20,000 invoices per organisation, and simple GET throughput with limits off, over loopback.
//! Run with `cargo bench -p ledgerflow-sandbox --bench sandbox`.

use std::time::{Duration, Instant};

use ledgerflow_sandbox::SandboxConfig;
use serde_json::Value;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// An access token and a tenant id through the auto-approving authorize endpoint.
async fn token(base: &str, demo: &ledgerflow_sandbox::DemoApp) -> (String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = &demo.redirect_uris[0];
    let mut url = reqwest::Url::parse(&format!("{base}/identity/connect/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &demo.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid offline_access accounting.settings")
        .append_pair("state", "s");
    let location = http.get(url).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let code = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = http
        .post(format!("{base}/connect/token"))
        .basic_auth(&demo.client_id, Some(&demo.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let conns: Value = http
        .get(format!("{base}/connections"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (access, conns[0]["tenantId"].as_str().unwrap().to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for (label, invoices) in [
        ("default seed", SandboxConfig::default().seed_invoices),
        ("20,000 invoices per organisation", 20_000),
    ] {
        let before = rss_mib();
        let t = Instant::now();
        let sandbox = ledgerflow_sandbox::start(SandboxConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            auto_approve: true,
            rate_limits: None,
            seed_invoices: invoices,
            ..Default::default()
        })
        .await
        .unwrap();
        let base = sandbox.base_url();
        while reqwest::get(format!("{base}/.well-known/openid-configuration"))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started = t.elapsed();
        println!(
            "sandbox, {label}: ready in {:.0} ms, resident memory {:.1} MiB (process grew by {:.1} MiB)",
            started.as_secs_f64() * 1e3,
            rss_mib(),
            rss_mib() - before
        );
        if invoices != 20_000 {
            let (access, tenant) = token(&base, &sandbox.demo_app()).await;
            let http = reqwest::Client::new();
            let url = format!("{base}/api.xro/2.0/Organisation");
            let total = 20_000;
            let concurrency = 16;
            let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let t = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (http, url, access, tenant, counter) = (
                    http.clone(),
                    url.clone(),
                    access.clone(),
                    tenant.clone(),
                    counter.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    while counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                        let r = http
                            .get(&url)
                            .bearer_auth(&access)
                            .header("xero-tenant-id", &tenant)
                            .header("accept", "application/json")
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                        let _ = r.bytes().await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            println!(
                "sandbox GET /Organisation, limits off: {:.0} requests/s ({total} requests, {concurrency} concurrent, loopback)",
                total as f64 / t.elapsed().as_secs_f64()
            );
        }
        drop(sandbox);
    }
}
