//! Why the pool refused a (valid) transaction.

use alloy_primitives::B256;

use super::events::SubPool;

/// Why the pool refused a validated transaction. `kind()` names are stable, like `TxError`'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    #[error("transaction {0} is already in the pool")]
    AlreadyKnown(B256),
    #[error("nonce {tx} is below the account nonce {account}")]
    NonceTooLow { tx: u64, account: u64 },
    #[error(
        "replacement underpriced: fee cap {new_fee_cap} and tip {new_tip} must both be at least \
         {bump_percent}% above {old_fee_cap} and {old_tip}"
    )]
    ReplacementUnderpriced { old_fee_cap: u128, old_tip: u128, new_fee_cap: u128, new_tip: u128, bump_percent: u128 },
    #[error("account holds {slots} transactions, its limit")]
    AccountFull { slots: usize },
    #[error("the {} subpool is full and this transaction would be its cheapest", .subpool.name())]
    Underpriced { subpool: SubPool },
    #[error("transaction {0} is not in the pool")]
    NotPooled(B256),
}

impl PoolError {
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::AlreadyKnown(_) => "already_known",
            Self::NonceTooLow { .. } => "nonce_too_low",
            Self::ReplacementUnderpriced { .. } => "replacement_underpriced",
            Self::AccountFull { .. } => "account_full",
            Self::Underpriced { .. } => "underpriced",
            Self::NotPooled(_) => "not_pooled",
        }
    }
}
