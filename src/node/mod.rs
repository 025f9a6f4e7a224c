//! The node: everything wired together around an embedded dev chain, or beside a followed
//! execution node (`follow`).
//!
//! Owns: start-up and shut-down order, the dev chain and its block producer (or the follower
//! and the forwarding of local transactions), the JSON-RPC and metrics servers, and the data
//! directory (node key, journal, snapshot).
//! Does not: make network decisions (`gossip`), validate (`validate`) or order (`builder`); it only
//! connects them.

mod config;
pub mod devchain;
mod fees;
pub mod metrics;
pub mod render;
pub mod rpc;
pub mod rpc_server;

pub use config::{ConfigError, NodeConfig};

use std::{net::SocketAddr, path::Path, sync::Arc};

use alloy_primitives::Bytes;
use libp2p::{Multiaddr, PeerId, identity::Keypair};
use tokio::task::JoinHandle;

use crate::{
    follow::{Follow, FollowConfig, FollowError, FollowStats, Upstream},
    net::{NetConfig, NetworkHandle},
    pool::InclusionFailure,
    service::{BuilderFeed, ChainUpdates, PoolReader, StartError, Submitter, Tidepool, TidepoolConfig},
    state::{GenesisError, InMemoryState, StateProvider},
    tx::sign::Signer,
    validate::ValidationConfig,
};
use devchain::DevChain;
use metrics::Metrics;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("node key {path}: {why}")]
    NodeKey { path: String, why: String },
    #[error(transparent)]
    Start(#[from] StartError),
    /// The followed node is unreachable, on another chain, or answers wrongly.
    #[error("cannot follow the execution node: {0}")]
    Follow(#[from] FollowError),
}

/// A running node. [`Node::stop`] shuts it down in order.
pub struct Node {
    config: NodeConfig,
    chain: Option<Arc<DevChain>>,
    follow_stats: Option<Arc<FollowStats>>,
    tidepool: Tidepool,
    metrics: Arc<Metrics>,
    dev_signers: Vec<Signer>,
    rpc_addr: SocketAddr,
    metrics_addr: SocketAddr,
    rpc: jsonrpsee::server::ServerHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts a node on the current tokio runtime: the embedding API ([`Tidepool`]) with a
    /// network, plus the dev chain, JSON-RPC and metrics around it.
    ///
    /// # Errors
    /// Invalid config, unreadable genesis, ports in use, an unusable node key or listen address.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        config.validate()?;
        let validation = ValidationConfig { block_gas_limit: config.block_gas_limit, ..config.validation.clone() };
        // The chain: the embedded dev chain, or a followed execution node.
        let (chain, follow, state, head, dev_signers): (_, _, Arc<dyn StateProvider>, _, _) = match &config.follow {
            None => {
                let (state, dev_signers) = match &config.genesis {
                    Some(path) => (Arc::new(InMemoryState::from_genesis_file(path)?), Vec::new()),
                    None => DevChain::dev_genesis(config.dev_accounts),
                };
                let chain = Arc::new(DevChain::new(
                    Arc::clone(&state),
                    config.block_gas_limit,
                    config.initial_base_fee,
                    validation.fork,
                    config.history_blocks,
                ));
                let head = chain.head();
                (Some(chain), None, state, head, dev_signers)
            }
            Some(url) => {
                let mut follow_config = FollowConfig::new(url, config.chain_id);
                follow_config.fork = validation.fork;
                let follow = Follow::connect(follow_config).await?;
                if config.follow_build {
                    // anvil's own method: whether it mines each transaction as it arrives.
                    let automine = follow.upstream().forward("anvil_getAutomine", Vec::new()).await;
                    if !matches!(automine, Ok(serde_json::Value::Bool(false))) {
                        return Err(FollowError::MinesByItself.into());
                    }
                }
                let (state, head) = (follow.state(), follow.head());
                (None, Some(follow), state, head, Vec::new())
            }
        };

        let key = load_or_create_key(&config.data_dir)?;
        let net_config = NetConfig {
            chain_id: config.chain_id,
            listen: config.listen.clone(),
            bootnodes: config.bootnodes.clone(),
            max_connections: config.max_peers,
            gossip: config.gossip.clone(),
            gossipsub: config.gossipsub,
            seed: u64::from_le_bytes(key.public().to_peer_id().to_bytes()[2..10].try_into().expect("8 bytes")),
        };
        let tidepool = Tidepool::builder(state, head)
            .config(TidepoolConfig {
                validation,
                pipeline: config.pipeline,
                pool: config.pool.clone(),
                store: config.store,
                ..Default::default()
            })
            .network(key, net_config)
            .data_dir(&config.data_dir)
            .start()
            .await?;

        let metrics = Arc::new(Metrics::default());
        let metrics_listener = tokio::net::TcpListener::bind(config.metrics_addr).await.map_err(|source| {
            NodeError::Io { what: format!("cannot bind metrics address {}", config.metrics_addr), source }
        })?;
        let metrics_addr = metrics::local_addr(&metrics_listener);
        let follow_stats = follow.as_ref().map(Follow::stats);
        let render = {
            let (metrics, reader, updates) = (metrics.clone(), tidepool.reader(), tidepool.chain());
            let follow_stats = follow_stats.clone();
            Arc::new(move || {
                metrics.refresh(&reader.stats(), updates.head().base_fee);
                if let Some(follow) = &follow_stats {
                    metrics.refresh_follow(follow);
                }
                metrics.render()
            })
        };

        let rpc_listener = tokio::net::TcpListener::bind(config.rpc_addr)
            .await
            .map_err(|source| NodeError::Io { what: format!("cannot bind RPC address {}", config.rpc_addr), source })?;
        let rpc_addr = metrics::local_addr(&rpc_listener);
        if !rpc_addr.ip().is_loopback() {
            tracing::warn!(%rpc_addr, "JSON-RPC is reachable from other machines; per-client limits apply");
        }
        let mut tasks = vec![tokio::spawn(metrics::serve(metrics_listener, render))];
        let (source, forward) = match (&chain, follow) {
            (Some(chain), _) => {
                tasks.push(tokio::spawn(produce_blocks(
                    config.clone(),
                    chain.clone(),
                    tidepool.builder_feed(),
                    tidepool.chain(),
                    metrics.clone(),
                )));
                (rpc::ChainSource::Dev(chain.clone()), None)
            }
            (None, Some(follow)) => {
                let upstream = follow.upstream().clone();
                tasks.push(tokio::spawn(follow.run(tidepool.chain())));
                if config.follow_build {
                    tasks.push(tokio::spawn(build_on_upstream(
                        config.clone(),
                        upstream.clone(),
                        tidepool.builder_feed(),
                        metrics.clone(),
                    )));
                }
                let forward = config.follow_forward.then(|| {
                    let (sender, queue) = tokio::sync::mpsc::channel(FORWARD_QUEUE);
                    tasks.push(tokio::spawn(forward_to_upstream(upstream.clone(), queue, metrics.clone())));
                    sender
                });
                (rpc::ChainSource::Upstream(upstream), forward)
            }
            (None, None) => unreachable!("a node has a dev chain or follows one"),
        };
        let context = rpc::RpcContext {
            submitter: tidepool.submitter(),
            reader: tidepool.reader(),
            admin: tidepool.admin(),
            chain: source,
            forward,
            chain_id: config.chain_id,
            metrics: metrics.clone(),
            budgets: rpc_server::ClientBudgets::new(config.rpc.send_raw_per_client, config.rpc.max_clients),
            allow_unprotected_txs: config.rpc.allow_unprotected_txs,
        };
        let rpc = rpc_server::serve(rpc_listener, rpc::module(context), config.rpc.clone());
        let node =
            Self { config, chain, follow_stats, tidepool, metrics, dev_signers, rpc_addr, metrics_addr, rpc, tasks };
        tracing::info!(rpc_addr = %node.rpc_addr, metrics_addr = %node.metrics_addr, peer_id = %node.peer_id(), "node started");
        Ok(node)
    }

    pub const fn config(&self) -> &NodeConfig {
        &self.config
    }
    pub const fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }
    pub const fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }
    pub fn peer_id(&self) -> PeerId {
        self.network().peer_id()
    }
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.network().listen_addrs()
    }
    /// The embedded mempool, through the same API any embedder uses.
    pub const fn tidepool(&self) -> &Tidepool {
        &self.tidepool
    }
    pub fn submitter(&self) -> Submitter {
        self.tidepool.submitter()
    }
    pub fn reader(&self) -> PoolReader {
        self.tidepool.reader()
    }
    /// The embedded dev chain; `None` when the node follows an execution node.
    pub fn chain(&self) -> Option<&DevChain> {
        self.chain.as_deref()
    }
    /// The node's gossip network.
    ///
    /// # Panics
    /// Never: a node always starts its network.
    pub fn network(&self) -> &NetworkHandle {
        self.tidepool.network().expect("a node always runs its network")
    }
    /// The funded development keys of the built-in genesis (empty with `--genesis`).
    pub fn dev_signers(&self) -> &[Signer] {
        &self.dev_signers
    }
    /// The metrics page as a scrape would see it now.
    pub fn metrics_text(&self) -> String {
        self.metrics.refresh(&self.tidepool.reader().stats(), self.tidepool.chain().head().base_fee);
        if let Some(follow) = &self.follow_stats {
            self.metrics.refresh_follow(follow);
        }
        self.metrics.render()
    }

    /// Stops the RPC server and the block producer, snapshots the pool to the data directory,
    /// then stops the network.
    pub async fn stop(self) {
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        for task in &self.tasks {
            task.abort();
        }
        let tidepool = self.tidepool;
        match tokio::task::spawn_blocking(move || tidepool.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot write the pool snapshot; the journal keeps local txs"),
            Err(e) => tracing::error!(error = %e, "snapshot task failed"),
        }
    }
}

/// The node key lives in `<data_dir>/node.key` so the peer id survives restarts.
fn load_or_create_key(data_dir: &Path) -> Result<Keypair, NodeError> {
    let path = data_dir.join("node.key");
    let key_error = |why: String| NodeError::NodeKey { path: path.display().to_string(), why };
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| key_error(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|e| key_error(e.to_string()))?;
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| key_error(e.to_string()))?;
            write_private(&path, &bytes).map_err(|e| key_error(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(key_error(e.to_string())),
    }
}

/// Writes a secret: readable by its owner only (mode 0600 from creation, so it is never
/// readable by others even for an instant), synced, then renamed into place, so a crash leaves
/// either no key or the whole key.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};

    let tmp = path.with_extension("writing");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

/// Local transactions waiting to be forwarded to the followed node.
const FORWARD_QUEUE: usize = 1_024;

/// Sends accepted local transactions to the followed node's own pool, in order.
async fn forward_to_upstream(upstream: Upstream, mut queue: tokio::sync::mpsc::Receiver<Bytes>, metrics: Arc<Metrics>) {
    while let Some(raw) = queue.recv().await {
        match upstream.forward("eth_sendRawTransaction", vec![serde_json::json!(raw)]).await {
            Ok(_) => metrics.forwarded.inc(),
            Err(e) => {
                metrics.forward_dropped.inc();
                tracing::debug!(error = %e, "the followed node refused a forwarded transaction");
            }
        }
    }
}

/// Build mode: every block time, the builder feed's batch goes to the upstream in order and the
/// upstream mines it; the follower then applies the block like any other. A transaction the
/// upstream refuses is reported to the feed (repeated failures quarantine it).
async fn build_on_upstream(config: NodeConfig, upstream: Upstream, feed: BuilderFeed, metrics: Arc<Metrics>) {
    let mut interval = tokio::time::interval(config.block_interval());
    interval.tick().await;
    loop {
        interval.tick().await;
        let batch = feed.next_block(config.block_gas_limit, usize::MAX);
        for pooled in &batch.txs {
            // A blob transaction goes in its network form; one whose sidecar is gone cannot.
            let Some(raw) = feed.pool().wire_form(pooled) else { continue };
            let sent = upstream.forward("eth_sendRawTransaction", vec![serde_json::json!(raw)]).await;
            if let Err(e) = sent {
                let text = e.to_string().to_lowercase();
                let failure = if text.contains("nonce") {
                    InclusionFailure::WrongNonce
                } else if text.contains("funds") {
                    InclusionFailure::Unaffordable
                } else {
                    InclusionFailure::OverLimit
                };
                tracing::warn!(hash = %pooled.hash(), error = %e, "the upstream refused a transaction of the batch");
                let _ = feed.report_failed(&pooled.hash(), failure); // gone meanwhile: nothing to report
            }
        }
        match upstream.forward("evm_mine", Vec::new()).await {
            Ok(_) => {
                metrics.builder_pulls.inc();
                metrics.blocks.inc();
            }
            Err(e) => tracing::warn!(error = %e, "the upstream did not mine the batch; retrying next block"),
        }
    }
}

async fn produce_blocks(
    config: NodeConfig,
    chain: Arc<DevChain>,
    feed: BuilderFeed,
    updates: ChainUpdates,
    metrics: Arc<Metrics>,
) {
    let mut interval = tokio::time::interval(config.block_interval());
    interval.tick().await; // the first tick is immediate; the first block comes one interval in
    loop {
        interval.tick().await;
        let produced = chain.produce(&feed, &updates);
        metrics.builder_pulls.inc();
        metrics.blocks.inc();
        tracing::info!(
            block = produced.number,
            txs = produced.txs.len(),
            gas = produced.gas_used,
            base_fee = produced.base_fee,
            "block"
        );
    }
}
