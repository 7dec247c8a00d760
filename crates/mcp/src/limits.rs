//! The MCP endpoint's rate limit: 120 calls a minute per token (the original's), as a GCRA
//! (`governor`), so a burst of up to a minute's calls passes and a steady stream is held to
//! two a second.
//!
//! Owns the limiter and its keys; must not know how a token is checked (the HTTP layer asks
//! after authenticating) or what a call does.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

/// Calls a minute each token may make.
pub const CALLS_PER_MINUTE: u32 = 120;

/// Keyed by the token's id (the HTTP layer knows it once the token is checked; the token
/// itself is never a key).
#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock>>,
    per_minute: u32,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("keys", &self.limiter.len()).finish()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::per_minute(CALLS_PER_MINUTE)
    }
}

impl RateLimits {
    /// `per_minute` calls a minute per key (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(n))),
            per_minute: n.get(),
        }
    }

    /// The calls a minute each key gets.
    pub fn quota(&self) -> u32 {
        self.per_minute
    }

    /// Takes one call for `key`; when none is left, how long until the next one is.
    pub fn check(&self, key: Uuid) -> Result<(), Duration> {
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))?;
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_quota_and_no_more_and_keys_are_apart() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let limits = RateLimits::per_minute(3);
        for _ in 0..3 {
            assert!(limits.check(a).is_ok());
        }
        let wait = limits.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limits.check(b).is_ok());
    }
}
