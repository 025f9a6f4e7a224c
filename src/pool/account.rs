//! One account's transactions, and placing them in subpools from the account's state.

use alloy_primitives::{Address, U256};

use super::{EvictKey, Pool, SubPool, TxId, events::PoolEvent};
use crate::state::AccountState;

/// An account with transactions in the pool.
#[derive(Debug, Clone)]
pub(super) struct Account {
    /// The pool's copy of the account's chain state (nonce, balance).
    pub state: AccountState,
    /// Its transactions as (nonce, slot), sorted by nonce. A sorted `Vec`, not a tree: accounts
    /// hold a handful (16 slots by default), and one small allocation beats a node per entry.
    txs: Vec<(u64, TxId)>,
    /// Its tail (highest-nonce transaction) in each subpool, as entered in `Pool::tails`.
    pub tails: [Option<EvictKey>; 3],
    /// Its position in `Pool::heads`, while it has pending transactions.
    pub head: Option<u32>,
    /// The nonce of its quarantined transaction: not executable until a state change releases
    /// it (see the pool's module docs).
    pub quarantined: Option<u64>,
}

impl Account {
    pub const fn new(state: AccountState) -> Self {
        Self { state, txs: Vec::new(), tails: [None; 3], head: None, quarantined: None }
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// All transactions in nonce order.
    pub fn txs(&self) -> &[(u64, TxId)] {
        &self.txs
    }

    pub fn get(&self, nonce: u64) -> Option<TxId> {
        self.txs.binary_search_by_key(&nonce, |&(n, _)| n).ok().map(|i| self.txs[i].1)
    }

    /// Inserts or overwrites the transaction at `nonce`.
    pub fn insert(&mut self, nonce: u64, id: TxId) {
        match self.txs.binary_search_by_key(&nonce, |&(n, _)| n) {
            Ok(i) => self.txs[i].1 = id,
            Err(i) => self.txs.insert(i, (nonce, id)),
        }
    }

    pub fn remove(&mut self, nonce: u64) {
        if let Ok(i) = self.txs.binary_search_by_key(&nonce, |&(n, _)| n) {
            self.txs.remove(i);
        }
    }

    /// Transactions at `nonce` and above.
    pub fn from(&self, nonce: u64) -> &[(u64, TxId)] {
        &self.txs[self.txs.partition_point(|&(n, _)| n < nonce)..]
    }

    /// Transactions below `nonce`.
    pub fn below(&self, nonce: u64) -> impl Iterator<Item = &(u64, TxId)> {
        self.txs[..self.txs.partition_point(|&(n, _)| n < nonce)].iter()
    }

    /// The first nonce at or after `from` that the account has no transaction for.
    pub fn next_contiguous_nonce(&self, from: u64) -> u64 {
        let mut next = from;
        for &(nonce, _) in self.from(from) {
            if nonce != next {
                break;
            }
            next += 1;
        }
        next
    }
}

/// An account's lowest-nonce pending transaction, kept densely in `Pool::heads` so the builder
/// starts from a linear scan instead of visiting every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingHead {
    pub sender: Address,
    pub nonce: u64,
    pub fee_cap: u128,
    pub tip: u128,
    pub seq: u64,
}

/// The dense list of pending heads. Cloning keeps the capacity, so a snapshot grows like the
/// original instead of reallocating (and copying the whole list) on its first insert.
#[derive(Debug, Default)]
pub(crate) struct Heads(pub Vec<PendingHead>);

impl Clone for Heads {
    fn clone(&self) -> Self {
        let mut heads = Vec::with_capacity(self.0.capacity());
        heads.extend_from_slice(&self.0);
        Self(heads)
    }
}

impl Pool {
    /// Places every transaction of `address` in its subpool by the rules (see the module docs),
    /// emitting `Promoted`/`Demoted` for moves and `Added` for `fresh`, and refreshes the
    /// account's eviction tails and pending head. Drops the account once it holds nothing.
    /// Returns the subpool `fresh` landed in.
    pub(super) fn reevaluate(&mut self, address: Address, fresh: Option<TxId>) -> Option<SubPool> {
        let account = self.accounts.get_mut(&address)?;
        // Work on the nonce list outside the map, so `self` stays free for the slots and indexes.
        let txs = std::mem::take(&mut account.txs);
        let (state, old_tails, old_head, quarantined) =
            (account.state, account.tails, account.head, account.quarantined);

        let mut expected = state.nonce;
        let mut spent = U256::ZERO;
        let mut priced_so_far = true;
        let mut executable = true;
        let mut fresh_subpool = None;
        let mut last_in: [Option<TxId>; 3] = [None; 3];
        for &(nonce, id) in &txs {
            let tx = &self.entry(id).tx;
            spent = spent.saturating_add(tx.cost());
            executable &= nonce == expected && spent <= state.balance && quarantined != Some(nonce);
            priced_so_far &= self.priced(tx);
            let target = match (executable, priced_so_far) {
                (false, _) => SubPool::Queued,
                (true, false) => SubPool::BaseFee,
                (true, true) => SubPool::Pending,
            };
            expected = nonce + 1;
            self.place(id, target, fresh == Some(id));
            if fresh == Some(id) {
                fresh_subpool = Some(target);
            }
            last_in[target.index()] = Some(id);
        }

        let new_tails = last_in.map(|id| {
            id.map(|id| {
                let entry = self.entry(id);
                self.evict_key(&entry.tx, id, entry.seq)
            })
        });
        for subpool in 0..3 {
            if old_tails[subpool] != new_tails[subpool] {
                if let Some(old) = old_tails[subpool] {
                    self.tails[subpool].remove(&old);
                }
                if let Some(new) = new_tails[subpool] {
                    self.tails[subpool].insert(new);
                }
            }
        }
        let new_head = txs.first().and_then(|&(nonce, id)| {
            let entry = self.entry(id);
            (entry.subpool == SubPool::Pending).then(|| PendingHead {
                sender: address,
                nonce,
                fee_cap: entry.tx.max_fee_per_gas(),
                tip: entry.tx.max_priority_fee_per_gas(),
                seq: entry.seq,
            })
        });
        let head = self.set_head(old_head, new_head);

        if txs.is_empty() {
            self.accounts.remove(&address);
        } else {
            let account = self.accounts.get_mut(&address).expect("still present");
            account.txs = txs;
            account.tails = new_tails;
            account.head = head;
        }
        fresh_subpool
    }

    /// Updates the dense head list; returns the account's new position in it.
    fn set_head(&mut self, old: Option<u32>, new: Option<PendingHead>) -> Option<u32> {
        match (old, new) {
            (Some(i), Some(head)) => {
                self.heads.0[i as usize] = head;
                Some(i)
            }
            (None, Some(head)) => {
                self.heads.0.push(head);
                Some(u32::try_from(self.heads.0.len() - 1).expect("fewer than 2^32 accounts"))
            }
            (Some(i), None) => {
                self.heads.0.swap_remove(i as usize);
                if let Some(moved) = self.heads.0.get(i as usize) {
                    self.accounts.get_mut(&moved.sender).expect("heads belong to accounts").head = Some(i);
                }
                None
            }
            (None, None) => None,
        }
    }
    /// Moves one transaction to `target`, keeping counts, the expiry index and events right.
    fn place(&mut self, id: TxId, target: SubPool, fresh: bool) {
        let entry = self.slots.get_mut(id).expect("live tx id");
        let from = entry.subpool;
        if !fresh && from == target {
            return;
        }
        entry.subpool = target;
        let seq = entry.seq;
        let (hash, sender, nonce, bytes) = (entry.tx.hash(), entry.tx.sender(), entry.tx.nonce(), entry.tx.size());
        if !fresh {
            let size = &mut self.sizes[from.index()];
            size.count -= 1;
            size.bytes -= bytes;
        }
        let size = &mut self.sizes[target.index()];
        size.count += 1;
        size.bytes += bytes;
        let was_waiting = !fresh && from != SubPool::Pending;
        match (was_waiting, target != SubPool::Pending) {
            (false, true) => {
                self.waiting.insert((seq, id));
            }
            (true, false) => {
                self.waiting.remove(&(seq, id));
            }
            _ => {}
        }
        self.events.push(if fresh {
            PoolEvent::Added { hash, sender, nonce, subpool: target }
        } else if target < from {
            PoolEvent::Promoted { hash, from, to: target }
        } else {
            PoolEvent::Demoted { hash, from, to: target }
        });
    }
}
