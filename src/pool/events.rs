//! Pool events: one for every change, each with its reason.

use alloy_primitives::{Address, B256};
use serde::Serialize;

/// Which part of the pool a transaction is in. A transaction is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubPool {
    /// Executable now and priced at or above the base fee: what builders get.
    Pending,
    /// Executable, but its fee cap (or blob fee cap) is below the current base fee.
    BaseFee,
    /// Not executable yet: a nonce gap before it, or the account cannot afford it.
    Queued,
}

impl SubPool {
    pub const ALL: [Self; 3] = [Self::Pending, Self::BaseFee, Self::Queued];

    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::BaseFee => "basefee",
            Self::Queued => "queued",
        }
    }
}

/// Which limit an eviction enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// A subpool held more transactions than its `max_txs`.
    SubPoolCount(SubPool),
    /// A subpool held more bytes than its `max_bytes`.
    SubPoolBytes(SubPool),
    /// The transaction descended from an evicted one: it could never execute.
    EvictedAncestor,
    /// The pool held more blob data than `blob_bytes`.
    BlobBytes,
}

/// Why a transaction that once was accepted stopped being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    /// The account's nonce moved past it without including it (another tx took the nonce).
    NonceTooLow { account_nonce: u64 },
    /// The chain's block gas limit fell below its gas limit: no block can include it.
    AboveBlockGasLimit { block_gas_limit: u64 },
    /// The minimum tip was raised above its tip cap ([`super::Pool::set_min_tip`]).
    TipBelowMinimum { min: u128 },
}

/// Why a builder could not include a pooled transaction (reported through
/// [`BuilderFeed::report_failed`](crate::builder::BuilderFeed::report_failed)). Not a revert: a
/// reverted transaction is still included and pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InclusionFailure {
    /// The builder's state has a different nonce for the sender.
    WrongNonce,
    /// The sender could not pay for it at execution.
    Unaffordable,
    /// It broke a block limit the builder enforces (gas, size, blobs).
    OverLimit,
}

impl InclusionFailure {
    /// Stable snake_case name.
    pub const fn kind(self) -> &'static str {
        match self {
            Self::WrongNonce => "wrong_nonce",
            Self::Unaffordable => "unaffordable",
            Self::OverLimit => "over_limit",
        }
    }
}

/// Why a transaction left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum RemovalReason {
    /// Included in a block.
    Mined { block: u64 },
    /// Replaced by a transaction with the same sender and nonce, paying more.
    Replaced { by: B256 },
    /// Dropped to keep the pool within a limit.
    Evicted { limit: Limit },
    /// Waited (parked or queued) longer than the configured lifetime.
    Expired,
    /// A block made it invalid.
    Invalidated { why: Invalidation, block: u64 },
    /// A builder reported it failing repeatedly (see `PoolConfig::quarantine`), and the next
    /// state change of its sender (at `block`) did not make it executable again; or it was
    /// reported failing again after one release.
    Quarantined { failure: InclusionFailure, block: u64 },
}

impl RemovalReason {
    /// Stable snake_case name, for metrics and logs.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Mined { .. } => "mined",
            Self::Replaced { .. } => "replaced",
            Self::Evicted { .. } => "evicted",
            Self::Expired => "expired",
            Self::Invalidated { .. } => "invalidated",
            Self::Quarantined { .. } => "quarantined",
        }
    }
}

/// One change to the pool. Every transaction that enters produces one `Added`, and every one
/// that leaves exactly one `Removed`; moves between subpools in between are `Promoted`/`Demoted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum PoolEvent {
    Added {
        hash: B256,
        sender: Address,
        nonce: u64,
        subpool: SubPool,
    },
    /// Moved towards pending (queued → basefee/pending, basefee → pending).
    Promoted {
        hash: B256,
        from: SubPool,
        to: SubPool,
    },
    /// Moved away from pending.
    Demoted {
        hash: B256,
        from: SubPool,
        to: SubPool,
    },
    /// Taken out of the best-first path after repeated builder reports; it (and its sender's
    /// later transactions) wait in queued until a state change of the sender releases it. A
    /// `Demoted` event for each moved transaction follows.
    Quarantined {
        hash: B256,
        sender: Address,
        nonce: u64,
        failure: InclusionFailure,
    },
    Removed {
        hash: B256,
        sender: Address,
        nonce: u64,
        reason: RemovalReason,
    },
}

impl PoolEvent {
    pub const fn hash(&self) -> B256 {
        match self {
            Self::Added { hash, .. }
            | Self::Promoted { hash, .. }
            | Self::Demoted { hash, .. }
            | Self::Quarantined { hash, .. }
            | Self::Removed { hash, .. } => *hash,
        }
    }
}
