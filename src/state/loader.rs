//! [`StateLoader`]: senders' state at hand at once, or loaded in batches with a bounded wait.
//!
//! Senders whose state the provider does not hold queue here (a bounded channel: a full one
//! answers `busy` at once); one task drains up to [`StateConfig::batch`] of them at a time into
//! a single [`StateProvider::load`] call, so a burst of new senders costs a few round trips, not
//! one each. A waiter gets its answer when its batch finishes, or `state_unavailable` when the
//! load fails or [`StateConfig::timeout`] passes. No thread blocks: waiting is an `.await`.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{AccountState, StateError, StateProvider};

/// How senders' state is loaded when the provider does not hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Senders that may wait for their state at once. Default 4,096 (the validation queue's
    /// size: a full burst of new senders can wait, more is backpressure).
    pub queue: usize,
    /// Most senders loaded in one provider call. Default 100: one batched JSON-RPC request of
    /// 100 accounts costs about a millisecond on loopback, a call per account ~0.25 ms each.
    pub batch: usize,
    /// Longest a submission waits for its sender's state. Default 2 s.
    #[serde(with = "crate::duration_secs")]
    pub timeout: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { queue: 4_096, batch: 100, timeout: Duration::from_secs(2) }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoaderStats {
    /// Provider `load` calls made.
    pub batches: u64,
    /// Senders asked for in them.
    pub loaded: u64,
    /// Lookups answered `state_unavailable` (failed or timed out loads).
    pub unavailable: u64,
    /// Lookups answered `busy` (queue full).
    pub busy: u64,
}

type Waiter = (Address, oneshot::Sender<Result<AccountState, StateError>>);

/// Answers senders' state for ingest, loading what the provider does not hold. Cheap to clone.
#[derive(Clone)]
pub struct StateLoader {
    provider: Arc<dyn StateProvider>,
    queue: mpsc::Sender<Waiter>,
    config: StateConfig,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    loaded: AtomicU64,
    unavailable: AtomicU64,
    busy: AtomicU64,
}

impl std::fmt::Debug for StateLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateLoader").field("config", &self.config).finish_non_exhaustive()
    }
}

impl StateLoader {
    /// Starts the loading task on the current tokio runtime; it ends when every clone is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime, or when `queue` or `batch` is zero.
    pub fn new(provider: Arc<dyn StateProvider>, config: StateConfig) -> Self {
        assert!(config.queue > 0 && config.batch > 0, "the state loader needs a queue and a batch size");
        let (queue, waiting) = mpsc::channel(config.queue);
        let counters = Arc::new(Counters::default());
        tokio::spawn(load_batches(Arc::clone(&provider), waiting, config.batch, Arc::clone(&counters)));
        Self { provider, queue, config, counters }
    }

    /// The account's state: at once when at hand, otherwise after its batch loads.
    ///
    /// # Errors
    /// [`StateError::Busy`] when the wait queue is full; [`StateError::Unavailable`] when the
    /// load fails or does not finish within the configured timeout.
    pub async fn account(&self, address: Address) -> Result<AccountState, StateError> {
        if let Some(state) = self.provider.account(&address) {
            return Ok(state);
        }
        let (reply, answer) = oneshot::channel();
        if self.queue.try_send((address, reply)).is_err() {
            self.counters.busy.fetch_add(1, Ordering::Relaxed);
            return Err(StateError::Busy { capacity: self.config.queue });
        }
        let outcome = match tokio::time::timeout(self.config.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(StateError::Unavailable("the state loader stopped".into())),
            Err(_) => Err(StateError::Unavailable(format!("no answer within {:?}", self.config.timeout))),
        };
        if outcome.is_err() {
            self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// The account's state if the provider holds it now (no loading).
    pub fn at_hand(&self, address: &Address) -> Option<AccountState> {
        self.provider.account(address)
    }

    pub fn stats(&self) -> LoaderStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        LoaderStats {
            batches: read(&c.batches),
            loaded: read(&c.loaded),
            unavailable: read(&c.unavailable),
            busy: read(&c.busy),
        }
    }
}

async fn load_batches(
    provider: Arc<dyn StateProvider>,
    mut waiting: mpsc::Receiver<Waiter>,
    batch: usize,
    counters: Arc<Counters>,
) {
    let mut waiters = Vec::with_capacity(batch);
    while waiting.recv_many(&mut waiters, batch).await > 0 {
        // A sender may have been loaded by an earlier batch while it waited in the queue.
        let missing: BTreeSet<Address> =
            waiters.iter().map(|(address, _)| *address).filter(|a| provider.account(a).is_none()).collect();
        let loaded = if missing.is_empty() {
            Ok(())
        } else {
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.loaded.fetch_add(missing.len() as u64, Ordering::Relaxed);
            Arc::clone(&provider).load(missing.into_iter().collect()).await
        };
        for (address, reply) in waiters.drain(..) {
            let answer = match &loaded {
                Ok(()) => provider
                    .account(&address)
                    .ok_or_else(|| StateError::Unavailable(format!("the provider did not load {address}"))),
                Err(e) => Err(e.clone()),
            };
            // A waiter that timed out or was cancelled is gone: nothing to tell.
            let _ = reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use alloy_primitives::U256;

    use super::*;
    use crate::state::LoadFuture;

    /// Holds nothing until loaded; records each batch; fails loads of `poisoned`.
    #[derive(Default)]
    struct Remote {
        loaded: dashmap::DashMap<Address, AccountState>,
        batches: Mutex<Vec<usize>>,
        delay: Duration,
        poisoned: Option<Address>,
    }

    impl StateProvider for Remote {
        fn account(&self, address: &Address) -> Option<AccountState> {
            self.loaded.get(address).map(|a| *a)
        }

        fn load(self: Arc<Self>, addresses: Vec<Address>) -> LoadFuture {
            Box::pin(async move {
                tokio::time::sleep(self.delay).await;
                self.batches.lock().unwrap().push(addresses.len());
                if addresses.iter().any(|a| Some(*a) == self.poisoned) {
                    return Err(StateError::Unavailable("upstream refused".into()));
                }
                for (i, address) in addresses.into_iter().enumerate() {
                    self.loaded.insert(address, AccountState::new(i as u64, U256::from(1)));
                }
                Ok(())
            })
        }
    }

    fn address(i: u8) -> Address {
        Address::repeat_byte(i)
    }

    #[tokio::test]
    async fn concurrent_misses_load_in_few_batches_and_hits_never_queue() {
        let remote = Arc::new(Remote { delay: Duration::from_millis(20), ..Remote::default() });
        let loader = StateLoader::new(remote.clone(), StateConfig { batch: 10, ..StateConfig::default() });
        let lookups = (0..25).map(|i| loader.account(address(i)));
        let answers = futures::future::join_all(lookups).await;
        assert!(answers.iter().all(Result::is_ok));
        let batches = remote.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 25, "each sender loaded once: {batches:?}");
        assert!(batches.len() <= 4 && batches.iter().all(|&b| b <= 10), "batched: {batches:?}");
        // Now at hand: answered without a load.
        loader.account(address(3)).await.unwrap();
        assert_eq!(remote.batches.lock().unwrap().len(), batches.len());
        assert_eq!(loader.stats().loaded, 25);
    }

    #[tokio::test]
    async fn failure_timeout_and_a_full_queue_are_typed_errors() {
        let failing = Arc::new(Remote { poisoned: Some(address(1)), ..Remote::default() });
        let loader = StateLoader::new(failing, StateConfig::default());
        assert!(matches!(loader.account(address(1)).await, Err(StateError::Unavailable(_))));

        let slow = Arc::new(Remote { delay: Duration::from_secs(60), ..Remote::default() });
        let config = StateConfig { queue: 1, batch: 1, timeout: Duration::from_millis(50) };
        let loader = StateLoader::new(slow, config);
        let first = loader.account(address(1)); // taken by the task, stuck in a 60 s load
        let (first, _) = tokio::join!(first, async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let second = loader.account(address(2)); // waits in the queue's only place
            let third = loader.account(address(3));
            let (_, third) = tokio::join!(second, third);
            assert_eq!(third, Err(StateError::Busy { capacity: 1 }));
        });
        assert!(matches!(first, Err(StateError::Unavailable(_))), "timed out: {first:?}");
        assert_eq!(loader.stats().busy, 1);
    }
}
