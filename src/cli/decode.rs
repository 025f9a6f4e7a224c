//! `tidepool tx decode`: raw hex in, one JSON line per transaction out.

use std::{
    io::{BufRead as _, Write as _},
    process::ExitCode,
};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, Bytes, hex};
use serde_json::json;
use tidepool::{
    tx::TxError,
    validate::{ValidationConfig, Validator, intrinsic_gas},
};

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// A raw transaction as hex (with or without 0x), or `-` to read one per line from stdin.
    input: String,
    /// Chain id the transactions must carry.
    #[arg(long, default_value_t = ValidationConfig::default().chain_id)]
    chain_id: u64,
    /// Block gas limit a transaction's gas limit may not exceed.
    #[arg(long, default_value_t = ValidationConfig::default().block_gas_limit)]
    block_gas_limit: u64,
}

pub fn run(args: &DecodeArgs) -> ExitCode {
    let validator = Validator::new(ValidationConfig {
        chain_id: args.chain_id,
        block_gas_limit: args.block_gas_limit,
        ..ValidationConfig::default()
    });
    let mut out = std::io::stdout().lock();
    let mut all_valid = true;
    let mut emit = |line: &str| {
        let (value, valid) = describe(&validator, line.trim());
        all_valid &= valid;
        // A closed stdout (e.g. piped into `head`) ends the output; nothing more to report.
        let _ = writeln!(out, "{value}");
    };
    if args.input == "-" {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => emit(&line),
                Err(e) => {
                    eprintln!("tidepool: reading stdin: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    } else {
        emit(&args.input);
    }
    if all_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// One input's JSON line, and whether it was valid.
fn describe(validator: &Validator, hex_input: &str) -> (String, bool) {
    let raw = match hex::decode(hex_input) {
        Ok(raw) => Bytes::from(raw),
        Err(e) => return (error_json("invalid_hex", &e.to_string()), false),
    };
    let outcome = validator.decode(&raw).and_then(|decoded| {
        let pooled = validator.check(&decoded, raw)?;
        Ok((decoded, pooled))
    });
    match outcome {
        Err(e) => (tx_error_json(&e), false),
        Ok((decoded, pooled)) => {
            let tx = &decoded.envelope;
            let line = serde_json::to_string(&TxSummary {
                hash: pooled.hash(),
                sender: pooled.sender(),
                tx_type: pooled.tx_type(),
                chain_id: tx.chain_id(),
                nonce: pooled.nonce(),
                gas_limit: pooled.gas_limit(),
                intrinsic_gas: intrinsic_gas(tx, validator.config().fork).standard,
                max_fee_per_gas: pooled.max_fee_per_gas().to_string(),
                max_priority_fee_per_gas: pooled.max_priority_fee_per_gas().to_string(),
                to: tx.to(),
                value: tx.value().to_string(),
                size: pooled.size(),
            })
            .expect("summary serializes");
            (line, true)
        }
    }
}

/// One valid transaction, fields in the documented order. Fees and value exceed JSON's safe
/// integers, so they are decimal strings.
#[derive(serde::Serialize)]
struct TxSummary {
    hash: B256,
    sender: Address,
    #[serde(rename = "type")]
    tx_type: u8,
    chain_id: Option<u64>,
    nonce: u64,
    gas_limit: u64,
    intrinsic_gas: u64,
    max_fee_per_gas: String,
    max_priority_fee_per_gas: String,
    to: Option<Address>,
    value: String,
    size: usize,
}

fn tx_error_json(error: &TxError) -> String {
    error_json(error.kind(), &error.to_string())
}

fn error_json(kind: &str, message: &str) -> String {
    json!({ "error": { "kind": kind, "message": message } }).to_string()
}
