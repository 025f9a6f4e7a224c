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
//! only wires them. The `tidepool node` binary is built on exactly this API.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy_primitives::{Address, B256, Bytes};
use libp2p::{Multiaddr, PeerId, identity::Keypair};
use tokio::task::JoinHandle;

pub use crate::{builder::BuilderFeed, tx::Origin};
use crate::{
    ingest::{Ingest, IngestError},
    net::{NetConfig, NetStats, NetworkHandle},
    pool::{
        Added, BlockUpdate, ChainHead, DeadLetter, EventStream, Pool, PoolConfig, PoolContent, PoolHandle, PoolSizes,
        PooledInfo,
    },
    store::{self, Journal, RestoreReport, StoredTx},
    validate::{
        PipelineConfig, StateProvider, ValidationConfig, ValidationPipeline, Validator, pipeline::PipelineStats,
    },
};

/// What the embedded mempool is configured with. Every part has production defaults.
#[derive(Debug, Clone, Default)]
pub struct TidepoolConfig {
    pub validation: ValidationConfig,
    pub pipeline: PipelineConfig,
    pub pool: PoolConfig,
}

/// How often the journal is rewritten to hold only the local transactions still pooled.
const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// Why [`TidepoolBuilder::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory, snapshot or journal could not be read or written.
    #[error("data directory {path}: {source}")]
    Store { path: PathBuf, source: std::io::Error },
    /// The network could not start (transport, or a listen address that cannot be bound).
    #[error("network: {0}")]
    Network(String),
}

/// Configures and starts a [`Tidepool`]. See the crate docs for a complete example.
pub struct TidepoolBuilder {
    config: TidepoolConfig,
    state: Arc<dyn StateProvider>,
    head: ChainHead,
    network: Option<(Keypair, NetConfig)>,
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
    #[must_use]
    pub fn network(mut self, key: Keypair, config: NetConfig) -> Self {
        self.network = Some((key, config));
        self
    }

    /// Starts the validation workers (threads), restores from the data directory if set (the
    /// pool is complete before this returns), and starts the network if configured (a task on
    /// the current tokio runtime, listening before this returns).
    ///
    /// # Errors
    /// [`StartError::Store`] when the data directory cannot be used, [`StartError::Network`]
    /// when the network cannot start.
    ///
    /// # Panics
    /// When polled outside a tokio runtime with a network or a data directory configured (both
    /// spawn tasks).
    pub async fn start(self) -> Result<Tidepool, StartError> {
        let pipeline = Arc::new(ValidationPipeline::new(
            Validator::new(self.config.validation),
            Arc::clone(&self.state),
            self.config.pipeline,
        ));
        let pool = PoolHandle::new(Pool::new(self.config.pool, self.state, self.head));
        let ingest = Ingest::new(pipeline, pool.clone());
        let durable = match &self.data_dir {
            Some(dir) => Some(Durable::open(dir, &ingest).await?),
            None => None,
        };
        let network = match self.network {
            None => None,
            Some((key, config)) => {
                let wait = !config.listen.is_empty();
                let mut network = NetworkHandle::start(key, config, ingest.clone())
                    .map_err(|e| StartError::Network(e.to_string()))?;
                if wait {
                    network.wait_listening().await;
                }
                Some(Arc::new(network))
            }
        };
        let journal = durable.as_ref().map(|d| d.journal.clone());
        Ok(Tidepool {
            submitter: Submitter { ingest: ingest.clone(), network: network.clone(), journal: journal.clone() },
            chain: ChainUpdates { pool: pool.clone() },
            feed: BuilderFeed::new(pool.clone()),
            reader: PoolReader { ingest, network: network.clone(), journal: journal.clone() },
            network,
            durable,
        })
    }
}

/// The data directory in use: the journal, its compaction task, and what start restored.
#[derive(Debug)]
struct Durable {
    dir: PathBuf,
    journal: Journal,
    restored: RestoreReport,
    compaction: JoinHandle<()>,
}

impl Durable {
    async fn open(dir: &Path, ingest: &Ingest) -> Result<Self, StartError> {
        let store_error = |source| StartError::Store { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(store_error)?;
        let restored = store::restore(ingest, dir).await.map_err(store_error)?;
        if restored.snapshot.is_some() || restored.journal.is_some() {
            tracing::info!(restored = restored.restored(), outcomes = ?restored.outcomes, "restored the pool");
        }
        let journal = Journal::open(&dir.join(store::JOURNAL_FILE)).map_err(store_error)?;
        // The replayed journal may hold mined, replaced or refused records: start clean.
        journal.compact(local_txs(ingest.pool())).await.map_err(|e| store_error(std::io::Error::other(e)))?;
        let compaction = tokio::spawn(compact_periodically(journal.clone(), ingest.pool().clone()));
        Ok(Self { dir: dir.to_path_buf(), journal, restored, compaction })
    }
}

fn local_txs(pool: &PoolHandle) -> Vec<StoredTx> {
    store::stored(pool.read(|p| p.txs().cloned().collect::<Vec<_>>()), |origin| origin == Origin::Local)
}

async fn compact_periodically(journal: Journal, pool: PoolHandle) {
    let mut every = tokio::time::interval(COMPACT_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = journal.compact(local_txs(&pool)).await {
            tracing::error!(error = %e, "journal compaction failed; the old journal is kept");
        }
    }
}

/// A running mempool. Take the handles you need (each is cheap to clone and `Send + Sync`);
/// dropping the `Tidepool` and every handle stops it.
#[derive(Debug)]
pub struct Tidepool {
    submitter: Submitter,
    chain: ChainUpdates,
    feed: BuilderFeed,
    reader: PoolReader,
    network: Option<Arc<NetworkHandle>>,
    durable: Option<Durable>,
}

impl Tidepool {
    /// A builder over the embedder's state (`state` answers nonce and balance for accounts the
    /// pool has not seen yet) and the current chain head.
    pub fn builder(state: Arc<dyn StateProvider>, head: ChainHead) -> TidepoolBuilder {
        TidepoolBuilder { config: TidepoolConfig::default(), state, head, network: None, data_dir: None }
    }

    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    pub fn chain(&self) -> ChainUpdates {
        self.chain.clone()
    }

    pub fn builder_feed(&self) -> BuilderFeed {
        self.feed.clone()
    }

    pub fn reader(&self) -> PoolReader {
        self.reader.clone()
    }

    /// The gossip network, when started with one.
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
        let Some(durable) = self.durable else { return Ok(()) };
        durable.compaction.abort();
        let pool = self.reader.pool();
        let txs = store::stored(pool.read(|p| p.txs().cloned().collect::<Vec<_>>()), |_| true);
        store::write_atomically(&durable.dir.join(store::SNAPSHOT_FILE), &txs)?;
        tracing::info!(txs = txs.len(), "pool snapshot written");
        Ok(())
    }
}

/// Submits raw transactions. Validation runs on the worker threads; when their bounded queue is
/// full the answer is [`IngestError::Busy`] at once: backpressure, never an unbounded buffer.
#[derive(Debug, Clone)]
pub struct Submitter {
    ingest: Ingest,
    network: Option<Arc<NetworkHandle>>,
    journal: Option<Journal>,
}

impl Submitter {
    /// Validates `raw` (EIP-2718 bytes), adds it to the pool, journals it if it is
    /// [`Origin::Local`] and a data directory is set (on disk before this returns), and, unless
    /// `origin` is [`Origin::Private`], gossips it to the network's peers.
    ///
    /// # Errors
    /// [`IngestError::Busy`] when the validation queue is full, [`IngestError::Journal`] when it
    /// could not be made durable (it is pooled, but not acknowledged), otherwise the refusal.
    ///
    /// # Cancel safety
    /// Dropping the future after the bytes were queued lets validation finish without pooling.
    pub async fn submit(&self, raw: Bytes, origin: Origin) -> Result<Added, IngestError> {
        let added = self.ingest.submit(raw.clone(), origin).await?;
        if let Some(journal) = self.journal.as_ref().filter(|_| origin == Origin::Local) {
            journal.append(&StoredTx { origin, raw: raw.clone() }).await?;
        }
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
    pub fn on_block(&self, update: BlockUpdate) {
        self.pool.on_block(update);
    }

    /// Expires overdue parked and queued transactions between blocks.
    pub fn expire(&self) {
        self.pool.expire();
    }

    /// The head the pool prices against.
    pub fn head(&self) -> ChainHead {
        self.pool.read(Pool::head)
    }
}

/// Read access: lookups, subscriptions, the dead-letter view and counters.
#[derive(Debug, Clone)]
pub struct PoolReader {
    ingest: Ingest,
    network: Option<Arc<NetworkHandle>>,
    journal: Option<Journal>,
}

/// Counters across the stages, read at once (for metrics and dashboards).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Submissions by outcome: `"added"` or a refusal kind.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub pipeline: PipelineStats,
    pub sizes: PoolSizes,
    /// Removals since start by reason kind (mined included).
    pub removals: BTreeMap<&'static str, u64>,
    /// Dead letters recorded since start by reason kind.
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Dead letters held now.
    pub dead_letters_held: usize,
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
        self.pool().get(hash)
    }

    /// One account's pooled transactions in nonce order.
    pub fn account_txs(&self, sender: &Address) -> Vec<PooledInfo> {
        self.pool().account_txs(sender)
    }

    /// The next nonce the account can use, counting its pooled transactions.
    pub fn pending_nonce(&self, sender: &Address) -> u64 {
        self.pool().pending_nonce(sender)
    }

    pub fn sizes(&self) -> PoolSizes {
        self.pool().sizes()
    }

    /// Content by account and nonce, geth's `txpool_content` shape.
    pub fn content(&self, only: Option<&Address>) -> PoolContent {
        self.pool().content(only)
    }

    /// Every pool event from now on (bounded buffer: see [`EventStream::missed`]).
    pub fn subscribe(&self) -> EventStream {
        self.pool().subscribe()
    }

    /// Why this transaction left the pool without being mined, if still recorded.
    pub fn dead_letter(&self, hash: &B256) -> Option<DeadLetter> {
        self.pool().dead_letter(hash)
    }

    /// The sender's recorded dead letters, oldest first.
    pub fn dead_letters_from(&self, sender: &Address) -> Vec<DeadLetter> {
        self.pool().dead_letters_from(sender)
    }

    /// The network's identity and addresses, when it runs.
    pub fn network_identity(&self) -> Option<(PeerId, Vec<Multiaddr>)> {
        self.network.as_ref().map(|n| (n.peer_id(), n.listen_addrs()))
    }

    pub fn stats(&self) -> Stats {
        let pool = self.pool();
        let (dead_letters, dead_letters_held) = pool.dead_letter_counts();
        Stats {
            outcomes: self.ingest.outcomes(),
            pipeline: self.ingest.pipeline().stats(),
            sizes: pool.sizes(),
            removals: pool.removals(),
            dead_letters,
            dead_letters_held,
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
