//! The node as users and peers meet it: JSON-RPC, gossip between nodes, restarts, misbehaving
//! peers and overload. Every node runs in-process on loopback with ephemeral ports.

mod common;

use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use common::{
    node::{
        CHAIN_ID, RawPeer, bad_signature, dial_addr, eventually, hash_of, metric, pending_nonce, rpc, send_raw,
        start_node, transfer,
    },
    process::resident_bytes,
};
use jsonrpsee::{core::client::ClientT, rpc_params};
use serde_json::Value;
use tidepool::{gossip::Rate, node::Node, tx::sign::Signer};

const WAIT: Duration = Duration::from_secs(20);

/// A legacy transfer without a chain id (pre-EIP-155), from dev account 3.
fn unprotected_transfer() -> Bytes {
    Signer::dev(3).sign_tx(alloy_consensus::TxLegacy {
        chain_id: None,
        nonce: 0,
        gas_price: 10_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(Address::with_last_byte(0xaa)),
        value: U256::from(1),
        input: Bytes::new(),
    })
}

async fn in_pool(node: &Node, hash: B256) -> bool {
    node.reader().get(&hash).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_client_submits_reads_the_pool_and_sees_the_tx_mined() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| c.block_time = 1.0).await;
    let client = rpc(&node);
    let sender = Signer::dev(3).address();
    let raw = transfer(3, 0, 0);
    let hash = send_raw(&client, &raw).await.unwrap();
    assert_eq!(hash, hash_of(&raw));

    let content: Value = client.request("txpool_content", rpc_params![]).await.unwrap();
    let entry = &content["pending"][sender.to_checksum(None)]["0"];
    assert_eq!(entry["hash"], format!("{hash:#x}"), "{content}");
    assert_eq!(pending_nonce(&client, sender).await, 1);

    // A duplicate and a stale nonce get geth's messages and our kinds.
    let error = send_raw(&client, &raw).await.unwrap_err().to_string();
    assert!(error.contains("already known") && error.contains("already_known"), "{error}");

    eventually("the tx is mined out of the pool", WAIT, || async { node.reader().get(&hash).is_none() }).await;
    let mined: Value = client.request("eth_getTransactionByHash", rpc_params![hash]).await.unwrap();
    assert!(mined["blockNumber"].is_string(), "a mined transaction is shown with its block: {mined}");
    let latest: U256 = client.request("eth_getTransactionCount", rpc_params![sender, "latest"]).await.unwrap();
    assert_eq!(latest, U256::from(1));
    let error = send_raw(&client, &raw).await.unwrap_err().to_string();
    assert!(error.contains("nonce too low"), "{error}");
    assert!(metric(&node, "tidepool_pool_removed_total{reason=\"mined\"}") >= 1.0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_share_small_and_large_transactions() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = start_node(dirs[0].path(), |_| {}).await;
    let boot = dial_addr(&first);
    let mut nodes = vec![first];
    for dir in &dirs[1..] {
        let boot = boot.clone();
        nodes.push(start_node(dir.path(), move |c| c.bootnodes = vec![boot]).await);
    }
    for node in &nodes {
        eventually("peers connect", WAIT, || async { node.network().stats().connected_peers >= 1 }).await;
    }
    // Give gossipsub a few heartbeats to build its mesh.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let small = transfer(1, 0, 0);
    let large = transfer(2, 0, 6_000); // above the 4 KiB announce threshold
    let client = rpc(&nodes[3]);
    send_raw(&client, &small).await.unwrap();
    send_raw(&client, &large).await.unwrap();
    for (i, node) in nodes.iter().enumerate() {
        eventually(&format!("node {i} pools the small tx"), WAIT, || in_pool(node, hash_of(&small))).await;
        eventually(&format!("node {i} pools the large tx"), WAIT, || in_pool(node, hash_of(&large))).await;
    }
    eventually("the large tx travelled by announce/fetch", WAIT, || async {
        nodes[..3].iter().map(|n| metric(n, "tidepool_gossip_fetches_total")).sum::<f64>() >= 3.0
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_peer_id_and_rejoins() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), |_| {}).await;
    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    eventually("b connects", WAIT, || async { a.network().stats().connected_peers == 1 }).await;
    let peer_id = b.peer_id();
    b.stop().await;
    eventually("a sees b leave", WAIT, || async { a.network().stats().connected_peers == 0 }).await;

    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    assert_eq!(b.peer_id(), peer_id, "the node key is kept in the data directory");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir_b.path().join("node.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the node key is readable by its owner only");
    eventually("b rejoins", WAIT, || async { a.network().stats().connected_peers == 1 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let raw = transfer(4, 0, 0);
    send_raw(&rpc(&b), &raw).await.unwrap();
    eventually("a receives b's tx after the restart", WAIT, || in_pool(&a, hash_of(&raw))).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_junk_gets_the_peer_banned_while_honest_txs_flow() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), |_| {}).await;
    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    let mut attacker = RawPeer::connect(&a).await;
    for i in 0..200u64 {
        let junk = if i % 2 == 0 { bad_signature(i) } else { Bytes::from(vec![0xc1, i as u8, 0xff]) };
        attacker.publish(&junk);
        attacker.run_until(Duration::from_millis(20), |_| false).await;
        if !attacker.is_connected() {
            break;
        }
    }
    attacker.run_until(Duration::from_secs(2), |_| false).await;
    assert!(!attacker.is_connected(), "the flooder is disconnected");
    // Disconnected and refused for a cool-off (three bad signatures score below
    // `disconnect_below`); bans, for scores below `ban_below`, are counted apart.
    eventually("the disconnect shows in the metrics", WAIT, || async {
        metric(&a, "tidepool_peer_disconnects_total") >= 1.0
    })
    .await;
    assert!(metric(&a, "tidepool_gossip_penalties_total{penalty=\"invalid_signature\"}") >= 1.0);
    assert!(metric(&a, "tidepool_gossip_penalties_total{penalty=\"undecodable\"}") >= 1.0);

    // Banned: a new connection from the same peer is refused.
    attacker.swarm.dial(dial_addr(&a)).unwrap();
    attacker.run_until(Duration::from_secs(2), |_| false).await;
    assert!(!attacker.is_connected(), "the banned peer cannot reconnect");

    // Honest traffic from b still reaches a.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let raw = transfer(5, 0, 0);
    send_raw(&rpc(&b), &raw).await.unwrap();
    eventually("honest tx reaches a", WAIT, || in_pool(&a, hash_of(&raw))).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_valid_txs_too_fast_is_throttled_and_others_are_not() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), |c| c.gossip.messages = Rate { per_second: 5.0, burst: 10.0 }).await;
    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    eventually("b connects", WAIT, || async { a.network().stats().connected_peers == 1 }).await;
    let mut spammer = RawPeer::connect(&a).await;
    for nonce in 0..60 {
        spammer.publish(&transfer(10, nonce, 0));
    }
    spammer.run_until(Duration::from_secs(2), |_| false).await;
    eventually("rate-limited drops are counted", WAIT, || async {
        metric(&a, "tidepool_gossip_dropped_total{reason=\"rate_limited\"}") >= 1.0
    })
    .await;
    let admitted = a.reader().account_txs(&Signer::dev(10).address()).len();
    assert!(admitted < 60, "the spammer got only its budget through ({admitted})");

    let raw = transfer(11, 0, 0);
    send_raw(&rpc(&b), &raw).await.unwrap();
    eventually("b's tx is unaffected", WAIT, || in_pool(&a, hash_of(&raw))).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_validation_queue_means_busy_over_rpc_and_ignore_over_gossip() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| {
        c.pipeline.workers = 1;
        c.pipeline.queue_capacity = 2;
        c.gossip.messages = Rate { per_second: 10_000.0, burst: 10_000.0 };
    })
    .await;
    let rss_before = resident_bytes(std::process::id());

    // RPC: many concurrent submissions against a 2-slot queue. Enough of them that the queue
    // fills even on a quiet machine, where one worker keeps up with a few dozen arrivals.
    let client = rpc(&node);
    let submissions = (0..256u64).map(|i| {
        let client = client.clone();
        async move { send_raw(&client, &transfer(20 + i % 32, i / 32, 0)).await }
    });
    let results = futures::future::join_all(submissions).await;
    let busy = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.to_string().contains("busy"))).count();
    assert!(busy > 0, "some submissions are answered busy");
    assert!(results.iter().any(Result::is_ok), "the rest get in");

    // Gossip: a burst of valid txs; what the queue cannot take is ignored and counted.
    let mut peer = RawPeer::connect(&node).await;
    for nonce in 0..200 {
        peer.publish(&transfer(40, nonce, 0));
    }
    peer.run_until(Duration::from_secs(2), |_| false).await;
    eventually("gossip drops for a busy queue are counted", WAIT, || async {
        metric(&node, "tidepool_gossip_dropped_total{reason=\"validation_busy\"}") >= 1.0
    })
    .await;
    assert!(metric(&node, "tidepool_validation_queue_depth") <= 2.0);
    let growth = resident_bytes(std::process::id()).saturating_sub(rss_before);
    assert!(growth < 64 << 20, "resident memory grew by {growth} bytes");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_pending_transactions_subscription_streams_hashes() {
    use jsonrpsee::{core::client::SubscriptionClientT, ws_client::WsClientBuilder};
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let ws = WsClientBuilder::default().build(format!("ws://{}", node.rpc_addr())).await.unwrap();
    let mut hashes = ws
        .subscribe::<B256, _>("eth_subscribe", rpc_params!["newPendingTransactions"], "eth_unsubscribe")
        .await
        .unwrap();
    let mut full = ws
        .subscribe::<Value, _>("eth_subscribe", rpc_params!["newPendingTransactions", true], "eth_unsubscribe")
        .await
        .unwrap();
    let raw = transfer(6, 0, 0);
    send_raw(&rpc(&node), &raw).await.unwrap();
    let next = tokio::time::timeout(WAIT, hashes.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(next, hash_of(&raw));
    // With `true`, the whole transaction, rendered as eth_getTransactionByHash renders it.
    let tx = tokio::time::timeout(WAIT, full.next()).await.unwrap().unwrap().unwrap();
    let by_hash: Value = rpc(&node).request("eth_getTransactionByHash", rpc_params![hash_of(&raw)]).await.unwrap();
    assert_eq!(tx, by_hash);
    assert_eq!(tx["from"].as_str().unwrap().parse::<Address>().unwrap(), Signer::dev(6).address());
    node.stop().await;
}

/// Issue: wallets' everyday calls failed, errors were Rust dumps, and unprotected legacy
/// transactions were accepted from any RPC client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_answers_wallets_in_their_terms() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let client = rpc(&node);
    let kind = |e: jsonrpsee::core::ClientError| match e {
        jsonrpsee::core::ClientError::Call(e) => {
            let data: Value = e.data().map(|d| serde_json::from_str(d.get()).unwrap()).unwrap_or_default();
            (e.code(), e.message().to_owned(), data["kind"].as_str().unwrap_or_default().to_owned())
        }
        other => panic!("{other}"),
    };

    // Pre-EIP-155 legacy: refused over RPC by default.
    let unprotected = unprotected_transfer();
    let (code, message, refused) = kind(send_raw(&client, &unprotected).await.unwrap_err());
    assert_eq!((code, refused.as_str()), (-32000, "unprotected_not_allowed"), "{message}");
    assert!(node.reader().get(&hash_of(&unprotected)).is_none(), "nothing changed");

    // A parameter that is not hex: plain words, no debug dump.
    let (code, message, _) =
        kind(client.request::<B256, _>("eth_sendRawTransaction", rpc_params!["not hex"]).await.unwrap_err());
    assert_eq!(code, -32602);
    assert!(message.starts_with("invalid params: ") && !message.contains("ErrorObject"), "{message}");

    // What needs an EVM says so.
    let (_, message, refused) = kind(
        client
            .request::<Value, _>("eth_call", rpc_params![serde_json::json!({"to": Address::ZERO}), "latest"])
            .await
            .unwrap_err(),
    );
    assert_eq!(refused, "not_an_evm", "{message}");
    let creation = serde_json::json!({ "from": Signer::dev(3).address(), "input": "0x6000" });
    let (_, _, refused) = kind(client.request::<Value, _>("eth_estimateGas", rpc_params![creation]).await.unwrap_err());
    assert_eq!(refused, "not_an_evm");
    let version: String = client.request("web3_clientVersion", rpc_params![]).await.unwrap();
    assert!(version.starts_with("tidepool/v"), "{version}");
    let net_version: String = client.request("net_version", rpc_params![]).await.unwrap();
    assert_eq!(net_version, CHAIN_ID.to_string());
    let syncing: bool = client.request("eth_syncing", rpc_params![]).await.unwrap();
    assert!(!syncing);

    // A mined transaction stays readable: by hash (with its block), raw, and its receipt.
    let raw = transfer(3, 0, 0);
    let hash = send_raw(&client, &raw).await.unwrap();
    let pooled_raw: Bytes = client.request("eth_getRawTransactionByHash", rpc_params![hash]).await.unwrap();
    assert_eq!(pooled_raw, raw);
    node.chain().expect("dev chain").produce(&node.tidepool().builder_feed(), &node.tidepool().chain());
    let mined: Value = client.request("eth_getTransactionByHash", rpc_params![hash]).await.unwrap();
    assert_eq!(mined["blockNumber"], "0x1", "{mined}");
    let receipt: Value = client.request("eth_getTransactionReceipt", rpc_params![hash]).await.unwrap();
    assert_eq!((receipt["status"].as_str(), receipt["blockHash"].clone()), (Some("0x1"), mined["blockHash"].clone()));
    let block: Value = client.request("eth_getBlockByNumber", rpc_params!["latest", true]).await.unwrap();
    assert_eq!(block["transactions"][0], mined);
    let history: Value = client.request("eth_feeHistory", rpc_params!["0x2", "latest", [25.0, 75.0]]).await.unwrap();
    assert_eq!(history["oldestBlock"], "0x0");
    assert_eq!(history["baseFeePerGas"].as_array().map(Vec::len), Some(3), "{history}");
    assert_eq!(history["reward"][1][0], "0x3b9aca00", "block 1 paid a 1 gwei tip: {history}");
    let mined_raw: Bytes = client.request("eth_getRawTransactionByHash", rpc_params![hash]).await.unwrap();
    assert_eq!(mined_raw, raw);
    node.stop().await;
}

/// `[rpc] allow_unprotected_txs` lets a client submit pre-EIP-155 transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprotected_transactions_are_accepted_over_rpc_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| c.rpc.allow_unprotected_txs = true).await;
    let unprotected = unprotected_transfer();
    assert_eq!(send_raw(&rpc(&node), &unprotected).await.unwrap(), hash_of(&unprotected));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_a_clear_start_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = tidepool::node::NodeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: Vec::new(),
        rpc_addr: address,
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.block_time = 3_600.0;
    let error = Node::start(config).await.err().expect("refused").to_string();
    assert!(error.contains("cannot bind RPC address") && error.contains(&address.to_string()), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_a_tx_left_is_answered_by_the_library_and_over_json_rpc() {
    use common::world::{address, tx};
    use tidepool::{
        pool::{Invalidation, Limit, RemovalReason, SubPool, SubPoolLimit},
        state::{AccountState, BlockUpdate},
    };
    const GWEI: u128 = 1_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| {
        c.pool.queued = SubPoolLimit { max_txs: 1, ..SubPoolLimit::DEFAULT };
        c.pool.lifetime = Duration::from_millis(300);
    })
    .await;
    let client = rpc(&node);
    let spec = |account, nonce| tx(account, nonce).chain(CHAIN_ID).fees(10 * GWEI, GWEI);

    // Replaced: the same nonce again, both fees 20% higher.
    let (old, new) = (spec(1, 0), spec(1, 0).fees(12 * GWEI, 12 * GWEI / 10));
    send_raw(&client, &old.raw()).await.unwrap();
    send_raw(&client, &new.raw()).await.unwrap();
    // Evicted: queued holds one; a better-paying gapped tx pushes the cheaper one out.
    let (cheap, dear) = (spec(2, 5), spec(3, 5).fees(20 * GWEI, 2 * GWEI));
    send_raw(&client, &cheap.raw()).await.unwrap();
    send_raw(&client, &dear.raw()).await.unwrap();
    // Invalidated: another transaction (not from this pool) took the account's nonce.
    let stale = spec(4, 0);
    send_raw(&client, &stale.raw()).await.unwrap();
    let head = node.tidepool().chain().head();
    let block = head.block + 1;
    node.tidepool().chain().on_block(BlockUpdate {
        number: block,
        base_fee: head.base_fee,
        blob_base_fee: head.blob_base_fee,
        accounts: vec![(address(4), AccountState::new(1, U256::from(u64::MAX)))],
        ..Default::default()
    });
    // Expired: parked below the base fee longer than the lifetime.
    let parked = spec(5, 0).fees(1, 1);
    send_raw(&client, &parked.raw()).await.unwrap();
    assert_eq!(node.reader().get(&parked.hash()).unwrap().subpool, SubPool::BaseFee);
    tokio::time::sleep(Duration::from_millis(400)).await;
    node.tidepool().chain().expire();

    let expected = [
        (old, RemovalReason::Replaced { by: new.hash() }),
        (cheap, RemovalReason::Evicted { limit: Limit::SubPoolCount(SubPool::Queued) }),
        (stale, RemovalReason::Invalidated { why: Invalidation::NonceTooLow { account_nonce: 1 }, block }),
        (parked, RemovalReason::Expired),
    ];
    for (spec, reason) in expected {
        let record = node.reader().dead_letter(&spec.hash()).expect("recorded");
        assert_eq!((record.sender, record.nonce, record.reason), (address(spec.account), spec.nonce, reason));
        let over_rpc: Value = client.request("tidepool_deadLetter", rpc_params![spec.hash()]).await.unwrap();
        assert_eq!(over_rpc, serde_json::to_value(&record).unwrap());
        assert_eq!(over_rpc["reason"], reason.kind(), "{over_rpc}");
        let gone: Value = client.request("eth_getTransactionByHash", rpc_params![spec.hash()]).await.unwrap();
        assert!(gone.is_null(), "not in the pool any more");
    }
    let over_rpc: Value = client.request("tidepool_deadLetter", rpc_params![new.hash()]).await.unwrap();
    assert!(over_rpc.is_null(), "a pooled tx has no dead letter");
    let replaced: Value = client.request("tidepool_deadLettersFrom", rpc_params![address(1)]).await.unwrap();
    assert_eq!(replaced[0]["by"], format!("{:#x}", new.hash()), "{replaced}");
    assert_eq!(metric(&node, "tidepool_dead_letters_total{reason=\"replaced\"}"), 1.0);
    // The queued `dear` waited as long as `parked`: both expired.
    assert_eq!(metric(&node, "tidepool_dead_letters_total{reason=\"expired\"}"), 2.0);
    assert_eq!(metric(&node, "tidepool_dead_letters_held"), 5.0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_limits_refuse_oversized_bodies_large_batches_and_clients_over_budget() {
    use jsonrpsee::core::params::BatchRequestBuilder;
    use tidepool::gossip::Rate;
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| {
        c.rpc.max_request_bytes = 4096;
        c.rpc.max_batch = 2;
        c.rpc.send_raw_per_client = Rate { per_second: 0.01, burst: 3.0 };
    })
    .await;
    let client = rpc(&node);

    let too_big = transfer(1, 0, 3_000); // about 6 KB of hex in the body
    let error = send_raw(&client, &too_big).await.expect_err("body over the limit");
    assert!(!in_pool(&node, hash_of(&too_big)).await, "refused before any work: {error}");
    // The same body sent chunked (no Content-Length) is refused the same way: 413, not 500.
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [too_big]});
    let status = chunked_post(node.rpc_addr(), &body.to_string()).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert!(!in_pool(&node, hash_of(&too_big)).await);

    let mut batch = BatchRequestBuilder::new();
    for _ in 0..3 {
        batch.insert("eth_chainId", rpc_params![]).unwrap();
    }
    assert!(client.batch_request::<Value>(batch).await.is_err(), "three calls in a batch of at most two");

    for nonce in 0..3 {
        send_raw(&client, &transfer(2, nonce, 0)).await.expect("within the burst");
    }
    let limited = send_raw(&client, &transfer(2, 3, 0)).await.expect_err("budget spent");
    let jsonrpsee::core::ClientError::Call(error) = limited else { panic!("{limited}") };
    assert_eq!(error.code(), -32005);
    assert!(error.data().unwrap().get().contains("rate_limited"));
    assert!(!in_pool(&node, hash_of(&transfer(2, 3, 0))).await);
    assert_eq!(metric(&node, "tidepool_rpc_rate_limited_total"), 1.0);
    let chain_id: Value = client.request("eth_chainId", rpc_params![]).await.unwrap();
    assert!(chain_id.is_string(), "other methods are not budgeted");
    node.stop().await;
}

/// POSTs `body` with `Transfer-Encoding: chunked`; the status line.
async fn chunked_post(address: std::net::SocketAddr, body: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = String::from(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for chunk in body.as_bytes().chunks(1024) {
        request.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), std::str::from_utf8(chunk).unwrap()));
    }
    request.push_str("0\r\n\r\n");
    // The node may answer and close before it has read everything: a failed write is fine.
    let _ = socket.write_all(request.as_bytes()).await;
    let mut response = vec![0; 4096];
    let n = tokio::time::timeout(WAIT, socket.read(&mut response)).await.unwrap().unwrap();
    String::from_utf8_lossy(&response[..n]).lines().next().unwrap_or_default().to_owned()
}

/// Issue: no Origin check, so a web page the user visits could call a node on loopback. A
/// request carrying an `Origin` not allowed by `rpc.allowed_origins` is refused with 403; tools
/// (no `Origin`) and allowed origins are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_web_pages_are_refused_unless_their_origin_is_allowed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn status(node: &Node, origin: Option<&str>) -> String {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
        let origin = origin.map_or_else(String::new, |o| format!("Origin: {o}\r\n"));
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let mut socket = tokio::net::TcpStream::connect(node.rpc_addr()).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        response.lines().next().unwrap_or_default().to_owned()
    }

    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| c.rpc.allowed_origins = vec!["https://wallet.example".into()]).await;
    assert!(status(&node, None).await.contains("200"), "tools send no Origin");
    assert!(status(&node, Some("https://evil.example")).await.contains("403"), "a page elsewhere is refused");
    assert!(status(&node, Some("https://wallet.example")).await.contains("200"), "an allowed origin is served");
    node.stop().await;
}

/// Issue: private transactions were visible through `txpool_*` and `eth_getTransactionByHash`
/// to anyone on the RPC. JSON-RPC shows none of them (they stay pooled and counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_transactions_are_not_shown_over_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let (private, public) = (transfer(7, 0, 0), transfer(8, 0, 0));
    let submitter = node.tidepool().submitter();
    submitter.submit(private.clone(), tidepool::Origin::Private).await.unwrap();
    submitter.submit(public.clone(), tidepool::Origin::Local).await.unwrap();
    let client = rpc(&node);
    let by_hash = |raw: &Bytes| {
        let client = client.clone();
        let hash = hash_of(raw);
        async move { client.request::<Value, _>("eth_getTransactionByHash", rpc_params![hash]).await.unwrap() }
    };
    assert_eq!(by_hash(&private).await, Value::Null);
    assert_ne!(by_hash(&public).await, Value::Null);
    let content: Value = client.request("txpool_content", rpc_params![]).await.unwrap();
    let text = content.to_string();
    assert!(!text.contains(&hash_of(&private).to_string()), "no private tx in txpool_content");
    assert!(text.contains(&hash_of(&public).to_string()));
    let inspect: Value = client.request("txpool_inspect", rpc_params![]).await.unwrap();
    assert_eq!(inspect["pending"].as_object().map(serde_json::Map::len), Some(1), "only the public sender");
    node.stop().await;
}

/// Issue: the connection limit counted requests in flight, not connections, and idle keep-alive
/// connections were never closed. Now connections are counted from accept to close, and one
/// that sends nothing for `idle_timeout` is closed, freeing its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_connections_are_counted_and_idle_ones_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Sends one keep-alive request; what came back within 500 ms ("" when the node closed it).
    async fn call(socket: &mut tokio::net::TcpStream) -> String {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if socket.write_all(request.as_bytes()).await.is_err() {
            return String::new();
        }
        let mut buf = vec![0; 4096];
        match tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await {
            Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            _ => String::new(),
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| {
        c.rpc.max_connections = 2;
        c.rpc.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let connect = || tokio::net::TcpStream::connect(node.rpc_addr());
    let (mut first, mut second) = (connect().await.unwrap(), connect().await.unwrap());
    assert!(call(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(call(&mut second).await.starts_with("HTTP/1.1 200"));
    let mut third = connect().await.unwrap();
    assert_eq!(call(&mut third).await, "", "a third open connection is over the limit of two");
    // Both go idle: the node closes them, and a new connection is served.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(call(&mut first).await, "", "an idle connection was closed");
    let mut fourth = connect().await.unwrap();
    assert!(call(&mut fourth).await.starts_with("HTTP/1.1 200"), "its slot is free again");
    node.stop().await;
}

/// Issue: `txpool_content` rendered a whole pool in one response on an async thread, so a full
/// pool could never be read past the response limit. It renders on a blocking thread, and
/// `[limit, after]` pages through the senders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txpool_content_pages_through_the_senders() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let client = rpc(&node);
    for account in 0..12 {
        send_raw(&client, &transfer(account, 0, 0)).await.unwrap();
    }
    let whole: Value = client.request("txpool_content", rpc_params![]).await.unwrap();
    assert_eq!(whole["pending"].as_object().unwrap().len(), 12);
    assert!(whole.get("next").is_none(), "geth's shape without paging");
    let (mut seen, mut after, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let page: Value = client.request("txpool_content", rpc_params![5, after.clone()]).await.unwrap();
        let senders = page["pending"].as_object().unwrap();
        assert!(senders.len() <= 5);
        seen.extend(senders.keys().cloned());
        pages += 1;
        after = page["next"].clone();
        if after.is_null() {
            break;
        }
    }
    assert_eq!((pages, seen.len()), (3, 12), "5 + 5 + 2 senders");
    seen.dedup();
    assert_eq!(seen.len(), 12, "no sender twice");
    node.stop().await;
}

/// Issue: restored local transactions were never published again, and a publication that found
/// no peer was lost. A node restarted alone publishes what it restored once a peer arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_local_transactions_reach_peers_that_connect_later() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), |_| {}).await;
    let raw = transfer(9, 0, 0);
    send_raw(&rpc(&a), &raw).await.unwrap(); // journaled; no peer to publish to
    a.stop().await;

    let a = start_node(dir_a.path(), |_| {}).await;
    assert!(in_pool(&a, hash_of(&raw)).await, "restored");
    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    eventually("b receives a's restored local tx", WAIT, || in_pool(&b, hash_of(&raw))).await;
    a.stop().await;
    b.stop().await;
}

/// Issue: jsonrpsee reads WebSocket messages as fast as they come and spawns a task for each,
/// whose answer then waits for the client to read it, so a client that sends and never reads
/// grew the node's memory without bound. Now a connection's reads pause while its unread answers
/// are over `max_unsent_bytes_per_connection` (or its calls in progress at
/// `max_calls_per_connection`): the client's own sends block, other clients are served, and the
/// idle timeout closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_never_reads_is_paused_then_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |c| {
        c.rpc.idle_timeout = Duration::from_secs(3);
        c.rpc.max_unsent_bytes_per_connection = 64 << 10;
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut ws = socket.connect(node.rpc_addr()).await.unwrap();
    ws.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(ws.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));

    // Masked text frames (a zero mask: the payload goes as is), a thousand calls per write.
    let mut frames = Vec::new();
    for id in 0..1000 {
        let call = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
        frames.extend_from_slice(&[0x81, 0x80 | u8::try_from(call.len()).unwrap(), 0, 0, 0, 0]);
        frames.extend_from_slice(call.as_bytes());
    }
    // Unbounded, the node would read all of it (a million calls); paused, the sends block once
    // the socket buffers between the two are full.
    let limit = 1_000;
    let mut sent = 0;
    while sent < limit {
        match tokio::time::timeout(Duration::from_secs(2), ws.write_all(&frames)).await {
            Ok(written) => written.unwrap(),
            Err(_) => break,
        }
        sent += 1;
    }
    assert!(sent < limit, "the node kept reading a client that never reads ({sent}k calls sent)");

    // Other clients are served meanwhile.
    let chain_id: String = rpc(&node).request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(chain_id, format!("{CHAIN_ID:#x}"));

    // Nothing is read from the paused client, so the idle timeout closes it: afterwards,
    // reading its answers ends in end-of-file or a reset.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut buf = vec![0; 64 << 10];
    let mut answers = 0usize;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answers += n,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the paused connection was not closed ({answers} bytes of answers read)");
    node.stop().await;
}

/// An operator raises the minimum tip over the admin method (answered on loopback only): the
/// pooled transactions below it leave with a reason a client can read, and new ones below it
/// are refused with the same kind validation uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimum_tip_is_raised_over_the_loopback_admin_method() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let client = rpc(&node);
    let low = transfer(20, 0, 0); // 1 gwei tip
    let hash = send_raw(&client, &low).await.unwrap();
    let answer: Value = client.request("tidepool_setMinTip", rpc_params!["0x77359400"]).await.unwrap(); // 2 gwei
    assert_eq!(answer["removed"], 1, "{answer}");
    assert_eq!(answer["min"], "0x77359400");
    let letter: Value = client.request("tidepool_deadLetter", rpc_params![hash]).await.unwrap();
    assert!(letter.to_string().contains("tip_below_minimum"), "{letter}");
    let refused = send_raw(&client, &transfer(21, 0, 0)).await.unwrap_err();
    assert!(refused.to_string().contains("tip_below_minimum"), "{refused}");
    node.stop().await;
}
