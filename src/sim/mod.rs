//! Simulation: many nodes in one process, driven through the same gossip core and validation
//! the real node runs.
//!
//! Owns: scenarios (`scenario.rs`), network models and the seed-drawn layout (`model.rs`:
//! regions and latency, bandwidth, topologies), the deterministic discrete-event engine
//! (`des.rs`) with its model of gossipsub's router (`mesh.rs`) and of eth/68's exchange
//! (`eth68.rs`), the swarm engine (`swarm.rs`: real libp2p swarms on shaped in-memory links,
//! each node a `Tidepool` assembled by the same builder as the node), what both engines record
//! (`record.rs`), run outputs (`report.rs`, `plots.rs`, `trace.rs`), and grids of DES runs
//! (`sweep.rs`).
//! Does not: open sockets (the swarm engine's links are in memory), or, in the DES, read the
//! wall clock: its randomness comes from the scenario's seed only, so one seed gives
//! byte-identical output. The swarm engine runs on the wall clock and reports its spread.

pub mod des;
pub mod eth68;
pub mod mesh;
pub mod model;
pub mod plots;
pub mod record;
pub mod report;
pub mod scenario;
pub mod swarm;
pub mod sweep;
pub mod trace;

pub use des::Des;
pub use scenario::{Adversary, AttackKind, Churn, Propagation, Scenario, ScenarioError, Topology};

use std::path::Path;

use alloy_consensus::{SignableTransaction as _, TxEip1559};
use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};

/// An attacker's junk for both engines: a well-formed transfer whose signature (r = 0) recovers
/// no sender, so it costs a victim a full decode and a failed recovery. `node` and `nonce` make
/// every attacker's messages distinct (gossipsub would drop repeats as duplicates).
pub(crate) fn invalid_signature_junk(chain_id: u64, nonce: u64, node: u32) -> Bytes {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 1,
        to: TxKind::Call(Address::with_last_byte(node as u8)),
        value: U256::from(node),
        ..Default::default()
    };
    let signature = Signature::new(U256::ZERO, U256::from(1), false);
    crate::tx::Envelope::from(tx.into_signed(signature)).encoded_2718().into()
}

/// Runs a scenario on the swarm engine `repeat` times (fresh swarms each time, on a runtime of
/// its own) and writes the first run's folder, with the spread over all runs and the measured
/// in-process overhead in `summary.json`.
///
/// # Errors
/// Scenario features the engine lacks, swarms that cannot start, file system errors.
pub fn run_swarm(
    scenario: &Scenario,
    out: &Path,
    repeat: usize,
    mut progress: impl FnMut(f64),
) -> Result<report::Summary, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let repeat = repeat.max(1);
    let mut runs = Vec::with_capacity(repeat);
    for k in 0..repeat {
        let scale = |done: f64| (k as f64 + done) / repeat as f64;
        runs.push(runtime.block_on(swarm::run(scenario, |done| progress(scale(done))))?);
    }
    let (layout, _) = model::Layout::draw(scenario)?;
    let modelled_latency_ms = swarm::mean_link_latency_ms(&layout);
    let reach90 = |run: &record::Run| report::Summary::of(run, scenario, None).time_to_90_percent_ms;
    let (p50s, p90s): (Vec<f64>, Vec<f64>) =
        runs.iter().filter_map(|r| reach90(&r.run)).map(|p| (p.p50, p.p90)).unzip();
    let lags: Vec<f64> = runs.iter().filter_map(|r| r.timer_lag_ms.as_ref().map(|l| l.p90)).collect();
    let timer_lag_ms = runs.iter().find_map(|r| r.timer_lag_ms.clone());
    let worst_lag = lags.iter().copied().fold(0.0, f64::max);
    let first = &runs[0].run;
    let mut summary = report::write(out, scenario, first, None).map_err(|e| format!("{}: {e}", out.display()))?;
    plots::write(out, first, None).map_err(|e| format!("plots in {}: {e}", out.display()))?;
    summary.plots = plots::FILES.iter().filter(|f| out.join(f).exists()).map(|f| (*f).to_owned()).collect();
    summary.swarm = Some(report::SwarmSummary {
        runs: runs.len(),
        time_to_90_percent_p50_ms: report::MeanSpread::of(p50s),
        time_to_90_percent_p90_ms: report::MeanSpread::of(p90s),
        timer_lag_ms,
        modelled_latency_ms,
        // Calibrated against the DES on the same layouts (BENCHMARKS.md): at a p90 lag of 4% of
        // the link latency the engines agreed within 5%; at 9% propagation was already 48% slower.
        overhead_flagged: worst_lag > modelled_latency_ms / 20.0,
    });
    report::write_summary(out, &summary).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(summary)
}

/// What a DES run does beyond its scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct DesOptions {
    /// Runs (0 and 1: one); see [`run_des_with`].
    pub repeat: usize,
    /// Write `trace.csv` with at most this many rows (of the first run).
    pub trace_rows: Option<usize>,
}

/// Runs a scenario once on the discrete-event engine and writes its run folder (with plots). A
/// scenario with adversaries also runs with their nodes behaving honestly (same seed, network,
/// workload and origins), for a like-for-like attack comparison.
///
/// # Errors
/// Invalid scenario or file system errors, as text.
pub fn run_des(scenario: &Scenario, out: &Path, progress: impl FnMut(f64)) -> Result<report::Summary, String> {
    run_des_with(scenario, out, DesOptions::default(), progress)
}

fn run_des_once(
    scenario: &Scenario,
    out: &Path,
    trace_rows: Option<usize>,
    mut progress: impl FnMut(f64),
) -> Result<report::Summary, String> {
    let attacked = !scenario.adversaries.is_empty();
    let scale = if attacked { 0.5 } else { 1.0 };
    let des = Des::new(scenario.clone())?;
    let des = match trace_rows {
        Some(rows) => des.with_trace(rows),
        None => des,
    };
    let run = des.run(|done| progress(done * scale));
    let baseline = if attacked {
        Some(Des::new(scenario.clone())?.with_attackers_honest().run(|done| progress(0.5 + done * 0.5)))
    } else {
        None
    };
    let mut summary =
        report::write(out, scenario, &run, baseline.as_ref()).map_err(|e| format!("{}: {e}", out.display()))?;
    plots::write(out, &run, baseline.as_ref()).map_err(|e| format!("plots in {}: {e}", out.display()))?;
    summary.plots = plots::FILES.iter().filter(|f| out.join(f).exists()).map(|f| (*f).to_owned()).collect();
    if let Some(trace) = &run.trace {
        summary.trace = Some(trace.write(out).map_err(|e| format!("{}: {e}", out.display()))?);
    }
    report::write_summary(out, &summary).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(summary)
}

/// The seed of repeat `k` (0: the scenario's own).
pub const fn repeat_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_add((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Runs a scenario on the DES `options.repeat` times, the first with its own seed (whose run
/// folder is written as [`run_des`] writes it, with its trace if asked), the others with seeds
/// derived from it ([`repeat_seed`]); with repeats, `summary.json` gains the means and 95%
/// confidence intervals, and `repeats.csv` one row per run.
///
/// # Errors
/// As [`run_des`].
pub fn run_des_with(
    scenario: &Scenario,
    out: &Path,
    options: DesOptions,
    mut progress: impl FnMut(f64),
) -> Result<report::Summary, String> {
    let repeat = options.repeat.max(1);
    let share = 1.0 / repeat as f64;
    let first = run_des_once(scenario, out, options.trace_rows, |done| progress(done * share))?;
    if repeat == 1 {
        return Ok(first);
    }
    let mut seeds = vec![scenario.seed];
    let mut summaries = vec![first];
    for k in 1..repeat {
        let seeded = Scenario { seed: repeat_seed(scenario.seed, k), ..scenario.clone() };
        let run = Des::new(seeded.clone())?.run(|done| progress((k as f64 + done) * share));
        seeds.push(seeded.seed);
        summaries.push(report::Summary::of(&run, &seeded, None));
    }
    let mut rows = String::from("seed,t90_p50_ms,t90_p90_ms,coverage,duplicates_per_node_per_tx\n");
    for (seed, s) in seeds.iter().zip(&summaries) {
        let reach = s.time_to_90_percent_ms.as_ref();
        rows += &format!(
            "{seed},{},{},{},{}\n",
            reach.map_or(String::new(), |p| format!("{:.3}", p.p50)),
            reach.map_or(String::new(), |p| format!("{:.3}", p.p90)),
            s.coverage,
            s.duplicates_per_node_per_tx
        );
    }
    std::fs::write(out.join("repeats.csv"), rows).map_err(|e| format!("{}: {e}", out.display()))?;
    let repeats = report::Repeats::of(seeds, &summaries);
    let mut summary = summaries.swap_remove(0);
    summary.repeats = Some(repeats);
    report::write_summary(out, &summary).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(summary)
}
