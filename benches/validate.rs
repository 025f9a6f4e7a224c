//! Validation throughput: raw libsecp256k1 recovery vs full validation per transaction, and the
//! worker pipeline with one vs two threads. Run: `cargo bench --bench validate`.
//! Transactions come from the seeded mainnet-like generator, so this runs without `../shared`.

use std::{collections::VecDeque, hint::black_box, time::Duration};

use alloy_primitives::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secp256k1::{Message, SECP256K1, ecdsa::RecoverableSignature, ecdsa::RecoveryId};
use tidepool::{
    tx::{self, generate::TxMix},
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

fn pipeline(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    for workers in [1, 2] {
        // No recent-verdict cache: every iteration must validate every transaction again.
        let config = PipelineConfig { workers, queue_capacity: 1_024, recent_capacity: 0, recent_bytes: 0 };
        let pipeline = ValidationPipeline::new(Validator::default(), config);
        group.bench_function(format!("{workers}_workers"), |b| {
            b.iter(|| {
                let mut pending = VecDeque::with_capacity(TXS);
                for raw in &f.raws {
                    loop {
                        match pipeline.submit(raw.clone()) {
                            Ok(verdict) => break pending.push_back(verdict),
                            // Backpressure: wait for the oldest verdict, then retry.
                            Err(_) => {
                                black_box(pending.pop_front().expect("queue full means work in flight").wait().unwrap())
                            }
                        };
                    }
                }
                for verdict in pending {
                    black_box(verdict.wait().unwrap());
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_tx, pipeline);
criterion_main!(benches);
