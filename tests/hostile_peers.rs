//! Peers that attack the fetch protocol, against a node in-process on loopback: a requester
//! that asks for one large transaction many times over and never reads the answers, and a
//! server that announces a tiny transaction and then streams megabytes.

mod common;

use std::{io, time::Duration};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use common::{
    node::{CHAIN_ID, dial_addr, drive, metric, rpc, send_raw, start_node},
    process::resident_bytes,
};
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt as _, StreamExt as _};
use libp2p::{
    PeerId, StreamProtocol, Swarm, gossipsub,
    identity::Keypair,
    request_response::{self, Codec, ProtocolSupport},
    swarm::{NetworkBehaviour, SwarmEvent},
};
use tidepool::{
    gossip::{Announced, DropReason, GossipsubParams},
    net::protocol::{self, FETCH_PROTOCOL, FetchCodec, FetchRequest, FetchResponse, Limits},
    tx::sign::Signer,
};

const WAIT: Duration = Duration::from_secs(20);

/// What the hostile peer does with the fetch protocol.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// Never reads a response (its streams stay open, their data unread).
    NeverRead,
    /// Writes responses at ~640 KiB/s, in 64 KiB pieces.
    Trickle,
}

/// The fetch codec with one misbehaviour on top.
#[derive(Clone)]
struct HostileCodec {
    honest: FetchCodec,
    misbehaviour: Misbehaviour,
}

impl Codec for HostileCodec {
    type Protocol = StreamProtocol;
    type Request = FetchRequest;
    type Response = FetchResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<FetchRequest> {
        self.honest.read_request(p, io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<FetchResponse> {
        match self.misbehaviour {
            Misbehaviour::NeverRead => futures::future::pending().await,
            Misbehaviour::Trickle => self.honest.read_response(p, io).await,
        }
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        request: FetchRequest,
    ) -> io::Result<()> {
        self.honest.write_request(p, io, request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        response: FetchResponse,
    ) -> io::Result<()> {
        let mut encoded = futures::io::Cursor::new(Vec::new());
        self.honest.write_response(p, &mut encoded, response).await?;
        for piece in encoded.into_inner().chunks(64 * 1024) {
            io.write_all(piece).await?;
            io.flush().await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

#[derive(NetworkBehaviour)]
struct Hostile {
    gossipsub: gossipsub::Behaviour,
    fetch: request_response::Behaviour<HostileCodec>,
}

/// A hostile peer connected to `address`, speaking the node's gossipsub and fetch protocols.
async fn connect(address: libp2p::Multiaddr, target: PeerId, misbehaviour: Misbehaviour) -> Swarm<Hostile> {
    let key = Keypair::generate_ed25519();
    let limits = Limits { max_message: 256 * 1024, max_connections: 4, gossipsub: GossipsubParams::default() };
    let protocol::Behaviour { gossipsub, .. } = protocol::Behaviour::new(&key, limits);
    let codec = HostileCodec { honest: FetchCodec::default(), misbehaviour };
    let fetch = request_response::Behaviour::with_codec(
        codec,
        [(FETCH_PROTOCOL, ProtocolSupport::Full)],
        // As many streams as libp2p allows by default: the attacker is not polite.
        request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
    );
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| Hostile { gossipsub, fetch })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.behaviour_mut().gossipsub.subscribe(&protocol::announce_topic(CHAIN_ID)).unwrap();
    swarm.dial(address).unwrap();
    let subscribed = drive(&mut swarm, Duration::from_secs(10), |event| {
        matches!(event, SwarmEvent::Behaviour(HostileEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) if *peer_id == target)
    })
    .await;
    assert!(subscribed, "the node's subscription reached the hostile peer");
    swarm
}

/// A valid transaction of about 120 KB (near the 128 KiB limit) from dev account `account`.
fn large_tx(account: u64) -> Bytes {
    let calldata = 120_000;
    Signer::dev(account).sign_tx(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 0,
        // The EIP-7623 floor: 21,000 + 10 gas x 4 tokens per non-zero byte.
        gas_limit: 21_000 + 40 * calldata as u64,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0xaa)),
        value: U256::ZERO,
        input: vec![0x5a; calldata].into(),
        access_list: Default::default(),
    })
}

/// Issue: a request of 32 copies of one 128 KiB hash made the node build a ~4 MiB response, and
/// 100 such requests per connection, never read, pinned hundreds of MiB. Now each hash is
/// served once, within the peer's serving budget (2 MiB, then 1 MiB/s), on at most 8 streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_hash_requests_never_read_cost_the_node_a_bounded_amount_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let raw = large_tx(3);
    let hash = keccak256(&raw);
    send_raw(&rpc(&node), &raw).await.expect("the large transaction is pooled");
    let mut attacker = connect(dial_addr(&node), node.peer_id(), Misbehaviour::NeverRead).await;

    let before = resident_bytes(std::process::id());
    for _ in 0..300 {
        let request = FetchRequest { hashes: vec![hash; 32], max_response: u64::MAX };
        attacker.behaviour_mut().fetch.send_request(&node.peer_id(), request);
        drive(&mut attacker, Duration::from_millis(10), |_| false).await;
    }
    drive(&mut attacker, Duration::from_secs(3), |_| false).await;
    let growth = resident_bytes(std::process::id()).saturating_sub(before);
    eprintln!("resident memory grew by {} KiB under 300 never-read requests", growth / 1024);
    // Unbounded, it was 300 x 4 MiB requested (100 streams x 4 MiB held per connection).
    assert!(growth < 48 << 20, "resident memory grew by {growth} bytes");
    assert!(metric(&node, "tidepool_gossip_dropped_total{reason=\"serve_budget\"}") >= 1.0, "budget refusals counted");
    node.stop().await;
}

/// Issue: a fetch response was read and decoded up to the codec's 10 MiB before its size was
/// checked. Now it is read only up to what was announced: an announcer of 1 byte that serves
/// 9.9 MiB (slowly) is cut off at once and penalised, long before the request's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_larger_than_announced_is_cut_off_at_the_announced_size() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let mut attacker = connect(dial_addr(&node), node.peer_id(), Misbehaviour::Trickle).await;
    let hash = B256::repeat_byte(0x77);
    let announcement = protocol::encode_announcements(1, &[Announced { hash, size: 1 }]);
    attacker.behaviour_mut().gossipsub.publish(protocol::announce_topic(CHAIN_ID), announcement).unwrap();

    let channel = loop {
        let event = tokio::time::timeout(WAIT, attacker.select_next_some()).await.expect("the node asks in time");
        if let SwarmEvent::Behaviour(HostileEvent::Fetch(request_response::Event::Message {
            message: request_response::Message::Request { request, channel, .. },
            ..
        })) = event
        {
            assert_eq!(request.hashes, [hash]);
            break channel;
        }
    };
    let junk = FetchResponse { txs: vec![Bytes::from(vec![0xee; 9_900_000])] };
    attacker.behaviour_mut().fetch.send_response(channel, junk).unwrap();
    let answering = std::time::Instant::now();
    let broken_promise = "tidepool_gossip_penalties_total{penalty=\"broken_promise\"}";
    while metric(&node, broken_promise) < 1.0 {
        assert!(answering.elapsed() < Duration::from_secs(30), "the liar is never penalised");
        drive(&mut attacker, Duration::from_millis(50), |_| false).await;
    }
    let took = answering.elapsed();
    eprintln!("penalised {took:?} after the response began (all of it would take ~15 s to arrive)");
    // Reading it all would take ~15 s at the trickle's rate; the request timeout is 10 s.
    assert!(took < Duration::from_secs(5), "cut off at the announced size, not read to the end: {took:?}");
    node.stop().await;
}

/// Issue: the driver's slot table grew with every identity ever seen. Identities that leave
/// clean give their slot back; only connected or remembered ones keep one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_that_come_and_go_do_not_grow_the_peer_table() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    for _ in 0..30 {
        let peer = common::node::RawPeer::connect(&node).await;
        drop(peer);
    }
    let slots = || node.network().stats().peer_slots;
    let deadline = std::time::Instant::now() + WAIT;
    while slots() > 0 {
        assert!(std::time::Instant::now() < deadline, "{} slots still held after 30 identities left", slots());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await;
}

/// A well-formed transfer whose signature recovers no sender (r = 0): junk.
fn bad_signature(nonce: u64) -> Bytes {
    use alloy_consensus::SignableTransaction as _;
    use alloy_eips::eip2718::Encodable2718 as _;
    let tx = TxEip1559 { chain_id: CHAIN_ID, nonce, gas_limit: 21_000, max_fee_per_gas: 1, ..Default::default() };
    let signature = alloy_primitives::Signature::new(U256::ZERO, U256::from(1), false);
    tidepool::tx::Envelope::from(tx.into_signed(signature)).encoded_2718().into()
}

fn transfer(account: u64, nonce: u64) -> Bytes {
    Signer::dev(account).sign_tx(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0xbb)),
        value: U256::from(1),
        input: Bytes::new(),
        access_list: Default::default(),
    })
}

/// Issue: identities are free. A loop of fresh identities, each connecting and sending its
/// whole burst of invalid signatures, against honest JSON-RPC submissions: each identity is on
/// probation (20 msg/s, burst 40, until it delivers valid transactions), one IP holds at most 8
/// inbound connections, and a quarter of the peer slots is kept for peers the node dials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_identities_flooding_junk_neither_starve_honest_clients_nor_evict_outbound_peers() {
    const IDENTITIES: u64 = 30;
    const HONEST: u64 = 200;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = start_node(dir_b.path(), |_| {}).await;
    let a = start_node(dir_a.path(), |c| {
        c.bootnodes = vec![dial_addr(&b)];
        c.max_peers = 8; // 6 inbound, 2 kept for dialled peers
    })
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while b.network().stats().connected_peers == 0 {
        assert!(std::time::Instant::now() < deadline, "a dials its bootnode");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let flood = {
        let (address, target) = (dial_addr(&a), a.peer_id());
        tokio::spawn(async move {
            let mut sent = 0u64;
            for identity in 0..IDENTITIES {
                let mut attacker = common::node::RawPeer::connect_to(address.clone(), target).await;
                for i in 0..100 {
                    sent += u64::from(attacker.publish(&bad_signature(identity * 1_000 + i)));
                }
                attacker.run_until(Duration::from_millis(100), |_| false).await;
            }
            sent
        })
    };
    let client = rpc(&a);
    let mut busy = 0;
    for n in 0..HONEST {
        match send_raw(&client, &transfer(n % 40, n / 40)).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("busy") => busy += 1,
            Err(e) => panic!("honest submission {n} refused: {e}"),
        }
    }
    let sent = flood.await.unwrap();
    let fraction = busy as f64 / HONEST as f64;
    let stats = a.network().stats().gossip;
    let refused: u64 =
        [DropReason::RateLimited, DropReason::Throttled].iter().filter_map(|r| stats.dropped.get(r)).sum();
    eprintln!(
        "{IDENTITIES} identities published {sent} junk messages: {} reached the node, {} validated, {refused} refused \
         at the door, {} disconnects; honest busy {busy}/{HONEST}",
        stats.received_messages, stats.validations, stats.disconnects
    );
    assert!(fraction <= 0.05, "honest submissions saw busy {:.1}% of the time", fraction * 100.0);
    assert!(refused > 0, "probation refused part of each fresh identity's burst");
    assert!(
        stats.validations <= IDENTITIES * 40,
        "at most a probation burst (40) validated per identity: {}",
        stats.validations
    );
    assert!(b.network().stats().connected_peers >= 1, "a still holds its outbound peer");
    a.stop().await;
    b.stop().await;
}

/// Issue: bootnodes were dialled once, at start, so a node whose peers left never re-dialled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dials_its_bootnode_again_after_the_bootnode_restarts() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = common::process::free_port();
    let listen: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let b = start_node(dir_b.path(), |c| c.listen = vec![listen.clone()]).await;
    let bootnode = dial_addr(&b);
    let a = start_node(dir_a.path(), |c| c.bootnodes = vec![bootnode.clone()]).await;
    let connected = |a: &tidepool::node::Node| a.network().stats().connected_peers;
    let deadline = std::time::Instant::now() + WAIT;
    while connected(&a) == 0 {
        assert!(std::time::Instant::now() < deadline, "a dials its bootnode at start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop().await;
    let deadline = std::time::Instant::now() + WAIT;
    while connected(&a) > 0 {
        assert!(std::time::Instant::now() < deadline, "a sees its bootnode leave");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = start_node(dir_b.path(), |c| c.listen = vec![listen]).await;
    assert_eq!(dial_addr(&b), bootnode, "same key, same address");
    let deadline = std::time::Instant::now() + tidepool::net::REDIAL_EVERY * 2 + Duration::from_secs(5);
    while connected(&a) == 0 {
        assert!(std::time::Instant::now() < deadline, "a dials its bootnode again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
}
