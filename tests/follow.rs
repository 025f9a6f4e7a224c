//! Following a real EVM node: anvil (Foundry, pinned in `tools/package.json`) as the upstream of
//! a library-built Tidepool. State is loaded from it, its blocks drop and settle pooled
//! transactions, its reorgs put transactions back, and its absence is a typed refusal.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use alloy_consensus::{TxEip1559, TxEip7702};
use alloy_eips::eip7702::Authorization;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address, b256};
use jsonrpsee::{
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use tidepool::{
    Origin, SubmitError, Tidepool, TidepoolConfig,
    follow::{Follow, FollowConfig, FollowStats},
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
const KEY_2: B256 = b256!("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const RECIPIENT: Address = address!("00000000000000000000000000000000000000aa");
const WAIT: Duration = Duration::from_secs(20);

/// anvil on `port`, killed when dropped.
struct Anvil(Child);

impl Anvil {
    async fn start(binary: &Path, port: u16) -> Self {
        Self::start_with(binary, port, &[]).await
    }

    async fn start_with(binary: &Path, port: u16, extra: &[&str]) -> Self {
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--silent"])
            .args(extra)
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
    transfer_priced(key, nonce, value, 1)
}

/// A transfer whose fee cap and tip are `times` the usual (for replacements).
fn transfer_priced(key: B256, nonce: u64, value: u64, times: u128) -> Bytes {
    Signer::from_bytes(key).unwrap().sign_tx(TxEip1559 {
        chain_id: ANVIL_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000 * times,
        max_priority_fee_per_gas: 1_000_000_000 * times,
        to: TxKind::Call(RECIPIENT),
        value: U256::from(value),
        input: Bytes::new(),
        access_list: Default::default(),
    })
}

/// A Tidepool following the anvil on `port`.
async fn follow(port: u16) -> Tidepool {
    follow_with(port, |_| {}).await.0
}

/// A Tidepool following the anvil on `port` with `configure`d follower, and its stats.
async fn follow_with(port: u16, configure: impl FnOnce(&mut FollowConfig)) -> (Tidepool, Arc<FollowStats>) {
    let mut config = FollowConfig::new(&format!("http://127.0.0.1:{port}"), ANVIL_CHAIN_ID);
    config.poll_every = Duration::from_millis(100);
    config.timeout = Duration::from_millis(500);
    configure(&mut config);
    let follow = Follow::connect(config).await.expect("follows anvil");
    let stats = follow.stats();
    let tidepool = pool_on(&follow).await;
    tokio::spawn(follow.run(tidepool.chain()));
    (tidepool, stats)
}

/// A Tidepool on the follower's state and head (not yet following: run or step it).
async fn pool_on(follow: &Follow) -> Tidepool {
    Tidepool::builder(follow.state(), follow.head())
        .config(TidepoolConfig {
            validation: ValidationConfig { chain_id: ANVIL_CHAIN_ID, ..Default::default() },
            ..Default::default()
        })
        .start()
        .await
        .unwrap()
}

async fn anvil_call(port: u16, method: &str, params: jsonrpsee::core::params::ArrayParams) -> serde_json::Value {
    client(port).request(method, params).await.unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Waits until `hash` is in `subpool` (`None`: gone).
async fn wait_until_in(tidepool: &Tidepool, hash: B256, subpool: Option<SubPool>, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tidepool.reader().get(&hash).map(|info| info.subpool) != subpool {
        assert!(tokio::time::Instant::now() < deadline, "{what}: {:?}", tidepool.reader().get(&hash));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// Block by block (anvil mining only when asked, the follower stepped by hand), the state the
/// pool holds for each of its senders equals anvil's: nonces the follower derives from the
/// mined transactions, balances it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_every_block_the_pools_senders_agree_with_anvil() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start_with(&binary, port, &["--no-mining", "--order", "fifo"]).await;
    let mut follow =
        Follow::connect(FollowConfig::new(&format!("http://127.0.0.1:{port}"), ANVIL_CHAIN_ID)).await.unwrap();
    let tidepool = pool_on(&follow).await;
    let chain = tidepool.chain();
    let keys = [KEY_0, KEY_1, KEY_2];
    for nonce in 0..3 {
        for key in keys {
            tidepool.submitter().submit(transfer(key, nonce, 1_000 + nonce), Origin::Local).await.unwrap();
        }
    }
    for block in 0..3u64 {
        // Each block mines one transaction of each sender.
        for key in keys {
            send_to_anvil(port, &transfer(key, block, 1_000 + block)).await;
        }
        anvil_call(port, "evm_mine", rpc_params![]).await;
        let update = follow.step(&chain).await.unwrap().expect("a new head");
        assert!(chain.on_block(update).is_empty());
        let held = chain.senders();
        assert_eq!(held.len(), if block < 2 { keys.len() } else { 0 }, "block {block}");
        for (address, state) in held {
            let nonce: U256 =
                client(port).request("eth_getTransactionCount", rpc_params![address, "latest"]).await.unwrap();
            let balance: U256 = client(port).request("eth_getBalance", rpc_params![address, "latest"]).await.unwrap();
            assert_eq!((U256::from(state.nonce), state.balance), (nonce, balance), "{address} after block {block}");
        }
    }
}

/// Over WebSocket the upstream announces its heads: with the poll set to 30 s, a block still
/// reaches the pool within moments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_websocket_new_heads_reach_the_pool_without_waiting_for_the_poll() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let (tidepool, _) = follow_with(port, |config| {
        config.url = format!("ws://127.0.0.1:{port}");
        config.poll_every = Duration::from_secs(30);
    })
    .await;
    let pooled = tidepool.submitter().submit(transfer(KEY_0, 0, 1), Origin::Local).await.expect("state over ws");
    let started = std::time::Instant::now();
    send_to_anvil(port, &transfer(KEY_0, 0, 2)).await;
    wait_until_in(&tidepool, pooled.hash, None, "the block announced over WebSocket").await;
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}: the 30-s poll did it", started.elapsed());
}

/// A reorg deeper than the blocks the follower keeps: nothing kept says what changed, so every
/// pooled sender is read again. Here a sender's nonce 0 was mined on the dropped branch (which
/// made its pooled nonce 1 pending); on the new chain it is not, so nonce 1 waits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_kept_reloads_every_pooled_sender() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let (tidepool, stats) = follow_with(port, |config| config.recent_blocks = 2).await;
    let gapped = tidepool.submitter().submit(transfer(KEY_1, 1, 1), Origin::Local).await.unwrap();
    assert_eq!(gapped.subpool, SubPool::Queued);

    let snapshot = anvil_call(port, "evm_snapshot", rpc_params![]).await;
    send_to_anvil(port, &transfer(KEY_1, 0, 1)).await;
    wait_until_in(&tidepool, gapped.hash, Some(SubPool::Pending), "nonce 0 mined on anvil").await;
    for _ in 0..3 {
        anvil_call(port, "evm_mine", rpc_params![]).await;
    }
    // The follower has applied them all: the block with nonce 0 is no longer kept.
    let head: U256 = client(port).request("eth_blockNumber", rpc_params![]).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while U256::from(tidepool.chain().head().block) < head {
        assert!(tokio::time::Instant::now() < deadline, "the follower did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(anvil_call(port, "evm_revert", rpc_params![snapshot]).await, true);
    for _ in 0..5 {
        anvil_call(port, "evm_mine", rpc_params![]).await;
    }
    wait_until_in(&tidepool, gapped.hash, Some(SubPool::Queued), "the sender's nonce is 0 again").await;
    assert!(stats.deep_reorgs.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

/// A balance that moves where no block shows it (here `anvil_setBalance`; on a real chain, a
/// contract spending a delegated account's balance): the rolling refresh of pooled senders sees
/// it within a block, and the pooled transaction waits as unaffordable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_moved_outside_any_transaction_of_the_sender_is_seen_within_a_block() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let tidepool = follow(port).await;
    let pooled = tidepool.submitter().submit(transfer(KEY_1, 0, 1), Origin::Local).await.unwrap();
    assert_eq!(pooled.subpool, SubPool::Pending);
    let sender = Signer::from_bytes(KEY_1).unwrap().address();
    anvil_call(port, "anvil_setBalance", rpc_params![sender, "0x0"]).await;
    anvil_call(port, "evm_mine", rpc_params![]).await;
    wait_until_in(&tidepool, pooled.hash, Some(SubPool::Queued), "the sender is broke").await;
}

/// EIP-3607: a sender with contract code is refused, whatever it signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_contract_code_is_refused() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let tidepool = follow(port).await;
    let sender = Signer::from_bytes(KEY_1).unwrap().address();
    anvil_call(port, "anvil_setCode", rpc_params![sender, "0x600160005500"]).await;
    let refused = tidepool.submitter().submit(transfer(KEY_1, 0, 1), Origin::Local).await.unwrap_err();
    assert_eq!(refused.kind(), "sender_not_eoa", "{refused}");
    assert_eq!(tidepool.reader().sizes().pending.count + tidepool.reader().sizes().queued.count, 0);
}

/// EIP-7702 on anvil: another account sends the authorization that delegates a pooled sender.
/// The follower reads the authority (its nonce moved without its sending anything): its pooled
/// transaction at the used nonce leaves, and from then on it may hold one transaction, at its
/// next nonce, which it may still replace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_sender_is_held_to_one_transaction_in_flight() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let tidepool = follow(port).await;
    let submit = |raw: Bytes| {
        let submitter = tidepool.submitter();
        async move { submitter.submit(raw, Origin::Local).await }
    };
    let before = submit(transfer(KEY_2, 0, 1)).await.expect("an EOA");
    let second = submit(transfer(KEY_2, 1, 1)).await.expect("an EOA holds many");

    let authority = Signer::from_bytes(KEY_2).unwrap();
    let delegate = address!("00000000000000000000000000000000000000bb");
    let authorization = authority.sign_authorization(Authorization {
        chain_id: U256::from(ANVIL_CHAIN_ID),
        address: delegate,
        nonce: 0,
    });
    let delegation = Signer::from_bytes(KEY_0).unwrap().sign_tx(TxEip7702 {
        chain_id: ANVIL_CHAIN_ID,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: RECIPIENT,
        value: U256::ZERO,
        input: Bytes::new(),
        access_list: Default::default(),
        authorization_list: vec![authorization],
    });
    let delegation = send_to_anvil(port, &delegation).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while anvil_call(port, "eth_getTransactionReceipt", rpc_params![delegation]).await.is_null() {
        assert!(tokio::time::Instant::now() < deadline, "anvil did not mine the delegation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let code = anvil_call(port, "eth_getCode", rpc_params![authority.address(), "latest"]).await;
    assert_eq!(
        code.as_str().unwrap(),
        format!("0xef0100{}", alloy_primitives::hex::encode(delegate)),
        "anvil delegated it"
    );
    wait_until_in(&tidepool, before.hash, None, "the authorization used nonce 0").await;

    // Held already: nonce 1 (pooled while an EOA) stays; nothing more is admitted...
    let refused = submit(transfer(KEY_2, 2, 1)).await.unwrap_err();
    assert_eq!(refused.kind(), "delegated_in_flight", "{refused}");
    // ...but the one in flight can be replaced.
    let replaced = submit(transfer_priced(KEY_2, 1, 1, 2)).await.expect("a replacement");
    assert_eq!(replaced.replaced, Some(second.hash));
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

/// `tidepool node --follow --follow-forward` beside anvil, driven by Foundry's `cast` as a user
/// would: transfers, a contract deployment and calls (one reverting) are validated by Tidepool
/// with anvil's state, forwarded, executed by anvil's EVM, and read back through Tidepool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_works_through_a_node_that_follows_anvil() {
    let (Some(binary), Some(cast)) = (common::anvil(), common::cast()) else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let dir = tempfile::tempdir().unwrap();
    let node = follow_node(dir.path(), port).await;
    cast_session(&node, port, &cast).await;
    node.stop().await;
}

/// Build mode: anvil mines only when Tidepool asks, and mines what Tidepool's builder feed
/// ordered; the same `cast` session works end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_build_mode_anvil_executes_the_blocks_tidepool_orders() {
    let (Some(binary), Some(cast)) = (common::anvil(), common::cast()) else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start_with(&binary, port, &["--no-mining", "--order", "fifo"]).await;
    let dir = tempfile::tempdir().unwrap();
    let node = common::node::start_node(dir.path(), |c| {
        c.follow = Some(format!("http://127.0.0.1:{port}"));
        c.follow_build = true;
        c.block_time = 0.3;
        c.chain_id = ANVIL_CHAIN_ID;
        c.validation.chain_id = ANVIL_CHAIN_ID;
    })
    .await;
    cast_session(&node, port, &cast).await;
    assert!(metric_value(&node, "tidepool_blocks_total") >= 4.0, "Tidepool had anvil mine its blocks");
    node.stop().await;
}

/// Build mode refuses an upstream that mines by itself, naming the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_mode_refuses_an_upstream_that_mines_by_itself() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = tidepool::node::NodeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        follow: Some(format!("http://127.0.0.1:{port}")),
        follow_build: true,
        chain_id: ANVIL_CHAIN_ID,
        ..Default::default()
    };
    config.validation.chain_id = ANVIL_CHAIN_ID;
    let error = tidepool::node::Node::start(config).await.err().expect("the start is refused").to_string();
    assert!(error.contains("mines blocks by itself"), "{error}");
}

/// A user's session with `cast` against `node`: a transfer, a contract deployed, a call that
/// stores, a call that reverts (still mined), and nonces that agree with anvil's.
async fn cast_session(node: &tidepool::node::Node, port: u16, cast: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new(cast)
            .args(args)
            .env("ETH_RPC_URL", format!("http://{}", node.rpc_addr()))
            .output()
            .expect("cast runs");
        assert!(output.status.success(), "cast {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let key = KEY_0.to_string();
    let sender = Signer::from_bytes(KEY_0).unwrap().address().to_string();

    let receipt: serde_json::Value =
        serde_json::from_str(&run(&["send", "--json", "--private-key", &key, &RECIPIENT.to_string(), "--value", "7"]))
            .unwrap();
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    // A contract whose code stores its calldata's first word and reverts when it is zero:
    // PUSH1 0 CALLDATALOAD DUP1 PUSH1 0x0b JUMPI PUSH1 0 DUP1 REVERT JUMPDEST PUSH1 0 SSTORE STOP
    let runtime = "60003580600b57600080fd5b60005500";
    // PUSH16 <runtime> PUSH1 0 MSTORE PUSH1 16 PUSH1 16 RETURN
    let init = format!("0x6f{runtime}60005260106010f3");
    let deployed: serde_json::Value =
        serde_json::from_str(&run(&["send", "--json", "--private-key", &key, "--create", &init])).unwrap();
    assert_eq!(deployed["status"], "0x1", "{deployed}");
    let contract = deployed["contractAddress"].as_str().expect("a contract address").to_owned();
    assert_eq!(run(&["code", &contract]), format!("0x{runtime}"), "anvil's EVM ran the deployment");
    let stored: serde_json::Value = serde_json::from_str(&run(&[
        "send",
        "--json",
        "--private-key",
        &key,
        &contract,
        "0x000000000000000000000000000000000000000000000000000000000000002a",
    ]))
    .unwrap();
    assert_eq!(stored["status"], "0x1");
    assert_eq!(run(&["storage", &contract, "0"]), format!("{:#066x}", 42));
    // A call that reverts is still mined (a revert is not a failure of the pool), with an
    // explicit gas limit since estimation refuses to estimate a revert.
    let reverted: serde_json::Value = serde_json::from_str(&run(&[
        "send",
        "--json",
        "--private-key",
        &key,
        "--gas-limit",
        "100000",
        &contract,
        "0x0000000000000000000000000000000000000000000000000000000000000000",
    ]))
    .unwrap();
    assert_eq!(reverted["status"], "0x0", "{reverted}");
    // Tidepool's view of the sender equals anvil's after the blocks.
    let anvil_nonce: U256 =
        client(port).request("eth_getTransactionCount", rpc_params![&sender, "latest"]).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pending = node.reader().pending_nonce(&sender.parse().unwrap()).await.unwrap();
        if U256::from(pending) == anvil_nonce {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "tidepool {pending}, anvil {anvil_nonce}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(anvil_nonce, U256::from(4));
}

/// 1,000 transactions from 100 accounts, submitted to Tidepool's JSON-RPC, forwarded in order: anvil mines
/// every one, in nonce order, and Tidepool sees each mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_transactions_from_a_hundred_accounts_are_all_mined() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let _anvil = Anvil::start(&binary, port).await;
    // Our own 100 senders, funded by anvil's first account.
    let dir = tempfile::tempdir().unwrap();
    let node = follow_node(dir.path(), port).await;
    let senders: Vec<B256> = (1..=100u64).map(|i| alloy_primitives::keccak256(i.to_be_bytes())).collect();
    for (i, secret) in senders.iter().enumerate() {
        let to = Signer::from_bytes(*secret).unwrap().address();
        let fund = Signer::from_bytes(KEY_0).unwrap().sign_tx(TxEip1559 {
            chain_id: ANVIL_CHAIN_ID,
            nonce: i as u64,
            gas_limit: 21_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(to),
            value: U256::from(10u128.pow(18)),
            input: Bytes::new(),
            access_list: Default::default(),
        });
        send_to_anvil(port, &fund).await;
    }
    // Tidepool has followed anvil past the funding blocks.
    let funded: U256 = client(port).request("eth_blockNumber", rpc_params![]).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while U256::from(node.tidepool().chain().head().block) < funded {
        assert!(tokio::time::Instant::now() < deadline, "the follower did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Over Tidepool's JSON-RPC, as a wallet sends: what it accepts it forwards, in order.
    let rpc = common::node::rpc(&node);
    let mut hashes = Vec::new();
    for nonce in 0..10 {
        for secret in &senders {
            let hash = common::node::send_raw(&rpc, &transfer(*secret, nonce, 1)).await.expect("accepted");
            hashes.push(hash);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for secret in &senders {
        let address = Signer::from_bytes(*secret).unwrap().address();
        loop {
            let nonce: U256 =
                client(port).request("eth_getTransactionCount", rpc_params![address, "latest"]).await.unwrap();
            if nonce == U256::from(10) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{address} at nonce {nonce} on anvil");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while hashes.iter().any(|hash| node.reader().get(hash).is_some()) {
        assert!(tokio::time::Instant::now() < deadline, "Tidepool saw every transaction mined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric_value(&node, "tidepool_upstream_forward_dropped_total"), 0.0, "none lost on the way");
    node.stop().await;
}

fn metric_value(node: &tidepool::node::Node, name: &str) -> f64 {
    node.metrics_text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn follow_node(dir: &Path, port: u16) -> tidepool::node::Node {
    follow_node_at(dir, format!("http://127.0.0.1:{port}")).await
}

async fn follow_node_at(dir: &Path, url: String) -> tidepool::node::Node {
    common::node::start_node(dir, |c| {
        c.follow = Some(url);
        c.follow_forward = true;
        c.chain_id = ANVIL_CHAIN_ID;
        c.validation.chain_id = ANVIL_CHAIN_ID;
        c.rpc.send_raw_per_client = tidepool::gossip::Rate { per_second: 10_000.0, burst: 10_000.0 };
    })
    .await
}

/// The upstream paused (SIGSTOP): every call through Tidepool ends within its timeout (2 s for
/// upstream calls and state loads); reads of the pool answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_upstream_never_holds_a_call_past_its_timeout() {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let anvil = Anvil::start(&binary, port).await;
    let dir = tempfile::tempdir().unwrap();
    let node = follow_node(dir.path(), port).await;
    let signal = |which: &str| {
        let status = Command::new("kill").args([which, &anvil.0.id().to_string()]).status().unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let rpc = common::node::rpc(&node);
    let started = std::time::Instant::now();
    let passed_through = rpc.request::<U256, _>("eth_blockNumber", rpc_params![]).await;
    assert!(passed_through.is_err(), "a paused upstream cannot answer");
    let refused = common::node::send_raw(&rpc, &transfer(KEY_1, 0, 1)).await.unwrap_err().to_string();
    assert!(refused.contains("state_unavailable"), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(5), "two calls, 2 s each at most: {:?}", started.elapsed());
    let status: serde_json::Value = rpc.request("txpool_status", rpc_params![]).await.unwrap();
    assert_eq!(status["pending"], "0x0", "the pool answers by itself");
    signal("-CONT");
    node.stop().await;
}

/// The upstream killed, then back: no panic, the outage shows in the metrics, and the node
/// follows the new upstream within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_follows_again_after_the_upstream_restarts() {
    follows_again_after_the_upstream_restarts("http").await;
}

/// The same over WebSocket: the connection is made again, and the subscription with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_websocket_the_node_follows_again_after_the_upstream_restarts() {
    follows_again_after_the_upstream_restarts("ws").await;
}

async fn follows_again_after_the_upstream_restarts(scheme: &str) {
    let Some(binary) = common::anvil() else { return };
    let port = common::process::free_port();
    let anvil = Anvil::start(&binary, port).await;
    let dir = tempfile::tempdir().unwrap();
    let node = follow_node_at(dir.path(), format!("{scheme}://127.0.0.1:{port}")).await;
    drop(anvil);
    let wait_for = |what: &'static str, name: &'static str, value: f64| {
        let node = &node;
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while metric_value(node, name) != value {
                assert!(tokio::time::Instant::now() < deadline, "{what}: {name} stays {}", metric_value(node, name));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for("the outage is seen", "tidepool_upstream_up", 0.0).await;
    assert!(metric_value(&node, "tidepool_upstream_errors_total") >= 1.0);

    let _anvil = Anvil::start(&binary, port).await;
    let restarted = std::time::Instant::now();
    wait_for("the upstream is back", "tidepool_upstream_up", 1.0).await;
    send_to_anvil(port, &transfer(KEY_0, 0, 1)).await;
    let head: U256 = client(port).request("eth_blockNumber", rpc_params![]).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while U256::from(node.tidepool().chain().head().block) != head {
        assert!(tokio::time::Instant::now() < deadline, "the node did not follow the restarted upstream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restarted.elapsed() < Duration::from_secs(10), "following again after {:?}", restarted.elapsed());
    node.stop().await;
}
