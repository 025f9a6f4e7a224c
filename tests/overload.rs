//! Overload: gossip and JSON-RPC together offer five times what validation can take (or as much
//! as this machine can generate; the test prints the ratio reached). The node, a separate
//! `tidepool node` process so its memory is measured alone, must stay within a memory bound,
//! keep answering, and count every message it did not process.
//!
//! CI runs a short version (5 s). The full run, 60 s in release mode:
//! `OVERLOAD_SECS=60 cargo test --release --test overload -- --nocapture`
//! (its figures are in BENCHMARKS.md).

mod common;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_consensus::{SignableTransaction as _, TxEip1559};
use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256, b256};
use common::{
    node::{CHAIN_ID, RawPeer},
    process::{free_port, metric_at, resident_bytes, spawn_node, wait_for_rpc},
};
use jsonrpsee::{
    core::{client::ClientT, params::BatchRequestBuilder},
    http_client::HttpClientBuilder,
    rpc_params,
};
use serde_json::Value;
use tidepool::{
    tx::Envelope,
    validate::{ValidationConfig, Validator},
};

/// The node's resident memory must stay below this under overload. What can grow is bounded:
/// the validation queue (4,096 txs), the recent-verdict cache (16 MiB), the gossip seen-caches,
/// the RPC connections (256) and their request bodies (5 MiB each at most in flight).
const RSS_BOUND: usize = 256 << 20;

/// The node's settings for this test: one validation worker (the capacity measured here), and
/// peer and client budgets wide open so the flood reaches validation instead of being
/// rate-limited at the door (that path is tested elsewhere).
const NODE_CONFIG: &str = r#"
[pipeline]
workers = 1
[gossip.messages]
per_second = 1000000.0
burst = 1000000.0
[gossip.probation]
per_second = 1000000.0
burst = 1000000.0
[gossip.bytes]
per_second = 1000000000.0
burst = 1000000000.0
[rpc.send_raw_per_client]
per_second = 1000000.0
burst = 1000000.0
"#;
const CALLS_PER_BATCH: usize = 20;
/// Concurrent RPC clients. Each waits for its batch's answers (as real clients do), and an
/// answer waits for validation behind a full queue, so the offered RPC rate is at most
/// clients x batch / queue latency.
const RPC_CLIENTS: usize = 64;

/// A well-formed transaction whose signature recovers to a random, unfunded account: it costs
/// validation a full signature recovery and ends as `insufficient_funds`, which blames nobody
/// (so no peer is banned and the load keeps coming). `r` is the generator point's x coordinate,
/// so recovery always succeeds; `salt` makes every one distinct.
fn junk(salt: u64) -> Bytes {
    let generator_x = b256!("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: salt % 1_000,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0xcc)),
        value: U256::from(1),
        ..Default::default()
    };
    let signature = Signature::new(generator_x.into(), U256::from(salt + 1), salt.is_multiple_of(2));
    Envelope::from(tx.into_signed(signature)).encoded_2718().into()
}

/// What one validation worker takes per second of these transactions, measured here.
fn validation_capacity() -> f64 {
    let validator = Validator::new(ValidationConfig { chain_id: CHAIN_ID, ..Default::default() });
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        // Valid bytes from an unfunded sender: the full cost (decode, recovery) every time; the
        // node's pool then refuses them as `insufficient_funds`.
        assert!(validator.validate(junk(u64::MAX / 2 + done)).is_ok());
        done += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_times_validation_capacity_from_gossip_and_rpc_stays_bounded_and_counted() {
    let seconds: u64 = std::env::var("OVERLOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let capacity = validation_capacity();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, NODE_CONFIG).unwrap();
    let (rpc_port, p2p_port, metrics_port) = (free_port(), free_port(), free_port());
    let listen = format!("/ip4/127.0.0.1/tcp/{p2p_port}");
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let args = ["--config", config.to_str().unwrap(), "--listen", &listen, "--metrics-addr", &metrics_addr];
    let (node, peer_id) = spawn_node(&dir.path().join("data"), rpc_port, &args);
    let url = format!("http://127.0.0.1:{rpc_port}");
    wait_for_rpc(&url).await;
    let pid = node.0.id();
    let metric = |name: &str| metric_at(metrics_port, name);
    let rss_before = resident_bytes(pid);
    let (gossip_rate, rpc_rate) = (3.0 * capacity, 2.0 * capacity);
    println!("capacity {capacity:.0} tx/s; offering gossip {gossip_rate:.0} + rpc {rpc_rate:.0} tx/s for {seconds} s");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let salt = Arc::new(AtomicU64::new(0));
    let next = move || junk(salt.fetch_add(1, Ordering::Relaxed));

    // Gossip: one peer publishing at `gossip_rate`, driving its swarm between bursts.
    let address = format!("{listen}/p2p/{peer_id}").parse().unwrap();
    let mut peer = RawPeer::connect_to(address, peer_id.parse().unwrap()).await;
    let gossip = {
        let next = next.clone();
        tokio::spawn(async move {
            let (mut published, mut refused) = (0u64, 0u64);
            let tick = Duration::from_millis(10);
            let per_tick = (gossip_rate * tick.as_secs_f64()).ceil() as u64;
            while Instant::now() < deadline {
                for _ in 0..per_tick {
                    if peer.publish(&next()) { published += 1 } else { refused += 1 }
                }
                peer.run_until(tick, |_| false).await;
            }
            peer.run_until(Duration::from_secs(2), |_| false).await; // flush what is queued
            (published, refused)
        })
    };

    // RPC: clients sending batches at `rpc_rate` in total.
    let answers = Arc::new(std::sync::Mutex::new(BTreeMap::<String, u64>::new()));
    let mut clients = Vec::new();
    for _ in 0..RPC_CLIENTS {
        let client = HttpClientBuilder::default().build(&url).unwrap();
        let (next, answers) = (next.clone(), answers.clone());
        clients.push(tokio::spawn(async move {
            let interval = Duration::from_secs_f64(CALLS_PER_BATCH as f64 / (rpc_rate / RPC_CLIENTS as f64));
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while Instant::now() < deadline {
                ticker.tick().await;
                let mut batch = BatchRequestBuilder::new();
                for _ in 0..CALLS_PER_BATCH {
                    batch.insert("eth_sendRawTransaction", rpc_params![next()]).unwrap();
                }
                let response = client.batch_request::<Value>(batch).await.expect("the node answers every batch");
                let mut answers = answers.lock().unwrap();
                for result in response {
                    let kind = match result {
                        Ok(_) => "accepted".to_owned(),
                        Err(e) => e.data().map_or(e.message().to_owned(), |d| {
                            serde_json::from_str::<Value>(d.get()).unwrap()["kind"].as_str().unwrap().to_owned()
                        }),
                    };
                    *answers.entry(kind).or_default() += 1;
                }
            }
        }));
    }

    let mut rss_peak = rss_before;
    while Instant::now() < deadline {
        rss_peak = rss_peak.max(resident_bytes(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (published, refused_by_gossipsub) = gossip.await.expect("gossip task");
    for client in clients {
        client.await.expect("rpc task");
    }
    // Quiesce: whatever was queued is validated, and the counters are refreshed.
    let quiet = Instant::now();
    while metric("tidepool_validation_queue_depth") > 0.0 && quiet.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    rss_peak = rss_peak.max(resident_bytes(pid));

    let answers = answers.lock().unwrap().clone();
    let rpc_calls: u64 = answers.values().sum();
    let offered = (published + rpc_calls) as f64 / seconds as f64;
    let gossip_received = metric("tidepool_received_total{source=\"gossip\"}") as u64;
    let rpc_received = metric("tidepool_received_total{source=\"rpc\"}") as u64;
    let rate_limited = metric("tidepool_rpc_rate_limited_total") as u64;
    let reasons = ["validation_busy", "duplicate", "rate_limited", "oversized", "fetch_queue_full", "unknown_request"];
    let drops: BTreeMap<&str, u64> = reasons
        .iter()
        .map(|r| (*r, metric(&format!("tidepool_gossip_dropped_total{{reason=\"{r}\"}}")) as u64))
        .collect();
    let outcome_kinds = ["added", "busy", "insufficient_funds", "already_known", "invalid_signature"];
    let outcomes: BTreeMap<&str, u64> = outcome_kinds
        .iter()
        .map(|k| (*k, metric(&format!("tidepool_ingest_outcomes_total{{outcome=\"{k}\"}}")) as u64))
        .collect();
    let validated = (outcomes.values().sum::<u64>() - outcomes["busy"]) as f64 / seconds as f64;
    println!(
        "offered {offered:.0} tx/s = {:.1}x the measured capacity, {:.1}x what the node validated meanwhile \
         ({validated:.0} tx/s) (gossip published {published}, refused by the sender's \
         gossipsub {refused_by_gossipsub}; rpc calls {rpc_calls}); rpc answers {answers:?}; node: gossip received \
         {gossip_received}, drops {drops:?}, ingest outcomes {outcomes:?}; resident {} MiB before, peak {} MiB",
        offered / capacity,
        offered / validated,
        rss_before >> 20,
        rss_peak >> 20
    );

    // Still serving, nothing panicked.
    let chain_id: Value = wait_for_rpc(&url).await.request("eth_chainId", rpc_params![]).await.unwrap();
    assert!(chain_id.is_string());
    assert!(rss_peak < RSS_BOUND, "resident memory {} MiB past the bound", rss_peak >> 20);
    // Overloaded for real: validation refused work on both paths.
    assert!(answers.get("busy").copied().unwrap_or(0) > 0, "RPC saw backpressure: {answers:?}");
    assert!(drops["validation_busy"] > 0, "gossip saw backpressure");
    // Every RPC call was answered, and the node counted each one.
    assert_eq!(rpc_received, rpc_calls);
    // Every submission reached an outcome: ingest outcomes = gossip validations + RPC calls let
    // through, and every gossip message received was validated or dropped with a reason.
    let submitted: u64 = outcomes.values().sum();
    let gossip_validations = submitted - (rpc_received - rate_limited);
    let dropped: u64 = drops.values().sum();
    assert_eq!(gossip_received, gossip_validations + dropped - drops["validation_busy"], "{drops:?} {outcomes:?}");
    assert!(gossip_received > 0);
}
