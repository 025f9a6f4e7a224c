//! [`PoolHandle`]: the pool shared by the network, RPC and builder tasks.
//!
//! # Locking
//! One `std::sync::Mutex` guards the [`Pool`]. Every operation takes it once, for a batch:
//! validation happens before (in the pipeline), notification after (events are collected under
//! the lock, published once it is released). No `.await` ever happens while it is held; the
//! methods are synchronous and short (bounded by the batch and by what a block changed).
//! Subscribers read a bounded broadcast buffer: a slow one misses events (and is told how many),
//! it never slows the pool. Events reach subscribers in the order the pool made them: a second
//! mutex, taken before the pool's is released, orders publication (lock order: pool, then
//! publication, then dead letters; never the reverse). The dead-letter view has its own mutex, taken after the pool's is
//! released, so queries about departed transactions never wait for inserts.
//!
//! # Sidecars
//! A blob transaction's sidecar goes into the [`BlobStore`] before the pool lock is taken
//! (a file write never happens under it), and out again if the pool refuses the transaction or
//! when its `Removed` event is published. So the store holds exactly the pooled blob
//! transactions' sidecars, give or take the operation in progress.

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use alloy_primitives::{Address, B256, Bytes};
use tokio::sync::{broadcast, watch};

use super::BlobStore;
use super::{Added, DeadLetter, DeadLetters, InclusionFailure, Pool, PoolError, PoolEvent, Reported, SubPool, ValidTx};
use crate::{state::BlockUpdate, tx::PooledTx};

/// Events buffered per subscriber. 16,384 covers a full block's worth of churn on a saturated
/// pool (a block's mined txs plus the promotions they cause) between two reads.
pub const EVENT_BUFFER: usize = 16_384;

/// A cheap, cloneable handle to one shared pool.
#[derive(Clone)]
pub struct PoolHandle {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Mutex<Pool>,
    /// Held from the end of a mutation until its events are published.
    publishing: Mutex<()>,
    dead_letters: Mutex<DeadLetters>,
    events: broadcast::Sender<PoolEvent>,
    /// The pool's state epoch, readable without the lock (ingest reads it before every
    /// sender-state read). Stored under the lock after each block update is applied.
    epoch: AtomicU64,
    /// Bumped whenever pending gains a transaction: what a pulling builder waits on.
    pending_version: watch::Sender<u64>,
    /// Sidecars of the pooled blob transactions.
    blobs: BlobStore,
}

impl std::fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolHandle").finish_non_exhaustive()
    }
}

impl PoolHandle {
    /// Shares `pool`, with sidecars kept in memory.
    pub fn new(pool: Pool) -> Self {
        Self::with_blob_store(pool, BlobStore::in_memory())
    }

    /// Shares `pool`, with sidecars kept in `blobs` (e.g. [`BlobStore::open`] on a data
    /// directory).
    pub fn with_blob_store(pool: Pool, blobs: BlobStore) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (pending_version, _) = watch::channel(0);
        let dead_letters = Mutex::new(DeadLetters::new(pool.config().dead_letters));
        let epoch = AtomicU64::new(pool.state_epoch());
        Self {
            shared: Arc::new(Shared {
                pool: Mutex::new(pool),
                publishing: Mutex::new(()),
                dead_letters,
                events,
                pending_version,
                epoch,
                blobs,
            }),
        }
    }

    /// Adds validated transactions as one batch under one lock.
    pub fn add_batch(&self, mut txs: Vec<ValidTx>) -> Vec<Result<Added, PoolError>> {
        let staged: Vec<Option<B256>> = txs.iter_mut().map(|tx| self.stage_sidecar(tx)).collect();
        let results = self.mutate(|pool| pool.add_batch(txs, Instant::now()));
        for (result, staged) in results.iter().zip(staged) {
            self.unstage_refused(result, staged);
        }
        results
    }

    /// Adds one validated transaction.
    ///
    /// # Errors
    /// [`PoolError`] when the pool refuses it.
    pub fn add(&self, mut tx: ValidTx) -> Result<Added, PoolError> {
        let staged = self.stage_sidecar(&mut tx);
        let result = self.mutate(|pool| pool.add(tx, Instant::now()));
        self.unstage_refused(&result, staged);
        result
    }

    /// See [`Pool::set_min_tip`]: changes the minimum tip for validation and the pool, and
    /// removes what a raise leaves below it. Returns how many left.
    pub fn set_min_tip(&self, min: u128) -> usize {
        self.mutate(|pool| pool.set_min_tip(min))
    }

    /// The sidecars of pooled blob transactions.
    pub fn blobs(&self) -> &BlobStore {
        &self.shared.blobs
    }

    /// The bytes a peer, a journal or another node takes for a pooled transaction: its
    /// consensus form, or for a blob transaction its network form with the stored sidecar
    /// (`None` when the sidecar is not held: such a transaction cannot be passed on).
    pub fn wire_form(&self, tx: &PooledTx) -> Option<Bytes> {
        if !tx.is_blob() {
            return Some(tx.encoded().clone());
        }
        let sidecar = self.shared.blobs.get(&tx.hash())?;
        Some(crate::tx::blob::network_form(tx.encoded(), &sidecar))
    }

    /// Moves a blob transaction's sidecar into the store (outside the pool lock); returns the
    /// hash when this call put it there. A sidecar that cannot be stored stays with the
    /// transaction, which the pool then holds without it being servable: logged, not lost.
    fn stage_sidecar(&self, tx: &mut ValidTx) -> Option<B256> {
        let sidecar = tx.tx.take_sidecar()?;
        let hash = tx.tx.hash();
        match self.shared.blobs.put(hash, &sidecar) {
            Ok(put) => put.then_some(hash),
            Err(e) => {
                tracing::warn!(%hash, error = %e, "blob sidecar not stored");
                None
            }
        }
    }

    fn unstage_refused<T>(&self, result: &Result<T, PoolError>, staged: Option<B256>) {
        if let (Err(_), Some(hash)) = (result, staged) {
            self.shared.blobs.remove(&hash);
        }
    }

    /// Applies a block (see [`Pool::on_block`]); returns the reorged transactions not put back.
    pub fn on_block(&self, update: BlockUpdate) -> Vec<(B256, PoolError)> {
        self.mutate(|pool| {
            let refused = pool.on_block(update, Instant::now());
            self.shared.epoch.store(pool.state_epoch(), Ordering::Release);
            refused
        })
    }

    /// See [`Pool::make_local`].
    pub fn make_local(&self, hash: &B256) -> bool {
        self.lock().make_local(hash)
    }

    /// [`Pool::state_epoch`], without taking the lock.
    pub fn state_epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// Expires overdue basefee and queued transactions.
    pub fn expire(&self) {
        self.mutate(|pool| pool.expire(Instant::now()));
    }

    /// Records that a builder could not include the transaction (see [`Pool::report_failed`]).
    ///
    /// # Errors
    /// [`PoolError::NotPooled`] when it is not in the pool.
    pub fn report_failed(&self, hash: &B256, failure: InclusionFailure) -> Result<Reported, PoolError> {
        self.mutate(|pool| pool.report_failed(hash, failure, Instant::now()))
    }

    /// Why this transaction left the pool without being mined, if the record is still held.
    pub fn dead_letter(&self, hash: &B256) -> Option<DeadLetter> {
        self.dead_letters().get(hash)
    }

    /// The sender's held dead letters, oldest first.
    pub fn dead_letters_from(&self, sender: &Address) -> Vec<DeadLetter> {
        self.dead_letters().from_sender(sender)
    }

    /// Dead letters recorded since start by reason kind, and how many are held now.
    pub fn dead_letter_counts(&self) -> (std::collections::BTreeMap<&'static str, u64>, usize) {
        let letters = self.dead_letters();
        (letters.recorded(), letters.len())
    }

    /// Runs `read` on the pool under the lock; for the builder feed and bulk readers. Keep it
    /// short: inserts wait meanwhile.
    pub fn read<R>(&self, read: impl FnOnce(&Pool) -> R) -> R {
        read(&self.lock())
    }

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventStream {
        EventStream { receiver: self.shared.events.subscribe(), missed: 0 }
    }

    /// A watch that changes whenever pending gains transactions.
    pub fn pending_changes(&self) -> watch::Receiver<u64> {
        self.shared.pending_version.subscribe()
    }

    fn dead_letters(&self) -> MutexGuard<'_, DeadLetters> {
        self.shared.dead_letters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves the pool as the panicking step left it; its
        // operations keep the invariants at each step, so carrying on is sound.
        self.shared.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a mutation under the lock, then publishes its events with the lock released (but
    /// the publication lock taken first, so no later mutation's events overtake these).
    fn mutate<R>(&self, change: impl FnOnce(&mut Pool) -> R) -> R {
        let (result, events, _in_order) = {
            let mut pool = self.lock();
            let result = change(&mut pool);
            let in_order = self.shared.publishing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (result, pool.take_events(), in_order)
        };
        let grew_pending = events.iter().any(|e| {
            matches!(
                e,
                PoolEvent::Added { subpool: SubPool::Pending, .. } | PoolEvent::Promoted { to: SubPool::Pending, .. }
            )
        });
        self.dead_letters().record_events(&events);
        for event in &events {
            if let PoolEvent::Removed { hash, .. } = event {
                self.shared.blobs.remove(hash);
            }
        }
        for event in events {
            // No subscribers is fine: events are for whoever listens.
            let _ = self.shared.events.send(event);
        }
        if grew_pending {
            self.shared.pending_version.send_modify(|v| *v += 1);
        }
        result
    }
}

/// A subscriber's view of pool events. Bounded: a subscriber that falls more than
/// [`EVENT_BUFFER`] events behind skips the oldest, and [`EventStream::missed`] counts them.
#[derive(Debug)]
pub struct EventStream {
    receiver: broadcast::Receiver<PoolEvent>,
    missed: u64,
}

impl EventStream {
    /// The next event; `None` once the pool is gone.
    pub async fn recv(&mut self) -> Option<PoolEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<PoolEvent> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// Events skipped because this subscriber fell behind.
    pub const fn missed(&self) -> u64 {
        self.missed
    }
}
