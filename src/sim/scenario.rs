//! A simulation scenario: network shape, workload and adversaries. TOML file plus flags.
//!
//! [`Scenario::check`] range-checks every number before a run starts (both engines call it
//! through `model::Layout::draw`), so a bad value is refused with its setting's name and the
//! allowed range instead of hanging, panicking or quietly producing a wrong answer.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use crate::gossip::{GossipConfig, GossipsubParams};

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

/// How honest transactions spread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Propagation {
    /// Gossipsub: flood-published by their origin, pushed along the mesh, IHAVE/IWANT outside it.
    #[default]
    Gossipsub,
    /// As Ethereum's devp2p eth/68 (`eth68.rs`): a node sends a transaction it newly holds in
    /// full to the square root of its peers and announces it to the rest, who fetch it after a
    /// wait unless it arrives meanwhile. DES only.
    Eth68,
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
    /// DES only: modelled CPU time to validate one transaction, in microseconds (50 when
    /// unset). The swarm engine validates for real and refuses the setting.
    pub validation_micros: Option<u64>,
    /// Every honest transaction's size on the wire, in bytes: the DES pads what it sends and
    /// the swarm engine signs transactions whose calldata makes them this size. Unset: the
    /// generated transfers' own sizes (~110-190 bytes).
    pub tx_size: Option<u32>,
    /// How transactions spread: gossipsub (the mesh below) or eth/68's push and announce.
    pub propagation: Propagation,
    /// Gossipsub's mesh: the DES models it, the swarm engine configures rust-libp2p with it.
    pub gossipsub: GossipsubParams,
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
            validation_micros: None,
            tx_size: None,
            propagation: Propagation::Gossipsub,
            gossipsub: GossipsubParams { d: 8, ..GossipsubParams::default() },
            adversaries: Vec::new(),
            churn: None,
            drain_seconds: 10.0,
            gossip: GossipConfig::default(),
        }
    }
}

/// A scenario setting outside its allowed range: the run is refused before it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scenario setting `{setting}` is {value}: {allowed}")]
pub struct ScenarioError {
    /// The setting's name as the scenario file spells it (flags map onto these).
    pub setting: String,
    pub value: String,
    /// The allowed range, in words.
    pub allowed: &'static str,
}

/// Smallest fixed transaction size: a padded transfer cannot be shorter than a plain one.
pub const MIN_TX_SIZE: u32 = 120;
/// Largest fixed transaction size: the validation stage's size limit (128 KiB).
pub const MAX_TX_SIZE: u32 = 128 * 1024;

/// Most nodes a run may have: a million DES nodes is already hours of work.
const MAX_NODES: usize = 1_000_000;
/// Rates (transactions or attack messages per second): beyond this no run finishes.
const MAX_RATE: f64 = 1e6;

fn refuse(setting: impl Into<String>, value: impl Display, allowed: &'static str) -> Result<(), ScenarioError> {
    Err(ScenarioError { setting: setting.into(), value: value.to_string(), allowed })
}

/// `value` is finite and within `[low, high]` (or `(low, high]` when `open_low`).
fn within(value: f64, low: f64, high: f64, open_low: bool) -> bool {
    value.is_finite() && (if open_low { value > low } else { value >= low }) && value <= high
}

impl Scenario {
    /// Range-checks every setting.
    ///
    /// # Errors
    /// The first setting out of range, named, with its value and the allowed range.
    pub fn check(&self) -> Result<(), ScenarioError> {
        let nodes = self.nodes;
        if !(2..=MAX_NODES).contains(&nodes) {
            return refuse("nodes", nodes, "a whole number from 2 to 1,000,000");
        }
        if self.txs == 0 {
            return refuse("txs", self.txs, "at least 1");
        }
        if !within(self.tx_rate, 0.0, MAX_RATE, true) {
            return refuse("tx_rate", self.tx_rate, "a number above 0 and at most 1,000,000 per second");
        }
        if !within(self.jitter, 0.0, 1.0, false) {
            return refuse("jitter", self.jitter, "a fraction of the link latency from 0 to 1");
        }
        if !within(self.loss, 0.0, 1.0, false) || self.loss == 1.0 {
            return refuse("loss", self.loss, "a probability from 0 up to (not including) 1");
        }
        if self.bandwidth_classes.is_empty() {
            return refuse("bandwidth_classes", "empty", "at least one (Mbit/s, share) class");
        }
        for &(mbps, share) in &self.bandwidth_classes {
            if !within(mbps, 0.0, 1e6, true) {
                return refuse("bandwidth_classes", mbps, "each class's Mbit/s above 0 and at most 1,000,000");
            }
            if !within(share, 0.0, f64::MAX, false) {
                return refuse("bandwidth_classes", share, "each class's share a number of at least 0");
            }
        }
        if self.bandwidth_classes.iter().map(|c| c.1).sum::<f64>() <= 0.0 {
            return refuse("bandwidth_classes", "shares summing to 0", "shares with a positive sum");
        }
        if self.validation_micros.is_some_and(|micros| micros > 10_000_000) {
            return refuse("validation_micros", self.validation_micros.unwrap_or(0), "at most 10,000,000 (10 s)");
        }
        if let Some(size) = self.tx_size
            && !(MIN_TX_SIZE..=MAX_TX_SIZE).contains(&size)
        {
            return refuse("tx_size", size, "from 120 to 131,072 bytes");
        }
        if let Err((setting, value, allowed)) = self.gossipsub.check() {
            return refuse(format!("gossipsub.{setting}"), value, allowed);
        }
        if self.gossipsub.d >= nodes {
            return refuse("gossipsub.d", self.gossipsub.d, "below the number of nodes");
        }
        if !within(self.drain_seconds, 0.0, 86_400.0, false) {
            return refuse("drain_seconds", self.drain_seconds, "from 0 to 86,400");
        }
        self.check_topology()?;
        let mut attackers = 0;
        for (i, adversary) in self.adversaries.iter().enumerate() {
            if !within(adversary.fraction, 0.0, 1.0, false) || adversary.fraction == 1.0 {
                return refuse(
                    format!("adversaries[{i}].fraction"),
                    adversary.fraction,
                    "from 0 up to (not including) 1",
                );
            }
            if !within(adversary.rate, 0.0, MAX_RATE, true) {
                return refuse(
                    format!("adversaries[{i}].rate"),
                    adversary.rate,
                    "above 0 and at most 1,000,000 messages per second",
                );
            }
            attackers += (adversary.fraction * nodes as f64).round() as usize;
        }
        if attackers + 2 > nodes {
            return refuse(
                "adversaries",
                format!("{attackers} attackers of {nodes} nodes"),
                "at least 2 honest nodes left",
            );
        }
        if let Some(churn) = &self.churn {
            if !within(churn.leaves_per_second, 0.0, MAX_RATE, false) {
                return refuse("churn.leaves_per_second", churn.leaves_per_second, "from 0 to 1,000,000");
            }
            if !within(churn.downtime_seconds, 0.0, 86_400.0, true) {
                return refuse("churn.downtime_seconds", churn.downtime_seconds, "above 0 and at most 86,400");
            }
        }
        Ok(())
    }

    fn check_topology(&self) -> Result<(), ScenarioError> {
        let nodes = self.nodes;
        match self.topology {
            Topology::RandomRegular { degree } if degree == 0 || degree >= nodes => {
                refuse("topology.degree", degree, "from 1 to nodes - 1")
            }
            Topology::Outbound { dial, .. } if dial == 0 || dial >= nodes => {
                refuse("topology.dial", dial, "from 1 to nodes - 1")
            }
            Topology::Outbound { dial, max_peers } if max_peers < dial => {
                refuse("topology.max_peers", max_peers, "at least topology.dial")
            }
            Topology::BarabasiAlbert { m } if m == 0 || m >= nodes => refuse("topology.m", m, "from 1 to nodes - 1"),
            _ => Ok(()),
        }
    }
}
