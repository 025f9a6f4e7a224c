//! `tidepool node`: a mempool node on the embedded dev chain, or beside an execution node it
//! follows (`--follow`).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use libp2p::Multiaddr;
use tidepool::node::{Node, NodeConfig};

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// TOML config file; its keys are these flags' names with `_` for `-`. Flags win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Chain id of the dev chain, or of the followed node (checked at start) [default: 1337].
    #[arg(long)]
    chain_id: Option<u64>,
    /// Follow this execution node's JSON-RPC (http://… polls heads, ws://… subscribes to them)
    /// instead of running the dev chain: its state, heads and reorgs feed the pool; blocks,
    /// receipts, eth_call, fees are answered by it.
    #[arg(long, value_name = "URL")]
    follow: Option<String>,
    /// With --follow: also send accepted local transactions to the followed node's own pool.
    #[arg(long)]
    follow_forward: bool,
    /// With --follow, for dev nodes that do not mine by themselves (anvil --no-mining --order
    /// fifo): every --block-time, send the builder feed's batch and have it mined (evm_mine).
    #[arg(long)]
    follow_build: bool,
    /// geth-style genesis file (its `alloc` section); default: the built-in dev genesis.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Funded development accounts in the built-in genesis [default: 10].
    #[arg(long)]
    dev_accounts: Option<u64>,
    /// Seconds between dev blocks [default: 2].
    #[arg(long)]
    block_time: Option<f64>,
    /// Gas limit of dev blocks [default: 30000000].
    #[arg(long)]
    block_gas_limit: Option<u64>,
    /// Directory for the node key [default: tidepool-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Peer-to-peer listen address, repeatable [default: /ip4/0.0.0.0/tcp/30340 and /ip4/0.0.0.0/udp/30340/quic-v1].
    #[arg(long)]
    listen: Vec<Multiaddr>,
    /// Peers to dial at start (multiaddrs with /p2p/<peer id>), repeatable or comma-separated.
    #[arg(long, value_delimiter = ',')]
    bootnodes: Vec<Multiaddr>,
    /// Most peer connections [default: 50].
    #[arg(long)]
    max_peers: Option<u32>,
    /// JSON-RPC (HTTP and WebSocket) address [default: 127.0.0.1:8545].
    #[arg(long)]
    rpc_addr: Option<SocketAddr>,
    /// Prometheus metrics address [default: 127.0.0.1:9545].
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
}

impl NodeArgs {
    fn into_config(self) -> Result<NodeConfig, String> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path).map_err(|e| e.to_string())?,
            None => NodeConfig::default(),
        };
        if let Some(chain_id) = self.chain_id {
            config.chain_id = chain_id;
            config.validation.chain_id = chain_id;
        }
        config.follow = self.follow.or(config.follow);
        config.follow_forward |= self.follow_forward;
        config.follow_build |= self.follow_build;
        config.genesis = self.genesis.or(config.genesis);
        config.dev_accounts = self.dev_accounts.unwrap_or(config.dev_accounts);
        config.block_time = self.block_time.unwrap_or(config.block_time);
        config.block_gas_limit = self.block_gas_limit.unwrap_or(config.block_gas_limit);
        config.data_dir = self.data_dir.unwrap_or(config.data_dir);
        if !self.listen.is_empty() {
            config.listen = self.listen;
        }
        if !self.bootnodes.is_empty() {
            config.bootnodes = self.bootnodes;
        }
        config.max_peers = self.max_peers.unwrap_or(config.max_peers);
        config.rpc_addr = self.rpc_addr.unwrap_or(config.rpc_addr);
        config.metrics_addr = self.metrics_addr.unwrap_or(config.metrics_addr);
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

pub fn run(args: NodeArgs) -> ExitCode {
    super::init_logging("info");
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tidepool: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        let node = match Node::start(config).await {
            Ok(node) => node,
            Err(e) => {
                eprintln!("tidepool: cannot start the node: {e}");
                return ExitCode::FAILURE;
            }
        };
        print_banner(&node);
        shutdown_signal().await;
        eprintln!("shutting down");
        node.stop().await;
        ExitCode::SUCCESS
    })
}

/// Ctrl-C or SIGTERM (what service managers send): both shut down cleanly, with a snapshot.
async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("tidepool: cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn print_banner(node: &Node) {
    let config = node.config();
    match &config.follow {
        Some(url) => println!(
            "Tidepool node — chain id {}, following {url}{}",
            config.chain_id,
            if config.follow_build {
                format!(" (building its blocks every {}s)", config.block_time)
            } else if config.follow_forward {
                " (local transactions forwarded to it)".to_owned()
            } else {
                String::new()
            }
        ),
        None => println!(
            "Tidepool node — chain id {}, a dev block every {}s (plain transfers, not an EVM)",
            config.chain_id, config.block_time
        ),
    }
    println!("  JSON-RPC  http://{0}  (WebSocket ws://{0})", node.rpc_addr());
    println!("  metrics   http://{}/metrics", node.metrics_addr());
    println!("  peer id   {}", node.peer_id());
    println!("  data dir  {}", config.data_dir.display());
    if let Some(restored) = node.tidepool().restored().filter(|r| r.snapshot.is_some() || r.journal.is_some()) {
        println!("  restored  {} transactions (outcomes {:?})", restored.restored(), restored.outcomes);
    }
    for address in node.listen_addrs() {
        println!("  listening {address}/p2p/{}", node.peer_id());
    }
    if !node.dev_signers().is_empty() {
        println!("Funded dev accounts (public test keys: never use them on a real network):");
        for (i, signer) in node.dev_signers().iter().enumerate() {
            println!("  [{i}] {}  key {}", signer.address(), signer.secret_bytes());
        }
    }
    println!("Try: tidepool load --accounts 5 --rate 50 --duration 10");
}
