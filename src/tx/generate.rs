//! A seeded generator of signed transactions shaped like mainnet traffic.
//!
//! Benchmarks, tests, `tidepool load` and the simulator use it so that they run anywhere, without
//! the shared mainnet corpus. The mix is modelled on `../shared/corpus/mainnet-txs.jsonl`
//! (median 180 bytes, p99 about 4.6 KB): mostly EIP-1559, a share of legacy, a few set-code
//! transactions; calldata from empty (transfers) through token calls to large contract
//! interactions. Blob transactions are not in the mix: on mainnet they come from dedicated
//! senders (rollups), a sender's pooled transactions cannot mix blob and non-blob, and their
//! proofs take milliseconds to compute; [`blob_sidecar`] and [`Signer::sign_blob_tx`] build
//! them.

use alloy_consensus::{TxEip1559, TxEip2930, TxEip7702, TxLegacy};
use alloy_eips::{
    eip4844::{Blob, BlobTransactionSidecar, FIELD_ELEMENT_BYTES_USIZE, env_settings::EnvKzgSettings},
    eip7594::BlobTransactionSidecarEip7594,
    eip7702::Authorization,
};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

use super::{blob::BlobSidecar, sign::Signer};

const GWEI: u128 = 1_000_000_000;

/// One generated transaction.
#[derive(Debug, Clone)]
pub struct GeneratedTx {
    pub raw: Bytes,
    pub sender: Address,
    pub nonce: u64,
}

/// Signs a reproducible stream of transactions from `accounts` dev keys, each account's nonces
/// consecutive from zero.
#[derive(Debug)]
pub struct TxMix {
    rng: StdRng,
    signers: Vec<Signer>,
    next_nonce: Vec<u64>,
    chain_id: u64,
}

impl TxMix {
    /// # Panics
    /// When `accounts` is zero.
    pub fn new(seed: u64, accounts: usize, chain_id: u64) -> Self {
        assert!(accounts > 0, "TxMix needs at least one account");
        let signers = (0..accounts as u64).map(Signer::dev).collect();
        Self { rng: StdRng::seed_from_u64(seed), signers, next_nonce: vec![0; accounts], chain_id }
    }

    /// The accounts' signers, in index order.
    pub fn signers(&self) -> &[Signer] {
        &self.signers
    }

    /// The next transaction: a random account, its next nonce, a mainnet-like type and size.
    pub fn next_tx(&mut self) -> GeneratedTx {
        let account = self.rng.random_range(0..self.signers.len());
        let nonce = self.next_nonce[account];
        self.next_nonce[account] += 1;
        let raw = self.sign(account, nonce);
        GeneratedTx { raw, sender: self.signers[account].address(), nonce }
    }

    /// The next transaction, an EIP-1559 transfer whose random calldata makes its encoding
    /// exactly `size` bytes (at least ~120: a transfer with no calldata); gas covers the
    /// calldata's intrinsic cost and its EIP-7623 floor.
    pub fn next_tx_of_size(&mut self, size: usize) -> GeneratedTx {
        let account = self.rng.random_range(0..self.signers.len());
        let nonce = self.next_nonce[account];
        self.next_nonce[account] += 1;
        let mut len = size.saturating_sub(120);
        let mut raw = Bytes::new();
        // The length prefixes and the signature's leading zeros move the size by a few bytes:
        // adjust the calldata and sign again until it fits.
        for _ in 0..16 {
            let mut input = vec![0u8; len];
            self.rng.fill(&mut input[..]);
            raw = self.signers[account].sign_tx(TxEip1559 {
                chain_id: self.chain_id,
                nonce,
                gas_limit: 21_000 + 40 * len as u64,
                max_fee_per_gas: 50 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to: TxKind::Call(Address::from(self.rng.random::<[u8; 20]>())),
                value: U256::from(self.rng.random_range(0..1_000_000u64)),
                input: input.into(),
                access_list: Default::default(),
            });
            if raw.len() == size {
                break;
            }
            len = (len + size).saturating_sub(raw.len());
        }
        GeneratedTx { raw, sender: self.signers[account].address(), nonce }
    }

    /// `count` transactions.
    pub fn take(&mut self, count: usize) -> Vec<GeneratedTx> {
        (0..count).map(|_| self.next_tx()).collect()
    }

    fn sign(&mut self, account: usize, nonce: u64) -> Bytes {
        let input = self.calldata();
        let to = Address::from(self.rng.random::<[u8; 20]>());
        // Enough gas for intrinsic cost and the EIP-7623 floor (40 per non-zero byte), plus work.
        let gas_limit = 21_000 + 40 * input.len() as u64 + self.rng.random_range(0..100_000);
        let max_fee_per_gas = self.rng.random_range(20..100) * GWEI;
        let max_priority_fee_per_gas = self.rng.random_range(1..3) * GWEI;
        let value = U256::from(self.rng.random_range(0..1_000_000u64));
        let chain_id = self.chain_id;
        let signer = &self.signers[account];
        match self.rng.random_range(0..100) {
            0..83 => signer.sign_tx(TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: TxKind::Call(to),
                value,
                input,
                access_list: Default::default(),
            }),
            83..97 => signer.sign_tx(TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price: max_fee_per_gas,
                gas_limit,
                to: TxKind::Call(to),
                value,
                input,
            }),
            97..99 => signer.sign_tx(TxEip2930 {
                chain_id,
                nonce,
                gas_price: max_fee_per_gas,
                gas_limit,
                to: TxKind::Call(to),
                value,
                input,
                access_list: Default::default(),
            }),
            _ => {
                // Sponsored: the authority is an account of its own, not one of the mix's
                // senders, so the pool's EIP-7702 limits (an authority holds at most one
                // transaction in flight) never refuse the mix's other transactions.
                let delegate = Authorization { chain_id: U256::from(chain_id), address: to, nonce: 0 };
                let authority = Signer::dev(self.signers.len() as u64 + self.rng.random_range(0..1_000_000));
                let authorization_list = vec![authority.sign_authorization(delegate)];
                signer.sign_tx(TxEip7702 {
                    chain_id,
                    nonce,
                    gas_limit: gas_limit + 25_000,
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                    to,
                    value,
                    input,
                    access_list: Default::default(),
                    authorization_list,
                })
            }
        }
    }

    /// Calldata sizes: transfers, token calls, contract calls, and a thin tail of large payloads.
    fn calldata(&mut self) -> Bytes {
        let len = match self.rng.random_range(0..100) {
            0..35 => 0,
            35..80 => 68,
            80..95 => self.rng.random_range(100..1_000),
            95..99 => self.rng.random_range(1_000..5_000),
            _ => self.rng.random_range(5_000..20_000),
        };
        let mut data = vec![0u8; len];
        self.rng.fill(&mut data[..]);
        data.into()
    }
}

/// A sidecar of `blobs` blobs of seeded random data, with commitments and proofs computed by
/// c-kzg: one proof per blob for `version` 0, EIP-7594 cell proofs for version 1. Every
/// 32-byte field element starts with a zero byte, so it is below the BLS modulus.
///
/// # Panics
/// When `version` is neither 0 nor 1.
pub fn blob_sidecar(blobs: usize, version: u8, seed: u64) -> BlobSidecar {
    let mut rng = StdRng::seed_from_u64(seed);
    let blobs: Vec<Blob> = (0..blobs)
        .map(|_| {
            let mut blob = Blob::ZERO;
            rng.fill(&mut blob.0[..]);
            for element in blob.0.chunks_mut(FIELD_ELEMENT_BYTES_USIZE) {
                element[0] = 0;
            }
            blob
        })
        .collect();
    const VALID: &str = "random blobs of canonical field elements";
    let kzg = EnvKzgSettings::Default.get();
    match version {
        0 => BlobSidecar::Eip4844(BlobTransactionSidecar::try_from_blobs_with_settings(blobs, kzg).expect(VALID)),
        1 => BlobSidecar::Eip7594(BlobTransactionSidecarEip7594::try_from_blobs(blobs).expect(VALID)),
        other => panic!("no blob sidecar version {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<_> = TxMix::new(9, 4, 1).take(20).into_iter().map(|t| t.raw).collect();
        let b: Vec<_> = TxMix::new(9, 4, 1).take(20).into_iter().map(|t| t.raw).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn nonces_are_consecutive_per_account() {
        let mut mix = TxMix::new(1, 3, 1);
        let mut seen = std::collections::HashMap::<Address, u64>::new();
        for tx in mix.take(60) {
            let next = seen.entry(tx.sender).or_default();
            assert_eq!(tx.nonce, *next);
            *next += 1;
        }
    }

    #[test]
    fn sized_transactions_have_the_size_asked() {
        let mut mix = TxMix::new(3, 4, 1);
        for size in [120, 121, 150, 255, 256, 300, 1_000, 4_097, 65_536, 131_072] {
            assert_eq!(mix.next_tx_of_size(size).raw.len(), size);
        }
    }
}
