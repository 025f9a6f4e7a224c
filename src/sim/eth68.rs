//! The discrete-event engine's model of Ethereum's devp2p transaction exchange (eth/68), for
//! comparison with gossipsub on the same layout: a node that newly holds a transaction sends it
//! in full to the square root of its peers that do not know it and announces its hash to the
//! others; a node hearing an announcement for a transaction it lacks waits (for the full copy
//! that may be on its way), then fetches it from an announcer, trying the next one if the
//! answer does not come.
//!
//! Timings as geth's transaction fetcher uses them: a 500 ms wait before fetching and 5 s for an
//! answer; transactions above 4 KiB are only announced (geth's broadcast size limit, also the
//! gossip core's `announce_above`).
//!
//! Owns: per node, which peers are known to hold which transaction, and the announcements
//! waiting to be fetched. Does not: send, validate or read a clock (the engine does).

use alloy_primitives::map::HashMap;
use rand::{rngs::StdRng, seq::SliceRandom as _};

/// How long an announced transaction is awaited before it is fetched (ns).
pub const FETCH_WAIT_NS: u64 = 500_000_000;
/// How long a fetch may take before the next announcer is asked (ns).
pub const FETCH_TIMEOUT_NS: u64 = 5_000_000_000;

/// One node's eth/68 state.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Per transaction, the peers known to hold it (they sent or announced it, or we did).
    known: HashMap<u32, Vec<u32>>,
    /// Per announced transaction not yet held: the announcers not yet asked, in order heard.
    waiting: HashMap<u32, Vec<u32>>,
}

/// What to do with a transaction this node now holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Spread {
    pub full: Vec<u32>,
    pub announce: Vec<u32>,
}

impl Exchange {
    /// `peer` holds `tx` (it sent or announced it).
    pub fn known_by(&mut self, tx: u32, peer: u32) {
        let peers = self.known.entry(tx).or_default();
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }

    /// An announcement from `from`; `held` says whether this node already has the transaction.
    /// Returns whether a fetch should be scheduled (the first announcement of one it lacks).
    pub fn on_announce(&mut self, tx: u32, from: u32, held: bool) -> bool {
        self.known_by(tx, from);
        if held {
            return false;
        }
        let announcers = self.waiting.entry(tx).or_default();
        let first = announcers.is_empty();
        if !announcers.contains(&from) {
            announcers.push(from);
        }
        first
    }

    /// The wait (or a fetch's time) is over: the announcer to ask next, if `tx` is still
    /// lacking and one is left.
    pub fn next_announcer(&mut self, tx: u32, held: bool) -> Option<u32> {
        if held {
            self.waiting.remove(&tx);
            return None;
        }
        let announcers = self.waiting.get_mut(&tx)?;
        if announcers.is_empty() {
            self.waiting.remove(&tx);
            return None;
        }
        Some(announcers.remove(0))
    }

    /// This node now holds `tx` (`size` bytes): full copies to ⌈√peers⌉ of the peers not known
    /// to hold it (none above `broadcast_limit`), announcements to the rest. Every target is
    /// then known to hold it.
    pub fn spread(&mut self, tx: u32, size: usize, peers: &[u32], broadcast_limit: usize, rng: &mut StdRng) -> Spread {
        self.waiting.remove(&tx);
        let known = self.known.entry(tx).or_default();
        let mut targets: Vec<u32> = peers.iter().copied().filter(|p| !known.contains(p)).collect();
        targets.shuffle(rng);
        let full = if size > broadcast_limit { 0 } else { (peers.len() as f64).sqrt().ceil() as usize };
        let announce = targets.split_off(full.min(targets.len()));
        known.extend(targets.iter().chain(&announce));
        Spread { full: targets, announce }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn a_new_transaction_goes_in_full_to_the_square_root_of_the_peers_and_announced_to_the_rest() {
        let mut node = Exchange::default();
        node.known_by(7, 3);
        let peers: Vec<u32> = (0..17).collect();
        let spread = node.spread(7, 200, &peers, 4_096, &mut StdRng::seed_from_u64(1));
        assert_eq!(spread.full.len(), 5, "⌈√17⌉");
        assert_eq!(spread.announce.len(), 11, "the rest, less the peer that sent it");
        assert!(!spread.full.contains(&3) && !spread.announce.contains(&3));
        let again = node.spread(7, 200, &peers, 4_096, &mut StdRng::seed_from_u64(2));
        assert_eq!(again, Spread::default(), "everyone knows it now");
        let large = node.spread(8, 10_000, &peers, 4_096, &mut StdRng::seed_from_u64(3));
        assert!(large.full.is_empty() && large.announce.len() == 17, "above the limit: announced only");
    }

    #[test]
    fn announcements_are_fetched_once_from_each_announcer_in_turn() {
        let mut node = Exchange::default();
        assert!(node.on_announce(9, 4, false), "the first announcement schedules the fetch");
        assert!(!node.on_announce(9, 5, false), "later ones queue behind it");
        assert_eq!(node.next_announcer(9, false), Some(4));
        assert_eq!(node.next_announcer(9, false), Some(5), "no answer: the next announcer");
        assert_eq!(node.next_announcer(9, false), None);
        assert!(node.on_announce(10, 4, false));
        assert_eq!(node.next_announcer(10, true), None, "the full copy came meanwhile");
        assert!(!node.on_announce(11, 4, true), "held already: nothing to fetch");
    }
}
