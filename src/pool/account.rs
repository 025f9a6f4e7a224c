//! One account's transactions, and placing them in subpools from the account's state.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};

use super::{EvictKey, Pool, SubPool, TxId, events::PoolEvent};
use crate::validate::AccountState;

/// An account with transactions in the pool.
#[derive(Debug)]
pub(super) struct Account {
    /// The pool's copy of the account's chain state (nonce, balance).
    pub state: AccountState,
    /// Its transactions by nonce.
    pub txs: BTreeMap<u64, TxId>,
    /// Its tail (highest-nonce transaction) in each subpool, as entered in `Pool::tails`.
    pub tails: [Option<EvictKey>; 3],
}

impl Account {
    pub const fn new(state: AccountState) -> Self {
        Self { state, txs: BTreeMap::new(), tails: [None; 3] }
    }

    /// The first nonce at or after `from` that the account has no transaction for.
    pub fn next_contiguous_nonce(&self, from: u64) -> u64 {
        let mut next = from;
        for &nonce in self.txs.range(from..).map(|(n, _)| n) {
            if nonce != next {
                break;
            }
            next += 1;
        }
        next
    }
}

impl Pool {
    /// Places every transaction of `address` in its subpool by the rules (see the module docs),
    /// emitting `Promoted`/`Demoted` for moves and `Added` for `fresh`, and refreshes the
    /// account's eviction tails. Drops the account once it holds nothing.
    /// Returns the subpool `fresh` landed in.
    pub(super) fn reevaluate(&mut self, address: Address, fresh: Option<TxId>) -> Option<SubPool> {
        let Some(account) = self.accounts.remove(&address) else { return None };
        if account.txs.is_empty() {
            for (subpool, tail) in account.tails.iter().enumerate() {
                if let Some(tail) = tail {
                    self.tails[subpool].remove(tail);
                }
            }
            return None;
        }
        let mut account = account;
        let mut expected = account.state.nonce;
        let mut spent = U256::ZERO;
        let mut priced_so_far = true;
        let mut executable = true;
        let mut fresh_subpool = None;
        let mut new_tails: [Option<EvictKey>; 3] = [None; 3];
        for (&nonce, &id) in &account.txs {
            let tx = &self.entry(id).tx;
            spent = spent.saturating_add(tx.cost());
            executable &= nonce == expected && spent <= account.state.balance;
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
            let entry = self.entry(id);
            new_tails[target.index()] = Some(self.evict_key(&entry.tx, id, entry.seq));
        }
        for subpool in 0..3 {
            if account.tails[subpool] != new_tails[subpool] {
                if let Some(old) = account.tails[subpool] {
                    self.tails[subpool].remove(&old);
                }
                if let Some(new) = new_tails[subpool] {
                    self.tails[subpool].insert(new);
                }
            }
        }
        account.tails = new_tails;
        self.accounts.insert(address, account);
        fresh_subpool
    }

    /// Moves one transaction to `target`, keeping counts, the expiry index and events right.
    fn place(&mut self, id: TxId, target: SubPool, fresh: bool) {
        let entry = self.slots[id as usize].as_mut().expect("live tx id");
        let from = entry.subpool;
        if !fresh && from == target {
            return;
        }
        entry.subpool = target;
        let (tx, arrival) = (entry.tx.clone(), entry.arrival);
        if !fresh {
            let size = &mut self.sizes[from.index()];
            size.count -= 1;
            size.bytes -= tx.size();
        }
        let size = &mut self.sizes[target.index()];
        size.count += 1;
        size.bytes += tx.size();
        let was_waiting = !fresh && from != SubPool::Pending;
        match (was_waiting, target != SubPool::Pending) {
            (false, true) => {
                self.waiting.insert((arrival, id));
            }
            (true, false) => {
                self.waiting.remove(&(arrival, id));
            }
            _ => {}
        }
        let hash = tx.hash();
        self.events.push(if fresh {
            PoolEvent::Added { hash, sender: tx.sender(), nonce: tx.nonce(), subpool: target }
        } else if target < from {
            PoolEvent::Promoted { hash, from, to: target }
        } else {
            PoolEvent::Demoted { hash, from, to: target }
        });
    }
}
