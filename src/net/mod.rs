//! The network driver: a rust-libp2p swarm that carries out the gossip core's decisions.
//!
//! Owns: the swarm (TCP and QUIC, noise, yamux, identify, ping, connection limits, a block list,
//! gossipsub for transactions and announcements, request-response for fetches), the mapping of
//! libp2p peer ids to [`PeerSlot`]s, and the hand-off of gossiped bytes to [`Ingest`].
//! Does not: decide anything about peers ([`GossipCore`] does), validate (`validate` does), or
//! read the pool: fetches are served through the narrow [`TxSource`] the service hands it.
//!
//! The loop reads the clock once per wake-up and feeds the core; then it drains the core's
//! actions. Validation runs off the loop: `Ingest::enqueue` answers `Busy` at once (reported to
//! the core as a counted drop and to gossipsub as Ignore), otherwise a task awaits the verdict
//! and sends it back on a bounded channel.

pub mod ip_limit;
pub mod liveness;
pub mod protocol;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy_primitives::{B256, Bytes};
use futures::StreamExt as _;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identity::Keypair, request_response, swarm::SwarmEvent};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use crate::{
    gossip::{
        Action, GossipConfig, GossipCore, GossipStats, GossipsubParams, MessageRef, PeerChange, PeerSlot, Verdict,
        WireMsg,
    },
    ingest::{Ingest, IngestError},
    pool::{Added, PoolError},
};
use protocol::{Behaviour, BehaviourEvent, FetchRequest, FetchResponse, Limits};

/// Local transactions waiting to be gossiped, and publications waiting for a subscribed peer.
/// A full queue drops a publication, not the transaction: it stays pooled (a block built from
/// this pool includes it, and a peer that asks for it is served); counted as `local_dropped`.
const LOCAL_QUEUE: usize = 4_096;
/// How often bootnodes and known good peers that are not connected are dialled again: a node
/// whose peers left (or were crowded out) finds its way back without a restart.
pub const REDIAL_EVERY: Duration = Duration::from_secs(10);
/// Peers this node dialled and would dial again (addresses that worked), newest kept.
const KNOWN_GOOD: usize = 64;

/// Verdicts travelling back to the loop; one per validation in flight, which the pipeline's
/// queue already bounds.
const VERDICT_QUEUE: usize = 8_192;

/// What the network may serve to a peer's fetch: the encoded bytes of a pooled transaction that
/// may be shared (never an `Origin::Private` one).
pub trait TxSource: Send + Sync + 'static {
    fn shareable(&self, hash: &B256) -> Option<Bytes>;
}

/// What a submission's outcome means for the peer that sent it: accepted (relayed) when pooled
/// or already pooled, busy when we had no room, ignored when the refusal is ours to make (the
/// pool's rules, unavailable state), otherwise gossip's penalty table ([`Verdict::for_invalid`]).
pub const fn peer_verdict(outcome: &Result<Added, IngestError>) -> Verdict {
    match outcome {
        Ok(_) => Verdict::Accepted,
        Err(IngestError::Pool(PoolError::AlreadyKnown(_))) => Verdict::Known,
        Err(e) if e.is_busy() => Verdict::Busy,
        Err(IngestError::Invalid(e)) => Verdict::for_invalid(e),
        Err(_) => Verdict::Ignored,
    }
}

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub chain_id: u64,
    pub listen: Vec<Multiaddr>,
    pub bootnodes: Vec<Multiaddr>,
    pub max_connections: u32,
    pub gossip: GossipConfig,
    /// Gossipsub's mesh settings.
    pub gossipsub: GossipsubParams,
    /// Seed of the gossip core's randomness.
    pub seed: u64,
}

/// Network counters for metrics, refreshed by the loop twice a second.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    pub gossip: GossipStats,
    pub connected_peers: usize,
    pub banned_peers: usize,
    /// Peer identities with a slot: connected ones and those the gossip core still remembers
    /// (refused, scored, or with a validation in flight). Others' slots are reused.
    pub peer_slots: usize,
    pub malformed_announcements: u64,
    pub local_dropped: u64,
    pub publish_failures: u64,
}

enum Command {
    Local { tx: B256, bytes: Bytes },
    Dial(Multiaddr),
}

/// A running network. Dropping it stops the swarm.
pub struct NetworkHandle {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    listen: watch::Receiver<Vec<Multiaddr>>,
    stats: Arc<Mutex<NetStats>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle").field("peer_id", &self.peer_id).finish_non_exhaustive()
    }
}

impl Drop for NetworkHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NetworkHandle {
    /// Starts the swarm on the current tokio runtime.
    ///
    /// # Errors
    /// When the transports cannot be built or a listen address cannot be bound.
    pub fn start(
        key: Keypair,
        config: NetConfig,
        ingest: Ingest,
        source: Arc<dyn TxSource>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let swarm = protocol::build_swarm(key, Self::limits(&config))?;
        Self::start_on(swarm, config, ingest, source)
    }

    /// The sizes a swarm for `config` must be built with (see [`Self::start_on`]).
    pub const fn limits(config: &NetConfig) -> Limits {
        Limits {
            max_message: config.gossip.max_tx_size + 1024,
            max_connections: config.max_connections,
            gossipsub: config.gossipsub,
        }
    }

    /// Starts the driver on a swarm built elsewhere (another transport, e.g. the simulator's
    /// shaped in-memory links), with the behaviour of [`protocol::Behaviour::new`].
    ///
    /// # Errors
    /// When a listen address cannot be bound.
    pub fn start_on(
        mut swarm: Swarm<Behaviour>,
        config: NetConfig,
        ingest: Ingest,
        source: Arc<dyn TxSource>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let peer_id = *swarm.local_peer_id();
        let tx_topic = protocol::tx_topic(config.chain_id);
        let announce_topic = protocol::announce_topic(config.chain_id);
        swarm.behaviour_mut().gossipsub.subscribe(&tx_topic)?;
        swarm.behaviour_mut().gossipsub.subscribe(&announce_topic)?;
        for address in &config.listen {
            swarm.listen_on(address.clone())?;
        }
        for address in &config.bootnodes {
            // A bootnode that is down is not fatal: the node runs alone until peers appear.
            if let Err(e) = swarm.dial(address.clone()) {
                tracing::warn!(%address, error = %e, "cannot dial bootnode");
            }
        }
        let (commands, command_rx) = mpsc::channel(LOCAL_QUEUE);
        let (listen_tx, listen) = watch::channel(Vec::new());
        let stats = Arc::new(Mutex::new(NetStats::default()));
        let (verdict_tx, verdict_rx) = mpsc::channel(VERDICT_QUEUE);
        let dial_again = config.bootnodes.clone();
        let driver = Driver {
            bootnodes: dial_again.len(),
            dial_again,
            last_redial: Instant::now(),
            core: GossipCore::new(config.gossip.clone(), config.seed),
            swarm,
            ingest,
            source,
            tx_topic,
            announce_topic,
            slots: HashMap::new(),
            peers: Vec::new(),
            free_slots: Vec::new(),
            pending_messages: HashMap::new(),
            pending_serves: HashMap::new(),
            outbound: HashMap::new(),
            next_ref: 0,
            verdict_tx,
            bans: Vec::new(),
            announce_salt: config.seed.rotate_left(32),
            listen_tx,
            stats: Arc::clone(&stats),
            counters: NetStats::default(),
            unpublished: VecDeque::new(),
        };
        let task = tokio::spawn(driver.run(command_rx, verdict_rx));
        Ok(Self { peer_id, commands, listen, stats, task })
    }

    pub const fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses the swarm listens on (filled in once the listeners are up).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen.borrow().clone()
    }

    /// Waits until the swarm listens on at least one address.
    pub async fn wait_listening(&mut self) -> Vec<Multiaddr> {
        let _ = self.listen.wait_for(|addrs| !addrs.is_empty()).await;
        self.listen_addrs()
    }

    /// Gossips a transaction this node accepted from a local source. Never waits.
    pub fn publish_local(&self, tx: B256, bytes: Bytes) {
        if self.commands.try_send(Command::Local { tx, bytes }).is_err() {
            self.stats.lock().expect("stats lock").local_dropped += 1;
        }
    }

    /// Dials a peer.
    pub fn dial(&self, address: Multiaddr) {
        let _ = self.commands.try_send(Command::Dial(address));
    }

    pub fn stats(&self) -> NetStats {
        self.stats.lock().expect("stats lock").clone()
    }
}

struct VerdictMsg {
    from: PeerSlot,
    tx: B256,
    verdict: Verdict,
}

struct Driver {
    core: GossipCore,
    swarm: Swarm<Behaviour>,
    ingest: Ingest,
    source: Arc<dyn TxSource>,
    tx_topic: gossipsub::IdentTopic,
    announce_topic: gossipsub::IdentTopic,
    /// Bootnodes and the addresses of peers we dialled (at most `KNOWN_GOOD` of those), dialled
    /// again every `REDIAL_EVERY` while not connected.
    dial_again: Vec<Multiaddr>,
    /// How many of `dial_again` are bootnodes (the first ones; never dropped).
    bootnodes: usize,
    last_redial: Instant,
    slots: HashMap<PeerId, PeerSlot>,
    /// Each slot's identity, while the slot is in use (freed slots keep their last one until
    /// reused; `slots` says which are in use).
    peers: Vec<PeerId>,
    /// Slots of identities nobody remembers, to give to new identities.
    free_slots: Vec<PeerSlot>,
    pending_messages: HashMap<MessageRef, (gossipsub::MessageId, PeerId)>,
    pending_serves: HashMap<u64, request_response::ResponseChannel<FetchResponse>>,
    outbound: HashMap<request_response::OutboundRequestId, (u64, PeerSlot)>,
    next_ref: u64,
    verdict_tx: mpsc::Sender<VerdictMsg>,
    bans: Vec<(Instant, PeerId)>,
    /// Makes each of our announcement messages unique (see `protocol::encode_announcements`).
    announce_salt: u64,
    listen_tx: watch::Sender<Vec<Multiaddr>>,
    stats: Arc<Mutex<NetStats>>,
    counters: NetStats,
    /// Publications that found no subscribed peer, oldest first (at most `LOCAL_QUEUE`).
    unpublished: VecDeque<(gossipsub::IdentTopic, Bytes)>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut verdicts: mpsc::Receiver<VerdictMsg>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let deadline = self.core.poll_timeout().map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3_600),
                tokio::time::Instant::from_std,
            );
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(v) = verdicts.recv() => self.core.handle_verdict(Instant::now(), v.from, v.tx, v.verdict),
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Local { tx, bytes }) => self.core.handle_local(Instant::now(), tx, bytes),
                    Some(Command::Dial(address)) => {
                        if let Err(e) = self.swarm.dial(address) {
                            tracing::debug!(error = %e, "dial failed");
                        }
                    }
                },
                () = tokio::time::sleep_until(deadline) => self.core.handle_timeout(Instant::now()),
                _ = tick.tick() => self.on_tick(),
            }
            self.apply_actions();
        }
    }

    fn apply_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Validate { from, tx, bytes } => self.validate(from, tx, bytes),
                Action::Report { msg, outcome, .. } => {
                    if let Some((id, source)) = self.pending_messages.remove(&msg) {
                        let acceptance = match outcome {
                            crate::gossip::Acceptance::Accept => gossipsub::MessageAcceptance::Accept,
                            crate::gossip::Acceptance::Reject => gossipsub::MessageAcceptance::Reject,
                            crate::gossip::Acceptance::Ignore => gossipsub::MessageAcceptance::Ignore,
                        };
                        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, acceptance);
                    }
                }
                Action::Fetch { from, id, hashes, max_bytes } => match self.peers.get(from.0 as usize) {
                    Some(peer) => {
                        let max_response = protocol::response_cap(max_bytes, hashes.len());
                        let request = FetchRequest { hashes, max_response };
                        let request = self.swarm.behaviour_mut().fetch.send_request(peer, request);
                        self.outbound.insert(request, (id, from));
                    }
                    None => self.core.handle_message(Instant::now(), from, WireMsg::Response { id, txs: Vec::new() }),
                },
                Action::Serve { to, id, hashes, max_bytes } => {
                    let (mut budget, mut withheld) = (max_bytes, 0);
                    if let Some(channel) = self.pending_serves.remove(&id) {
                        let mut txs = Vec::with_capacity(hashes.len());
                        for tx in hashes.iter().filter_map(|h| self.source.shareable(h)) {
                            // In order, while the peer's serving budget lasts: what is left out
                            // the requester fetches again later, or from another announcer.
                            if tx.len() <= budget {
                                budget -= tx.len();
                                txs.push(tx);
                            } else {
                                withheld += 1;
                            }
                        }
                        let _ = self.swarm.behaviour_mut().fetch.send_response(channel, FetchResponse { txs });
                    }
                    self.core.handle_served(to, budget, withheld);
                }
                Action::Publish { bytes, .. } => {
                    let topic = self.tx_topic.clone();
                    self.publish(topic, bytes);
                }
                Action::Announce { txs } => {
                    let topic = self.announce_topic.clone();
                    self.announce_salt = self.announce_salt.wrapping_add(1);
                    self.publish(topic, protocol::encode_announcements(self.announce_salt, &txs).into());
                }
                Action::Disconnect { peer, refuse_until } => {
                    let Some(&peer_id) = self.peers.get(peer.0 as usize) else { continue };
                    tracing::info!(%peer_id, refused_for = ?refuse_until.saturating_duration_since(Instant::now()), "disconnecting peer");
                    self.swarm.behaviour_mut().blocked.block_peer(peer_id);
                    self.bans.push((refuse_until, peer_id));
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                }
                Action::Dropped { .. } => {} // counted in the core's stats
            }
        }
    }

    fn validate(&mut self, from: PeerSlot, tx: B256, bytes: Bytes) {
        match self.ingest.enqueue_hashed(tx, bytes) {
            Ok(outcome) => {
                let verdicts = self.verdict_tx.clone();
                tokio::spawn(async move {
                    let verdict = peer_verdict(&outcome.await);
                    let _ = verdicts.send(VerdictMsg { from, tx, verdict }).await;
                });
            }
            Err(busy) => self.core.handle_verdict(Instant::now(), from, tx, peer_verdict(&Err(busy))),
        }
    }

    /// `data` is `Bytes` so keeping it for a retry costs no copy: gossipsub takes its own.
    fn publish(&mut self, topic: gossipsub::IdentTopic, data: Bytes) {
        match self.swarm.behaviour_mut().gossipsub.publish(topic.hash(), data.to_vec()) {
            Ok(_) => {}
            // No peer subscribed yet (a node just started, restored transactions included):
            // kept and published again once peers are there.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                if self.unpublished.len() == LOCAL_QUEUE {
                    self.unpublished.pop_front();
                    self.counters.local_dropped += 1;
                }
                self.unpublished.push_back((topic, data));
            }
            // A duplicate of what gossipsub already relayed, or full peer queues: the
            // transaction stays pooled (and served to fetches); counted.
            Err(e) => {
                tracing::debug!(error = %e, "publish");
                self.counters.publish_failures += 1;
            }
        }
    }

    /// Publishes again what found no peer, while peers are connected.
    fn retry_unpublished(&mut self) {
        for _ in 0..self.unpublished.len() {
            if self.swarm.connected_peers().next().is_none() {
                return;
            }
            let Some((topic, data)) = self.unpublished.pop_front() else { return };
            if let Err(gossipsub::PublishError::NoPeersSubscribedToTopic) =
                self.swarm.behaviour_mut().gossipsub.publish(topic.hash(), data.to_vec())
            {
                self.unpublished.push_front((topic, data)); // peers not subscribed yet: next tick
                return;
            }
        }
    }

    fn slot(&mut self, peer: PeerId) -> PeerSlot {
        *self.slots.entry(peer).or_insert_with(|| match self.free_slots.pop() {
            Some(slot) => {
                self.peers[slot.0 as usize] = peer;
                slot
            }
            None => {
                self.peers.push(peer);
                PeerSlot(u32::try_from(self.peers.len() - 1).expect("fewer than 2^32 peers"))
            }
        })
    }

    /// Frees the slots of identities that are gone and that the core no longer remembers, so
    /// the table holds only what a connection or a remembered score uses.
    fn free_unused_slots(&mut self, now: Instant) {
        let (swarm, core) = (&self.swarm, &mut self.core);
        let mut freed = Vec::new();
        self.slots.retain(|peer, &mut slot| {
            let keep = swarm.is_connected(peer) || core.remembers(now, slot);
            if !keep {
                freed.push(slot);
            }
            keep
        });
        freed.sort_unstable(); // reuse low slots first: deterministic, and the table stays dense
        freed.reverse();
        self.free_slots.extend(freed);
    }

    fn message_ref(&mut self, id: gossipsub::MessageId, source: PeerId) -> MessageRef {
        self.next_ref += 1;
        let msg = MessageRef(self.next_ref);
        self.pending_messages.insert(msg, (id, source));
        msg
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let from = self.slot(propagation_source);
                // Our message id function makes the id keccak256(data): the tx hash, for free.
                let hash = B256::try_from(message_id.0.as_slice()).expect("message ids are 32-byte hashes");
                let msg = self.message_ref(message_id, propagation_source);
                if message.topic == self.tx_topic.hash() {
                    self.core.handle_message(now, from, WireMsg::Tx { msg, hash, bytes: message.data.into() });
                } else if let Some(txs) = protocol::decode_announcements(&message.data) {
                    self.core.handle_message(now, from, WireMsg::Announce { msg, txs });
                } else {
                    self.counters.malformed_announcements += 1;
                    let (id, source) = self.pending_messages.remove(&msg).expect("just inserted");
                    let reject = gossipsub::MessageAcceptance::Reject;
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, reject);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Fetch(request_response::Event::Message {
                peer, message, ..
            })) => {
                let from = self.slot(peer);
                match message {
                    request_response::Message::Request { request, channel, .. } => {
                        self.next_ref += 1;
                        let id = self.next_ref;
                        self.pending_serves.insert(id, channel);
                        self.core.handle_message(now, from, WireMsg::Request { id, hashes: request.hashes });
                        self.apply_actions();
                        // Not served (rate-limited or throttled): drop the channel, the peer times out.
                        self.pending_serves.remove(&id);
                    }
                    request_response::Message::Response { request_id, response } => {
                        if let Some((id, from)) = self.outbound.remove(&request_id) {
                            self.core.handle_message(now, from, WireMsg::Response { id, txs: response.txs });
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Fetch(request_response::Event::OutboundFailure {
                request_id,
                ..
            })) => {
                if let Some((id, from)) = self.outbound.remove(&request_id) {
                    self.core.handle_message(now, from, WireMsg::Response { id, txs: Vec::new() });
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, num_established, endpoint, .. }
                if num_established.get() == 1 =>
            {
                if let libp2p::core::ConnectedPoint::Dialer { address, .. } = &endpoint {
                    self.remember_dialled(peer_id, address);
                }
                let slot = self.slot(peer_id);
                self.core.handle_peer(now, slot, PeerChange::Connected);
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                let slot = self.slot(peer_id);
                self.core.handle_peer(now, slot, PeerChange::Disconnected);
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.listen_tx.send_modify(|addrs| addrs.push(address));
            }
            _ => {}
        }
    }

    /// Keeps a dialled peer's address (with its id) for re-dialling; bootnodes stay first.
    fn remember_dialled(&mut self, peer: PeerId, address: &Multiaddr) {
        let address = match address.iter().last() {
            Some(libp2p::multiaddr::Protocol::P2p(_)) => address.clone(),
            _ => address.clone().with(libp2p::multiaddr::Protocol::P2p(peer)),
        };
        if !self.dial_again.contains(&address) {
            self.dial_again.push(address);
        }
        if self.dial_again.len() > self.bootnodes + KNOWN_GOOD {
            self.dial_again.remove(self.bootnodes); // the oldest known good peer
        }
    }

    /// Dials again the bootnodes and known good peers that are not connected (and not refused).
    fn redial(&mut self) {
        for address in self.dial_again.clone() {
            let peer = address.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
                _ => None,
            });
            let refused = peer.is_some_and(|p| self.bans.iter().any(|&(_, banned)| banned == p));
            if !refused && !peer.is_some_and(|p| self.swarm.is_connected(&p)) {
                // Failures are normal (the peer may be down): the next round tries again.
                let _ = self.swarm.dial(address);
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.free_unused_slots(now);
        self.retry_unpublished();
        if now.duration_since(self.last_redial) >= REDIAL_EVERY {
            self.last_redial = now;
            self.redial();
        }
        let blocked = &mut self.swarm.behaviour_mut().blocked;
        self.bans.retain(|&(until, peer)| {
            let active = until > now;
            if !active {
                blocked.unblock_peer(peer);
            }
            active
        });
        let mut stats = self.stats.lock().expect("stats lock");
        let local_dropped = stats.local_dropped;
        *stats = NetStats {
            gossip: self.core.stats().clone(),
            connected_peers: self.swarm.connected_peers().count(),
            banned_peers: self.bans.len(),
            peer_slots: self.slots.len(),
            local_dropped,
            ..self.counters.clone()
        };
    }
}
