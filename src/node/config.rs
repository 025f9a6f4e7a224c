//! Node configuration: a TOML file whose keys match the command-line flags, flags winning.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use super::rpc_server::RpcLimits;
use crate::{
    gossip::{GossipConfig, GossipsubParams},
    pool::PoolConfig,
    validate::{PipelineConfig, ValidationConfig},
};

/// Everything `tidepool node` needs. `Default` is the embedded dev chain on localhost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Chain id of the dev chain (and of accepted transactions).
    pub chain_id: u64,
    /// Follow this execution node (`http://…`, or `ws://…` for new-head subscriptions) instead
    /// of running the dev chain: its account
    /// state, heads and reorgs feed the pool, and the JSON-RPC methods the pool cannot answer
    /// (blocks, receipts, `eth_call`, fees, …) are passed to it. Standard `eth_` methods only.
    pub follow: Option<String>,
    /// With `follow`: also send every accepted local transaction to the upstream's own pool,
    /// for nodes whose blocks Tidepool does not build.
    pub follow_forward: bool,
    /// With `follow`, for dev and test nodes that do not mine by themselves (anvil started with
    /// `--no-mining --order fifo`): every `block_time` Tidepool pulls a gas-limited batch from its
    /// builder feed, sends it to the upstream in that order and has it mine one block
    /// (`evm_mine`), so a real EVM executes what Tidepool ordered.
    pub follow_build: bool,
    /// A geth-style genesis file; without one, the built-in dev genesis funds `dev_accounts`
    /// development keys.
    pub genesis: Option<PathBuf>,
    /// Development accounts funded by the built-in genesis.
    pub dev_accounts: u64,
    /// Seconds between dev blocks.
    pub block_time: f64,
    /// Gas limit of dev blocks.
    pub block_gas_limit: u64,
    /// Base fee of the first block, in wei.
    pub initial_base_fee: u128,
    /// Dev blocks kept with their transactions and receipts for `eth_getBlockBy*`,
    /// `eth_getTransactionReceipt` and `eth_feeHistory`. Default 2,048.
    pub history_blocks: usize,
    /// Where the node key (and later the journal) live. Default `./tidepool-data`.
    pub data_dir: PathBuf,
    /// Peer-to-peer listen addresses (TCP and QUIC).
    pub listen: Vec<Multiaddr>,
    pub bootnodes: Vec<Multiaddr>,
    /// Most peer connections.
    pub max_peers: u32,
    /// JSON-RPC over HTTP and WebSocket on one port. Default 127.0.0.1:8545: local clients only.
    pub rpc_addr: SocketAddr,
    /// JSON-RPC body, batch, connection and per-client limits.
    pub rpc: RpcLimits,
    /// Prometheus metrics at `/metrics`.
    pub metrics_addr: SocketAddr,
    pub validation: ValidationConfig,
    pub pipeline: PipelineConfig,
    pub pool: PoolConfig,
    pub gossip: GossipConfig,
    /// Gossipsub's mesh (degrees, heartbeat, gossip windows, IDONTWANT threshold).
    pub gossipsub: GossipsubParams,
    /// The data directory's journal.
    pub store: crate::service::StoreConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            chain_id: 1337,
            follow: None,
            follow_forward: false,
            follow_build: false,
            genesis: None,
            dev_accounts: 10,
            block_time: 2.0,
            block_gas_limit: 30_000_000,
            initial_base_fee: 1_000_000_000,
            history_blocks: super::devchain::DEFAULT_HISTORY_BLOCKS,
            data_dir: PathBuf::from("tidepool-data"),
            listen: vec![
                "/ip4/0.0.0.0/tcp/30340".parse().expect("valid multiaddr"),
                "/ip4/0.0.0.0/udp/30340/quic-v1".parse().expect("valid multiaddr"),
            ],
            bootnodes: Vec::new(),
            max_peers: 50,
            rpc_addr: "127.0.0.1:8545".parse().expect("valid address"),
            metrics_addr: "127.0.0.1:9545".parse().expect("valid address"),
            rpc: RpcLimits::default(),
            validation: ValidationConfig { chain_id: 1337, min_priority_fee: 0, ..ValidationConfig::default() },
            pipeline: PipelineConfig::default(),
            pool: PoolConfig::default(),
            gossip: GossipConfig::default(),
            gossipsub: GossipsubParams::default(),
            store: crate::service::StoreConfig::default(),
        }
    }
}

/// Why a configuration cannot start a node.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid setting {key}: {why}")]
    Invalid { key: &'static str, why: String },
}

impl NodeConfig {
    /// Reads a TOML config file.
    ///
    /// # Errors
    /// Unreadable file, malformed TOML, unknown keys.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })
    }

    pub fn block_interval(&self) -> Duration {
        Duration::from_secs_f64(self.block_time)
    }

    /// Checks values a node cannot run with, naming the setting.
    ///
    /// # Errors
    /// The first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, why: &str| Err(ConfigError::Invalid { key, why: why.to_owned() });
        if !(self.block_time.is_finite() && (0.05..=crate::duration_secs::MAX_SECS).contains(&self.block_time)) {
            return invalid("block_time", "must be from 0.05 seconds to 1e9 seconds");
        }
        if let Some(url) = &self.follow
            && !crate::follow::is_supported_url(url)
        {
            return invalid("follow", "must be an http(s):// or ws(s):// URL of an execution node's JSON-RPC");
        }
        if (self.follow_forward || self.follow_build) && self.follow.is_none() {
            return invalid(
                "follow_forward",
                "`follow_forward` and `follow_build` need `follow`: there is no upstream",
            );
        }
        if self.follow_forward && self.follow_build {
            return invalid(
                "follow_build",
                "build mode already sends every block's transactions: drop `follow_forward`",
            );
        }
        if let Err((key, value, allowed)) = self.gossipsub.check() {
            return Err(ConfigError::Invalid { key, why: format!("gossipsub.{key} is {value}: must be {allowed}") });
        }
        if self.history_blocks == 0 {
            return invalid("history_blocks", "must keep at least the latest block");
        }
        if self.block_gas_limit < 21_000 {
            return invalid("block_gas_limit", "must fit one transaction (21000)");
        }
        if self.pipeline.workers == 0 || self.pipeline.queue_capacity == 0 {
            return invalid("pipeline", "workers and queue_capacity must be positive");
        }
        if self.validation.chain_id != self.chain_id {
            return invalid("validation.chain_id", "must equal chain_id");
        }
        let rpc = &self.rpc;
        if rpc.max_request_bytes < 1024 || rpc.max_response_bytes < 1024 {
            return invalid("rpc.max_request_bytes", "request and response limits must be at least 1024 bytes");
        }
        if rpc.max_batch == 0 || rpc.max_connections == 0 || rpc.max_clients == 0 {
            return invalid("rpc", "max_batch, max_connections and max_clients must be positive");
        }
        if self.store.compact_every < std::time::Duration::from_millis(100) {
            return invalid("store.compact_every", "must be at least 0.1 seconds");
        }
        if rpc.max_subscriptions_per_connection == 0 {
            return invalid("rpc.max_subscriptions_per_connection", "must be positive");
        }
        if rpc.max_calls_per_connection == 0 {
            return invalid("rpc.max_calls_per_connection", "must be positive");
        }
        if rpc.max_unsent_bytes_per_connection < 1024 {
            return invalid("rpc.max_unsent_bytes_per_connection", "must be at least 1024 bytes");
        }
        if rpc.idle_timeout < std::time::Duration::from_secs(1) {
            return invalid("rpc.idle_timeout", "must be at least 1 second");
        }
        let budget = rpc.send_raw_per_client;
        if !(budget.per_second > 0.0 && budget.burst >= 1.0) {
            return invalid("rpc.send_raw_per_client", "per_second must be positive and burst at least 1");
        }
        if self.genesis.is_none() && self.dev_accounts == 0 {
            return invalid("dev_accounts", "the built-in genesis needs at least one account");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_match_the_flags() {
        let config: NodeConfig = toml::from_str(
            r#"
            chain_id = 7
            block_time = 0.5
            block_gas_limit = 15000000
            listen = ["/ip4/127.0.0.1/tcp/4001"]
            bootnodes = []
            rpc_addr = "127.0.0.1:18545"
            [validation]
            chain_id = 7
            [pool]
            account_slots = 32
            [gossip.messages]
            per_second = 50.0
            burst = 100.0
            "#,
        )
        .unwrap();
        assert_eq!((config.chain_id, config.block_time, config.block_gas_limit), (7, 0.5, 15_000_000));
        assert_eq!(config.pool.account_slots, 32);
        assert_eq!(config.gossip.messages.per_second, 50.0);
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        assert!(toml::from_str::<NodeConfig>("block_tme = 2").is_err(), "typo in a key");
        let bad = NodeConfig { block_time: 0.0, ..NodeConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("block_time"));
        let mismatch = NodeConfig { chain_id: 5, ..NodeConfig::default() };
        assert!(mismatch.validate().unwrap_err().to_string().contains("validation.chain_id"));
    }
}
