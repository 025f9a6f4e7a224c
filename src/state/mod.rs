//! Account state: what the chain says about senders, and how it reaches the stages above.
//!
//! Owns: [`AccountState`], the chain context ([`ChainHead`]), the block update
//! ([`BlockUpdate`]: the state of every account a block changed), the [`StateProvider`] seam
//! embedders implement, [`InMemoryState`], and the [`StateLoader`] that fetches senders whose
//! state is not at hand, in batches, without blocking a thread.
//! Does not: apply any rule. The nonce and balance rules are the pool's (it checks them against
//! the freshest state it knows); validation only reads a snapshot here and hands it on.
//!
//! # The state path
//! 1. Ingest reads the pool's state epoch, then the sender's snapshot through the
//!    [`StateLoader`]: at once when the provider has it at hand, otherwise after a batched
//!    [`StateProvider::load`] (bounded queue, bounded wait; `busy` / `state_unavailable`
//!    otherwise: never a guess).
//! 2. The pool receives the transaction with that snapshot and epoch. A block applied in
//!    between carried the new state of every account it changed, so the pool settles the
//!    transaction against the newer of the two: it never calls a provider and holds no lock
//!    while anything is fetched.

mod loader;
mod memory;

pub use loader::{LoaderStats, StateConfig, StateLoader};
pub use memory::{GenesisError, InMemoryState};

use std::{future::Future, pin::Pin, sync::Arc};

use alloy_primitives::{Address, B256, U256};

use crate::tx::PooledTx;

/// What the pool needs to know about an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountState {
    pub nonce: u64,
    pub balance: U256,
}

/// The chain context the pool prices against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainHead {
    pub block: u64,
    pub base_fee: u128,
    pub blob_base_fee: u128,
}

/// A new block (or reorg) as the pool needs to know it: what an execution client knows after
/// executing it, and what a follower of a remote node can fetch.
#[derive(Debug, Clone, Default)]
pub struct BlockUpdate {
    pub number: u64,
    /// Base fee of the next block.
    pub base_fee: u128,
    /// Blob base fee of the next block.
    pub blob_base_fee: u128,
    /// Hashes of the block's transactions.
    pub mined: Vec<B256>,
    /// New state of every account the block changed (senders, recipients, EIP-7702
    /// authorities), whether or not the pool holds it: a transaction validated against an older
    /// snapshot of one of them is settled against this.
    pub accounts: Vec<(Address, AccountState)>,
    /// Transactions of blocks a reorg dropped, to put back in the pool. Their senders' state
    /// (which the reorg changed) must be in `accounts` unless the pool holds them already.
    pub reinject: Vec<PooledTx>,
}

/// A batch load in progress (see [`StateProvider::load`]).
pub type LoadFuture = Pin<Box<dyn Future<Output = Result<(), StateError>> + Send>>;

/// The embedder's account state: the one seam between Tidepool and a chain.
///
/// `account` must answer at once (it runs on async tasks): from memory or a cache. A provider
/// that must fetch (a remote node, a cold database) answers `None` for what it does not hold
/// and fetches it in [`load`](Self::load), which the [`StateLoader`] calls with batches of
/// addresses from one task, never from a worker thread or under the pool's lock.
pub trait StateProvider: Send + Sync {
    /// The account's latest state, if at hand; `None` when it must be loaded first. Accounts
    /// that exist nowhere are at hand as empty (nonce 0, balance 0).
    fn account(&self, address: &Address) -> Option<AccountState>;

    /// Fetches these accounts so that `account` answers for them. The default suits providers
    /// that hold every account: nothing to fetch.
    ///
    /// # Errors
    /// [`StateError::Unavailable`] when the source cannot be reached or answers wrongly.
    fn load(self: Arc<Self>, addresses: Vec<Address>) -> LoadFuture {
        let _ = addresses;
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Why a sender's state could not be had. `kind()` names are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The source did not answer, or not in time. Not a verdict on the transaction.
    #[error("account state unavailable: {0}")]
    Unavailable(String),
    /// Too many senders already wait for their state: try again later (backpressure).
    #[error("state load queue is full ({capacity} senders waiting): try again later")]
    Busy { capacity: usize },
}

impl StateError {
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "state_unavailable",
            Self::Busy { .. } => "busy",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds are API: every kind string pinned; a new variant fails to compile in `index`.
    #[test]
    fn every_kind_is_pinned() {
        let index = |e: &StateError| match e {
            StateError::Unavailable(_) => 0,
            StateError::Busy { .. } => 1,
        };
        let samples = [StateError::Unavailable("down".into()), StateError::Busy { capacity: 1 }];
        assert_eq!(samples.iter().map(index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(samples.iter().map(StateError::kind).collect::<Vec<_>>(), ["state_unavailable", "busy"]);
    }
}
