//! Ingest: raw bytes from any source through validation and the sender's state into the pool.
//!
//! Owns: the one path every transaction takes in (gossip, RPC, library): the pipeline's verdict,
//! the sender's state snapshot (through [`StateLoader`], which may load it), then the pool; and
//! the count of outcomes by kind.
//! Does not: decide about peers (the penalty table is `gossip`'s), journal anything (the
//! submitter in `service` does), or hold any lock across an `.await` (the pool is locked only
//! inside `PoolHandle::add`, after the verdict and the state arrived).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use alloy_primitives::{B256, Bytes};

use crate::{
    pool::{Added, PoolError, PoolHandle, ValidTx},
    state::{StateError, StateLoader},
    tx::{Origin, TxError},
    validate::{QueueFull, ValidationPipeline, pipeline::PendingVerdict},
};

/// Why a submission did not enter the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The validation queue was full: try again later. Not a verdict.
    #[error(transparent)]
    Busy(#[from] QueueFull),
    /// Invalid transaction.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The sender's state could not be had (busy, or its source unavailable). Not a verdict.
    #[error(transparent)]
    State(#[from] StateError),
    /// Valid, but the pool refused it (account state rules included).
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl IngestError {
    /// Stable snake_case name: the underlying error's kind.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Busy(e) => e.kind(),
            Self::Invalid(e) => e.kind(),
            Self::State(e) => e.kind(),
            Self::Pool(e) => e.kind(),
        }
    }

    /// Backpressure (try again later), not a verdict on the transaction.
    pub const fn is_busy(&self) -> bool {
        matches!(self, Self::Busy(_) | Self::State(StateError::Busy { .. }))
    }

    /// A refusal that may not hold later: backpressure, state not at hand, or a pool rule that
    /// a block or a quieter pool can lift (full pool, full account, funds, a stale snapshot).
    /// Invalid bytes, a used nonce and a pooled twin are final.
    pub const fn is_temporary(&self) -> bool {
        match self {
            Self::Busy(_) | Self::State(_) => true,
            Self::Invalid(_) => false,
            Self::Pool(e) => matches!(
                e,
                PoolError::Underpriced { .. }
                    | PoolError::AccountFull { .. }
                    | PoolError::DelegatedInFlight { .. }
                    | PoolError::AuthorityReserved(_)
                    | PoolError::InsufficientFunds { .. }
                    | PoolError::StaleState { .. }
            ),
        }
    }
}

/// Pipeline, state and pool: cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Ingest {
    pipeline: Arc<ValidationPipeline>,
    state: StateLoader,
    pool: PoolHandle,
    outcomes: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    pub fn new(pipeline: Arc<ValidationPipeline>, state: StateLoader, pool: PoolHandle) -> Self {
        Self { pipeline, state, pool, outcomes: Arc::default() }
    }

    /// Submissions so far by outcome: `"added"` or an error kind.
    pub fn outcomes(&self) -> BTreeMap<&'static str, u64> {
        self.outcomes.lock().expect("outcomes lock").clone()
    }

    pub const fn pool(&self) -> &PoolHandle {
        &self.pool
    }

    pub fn pipeline(&self) -> &ValidationPipeline {
        &self.pipeline
    }

    pub const fn state(&self) -> &StateLoader {
        &self.state
    }

    /// Validates `raw` and adds it to the pool.
    ///
    /// # Errors
    /// [`IngestError::Busy`] at once when the validation queue is full; otherwise the verdict.
    ///
    /// # Cancel safety
    /// Dropping the future after the bytes were queued lets validation finish without pooling.
    pub async fn submit(&self, raw: Bytes, origin: Origin) -> Result<Added, IngestError> {
        self.enqueue(raw, origin)?.await
    }

    /// Queues `raw` for validation now (never waits) and returns the rest of the work: awaiting
    /// the verdict and the sender's state, and adding to the pool. For callers that must not
    /// wait to learn `Busy`.
    ///
    /// # Errors
    /// [`IngestError::Busy`] when the validation queue is full.
    pub fn enqueue(
        &self,
        raw: Bytes,
        origin: Origin,
    ) -> Result<impl Future<Output = Result<Added, IngestError>> + Send + 'static, IngestError> {
        self.then_pool(self.pipeline.submit(raw), origin)
    }

    /// As [`enqueue`](Self::enqueue) for a transaction from a peer, with `keccak256(raw)`
    /// already known (gossip message ids).
    ///
    /// # Errors
    /// [`IngestError::Busy`] when the validation queue is full.
    pub fn enqueue_hashed(
        &self,
        hash: B256,
        raw: Bytes,
    ) -> Result<impl Future<Output = Result<Added, IngestError>> + Send + 'static, IngestError> {
        self.then_pool(self.pipeline.submit_hashed(hash, raw), Origin::External)
    }

    /// The common rest: count a refusal at once, or await the verdict and the sender's state,
    /// and add to the pool.
    fn then_pool(
        &self,
        submitted: Result<PendingVerdict, QueueFull>,
        origin: Origin,
    ) -> Result<impl Future<Output = Result<Added, IngestError>> + Send + 'static, IngestError> {
        let pending = match submitted {
            Ok(pending) => pending,
            Err(busy) => {
                let error = IngestError::Busy(busy);
                count(&self.outcomes, &Err(error.clone()));
                return Err(error);
            }
        };
        let this = self.clone();
        Ok(async move {
            let outcome = this.settle(pending, origin).await;
            count(&this.outcomes, &outcome);
            outcome
        })
    }

    async fn settle(&self, pending: PendingVerdict, origin: Origin) -> Result<Added, IngestError> {
        let tx = Arc::unwrap_or_clone(pending.await?).with_origin(origin);
        // The epoch first: a block applied after this read is newer than the snapshot, and the
        // pool settles the transaction against it (see `pool::ValidTx`).
        let epoch = self.pool.state_epoch();
        let sender_state = self.state.account(tx.sender()).await?;
        Ok(self.pool.add(ValidTx { tx, sender_state, epoch })?)
    }
}

fn count(outcomes: &Mutex<BTreeMap<&'static str, u64>>, outcome: &Result<Added, IngestError>) {
    let kind = outcome.as_ref().map_or_else(IngestError::kind, |_| "added");
    *outcomes.lock().expect("outcomes lock").entry(kind).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A submission's kinds are its parts' (each pinned where it is defined), plus none of its own.
    #[test]
    fn kinds_are_the_parts_kinds() {
        let busy = IngestError::Busy(QueueFull { capacity: 1 });
        assert_eq!((busy.kind(), busy.is_busy()), ("busy", true));
        let state_busy = IngestError::State(StateError::Busy { capacity: 1 });
        assert_eq!((state_busy.kind(), state_busy.is_busy()), ("busy", true));
        let unavailable = IngestError::State(StateError::Unavailable("down".into()));
        assert_eq!((unavailable.kind(), unavailable.is_busy()), ("state_unavailable", false));
        assert_eq!(IngestError::Invalid(TxError::HighS).kind(), "high_s");
        assert_eq!(IngestError::Pool(PoolError::NotPooled(B256::ZERO)).kind(), "not_pooled");
    }
}
