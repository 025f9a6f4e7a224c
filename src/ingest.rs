//! Ingest: raw bytes from any source through the validation pipeline into the pool.
//!
//! Owns: the one path every transaction takes in (gossip, RPC, library), and what its outcome
//! means to each caller (an RPC error, a gossip verdict, a metric label).
//! Does not: decide about peers (`gossip`), or hold any lock across an `.await` (the pool is
//! locked only inside `PoolHandle::add`, after the verdict arrived).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use alloy_primitives::Bytes;

use crate::{
    gossip::{Penalty, Verdict},
    pool::{Added, PoolError, PoolHandle},
    tx::{Origin, TxError},
    validate::{SubmitError, ValidationPipeline, pipeline::PendingVerdict},
};

/// Why a submission did not enter the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The validation queue was full: try again later. Not a verdict.
    #[error(transparent)]
    Busy(#[from] SubmitError),
    /// Invalid (or unaffordable) transaction.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// Valid, but the pool refused it.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// Pooled, but the journal could not make it durable: not acknowledged.
    #[error(transparent)]
    Journal(#[from] crate::store::JournalError),
}

impl IngestError {
    /// Stable snake_case name: the underlying error's kind.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Busy(e) => e.kind(),
            Self::Invalid(e) => e.kind(),
            Self::Pool(e) => e.kind(),
            Self::Journal(_) => "journal_failed",
        }
    }
}

/// Pipeline plus pool: cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Ingest {
    pipeline: Arc<ValidationPipeline>,
    pool: PoolHandle,
    outcomes: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    pub fn new(pipeline: Arc<ValidationPipeline>, pool: PoolHandle) -> Self {
        Self { pipeline, pool, outcomes: Arc::default() }
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
    /// the verdict and adding to the pool. For callers that must not wait to learn `Busy`.
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
        hash: alloy_primitives::B256,
        raw: Bytes,
    ) -> Result<impl Future<Output = Result<Added, IngestError>> + Send + 'static, IngestError> {
        self.then_pool(self.pipeline.submit_hashed(hash, raw), Origin::External)
    }

    /// The common rest: count a refusal at once, or await the verdict and add to the pool.
    fn then_pool(
        &self,
        submitted: Result<PendingVerdict, SubmitError>,
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
        let pool = self.pool.clone();
        let outcomes = Arc::clone(&self.outcomes);
        Ok(async move {
            let outcome = match pending.await {
                Ok(tx) => pool.add(Arc::unwrap_or_clone(tx).with_origin(origin)).map_err(IngestError::from),
                Err(e) => Err(IngestError::from(e)),
            };
            count(&outcomes, &outcome);
            outcome
        })
    }
}

fn count(outcomes: &Mutex<BTreeMap<&'static str, u64>>, outcome: &Result<Added, IngestError>) {
    let kind = outcome.as_ref().map_or_else(IngestError::kind, |_| "added");
    *outcomes.lock().expect("outcomes lock").entry(kind).or_default() += 1;
}

/// What a submission's outcome means for the peer that sent it.
pub const fn gossip_verdict(outcome: &Result<Added, IngestError>) -> Verdict {
    match outcome {
        Ok(_) | Err(IngestError::Pool(PoolError::AlreadyKnown(_))) => Verdict::Accepted,
        Err(IngestError::Busy(_)) => Verdict::Busy,
        Err(IngestError::Pool(_) | IngestError::Journal(_)) => Verdict::Ignored,
        Err(IngestError::Invalid(e)) if !e.blames_sender() => Verdict::Ignored,
        Err(IngestError::Invalid(e)) => Verdict::Rejected(match e {
            TxError::HighS | TxError::InvalidSignature => Penalty::InvalidSignature,
            TxError::Empty
            | TxError::MalformedRlp(_)
            | TxError::FieldOverflow
            | TxError::TrailingBytes(_)
            | TxError::TypeNotSupported(_) => Penalty::Undecodable,
            _ => Penalty::InvalidTx,
        }),
    }
}
