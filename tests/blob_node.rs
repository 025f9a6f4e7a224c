//! Blob transactions through whole nodes: JSON-RPC in, announced and fetched by a peer in their
//! network form, offered by the peer's builder feed with the sidecar, served by
//! `engine_getBlobsV1/V2`, kept across a restart, mined by the dev chain with blob gas, and
//! sent by `tidepool load --blobs`.

mod common;

use std::time::Duration;

use alloy_consensus::TxEip4844;
use alloy_primitives::{Address, B256, U256};
use jsonrpsee::{core::client::ClientT, rpc_params};
use serde_json::Value;
use tidepool::{
    node::Node,
    tx::{blob::BlobSidecar, generate::blob_sidecar, sign::Signer},
};

use common::node::{CHAIN_ID, dial_addr, eventually, metric, rpc, send_raw, start_node};

const WAIT: Duration = Duration::from_secs(20);

/// A blob transaction from dev account `account` carrying `sidecar`, in its network form.
fn blob_tx(account: u64, nonce: u64, sidecar: &BlobSidecar) -> alloy_primitives::Bytes {
    Signer::dev(account).sign_blob_tx(
        TxEip4844 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: Address::with_last_byte(0xaa),
            value: U256::from(1),
            max_fee_per_blob_gas: 1_000_000_000,
            ..Default::default()
        },
        sidecar,
    )
}

fn pooled(node: &Node, hash: B256) -> bool {
    node.reader().get(&hash).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_transaction_sent_over_rpc_is_fetched_by_a_peer_and_offered_with_its_sidecar() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), |_| {}).await;
    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    eventually("peers connect", WAIT, || async { b.network().stats().connected_peers >= 1 }).await;

    let sidecar = blob_sidecar(2, 1, 21);
    let raw = blob_tx(5, 0, &sidecar);
    let hash = send_raw(&rpc(&a), &raw).await.expect("a takes the network form over JSON-RPC");
    assert_eq!(hash, tidepool::tx::blob::tx_hash(&raw), "the answer is the transaction hash");
    assert_eq!(metric(&a, "tidepool_blob_proofs_verified_total"), 1.0);
    assert_eq!(metric(&a, "tidepool_pool_blob_bytes"), 2.0 * 131_072.0, "blob data is counted in bytes");
    eventually("b pools the blob transaction", WAIT, || async { pooled(&b, hash) }).await;
    eventually("it travelled by announce and fetch", WAIT, || async {
        metric(&b, "tidepool_gossip_fetches_total") >= 1.0
    })
    .await;

    let batch = b.tidepool().builder_feed().next_block(30_000_000, usize::MAX);
    assert_eq!(batch.txs.iter().map(|tx| tx.hash()).collect::<Vec<_>>(), [hash]);
    assert_eq!(batch.blobs, 2);
    let offered = b.tidepool().builder_feed().sidecar(&hash).expect("b's feed hands out the sidecar");
    assert_eq!(*offered, sidecar, "the blobs arrived intact");

    // A consensus client asks b for the blobs by versioned hash.
    let versioned: Vec<B256> = sidecar.versioned_hashes().collect();
    let mut asked = versioned.clone();
    asked.push(B256::repeat_byte(9));
    let v2: Value = rpc(&b).request("engine_getBlobsV2", rpc_params![versioned.clone()]).await.unwrap();
    let entries = v2.as_array().expect("all blobs known: an answer");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["proofs"].as_array().map(Vec::len), Some(128));
    let expected_blob = serde_json::to_value(sidecar.blobs()[1]).unwrap();
    assert_eq!(entries[1]["blob"], expected_blob);
    let partial: Value = rpc(&b).request("engine_getBlobsV2", rpc_params![asked.clone()]).await.unwrap();
    assert!(partial.is_null(), "V2 is all or nothing: {partial}");
    let v1: Value = rpc(&b).request("engine_getBlobsV1", rpc_params![asked]).await.unwrap();
    assert_eq!(v1, serde_json::json!([null, null, null]), "V1 serves only version-0 sidecars");
    let too_many = vec![B256::ZERO; 129];
    let refused = rpc(&b).request::<Value, _>("engine_getBlobsV2", rpc_params![too_many]).await.unwrap_err();
    assert!(refused.to_string().contains("at most 128"), "{refused}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_local_blob_transactions_with_their_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let sidecar = blob_sidecar(1, 1, 22);
    let hash = send_raw(&rpc(&node), &blob_tx(6, 0, &sidecar)).await.unwrap();
    assert!(dir.path().join("blobs").read_dir().unwrap().count() == 1, "the sidecar is on disk, not in the pool");
    node.stop().await;

    let node = start_node(dir.path(), |_| {}).await;
    assert!(pooled(&node, hash), "restored");
    let restored = node.tidepool().builder_feed().sidecar(&hash).expect("with its sidecar");
    assert_eq!(*restored, sidecar);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_chain_mines_blob_transactions_and_charges_blob_gas() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let client = rpc(&node);
    // Three 6-blob transactions: 18 blobs, within BPO2's 21 per block.
    let mut hashes = Vec::new();
    for account in 10..13 {
        let sidecar = blob_sidecar(6, 1, account);
        hashes.push(send_raw(&client, &blob_tx(account, 0, &sidecar)).await.unwrap());
    }
    let before: U256 =
        client.request("eth_getBalance", rpc_params![Signer::dev(10).address(), "latest"]).await.unwrap();
    let chain = node.chain().expect("the dev chain");
    let produced = chain.produce(&node.tidepool().builder_feed(), &node.tidepool().chain());
    assert_eq!(produced.txs.len(), 3);
    let block: Value = client.request("eth_getBlockByNumber", rpc_params!["latest", false]).await.unwrap();
    assert_eq!(block["blobGasUsed"], format!("{:#x}", 18 * 131_072), "{block}");
    for hash in &hashes {
        assert!(node.reader().get(hash).is_none(), "mined and gone");
        assert!(node.tidepool().builder_feed().sidecar(hash).is_none(), "its sidecar left with it");
    }
    let after: U256 = client.request("eth_getBalance", rpc_params![Signer::dev(10).address(), "latest"]).await.unwrap();
    let blob_fee = U256::from(6 * 131_072u64); // at the minimum blob base fee of 1 wei
    assert!(before - after > blob_fee, "execution gas, value and blob gas are charged");
    // 18 blobs against a target of 14: the next blob base fee rises above its floor or stays,
    // as the fork's formula (with EIP-7918's reserve price) has it, and the header says so.
    let blob_base_fee: U256 = client.request("eth_blobBaseFee", rpc_params![]).await.unwrap();
    assert!(blob_base_fee >= U256::from(1));
    chain.produce(&node.tidepool().builder_feed(), &node.tidepool().chain());
    let next: Value = client.request("eth_getBlockByNumber", rpc_params!["latest", false]).await.unwrap();
    assert_ne!(next["excessBlobGas"], "0x0", "the excess carried over: {next}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tidepool_load_sends_blob_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let url = format!("http://{}", node.rpc_addr());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tidepool"));
    command.args([
        "load",
        "--quiet",
        "--blobs",
        "2",
        "--accounts",
        "3",
        "--rate",
        "6",
        "--duration",
        "1",
        "--rpc",
        &url,
    ]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["outcomes"], serde_json::json!({ "accepted": 6 }), "{stdout}");
    assert_eq!(node.reader().sizes().blob_bytes, 12 * 131_072);
    node.stop().await;
}
