//! Nothing acknowledged is lost: the journal survives SIGKILL, damage to it costs only the
//! damaged records, a clean shutdown snapshots the whole pool, and journal writes are grouped.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{B256, U256};
use common::{
    process::{Process, free_port, metric_at, spawn_node, wait_for_rpc},
    world::{RICH, address, tx},
};
use jsonrpsee::{core::client::ClientT, rpc_params};
use serde_json::Value;
use tidepool::{
    Origin, Tidepool,
    state::{AccountState, ChainHead, InMemoryState},
    store::{self, StoredTx, codec},
    validate::ValidationConfig,
};

async fn start(dir: &Path) -> Tidepool {
    let state = Arc::new(InMemoryState::new());
    for account in 0..10 {
        state.set(address(account), AccountState::new(0, U256::from(RICH)));
    }
    let config = tidepool::TidepoolConfig {
        validation: ValidationConfig { min_priority_fee: 0, ..Default::default() },
        ..Default::default()
    };
    Tidepool::builder(state, ChainHead { block: 0, base_fee: 10, blob_base_fee: 1 })
        .config(config)
        .data_dir(dir)
        .start()
        .await
        .expect("starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_and_truncated_journal_keeps_every_intact_record_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<_> = (0..6).map(|nonce| tx(1, nonce)).collect();
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for spec in &specs {
        offsets.push(data.len());
        codec::encode(&StoredTx { origin: Origin::Local, raw: spec.raw() }, &mut data);
    }
    data[offsets[2] + 20] ^= 0xff; // a bit flip inside record 2
    data.truncate(offsets[5] + 30); // record 5 cut short, as by a crash mid-write
    std::fs::write(dir.path().join(store::JOURNAL_FILE), &data).unwrap();

    let tidepool = start(dir.path()).await;
    let report = tidepool.restored().expect("a data directory").clone();
    let journal = report.journal.clone().expect("the journal was read");
    assert_eq!(journal.records, 4);
    assert_eq!(journal.corrupt, [(offsets[2], offsets[3] - offsets[2])]);
    assert_eq!(journal.torn_tail, Some((offsets[5], 30)));
    assert_eq!(report.restored(), 4);
    for (nonce, spec) in specs.iter().enumerate() {
        let pooled = tidepool.reader().get(&spec.hash()).is_some();
        assert_eq!(pooled, ![2, 5].contains(&nonce), "nonce {nonce}");
    }
    // Start compacted the journal: it now holds exactly the intact records, undamaged.
    let rewritten = codec::decode(&std::fs::read(dir.path().join(store::JOURNAL_FILE)).unwrap());
    assert_eq!(rewritten.records.len(), 4);
    assert!(rewritten.corrupt.is_empty() && rewritten.torn_tail.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_snapshots_the_whole_pool_and_a_restart_revalidates_it() {
    let dir = tempfile::tempdir().unwrap();
    let tidepool = start(dir.path()).await;
    let remote = [tx(2, 0), tx(2, 1), tx(3, 0)];
    for spec in remote {
        tidepool.submitter().submit(spec.raw(), Origin::External).await.unwrap();
    }
    let private = tx(4, 0);
    tidepool.submitter().submit(private.raw(), Origin::Private).await.unwrap();
    let local = tx(5, 0);
    tidepool.submitter().submit(local.raw(), Origin::Local).await.unwrap();
    tidepool.shutdown().unwrap();
    assert!(dir.path().join(store::SNAPSHOT_FILE).exists());

    let tidepool = start(dir.path()).await;
    for spec in remote.iter().chain([&private, &local]) {
        assert!(tidepool.reader().get(&spec.hash()).is_some(), "{spec:?} restored");
    }
    assert_eq!(tidepool.reader().get(&private.hash()).unwrap().tx.origin(), Origin::Private, "origin kept");
    let report = tidepool.restored().unwrap();
    assert_eq!(report.snapshot.as_ref().map(|s| s.records), Some(5));
    assert_eq!(report.outcomes.get("already_known"), Some(&1), "the journal's copy of the local tx");
    assert!(!dir.path().join(store::SNAPSHOT_FILE).exists(), "a snapshot is used once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_local_submissions_share_journal_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let tidepool = start(dir.path()).await;
    let mut tasks = Vec::new();
    for account in 0..10 {
        for nonce in 0..16 {
            let submitter = tidepool.submitter();
            let raw = tx(account, nonce).raw();
            tasks.push(tokio::spawn(async move { submitter.submit(raw, Origin::Local).await }));
        }
    }
    for task in tasks {
        task.await.unwrap().expect("acknowledged");
    }
    let stats = tidepool.journal().unwrap().stats();
    let appended = stats.appended.load(std::sync::atomic::Ordering::Relaxed);
    let syncs = stats.syncs.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(appended, 160);
    // Verdicts arrive in bursts from the validation workers; each burst shares one sync (about
    // 30 syncs for the 160 here). The bound leaves room for a slow, loaded machine.
    assert!(syncs * 4 < appended * 3, "group commit: {syncs} syncs for {appended} records");
}

fn acked_hashes(path: &Path) -> Vec<B256> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    let acked = dir.path().join("acked.txt");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // Compaction every half second, so the kill lands after several (issue: a compaction raced
    // with appends could drop acknowledged records).
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[store]\ncompact_every = 0.5\n").unwrap();
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let config_arg = config.display().to_string();
    let node_args = [
        "--dev-accounts",
        "64",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--metrics-addr",
        &metrics_addr,
        "--config",
        &config_arg,
    ];
    let (mut node, _) = spawn_node(&data_dir, port, &node_args);
    wait_for_rpc(&url).await;

    let load = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["load", "--quiet", "--accounts", "48", "--rate", "400", "--duration", "6", "--rpc", &url])
        .arg("--acked")
        .arg(&acked)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("load starts");
    let mut load = Process(load);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_hashes(&acked).len() < 300 {
        assert!(Instant::now() < deadline, "load made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while metric_at(metrics_port, "tidepool_journal_compactions_total") < 2.0 {
        assert!(Instant::now() < deadline, "the journal compacts under load");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.0.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix: no shutdown path runs
    node.0.wait().unwrap();
    let _ = load.0.wait();
    let promised = acked_hashes(&acked);

    let _node = spawn_node(&data_dir, port, &node_args);
    let client = wait_for_rpc(&url).await;
    let mut lost = Vec::new();
    for hash in &promised {
        let pooled: Value = client.request("eth_getTransactionByHash", rpc_params![hash]).await.unwrap();
        if pooled.is_null() {
            lost.push(*hash);
        }
    }
    assert!(promised.len() >= 300);
    assert!(lost.is_empty(), "{} of {} acknowledged transactions lost: {lost:?}", lost.len(), promised.len());
}

/// Issue: a local submission of a transaction already pooled from a peer was answered
/// `already known` and never journaled, so a crash lost what the user was told is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_submission_of_a_peers_transaction_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let tidepool = start(dir.path()).await;
    let spec = tx(6, 0);
    tidepool.submitter().submit(spec.raw(), Origin::External).await.unwrap();
    let again = tidepool.submitter().submit(spec.raw(), Origin::Local).await.expect_err("already pooled");
    assert_eq!(again.kind(), "already_known");
    assert_eq!(tidepool.reader().get(&spec.hash()).unwrap().tx.origin(), Origin::Local);
    let journal = codec::decode(&std::fs::read(dir.path().join(store::JOURNAL_FILE)).unwrap());
    assert_eq!(journal.records, [StoredTx { origin: Origin::Local, raw: spec.raw() }]);
}

/// Issue: the start-up compaction deleted journal records refused for reasons that pass (here:
/// the sender is not funded yet), losing acknowledged transactions for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_refused_for_a_temporary_reason_stays_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let unfunded = tx(20, 0); // accounts 0..10 are funded
    let mut data = Vec::new();
    codec::encode(&StoredTx { origin: Origin::Local, raw: unfunded.raw() }, &mut data);
    codec::encode(&StoredTx { origin: Origin::Local, raw: tx(1, 0).raw() }, &mut data);
    std::fs::write(dir.path().join(store::JOURNAL_FILE), &data).unwrap();

    let tidepool = start(dir.path()).await;
    let report = tidepool.restored().unwrap();
    assert_eq!(report.outcomes.get("insufficient_funds"), Some(&1));
    assert!(tidepool.reader().get(&unfunded.hash()).is_none());
    let kept = codec::decode(&std::fs::read(dir.path().join(store::JOURNAL_FILE)).unwrap()).records;
    assert_eq!(kept.len(), 2, "the pooled record and the parked one");
    assert!(kept.iter().any(|r| r.raw == unfunded.raw()), "the unfunded sender's record is kept for a retry");
}
