//! Token buckets with time passed in: a peer's budget of messages and bytes per second.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A refill rate and a burst. Read from config files only when both are finite and not
/// negative (a NaN budget would refuse or admit everything).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RateFields")]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: how much may arrive at once after a quiet period.
    pub burst: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFields {
    per_second: f64,
    burst: f64,
}

impl TryFrom<RateFields> for Rate {
    type Error = String;

    fn try_from(fields: RateFields) -> Result<Self, String> {
        let sane = |x: f64| x.is_finite() && x >= 0.0;
        if sane(fields.per_second) && sane(fields.burst) {
            Ok(Self { per_second: fields.per_second, burst: fields.burst })
        } else {
            Err(format!(
                "a rate needs finite, non-negative per_second and burst (got {} and {})",
                fields.per_second, fields.burst
            ))
        }
    }
}

/// One token bucket, with time passed in. Starts full. Used for peers here and for JSON-RPC
/// clients by the node.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self { rate, tokens: rate.burst, updated: now }
    }

    /// Takes `cost` tokens if the bucket holds them; refills by elapsed time first.
    pub fn try_take(&mut self, now: Instant, cost: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now.max(self.updated);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate.per_second).min(self.rate.burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Takes as many tokens as it holds, up to `max`; returns how many. For budgets spent by a
    /// size known only afterwards (what is served): the unused rest goes back with [`Self::give_back`].
    pub fn take_up_to(&mut self, now: Instant, max: f64) -> f64 {
        self.try_take(now, 0.0);
        let taken = self.tokens.min(max).max(0.0);
        self.tokens -= taken;
        taken
    }

    /// Returns unused tokens (never beyond the burst).
    pub fn give_back(&mut self, tokens: f64) {
        self.tokens = (self.tokens + tokens.max(0.0)).min(self.rate.burst);
    }

    /// When the bucket was last used.
    pub const fn last_used(&self) -> Instant {
        self.updated
    }

    /// How long until `cost` tokens are available (zero if they are now).
    #[cfg(test)]
    pub fn wait_for(&self, cost: f64) -> std::time::Duration {
        if self.tokens >= cost || self.rate.per_second <= 0.0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_secs_f64((cost - self.tokens) / self.rate.per_second)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn config_files_cannot_hold_nan_or_negative_rates() {
        let read = |text: &str| toml::from_str::<Rate>(text);
        assert!(read("per_second = 10.0\nburst = 5.0").is_ok());
        assert!(read("per_second = nan\nburst = 5.0").is_err());
        assert!(read("per_second = 1.0\nburst = -5.0").is_err());
        assert!(read("per_second = inf\nburst = 5.0").is_err());
    }

    #[test]
    fn burst_then_refill() {
        let start = Instant::now();
        let mut bucket = Bucket::new(Rate { per_second: 10.0, burst: 5.0 }, start);
        for _ in 0..5 {
            assert!(bucket.try_take(start, 1.0));
        }
        assert!(!bucket.try_take(start, 1.0), "burst spent");
        assert_eq!(bucket.wait_for(1.0), Duration::from_millis(100));
        assert!(bucket.try_take(start + Duration::from_millis(100), 1.0), "refilled at 10/s");
        assert!(bucket.try_take(start + Duration::from_secs(60), 5.0), "refills up to the burst");
        assert!(!bucket.try_take(start + Duration::from_secs(60), 1.0), "never beyond the burst");
    }
}
