//! Per-caller rate limiting: at most so many requests per second per API key (per client
//! address with auth off), with a burst, by the GCRA of the `governor` crate; and a budget of
//! failed authentications per client address ([`FailureBudget`]). Both are checked by
//! `crate::auth::authorize`, so they cover exactly the routes access control covers; the
//! open paths (`/health`, `/ready`, `/docs`) are never limited.

use crate::http::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::Instant;

/// How many checks between sweeps of callers idle long enough to be back at a full burst, so
/// that the table of callers stays as small as the set of recent ones.
const SWEEP_EVERY: u64 = 10_000;

/// A rate limit shared by every HTTP worker, and among the servers of a database: with `n`
/// servers alive, each takes `1/n` of the rate and of the burst ([`RateLimit::share_among`],
/// from their heartbeats), so that a key limited to 20 a second gets 20 through a load
/// balancer that spreads requests evenly, not `20 n`.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: u32,
    share: std::sync::RwLock<std::sync::Arc<Share>>,
    /// Whether the share was counted from the servers' heartbeats at the last look.
    shared: std::sync::atomic::AtomicBool,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// The limiter of one share.
#[derive(Debug)]
struct Share {
    servers: u32,
    limiter: DefaultKeyedRateLimiter<String>,
}

/// A rate limit shared among the servers of a database, as `/health` shows it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RateLimitShare {
    /// Requests a second per caller, across every server.
    pub per_second: f64,
    /// Requests at once per caller, across every server.
    pub burst: u32,
    /// The live servers it is shared among, this one included: each allows a caller
    /// `per_second / servers` (a load balancer spreading requests evenly then lets through
    /// `per_second` in all).
    pub servers: u32,
    /// Whether `servers` was counted from their heartbeats at the last look (every second);
    /// false while this server cannot read them: it keeps the share it last knew (the whole
    /// limit if it never knew one).
    pub shared: bool,
}

impl RateLimit {
    /// `per_second` requests a second per caller on average, `burst` at once; `None` unless
    /// `per_second` is positive and finite and `burst` at least 1. Until told of other
    /// servers, this one takes the whole limit.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        if burst == 0 {
            return None;
        }
        let share = Self::limiter(per_second, burst, 1)?;
        Some(RateLimit {
            per_second,
            burst,
            share: std::sync::RwLock::new(std::sync::Arc::new(share)),
            shared: std::sync::atomic::AtomicBool::new(false),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        })
    }

    /// The limiter of a `1/servers` share: the rate divided, the burst divided and rounded up
    /// (at least 1).
    fn limiter(per_second: f64, burst: u32, servers: u32) -> Option<Share> {
        if !(per_second.is_finite() && per_second > 0.0) || servers == 0 {
            return None;
        }
        let period = Duration::try_from_secs_f64(f64::from(servers) / per_second).ok()?;
        let burst = burst.div_ceil(servers).max(1);
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        Some(Share {
            servers,
            limiter: RateLimiter::keyed(quota),
        })
    }

    /// Shares the limit among `servers` live servers (`shared`: counted from their heartbeats
    /// just now). A new count starts a new limiter, each caller with its burst: the count
    /// changes when a server starts or stops, which is rare.
    pub fn share_among(&self, servers: u32, shared: bool) {
        self.shared.store(shared, Ordering::Relaxed);
        let servers = servers.max(1);
        if self.current().servers == servers {
            return;
        }
        if let Some(share) = Self::limiter(self.per_second, self.burst, servers) {
            *self
                .share
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(share);
        }
    }

    /// What the limit is now.
    pub fn share(&self) -> RateLimitShare {
        let current = self.current();
        RateLimitShare {
            per_second: self.per_second,
            burst: self.burst,
            servers: current.servers,
            shared: self.shared.load(Ordering::Relaxed),
        }
    }

    fn current(&self) -> std::sync::Arc<Share> {
        std::sync::Arc::clone(
            &self
                .share
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Counts one request of `caller`: 429 with the seconds until the next would pass when it
    /// is over its limit.
    pub(crate) fn check(&self, caller: &str) -> Result<(), ApiError> {
        let share = self.current();
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            share.limiter.retain_recent();
        }
        share
            .limiter
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

/// How many failed authentications each client address may have: `burst` at once, refilled
/// at `per_second`. Past it, the address's requests that would need a key looked up get 429
/// with `Retry-After` and no lookup, so a flood of bad tokens costs the server (and every
/// other client) next to nothing; a valid key found recently (`auth::KEY_CACHE_TTL`) needs no
/// lookup and still passes. Addresses are counted whole for IPv4 and by their /64 for IPv6
/// (what one host can hold).
#[derive(Debug)]
pub struct FailureBudget {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// One address's failures left and when they were counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

/// The most addresses a [`FailureBudget`] keeps: when that many have failed recently, the
/// ones back at a full budget are forgotten, and if none is, all are (memory stays bounded
/// whatever addresses an attacker sends from).
const MOST_ADDRESSES: usize = 65_536;

impl Default for FailureBudget {
    /// 10 failures a second, 20 at once: a person mistyping or a script with a stale token
    /// never meets it, a flood does at once.
    fn default() -> Self {
        // What `per_second(DEFAULT_AUTH_FAILURE_RATE)` makes, without its check.
        FailureBudget {
            per_second: DEFAULT_AUTH_FAILURE_RATE,
            burst: DEFAULT_AUTH_FAILURE_RATE * 2.0,
            buckets: Mutex::default(),
        }
    }
}

/// The default failures a second, `--auth-failure-rate`'s default.
pub const DEFAULT_AUTH_FAILURE_RATE: f64 = 10.0;

impl FailureBudget {
    /// `per_second` failures a second on average, `burst` at once; `None` unless `per_second`
    /// is positive and finite and `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second.is_finite() && per_second > 0.0 && burst >= 1).then(|| FailureBudget {
            per_second,
            burst: f64::from(burst),
            buckets: Mutex::default(),
        })
    }

    /// `per_second` failures a second on average and twice that at once (at least one), as
    /// `--auth-failure-rate` sets it; `None` unless `per_second` is positive and finite.
    pub fn per_second(per_second: f64) -> Option<Self> {
        let burst = (per_second * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        Self::new(per_second, burst)
    }

    /// What an address counts as: IPv4 whole (an IPv4 client of a dual-stack listener, which
    /// arrives as `::ffff:a.b.c.d`, too), IPv6 by its /64.
    fn key(address: IpAddr) -> IpAddr {
        match address.to_canonical() {
            address @ IpAddr::V4(_) => address,
            IpAddr::V6(v6) => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.left + elapsed * self.per_second).min(self.burst)
    }

    /// `Err` with the whole seconds until `address` may fail again when its budget is spent.
    pub(crate) fn check(&self, address: IpAddr, now: Instant) -> Result<(), ApiError> {
        let Ok(buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let Some(bucket) = buckets.get(&Self::key(address)).copied() else {
            return Ok(());
        };
        let left = self.refilled(bucket, now);
        if left >= 1.0 {
            return Ok(());
        }
        let wait = (1.0 - left) / self.per_second;
        Err(ApiError::TooManyRequests {
            retry_after: (wait.ceil() as u64).max(1),
        })
    }

    /// Counts one failed authentication of `address`.
    pub(crate) fn spend(&self, address: IpAddr, now: Instant) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        if buckets.len() >= MOST_ADDRESSES {
            // Those back at a full budget are as good as absent; if that is not enough, the
            // quarter that failed longest ago goes (never all at once, which would reset the
            // addresses failing now), so that this sweep runs rarely.
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
            if buckets.len() > MOST_ADDRESSES / 4 * 3 {
                let mut ages: Vec<Instant> = buckets.values().map(|bucket| bucket.at).collect();
                let cut = ages.len() / 4;
                ages.select_nth_unstable(cut);
                let oldest_kept = ages[cut];
                buckets.retain(|_, bucket| bucket.at >= oldest_kept);
                log::warn!(
                    "{} client addresses failed to authenticate recently: the quarter that \
                     failed longest ago was forgotten",
                    MOST_ADDRESSES
                );
            }
        }
        let key = Self::key(address);
        let left = buckets
            .get(&key)
            .map_or(self.burst, |bucket| self.refilled(*bucket, now));
        buckets.insert(
            key,
            Bucket {
                left: (left - 1.0).max(-1.0),
                at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_shared_among_servers_takes_its_share_of_rate_and_burst() {
        let limit = RateLimit::new(20.0, 20).expect("valid");
        // Alone: the whole burst of 20, then refused.
        for _ in 0..20 {
            assert!(limit.check("k").is_ok());
        }
        assert!(limit.check("k").is_err());
        // One of three: a burst of 7 (20 / 3 rounded up), a new limiter for every caller.
        limit.share_among(3, true);
        assert_eq!(
            limit.share(),
            RateLimitShare {
                per_second: 20.0,
                burst: 20,
                servers: 3,
                shared: true
            }
        );
        for _ in 0..7 {
            assert!(limit.check("k").is_ok());
        }
        assert!(limit.check("k").is_err());
        // The same count from a stale look keeps the callers' state; zero servers is one.
        limit.share_among(3, false);
        assert!(limit.check("k").is_err());
        assert!(!limit.share().shared);
        limit.share_among(0, false);
        assert_eq!(limit.share().servers, 1);
    }

    #[test]
    fn an_address_that_keeps_failing_waits_and_others_do_not() {
        let budget = FailureBudget::new(2.0, 3).expect("valid");
        let t0 = Instant::now();
        let attacker: IpAddr = "192.0.2.7".parse().expect("address");
        let other: IpAddr = "192.0.2.8".parse().expect("address");
        for _ in 0..3 {
            assert!(budget.check(attacker, t0).is_ok());
            budget.spend(attacker, t0);
        }
        match budget.check(attacker, t0) {
            Err(ApiError::TooManyRequests { retry_after }) => assert_eq!(retry_after, 1),
            other => panic!("{other:?}"),
        }
        assert!(budget.check(other, t0).is_ok());
        // Half a second later one failure has come back (two a second).
        let later = t0 + std::time::Duration::from_millis(500);
        assert!(budget.check(attacker, later).is_ok());
        budget.spend(attacker, later);
        assert!(budget.check(attacker, later).is_err());
        // An IPv6 host's whole /64 is one address.
        let a: IpAddr = "2001:db8::1".parse().expect("address");
        let b: IpAddr = "2001:db8::ffff:2".parse().expect("address");
        for _ in 0..3 {
            budget.spend(a, t0);
        }
        assert!(budget.check(b, t0).is_err());
        // IPv4 clients of a dual-stack listener are their IPv4 addresses, not one /64.
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().expect("address");
        let neighbour: IpAddr = "::ffff:198.51.100.8".parse().expect("address");
        for _ in 0..3 {
            budget.spend(mapped, t0);
        }
        assert!(budget.check(mapped, t0).is_err());
        assert!(
            budget
                .check("198.51.100.7".parse().expect("address"), t0)
                .is_err()
        );
        assert!(budget.check(neighbour, t0).is_ok());
        assert!(FailureBudget::new(0.0, 1).is_none());
        assert!(FailureBudget::new(1.0, 0).is_none());
    }

    #[test]
    fn the_budget_forgets_the_oldest_failures_rather_than_grow() {
        let budget = FailureBudget::new(0.001, 1).expect("valid");
        let t0 = Instant::now();
        let at = |i: u32| t0 + std::time::Duration::from_micros(u64::from(i));
        for i in 0..(MOST_ADDRESSES as u32 + 10) {
            budget.spend(IpAddr::from(i.to_be_bytes()), at(i));
        }
        let kept = budget.buckets.lock().expect("lock").len();
        assert!(kept <= MOST_ADDRESSES, "{kept}");
        // The newest failures are still counted: their addresses wait.
        let newest = MOST_ADDRESSES as u32 + 9;
        let now = at(newest);
        assert!(
            budget
                .check(IpAddr::from(newest.to_be_bytes()), now)
                .is_err()
        );
        assert!(budget.check(IpAddr::from(0u32.to_be_bytes()), now).is_ok());
    }

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
