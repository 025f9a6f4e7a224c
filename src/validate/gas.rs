//! Intrinsic gas: what a transaction costs before its first opcode runs.

use alloy_consensus::Transaction as _;

use super::Fork;
use crate::tx::Envelope;

/// Base cost of any transaction.
pub const TX_BASE_GAS: u64 = 21_000;
/// Extra cost of a contract-creating transaction (Homestead).
pub const TX_CREATE_GAS: u64 = 32_000;
/// Calldata costs per byte (EIP-2028).
pub const ZERO_BYTE_GAS: u64 = 4;
pub const NON_ZERO_BYTE_GAS: u64 = 16;
/// Access-list costs (EIP-2930).
pub const ACCESS_LIST_ADDRESS_GAS: u64 = 2_400;
pub const ACCESS_LIST_STORAGE_KEY_GAS: u64 = 1_900;
/// Cost per 32-byte word of initcode (EIP-3860).
pub const INITCODE_WORD_GAS: u64 = 2;
/// Largest initcode a creation may carry (EIP-3860: twice the EIP-170 code size limit).
pub const MAX_INITCODE_SIZE: usize = 2 * 24_576;
/// Cost per EIP-7702 authorization (`PER_EMPTY_ACCOUNT_COST`).
pub const AUTHORIZATION_GAS: u64 = 25_000;
/// EIP-7623 calldata floor: gas per token, where a zero byte is 1 token and a non-zero byte 4.
pub const FLOOR_GAS_PER_TOKEN: u64 = 10;

/// The two gas floors a transaction's gas limit must clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntrinsicGas {
    /// Base, calldata, creation, initcode, access-list and authorization costs.
    pub standard: u64,
    /// The EIP-7623 calldata floor (Prague on), or 0 before it.
    pub floor: u64,
}

/// Computes both floors under `fork`'s rules. Saturates rather than overflowing: a saturated
/// value is above any gas limit, so the transaction is refused either way.
pub fn intrinsic_gas(tx: &Envelope, fork: Fork) -> IntrinsicGas {
    let input = tx.input();
    let zero_bytes = input.iter().filter(|&&b| b == 0).count() as u64;
    let non_zero_bytes = input.len() as u64 - zero_bytes;

    let mut standard =
        TX_BASE_GAS.saturating_add(zero_bytes * ZERO_BYTE_GAS).saturating_add(non_zero_bytes * NON_ZERO_BYTE_GAS);
    if tx.kind().is_create() {
        standard = standard.saturating_add(TX_CREATE_GAS);
        if fork >= Fork::Shanghai {
            standard = standard.saturating_add(INITCODE_WORD_GAS * (input.len() as u64).div_ceil(32));
        }
    }
    if let Some(access_list) = tx.access_list() {
        for item in access_list.iter() {
            standard = standard
                .saturating_add(ACCESS_LIST_ADDRESS_GAS)
                .saturating_add(ACCESS_LIST_STORAGE_KEY_GAS * item.storage_keys.len() as u64);
        }
    }
    if let Some(authorizations) = tx.authorization_list() {
        standard = standard.saturating_add(AUTHORIZATION_GAS * authorizations.len() as u64);
    }

    let floor = if fork >= Fork::Prague {
        let tokens = zero_bytes + 4 * non_zero_bytes;
        TX_BASE_GAS.saturating_add(FLOOR_GAS_PER_TOKEN * tokens)
    } else {
        0
    };
    IntrinsicGas { standard, floor }
}
