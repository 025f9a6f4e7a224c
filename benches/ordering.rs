//! The pool's two orderings against the `priority-queue` crate, on the pool's own workload.
//! Run: `cargo bench --bench ordering`.
//!
//! 1. Eviction index (`pool/`: account tails per subpool in eviction order): a saturated pool of
//!    16,000 account tails; each step re-ranks one account's tail (remove its old key, insert the
//!    new one, as `account::reevaluate` does), reads the cheapest (`check_not_cheapest`), and every
//!    fourth step evicts the cheapest and gives that account a new tail. Ours: `BTreeSet` of keys
//!    (the account keeps its key, so removal needs no index). Theirs: `PriorityQueue<id, key>`
//!    (removal by id through its index map).
//! 2. Best-first iteration (`builder/`): a heap of 11,200 candidates, one per account; pop the
//!    best 2,000, pushing each account's next transaction back. Ours: `std::collections::BinaryHeap`.
//!    Theirs: `PriorityQueue`, which also indexes every item (the builder never needs to).

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap},
    hint::black_box,
};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use priority_queue::PriorityQueue;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

const TAILS: u32 = 16_000;
const STEPS: usize = 1_000;
const CANDIDATES: u32 = 11_200;
const POPS: usize = 2_000;

/// The pool's eviction key: priority, fee cap, newest first, then the slot id.
type Key = (u64, u64, Reverse<u64>, u32);

fn key(rng: &mut StdRng, seq: &mut u64, id: u32) -> Key {
    *seq += 1;
    (rng.random_range(1..50), rng.random_range(100..300), Reverse(*seq), id)
}

/// The keys each account's tail starts with, and the re-ranking steps: (account, its new key).
fn eviction_workload() -> (Vec<Key>, Vec<(u32, Key)>) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut seq = 0;
    let tails = (0..TAILS).map(|id| key(&mut rng, &mut seq, id)).collect();
    let steps = (0..STEPS)
        .map(|_| {
            let account = rng.random_range(0..TAILS);
            (account, key(&mut rng, &mut seq, account))
        })
        .collect();
    (tails, steps)
}

fn eviction(c: &mut Criterion) {
    let (tails, steps) = eviction_workload();
    let mut group = c.benchmark_group("eviction_index_1000_steps");
    group.bench_function("btreeset_ours", |b| {
        b.iter_batched_ref(
            || (tails.iter().copied().collect::<BTreeSet<Key>>(), tails.clone()),
            |(set, current)| {
                for (i, &(account, new)) in steps.iter().enumerate() {
                    set.remove(&current[account as usize]);
                    set.insert(new);
                    current[account as usize] = new;
                    black_box(set.first());
                    if i % 4 == 3 {
                        let victim = set.pop_first().expect("non-empty");
                        let replacement = (victim.0 + 1, victim.1, victim.2, victim.3);
                        set.insert(replacement);
                        current[victim.3 as usize] = replacement;
                    }
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("priority_queue_crate", |b| {
        b.iter_batched_ref(
            || tails.iter().map(|&k| (k.3, Reverse(k))).collect::<PriorityQueue<u32, Reverse<Key>>>(),
            |queue| {
                for (i, &(account, new)) in steps.iter().enumerate() {
                    queue.remove(&account);
                    queue.push(account, Reverse(new));
                    black_box(queue.peek());
                    if i % 4 == 3 {
                        let (id, Reverse(victim)) = queue.pop().expect("non-empty");
                        queue.push(id, Reverse((victim.0 + 1, victim.1, victim.2, victim.3)));
                    }
                }
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// A builder candidate: tip, earliest first, account.
type Candidate = (u64, Reverse<u64>, u32);

fn best_first(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(11);
    let candidates: Vec<Candidate> =
        (0..CANDIDATES).map(|account| (rng.random_range(1..50), Reverse(u64::from(account)), account)).collect();
    let next_tips: Vec<u64> = (0..POPS).map(|_| rng.random_range(1..50)).collect();
    let mut group = c.benchmark_group("best_first_2000_pops");
    group.bench_function("binary_heap_ours", |b| {
        b.iter(|| {
            let mut heap = BinaryHeap::from(candidates.clone());
            for (i, &tip) in next_tips.iter().enumerate() {
                let (_, _, account) = heap.pop().expect("non-empty");
                heap.push((tip, Reverse(CANDIDATES as u64 + i as u64), account));
            }
            black_box(heap.len())
        });
    });
    group.bench_function("priority_queue_crate", |b| {
        b.iter(|| {
            let mut queue: PriorityQueue<u32, (u64, Reverse<u64>)> =
                candidates.iter().map(|&(tip, seq, account)| (account, (tip, seq))).collect();
            for (i, &tip) in next_tips.iter().enumerate() {
                let (account, _) = queue.pop().expect("non-empty");
                queue.push(account, (tip, Reverse(CANDIDATES as u64 + i as u64)));
            }
            black_box(queue.len())
        });
    });
    group.finish();
}

criterion_group!(ordering, eviction, best_first);
criterion_main!(ordering);
