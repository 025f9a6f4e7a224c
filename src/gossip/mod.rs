//! The gossip core: every decision the network makes about peers and their messages.
//!
//! Owns: per-peer rate limits (token buckets on messages and bytes), peer scores with throttle /
//! disconnect / ban thresholds, a bounded seen-cache of transaction hashes, and announce/fetch
//! for large transactions (announce the hash, fetch on demand, per-peer in-flight limits,
//! timeouts, retry from another announcer), and gossipsub's mesh parameters (`gossipsub.rs`:
//! one set for the node's router and the simulator's model of it).
//! Does not: perform I/O, read the clock, use a thread RNG, spawn or await. Time and randomness
//! are passed in, so the node (`net/`) and the simulator (`sim/`) drive the same decisions.
//!
//! # Call protocol
//! After any `handle_*`, drain [`GossipCore::poll_action`] until `None`, then re-read
//! [`GossipCore::poll_timeout`] and call [`GossipCore::handle_timeout`] once it passes. `now`
//! never goes backwards; extra timeouts are harmless. Bad peer input is a state change (a
//! penalty, a `Dropped` action, a `Disconnect`), never an `Err`.

mod gossipsub;
mod limiter;
mod score;

pub use gossipsub::GossipsubParams;
pub use limiter::{Bucket, Rate};
pub use score::{Penalty, ScoreConfig};

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, Instant},
};

use alloy_primitives::{B256, Bytes, map::HashMap};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde::{Deserialize, Serialize};

use score::{Score, Standing};

use crate::tx::TxError;

/// A peer as the driver numbers it (`net/` maps libp2p peer ids to slots; the simulator uses
/// node indices). A slot stays with its peer, so bans outlive reconnections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerSlot(pub u32);

/// How much more of its budget each message costs a throttled peer.
const THROTTLE_FACTOR: f64 = 4.0;
/// Refusal periods (cool-offs and bans) remembered at once. 16,384 (~0.5 MiB) covers the peers
/// of a busy node many times over; an attacker minting identities to fill it only shortens the
/// refusals of its own earlier identities.
const MAX_BANS: usize = 16_384;

/// The driver's handle on a gossip message, returned in [`Action::Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageRef(pub u64);

/// A large transaction a peer says it can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub hash: B256,
    pub size: u32,
}

/// What a peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMsg {
    /// A full transaction, gossiped. `hash` is keccak256 of `bytes`, which the driver already
    /// has (gossipsub's message id is that hash), so the core does not hash again.
    Tx { msg: MessageRef, hash: B256, bytes: Bytes },
    /// Hashes of large transactions the peer holds, gossiped.
    Announce { msg: MessageRef, txs: Vec<Announced> },
    /// The peer asks us for transactions it saw announced.
    Request { id: u64, hashes: Vec<B256> },
    /// The peer's answer to our [`Action::Fetch`] `id`.
    Response { id: u64, txs: Vec<Bytes> },
}

/// A peer connecting or leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerChange {
    Connected,
    Disconnected,
}

/// The validation stage's answer for a transaction the core asked to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and pooled: relay it (the sender earns score).
    Accepted,
    /// Already pooled (it reached us another way first): not relayed again, and no score
    /// earned, so replaying what everyone has buys a peer nothing.
    Known,
    /// Invalid in a way its bytes prove: the sender is penalised.
    Rejected(Penalty),
    /// Not relayed, nobody blamed: a policy or state refusal, or we were busy.
    Ignored,
    /// The validation queue was full: not a verdict, counted as a drop.
    Busy,
}

impl Verdict {
    /// The verdict on a transaction validation refused: the penalty table. A peer is blamed
    /// only for what the bytes prove ([`TxError::blames_sender`]); a policy refusal of ours is
    /// ignored. A pure function of the error, so the node and the simulator judge alike.
    pub const fn for_invalid(error: &TxError) -> Self {
        if !error.blames_sender() {
            return Self::Ignored;
        }
        Self::Rejected(match error {
            // A bad KZG proof costs the verifier as a bad signature does (more): the same weight.
            TxError::HighS | TxError::InvalidSignature | TxError::BlobProofInvalid => Penalty::InvalidSignature,
            TxError::Empty
            | TxError::MalformedRlp(_)
            | TxError::FieldOverflow
            | TxError::TrailingBytes(_)
            | TxError::TypeNotSupported(_) => Penalty::Undecodable,
            _ => Penalty::InvalidTx,
        })
    }
}

/// What gossipsub should do with a message: relay it, penalise its sender, or just drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accept,
    Reject,
    Ignore,
}

/// Why a message or transaction went no further. Every one is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    RateLimited,
    Throttled,
    Oversized,
    Duplicate,
    ValidationBusy,
    FetchQueueFull,
    UnknownRequest,
    /// An announced transaction given up: no announcer left to fetch it from, or not fetched
    /// within `wanted_for`.
    FetchAbandoned,
    /// A transaction a peer fetched but whose bytes its serving budget did not cover (or a
    /// whole request, when the budget was spent).
    ServeBudget,
}

impl DropReason {
    pub const ALL: [Self; 9] = [
        Self::RateLimited,
        Self::Throttled,
        Self::Oversized,
        Self::Duplicate,
        Self::ValidationBusy,
        Self::FetchQueueFull,
        Self::UnknownRequest,
        Self::FetchAbandoned,
        Self::ServeBudget,
    ];

    pub const fn kind(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Throttled => "throttled",
            Self::Oversized => "oversized",
            Self::Duplicate => "duplicate",
            Self::ValidationBusy => "validation_busy",
            Self::FetchQueueFull => "fetch_queue_full",
            Self::UnknownRequest => "unknown_request",
            Self::FetchAbandoned => "fetch_abandoned",
            Self::ServeBudget => "serve_budget",
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Validate these bytes; answer with [`GossipCore::handle_verdict`].
    Validate { from: PeerSlot, tx: B256, bytes: Bytes },
    /// Tell gossipsub the outcome of message `msg` from `from`.
    Report { from: PeerSlot, msg: MessageRef, outcome: Acceptance },
    /// Ask `from` for these announced transactions; answer with `WireMsg::Response { id }`.
    /// `max_bytes` is what their announced sizes add up to: read no more of the response.
    Fetch { from: PeerSlot, id: u64, hashes: Vec<B256>, max_bytes: usize },
    /// Send `to` the transactions it asked for in request `id` (those we hold, each hash at most
    /// once), in order, as long as their bytes stay within `max_bytes` (the peer's serving
    /// budget); then return what was not used with [`GossipCore::handle_served`].
    Serve { to: PeerSlot, id: u64, hashes: Vec<B256>, max_bytes: usize },
    /// Gossip this (small) transaction in full.
    Publish { tx: B256, bytes: Bytes },
    /// Gossip the hashes of these (large) transactions, which we can now serve.
    Announce { txs: Vec<Announced> },
    /// Disconnect the peer and refuse it until `refuse_until` (a cool-off after a disconnect,
    /// a long ban after worse): without a refusal period it would be back in a second.
    Disconnect { peer: PeerSlot, refuse_until: Instant },
    /// Something from `from` went no further.
    Dropped { from: PeerSlot, reason: DropReason },
}

/// Limits and thresholds of the gossip core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GossipConfig {
    /// Messages per second per peer. Default 200/s, burst 400.
    pub messages: Rate,
    /// Messages per second for a peer on probation: a new connection, until it has delivered
    /// `probation_valid_txs` valid transactions. Default 20/s, burst 40 (never more than
    /// `messages`): identities are free, so a fresh one's first burst must be small.
    pub probation: Rate,
    /// Valid transactions a peer delivers to leave probation. Default 4.
    pub probation_valid_txs: u32,
    /// Bytes per second per peer. Default 1 MiB/s, burst 4 MiB.
    pub bytes: Rate,
    /// Duplicates tolerated per peer before each costs a penalty. Default 50/s, burst 200.
    pub duplicates: Rate,
    /// Largest transaction accepted from a peer (as the validation stage's size limit).
    pub max_tx_size: usize,
    /// Largest blob transaction in its network form (sidecar included) accepted from a peer's
    /// fetch response. Blob transactions are never pushed: they are announced and fetched
    /// (their sidecars are hundreds of kilobytes), and a pushed one is refused as oversized.
    /// Default: the consensus limit plus six blobs with their cell proofs (~950 KB).
    pub max_blob_tx_size: usize,
    /// Transactions above this many bytes travel by announce/fetch. Default 4 KiB (as eth/68).
    pub announce_above: usize,
    /// Transaction hashes remembered as seen. Default 65,536.
    pub seen_capacity: usize,
    /// Announced-but-not-held transactions tracked at once. Default 4,096.
    pub max_wanted: usize,
    /// Announcers remembered per wanted transaction (retry candidates). Default 8.
    pub max_announcers: usize,
    /// Transactions requested from one peer at once. Default 32.
    pub max_in_flight_per_peer: usize,
    /// Announced bytes requested from one peer at once. Default 2 MiB.
    pub max_in_flight_bytes_per_peer: usize,
    /// Bytes served to one peer's fetches. Default 1 MiB/s, burst 2 MiB: what we would ask of a
    /// peer at once ourselves, so an honest fetcher is never short, and a fetch loop costs us no
    /// more than this.
    pub serve_bytes: Rate,
    /// How long an announced transaction is wanted before it is given up, if no fetch of it
    /// succeeded. Default 30 s (six fetch timeouts).
    #[serde(with = "crate::duration_secs")]
    pub wanted_for: Duration,
    /// How long a peer has to answer a fetch. Default 5 s.
    #[serde(with = "crate::duration_secs")]
    pub fetch_timeout: Duration,
    pub score: ScoreConfig,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            messages: Rate { per_second: 200.0, burst: 400.0 },
            probation: Rate { per_second: 20.0, burst: 40.0 },
            probation_valid_txs: 4,
            bytes: Rate { per_second: 1_048_576.0, burst: 4.0 * 1_048_576.0 },
            duplicates: Rate { per_second: 50.0, burst: 200.0 },
            max_tx_size: crate::tx::MAX_TX_SIZE,
            max_blob_tx_size: crate::tx::blob::max_network_size(crate::tx::MAX_TX_SIZE, 6),
            announce_above: 4 * 1024,
            seen_capacity: 65_536,
            max_wanted: 4_096,
            max_announcers: 8,
            max_in_flight_per_peer: 32,
            max_in_flight_bytes_per_peer: 2 << 20,
            serve_bytes: Rate { per_second: 1_048_576.0, burst: 2.0 * 1_048_576.0 },
            wanted_for: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            score: ScoreConfig::default(),
        }
    }
}

/// Counters since start, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GossipStats {
    pub received_messages: u64,
    pub received_bytes: u64,
    pub validations: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub ignored: u64,
    pub fetches: u64,
    pub fetch_timeouts: u64,
    /// Peers disconnected for misbehaviour (each refused for a cool-off or a ban).
    pub disconnects: u64,
    /// Those of the disconnects that were bans (score below `ban_below`).
    pub bans: u64,
    pub dropped: BTreeMap<DropReason, u64>,
    pub penalties: BTreeMap<Penalty, u64>,
    pub peers: u64,
}

struct Peer {
    messages: Bucket,
    bytes: Bucket,
    duplicates: Bucket,
    served: Bucket,
    /// Valid transactions delivered so far (counted up to `probation_valid_txs`).
    delivered: u32,
    score: Score,
    in_flight: usize,
    in_flight_bytes: usize,
}

/// A transaction announced to us that we do not hold yet.
struct Wanted {
    size: u32,
    announcers: Vec<PeerSlot>,
    /// The request it is part of, while in flight.
    request: Option<u64>,
    /// When it is given up unless fetched (first announcement + `wanted_for`).
    expires: Instant,
}

struct Request {
    peer: PeerSlot,
    hashes: Vec<B256>,
    bytes: usize,
    deadline: Instant,
}

/// Where a transaction being validated came from.
struct Validating {
    from: PeerSlot,
    msg: Option<MessageRef>,
    size: usize,
}

/// Per-peer limits, scores, seen-cache and announce/fetch for one node. Performs no I/O.
pub struct GossipCore {
    config: GossipConfig,
    rng: StdRng,
    peers: HashMap<PeerSlot, Peer>,
    banned: HashMap<PeerSlot, Instant>,
    /// `banned` by expiry, to forget bans that ended (bounded by [`MAX_BANS`]).
    ban_expiry: BTreeSet<(Instant, PeerSlot)>,
    /// Validations in flight per peer: a slot with any is still in use.
    validating_from: HashMap<PeerSlot, u32>,
    /// Negative scores of peers that left, so reconnecting does not wipe the slate; bounded,
    /// oldest forgotten first.
    past_scores: HashMap<PeerSlot, Score>,
    past_order: VecDeque<PeerSlot>,
    seen: HashMap<B256, ()>,
    seen_order: VecDeque<B256>,
    validating: HashMap<B256, Validating>,
    wanted: HashMap<B256, Wanted>,
    /// Wanted hashes not in flight, in announcement order (a hash may appear after it left).
    fetch_queue: VecDeque<B256>,
    /// Wanted hashes by expiry, in announcement order (expiries grow with it, as `now` never
    /// goes backwards; a hash may appear after it left).
    wanted_expiry: VecDeque<(Instant, B256)>,
    requests: HashMap<u64, Request>,
    deadlines: BTreeSet<(Instant, u64)>,
    next_request: u64,
    actions: VecDeque<Action>,
    stats: GossipStats,
}

impl GossipCore {
    /// A core for one node. `seed` is its only source of randomness (retry choices).
    pub fn new(config: GossipConfig, seed: u64) -> Self {
        Self {
            config,
            rng: StdRng::seed_from_u64(seed),
            peers: HashMap::default(),
            banned: HashMap::default(),
            ban_expiry: BTreeSet::new(),
            validating_from: HashMap::default(),
            past_scores: HashMap::default(),
            past_order: VecDeque::new(),
            seen: HashMap::default(),
            seen_order: VecDeque::new(),
            validating: HashMap::default(),
            wanted: HashMap::default(),
            fetch_queue: VecDeque::new(),
            wanted_expiry: VecDeque::new(),
            requests: HashMap::default(),
            deadlines: BTreeSet::new(),
            next_request: 0,
            actions: VecDeque::new(),
            stats: GossipStats::default(),
        }
    }

    pub const fn config(&self) -> &GossipConfig {
        &self.config
    }

    pub const fn stats(&self) -> &GossipStats {
        &self.stats
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, now: Instant, peer: PeerSlot) -> bool {
        self.banned.get(&peer).is_some_and(|&until| until > now)
    }

    /// Whether the core still holds anything about `peer` (a connection, a refusal period, a
    /// score worth remembering, a validation in flight). A driver may give the slot of a
    /// disconnected peer it does not remember to another identity. Forgets a remembered score
    /// that has healed.
    pub fn remembers(&mut self, now: Instant, peer: PeerSlot) -> bool {
        if self.past_scores.get(&peer).is_some_and(|score| score.healed(now, &self.config.score)) {
            self.past_scores.remove(&peer);
        }
        self.peers.contains_key(&peer)
            || self.banned.contains_key(&peer)
            || self.past_scores.contains_key(&peer)
            || self.validating_from.contains_key(&peer)
    }

    pub fn handle_peer(&mut self, now: Instant, peer: PeerSlot, change: PeerChange) {
        match change {
            PeerChange::Connected => {
                if let Some(&until) = self.banned.get(&peer).filter(|&&until| until > now) {
                    self.actions.push_back(Action::Disconnect { peer, refuse_until: until });
                    return;
                }
                if let Some(until) = self.banned.remove(&peer) {
                    self.ban_expiry.remove(&(until, peer));
                }
                let score = self.past_scores.remove(&peer).unwrap_or_else(|| Score::new(now));
                let c = &self.config;
                let probation = Rate {
                    per_second: c.probation.per_second.min(c.messages.per_second),
                    burst: c.probation.burst.min(c.messages.burst),
                };
                let on_probation = c.probation_valid_txs > 0;
                self.peers.entry(peer).or_insert_with(|| Peer {
                    messages: Bucket::new(if on_probation { probation } else { c.messages }, now),
                    delivered: 0,
                    bytes: Bucket::new(c.bytes, now),
                    duplicates: Bucket::new(c.duplicates, now),
                    served: Bucket::new(c.serve_bytes, now),
                    score,
                    in_flight: 0,
                    in_flight_bytes: 0,
                });
            }
            PeerChange::Disconnected => {
                self.forget(peer);
                let mut lost: Vec<u64> =
                    self.requests.iter().filter(|(_, r)| r.peer == peer).map(|(&id, _)| id).collect();
                lost.sort_unstable(); // hash-map order must not reach the fetch queue (determinism)
                for id in lost {
                    self.fail_request(id, false);
                }
                for wanted in self.wanted.values_mut() {
                    wanted.announcers.retain(|&p| p != peer);
                }
                // Nobody left to fetch these from: they would be deferred forever, holding
                // places in the wanted table that honest announcements need.
                let orphaned = self.wanted.values().filter(|w| w.announcers.is_empty() && w.request.is_none()).count();
                self.wanted.retain(|_, w| !w.announcers.is_empty() || w.request.is_some());
                for _ in 0..orphaned {
                    self.drop_msg(peer, DropReason::FetchAbandoned);
                }
                self.schedule_fetches(now);
            }
        }
        self.stats.peers = self.peers.len() as u64;
    }

    pub fn handle_message(&mut self, now: Instant, from: PeerSlot, msg: WireMsg) {
        let size = match &msg {
            WireMsg::Tx { bytes, .. } => bytes.len(),
            WireMsg::Announce { txs, .. } => txs.len() * 36,
            WireMsg::Request { hashes, .. } => hashes.len() * 32,
            WireMsg::Response { txs, .. } => txs.iter().map(|tx| tx.len()).sum(),
        };
        self.stats.received_messages += 1;
        self.stats.received_bytes += size as u64;
        let gossip_ref = match &msg {
            WireMsg::Tx { msg, .. } | WireMsg::Announce { msg, .. } => Some(*msg),
            _ => None,
        };
        if !self.admit(now, from, size, gossip_ref) {
            return;
        }
        match msg {
            WireMsg::Tx { msg, hash, bytes } => self.on_tx(now, from, Some(msg), hash, bytes),
            WireMsg::Announce { msg, txs } => self.on_announce(now, from, msg, &txs),
            WireMsg::Request { id, hashes } => self.on_request(now, from, id, hashes),
            WireMsg::Response { id, txs } => self.on_response(now, from, id, txs),
        }
    }

    /// What the driver did with an [`Action::Serve`]: `unused` bytes of its allowance go back to
    /// the peer's serving budget; `withheld` transactions it holds did not fit the allowance
    /// (each a counted `serve_budget` drop).
    pub fn handle_served(&mut self, to: PeerSlot, unused: usize, withheld: usize) {
        if let Some(peer) = self.peers.get_mut(&to) {
            peer.served.give_back(unused as f64);
        }
        for _ in 0..withheld {
            self.drop_msg(to, DropReason::ServeBudget);
        }
    }

    /// A transaction submitted locally (RPC, library) and accepted: gossip it.
    pub fn handle_local(&mut self, _now: Instant, tx: B256, bytes: Bytes) {
        self.mark_seen(tx);
        self.spread(tx, bytes);
    }

    pub fn handle_verdict(&mut self, now: Instant, from: PeerSlot, tx: B256, verdict: Verdict) {
        let Some(origin) = self.validating.remove(&tx) else { return };
        if let Some(count) = self.validating_from.get_mut(&from) {
            *count -= 1;
            if *count == 0 {
                self.validating_from.remove(&from);
            }
        }
        debug_assert_eq!(origin.from, from);
        let outcome = match verdict {
            Verdict::Accepted => {
                self.stats.accepted += 1;
                if let Some(peer) = self.peers.get_mut(&from)
                    && peer.delivered < self.config.probation_valid_txs
                {
                    peer.delivered += 1;
                    if peer.delivered == self.config.probation_valid_txs {
                        peer.messages = Bucket::new(self.config.messages, now); // off probation
                    }
                }
                let reward = self.config.score.valid_tx;
                self.adjust_score(now, from, reward);
                // Gossipsub relays accepted full messages itself; fetched and large ones we announce.
                if origin.msg.is_none() || origin.size > self.config.announce_above {
                    self.actions
                        .push_back(Action::Announce { txs: vec![Announced { hash: tx, size: origin.size as u32 }] });
                }
                Acceptance::Accept
            }
            Verdict::Rejected(penalty) => {
                self.stats.rejected += 1;
                self.penalise(now, from, penalty);
                Acceptance::Reject
            }
            Verdict::Ignored | Verdict::Known => {
                self.stats.ignored += 1;
                Acceptance::Ignore
            }
            Verdict::Busy => {
                // Not seen after all: the same tx may arrive again once we have room. Its place
                // in the seen order goes too (it was marked moments ago: near the back), or a
                // later arrival would be listed twice and evicted early.
                self.seen.remove(&tx);
                if let Some(at) = self.seen_order.iter().rposition(|h| *h == tx) {
                    self.seen_order.remove(at);
                }
                self.drop_msg(from, DropReason::ValidationBusy);
                Acceptance::Ignore
            }
        };
        if let Some(msg) = origin.msg {
            self.actions.push_back(Action::Report { from, msg, outcome });
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(_, peer)) = self.ban_expiry.first().filter(|(until, _)| *until <= now) {
            self.ban_expiry.pop_first();
            self.banned.remove(&peer);
        }
        while let Some(&(expires, hash)) = self.wanted_expiry.front() {
            if expires > now {
                break;
            }
            self.wanted_expiry.pop_front();
            // Only an entry still waiting for a fetch: one in flight ends with its request.
            if let Some(wanted) = self.wanted.get(&hash).filter(|w| w.expires == expires && w.request.is_none()) {
                let first = wanted.announcers[0];
                self.wanted.remove(&hash);
                self.drop_msg(first, DropReason::FetchAbandoned);
            }
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(peer) = self.requests.get(&id).map(|r| r.peer) {
                self.stats.fetch_timeouts += 1;
                self.penalise(now, peer, Penalty::BrokenPromise);
                self.fail_request(id, true);
            }
        }
        self.schedule_fetches(now);
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let fetch = self.deadlines.first().map(|&(deadline, _)| deadline);
        let wanted = self.wanted_expiry.front().map(|&(expires, _)| expires);
        let ban = self.ban_expiry.first().map(|&(until, _)| until);
        fetch.into_iter().chain(wanted).chain(ban).min()
    }

    /// Rate limits and standing: whether to look at the message at all.
    fn admit(&mut self, now: Instant, from: PeerSlot, size: usize, msg: Option<MessageRef>) -> bool {
        let refuse = |core: &mut Self, reason| {
            core.drop_msg(from, reason);
            if let Some(msg) = msg {
                core.actions.push_back(Action::Report { from, msg, outcome: Acceptance::Ignore });
            }
            false
        };
        let Some(peer) = self.peers.get_mut(&from) else {
            // Not (or no longer) a connected peer: a message still in flight from a dropped one.
            return refuse(self, DropReason::Throttled);
        };
        // A throttled peer is served on a quarter of its budget: it can still redeem itself,
        // and it still pays penalties for what it sends, so a flooder keeps sinking.
        let throttled = peer.score.standing(&self.config.score) != Standing::Good;
        let cost = if throttled { THROTTLE_FACTOR } else { 1.0 };
        let within = peer.messages.try_take(now, cost) & peer.bytes.try_take(now, cost * size as f64);
        if !within {
            self.penalise(now, from, Penalty::RateLimited);
            return refuse(self, if throttled { DropReason::Throttled } else { DropReason::RateLimited });
        }
        true
    }

    fn on_tx(&mut self, now: Instant, from: PeerSlot, msg: Option<MessageRef>, hash: B256, bytes: Bytes) {
        let fetched_blob = msg.is_none() && crate::tx::blob::is_network_form(&bytes);
        let limit = if fetched_blob { self.config.max_blob_tx_size } else { self.config.max_tx_size };
        if bytes.len() > limit {
            self.penalise(now, from, Penalty::Oversized);
            self.drop_msg(from, DropReason::Oversized);
            if let Some(msg) = msg {
                self.actions.push_back(Action::Report { from, msg, outcome: Acceptance::Reject });
            }
            return;
        }
        if self.seen.contains_key(&hash) {
            self.duplicate(now, from);
            if let Some(msg) = msg {
                self.actions.push_back(Action::Report { from, msg, outcome: Acceptance::Ignore });
            }
            return;
        }
        self.mark_seen(hash);
        self.wanted.remove(&hash);
        self.stats.validations += 1;
        self.validating.insert(hash, Validating { from, msg, size: bytes.len() });
        *self.validating_from.entry(from).or_default() += 1;
        self.actions.push_back(Action::Validate { from, tx: hash, bytes });
    }

    fn on_announce(&mut self, now: Instant, from: PeerSlot, msg: MessageRef, txs: &[Announced]) {
        let mut oversized = false;
        let max_size = self.config.max_tx_size.max(self.config.max_blob_tx_size);
        for announced in txs {
            if announced.size as usize > max_size {
                oversized = true;
                continue;
            }
            if self.seen.contains_key(&announced.hash) {
                continue;
            }
            let max_announcers = self.config.max_announcers;
            let full = self.wanted.len() >= self.config.max_wanted;
            match self.wanted.get_mut(&announced.hash) {
                Some(wanted) => {
                    if wanted.announcers.len() < max_announcers && !wanted.announcers.contains(&from) {
                        wanted.announcers.push(from);
                    }
                }
                None if full => {
                    self.drop_msg(from, DropReason::FetchQueueFull);
                }
                None => {
                    let expires = now + self.config.wanted_for;
                    let wanted = Wanted { size: announced.size, announcers: vec![from], request: None, expires };
                    self.wanted.insert(announced.hash, wanted);
                    self.wanted_expiry.push_back((expires, announced.hash));
                    if self.wanted_expiry.len() > 4 * self.config.max_wanted {
                        // Fetched or abandoned entries wait here for their expiry; under heavy
                        // turnover drop them early, so this stays proportional to the table.
                        let wanted = &self.wanted;
                        self.wanted_expiry.retain(|(at, h)| wanted.get(h).is_some_and(|w| w.expires == *at));
                    }
                    self.fetch_queue.push_back(announced.hash);
                }
            }
        }
        // Announcements are never relayed as they are: a node announces only what it holds and
        // has validated (see `handle_verdict`), so every announcer can serve what it announced.
        let outcome = if oversized {
            self.penalise(now, from, Penalty::Oversized);
            self.drop_msg(from, DropReason::Oversized);
            Acceptance::Reject
        } else {
            Acceptance::Ignore
        };
        self.actions.push_back(Action::Report { from, msg, outcome });
        self.schedule_fetches(now);
    }

    /// A peer's fetch: each hash once, no more hashes than we would ask of a peer, and no more
    /// bytes than its serving budget holds (a request is small on the wire but may be large to
    /// answer). A peer whose budget is spent gets no answer (its request times out).
    fn on_request(&mut self, now: Instant, from: PeerSlot, id: u64, mut hashes: Vec<B256>) {
        let mut unique = BTreeSet::new();
        hashes.retain(|hash| unique.insert(*hash));
        hashes.truncate(self.config.max_in_flight_per_peer);
        let Some(peer) = self.peers.get_mut(&from) else { return };
        let max_bytes = peer.served.take_up_to(now, self.config.serve_bytes.burst) as usize;
        if max_bytes == 0 {
            self.drop_msg(from, DropReason::ServeBudget);
            return;
        }
        self.actions.push_back(Action::Serve { to: from, id, hashes, max_bytes });
    }

    fn on_response(&mut self, now: Instant, from: PeerSlot, id: u64, txs: Vec<Bytes>) {
        let Some(request) = self.requests.get(&id).filter(|r| r.peer == from) else {
            self.drop_msg(from, DropReason::UnknownRequest);
            return;
        };
        let requested = request.hashes.clone();
        let mut delivered = Vec::with_capacity(txs.len());
        let mut broken = false;
        for bytes in txs {
            // A blob transaction is served in its network form; its hash is its consensus form's.
            let hash = crate::tx::blob::tx_hash(&bytes);
            if requested.contains(&hash) && !delivered.contains(&hash) {
                delivered.push(hash);
                if let Some(wanted) = self.wanted.remove(&hash) {
                    // Served bytes must match the announced size: anything else is a broken promise.
                    if wanted.size as usize != bytes.len() {
                        broken = true;
                        continue;
                    }
                }
                self.on_tx(now, from, None, hash, bytes);
            } else {
                broken = true; // unrequested or repeated
            }
        }
        broken |= delivered.len() < requested.len();
        if broken {
            self.penalise(now, from, Penalty::BrokenPromise);
        }
        self.fail_request(id, true);
        self.schedule_fetches(now);
    }

    /// Ends request `id`: frees the peer's budget, and puts undelivered hashes back in the queue
    /// (without this peer as an announcer when `blame`).
    fn fail_request(&mut self, id: u64, blame: bool) {
        let Some(request) = self.requests.remove(&id) else { return };
        self.deadlines.remove(&(request.deadline, id));
        if let Some(peer) = self.peers.get_mut(&request.peer) {
            peer.in_flight -= request.hashes.len();
            peer.in_flight_bytes -= request.bytes;
        }
        for hash in request.hashes {
            if let Some(wanted) = self.wanted.get_mut(&hash) {
                wanted.request = None;
                if blame {
                    wanted.announcers.retain(|&p| p != request.peer);
                }
                if wanted.announcers.is_empty() {
                    self.wanted.remove(&hash);
                } else {
                    self.fetch_queue.push_back(hash);
                }
            }
        }
    }

    /// Sends fetches for queued wanted transactions to announcers with budget left.
    fn schedule_fetches(&mut self, now: Instant) {
        let mut batches: BTreeMap<PeerSlot, (Vec<B256>, usize)> = BTreeMap::new();
        let mut deferred = Vec::new();
        while let Some(hash) = self.fetch_queue.pop_front() {
            let Some(wanted) = self.wanted.get(&hash).filter(|w| w.request.is_none()) else { continue };
            let size = wanted.size as usize;
            let candidates: Vec<PeerSlot> = wanted
                .announcers
                .iter()
                .copied()
                .filter(|p| {
                    self.peers.get(p).is_some_and(|peer| {
                        let (count, bytes) = batches.get(p).map_or((0, 0), |(h, b)| (h.len(), *b));
                        peer.in_flight + count < self.config.max_in_flight_per_peer
                            && peer.in_flight_bytes + bytes + size <= self.config.max_in_flight_bytes_per_peer
                    })
                })
                .collect();
            if candidates.is_empty() {
                deferred.push(hash);
                continue;
            }
            let peer = candidates[self.rng.random_range(0..candidates.len())];
            let batch = batches.entry(peer).or_default();
            batch.0.push(hash);
            batch.1 += size;
        }
        self.fetch_queue.extend(deferred);
        for (peer, (hashes, bytes)) in batches {
            let id = self.next_request;
            self.next_request += 1;
            let deadline = now + self.config.fetch_timeout;
            for hash in &hashes {
                if let Some(wanted) = self.wanted.get_mut(hash) {
                    wanted.request = Some(id);
                }
            }
            let state = self.peers.get_mut(&peer).expect("candidates are connected");
            state.in_flight += hashes.len();
            state.in_flight_bytes += bytes;
            self.deadlines.insert((deadline, id));
            self.requests.insert(id, Request { peer, hashes: hashes.clone(), bytes, deadline });
            self.stats.fetches += 1;
            self.actions.push_back(Action::Fetch { from: peer, id, hashes, max_bytes: bytes });
        }
    }

    /// Small transactions go out in full, large ones as an announcement.
    fn spread(&mut self, tx: B256, bytes: Bytes) {
        if bytes.len() > self.config.announce_above {
            self.actions.push_back(Action::Announce { txs: vec![Announced { hash: tx, size: bytes.len() as u32 }] });
        } else {
            self.actions.push_back(Action::Publish { tx, bytes });
        }
    }

    fn duplicate(&mut self, now: Instant, from: PeerSlot) {
        self.drop_msg(from, DropReason::Duplicate);
        let tolerated = self.peers.get_mut(&from).is_some_and(|p| p.duplicates.try_take(now, 1.0));
        if !tolerated {
            self.penalise(now, from, Penalty::Duplicate);
        }
    }

    fn mark_seen(&mut self, hash: B256) {
        if self.seen.insert(hash, ()).is_none() {
            self.seen_order.push_back(hash);
            while self.seen_order.len() > self.config.seen_capacity {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// Removes a peer, remembering a negative score for when it comes back.
    fn forget(&mut self, peer: PeerSlot) {
        /// Past scores remembered; beyond this the oldest is forgotten.
        const MAX_PAST_SCORES: usize = 16_384;
        let Some(state) = self.peers.remove(&peer) else { return };
        if state.score.standing(&self.config.score) != Standing::Good || state.score.is_negative() {
            if self.past_scores.insert(peer, state.score).is_none() {
                self.past_order.push_back(peer);
            }
            while self.past_order.len() > MAX_PAST_SCORES {
                if let Some(old) = self.past_order.pop_front() {
                    self.past_scores.remove(&old);
                }
            }
        }
    }

    fn drop_msg(&mut self, from: PeerSlot, reason: DropReason) {
        *self.stats.dropped.entry(reason).or_default() += 1;
        self.actions.push_back(Action::Dropped { from, reason });
    }

    fn penalise(&mut self, now: Instant, peer: PeerSlot, penalty: Penalty) {
        *self.stats.penalties.entry(penalty).or_default() += 1;
        let weight = self.config.score.weight(penalty);
        self.adjust_score(now, peer, weight);
    }

    fn adjust_score(&mut self, now: Instant, peer: PeerSlot, delta: f64) {
        let config = &self.config.score;
        let Some(state) = self.peers.get_mut(&peer) else { return };
        let refused_for = match state.score.add(now, delta, config) {
            Standing::Good | Standing::Throttled => None,
            // A cool-off: without it a disconnected peer would be back in a second.
            Standing::Disconnect => Some(config.cool_off),
            Standing::Ban => {
                self.stats.bans += 1;
                Some(config.ban_period)
            }
        };
        if let Some(period) = refused_for {
            let until = now + period;
            self.stats.disconnects += 1;
            self.forget(peer);
            if let Some(old) = self.banned.insert(peer, until) {
                self.ban_expiry.remove(&(old, peer));
            }
            self.ban_expiry.insert((until, peer));
            while self.ban_expiry.len() > MAX_BANS {
                // Identities are free: beyond this many refusals, the one ending soonest goes.
                let (_, soonest) = self.ban_expiry.pop_first().expect("non-empty");
                self.banned.remove(&soonest);
            }
            self.actions.push_back(Action::Disconnect { peer, refuse_until: until });
        }
        self.stats.peers = self.peers.len() as u64;
    }
}

#[cfg(test)]
mod tests;
