//! Conformance against the standard Ethereum transaction vectors in `../shared/vectors`
//! (ethereum/tests TransactionTests, EIP-4844 and Osaka state tests, the EIP-7702 extract).
//!
//! Each case is validated under its own fork's rules with a policy-free config (no minimum tip,
//! no size or block-gas limit: the vectors carry no such context), and must agree with the
//! expected outcome: valid cases on hash and sender (and intrinsic gas, where given), invalid
//! cases by being refused. Cases whose verdict needs block context (base fee, blob base fee) are
//! checked against the context the fixture states. Fees >= 2^128 are scored as our documented
//! policy (`fee_above_128_bits`, see `validate` module docs). The vectors carry blob
//! transactions in their consensus form, so cases go through `Validator::validate_consensus`
//! (the network form's rules, with real KZG proofs, are `tests/blobs.rs`).

mod common;

use std::{collections::BTreeMap, path::Path, sync::Arc};

use alloy_primitives::{Address, B256, Bytes, U256};
use serde_json::Value;
use tidepool::{
    pool::{Pool, PoolConfig, ValidTx},
    state::{AccountState, ChainHead, InMemoryState},
    tx::{PooledTx, TxError},
    validate::{Fork, intrinsic_gas},
};

use common::{hex_bytes, hex_u256};

/// The expected-valid TransactionTests whose fee is 2^128 wei per gas or more.
const FEE_POLICY_CASES: [&str; 3] =
    ["TransactionWithHighGasPrice", "V_equals38", "GasLimitPriceProductOverflowtMinusOne"];

fn fork(name: &str) -> Fork {
    match name {
        "London" => Fork::London,
        "Shanghai" => Fork::Shanghai,
        "Cancun" => Fork::Cancun,
        "Prague" => Fork::Prague,
        "Osaka" => Fork::Osaka,
        other => panic!("no rules for fork {other}"),
    }
}

#[derive(Default)]
struct Score {
    cases: usize,
    failures: Vec<String>,
    policy: Vec<String>,
    context: Vec<String>,
}

impl Score {
    fn fail(&mut self, name: &str, why: String) {
        self.failures.push(format!("{name}: {why}"));
    }
}

#[test]
fn transaction_tests_agree_at_latest_fork() {
    let Some(dir) = common::vectors_dir() else { return };
    let index = std::fs::read_to_string(dir.join("INDEX.jsonl")).expect("INDEX.jsonl");
    let mut score = Score::default();
    for line in index.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        if entry["kind"] != "TransactionTest" {
            continue;
        }
        let file: Value = read_json(&dir.join(entry["file"].as_str().unwrap()));
        let (name, case) = file.as_object().unwrap().iter().next().unwrap();
        let latest = entry["latest_fork"].as_str().unwrap();
        let expected = &case["result"][latest];
        let raw = Bytes::from(hex_bytes(case["txbytes"].as_str().unwrap()));
        let fork = fork(latest);
        score.cases += 1;
        let verdict = common::protocol_validator(fork).validate_consensus(raw);
        match (expected.get("hash"), verdict) {
            (Some(hash), Ok(tx)) => {
                check_valid(&mut score, name, &tx, hash, &expected["sender"]);
                let decoded = tidepool::tx::decode(tx.encoded()).unwrap();
                let gas = intrinsic_gas(&decoded.envelope, fork).standard;
                if U256::from(gas) != hex_u256(expected["intrinsicGas"].as_str().unwrap()) {
                    score.fail(name, format!("intrinsic gas {gas}, expected {}", expected["intrinsicGas"]));
                }
            }
            (Some(_), Err(TxError::FeeAbove128Bits { .. })) if FEE_POLICY_CASES.contains(&name.as_str()) => {
                score.policy.push(name.clone());
            }
            (Some(_), Err(e)) => score.fail(name, format!("expected valid, got {} ({e})", e.kind())),
            (None, Ok(_)) => score.fail(name, format!("expected {}, got valid", expected["exception"])),
            (None, Err(_)) => {}
        }
    }
    report("TransactionTests", &score);
    assert_eq!(score.cases, 210, "every TransactionTest is scored");
    assert_eq!(score.policy.len(), FEE_POLICY_CASES.len(), "fee policy cases: {:?}", score.policy);
    assert!(score.failures.is_empty(), "disagreements:\n{}", score.failures.join("\n"));
}

#[test]
fn state_test_transactions_agree() {
    let Some(dir) = common::vectors_dir() else { return };
    let index = std::fs::read_to_string(dir.join("INDEX.jsonl")).expect("INDEX.jsonl");
    let mut files = BTreeMap::<String, Value>::new();
    let mut score = Score::default();
    for line in index.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        if entry["kind"] != "StateTest.post" {
            continue;
        }
        let path = entry["file"].as_str().unwrap().to_owned();
        let file = files.entry(path.clone()).or_insert_with(|| read_json(&dir.join(&path)));
        let test_name = entry["test"].as_str().unwrap();
        let (_, test) = file
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_str() == test_name || test_name.ends_with(k.as_str()) || k.ends_with(test_name))
            .unwrap_or_else(|| panic!("{test_name} not in {path}"));
        let fork_name = entry["fork"].as_str().unwrap();
        let post = &test["post"][fork_name][entry["post_index"].as_u64().unwrap() as usize];
        let expect = post.get("expectException").and_then(Value::as_str);
        let raw = Bytes::from(hex_bytes(post["txbytes"].as_str().unwrap()));
        let name = format!("{path} [{fork_name}] {}", short(test_name));
        score.cases += 1;

        let state = pre_state(&test["pre"]);
        let verdict = admit(fork(fork_name), raw, &state);
        match (expect, verdict) {
            (None, Ok(tx)) => check_valid(&mut score, &name, &tx, &Value::Null, &test["transaction"]["sender"]),
            (None, Err(e)) => score.fail(&name, format!("expected valid, got {e}")),
            (Some(_), Err(_)) => {}
            (Some(exception), Ok(tx)) => match context_verdict(exception, &tx, &test["env"]) {
                Some(why) => score.context.push(format!("{name}: {why}")),
                None => score.fail(&name, format!("expected {exception}, got valid")),
            },
        }
    }
    report("state tests", &score);
    assert_eq!(score.cases, 44, "every state-test transaction is scored");
    assert!(score.failures.is_empty(), "disagreements:\n{}", score.failures.join("\n"));
}

#[test]
fn eip7702_extract_agrees() {
    let Some(dir) = common::vectors_dir() else { return };
    let file = read_json(&dir.join("execution-spec-tests/extracts/eip7702_tx_vectors.json"));
    let mut score = Score::default();
    for vector in file["vectors"].as_array().unwrap() {
        let raw = Bytes::from(hex_bytes(vector["txbytes"].as_str().unwrap()));
        let name = short(vector["test"].as_str().unwrap()).to_owned();
        for fork_name in vector["forks"].as_array().unwrap() {
            score.cases += 1;
            let verdict = common::protocol_validator(fork(fork_name.as_str().unwrap())).validate_consensus(raw.clone());
            match (vector["expectException"].as_str(), verdict) {
                (None, Ok(tx)) => check_valid(&mut score, &name, &tx, &Value::Null, &vector["sender"]),
                (None, Err(e)) => score.fail(&name, format!("expected valid, got {}", e.kind())),
                (Some(_), Err(TxError::EmptyAuthorizationList)) => {}
                (Some(x), other) => score.fail(&name, format!("expected {x}, got {other:?}")),
            }
        }
    }
    report("EIP-7702 extract", &score);
    assert_eq!(score.cases, 4);
    assert!(score.failures.is_empty(), "disagreements:\n{}", score.failures.join("\n"));
}

fn check_valid(score: &mut Score, name: &str, tx: &PooledTx, hash: &Value, sender: &Value) {
    if let Some(hash) = hash.as_str()
        && tx.hash() != hash.parse::<B256>().unwrap()
    {
        score.fail(name, format!("hash {} != {hash}", tx.hash()));
    }
    let sender: Address = sender.as_str().expect("valid case names its sender").parse().unwrap();
    if tx.sender() != sender {
        score.fail(name, format!("sender {} != {sender}", tx.sender()));
    }
}

/// Expectations that depend on the block, not the transaction: a mempool keeps such a tx
/// (parked until fees fall), so we check the fixture's context really refuses it.
fn context_verdict(exception: &str, tx: &PooledTx, env: &Value) -> Option<String> {
    if exception.contains("INSUFFICIENT_MAX_FEE_PER_GAS") {
        let base_fee = hex_u256(env["currentBaseFee"].as_str()?).to::<u128>();
        return tx
            .effective_tip(base_fee)
            .is_none()
            .then(|| format!("fee cap {} < base fee {base_fee}: parked by the pool", tx.max_fee_per_gas()));
    }
    if exception.contains("INSUFFICIENT_MAX_FEE_PER_BLOB_GAS") {
        let excess = hex_u256(env["currentExcessBlobGas"].as_str()?).to::<u128>();
        let blob_base_fee = fake_exponential(1, excess, 3_338_477);
        return (tx.max_fee_per_blob_gas() < blob_base_fee)
            .then(|| format!("blob fee cap {} < blob base fee {blob_base_fee}: parked", tx.max_fee_per_blob_gas()));
    }
    None
}

/// EIP-4844's `fake_exponential`: the blob base fee from the excess blob gas.
fn fake_exponential(factor: u128, numerator: u128, denominator: u128) -> u128 {
    let (mut i, mut output, mut accum) = (1u128, 0u128, factor * denominator);
    while accum > 0 {
        output += accum;
        accum = accum * numerator / (denominator * i);
        i += 1;
    }
    output / denominator
}

/// Validation, then the pool's account-state rules (nonce, balance: the pool owns them) against
/// the test's pre-state, as a node admits a transaction. The error is `kind (message)`.
fn admit(fork: Fork, raw: Bytes, state: &InMemoryState) -> Result<PooledTx, String> {
    let tx = common::protocol_validator(fork).validate_consensus(raw).map_err(|e| format!("{} ({e})", e.kind()))?;
    let sender_state = state.get(&tx.sender());
    let mut pool = Pool::new(PoolConfig::default(), ChainHead::default());
    let valid = ValidTx { tx: tx.clone(), sender_state, epoch: 0 };
    pool.add(valid, std::time::Instant::now()).map_err(|e| format!("{} ({e})", e.kind()))?;
    Ok(tx)
}

fn pre_state(pre: &Value) -> Arc<InMemoryState> {
    let state = InMemoryState::new();
    for (address, account) in pre.as_object().unwrap() {
        let nonce = hex_u256(account["nonce"].as_str().unwrap_or("0x0")).to::<u64>();
        let balance = hex_u256(account["balance"].as_str().unwrap_or("0x0"));
        state.set(address.parse().unwrap(), AccountState::new(nonce, balance));
    }
    Arc::new(state)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn short(test: &str) -> &str {
    test.rsplit("::").next().unwrap_or(test)
}

fn report(what: &str, score: &Score) {
    eprintln!(
        "{what}: {} cases, {} disagree, {} scored by fee policy, {} by block context",
        score.cases,
        score.failures.len(),
        score.policy.len(),
        score.context.len()
    );
    for line in &score.context {
        eprintln!("  context: {line}");
    }
}
