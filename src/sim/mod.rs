//! Simulation: many nodes in one process, driven through the same gossip core and validation
//! the real node runs.
//!
//! Owns: scenarios (`scenario.rs`), network models (`model.rs`: regions and latency, bandwidth,
//! topologies), the deterministic discrete-event engine (`des.rs`), and run outputs
//! (`report.rs`).
//! Does not: open sockets or read the wall clock inside the engine; its randomness comes from the
//! scenario's seed only, so one seed gives byte-identical output.

pub mod des;
pub mod model;
pub mod report;
pub mod scenario;

pub use des::Des;
pub use scenario::{Adversary, AttackKind, Scenario, Topology};

use std::path::Path;

/// Runs a scenario on the discrete-event engine and writes its run folder.
///
/// # Errors
/// Invalid scenario or file system errors, as text.
pub fn run_des(scenario: &Scenario, out: &Path, progress: impl FnMut(f64)) -> Result<report::Summary, String> {
    let run = Des::new(scenario.clone())?.run(progress);
    report::write(out, scenario, &run).map_err(|e| format!("{}: {e}", out.display()))
}
