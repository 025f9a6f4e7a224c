//! The one error enum for every reason a transaction's bytes are refused. Account-state rules
//! (nonce, balance) are the pool's, with their errors in `pool::PoolError`.

/// Why a transaction was refused.
///
/// JSON output, metric labels and RPC errors use [`TxError::kind`]: kinds are added or deprecated,
/// never renamed. Each variant carries the numbers that decided it. "Busy, try later" is not here:
/// it is backpressure ([`crate::validate::QueueFull`]), not a verdict on the transaction.
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
    #[error("blob transaction in its network form (with sidecar) where its consensus form is expected")]
    BlobSidecarNotAccepted,
    #[error("blob sidecar wrapper version {got} where this fork takes version {expected}")]
    BlobWrapperVersion { got: u8, expected: u8 },

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
    #[error("blob transaction without its sidecar: send the network form (blobs, commitments, proofs)")]
    BlobSidecarMissing,
    #[error(
        "sidecar does not match: {hashes} versioned hashes, {blobs} blobs, {commitments} commitments, {proofs} proofs"
    )]
    BlobCountMismatch { hashes: usize, blobs: usize, commitments: usize, proofs: usize },
    #[error("KZG commitment {index} does not hash to the transaction's versioned hash {index}")]
    BlobCommitmentMismatch { index: usize },
    #[error("KZG proof verification failed")]
    BlobProofInvalid,
    #[error("set-code transaction has an empty authorization list (EIP-7702)")]
    EmptyAuthorizationList,
    #[error("priority fee {tip} is below the minimum {min}")]
    TipBelowMinimum { tip: u128, min: u128 },

    // --- Signature ------------------------------------------------------------------------
    #[error("signature s value is in the upper half of the curve order (EIP-2)")]
    HighS,
    #[error("invalid signature: no sender can be recovered")]
    InvalidSignature,
}

impl TxError {
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
            Self::BlobWrapperVersion { .. } => "blob_wrapper_version",
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
            Self::BlobSidecarMissing => "blob_sidecar_missing",
            Self::BlobCountMismatch { .. } => "blob_count_mismatch",
            Self::BlobCommitmentMismatch { .. } => "blob_commitment_mismatch",
            Self::BlobProofInvalid => "blob_proof_invalid",
            Self::EmptyAuthorizationList => "empty_authorization_list",
            Self::TipBelowMinimum { .. } => "tip_below_minimum",
            Self::HighS => "high_s",
            Self::InvalidSignature => "invalid_signature",
        }
    }

    /// Whether whoever relayed this transaction is to blame (and a peer may be penalised).
    ///
    /// Static and signature failures are provable from the bytes alone: an honest peer never relays
    /// them. Local policy (size, enabled types, minimum tip, block gas limit) may differ between
    /// honest nodes.
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
            | Self::BlobSidecarMissing
            | Self::BlobCountMismatch { .. }
            | Self::BlobCommitmentMismatch { .. }
            | Self::BlobProofInvalid
            | Self::EmptyAuthorizationList
            | Self::HighS
            | Self::InvalidSignature => true,
            // Our policy, which a peer's may legitimately differ from.
            Self::Oversized { .. }
            | Self::TypeNotEnabled { .. }
            | Self::FeeAbove128Bits { .. }
            | Self::BlobSidecarNotAccepted
            // Around a fork's activation an honest peer may still send the other version.
            | Self::BlobWrapperVersion { .. }
            | Self::UnprotectedNotAllowed
            | Self::GasLimitAboveBlock { .. }
            | Self::TipBelowMinimum { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds are API: this pins every kind string. A renamed kind fails the list; a new variant
    /// fails to compile in `index` (no wildcard) until it gets a sample and a kind here.
    #[test]
    fn every_kind_is_pinned() {
        let index = |e: &TxError| match e {
            TxError::Empty => 0,
            TxError::Oversized { .. } => 1,
            TxError::TypeNotSupported(_) => 2,
            TxError::TypeNotEnabled { .. } => 3,
            TxError::MalformedRlp(_) => 4,
            TxError::FieldOverflow => 5,
            TxError::TrailingBytes(_) => 6,
            TxError::FeeAbove128Bits { .. } => 7,
            TxError::BlobSidecarNotAccepted => 8,
            TxError::WrongChainId { .. } => 9,
            TxError::UnprotectedNotAllowed => 10,
            TxError::GasLimitAboveBlock { .. } => 11,
            TxError::GasLimitAboveCap { .. } => 12,
            TxError::TipAboveFeeCap { .. } => 13,
            TxError::NonceMax(_) => 14,
            TxError::IntrinsicGasTooLow { .. } => 15,
            TxError::FloorGasTooLow { .. } => 16,
            TxError::InitcodeTooLarge { .. } => 17,
            TxError::NoBlobs => 18,
            TxError::TooManyBlobs { .. } => 19,
            TxError::BadBlobVersion { .. } => 20,
            TxError::EmptyAuthorizationList => 21,
            TxError::TipBelowMinimum { .. } => 22,
            TxError::HighS => 23,
            TxError::InvalidSignature => 24,
            TxError::BlobWrapperVersion { .. } => 25,
            TxError::BlobSidecarMissing => 26,
            TxError::BlobCountMismatch { .. } => 27,
            TxError::BlobCommitmentMismatch { .. } => 28,
            TxError::BlobProofInvalid => 29,
        };
        let samples = [
            TxError::Empty,
            TxError::Oversized { size: 2, limit: 1 },
            TxError::TypeNotSupported(9),
            TxError::TypeNotEnabled { ty: 4, fork: "cancun" },
            TxError::MalformedRlp("x".into()),
            TxError::FieldOverflow,
            TxError::TrailingBytes(1),
            TxError::FeeAbove128Bits { bytes: 17 },
            TxError::BlobSidecarNotAccepted,
            TxError::WrongChainId { got: Some(5), expected: 1 },
            TxError::UnprotectedNotAllowed,
            TxError::GasLimitAboveBlock { gas_limit: 2, block_gas_limit: 1 },
            TxError::GasLimitAboveCap { gas_limit: 2, cap: 1 },
            TxError::TipAboveFeeCap { tip: 2, fee_cap: 1 },
            TxError::NonceMax(u64::MAX),
            TxError::IntrinsicGasTooLow { gas_limit: 1, intrinsic: 2 },
            TxError::FloorGasTooLow { gas_limit: 1, floor: 2 },
            TxError::InitcodeTooLarge { size: 2, limit: 1 },
            TxError::NoBlobs,
            TxError::TooManyBlobs { count: 7, max: 6 },
            TxError::BadBlobVersion { index: 0, version: 2 },
            TxError::EmptyAuthorizationList,
            TxError::TipBelowMinimum { tip: 0, min: 1 },
            TxError::HighS,
            TxError::InvalidSignature,
            TxError::BlobWrapperVersion { got: 0, expected: 1 },
            TxError::BlobSidecarMissing,
            TxError::BlobCountMismatch { hashes: 1, blobs: 1, commitments: 1, proofs: 2 },
            TxError::BlobCommitmentMismatch { index: 0 },
            TxError::BlobProofInvalid,
        ];
        let order: Vec<usize> = samples.iter().map(index).collect();
        assert_eq!(order, (0..samples.len()).collect::<Vec<_>>(), "one sample per variant, in order");
        let kinds: Vec<&str> = samples.iter().map(TxError::kind).collect();
        assert_eq!(
            kinds,
            [
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
                "blob_wrapper_version",
                "blob_sidecar_missing",
                "blob_count_mismatch",
                "blob_commitment_mismatch",
                "blob_proof_invalid",
            ]
        );
    }
}
