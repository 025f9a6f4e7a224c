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

/// A client program from the pinned npm install (`tools/`, installed by `npm ci` from `.ci/run`
/// and the README's test command), or `$<var>` if set. `None` (after saying so) when absent;
/// under `CI=true` an absent tool fails the test instead of skipping it.
pub fn npm_tool(var: &str, package: &str, bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules").join(package).join(bin)
    });
    if path.exists() {
        return Some(path);
    }
    let message = format!("{} not found at {} (run `npm ci --prefix tools`, or set ${var})", package, path.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}: CI must run this test");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Foundry's `cast`, from the npm package `@foundry-rs/cast-linux-amd64`.
pub fn cast() -> Option<PathBuf> {
    npm_tool("TIDEPOOL_CAST", "@foundry-rs/cast-linux-amd64", "bin/cast")
}

/// Foundry's `anvil`, a real EVM node, from the npm package `@foundry-rs/anvil-linux-amd64`.
pub fn anvil() -> Option<PathBuf> {
    npm_tool("TIDEPOOL_ANVIL", "@foundry-rs/anvil-linux-amd64", "bin/anvil")
}

/// Node.js 22 from the pinned npm package `node` (js-libp2p 3 needs 22; the machine's own
/// Node.js may be older), beside the pinned `viem` and js-libp2p it runs the scripts in `tools/`
/// with.
pub fn nodejs() -> Option<PathBuf> {
    npm_tool("TIDEPOOL_NODEJS", "node", "bin/node")
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

/// A validator of mainnet's chain id applying only the protocol's rules at `fork`: none of a
/// pool's policies (size caps, minimum tip, replay protection, disabled types). The test
/// vectors and the mainnet corpus are judged by it.
pub fn protocol_validator(fork: tidepool::validate::Fork) -> tidepool::validate::Validator {
    tidepool::validate::Validator::new(tidepool::validate::ValidationConfig {
        chain_id: 1,
        fork,
        max_tx_size: usize::MAX,
        block_gas_limit: u64::MAX,
        min_priority_fee: 0,
        allow_unprotected: true,
        disabled_types: Vec::new(),
    })
}
