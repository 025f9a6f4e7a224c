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
pub mod plots;
pub mod report;
pub mod scenario;

pub use des::Des;
pub use scenario::{Adversary, AttackKind, Churn, Scenario, Topology};

use std::path::Path;

/// Runs a scenario on the discrete-event engine and writes its run folder (with plots). A
/// scenario with adversaries also runs without them (same seed), for the attack comparison.
///
/// # Errors
/// Invalid scenario or file system errors, as text.
pub fn run_des(scenario: &Scenario, out: &Path, mut progress: impl FnMut(f64)) -> Result<report::Summary, String> {
    let attacked = !scenario.adversaries.is_empty();
    let scale = if attacked { 0.5 } else { 1.0 };
    let run = Des::new(scenario.clone())?.run(|done| progress(done * scale));
    let baseline = if attacked {
        let peaceful = Scenario { adversaries: Vec::new(), ..scenario.clone() };
        Some(Des::new(peaceful)?.run(|done| progress(0.5 + done * 0.5)))
    } else {
        None
    };
    let mut summary =
        report::write(out, scenario, &run, baseline.as_ref()).map_err(|e| format!("{}: {e}", out.display()))?;
    let bandwidth: Vec<(u64, u64)> =
        run.nodes.iter().filter(|n| n.1.is_none()).map(|n| (n.3.up_payload, n.3.up_control)).collect();
    plots::write(out, &run.txs, summary.honest_nodes, &bandwidth, baseline.as_ref().map(|b| b.txs.as_slice()))
        .map_err(|e| format!("plots in {}: {e}", out.display()))?;
    summary.plots = plots::FILES.iter().filter(|f| out.join(f).exists()).map(|f| (*f).to_owned()).collect();
    report::write_summary(out, &summary).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(summary)
}
