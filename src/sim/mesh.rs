//! The discrete-event engine's model of one node's gossipsub router on the transaction topic:
//! its mesh, kept by heartbeats and by GRAFT/PRUNE exchanged with peers, its message cache and
//! the IHAVE/IWANT/IDONTWANT control messages, as gossipsub v1.2 specifies them and
//! rust-libp2p's router implements them (the swarm engine runs that router with the same
//! [`GossipsubParams`]).
//!
//! Owns: mesh membership, outbound flags, prune backoffs, the duplicate cache (one bit per
//! simulated message), the message cache's history windows, IWANT promises and retransmission
//! counts, IDONTWANT marks. Does not: send anything, read a clock or draw randomness of its
//! own: every method takes the virtual time and the engine's generator and returns what to send.
//!
//! Left out, as the scenario has no use for them: peer scoring (attackers are cut off by the
//! gossip core's own scores, which the engine models), peer exchange on PRUNE, opportunistic
//! grafting (it acts on scores), fanout (every node is subscribed), and per-peer send queues.

use alloy_primitives::map::HashMap;
use rand::{rngs::StdRng, seq::SliceRandom as _};

use crate::gossip::GossipsubParams;

/// A control message one router sends another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Graft,
    Prune,
    IHave(Vec<u32>),
    IWant(Vec<u32>),
    IDontWant(u32),
}

/// What arrived with a message: the first copy, to validate, or a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// New: validate it; `idontwant` are the peers to tell not to send it.
    First {
        idontwant: Vec<u32>,
    },
    Duplicate,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    id: u32,
    /// This node dialed it.
    outbound: bool,
    /// Not grafted again before this time (ns), after a PRUNE either way.
    backoff_until: u64,
    /// IHAVE messages read from it since the last heartbeat.
    ihaves: usize,
}

/// A message in the cache: servable to IWANT and advertised by IHAVE once validated.
#[derive(Debug, Default)]
struct Cached {
    validated: bool,
    /// Peers it came from while it was being validated: not sent back to them.
    senders: Vec<u32>,
    /// Times it was sent to each peer in answer to IWANT.
    iwant_answers: Vec<(u32, u32)>,
}

/// One node's router.
#[derive(Debug)]
pub struct Router {
    params: GossipsubParams,
    prune_backoff_ns: u64,
    peers: Vec<Peer>,
    mesh: Vec<u32>,
    /// Gossipsub's duplicate cache: a bit per message id seen (received or published).
    seen: Bits,
    /// Ids whose validation is over: a duplicate of one needs no bookkeeping (the common case,
    /// checked without touching the cache).
    settled: Bits,
    /// The message cache: ids by the heartbeat window they arrived in, newest first.
    windows: Vec<Vec<u32>>,
    cache: HashMap<u32, Cached>,
    /// Ids asked for by IWANT and not yet received, with the time the promise lapses.
    promises: HashMap<u32, u64>,
    /// Per id, the peers that said IDONTWANT (often before the message arrives here) and when
    /// each did; kept for the message cache's lifetime after the first.
    dont_send: HashMap<u32, Vec<(u32, u64)>>,
}

/// A set of message ids, one bit each (ids are dense: the engine numbers its messages).
#[derive(Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    /// Adds `id`; returns whether it was already there.
    fn insert(&mut self, id: u32) -> bool {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        let had = self.0[word] & bit != 0;
        self.0[word] |= bit;
        had
    }

    fn contains(&self, id: u32) -> bool {
        self.0.get(id as usize / 64).is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }
}

/// How long a peer has to answer an IWANT before the id may be asked of another (rust-libp2p's
/// `iwant_followup_time`).
const IWANT_FOLLOWUP_NS: u64 = 3_000_000_000;

impl Router {
    pub fn new(params: GossipsubParams) -> Self {
        Self {
            prune_backoff_ns: params.prune_backoff_seconds * 1_000_000_000,
            windows: vec![Vec::new(); params.history_length],
            params,
            peers: Vec::new(),
            mesh: Vec::new(),
            seen: Bits::default(),
            settled: Bits::default(),
            cache: HashMap::default(),
            promises: HashMap::default(),
            dont_send: HashMap::default(),
        }
    }

    /// The current mesh.
    pub fn mesh(&self) -> &[u32] {
        &self.mesh
    }

    fn peer(&mut self, id: u32) -> Option<&mut Peer> {
        self.peers.iter_mut().find(|p| p.id == id)
    }

    fn is_outbound(&self, id: u32) -> bool {
        self.peers.iter().any(|p| p.id == id && p.outbound)
    }

    /// A peer connected and subscribed: while the mesh is below `d_low` it joins at once
    /// (GRAFT), as rust-libp2p does when it learns a peer's subscription.
    pub fn peer_connected(&mut self, id: u32, outbound: bool, out: &mut Vec<(u32, Control)>) {
        if self.peers.iter().any(|p| p.id == id) {
            return;
        }
        self.peers.push(Peer { id, outbound, backoff_until: 0, ihaves: 0 });
        if self.mesh.len() < self.params.d_low {
            self.mesh.push(id);
            out.push((id, Control::Graft));
        }
    }

    pub fn peer_gone(&mut self, id: u32) {
        self.peers.retain(|p| p.id != id);
        self.mesh.retain(|&p| p != id);
    }

    /// A GRAFT: joins the mesh unless backed off or the mesh is full (`d_high`) and the peer
    /// is inbound; a refusal is answered with PRUNE, which backs the peer off here too.
    pub fn on_graft(&mut self, from: u32, now: u64, out: &mut Vec<(u32, Control)>) {
        let full = self.mesh.len() >= self.params.d_high && !self.is_outbound(from);
        let in_mesh = self.mesh.contains(&from);
        let until = now + self.prune_backoff_ns;
        let Some(peer) = self.peer(from) else { return };
        if in_mesh {
            return;
        }
        if peer.backoff_until > now || full {
            peer.backoff_until = peer.backoff_until.max(until);
            out.push((from, Control::Prune));
            return;
        }
        self.mesh.push(from);
    }

    /// A PRUNE: leaves the mesh and is not grafted again for the backoff.
    pub fn on_prune(&mut self, from: u32, now: u64) {
        let backoff = now + self.prune_backoff_ns;
        self.mesh.retain(|&p| p != from);
        if let Some(peer) = self.peer(from) {
            peer.backoff_until = backoff;
        }
    }

    /// Marks `tx` in the duplicate cache; returns whether it was already there.
    pub fn mark_seen(&mut self, tx: u32) -> bool {
        self.seen.insert(tx)
    }

    /// Whether the duplicate cache holds `tx`.
    pub fn has_seen(&self, tx: u32) -> bool {
        self.seen.contains(tx)
    }

    /// A message arrived from `from` (`size` bytes on the wire).
    pub fn on_message(&mut self, from: u32, tx: u32, size: usize) -> Receipt {
        if self.mark_seen(tx) {
            if self.settled.contains(tx) {
                return Receipt::Duplicate;
            }
            if let Some(cached) = self.cache.get_mut(&tx)
                && !cached.validated
                && !cached.senders.contains(&from)
            {
                cached.senders.push(from);
            }
            return Receipt::Duplicate;
        }
        self.promises.remove(&tx);
        self.windows[0].push(tx);
        self.cache.insert(tx, Cached { senders: vec![from], ..Cached::default() });
        let idontwant = if size > self.params.idontwant_above {
            self.mesh.iter().copied().filter(|&p| p != from).collect()
        } else {
            Vec::new()
        };
        Receipt::First { idontwant }
    }

    /// The application's verdict on `tx`: accepted ones are forwarded to the mesh (the
    /// returned peers: not the ones it came from, not those that sent IDONTWANT) and kept for
    /// gossip; others leave the cache.
    pub fn validated(&mut self, tx: u32, accepted: bool) -> Vec<u32> {
        self.settled.insert(tx);
        if !accepted {
            self.cache.remove(&tx);
            return Vec::new();
        }
        let Some(cached) = self.cache.get_mut(&tx) else { return Vec::new() };
        cached.validated = true;
        let unwanted = self.dont_send.get(&tx).map_or(&[][..], Vec::as_slice);
        let wanted = |p: &u32| !cached.senders.contains(p) && unwanted.iter().all(|(q, _)| q != p);
        self.mesh.iter().copied().filter(wanted).collect()
    }

    /// This node's own message: to every peer with `flood_publish`, else to the mesh (or, with
    /// no mesh yet, to `d` random peers).
    pub fn publish(&mut self, tx: u32, rng: &mut StdRng) -> Vec<u32> {
        self.mark_seen(tx);
        self.windows[0].push(tx);
        self.cache.insert(tx, Cached { validated: true, ..Cached::default() });
        if self.params.flood_publish {
            self.peers.iter().map(|p| p.id).collect()
        } else if self.mesh.is_empty() {
            let mut peers: Vec<u32> = self.peers.iter().map(|p| p.id).collect();
            peers.shuffle(rng);
            peers.truncate(self.params.d);
            peers
        } else {
            self.mesh.clone()
        }
    }

    pub fn on_idontwant(&mut self, from: u32, tx: u32, now: u64) {
        let peers = self.dont_send.entry(tx).or_default();
        if peers.iter().all(|(p, _)| *p != from) {
            peers.push((from, now));
        }
    }

    /// When `peer`'s IDONTWANT for `tx` arrived, if it did.
    pub fn unwanted_since(&self, tx: u32, peer: u32) -> Option<u64> {
        self.dont_send.get(&tx)?.iter().find(|(p, _)| *p == peer).map(|(_, at)| *at)
    }

    /// An IHAVE: the ids not seen and not already asked for, to ask `from` for (IWANT); up to
    /// `max_ihave_messages` IHAVEs per peer and heartbeat are read.
    pub fn on_ihave(&mut self, from: u32, ids: Vec<u32>, now: u64) -> Option<Vec<u32>> {
        let limit = self.params.max_ihave_messages;
        let peer = self.peer(from)?;
        peer.ihaves += 1;
        if peer.ihaves > limit {
            return None;
        }
        let wanted: Vec<u32> = ids
            .into_iter()
            .filter(|&t| !self.has_seen(t) && self.promises.get(&t).is_none_or(|&until| until <= now))
            .collect();
        for &t in &wanted {
            self.promises.insert(t, now + IWANT_FOLLOWUP_NS);
        }
        (!wanted.is_empty()).then_some(wanted)
    }

    /// An IWANT: the cached, validated ids to send `from`, each at most
    /// `iwant_retransmissions` times and never after its IDONTWANT.
    pub fn on_iwant(&mut self, from: u32, ids: Vec<u32>) -> Vec<u32> {
        let limit = self.params.iwant_retransmissions;
        let dont_send = &self.dont_send;
        let unwanted = |t: u32| dont_send.get(&t).is_some_and(|peers| peers.iter().any(|(p, _)| *p == from));
        ids.into_iter()
            .filter(|t| {
                let Some(cached) = self.cache.get_mut(t) else { return false };
                if !cached.validated || unwanted(*t) {
                    return false;
                }
                let count = match cached.iwant_answers.iter_mut().find(|(p, _)| *p == from) {
                    Some((_, count)) => count,
                    None => {
                        cached.iwant_answers.push((from, 0));
                        &mut cached.iwant_answers.last_mut().expect("just pushed").1
                    }
                };
                *count += 1;
                *count <= limit
            })
            .collect()
    }

    /// The heartbeat: drop nothing for score (none is kept), graft up to `d` below `d_low`,
    /// prune down to `d` at `d_high` (keeping `d_out` outbound peers), top up outbound peers,
    /// send IHAVE for the gossip windows to `max(d_lazy, gossip_factor × eligible)` peers
    /// outside the mesh, and shift the cache's windows.
    pub fn heartbeat(&mut self, now: u64, rng: &mut StdRng, out: &mut Vec<(u32, Control)>) {
        let params = self.params;
        for peer in &mut self.peers {
            peer.ihaves = 0;
        }
        if self.mesh.len() < params.d_low {
            let wanted = params.d - self.mesh.len();
            for id in self.candidates(now, rng, |_| true).into_iter().take(wanted) {
                self.mesh.push(id);
                out.push((id, Control::Graft));
            }
        }
        if self.mesh.len() >= params.d_high {
            let mut mesh = std::mem::take(&mut self.mesh);
            mesh.shuffle(rng);
            let mut outbound = mesh.iter().filter(|&&p| self.is_outbound(p)).count();
            let mut excess = mesh.len() - params.d;
            for id in mesh {
                let is_outbound = self.is_outbound(id);
                if excess == 0 || (is_outbound && outbound <= params.d_out) {
                    self.mesh.push(id);
                    continue;
                }
                outbound -= usize::from(is_outbound);
                excess -= 1;
                let until = now + self.prune_backoff_ns;
                if let Some(peer) = self.peer(id) {
                    peer.backoff_until = until;
                }
                out.push((id, Control::Prune));
            }
        }
        if self.mesh.len() >= params.d_low {
            let outbound = self.mesh.iter().filter(|&&p| self.is_outbound(p)).count();
            if outbound < params.d_out {
                let outbound_peers: Vec<u32> = self.peers.iter().filter(|p| p.outbound).map(|p| p.id).collect();
                let wanted = params.d_out - outbound;
                for id in self.candidates(now, rng, |id| outbound_peers.contains(&id)).into_iter().take(wanted) {
                    self.mesh.push(id);
                    out.push((id, Control::Graft));
                }
            }
        }
        self.emit_gossip(rng, out);
        let expired = self.windows.pop().unwrap_or_default();
        for tx in expired {
            self.cache.remove(&tx);
        }
        self.windows.insert(0, Vec::new());
        self.promises.retain(|_, &mut until| until > now);
        let kept_for = params.history_length as u64 * params.heartbeat_millis * 1_000_000;
        self.dont_send.retain(|_, peers| peers[0].1 + kept_for > now);
    }

    /// Peers outside the mesh and not backed off that pass `filter`, shuffled.
    fn candidates(&self, now: u64, rng: &mut StdRng, filter: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .peers
            .iter()
            .filter(|p| !self.mesh.contains(&p.id) && p.backoff_until <= now && filter(p.id))
            .map(|p| p.id)
            .collect();
        ids.shuffle(rng);
        ids
    }

    fn emit_gossip(&self, rng: &mut StdRng, out: &mut Vec<(u32, Control)>) {
        let ids: Vec<u32> = self.windows[..self.params.history_gossip]
            .iter()
            .flatten()
            .copied()
            .filter(|t| self.cache.get(t).is_some_and(|c| c.validated))
            .collect();
        if ids.is_empty() {
            return;
        }
        let mut eligible: Vec<u32> = self.peers.iter().map(|p| p.id).filter(|p| !self.mesh.contains(p)).collect();
        let count = self.params.d_lazy.max((self.params.gossip_factor * eligible.len() as f64) as usize);
        eligible.shuffle(rng);
        for peer in eligible.into_iter().take(count) {
            out.push((peer, Control::IHave(ids.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    /// A router with `peers` (outbound when even) that has grafted the first `d_low`.
    fn router(peers: u32) -> (Router, Vec<(u32, Control)>) {
        let mut router = Router::new(GossipsubParams { d: 4, d_low: 3, d_high: 6, d_out: 1, ..Default::default() });
        let mut out = Vec::new();
        for peer in 0..peers {
            router.peer_connected(peer, peer % 2 == 0, &mut out);
        }
        (router, out)
    }

    #[test]
    fn the_first_peers_are_grafted_until_d_low() {
        let (router, out) = router(10);
        assert_eq!(router.mesh(), [0, 1, 2]);
        assert_eq!(out, [(0, Control::Graft), (1, Control::Graft), (2, Control::Graft)]);
    }

    #[test]
    fn a_pruned_peer_is_no_longer_pushed_to_nor_grafted_during_its_backoff() {
        let (mut router, _) = router(10);
        router.on_prune(1, 0);
        assert!(matches!(router.on_message(0, 7, 100), Receipt::First { .. }));
        assert_eq!(router.validated(7, true), [2], "not back to the sender, not to the pruned peer");
        let mut out = Vec::new();
        router.on_graft(1, 1_000, &mut out);
        assert_eq!(out, [(1, Control::Prune)], "a GRAFT within the backoff is answered with PRUNE");
        router.heartbeat(2_000, &mut StdRng::seed_from_u64(1), &mut out);
        assert!(!router.mesh().contains(&1), "the heartbeat does not graft it back either");
        router.on_graft(1, 61_000_000_000, &mut Vec::new());
        assert!(router.mesh().contains(&1), "after the backoff it may join again");
    }

    #[test]
    fn idontwant_suppresses_a_push_and_an_iwant_answer() {
        let (mut router, _) = router(10);
        let Receipt::First { idontwant } = router.on_message(0, 7, 5_000) else { panic!("first copy") };
        assert_eq!(idontwant, [1, 2], "a large message: the other mesh peers are told");
        router.on_idontwant(2, 7, 0);
        assert_eq!(router.validated(7, true), [1]);
        assert!(router.on_iwant(2, vec![7]).is_empty());
        let Receipt::First { idontwant } = router.on_message(0, 8, 500) else { panic!("first copy") };
        assert!(idontwant.is_empty(), "below the threshold nobody is told");
        router.on_idontwant(1, 9, 0);
        assert!(matches!(router.on_message(0, 9, 5_000), Receipt::First { .. }));
        assert_eq!(router.validated(9, true), [2], "an IDONTWANT that came before the message counts");
    }

    #[test]
    fn a_full_mesh_refuses_inbound_grafts_and_a_heartbeat_prunes_it_to_d() {
        let (mut router, mut out) = router(12);
        out.clear();
        for peer in [3, 5, 7] {
            router.on_graft(peer, 0, &mut out);
        }
        assert_eq!(router.mesh().len(), 6);
        router.on_graft(9, 0, &mut out);
        assert_eq!(out, [(9, Control::Prune)], "inbound peer 9 refused at d_high");
        assert!(router.peers.iter().any(|p| p.id == 9 && p.backoff_until > 0), "and backed off here too");
        router.on_graft(4, 0, &mut out);
        assert!(router.mesh().contains(&4), "an outbound peer is taken even then");
        out.clear();
        router.heartbeat(0, &mut StdRng::seed_from_u64(1), &mut out);
        assert_eq!(router.mesh().len(), 4, "pruned to d");
        assert_eq!(out.iter().filter(|(_, c)| *c == Control::Prune).count(), 3);
        assert!(router.mesh().iter().any(|p| p % 2 == 0), "d_out outbound peers kept");
    }

    #[test]
    fn ihave_is_answered_once_per_promise_and_iwant_from_the_cache() {
        let (mut router, _) = router(10);
        assert_eq!(router.on_ihave(5, vec![7, 8], 0), Some(vec![7, 8]));
        assert_eq!(router.on_ihave(6, vec![7], 0), None, "already asked of peer 5");
        assert_eq!(router.on_ihave(6, vec![7], IWANT_FOLLOWUP_NS), Some(vec![7]), "the promise lapsed");
        router.on_message(5, 7, 100);
        router.validated(7, true);
        assert_eq!(router.on_ihave(6, vec![7], 0), None, "seen");
        assert_eq!(router.on_iwant(6, vec![7, 9]), [7], "only what the cache holds");
        let mut rng = StdRng::seed_from_u64(1);
        let mut out = Vec::new();
        router.heartbeat(0, &mut rng, &mut out);
        let ihaves: Vec<_> = out.iter().filter(|(_, c)| matches!(c, Control::IHave(_))).collect();
        assert_eq!(ihaves.len(), 6, "d_lazy peers outside the mesh");
        assert!(ihaves.iter().all(|(p, c)| !router.mesh().contains(p) && *c == Control::IHave(vec![7])));
        for _ in 0..5 {
            router.heartbeat(0, &mut rng, &mut Vec::new());
        }
        assert!(router.on_iwant(6, vec![7]).is_empty(), "gone from the cache after history_length heartbeats");
    }
}
