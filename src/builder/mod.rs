//! The builder feed: pending transactions best-first, for whoever builds blocks.
//!
//! Owns: ordering pending transactions for inclusion ([`BestTxs`]), packing gas-, size- and
//! blob-limited batches ([`next_block`]), and the pull interface for builders ([`BuilderFeed`],
//! which also hands out the sidecars of the blob transactions it offers).
//! Does not: change the pool, except by relaying a builder's inclusion-failure reports
//! ([`BuilderFeed::report_failed`], which the pool's quarantine rules act on); execute
//! transactions; or hold the pool lock across an `.await`. `BestTxs::mark_invalid` only affects
//! the one iteration.
//!
//! # Order
//! Highest effective tip at the given base fee first, ties to the earliest arrival; each
//! account's transactions strictly in nonce order, and never one whose predecessor was not
//! yielded. The iterator keeps a heap of one candidate per account (its next nonce), so building
//! costs O(accounts + yielded · log accounts), not a sort of the whole pool.

mod feed;

pub use feed::{BatchStream, BuilderFeed};

use std::{cmp::Reverse, collections::BinaryHeap};

use alloy_primitives::{Address, map::HashSet};

use crate::{
    pool::Pool,
    tx::{PooledTx, effective_tip},
};

/// Gas every transaction uses at least; below this much room a block is full.
const MIN_TX_GAS: u64 = 21_000;

/// An account's next transaction in the heap. Small on purpose (32 bytes): the heap moves these
/// around on every pop; the account and nonce live in `BestTxs::cursors`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    tip: u128,
    earliest_first: Reverse<u64>,
    cursor: u32,
}

/// Where an account's iteration stands: its next nonce.
#[derive(Debug)]
struct Cursor {
    sender: Address,
    nonce: u64,
}

/// Pending transactions best-first; see the module docs for the order. Borrows the pool: build
/// with it inside [`crate::pool::PoolHandle::read`] or [`BuilderFeed::best`].
pub struct BestTxs<'a> {
    pool: &'a Pool,
    base_fee: u128,
    heap: BinaryHeap<Candidate>,
    cursors: Vec<Cursor>,
    invalid: HashSet<Address>,
}

impl<'a> BestTxs<'a> {
    /// Pending transactions ordered at `base_fee` (normally the next block's). Transactions that
    /// cannot pay it are skipped, with their account's later nonces.
    pub fn new(pool: &'a Pool, base_fee: u128) -> Self {
        let heads = pool.pending_heads();
        let mut cursors = Vec::with_capacity(heads.len());
        let mut candidates = Vec::with_capacity(heads.len());
        for head in heads {
            let Some(tip) = effective_tip(head.fee_cap, head.tip, base_fee) else { continue };
            let cursor = u32::try_from(cursors.len()).expect("fewer than 2^32 accounts");
            cursors.push(Cursor { sender: head.sender, nonce: head.nonce });
            candidates.push(Candidate { tip, earliest_first: Reverse(head.seq), cursor });
        }
        Self { pool, base_fee, heap: BinaryHeap::from(candidates), cursors, invalid: HashSet::default() }
    }

    /// Skips the rest of `sender`'s transactions: one of them failed, so the later nonces
    /// cannot execute either.
    pub fn mark_invalid(&mut self, sender: Address) {
        self.invalid.insert(sender);
    }
}

impl<'a> Iterator for BestTxs<'a> {
    type Item = &'a PooledTx;

    fn next(&mut self) -> Option<&'a PooledTx> {
        loop {
            let best = self.heap.pop()?;
            let cursor = &mut self.cursors[best.cursor as usize];
            if !self.invalid.is_empty() && self.invalid.contains(&cursor.sender) {
                continue;
            }
            let (tx, _) = self.pool.pending_at(&cursor.sender, cursor.nonce).expect("candidates are pending");
            cursor.nonce += 1;
            if let Some((next, seq)) = self.pool.pending_at(&cursor.sender, cursor.nonce)
                && let Some(tip) = next.effective_tip(self.base_fee)
            {
                self.heap.push(Candidate { tip, earliest_first: Reverse(seq), cursor: best.cursor });
            }
            return Some(tx);
        }
    }
}

/// A nonce-consistent, priority-packed set of transactions for one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// In inclusion order: best first, each account in nonce order. Copies: their encoded bytes
    /// are shared with the pool, and the pool keeps its own until the block is applied.
    pub txs: Vec<PooledTx>,
    pub gas: u64,
    /// Encoded bytes of the transactions (consensus form: sidecars travel beside the block).
    pub bytes: usize,
    /// Blobs the blob transactions carry.
    pub blobs: usize,
}

/// Packs the best pending transactions into `gas_limit`, `max_bytes` and `max_blobs` (the
/// fork's blobs per block, [`crate::validate::Fork::max_blobs_per_block`]). A transaction that
/// does not fit is skipped with its account's later nonces (they depend on it); packing goes
/// on with other accounts until less than 21,000 gas is left or nothing remains.
pub fn next_block(pool: &Pool, base_fee: u128, gas_limit: u64, max_bytes: usize, max_blobs: usize) -> Batch {
    let mut batch = Batch { txs: Vec::with_capacity(512), ..Batch::default() };
    let mut best = BestTxs::new(pool, base_fee);
    while gas_limit - batch.gas >= MIN_TX_GAS {
        let Some(tx) = best.next() else { break };
        let blobs = usize::from(tx.blob_count());
        if tx.gas_limit() > gas_limit - batch.gas
            || tx.size() > max_bytes - batch.bytes
            || blobs > max_blobs - batch.blobs
        {
            best.mark_invalid(tx.sender());
            continue;
        }
        batch.gas += tx.gas_limit();
        batch.bytes += tx.size();
        batch.blobs += blobs;
        batch.txs.push(tx.clone());
    }
    batch
}
