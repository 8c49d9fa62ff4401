//! Per-organisation rate limiting shared by every call in the process: at most `concurrent`
//! calls in flight, at most `per_minute` calls in any rolling window, a pause after a 429's
//! `Retry-After`, and the day budget read from `X-DayLimit-Remaining`.
//!
//! Waiting here is cheap; a 429 from Xero is not (it counts against the budgets and, repeated,
//! gets an app throttled), so the limiter is conservative.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits per organisation (Xero's standard tier by default).
#[derive(Debug, Clone, Copy)]
pub struct LimitConfig {
    pub concurrent: usize,
    pub per_minute: usize,
    /// The rolling window `per_minute` applies to (a minute; shorter only in tests).
    pub window: Duration,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            concurrent: 5,
            per_minute: 60,
            window: Duration::from_secs(60),
        }
    }
}

struct Window {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
    day_remaining: Option<i64>,
}

struct Tenant {
    in_flight: Arc<Semaphore>,
    window: Mutex<Window>,
}

/// Held for the duration of one call.
pub struct Permit {
    _slot: OwnedSemaphorePermit,
}

#[derive(Default)]
pub struct Limiter {
    config: LimitConfig,
    tenants: Mutex<HashMap<String, Arc<Tenant>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limiter {
    pub fn new(config: LimitConfig) -> Limiter {
        Limiter {
            config,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn tenant(&self, id: &str) -> Arc<Tenant> {
        lock(&self.tenants)
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Tenant {
                    in_flight: Arc::new(Semaphore::new(self.config.concurrent.max(1))),
                    window: Mutex::new(Window {
                        sent: VecDeque::new(),
                        paused_until: None,
                        day_remaining: None,
                    }),
                })
            })
            .clone()
    }

    /// The day budget Xero last reported for an organisation.
    pub fn day_remaining(&self, tenant: &str) -> Option<i64> {
        lock(&self.tenant(tenant).window).day_remaining
    }

    /// Waits for a slot: a free concurrency permit, room in the rolling window, and the end of
    /// any pause Xero asked for.
    pub async fn acquire(&self, tenant: &str) -> Permit {
        let t = self.tenant(tenant);
        let slot = t
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            let wait = {
                let mut w = lock(&t.window);
                let now = Instant::now();
                while w
                    .sent
                    .front()
                    .is_some_and(|s| now.duration_since(*s) >= self.config.window)
                {
                    w.sent.pop_front();
                }
                match w.paused_until {
                    Some(until) if until > now => Some(until - now),
                    _ if w.sent.len() >= self.config.per_minute => {
                        let oldest = *w.sent.front().expect("window is full");
                        Some(self.config.window - now.duration_since(oldest))
                    }
                    _ => {
                        w.sent.push_back(now);
                        None
                    }
                }
            };
            match wait {
                None => return Permit { _slot: slot },
                Some(d) => tokio::time::sleep(d + Duration::from_millis(5)).await,
            }
        }
    }

    /// Records the budgets Xero reported on a response.
    pub fn observe(&self, tenant: &str, day_remaining: Option<i64>, minute_remaining: Option<i64>) {
        let t = self.tenant(tenant);
        let mut w = lock(&t.window);
        if day_remaining.is_some() {
            w.day_remaining = day_remaining;
        }
        if minute_remaining == Some(0) {
            // Xero's window and ours may be out of step: hold back until ours has room anyway.
            let full = self.config.per_minute;
            let now = Instant::now();
            while w.sent.len() < full {
                w.sent.push_back(now);
            }
        }
    }

    /// Xero said 429 with `Retry-After`: nobody calls this organisation until then.
    pub fn pause(&self, tenant: &str, for_: Duration) {
        let t = self.tenant(tenant);
        let mut w = lock(&t.window);
        let until = Instant::now() + for_;
        if w.paused_until.is_none_or(|u| u < until) {
            w.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rolling_window_holds_back_the_call_over_the_budget() {
        let limiter = Arc::new(Limiter::new(LimitConfig {
            concurrent: 5,
            per_minute: 3,
            window: Duration::from_millis(300),
        }));
        let started = Instant::now();
        for _ in 0..3 {
            drop(limiter.acquire("t").await);
        }
        assert!(started.elapsed() < Duration::from_millis(100));
        drop(limiter.acquire("t").await);
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Another organisation has its own budget.
        let other = Instant::now();
        drop(limiter.acquire("u").await);
        assert!(other.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn no_more_than_the_concurrency_limit_is_in_flight() {
        let limiter = Arc::new(Limiter::new(LimitConfig {
            concurrent: 2,
            per_minute: 100,
            window: Duration::from_secs(60),
        }));
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (l, live, peak) = (limiter.clone(), live.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let _p = l.acquire("t").await;
                let n = live.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_pause_from_retry_after_delays_the_next_call() {
        let limiter = Limiter::new(LimitConfig::default());
        limiter.pause("t", Duration::from_millis(200));
        let started = Instant::now();
        drop(limiter.acquire("t").await);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
