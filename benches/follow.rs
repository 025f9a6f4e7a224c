//! Following a real EVM node: anvil (pinned in `tools/package.json`) on loopback as the upstream.
//! Run: `cargo bench --bench follow` (after `npm ci --prefix tools`).
//!
//! - `head_to_pool/200_senders`: anvil mines a block of 200 transactions from 200 senders the pool
//!   holds (each also holds its next nonce); timed from the block's existence to the pool
//!   updated: the follower reads the head with its transactions, reads the 200 accounts at the
//!   new head (touched, and the rolling refresh), and the pool applies the update. The poll
//!   interval (250 ms by default) comes on top of this when following over HTTP.
//! - `first_seen_senders/{in_memory,anvil}`: 1,000 transactions from 1,000 senders never seen,
//!   submitted at once, until every one is answered: against in-memory state, and against
//!   anvil's state (loaded in batches), in the same run. The difference is the cost of loading.
//!
//! Percentiles (p50/p99) of the head-to-pool iterations are printed after the group.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tidepool::{
    Origin, Tidepool, TidepoolConfig,
    follow::{Follow, FollowConfig, Upstream},
    pool::{PoolConfig, SubPoolLimit},
    state::{AccountState, InMemoryState},
    tx::sign::Signer,
    validate::ValidationConfig,
};
use tokio::runtime::Runtime;

const CHAIN_ID: u64 = 31337;
const BLOCK_SENDERS: usize = 200;
const FIRST_SEEN: usize = 1_000;
const RICH: u128 = 10u128.pow(24);

/// anvil from `$TIDEPOOL_ANVIL` or the pinned npm install; `None` after saying why (under
/// `CI=true` its absence fails the run instead).
fn anvil_binary() -> Option<PathBuf> {
    let path = std::env::var_os("TIDEPOOL_ANVIL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
        PathBuf::from,
    );
    if path.exists() {
        return Some(path);
    }
    let message =
        format!("anvil not found at {} (run `npm ci --prefix tools`, or set $TIDEPOOL_ANVIL)", path.display());
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{message}: CI must run this benchmark's smoke run");
    eprintln!("SKIPPED: {message}");
    None
}

/// anvil mining only when asked, killed (and its state files removed) when dropped.
struct Anvil {
    child: Child,
    url: String,
    upstream: Upstream,
    _state: tempfile::TempDir,
}

impl Anvil {
    fn start(rt: &Runtime, binary: &PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let state = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--silent", "--no-mining", "--order", "fifo"])
            .env("HOME", state.path()) // anvil keeps its temporary state under $HOME/.foundry
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        let url = format!("http://127.0.0.1:{port}");
        let upstream = Upstream::new(&url, Duration::from_secs(10)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while rt.block_on(upstream.chain_id()).is_err() {
            assert!(Instant::now() < deadline, "anvil did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url, upstream, _state: state }
    }

    async fn call(&self, method: &str, params: Vec<Value>) -> Value {
        self.upstream.forward(method, params).await.unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    async fn fund(&self, addresses: &[Address]) {
        for address in addresses {
            self.call("anvil_setBalance", vec![json!(address), json!(format!("{RICH:#x}"))]).await;
        }
    }

    async fn mine(&self, raws: &[Bytes]) {
        for raw in raws {
            self.call("eth_sendRawTransaction", vec![json!(raw)]).await;
        }
        self.call("evm_mine", vec![]).await;
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Synthetic senders: `count` keys from `seed` (none of anvil's own accounts).
fn signers(seed: &str, count: usize) -> Vec<Signer> {
    (0..count).map(|i| Signer::from_bytes(keccak256(format!("{seed}/{i}"))).unwrap()).collect()
}

fn transfer(signer: &Signer, nonce: u64) -> Bytes {
    signer.sign_tx(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0xaa)),
        value: U256::from(1),
        input: Bytes::new(),
        access_list: Default::default(),
    })
}

fn config() -> TidepoolConfig {
    let roomy = SubPoolLimit { max_txs: 1_000_000, max_bytes: 1 << 30 };
    TidepoolConfig {
        validation: ValidationConfig { chain_id: CHAIN_ID, ..Default::default() },
        pool: PoolConfig { pending: roomy, basefee: roomy, queued: roomy, ..Default::default() },
        ..Default::default()
    }
}

/// Submits every transaction at once; panics unless all are accepted.
async fn submit_all(tidepool: &Tidepool, raws: &[Bytes]) {
    let submitter = tidepool.submitter();
    let answers = futures::future::join_all(raws.iter().map(|raw| submitter.submit(raw.clone(), Origin::Local))).await;
    for answer in answers {
        answer.expect("accepted");
    }
}

fn head_to_pool(c: &mut Criterion, rt: &Runtime, anvil: &Anvil) {
    let senders = signers("head_to_pool", BLOCK_SENDERS);
    let addresses: Vec<Address> = senders.iter().map(Signer::address).collect();
    rt.block_on(anvil.fund(&addresses));
    rt.block_on(anvil.mine(&[]));
    let mut follow = rt.block_on(Follow::connect(FollowConfig::new(&anvil.url, CHAIN_ID))).unwrap();
    let tidepool = rt.block_on(Tidepool::builder(follow.state(), follow.head()).config(config()).start()).unwrap();
    let chain = tidepool.chain();
    let txs_at = |nonce: u64| senders.iter().map(|s| transfer(s, nonce)).collect::<Vec<_>>();
    rt.block_on(submit_all(&tidepool, &txs_at(0)));
    let mut nonce = 0;
    let samples = Arc::new(Mutex::new(Vec::new()));

    c.bench_function("head_to_pool/200_senders", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Not timed: the pool holds nonce n and n+1 of every sender; anvil mines n.
                rt.block_on(submit_all(&tidepool, &txs_at(nonce + 1)));
                rt.block_on(anvil.mine(&txs_at(nonce)));
                let started = Instant::now();
                let update = rt.block_on(follow.step(&chain)).expect("anvil answers").expect("a new head");
                assert_eq!(update.mined.len(), BLOCK_SENDERS);
                let refused = chain.on_block(update);
                let took = started.elapsed();
                assert!(refused.is_empty());
                assert_eq!(tidepool.reader().sizes().pending.count, BLOCK_SENDERS, "each holds its next nonce");
                samples.lock().unwrap().push(took);
                total += took;
                nonce += 1;
            }
            total
        });
    });
    print_percentiles("head_to_pool/200_senders", &mut samples.lock().unwrap());
}

fn print_percentiles(name: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    if !samples.is_empty() {
        println!("{name}: {} iterations, p50 {:?}, p99 {:?}", samples.len(), at(0.5), at(0.99));
    }
}

fn first_seen_senders(c: &mut Criterion, rt: &Runtime, anvil: &Anvil) {
    let mut follow = rt.block_on(Follow::connect(FollowConfig::new(&anvil.url, CHAIN_ID))).unwrap();
    let remote = rt.block_on(Tidepool::builder(follow.state(), follow.head()).config(config()).start()).unwrap();
    let memory_state = Arc::new(InMemoryState::new());
    let memory = rt.block_on(Tidepool::builder(memory_state.clone(), follow.head()).config(config()).start()).unwrap();
    let chain = remote.chain();
    let mut round = 0;
    // Fresh senders for every iteration: funded on anvil (and in memory), then a new head so
    // the follower reads state where the funding is.
    let mut fresh = |with_anvil: bool| {
        round += 1;
        let senders = signers(&format!("first_seen/{round}"), FIRST_SEEN);
        let addresses: Vec<Address> = senders.iter().map(Signer::address).collect();
        if with_anvil {
            rt.block_on(anvil.fund(&addresses));
            rt.block_on(anvil.mine(&[]));
            let update = rt.block_on(follow.step(&chain)).unwrap().expect("a new head");
            chain.on_block(update);
        }
        for address in &addresses {
            memory_state.set(*address, AccountState::new(0, U256::from(RICH)));
        }
        senders.iter().map(|s| transfer(s, 0)).collect::<Vec<_>>()
    };
    let mut group = c.benchmark_group("first_seen_senders");
    group.sample_size(10);
    for (name, tidepool, with_anvil) in [("in_memory", &memory, false), ("anvil", &remote, true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let raws = fresh(with_anvil);
                    let started = Instant::now();
                    rt.block_on(submit_all(tidepool, &raws));
                    total += started.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let Some(binary) = anvil_binary() else { return };
    let rt = Runtime::new().unwrap();
    let anvil = Anvil::start(&rt, &binary);
    head_to_pool(c, &rt, &anvil);
    first_seen_senders(c, &rt, &anvil);
}

criterion_group! {
    name = follow;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(10));
    targets = benches
}
criterion_main!(follow);
