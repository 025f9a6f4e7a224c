//! Account state from the upstream node: a bounded cache answers at once, misses are loaded in
//! batches at the followed head's block hash.

use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, B256};
use dashmap::DashMap;

use super::upstream::Upstream;
use crate::state::{AccountState, LoadFuture, StateError, StateProvider};

/// Accounts the cache holds at most by default. The pool keeps its own copy of every account
/// it holds transactions of, so a cache miss costs one batched load, never a wrong answer.
pub const DEFAULT_MAX_CACHED: usize = 100_000;

/// Loads of one batch before giving up on a head that keeps moving under it.
const HEAD_RACE_ATTEMPTS: usize = 3;

/// The [`StateProvider`] of a follower.
///
/// Invariant: every cached state was read at the head the follower had applied when it was
/// cached or later; a new head replaces the states of the accounts its blocks touched and
/// forgets the rest (contract calls move balances no header shows).
#[derive(Debug)]
pub struct RemoteState {
    upstream: Upstream,
    cache: DashMap<Address, AccountState>,
    head: Mutex<B256>,
    max_cached: usize,
}

impl RemoteState {
    pub fn new(upstream: Upstream, head: B256, max_cached: usize) -> Self {
        Self { upstream, cache: DashMap::new(), head: Mutex::new(head), max_cached: max_cached.max(1) }
    }

    fn head(&self) -> B256 {
        *self.head.lock().expect("head lock")
    }

    /// A new head: `touched` (read at `head`) replace what the cache held; the rest is forgotten.
    pub fn on_head(&self, head: B256, touched: &[(Address, AccountState)]) {
        *self.head.lock().expect("head lock") = head;
        self.cache.clear();
        self.remember(touched);
    }

    fn remember(&self, accounts: &[(Address, AccountState)]) {
        if self.cache.len() + accounts.len() > self.max_cached {
            self.cache.clear(); // a cache, not a record: start over rather than grow
        }
        for &(address, account) in accounts.iter().take(self.max_cached) {
            self.cache.insert(address, account);
        }
    }

    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

impl StateProvider for RemoteState {
    fn account(&self, address: &Address) -> Option<AccountState> {
        self.cache.get(address).map(|entry| *entry)
    }

    fn load(self: Arc<Self>, addresses: Vec<Address>) -> LoadFuture {
        Box::pin(async move {
            // A head applied during the load may have changed these accounts: a read at an
            // older head is never cached; it is read again at the new one.
            for _ in 0..HEAD_RACE_ATTEMPTS {
                let head = self.head();
                let accounts = self
                    .upstream
                    .accounts_at(head, &addresses)
                    .await
                    .map_err(|e| StateError::Unavailable(e.to_string()))?;
                if self.head() == head {
                    self.remember(&accounts);
                    return Ok(());
                }
            }
            Err(StateError::Unavailable("the followed head moved during every load attempt".into()))
        })
    }
}
