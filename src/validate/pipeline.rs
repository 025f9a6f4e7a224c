//! The validation pipeline: worker threads behind one bounded queue, with duplicate suppression.
//!
//! A submission either gets a [`PendingVerdict`] or, when the queue is full, [`QueueFull`]
//! at once: that is the backpressure signal the network and RPC layers pass on (gossip ignores
//! the message, RPC answers "busy"). Nothing here grows without bound: the queue, the in-flight
//! set (at most queue + workers entries), the waiters per transaction and the recent-verdict
//! cache all have fixed capacities.
//!
//! Blob transactions in their network form go to their own workers behind their own small
//! queue: their KZG proofs cost a hundred milliseconds where a signature costs microseconds
//! (BENCHMARKS.md), so a flood of them (valid or not) fills only that queue, and a submission
//! that finds it full is refused before its megabyte is hashed. On Linux those threads run at
//! nice 19 ([`BLOB_WORKER_NICE`]): while the ordinary workers are busy, blob verification gets
//! what is left (measured: ordinary throughput at 0.93-0.97x during a bad-proof flood, with
//! about three blobs per second still verified, above mainnet's average blob rate); when they
//! are idle, it runs at full speed.
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
use crate::tx::{PooledTx, TxError, blob};

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
    /// Bytes of remembered transactions (a blob transaction's sidecar included). Default
    /// 16 MiB, so a flood of large transactions cannot pin more than that in the cache.
    pub recent_bytes: usize,
    /// Worker threads for blob transactions' network forms (KZG proofs), at a lower
    /// scheduling priority ([`BLOB_WORKER_NICE`]). Default 1.
    pub blob_workers: usize,
    /// Blob transactions waiting for a blob worker. Default 16: a 6-blob transaction's cell
    /// proofs take ~120 ms to verify, so a full queue is two seconds of work on an idle worker.
    pub blob_queue_capacity: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            queue_capacity: 4_096,
            recent_capacity: 16_384,
            recent_bytes: 16 << 20,
            blob_workers: 1,
            blob_queue_capacity: 16,
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
    /// Network forms of blob transactions whose KZG proofs verified, and that failed them.
    pub blob_proofs_verified: u64,
    pub blob_proofs_failed: u64,
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
    queues: Option<Queues>,
    workers: Vec<JoinHandle<()>>,
}

/// The ordinary queue and the blob queue, closed together on drop.
struct Queues {
    ordinary: Sender<Job>,
    blobs: Sender<Job>,
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
    blob_proofs_verified: AtomicU64,
    blob_proofs_failed: AtomicU64,
}

impl ValidationPipeline {
    /// Starts `config.workers` threads.
    ///
    /// # Panics
    /// When a worker count or queue capacity is zero, or a thread cannot be spawned.
    pub fn new(validator: Validator, config: PipelineConfig) -> Self {
        assert!(
            config.workers > 0
                && config.queue_capacity > 0
                && config.blob_workers > 0
                && config.blob_queue_capacity > 0,
            "pipeline needs workers and queues"
        );
        let (ordinary, jobs) = crossbeam_channel::bounded(config.queue_capacity);
        let (blobs, blob_jobs) = crossbeam_channel::bounded(config.blob_queue_capacity);
        let shared = Arc::new(Shared {
            validator,
            dedup: Mutex::new(Dedup::new(config.recent_capacity, config.recent_bytes)),
            submitted: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            joined_in_flight: AtomicU64::new(0),
            recent_hits: AtomicU64::new(0),
            validated: AtomicU64::new(0),
            blob_proofs_verified: AtomicU64::new(0),
            blob_proofs_failed: AtomicU64::new(0),
        });
        let spawn = |name: String, jobs: &Receiver<Job>, lower_priority: bool| {
            let shared = Arc::clone(&shared);
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    if lower_priority {
                        lower_thread_priority();
                    }
                    shared.work(&jobs);
                })
                .expect("spawn validation worker")
        };
        let workers = (0..config.workers)
            .map(|i| spawn(format!("tidepool-validate-{i}"), &jobs, false))
            .chain((0..config.blob_workers).map(|i| spawn(format!("tidepool-blobs-{i}"), &blob_jobs, true)))
            .collect();
        Self { shared, queues: Some(Queues { ordinary, blobs }), workers }
    }

    pub fn validator(&self) -> &Validator {
        &self.shared.validator
    }

    /// Submits raw transaction bytes for validation.
    ///
    /// # Errors
    /// [`QueueFull`] when the queue is full; nothing was queued.
    pub fn submit(&self, raw: Bytes) -> Result<PendingVerdict, QueueFull> {
        if let Err(oversized) = self.shared.validator.check_size(&raw) {
            // Refused before hashing: an oversized blob costs us no more than its length check.
            self.shared.submitted.fetch_add(1, Ordering::Relaxed);
            return Ok(ready(Err(oversized)));
        }
        let queues = self.queues.as_ref().expect("queues open while the pipeline lives");
        if queues.blobs.is_full() && blob::is_network_form(&raw) {
            // Busy before hashing ~1 MB: a flood of blob transactions against a full blob queue
            // costs us a header check each, not a keccak of its blobs.
            self.shared.submitted.fetch_add(1, Ordering::Relaxed);
            self.shared.busy.fetch_add(1, Ordering::Relaxed);
            return Err(QueueFull { capacity: queues.blobs.capacity().unwrap_or(usize::MAX) });
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
        if let Err(oversized) = shared.validator.check_size(&raw) {
            return Ok(ready(Err(oversized)));
        }
        let queues = self.queues.as_ref().expect("queues open while the pipeline lives");
        let queue = if blob::is_network_form(&raw) { &queues.blobs } else { &queues.ordinary };
        let capacity = queue.capacity().unwrap_or(usize::MAX);
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
                    return Err(QueueFull { capacity });
                }
                waiters.push(sender);
                shared.joined_in_flight.fetch_add(1, Ordering::Relaxed);
                return Ok(PendingVerdict(PendingInner::Waiting(receiver)));
            }
            // Queue under the dedup lock, so a worker cannot finish this hash before it is
            // registered as in flight. try_send never blocks.
            match queue.try_send(Job { hash, raw }) {
                Ok(()) => {
                    dedup.in_flight.insert(hash, vec![sender]);
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    drop(dedup);
                    shared.busy.fetch_add(1, Ordering::Relaxed);
                    return Err(QueueFull { capacity });
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
            queue_depth: self.queues.as_ref().map_or(0, |q| (q.ordinary.len() + q.blobs.len()) as u64),
            blob_proofs_verified: s.blob_proofs_verified.load(Ordering::Relaxed),
            blob_proofs_failed: s.blob_proofs_failed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ValidationPipeline {
    fn drop(&mut self) {
        self.queues = None; // workers drain what is queued, then see the channel closed
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// The blob workers' nice value: the lowest priority. Nice 10 and 15 cost ordinary validation
/// 10-25% during a bad-proof flood on two cores (KZG's FFTs also take cache); at 19 it loses
/// under 10%, and blob verification still advances at about three blobs per second while the
/// ordinary workers are saturated (BENCHMARKS.md).
pub const BLOB_WORKER_NICE: i32 = 19;

/// Lowers the calling thread to [`BLOB_WORKER_NICE`] where the OS allows it (Linux keeps a nice
/// value per thread). Failing to is harmless: the blob queue's bound still holds.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread; no memory is passed.
    unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, BLOB_WORKER_NICE);
    }
}

fn ready(verdict: Verdict) -> PendingVerdict {
    PendingVerdict(PendingInner::Ready(Some(verdict)))
}

impl Shared {
    fn work(&self, jobs: &Receiver<Job>) {
        while let Ok(Job { hash, raw }) = jobs.recv() {
            let network_form = blob::is_network_form(&raw);
            let verdict = self.validator.validate(raw).map(Arc::new);
            self.validated.fetch_add(1, Ordering::Relaxed);
            match &verdict {
                Ok(_) if network_form => self.blob_proofs_verified.fetch_add(1, Ordering::Relaxed),
                Err(TxError::BlobProofInvalid) => self.blob_proofs_failed.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
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
        // A refusal by the minimum tip holds only until the minimum is lowered.
        let policy = matches!(verdict, Err(TxError::TipBelowMinimum { .. }));
        if self.max_entries == 0 || policy || self.recent.contains_key(&hash) {
            return;
        }
        let size = verdict.as_ref().map_or(0, |tx| tx.size() + tx.blob_data_size());
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
        let pipeline = pipeline(PipelineConfig {
            workers: 1,
            queue_capacity: 2,
            recent_capacity: 0,
            recent_bytes: 0,
            ..Default::default()
        });
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
