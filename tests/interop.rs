//! Tidepool's wire protocol against an independent implementation: js-libp2p 3 with its
//! gossipsub, configured from PROTOCOL.md (`tools/js-peer.mjs`, versions pinned in
//! `tools/package.json`). The JS peer receives what the node publishes, publishes what the node
//! validates and relays, fetches what the node announces and serves what it announces itself,
//! stays connected with or without ping, and is banned when it floods junk.

mod common;

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use alloy_primitives::{B256, keccak256};
use common::node::{CHAIN_ID, bad_signature, dial_addr, eventually, metric, rpc, send_raw, start_node, transfer};
use serde_json::Value;
use tidepool::node::Node;

const WAIT: Duration = Duration::from_secs(20);

/// A running JS peer: its events, one JSON object per line, as they come.
struct JsPeer {
    child: Child,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl JsPeer {
    fn start(nodejs: &Path, node: &Node, seconds: u64, extra: &[String]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/js-peer.mjs");
        let mut child = Command::new(nodejs)
            .arg(script)
            .args(["--dial", &dial_addr(node).to_string(), "--chain", &CHAIN_ID.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the JS peer starts");
        let stdout = child.stdout.take().expect("piped");
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str(&line) {
                    Ok(event) => drop(sender.send(event)),
                    Err(_) => eprintln!("js-peer: {line}"),
                }
            }
        });
        Self { child, events, seen: Vec::new() }
    }

    /// Waits (without blocking the runtime's other tasks) for an event `matches`.
    async fn wait_for(&mut self, what: &str, limit: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Ok(event) = self.events.try_recv() {
                self.seen.push(event);
            }
            if let Some(found) = self.seen.iter().find(|event| matches(event)) {
                return found.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "JS peer: no {what} within {limit:?}; saw {:?}", self.seen);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn summary(&mut self, limit: Duration) -> Value {
        let summary = self.wait_for("summary", limit, |event| event["event"] == "summary").await;
        let _ = self.child.wait();
        summary
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event_is(event: &Value, kind: &str) -> bool {
    event["event"] == kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_peer_receives_publishes_fetches_and_serves() {
    let Some(nodejs) = common::nodejs() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(dir_a.path(), |_| {}).await;
    let b = start_node(dir_b.path(), |c| c.bootnodes = vec![dial_addr(&a)]).await;
    let published = transfer(5, 0, 0);
    let announced = transfer(6, 0, 6_000);
    let mut js = JsPeer::start(
        &nodejs,
        &a,
        8,
        &["--publish".into(), published.to_string(), "--announce".into(), announced.to_string()],
    );
    js.wait_for("its announcement", WAIT, |e| event_is(e, "announced")).await;
    // Its subscriptions reach the node with its first messages; a heartbeat later it is in the
    // node's mesh.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Submitted over JSON-RPC: a small one is pushed to the JS peer byte for byte, its message
    // id the transaction hash; a large one is announced, and the JS peer fetches it.
    let (small, large) = (transfer(3, 0, 0), transfer(4, 0, 5_000));
    send_raw(&rpc(&a), &small).await.unwrap();
    send_raw(&rpc(&a), &large).await.unwrap();
    let message = js.wait_for("the small transaction", WAIT, |e| e["data"] == small.to_string()).await;
    assert_eq!(message["msgId"], keccak256(&small).to_string());
    assert_eq!(message["topic"], format!("/tidepool/{CHAIN_ID}/txs/1"));
    let fetched = js.wait_for("the large transaction's fetch", WAIT, |e| e["tx"] == large.to_string()).await;
    assert_eq!(fetched["hash"], keccak256(&large).to_string());

    // Published by the JS peer: validated, pooled, relayed to b. Announced by it: fetched from
    // it by a (it served the fetch), pooled, and passed on to b.
    for (what, hash) in [("published", keccak256(&published)), ("announced", keccak256(&announced))] {
        eventually(&format!("the JS peer's {what} tx in a"), WAIT, || async { a.reader().get(&hash).is_some() }).await;
        eventually(&format!("the JS peer's {what} tx in b"), WAIT, || async { b.reader().get(&hash).is_some() }).await;
    }
    let served = js.wait_for("a served fetch", WAIT, |e| event_is(e, "served")).await;
    assert_eq!(served["count"], 1, "{served}");
    let summary = js.summary(WAIT).await;
    assert_eq!(summary["disconnects"], 0, "{summary}");
    a.stop().await;
    b.stop().await;
}

/// Issue: the node stopped answering a JS peer's pings once the peer had refused the node's
/// own, and js-libp2p's connection monitor then dropped the connection every ~15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_peers_stay_connected_for_a_minute_with_and_without_ping() {
    let Some(nodejs) = common::nodejs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let mut with_ping = JsPeer::start(&nodejs, &node, 60, &[]);
    let mut without_ping = JsPeer::start(&nodejs, &node, 60, &["--no-ping".into()]);
    for peer in [&mut with_ping, &mut without_ping] {
        let summary = peer.summary(Duration::from_secs(90)).await;
        assert_eq!(
            (summary["connected"].as_bool(), summary["disconnects"].as_u64()),
            (Some(true), Some(0)),
            "{summary}"
        );
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_peer_flooding_junk_is_banned_while_an_honest_js_peer_keeps_receiving() {
    let Some(nodejs) = common::nodejs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), |_| {}).await;
    let mut honest = JsPeer::start(&nodejs, &node, 10, &[]);
    honest.wait_for("connection", WAIT, |e| event_is(e, "connected")).await;

    let flood = tempfile::NamedTempFile::new().unwrap();
    let lines: Vec<String> = (0..2_000).map(|nonce| bad_signature(nonce).to_string()).collect();
    std::fs::write(flood.path(), lines.join("\n")).unwrap();
    let mut flooder = JsPeer::start(&nodejs, &node, 1, &["--flood-file".into(), flood.path().display().to_string()]);
    flooder.wait_for("the disconnect", WAIT, |e| event_is(e, "disconnected")).await;
    let redial = flooder.wait_for("the redial", WAIT, |e| event_is(e, "redial")).await;
    assert_eq!(redial["connected"], false, "the flooder cannot come back: {redial}");
    assert!(metric(&node, "tidepool_gossip_penalties_total{penalty=\"invalid_signature\"}") >= 1.0);
    eventually("the flooder's disconnect is counted", WAIT, || async {
        metric(&node, "tidepool_peer_disconnects_total") + metric(&node, "tidepool_peer_bans_total") >= 1.0
    })
    .await;

    let raw = transfer(7, 0, 0);
    let hash: B256 = send_raw(&rpc(&node), &raw).await.unwrap();
    let message = honest.wait_for("the honest transaction", WAIT, |e| e["data"] == raw.to_string()).await;
    assert_eq!(message["msgId"], hash.to_string());
    let summary = honest.summary(WAIT).await;
    assert_eq!(summary["disconnects"], 0, "the honest peer kept its connection: {summary}");
    node.stop().await;
}
