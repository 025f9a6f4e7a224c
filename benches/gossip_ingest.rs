//! Transactions per second one node takes in from a gossip peer on loopback (libp2p TCP, noise,
//! yamux, gossipsub) through validation into the pool, against the validation stage's own rate
//! on the same transactions in the same run. Run: `cargo bench --bench gossip_ingest`.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use alloy_primitives::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt as _;
use libp2p::{gossipsub, identity::Keypair, swarm::SwarmEvent};
use tidepool::{
    gossip::{GossipsubParams, Rate},
    net::protocol::{self, BehaviourEvent, Limits},
    node::{Node, NodeConfig},
    tx::generate::TxMix,
    validate::{PipelineConfig, ValidationConfig, ValidationPipeline, Validator},
};

const CHAIN_ID: u64 = 1337;
const ACCOUNTS: usize = 512;
const TXS: usize = 2_000;

/// Fresh transactions for each iteration (a pool never takes the same bytes twice).
fn batch(seed: u64) -> Vec<Bytes> {
    TxMix::new(seed, ACCOUNTS, CHAIN_ID).take(TXS).into_iter().map(|t| t.raw).collect()
}

fn validation_config() -> ValidationConfig {
    ValidationConfig { chain_id: CHAIN_ID, min_priority_fee: 0, ..Default::default() }
}

fn node_config(dir: &std::path::Path) -> NodeConfig {
    let mut config = NodeConfig {
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        block_time: 3_600.0,
        dev_accounts: ACCOUNTS as u64,
        validation: validation_config(),
        ..NodeConfig::default()
    };
    // The benchmark peer is trusted: no rate limit gets in the way of measuring throughput.
    config.gossip.messages = Rate { per_second: 1e9, burst: 1e9 };
    // The peer's first burst is the whole batch, before any verdict could end its probation.
    config.gossip.probation = config.gossip.messages;
    config.gossip.bytes = Rate { per_second: 1e12, burst: 1e12 };
    config.pool.account_slots = TXS;
    config
}

/// Publishes `txs` from a fresh peer into a fresh node; returns the time from the first publish
/// until all are pooled.
async fn gossip_into_node(txs: Vec<Bytes>) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(node_config(dir.path())).await.unwrap();
    let limits = Limits { max_message: 256 * 1024, max_connections: 4, gossipsub: GossipsubParams::default() };
    let mut peer = protocol::build_swarm(Keypair::generate_ed25519(), limits).unwrap();
    let topic = protocol::tx_topic(CHAIN_ID);
    peer.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    let address = node.listen_addrs()[0].clone();
    peer.dial(format!("{address}/p2p/{}", node.peer_id()).parse::<libp2p::Multiaddr>().unwrap()).unwrap();
    let target = node.peer_id();
    loop {
        if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) =
            peer.select_next_some().await
            && peer_id == target
        {
            break;
        }
    }
    let start = Instant::now();
    let mut queue: VecDeque<Bytes> = txs.into();
    let expected = queue.len();
    loop {
        while let Some(tx) = queue.pop_front() {
            if peer.behaviour_mut().gossipsub.publish(topic.clone(), tx.to_vec()).is_err() {
                unreachable!("the node is subscribed");
            }
        }
        tokio::select! {
            _ = peer.select_next_some() => {}
            () = tokio::time::sleep(Duration::from_millis(1)) => {
                if node.reader().sizes().total() >= expected {
                    break;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    node.stop().await;
    elapsed
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(20));

    let pipeline = ValidationPipeline::new(
        Validator::new(validation_config()),
        PipelineConfig { recent_capacity: 0, recent_bytes: 0, ..PipelineConfig::default() },
    );
    let txs = batch(1);
    group.bench_function("validation_pipeline", |b| {
        b.iter(|| {
            let mut pending = VecDeque::new();
            for raw in &txs {
                loop {
                    match pipeline.submit(raw.clone()) {
                        Ok(verdict) => break pending.push_back(verdict),
                        Err(_) => drop(pending.pop_front().expect("work in flight").wait()),
                    }
                }
            }
            pending.into_iter().for_each(|v| drop(v.wait()));
        });
    });

    let mut seed = 100;
    group.bench_function("gossip_peer_to_pool", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    seed += 1;
                    runtime.block_on(gossip_into_node(batch(seed)))
                })
                .sum()
        });
    });
    group.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
