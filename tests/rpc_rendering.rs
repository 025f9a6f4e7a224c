//! Every real and conformance transaction rendered as the node's JSON-RPC renders it, then read
//! back with alloy's RPC types (what Rust clients use) and re-encoded: the bytes hash to the
//! original hash, and the sender, type and per-type fields survive.

mod common;

use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Bytes, keccak256};
use serde_json::Value;
use tidepool::{node::render, tx::PooledTx, validate::Fork};

fn round_trip(tx: &PooledTx) {
    let json = serde_json::to_value(render::pooled(tx)).unwrap();
    let back: alloy_rpc_types_eth::Transaction = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{}: alloy cannot read our JSON ({e}): {json}", tx.hash()));
    assert_eq!(keccak256(back.inner.inner().encoded_2718()), tx.hash(), "{json}");
    assert_eq!(back.inner.signer(), tx.sender());
    assert!(json["blockHash"].is_null() && json["blockNumber"].is_null() && json["transactionIndex"].is_null());
    let ty = tx.tx_type();
    assert_eq!(json["type"], format!("{ty:#x}"));
    assert_eq!(json["accessList"].is_array(), ty >= 1, "{json}");
    assert_eq!(json["yParity"].is_string(), ty >= 1, "{json}");
    assert_eq!(json["authorizationList"].is_array(), ty == 4, "{json}");
    assert_eq!(json["blobVersionedHashes"].is_array(), ty == 3, "{json}");
    assert!(json["input"].is_string() && json["gas"].is_string() && json["v"].is_string(), "{json}");
    if ty == 0 {
        let v = u64::from_str_radix(json["v"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        let protected =
            json["chainId"].as_str().map(|id| u64::from_str_radix(id.trim_start_matches("0x"), 16).unwrap());
        match protected {
            Some(chain_id) => assert!(v == chain_id * 2 + 35 || v == chain_id * 2 + 36, "EIP-155 v {v}"),
            None => assert!(v == 27 || v == 28, "pre-EIP-155 v {v}"),
        }
    }
}

#[test]
fn mainnet_transactions_render_as_alloy_reads_them() {
    let Some(path) = common::mainnet_corpus() else { return };
    // Older transactions may break a newer rule (the EIP-7623 floor): those at Cancun's rules.
    let (prague, cancun) = (common::protocol_validator(Fork::Prague), common::protocol_validator(Fork::Cancun));
    let mut by_type = [0usize; 5];
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let raw = Bytes::from(common::hex_bytes(entry["raw"].as_str().unwrap()));
        let tx = prague
            .validate_consensus(raw.clone())
            .or_else(|_| cancun.validate_consensus(raw))
            .unwrap_or_else(|e| panic!("{}: {e}", entry["hash"]));
        round_trip(&tx);
        by_type[usize::from(tx.tx_type())] += 1;
    }
    assert_eq!(by_type.iter().sum::<usize>(), 645);
    assert!(by_type.iter().all(|&n| n > 0), "every type is in the corpus: {by_type:?}");
}

#[test]
fn conformance_vectors_render_as_alloy_reads_them() {
    let Some(dir) = common::vectors_dir() else { return };
    let validator = common::protocol_validator(Fork::Prague);
    let mut rendered = 0;
    for line in std::fs::read_to_string(dir.join("INDEX.jsonl")).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(entry["file"].as_str().unwrap())).unwrap()).unwrap();
        // Transaction tests hold `txbytes` at the top of the case; state tests in each post state.
        let mut raws = Vec::new();
        collect_txbytes(&file, &mut raws);
        for raw in raws {
            if let Ok(tx) = validator.validate_consensus(Bytes::from(common::hex_bytes(&raw))) {
                round_trip(&tx);
                rendered += 1;
            }
        }
    }
    assert!(rendered >= 100, "only {rendered} valid conformance transactions rendered");
}

fn collect_txbytes(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("txbytes", Value::String(raw)) => out.push(raw.clone()),
                    _ => collect_txbytes(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_txbytes(item, out)),
        _ => {}
    }
}
