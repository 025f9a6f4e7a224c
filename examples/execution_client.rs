//! An execution client embedding Tidepool: it owns the chain state, submits its users'
//! transactions, feeds every block to the pool, and follows the pool's events.
//!
//! ```text
//! cargo run --release --example execution_client            # 20 blocks
//! cargo run --example execution_client -- --smoke           # 3 blocks, checks itself (CI)
//! ```

use std::{collections::BTreeMap, sync::Arc};

use alloy_primitives::U256;
use tidepool::{
    Origin, Tidepool,
    pool::PoolEvent,
    state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
    tx::generate::TxMix,
};

const GWEI: u128 = 1_000_000_000;
const GAS_LIMIT: u64 = 30_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let blocks = if smoke { 3 } else { 20 };

    // The client's state. A real client implements `StateProvider` over its database.
    let state = Arc::new(InMemoryState::new());
    let mut users = TxMix::new(7, 16, 1);
    for signer in users.signers() {
        state.set(signer.address(), AccountState::new(0, U256::from(10u128.pow(24))));
    }
    let mut head = ChainHead { block: 0, base_fee: 7 * GWEI, blob_base_fee: 1 };
    let tidepool = Tidepool::builder(state.clone(), head).start().await?;
    let (submitter, chain, reader) = (tidepool.submitter(), tidepool.chain(), tidepool.reader());
    let mut events = reader.subscribe();

    let (mut accepted, mut mined_total) = (0usize, 0usize);
    for _ in 0..blocks {
        // Users submit through the client's RPC: local transactions.
        for tx in users.take(100) {
            match submitter.submit(tx.raw, Origin::Local).await {
                Ok(_) => accepted += 1,
                Err(e) => println!("refused: {} ({e})", e.kind()),
            }
        }

        // A block arrives from the network. Here another party built it from our pending set;
        // the client executes it (charging each sender its maximum cost) and tells the pool.
        let block = tidepool.builder_feed().next_block(GAS_LIMIT / 2, usize::MAX);
        let mut changed = BTreeMap::new();
        for tx in &block.txs {
            let account = changed.entry(tx.sender()).or_insert_with(|| state.get(&tx.sender()));
            account.nonce += 1;
            account.balance -= tx.cost();
        }
        for (address, account) in &changed {
            state.set(*address, *account);
        }
        head = ChainHead { block: head.block + 1, ..head };
        chain.on_block(BlockUpdate {
            number: head.block,
            base_fee: head.base_fee,
            blob_base_fee: head.blob_base_fee,
            mined: block.txs.iter().map(|tx| tx.hash()).collect(),
            accounts: changed.into_iter().collect(),
            gas_limit: Some(GAS_LIMIT),
            reinject: Vec::new(),
        });
        mined_total += block.txs.len();

        let mut by_kind = BTreeMap::<&str, usize>::new();
        while let Some(event) = events.try_recv() {
            let kind = match event {
                PoolEvent::Added { .. } => "added",
                PoolEvent::Promoted { .. } => "promoted",
                PoolEvent::Demoted { .. } => "demoted",
                PoolEvent::Quarantined { .. } => "quarantined",
                PoolEvent::Removed { reason, .. } => reason.kind(),
            };
            *by_kind.entry(kind).or_default() += 1;
        }
        let sizes = reader.sizes();
        println!(
            "block {:>3}: mined {:>4} gas {:>9} | pool pending {:>4} queued {:>4} | events {by_kind:?}",
            head.block,
            block.txs.len(),
            block.gas,
            sizes.pending.count,
            sizes.queued.count,
        );
    }

    let stats = reader.stats();
    println!("accepted {accepted}, mined {mined_total}, removals {:?}", stats.removals);
    if smoke {
        let pooled = reader.sizes().total();
        let mined = stats.removals.get("mined").copied().unwrap_or(0) as usize;
        let others: u64 = stats.removals.iter().filter(|(k, _)| **k != "mined").map(|(_, v)| v).sum();
        // Every accepted transaction is either still pooled or left with a reason.
        if mined != mined_total || mined == 0 || pooled + mined + others as usize != accepted {
            return Err(format!("inconsistent: accepted {accepted}, mined {mined}, pooled {pooled}").into());
        }
        println!("smoke: ok");
    }
    Ok(())
}
