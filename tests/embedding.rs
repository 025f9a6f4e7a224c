//! The embedding API as a node client and a block builder use it: submit through the front
//! door, pull from the builder feed, report failures (poison quarantine), read the dead-letter
//! view. No network, no node: only `Tidepool::builder`.

mod common;

use std::sync::Arc;

use alloy_primitives::U256;
use common::world::{RICH, Spec, address, tx};
use tidepool::{
    Origin, Tidepool, TidepoolConfig,
    pool::{InclusionFailure, PoolConfig, PoolEvent, RemovalReason, Reported, SubPool},
    state::{AccountState, BlockUpdate, ChainHead, InMemoryState},
    validate::ValidationConfig,
};

const BASE_FEE: u128 = 10;

/// A started Tidepool over accounts 0..10 (funded), at base fee 10.
async fn start(pool: PoolConfig) -> (Tidepool, Arc<InMemoryState>) {
    let state = Arc::new(InMemoryState::new());
    for account in 0..10 {
        state.set(address(account), AccountState::new(0, U256::from(RICH)));
    }
    let config = TidepoolConfig {
        validation: ValidationConfig { min_priority_fee: 0, ..Default::default() },
        pool,
        ..Default::default()
    };
    let head = ChainHead { block: 0, base_fee: BASE_FEE, blob_base_fee: 1 };
    let tidepool = Tidepool::builder(state.clone(), head).config(config).start().await.expect("starts");
    (tidepool, state)
}

async fn submit(tidepool: &Tidepool, spec: Spec) {
    tidepool.submitter().submit(spec.raw(), Origin::Local).await.expect("admitted");
}

/// A block that mines nothing and sets `account`'s state (a state change touching it).
fn state_change(tidepool: &Tidepool, account: u64, state: AccountState) -> BlockUpdate {
    let head = tidepool.chain().head();
    BlockUpdate {
        number: head.block + 1,
        base_fee: head.base_fee,
        blob_base_fee: head.blob_base_fee,
        accounts: vec![(address(account), state)],
        ..Default::default()
    }
}

fn offered(tidepool: &Tidepool) -> Vec<alloy_primitives::B256> {
    tidepool.builder_feed().next_block(30_000_000, usize::MAX).txs.iter().map(|t| t.hash()).collect()
}

fn report_until_quarantined(tidepool: &Tidepool, spec: Spec) {
    let feed = tidepool.builder_feed();
    let hash = spec.hash();
    assert_eq!(feed.report_failed(&hash, InclusionFailure::Unaffordable), Ok(Reported::Counted { reports: 1 }));
    assert_eq!(feed.report_failed(&hash, InclusionFailure::Unaffordable), Ok(Reported::Counted { reports: 2 }));
    assert_eq!(feed.report_failed(&hash, InclusionFailure::Unaffordable), Ok(Reported::Quarantined));
}

#[tokio::test]
async fn a_reported_tx_and_its_successors_stop_being_offered_until_a_state_change_brings_them_back() {
    let (tidepool, _) = start(PoolConfig::default()).await;
    let (a0, a1, b0) = (tx(1, 0), tx(1, 1), tx(2, 0));
    for spec in [a0, a1, b0] {
        submit(&tidepool, spec).await;
    }
    let mut events = tidepool.reader().subscribe();
    assert_eq!(offered(&tidepool).len(), 3);

    report_until_quarantined(&tidepool, a0);
    assert_eq!(offered(&tidepool), [b0.hash()], "neither the poison tx nor its successor is offered");
    let info = tidepool.reader().get(&a0.hash()).expect("still pooled");
    assert!(info.quarantined);
    assert_eq!(info.subpool, SubPool::Queued);
    assert_eq!(tidepool.reader().get(&a1.hash()).expect("pooled").subpool, SubPool::Queued, "waits behind it");
    let first = events.try_recv().expect("an event");
    assert!(
        matches!(first, PoolEvent::Quarantined { hash, failure: InclusionFailure::Unaffordable, .. } if hash == a0.hash())
    );

    // A block changes the sender's state (a top-up): re-evaluated, executable, offered again.
    let topped_up = AccountState::new(0, U256::from(RICH) * U256::from(2));
    tidepool.chain().on_block(state_change(&tidepool, 1, topped_up));
    assert!(!tidepool.reader().get(&a0.hash()).expect("pooled").quarantined);
    let mut back = offered(&tidepool);
    back.sort();
    let mut all = vec![a0.hash(), a1.hash(), b0.hash()];
    all.sort();
    assert_eq!(back, all);
    assert!(tidepool.reader().dead_letters_from(&address(1)).is_empty(), "nothing left the pool");
}

#[tokio::test]
async fn a_released_tx_that_still_cannot_execute_goes_to_the_dead_letters() {
    let (tidepool, _) = start(PoolConfig::default()).await;
    let (a0, a1) = (tx(1, 0), tx(1, 1));
    submit(&tidepool, a0).await;
    submit(&tidepool, a1).await;
    report_until_quarantined(&tidepool, a0);

    // The sender's balance is gone: released, not executable, dropped with the reason.
    tidepool.chain().on_block(state_change(&tidepool, 1, AccountState::new(0, U256::ZERO)));
    assert!(tidepool.reader().get(&a0.hash()).is_none());
    let record = tidepool.reader().dead_letter(&a0.hash()).expect("recorded");
    let block = tidepool.chain().head().block;
    assert_eq!(record.reason, RemovalReason::Quarantined { failure: InclusionFailure::Unaffordable, block });
    assert_eq!((record.sender, record.nonce), (address(1), 0));
    // Its successor waits in queued for the gap to be filled, as any nonce gap.
    assert_eq!(tidepool.reader().get(&a1.hash()).expect("pooled").subpool, SubPool::Queued);
    assert_eq!(tidepool.reader().stats().dead_letters["quarantined"], 1);
}

#[tokio::test]
async fn a_tx_quarantined_twice_is_removed_not_retried_forever() {
    let (tidepool, _) = start(PoolConfig::default()).await;
    let a0 = tx(1, 0);
    submit(&tidepool, a0).await;
    report_until_quarantined(&tidepool, a0);
    tidepool.chain().on_block(state_change(&tidepool, 1, AccountState::new(0, U256::from(RICH))));
    assert_eq!(offered(&tidepool), [a0.hash()], "released once");

    let feed = tidepool.builder_feed();
    for _ in 0..2 {
        feed.report_failed(&a0.hash(), InclusionFailure::WrongNonce).expect("pooled");
    }
    assert_eq!(feed.report_failed(&a0.hash(), InclusionFailure::WrongNonce), Ok(Reported::Removed));
    assert!(matches!(
        tidepool.reader().dead_letter(&a0.hash()).expect("recorded").reason,
        RemovalReason::Quarantined { failure: InclusionFailure::WrongNonce, .. }
    ));
    assert_eq!(feed.report_failed(&a0.hash(), InclusionFailure::WrongNonce).map_err(|e| e.kind()), Err("not_pooled"));
}

#[tokio::test]
async fn the_dead_letter_view_stays_bounded_under_churn() {
    let (tidepool, _) = start(PoolConfig { dead_letters: 50, ..Default::default() }).await;
    // Ten accounts each replace their nonce-0 transaction 20 times: 200 dead letters.
    for account in 0..10 {
        let mut fee_cap = 100u128;
        for _ in 0..=20 {
            submit(&tidepool, tx(account, 0).fees(fee_cap, fee_cap / 2)).await;
            fee_cap = fee_cap * 12 / 10;
        }
    }
    let stats = tidepool.reader().stats();
    assert_eq!(stats.dead_letters["replaced"], 200, "every departure is counted");
    assert_eq!(stats.dead_letters_held, 50, "only the newest 50 are held");
    let held: usize = (0..10).map(|a| tidepool.reader().dead_letters_from(&address(a)).len()).sum();
    assert_eq!(held, 50, "the sender index holds exactly the held records");
    assert_eq!(tidepool.reader().dead_letters_from(&address(0)).len(), 0, "the oldest sender's records left");
    let newest = tidepool.reader().dead_letters_from(&address(9));
    assert_eq!(newest.len(), 20);
    assert!(matches!(newest[19].reason, RemovalReason::Replaced { by } if tidepool.reader().get(&by).is_some()));
}

#[tokio::test]
async fn origin_is_kept_with_the_pooled_tx() {
    let (tidepool, _) = start(PoolConfig::default()).await;
    let submitter = tidepool.submitter();
    for (account, origin) in [(1, Origin::Local), (2, Origin::External), (3, Origin::Private)] {
        let spec = tx(account, 0);
        submitter.submit(spec.raw(), origin).await.expect("admitted");
        assert_eq!(tidepool.reader().get(&spec.hash()).expect("pooled").tx.origin(), origin);
    }
    #[cfg(feature = "net")]
    assert!(tidepool.network().is_none());
    let refused = submitter.submit(tx(4, 0).chain(5).raw(), Origin::Local).await.expect_err("wrong chain");
    assert_eq!(refused.kind(), "wrong_chain_id");
    assert_eq!(tidepool.reader().stats().outcomes["added"], 3);
}

#[tokio::test]
async fn pending_nonce_reads_the_state_when_the_pool_holds_nothing_of_the_account() {
    let (tidepool, state) = start(PoolConfig::default()).await;
    let reader = tidepool.reader();
    state.set(address(9), AccountState::new(4, U256::from(RICH)));
    assert_eq!(reader.pending_nonce(&address(9)).await, Ok(4));
    submit(&tidepool, tx(9, 4)).await;
    submit(&tidepool, tx(9, 5)).await;
    assert_eq!(reader.pending_nonce(&address(9)).await, Ok(6));
}

/// The minimum tip is one value: raised through the admin handle, validation refuses below it
/// before the signature, the pool removes the pooled ones below it with a reason (their
/// successors wait in queued), and a verdict given under the old minimum is not reused.
#[tokio::test]
async fn the_minimum_tip_changes_at_run_time_for_validation_and_the_pool() {
    let (tidepool, _) = start(PoolConfig::default()).await;
    let (cheap, next, dear) = (tx(1, 0).fees(100, 5), tx(1, 1).fees(100, 20), tx(2, 0).fees(100, 20));
    for spec in [cheap, next, dear] {
        submit(&tidepool, spec).await;
    }
    let mut events = tidepool.reader().subscribe();
    let admin = tidepool.admin();
    assert_eq!(admin.set_min_tip(10), 1, "one pooled transaction was below");
    assert_eq!(admin.min_tip(), 10);
    let reader = tidepool.reader();
    assert!(reader.get(&cheap.hash()).is_none());
    assert_eq!(reader.get(&next.hash()).map(|info| info.subpool), Some(SubPool::Queued), "a gap now");
    assert_eq!(reader.get(&dear.hash()).map(|info| info.subpool), Some(SubPool::Pending));
    let removed = events.try_recv().expect("an event for the removal");
    assert!(
        matches!(
            removed,
            PoolEvent::Removed {
                reason: RemovalReason::Invalidated {
                    why: tidepool::pool::Invalidation::TipBelowMinimum { min: 10 },
                    ..
                },
                ..
            }
        ),
        "{removed:?}"
    );
    let refused = tidepool.submitter().submit(cheap.raw(), Origin::Local).await.unwrap_err();
    assert_eq!(refused.kind(), "tip_below_minimum");
    // Lowered again: the same bytes are validated afresh and admitted.
    assert_eq!(admin.set_min_tip(1), 0);
    submit(&tidepool, cheap).await;
    assert_eq!(reader.get(&next.hash()).map(|info| info.subpool), Some(SubPool::Pending));
}
