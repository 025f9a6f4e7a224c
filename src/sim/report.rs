//! Turning a run into its outputs: `summary.json`, `per_tx.csv`, `per_node.csv`.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::Serialize;

use super::{
    record::{NodeStats, Run, TxRecord},
    scenario::Scenario,
};

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Percentiles of `values` (any unit), `None` when empty.
pub fn percentiles(mut values: Vec<f64>) -> Option<Percentiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some(Percentiles { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1.0) })
}

const MS: f64 = 1e6;

/// The time (ms) a transaction took to reach `fraction` of honest nodes, if it did.
fn reach(record: &TxRecord, honest: usize, fraction: f64) -> Option<f64> {
    reach_in(&record.delays, honest, fraction)
}

/// The time (ms) until `fraction` of `nodes` nodes had it, from their ascending `delays`.
fn reach_in(delays: &[u64], nodes: usize, fraction: f64) -> Option<f64> {
    let needed = ((nodes as f64 * fraction).ceil() as usize).max(1);
    delays.get(needed - 1).map(|&ns| ns as f64 / MS)
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub engine: &'static str,
    /// The code that produced the run: git revision, `-dirty` with uncommitted changes.
    pub code_revision: &'static str,
    pub seed: u64,
    pub nodes: usize,
    pub honest_nodes: usize,
    pub honest_txs: usize,
    /// Across transactions: time to reach 50/90/99/100% of honest nodes.
    pub time_to_50_percent_ms: Option<Percentiles>,
    pub time_to_90_percent_ms: Option<Percentiles>,
    pub time_to_99_percent_ms: Option<Percentiles>,
    pub time_to_100_percent_ms: Option<Percentiles>,
    /// Across all (transaction, node) deliveries: delay from injection to pooling.
    pub pooled_delay_ms: Option<Percentiles>,
    /// Mean fraction of honest nodes each transaction reached.
    pub coverage: f64,
    pub fully_covered_txs: usize,
    pub duplicates_per_node_per_tx: f64,
    pub mean_bytes_per_node: BTreeMap<&'static str, f64>,
    pub drops: BTreeMap<String, u64>,
    /// Messages lost to modelled link loss; omitted where the engine does not model loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_messages: Option<u64>,
    pub attack: Option<AttackSummary>,
    /// Discrete events processed; omitted for the swarm engine (it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// Plot files written next to this summary.
    pub plots: Vec<String>,
    pub virtual_seconds: f64,
    /// Swarm engine only: the spread over repeated runs and the in-process overhead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmSummary>,
    /// `--repeat` on the DES: means and 95% confidence intervals over runs with derived seeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Repeats>,
    /// `--trace`: the file, its rows and what the bound cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<super::trace::TraceSummary>,
    /// Fields this engine does not measure (absent above, or to be read as such).
    pub not_measured: Vec<&'static str>,
}

/// What repeating a wall-clock run says about its spread, and how much the process itself
/// delayed things.
#[derive(Debug, Serialize)]
pub struct SwarmSummary {
    pub runs: usize,
    /// Per run: p50 and p90 (across transactions) of the time to reach 90% of honest nodes.
    pub time_to_90_percent_p50_ms: MeanSpread,
    pub time_to_90_percent_p90_ms: MeanSpread,
    /// How late this process's timers fired during the runs (ms).
    pub timer_lag_ms: Option<Percentiles>,
    /// Mean modelled one-way latency over the topology's links (ms).
    pub modelled_latency_ms: f64,
    /// Set when the timer lag's p90 exceeds a twentieth of the modelled latency: the process, not
    /// the model, then shapes the results.
    pub overhead_flagged: bool,
}

/// Mean, standard deviation and 95% confidence interval (as the DES's `--repeat` reports
/// them, [`Interval`]) over runs.
#[derive(Debug, Serialize)]
pub struct MeanSpread {
    pub mean: f64,
    pub stddev: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    pub values: Vec<f64>,
}

impl MeanSpread {
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let stddev = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let interval = Interval::of(&values).unwrap_or(Interval { mean, ci95_low: mean, ci95_high: mean });
        Self { mean, stddev, ci95_low: interval.ci95_low, ci95_high: interval.ci95_high, values }
    }
}

/// A statistic over repeated runs: its mean and 95% confidence interval (Student's t).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
}

impl Interval {
    /// `None` without values; a single value is its own interval.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Self { mean, ci95_low: mean, ci95_high: mean });
        }
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = student_t95(n - 1) * (variance / n as f64).sqrt();
        Some(Self { mean, ci95_low: mean - half, ci95_high: mean + half })
    }
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
fn student_t95(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

/// What `--repeat N` on the DES reports: per run, the summary's headline figures; over runs,
/// their means with 95% confidence intervals.
#[derive(Debug, Serialize)]
pub struct Repeats {
    pub runs: usize,
    /// Seeds of the runs: the base seed, then ones derived from it.
    pub seeds: Vec<u64>,
    /// Per run: p50 and p90 (across transactions) of the time to reach 90% of honest nodes.
    pub time_to_90_percent_p50_ms: Option<Interval>,
    pub time_to_90_percent_p90_ms: Option<Interval>,
    pub coverage: Option<Interval>,
    pub duplicates_per_node_per_tx: Option<Interval>,
}

impl Repeats {
    pub fn of(seeds: Vec<u64>, summaries: &[Summary]) -> Self {
        let reach = |pick: fn(&Percentiles) -> f64| -> Vec<f64> {
            summaries.iter().filter_map(|s| s.time_to_90_percent_ms.as_ref().map(pick)).collect()
        };
        let all = |pick: fn(&Summary) -> f64| -> Vec<f64> { summaries.iter().map(pick).collect() };
        Self {
            runs: summaries.len(),
            seeds,
            time_to_90_percent_p50_ms: Interval::of(&reach(|p| p.p50)),
            time_to_90_percent_p90_ms: Interval::of(&reach(|p| p.p90)),
            coverage: Interval::of(&all(|s| s.coverage)),
            duplicates_per_node_per_tx: Interval::of(&all(|s| s.duplicates_per_node_per_tx)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AttackSummary {
    pub attackers: usize,
    /// Attackers every honest neighbour has cut off by the end.
    pub attackers_isolated: usize,
    /// Per attacker, from the attack's start: the first and the last neighbour's ban (ms).
    pub time_to_first_ban_ms: Option<Percentiles>,
    pub time_to_isolation_ms: Option<Percentiles>,
    /// Honest nodes disconnected by honest neighbours (should be 0).
    pub honest_peers_wrongly_disconnected: u64,
    /// The same seed without the attackers (their nodes stay in the network, honest): time to
    /// reach 90% of the nodes that are honest in the attacked run, so both sides of the
    /// comparison count the same nodes.
    pub baseline_time_to_90_percent_ms: Option<Percentiles>,
    /// Bytes attackers uploaded per byte honest nodes uploaded (spam amplification).
    pub spam_bytes_per_honest_byte: f64,
}

impl Summary {
    pub fn of(run: &Run, scenario: &Scenario, baseline: Option<&Run>) -> Self {
        let honest = run.honest_nodes().count();
        let txs = &run.txs;
        let reach_all = |fraction| percentiles(txs.iter().filter_map(|t| reach(t, honest, fraction)).collect());
        let deliveries: Vec<f64> = txs.iter().flat_map(|t| t.delays.iter().map(|&d| d as f64 / MS)).collect();
        let coverage = if txs.is_empty() {
            0.0
        } else {
            txs.iter().map(|t| t.delays.len() as f64 / honest as f64).sum::<f64>() / txs.len() as f64
        };
        let honest_stats: Vec<_> = run.honest_nodes().map(|n| &n.stats).collect();
        let mean = |f: &dyn Fn(&NodeStats) -> u64| {
            honest_stats.iter().map(|s| f(s) as f64).sum::<f64>() / honest_stats.len().max(1) as f64
        };
        let mut bytes = BTreeMap::new();
        let mut not_measured = Vec::new();
        if run.control_bytes_measured() {
            bytes.insert("up_payload", mean(&|s| s.up_payload));
            bytes.insert("up_control", mean(&|s| s.up_control));
            bytes.insert("down_payload", mean(&|s| s.down_payload));
            bytes.insert("down_control", mean(&|s| s.down_control));
        } else {
            bytes.insert("up_total", mean(&|s| s.up_payload + s.up_control));
            bytes.insert("down_total", mean(&|s| s.down_payload + s.down_control));
            not_measured
                .extend(["mean_bytes_per_node.up_payload/up_control", "mean_bytes_per_node.down_payload/down_control"]);
        }
        if run.lost_messages.is_none() {
            not_measured.push("lost_messages");
        }
        if run.events.is_none() {
            not_measured.push("events");
        }
        let duplicates = mean(&|s| s.duplicates) / txs.len().max(1) as f64;
        Self {
            engine: run.engine,
            code_revision: env!("TIDEPOOL_REVISION"),
            seed: scenario.seed,
            nodes: run.nodes.len(),
            honest_nodes: honest,
            honest_txs: txs.len(),
            time_to_50_percent_ms: reach_all(0.5),
            time_to_90_percent_ms: reach_all(0.9),
            time_to_99_percent_ms: reach_all(0.99),
            time_to_100_percent_ms: reach_all(1.0),
            pooled_delay_ms: percentiles(deliveries),
            coverage,
            fully_covered_txs: txs.iter().filter(|t| t.delays.len() == honest).count(),
            duplicates_per_node_per_tx: duplicates,
            mean_bytes_per_node: bytes,
            drops: run.drops.iter().map(|(r, n)| (r.kind().to_owned(), *n)).collect(),
            lost_messages: run.lost_messages,
            attack: attack_summary(run, baseline, honest),
            events: run.events,
            plots: Vec::new(),
            virtual_seconds: run.virtual_ns as f64 / 1e9,
            swarm: None,
            repeats: None,
            trace: None,
            not_measured,
        }
    }
}

fn attack_summary(run: &Run, baseline: Option<&Run>, honest: usize) -> Option<AttackSummary> {
    let attackers: Vec<u32> = (0..run.nodes.len() as u32).filter(|&n| !run.nodes[n as usize].is_honest()).collect();
    if attackers.is_empty() {
        return None;
    }
    let mut by_attacker: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let attack_start = run.attack_start_ns.unwrap_or(0);
    for ban in &run.attacker_bans {
        by_attacker.entry(ban.attacker).or_default().push(ban.at_ns.saturating_sub(attack_start));
    }
    let first = by_attacker.values().filter_map(|t| t.iter().min()).map(|&t| t as f64 / MS).collect();
    let isolated: Vec<f64> = attackers
        .iter()
        .filter(|&&a| run.nodes[a as usize].honest_peers == 0)
        .filter_map(|a| by_attacker.get(a)?.iter().max())
        .map(|&t| t as f64 / MS)
        .collect();
    Some(AttackSummary {
        attackers: attackers.len(),
        attackers_isolated: isolated.len(),
        time_to_first_ban_ms: percentiles(first),
        time_to_isolation_ms: percentiles(isolated),
        honest_peers_wrongly_disconnected: run.honest_disconnects,
        baseline_time_to_90_percent_ms: baseline.and_then(|b| {
            let counted = |node: u32| run.nodes[node as usize].is_honest();
            percentiles(b.txs.iter().filter_map(|t| reach_in(&t.delays_among(counted), honest, 0.9)).collect())
        }),
        spam_bytes_per_honest_byte: {
            let sent = |attack: bool| -> u64 {
                let nodes = run.nodes.iter().filter(|n| n.is_honest() != attack);
                nodes.map(|n| n.stats.up_payload + n.stats.up_control).sum()
            };
            sent(true) as f64 / sent(false).max(1) as f64
        },
    })
}

/// Writes `summary.json`.
///
/// # Errors
/// File system errors.
pub fn write_summary(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(summary).map_err(std::io::Error::other)? + "\n",
    )
}

/// Writes the run folder's scenario and CSVs, and returns the summary (see [`write_summary`]).
///
/// # Errors
/// File system errors.
pub fn write(dir: &Path, scenario: &Scenario, run: &Run, baseline: Option<&Run>) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let config = toml::to_string(scenario).map_err(std::io::Error::other)?;
    std::fs::write(
        dir.join("scenario.toml"),
        format!(
            "# tidepool {} (revision {}), {} engine — rerun with `tidepool sim replay {}`\n{config}",
            env!("CARGO_PKG_VERSION"),
            env!("TIDEPOOL_REVISION"),
            run.engine,
            dir.display()
        ),
    )?;
    let summary = Summary::of(run, scenario, baseline);

    let honest = summary.honest_nodes;
    let mut per_tx = String::from("tx,origin,size,nodes_reached,t50_ms,t90_ms,t99_ms,t100_ms\n");
    for (i, tx) in run.txs.iter().enumerate() {
        let cell = |f| reach(tx, honest, f).map_or(String::new(), |v| format!("{v:.3}"));
        let _ = writeln!(
            per_tx,
            "{i},{},{},{},{},{},{},{}",
            tx.origin,
            tx.size,
            tx.delays.len(),
            cell(0.5),
            cell(0.9),
            cell(0.99),
            cell(1.0)
        );
    }
    std::fs::write(dir.join("per_tx.csv"), per_tx)?;

    let mut per_node = String::from(
        "node,region,role,honest_peers_at_end,up_payload,up_control,down_payload,down_control,duplicates,validations\n",
    );
    for (i, node) in run.nodes.iter().enumerate() {
        let role = node.attack.map_or_else(|| "honest".to_owned(), |k| format!("{k:?}"));
        let s = &node.stats;
        let _ = writeln!(
            per_node,
            "{i},{},{role},{},{},{},{},{},{},{}",
            run.region_names[node.region],
            node.honest_peers,
            s.up_payload,
            s.up_control,
            s.down_payload,
            s.down_control,
            s.duplicates,
            s.validations
        );
    }
    std::fs::write(dir.join("per_node.csv"), per_node)?;
    Ok(summary)
}
