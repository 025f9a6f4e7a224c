//! A block builder pulling from Tidepool: it waits for pending transactions with a pull stream
//! (no buffer grows while it is busy), packs gas-limited batches, executes them against its own
//! view of the state, and reports the transactions it could not include. A sender whose balance
//! the builder sees as empty keeps failing until the pool quarantines it.
//!
//! ```text
//! cargo run --release --example block_builder               # 12 blocks
//! cargo run --example block_builder -- --smoke              # 5 blocks, checks itself (CI)
//! ```

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use alloy_primitives::U256;
use tidepool::{
    Origin, Tidepool,
    pool::{InclusionFailure, Reported},
    state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
    tx::generate::TxMix,
};

const GWEI: u128 = 1_000_000_000;
const BLOCK_GAS: u64 = 2_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smoke = std::env::args().any(|arg| arg == "--smoke");
    let blocks = if smoke { 5 } else { 12 };

    let state = Arc::new(InMemoryState::new());
    let mut mix = TxMix::new(11, 32, 1);
    for signer in mix.signers() {
        state.set(signer.address(), AccountState::new(0, U256::from(10u128.pow(24))));
    }
    // The builder's own state view disagrees about one account: it believes it is broke.
    let broke = mix.signers()[0].address();
    let tidepool =
        Tidepool::builder(state.clone(), ChainHead { block: 0, base_fee: 7 * GWEI, blob_base_fee: 1 }).start().await?;

    // Order flow: a task submits as fast as validation admits, backing off when told `Busy`.
    let submitter = tidepool.submitter();
    let flow = tokio::spawn(async move {
        for tx in mix.take(3_000) {
            // Any other refusal is final for that transaction; `Busy` means "later".
            while submitter.submit(tx.raw.clone(), Origin::External).await.is_err_and(|e| e.is_busy()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let (feed, chain) = (tidepool.builder_feed(), tidepool.chain());
    let mut batches = feed.batches(BLOCK_GAS, 128 * 1024);
    let mut quarantined = Vec::new();
    // The smoke run goes on past its blocks until the broke sender was quarantined: on a busy
    // machine the order flow may take longer to reach it (bounded: 100 blocks).
    let mut number = 0;
    while number < blocks || (smoke && quarantined.is_empty() && number < 100) {
        number += 1;
        let batch = batches.next().await.ok_or("the pool is gone")?;
        let mut changed = BTreeMap::new();
        let mut included = Vec::new();
        let mut failed = 0;
        for tx in &batch.txs {
            if tx.sender() == broke {
                failed += 1;
                if feed.report_failed(&tx.hash(), InclusionFailure::Unaffordable)? == Reported::Quarantined {
                    quarantined.push(tx.hash());
                }
                continue;
            }
            let account = changed.entry(tx.sender()).or_insert_with(|| state.get(&tx.sender()));
            if account.nonce != tx.nonce() {
                // Its predecessor was not included in this block: it waits for the next one.
                continue;
            }
            account.nonce += 1;
            account.balance -= tx.cost();
            included.push(tx.hash());
        }
        for (address, account) in &changed {
            state.set(*address, *account);
        }
        let head = chain.head();
        chain.on_block(BlockUpdate {
            number,
            base_fee: head.base_fee,
            blob_base_fee: head.blob_base_fee,
            mined: included.clone(),
            accounts: changed.into_iter().collect(),
            gas_limit: Some(BLOCK_GAS),
            reinject: Vec::new(),
        });
        println!(
            "block {number:>2}: offered {:>3} ({:>7} gas), included {:>3}, failed {failed}, quarantined so far {}",
            batch.txs.len(),
            batch.gas,
            included.len(),
            quarantined.len()
        );
        tokio::time::sleep(Duration::from_millis(if smoke { 10 } else { 300 })).await;
    }
    flow.abort();

    if smoke {
        let reader = tidepool.reader();
        let mined = reader.stats().removals.get("mined").copied().unwrap_or(0);
        let held_back = quarantined.iter().all(|h| reader.get(h).is_some_and(|info| info.quarantined));
        let offered_again = feed.next_block(u64::MAX, usize::MAX).txs.iter().any(|tx| tx.sender() == broke);
        if mined == 0 || quarantined.is_empty() || !held_back || offered_again {
            return Err(format!("mined {mined}, quarantined {quarantined:?}, offered again {offered_again}").into());
        }
        println!("smoke: ok");
    }
    Ok(())
}
