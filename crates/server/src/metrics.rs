//! Prometheus text metrics: request counts and latency by route and status, process memory,
//! uptime, and a few gauges read from the store at scrape time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Route {
    count: u64,
    seconds: f64,
}

pub struct Metrics {
    started: Instant,
    // (method, route template, status) → totals. Route templates keep the label set small.
    routes: Mutex<BTreeMap<(String, String, u16), Route>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            routes: Mutex::new(BTreeMap::new()),
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Resident set size of this process in bytes, from /proc (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let r = routes
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        r.count += 1;
        r.seconds += took.as_secs_f64();
    }

    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP ledgerflow_http_requests_total HTTP requests answered.\n# TYPE ledgerflow_http_requests_total counter\n");
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for ((m, r, s), v) in routes.iter() {
            out.push_str(&format!(
                "ledgerflow_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {}\n",
                label(m),
                label(r),
                v.count
            ));
        }
        out.push_str("# HELP ledgerflow_http_request_seconds_sum Time spent answering HTTP requests.\n# TYPE ledgerflow_http_request_seconds_sum counter\n");
        for ((m, r, s), v) in routes.iter() {
            out.push_str(&format!(
                "ledgerflow_http_request_seconds_sum{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {:.6}\n",
                label(m),
                label(r),
                v.seconds
            ));
        }
        drop(routes);
        out.push_str(&format!(
            "# HELP ledgerflow_uptime_seconds Seconds since the server started.\n# TYPE ledgerflow_uptime_seconds gauge\nledgerflow_uptime_seconds {:.3}\n",
            self.started.elapsed().as_secs_f64()
        ));
        if let Some(rss) = rss_bytes() {
            out.push_str(&format!(
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n"
            ));
        }
        for (name, help, value) in gauges {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            ));
        }
        out
    }
}
