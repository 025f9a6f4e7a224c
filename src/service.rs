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

use std::{collections::BTreeMap, sync::Arc};

use alloy_primitives::{Address, B256, Bytes};
use libp2p::{Multiaddr, PeerId, identity::Keypair};

pub use crate::{builder::BuilderFeed, tx::Origin};
use crate::{
    ingest::{Ingest, IngestError},
    net::{NetConfig, NetStats, NetworkHandle},
    pool::{
        Added, BlockUpdate, ChainHead, DeadLetter, EventStream, Pool, PoolConfig, PoolContent, PoolHandle, PoolSizes,
        PooledInfo,
    },
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

/// Why [`TidepoolBuilder::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
}

impl TidepoolBuilder {
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

    /// Starts the validation workers (threads) and, if configured, the network (a task on the
    /// current tokio runtime, listening before this returns).
    ///
    /// # Errors
    /// [`StartError::Network`] when the network cannot start.
    ///
    /// # Panics
    /// With a network configured, when called outside a tokio runtime.
    pub async fn start(self) -> Result<Tidepool, StartError> {
        let pipeline = Arc::new(ValidationPipeline::new(
            Validator::new(self.config.validation),
            Arc::clone(&self.state),
            self.config.pipeline,
        ));
        let pool = PoolHandle::new(Pool::new(self.config.pool, self.state, self.head));
        let ingest = Ingest::new(pipeline, pool.clone());
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
        Ok(Tidepool {
            submitter: Submitter { ingest: ingest.clone(), network: network.clone() },
            chain: ChainUpdates { pool: pool.clone() },
            feed: BuilderFeed::new(pool.clone()),
            reader: PoolReader { ingest, network: network.clone() },
            network,
        })
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
}

impl Tidepool {
    /// A builder over the embedder's state (`state` answers nonce and balance for accounts the
    /// pool has not seen yet) and the current chain head.
    pub fn builder(state: Arc<dyn StateProvider>, head: ChainHead) -> TidepoolBuilder {
        TidepoolBuilder { config: TidepoolConfig::default(), state, head, network: None }
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
}

/// Submits raw transactions. Validation runs on the worker threads; when their bounded queue is
/// full the answer is [`IngestError::Busy`] at once: backpressure, never an unbounded buffer.
#[derive(Debug, Clone)]
pub struct Submitter {
    ingest: Ingest,
    network: Option<Arc<NetworkHandle>>,
}

impl Submitter {
    /// Validates `raw` (EIP-2718 bytes), adds it to the pool and, unless `origin` is
    /// [`Origin::Private`], gossips it to the network's peers.
    ///
    /// # Errors
    /// [`IngestError::Busy`] when the validation queue is full, otherwise the typed refusal.
    ///
    /// # Cancel safety
    /// Dropping the future after the bytes were queued lets validation finish without pooling.
    pub async fn submit(&self, raw: Bytes, origin: Origin) -> Result<Added, IngestError> {
        let added = self.ingest.submit(raw.clone(), origin).await?;
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
        }
    }

    const fn pool(&self) -> &PoolHandle {
        self.ingest.pool()
    }
}
