//! A simulation scenario: network shape, workload and adversaries. TOML file plus flags.

use serde::{Deserialize, Serialize};

use crate::gossip::GossipConfig;

/// How nodes connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Topology {
    /// Every node has `degree` random neighbours (as close as a random graph allows).
    RandomRegular { degree: usize },
    /// Each node dials `dial` random peers; nobody accepts more than `max_peers` (as Ethereum
    /// clients do with outbound slots and a peer cap).
    Outbound { dial: usize, max_peers: usize },
    /// Preferential attachment: each new node links to `m` existing nodes, chosen in proportion
    /// to their degree (a few well-connected hubs, many leaves).
    BarabasiAlbert { m: usize },
}

/// What adversarial nodes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// Floods well-formed transactions whose signatures recover no sender.
    InvalidSignature,
    /// Floods bytes that are not transactions.
    Malformed,
    /// Announces large transactions it never serves.
    AnnounceNeverServe,
    /// Floods valid transactions from its own keys, as fast as `rate` says.
    ValidSpam,
    /// Replays honest transactions the network already carried.
    DuplicateReplay,
}

/// A share of the nodes running one attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adversary {
    pub kind: AttackKind,
    /// Fraction of nodes (0..1).
    pub fraction: f64,
    /// Messages per second each attacker sends to each neighbour.
    pub rate: f64,
}

/// Nodes leaving and coming back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Honest nodes leaving per second, network-wide.
    pub leaves_per_second: f64,
    /// How long a node stays away before it reconnects to its old neighbours.
    pub downtime_seconds: f64,
}

/// Everything a run depends on; with the seed, it determines the output byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Master seed: topology, regions, workload, jitter and every node's core derive from it.
    pub seed: u64,
    pub nodes: usize,
    pub topology: Topology,
    /// Honest transactions, injected at random honest nodes.
    pub txs: usize,
    /// Honest transactions per second (network-wide).
    pub tx_rate: f64,
    /// Regions' one-way latency matrix (ms) and their share of nodes; `None` uses the built-in
    /// eight-region model (`model::Regions::default`).
    pub regions_csv: Option<std::path::PathBuf>,
    /// Extra random delay per message, up to this fraction of the link latency.
    pub jitter: f64,
    /// Probability a message is lost.
    pub loss: f64,
    /// Upload bandwidth classes in Mbit/s with their share of nodes.
    pub bandwidth_classes: Vec<(f64, f64)>,
    /// Modelled CPU time to validate one transaction, in microseconds.
    pub validation_micros: u64,
    /// Gossipsub heartbeat: lazy IHAVE gossip to non-mesh neighbours.
    pub heartbeat_millis: u64,
    /// Mesh degree (eager push); other neighbours get IHAVE.
    pub mesh_degree: usize,
    pub adversaries: Vec<Adversary>,
    pub churn: Option<Churn>,
    /// Virtual seconds to run after the last transaction.
    pub drain_seconds: f64,
    pub gossip: GossipConfig,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            seed: 1,
            nodes: 100,
            topology: Topology::RandomRegular { degree: 8 },
            txs: 100,
            tx_rate: 50.0,
            regions_csv: None,
            jitter: 0.1,
            loss: 0.0,
            bandwidth_classes: vec![(1_000.0, 0.2), (100.0, 0.6), (25.0, 0.2)],
            validation_micros: 50,
            heartbeat_millis: 700,
            mesh_degree: 8,
            adversaries: Vec::new(),
            churn: None,
            drain_seconds: 10.0,
            gossip: GossipConfig::default(),
        }
    }
}
