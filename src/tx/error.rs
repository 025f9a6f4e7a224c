//! The one error enum for every reason a transaction is refused, from raw bytes to account state.

use alloy_primitives::U256;

/// Why a transaction was refused.
///
/// JSON output, metric labels and RPC errors use [`TxError::kind`]: kinds are added or deprecated,
/// never renamed. Each variant carries the numbers that decided it. "Busy, try later" is not here:
/// it is backpressure ([`crate::validate::SubmitError`]), not a verdict on the transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    // --- Raw bytes, before decoding -------------------------------------------------------
    #[error("empty input")]
    Empty,
    #[error("encoded size {size} exceeds the limit of {limit} bytes")]
    Oversized { size: usize, limit: usize },
    #[error("transaction type {0:#04x} is not supported")]
    TypeNotSupported(u8),
    #[error("transaction type {ty:#04x} is not enabled at {fork}")]
    TypeNotEnabled { ty: u8, fork: &'static str },

    // --- Decoding -------------------------------------------------------------------------
    #[error("malformed RLP: {0}")]
    MalformedRlp(String),
    #[error("a field is wider than its type allows")]
    FieldOverflow,
    #[error("{0} trailing bytes after the transaction")]
    TrailingBytes(usize),
    #[error("fee field is {bytes} bytes wide (>= 2^128 wei per gas): no account can pay it")]
    FeeAbove128Bits { bytes: usize },
    #[error("blob transaction in its network form (with sidecar): submit the consensus form")]
    BlobSidecarNotAccepted,

    // --- Static rules ---------------------------------------------------------------------
    #[error("chain id {got:?} does not match {expected}")]
    WrongChainId { got: Option<u64>, expected: u64 },
    #[error("transaction is not replay-protected (pre-EIP-155) and unprotected transactions are disabled")]
    UnprotectedNotAllowed,
    #[error("gas limit {gas_limit} exceeds the block gas limit {block_gas_limit}")]
    GasLimitAboveBlock { gas_limit: u64, block_gas_limit: u64 },
    #[error("gas limit {gas_limit} exceeds the per-transaction cap {cap} (EIP-7825)")]
    GasLimitAboveCap { gas_limit: u64, cap: u64 },
    #[error("priority fee {tip} exceeds the fee cap {fee_cap}")]
    TipAboveFeeCap { tip: u128, fee_cap: u128 },
    #[error("nonce {0} is at or above 2^64-1 (EIP-2681)")]
    NonceMax(u64),
    #[error("gas limit {gas_limit} is below the intrinsic gas {intrinsic}")]
    IntrinsicGasTooLow { gas_limit: u64, intrinsic: u64 },
    #[error("gas limit {gas_limit} is below the calldata floor {floor} (EIP-7623)")]
    FloorGasTooLow { gas_limit: u64, floor: u64 },
    #[error("initcode of {size} bytes exceeds the limit of {limit} (EIP-3860)")]
    InitcodeTooLarge { size: usize, limit: usize },
    #[error("blob transaction carries no blobs")]
    NoBlobs,
    #[error("{count} blobs exceed the per-transaction maximum {max}")]
    TooManyBlobs { count: usize, max: usize },
    #[error("blob versioned hash {index} has version {version:#04x}, expected 0x01")]
    BadBlobVersion { index: usize, version: u8 },
    #[error("set-code transaction has an empty authorization list (EIP-7702)")]
    EmptyAuthorizationList,
    #[error("priority fee {tip} is below the minimum {min}")]
    TipBelowMinimum { tip: u128, min: u128 },

    // --- Signature ------------------------------------------------------------------------
    #[error("signature s value is in the upper half of the curve order (EIP-2)")]
    HighS,
    #[error("invalid signature: no sender can be recovered")]
    InvalidSignature,

    // --- Account state --------------------------------------------------------------------
    #[error("nonce {tx} is below the account nonce {account}")]
    NonceTooLow { tx: u64, account: u64 },
    #[error("cost {cost} exceeds the balance {balance}")]
    InsufficientFunds { cost: U256, balance: U256 },
}

impl TxError {
    /// Every kind name, in declaration order. A test pins this list: kinds are API.
    pub const KINDS: &'static [&'static str] = &[
        "empty",
        "oversized",
        "type_not_supported",
        "type_not_enabled",
        "malformed_rlp",
        "field_overflow",
        "trailing_bytes",
        "fee_above_128_bits",
        "blob_sidecar_not_accepted",
        "wrong_chain_id",
        "unprotected_not_allowed",
        "gas_limit_above_block",
        "gas_limit_above_cap",
        "tip_above_fee_cap",
        "nonce_max",
        "intrinsic_gas_too_low",
        "floor_gas_too_low",
        "initcode_too_large",
        "no_blobs",
        "too_many_blobs",
        "bad_blob_version",
        "empty_authorization_list",
        "tip_below_minimum",
        "high_s",
        "invalid_signature",
        "nonce_too_low",
        "insufficient_funds",
    ];

    /// Stable snake_case name of this rejection.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Oversized { .. } => "oversized",
            Self::TypeNotSupported(_) => "type_not_supported",
            Self::TypeNotEnabled { .. } => "type_not_enabled",
            Self::MalformedRlp(_) => "malformed_rlp",
            Self::FieldOverflow => "field_overflow",
            Self::TrailingBytes(_) => "trailing_bytes",
            Self::FeeAbove128Bits { .. } => "fee_above_128_bits",
            Self::BlobSidecarNotAccepted => "blob_sidecar_not_accepted",
            Self::WrongChainId { .. } => "wrong_chain_id",
            Self::UnprotectedNotAllowed => "unprotected_not_allowed",
            Self::GasLimitAboveBlock { .. } => "gas_limit_above_block",
            Self::GasLimitAboveCap { .. } => "gas_limit_above_cap",
            Self::TipAboveFeeCap { .. } => "tip_above_fee_cap",
            Self::NonceMax(_) => "nonce_max",
            Self::IntrinsicGasTooLow { .. } => "intrinsic_gas_too_low",
            Self::FloorGasTooLow { .. } => "floor_gas_too_low",
            Self::InitcodeTooLarge { .. } => "initcode_too_large",
            Self::NoBlobs => "no_blobs",
            Self::TooManyBlobs { .. } => "too_many_blobs",
            Self::BadBlobVersion { .. } => "bad_blob_version",
            Self::EmptyAuthorizationList => "empty_authorization_list",
            Self::TipBelowMinimum { .. } => "tip_below_minimum",
            Self::HighS => "high_s",
            Self::InvalidSignature => "invalid_signature",
            Self::NonceTooLow { .. } => "nonce_too_low",
            Self::InsufficientFunds { .. } => "insufficient_funds",
        }
    }

    /// Whether whoever relayed this transaction is to blame (and a peer may be penalised).
    ///
    /// Static and signature failures are provable from the bytes alone: an honest peer never relays
    /// them. Local policy (size, enabled types, minimum tip, block gas limit) and account state
    /// (a stale nonce, a spent balance) may differ between honest nodes or be our own lag.
    pub const fn blames_sender(&self) -> bool {
        match self {
            // Provable from the bytes: honest peers validate before relaying.
            Self::Empty
            | Self::TypeNotSupported(_)
            | Self::MalformedRlp(_)
            | Self::FieldOverflow
            | Self::TrailingBytes(_)
            | Self::WrongChainId { .. }
            | Self::GasLimitAboveCap { .. }
            | Self::TipAboveFeeCap { .. }
            | Self::NonceMax(_)
            | Self::IntrinsicGasTooLow { .. }
            | Self::FloorGasTooLow { .. }
            | Self::InitcodeTooLarge { .. }
            | Self::NoBlobs
            | Self::TooManyBlobs { .. }
            | Self::BadBlobVersion { .. }
            | Self::EmptyAuthorizationList
            | Self::HighS
            | Self::InvalidSignature => true,
            // Our policy, which a peer's may legitimately differ from.
            Self::Oversized { .. }
            | Self::TypeNotEnabled { .. }
            | Self::FeeAbove128Bits { .. }
            | Self::BlobSidecarNotAccepted
            | Self::UnprotectedNotAllowed
            | Self::GasLimitAboveBlock { .. }
            | Self::TipBelowMinimum { .. } => false,
            // State: the peer may be ahead of or behind our view of the chain.
            Self::NonceTooLow { .. } | Self::InsufficientFunds { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for kind in TxError::KINDS {
            assert!(seen.insert(kind), "duplicate kind {kind}");
            assert!(kind.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
        }
    }

    #[test]
    fn kind_of_each_variant_is_listed() {
        let samples = [
            TxError::Empty,
            TxError::Oversized { size: 2, limit: 1 },
            TxError::MalformedRlp("x".into()),
            TxError::FeeAbove128Bits { bytes: 31 },
            TxError::NonceTooLow { tx: 1, account: 2 },
            TxError::InsufficientFunds { cost: U256::from(2), balance: U256::from(1) },
        ];
        for error in samples {
            assert!(TxError::KINDS.contains(&error.kind()), "{} not listed", error.kind());
        }
    }
}
