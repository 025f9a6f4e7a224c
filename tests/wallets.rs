//! Real wallet tools nobody here wrote, pinned in `tools/package.json`, against a running node:
//! Foundry's `cast` (plain `cast send` with no fee or gas flags, every transaction type read
//! back with `cast tx` pooled and mined to the same hash, blocks, receipts, fees, estimates and
//! the pending nonce; a blob transaction as rollups send it, `cast send --blob`) and a wallet
//! written with viem (`tools/viem-wallet.mjs`: types 0, 1, 2 and 4 signed by viem, receipts
//! awaited, every field read back as sent).

mod common;

use std::{path::Path, time::Duration};

use alloy_primitives::{B256, keccak256};
use serde_json::Value;
use tidepool::node::Node;

/// Runs `cast args…` against `node`; its stdout, or a failure with its stderr.
async fn cast(cast: &Path, node: &Node, args: &[&str]) -> String {
    match run_cast(cast, node, args).await {
        Ok(stdout) => stdout,
        Err(stderr) => panic!("cast {}: {stderr}", args.join(" ")),
    }
}

/// Runs `cast args…` against `node`: its stdout when it succeeds, its stderr when it fails.
async fn run_cast(cast: &Path, node: &Node, args: &[&str]) -> Result<String, String> {
    let mut command = std::process::Command::new(cast);
    command.args(args).env("ETH_RPC_URL", format!("http://{}", node.rpc_addr())).env("NO_COLOR", "1");
    let what = format!("cast {}", args.join(" "));
    let output = tokio::time::timeout(Duration::from_secs(60), tokio::task::spawn_blocking(move || command.output()))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 60 s"))
        .unwrap()
        .unwrap();
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn key(node: &Node, account: usize) -> String {
    node.dev_signers()[account].secret_bytes().to_string()
}

fn address(node: &Node, account: usize) -> String {
    node.dev_signers()[account].address().to_string()
}

async fn start(dir: &Path) -> Node {
    common::node::start_node(dir, |c| c.block_time = 0.5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_cast_send_succeeds_and_the_chain_reads_back() {
    let Some(tool) = common::cast() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let (from, to) = (address(&node, 0), address(&node, 1));

    // No fee, gas or nonce flags: cast asks eth_feeHistory, eth_estimateGas and the pending
    // nonce, sends, and waits for the receipt.
    let receipt =
        json(&cast(&tool, &node, &["send", "--json", "--private-key", &key(&node, 0), &to, "--value", "1000"]).await);
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(receipt["gasUsed"], "0x5208");
    let hash = receipt["transactionHash"].as_str().unwrap();
    let block_number = receipt["blockNumber"].as_str().unwrap();

    let again = json(&cast(&tool, &node, &["receipt", "--json", hash]).await);
    assert_eq!(again, receipt, "the receipt is kept");
    let block = json(&cast(&tool, &node, &["block", "--json", block_number]).await);
    assert_eq!(block["hash"], receipt["blockHash"]);
    assert!(block["transactions"].as_array().unwrap().iter().any(|tx| tx == hash), "{block}");
    let latest = json(&cast(&tool, &node, &["block", "--json", "latest"]).await);
    assert!(latest["number"].as_str().is_some() && latest["baseFeePerGas"].as_str().is_some(), "{latest}");
    let base_fee: u128 = cast(&tool, &node, &["base-fee"]).await.parse().unwrap();
    assert!(base_fee >= 7, "base fee {base_fee}");
    let estimate = cast(&tool, &node, &["estimate", "--from", &from, &to, "--value", "1"]).await;
    assert_eq!(estimate, "21000");
    let with_data = cast(&tool, &node, &["estimate", "--from", &from, &to, "0x0102"]).await;
    assert!(with_data.parse::<u64>().unwrap() > 21_000, "calldata costs gas: {with_data}");

    // A pooled transaction counts in the pending nonce, not in the latest one.
    let pending = cast(&tool, &node, &["send", "--async", "--private-key", &key(&node, 0), &to, "--value", "1"]).await;
    let nonce_pending = cast(&tool, &node, &["nonce", "--block", "pending", &from]).await;
    let nonce_latest = cast(&tool, &node, &["nonce", "--block", "latest", &from]).await;
    assert_eq!((nonce_pending.as_str(), nonce_latest.as_str()), ("2", "1"), "{pending} pooled");
    node.stop().await;
}

/// `cast tx` renders each type from our JSON, and `cast tx … raw` rebuilds the signed bytes
/// from it: the bytes hash to the transaction's hash, pooled and mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transaction_type_round_trips_through_cast_tx() {
    let Some(tool) = common::cast() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let to = address(&node, 9);
    let delegate = address(&node, 8);
    // One sender per type, so no two of them wait on each other's nonce.
    let types: [(u64, &[&str]); 4] =
        [(0, &["--legacy"]), (1, &["--legacy", "--access-list"]), (2, &[]), (4, &["--auth", &delegate])];
    for (account, (tx_type, flags)) in types.iter().enumerate() {
        let mut args = vec!["send", "--async", "--private-key"];
        let secret = key(&node, account);
        args.push(&secret);
        // Flags last: `--access-list` takes an optional value and would swallow the recipient.
        args.extend_from_slice(&[&to, "--value", "7"]);
        args.extend_from_slice(flags);
        let hash: B256 = cast(&tool, &node, &args).await.parse().unwrap();
        let hash_text = hash.to_string();
        for state in ["pooled", "mined"] {
            let rendered = json(&cast(&tool, &node, &["tx", "--json", &hash_text]).await);
            assert_eq!(rendered["type"], format!("{tx_type:#x}"), "{state} {rendered}");
            let raw = cast(&tool, &node, &["tx", &hash_text, "raw"]).await;
            let bytes = alloy_primitives::hex::decode(&raw).unwrap();
            assert_eq!(keccak256(&bytes), hash, "type {tx_type} {state}: cast rebuilt other bytes");
            if *tx_type == 0 {
                let v = u64::from_str_radix(rendered["v"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
                assert!(v == 1337 * 2 + 35 || v == 1337 * 2 + 36, "EIP-155 v, got {v}");
            } else {
                assert!(rendered["accessList"].is_array() && rendered["yParity"].is_string(), "{rendered}");
            }
            if *tx_type == 4 {
                assert_eq!(rendered["authorizationList"].as_array().map(Vec::len), Some(1), "{rendered}");
            }
            if state == "pooled" {
                assert!(rendered["blockHash"].is_null(), "{rendered}");
                let receipt = json(&cast(&tool, &node, &["receipt", "--json", &hash_text]).await);
                assert_eq!(receipt["status"], "0x1");
            } else {
                assert!(rendered["blockHash"].is_string(), "{rendered}");
            }
        }
    }
    node.stop().await;
}

/// A rollup's way in: `cast send --blob` builds an EIP-7594 sidecar (cell proofs) with its own
/// KZG library and sends the network form. The node pools it, a consensus client gets its blob
/// back with `engine_getBlobsV2`, `cast tx` reads it back (blob fields included), and the dev
/// chain mines it. The version-0 form (`--eip4844`), which the node's fork no longer takes, is
/// refused with its own kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_send_blob_is_pooled_served_and_mined() {
    let Some(tool) = common::cast() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let data = dir.path().join("batch.bin");
    std::fs::write(&data, b"a rollup batch ".repeat(2_000)).unwrap();
    let (to, path) = (address(&node, 9), data.to_str().unwrap());
    let send = ["send", "--async", "--private-key", &key(&node, 5), "--blob", "--path", path, &to];
    let hash: B256 = cast(&tool, &node, &send).await.parse().unwrap();
    let hash_text = hash.to_string();
    let rendered = json(&cast(&tool, &node, &["tx", "--json", &hash_text]).await);
    assert_eq!(rendered["type"], "0x3", "{rendered}");
    let versioned = rendered["blobVersionedHashes"].as_array().expect("blob hashes rendered").clone();
    assert_eq!(versioned.len(), 1, "{rendered}");
    assert!(rendered["maxFeePerBlobGas"].is_string(), "{rendered}");
    let request = serde_json::to_string(&versioned).unwrap();
    let blobs = json(&cast(&tool, &node, &["rpc", "engine_getBlobsV2", &request]).await);
    assert_eq!(blobs[0]["proofs"].as_array().map(Vec::len), Some(128), "cell proofs served");
    let raw = cast(&tool, &node, &["tx", &hash_text, "raw"]).await;
    assert_eq!(keccak256(alloy_primitives::hex::decode(&raw).unwrap()), hash, "the consensus form hashes to it");
    let receipt = json(&cast(&tool, &node, &["receipt", "--json", &hash_text]).await);
    assert_eq!(receipt["status"], "0x1", "{receipt}");

    let legacy = ["send", "--async", "--private-key", &key(&node, 6), "--blob", "--eip4844", "--path", path, &to];
    let refused = run_cast(&tool, &node, &legacy).await.expect_err("a version-0 sidecar under Osaka's rules");
    assert!(refused.contains("wrapper version 0"), "{refused}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viem_wallet_sends_every_type_and_reads_back_what_it_sent() {
    let Some(nodejs) = common::nodejs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/viem-wallet.mjs");
    let mut command = std::process::Command::new(nodejs);
    command.arg(script).arg(format!("http://{}", node.rpc_addr())).arg(common::node::CHAIN_ID.to_string());
    for account in 0..4 {
        command.arg(key(&node, account));
    }
    let output = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || command.output()))
        .await
        .expect("the viem wallet finishes within 120 s")
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "viem wallet failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().filter(|line| line.ends_with("every field as sent")).count(), 4, "{stdout}");
    node.stop().await;
}
