//! [`PooledTx`]: the validated, sender-recovered form every later stage works with.

use alloy_consensus::Transaction as _;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256};

use super::{DecodedTx, Envelope, blob::BlobSidecar};

/// Gas used by one blob (EIP-4844 `GAS_PER_BLOB`).
pub const GAS_PER_BLOB: u64 = 1 << 17;

/// Where a transaction came from; it decides who else may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Submitted by this node's own users (JSON-RPC, or the embedder on their behalf). Gossiped.
    Local,
    /// Received from a network: our peers, or the embedder's own (e.g. devp2p). Gossiped.
    #[default]
    External,
    /// For builders only: never gossiped, announced or served to peers.
    Private,
}

impl Origin {
    /// Whether peers may learn of the transaction from us.
    pub const fn is_shared(self) -> bool {
        !matches!(self, Self::Private)
    }
}

/// A validated transaction with its recovered sender and the fields the pool orders by.
///
/// Only validation builds one, so holding a `PooledTx` means: the bytes decoded exactly, the
/// static rules passed, and `sender` signed them. Every field is computed once, at construction.
/// It keeps the encoded bytes, not the decoded tree: that is what peers, RPC and blocks need,
/// and it halves the memory per pooled transaction (see `BENCHMARKS.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledTx {
    hash: B256,
    sender: Address,
    encoded: Bytes,
    nonce: u64,
    gas_limit: u64,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
    max_fee_per_blob_gas: u128,
    cost: U256,
    tx_type: u8,
    blob_count: u8,
    origin: Origin,
    /// Signers of its EIP-7702 authorizations (empty, without an allocation, for other types).
    authorities: Box<[Address]>,
    /// A blob transaction's verified sidecar, from validation to the pool's door: the pool
    /// moves it to its blob store and keeps only the consensus form (see `pool::blobs`).
    sidecar: Option<Arc<BlobSidecar>>,
}

impl PooledTx {
    /// Builds the pooled form; `encoded` must be the bytes `decoded` came from, `cost` its
    /// [`max_cost`] and `sender` its recovered signer.
    pub(crate) fn new(decoded: &DecodedTx, sender: Address, encoded: Bytes, cost: U256) -> Self {
        let tx = &decoded.envelope;
        let blob_count = tx.blob_versioned_hashes().map_or(0, <[B256]>::len);
        let max_fee_per_blob_gas = tx.max_fee_per_blob_gas().unwrap_or(0);
        // Recovered here, on a validation worker: the pool needs them under its lock. An
        // authorization whose signature does not recover is skipped at execution, so here too.
        let authorities = tx
            .authorization_list()
            .into_iter()
            .flatten()
            .filter_map(|authorization| super::recover_authority(authorization).ok())
            .collect();
        Self {
            hash: decoded.hash,
            sender,
            nonce: tx.nonce(),
            gas_limit: tx.gas_limit(),
            max_fee_per_gas: tx.max_fee_per_gas(),
            max_priority_fee_per_gas: priority_fee(tx),
            max_fee_per_blob_gas,
            cost,
            tx_type: tx.tx_type() as u8,
            // At most 6-9 blobs pass validation; u8 keeps the struct small.
            blob_count: u8::try_from(blob_count).unwrap_or(u8::MAX),
            encoded,
            origin: Origin::External,
            authorities,
            sidecar: None,
        }
    }

    /// The same transaction with its verified sidecar (validation of a network form).
    #[must_use]
    pub(crate) fn with_sidecar(mut self, sidecar: BlobSidecar) -> Self {
        self.sidecar = Some(Arc::new(sidecar));
        self
    }

    /// The sidecar, while the transaction carries it (before it is pooled).
    pub fn sidecar(&self) -> Option<&Arc<BlobSidecar>> {
        self.sidecar.as_ref()
    }

    /// Takes the sidecar out, leaving the consensus form.
    pub const fn take_sidecar(&mut self) -> Option<Arc<BlobSidecar>> {
        self.sidecar.take()
    }

    /// The same transaction marked with where it came from (validation marks `External`).
    #[must_use]
    pub const fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// Records a new origin (a peer's transaction that this node's user also submitted).
    pub const fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
    }

    pub const fn origin(&self) -> Origin {
        self.origin
    }

    /// keccak256 of the encoded bytes.
    pub const fn hash(&self) -> B256 {
        self.hash
    }
    /// The recovered signer.
    pub const fn sender(&self) -> Address {
        self.sender
    }
    /// The canonical EIP-2718 bytes (consensus form; a blob transaction's network form is
    /// [`crate::tx::blob::network_form`] of these and its sidecar).
    pub const fn encoded(&self) -> &Bytes {
        &self.encoded
    }
    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        self.encoded.len()
    }
    pub const fn nonce(&self) -> u64 {
        self.nonce
    }
    pub const fn gas_limit(&self) -> u64 {
        self.gas_limit
    }
    /// Fee cap per gas; the gas price for legacy and EIP-2930 transactions.
    pub const fn max_fee_per_gas(&self) -> u128 {
        self.max_fee_per_gas
    }
    /// Tip cap per gas; the gas price for legacy and EIP-2930 transactions.
    pub const fn max_priority_fee_per_gas(&self) -> u128 {
        self.max_priority_fee_per_gas
    }
    /// Blob fee cap per blob gas; zero for non-blob transactions.
    pub const fn max_fee_per_blob_gas(&self) -> u128 {
        self.max_fee_per_blob_gas
    }
    /// The most this transaction can take from its sender's balance:
    /// `gas_limit x max_fee_per_gas + blob_gas x max_fee_per_blob_gas + value`.
    pub const fn cost(&self) -> U256 {
        self.cost
    }
    /// EIP-2718 type (0 for legacy).
    pub const fn tx_type(&self) -> u8 {
        self.tx_type
    }
    pub const fn blob_count(&self) -> u8 {
        self.blob_count
    }
    pub const fn is_blob(&self) -> bool {
        self.tx_type == 3
    }
    /// Blob gas it uses (`GAS_PER_BLOB` per blob); zero for non-blob transactions.
    pub const fn blob_gas(&self) -> u64 {
        self.blob_count as u64 * GAS_PER_BLOB
    }
    /// Bytes of blob data its sidecar carries (131,072 per blob), what the pool's `blob_bytes`
    /// limit counts; zero for non-blob transactions.
    pub const fn blob_data_size(&self) -> usize {
        self.blob_count as usize * super::blob::BYTES_PER_BLOB
    }
    /// The accounts its EIP-7702 authorizations delegate (their signers).
    pub const fn authorities(&self) -> &[Address] {
        &self.authorities
    }

    /// The tip a block producer earns per gas at `base_fee`:
    /// `min(tip cap, fee cap - base fee)`, or `None` when the fee cap is below the base fee.
    pub const fn effective_tip(&self, base_fee: u128) -> Option<u128> {
        effective_tip(self.max_fee_per_gas, self.max_priority_fee_per_gas, base_fee)
    }

    /// Decodes the stored bytes again, for callers that need every field (RPC, block execution).
    pub fn decode(&self) -> Envelope {
        super::decode(&self.encoded).expect("PooledTx bytes were decoded exactly when it was built").envelope
    }
}

/// `min(tip, fee_cap - base_fee)`, or `None` when the fee cap is below the base fee.
pub const fn effective_tip(fee_cap: u128, tip: u128, base_fee: u128) -> Option<u128> {
    if fee_cap < base_fee {
        return None;
    }
    let headroom = fee_cap - base_fee;
    Some(if headroom < tip { headroom } else { tip })
}

/// Tip cap per gas; legacy gas price counts as both fee cap and tip.
fn priority_fee(tx: &Envelope) -> u128 {
    tx.max_priority_fee_per_gas().unwrap_or_else(|| tx.max_fee_per_gas())
}

/// The most a transaction can take from its sender:
/// `gas_limit x fee cap + blob_count x GAS_PER_BLOB x blob fee cap + value`, saturating at
/// `U256::MAX`. Saturation is exact for every purpose: a value that large exceeds any balance
/// that can exist (all ether is below 2^88 wei), so the balance check refuses it either way,
/// and static validation stays as the spec has it (such a transaction is well-formed).
pub fn max_cost(tx: &Envelope, blob_count: u64) -> U256 {
    let execution = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas());
    let blob_fee = tx.max_fee_per_blob_gas().unwrap_or(0);
    let blob = U256::from(blob_count * GAS_PER_BLOB) * U256::from(blob_fee);
    execution.saturating_add(blob).saturating_add(tx.value())
}
