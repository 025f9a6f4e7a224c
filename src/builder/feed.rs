//! [`BuilderFeed`]: how a block builder pulls from a shared pool.

use std::sync::Arc;

use tokio::sync::watch;

use alloy_primitives::B256;

use super::{Batch, BestTxs, next_block};
use crate::{
    pool::{InclusionFailure, PoolError, PoolHandle, Reported},
    tx::blob::BlobSidecar,
};

/// A block builder's handle on the pool: pull best-first batches, load the sidecars of their
/// blob transactions, report what could not be included. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BuilderFeed {
    pool: PoolHandle,
    max_blobs: usize,
}

impl BuilderFeed {
    /// A feed whose batches hold at most `max_blobs` blobs (the fork's blobs per block,
    /// [`crate::validate::Fork::max_blobs_per_block`]).
    pub const fn new(pool: PoolHandle, max_blobs: usize) -> Self {
        Self { pool, max_blobs }
    }

    /// The pool it reads.
    pub const fn pool(&self) -> &PoolHandle {
        &self.pool
    }

    /// The best batch for the next block at the pool's current base fee.
    pub fn next_block(&self, gas_limit: u64, max_bytes: usize) -> Batch {
        self.pool.read(|pool| next_block(pool, pool.head().base_fee, gas_limit, max_bytes, self.max_blobs))
    }

    /// The sidecar of a blob transaction the feed offered (read from the blob store, from disk
    /// when it is there), while the transaction is pooled. A block that includes a blob
    /// transaction must publish its blobs: load them before proposing it.
    pub fn sidecar(&self, hash: &B256) -> Option<Arc<BlobSidecar>> {
        self.pool.blobs().get(hash)
    }

    /// Runs `build` over the best-first iterator at `base_fee`, under the pool lock: keep it
    /// short and do not block inside.
    pub fn best<R>(&self, base_fee: u128, build: impl FnOnce(BestTxs<'_>) -> R) -> R {
        self.pool.read(|pool| build(BestTxs::new(pool, base_fee)))
    }

    /// Reports that the builder could not include a transaction it was offered (not a revert).
    /// Repeated reports quarantine it: it stops being offered until its sender's state changes
    /// (see the pool's module docs, "Quarantine").
    ///
    /// # Errors
    /// [`PoolError::NotPooled`] when it has left the pool meanwhile.
    pub fn report_failed(&self, hash: &B256, failure: InclusionFailure) -> Result<Reported, PoolError> {
        self.pool.report_failed(hash, failure)
    }

    /// A stream of batches for a builder that pulls continuously.
    pub fn batches(&self, gas_limit: u64, max_bytes: usize) -> BatchStream {
        let mut changes = self.pool.pending_changes();
        changes.mark_changed(); // the first pull answers at once with what is pending now
        BatchStream { feed: self.clone(), changes, gas_limit, max_bytes }
    }
}

/// Batches on demand: each [`BatchStream::next`] waits until pending has gained transactions
/// since the previous batch, then packs a fresh one. Its buffer is a single "changed" flag, so a
/// builder that stops pulling costs nothing and misses nothing: the pool keeps the transactions.
#[derive(Debug)]
pub struct BatchStream {
    feed: BuilderFeed,
    changes: watch::Receiver<u64>,
    gas_limit: u64,
    max_bytes: usize,
}

impl BatchStream {
    /// The next batch; `None` once the pool is gone.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future before it completes loses no transactions.
    pub async fn next(&mut self) -> Option<Batch> {
        self.changes.changed().await.ok()?;
        Some(self.feed.next_block(self.gas_limit, self.max_bytes))
    }
}
