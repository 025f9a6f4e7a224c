//! The builder feed: best-first order, nonce order per account, packing, and pulling.

mod common;

use std::time::Duration;

use common::world::{BASE_FEE, World, address, tx};
use tidepool::{
    builder::{BestTxs, BuilderFeed, next_block},
    pool::{Pool, PoolConfig, PoolEvent, PoolHandle, ValidTx},
    state::ChainHead,
};

fn order(w: &World, base_fee: u128) -> Vec<(u64, u64)> {
    let accounts: Vec<_> = (0..10).map(address).collect();
    BestTxs::new(&w.pool, base_fee)
        .map(|tx| (accounts.iter().position(|a| *a == tx.sender()).unwrap() as u64, tx.nonce()))
        .collect()
}

#[test]
fn highest_effective_tip_first() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).tip(3), tx(2, 0).tip(9), tx(3, 0).tip(6)]);
    assert_eq!(order(&w, BASE_FEE), vec![(2, 0), (3, 0), (1, 0)]);
}

#[test]
fn effective_tip_is_capped_by_fee_cap_minus_base_fee() {
    let mut w = World::default_config();
    // Account 1: tip 50 but fee cap 30 → effective 20 at base fee 10. Account 2: tip 25.
    w.add_all(&[tx(1, 0).fees(30, 30), tx(2, 0).fees(100, 25)]);
    assert_eq!(order(&w, BASE_FEE), vec![(2, 0), (1, 0)]);
}

#[test]
fn legacy_gas_price_is_both_fee_cap_and_tip() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(40, 40).legacy(), tx(2, 0).fees(100, 20)]);
    // Legacy: min(40, 40 - 10) = 30 beats 20.
    assert_eq!(order(&w, BASE_FEE), vec![(1, 0), (2, 0)]);
}

#[test]
fn each_account_in_nonce_order_even_when_later_nonces_pay_more() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).tip(1), tx(1, 1).tip(50), tx(2, 0).tip(10)]);
    assert_eq!(order(&w, BASE_FEE), vec![(2, 0), (1, 0), (1, 1)]);
}

#[test]
fn ties_go_to_the_earliest_arrival() {
    let mut w = World::default_config();
    w.add_all(&[tx(3, 0).tip(5), tx(1, 0).tip(5), tx(2, 0).tip(5)]);
    assert_eq!(order(&w, BASE_FEE), vec![(3, 0), (1, 0), (2, 0)]);
}

#[test]
fn mark_invalid_skips_the_senders_remaining_txs() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).tip(9), tx(1, 1).tip(9), tx(2, 0).tip(5)]);
    let mut best = BestTxs::new(&w.pool, BASE_FEE);
    let first = best.next().unwrap();
    assert_eq!(first.sender(), address(1));
    best.mark_invalid(address(1));
    let rest: Vec<_> = best.map(|t| t.sender()).collect();
    assert_eq!(rest, vec![address(2)]);
}

#[test]
fn a_higher_base_fee_skips_what_cannot_pay_and_its_successors() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(15, 2), tx(1, 1).fees(100, 2), tx(2, 0).fees(100, 2)]);
    assert_eq!(order(&w, 20), vec![(2, 0)]);
}

#[test]
fn parked_and_queued_are_never_offered() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(5, 1), tx(2, 1), tx(3, 0)]);
    assert_eq!(order(&w, BASE_FEE), vec![(3, 0)]);
}

#[test]
fn next_block_respects_the_gas_limit_and_packs_around_big_txs() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).tip(9).gas(60_000), tx(1, 1).tip(9), tx(2, 0).tip(5), tx(3, 0).tip(4)]);
    let batch = next_block(&w.pool, BASE_FEE, 50_000, usize::MAX, usize::MAX);
    // Account 1's first tx does not fit, so its nonce 1 cannot go either; 2 and 3 fill the block.
    let senders: Vec<_> = batch.txs.iter().map(|t| t.sender()).collect();
    assert_eq!(senders, vec![address(2), address(3)]);
    assert_eq!(batch.gas, 42_000);
}

#[test]
fn next_block_respects_the_byte_limit() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).tip(9).calldata(500), tx(2, 0).tip(5)]);
    let small = tx(2, 0).tip(5).signed().size();
    let batch = next_block(&w.pool, BASE_FEE, 30_000_000, small + 10, usize::MAX);
    assert_eq!(batch.txs.len(), 1);
    assert_eq!(batch.txs[0].sender(), address(2));
    assert_eq!(batch.bytes, small);
}

#[test]
fn next_block_is_nonce_consistent() {
    let mut w = World::default_config();
    let specs: Vec<_> =
        (0..5).flat_map(|a| (0..4).map(move |n| tx(a, n).tip(u128::from(10 - n as u32 + a as u32)))).collect();
    w.add_all(&specs);
    let batch = next_block(&w.pool, BASE_FEE, 30_000_000, usize::MAX, usize::MAX);
    assert_eq!(batch.txs.len(), 20);
    let mut next = std::collections::HashMap::new();
    for tx in &batch.txs {
        let expected = next.entry(tx.sender()).or_insert(0);
        assert_eq!(tx.nonce(), *expected);
        *expected += 1;
    }
}

fn shared_pool() -> (PoolHandle, Vec<ValidTx>) {
    let w = World::default_config();
    let pool = Pool::new(PoolConfig::default(), ChainHead { block: 0, base_fee: BASE_FEE, blob_base_fee: 1 });
    (PoolHandle::new(pool), vec![w.valid(tx(1, 0).signed()), w.valid(tx(2, 0).signed())])
}

#[tokio::test]
async fn batch_stream_answers_at_once_then_waits_for_new_pending() {
    let (handle, txs) = shared_pool();
    handle.add(txs[0].clone()).unwrap();
    let mut stream = BuilderFeed::new(handle.clone(), usize::MAX).batches(30_000_000, usize::MAX);
    assert_eq!(stream.next().await.unwrap().txs.len(), 1);
    // Nothing new: the next pull waits.
    assert!(tokio::time::timeout(Duration::from_millis(50), stream.next()).await.is_err());
    handle.add(txs[1].clone()).unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap();
    assert_eq!(batch.txs.len(), 2);
}

#[tokio::test]
async fn a_builder_that_stops_pulling_costs_nothing_and_loses_nothing() {
    let (handle, _) = shared_pool();
    let mut stream = BuilderFeed::new(handle.clone(), usize::MAX).batches(30_000_000, usize::MAX);
    let w = World::default_config();
    let specs: Vec<_> = (10..40).map(|a| w.valid(tx(a, 0).signed())).collect();
    for tx in specs {
        handle.add(tx).unwrap();
    }
    // One pull after all those changes sees everything at once.
    assert_eq!(stream.next().await.unwrap().txs.len(), 30);
    assert_eq!(handle.read(Pool::sizes).pending.count, 30);
}

#[tokio::test]
async fn slow_subscribers_count_what_they_missed_and_never_block() {
    let (handle, txs) = shared_pool();
    let mut events = handle.subscribe();
    handle.add(txs[0].clone()).unwrap();
    assert_eq!(events.recv().await.unwrap().hash(), txs[0].tx.hash());
    // Flip a tx between pending and basefee more times than the buffer holds.
    let flips = tidepool::pool::EVENT_BUFFER + 100;
    for i in 0..flips {
        let base_fee = if i % 2 == 0 { 1_000 } else { BASE_FEE };
        handle.on_block(tidepool::state::BlockUpdate {
            number: i as u64,
            base_fee,
            blob_base_fee: 1,
            ..Default::default()
        });
    }
    let mut received = 0;
    while events.try_recv().is_some() {
        received += 1;
    }
    assert_eq!(received, tidepool::pool::EVENT_BUFFER);
    assert_eq!(events.missed() as usize, flips - tidepool::pool::EVENT_BUFFER);
}

/// Issue: events were published after the pool's lock was released, so a block's `Removed`
/// could reach a subscriber before the `Added` of the same transaction from a concurrent insert.
#[test]
fn events_reach_subscribers_in_the_order_the_pool_made_them() {
    let (handle, _) = shared_pool();
    let mut events = handle.subscribe();
    let w = World::default_config();
    let txs: Vec<ValidTx> = (10..90).map(|a| w.valid(tx(a, 0).signed())).collect();
    let hashes: Vec<_> = txs.iter().map(|t| t.tx.hash()).collect();
    std::thread::scope(|threads| {
        threads.spawn(|| {
            for tx in txs {
                // The sender's state read now, as ingest does (blocks keep coming meanwhile). On
                // a loaded machine this thread can sleep through more blocks than the pool
                // remembers; then the snapshot is stale and is read again, as a caller would.
                loop {
                    match handle.add(ValidTx { epoch: handle.state_epoch(), ..tx.clone() }) {
                        Err(tidepool::pool::PoolError::StaleState { .. }) => continue,
                        outcome => break outcome.map(drop).unwrap(),
                    }
                }
            }
        });
        threads.spawn(|| {
            for _ in 0..500 {
                let mined = handle.read(|p| hashes.iter().filter(|h| p.get(h).is_some()).copied().collect());
                handle.on_block(tidepool::state::BlockUpdate {
                    base_fee: BASE_FEE,
                    blob_base_fee: 1,
                    mined,
                    ..Default::default()
                });
            }
        });
    });
    let mut added = std::collections::HashSet::new();
    let mut removed = 0;
    while let Some(event) = events.try_recv() {
        match event {
            PoolEvent::Added { hash, .. } => assert!(added.insert(hash)),
            PoolEvent::Removed { hash, .. } => {
                assert!(added.contains(&hash), "{hash} removed before it was added");
                removed += 1;
            }
            _ => {}
        }
    }
    assert_eq!(added.len(), 80);
    assert!(removed > 0, "some were mined while others were added");
}
