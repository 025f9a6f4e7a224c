//! The gossip core's decisions, driven directly with time passed in.

use alloy_primitives::keccak256;

use super::*;
use crate::gossip::limiter::Rate;
use std::time::Duration;

const A: PeerSlot = PeerSlot(1);
const B: PeerSlot = PeerSlot(2);

struct Harness {
    core: GossipCore,
    now: Instant,
    next_msg: u64,
}

impl Harness {
    fn new(config: GossipConfig) -> Self {
        let mut h = Self { core: GossipCore::new(config, 7), now: Instant::now(), next_msg: 0 };
        h.core.handle_peer(h.now, A, PeerChange::Connected);
        h.core.handle_peer(h.now, B, PeerChange::Connected);
        h
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.core.poll_action()).collect()
    }

    fn tx(&mut self, from: PeerSlot, bytes: &[u8]) -> Vec<Action> {
        self.next_msg += 1;
        let msg = WireMsg::Tx {
            msg: MessageRef(self.next_msg),
            hash: keccak256(bytes),
            bytes: Bytes::copy_from_slice(bytes),
        };
        self.core.handle_message(self.now, from, msg);
        self.actions()
    }

    fn announce(&mut self, from: PeerSlot, txs: &[(&[u8], u32)]) -> Vec<Action> {
        self.next_msg += 1;
        let txs = txs.iter().map(|(bytes, size)| Announced { hash: keccak256(bytes), size: *size }).collect();
        self.core.handle_message(self.now, from, WireMsg::Announce { msg: MessageRef(self.next_msg), txs });
        self.actions()
    }
}

fn validate_of(actions: &[Action]) -> Option<B256> {
    actions.iter().find_map(|a| match a {
        Action::Validate { tx, .. } => Some(*tx),
        _ => None,
    })
}

fn has_drop(actions: &[Action], reason: DropReason) -> bool {
    actions.iter().any(|a| matches!(a, Action::Dropped { reason: r, .. } if *r == reason))
}

#[test]
fn a_valid_tx_is_validated_then_accepted_for_relay() {
    let mut h = Harness::new(GossipConfig::default());
    let actions = h.tx(A, b"tx-1");
    let hash = validate_of(&actions).expect("validate");
    h.core.handle_verdict(h.now, A, hash, Verdict::Accepted);
    let actions = h.actions();
    assert_eq!(actions, vec![Action::Report { from: A, msg: MessageRef(1), outcome: Acceptance::Accept }]);
    assert_eq!(h.core.stats().accepted, 1);
}

#[test]
fn duplicates_are_ignored_and_only_excess_is_penalised() {
    let mut h = Harness::new(GossipConfig { duplicates: Rate { per_second: 0.0, burst: 2.0 }, ..Default::default() });
    let hash = validate_of(&h.tx(A, b"tx")).unwrap();
    h.core.handle_verdict(h.now, A, hash, Verdict::Accepted);
    h.actions();
    for _ in 0..2 {
        let actions = h.tx(B, b"tx");
        assert!(has_drop(&actions, DropReason::Duplicate));
        assert!(validate_of(&actions).is_none(), "never validated twice");
    }
    assert_eq!(h.core.stats().penalties.get(&Penalty::Duplicate), None, "within tolerance");
    h.tx(B, b"tx");
    assert_eq!(h.core.stats().penalties[&Penalty::Duplicate], 1);
}

#[test]
fn a_cool_off_is_counted_as_a_disconnect_and_only_a_ban_as_a_ban() {
    let score = ScoreConfig { invalid_signature: -60.0, undecodable: -120.0, ..ScoreConfig::default() };
    let mut h = Harness::new(GossipConfig { score, ..GossipConfig::default() });
    let judge = |h: &mut Harness, peer, bytes: &[u8], penalty| {
        let hash = validate_of(&h.tx(peer, bytes)).expect("validated");
        h.core.handle_verdict(h.now, peer, hash, Verdict::Rejected(penalty));
        h.actions().into_iter().filter(|a| matches!(a, Action::Disconnect { .. })).count()
    };
    // -60: below `disconnect_below` (-50), above `ban_below` (-100): a cool-off.
    assert_eq!(judge(&mut h, A, b"bad sig", Penalty::InvalidSignature), 1);
    assert_eq!((h.core.stats().disconnects, h.core.stats().bans), (1, 0));
    // -120: a ban, which is also a disconnect.
    assert_eq!(judge(&mut h, B, b"junk", Penalty::Undecodable), 1);
    assert_eq!((h.core.stats().disconnects, h.core.stats().bans), (2, 1));
}

#[test]
fn invalid_signatures_get_a_peer_disconnected_then_banned() {
    let mut h = Harness::new(GossipConfig::default());
    let mut disconnects = Vec::new();
    for i in 0..20u8 {
        let actions = h.tx(A, &[0xde, i]);
        if let Some(hash) = validate_of(&actions) {
            h.core.handle_verdict(h.now, A, hash, Verdict::Rejected(Penalty::InvalidSignature));
        }
        disconnects.extend(h.actions().into_iter().filter(|a| matches!(a, Action::Disconnect { .. })));
        if !disconnects.is_empty() {
            // The driver reconnects it (a fresh connection from the same peer).
            h.core.handle_peer(h.now, A, PeerChange::Disconnected);
            h.core.handle_peer(h.now, A, PeerChange::Connected);
            disconnects.extend(h.actions().into_iter().filter(|a| matches!(a, Action::Disconnect { .. })));
        }
        if h.core.is_banned(h.now, A) {
            break;
        }
    }
    assert!(h.core.is_banned(h.now, A), "repeat offender is banned: {disconnects:?}");
    assert!(disconnects.iter().any(|a| matches!(a, Action::Disconnect { peer: A, .. })));
    // While banned, reconnecting is refused at once.
    h.core.handle_peer(h.now, A, PeerChange::Connected);
    assert!(matches!(h.actions()[..], [Action::Disconnect { peer: A, .. }]));
    // B was never affected.
    assert!(validate_of(&h.tx(B, b"honest")).is_some());
}

#[test]
fn rate_limits_are_per_peer() {
    let mut h = Harness::new(GossipConfig { messages: Rate { per_second: 1.0, burst: 3.0 }, ..Default::default() });
    for i in 0..3u8 {
        assert!(validate_of(&h.tx(A, &[1, i])).is_some());
    }
    let actions = h.tx(A, &[1, 9]);
    assert!(has_drop(&actions, DropReason::RateLimited));
    assert!(actions.iter().any(|a| matches!(a, Action::Report { outcome: Acceptance::Ignore, .. })));
    assert!(validate_of(&h.tx(B, &[2, 0])).is_some(), "B has its own budget");
    h.now += Duration::from_secs(1);
    assert!(validate_of(&h.tx(A, &[1, 10])).is_some(), "A's budget refills");
}

#[test]
fn oversized_transactions_are_rejected_unread() {
    let mut h = Harness::new(GossipConfig { max_tx_size: 10, ..Default::default() });
    let actions = h.tx(A, &[0u8; 11]);
    assert!(has_drop(&actions, DropReason::Oversized));
    assert!(actions.iter().any(|a| matches!(a, Action::Report { outcome: Acceptance::Reject, .. })));
    assert_eq!(h.core.stats().penalties[&Penalty::Oversized], 1);
}

#[test]
fn busy_validation_is_a_counted_drop_and_the_tx_may_come_again() {
    let mut h = Harness::new(GossipConfig::default());
    let hash = validate_of(&h.tx(A, b"tx")).unwrap();
    h.core.handle_verdict(h.now, A, hash, Verdict::Busy);
    let actions = h.actions();
    assert!(has_drop(&actions, DropReason::ValidationBusy));
    assert!(validate_of(&h.tx(B, b"tx")).is_some(), "not marked seen while we were busy");
}

#[test]
fn announced_txs_are_fetched_validated_and_reannounced() {
    let mut h = Harness::new(GossipConfig::default());
    let big = vec![7u8; 5_000];
    let actions = h.announce(A, &[(&big, 5_000)]);
    let (id, hashes) = actions
        .iter()
        .find_map(|a| match a {
            Action::Fetch { from: A, id, hashes, .. } => Some((*id, hashes.clone())),
            _ => None,
        })
        .expect("fetch from the announcer");
    assert_eq!(hashes, vec![keccak256(&big)]);
    h.core.handle_message(h.now, A, WireMsg::Response { id, txs: vec![Bytes::from(big.clone())] });
    let hash = validate_of(&h.actions()).expect("validate fetched");
    h.core.handle_verdict(h.now, A, hash, Verdict::Accepted);
    assert!(matches!(&h.actions()[..], [Action::Announce { txs }] if txs[0].hash == hash));
}

#[test]
fn a_silent_announcer_is_penalised_and_another_is_asked() {
    let mut h = Harness::new(GossipConfig::default());
    let big = vec![9u8; 6_000];
    h.announce(A, &[(&big, 6_000)]);
    h.announce(B, &[(&big, 6_000)]);
    let first = h.core.stats().fetches;
    assert_eq!(first, 1, "one fetch while the first is in flight");
    let deadline = h.core.poll_timeout().expect("fetch deadline");
    h.now = deadline;
    h.core.handle_timeout(h.now);
    let actions = h.actions();
    assert_eq!(h.core.stats().fetch_timeouts, 1);
    assert_eq!(h.core.stats().penalties[&Penalty::BrokenPromise], 1);
    assert!(actions.iter().any(|a| matches!(a, Action::Fetch { .. })), "retried: {actions:?}");
}

#[test]
fn serving_the_wrong_bytes_is_a_broken_promise() {
    let mut h = Harness::new(GossipConfig::default());
    let big = vec![3u8; 5_000];
    let actions = h.announce(A, &[(&big, 5_000)]);
    let id = actions.iter().find_map(|a| if let Action::Fetch { id, .. } = a { Some(*id) } else { None }).unwrap();
    h.core.handle_message(h.now, A, WireMsg::Response { id, txs: vec![Bytes::from(vec![4u8; 5_000])] });
    assert!(validate_of(&h.actions()).is_none());
    assert_eq!(h.core.stats().penalties[&Penalty::BrokenPromise], 1);
}

#[test]
fn local_txs_are_published_small_and_announced_large() {
    let mut h = Harness::new(GossipConfig::default());
    h.core.handle_local(h.now, B256::repeat_byte(1), Bytes::from(vec![0u8; 100]));
    h.core.handle_local(h.now, B256::repeat_byte(2), Bytes::from(vec![0u8; 5_000]));
    let actions = h.actions();
    assert!(matches!(actions[0], Action::Publish { .. }));
    assert!(matches!(actions[1], Action::Announce { .. }));
}

#[test]
fn the_seen_cache_is_bounded() {
    let mut h = Harness::new(GossipConfig { seen_capacity: 4, ..Default::default() });
    for i in 0..10u8 {
        h.core.handle_local(h.now, B256::repeat_byte(i), Bytes::from(vec![i]));
    }
    assert_eq!(h.core.seen.len(), 4);
    assert_eq!(h.core.seen_order.len(), 4);
}

#[test]
fn a_fetch_request_is_served_up_to_the_in_flight_limit() {
    let mut h = Harness::new(GossipConfig { max_in_flight_per_peer: 4, ..Default::default() });
    let hashes: Vec<B256> = (0..100u8).map(B256::repeat_byte).collect();
    h.core.handle_message(h.now, A, WireMsg::Request { id: 9, hashes });
    assert!(matches!(&h.actions()[..], [Action::Serve { to: A, id: 9, hashes, .. }] if hashes.len() == 4));
}

/// Issue: 32 copies of one large hash in a request made the node build 32 copies of it.
#[test]
fn a_request_serves_each_hash_once_within_the_peers_serving_budget() {
    let serve_bytes = Rate { per_second: 1_000.0, burst: 300_000.0 };
    let mut h = Harness::new(GossipConfig { serve_bytes, ..Default::default() });
    let big = B256::repeat_byte(1);
    h.core.handle_message(h.now, A, WireMsg::Request { id: 1, hashes: vec![big; 32] });
    let actions = h.actions();
    let [Action::Serve { to: A, id: 1, hashes, max_bytes }] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!((hashes.as_slice(), *max_bytes), ([big].as_slice(), 300_000));
    // The driver served one 128 KiB transaction: the rest of the allowance comes back.
    h.core.handle_served(A, 300_000 - 131_072, 0);
    h.core.handle_message(h.now, A, WireMsg::Request { id: 2, hashes: vec![big] });
    let actions = h.actions();
    assert!(matches!(&actions[..], [Action::Serve { id: 2, max_bytes, .. }] if *max_bytes == 300_000 - 131_072));
    // Spent (nothing given back): the next request is refused and counted, not served.
    h.core.handle_message(h.now, A, WireMsg::Request { id: 3, hashes: vec![big] });
    let actions = h.actions();
    assert!(matches!(&actions[..], [Action::Dropped { from: A, reason: DropReason::ServeBudget }]), "{actions:?}");
    // Another peer's budget is its own.
    h.core.handle_message(h.now, B, WireMsg::Request { id: 4, hashes: vec![big] });
    assert!(matches!(&h.actions()[..], [Action::Serve { to: B, .. }]));
}

/// Issue: a peer that announced `max_wanted` hashes and left kept the wanted table full, and
/// every later announcement was dropped as `fetch_queue_full`.
#[test]
fn announcements_of_a_peer_that_left_are_dropped_and_others_are_fetched() {
    let mut h = Harness::new(GossipConfig { max_wanted: 8, max_in_flight_per_peer: 1, ..Default::default() });
    let junk: Vec<Vec<u8>> = (0..8u8).map(|i| vec![0xaa, i]).collect();
    let announced: Vec<(&[u8], u32)> = junk.iter().map(|j| (j.as_slice(), 5_000)).collect();
    h.announce(A, &announced); // one goes out as a fetch, seven wait
    h.core.handle_peer(h.now, A, PeerChange::Disconnected);
    let dropped =
        h.actions().iter().filter(|a| matches!(a, Action::Dropped { reason: DropReason::FetchAbandoned, .. })).count();
    assert_eq!(dropped, 8, "all are given up at once: the fetch in flight failed with the connection");
    let actions = h.announce(B, &[(b"honest", 5_000)]);
    assert!(
        actions.iter().any(|a| matches!(a, Action::Fetch { from: B, hashes, .. } if hashes == &[keccak256(b"honest")])),
        "B's announcement is fetched: {actions:?}"
    );
}

#[test]
fn a_wanted_transaction_nobody_serves_is_given_up_at_its_deadline() {
    let mut h = Harness::new(GossipConfig { max_in_flight_per_peer: 1, ..Default::default() });
    // A's budget holds one fetch; the second announcement waits behind it.
    h.announce(A, &[(b"first", 5_000), (b"second", 5_000)]);
    let wanted_for = GossipConfig::default().wanted_for;
    assert!(h.core.poll_timeout().is_some_and(|t| t <= h.now + wanted_for));
    // A never answers; each fetch times out and A stops being asked, so nothing is fetched
    // again: at `wanted_for` the entry is dropped, counted, and the table is empty.
    h.now += wanted_for;
    h.core.handle_timeout(h.now);
    let actions = h.actions();
    assert!(
        actions.iter().any(|a| matches!(a, Action::Dropped { reason: DropReason::FetchAbandoned, .. })),
        "{actions:?}"
    );
    assert!(h.core.wanted.is_empty());
}

/// Issue: a peer replaying what we already held (pooled another way) earned score as if it
/// had brought something new.
#[test]
fn an_already_pooled_transaction_earns_nothing_and_is_not_relayed_again() {
    let mut h = Harness::new(GossipConfig::default());
    let hash = validate_of(&h.tx(A, b"known")).expect("validated");
    h.core.handle_verdict(h.now, A, hash, Verdict::Known);
    assert!(matches!(&h.actions()[..], [Action::Report { outcome: Acceptance::Ignore, .. }]));
    let (now, config) = (h.now, h.core.config.score.clone());
    assert_eq!(h.core.peers.get_mut(&A).unwrap().score.value(now, &config), 0.0);
}

/// Issue: a busy verdict took the hash out of the seen-cache but left it in its order, so the
/// hash's return listed it twice.
#[test]
fn a_busy_verdict_leaves_no_stale_seen_entry() {
    let mut h = Harness::new(GossipConfig::default());
    let hash = validate_of(&h.tx(A, b"busy")).expect("validated");
    h.core.handle_verdict(h.now, A, hash, Verdict::Busy);
    h.actions();
    assert!(validate_of(&h.tx(B, b"busy")).is_some(), "offered again, validated again");
    assert_eq!(h.core.seen_order.iter().filter(|h| **h == hash).count(), 1);
    assert_eq!(h.core.seen.len(), h.core.seen_order.len());
}

/// Issue: per-peer tables grew with every identity ever seen. The core now says which slots it
/// still needs, and forgets refusals once they end and scores once they heal.
#[test]
fn the_core_forgets_peers_that_left_clean_and_refusals_that_ended() {
    let mut h = Harness::new(GossipConfig::default());
    let honest = PeerSlot(10);
    h.core.handle_peer(h.now, honest, PeerChange::Connected);
    h.core.handle_peer(h.now, honest, PeerChange::Disconnected);
    assert!(!h.core.remembers(h.now, honest), "a clean peer that left needs no slot");

    // A junk sender: disconnected with a cool-off, its negative score remembered.
    for i in 0..3u8 {
        if let Some(hash) = validate_of(&h.tx(A, &[0xbd, i])) {
            h.core.handle_verdict(h.now, A, hash, Verdict::Rejected(Penalty::InvalidSignature));
        }
    }
    h.actions();
    h.core.handle_peer(h.now, A, PeerChange::Disconnected);
    assert!(h.core.remembers(h.now, A));
    // After the cool-off the refusal is forgotten; after its score heals, the peer too.
    h.now += ScoreConfig::default().cool_off + Duration::from_secs(1);
    h.core.handle_timeout(h.now);
    assert!(!h.core.is_banned(h.now, A));
    assert!(h.core.remembers(h.now, A), "its score has not healed yet");
    h.now += 20 * ScoreConfig::default().recovery_half_life;
    assert!(!h.core.remembers(h.now, A), "healed and gone: the slot may be reused");
}

#[test]
fn refusals_are_bounded_however_many_identities_misbehave() {
    let score = ScoreConfig { undecodable: -120.0, ..ScoreConfig::default() };
    let mut h = Harness::new(GossipConfig { score, ..GossipConfig::default() });
    for i in 0..(MAX_BANS as u32 + 100) {
        let peer = PeerSlot(100 + i);
        h.core.handle_peer(h.now, peer, PeerChange::Connected);
        if let Some(hash) = validate_of(&h.tx(peer, &i.to_be_bytes())) {
            h.core.handle_verdict(h.now, peer, hash, Verdict::Rejected(Penalty::Undecodable));
        }
        h.actions();
    }
    assert_eq!(h.core.banned.len(), MAX_BANS);
    assert_eq!(h.core.ban_expiry.len(), MAX_BANS);
}

/// Issue: a fresh identity's first burst reached validation before any penalty. A new peer is
/// on probation (a small message budget) until it has delivered valid transactions.
#[test]
fn a_new_peer_is_on_probation_until_it_delivers_valid_transactions() {
    let probation = Rate { per_second: 0.0, burst: 3.0 };
    let mut h = Harness::new(GossipConfig { probation, probation_valid_txs: 2, ..GossipConfig::default() });
    // A's first three messages are looked at; the fourth is refused at the door.
    let sent: Vec<_> = (0..4u8).map(|i| validate_of(&h.tx(A, &[0xee, i]))).collect();
    assert!(sent[..3].iter().all(Option::is_some) && sent[3].is_none(), "{sent:?}");
    // B delivers two valid transactions and leaves probation: its full budget applies.
    for i in 0..2u8 {
        let hash = validate_of(&h.tx(B, &[0x11, i])).expect("validated");
        h.core.handle_verdict(h.now, B, hash, Verdict::Accepted);
    }
    h.actions();
    let later: Vec<_> = (0..10u8).map(|i| validate_of(&h.tx(B, &[0x22, i]))).collect();
    assert!(later.iter().all(Option::is_some), "off probation: {later:?}");
}

/// Bytes framed as a blob transaction's network form (type 3, an outer list whose first item is
/// the transaction's list), with `filler` bytes standing in for the sidecar. The core only
/// frames and hashes them; validation is not its job.
fn network_form_like(filler: usize) -> (Vec<u8>, B256) {
    let tx_payload = [0x80u8; 40];
    let mut tx = Vec::new();
    alloy_rlp::Header { list: true, payload_length: tx_payload.len() }.encode(&mut tx);
    tx.extend_from_slice(&tx_payload);
    let mut sidecar = Vec::new();
    alloy_rlp::Header { list: false, payload_length: filler }.encode(&mut sidecar);
    sidecar.resize(sidecar.len() + filler, 0x11);
    let mut raw = vec![3u8];
    alloy_rlp::Header { list: true, payload_length: tx.len() + sidecar.len() }.encode(&mut raw);
    raw.extend_from_slice(&tx);
    raw.extend_from_slice(&sidecar);
    let consensus = [&[3u8][..], &tx].concat();
    (raw, keccak256(consensus))
}

/// A blob transaction travels by announcement: fetched in its network form above the push
/// limit, matched to its announcement by its consensus hash, and a bad proof costs the peer
/// what a bad signature does.
#[test]
fn a_fetched_blob_network_form_is_matched_by_its_consensus_hash() {
    let mut h = Harness::new(GossipConfig::default());
    let (raw, hash) = network_form_like(300_000);
    assert!(raw.len() > h.core.config.max_tx_size);
    h.next_msg += 1;
    let announced = vec![Announced { hash, size: raw.len() as u32 }];
    h.core.handle_message(h.now, A, WireMsg::Announce { msg: MessageRef(h.next_msg), txs: announced });
    let id = h
        .actions()
        .iter()
        .find_map(|a| match a {
            Action::Fetch { from: A, id, hashes, .. } if hashes == &[hash] => Some(*id),
            _ => None,
        })
        .expect("fetched from the announcer");
    h.core.handle_message(h.now, A, WireMsg::Response { id, txs: vec![Bytes::from(raw.clone())] });
    assert_eq!(validate_of(&h.actions()), Some(hash), "validated under its transaction hash");
    assert!(!h.core.stats().penalties.contains_key(&Penalty::BrokenPromise));
    h.core.handle_verdict(h.now, A, hash, Verdict::for_invalid(&TxError::BlobProofInvalid));
    assert_eq!(h.core.stats().penalties[&Penalty::InvalidSignature], 1);
    // Pushed in full instead, the same bytes are over the push limit.
    h.tx(B, &raw);
    assert_eq!(h.core.stats().penalties[&Penalty::Oversized], 1);
}
