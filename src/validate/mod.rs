//! Validation: untrusted bytes in, [`PooledTx`] (or a typed [`TxError`]) out.
//!
//! Owns: the order of checks, chain rules per [`Fork`], local policy ([`ValidationConfig`]),
//! and the worker [`pipeline`] with its bounded queue.
//! Does not: read or rule on account state (the sender's snapshot is read by `ingest` through
//! `state`, and the nonce and balance rules are the pool's), hold transactions after the
//! verdict (`pool`), talk to peers (`net`), or await.
//!
//! # Order of checks
//! Cheapest first, so junk costs as little as possible, and the signature (about 95% of the
//! work) only for transactions that pass everything else:
//! 1. encoded size <= `max_tx_size`;
//! 2. type byte supported and enabled at the fork;
//! 3. exact decoding (canonical RLP, no trailing bytes, fees below 2^128);
//! 4. chain id (and whether unprotected legacy transactions are allowed);
//! 5. gas limit <= block gas limit, and <= 2^24 from Osaka (EIP-7825);
//! 6. fee cap >= tip;
//! 7. field widths: nonce < 2^64-1 (EIP-2681) (decoding already bounds the others);
//! 8. intrinsic gas, the EIP-7623 calldata floor, the EIP-3860 initcode limit;
//! 9. blob count and versioned-hash version (type 3), non-empty authorization list (type 4);
//! 10. minimum tip;
//! 11. signature: low-s, then sender recovery.
//!
//! A blob transaction enters the pool only in its network form ([`crate::tx::blob`]): the size
//! limit applies to its consensus bytes (the sidecar's size follows from its blob count, bounded
//! by the fork's blob schedule), the sidecar's shape is checked right after decoding
//! (`blobs::check_sidecar`) and its KZG proofs after the signature, as the costliest step.
//! The pipeline runs network forms on their own workers and queue, so proof work never takes the
//! ordinary transactions' share of the CPU (see [`pipeline`]). [`Validator::validate_consensus`]
//! applies the consensus rules alone, as for a transaction in a block.
//!
//! Every step depends only on the bytes and the config, so the outcome is cached by hash in the
//! pipeline. Account state (nonce >= account nonce, balance >= cost) moves with every block: the
//! pool checks it at insertion against the freshest state it knows.
//!
//! # Fees of 2^128 wei per gas and above
//! The spec allows u256 fees; Tidepool (like alloy) holds them as u128 and refuses wider ones with
//! their own kind, `fee_above_128_bits`. Such a fee times the 21,000-gas minimum exceeds all ether
//! in existence by a factor of 10^14, so no account can ever pay it: refusing it up front only
//! saves a signature check. Three standard vectors expect such transactions to be *valid* (they
//! test the decoder, not payability); the conformance test scores them against this policy.

mod blobs;
mod gas;
pub mod pipeline;

pub use gas::{IntrinsicGas, MAX_INITCODE_SIZE, intrinsic_gas};
pub use pipeline::{PipelineConfig, QueueFull, ValidationPipeline, Verdict};

use alloy_consensus::Transaction as _;
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{B256, Bytes};
use serde::{Deserialize, Serialize};

use crate::tx::{self, DecodedTx, MinTip, PooledTx, TxError, blob};

/// The chain rules a transaction is checked against. Later forks include earlier rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fork {
    /// EIP-1559 fee market; types 0-2.
    London,
    /// EIP-3860 initcode limit and word cost.
    Shanghai,
    /// EIP-4844 blob transactions (type 3), at most 6 blobs.
    Cancun,
    /// EIP-7702 set-code transactions (type 4), EIP-7623 calldata floor, at most 9 blobs.
    Prague,
    /// EIP-7825 per-transaction gas cap of 2^24; EIP-7594 cell proofs (sidecar wrapper
    /// version 1) and a limit of 6 blobs per transaction.
    Osaka,
    /// EIP-7892 blob-parameter-only fork: blocks of up to 15 blobs (target 10).
    Bpo1,
    /// The second blob-parameter-only fork: blocks of up to 21 blobs (target 14). Mainnet's
    /// rules since January 2026.
    Bpo2,
}

impl Fork {
    pub const fn name(self) -> &'static str {
        match self {
            Self::London => "london",
            Self::Shanghai => "shanghai",
            Self::Cancun => "cancun",
            Self::Prague => "prague",
            Self::Osaka => "osaka",
            Self::Bpo1 => "bpo1",
            Self::Bpo2 => "bpo2",
        }
    }

    /// The highest transaction type this fork knows.
    pub const fn max_tx_type(self) -> u8 {
        match self {
            Self::London | Self::Shanghai => 2,
            Self::Cancun => 3,
            Self::Prague | Self::Osaka | Self::Bpo1 | Self::Bpo2 => 4,
        }
    }

    /// The fork's blob schedule (EIP-7840): per-block target and maximum, per-transaction
    /// maximum, and the blob base fee's update fraction. Forks before Cancun have no blobs
    /// (their type-3 transactions are refused as not enabled); they get Cancun's schedule.
    pub const fn blob_params(self) -> BlobParams {
        match self {
            Self::London | Self::Shanghai | Self::Cancun => BlobParams::cancun(),
            Self::Prague => BlobParams::prague(),
            Self::Osaka => BlobParams::osaka(),
            Self::Bpo1 => BlobParams::bpo1(),
            Self::Bpo2 => BlobParams::bpo2(),
        }
    }

    /// The most blobs one transaction may carry, from the blob schedule.
    pub const fn max_blobs_per_tx(self) -> usize {
        match self {
            Self::London | Self::Shanghai => 0,
            _ => self.blob_params().max_blobs_per_tx as usize,
        }
    }

    /// The most blobs one block may carry, from the blob schedule.
    pub const fn max_blobs_per_block(self) -> usize {
        match self {
            Self::London | Self::Shanghai => 0,
            _ => self.blob_params().max_blob_count as usize,
        }
    }

    /// The sidecar form the fork's network takes: one KZG proof per blob (wrapper version 0)
    /// before Osaka, EIP-7594 cell proofs (wrapper version 1) from Osaka.
    pub const fn sidecar_version(self) -> u8 {
        match self {
            Self::London | Self::Shanghai | Self::Cancun | Self::Prague => 0,
            Self::Osaka | Self::Bpo1 | Self::Bpo2 => 1,
        }
    }

    /// The blob market after a block with `excess` excess blob gas that used `used` blob gas at
    /// base fee `base_fee`: the next block's excess blob gas and blob base fee (EIP-4844, with
    /// EIP-7918's reserve price from Osaka).
    pub fn next_blob_market(self, excess: u64, used: u64, base_fee: u64) -> (u64, u128) {
        let params = self.blob_params();
        let next_excess = if self >= Self::Osaka {
            params.next_block_excess_blob_gas_osaka(excess, used, base_fee)
        } else {
            (excess + used).saturating_sub(params.target_blob_gas_per_block())
        };
        (next_excess, params.calc_blob_fee(next_excess))
    }

    /// The per-transaction gas limit cap (EIP-7825), if the fork has one.
    pub const fn tx_gas_limit_cap(self) -> Option<u64> {
        match self {
            Self::Osaka | Self::Bpo1 | Self::Bpo2 => Some(1 << 24),
            _ => None,
        }
    }
}

/// Local policy and chain parameters for validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// The chain id typed and EIP-155 transactions must carry. Default 1 (mainnet).
    pub chain_id: u64,
    /// Chain rules. Default BPO2, mainnet's rules since January 2026.
    pub fork: Fork,
    /// Largest encoded transaction accepted, in bytes. Default 131,072 (128 KiB, as geth and reth).
    pub max_tx_size: usize,
    /// A transaction may not ask for more gas than a block holds. Default 60,000,000 (mainnet).
    pub block_gas_limit: u64,
    /// Smallest tip cap (gas price for legacy) accepted, in wei, at start. Default 1, as geth's
    /// `pricelimit`: zero-tip transactions earn a builder nothing and are free to spam. It can
    /// be changed at run time ([`crate::tx::MinTip`], shared with the pool, which owns the rule).
    pub min_priority_fee: u128,
    /// Accept legacy transactions without EIP-155 replay protection. Default true, as the
    /// network still carries a few (deployment transactions made for every chain).
    pub allow_unprotected: bool,
    /// Types refused even where the fork knows them (e.g. `[3]` for a pool without blob support).
    pub disabled_types: Vec<u8>,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            chain_id: 1,
            fork: Fork::Bpo2,
            max_tx_size: tx::MAX_TX_SIZE,
            block_gas_limit: 60_000_000,
            min_priority_fee: 1,
            allow_unprotected: true,
            disabled_types: Vec::new(),
        }
    }
}

/// Runs the checks in the documented order. Cheap to share: it holds its config and the
/// run-time minimum tip.
#[derive(Debug, Clone)]
pub struct Validator {
    config: ValidationConfig,
    min_tip: MinTip,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new(ValidationConfig::default())
    }
}

impl Validator {
    pub fn new(config: ValidationConfig) -> Self {
        let min_tip = MinTip::new(config.min_priority_fee);
        Self { config, min_tip }
    }

    pub const fn config(&self) -> &ValidationConfig {
        &self.config
    }

    /// The minimum tip step 10 reads: share it with the pool ([`crate::pool::Pool::with_min_tip`]),
    /// which owns the rule and changes it at run time.
    pub const fn min_tip(&self) -> &MinTip {
        &self.min_tip
    }

    /// Steps 1-3: size, type, exact decoding.
    ///
    /// # Errors
    /// The first failing step's [`TxError`].
    pub fn decode(&self, raw: &[u8]) -> Result<DecodedTx, TxError> {
        if raw.len() > self.config.max_tx_size {
            return Err(TxError::Oversized { size: raw.len(), limit: self.config.max_tx_size });
        }
        let ty = tx::type_byte(raw)?;
        if ty > tx::MAX_TX_TYPE {
            return Err(TxError::TypeNotSupported(ty));
        }
        if ty > self.config.fork.max_tx_type() || self.config.disabled_types.contains(&ty) {
            return Err(TxError::TypeNotEnabled { ty, fork: self.config.fork.name() });
        }
        tx::decode(raw)
    }

    /// Steps 4-11 on a decoded transaction; `raw` must be the bytes it was decoded from.
    ///
    /// # Errors
    /// The first failing step's [`TxError`].
    pub fn check(&self, decoded: &DecodedTx, raw: Bytes) -> Result<PooledTx, TxError> {
        let tx = &decoded.envelope;
        let fork = self.config.fork;

        match tx.chain_id() {
            Some(id) if id != self.config.chain_id => {
                return Err(TxError::WrongChainId { got: Some(id), expected: self.config.chain_id });
            }
            None if !self.config.allow_unprotected => return Err(TxError::UnprotectedNotAllowed),
            _ => {}
        }

        let gas_limit = tx.gas_limit();
        if gas_limit > self.config.block_gas_limit {
            return Err(TxError::GasLimitAboveBlock { gas_limit, block_gas_limit: self.config.block_gas_limit });
        }
        if let Some(cap) = fork.tx_gas_limit_cap().filter(|&cap| gas_limit > cap) {
            return Err(TxError::GasLimitAboveCap { gas_limit, cap });
        }

        let fee_cap = tx.max_fee_per_gas();
        let tip = tx.max_priority_fee_per_gas().unwrap_or(fee_cap);
        if tip > fee_cap {
            return Err(TxError::TipAboveFeeCap { tip, fee_cap });
        }

        if tx.nonce() == u64::MAX {
            return Err(TxError::NonceMax(tx.nonce()));
        }
        let blob_hashes = tx.blob_versioned_hashes().unwrap_or_default();
        let cost = tx::max_cost(tx, blob_hashes.len() as u64);

        let gas = intrinsic_gas(tx, fork);
        if gas_limit < gas.standard {
            return Err(TxError::IntrinsicGasTooLow { gas_limit, intrinsic: gas.standard });
        }
        if gas_limit < gas.floor {
            return Err(TxError::FloorGasTooLow { gas_limit, floor: gas.floor });
        }
        if fork >= Fork::Shanghai && tx.kind().is_create() && tx.input().len() > MAX_INITCODE_SIZE {
            return Err(TxError::InitcodeTooLarge { size: tx.input().len(), limit: MAX_INITCODE_SIZE });
        }

        if tx.is_eip4844() {
            check_blob_hashes(blob_hashes, fork.max_blobs_per_tx())?;
        }
        if tx.authorization_list().is_some_and(<[_]>::is_empty) {
            return Err(TxError::EmptyAuthorizationList);
        }

        let min = self.min_tip.get();
        if tip < min {
            return Err(TxError::TipBelowMinimum { tip, min });
        }

        let sender = tx::recover_sender(tx)?;
        Ok(PooledTx::new(decoded, sender, raw, cost))
    }

    /// Every step, in order, for a transaction to pool: a blob transaction must come in its
    /// network form, and the [`PooledTx`] then carries its sidecar.
    ///
    /// # Errors
    /// The first failing step's [`TxError`]; [`TxError::BlobSidecarMissing`] for a blob
    /// transaction in its consensus form.
    pub fn validate(&self, raw: Bytes) -> Result<PooledTx, TxError> {
        if blob::is_network_form(&raw) {
            return self.validate_network_form(&raw);
        }
        let decoded = self.decode(&raw)?;
        if decoded.envelope.is_eip4844() {
            return Err(TxError::BlobSidecarMissing);
        }
        self.check(&decoded, raw)
    }

    /// The consensus rules alone, as for a transaction in a block: a blob transaction comes in
    /// its consensus form and passes without its sidecar.
    ///
    /// # Errors
    /// The first failing step's [`TxError`].
    pub fn validate_consensus(&self, raw: Bytes) -> Result<PooledTx, TxError> {
        let decoded = self.decode(&raw)?;
        self.check(&decoded, raw)
    }

    /// The length check before anything else (the pipeline runs it before hashing): the
    /// configured limit, or for a blob transaction's network form that plus the largest
    /// sidecar the fork allows. A network form over it that carries more blobs than the fork
    /// allows is refused as [`TxError::TooManyBlobs`] (counted from the framing alone), as it
    /// would be within the limit.
    ///
    /// # Errors
    /// [`TxError::Oversized`] or [`TxError::TooManyBlobs`].
    pub fn check_size(&self, raw: &[u8]) -> Result<(), TxError> {
        let network_form = blob::is_network_form(raw);
        let max_blobs = self.config.fork.max_blobs_per_tx();
        let limit = if network_form {
            blob::max_network_size(self.config.max_tx_size, max_blobs)
        } else {
            self.config.max_tx_size
        };
        if raw.len() <= limit {
            return Ok(());
        }
        match blob::count_blobs(raw).filter(|&count| network_form && count > max_blobs) {
            Some(count) => Err(TxError::TooManyBlobs { count, max: max_blobs }),
            None => Err(TxError::Oversized { size: raw.len(), limit }),
        }
    }

    fn validate_network_form(&self, raw: &[u8]) -> Result<PooledTx, TxError> {
        self.check_size(raw)?;
        let form = blob::split_network_form(raw)?;
        let decoded = self.decode(&form.consensus)?;
        let hashes = decoded.envelope.blob_versioned_hashes().unwrap_or_default();
        blobs::check_sidecar(&form.sidecar, hashes, self.config.fork)?;
        let pooled = self.check(&decoded, form.consensus.clone())?;
        blobs::verify_proofs(&form.sidecar, hashes)?;
        Ok(pooled.with_sidecar(form.sidecar))
    }
}

/// Blob version byte for KZG commitments (EIP-4844 `VERSIONED_HASH_VERSION_KZG`).
const VERSIONED_HASH_VERSION_KZG: u8 = 0x01;

fn check_blob_hashes(hashes: &[B256], max: usize) -> Result<(), TxError> {
    if hashes.is_empty() {
        return Err(TxError::NoBlobs);
    }
    if hashes.len() > max {
        return Err(TxError::TooManyBlobs { count: hashes.len(), max });
    }
    match hashes.iter().position(|h| h[0] != VERSIONED_HASH_VERSION_KZG) {
        Some(index) => Err(TxError::BadBlobVersion { index, version: hashes[index][0] }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
