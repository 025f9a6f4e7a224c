//! Locating the shared test data beside the project (`../shared`), never copied into the repo.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

/// `$<var>` if set, else `../shared/<relative>` from the crate root. `None` (after saying so)
/// when absent; under `CI=true` an absent folder fails the test instead of skipping it.
pub fn shared_path(var: &str, relative: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared").join(relative));
    if path.exists() {
        return Some(path);
    }
    let message = format!("shared test data not found at {} (set ${var})", path.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}: CI must run this test");
    }
    eprintln!("SKIPPED: {message}");
    None
}

pub fn vectors_dir() -> Option<PathBuf> {
    shared_path("TIDEPOOL_VECTORS", "vectors")
}

pub fn mainnet_corpus() -> Option<PathBuf> {
    shared_path("TIDEPOOL_CORPUS", "corpus/mainnet-txs.jsonl")
}

/// Parses `0x`-prefixed hex.
pub fn hex_bytes(text: &str) -> Vec<u8> {
    alloy_primitives::hex::decode(text).unwrap_or_else(|e| panic!("bad hex {text:.20}…: {e}"))
}

/// Parses a `0x` hex quantity.
pub fn hex_u256(text: &str) -> alloy_primitives::U256 {
    let digits = text.trim_start_matches("0x");
    if digits.is_empty() {
        return alloy_primitives::U256::ZERO;
    }
    alloy_primitives::U256::from_str_radix(digits, 16).unwrap_or_else(|e| panic!("bad quantity {text}: {e}"))
}
#[cfg(feature = "node")]
pub mod node;
#[cfg(feature = "node")]
pub mod process;
pub mod world;
