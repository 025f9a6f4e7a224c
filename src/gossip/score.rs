//! Peer scores: penalties for misbehaviour, recovery over time, and the thresholds that throttle,
//! disconnect and ban.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a peer did wrong. Each has its own weight in [`ScoreConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Penalty {
    /// A transaction whose signature does not recover (or is high-s).
    InvalidSignature,
    /// Bytes that are not a transaction.
    Undecodable,
    /// A transaction that breaks another rule provable from its bytes.
    InvalidTx,
    /// A message above the size cap.
    Oversized,
    /// A message beyond the peer's rate budget.
    RateLimited,
    /// Re-sending transactions we already have, beyond the tolerated share.
    Duplicate,
    /// Announced a transaction, then did not serve it (or served something else).
    BrokenPromise,
}

impl Penalty {
    pub const fn kind(self) -> &'static str {
        match self {
            Self::InvalidSignature => "invalid_signature",
            Self::Undecodable => "undecodable",
            Self::InvalidTx => "invalid_tx",
            Self::Oversized => "oversized",
            Self::RateLimited => "rate_limited",
            Self::Duplicate => "duplicate",
            Self::BrokenPromise => "broken_promise",
        }
    }
}

/// Score weights and thresholds. Scores start at 0, fall with penalties, and recover towards 0
/// (never above `max_score`) as time passes and as the peer delivers valid transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    pub invalid_signature: f64,
    pub undecodable: f64,
    pub invalid_tx: f64,
    pub oversized: f64,
    pub rate_limited: f64,
    pub duplicate: f64,
    pub broken_promise: f64,
    /// Reward per valid transaction delivered.
    pub valid_tx: f64,
    /// Highest score a peer can build up (so past good behaviour cannot buy a flood).
    pub max_score: f64,
    /// Below this, each of the peer's messages costs four times its rate budget.
    pub throttle_below: f64,
    /// Below this, the peer is disconnected and refused for `cool_off`.
    pub disconnect_below: f64,
    /// Below this, the peer is disconnected and refused for `ban_period`.
    pub ban_below: f64,
    #[serde(with = "crate::duration_secs")]
    pub ban_period: Duration,
    #[serde(with = "crate::duration_secs")]
    pub cool_off: Duration,
    /// Negative scores halve every `recovery_half_life`.
    #[serde(with = "crate::duration_secs")]
    pub recovery_half_life: Duration,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            invalid_signature: -20.0,
            undecodable: -20.0,
            invalid_tx: -10.0,
            oversized: -20.0,
            rate_limited: -1.0,
            duplicate: -0.5,
            broken_promise: -5.0,
            valid_tx: 0.1,
            max_score: 10.0,
            throttle_below: -20.0,
            disconnect_below: -50.0,
            ban_below: -100.0,
            ban_period: Duration::from_secs(3_600),
            cool_off: Duration::from_secs(300),
            recovery_half_life: Duration::from_secs(60),
        }
    }
}

impl ScoreConfig {
    pub const fn weight(&self, penalty: Penalty) -> f64 {
        match penalty {
            Penalty::InvalidSignature => self.invalid_signature,
            Penalty::Undecodable => self.undecodable,
            Penalty::InvalidTx => self.invalid_tx,
            Penalty::Oversized => self.oversized,
            Penalty::RateLimited => self.rate_limited,
            Penalty::Duplicate => self.duplicate,
            Penalty::BrokenPromise => self.broken_promise,
        }
    }
}

/// One peer's score.
#[derive(Debug, Clone)]
pub(super) struct Score {
    value: f64,
    updated: Instant,
}

/// What a score change means for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Good,
    Throttled,
    Disconnect,
    Ban,
}

impl Score {
    pub fn new(now: Instant) -> Self {
        Self { value: 0.0, updated: now }
    }

    #[cfg(test)]
    pub fn value(&mut self, now: Instant, config: &ScoreConfig) -> f64 {
        self.recover(now, config);
        self.value
    }

    pub fn is_negative(&self) -> bool {
        self.value < 0.0
    }

    pub fn add(&mut self, now: Instant, delta: f64, config: &ScoreConfig) -> Standing {
        self.recover(now, config);
        self.value = (self.value + delta).min(config.max_score);
        self.standing(config)
    }

    pub fn standing(&self, config: &ScoreConfig) -> Standing {
        if self.value < config.ban_below {
            Standing::Ban
        } else if self.value < config.disconnect_below {
            Standing::Disconnect
        } else if self.value < config.throttle_below {
            Standing::Throttled
        } else {
            Standing::Good
        }
    }

    /// Whether the score has recovered to within half a point of zero by `now`: nothing worth
    /// remembering about the peer any more.
    pub fn healed(&self, now: Instant, config: &ScoreConfig) -> bool {
        let mut later = self.clone();
        later.recover(now, config);
        later.value > -0.5
    }

    /// Negative scores decay towards zero with the configured half-life.
    fn recover(&mut self, now: Instant, config: &ScoreConfig) {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now.max(self.updated);
        if self.value < 0.0 && !config.recovery_half_life.is_zero() {
            let halvings = elapsed.as_secs_f64() / config.recovery_half_life.as_secs_f64();
            self.value *= 0.5f64.powf(halvings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_cross_thresholds_and_time_heals() {
        let config = ScoreConfig::default();
        let start = Instant::now();
        let mut score = Score::new(start);
        assert_eq!(score.add(start, -21.0, &config), Standing::Throttled);
        assert_eq!(score.add(start, -30.0, &config), Standing::Disconnect);
        assert_eq!(score.add(start, -50.0, &config), Standing::Ban);
        // Two half-lives later: -101 → about -25: throttled, no longer banned.
        let later = start + 2 * config.recovery_half_life;
        assert!((score.value(later, &config) + 25.25).abs() < 0.01);
        assert_eq!(score.standing(&config), Standing::Throttled);
    }

    #[test]
    fn good_behaviour_is_capped() {
        let config = ScoreConfig::default();
        let now = Instant::now();
        let mut score = Score::new(now);
        for _ in 0..1_000 {
            score.add(now, config.valid_tx, &config);
        }
        assert_eq!(score.value(now, &config), config.max_score);
    }
}
