//! `tidepool sim`: run a gossip simulation and write its run folder.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tidepool::sim::{self, Adversary, AttackKind, Scenario, Topology};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    action: Option<SimAction>,
    /// Scenario file (TOML); flags override it. Every setting, its default and allowed range:
    /// SCENARIO.md (gossipsub's mesh, links, bandwidth, workload, adversaries, churn, limits).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Engine: `des` (deterministic discrete-event, virtual time; the default) or `swarm` (real
    /// libp2p swarms in this process on shaped in-memory links, wall-clock time). A replay uses
    /// the saved run's engine.
    #[arg(long)]
    engine: Option<String>,
    /// Runs to repeat. DES: seeds derived from the base seed, the summary reports means and 95%
    /// confidence intervals (and `repeats.csv` each run); swarm: fresh swarms on the same seed,
    /// the summary reports the mean and spread.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Master seed: the same seed gives byte-identical output [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes in the network [default: 100].
    #[arg(long)]
    nodes: Option<usize>,
    /// Honest transactions to inject [default: 100].
    #[arg(long)]
    txs: Option<usize>,
    /// Honest transactions per second, network-wide [default: 50].
    #[arg(long)]
    tx_rate: Option<f64>,
    /// Random-regular topology with this degree [default: 8].
    #[arg(long)]
    degree: Option<usize>,
    /// Gossipsub mesh degree D (`gossipsub.d`; D_low, D_high and the rest from the scenario)
    /// [default: 8].
    #[arg(long)]
    mesh_d: Option<usize>,
    /// Every honest transaction this many bytes (120 to 131,072) [default: the generator's mix].
    #[arg(long)]
    tx_size: Option<u32>,
    /// Add attackers: invalid-signature, malformed, announce-never-serve, valid-spam or duplicate-replay.
    #[arg(long, value_parser = parse_attack)]
    attack: Option<AttackKind>,
    /// Fraction of nodes that attack (0 up to 1, leaving at least 2 honest nodes).
    #[arg(long, default_value_t = 0.05)]
    attack_fraction: f64,
    /// Messages per second each attacker sends to each neighbour.
    #[arg(long, default_value_t = 20.0)]
    attack_rate: f64,
    /// DES: write `trace.csv`, one row per delivery of a transaction or its id (time, tx, from,
    /// to, kind: push / iwant_reply / ihave / iwant / idontwant / announce / fetch_request /
    /// fetch_response, first or duplicate copy). Same seed, byte-identical file.
    #[arg(long)]
    trace: bool,
    /// With --trace: most rows kept (~40 bytes each); later deliveries are counted, not written.
    #[arg(long, default_value_t = 5_000_000)]
    trace_rows: usize,
    /// Run folder [default: sim-runs/seed-<seed>-<nodes>n].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, clap::Subcommand)]
enum SimAction {
    /// Rerun a saved run from its folder's scenario.toml (into <dir>/replay).
    Replay { dir: PathBuf },
    /// Run the DES over a grid of scenario values: `sweep.csv` (one row per point, means and
    /// 95% confidence intervals over the repeats) and `sweep_<setting>.svg` per swept setting.
    Sweep(SweepArgs),
}

#[derive(Debug, clap::Args)]
struct SweepArgs {
    /// A setting and its values, by its path in the scenario file (SCENARIO.md), e.g.
    /// `--set gossipsub.d=4,6,8 --set topology.degree=8,16,32 --set adversaries[0].fraction=0,0.1`.
    /// Repeatable: every combination runs.
    #[arg(long = "set", required = true)]
    axes: Vec<String>,
    /// Base scenario file (TOML) [default: the built-in scenario].
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Runs per point, on seeds derived from the base seed.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Output folder [default: sim-runs/sweep].
    #[arg(long, default_value = "sim-runs/sweep")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `tidepool sim sweep`.
fn sweep(args: &SweepArgs) -> Result<(), String> {
    let base = match &args.scenario {
        Some(path) => load(path)?,
        None => Scenario::default(),
    };
    let axes = args.axes.iter().map(|a| sim::sweep::Axis::parse(a)).collect::<Result<Vec<_>, _>>()?;
    let progress = progress_bar(args.quiet, "of the runs");
    let started = Instant::now();
    let points = sim::sweep::run(&base, &axes, args.repeat, &args.out, |done| {
        progress.set_position((done * 1_000.0) as u64);
    })?;
    progress.finish_and_clear();
    println!(
        "{} points x {} runs in {:.1}s wall — {}",
        points.len(),
        args.repeat.max(1),
        started.elapsed().as_secs_f64(),
        args.out.join("sweep.csv").display()
    );
    Ok(())
}

fn progress_bar(quiet: bool, unit: &str) -> ProgressBar {
    let progress = if quiet { ProgressBar::hidden() } else { ProgressBar::new(1_000) };
    progress.set_style(
        ProgressStyle::with_template(&format!("{{elapsed_precise}} [{{bar:40}}] {{percent}}% {unit}"))
            .expect("template"),
    );
    progress
}

fn parse_attack(text: &str) -> Result<AttackKind, String> {
    match text {
        "invalid-signature" => Ok(AttackKind::InvalidSignature),
        "malformed" => Ok(AttackKind::Malformed),
        "announce-never-serve" => Ok(AttackKind::AnnounceNeverServe),
        "valid-spam" => Ok(AttackKind::ValidSpam),
        "duplicate-replay" => Ok(AttackKind::DuplicateReplay),
        other => Err(format!(
            "unknown attack {other:?} (invalid-signature, malformed, announce-never-serve, valid-spam, duplicate-replay)"
        )),
    }
}

fn load(path: &std::path::Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(args: SimArgs) -> ExitCode {
    // Warnings only: a simulation's output is its run folder and summary line; the swarm
    // engine's hundreds of libp2p swarms would each log their start at info.
    super::init_logging("warn");
    match simulate(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidepool sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: SimArgs) -> Result<(), String> {
    let (scenario, out, saved_engine) = match &args.action {
        Some(SimAction::Sweep(sweep_args)) => return sweep(sweep_args),
        Some(SimAction::Replay { dir }) => {
            let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default();
            let engine = serde_json::from_str::<serde_json::Value>(&summary)
                .ok()
                .and_then(|s| s["engine"].as_str().map(str::to_owned));
            (load(&dir.join("scenario.toml"))?, dir.join("replay"), engine)
        }
        None => {
            let mut scenario = match &args.scenario {
                Some(path) => load(path)?,
                None => Scenario::default(),
            };
            scenario.seed = args.seed.unwrap_or(scenario.seed);
            scenario.nodes = args.nodes.unwrap_or(scenario.nodes);
            scenario.txs = args.txs.unwrap_or(scenario.txs);
            scenario.tx_rate = args.tx_rate.unwrap_or(scenario.tx_rate);
            scenario.gossipsub.d = args.mesh_d.unwrap_or(scenario.gossipsub.d);
            scenario.tx_size = args.tx_size.or(scenario.tx_size);
            if let Some(degree) = args.degree {
                scenario.topology = Topology::RandomRegular { degree };
            }
            if let Some(kind) = args.attack {
                scenario.adversaries.push(Adversary { kind, fraction: args.attack_fraction, rate: args.attack_rate });
            }
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| format!("sim-runs/seed-{}-{}n", scenario.seed, scenario.nodes).into());
            (scenario, out, None)
        }
    };
    // Before anything is written: a bad value is named with its allowed range.
    scenario.check().map_err(|e| e.to_string())?;
    let engine = args.engine.clone().or(saved_engine).unwrap_or_else(|| "des".into());
    let unit = if engine == "swarm" { "of the transactions injected" } else { "virtual time" };
    let progress = progress_bar(args.quiet, unit);
    let started = Instant::now();
    let set = |done: f64| progress.set_position((done * 1_000.0) as u64);
    let summary = match engine.as_str() {
        "des" => {
            let options = sim::DesOptions { repeat: args.repeat, trace_rows: args.trace.then_some(args.trace_rows) };
            sim::run_des_with(&scenario, &out, options, set)?
        }
        "swarm" if args.trace => {
            return Err("--trace is a DES output: the swarm engine's messages are encrypted streams".into());
        }
        "swarm" => sim::run_swarm(&scenario, &out, args.repeat, set)?,
        other => return Err(format!("unknown engine {other:?} (des or swarm)")),
    };
    progress.finish_and_clear();
    println!(
        "{} nodes, {} txs: coverage {:.4}, p50/p90 time to 90% of nodes {} ms — {}{:.1}s wall",
        summary.nodes,
        summary.honest_txs,
        summary.coverage,
        summary.time_to_90_percent_ms.as_ref().map_or("-".into(), |p| format!("{:.1}/{:.1}", p.p50, p.p90)),
        summary.events.map_or_else(String::new, |events| format!("{events} events in ")),
        started.elapsed().as_secs_f64()
    );
    if let Some(swarm) = &summary.swarm {
        println!(
            "swarm: {} run(s), time to 90% p50 {:.1} ± {:.1} ms, p90 {:.1} ± {:.1} ms; timer lag p90 {} ms vs modelled \
             latency {:.1} ms{}",
            swarm.runs,
            swarm.time_to_90_percent_p50_ms.mean,
            swarm.time_to_90_percent_p50_ms.stddev,
            swarm.time_to_90_percent_p90_ms.mean,
            swarm.time_to_90_percent_p90_ms.stddev,
            swarm.timer_lag_ms.as_ref().map_or("-".into(), |l| format!("{:.2}", l.p90)),
            swarm.modelled_latency_ms,
            if swarm.overhead_flagged { " — FLAGGED: in-process overhead rivals the modelled latency" } else { "" }
        );
    }
    if let Some(repeats) = &summary.repeats {
        let interval = |i: &Option<sim::report::Interval>| {
            i.as_ref().map_or("-".into(), |i| format!("{:.1} [{:.1}, {:.1}]", i.mean, i.ci95_low, i.ci95_high))
        };
        println!(
            "{} runs: time to 90% p50 {} ms, p90 {} ms (means, 95% confidence intervals)",
            repeats.runs,
            interval(&repeats.time_to_90_percent_p50_ms),
            interval(&repeats.time_to_90_percent_p90_ms)
        );
    }
    if let Some(trace) = &summary.trace {
        if trace.rows_cut > 0 {
            println!(
                "trace CUT: {} rows written, {} later deliveries left out (raise --trace-rows)",
                trace.rows, trace.rows_cut
            );
        } else {
            println!("trace: {} rows", trace.rows);
        }
    }
    println!("run folder: {}", out.display());
    Ok(())
}
