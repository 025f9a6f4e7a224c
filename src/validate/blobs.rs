//! The sidecar rules of a blob transaction's network form, cheapest first: the wrapper version
//! the fork takes, matching counts, commitments that hash to the versioned hashes; then, after
//! the signature, the KZG proofs (c-kzg through alloy, with the Ethereum trusted setup it ships).
//!
//! A version-0 sidecar (one proof per blob) submitted under Osaka rules is refused
//! (`blob_wrapper_version`), not converted: converting means computing 128 cell proofs per blob,
//! about a hundred times the work of verifying them, for anyone who asks — an amplification an
//! RPC endpoint or a peer must not offer. Wallets and rollups that still send version 0 after
//! the fork get a clear kind to act on; geth converted for a transition window instead, which a
//! node beside it may still do.

use alloy_eips::{
    eip4844::{env_settings::EnvKzgSettings, kzg_to_versioned_hash},
    eip7594::CELLS_PER_EXT_BLOB,
};
use alloy_primitives::B256;

use super::Fork;
use crate::tx::{
    TxError,
    blob::{BlobSidecar, wrapper_version},
};

/// Wrapper version, counts and commitments against the transaction's versioned hashes. No KZG
/// work: a few SHA-256 hashes.
///
/// # Errors
/// [`TxError::BlobWrapperVersion`], [`TxError::BlobCountMismatch`],
/// [`TxError::BlobCommitmentMismatch`].
pub(super) fn check_sidecar(sidecar: &BlobSidecar, versioned_hashes: &[B256], fork: Fork) -> Result<(), TxError> {
    let expected = fork.sidecar_version();
    let got = wrapper_version(sidecar);
    if got != expected {
        return Err(TxError::BlobWrapperVersion { got, expected });
    }
    let (blobs, commitments, proofs, proofs_per_blob) = match sidecar {
        BlobSidecar::Eip4844(s) => (s.blobs.len(), s.commitments.len(), s.proofs.len(), 1),
        BlobSidecar::Eip7594(s) => (s.blobs.len(), s.commitments.len(), s.cell_proofs.len(), CELLS_PER_EXT_BLOB),
    };
    let hashes = versioned_hashes.len();
    if blobs != hashes || commitments != hashes || proofs != hashes * proofs_per_blob {
        return Err(TxError::BlobCountMismatch { hashes, blobs, commitments, proofs });
    }
    match sidecar
        .commitments()
        .iter()
        .zip(versioned_hashes)
        .position(|(c, h)| kzg_to_versioned_hash(c.as_slice()) != *h)
    {
        Some(index) => Err(TxError::BlobCommitmentMismatch { index }),
        None => Ok(()),
    }
}

/// Verifies the KZG proofs as one batch: blob proofs (version 0) or cell proofs over the blobs'
/// extended cells (version 1). The costly step: call it last, after [`check_sidecar`] and the
/// signature.
///
/// # Errors
/// [`TxError::BlobProofInvalid`], also for commitments, proofs or blob elements that are not
/// canonical encodings (c-kzg refuses them before verifying).
pub(super) fn verify_proofs(sidecar: &BlobSidecar, versioned_hashes: &[B256]) -> Result<(), TxError> {
    sidecar.validate(versioned_hashes, EnvKzgSettings::Default.get()).map_err(|_| TxError::BlobProofInvalid)
}
