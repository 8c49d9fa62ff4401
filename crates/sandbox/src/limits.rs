//! Xero's rate limits, per organisation (concurrent calls, calls per minute, calls per day) and
//! per app (calls per minute across all tenants), measured on the sandbox clock with sliding
//! windows. Also tracks calls in flight per tenant (for the admin counters) even when limits are
//! switched off.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state::lock;

/// Limit values; [`RateLimits::default`] is Xero's standard tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Calls in flight at once per organisation (Xero: 5).
    pub concurrent: usize,
    /// Calls per rolling minute per organisation (Xero: 60).
    pub per_minute: usize,
    /// Calls per rolling day per organisation (Xero: 5000).
    pub per_day: usize,
    /// Calls per rolling minute per app across all organisations (Xero: 10000).
    pub app_per_minute: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            concurrent: 5,
            per_minute: 60,
            per_day: 5000,
            app_per_minute: 10_000,
        }
    }
}

/// Which limit refused a call, as named in `X-Rate-Limit-Problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitProblem {
    Concurrent,
    Minute,
    Day,
    AppMinute,
}

impl LimitProblem {
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Concurrent => "concurrent",
            Self::Minute => "minute",
            Self::Day => "day",
            Self::AppMinute => "appminute",
        }
    }
}

/// Remaining budgets, sent on every Accounting response while limits are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub day: usize,
    pub minute: usize,
    pub app_minute: usize,
}

/// The refusal of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub problem: LimitProblem,
    /// Seconds until the window frees a slot (minute and day limits only).
    pub retry_after: Option<i64>,
    pub remaining: Remaining,
}

#[derive(Debug, Default)]
struct TenantUsage {
    in_flight: usize,
    max_in_flight: usize,
    minute: VecDeque<DateTime<Utc>>,
    day: VecDeque<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Usage {
    tenants: HashMap<Uuid, TenantUsage>,
    apps: HashMap<String, VecDeque<DateTime<Utc>>>,
}

/// The rate limiter of one sandbox.
#[derive(Debug)]
pub struct Limiter {
    limits: Mutex<Option<RateLimits>>,
    usage: Arc<Mutex<Usage>>,
}

/// A call in flight; dropping it frees the tenant's concurrency slot.
#[derive(Debug)]
pub struct Permit {
    usage: Arc<Mutex<Usage>>,
    tenant: Uuid,
    /// Budgets left after this call, when limits are on.
    pub remaining: Option<Remaining>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.usage).tenants.get_mut(&self.tenant) {
            t.in_flight = t.in_flight.saturating_sub(1);
        }
    }
}

fn prune(window: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, span: Duration) {
    while window.front().is_some_and(|t| now - *t >= span) {
        window.pop_front();
    }
}

fn retry_after(window: &VecDeque<DateTime<Utc>>, now: DateTime<Utc>, span: Duration) -> i64 {
    window
        .front()
        .map(|oldest| {
            let ms = (*oldest + span - now).num_milliseconds();
            ((ms + 999) / 1000).max(1)
        })
        .unwrap_or(1)
}

impl Limiter {
    pub fn new(limits: Option<RateLimits>) -> Self {
        Self {
            limits: Mutex::new(limits),
            usage: Arc::default(),
        }
    }

    pub fn limits(&self) -> Option<RateLimits> {
        lock(&self.limits).clone()
    }

    /// Replaces the limits (`None` switches them off); usage so far is kept.
    pub fn set_limits(&self, limits: Option<RateLimits>) {
        *lock(&self.limits) = limits;
    }

    /// Forgets all usage.
    pub fn reset(&self) {
        *lock(&self.usage) = Usage::default();
    }

    /// Highest concurrency seen per tenant.
    pub fn max_in_flight(&self) -> HashMap<Uuid, usize> {
        lock(&self.usage)
            .tenants
            .iter()
            .map(|(k, v)| (*k, v.max_in_flight))
            .collect()
    }

    /// Admits a call for `tenant` from `app`, or says which limit refuses it. Refused calls do
    /// not consume budget.
    pub fn admit(&self, tenant: Uuid, app: &str, now: DateTime<Utc>) -> Result<Permit, Refusal> {
        let limits = self.limits();
        let mut usage = lock(&self.usage);
        let minute = Duration::minutes(1);
        let day = Duration::days(1);
        let app_window = {
            let w = usage.apps.entry(app.to_owned()).or_default();
            prune(w, now, minute);
            w.len()
        };
        let t = usage.tenants.entry(tenant).or_default();
        prune(&mut t.minute, now, minute);
        prune(&mut t.day, now, day);
        let Some(limits) = limits else {
            t.in_flight += 1;
            t.max_in_flight = t.max_in_flight.max(t.in_flight);
            return Ok(Permit {
                usage: self.usage.clone(),
                tenant,
                remaining: None,
            });
        };
        let remaining_now = Remaining {
            day: limits.per_day.saturating_sub(t.day.len()),
            minute: limits.per_minute.saturating_sub(t.minute.len()),
            app_minute: limits.app_per_minute.saturating_sub(app_window),
        };
        let refuse = |problem, retry_after| Refusal {
            problem,
            retry_after,
            remaining: remaining_now,
        };
        if t.day.len() >= limits.per_day {
            return Err(refuse(
                LimitProblem::Day,
                Some(retry_after(&t.day, now, day)),
            ));
        }
        if t.minute.len() >= limits.per_minute {
            return Err(refuse(
                LimitProblem::Minute,
                Some(retry_after(&t.minute, now, minute)),
            ));
        }
        if t.in_flight >= limits.concurrent {
            return Err(refuse(LimitProblem::Concurrent, None));
        }
        if app_window >= limits.app_per_minute {
            let retry = usage
                .apps
                .get(app)
                .map(|w| retry_after(w, now, minute))
                .unwrap_or(1);
            return Err(refuse(LimitProblem::AppMinute, Some(retry)));
        }
        t.in_flight += 1;
        t.max_in_flight = t.max_in_flight.max(t.in_flight);
        t.minute.push_back(now);
        t.day.push_back(now);
        let remaining = Remaining {
            day: limits.per_day.saturating_sub(t.day.len()),
            minute: limits.per_minute.saturating_sub(t.minute.len()),
            app_minute: limits.app_per_minute.saturating_sub(app_window + 1),
        };
        usage.apps.entry(app.to_owned()).or_default().push_back(now);
        Ok(Permit {
            usage: self.usage.clone(),
            tenant,
            remaining: Some(remaining),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limiter {
        Limiter::new(Some(RateLimits {
            concurrent: 2,
            per_minute: 3,
            per_day: 5,
            app_per_minute: 100,
        }))
    }

    #[test]
    fn the_minute_window_refuses_then_frees_up_after_sixty_seconds() {
        let limiter = small();
        let tenant = Uuid::new_v4();
        let start = Utc::now();
        for i in 0..3 {
            let permit = limiter.admit(tenant, "app", start).expect("admitted");
            assert_eq!(permit.remaining.map(|r| r.minute), Some(2 - i));
        }
        let refusal = limiter.admit(tenant, "app", start).expect_err("refused");
        assert_eq!(refusal.problem, LimitProblem::Minute);
        assert_eq!(refusal.retry_after, Some(60));
        assert!(limiter
            .admit(tenant, "app", start + Duration::seconds(60))
            .is_ok());
    }

    #[test]
    fn the_day_budget_and_the_app_budget_refuse_with_their_own_problem() {
        let limiter = Limiter::new(Some(RateLimits {
            concurrent: 10,
            per_minute: 100,
            per_day: 3,
            app_per_minute: 1,
        }));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let start = Utc::now();
        for i in 0..3 {
            drop(
                limiter
                    .admit(a, "app", start + Duration::minutes(i))
                    .expect("within the day budget"),
            );
        }
        let day = limiter
            .admit(a, "app", start + Duration::minutes(5))
            .expect_err("day budget spent");
        assert_eq!(day.problem, LimitProblem::Day);
        assert!(day.retry_after.is_some_and(|s| s > 23 * 3600));
        drop(
            limiter
                .admit(b, "app", start + Duration::minutes(5))
                .expect("other tenant"),
        );
        let app = limiter
            .admit(b, "app", start + Duration::minutes(5))
            .expect_err("app minute budget spent");
        assert_eq!(app.problem, LimitProblem::AppMinute);
        assert!(limiter
            .admit(b, "another-app", start + Duration::minutes(5))
            .is_ok());
    }

    #[test]
    fn switched_off_limits_admit_everything_but_still_count_concurrency() {
        let limiter = Limiter::new(None);
        let tenant = Uuid::new_v4();
        let permits: Vec<_> = (0..20)
            .map(|_| limiter.admit(tenant, "app", Utc::now()).expect("admitted"))
            .collect();
        assert!(permits.iter().all(|p| p.remaining.is_none()));
        assert_eq!(limiter.max_in_flight().get(&tenant), Some(&20));
    }

    #[test]
    fn concurrency_is_released_when_the_permit_drops() {
        let limiter = small();
        let tenant = Uuid::new_v4();
        let now = Utc::now();
        let a = limiter.admit(tenant, "app", now).expect("first");
        let _b = limiter.admit(tenant, "app", now).expect("second");
        let refusal = limiter
            .admit(tenant, "app", now)
            .expect_err("third refused");
        assert_eq!(refusal.problem, LimitProblem::Concurrent);
        drop(a);
        assert!(limiter.admit(tenant, "app", now).is_ok());
        assert_eq!(limiter.max_in_flight().get(&tenant), Some(&2));
    }
}
