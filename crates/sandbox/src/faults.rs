//! Injected failures, configured through `/_sandbox/faults`: for a method and path prefix, answer
//! 500/503/429, add a delay, or drop the connection, either with a probability or for the next
//! N matching calls. Accounting calls are faulted after they take their rate-limit slot, so an
//! injected delay holds a concurrency slot like a slow Xero would.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body::Frame;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::state::{lock, Sandbox};

/// One fault rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default = "Uuid::new_v4")]
    pub id: Uuid,
    /// `GET`, `POST`…; absent matches every method.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix, compared case-insensitively (e.g. `/api.xro/2.0/Invoices`, `/connect/token`).
    pub path: String,
    /// Answer with this status (500, 503 or 429) instead of running the endpoint.
    #[serde(default)]
    pub status: Option<u16>,
    /// Wait this long first.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Send response headers, then cut the connection before the body.
    #[serde(default)]
    pub drop_connection: bool,
    /// Run the endpoint first (the change happens), then cut the connection before the body:
    /// the caller never learns the outcome, as when a response is lost in transit.
    #[serde(default)]
    pub lose_response: bool,
    /// Chance (0..=1) that a matching call is affected; absent means always.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Affect only this many more matching calls, then the rule is removed.
    #[serde(default)]
    pub count: Option<u32>,
}

/// What happens to one call.
#[derive(Debug, Clone, Default)]
pub struct Effect {
    pub delay: Option<Duration>,
    pub status: Option<u16>,
    pub drop_connection: bool,
    /// Cut the connection after the endpoint ran (see [`Fault::lose_response`]).
    pub lose_response: bool,
}

/// Decides, for one call, which fault (if any) applies; consumes a count.
pub fn effect_for(sandbox: &Sandbox, method: &str, path: &str) -> Option<Effect> {
    let path = path.to_ascii_lowercase();
    let mut faults = lock(&sandbox.faults);
    let index = faults.iter().position(|f| {
        f.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.starts_with(&f.path.to_ascii_lowercase())
    })?;
    let fault = &mut faults[index];
    if let Some(p) = fault.probability {
        if !rand::thread_rng().gen_bool(p.clamp(0.0, 1.0)) {
            return None;
        }
    }
    let effect = Effect {
        delay: fault.delay_ms.map(Duration::from_millis),
        status: fault.status,
        drop_connection: fault.drop_connection,
        lose_response: fault.lose_response,
    };
    if let Some(count) = fault.count.as_mut() {
        *count = count.saturating_sub(1);
        if *count == 0 {
            faults.remove(index);
        }
    }
    Some(effect)
}

/// A response whose body fails: the server aborts the connection mid-response.
pub fn broken_response() -> Response {
    let mut response = Response::new(Body::new(BrokenBody));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Applies an effect: waits, then returns the faulty response if the call must not proceed.
/// (A `lose_response` effect lets the call proceed; the caller drops the answer afterwards.)
pub async fn apply(effect: Effect) -> Option<Response> {
    if let Some(delay) = effect.delay {
        tokio::time::sleep(delay).await;
    }
    if effect.drop_connection {
        return Some(broken_response());
    }
    if effect.lose_response {
        return None;
    }
    let status = StatusCode::from_u16(effect.status?).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match status.as_u16() {
        429 => (
            status,
            Json(json!({"Title": "Too Many Requests", "Status": 429, "Detail": "Rate limit exceeded (injected by the sandbox)"})),
        )
            .into_response(),
        503 => (
            status,
            Json(json!({"Title": "Service Unavailable", "Status": 503, "Detail": "The Xero API is temporarily unavailable (injected by the sandbox)"})),
        )
            .into_response(),
        _ => (
            status,
            Json(json!({"Title": "An error occurred", "Status": status.as_u16(), "Detail": "An error occurred in Xero (injected by the sandbox)"})),
        )
            .into_response(),
    };
    if status.as_u16() == 429 {
        let headers = response.headers_mut();
        headers.insert("retry-after", HeaderValue::from_static("1"));
        headers.insert("x-rate-limit-problem", HeaderValue::from_static("minute"));
    }
    Some(response)
}

/// A body that fails on first poll, so the server aborts the connection mid-response.
struct BrokenBody;

impl http_body::Body for BrokenBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by an injected sandbox fault",
        ))))
    }
}

/// Applies faults to identity and portal calls; the Accounting API applies its own (after rate
/// limiting) and the admin API is never faulted.
pub async fn middleware(
    State(sandbox): State<Arc<Sandbox>>,
    request: Request,
    next: Next,
) -> Result<Response, Infallible> {
    let path = request.uri().path().to_ascii_lowercase();
    if !path.starts_with("/api.xro/") && !path.starts_with("/_sandbox") {
        if let Some(effect) = effect_for(&sandbox, request.method().as_str(), &path) {
            let lose = effect.lose_response;
            if let Some(response) = apply(effect).await {
                return Ok(response);
            }
            if lose {
                let _ = next.run(request).await;
                return Ok(broken_response());
            }
        }
    }
    Ok(next.run(request).await)
}
