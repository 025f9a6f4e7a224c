//! Following a real EVM node: anvil (Foundry, pinned in `tools/package.json`) as the upstream of
//! a library-built Tidepool. State is loaded from it, its blocks drop and settle pooled
//! transactions, its reorgs put transactions back, and its absence is a typed refusal.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address, b256};
use jsonrpsee::{
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use tidepool::{
    Origin, SubmitError, Tidepool, TidepoolConfig,
    follow::{Follow, FollowConfig},
    ingest::IngestError,
    pool::{PoolEvent, RemovalReason, SubPool},
    state::StateError,
    tx::sign::Signer,
    validate::ValidationConfig,
};

const ANVIL_CHAIN_ID: u64 = 31337;
/// anvil's first two prefunded development keys (public test keys).
const KEY_0: B256 = b256!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
const KEY_1: B256 = b256!("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const RECIPIENT: Address = address!("00000000000000000000000000000000000000aa");
const WAIT: Duration = Duration::from_secs(20);

/// anvil on `port`, killed when dropped.
struct Anvil(Child);

impl Anvil {
    async fn start(binary: &Path, port: u16) -> Self {
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        let anvil = Self(child);
        let client = client(port);
        let deadline = tokio::time::Instant::now() + WAIT;
        while client.request::<U256, _>("eth_chainId", rpc_params![]).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "anvil did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anvil
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(port: u16) -> HttpClient {
    HttpClientBuilder::default().build(format!("http://127.0.0.1:{port}")).unwrap()
}

fn transfer(key: B256, nonce: u64, value: u64) -> Bytes {
    Signer::from_bytes(key).unwrap().sign_tx(TxEip1559 {
        chain_id: ANVIL_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(RECIPIENT),
        value: U256::from(value),
        input: Bytes::new(),
        access_list: Default::default(),
    })
}

/// A Tidepool following the anvil on `port`.
async fn follow(port: u16) -> Tidepool {
    let mut config = FollowConfig::new(&format!("http://127.0.0.1:{port}"), ANVIL_CHAIN_ID);
    config.poll_every = Duration::from_millis(100);
    config.timeout = Duration::from_millis(500);
    let follow = Follow::connect(config).await.expect("follows anvil");
    let tidepool = Tidepool::builder(follow.state(), follow.head())
        .config(TidepoolConfig {
            validation: ValidationConfig { chain_id: ANVIL_CHAIN_ID, ..Default::default() },
            ..Default::default()
        })
        .start()
        .await
        .unwrap();
    tokio::spawn(follow.run(tidepool.chain()));
    tidepool
}

async fn send_to_anvil(port: u16, raw: &Bytes) -> B256 {
    client(port).request("eth_sendRawTransaction", rpc_params![raw]).await.expect("anvil takes it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_comes_from_anvil_and_its_blocks_settle_the_pool() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let tidepool = follow(port).await;
    let mut events = tidepool.reader().subscribe();

    // A sender Tidepool has never seen: its state is loaded from anvil (10,000 ether, nonce 0).
    let pooled = transfer(KEY_0, 0, 1);
    let added = tidepool.submitter().submit(pooled.clone(), Origin::Local).await.expect("funded on anvil");
    assert_eq!(added.subpool, SubPool::Pending);

    // The same nonce sent straight to anvil is mined there: within a block the pooled one
    // leaves, with its reason.
    send_to_anvil(port, &transfer(KEY_0, 0, 2)).await;
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(PoolEvent::Removed { hash, reason, .. }) = events.recv().await
                && hash == added.hash
            {
                return reason;
            }
        }
    })
    .await
    .expect("the pooled transaction leaves");
    assert!(matches!(reason, RemovalReason::Invalidated { .. }), "{reason:?}");
    assert_eq!(tidepool.reader().pending_nonce(&Signer::from_bytes(KEY_0).unwrap().address()).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_on_anvil_puts_the_dropped_transaction_back() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let tidepool = follow(port).await;
    let upstream = client(port);

    let snapshot: U256 = upstream.request("evm_snapshot", rpc_params![]).await.unwrap();
    let raw = transfer(KEY_1, 0, 3);
    let hash = send_to_anvil(port, &raw).await;
    // Mined on anvil; the follower sees it mined (never pooled here).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(tidepool.reader().get(&hash).is_none());
    // Back to before that block, and another block on top: the one with `raw` is dropped.
    let reverted: bool = upstream.request("evm_revert", rpc_params![snapshot]).await.unwrap();
    assert!(reverted);
    let _: String = upstream.request("evm_mine", rpc_params![]).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tidepool.reader().get(&hash).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the dropped transaction did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tidepool.reader().get(&hash).unwrap().subpool, SubPool::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_upstream_unknown_senders_get_state_unavailable_and_reads_go_on() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let anvil = Anvil::start(&binary, port).await;
    let tidepool = follow(port).await;
    drop(anvil);

    let started = std::time::Instant::now();
    let refused = tidepool.submitter().submit(transfer(KEY_1, 0, 1), Origin::Local).await.unwrap_err();
    assert!(
        matches!(refused, SubmitError::Ingest(IngestError::State(StateError::Unavailable(_)))),
        "{refused:?} ({})",
        refused.kind()
    );
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the timeouts: {:?}", started.elapsed());
    assert_eq!(tidepool.reader().sizes().pending.count, 0, "reads answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_on_another_chain_stops_the_start() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let error = Follow::connect(FollowConfig::new(&format!("http://127.0.0.1:{port}"), 1)).await.unwrap_err();
    assert_eq!(error.kind(), "wrong_chain", "{error}");
    assert!(error.to_string().contains("31337"), "{error}");
}
