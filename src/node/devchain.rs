//! The embedded dev chain: state from a genesis, a block producer that pulls from the builder
//! feed and applies blocks as plain value transfers, and a bounded history of the blocks it made
//! (headers, transactions, receipts) for the RPC's block and receipt methods.
//!
//! Not an EVM: a transaction's effect is `nonce + 1`, its sender pays `gas used x effective gas
//! price + value` (gas used = its intrinsic gas, as for a plain transfer; calldata is not
//! executed), and its recipient receives `value`. That is enough to exercise the pool's life
//! cycle (pending → mined, nonces advancing, balances falling, base fee moving) end to end.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use alloy_consensus::{
    Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Sealable as _, Sealed, Transaction as _,
    constants::EMPTY_OMMER_ROOT_HASH, proofs,
};
use alloy_primitives::{Address, B256, Bloom, U256};

use crate::{
    pool::InclusionFailure,
    service::{BuilderFeed, ChainUpdates},
    state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
    tx::{PooledTx, sign::Signer},
    validate::{Fork, intrinsic_gas},
};

/// Balance of each built-in dev account: one million ether.
pub const DEV_BALANCE: u128 = 1_000_000 * 10u128.pow(18);
/// The base fee never falls below this (wei), as on mainnet's effective floor of 7.
const MIN_BASE_FEE: u128 = 7;

/// Blocks kept for the RPC by default (`history_blocks`): about an hour at 2 s per block.
pub const DEFAULT_HISTORY_BLOCKS: usize = 2_048;

/// The dev chain's state and head.
pub struct DevChain {
    state: Arc<InMemoryState>,
    head: Mutex<ChainHead>,
    history: Mutex<History>,
    gas_limit: u64,
    fork: Fork,
    /// The excess blob gas of the next block (EIP-4844), from which its blob base fee follows.
    excess_blob_gas: Mutex<u64>,
}

/// A block the dev chain made, as the RPC shows it.
#[derive(Debug)]
pub struct DevBlock {
    pub header: Sealed<Header>,
    pub txs: Vec<MinedTx>,
}

/// A transaction in a [`DevBlock`] with what its receipt says.
#[derive(Debug, Clone)]
pub struct MinedTx {
    pub tx: PooledTx,
    pub gas_used: u64,
    /// Gas used by this and every earlier transaction of the block.
    pub cumulative_gas_used: u64,
    /// Base fee plus the tip actually paid, per gas.
    pub effective_gas_price: u128,
    /// The blob base fee the block charged its blob gas at.
    pub blob_gas_price: u128,
}

impl MinedTx {
    /// The consensus receipt (every dev transaction succeeds and logs nothing: no EVM runs).
    pub fn receipt<L>(&self) -> ReceiptEnvelope<L> {
        let receipt = Receipt {
            status: Eip658Value::Eip658(true),
            cumulative_gas_used: self.cumulative_gas_used,
            logs: Vec::new(),
        };
        let tx_type =
            alloy_consensus::TxType::try_from(self.tx.tx_type()).expect("pooled transactions have known types");
        ReceiptEnvelope::from_typed(tx_type, ReceiptWithBloom::new(receipt, Bloom::ZERO))
    }
}

/// The last `depth` blocks, with indexes by block hash and by transaction hash.
#[derive(Debug)]
struct History {
    depth: usize,
    blocks: VecDeque<Arc<DevBlock>>,
    by_hash: HashMap<B256, u64>,
    by_tx: HashMap<B256, (u64, usize)>,
}

impl History {
    fn push(&mut self, block: DevBlock) {
        let number = block.header.number;
        self.by_hash.insert(block.header.hash(), number);
        for (index, mined) in block.txs.iter().enumerate() {
            self.by_tx.insert(mined.tx.hash(), (number, index));
        }
        self.blocks.push_back(Arc::new(block));
        while self.blocks.len() > self.depth {
            let Some(old) = self.blocks.pop_front() else { break };
            self.by_hash.remove(&old.header.hash());
            for mined in &old.txs {
                self.by_tx.remove(&mined.tx.hash());
            }
        }
    }

    fn by_number(&self, number: u64) -> Option<Arc<DevBlock>> {
        let first = self.blocks.front()?.header.number;
        let index = usize::try_from(number.checked_sub(first)?).ok()?;
        self.blocks.get(index).cloned()
    }
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
    /// A chain at its genesis block, keeping the last `history_blocks` blocks (at least one).
    pub fn new(
        state: Arc<InMemoryState>,
        gas_limit: u64,
        initial_base_fee: u128,
        fork: Fork,
        history_blocks: usize,
    ) -> Self {
        let head = ChainHead { block: 0, base_fee: initial_base_fee, blob_base_fee: 1 };
        let mut history = History {
            depth: history_blocks.max(1),
            blocks: VecDeque::new(),
            by_hash: HashMap::new(),
            by_tx: HashMap::new(),
        };
        history.push(DevBlock { header: seal(B256::ZERO, head, gas_limit, &[], 0), txs: Vec::new() });
        let excess_blob_gas = Mutex::new(0);
        Self { state, head: Mutex::new(head), history: Mutex::new(history), gas_limit, fork, excess_blob_gas }
    }

    /// A kept block by number.
    pub fn block(&self, number: u64) -> Option<Arc<DevBlock>> {
        self.history.lock().expect("history lock").by_number(number)
    }

    /// A kept block by hash.
    pub fn block_by_hash(&self, hash: &B256) -> Option<Arc<DevBlock>> {
        let history = self.history.lock().expect("history lock");
        history.by_hash.get(hash).and_then(|&number| history.by_number(number))
    }

    /// The newest block.
    pub fn latest(&self) -> Arc<DevBlock> {
        self.history.lock().expect("history lock").blocks.back().cloned().expect("the history holds at least genesis")
    }

    /// A mined transaction of a kept block: the block and the transaction's index in it.
    pub fn mined(&self, hash: &B256) -> Option<(Arc<DevBlock>, usize)> {
        let history = self.history.lock().expect("history lock");
        let &(number, index) = history.by_tx.get(hash)?;
        Some((history.by_number(number)?, index))
    }

    pub const fn gas_limit(&self) -> u64 {
        self.gas_limit
    }

    pub const fn fork(&self) -> Fork {
        self.fork
    }

    /// The built-in dev genesis: `accounts` dev keys ([`Signer::dev`]) with [`DEV_BALANCE`] each.
    pub fn dev_genesis(accounts: u64) -> (Arc<InMemoryState>, Vec<Signer>) {
        let state = InMemoryState::new();
        let signers: Vec<Signer> = (0..accounts).map(Signer::dev).collect();
        for signer in &signers {
            state.set(signer.address(), AccountState::new(0, U256::from(DEV_BALANCE)));
        }
        (Arc::new(state), signers)
    }

    pub fn state(&self) -> &Arc<InMemoryState> {
        &self.state
    }

    pub fn head(&self) -> ChainHead {
        *self.head.lock().expect("head lock")
    }

    /// Builds the next block from the feed (its blobs within the fork's blobs per block),
    /// applies it, and tells the pool. Blob gas is charged at the blob base fee, and the next
    /// block's blob base fee follows from the excess blob gas as the fork's rules have it.
    pub fn produce(&self, feed: &BuilderFeed, updates: &ChainUpdates) -> Produced {
        let head = self.head();
        let batch = feed.next_block(self.gas_limit, usize::MAX);
        let mut changed: BTreeMap<Address, AccountState> = BTreeMap::new();
        let mut mined = Vec::with_capacity(batch.txs.len());
        let mut included: Vec<MinedTx> = Vec::with_capacity(batch.txs.len());
        let mut gas_used = 0u64;
        let mut blob_gas_used = 0u64;
        for pooled in &batch.txs {
            let tx = pooled.decode();
            let gas = intrinsic_gas(&tx, self.fork);
            let used = gas.standard.max(gas.floor);
            let tip = pooled.effective_tip(head.base_fee).expect("the feed yields txs that pay the base fee");
            let fee = U256::from(used) * U256::from(head.base_fee + tip)
                + U256::from(pooled.blob_gas()) * U256::from(head.blob_base_fee);
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
            blob_gas_used += pooled.blob_gas();
            mined.push(pooled.hash());
            included.push(MinedTx {
                tx: pooled.clone(),
                gas_used: used,
                cumulative_gas_used: gas_used,
                effective_gas_price: head.base_fee + tip,
                blob_gas_price: head.blob_base_fee,
            });
        }
        for (address, account) in &changed {
            self.state.set(*address, *account);
        }
        let (excess_blob_gas, next_blob_base_fee) = {
            let mut excess = self.excess_blob_gas.lock().expect("excess blob gas lock");
            let built_with = *excess;
            let base_fee = u64::try_from(head.base_fee).unwrap_or(u64::MAX);
            let (next_excess, next_blob_base_fee) = self.fork.next_blob_market(built_with, blob_gas_used, base_fee);
            *excess = next_excess;
            (built_with, next_blob_base_fee)
        };
        let next = ChainHead {
            block: head.block + 1,
            base_fee: next_base_fee(head.base_fee, gas_used, self.gas_limit),
            blob_base_fee: next_blob_base_fee,
        };
        {
            let mut history = self.history.lock().expect("history lock");
            let parent = history.blocks.back().map_or(B256::ZERO, |block| block.header.hash());
            // The header carries the fees the block was built at; `next` is the chain's view
            // of the block after it.
            let built = ChainHead { block: next.block, ..head };
            let header = seal(parent, built, self.gas_limit, &included, excess_blob_gas);
            history.push(DevBlock { header, txs: included });
        }
        *self.head.lock().expect("head lock") = next;
        updates.on_block(BlockUpdate {
            number: next.block,
            base_fee: next.base_fee,
            blob_base_fee: next.blob_base_fee,
            gas_limit: Some(self.gas_limit),
            mined: mined.clone(),
            accounts: changed.into_iter().collect(),
            reinject: Vec::new(),
        });
        Produced { number: next.block, txs: mined, gas_used, base_fee: next.base_fee }
    }
}

/// The header of a dev block: real roots of its transactions and receipts, its blob gas; no
/// state root (the dev chain keeps no state trie), no logs, no withdrawals.
fn seal(parent_hash: B256, head: ChainHead, gas_limit: u64, txs: &[MinedTx], excess_blob_gas: u64) -> Sealed<Header> {
    let envelopes: Vec<_> = txs.iter().map(|mined| mined.tx.decode()).collect();
    let receipts: Vec<ReceiptEnvelope> = txs.iter().map(MinedTx::receipt).collect();
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Header {
        parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        transactions_root: proofs::calculate_transaction_root(&envelopes),
        receipts_root: proofs::calculate_receipt_root(&receipts),
        number: head.block,
        gas_limit,
        gas_used: txs.last().map_or(0, |mined| mined.cumulative_gas_used),
        timestamp,
        base_fee_per_gas: Some(u64::try_from(head.base_fee).unwrap_or(u64::MAX)),
        withdrawals_root: Some(alloy_consensus::constants::EMPTY_WITHDRAWALS),
        blob_gas_used: Some(txs.iter().map(|mined| mined.tx.blob_gas()).sum()),
        excess_blob_gas: Some(excess_blob_gas),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH),
        ..Header::default()
    }
    .seal_slow()
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
    fn history_keeps_the_last_blocks_and_forgets_their_indexes() {
        let chain = DevChain::new(Arc::new(InMemoryState::new()), 30_000_000, 1_000, Fork::Prague, 2);
        let genesis = chain.latest();
        assert_eq!(genesis.header.number, 0);
        let mut history = chain.history.lock().unwrap();
        for number in 1..=3 {
            let head = ChainHead { block: number, base_fee: 1_000, blob_base_fee: 1 };
            let parent = history.blocks.back().unwrap().header.hash();
            history.push(DevBlock { header: seal(parent, head, 30_000_000, &[], 0), txs: Vec::new() });
        }
        assert_eq!(history.blocks.len(), 2);
        assert!(history.by_number(1).is_none() && history.by_number(2).is_some() && history.by_number(4).is_none());
        assert!(!history.by_hash.contains_key(&genesis.header.hash()), "pruned blocks leave the index");
        assert_eq!(history.by_number(3).unwrap().header.parent_hash, history.by_number(2).unwrap().header.hash());
    }

    #[test]
    fn base_fee_follows_eip_1559() {
        assert_eq!(next_base_fee(1_000, 15_000_000, 30_000_000), 1_000, "half full: unchanged");
        assert_eq!(next_base_fee(1_000, 30_000_000, 30_000_000), 1_125, "full: +12.5%");
        assert_eq!(next_base_fee(1_000, 0, 30_000_000), 875, "empty: -12.5%");
        assert_eq!(next_base_fee(7, 0, 30_000_000), 7, "floor");
    }
}
