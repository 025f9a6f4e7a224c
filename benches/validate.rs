//! Validation throughput: raw libsecp256k1 recovery vs full validation per transaction, the
//! worker pipeline with one vs two threads, a 6-blob network form against its KZG verification
//! alone, and ordinary throughput with and without a concurrent flood of bad-proof blob
//! transactions. Run: `cargo bench --bench validate`.
//! Transactions come from the seeded mainnet-like generator (blobs from seeded random data,
//! proofs by c-kzg), so this runs without `../shared`.

use std::{
    collections::VecDeque,
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use alloy_consensus::TxEip4844;
use alloy_eips::eip4844::env_settings::EnvKzgSettings;
use alloy_primitives::{Address, B256, Bytes};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secp256k1::{Message, SECP256K1, ecdsa::RecoverableSignature, ecdsa::RecoveryId};
use tidepool::{
    tx::{
        self,
        blob::{self as blob_form, BlobSidecar},
        generate::{TxMix, blob_sidecar},
        sign::Signer,
    },
    validate::{PipelineConfig, ValidationPipeline, Validator},
};

const TXS: usize = 2_048;

struct Fixture {
    raws: Vec<Bytes>,
    recoverable: Vec<(Message, RecoverableSignature)>,
}

fn fixture() -> Fixture {
    let mut mix = TxMix::new(2026, 512, 1);
    let raws: Vec<Bytes> = mix.take(TXS).into_iter().map(|t| t.raw).collect();
    let recoverable = raws
        .iter()
        .map(|raw| {
            let envelope = tx::decode(raw).unwrap().envelope;
            let sig = envelope.signature();
            let mut compact = [0u8; 64];
            compact[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
            compact[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
            let id = RecoveryId::from_u8_masked(u8::from(sig.v()));
            (
                Message::from_digest(envelope.signature_hash().0),
                RecoverableSignature::from_compact(&compact, id).unwrap(),
            )
        })
        .collect();
    Fixture { raws, recoverable }
}

fn per_tx(c: &mut Criterion) {
    let f = fixture();
    let validator = Validator::default();
    let mut group = c.benchmark_group("per_tx");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("raw_secp256k1_recovery", |b| {
        b.iter(|| {
            let (msg, sig) = &f.recoverable[i % TXS];
            i += 1;
            black_box(SECP256K1.recover_ecdsa(*msg, sig).unwrap())
        });
    });
    let mut i = 0;
    group.bench_function("full_validation", |b| {
        b.iter(|| {
            let raw = f.raws[i % TXS].clone();
            i += 1;
            black_box(validator.validate(raw).unwrap())
        });
    });
    group.finish();
}

/// A pipeline without a recent-verdict cache: every submission is validated again.
fn uncached_pipeline(workers: usize) -> ValidationPipeline {
    let config =
        PipelineConfig { workers, queue_capacity: 1_024, recent_capacity: 0, recent_bytes: 0, ..Default::default() };
    ValidationPipeline::new(Validator::default(), config)
}

/// Validates every transaction of `raws` through `pipeline`, waiting on the oldest verdict when
/// the queue pushes back.
fn validate_all(pipeline: &ValidationPipeline, raws: &[Bytes]) {
    let mut pending = VecDeque::with_capacity(raws.len());
    for raw in raws {
        loop {
            match pipeline.submit(raw.clone()) {
                Ok(verdict) => break pending.push_back(verdict),
                // Backpressure: wait for the oldest verdict, then retry.
                Err(_) => black_box(pending.pop_front().expect("queue full means work in flight").wait().unwrap()),
            };
        }
    }
    for verdict in pending {
        black_box(verdict.wait().unwrap());
    }
}

fn pipeline(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    for workers in [1, 2] {
        let pipeline = uncached_pipeline(workers);
        group.bench_function(format!("{workers}_workers"), |b| b.iter(|| validate_all(&pipeline, &f.raws)));
    }
    group.finish();
}

/// A blob transaction from dev key `account` at `nonce` carrying `sidecar`, in its network form.
fn blob_tx(account: u64, nonce: u64, sidecar: &BlobSidecar) -> Bytes {
    let tx = TxEip4844 {
        chain_id: 1,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: Address::with_last_byte(0xaa),
        max_fee_per_blob_gas: 1_000_000_000,
        ..Default::default()
    };
    Signer::dev(account).sign_blob_tx(tx, sidecar)
}

/// A 6-blob network form (cell proofs, as from Osaka): full validation against the KZG
/// verification alone, on the same sidecar.
fn blobs(c: &mut Criterion) {
    let sidecar = blob_sidecar(6, 1, 6);
    let raw = blob_tx(1, 0, &sidecar);
    let hashes: Vec<B256> = sidecar.versioned_hashes().collect();
    let validator = Validator::default();
    let kzg = EnvKzgSettings::Default.get();
    let mut group = c.benchmark_group("blob_6");
    group.throughput(Throughput::Elements(1)).sample_size(20);
    group.bench_function("kzg_verification_alone", |b| b.iter(|| sidecar.validate(black_box(&hashes), kzg).unwrap()));
    group.bench_function("network_form_validation", |b| {
        b.iter(|| black_box(validator.validate(raw.clone()).unwrap()));
    });
    group.finish();
}

/// Ordinary transactions through the default pipeline (two workers and one blob worker), alone
/// and while another thread keeps the blob queue full of 6-blob transactions with bad proofs.
fn flood(c: &mut Criterion) {
    let f = fixture();
    let mut swapped = blob_sidecar(6, 1, 7);
    if let BlobSidecar::Eip7594(s) = &mut swapped {
        s.cell_proofs.swap(0, 1); // valid points, wrong cells: the proofs fail, after the full work
    }
    let bad: Vec<Bytes> = (0..8).map(|nonce| blob_tx(2, nonce, &swapped)).collect();
    assert!(blob_form::is_network_form(&bad[0]));
    let pipeline = Arc::new(uncached_pipeline(2));
    let mut group = c.benchmark_group("ordinary_2048");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function("alone", |b| b.iter(|| validate_all(&pipeline, &f.raws)));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (pipeline, stop) = (Arc::clone(&pipeline), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut pending = VecDeque::new();
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                match pipeline.submit(bad[next % bad.len()].clone()) {
                    Ok(verdict) => pending.push_back(verdict),
                    // The blob queue is full: that is the flood's ceiling.
                    Err(_) => match pending.pop_front() {
                        Some(verdict) => drop(black_box(verdict.wait())),
                        None => std::thread::yield_now(),
                    },
                }
                next += 1;
            }
            for verdict in pending {
                drop(verdict.wait());
            }
        })
    };
    group.bench_function("during_bad_proof_flood", |b| b.iter(|| validate_all(&pipeline, &f.raws)));
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    let stats = pipeline.stats();
    eprintln!("flood: {} bad proofs refused meanwhile", stats.blob_proofs_failed);
    group.finish();
}

criterion_group!(benches, per_tx, pipeline, blobs, flood);
criterion_main!(benches);
