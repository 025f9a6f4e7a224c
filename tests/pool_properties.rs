//! Property tests: random operation sequences keep the pool's invariants, the builder's order,
//! and the event accounting.

mod common;
#[path = "../fuzz/targets.rs"]
mod targets;

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, OnceLock},
    time::Duration,
};

use alloy_primitives::{Address, B256, U256};
use common::world::{World, address, tx};
use proptest::prelude::*;
use tidepool::{
    builder::{BestTxs, next_block},
    pool::{InclusionFailure, PoolConfig, PoolEvent, QuarantineConfig, SubPoolLimit},
    state::{AccountState, BlockUpdate},
    tx::PooledTx,
};

const ACCOUNTS: u64 = 5;
const FEE_CAPS: [u128; 4] = [5, 10, 20, 60];

#[derive(Debug, Clone)]
enum Op {
    Add {
        account: u64,
        nonce: u64,
        fee_cap: usize,
        tip: u128,
        value: u64,
    },
    Block {
        base_fee: usize,
        mine: usize,
        poor: Option<u64>,
    },
    Wait {
        secs: u64,
    },
    /// A builder reports the account's transaction at `nonce` (if pooled) as not includable.
    Report {
        account: u64,
        nonce: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..ACCOUNTS, 0..7u64, 0..FEE_CAPS.len(), 0..12u128, 0..2u64)
            .prop_map(|(account, nonce, fee_cap, tip, value)| Op::Add { account, nonce, fee_cap, tip, value }),
        2 => (0..FEE_CAPS.len(), 0..4usize, proptest::option::of(0..ACCOUNTS))
            .prop_map(|(base_fee, mine, poor)| Op::Block { base_fee, mine, poor }),
        1 => (1..120u64).prop_map(|secs| Op::Wait { secs }),
        2 => (0..ACCOUNTS, 0..7u64).prop_map(|(account, nonce)| Op::Report { account, nonce }),
    ]
}

/// Signed transactions are expensive; the same (account, nonce, fees, value) is signed once.
fn signed(account: u64, nonce: u64, fee_cap: u128, tip: u128, value: u64) -> PooledTx {
    type Key = (u64, u64, u128, u128, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, PooledTx>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(tx) = cache.lock().unwrap().get(&(account, nonce, fee_cap, tip, value)) {
        return tx.clone();
    }
    let tx = tx(account, nonce).fees(fee_cap, tip.min(fee_cap)).value(value).signed();
    cache.lock().unwrap().insert((account, nonce, fee_cap, tip, value), tx.clone());
    tx
}

fn small_pool() -> World {
    let limit = |max_txs| SubPoolLimit { max_txs, max_bytes: 1_000 };
    World::new(PoolConfig {
        pending: limit(6),
        basefee: limit(3),
        queued: limit(4),
        account_slots: 4,
        lifetime: Duration::from_secs(300),
        quarantine: QuarantineConfig { after_reports: 2, window: Duration::from_secs(60) },
        ..Default::default()
    })
}

fn apply(w: &mut World, op: &Op) {
    match *op {
        Op::Add { account, nonce, fee_cap, tip, value } => {
            let _ = w.add_tx(signed(account, nonce, FEE_CAPS[fee_cap], tip, value));
        }
        Op::Block { base_fee, mine, poor } => {
            let head = w.pool.head();
            let batch = next_block(&w.pool, head.base_fee, 30_000_000, usize::MAX, usize::MAX);
            let mined: Vec<_> = batch.txs.iter().take(mine).cloned().collect();
            let mut accounts: HashMap<Address, AccountState> = HashMap::new();
            for tx in &mined {
                let balance = U256::from(common::world::RICH);
                accounts.insert(tx.sender(), AccountState::new(tx.nonce() + 1, balance));
            }
            if let Some(account) = poor {
                // A balance for about two transactions: exercises cumulative affordability.
                let current = accounts.get(&address(account)).map_or_else(|| state_nonce(w, account), |a| a.nonce);
                accounts.insert(address(account), AccountState::new(current, U256::from(2 * 21_000 * 60 + 1)));
            }
            for (address, state) in &accounts {
                w.state.set(*address, *state);
            }
            w.block(BlockUpdate {
                base_fee: FEE_CAPS[base_fee],
                blob_base_fee: 1,
                mined: mined.iter().map(|t| t.hash()).collect(),
                accounts: accounts.into_iter().collect(),
                ..Default::default()
            });
        }
        Op::Wait { secs } => {
            w.advance(Duration::from_secs(secs));
            w.pool.expire(w.now);
            w.events.extend(w.pool.take_events());
            w.pool.check_invariants();
        }
        Op::Report { account, nonce } => {
            let pooled = w.pool.account_txs(&address(account)).into_iter().find(|i| i.tx.nonce() == nonce);
            if let Some(info) = pooled {
                w.pool.report_failed(&info.tx.hash(), InclusionFailure::WrongNonce, w.now).expect("pooled");
                w.events.extend(w.pool.take_events());
                w.pool.check_invariants();
            }
        }
    }
}

fn state_nonce(w: &World, account: u64) -> u64 {
    w.state.get(&address(account)).nonce
}

/// Every hash enters once and leaves at most once; the live set equals the pool.
fn check_event_accounting(w: &World) {
    let mut live = HashSet::<B256>::new();
    for event in &w.events {
        match event {
            PoolEvent::Added { hash, .. } => assert!(live.insert(*hash), "added twice: {hash}"),
            PoolEvent::Removed { hash, .. } => assert!(live.remove(hash), "removed while not pooled: {hash}"),
            PoolEvent::Promoted { hash, .. }
            | PoolEvent::Demoted { hash, .. }
            | PoolEvent::Quarantined { hash, .. } => {
                assert!(live.contains(hash), "moved while not pooled: {hash}");
            }
        }
    }
    assert_eq!(live.len(), w.pool.len());
    assert!(live.iter().all(|h| w.pool.get(h).is_some()));
}

/// `best` yields each account in nonce order, starting at its pool nonce, with no skipped nonce.
fn check_best_order(w: &World) {
    for base_fee in FEE_CAPS {
        let mut next: HashMap<Address, u64> = HashMap::new();
        for tx in BestTxs::new(&w.pool, base_fee) {
            let expected = next.entry(tx.sender()).or_insert_with(|| w.state.get(&tx.sender()).nonce);
            assert_eq!(tx.nonce(), *expected, "predecessor of {} nonce {} was yielded first", tx.sender(), tx.nonce());
            *expected += 1;
            assert!(tx.effective_tip(base_fee).is_some(), "yielded txs pay the base fee");
            assert!(!w.pool.get(&tx.hash()).expect("pooled").quarantined, "quarantined txs are not offered");
        }
    }
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N runs more.

    /// The pool agrees with the reference model (`targets::pool_model`, also the
    /// `pool_ops` fuzz target's oracle) on every verdict and every placement.
    #[test]
    fn the_pool_agrees_with_the_reference_model(bytes in proptest::collection::vec(any::<[u8; 4]>(), 1..48)) {
        let ops: Vec<_> = bytes.iter().map(|b| targets::pool_model::Op::from_bytes(b)).collect();
        targets::pool_model::run(&ops);
    }

    #[test]
    fn random_operations_keep_every_invariant(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = small_pool();
        for op in &ops {
            apply(&mut w, op); // check_invariants runs inside after every step
            check_event_accounting(&w);
            check_best_order(&w);
        }
    }
}
