//! What a simulation run records, whichever engine ran it: per transaction, per node, and the
//! attack's course. The engines fill it; `report` turns it into files. Fields an engine does not
//! measure are `None`, so reports can say "not measured" instead of a zero.

use std::collections::BTreeMap;

use super::scenario::AttackKind;
use crate::gossip::DropReason;

/// One honest transaction's spread: delays (ns after injection) at which each node pooled it,
/// ascending, and which node each was.
#[derive(Debug, Clone)]
pub struct TxRecord {
    /// Encoded size in bytes.
    pub size: u32,
    /// The node it was injected at.
    pub origin: u32,
    pub delays: Vec<u64>,
    /// `reached[i]` pooled it after `delays[i]`.
    pub reached: Vec<u32>,
}

impl TxRecord {
    /// From (delay, node) deliveries in any order.
    pub fn new(size: u32, origin: u32, mut deliveries: Vec<(u64, u32)>) -> Self {
        deliveries.sort_unstable();
        let (delays, reached) = deliveries.into_iter().unzip();
        Self { size, origin, delays, reached }
    }

    /// The delays of the deliveries to the nodes `counted` says yes to.
    pub fn delays_among(&self, counted: impl Fn(u32) -> bool) -> Vec<u64> {
        self.delays.iter().zip(&self.reached).filter(|(_, node)| counted(**node)).map(|(&d, _)| d).collect()
    }
}

/// Per-node traffic and work counters.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    pub up_payload: u64,
    pub up_control: u64,
    pub down_payload: u64,
    pub down_control: u64,
    pub duplicates: u64,
    pub validations: u64,
}

/// One node at the end of a run.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    /// Index into [`Run::region_names`].
    pub region: usize,
    /// What it attacks with; `None` for honest nodes.
    pub attack: Option<AttackKind>,
    /// Its honest neighbours at the end (0 for an isolated attacker).
    pub honest_peers: usize,
    pub stats: NodeStats,
}

impl NodeRecord {
    pub const fn is_honest(&self) -> bool {
        self.attack.is_none()
    }
}

/// A neighbour's disconnect (with a ban or cool-off) of an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttackerBan {
    pub attacker: u32,
    pub neighbour: u32,
    /// When, in ns since the run started.
    pub at_ns: u64,
}

/// A finished run's raw material.
#[derive(Debug)]
pub struct Run {
    pub txs: Vec<TxRecord>,
    pub nodes: Vec<NodeRecord>,
    pub drops: BTreeMap<DropReason, u64>,
    /// Messages lost to modelled link loss (the DES models it; the swarm engine's links do not
    /// lose messages, so it is `None` there).
    pub lost_messages: Option<u64>,
    /// When the attackers started, ns since the run started (`None`: not recorded).
    pub attack_start_ns: Option<u64>,
    pub attacker_bans: Vec<AttackerBan>,
    /// Honest nodes disconnected by honest neighbours.
    pub honest_disconnects: u64,
    pub virtual_ns: u64,
    /// Discrete events processed (the DES's work; `None` for the swarm engine).
    pub events: Option<u64>,
    pub region_names: Vec<String>,
    /// The deliveries, when the run was traced (DES only).
    pub trace: Option<super::trace::Trace>,
    /// `"des"` or `"swarm"`.
    pub engine: &'static str,
}

impl Run {
    pub fn honest_nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(|n| n.is_honest())
    }

    /// Whether the engine tells payload from control bytes (the swarm engine's links see
    /// encrypted streams and count every byte as payload).
    pub fn control_bytes_measured(&self) -> bool {
        self.engine == "des"
    }

    /// Each honest node's upload: (payload, control) bytes.
    pub fn honest_uploads(&self) -> Vec<(u64, u64)> {
        self.honest_nodes().map(|n| (n.stats.up_payload, n.stats.up_control)).collect()
    }
}
