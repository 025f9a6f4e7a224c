//! Real traffic: every transaction of `../shared/corpus/mainnet-txs.jsonl` decodes exactly,
//! hashes and recovers to the listed sender, and passes static validation under the rules of the
//! fork its block was in (an old transaction may break a newer rule, e.g. the EIP-7623 floor).

mod common;

use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Address, B256, Bytes};
use serde_json::Value;
use tidepool::validate::{Fork, ValidationConfig, Validator};

/// Mainnet activation blocks, newest first.
const FORK_BLOCKS: [(u64, Fork); 4] =
    [(22_431_084, Fork::Prague), (19_426_587, Fork::Cancun), (17_034_870, Fork::Shanghai), (12_965_000, Fork::London)];

/// The fork of the transaction's block; undated ones (blob and attested txs) at Cancun rules.
fn fork_of(block: Option<u64>) -> Fork {
    let Some(block) = block else { return Fork::Cancun };
    FORK_BLOCKS.iter().find(|(start, _)| block >= *start).map_or(Fork::London, |&(_, fork)| fork)
}

#[test]
fn all_mainnet_transactions_decode_hash_and_recover() {
    let Some(path) = common::mainnet_corpus() else { return };
    let mut count = 0;
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let raw = Bytes::from(common::hex_bytes(entry["raw"].as_str().unwrap()));
        let expected_hash: B256 = entry["hash"].as_str().unwrap().parse().unwrap();
        let expected_sender: Address = entry["sender"].as_str().unwrap().parse().unwrap();

        let decoded = tidepool::tx::decode(&raw).unwrap_or_else(|e| panic!("{expected_hash}: {e}"));
        assert_eq!(decoded.envelope.encoded_2718(), raw.as_ref(), "{expected_hash} re-encodes");
        // Mainnet defaults but the era's fork, and no tip floor: some old txs paid zero tip.
        let fork = fork_of(entry["block"].as_u64());
        let validator = Validator::new(ValidationConfig { fork, min_priority_fee: 0, ..Default::default() });
        let tx = validator.validate_consensus(raw).unwrap_or_else(|e| panic!("{expected_hash}: {} ({e})", e.kind()));
        assert_eq!(tx.hash(), expected_hash);
        assert_eq!(tx.sender(), expected_sender, "{expected_hash}");
        assert_eq!(u64::from(tx.tx_type()), entry["type"].as_u64().unwrap());
        count += 1;
    }
    assert_eq!(count, 645);
}
