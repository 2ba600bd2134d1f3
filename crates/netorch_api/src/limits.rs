//! Per-caller rate limiting: at most so many requests per second per API key (per client
//! address with auth off), with a burst, by the GCRA of the `governor` crate. Checked by
//! [`crate::auth::authorize`], so it covers exactly the routes access control covers; the open
//! paths (`/health`, `/ready`, `/docs`) are never limited.

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many checks between sweeps of callers idle long enough to be back at a full burst, so
/// that the table of callers stays as small as the set of recent ones.
const SWEEP_EVERY: u64 = 10_000;

/// A rate limit shared by every HTTP worker.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl RateLimit {
    /// `per_second` requests a second per caller on average, `burst` at once; `None` unless
    /// `per_second` is positive and finite and `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        let period = Duration::try_from_secs_f64(1.0 / per_second).ok()?;
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        Some(RateLimit {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        })
    }

    /// Counts one request of `caller`: 429 with the seconds until the next would pass when it
    /// is over its limit.
    pub(crate) fn check(&self, caller: &str) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&caller.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::TooManyRequests {
                    // Whole seconds, rounded up: a client that waits this long gets through.
                    retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_burst_then_waits_and_others_are_not_held_up() {
        // One request every 100 s: nothing refills during the test.
        let limit = RateLimit::new(0.01, 2).expect("valid");
        assert!(limit.check("a").is_ok());
        assert!(limit.check("a").is_ok());
        match limit.check("a") {
            Err(ApiError::TooManyRequests { retry_after }) => {
                assert!((1..=100).contains(&retry_after), "{retry_after}")
            }
            other => panic!("{other:?}"),
        }
        assert!(limit.check("b").is_ok());
    }

    #[test]
    fn nonsense_limits_are_refused() {
        assert!(RateLimit::new(0.0, 1).is_none());
        assert!(RateLimit::new(f64::NAN, 1).is_none());
        assert!(RateLimit::new(10.0, 0).is_none());
    }
}
