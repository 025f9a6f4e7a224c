//! Embeds the git revision (`TIDEPOOL_REVISION`) so a simulation's run folder says which code
//! produced it. Outside a git checkout the revision is "unknown".

use std::{path::Path, process::Command};

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn main() {
    let revision = git(&["rev-parse", "--short=12", "HEAD"]).map_or_else(
        || "unknown".to_owned(),
        |rev| {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        },
    );
    println!("cargo:rustc-env=TIDEPOOL_REVISION={revision}");
    println!("cargo:rerun-if-changed=build.rs");
    for path in [".git/HEAD", ".git/index"] {
        // A path that does not exist would make cargo rerun this script on every build.
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
