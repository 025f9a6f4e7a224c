//! Two Tidepool instances with libp2p gossip, started from code on loopback: the second dials
//! the first, a local transaction submitted to one reaches the other's pool, a private one
//! does not leave its node.
//!
//! ```text
//! cargo run --example gossip_node                 # 5 transactions, prints arrival times
//! cargo run --example gossip_node -- --smoke      # 1 transaction, checks itself (CI)
//! ```

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::U256;
use libp2p::{Multiaddr, identity::Keypair};
use tidepool::{
    Origin, Tidepool,
    gossip::{GossipConfig, GossipsubParams},
    net::NetConfig,
    state::{AccountState, ChainHead, InMemoryState},
    tx::generate::TxMix,
};

const SEED: u64 = 5;
const ACCOUNTS: usize = 4;

/// One node: its own copy of the (same) genesis state, a fresh identity, a loopback listener.
async fn start(bootnodes: Vec<Multiaddr>, seed: u64) -> Result<Tidepool, Box<dyn std::error::Error>> {
    let state = Arc::new(InMemoryState::new());
    for signer in TxMix::new(SEED, ACCOUNTS, 1).signers() {
        state.set(signer.address(), AccountState::new(0, U256::from(10u128.pow(24))));
    }
    let network = NetConfig {
        chain_id: 1,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        bootnodes,
        max_connections: 50,
        gossip: GossipConfig::default(),
        gossipsub: GossipsubParams::default(),
        seed,
    };
    let head = ChainHead { block: 0, base_fee: 7_000_000_000, blob_base_fee: 1 };
    Ok(Tidepool::builder(state, head).network(Keypair::generate_ed25519(), network).start().await?)
}

async fn wait_for(what: &str, limit: Duration, check: impl Fn() -> bool) -> Result<Duration, String> {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > limit {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let a = start(Vec::new(), 1).await?;
    let net_a = a.network().ok_or("a runs a network")?;
    let address = net_a.listen_addrs().into_iter().next().ok_or("a listens")?;
    let b = start(vec![format!("{address}/p2p/{}", net_a.peer_id()).parse()?], 2).await?;
    let b_net = b.network().ok_or("b runs a network")?;
    wait_for("the peers to connect", Duration::from_secs(20), || b_net.stats().connected_peers > 0).await?;
    println!("a {} <-> b {}", net_a.peer_id(), b_net.peer_id());
    // Gossipsub forms its mesh on heartbeats (1 s): give it two.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut mix = TxMix::new(SEED, ACCOUNTS, 1);
    let private = mix.next_tx();
    let added = a.submitter().submit(private.raw, Origin::Private).await?;
    let private_hash = added.hash;
    for i in 0..if smoke { 1 } else { 5 } {
        let added = a.submitter().submit(mix.next_tx().raw, Origin::Local).await?;
        let reader = b.reader();
        let took = wait_for("b to pool the tx", Duration::from_secs(20), || reader.get(&added.hash).is_some()).await?;
        println!("tx {i} {} reached b in {took:?}", added.hash);
    }
    if b.reader().get(&private_hash).is_some() {
        return Err("a private transaction left its node".into());
    }
    println!(
        "private tx {private_hash} stayed on a; pooled: a {}, b {}",
        a.reader().sizes().total(),
        b.reader().sizes().total()
    );
    if smoke {
        println!("smoke: ok");
    }
    Ok(())
}
