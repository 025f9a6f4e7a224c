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
    let needed = ((honest as f64 * fraction).ceil() as usize).max(1);
    record.delays.get(needed - 1).map(|&ns| ns as f64 / MS)
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

/// Mean and standard deviation over runs.
#[derive(Debug, Serialize)]
pub struct MeanSpread {
    pub mean: f64,
    pub stddev: f64,
    pub values: Vec<f64>,
}

impl MeanSpread {
    pub fn of(values: Vec<f64>) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let stddev = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Self { mean, stddev, values }
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
    /// Honest propagation (time to reach 90% of honest nodes) without the attackers, same seed.
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
        bytes.insert("up_payload", mean(&|s| s.up_payload));
        bytes.insert("up_control", mean(&|s| s.up_control));
        bytes.insert("down_payload", mean(&|s| s.down_payload));
        bytes.insert("down_control", mean(&|s| s.down_control));
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
        baseline_time_to_90_percent_ms: baseline
            .and_then(|b| percentiles(b.txs.iter().filter_map(|t| reach(t, honest, 0.9)).collect())),
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
