//! The sandbox clock: real time plus an offset that the admin API can move forward.
//!
//! Every expiry decision (authorisation codes, access and refresh tokens, rate-limit windows,
//! idempotency records) reads this clock, so a test can jump past a 30-minute grace period or a
//! 60-day idle expiry without sleeping. It never moves backwards.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// Real UTC time shifted by an offset in milliseconds.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The sandbox's idea of "now".
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward; negative amounts are ignored so expiry never un-happens.
    pub fn advance(&self, by: Duration) {
        let ms = by.num_milliseconds().max(0);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The total shift from real time, in seconds.
    pub fn offset_seconds(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed) / 1000
    }

    /// Back to real time (used by the admin reset).
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_and_ignores_negative_steps() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::seconds(3600));
        clock.advance(Duration::seconds(-7200));
        let shifted = clock.now() - before;
        assert!(shifted >= Duration::seconds(3600));
        assert!(shifted < Duration::seconds(3660));
        assert_eq!(clock.offset_seconds(), 3600);
    }
}
