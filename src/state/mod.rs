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
    /// What code the account has: senders with code other than an EIP-7702 delegation are
    /// refused (EIP-3607), delegated senders are held to fewer transactions in flight.
    pub code: AccountCode,
}

impl AccountState {
    /// An account without code (an externally owned account).
    pub const fn new(nonce: u64, balance: U256) -> Self {
        Self { nonce, balance, code: AccountCode::None }
    }

    /// The same account with `code`.
    #[must_use]
    pub const fn with_code(self, code: AccountCode) -> Self {
        Self { code, ..self }
    }
}

/// An account's code, as far as the pool's rules care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccountCode {
    /// No code: an externally owned account.
    #[default]
    None,
    /// An EIP-7702 delegation designator (`0xef0100 ‖ address`): the account still sends
    /// transactions, but any call into it can run the delegate's code and move its balance.
    Delegated(Address),
    /// Deployed contract code: the account cannot send transactions (EIP-3607).
    Contract,
}

impl AccountCode {
    /// The prefix of an EIP-7702 delegation designator.
    pub const DELEGATION_PREFIX: [u8; 3] = [0xef, 0x01, 0x00];

    /// Classifies an account's code as `eth_getCode` returns it.
    pub fn from_code(code: &[u8]) -> Self {
        if code.is_empty() {
            Self::None
        } else if code.len() == 23 && code.starts_with(&Self::DELEGATION_PREFIX) {
            Self::Delegated(Address::from_slice(&code[3..]))
        } else {
            Self::Contract
        }
    }
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
    /// The block's gas limit, when known: a pooled transaction above a lowered limit can never
    /// be included and leaves; none above it is admitted.
    pub gas_limit: Option<u64>,
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

    #[test]
    fn code_is_classified_as_the_pool_needs_it() {
        let delegate = Address::repeat_byte(0x11);
        let mut designator = AccountCode::DELEGATION_PREFIX.to_vec();
        designator.extend_from_slice(delegate.as_slice());
        assert_eq!(AccountCode::from_code(&[]), AccountCode::None);
        assert_eq!(AccountCode::from_code(&designator), AccountCode::Delegated(delegate));
        assert_eq!(AccountCode::from_code(&designator[..22]), AccountCode::Contract, "truncated");
        assert_eq!(AccountCode::from_code(&[0x60, 0x00]), AccountCode::Contract);
    }

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
