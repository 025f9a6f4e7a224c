//! Pool behaviour as scenarios: accounts, actions, and where each transaction must end up.
//! Every step also runs `Pool::check_invariants` (see `common::world`).

mod common;

use std::time::Duration;

use alloy_primitives::U256;
use common::world::{BASE_FEE, RICH, Spec, World, address, tx};
use tidepool::state::AccountState;
use tidepool::{
    pool::{Invalidation, Limit, PoolConfig, PoolError, PoolEvent, RemovalReason, SubPool, SubPoolLimit},
    state::BlockUpdate,
};

use SubPool::{BaseFee, Pending, Queued};

fn limited(pending: usize, basefee: usize, queued: usize) -> PoolConfig {
    let limit = |max_txs| SubPoolLimit { max_txs, max_bytes: 1 << 30 };
    PoolConfig { pending: limit(pending), basefee: limit(basefee), queued: limit(queued), ..Default::default() }
}

// --- Placement by nonce ------------------------------------------------------------------------

#[test]
fn tx_at_account_nonce_is_pending() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0)]);
    w.expect(&[(tx(1, 0), Some(Pending))]);
}

#[test]
fn nonce_gap_is_queued() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 1)]);
    w.expect(&[(tx(1, 1), Some(Queued))]);
}

#[test]
fn gap_filled_out_of_order_promotes_the_rest() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 2), tx(1, 3)]);
    w.expect(&[(tx(1, 2), Some(Queued)), (tx(1, 3), Some(Queued))]);
    w.add_all(&[tx(1, 1)]);
    w.expect(&[
        (tx(1, 0), Some(Pending)),
        (tx(1, 1), Some(Pending)),
        (tx(1, 2), Some(Pending)),
        (tx(1, 3), Some(Pending)),
    ]);
    assert_eq!(w.count(|e| matches!(e, PoolEvent::Promoted { from: Queued, to: Pending, .. })), 2);
}

#[test]
fn nonces_arriving_in_reverse_all_end_pending() {
    let mut w = World::default_config();
    w.add_all(&[tx(2, 3), tx(2, 2), tx(2, 1)]);
    assert_eq!(w.pool.sizes().queued.count, 3);
    w.add_all(&[tx(2, 0)]);
    assert_eq!(w.pool.sizes().pending.count, 4);
    assert_eq!(w.pool.sizes().queued.count, 0);
}

/// The account-state rules' boundaries: the pool owns them (validation reads no state).
#[test]
fn nonce_and_balance_rules_at_their_boundaries() {
    let mut w = World::default_config();
    let spec = tx(4, 5);
    let cost = spec.signed().cost();
    w.set_account(4, 6, cost);
    assert_eq!(w.add(spec), Err(PoolError::NonceTooLow { tx: 5, account: 6 }));
    w.set_account(4, 5, cost - U256::from(1));
    assert_eq!(w.add(spec), Err(PoolError::InsufficientFunds { cost, balance: cost - U256::from(1) }));
    assert!(w.events.is_empty(), "a refusal changes nothing");
    // A nonce ahead of the account is admitted (queued until the gap fills); exact cost fits.
    w.set_account(4, 1, cost);
    w.add_all(&[spec]);
    w.expect(&[(spec, Some(Queued))]);
}

/// A transaction validated against a snapshot read before a block moved its sender is settled
/// against the block update, not the stale snapshot (and the pool asks no provider).
#[test]
fn a_stale_snapshot_is_settled_against_the_block_that_moved_the_sender() {
    let mut w = World::default_config();
    // Read before the block: nonce 0, rich.
    let stale_nonce = w.valid(tx(5, 0).signed());
    let stale_balance = w.valid(tx(6, 0).signed());
    let still_fine = w.valid(tx(7, 0).signed());
    // The block moves account 5's nonce and empties account 6; the pool holds neither.
    let moved = |account, nonce, balance: u64| (address(account), AccountState::new(nonce, U256::from(balance)));
    w.block(BlockUpdate {
        base_fee: BASE_FEE,
        accounts: vec![moved(5, 1, RICH), moved(6, 0, 1)],
        ..Default::default()
    });
    assert_eq!(w.pool.add(stale_nonce, w.now), Err(PoolError::NonceTooLow { tx: 0, account: 1 }));
    assert!(matches!(w.pool.add(stale_balance, w.now), Err(PoolError::InsufficientFunds { .. })));
    // An account the block did not touch keeps its snapshot.
    assert!(w.pool.add(still_fine, w.now).is_ok());
    // A snapshot read after the block is not overridden by it.
    w.set_account(5, 1, U256::from(RICH));
    assert!(w.add(tx(5, 1)).is_ok());
    // A snapshot older than the pool's memory of block updates is refused, not guessed at.
    let ancient = w.valid(tx(8, 0).signed());
    for _ in 0..=tidepool::pool::STATE_HISTORY {
        w.base_fee(BASE_FEE);
    }
    assert!(matches!(w.pool.add(ancient, w.now), Err(PoolError::StaleState { .. })));
    w.pool.check_invariants();
}

#[test]
fn nonce_below_account_nonce_is_refused() {
    let mut w = World::default_config();
    w.set_account(3, 5, U256::from(RICH));
    assert_eq!(w.add(tx(3, 4)), Err(PoolError::NonceTooLow { tx: 4, account: 5 }));
    w.add_all(&[tx(3, 5)]);
    w.expect(&[(tx(3, 5), Some(Pending))]);
}

#[test]
fn duplicate_is_already_known_and_changes_nothing() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0)]);
    let events = w.events.len();
    assert_eq!(w.add(tx(1, 0)), Err(PoolError::AlreadyKnown(tx(1, 0).hash())));
    assert_eq!(w.events.len(), events);
}

#[test]
fn pending_nonce_counts_contiguous_pooled_txs() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 1), tx(1, 3)]);
    assert_eq!(w.pool.pending_nonce(&address(1)), Some(2));
    // Nothing pooled: the answer is the account's state nonce, which the reader takes from its
    // state (tests/embedding.rs); the pool calls no provider.
    assert_eq!(w.pool.pending_nonce(&address(9)), None);
}

// --- Base fee ----------------------------------------------------------------------------------

#[test]
fn fee_cap_below_base_fee_is_parked() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(BASE_FEE - 1, 1)]);
    w.expect(&[(tx(1, 0).fees(BASE_FEE - 1, 1), Some(BaseFee))]);
}

#[test]
fn fee_cap_equal_to_base_fee_is_pending() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(BASE_FEE, 0)]);
    w.expect(&[(tx(1, 0).fees(BASE_FEE, 0), Some(Pending))]);
}

#[test]
fn a_well_priced_tx_behind_a_parked_one_is_parked_too() {
    let mut w = World::default_config();
    let cheap = tx(1, 0).fees(5, 1);
    w.add_all(&[cheap, tx(1, 1).fees(1_000, 50)]);
    w.expect(&[(cheap, Some(BaseFee)), (tx(1, 1).fees(1_000, 50), Some(BaseFee))]);
}

#[test]
fn base_fee_rise_demotes_and_fall_promotes() {
    let mut w = World::default_config();
    let a = tx(1, 0).fees(50, 2);
    let b = tx(1, 1).fees(200, 2);
    w.add_all(&[a, b]);
    w.expect(&[(a, Some(Pending)), (b, Some(Pending))]);
    w.base_fee(60);
    w.expect(&[(a, Some(BaseFee)), (b, Some(BaseFee))]);
    assert_eq!(w.count(|e| matches!(e, PoolEvent::Demoted { from: Pending, to: BaseFee, .. })), 2);
    w.base_fee(50);
    w.expect(&[(a, Some(Pending)), (b, Some(Pending))]);
}

#[test]
fn base_fee_move_touches_only_repriced_accounts() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(1_000, 2), tx(2, 0).fees(55, 2)]);
    let before = w.events.len();
    w.base_fee(60); // only account 2's fee cap lies between 10 and 60
    let moved: Vec<_> = w.events[before..].to_vec();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].hash(), tx(2, 0).fees(55, 2).hash());
}

#[test]
fn blob_fee_cap_below_blob_base_fee_parks_until_it_falls() {
    let mut w = World::default_config();
    let blob = tx(4, 0).blob(5);
    w.add_all(&[blob]);
    w.expect(&[(blob, Some(Pending))]);
    w.block(BlockUpdate { base_fee: BASE_FEE, blob_base_fee: 6, ..Default::default() });
    w.expect(&[(blob, Some(BaseFee))]);
    w.block(BlockUpdate { base_fee: BASE_FEE, blob_base_fee: 5, ..Default::default() });
    w.expect(&[(blob, Some(Pending))]);
}

// --- Blob transactions -------------------------------------------------------------------------

/// A sender's pooled transactions are all blob or all non-blob, replacements included.
#[test]
fn a_sender_cannot_mix_blob_and_non_blob_transactions() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(2, 0).blob(10)]);
    assert_eq!(w.add(tx(1, 1).blob(10)), Err(PoolError::BlobTypeConflict { holds_blobs: false }));
    assert_eq!(w.add(tx(1, 0).fees(300, 30).blob(10)), Err(PoolError::BlobTypeConflict { holds_blobs: false }));
    assert_eq!(w.add(tx(2, 1)), Err(PoolError::BlobTypeConflict { holds_blobs: true }));
    // Once the blob transaction is mined, the sender may send either kind again.
    w.block(BlockUpdate {
        base_fee: BASE_FEE,
        blob_base_fee: 1,
        mined: vec![tx(2, 0).blob(10).hash()],
        accounts: vec![(address(2), AccountState::new(1, U256::from(RICH)))],
        ..Default::default()
    });
    w.add_all(&[tx(2, 1)]);
}

#[test]
fn a_blob_transaction_is_admitted_only_at_the_next_nonce() {
    let mut w = World::default_config();
    assert_eq!(w.add(tx(2, 1).blob(10)), Err(PoolError::BlobNonceGap { nonce: 1, next_nonce: 0 }));
    w.add_all(&[tx(2, 0).blob(10), tx(2, 1).blob(10)]);
    assert_eq!(w.add(tx(2, 3).blob(10)), Err(PoolError::BlobNonceGap { nonce: 3, next_nonce: 2 }));
    w.expect(&[(tx(2, 0).blob(10), Some(Pending)), (tx(2, 1).blob(10), Some(Pending))]);
}

/// No overdraft: the sender must afford the new blob transaction and all its pooled ones.
#[test]
fn blob_transactions_cannot_overdraw_the_sender() {
    let mut w = World::default_config();
    let (first, second) = (tx(3, 0).blob(10), tx(3, 1).fees(300, 10).blob(30));
    let (cost_first, cost_second) = (first.signed().cost(), second.signed().cost());
    let balance = cost_first + cost_second - U256::from(1);
    w.set_account(3, 0, balance);
    w.add_all(&[first]);
    assert_eq!(w.add(second), Err(PoolError::InsufficientFunds { cost: cost_first + cost_second, balance }));
    // A replacement counts instead of the transaction it replaces, not on top of it.
    let replacement = tx(3, 0).fees(200, 10).blob(20);
    assert!(replacement.signed().cost() <= balance);
    w.add(replacement).unwrap();
}

#[test]
fn an_account_holds_at_most_its_blob_slots() {
    let mut w = World::new(PoolConfig { blob_account_slots: 2, ..Default::default() });
    w.add_all(&[tx(4, 0).blob(10), tx(4, 1).blob(10)]);
    assert_eq!(w.add(tx(4, 2).blob(10)), Err(PoolError::AccountFull { slots: 2 }));
    // Replacing one of them is not a new slot.
    w.add(tx(4, 1).fees(200, 10).blob(20)).unwrap();
}

/// Past the blob data limit, the blob transaction whose fees sit furthest above the base fees
/// by the smaller of the two margins (here the blob fee cap over a blob base fee of 1) leaves;
/// one that would be the furthest itself is refused.
#[test]
fn the_blob_data_limit_evicts_the_blob_transactions_closest_to_being_priced_out() {
    let blob = tidepool::tx::blob::BYTES_PER_BLOB;
    let mut w = World::new(PoolConfig { blob_bytes: 2 * blob, ..Default::default() });
    let (cheap, dear) = (tx(1, 0).fees(10_000, 5).blob(10), tx(2, 0).fees(10_000, 5).blob(1_000));
    w.add_all(&[cheap, dear]);
    assert_eq!(w.pool.sizes().blob_bytes, 2 * blob);
    assert_eq!(w.add(tx(3, 0).fees(10_000, 5).blob(5)), Err(PoolError::Underpriced { subpool: Pending }));
    let middle = tx(3, 0).fees(10_000, 5).blob(50);
    w.add(middle).unwrap();
    assert_eq!(w.removal(cheap), RemovalReason::Evicted { limit: Limit::BlobBytes });
    w.expect(&[(cheap, None), (dear, Some(Pending)), (middle, Some(Pending))]);
    // The execution fee counts too: a blob fee far above its base fee does not save a fee cap
    // just above the base fee.
    let low_fee_cap = tx(4, 0).fees(BASE_FEE + 1, 1).blob(100_000);
    assert_eq!(w.add(low_fee_cap), Err(PoolError::Underpriced { subpool: Pending }));
}

// --- Replacement -------------------------------------------------------------------------------

#[test]
fn replacement_at_exactly_the_price_bump_replaces() {
    let mut w = World::default_config();
    let old = tx(1, 0).fees(100, 10);
    let new = tx(1, 0).fees(110, 11);
    w.add_all(&[old]);
    let added = w.add(new).unwrap();
    assert_eq!(added.replaced, Some(old.hash()));
    assert_eq!(w.removal(old), RemovalReason::Replaced { by: new.hash() });
    w.expect(&[(old, None), (new, Some(Pending))]);
}

#[test]
fn replacement_just_below_the_bump_on_fee_cap_is_underpriced() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(100, 10)]);
    let err = w.add(tx(1, 0).fees(109, 20)).unwrap_err();
    assert_eq!(err.kind(), "replacement_underpriced");
    w.expect(&[(tx(1, 0).fees(100, 10), Some(Pending))]);
}

#[test]
fn replacement_just_below_the_bump_on_tip_is_underpriced() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(100, 10)]);
    assert!(matches!(w.add(tx(1, 0).fees(200, 10)), Err(PoolError::ReplacementUnderpriced { bump_percent: 10, .. })));
}

/// Replacing a blob transaction needs fee cap, tip and blob fee cap each doubled: every node
/// fetches the blobs again, so it must be worth it.
#[test]
fn blob_replacement_needs_double_the_price_blob_fee_included() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0).fees(100, 10).blob(10)]);
    assert!(matches!(
        w.add(tx(1, 0).fees(199, 20).blob(20)),
        Err(PoolError::ReplacementUnderpriced { bump_percent: 100, .. })
    ));
    assert_eq!(
        w.add(tx(1, 0).fees(200, 20).blob(19)),
        Err(PoolError::BlobReplacementUnderpriced { old_blob_fee_cap: 10, new_blob_fee_cap: 19, bump_percent: 100 })
    );
    w.expect(&[(tx(1, 0).fees(100, 10).blob(10), Some(Pending))]);
    w.add(tx(1, 0).fees(200, 20).blob(20)).unwrap();
}

#[test]
fn replacing_a_parked_tx_with_a_priced_one_promotes_its_successors() {
    let mut w = World::default_config();
    let parked = tx(1, 0).fees(5, 1);
    let next = tx(1, 1).fees(100, 5);
    w.add_all(&[parked, next]);
    w.expect(&[(next, Some(BaseFee))]);
    let better = tx(1, 0).fees(100, 2);
    w.add_all(&[better]);
    w.expect(&[(better, Some(Pending)), (next, Some(Pending))]);
}

#[test]
fn configurable_price_bump() {
    let mut w = World::new(PoolConfig { price_bump_percent: 25, ..Default::default() });
    w.add_all(&[tx(1, 0).fees(100, 8)]);
    assert!(w.add(tx(1, 0).fees(124, 10)).is_err());
    w.add(tx(1, 0).fees(125, 10)).unwrap();
}

// --- Balance -----------------------------------------------------------------------------------

#[test]
fn cumulative_cost_must_fit_the_balance() {
    let mut w = World::default_config();
    // Each costs 21,000 x 100 = 2,100,000 wei; the balance covers two.
    w.set_account(5, 0, U256::from(4_200_000u64));
    w.add_all(&[tx(5, 0), tx(5, 1), tx(5, 2)]);
    w.expect(&[(tx(5, 0), Some(Pending)), (tx(5, 1), Some(Pending)), (tx(5, 2), Some(Queued))]);
}

#[test]
fn value_counts_towards_cost() {
    let mut w = World::default_config();
    w.set_account(5, 0, U256::from(2_100_000u64 + 999));
    // 21,000 gas x 100 + 1,000 wei of value is one wei more than the balance.
    let cost = U256::from(2_101_000u64);
    let balance = cost - U256::from(1);
    assert_eq!(w.add(tx(5, 0).value(1_000)), Err(PoolError::InsufficientFunds { cost, balance }));
    w.add_all(&[tx(5, 0).value(999)]);
    w.expect(&[(tx(5, 0).value(999), Some(Pending))]);
}

/// EIP-3607 and EIP-7702 senders: code is a rule of the pool, read from the sender's state.
#[test]
fn contract_senders_are_refused_and_delegated_ones_hold_one_gapless_transaction() {
    use tidepool::state::AccountCode;
    let mut w = World::default_config();
    let with_code = |code| AccountState::new(0, U256::from(RICH)).with_code(code);
    w.state.set(address(1), with_code(AccountCode::Contract));
    assert_eq!(w.add(tx(1, 0)), Err(PoolError::SenderNotEoa(address(1))));

    w.state.set(address(2), with_code(AccountCode::Delegated(address(9))));
    assert_eq!(w.add(tx(2, 1)), Err(PoolError::DelegatedInFlight { slots: 1, next_nonce: 0 }), "no gaps");
    w.add_all(&[tx(2, 0)]);
    assert_eq!(w.add(tx(2, 1)), Err(PoolError::DelegatedInFlight { slots: 1, next_nonce: 1 }), "one in flight");
    let bumped =
        tx(2, 0).fees(2 * tx(2, 0).signed().max_fee_per_gas(), 2 * tx(2, 0).signed().max_priority_fee_per_gas());
    assert!(w.add(bumped).unwrap().replaced.is_some(), "a replacement is always allowed");
    assert_eq!(w.pool.sizes().pending.count, 1);

    // A sender delegated while it holds transactions keeps them; the limit applies to new ones.
    w.add_all(&[tx(3, 0), tx(3, 1)]);
    w.block(BlockUpdate {
        base_fee: BASE_FEE,
        blob_base_fee: 1,
        accounts: vec![(address(3), with_code(AccountCode::Delegated(address(9))))],
        ..Default::default()
    });
    w.expect(&[(tx(3, 0), Some(Pending)), (tx(3, 1), Some(Pending))]);
    assert!(matches!(w.add(tx(3, 2)), Err(PoolError::DelegatedInFlight { .. })));
}

/// An account that signs an authorization of a pooled transaction may be delegated by the next
/// block: it is held to the delegated limit already, and an authorization by an account that
/// holds more than that is refused (geth's rule).
#[test]
fn signers_of_pooled_authorizations_are_held_to_the_delegated_limit() {
    let mut w = World::default_config();
    w.add_all(&[tx(3, 0), tx(3, 1)]);
    assert_eq!(w.add(tx(1, 0).authorizing(3)), Err(PoolError::AuthorityReserved(address(3))));

    w.add_all(&[tx(4, 0), tx(1, 0).authorizing(4)]);
    assert!(matches!(w.add(tx(4, 1)), Err(PoolError::DelegatedInFlight { slots: 1, next_nonce: 1 })));
    assert!(w.add(tx(4, 0).fees(200, 10)).is_ok(), "its one transaction can still be replaced");
    // The authorization leaves (replaced by a plain transaction): account 4 is free again.
    w.add_all(&[tx(1, 0).fees(200, 10)]);
    w.add_all(&[tx(4, 1)]);
}

/// A block that lowers the gas limit removes the transactions above it, each with its reason,
/// and none above it is admitted afterwards (raising it again removes nothing).
#[test]
fn a_lowered_block_gas_limit_removes_the_transactions_above_it() {
    let mut w = World::default_config();
    let (big, after_big, small) = (tx(1, 0).gas(100_000), tx(1, 1), tx(2, 0));
    w.add_all(&[big, after_big, small]);
    let with_limit = |gas_limit| BlockUpdate {
        base_fee: BASE_FEE,
        blob_base_fee: 1,
        gas_limit: Some(gas_limit),
        ..Default::default()
    };
    w.block(with_limit(50_000));
    w.expect(&[(big, None), (after_big, Some(Queued)), (small, Some(Pending))]);
    let why = Invalidation::AboveBlockGasLimit { block_gas_limit: 50_000 };
    assert_eq!(w.removal(big), RemovalReason::Invalidated { why, block: 1 });
    assert_eq!(
        w.add(tx(3, 0).gas(60_000)),
        Err(PoolError::AboveBlockGasLimit { gas_limit: 60_000, block_gas_limit: 50_000 })
    );
    w.block(with_limit(80_000));
    w.add_all(&[tx(3, 0).gas(60_000)]);
    w.block(with_limit(80_000));
    w.expect(&[(tx(3, 0).gas(60_000), Some(Pending))]);
}

#[test]
fn balance_drop_demotes_and_rise_promotes() {
    let mut w = World::default_config();
    w.add_all(&[tx(6, 0), tx(6, 1)]);
    let update = |balance: u64| BlockUpdate {
        base_fee: BASE_FEE,
        blob_base_fee: 1,
        accounts: vec![(address(6), tidepool::state::AccountState::new(0, U256::from(balance)))],
        ..Default::default()
    };
    w.block(update(2_100_000));
    w.expect(&[(tx(6, 0), Some(Pending)), (tx(6, 1), Some(Queued))]);
    w.block(update(4_200_000));
    w.expect(&[(tx(6, 0), Some(Pending)), (tx(6, 1), Some(Pending))]);
}

// --- Per-account limit -------------------------------------------------------------------------

#[test]
fn account_slots_are_enforced() {
    let mut w = World::new(PoolConfig { account_slots: 4, ..Default::default() });
    w.add_all(&[tx(7, 0), tx(7, 1), tx(7, 2), tx(7, 3)]);
    assert_eq!(w.add(tx(7, 4)), Err(PoolError::AccountFull { slots: 4 }));
    // Replacing one of the four is still allowed.
    w.add(tx(7, 2).fees(200, 10)).unwrap();
}

#[test]
fn tx_at_account_nonce_is_admitted_even_when_the_account_is_full() {
    let mut w = World::new(PoolConfig { account_slots: 2, ..Default::default() });
    w.add_all(&[tx(7, 1), tx(7, 2)]);
    assert_eq!(w.add(tx(7, 3)), Err(PoolError::AccountFull { slots: 2 }));
    w.add_all(&[tx(7, 0)]);
    w.expect(&[(tx(7, 0), Some(Pending)), (tx(7, 1), Some(Pending)), (tx(7, 2), Some(Pending))]);
}

// --- Subpool limits and eviction ---------------------------------------------------------------

#[test]
fn pending_over_capacity_evicts_the_cheapest_tail() {
    let mut w = World::new(limited(3, 10, 10));
    w.add_all(&[tx(1, 0).tip(5), tx(2, 0).tip(7), tx(3, 0).tip(9)]);
    w.add_all(&[tx(4, 0).tip(8)]);
    assert_eq!(w.removal(tx(1, 0).tip(5)), RemovalReason::Evicted { limit: Limit::SubPoolCount(Pending) });
    assert_eq!(w.pool.sizes().pending.count, 3);
}

#[test]
fn new_tx_that_would_be_the_cheapest_in_a_full_pool_is_underpriced() {
    let mut w = World::new(limited(3, 10, 10));
    w.add_all(&[tx(1, 0).tip(5), tx(2, 0).tip(7), tx(3, 0).tip(9)]);
    let events = w.events.len();
    assert_eq!(w.add(tx(4, 0).tip(4)), Err(PoolError::Underpriced { subpool: Pending }));
    assert_eq!(w.add(tx(4, 0).tip(5)), Err(PoolError::Underpriced { subpool: Pending }), "a tie is not better");
    assert_eq!(w.events.len(), events, "a refused tx changes nothing");
}

#[test]
fn evicting_a_tail_takes_no_ancestors_and_leaves_no_gap() {
    let mut w = World::new(limited(4, 10, 10));
    // Account 1's tail (nonce 2) is the cheapest pending tx; its nonces 0 and 1 stay.
    w.add_all(&[tx(1, 0).tip(50), tx(1, 1).tip(50), tx(1, 2).tip(1), tx(2, 0).tip(20)]);
    w.add_all(&[tx(3, 0).tip(30)]);
    assert_eq!(w.removal(tx(1, 2).tip(1)), RemovalReason::Evicted { limit: Limit::SubPoolCount(Pending) });
    w.expect(&[(tx(1, 0).tip(50), Some(Pending)), (tx(1, 1).tip(50), Some(Pending))]);
}

#[test]
fn evicting_a_pending_tail_evicts_its_descendants() {
    let mut w = World::new(limited(2, 10, 10));
    let parked = tx(1, 1).fees(5, 1);
    w.add_all(&[tx(1, 0).tip(1), parked, tx(2, 0).tip(20)]);
    w.expect(&[(parked, Some(BaseFee))]);
    w.add_all(&[tx(3, 0).tip(30)]);
    assert_eq!(w.removal(tx(1, 0).tip(1)), RemovalReason::Evicted { limit: Limit::SubPoolCount(Pending) });
    assert_eq!(w.removal(parked), RemovalReason::Evicted { limit: Limit::EvictedAncestor });
}

#[test]
fn byte_limit_evicts_until_it_fits() {
    let config = PoolConfig { pending: SubPoolLimit { max_txs: 100, max_bytes: 2_000 }, ..Default::default() };
    let mut w = World::new(config);
    w.add_all(&[tx(1, 0).tip(1).calldata(700), tx(2, 0).tip(2).calldata(700)]);
    w.add_all(&[tx(3, 0).tip(3).calldata(700)]);
    assert_eq!(
        w.removal(tx(1, 0).tip(1).calldata(700)),
        RemovalReason::Evicted { limit: Limit::SubPoolBytes(Pending) }
    );
    assert!(w.pool.sizes().pending.bytes <= 2_000);
}

#[test]
fn a_spammer_of_cheap_txs_loses_first() {
    let mut w = World::new(limited(8, 10, 10));
    let spam: Vec<Spec> = (0..6).map(|n| tx(9, n).tip(2)).collect();
    w.add_all(&spam);
    w.add_all(&[tx(1, 0).tip(10), tx(2, 0).tip(10)]);
    w.add_all(&[tx(3, 0).tip(10), tx(4, 0).tip(10), tx(5, 0).tip(10)]);
    // Three newcomers at tip 10 each push out one spam tail, newest nonce first.
    for n in [5, 4, 3] {
        assert_eq!(w.removal(tx(9, n).tip(2)), RemovalReason::Evicted { limit: Limit::SubPoolCount(Pending) });
    }
    w.expect(&[(tx(9, 2).tip(2), Some(Pending)), (tx(1, 0).tip(10), Some(Pending))]);
}

#[test]
fn queued_over_capacity_evicts_the_cheapest() {
    let mut w = World::new(limited(10, 10, 2));
    w.add_all(&[tx(1, 5).tip(3), tx(2, 5).tip(1), tx(3, 5).tip(2)]);
    assert_eq!(w.removal(tx(2, 5).tip(1)), RemovalReason::Evicted { limit: Limit::SubPoolCount(Queued) });
    assert_eq!(w.pool.sizes().queued.count, 2);
}

#[test]
fn basefee_over_capacity_evicts_the_lowest_fee_cap() {
    let mut w = World::new(limited(10, 2, 10));
    w.add_all(&[tx(1, 0).fees(8, 1), tx(2, 0).fees(6, 1), tx(3, 0).fees(9, 1)]);
    assert_eq!(w.removal(tx(2, 0).fees(6, 1)), RemovalReason::Evicted { limit: Limit::SubPoolCount(BaseFee) });
}

// --- Blocks ------------------------------------------------------------------------------------

fn mined(w: &World, specs: &[Spec], accounts: &[(u64, u64)]) -> BlockUpdate {
    BlockUpdate {
        base_fee: w.pool.head().base_fee,
        blob_base_fee: w.pool.head().blob_base_fee,
        mined: specs.iter().map(Spec::hash).collect(),
        accounts: accounts
            .iter()
            .map(|&(a, nonce)| (address(a), tidepool::state::AccountState::new(nonce, U256::from(RICH))))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn mined_txs_leave_with_a_mined_event() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 1), tx(1, 2)]);
    let update = mined(&w, &[tx(1, 0), tx(1, 1)], &[(1, 2)]);
    w.block(update);
    assert_eq!(w.removal(tx(1, 0)), RemovalReason::Mined { block: 1 });
    assert_eq!(w.removal(tx(1, 1)), RemovalReason::Mined { block: 1 });
    w.expect(&[(tx(1, 2), Some(Pending))]);
}

#[test]
fn mined_tx_without_account_update_still_advances_the_nonce() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 2)]);
    let update = mined(&w, &[tx(1, 0)], &[]);
    w.block(update);
    w.expect(&[(tx(1, 2), Some(Queued))]);
    assert_eq!(w.pool.pending_nonce(&address(1)), Some(1));
}

#[test]
fn stale_nonce_after_a_block_is_invalidated() {
    let mut w = World::default_config();
    w.add_all(&[tx(2, 0), tx(2, 1)]);
    // Another transaction (not ours) used nonce 0.
    let update = mined(&w, &[], &[(2, 1)]);
    w.block(update);
    let why = Invalidation::NonceTooLow { account_nonce: 1 };
    assert_eq!(w.removal(tx(2, 0)), RemovalReason::Invalidated { why, block: w.block });
    w.expect(&[(tx(2, 1), Some(Pending))]);
}

#[test]
fn nonce_jump_turns_a_gap_into_pending() {
    let mut w = World::default_config();
    w.add_all(&[tx(2, 3)]);
    let update = mined(&w, &[], &[(2, 3)]);
    w.block(update);
    w.expect(&[(tx(2, 3), Some(Pending))]);
}

#[test]
fn reorg_reinjects_dropped_transactions() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 1)]);
    let update = mined(&w, &[tx(1, 0), tx(1, 1)], &[(1, 2)]);
    w.block(update);
    assert!(w.pool.is_empty());
    // The block is reorged out: the account is back at nonce 0 (the update says so) and both
    // txs return.
    let mut update = mined(&w, &[], &[(1, 0)]);
    update.reinject = vec![tx(1, 0).signed(), tx(1, 1).signed()];
    assert_eq!(w.block(update), []);
    w.expect(&[(tx(1, 0), Some(Pending)), (tx(1, 1), Some(Pending))]);
}

#[test]
fn a_reinjected_tx_whose_sender_state_is_unknown_is_refused_with_its_reason() {
    let mut w = World::default_config();
    // The update forgot the sender's state and the pool holds nothing of it: no guess.
    let mut update = mined(&w, &[], &[]);
    update.reinject = vec![tx(1, 0).signed()];
    assert_eq!(w.block(update), [(tx(1, 0).hash(), PoolError::StateUnknown(address(1)))]);
    assert!(w.pool.is_empty());
}

#[test]
fn reinjected_tx_already_in_the_new_chain_is_not_readded() {
    let mut w = World::default_config();
    let mut update = mined(&w, &[], &[(1, 1)]);
    update.reinject = vec![tx(1, 0).signed()];
    assert_eq!(w.block(update), [(tx(1, 0).hash(), PoolError::NonceTooLow { tx: 0, account: 1 })]);
    assert!(w.pool.is_empty());
    assert_eq!(w.count(|_| true), 0, "nothing entered, nothing to report");
}

// --- Expiry ------------------------------------------------------------------------------------

#[test]
fn queued_and_parked_txs_expire_but_pending_do_not() {
    let mut w = World::new(PoolConfig { lifetime: Duration::from_secs(60), ..Default::default() });
    let queued = tx(1, 5);
    let parked = tx(2, 0).fees(5, 1);
    let pending = tx(3, 0);
    w.add_all(&[queued, parked, pending]);
    w.advance(Duration::from_secs(59));
    w.pool.expire(w.now);
    assert_eq!(w.pool.len(), 3);
    w.advance(Duration::from_secs(2));
    w.pool.expire(w.now);
    w.events.extend(w.pool.take_events());
    assert_eq!(w.removal(queued), RemovalReason::Expired);
    assert_eq!(w.removal(parked), RemovalReason::Expired);
    w.expect(&[(pending, Some(Pending))]);
}

#[test]
fn block_updates_also_expire() {
    let mut w = World::new(PoolConfig { lifetime: Duration::from_secs(60), ..Default::default() });
    w.add_all(&[tx(1, 5)]);
    w.advance(Duration::from_secs(61));
    w.base_fee(BASE_FEE);
    assert_eq!(w.removal(tx(1, 5)), RemovalReason::Expired);
}

// --- Events and queries ------------------------------------------------------------------------

#[test]
fn added_event_names_the_subpool() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 2), tx(2, 0).fees(5, 1)]);
    let added: Vec<SubPool> = w
        .events
        .iter()
        .filter_map(|e| match e {
            PoolEvent::Added { subpool, .. } => Some(*subpool),
            _ => None,
        })
        .collect();
    assert_eq!(added, vec![Pending, Queued, BaseFee]);
}

#[test]
fn content_is_shaped_like_geths() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 1).fees(5, 1), tx(1, 3), tx(2, 0)]);
    let content = w.pool.content(None);
    assert_eq!(content.pending[&address(1)].keys().copied().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(content.queued[&address(1)].keys().copied().collect::<Vec<_>>(), vec![3]);
    assert!(content.pending.contains_key(&address(2)));
    let only = w.pool.content(Some(&address(2)));
    assert_eq!(only.pending.len(), 1);
    assert!(only.queued.is_empty());
}

#[test]
fn lookups_by_hash_and_sender() {
    let mut w = World::default_config();
    w.add_all(&[tx(1, 0), tx(1, 1)]);
    let info = w.pool.get(&tx(1, 1).hash()).unwrap();
    assert_eq!((info.tx.nonce(), info.subpool), (1, Pending));
    let by_sender: Vec<u64> = w.pool.account_txs(&address(1)).iter().map(|i| i.tx.nonce()).collect();
    assert_eq!(by_sender, vec![0, 1]);
    assert!(w.pool.get(&tx(1, 2).hash()).is_none());
}

#[test]
fn sizes_count_and_weigh_each_subpool() {
    let mut w = World::default_config();
    let specs = [tx(1, 0), tx(1, 1).fees(5, 1), tx(2, 4)];
    w.add_all(&specs);
    let sizes = w.pool.sizes();
    assert_eq!((sizes.pending.count, sizes.basefee.count, sizes.queued.count), (1, 1, 1));
    assert_eq!(sizes.pending.bytes, specs[0].signed().size());
    assert_eq!(sizes.total(), 3);
}

#[test]
fn every_removal_has_exactly_one_event() {
    let mut w = World::new(PoolConfig { account_slots: 4, ..limited(3, 2, 2) });
    for account in 0..6 {
        let _ = w.add(tx(account, 0).tip(u128::from(account as u32) + 1));
        let _ = w.add(tx(account, 2).tip(1));
    }
    let update = mined(&w, &[tx(5, 0).tip(6)], &[(5, 1)]);
    w.block(update);
    let mut live = std::collections::HashSet::new();
    for event in &w.events {
        match event {
            PoolEvent::Added { hash, .. } => assert!(live.insert(*hash)),
            PoolEvent::Removed { hash, .. } => assert!(live.remove(hash)),
            _ => {}
        }
    }
    assert_eq!(live.len(), w.pool.len());
}

#[test]
fn expiry_that_opens_a_gap_still_respects_the_queued_limit() {
    // Found by the property test: an expired parked tx drops its successors into queued.
    let mut w = World::new(PoolConfig { lifetime: Duration::from_secs(60), ..limited(10, 10, 1) });
    w.add_all(&[tx(1, 0).fees(5, 1)]);
    w.advance(Duration::from_secs(30));
    w.add_all(&[tx(1, 1).fees(5, 1), tx(1, 2).fees(5, 1)]);
    w.advance(Duration::from_secs(31));
    w.pool.expire(w.now);
    w.events.extend(w.pool.take_events());
    w.pool.check_invariants();
    assert_eq!(w.removal(tx(1, 0).fees(5, 1)), RemovalReason::Expired);
    assert_eq!(w.pool.sizes().queued.count, 1);
}
