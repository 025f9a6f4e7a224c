//! Every example runs in its short-lived `--smoke` mode and checks itself.
//!
//! `cargo test` builds the examples next to the test binaries (`target/<profile>/examples/`)
//! before running any test, so a full `cargo test` always runs fresh ones. Running this target
//! alone (`cargo test --test examples`) does not build them: run `cargo build --examples` first.
//! (Building them from here would rebuild the library with other features and thrash the cache.)

use std::{path::PathBuf, process::Command};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>");
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn smoke(name: &str) {
    let path = example(name);
    assert!(path.exists(), "{} is not built: run `cargo test` or `cargo build --examples`", path.display());
    let output = Command::new(&path).arg("--smoke").output().expect("example starts");
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
