//! Why the pool refused a (valid) transaction.

use alloy_primitives::{Address, B256, U256};

use super::events::SubPool;

/// Why the pool refused a validated transaction. `kind()` names are stable, like `TxError`'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    #[error("transaction {0} is already in the pool")]
    AlreadyKnown(B256),
    #[error("nonce {tx} is below the account nonce {account}")]
    NonceTooLow { tx: u64, account: u64 },
    #[error("cost {cost} exceeds the balance {balance}")]
    InsufficientFunds { cost: U256, balance: U256 },
    /// The sender's state was read more than `STATE_HISTORY` block updates ago: read it again.
    #[error("sender state read at update {read_at} is too old to settle at update {epoch}")]
    StaleState { read_at: u64, epoch: u64 },
    /// A reorged transaction whose sender's state the block update did not carry.
    #[error("the state of sender {0} is not known")]
    StateUnknown(Address),
    #[error(
        "replacement underpriced: fee cap {new_fee_cap} and tip {new_tip} must both be at least \
         {bump_percent}% above {old_fee_cap} and {old_tip}"
    )]
    ReplacementUnderpriced { old_fee_cap: u128, old_tip: u128, new_fee_cap: u128, new_tip: u128, bump_percent: u128 },
    /// Replacing a blob transaction needs the blob fee cap raised by the bump too: otherwise a
    /// sender could make every node fetch the blobs again without paying more for them.
    #[error(
        "blob replacement underpriced: blob fee cap {new_blob_fee_cap} must be at least {bump_percent}% above \
         {old_blob_fee_cap}"
    )]
    BlobReplacementUnderpriced { old_blob_fee_cap: u128, new_blob_fee_cap: u128, bump_percent: u128 },
    /// The chain's current block gas limit is below the transaction's gas limit.
    #[error("gas limit {gas_limit} exceeds the block gas limit {block_gas_limit}")]
    AboveBlockGasLimit { gas_limit: u64, block_gas_limit: u64 },
    #[error("account holds {slots} transactions, its limit")]
    AccountFull { slots: usize },
    #[error("the {} subpool is full and this transaction would be its cheapest", .subpool.name())]
    Underpriced { subpool: SubPool },
    #[error("transaction {0} is not in the pool")]
    NotPooled(B256),
    /// EIP-3607: an account with deployed code cannot send transactions.
    #[error("sender {0} has contract code (EIP-3607)")]
    SenderNotEoa(Address),
    /// An EIP-7702 delegated sender may hold only `slots` transactions, gapless from its nonce
    /// (a replacement is always allowed).
    #[error(
        "sender is EIP-7702 delegated: at most {slots} transactions in flight, each at the next nonce {next_nonce}"
    )]
    DelegatedInFlight { slots: usize, next_nonce: u64 },
    /// An EIP-7702 authorization of this transaction is signed by an account that holds more
    /// pooled transactions than a delegated account may: delegating it would leave them guesses.
    #[error("authority {0} holds more pooled transactions than a delegated account may")]
    AuthorityReserved(Address),
    /// A sender's pooled transactions are all blob or all non-blob: a blob transaction's
    /// sidecar must stay valid and affordable through to inclusion, which a non-blob
    /// transaction of the same sender (replaced or mined on its own schedule) could undo.
    #[error("sender already has {} transactions in the pool: blob and non-blob transactions cannot mix", if *.holds_blobs { "blob" } else { "non-blob" })]
    BlobTypeConflict { holds_blobs: bool },
    /// Blob transactions are pooled only gapless from the account nonce: one that cannot run
    /// yet would hold its blobs' memory for nothing.
    #[error("blob transaction nonce {nonce} leaves a gap: the next nonce is {next_nonce}")]
    BlobNonceGap { nonce: u64, next_nonce: u64 },
    /// The minimum tip rose after validation (see `tx::MinTip`).
    #[error("priority fee {tip} is below the minimum {min}")]
    TipBelowMinimum { tip: u128, min: u128 },
}

impl PoolError {
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::AlreadyKnown(_) => "already_known",
            Self::NonceTooLow { .. } => "nonce_too_low",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::StaleState { .. } => "stale_state",
            Self::StateUnknown(_) => "state_unknown",
            Self::ReplacementUnderpriced { .. } => "replacement_underpriced",
            Self::AccountFull { .. } => "account_full",
            Self::Underpriced { .. } => "underpriced",
            Self::NotPooled(_) => "not_pooled",
            Self::SenderNotEoa(_) => "sender_not_eoa",
            Self::DelegatedInFlight { .. } => "delegated_in_flight",
            Self::AuthorityReserved(_) => "authority_reserved",
            Self::BlobReplacementUnderpriced { .. } => "blob_replacement_underpriced",
            // The same condition as validation's configured cap, so clients see one kind.
            Self::AboveBlockGasLimit { .. } => "gas_limit_above_block",
            Self::BlobTypeConflict { .. } => "blob_type_conflict",
            Self::BlobNonceGap { .. } => "blob_nonce_gap",
            // The same rule as validation's pre-signature check, so clients see one kind.
            Self::TipBelowMinimum { .. } => "tip_below_minimum",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds are API: every kind string pinned; a new variant fails to compile in `index`.
    #[test]
    fn every_kind_is_pinned() {
        let index = |e: &PoolError| match e {
            PoolError::AlreadyKnown(_) => 0,
            PoolError::NonceTooLow { .. } => 1,
            PoolError::InsufficientFunds { .. } => 2,
            PoolError::StaleState { .. } => 3,
            PoolError::StateUnknown(_) => 4,
            PoolError::ReplacementUnderpriced { .. } => 5,
            PoolError::AccountFull { .. } => 6,
            PoolError::Underpriced { .. } => 7,
            PoolError::NotPooled(_) => 8,
            PoolError::SenderNotEoa(_) => 9,
            PoolError::DelegatedInFlight { .. } => 10,
            PoolError::AuthorityReserved(_) => 11,
            PoolError::BlobReplacementUnderpriced { .. } => 12,
            PoolError::AboveBlockGasLimit { .. } => 13,
            PoolError::BlobTypeConflict { .. } => 14,
            PoolError::BlobNonceGap { .. } => 15,
            PoolError::TipBelowMinimum { .. } => 16,
        };
        let samples = [
            PoolError::AlreadyKnown(B256::ZERO),
            PoolError::NonceTooLow { tx: 1, account: 2 },
            PoolError::InsufficientFunds { cost: U256::from(2), balance: U256::from(1) },
            PoolError::StaleState { read_at: 0, epoch: 100 },
            PoolError::StateUnknown(Address::ZERO),
            PoolError::ReplacementUnderpriced {
                old_fee_cap: 1,
                old_tip: 1,
                new_fee_cap: 1,
                new_tip: 1,
                bump_percent: 10,
            },
            PoolError::AccountFull { slots: 16 },
            PoolError::Underpriced { subpool: SubPool::Pending },
            PoolError::NotPooled(B256::ZERO),
            PoolError::SenderNotEoa(Address::ZERO),
            PoolError::DelegatedInFlight { slots: 1, next_nonce: 0 },
            PoolError::AuthorityReserved(Address::ZERO),
            PoolError::BlobReplacementUnderpriced { old_blob_fee_cap: 1, new_blob_fee_cap: 1, bump_percent: 100 },
            PoolError::AboveBlockGasLimit { gas_limit: 2, block_gas_limit: 1 },
            PoolError::BlobTypeConflict { holds_blobs: true },
            PoolError::BlobNonceGap { nonce: 2, next_nonce: 1 },
            PoolError::TipBelowMinimum { tip: 1, min: 2 },
        ];
        let order: Vec<usize> = samples.iter().map(index).collect();
        assert_eq!(order, (0..samples.len()).collect::<Vec<_>>(), "one sample per variant, in order");
        let kinds: Vec<&str> = samples.iter().map(PoolError::kind).collect();
        assert_eq!(
            kinds,
            [
                "already_known",
                "nonce_too_low",
                "insufficient_funds",
                "stale_state",
                "state_unknown",
                "replacement_underpriced",
                "account_full",
                "underpriced",
                "not_pooled",
                "sender_not_eoa",
                "delegated_in_flight",
                "authority_reserved",
                "blob_replacement_underpriced",
                "gas_limit_above_block",
                "blob_type_conflict",
                "blob_nonce_gap",
                "tip_below_minimum",
            ]
        );
    }
}
