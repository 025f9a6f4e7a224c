//! Gossipsub's mesh parameters: one set, applied by `net/` to rust-libp2p's router and modelled
//! by the simulator's discrete-event engine, so a scenario means the same on both engines.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The router's settings (names as the gossipsub v1.1/v1.2 specification spells them).
///
/// Defaults are rust-libp2p's, except the heartbeat: 700 ms, as Ethereum's consensus network
/// runs gossipsub, instead of 1 s. Valid when `d_out <= d_low <= d <= d_high`,
/// `2 * d_out <= d` and `history_gossip <= history_length` (rust-libp2p refuses others too).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GossipsubParams {
    /// Mesh degree: peers a heartbeat grafts up to when the mesh is below `d_low`, and prunes
    /// down to when it reaches `d_high`. Default 6.
    pub d: usize,
    /// Below this many mesh peers a heartbeat grafts more. Default 5.
    pub d_low: usize,
    /// At this many mesh peers a heartbeat prunes, and further GRAFTs from inbound peers are
    /// answered with PRUNE. Default 12.
    pub d_high: usize,
    /// Least peers outside the mesh a heartbeat sends IHAVE gossip to. Default 6.
    pub d_lazy: usize,
    /// Outbound peers (ones this node dialed) a mesh keeps. Default 2.
    pub d_out: usize,
    /// Share of the peers outside the mesh that get IHAVE gossip when above `d_lazy`. Default 0.25.
    pub gossip_factor: f64,
    /// Heartbeats a message stays in the message cache (servable to IWANT). Default 5.
    pub history_length: usize,
    /// Heartbeats of the cache advertised in IHAVE. Default 3.
    pub history_gossip: usize,
    /// Heartbeat interval in milliseconds. Default 700.
    pub heartbeat_millis: u64,
    /// A node's own messages go to every subscribed peer (not only its mesh). Default true.
    pub flood_publish: bool,
    /// Messages larger than this many bytes make their receiver send IDONTWANT to its other
    /// mesh peers. Default 1,000.
    pub idontwant_above: usize,
    /// How long a pruned peer is not grafted again, in seconds. Default 60.
    pub prune_backoff_seconds: u64,
    /// Times a message is sent to one peer in answer to its IWANTs. Default 3.
    pub iwant_retransmissions: u32,
    /// IHAVE messages read from one peer per heartbeat. Default 10.
    pub max_ihave_messages: usize,
}

impl Default for GossipsubParams {
    fn default() -> Self {
        Self {
            d: 6,
            d_low: 5,
            d_high: 12,
            d_lazy: 6,
            d_out: 2,
            gossip_factor: 0.25,
            history_length: 5,
            history_gossip: 3,
            heartbeat_millis: 700,
            flood_publish: true,
            idontwant_above: 1_000,
            prune_backoff_seconds: 60,
            iwant_retransmissions: 3,
            max_ihave_messages: 10,
        }
    }
}

impl GossipsubParams {
    pub const fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_millis)
    }

    /// The first setting that breaks the degree and history orderings, as (name, value, rule).
    ///
    /// # Errors
    /// The offending setting.
    pub fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        let refuse = |name, value: &dyn std::fmt::Display, rule| Err((name, value.to_string(), rule));
        if self.d == 0 {
            return refuse("d", &self.d, "at least 1");
        }
        if self.d_low > self.d {
            return refuse("d_low", &self.d_low, "at most d");
        }
        if self.d_high < self.d {
            return refuse("d_high", &self.d_high, "at least d");
        }
        if self.d_out > self.d_low || 2 * self.d_out > self.d {
            return refuse("d_out", &self.d_out, "at most d_low and at most d / 2");
        }
        if !(0.0..=1.0).contains(&self.gossip_factor) {
            return refuse("gossip_factor", &self.gossip_factor, "a fraction from 0 to 1");
        }
        if self.history_length == 0 {
            return refuse("history_length", &self.history_length, "at least 1");
        }
        if self.history_gossip > self.history_length {
            return refuse("history_gossip", &self.history_gossip, "at most history_length");
        }
        if !(1..=60_000).contains(&self.heartbeat_millis) {
            return refuse("heartbeat_millis", &self.heartbeat_millis, "from 1 to 60,000");
        }
        if self.prune_backoff_seconds > 86_400 {
            return refuse("prune_backoff_seconds", &self.prune_backoff_seconds, "at most 86,400");
        }
        Ok(())
    }
}
