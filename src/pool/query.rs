//! Reading the pool: lookups, sizes, a geth-shaped content dump, and the invariant check.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256};
use serde::Serialize;

use super::{Pool, SubPool, TxId};
use crate::{state::AccountState, tx::PooledTx};

/// Count and encoded bytes of one subpool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SubPoolSize {
    pub count: usize,
    pub bytes: usize,
}

/// Sizes of all three subpools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolSizes {
    pub pending: SubPoolSize,
    pub basefee: SubPoolSize,
    pub queued: SubPoolSize,
    /// Bytes of blob data the blob transactions bring (131,072 per blob), across subpools.
    pub blob_bytes: usize,
}

impl PoolSizes {
    pub const fn total(&self) -> usize {
        self.pending.count + self.basefee.count + self.queued.count
    }
}

/// A pooled transaction (a copy; its bytes are shared) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledInfo {
    pub tx: PooledTx,
    pub subpool: SubPool,
    /// Held back after repeated builder failure reports (it is then in queued).
    pub quarantined: bool,
}

/// The pool's content by account and nonce, shaped like geth's `txpool_content`: `pending` holds
/// executable transactions (our pending and basefee subpools, as geth counts executable-but-
/// underpriced ones pending), `queued` the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolContent {
    pub pending: BTreeMap<Address, BTreeMap<u64, PooledTx>>,
    pub queued: BTreeMap<Address, BTreeMap<u64, PooledTx>>,
}

impl Pool {
    /// The transaction with this hash, if pooled.
    pub fn get(&self, hash: &B256) -> Option<PooledInfo> {
        self.find(hash).map(|id| self.info(id))
    }

    /// Every pooled transaction, in no particular order.
    pub fn txs(&self) -> impl Iterator<Item = &PooledTx> {
        self.slots.ids().map(|id| &self.entry(id).tx)
    }

    /// Every account the pool holds transactions of, with the pool's copy of its state, in no
    /// particular order.
    pub fn senders(&self) -> impl Iterator<Item = (Address, AccountState)> {
        self.accounts.iter().map(|(&address, account)| (address, account.state))
    }

    /// One account's pooled transactions in nonce order.
    pub fn account_txs(&self, sender: &Address) -> Vec<PooledInfo> {
        self.accounts.get(sender).map_or_else(Vec::new, |a| a.txs().iter().map(|&(_, id)| self.info(id)).collect())
    }

    /// The next nonce the account can use: its nonce, advanced over its contiguous pooled
    /// transactions (what `eth_getTransactionCount(.., "pending")` reports). `None` when the
    /// pool holds nothing of the account: then its state nonce is the answer, which the caller
    /// reads from its state (the pool calls no provider).
    pub fn pending_nonce(&self, sender: &Address) -> Option<u64> {
        self.accounts.get(sender).map(|account| account.next_contiguous_nonce(account.state.nonce))
    }

    pub fn sizes(&self) -> PoolSizes {
        PoolSizes { pending: self.sizes[0], basefee: self.sizes[1], queued: self.sizes[2], blob_bytes: self.blob_bytes }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Transactions removed since start, by reason kind (`RemovalReason::kind`).
    pub fn removals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.removals.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Content by account and nonce; `only` restricts it to one account (`txpool_contentFrom`).
    pub fn content(&self, only: Option<&Address>) -> PoolContent {
        let mut content = PoolContent::default();
        let accounts: Vec<(&Address, _)> = match only {
            Some(address) => self.accounts.get_key_value(address).into_iter().collect(),
            None => self.accounts.iter().collect(),
        };
        for (address, account) in accounts {
            for &(nonce, id) in account.txs() {
                let entry = self.entry(id);
                let side = if entry.subpool == SubPool::Queued { &mut content.queued } else { &mut content.pending };
                side.entry(*address).or_default().insert(nonce, entry.tx.clone());
            }
        }
        content
    }

    fn info(&self, id: TxId) -> PooledInfo {
        let entry = self.entry(id);
        let quarantined = self.accounts[&entry.tx.sender()].quarantined == Some(entry.tx.nonce());
        PooledInfo { tx: entry.tx.clone(), subpool: entry.subpool, quarantined }
    }

    /// Asserts the invariants in the module docs. Walks the whole pool: for tests.
    ///
    /// # Panics
    /// When an invariant does not hold, naming it.
    pub fn check_invariants(&self) {
        let live: Vec<TxId> = self.slots.ids().collect();
        assert_eq!(live.len(), self.by_hash.len(), "1: slab and hash index agree");
        assert_eq!(live.len(), self.by_fee_cap.len(), "1: fee index holds every tx once");
        let mut sizes = [super::SubPoolSize::default(); 3];
        let mut waiting = 0;
        for &id in &live {
            let entry = self.entry(id);
            assert_eq!(self.find(&entry.tx.hash()), Some(id), "1: hash index");
            assert!(self.by_fee_cap.contains(&(entry.tx.max_fee_per_gas(), id)), "1: fee index");
            let account = &self.accounts[&entry.tx.sender()];
            assert_eq!(account.get(entry.tx.nonce()), Some(id), "1: account index");
            let size = &mut sizes[entry.subpool.index()];
            size.count += 1;
            size.bytes += entry.tx.size();
            let is_waiting = self.waiting.contains(&(entry.seq, id));
            assert_eq!(is_waiting, entry.subpool != SubPool::Pending, "1: expiry index holds exactly basefee+queued");
            waiting += usize::from(is_waiting);
        }
        assert_eq!(waiting, self.waiting.len(), "1: no stale expiry entries");
        let mut authorizing = alloy_primitives::map::HashMap::<Address, u32>::default();
        for &id in &live {
            for &authority in self.entry(id).tx.authorities() {
                *authorizing.entry(authority).or_default() += 1;
            }
        }
        assert_eq!(authorizing, self.authorizing, "1: authority index counts every pooled authorization");
        assert!(self.failures.keys().all(|id| live.contains(id)), "1: failure reports only of pooled txs");
        assert_eq!(sizes, self.sizes, "3: counts and bytes equal the contents");
        let blob_bytes: usize = live.iter().map(|&id| self.entry(id).tx.blob_data_size()).sum();
        assert_eq!(blob_bytes, self.blob_bytes, "3: blob bytes equal the contents");
        assert!(blob_bytes <= self.config.blob_bytes, "4: blob data within its limit");

        let mut tails = 0;
        for account in self.accounts.values() {
            assert!(!account.is_empty(), "empty accounts are dropped");
            assert!(account.txs().windows(2).all(|w| w[0].0 < w[1].0), "nonces sorted and unique");
            let blobs = account.txs().iter().filter(|&&(_, id)| self.entry(id).tx.is_blob()).count();
            assert!(blobs == 0 || blobs == account.len(), "an account's transactions are all blob or none");
            if let Some(nonce) = account.quarantined {
                assert!(account.get(nonce).is_some(), "a quarantine names a pooled nonce");
            }
            let mut expected = account.state.nonce;
            let mut spent = U256::ZERO;
            let (mut executable, mut priced) = (true, true);
            let mut last_in = [None; 3];
            for &(nonce, id) in account.txs() {
                let entry = self.entry(id);
                spent = spent.saturating_add(entry.tx.cost());
                executable &= nonce == expected && spent <= account.state.balance && account.quarantined != Some(nonce);
                priced &= self.priced(&entry.tx);
                let want = if !executable {
                    SubPool::Queued
                } else if priced {
                    SubPool::Pending
                } else {
                    SubPool::BaseFee
                };
                assert_eq!(entry.subpool, want, "2: subpool of nonce {nonce} follows the rules");
                expected = nonce + 1;
                last_in[want.index()] = Some(id);
            }
            for (subpool, last) in last_in.iter().enumerate() {
                assert_eq!(account.tails[subpool].map(|t| t.id), *last, "tail of each subpool");
                if let Some(tail) = account.tails[subpool] {
                    assert!(self.tails[subpool].contains(&tail), "tail indexed");
                    tails += 1;
                }
            }
        }
        assert_eq!(tails, self.tails.iter().map(|t| t.len()).sum::<usize>(), "no stale tails");
        let with_pending =
            self.accounts.values().filter(|a| self.entry(a.txs()[0].1).subpool == SubPool::Pending).count();
        assert_eq!(self.heads.0.len(), with_pending, "one head per account with pending txs");
        for (i, head) in self.heads.0.iter().enumerate() {
            let account = &self.accounts[&head.sender];
            assert_eq!(account.head, Some(i as u32), "head position");
            assert_eq!(account.txs()[0].0, head.nonce, "head is the lowest nonce");
        }
        for subpool in SubPool::ALL {
            let size = self.sizes[subpool.index()];
            assert!(!self.limit(subpool).exceeded_by(size.count, size.bytes), "4: {} within limits", subpool.name());
        }
    }
}

/// Read access for the builder feed: pending transactions per account, in nonce order.
impl Pool {
    /// Each account's lowest-nonce pending transaction.
    pub(crate) fn pending_heads(&self) -> &[super::PendingHead] {
        &self.heads.0
    }

    /// The account's pending transaction at `nonce`, with its arrival order.
    pub(crate) fn pending_at(&self, sender: &Address, nonce: u64) -> Option<(&PooledTx, u64)> {
        let id = self.accounts.get(sender)?.get(nonce)?;
        let entry = self.entry(id);
        (entry.subpool == SubPool::Pending).then_some((&entry.tx, entry.seq))
    }
}
