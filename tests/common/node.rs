//! Nodes on loopback with ephemeral ports, an RPC client, and a raw libp2p peer for tests.
#![allow(dead_code)]

use std::{future::Future, time::Duration};

use alloy_primitives::{B256, Bytes, U256};
use futures::StreamExt as _;
use jsonrpsee::{
    core::{ClientError, client::ClientT},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use libp2p::{Multiaddr, Swarm, gossipsub, identity::Keypair, swarm::SwarmEvent};
use tidepool::{
    gossip::GossipsubParams,
    net::protocol::{self, Behaviour, BehaviourEvent, Limits},
    node::{Node, NodeConfig},
};

pub const CHAIN_ID: u64 = 1337;

/// A transfer from dev account `account` at `nonce` with `calldata` bytes of input.
pub fn transfer(account: u64, nonce: u64, calldata: usize) -> Bytes {
    tidepool::tx::sign::Signer::dev(account).sign_tx(alloy_consensus::TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000 + 40 * calldata as u64,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(alloy_primitives::Address::with_last_byte(0xaa)),
        value: U256::from(1),
        input: vec![0x5a; calldata].into(),
        access_list: Default::default(),
    })
}

pub fn hash_of(raw: &Bytes) -> B256 {
    alloy_primitives::keccak256(raw)
}

/// A well-formed transaction whose signature recovers no sender (r = 0).
pub fn bad_signature(nonce: u64) -> Bytes {
    use alloy_consensus::SignableTransaction as _;
    use alloy_eips::eip2718::Encodable2718 as _;
    let tx = alloy_consensus::TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 1,
        to: alloy_primitives::TxKind::Call(alloy_primitives::Address::with_last_byte(0xbb)),
        ..Default::default()
    };
    let signature = alloy_primitives::Signature::new(U256::ZERO, U256::from(1), false);
    tidepool::tx::Envelope::from(tx.into_signed(signature)).encoded_2718().into()
}

/// A node on 127.0.0.1 with ephemeral ports, no blocks unless `block_time` is changed.
pub async fn start_node(data_dir: &std::path::Path, configure: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut config = NodeConfig {
        data_dir: data_dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        block_time: 3_600.0,
        dev_accounts: 64,
        ..NodeConfig::default()
    };
    configure(&mut config);
    Node::start(config).await.expect("node starts")
}

/// The node's first listen address with its peer id, for dialing.
pub fn dial_addr(node: &Node) -> Multiaddr {
    let address = node.listen_addrs().into_iter().next().expect("listening");
    format!("{address}/p2p/{}", node.peer_id()).parse().unwrap()
}

pub fn rpc(node: &Node) -> HttpClient {
    HttpClientBuilder::default().build(format!("http://{}", node.rpc_addr())).unwrap()
}

pub async fn send_raw(client: &HttpClient, raw: &Bytes) -> Result<B256, ClientError> {
    client.request("eth_sendRawTransaction", rpc_params![raw]).await
}

pub async fn pending_nonce(client: &HttpClient, address: alloy_primitives::Address) -> u64 {
    let nonce: U256 = client.request("eth_getTransactionCount", rpc_params![address, "pending"]).await.unwrap();
    nonce.to()
}

/// Polls `check` every 50 ms until it holds, failing after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A metric's value from the node's metrics page (0 if absent).
pub fn metric(node: &Node, name_and_labels: &str) -> f64 {
    node.metrics_text()
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Drives any swarm until `stop` matches an event or `limit` passes; whether it matched.
pub async fn drive<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    limit: Duration,
    mut stop: impl FnMut(&SwarmEvent<B::ToSwarm>) -> bool,
) -> bool {
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => if stop(&event) { return true },
            () = &mut deadline => return false,
        }
    }
}

/// A raw libp2p peer speaking Tidepool's protocol, driven by the test.
pub struct RawPeer {
    pub swarm: Swarm<Behaviour>,
    pub topic: gossipsub::IdentTopic,
}

impl RawPeer {
    pub async fn connect(node: &Node) -> Self {
        Self::connect_to(dial_addr(node), node.peer_id()).await
    }

    /// Connects to the node at `address` (with its `/p2p/` suffix) whose id is `target`.
    pub async fn connect_to(address: Multiaddr, target: libp2p::PeerId) -> Self {
        let limits = Limits { max_message: 256 * 1024, max_connections: 16, gossipsub: GossipsubParams::default() };
        let mut swarm = protocol::build_swarm(Keypair::generate_ed25519(), limits).unwrap();
        let topic = protocol::tx_topic(CHAIN_ID);
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        swarm.dial(address).unwrap();
        let mut peer = Self { swarm, topic };
        // Wait until the node has subscribed to the topic from our side's view.
        peer.run_until(Duration::from_secs(10), |event| {
            matches!(event, SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) if *peer_id == target)
        })
        .await;
        peer
    }

    /// Drives the swarm until `stop` matches an event or `limit` passes; returns whether it matched.
    pub async fn run_until(&mut self, limit: Duration, stop: impl FnMut(&SwarmEvent<BehaviourEvent>) -> bool) -> bool {
        drive(&mut self.swarm, limit, stop).await
    }

    /// Publishes raw bytes on the transaction topic; false if gossipsub refused (no peers).
    pub fn publish(&mut self, bytes: &[u8]) -> bool {
        let topic = self.topic.clone();
        self.swarm.behaviour_mut().gossipsub.publish(topic, bytes.to_vec()).is_ok()
    }

    pub fn is_connected(&self) -> bool {
        self.swarm.connected_peers().next().is_some()
    }
}
