//! `tidepool node` as a child process, for tests that kill it or measure it alone.
#![allow(dead_code)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use jsonrpsee::{
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use serde_json::Value;

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A node with JSON-RPC on `rpc_port` and `extra` arguments, its data in `data_dir`. Its
/// stdout is read until the banner names its peer id, which is returned.
pub fn spawn_node(data_dir: &Path, rpc_port: u16, extra: &[&str]) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["node", "--block-time", "3600", "--rpc-addr", &format!("127.0.0.1:{rpc_port}")])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let peer_id = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.trim().strip_prefix("peer id").map(|id| id.trim().to_owned()))
        .expect("the banner names the peer id");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Process(child), peer_id)
}

/// Polls `eth_chainId` until the node answers.
pub async fn wait_for_rpc(url: &str) -> HttpClient {
    let client = HttpClientBuilder::default().build(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.request::<Value, _>("eth_chainId", rpc_params![]).await.is_err() {
        assert!(Instant::now() < deadline, "node at {url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
}

/// A metric's value from the node's metrics page on `port` (0 if absent).
pub fn metric_at(port: u16, name_and_labels: &str) -> f64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    page.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Resident set size of process `pid`, from /proc (0 where unavailable).
pub fn resident_bytes(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}
