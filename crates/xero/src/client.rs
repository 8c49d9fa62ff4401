//! The Xero client every Xero node and trigger uses.
//!
//! - Access tokens come from an [`AccessTokens`] source (the token manager); a 401 `TokenExpired`
//!   forces one refresh and one retry.
//! - `xero-tenant-id` on every tenant call, `Accept: application/json` unless a PDF is asked for.
//! - Each call waits for the organisation's [`Limiter`] slot; a 429 pauses the organisation for
//!   `Retry-After` and the call is retried; a day limit is an error that says so.
//! - 5xx, timeouts and dropped connections are retried with jittered exponential back-off: reads
//!   always, writes only when they carry an `Idempotency-Key` (so a retry cannot duplicate).
//! - JSON answers have their `/Date(…)/` values rewritten to RFC 3339.
//! - Errors say what went wrong in terms a person can act on ([`ApiError`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::limiter::{LimitConfig, Limiter};
use crate::{dates, Endpoints};

/// Where access tokens come from.
pub trait AccessTokens: Send + Sync + 'static {
    fn token(
        &self,
        credential_id: &str,
    ) -> impl Future<Output = Result<SecretString, String>> + Send;
    /// A token after `rejected` was refused as expired (refresh unless someone already did).
    fn refresh(
        &self,
        credential_id: &str,
        rejected: &SecretString,
    ) -> impl Future<Output = Result<SecretString, String>> + Send;
}

/// Which credential and organisation a call acts for.
#[derive(Debug, Clone)]
pub struct Target {
    pub credential_id: String,
    /// `None` for calls that are not about one organisation.
    pub tenant_id: Option<String>,
    pub endpoints: Endpoints,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Bytes { content_type: String, data: Bytes },
}

/// One call. `path` is relative to the Accounting API (`Invoices`, `Invoices/{id}/Email`) or an
/// absolute `https://` URL of another Xero API.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Body,
    /// Sent as `If-Modified-Since` (UTC, to the second).
    pub if_modified_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Makes a write safe to retry.
    pub idempotency_key: Option<String>,
    /// `application/json` unless set (e.g. `application/pdf`, `*/*`).
    pub accept: Option<String>,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method,
            path: path.into(),
            query: vec![],
            body: Body::None,
            if_modified_since: None,
            idempotency_key: None,
            accept: None,
        }
    }

    pub fn get(path: impl Into<String>) -> ApiRequest {
        Self::new(Method::GET, path)
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> ApiRequest {
        self.query.push((k.to_string(), v.into()));
        self
    }

    pub fn json(mut self, body: Value) -> ApiRequest {
        self.body = Body::Json(body);
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> ApiRequest {
        self.idempotency_key = Some(key.into());
        self
    }

    fn is_read(&self) -> bool {
        matches!(self.method, Method::GET | Method::HEAD)
    }
}

#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body as JSON with dates normalised, when it is JSON.
    pub json: Option<Value>,
}

/// One element's validation failure in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementError {
    pub index: usize,
    pub messages: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("Xero rejected the data: {message}")]
    Validation {
        message: String,
        elements: Vec<ElementError>,
    },
    #[error("the credential lacks the scope for this ({detail}); reconnect it with one of: {}", .needed.join(", "))]
    MissingScope { detail: String, needed: Vec<String> },
    #[error("Xero refused the credential (401): {0}; reconnect the credential")]
    Unauthorized(String),
    #[error("organisation {0} is not connected to this credential (403); reconnect and tick it, or choose another organisation")]
    UnknownTenant(String),
    #[error("not found at Xero (404): {0}")]
    NotFound(String),
    #[error("Xero's daily call limit for this organisation is used up; it resets within {retry_after_secs} s. Try again later")]
    DayLimit { retry_after_secs: u64 },
    #[error("Xero kept answering 429 (rate limited: {0}) after several waits")]
    RateLimited(String),
    #[error("Xero answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("could not reach Xero: {0}")]
    Transport(String),
    #[error("{0}")]
    Token(String),
    #[error("{0}")]
    Invalid(String),
}

impl ApiError {
    fn transient(&self) -> bool {
        matches!(self, ApiError::Transport(_))
            || matches!(self, ApiError::Status { status, .. } if *status >= 500)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    /// How many 429s (with their waits) one call may absorb.
    pub max_rate_limited: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_rate_limited: 10,
        }
    }
}

/// Calls made, for benchmarks and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub rate_limited: AtomicU64,
}

pub struct XeroClient<T: AccessTokens> {
    http: reqwest::Client,
    tokens: T,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    pub stats: Stats,
}

fn header_i64(h: &HeaderMap, name: &str) -> Option<i64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl<T: AccessTokens> XeroClient<T> {
    pub fn new(http: reqwest::Client, tokens: T, limits: LimitConfig) -> Self {
        XeroClient {
            http,
            tokens,
            limiter: Arc::new(Limiter::new(limits)),
            retry: RetryPolicy::default(),
            stats: Stats::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn tokens(&self) -> &T {
        &self.tokens
    }

    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    fn url(&self, target: &Target, path: &str) -> Result<reqwest::Url, ApiError> {
        if path.starts_with("https://") || path.starts_with("http://") {
            let url = reqwest::Url::parse(path)
                .map_err(|e| ApiError::Invalid(format!("bad URL {path}: {e}")))?;
            // The access token goes only to Xero (or the sandbox the credential uses).
            let base = &target.endpoints.api_base;
            let same_origin = url.scheme() == base.scheme()
                && url.host_str() == base.host_str()
                && url.port_or_known_default() == base.port_or_known_default();
            let xero = url.scheme() == "https"
                && url
                    .host_str()
                    .is_some_and(|h| h == "xero.com" || h.ends_with(".xero.com"));
            if !(same_origin || xero) {
                return Err(ApiError::Invalid(format!(
                    "{path} is not a Xero API address; the credential's token is only sent to https://*.xero.com (or the sandbox it uses)"
                )));
            }
            return Ok(url);
        }
        target
            .endpoints
            .api_base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::Invalid(format!("bad path {path}: {e}")))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry.base_delay.as_millis() as u64 * (1u64 << attempt.min(6));
        let jitter = rand::thread_rng().gen_range(0..=base / 2 + 1);
        Duration::from_millis(base / 2 + jitter)
    }

    /// Sends one call with limits, retries and token refresh; returns a 2xx answer or an error.
    pub async fn send(&self, target: &Target, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let url = self.url(target, &req.path)?;
        let retry_safe = req.is_read() || req.idempotency_key.is_some();
        let mut token = self
            .tokens
            .token(&target.credential_id)
            .await
            .map_err(ApiError::Token)?;
        let (mut attempt, mut limited, mut refreshed) = (0u32, 0u32, false);
        loop {
            let permit = match &target.tenant_id {
                Some(t) => Some(self.limiter.acquire(t).await),
                None => None,
            };
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            let result = self.send_once(&url, target, req, &token).await;
            drop(permit);
            let err = match result {
                Ok(resp) => return Ok(resp),
                Err(Failure::RateLimited {
                    problem,
                    retry_after,
                }) => {
                    self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    if problem == "day" {
                        return Err(ApiError::DayLimit {
                            retry_after_secs: retry_after.as_secs(),
                        });
                    }
                    limited += 1;
                    if limited > self.retry.max_rate_limited {
                        return Err(ApiError::RateLimited(problem));
                    }
                    if let Some(t) = &target.tenant_id {
                        self.limiter.pause(t, retry_after);
                    } else {
                        tokio::time::sleep(retry_after).await;
                    }
                    continue;
                }
                Err(Failure::TokenExpired(detail)) if !refreshed => {
                    refreshed = true;
                    token = self
                        .tokens
                        .refresh(&target.credential_id, &token)
                        .await
                        .map_err(|e| {
                            ApiError::Token(format!("{detail}; refreshing failed: {e}"))
                        })?;
                    continue;
                }
                Err(Failure::TokenExpired(detail)) => ApiError::Unauthorized(detail),
                Err(Failure::Api(e)) => e,
            };
            attempt += 1;
            if err.transient() && retry_safe && attempt < self.retry.attempts {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %req.path, attempt, error = %err, "retrying Xero call");
                tokio::time::sleep(self.backoff(attempt)).await;
                continue;
            }
            if err.transient() && !retry_safe {
                return Err(ApiError::Status {
                    status: 0,
                    message: format!(
                        "{err}. The write was not retried because it has no idempotency key; check in Xero whether it happened"
                    ),
                });
            }
            return Err(err);
        }
    }

    async fn send_once(
        &self,
        url: &reqwest::Url,
        target: &Target,
        req: &ApiRequest,
        token: &SecretString,
    ) -> Result<ApiResponse, Failure> {
        let mut r = self
            .http
            .request(req.method.clone(), url.clone())
            .bearer_auth(token.expose_secret())
            .header(
                "accept",
                req.accept.as_deref().unwrap_or("application/json"),
            )
            .timeout(Duration::from_secs(60));
        if !req.query.is_empty() {
            r = r.query(&req.query);
        }
        if let Some(t) = &target.tenant_id {
            r = r.header("xero-tenant-id", t);
        }
        if let Some(since) = req.if_modified_since {
            r = r.header(
                "if-modified-since",
                since.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            );
        }
        if let Some(k) = &req.idempotency_key {
            r = r.header("idempotency-key", k);
        }
        r = match &req.body {
            Body::None => r,
            Body::Json(v) => r.json(v),
            Body::Bytes { content_type, data } => {
                r.header("content-type", content_type).body(data.clone())
            }
        };
        let resp = r
            .send()
            .await
            .map_err(|e| Failure::Api(ApiError::Transport(e.without_url().to_string())))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Failure::Api(ApiError::Transport(e.without_url().to_string())))?;
        if let Some(t) = &target.tenant_id {
            self.limiter.observe(
                t,
                header_i64(&headers, "x-daylimit-remaining"),
                header_i64(&headers, "x-minlimit-remaining"),
            );
        }
        let is_json = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let mut json = if is_json || (body.first() == Some(&b'{') || body.first() == Some(&b'[')) {
            serde_json::from_slice::<Value>(&body).ok()
        } else {
            None
        };
        if (200..300).contains(&status) {
            if let Some(v) = json.as_mut() {
                dates::normalise(v);
            }
            return Ok(ApiResponse {
                status,
                headers,
                body,
                json,
            });
        }
        Err(classify(status, &headers, json.as_ref(), &body, target))
    }
}

enum Failure {
    RateLimited {
        problem: String,
        retry_after: Duration,
    },
    TokenExpired(String),
    Api(ApiError),
}

fn detail(json: Option<&Value>, body: &[u8]) -> String {
    json.and_then(|v| {
        ["Detail", "Message", "detail", "message", "Title"]
            .iter()
            .find_map(|k| v[k].as_str().map(str::to_string))
    })
    .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

/// Turns an error answer into what the caller should do about it.
fn classify(
    status: u16,
    headers: &HeaderMap,
    json: Option<&Value>,
    body: &[u8],
    target: &Target,
) -> Failure {
    let msg = detail(json, body);
    match status {
        429 => Failure::RateLimited {
            problem: headers
                .get("x-rate-limit-problem")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("minute")
                .to_lowercase(),
            retry_after: Duration::from_secs(
                header_i64(headers, "retry-after").unwrap_or(1).max(0) as u64,
            ),
        },
        401 => {
            let www = headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if www.contains("insufficient_scope") {
                Failure::Api(ApiError::MissingScope {
                    detail: msg,
                    needed: vec![],
                })
            } else if msg.contains("TokenExpired") {
                Failure::TokenExpired(msg)
            } else {
                Failure::Api(ApiError::Unauthorized(msg))
            }
        }
        403 => Failure::Api(ApiError::UnknownTenant(
            target
                .tenant_id
                .clone()
                .unwrap_or_else(|| "(none given)".into()),
        )),
        404 => Failure::Api(ApiError::NotFound(msg)),
        400 => Failure::Api(validation(json).unwrap_or(ApiError::Status {
            status,
            message: msg,
        })),
        _ => Failure::Api(ApiError::Status {
            status,
            message: msg,
        }),
    }
}

/// Xero's ValidationException: per element messages.
fn validation(json: Option<&Value>) -> Option<ApiError> {
    let v = json?;
    let elements: Vec<ElementError> = v["Elements"]
        .as_array()
        .map(|els| {
            els.iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let messages = element_messages(e);
                    (!messages.is_empty()).then_some(ElementError { index: i, messages })
                })
                .collect()
        })
        .unwrap_or_default();
    let message = if elements.is_empty() {
        v["Message"]
            .as_str()
            .unwrap_or("validation failed")
            .to_string()
    } else {
        elements
            .iter()
            .map(|e| format!("element {}: {}", e.index + 1, e.messages.join("; ")))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    Some(ApiError::Validation { message, elements })
}

/// The validation messages of one element (its own and its line items').
pub fn element_messages(e: &Value) -> Vec<String> {
    let mut out: Vec<String> = e["ValidationErrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["Message"].as_str().map(str::to_string))
        .collect();
    if let Some(lines) = e["LineItems"].as_array() {
        for l in lines {
            out.extend(element_messages(l));
        }
    }
    out
}

/// Reads a list page by page with the largest page the endpoint allows, stopping at the first
/// short page (or after the last page `pagination` announces).
pub struct Pager<'a, T: AccessTokens> {
    client: &'a XeroClient<T>,
    target: Target,
    resource: &'static crate::catalogue::Resource,
    request: ApiRequest,
    page: u32,
    offset: Option<i64>,
    done: bool,
}

impl<T: AccessTokens> XeroClient<T> {
    /// Pages through `resource`; `request` carries the filters (`where`, `order`, …).
    pub fn pages(
        &self,
        target: Target,
        resource: &'static crate::catalogue::Resource,
        request: ApiRequest,
    ) -> Pager<'_, T> {
        Pager {
            client: self,
            target,
            resource,
            request,
            page: 0,
            offset: None,
            done: false,
        }
    }
}

impl<T: AccessTokens> Pager<'_, T> {
    /// The next page's records, or `None` when the list is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ApiError> {
        use crate::catalogue::Paging;
        if self.done {
            return Ok(None);
        }
        let mut req = self.request.clone();
        let full = match self.resource.paging {
            Paging::None => {
                self.done = true;
                usize::MAX
            }
            Paging::Page { page_size } => {
                self.page += 1;
                req.query.push(("page".into(), self.page.to_string()));
                if page_size > 100 {
                    req.query.push(("pageSize".into(), page_size.to_string()));
                }
                page_size as usize
            }
            Paging::Offset => {
                if let Some(o) = self.offset {
                    req.query.push(("offset".into(), o.to_string()));
                }
                100
            }
        };
        let resp = self.client.send(&self.target, &req).await?;
        let json = resp.json.unwrap_or(Value::Null);
        let records: Vec<Value> = json[self.resource.key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if records.len() < full {
            self.done = true;
        }
        if let Some(count) = json["pagination"]["pageCount"].as_u64() {
            if u64::from(self.page) >= count {
                self.done = true;
            }
        }
        if self.resource.paging == Paging::Offset {
            self.offset = records.last().and_then(|r| r["JournalNumber"].as_i64());
            if self.offset.is_none() {
                self.done = true;
            }
        }
        if records.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(records))
    }

    /// Every record, or the first `limit`.
    pub async fn collect(mut self, limit: Option<usize>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        while let Some(page) = self.next_page().await? {
            out.extend(page);
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(usize::MAX));
                break;
            }
        }
        Ok(out)
    }
}
