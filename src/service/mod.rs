//! The front door for embedders: one builder, and small handles split by who uses them.
//!
//! Owns: assembling the stages (validation pipeline, pool, optionally the libp2p network) on
//! the caller's tokio runtime, and the handles an embedder holds:
//!
//! | handle | for | does |
//! |---|---|---|
//! | [`Submitter`] | RPC servers, wallets, the embedder's own network | submit raw transactions with an [`Origin`] |
//! | [`ChainUpdates`] | the execution client | feed blocks and reorgs |
//! | [`BuilderFeed`] | block builders | pull best-first batches, report failures |
//! | [`PoolReader`] | RPC, dashboards, indexers | look up, subscribe, dead letters, counters |
//!
//! Does not: make decisions of its own. Every rule lives in the stage that owns it; this module
//! only wires them, and owns durability's wiring (`durable.rs`: restore at start, journaling
//! local submissions, compaction, the shutdown snapshot). The `tidepool node` binary is built on
//! exactly this API.

mod durable;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use alloy_primitives::{Address, B256, Bytes};

#[cfg(feature = "net")]
use crate::net::{NetConfig, NetStats, NetworkHandle, TxSource};
pub use crate::{builder::BuilderFeed, tx::Origin};
use crate::{
    ingest::{Ingest, IngestError},
    pool::{
        Added, BlobStore, DeadLetter, EventStream, Pool, PoolConfig, PoolContent, PoolError, PoolHandle, PoolSizes,
        PooledInfo,
    },
    state::{AccountState, BlockUpdate, ChainHead, LoaderStats, StateConfig, StateError, StateLoader, StateProvider},
    store::{Journal, JournalError, RestoreReport, StoredTx},
    tx::{PooledTx, blob::BlobSidecar},
    validate::{PipelineConfig, ValidationConfig, ValidationPipeline, Validator, pipeline::PipelineStats},
};
use durable::Durable;

/// What the embedded mempool is configured with. Every part has production defaults.
#[derive(Debug, Clone, Default)]
pub struct TidepoolConfig {
    pub validation: ValidationConfig,
    pub pipeline: PipelineConfig,
    pub state: StateConfig,
    pub pool: PoolConfig,
    pub store: StoreConfig,
}

/// How the data directory is kept (with [`TidepoolBuilder::data_dir`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// How often the journal is rewritten to hold only the local transactions still pooled
    /// (and parked records retried). Default 60 s.
    #[serde(with = "crate::duration_secs")]
    pub compact_every: std::time::Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { compact_every: std::time::Duration::from_secs(60) }
    }
}

/// Why a [`Submitter::submit`] was not acknowledged. `kind()` names are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Refused, or busy: see the ingest error's kind.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Pooled, but the journal could not make it durable: not acknowledged.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl SubmitError {
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Ingest(e) => e.kind(),
            Self::Journal(_) => "journal_failed",
        }
    }

    /// Backpressure (try again later), not a verdict on the transaction.
    pub const fn is_busy(&self) -> bool {
        matches!(self, Self::Ingest(e) if e.is_busy())
    }
}

/// Why [`TidepoolBuilder::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory, snapshot or journal could not be read or written.
    #[error("data directory {path}: {source}")]
    Store { path: PathBuf, source: std::io::Error },
    /// The network could not start (transport, or a listen address that cannot be bound).
    #[cfg(feature = "net")]
    #[error("network: {0}")]
    Network(String),
}

/// How the network gets its swarm: built from an identity, or handed over ready.
#[cfg(feature = "net")]
#[allow(clippy::large_enum_variant)] // one value per start, moved once: boxing buys nothing
enum Transport {
    Key(libp2p::identity::Keypair),
    Swarm(libp2p::Swarm<crate::net::protocol::Behaviour>),
}

/// Configures and starts a [`Tidepool`]. See the crate docs for a complete example.
pub struct TidepoolBuilder {
    config: TidepoolConfig,
    state: Arc<dyn StateProvider>,
    head: ChainHead,
    #[cfg(feature = "net")]
    network: Option<(Transport, NetConfig)>,
    pipeline: Option<Arc<ValidationPipeline>>,
    data_dir: Option<PathBuf>,
}

impl TidepoolBuilder {
    /// Keeps local transactions durable in `dir` (see [`crate::store`]): restores a snapshot
    /// and replays the journal at start, journals every `Origin::Local` submission before
    /// acknowledging it, and snapshots the pool on [`Tidepool::shutdown`].
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    #[must_use]
    pub fn config(mut self, config: TidepoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Also runs Tidepool's libp2p gossip network with this identity (see [`crate::net`]).
    #[cfg(feature = "net")]
    #[must_use]
    pub fn network(mut self, key: libp2p::identity::Keypair, config: NetConfig) -> Self {
        self.network = Some((Transport::Key(key), config));
        self
    }

    /// As [`network`](Self::network), on a swarm built elsewhere with Tidepool's behaviour
    /// (another transport, such as the simulator's shaped in-memory links; see
    /// [`NetworkHandle::start_on`]).
    #[cfg(feature = "net")]
    #[must_use]
    pub fn network_on(mut self, swarm: libp2p::Swarm<crate::net::protocol::Behaviour>, config: NetConfig) -> Self {
        self.network = Some((Transport::Swarm(swarm), config));
        self
    }

    /// Validates on this pipeline instead of starting one (its validator's config is used;
    /// `config.validation` and `config.pipeline` are then ignored). For hosts of many
    /// mempools in one process, such as the simulator's swarm engine, whose nodes share one
    /// set of worker threads as they share the machine's cores.
    #[must_use]
    pub fn shared_pipeline(mut self, pipeline: Arc<ValidationPipeline>) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Starts the validation workers (threads), restores from the data directory if set (the
    /// pool is complete before this returns), and starts the network if configured (a task on
    /// the current tokio runtime, listening before this returns).
    ///
    /// # Errors
    /// [`StartError::Store`] when the data directory cannot be used, `StartError::Network`
    /// when the network cannot start.
    ///
    /// # Panics
    /// Outside a tokio runtime (the state loader, and with them the network and the data
    /// directory, run as tasks).
    pub async fn start(self) -> Result<Tidepool, StartError> {
        let pipeline = self.pipeline.unwrap_or_else(|| {
            Arc::new(ValidationPipeline::new(Validator::new(self.config.validation), self.config.pipeline))
        });
        let lifetime = self.config.pool.lifetime;
        let blobs = match &self.data_dir {
            Some(dir) => BlobStore::open(dir).map_err(|source| StartError::Store { path: dir.clone(), source })?,
            None => BlobStore::in_memory(),
        };
        let max_blobs = pipeline.validator().config().fork.max_blobs_per_block();
        let min_tip = pipeline.validator().min_tip().clone();
        let pool = PoolHandle::with_blob_store(Pool::new(self.config.pool, self.head).with_min_tip(min_tip), blobs);
        let ingest = Ingest::new(pipeline, StateLoader::new(self.state, self.config.state), pool.clone());
        let durable = match &self.data_dir {
            Some(dir) => Some(Durable::open(dir, &ingest, lifetime, self.config.store.compact_every).await?),
            None => None,
        };
        #[cfg(feature = "net")]
        let network = match self.network {
            None => None,
            Some((transport, config)) => {
                let wait = !config.listen.is_empty();
                let source = Arc::new(pool.clone());
                let started = match transport {
                    Transport::Key(key) => NetworkHandle::start(key, config, ingest.clone(), source),
                    Transport::Swarm(swarm) => NetworkHandle::start_on(swarm, config, ingest.clone(), source),
                };
                let mut network = started.map_err(|e| StartError::Network(e.to_string()))?;
                if wait {
                    network.wait_listening().await;
                }
                if durable.is_some() {
                    // Restored local transactions were acknowledged to users who expect them to
                    // spread: publish them again (a full local queue counts what it drops).
                    let local =
                        pool.read(|p| p.txs().filter(|tx| tx.origin() == Origin::Local).cloned().collect::<Vec<_>>());
                    for tx in local {
                        if let Some(raw) = pool.wire_form(&tx) {
                            network.publish_local(tx.hash(), raw);
                        }
                    }
                }
                Some(Arc::new(network))
            }
        };
        let journal = durable.as_ref().map(|d| d.journal.clone());
        let submitter = Submitter {
            ingest: ingest.clone(),
            #[cfg(feature = "net")]
            network: network.clone(),
            journal: journal.clone(),
        };
        Ok(Tidepool {
            submitter,
            admin: PoolAdmin { pool: pool.clone() },
            chain: ChainUpdates { pool: pool.clone() },
            feed: BuilderFeed::new(pool, max_blobs),
            reader: PoolReader {
                ingest,
                #[cfg(feature = "net")]
                network: network.clone(),
                journal,
            },
            #[cfg(feature = "net")]
            network,
            durable,
        })
    }
}

/// A running mempool. Take the handles you need (each is cheap to clone and `Send + Sync`);
/// dropping the `Tidepool` and every handle stops it.
#[derive(Debug)]
pub struct Tidepool {
    submitter: Submitter,
    admin: PoolAdmin,
    chain: ChainUpdates,
    feed: BuilderFeed,
    reader: PoolReader,
    #[cfg(feature = "net")]
    network: Option<Arc<NetworkHandle>>,
    durable: Option<Durable>,
}

impl Tidepool {
    /// A builder over the embedder's state (`state` answers nonce and balance for accounts the
    /// pool has not seen yet) and the current chain head.
    pub fn builder(state: Arc<dyn StateProvider>, head: ChainHead) -> TidepoolBuilder {
        TidepoolBuilder {
            config: TidepoolConfig::default(),
            state,
            head,
            #[cfg(feature = "net")]
            network: None,
            pipeline: None,
            data_dir: None,
        }
    }

    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    pub fn chain(&self) -> ChainUpdates {
        self.chain.clone()
    }

    pub fn admin(&self) -> PoolAdmin {
        self.admin.clone()
    }

    pub fn builder_feed(&self) -> BuilderFeed {
        self.feed.clone()
    }

    pub fn reader(&self) -> PoolReader {
        self.reader.clone()
    }

    /// The gossip network, when started with one.
    #[cfg(feature = "net")]
    pub fn network(&self) -> Option<&NetworkHandle> {
        self.network.as_deref()
    }

    /// What start restored from the data directory (with one configured).
    pub fn restored(&self) -> Option<&RestoreReport> {
        self.durable.as_ref().map(|d| &d.restored)
    }

    /// The journal of local transactions (with a data directory).
    pub fn journal(&self) -> Option<&Journal> {
        self.durable.as_ref().map(|d| &d.journal)
    }

    /// Stops cleanly: with a data directory, writes the whole pool to the snapshot (restored,
    /// re-validated, at the next start). Handles still held elsewhere keep working on the pool
    /// but are no longer snapshotted.
    ///
    /// # Errors
    /// When the snapshot cannot be written (the journal still holds the local transactions).
    pub fn shutdown(self) -> std::io::Result<()> {
        match self.durable {
            Some(durable) => durable.snapshot(self.reader.pool()),
            None => Ok(()),
        }
    }
}

/// Operator actions on a running pool (the node's admin JSON-RPC, or an embedder's control
/// plane).
#[derive(Debug, Clone)]
pub struct PoolAdmin {
    pool: PoolHandle,
}

impl PoolAdmin {
    /// Changes the minimum tip (wei per gas) for validation and the pool at once; when it rises,
    /// the pooled transactions below it leave with `Invalidated { TipBelowMinimum }` (see
    /// [`crate::tx::MinTip`] for who owns the rule). Returns how many left.
    pub fn set_min_tip(&self, wei: u128) -> usize {
        self.pool.set_min_tip(wei)
    }

    /// The minimum tip in force.
    pub fn min_tip(&self) -> u128 {
        self.pool.read(Pool::min_tip)
    }
}

/// Submits raw transactions. Validation runs on the worker threads; when their bounded queue is
/// full the answer is [`IngestError::Busy`] at once: backpressure, never an unbounded buffer.
#[derive(Debug, Clone)]
pub struct Submitter {
    ingest: Ingest,
    #[cfg(feature = "net")]
    network: Option<Arc<NetworkHandle>>,
    journal: Option<Journal>,
}

impl Submitter {
    /// Validates `raw` (EIP-2718 bytes), adds it to the pool, journals it if it is
    /// [`Origin::Local`] and a data directory is set (on disk before this returns), and, unless
    /// `origin` is [`Origin::Private`], gossips it to the network's peers.
    ///
    /// # Errors
    /// [`IngestError::Busy`] when the validation queue is full, [`SubmitError::Journal`] when it
    /// could not be made durable (it is pooled, but not acknowledged), otherwise the refusal.
    ///
    /// # Cancel safety
    /// Dropping the future after the bytes were queued lets validation finish without pooling.
    ///
    /// A local submission of a transaction already pooled from a peer is still answered
    /// `already_known` (what wallets expect), but the pool's copy becomes local and is journaled
    /// first: what the user submitted is durable either way.
    pub async fn submit(&self, raw: Bytes, origin: Origin) -> Result<Added, SubmitError> {
        let added = match self.ingest.submit(raw.clone(), origin).await {
            Ok(added) => added,
            Err(IngestError::Pool(PoolError::AlreadyKnown(hash))) if origin == Origin::Local => {
                if self.ingest.pool().make_local(&hash)
                    && let Some(journal) = &self.journal
                {
                    journal.append(&StoredTx { origin, raw }).await?;
                }
                return Err(IngestError::Pool(PoolError::AlreadyKnown(hash)).into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(journal) = self.journal.as_ref().filter(|_| origin == Origin::Local) {
            journal.append(&StoredTx { origin, raw: raw.clone() }).await?;
        }
        #[cfg(feature = "net")]
        if let Some(network) = self.network.as_ref().filter(|_| origin.is_shared()) {
            network.publish_local(added.hash, raw);
        }
        Ok(added)
    }
}

/// Tells the pool about the chain: new blocks, and reorgs (a [`BlockUpdate`] whose `reinject`
/// holds the dropped blocks' transactions). Call it for every block, in order.
#[derive(Debug, Clone)]
pub struct ChainUpdates {
    pool: PoolHandle,
}

impl ChainUpdates {
    /// Applies a block: mined transactions leave, changed accounts are re-evaluated, quarantines
    /// of changed senders are released, prices move to the new base fees, the overdue expire.
    /// Update your [`StateProvider`] first: a submission reads its sender there, and the pool
    /// settles it against this update only if the read came before.
    ///
    /// Returns the reorged transactions (`reinject`) that were not put back, with the reason.
    pub fn on_block(&self, update: BlockUpdate) -> Vec<(B256, crate::pool::PoolError)> {
        self.pool.on_block(update)
    }

    /// Expires overdue parked and queued transactions between blocks.
    pub fn expire(&self) {
        self.pool.expire();
    }

    /// The head the pool prices against.
    pub fn head(&self) -> ChainHead {
        self.pool.read(Pool::head)
    }

    /// Every account the pool holds transactions of, with the state the pool holds for it: the
    /// accounts a state source must keep current (a follower refreshes them in turn; balances
    /// also move inside contract calls that no header shows).
    pub fn senders(&self) -> Vec<(Address, AccountState)> {
        self.pool.read(|pool| pool.senders().collect())
    }

    /// The pooled transactions among `hashes`, by position (`None` where not pooled): a
    /// follower takes a new block's transactions from here rather than fetch them again.
    pub fn pooled(&self, hashes: impl IntoIterator<Item = B256>) -> Vec<Option<PooledTx>> {
        self.pool.read(|pool| hashes.into_iter().map(|hash| pool.get(&hash).map(|info| info.tx)).collect())
    }
}

/// Read access: lookups, subscriptions, the dead-letter view and counters.
#[derive(Debug, Clone)]
pub struct PoolReader {
    ingest: Ingest,
    #[cfg(feature = "net")]
    network: Option<Arc<NetworkHandle>>,
    journal: Option<Journal>,
}

/// Counters across the stages, read at once (for metrics and dashboards).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Submissions by outcome: `"added"` or a refusal kind.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub pipeline: PipelineStats,
    /// Sender-state loads (batches, senders, failures, busy refusals).
    pub state: LoaderStats,
    pub sizes: PoolSizes,
    /// Removals since start by reason kind (mined included).
    pub removals: BTreeMap<&'static str, u64>,
    /// Dead letters recorded since start by reason kind.
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Dead letters held now.
    pub dead_letters_held: usize,
    #[cfg(feature = "net")]
    pub network: Option<NetStats>,
    /// Journal records appended and syncs made (their ratio is the group-commit factor).
    pub journal: Option<JournalCounts>,
}

/// A snapshot of the journal's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalCounts {
    pub appended: u64,
    pub syncs: u64,
    pub compactions: u64,
}

impl PoolReader {
    pub fn get(&self, hash: &B256) -> Option<PooledInfo> {
        self.pool().read(|p| p.get(hash))
    }

    /// One account's pooled transactions in nonce order.
    pub fn account_txs(&self, sender: &Address) -> Vec<PooledInfo> {
        self.pool().read(|p| p.account_txs(sender))
    }

    /// The next nonce the account can use: past its contiguous pooled transactions, or its
    /// state nonce when the pool holds none (read, and loaded if need be, through the state
    /// loader, outside the pool's lock).
    ///
    /// # Errors
    /// When the account's state is needed and cannot be had.
    pub async fn pending_nonce(&self, sender: &Address) -> Result<u64, StateError> {
        match self.pool().read(|p| p.pending_nonce(sender)) {
            Some(nonce) => Ok(nonce),
            None => Ok(self.ingest.state().account(*sender).await?.nonce),
        }
    }

    pub fn sizes(&self) -> PoolSizes {
        self.pool().read(Pool::sizes)
    }

    /// Content by account and nonce, geth's `txpool_content` shape.
    pub fn content(&self, only: Option<&Address>) -> PoolContent {
        self.pool().read(|p| p.content(only))
    }

    /// Every pool event from now on (bounded buffer: see [`EventStream::missed`]).
    pub fn subscribe(&self) -> EventStream {
        self.pool().subscribe()
    }

    /// The pooled sidecar holding the blob with this versioned hash, and the blob's position in
    /// it (what `engine_getBlobs` answers from).
    pub fn blob(&self, versioned_hash: &B256) -> Option<(Arc<BlobSidecar>, usize)> {
        self.pool().blobs().by_versioned_hash(versioned_hash)
    }

    /// Why this transaction left the pool without being mined, if still recorded.
    pub fn dead_letter(&self, hash: &B256) -> Option<DeadLetter> {
        self.pool().dead_letter(hash)
    }

    /// The sender's recorded dead letters, oldest first.
    pub fn dead_letters_from(&self, sender: &Address) -> Vec<DeadLetter> {
        self.pool().dead_letters_from(sender)
    }

    pub fn stats(&self) -> Stats {
        let pool = self.pool();
        let (dead_letters, dead_letters_held) = pool.dead_letter_counts();
        Stats {
            outcomes: self.ingest.outcomes(),
            pipeline: self.ingest.pipeline().stats(),
            state: self.ingest.state().stats(),
            sizes: pool.read(Pool::sizes),
            removals: pool.read(Pool::removals),
            dead_letters,
            dead_letters_held,
            #[cfg(feature = "net")]
            network: self.network.as_ref().map(|n| n.stats()),
            journal: self.journal.as_ref().map(|j| {
                let stats = j.stats();
                let read = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
                JournalCounts {
                    appended: read(&stats.appended),
                    syncs: read(&stats.syncs),
                    compactions: read(&stats.compactions),
                }
            }),
        }
    }

    const fn pool(&self) -> &PoolHandle {
        self.ingest.pool()
    }
}

/// The network serves fetches from the pool, shareable transactions only.
#[cfg(feature = "net")]
impl TxSource for PoolHandle {
    fn shareable(&self, hash: &B256) -> Option<Bytes> {
        let info = self.read(|p| p.get(hash)).filter(|info| info.tx.origin().is_shared())?;
        self.wire_form(&info.tx)
    }
}
