//! Transactions, blocks and receipts as Ethereum clients read them: alloy's RPC types, so every
//! field of every transaction type (`accessList`, `authorizationList`, blob fields, `yParity`
//! and `v` by the type's rules, `gasPrice` for dynamic-fee types) is what geth and reth send.
//!
//! Owns: the one rendering every RPC method that returns a transaction uses. Does not: choose
//! what is shown (private transactions are filtered by `rpc.rs`).

use alloy_consensus::transaction::{Recovered, TransactionInfo};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Transaction, TransactionReceipt};

use super::devchain::DevBlock;
use crate::tx::{Envelope, PooledTx};

/// A transaction as the RPC shows it.
pub type RpcTransaction = Transaction<Envelope>;

/// A pooled transaction: block fields null.
pub fn pooled(tx: &PooledTx) -> RpcTransaction {
    Transaction::from_transaction(Recovered::new_unchecked(tx.decode(), tx.sender()), TransactionInfo::default())
}

/// The transaction at `index` of `block`, with its block fields and effective gas price.
pub fn mined(block: &DevBlock, index: usize) -> RpcTransaction {
    let tx = &block.txs[index].tx;
    let info = TransactionInfo {
        hash: Some(tx.hash()),
        index: Some(index as u64),
        block_hash: Some(block.header.hash()),
        block_number: Some(block.header.number),
        base_fee: block.header.base_fee_per_gas,
        block_timestamp: Some(block.header.timestamp),
    };
    Transaction::from_transaction(Recovered::new_unchecked(tx.decode(), tx.sender()), info)
}

/// A block with its transactions' hashes, or the transactions in full.
pub fn block(block: &DevBlock, full: bool) -> Block<RpcTransaction> {
    let transactions = if full {
        BlockTransactions::Full((0..block.txs.len()).map(|index| mined(block, index)).collect())
    } else {
        BlockTransactions::Hashes(block.txs.iter().map(|mined| mined.tx.hash()).collect())
    };
    let body = alloy_consensus::BlockBody {
        transactions: block.txs.iter().map(|mined| mined.tx.decode()).collect::<Vec<_>>(),
        ommers: Vec::new(),
        withdrawals: Some(Vec::new().into()),
    };
    let size = alloy_rlp::Encodable::length(&alloy_consensus::Block { header: block.header.inner().clone(), body });
    Block {
        header: Header::from_consensus(block.header.clone(), None, Some(alloy_primitives::U256::from(size))),
        uncles: Vec::new(),
        transactions,
        withdrawals: Some(Vec::new().into()),
    }
}

/// The receipt of the transaction at `index` of `block`.
pub fn receipt(block: &DevBlock, index: usize) -> TransactionReceipt {
    let mined = &block.txs[index];
    let tx = mined.tx.decode();
    let contract_address =
        alloy_consensus::Transaction::kind(&tx).is_create().then(|| mined.tx.sender().create(mined.tx.nonce()));
    TransactionReceipt {
        inner: mined.receipt(),
        transaction_hash: mined.tx.hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(block.header.hash()),
        block_number: Some(block.header.number),
        gas_used: mined.gas_used,
        effective_gas_price: mined.effective_gas_price,
        blob_gas_used: mined.tx.is_blob().then(|| mined.tx.blob_gas()),
        blob_gas_price: mined.tx.is_blob().then_some(mined.blob_gas_price),
        from: mined.tx.sender(),
        to: alloy_consensus::Transaction::to(&tx),
        contract_address,
    }
}
