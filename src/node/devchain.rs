//! The embedded dev chain: state from a genesis, and a block producer that pulls from the
//! builder feed and applies blocks as plain value transfers.
//!
//! Not an EVM: a transaction's effect is `nonce + 1`, its sender pays `gas used x effective gas
//! price + value` (gas used = its intrinsic gas, as for a plain transfer; calldata is not
//! executed), and its recipient receives `value`. That is enough to exercise the pool's life
//! cycle (pending → mined, nonces advancing, balances falling, base fee moving) end to end.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, U256};

use crate::{
    pool::InclusionFailure,
    service::{BuilderFeed, ChainUpdates},
    state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
    tx::sign::Signer,
    validate::{Fork, intrinsic_gas},
};

/// Balance of each built-in dev account: one million ether.
pub const DEV_BALANCE: u128 = 1_000_000 * 10u128.pow(18);
/// The base fee never falls below this (wei), as on mainnet's effective floor of 7.
const MIN_BASE_FEE: u128 = 7;

/// The dev chain's state and head.
pub struct DevChain {
    state: Arc<InMemoryState>,
    head: Mutex<ChainHead>,
    gas_limit: u64,
    fork: Fork,
}

/// What one produced block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub number: u64,
    pub txs: Vec<B256>,
    pub gas_used: u64,
    pub base_fee: u128,
}

impl DevChain {
    pub fn new(state: Arc<InMemoryState>, gas_limit: u64, initial_base_fee: u128, fork: Fork) -> Self {
        let head = ChainHead { block: 0, base_fee: initial_base_fee, blob_base_fee: 1 };
        Self { state, head: Mutex::new(head), gas_limit, fork }
    }

    /// The built-in dev genesis: `accounts` dev keys ([`Signer::dev`]) with [`DEV_BALANCE`] each.
    pub fn dev_genesis(accounts: u64) -> (Arc<InMemoryState>, Vec<Signer>) {
        let state = InMemoryState::new();
        let signers: Vec<Signer> = (0..accounts).map(Signer::dev).collect();
        for signer in &signers {
            state.set(signer.address(), AccountState { nonce: 0, balance: U256::from(DEV_BALANCE) });
        }
        (Arc::new(state), signers)
    }

    pub fn state(&self) -> &Arc<InMemoryState> {
        &self.state
    }

    pub fn head(&self) -> ChainHead {
        *self.head.lock().expect("head lock")
    }

    /// Builds the next block from the feed, applies it, and tells the pool.
    pub fn produce(&self, feed: &BuilderFeed, updates: &ChainUpdates) -> Produced {
        let head = self.head();
        let batch = feed.next_block(self.gas_limit, usize::MAX);
        let mut changed: BTreeMap<Address, AccountState> = BTreeMap::new();
        let mut mined = Vec::with_capacity(batch.txs.len());
        let mut gas_used = 0u64;
        for pooled in &batch.txs {
            let tx = pooled.decode();
            let gas = intrinsic_gas(&tx, self.fork);
            let used = gas.standard.max(gas.floor);
            let tip = pooled.effective_tip(head.base_fee).expect("the feed yields txs that pay the base fee");
            let fee = U256::from(used) * U256::from(head.base_fee + tip)
                + U256::from(u64::from(pooled.blob_count()) * crate::tx::GAS_PER_BLOB) * U256::from(head.blob_base_fee);
            let mut sender = changed.get(&pooled.sender()).copied().unwrap_or_else(|| self.state.get(&pooled.sender()));
            // The pool only offers affordable, nonce-consecutive transactions, so neither branch
            // should be taken; if one is, say so and report it as any builder would: the pool
            // quarantines a transaction that keeps failing.
            let failure = if sender.nonce != pooled.nonce() {
                Some(InclusionFailure::WrongNonce)
            } else if sender.balance < fee + tx.value() {
                Some(InclusionFailure::Unaffordable)
            } else {
                None
            };
            if let Some(failure) = failure {
                tracing::warn!(hash = %pooled.hash(), failure = failure.kind(), "dev block skips a transaction");
                let _ = feed.report_failed(&pooled.hash(), failure); // gone meanwhile: nothing to report
                continue;
            }
            let balance = sender.balance - fee - tx.value();
            sender.nonce += 1;
            sender.balance = balance;
            changed.insert(pooled.sender(), sender);
            if let Some(to) = tx.to() {
                let mut recipient = changed.get(&to).copied().unwrap_or_else(|| self.state.get(&to));
                recipient.balance = recipient.balance.saturating_add(tx.value());
                changed.insert(to, recipient);
            }
            gas_used += used;
            mined.push(pooled.hash());
        }
        for (address, account) in &changed {
            self.state.set(*address, *account);
        }
        let next = ChainHead {
            block: head.block + 1,
            base_fee: next_base_fee(head.base_fee, gas_used, self.gas_limit),
            blob_base_fee: head.blob_base_fee,
        };
        *self.head.lock().expect("head lock") = next;
        updates.on_block(BlockUpdate {
            number: next.block,
            base_fee: next.base_fee,
            blob_base_fee: next.blob_base_fee,
            mined: mined.clone(),
            accounts: changed.into_iter().collect(),
            reinject: Vec::new(),
        });
        Produced { number: next.block, txs: mined, gas_used, base_fee: next.base_fee }
    }
}

/// EIP-1559: the base fee moves by up to 1/8 towards keeping blocks half full.
pub fn next_base_fee(base_fee: u128, gas_used: u64, gas_limit: u64) -> u128 {
    let target = u128::from(gas_limit / 2).max(1);
    let used = u128::from(gas_used);
    let next = if used > target {
        base_fee + (base_fee * (used - target) / target / 8).max(1)
    } else {
        base_fee - base_fee * (target - used) / target / 8
    };
    next.max(MIN_BASE_FEE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_fee_follows_eip_1559() {
        assert_eq!(next_base_fee(1_000, 15_000_000, 30_000_000), 1_000, "half full: unchanged");
        assert_eq!(next_base_fee(1_000, 30_000_000, 30_000_000), 1_125, "full: +12.5%");
        assert_eq!(next_base_fee(1_000, 0, 30_000_000), 875, "empty: -12.5%");
        assert_eq!(next_base_fee(7, 0, 30_000_000), 7, "floor");
    }
}
