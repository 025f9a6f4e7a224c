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
//! Every refusal is a [`tx::TxError`] with a stable [`kind`](tx::TxError::kind) name.
//!
//! ```
//! use tidepool::{tx::generate::TxMix, validate::{InMemoryState, Validator}};
//!
//! let mut mix = TxMix::new(1, 1, 1);
//! let tx = mix.next_tx();
//! let verdict = Validator::default().validate(tx.raw, &InMemoryState::new());
//! // The dev account holds nothing in an empty state, so the state check refuses it.
//! assert_eq!(verdict.unwrap_err().kind(), "insufficient_funds");
//! ```

pub mod builder;
pub mod fuzz_targets;
pub mod pool;
pub mod tx;
pub mod validate;
