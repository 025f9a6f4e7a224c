//! Tidepool: a transaction mempool for Ethereum nodes.
//!
//! ```text
//!  peers ──gossip──▶ per-peer limits ─▶ bounded queue ─▶ validation workers ─▶ pool ─▶ builder feed
//!  JSON-RPC / library ─────────────────────┘   (full = backpressure)    (sig, size, nonce)   (best-first)
//! ```
//!
//! Data flows one way, one module per stage:
//!
//! - [`tx`]: exact EIP-2718 decoding (legacy, 2930, 1559, 4844 without sidecar, 7702) with alloy,
//!   sender recovery with libsecp256k1, and [`tx::PooledTx`], the form every later stage holds.
//! - [`validate`]: the ordered checks (cheap ones before the signature, state last), the
//!   [`validate::StateProvider`] seam, and the [`validate::ValidationPipeline`]: worker threads
//!   behind a bounded queue that answers `Busy` when full.
//!
//! - [`pool`]: per-account nonce queues in three subpools (pending, basefee, queued), priority,
//!   replacement, limits and eviction, block updates, and an event for every change;
//!   [`pool::PoolHandle`] shares it between tasks.
//! - [`builder`]: best-first, nonce-respecting iteration and gas-limited batches for builders.
//!
//! Every refusal is a typed error with a stable `kind()` name: [`tx::TxError`] from validation,
//! [`pool::PoolError`] from the pool.
//!
//! ```
//! use std::sync::Arc;
//! use alloy_primitives::U256;
//! use tidepool::{
//!     builder::BuilderFeed,
//!     pool::{ChainHead, Pool, PoolConfig, PoolHandle},
//!     tx::generate::TxMix,
//!     validate::{AccountState, InMemoryState, Validator},
//! };
//!
//! let mut mix = TxMix::new(1, 1, 1);                       // dev account 0, mainnet chain id
//! let state = Arc::new(InMemoryState::new());
//! state.set(mix.signers()[0].address(), AccountState { nonce: 0, balance: U256::MAX });
//! let pool = PoolHandle::new(Pool::new(
//!     PoolConfig::default(),
//!     state.clone(),
//!     ChainHead { block: 0, base_fee: 7, blob_base_fee: 1 },
//! ));
//!
//! let tx = Validator::default().validate(mix.next_tx().raw, state.as_ref()).expect("valid");
//! pool.add(tx).expect("admitted");
//! let batch = BuilderFeed::new(pool.clone()).next_block(30_000_000, 1 << 20);
//! assert_eq!(batch.txs.len(), 1);
//! ```
pub mod builder;
pub mod fuzz_targets;
pub mod gossip;
pub mod ingest;
pub mod net;
pub mod node;
pub mod pool;
pub mod service;
pub mod sim;
pub mod tx;
pub mod validate;

pub use service::{
    BuilderFeed, ChainUpdates, Origin, PoolReader, Submitter, Tidepool, TidepoolBuilder, TidepoolConfig,
};
