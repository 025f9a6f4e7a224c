//! Every example runs in its short-lived `--smoke` mode and checks itself.
//!
//! `cargo test` builds the examples next to the test binaries (`target/<profile>/examples/`)
//! before running any test, so a full `cargo test` always runs fresh ones. Running this target
//! alone (`cargo test --test examples`) does not build them: run `cargo build --examples` first.
//! (Building them from here would rebuild the library with other features and thrash the cache.)

mod common;

use std::{path::PathBuf, process::Command};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn smoke(name: &str) {
    smoke_with(name, &[]);
}

fn smoke_with(name: &str, args: &[&str]) {
    let path = example(name);
    assert!(path.exists(), "{} is not built: run `cargo test` or `cargo build --examples`", path.display());
    let output = Command::new(&path).arg("--smoke").args(args).output().expect("example starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("smoke: ok"),
        "{name} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn execution_client() {
    smoke("execution_client");
}

#[test]
fn block_builder() {
    smoke("block_builder");
}

#[cfg(feature = "net")]
#[test]
fn gossip_node() {
    smoke("gossip_node");
}

/// Needs a real execution node: anvil from the pinned npm install.
#[cfg(feature = "follow")]
#[test]
fn follow_builder() {
    let Some(anvil) = common::anvil() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(anvil).args(["--port", &port.to_string(), "--silent"]).spawn().expect("anvil starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "anvil did not come up");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // anvil's first development key (public).
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let outcome = std::panic::catch_unwind(|| {
        smoke_with("follow_builder", &["--upstream", &url, "--chain-id", "31337", "--key", key]);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
