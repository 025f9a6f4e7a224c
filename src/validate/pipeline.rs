//! The validation pipeline: worker threads behind one bounded queue, with duplicate suppression.
//!
//! A submission either gets a [`PendingVerdict`] or, when the queue is full, [`QueueFull`]
//! at once: that is the backpressure signal the network and RPC layers pass on (gossip ignores
//! the message, RPC answers "busy"). Nothing here grows without bound: the queue, the in-flight
//! set (at most queue + workers entries), the waiters per transaction and the recent-verdict
//! cache all have fixed capacities.
//!
//! Duplicates: identical bytes (same keccak hash) already in flight join the first submission's
//! verdict; bytes validated recently reuse the cached verdict. Either way the sender is recovered
//! once. Verdicts depend only on the bytes and the config: account state is not read here.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    thread::JoinHandle,
};

use alloy_primitives::{B256, Bytes, keccak256};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::oneshot;

use super::Validator;
use crate::tx::{PooledTx, TxError};

/// The outcome of validating one transaction.
pub type Verdict = Result<Arc<PooledTx>, TxError>;

/// How many submissions of the same in-flight bytes may wait on one verdict. Beyond this a
/// repeat is answered `Busy`: a client resubmitting in a tight loop must not grow memory.
const MAX_WAITERS_PER_TX: usize = 64;

/// Sizes of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Worker threads. Default: one per core, since validation is CPU-bound signature recovery.
    pub workers: usize,
    /// Transactions waiting for a worker. Default 4,096: about 100 ms of work on two cores at
    /// ~40k tx/s, enough to absorb a burst without letting latency grow unbounded.
    pub queue_capacity: usize,
    /// Stateless verdicts remembered by hash. Default 16,384 entries.
    pub recent_capacity: usize,
    /// Bytes of remembered transactions. Default 16 MiB, so a flood of large transactions cannot
    /// pin more than that in the cache.
    pub recent_bytes: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            queue_capacity: 4_096,
            recent_capacity: 16_384,
            recent_bytes: 16 << 20,
        }
    }
}

/// The validation queue was full: the submission was not taken. Not a verdict on the
/// transaction: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("validation queue is full ({capacity} waiting): try again later")]
pub struct QueueFull {
    pub capacity: usize,
}

impl QueueFull {
    pub const fn kind(&self) -> &'static str {
        "busy"
    }
}

/// Counters since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub submitted: u64,
    pub busy: u64,
    pub joined_in_flight: u64,
    pub recent_hits: u64,
    pub validated: u64,
    pub queue_depth: u64,
}

/// A verdict to come: [`PendingVerdict::wait`] blocks a thread, `.await` suspends a task.
#[derive(Debug)]
pub struct PendingVerdict(PendingInner);

#[derive(Debug)]
enum PendingInner {
    Ready(Option<Verdict>),
    Waiting(oneshot::Receiver<Verdict>),
}

impl PendingVerdict {
    /// Blocks until the verdict is ready.
    ///
    /// # Panics
    /// When called from inside an async runtime (use `.await` there).
    pub fn wait(self) -> Verdict {
        match self.0 {
            PendingInner::Ready(verdict) => verdict.expect("verdict taken once"),
            PendingInner::Waiting(receiver) => receiver.blocking_recv().expect(WORKERS_ANSWER),
        }
    }
}

const WORKERS_ANSWER: &str = "workers answer every queued job before they exit";

impl Future for PendingVerdict {
    type Output = Verdict;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        match &mut self.0 {
            PendingInner::Ready(verdict) => Poll::Ready(verdict.take().expect("polled after completion")),
            PendingInner::Waiting(receiver) => Pin::new(receiver).poll(cx).map(|r| r.expect(WORKERS_ANSWER)),
        }
    }
}

/// Validation worker threads behind a bounded queue. Dropping it lets the workers finish the
/// queued jobs, then joins them.
pub struct ValidationPipeline {
    shared: Arc<Shared>,
    queue: Option<Sender<Job>>,
    capacity: usize,
    workers: Vec<JoinHandle<()>>,
}

struct Job {
    hash: B256,
    raw: Bytes,
}

struct Shared {
    validator: Validator,
    dedup: Mutex<Dedup>,
    submitted: AtomicU64,
    busy: AtomicU64,
    joined_in_flight: AtomicU64,
    recent_hits: AtomicU64,
    validated: AtomicU64,
}

impl ValidationPipeline {
    /// Starts `config.workers` threads.
    ///
    /// # Panics
    /// When `workers` or `queue_capacity` is zero, or a thread cannot be spawned.
    pub fn new(validator: Validator, config: PipelineConfig) -> Self {
        assert!(config.workers > 0 && config.queue_capacity > 0, "pipeline needs workers and a queue");
        let (queue, jobs) = crossbeam_channel::bounded(config.queue_capacity);
        let shared = Arc::new(Shared {
            validator,
            dedup: Mutex::new(Dedup::new(config.recent_capacity, config.recent_bytes)),
            submitted: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            joined_in_flight: AtomicU64::new(0),
            recent_hits: AtomicU64::new(0),
            validated: AtomicU64::new(0),
        });
        let workers = (0..config.workers)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let jobs: Receiver<Job> = jobs.clone();
                std::thread::Builder::new()
                    .name(format!("tidepool-validate-{i}"))
                    .spawn(move || shared.work(&jobs))
                    .expect("spawn validation worker")
            })
            .collect();
        Self { shared, queue: Some(queue), capacity: config.queue_capacity, workers }
    }

    pub fn validator(&self) -> &Validator {
        &self.shared.validator
    }

    /// Submits raw transaction bytes for validation.
    ///
    /// # Errors
    /// [`QueueFull`] when the queue is full; nothing was queued.
    pub fn submit(&self, raw: Bytes) -> Result<PendingVerdict, QueueFull> {
        let limit = self.shared.validator.config().max_tx_size;
        if raw.len() > limit {
            // Refused before hashing: an oversized blob costs us no more than its length check.
            self.shared.submitted.fetch_add(1, Ordering::Relaxed);
            return Ok(ready(Err(TxError::Oversized { size: raw.len(), limit })));
        }
        self.submit_hashed(keccak256(&raw), raw)
    }

    /// As [`submit`](Self::submit), for callers that already hold `keccak256(raw)` (gossip: the
    /// message id is that hash), so the bytes are not hashed twice.
    ///
    /// # Errors
    /// [`QueueFull`] when the queue is full; nothing was queued.
    pub fn submit_hashed(&self, hash: B256, raw: Bytes) -> Result<PendingVerdict, QueueFull> {
        let shared = &self.shared;
        shared.submitted.fetch_add(1, Ordering::Relaxed);
        let limit = shared.validator.config().max_tx_size;
        if raw.len() > limit {
            return Ok(ready(Err(TxError::Oversized { size: raw.len(), limit })));
        }
        let (sender, receiver) = oneshot::channel();
        {
            let mut dedup = shared.dedup.lock().expect("dedup lock");
            if let Some(verdict) = dedup.recent.get(&hash).cloned() {
                drop(dedup);
                shared.recent_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(ready(verdict));
            }
            if let Some(waiters) = dedup.in_flight.get_mut(&hash) {
                if waiters.len() >= MAX_WAITERS_PER_TX {
                    shared.busy.fetch_add(1, Ordering::Relaxed);
                    return Err(QueueFull { capacity: self.capacity });
                }
                waiters.push(sender);
                shared.joined_in_flight.fetch_add(1, Ordering::Relaxed);
                return Ok(PendingVerdict(PendingInner::Waiting(receiver)));
            }
            let queue = self.queue.as_ref().expect("queue open while the pipeline lives");
            // Queue under the dedup lock, so a worker cannot finish this hash before it is
            // registered as in flight. try_send never blocks.
            match queue.try_send(Job { hash, raw }) {
                Ok(()) => {
                    dedup.in_flight.insert(hash, vec![sender]);
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    drop(dedup);
                    shared.busy.fetch_add(1, Ordering::Relaxed);
                    return Err(QueueFull { capacity: self.capacity });
                }
            }
        }
        Ok(PendingVerdict(PendingInner::Waiting(receiver)))
    }

    /// Counters since start.
    pub fn stats(&self) -> PipelineStats {
        let s = &self.shared;
        PipelineStats {
            submitted: s.submitted.load(Ordering::Relaxed),
            busy: s.busy.load(Ordering::Relaxed),
            joined_in_flight: s.joined_in_flight.load(Ordering::Relaxed),
            recent_hits: s.recent_hits.load(Ordering::Relaxed),
            validated: s.validated.load(Ordering::Relaxed),
            queue_depth: self.queue.as_ref().map_or(0, |q| q.len() as u64),
        }
    }
}

impl Drop for ValidationPipeline {
    fn drop(&mut self) {
        self.queue = None; // workers drain what is queued, then see the channel closed
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn ready(verdict: Verdict) -> PendingVerdict {
    PendingVerdict(PendingInner::Ready(Some(verdict)))
}

impl Shared {
    fn work(&self, jobs: &Receiver<Job>) {
        while let Ok(Job { hash, raw }) = jobs.recv() {
            let verdict = self.validator.validate(raw).map(Arc::new);
            self.validated.fetch_add(1, Ordering::Relaxed);
            let waiters = {
                let mut dedup = self.dedup.lock().expect("dedup lock");
                dedup.remember(hash, verdict.clone());
                dedup.in_flight.remove(&hash).unwrap_or_default()
            };
            for waiter in waiters {
                // A waiter that gave up (dropped its PendingVerdict) is no error.
                let _ = waiter.send(verdict.clone());
            }
        }
    }
}

/// In-flight waiters and a FIFO cache of recent verdicts, bounded by count and bytes.
struct Dedup {
    in_flight: HashMap<B256, Vec<oneshot::Sender<Verdict>>>,
    recent: HashMap<B256, Verdict>,
    order: VecDeque<(B256, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Dedup {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            in_flight: HashMap::new(),
            recent: HashMap::with_capacity(max_entries.min(1 << 16)),
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    fn remember(&mut self, hash: B256, verdict: Verdict) {
        if self.max_entries == 0 || self.recent.contains_key(&hash) {
            return;
        }
        let size = verdict.as_ref().map_or(0, |tx| tx.size());
        while !self.order.is_empty() && (self.order.len() >= self.max_entries || self.bytes + size > self.max_bytes) {
            let (old, old_size) = self.order.pop_front().expect("checked non-empty");
            self.recent.remove(&old);
            self.bytes -= old_size;
        }
        if size <= self.max_bytes {
            self.recent.insert(hash, verdict);
            self.order.push_back((hash, size));
            self.bytes += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{tx::generate::TxMix, validate::ValidationConfig};

    fn pipeline(config: PipelineConfig) -> ValidationPipeline {
        ValidationPipeline::new(Validator::new(ValidationConfig::default()), config)
    }

    #[test]
    fn validates_and_recovers_each_tx_once() {
        let mut mix = TxMix::new(3, 8, 1);
        let pipeline = pipeline(PipelineConfig { workers: 2, ..Default::default() });
        let txs = mix.take(50);
        let pending: Vec<_> = txs.iter().map(|t| pipeline.submit(t.raw.clone()).unwrap()).collect();
        for (tx, verdict) in txs.iter().zip(pending) {
            assert_eq!(verdict.wait().unwrap().sender(), tx.sender);
        }
        // Resubmitting the same bytes hits the cache: no second validation.
        for tx in &txs {
            assert!(pipeline.submit(tx.raw.clone()).unwrap().wait().is_ok());
        }
        let stats = pipeline.stats();
        assert_eq!(stats.validated, 50);
        assert_eq!(stats.recent_hits, 50);
    }

    #[test]
    fn full_queue_answers_busy_and_recovers() {
        let mut mix = TxMix::new(4, 4, 1);
        let pipeline = pipeline(PipelineConfig { workers: 1, queue_capacity: 2, recent_capacity: 0, recent_bytes: 0 });
        let txs = mix.take(64);
        let mut accepted = Vec::new();
        let mut busy = 0;
        for tx in &txs {
            match pipeline.submit(tx.raw.clone()) {
                Ok(pending) => accepted.push(pending),
                Err(QueueFull { capacity }) => {
                    assert_eq!(capacity, 2);
                    busy += 1;
                }
            }
        }
        assert!(busy > 0, "a 2-slot queue fed 64 txs at once must push back");
        for pending in accepted {
            assert!(pending.wait().is_ok());
        }
        assert_eq!(pipeline.stats().busy, busy);
        // Drained: the pipeline takes work again.
        assert!(pipeline.submit(txs[0].raw.clone()).is_ok());
    }

    #[test]
    fn recent_cache_is_bounded_by_bytes() {
        let mut dedup = Dedup::new(100, 1_000);
        let mut mix = TxMix::new(6, 2, 1);
        let validator = Validator::default();
        for tx in mix.take(40) {
            let verdict = validator.validate(tx.raw.clone()).map(Arc::new);
            dedup.remember(keccak256(&tx.raw), verdict);
            assert!(dedup.bytes <= 1_000);
            assert_eq!(dedup.recent.len(), dedup.order.len());
        }
    }
}
