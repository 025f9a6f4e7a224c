//! [`InMemoryState`]: every account held in memory, and geth-style genesis files.

use std::{collections::BTreeMap, path::Path};

use alloy_primitives::{Address, U256};
use dashmap::DashMap;
use serde::Deserialize;

use super::{AccountCode, AccountState, StateProvider};

/// Account state held in memory: the dev chain's state, and the default for tests and tools.
/// Every account is at hand (unknown ones are empty), so nothing is ever loaded. Reads and
/// writes are concurrent (a sharded map, `dashmap`), so the dev chain applying a block never
/// stalls the submissions reading senders meanwhile.
#[derive(Debug, Default)]
pub struct InMemoryState {
    accounts: DashMap<Address, AccountState>,
}

impl StateProvider for InMemoryState {
    fn account(&self, address: &Address) -> Option<AccountState> {
        Some(self.get(address))
    }
}

/// Why a genesis file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("cannot read genesis file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("genesis is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("account {address}: {field} {value:?} is not a decimal or 0x-hex number")]
    BadNumber { address: String, field: &'static str, value: String },
    #[error("account key {0:?} is not a 20-byte hex address")]
    BadAddress(String),
}

/// A geth-style genesis: `{"alloc": {...}, ...}`; other keys are ignored.
#[derive(Deserialize)]
struct Genesis {
    alloc: BTreeMap<String, GenesisAccount>,
}

#[derive(Deserialize)]
struct GenesisAccount {
    #[serde(default)]
    balance: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code: Option<alloy_primitives::Bytes>,
}

impl InMemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// An account's state; unknown accounts are empty.
    pub fn get(&self, address: &Address) -> AccountState {
        self.accounts.get(address).map(|a| *a).unwrap_or_default()
    }

    /// Sets an account's state (a block moved it, or a test wants it).
    pub fn set(&self, address: Address, account: AccountState) {
        self.accounts.insert(address, account);
    }

    /// Number of accounts with state.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Loads a geth-style genesis file's `alloc` section.
    ///
    /// # Errors
    /// Unreadable file, malformed JSON, bad addresses or numbers.
    pub fn from_genesis_file(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| GenesisError::Read { path: path.display().to_string(), source })?;
        Self::from_genesis_json(&text)
    }

    /// Loads a geth-style genesis JSON's `alloc` section. Balances and nonces may be decimal
    /// strings or `0x` hex quantities, as geth accepts both.
    ///
    /// # Errors
    /// Malformed JSON, bad addresses or numbers.
    pub fn from_genesis_json(json: &str) -> Result<Self, GenesisError> {
        let genesis: Genesis = serde_json::from_str(json)?;
        let state = Self::new();
        for (key, account) in genesis.alloc {
            let hex = key.strip_prefix("0x").unwrap_or(&key);
            let address: Address = hex.parse().map_err(|_| GenesisError::BadAddress(key.clone()))?;
            let balance = parse_quantity(&key, "balance", account.balance.as_deref())?;
            let nonce = parse_quantity(&key, "nonce", account.nonce.as_deref())?;
            let nonce = u64::try_from(nonce).map_err(|_| GenesisError::BadNumber {
                address: key.clone(),
                field: "nonce",
                value: nonce.to_string(),
            })?;
            let code = account.code.as_ref().map_or(AccountCode::None, |code| AccountCode::from_code(code));
            state.set(address, AccountState::new(nonce, balance).with_code(code));
        }
        Ok(state)
    }
}

fn parse_quantity(address: &str, field: &'static str, value: Option<&str>) -> Result<U256, GenesisError> {
    let Some(text) = value else { return Ok(U256::ZERO) };
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => U256::from_str_radix(hex, 16),
        Some(_) => Ok(U256::ZERO),
        None => U256::from_str_radix(text, 10),
    };
    parsed.map_err(|_| GenesisError::BadNumber { address: address.to_owned(), field, value: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_hex_and_decimal_alloc() {
        let state = InMemoryState::from_genesis_json(
            r#"{"config":{},"alloc":{
                "0x00000000000000000000000000000000000000aa":{"balance":"0x10","nonce":"0x2"},
                "00000000000000000000000000000000000000bb":{"balance":"1000"},
                "0x00000000000000000000000000000000000000cc":{"balance":"0x1","code":"0x6000"},
                "0x00000000000000000000000000000000000000dd":{"code":"0xef010000000000000000000000000000000000000000aa"}}}"#,
        )
        .unwrap();
        let aa: Address = "0x00000000000000000000000000000000000000aa".parse().unwrap();
        let bb: Address = "0x00000000000000000000000000000000000000bb".parse().unwrap();
        assert_eq!(state.account(&aa).unwrap(), AccountState::new(2, U256::from(16)));
        assert_eq!(state.account(&bb).unwrap(), AccountState::new(0, U256::from(1000)));
        assert_eq!(state.account(&Address::ZERO), Some(AccountState::default()));
        let cc: Address = "0x00000000000000000000000000000000000000cc".parse().unwrap();
        let dd: Address = "0x00000000000000000000000000000000000000dd".parse().unwrap();
        assert_eq!(state.get(&cc).code, AccountCode::Contract);
        assert_eq!(state.get(&dd).code, AccountCode::Delegated(aa));
    }

    #[test]
    fn rejects_bad_numbers_and_addresses() {
        let bad_balance = r#"{"alloc":{"0x00000000000000000000000000000000000000aa":{"balance":"lots"}}}"#;
        assert!(matches!(InMemoryState::from_genesis_json(bad_balance), Err(GenesisError::BadNumber { .. })));
        let bad_address = r#"{"alloc":{"0x12":{"balance":"1"}}}"#;
        assert!(matches!(InMemoryState::from_genesis_json(bad_address), Err(GenesisError::BadAddress(_))));
        assert!(matches!(InMemoryState::from_genesis_json("[]"), Err(GenesisError::Parse(_))));
    }
}
