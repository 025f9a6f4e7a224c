//! Pool limits and rules.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits of one subpool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubPoolLimit {
    /// Most transactions it holds.
    pub max_txs: usize,
    /// Most encoded bytes it holds.
    pub max_bytes: usize,
}

impl SubPoolLimit {
    /// Defaults: 10,000 transactions / 20 MiB, as reth's subpools.
    pub const DEFAULT: Self = Self { max_txs: 10_000, max_bytes: 20 << 20 };

    pub const fn exceeded_by(&self, count: usize, bytes: usize) -> bool {
        count > self.max_txs || bytes > self.max_bytes
    }
}

/// How the pool admits, orders and drops transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Executable now: contiguous from the account nonce, affordable, fee cap >= base fee.
    pub pending: SubPoolLimit,
    /// Executable but priced below the current base fee (or blob base fee).
    pub basefee: SubPoolLimit,
    /// Not executable yet: a nonce gap, or the account cannot afford it.
    pub queued: SubPoolLimit,
    /// Most transactions one account may hold. The transaction at the account's nonce is always
    /// admitted, so an account can never be locked out of replacing its next transaction.
    /// Default 16 (geth's `accountslots`).
    pub account_slots: usize,
    /// Most transactions an EIP-7702 delegated sender may hold, and only gapless from its nonce.
    /// Default 1 (geth's and reth's rule): any transaction that calls into a delegated account
    /// can run the delegate's code and spend its balance or bump its nonce, which no header
    /// shows, so every further transaction the pool holds for it is a guess that can fail.
    pub delegated_account_slots: usize,
    /// Most blob transactions one account may hold (they cannot mix with its other
    /// transactions). Default 16 (geth's blob pool).
    pub blob_account_slots: usize,
    /// Most bytes of blob data (131,072 per blob) the pool holds across all subpools; beyond
    /// it, the blob transactions whose fees are furthest below the current base fee or blob base
    /// fee leave first. Default 512 MiB (4,096 blobs, about 80 minutes at mainnet's target of
    /// 14 blobs per 12-s block); the sidecars live in the blob store (on disk under a data
    /// directory), this only bounds them. geth keeps 2.5 GiB on disk.
    pub blob_bytes: usize,
    /// Percentage by which a replacement must raise both fee cap and tip. Default 10 (geth, reth).
    pub price_bump_percent: u128,
    /// The same for blob transactions. Default 100: replacing a blob transaction makes every
    /// node fetch the blobs again, so it must be worth it.
    pub blob_price_bump_percent: u128,
    /// How long a parked or queued transaction may wait before it expires. Default 3 hours
    /// (geth's `lifetime`).
    #[serde(with = "crate::duration_secs")]
    pub lifetime: Duration,
    /// When builder failure reports take a transaction out of the best-first path.
    pub quarantine: QuarantineConfig,
    /// How many records the dead-letter view keeps (oldest dropped first). Default 10,000
    /// (about 2 MiB).
    pub dead_letters: usize,
}

/// Poison quarantine: a transaction builders keep failing to include stops being offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuarantineConfig {
    /// Reports within `window` that quarantine a transaction. Default 3: one failure can be the
    /// builder's race with a new block; three in a row are the transaction.
    pub after_reports: u32,
    /// Reports older than this are forgotten. Default 300 s (25 slots).
    #[serde(with = "crate::duration_secs")]
    pub window: Duration,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        Self { after_reports: 3, window: Duration::from_secs(300) }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            pending: SubPoolLimit::DEFAULT,
            basefee: SubPoolLimit::DEFAULT,
            queued: SubPoolLimit::DEFAULT,
            account_slots: 16,
            delegated_account_slots: 1,
            blob_account_slots: 16,
            blob_bytes: 512 << 20,
            price_bump_percent: 10,
            blob_price_bump_percent: 100,
            lifetime: Duration::from_secs(3 * 60 * 60),
            quarantine: QuarantineConfig::default(),
            dead_letters: 10_000,
        }
    }
}
