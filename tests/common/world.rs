//! A small world for pool scenarios: funded dev accounts, a pool at a known base fee, and
//! transactions described by (account, nonce, fees) instead of bytes.
#![allow(dead_code)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{TxEip1559, TxEip4844, TxEip7702, TxLegacy};
use alloy_eips::eip7702::Authorization;
use alloy_primitives::{Address, B256, TxKind, U256};
use tidepool::{
    pool::{Added, Pool, PoolConfig, PoolError, PoolEvent, RemovalReason, SubPool, ValidTx},
    state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
    tx::{PooledTx, sign::Signer},
    validate::{Fork, ValidationConfig, Validator},
};

pub const BASE_FEE: u128 = 10;
pub const RICH: u64 = 1_000_000_000_000_000_000;

/// What a test transaction looks like; signed on demand.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub account: u64,
    pub nonce: u64,
    pub fee_cap: u128,
    pub tip: u128,
    pub gas: u64,
    pub value: u64,
    pub calldata: usize,
    pub blobs: Option<u128>,
    pub legacy: bool,
    pub chain_id: u64,
    /// An EIP-7702 transaction carrying an authorization signed by this dev account.
    pub authorizing: Option<u64>,
}

/// A transaction from dev account `account` at `nonce`, fee cap 100, tip 5, 21,000 gas.
pub const fn tx(account: u64, nonce: u64) -> Spec {
    Spec {
        account,
        nonce,
        fee_cap: 100,
        tip: 5,
        gas: 21_000,
        value: 0,
        calldata: 0,
        blobs: None,
        legacy: false,
        chain_id: 1,
        authorizing: None,
    }
}

impl Spec {
    pub const fn fees(mut self, fee_cap: u128, tip: u128) -> Self {
        self.fee_cap = fee_cap;
        self.tip = tip;
        self
    }
    /// An EIP-7702 transaction with one authorization, signed by dev account `authority`.
    pub const fn authorizing(mut self, authority: u64) -> Self {
        self.authorizing = Some(authority);
        self.gas = 21_000 + 25_000; // intrinsic gas with one authorization
        self
    }
    pub const fn tip(mut self, tip: u128) -> Self {
        self.tip = tip;
        self
    }
    pub const fn gas(mut self, gas: u64) -> Self {
        self.gas = gas;
        self
    }
    pub const fn value(mut self, value: u64) -> Self {
        self.value = value;
        self
    }
    /// Adds non-zero calldata (and the gas it needs).
    pub const fn calldata(mut self, bytes: usize) -> Self {
        self.calldata = bytes;
        self.gas += 40 * bytes as u64;
        self
    }
    /// A blob transaction with one blob and this blob fee cap.
    pub const fn blob(mut self, blob_fee_cap: u128) -> Self {
        self.blobs = Some(blob_fee_cap);
        self
    }
    /// A legacy transaction with gas price `fee_cap`.
    pub const fn legacy(mut self) -> Self {
        self.legacy = true;
        self
    }

    /// For another chain than mainnet (1).
    pub const fn chain(mut self, chain_id: u64) -> Self {
        self.chain_id = chain_id;
        self
    }

    /// Validated (without state): what the pool holds. By the consensus rules, so a blob
    /// transaction comes without its sidecar (the pool never holds one; `tests/blobs.rs` builds
    /// real sidecars).
    pub fn signed(&self) -> PooledTx {
        let validator = Validator::new(ValidationConfig {
            chain_id: self.chain_id,
            fork: Fork::Osaka,
            min_priority_fee: 0,
            ..Default::default()
        });
        validator.validate_consensus(self.raw()).expect("test transactions are valid")
    }

    /// The signed EIP-2718 bytes.
    pub fn raw(&self) -> alloy_primitives::Bytes {
        let signer = Signer::dev(self.account);
        let to = Address::repeat_byte(0x22);
        let input = vec![0xab; self.calldata].into();
        if self.legacy {
            signer.sign_tx(TxLegacy {
                chain_id: Some(self.chain_id),
                nonce: self.nonce,
                gas_price: self.fee_cap,
                gas_limit: self.gas,
                to: TxKind::Call(to),
                value: U256::from(self.value),
                input,
            })
        } else if let Some(authority) = self.authorizing {
            let authorization = Signer::dev(authority).sign_authorization(Authorization {
                chain_id: U256::from(self.chain_id),
                address: to,
                nonce: 0,
            });
            signer.sign_tx(TxEip7702 {
                chain_id: self.chain_id,
                nonce: self.nonce,
                gas_limit: self.gas,
                max_fee_per_gas: self.fee_cap,
                max_priority_fee_per_gas: self.tip,
                to,
                value: U256::from(self.value),
                input,
                access_list: Default::default(),
                authorization_list: vec![authorization],
            })
        } else if let Some(blob_fee) = self.blobs {
            let mut hash = B256::repeat_byte(7);
            hash.0[0] = 1;
            signer.sign_tx(TxEip4844 {
                chain_id: self.chain_id,
                nonce: self.nonce,
                gas_limit: self.gas,
                max_fee_per_gas: self.fee_cap,
                max_priority_fee_per_gas: self.tip,
                to,
                value: U256::from(self.value),
                input,
                blob_versioned_hashes: vec![hash],
                max_fee_per_blob_gas: blob_fee,
                access_list: Default::default(),
            })
        } else {
            signer.sign_tx(TxEip1559 {
                chain_id: self.chain_id,
                nonce: self.nonce,
                gas_limit: self.gas,
                max_fee_per_gas: self.fee_cap,
                max_priority_fee_per_gas: self.tip,
                to: TxKind::Call(to),
                value: U256::from(self.value),
                input,
                access_list: Default::default(),
            })
        }
    }

    pub fn hash(&self) -> B256 {
        self.signed().hash()
    }
}

pub fn address(account: u64) -> Address {
    Signer::dev(account).address()
}

/// A pool over funded accounts 0..100, a clock, and every event so far.
pub struct World {
    pub pool: Pool,
    pub state: Arc<InMemoryState>,
    pub now: Instant,
    pub events: Vec<PoolEvent>,
    pub block: u64,
}

impl World {
    pub fn new(config: PoolConfig) -> Self {
        let state = Arc::new(InMemoryState::new());
        for account in 0..100 {
            state.set(address(account), AccountState::new(0, U256::from(RICH)));
        }
        let head = ChainHead { block: 0, base_fee: BASE_FEE, blob_base_fee: 1 };
        let pool = Pool::new(config, head);
        Self { pool, state, now: Instant::now(), events: Vec::new(), block: 0 }
    }

    pub fn default_config() -> Self {
        Self::new(PoolConfig::default())
    }

    pub fn add(&mut self, spec: Spec) -> Result<Added, PoolError> {
        self.add_tx(spec.signed())
    }

    /// Adds `tx` as ingest does: the pool's epoch, then the sender's state from the provider.
    pub fn add_tx(&mut self, tx: PooledTx) -> Result<Added, PoolError> {
        let result = self.pool.add(self.valid(tx), self.now);
        self.after();
        result
    }

    /// `tx` with its sender's state read now.
    pub fn valid(&self, tx: PooledTx) -> ValidTx {
        let epoch = self.pool.state_epoch();
        let sender_state = self.state.get(&tx.sender());
        ValidTx { tx, sender_state, epoch }
    }

    pub fn add_all(&mut self, specs: &[Spec]) {
        for spec in specs {
            self.add(*spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        }
    }

    /// Applies a block; returns the reorged transactions not put back, with the reason.
    pub fn block(&mut self, update: BlockUpdate) -> Vec<(B256, PoolError)> {
        self.block += 1;
        let update = BlockUpdate { number: self.block, ..update };
        let refused = self.pool.on_block(update, self.now);
        self.after();
        refused
    }

    /// A block that only moves the base fee.
    pub fn base_fee(&mut self, base_fee: u128) {
        let blob_base_fee = self.pool.head().blob_base_fee;
        self.block(BlockUpdate { base_fee, blob_base_fee, ..Default::default() });
    }

    pub fn set_account(&mut self, account: u64, nonce: u64, balance: U256) {
        self.state.set(address(account), AccountState::new(nonce, balance));
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn after(&mut self) {
        self.events.extend(self.pool.take_events());
        self.pool.check_invariants();
    }

    /// The subpool of `spec`'s transaction, or `None` if not pooled.
    pub fn subpool(&self, spec: Spec) -> Option<SubPool> {
        self.pool.get(&spec.hash()).map(|info| info.subpool)
    }

    /// Asserts where each listed transaction is.
    pub fn expect(&self, placements: &[(Spec, Option<SubPool>)]) {
        for (spec, want) in placements {
            assert_eq!(self.subpool(*spec), *want, "account {} nonce {}", spec.account, spec.nonce);
        }
    }

    /// The removal reason recorded for `spec`'s transaction, asserting there was exactly one.
    pub fn removal(&self, spec: Spec) -> RemovalReason {
        let hash = spec.hash();
        let reasons: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                PoolEvent::Removed { hash: h, reason, .. } if *h == hash => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(reasons.len(), 1, "exactly one removal event for account {} nonce {}", spec.account, spec.nonce);
        reasons[0]
    }

    pub fn count(&self, pred: impl Fn(&PoolEvent) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }
}
