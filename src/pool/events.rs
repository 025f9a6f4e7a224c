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
}

/// Why a transaction that once was accepted stopped being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    /// The account's nonce moved past it without including it (another tx took the nonce).
    NonceTooLow { account_nonce: u64 },
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
    Invalidated { why: Invalidation },
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
            | Self::Removed { hash, .. } => *hash,
        }
    }
}
