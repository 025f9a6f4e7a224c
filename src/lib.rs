//! Tidepool: a transaction mempool for Ethereum nodes, block builders and network researchers.
//!
//! ```text
//!  peers ──gossip──▶ per-peer limits ─▶ bounded queue ─▶ validation workers ─▶ pool ─▶ builder feed
//!  JSON-RPC / library ─────────────────────┘   (full = backpressure)    (sig, size, nonce)   (best-first)
//! ```
//!
//! # The front door
//! [`Tidepool::builder`] takes a [`state::StateProvider`] (your state), the chain head and
//! optionally a network, starts what is needed on your tokio runtime, and hands out small
//! handles split by who uses them:
//!
//! - [`Submitter`]: submit raw transactions with an [`Origin`] (local, external, private);
//!   answers `Busy` at once when validation is saturated.
//! - [`ChainUpdates`]: feed every block and reorg.
//! - [`BuilderFeed`]: pull best-first, gas- and blob-limited batches, load the sidecars of
//!   their blob transactions; report transactions that could not be included (repeat offenders
//!   are quarantined).
//! - [`PoolReader`]: look up, subscribe to events, ask the dead-letter view why a transaction
//!   left, read the counters, get blobs by versioned hash.
//! - [`PoolAdmin`]: operator actions, such as changing the minimum tip at run time.
//!
//! The `tidepool node` binary is built on exactly this API. Runnable programs for each user:
//! `examples/execution_client.rs`, `examples/block_builder.rs`, `examples/gossip_node.rs`.
//!
//! ```
//! use std::sync::Arc;
//! use alloy_primitives::U256;
//! use tidepool::{
//!     Origin, Tidepool,
//!     state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
//!     tx::generate::TxMix,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut mix = TxMix::new(1, 1, 1); // one dev account, mainnet chain id
//! let state = Arc::new(InMemoryState::new());
//! state.set(mix.signers()[0].address(), AccountState::new(0, U256::MAX));
//! let head = ChainHead { block: 0, base_fee: 7, blob_base_fee: 1 };
//! let tidepool = Tidepool::builder(state, head).start().await?;
//!
//! let added = tidepool.submitter().submit(mix.next_tx().raw, Origin::Local).await?;
//! let batch = tidepool.builder_feed().next_block(30_000_000, 1 << 20);
//! assert_eq!(batch.txs[0].hash(), added.hash);
//!
//! tidepool.chain().on_block(BlockUpdate { number: 1, base_fee: 7, mined: vec![added.hash], ..Default::default() });
//! assert!(tidepool.reader().get(&added.hash).is_none());
//! # Ok(()) }
//! ```
//!
//! # The stages
//! Data flows one way, one module per stage; each module's top doc says what it owns and what
//! it must not touch.
//!
//! - [`tx`]: exact EIP-2718 decoding (legacy, 2930, 1559, 4844 without sidecar, 7702) with alloy,
//!   sender recovery with libsecp256k1, and [`tx::PooledTx`], the form every later stage holds.
//! - [`validate`]: the ordered checks (cheap ones before the signature) and the
//!   [`validate::ValidationPipeline`]: worker threads behind a bounded queue that answers `Busy`
//!   when full.
//! - [`state`]: account state below both validation and the pool: the
//!   [`state::StateProvider`] seam, block updates carrying every changed account, and the
//!   [`state::StateLoader`] that loads senders not at hand in batches.
//! - [`ingest`]: the one path from bytes through validation and the sender's state into the pool.
//! - [`pool`]: per-account nonce queues in three subpools (pending, basefee, queued), the nonce
//!   and balance rules, priority,
//!   replacement, limits and eviction, block updates, quarantine, an event for every change,
//!   and the dead-letter view.
//! - [`builder`]: best-first, nonce-respecting iteration and gas-limited batches for builders.
//! - [`gossip`]: the sans-IO peer protocol core (budgets, scores, bans, announce/fetch);
//!   `net` drives it with libp2p, `sim` with a discrete-event simulator.
//! - [`store`]: the journal of local transactions and the pool snapshot (durability).
//! - [`service`]: the front door above; `node`: the `tidepool node` binary's parts around it.
//!
//! Every refusal is a typed error with a stable `kind()` name: [`tx::TxError`] from validation,
//! [`state::StateError`] when a sender's state cannot be had, [`pool::PoolError`] from the pool
//! (account-state rules included), [`ingest::IngestError`] for a submission.
//!
//! # Cargo features
//! The core above builds with `default-features = false` (no libp2p, no servers). `net` adds the
//! libp2p gossip network, `node` the JSON-RPC server, metrics and dev chain, `sim` the
//! simulator, `cli` the `tidepool` binary (the default turns on all of them).

pub mod builder;
pub(crate) mod duration_secs;
#[cfg(feature = "follow")]
pub mod follow;
pub mod gossip;
pub mod ingest;
#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "node")]
pub mod node;
pub mod pool;
pub mod service;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod store;
pub mod tx;
pub mod validate;

pub use service::{
    BuilderFeed, ChainUpdates, Origin, PoolAdmin, PoolReader, SubmitError, Submitter, Tidepool, TidepoolBuilder,
    TidepoolConfig,
};
