//! The command line as a user runs it: `tidepool tx decode`, and what `tidepool node` writes.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use serde_json::Value;

/// The README's example: an EIP-1559 transfer signed by dev key 0.
const README_TX: &str = "0x02f8720180843b9aca008506fc23ac0082520894000000000000000000000000000000000000dead87038d7ea4c6800080c080a08a7804dc4e91fec14f74cb203a31b6f885d7e819149ac0340c67f99523da7307a03aad949c9d512ca9f3f58978f0ee7a6d2f6d215dc3af2ee52e5c2d3ea87f65da";

fn tidepool(args: &[&str], stdin: &str) -> (Vec<Value>, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let lines = String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (lines, output.status.code().unwrap())
}

#[test]
fn decodes_the_readme_transaction() {
    let (lines, code) = tidepool(&["tx", "decode", README_TX], "");
    assert_eq!(code, 0);
    let tx = &lines[0];
    assert_eq!(tx["hash"], "0x1bf1a811e84e951971039972a794495cf94c202a19b9cc812538858c0f923347");
    assert_eq!(tx["sender"], tidepool::tx::sign::Signer::dev(0).address().to_string().to_lowercase());
    assert_eq!(tx["type"], 2);
    assert_eq!(tx["intrinsic_gas"], 21_000);
    assert_eq!(tx["max_fee_per_gas"], "30000000000");
    assert_eq!(tx["value"], "1000000000000000");
    assert_eq!(tx["size"], 117);
}

#[test]
fn stdin_mode_reports_each_line_and_fails_on_any_error() {
    let (lines, code) = tidepool(&["tx", "decode", "-"], &format!("{README_TX}\n\nnot-hex\n0xc0\n"));
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 3, "blank lines are skipped");
    assert!(lines[0]["hash"].is_string());
    assert_eq!(lines[1]["error"]["kind"], "invalid_hex");
    assert_eq!(lines[2]["error"]["kind"], "malformed_rlp");
}

#[test]
fn chain_id_flag_changes_the_verdict() {
    let (lines, code) = tidepool(&["tx", "decode", "--chain-id", "5", README_TX], "");
    assert_eq!(code, 1);
    assert_eq!(lines[0]["error"]["kind"], "wrong_chain_id");
}

/// Issue: log lines kept colour codes when stderr was a file. Off a terminal the logs are plain.
#[test]
fn logs_to_a_file_or_pipe_carry_no_colour_codes() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics-addr", "127.0.0.1:0", "--rpc-addr"])
        .arg(taken.local_addr().unwrap().to_string())
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the RPC port is taken: the node stops at start");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("INFO"), "log lines were written: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr:?}");
}

/// A bad simulation flag is refused before anything runs or is written, naming the setting and
/// its allowed range (a zero rate used to hang the simulator).
#[test]
fn sim_help_names_its_flags_and_the_scenario_reference() {
    let output = Command::new(env!("CARGO_BIN_EXE_tidepool")).args(["sim", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in
        ["--scenario", "--engine", "--repeat", "--mesh-d", "--tx-size", "--trace", "--trace-rows", "SCENARIO.md"]
    {
        assert!(help.contains(flag), "`tidepool sim --help` names {flag}:\n{help}");
    }
}

#[test]
fn a_sweep_writes_one_row_per_point_and_a_plot_per_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let output = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["sim", "sweep", "--quiet", "--repeat", "2", "--set", "gossipsub.d=6,8", "--set", "nodes=30,40"])
        .args(["--set", "txs=10", "--set", "drain_seconds=2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("gossipsub.d,nodes,txs,drain_seconds,runs,t90_p50_ms_mean,t90_p50_ms_ci95_low"));
    assert_eq!(rows.len(), 5, "2 x 2 points: {csv}");
    assert!(rows[1].starts_with("6,30,10,2,2,"), "{}", rows[1]);
    for plot in ["sweep_gossipsub_d.svg", "sweep_nodes.svg", "sweep_txs.svg", "sweep_drain_seconds.svg"] {
        assert!(out.join(plot).exists(), "{plot}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(["sim", "sweep", "--quiet", "--set", "gossipsub.d=8,0", "--out"])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("gossipsub.d = 0") && stderr.contains("`gossipsub.d`"), "{stderr}");
    assert!(!dir.path().join("bad").exists(), "a bad point is refused before any run");
}

#[test]
fn a_bad_sim_setting_is_named_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for (flag, value, setting) in [
        ("--tx-rate", "0", "tx_rate"),
        ("--attack-fraction", "2", "adversaries[0].fraction"),
        ("--degree", "0", "topology.degree"),
        ("--mesh-d", "0", "gossipsub.d"),
        ("--tx-size", "10", "tx_size"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidepool"));
        command.args(["sim", "--quiet", "--out"]).arg(&out).args([flag, value]);
        if flag == "--attack-fraction" {
            command.args(["--attack", "invalid-signature"]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!output.status.success(), "{flag} {value} is refused");
        assert!(stderr.contains(&format!("`{setting}`")), "{flag} {value}: {stderr}");
        assert!(!out.exists(), "nothing written for a refused scenario");
    }
}
