//! The pool at capacity: inserting a batch, applying a block, building a block, and memory per
//! pooled transaction (ordinary and blob, with what the blob store keeps per blob). Run:
//! `cargo bench --bench pool`.
//!
//! The saturated pool (16,000 txs, base fee 100): 2,800 senders x 4 pending, 800 x 4 priced below
//! the base fee, 400 x 4 behind a nonce gap. The pending limit equals its count (11,200), so every
//! pending insert is at capacity; basefee and queued keep their default limits (10,000).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::atomic::{AtomicIsize, Ordering},
    time::Instant,
};

use std::sync::Arc;

use alloy_consensus::{TxEip1559, TxEip4844};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use tidepool::{
    builder::next_block,
    pool::{BlobStore, Pool, PoolConfig, SubPoolLimit, ValidTx},
    state::{AccountState, BlockUpdate, ChainHead},
    tx::{blob, generate::blob_sidecar, sign::Signer},
    validate::{ValidationConfig, Validator},
};

/// Counts live heap bytes, to measure memory per pooled transaction.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BASE_FEE: u128 = 100;
const PENDING_SENDERS: u64 = 2_800;
const PARKED_SENDERS: u64 = 800;
const GAPPED_SENDERS: u64 = 400;
const PER_SENDER: u64 = 4;
const GAS_LIMITS: [u64; 4] = [21_000, 50_000, 100_000, 150_000];

/// Signs one transaction and returns its raw bytes; mainnet-like calldata size.
fn raw_tx(rng: &mut StdRng, account: u64, nonce: u64, fee_cap: u128, tip: u128) -> Bytes {
    let calldata = if rng.random_bool(0.4) { 0 } else { 68 + rng.random_range(0..200) };
    let gas_limit = GAS_LIMITS[rng.random_range(0..GAS_LIMITS.len())].max(21_000 + 40 * calldata as u64);
    Signer::dev(account).sign_tx(TxEip1559 {
        chain_id: 1,
        nonce,
        gas_limit,
        max_fee_per_gas: fee_cap,
        max_priority_fee_per_gas: tip.min(fee_cap),
        to: TxKind::Call(Address::repeat_byte(0x33)),
        value: U256::from(1),
        input: vec![0xab; calldata].into(),
        access_list: Default::default(),
    })
}

struct Workload {
    raws: Vec<Bytes>,
    insert_batch: Vec<ValidTx>,
}

/// Every sender's state: nonce 0, 1,000 ether.
fn funded() -> AccountState {
    AccountState::new(0, U256::from(10u128.pow(21)))
}

fn workload() -> Workload {
    let mut rng = StdRng::seed_from_u64(16_000);
    let senders = PENDING_SENDERS + PARKED_SENDERS + GAPPED_SENDERS + 128;
    let mut raws = Vec::new();
    for account in 0..PENDING_SENDERS {
        // Fee caps 100..300: about 6% sit in [100, 112) and flip when the base fee moves to 112.
        let fee_cap = rng.random_range(100..300);
        for nonce in 0..PER_SENDER {
            let tip = rng.random_range(2..50);
            raws.push(raw_tx(&mut rng, account, nonce, fee_cap, tip));
        }
    }
    for account in PENDING_SENDERS..PENDING_SENDERS + PARKED_SENDERS {
        for nonce in 0..PER_SENDER {
            let fee_cap = rng.random_range(50..100);
            raws.push(raw_tx(&mut rng, account, nonce, fee_cap, 5));
        }
    }
    for account in PENDING_SENDERS + PARKED_SENDERS..PENDING_SENDERS + PARKED_SENDERS + GAPPED_SENDERS {
        for nonce in 1..=PER_SENDER {
            raws.push(raw_tx(&mut rng, account, nonce, 200, 10));
        }
    }
    // The batch: 96 new senders paying well, 32 at exactly the base fee with no tip: each would be
    // the cheapest pending tx, so the pool refuses them as underpriced.
    let first_new = senders - 128;
    let validator = validator();
    let insert_batch = (0..128)
        .map(|i| {
            let (fee_cap, tip) = if i % 4 == 3 { (BASE_FEE, 0) } else { (300, rng.random_range(30..60)) };
            let raw = raw_tx(&mut rng, first_new + i, 0, fee_cap, tip);
            ValidTx { tx: validator.validate(raw).unwrap(), sender_state: funded(), epoch: 1 }
        })
        .collect();
    Workload { raws, insert_batch }
}

fn validator() -> Validator {
    Validator::new(ValidationConfig { min_priority_fee: 0, ..Default::default() })
}

fn saturated(work: &Workload) -> Pool {
    let limit = |max_txs| SubPoolLimit { max_txs, max_bytes: 64 << 20 };
    let config = PoolConfig { pending: limit((PENDING_SENDERS * PER_SENDER) as usize), ..Default::default() };
    let mut pool = Pool::new(config, ChainHead { block: 1, base_fee: BASE_FEE, blob_base_fee: 1 });
    let validator = validator();
    let now = Instant::now();
    let valid =
        |raw: &Bytes| ValidTx { tx: validator.validate(raw.clone()).unwrap(), sender_state: funded(), epoch: 0 };
    let txs: Vec<_> = work.raws.iter().map(valid).collect();
    for result in pool.add_batch(txs, now) {
        result.unwrap();
    }
    pool.take_events();
    let sizes = pool.sizes();
    assert_eq!((sizes.pending.count, sizes.basefee.count, sizes.queued.count), (11_200, 3_200, 1_600));
    pool
}

/// The block that mines the best ~100 pending txs and moves the base fee to 112.
fn block_update(pool: &Pool) -> BlockUpdate {
    let batch = next_block(pool, BASE_FEE, 30_000_000, usize::MAX, usize::MAX);
    let mined: Vec<_> = batch.txs.iter().take(100).collect();
    let accounts =
        mined.iter().map(|tx| (tx.sender(), AccountState::new(tx.nonce() + 1, U256::from(10u128.pow(21))))).collect();
    BlockUpdate {
        number: 2,
        base_fee: 112,
        blob_base_fee: 1,
        mined: mined.iter().map(|tx| tx.hash()).collect(),
        accounts,
        gas_limit: None,
        reinject: Vec::new(),
    }
}

fn memory_per_tx(work: &Workload) {
    // The raw bytes stay alive throughout, so what the pool adds is everything beyond them.
    let before = LIVE.load(Ordering::Relaxed);
    let pool = saturated(work);
    let after = LIVE.load(Ordering::Relaxed);
    let per_tx = (after - before) as f64 / pool.len() as f64;
    let encoded: usize = work.raws.iter().map(|raw| raw.len()).sum();
    eprintln!(
        "memory: {} pooled txs, {:.0} bytes each beyond their encoded size (mean encoded size {:.0} bytes)",
        pool.len(),
        per_tx,
        encoded as f64 / pool.len() as f64
    );
}

/// The hot pool's memory per pooled blob transaction (the pool holds its consensus form; the
/// sidecar is in the blob store), and the store's bytes per blob in memory and on disk.
fn memory_per_blob_tx() {
    const TXS: u64 = 1_000;
    const SIDECARS: u64 = 16;
    let sidecar = blob_sidecar(1, 1, 1);
    let consensus: Vec<Bytes> = (0..TXS)
        .map(|i| {
            let tx = TxEip4844 {
                chain_id: 1,
                gas_limit: 21_000,
                max_fee_per_gas: 1_000,
                max_priority_fee_per_gas: 10,
                to: Address::repeat_byte(0x44),
                max_fee_per_blob_gas: 100,
                ..Default::default()
            };
            blob::split_network_form(&Signer::dev(100_000 + i).sign_blob_tx(tx, &sidecar)).unwrap().consensus
        })
        .collect();
    let validator = validator();
    let txs: Vec<ValidTx> = consensus
        .iter()
        .map(|raw| ValidTx { tx: validator.validate_consensus(raw.clone()).unwrap(), sender_state: funded(), epoch: 0 })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut pool = Pool::new(PoolConfig::default(), ChainHead { block: 1, base_fee: BASE_FEE, blob_base_fee: 1 });
    for result in pool.add_batch(txs, Instant::now()) {
        result.unwrap();
    }
    let per_tx = (LIVE.load(Ordering::Relaxed) - before) as f64 / pool.len() as f64;
    let encoded = consensus.iter().map(|raw| raw.len()).sum::<usize>() as f64 / consensus.len() as f64;
    eprintln!(
        "memory: {} pooled blob txs, {per_tx:.0} bytes each beyond their encoded size (mean encoded size \
         {encoded:.0} bytes; blobs in the store)",
        pool.len()
    );

    let sidecars: Vec<Arc<_>> = (0..SIDECARS).map(|seed| Arc::new(blob_sidecar(1, 1, seed))).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let in_memory = BlobStore::in_memory();
    let copies: Vec<Arc<_>> = sidecars.iter().map(|s| Arc::new(s.as_ref().clone())).collect();
    for (i, sidecar) in copies.iter().enumerate() {
        in_memory.put(B256::with_last_byte(i as u8), sidecar).unwrap();
    }
    drop(copies); // the store holds the only references now
    let per_blob = (LIVE.load(Ordering::Relaxed) - before) as f64 / SIDECARS as f64;
    let dir = tempfile::tempdir().unwrap();
    let on_disk = BlobStore::open(dir.path()).unwrap();
    for (i, sidecar) in sidecars.iter().enumerate() {
        on_disk.put(B256::with_last_byte(i as u8), sidecar).unwrap();
    }
    let files: u64 = std::fs::read_dir(dir.path().join(tidepool::pool::BLOBS_DIR))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!(
        "blob store: {per_blob:.0} bytes per blob in memory, {:.0} on disk (a blob is 131,072 bytes; \
         with its commitment and 128 cell proofs)",
        files as f64 / SIDECARS as f64
    );
}

fn benches(c: &mut Criterion) {
    let work = workload();
    memory_per_tx(&work);
    memory_per_blob_tx();
    let pool = saturated(&work);
    let mut group = c.benchmark_group("pool");

    group.bench_function("insert_128_at_capacity", |b| {
        b.iter_batched_ref(
            || (pool.clone(), work.insert_batch.clone()),
            |(pool, batch)| {
                let results = pool.add_batch(std::mem::take(batch), Instant::now());
                black_box((results, pool.take_events()))
            },
            BatchSize::LargeInput,
        );
    });

    let update = block_update(&pool);
    group.bench_function("block_update_100_mined_base_fee_100_to_112", |b| {
        b.iter_batched_ref(
            || (pool.clone(), update.clone()),
            |(pool, update)| {
                pool.on_block(std::mem::take(update), Instant::now());
                black_box(pool.take_events())
            },
            BatchSize::LargeInput,
        );
    });

    group.bench_function("build_30m_gas_block", |b| {
        b.iter(|| black_box(next_block(&pool, BASE_FEE, 30_000_000, usize::MAX, usize::MAX)));
    });
    group.finish();

    let batch = next_block(&pool, BASE_FEE, 30_000_000, usize::MAX, usize::MAX);
    eprintln!("30M-gas block: {} txs, {} gas", batch.txs.len(), batch.gas);
    let mut probe = pool.clone();
    let results = probe.add_batch(work.insert_batch.clone(), Instant::now());
    let refused = results.iter().filter(|r| r.is_err()).count();
    eprintln!("insert batch: {} admitted, {refused} refused as underpriced", results.len() - refused);
}

criterion_group!(pool_benches, benches);
criterion_main!(pool_benches);
