//! What wallets ask before they send, answered from the dev chain: `eth_feeHistory` from the kept
//! blocks, `eth_estimateGas` and `eth_createAccessList` from the intrinsic gas (the dev chain executes no code, so a call's
//! gas is its intrinsic gas, with the EIP-7623 floor; a contract creation needs an EVM and says so).
//!
//! Owns: the fee-history percentiles and the estimate. Does not: render (`render.rs`) or register
//! methods (`rpc.rs`).

use alloy_consensus::{Signed, TxEip1559, TxEip7702};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{Signature, TxKind, U256};
use alloy_rpc_types_eth::{AccessList, AccessListResult, FeeHistory, TransactionRequest};
use jsonrpsee::types::{ErrorObjectOwned, Params};

use super::devchain::{DevChain, next_base_fee};
use crate::{tx::Envelope, validate::intrinsic_gas};

/// Most blocks one `eth_feeHistory` call covers (geth's limit).
const MAX_FEE_HISTORY_BLOCKS: u64 = 1_024;

/// `eth_feeHistory(blockCount, newestBlock, rewardPercentiles?)`.
///
/// # Errors
/// Parameters that do not parse, or percentiles outside 0..=100 or not ascending.
pub fn fee_history(chain: &DevChain, params: &Params<'_>) -> Result<FeeHistory, ErrorObjectOwned> {
    let mut seq = params.sequence();
    let count: serde_json::Value = seq.next().map_err(super::rpc::invalid_params)?;
    let newest: BlockNumberOrTag = seq.next().map_err(super::rpc::invalid_params)?;
    let percentiles: Option<Vec<f64>> = seq.optional_next().map_err(super::rpc::invalid_params)?;
    let count = block_count(&count)
        .ok_or_else(|| super::rpc::invalid_params_text("blockCount must be a number or a hex quantity"))?;
    let percentiles = percentiles.unwrap_or_default();
    if percentiles.iter().any(|p| !(0.0..=100.0).contains(p)) || percentiles.windows(2).any(|w| w[0] > w[1]) {
        return Err(super::rpc::invalid_params_text("rewardPercentiles must be ascending values from 0 to 100"));
    }

    let latest = chain.latest();
    let newest = match newest {
        BlockNumberOrTag::Number(number) => number.min(latest.header.number),
        BlockNumberOrTag::Earliest => 0,
        _ => latest.header.number,
    };
    let count = count.min(MAX_FEE_HISTORY_BLOCKS).min(newest + 1);
    let blocks: Vec<_> = (newest + 1 - count..=newest).filter_map(|number| chain.block(number)).collect();
    let Some(last) = blocks.last() else {
        return Ok(FeeHistory { oldest_block: newest, ..FeeHistory::default() });
    };
    let mut base_fee_per_gas: Vec<u128> =
        blocks.iter().map(|block| u128::from(block.header.base_fee_per_gas.unwrap_or_default())).collect();
    let last_base_fee = u128::from(last.header.base_fee_per_gas.unwrap_or_default());
    base_fee_per_gas.push(next_base_fee(last_base_fee, last.header.gas_used, last.header.gas_limit));
    let reward = (!percentiles.is_empty()).then(|| {
        blocks
            .iter()
            .map(|block| {
                let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
                let mut tips: Vec<(u128, u64)> = block
                    .txs
                    .iter()
                    .map(|mined| (mined.effective_gas_price.saturating_sub(base_fee), mined.gas_used))
                    .collect();
                rewards(&mut tips, block.header.gas_used, &percentiles)
            })
            .collect()
    });
    Ok(FeeHistory {
        gas_used_ratio: blocks.iter().map(|b| b.header.gas_used as f64 / b.header.gas_limit.max(1) as f64).collect(),
        // The dev chain carries no blobs: the blob base fee stays at its minimum.
        base_fee_per_blob_gas: vec![1; blocks.len() + 1],
        blob_gas_used_ratio: vec![0.0; blocks.len()],
        base_fee_per_gas,
        oldest_block: blocks[0].header.number,
        reward,
    })
}

/// The tip at each percentile of the block's gas (as geth: transactions sorted by tip, each
/// weighted by the gas it used); zeros for an empty block.
fn rewards(tips: &mut [(u128, u64)], gas_used: u64, percentiles: &[f64]) -> Vec<u128> {
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let mut rewards = Vec::with_capacity(percentiles.len());
    let (mut index, mut cumulative) = (0, tips[0].1);
    for percentile in percentiles {
        let threshold = (gas_used as f64 * percentile / 100.0) as u64;
        while cumulative < threshold && index + 1 < tips.len() {
            index += 1;
            cumulative += tips[index].1;
        }
        rewards.push(tips[index].0);
    }
    rewards
}

fn block_count(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => u64::from_str_radix(s.strip_prefix("0x")?, 16).ok(),
        _ => None,
    }
}

/// `eth_estimateGas(request, block?)`: the intrinsic gas of the call the request describes.
///
/// # Errors
/// As [`call_gas`].
pub fn estimate_gas(chain: &DevChain, params: &Params<'_>) -> Result<String, ErrorObjectOwned> {
    let request: TransactionRequest = params.sequence().next().map_err(super::rpc::invalid_params)?;
    Ok(format!("{:#x}", call_gas(chain, request)?))
}

/// `eth_createAccessList(request, block?)`: no code runs on the dev chain, so a call touches
/// nothing worth listing: an empty list and the call's gas.
///
/// # Errors
/// As [`call_gas`].
pub fn create_access_list(chain: &DevChain, params: &Params<'_>) -> Result<AccessListResult, ErrorObjectOwned> {
    let request: TransactionRequest = params.sequence().next().map_err(super::rpc::invalid_params)?;
    Ok(AccessListResult {
        access_list: AccessList::default(),
        gas_used: U256::from(call_gas(chain, request)?),
        error: None,
    })
}

/// The gas of the call `request` describes: its intrinsic gas, with the EIP-7623 floor.
///
/// # Errors
/// A contract creation ([`super::rpc::not_an_evm`]); a value the sender cannot pay.
fn call_gas(chain: &DevChain, request: TransactionRequest) -> Result<u64, ErrorObjectOwned> {
    let Some(TxKind::Call(to)) = request.to else {
        return Err(super::rpc::not_an_evm("contract creation"));
    };
    let value = request.value.unwrap_or_default();
    if let Some(from) = request.from
        && chain.state().get(&from).balance < value
    {
        return Err(ErrorObjectOwned::owned(
            -32000,
            "insufficient funds for transfer",
            Some(serde_json::json!({ "kind": "insufficient_funds" })),
        ));
    }
    let input = request.input.input().cloned().unwrap_or_default();
    let access_list = request.access_list.clone().unwrap_or_default();
    // Only the fields intrinsic gas reads matter; the signature is a placeholder.
    let envelope: Envelope = match request.authorization_list {
        Some(authorization_list) => Signed::new_unhashed(
            TxEip7702 { to, value, input, access_list, authorization_list, ..TxEip7702::default() },
            Signature::test_signature(),
        )
        .into(),
        None => Signed::new_unhashed(
            TxEip1559 { to: TxKind::Call(to), value, input, access_list, ..TxEip1559::default() },
            Signature::test_signature(),
        )
        .into(),
    };
    let gas = intrinsic_gas(&envelope, chain.fork());
    Ok(gas.standard.max(gas.floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewards_follow_gas_weighted_percentiles() {
        // Tips 1, 2, 3 gwei using 21k, 50k, 29k gas of a 100k-gas block.
        let mut tips = vec![(3, 29_000), (1, 21_000), (2, 50_000)];
        assert_eq!(rewards(&mut tips, 100_000, &[0.0, 20.0, 21.0, 50.0, 71.0, 72.0, 100.0]), vec![1, 1, 1, 2, 2, 3, 3]);
        assert_eq!(rewards(&mut [], 0, &[10.0, 90.0]), vec![0, 0], "an empty block rewards nothing");
    }

    #[test]
    fn block_counts_are_numbers_or_quantities() {
        assert_eq!(block_count(&serde_json::json!(5)), Some(5));
        assert_eq!(block_count(&serde_json::json!("0x1f")), Some(31));
        assert_eq!(block_count(&serde_json::json!("ten")), None);
    }
}
