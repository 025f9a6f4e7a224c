//! The simulator: determinism, coverage, and attackers meeting the real peer scoring.

use std::time::Duration;

use proptest::prelude::*;
use tidepool::{
    gossip::{GossipConfig, GossipsubParams},
    sim::{self, Adversary, AttackKind, Churn, Propagation, Scenario, Topology},
    tx::generate::TxMix,
    validate::{ValidationConfig, Validator},
};

fn small(seed: u64) -> Scenario {
    Scenario { seed, nodes: 60, txs: 30, tx_rate: 20.0, drain_seconds: 5.0, ..Scenario::default() }
}

#[test]
fn the_same_seed_gives_a_byte_identical_summary() {
    let dir = tempfile::tempdir().unwrap();
    sim::run_des(&small(42), &dir.path().join("a"), |_| {}).unwrap();
    sim::run_des(&small(42), &dir.path().join("b"), |_| {}).unwrap();
    let a = std::fs::read(dir.path().join("a/summary.json")).unwrap();
    let b = std::fs::read(dir.path().join("b/summary.json")).unwrap();
    assert_eq!(a, b);
    for file in ["per_tx.csv", "per_node.csv"] {
        assert_eq!(
            std::fs::read(dir.path().join("a").join(file)).unwrap(),
            std::fs::read(dir.path().join("b").join(file)).unwrap()
        );
    }
    sim::run_des(&small(43), &dir.path().join("c"), |_| {}).unwrap();
    assert_ne!(a, std::fs::read(dir.path().join("c/summary.json")).unwrap(), "another seed, another run");
}

#[test]
fn a_small_network_reaches_full_coverage() {
    let dir = tempfile::tempdir().unwrap();
    let summary = sim::run_des(&small(7), dir.path(), |_| {}).unwrap();
    assert_eq!(summary.fully_covered_txs, 30);
    assert_eq!(summary.coverage, 1.0);
    let p = summary.time_to_100_percent_ms.unwrap();
    assert!(p.p50 > 0.0 && p.p50 < 2_000.0, "{p:?}");
}

#[test]
fn invalid_signature_attackers_are_cut_off_by_their_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario {
        adversaries: vec![Adversary { kind: AttackKind::InvalidSignature, fraction: 0.1, rate: 20.0 }],
        ..small(9)
    };
    let summary = sim::run_des(&scenario, dir.path(), |_| {}).unwrap();
    let attack = summary.attack.expect("attack summary");
    assert_eq!(attack.attackers, 6);
    assert_eq!(attack.attackers_isolated, 6, "every honest neighbour bans every flooder");
    assert_eq!(attack.honest_peers_wrongly_disconnected, 0);
    assert!(attack.baseline_time_to_90_percent_ms.is_some(), "the same seed also ran without attackers");
    assert!(summary.plots.contains(&"attack_comparison.svg".to_owned()));
    assert_eq!(summary.coverage, 1.0, "honest transactions still reach every honest node");
}

#[test]
fn the_run_folder_holds_scenario_summary_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    sim::run_des(&small(1), dir.path(), |_| {}).unwrap();
    let replayed: Scenario =
        toml::from_str(&std::fs::read_to_string(dir.path().join("scenario.toml")).unwrap()).unwrap();
    assert_eq!(replayed, small(1));
    let per_tx = std::fs::read_to_string(dir.path().join("per_tx.csv")).unwrap();
    assert_eq!(per_tx.lines().count(), 31);
    let per_node = std::fs::read_to_string(dir.path().join("per_node.csv")).unwrap();
    assert_eq!(per_node.lines().count(), 61);
    for plot in ["propagation_cdf.svg", "coverage_over_time.svg", "bandwidth_per_node.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{plot} has a drawn series");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["plots"].as_array().unwrap().len(), 3);
}

#[test]
fn every_attack_kind_runs_and_honest_traffic_still_arrives() {
    for kind in
        [AttackKind::Malformed, AttackKind::AnnounceNeverServe, AttackKind::ValidSpam, AttackKind::DuplicateReplay]
    {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario { adversaries: vec![Adversary { kind, fraction: 0.1, rate: 50.0 }], ..small(11) };
        let summary = sim::run_des(&scenario, dir.path(), |_| {}).unwrap();
        assert_eq!(summary.coverage, 1.0, "{kind:?}: honest transactions reach every honest node");
        assert_eq!(summary.attack.unwrap().honest_peers_wrongly_disconnected, 0, "{kind:?}");
    }
}

#[test]
fn other_topologies_from_a_scenario_file_also_cover_the_network() {
    for topology in ["kind = \"barabasi_albert\"\nm = 3", "kind = \"outbound\"\ndial = 6\nmax_peers = 12"] {
        let text =
            format!("seed = 3\nnodes = 80\ntxs = 20\ntx_rate = 20.0\ndrain_seconds = 5.0\n[topology]\n{topology}\n");
        let scenario: Scenario = toml::from_str(&text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let summary = sim::run_des(&scenario, dir.path(), |_| {}).unwrap();
        assert_eq!(summary.coverage, 1.0, "{topology}");
    }
}

#[test]
fn churn_runs_deterministically_and_most_transactions_still_spread() {
    let scenario = Scenario { churn: Some(sim::Churn { leaves_per_second: 5.0, downtime_seconds: 1.0 }), ..small(13) };
    let dir = tempfile::tempdir().unwrap();
    let a = sim::run_des(&scenario, &dir.path().join("a"), |_| {}).unwrap();
    sim::run_des(&scenario, &dir.path().join("b"), |_| {}).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("a/summary.json")).unwrap(),
        std::fs::read(dir.path().join("b/summary.json")).unwrap()
    );
    assert!(a.coverage > 0.8 && a.coverage <= 1.0, "coverage {}", a.coverage);
    assert_eq!(a.attack.map_or(0, |x| x.honest_peers_wrongly_disconnected), 0);
}

#[test]
fn the_swarm_engine_reaches_full_coverage_on_real_swarms() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario { nodes: 24, txs: 12, ..small(5) };
    let summary = sim::run_swarm(&scenario, dir.path(), 2, |_| {}).unwrap();
    assert_eq!(summary.engine, "swarm");
    assert_eq!(summary.coverage, 1.0, "{summary:?}");
    let swarm = summary.swarm.expect("swarm summary");
    assert_eq!(swarm.runs, 2);
    let p50 = &swarm.time_to_90_percent_p50_ms;
    assert!(p50.mean > 0.0 && p50.ci95_low <= p50.mean && p50.mean <= p50.ci95_high, "{p50:?}");
    assert!(dir.path().join("propagation_cdf.svg").exists());
    // Gossipsub-level duplicates, read from the real routers' metrics (it said 0.00 before).
    assert!(summary.duplicates_per_node_per_tx > 1.0, "{}", summary.duplicates_per_node_per_tx);
    assert!(summary.not_measured.contains(&"lost_messages"), "{:?}", summary.not_measured);
    assert!(summary.mean_bytes_per_node.contains_key("up_total"));
    assert!(!summary.mean_bytes_per_node.contains_key("up_control"), "not told apart on the wire");
}

#[test]
fn on_the_swarm_engine_an_invalid_signature_flooder_is_banned_by_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario {
        nodes: 20,
        txs: 10,
        adversaries: vec![Adversary { kind: AttackKind::InvalidSignature, fraction: 0.05, rate: 20.0 }],
        ..small(11)
    };
    let summary = sim::run_swarm(&scenario, dir.path(), 1, |_| {}).unwrap();
    let attack = summary.attack.expect("attack summary");
    assert_eq!(attack.attackers, 1);
    assert_eq!(attack.attackers_isolated, 1, "every honest neighbour banned the flooder: {attack:?}");
    assert_eq!(attack.honest_peers_wrongly_disconnected, 0);
    assert_eq!(summary.coverage, 1.0);
}

fn attacked(fraction: f64) -> Scenario {
    let adversary = Adversary { kind: AttackKind::InvalidSignature, fraction, rate: 20.0 };
    Scenario { adversaries: vec![adversary], ..small(1) }
}

/// The bad inputs that used to hang, panic or answer wrongly (a zero tx rate, a zero heartbeat,
/// an attack fraction of 1 or 2, a zero bandwidth, a loss of 1.5, a negative jitter, a degree
/// of 0, ...) are refused before the run, with the setting's name and its allowed range.
#[test]
fn every_bad_input_is_refused_with_its_setting_named() {
    let cases = [
        (Scenario { tx_rate: 0.0, ..small(1) }, "tx_rate"),
        (Scenario { tx_rate: -5.0, ..small(1) }, "tx_rate"),
        (Scenario { tx_rate: f64::NAN, ..small(1) }, "tx_rate"),
        (mesh(GossipsubParams { heartbeat_millis: 0, ..GossipsubParams::default() }), "gossipsub.heartbeat_millis"),
        (attacked(2.0), "adversaries[0].fraction"),
        (attacked(1.0), "adversaries[0].fraction"),
        (attacked(0.99), "adversaries"),
        (Scenario { bandwidth_classes: vec![(0.0, 1.0)], ..small(1) }, "bandwidth_classes"),
        (Scenario { loss: 1.5, ..small(1) }, "loss"),
        (Scenario { jitter: -0.1, ..small(1) }, "jitter"),
        (Scenario { topology: Topology::RandomRegular { degree: 0 }, ..small(1) }, "topology.degree"),
        (Scenario { nodes: 1, ..small(1) }, "nodes"),
        (mesh(GossipsubParams { d: 0, ..GossipsubParams::default() }), "gossipsub.d"),
        (mesh(GossipsubParams { d: 4, ..GossipsubParams::default() }), "gossipsub.d_low"),
        (mesh(GossipsubParams { d_high: 7, d: 8, ..GossipsubParams::default() }), "gossipsub.d_high"),
        (mesh(GossipsubParams { d_out: 4, ..GossipsubParams::default() }), "gossipsub.d_out"),
        (mesh(GossipsubParams { history_gossip: 6, ..GossipsubParams::default() }), "gossipsub.history_gossip"),
        (mesh(GossipsubParams { gossip_factor: 1.5, ..GossipsubParams::default() }), "gossipsub.gossip_factor"),
        (mesh(GossipsubParams { d: 60, d_high: 60, ..GossipsubParams::default() }), "gossipsub.d"),
        (Scenario { tx_size: Some(50), ..small(1) }, "tx_size"),
        (Scenario { validation_micros: Some(20_000_000), ..small(1) }, "validation_micros"),
        (Scenario { drain_seconds: f64::INFINITY, ..small(1) }, "drain_seconds"),
    ];
    for (scenario, setting) in cases {
        let error = scenario.check().expect_err(setting);
        assert_eq!(error.setting, setting, "{error}");
        let dir = tempfile::tempdir().unwrap();
        let refused = sim::run_des(&scenario, dir.path(), |_| {}).unwrap_err();
        assert!(refused.contains(&format!("`{setting}`")) && refused.contains(error.allowed), "{refused}");
    }
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace_naming_every_kind_of_delivery() {
    let dir = tempfile::tempdir().unwrap();
    // The generator's mix has transactions above 1 KB (IDONTWANT) and 4 KiB (announced); a
    // lossy network makes IHAVE/IWANT repair what the mesh lost.
    let scenario = Scenario { loss: 0.05, txs: 200, tx_rate: 100.0, ..small(5) };
    let options = sim::DesOptions { repeat: 1, trace_rows: Some(10_000_000) };
    let a = sim::run_des_with(&scenario, &dir.path().join("a"), options, |_| {}).unwrap();
    sim::run_des_with(&scenario, &dir.path().join("b"), options, |_| {}).unwrap();
    let trace = std::fs::read_to_string(dir.path().join("a/trace.csv")).unwrap();
    assert_eq!(trace.as_bytes(), std::fs::read(dir.path().join("b/trace.csv")).unwrap());
    assert!(trace.starts_with("time_ms,tx,from,to,kind,copy\n"));
    for kind in [",push,first", ",push,duplicate", ",ihave,", ",iwant,", ",idontwant,", ",announce,", ",fetch_request,"]
    {
        assert!(trace.contains(kind), "no {kind} row");
    }
    let summary = a.trace.unwrap();
    assert_eq!((summary.rows, summary.rows_cut), (trace.lines().count() - 1, 0));

    let options = sim::DesOptions { repeat: 1, trace_rows: Some(100) };
    let cut = sim::run_des_with(&scenario, &dir.path().join("c"), options, |_| {}).unwrap().trace.unwrap();
    assert_eq!(cut.rows, 100);
    assert_eq!(cut.rows_cut as usize, summary.rows - 100, "the bound counts what it leaves out");
}

#[test]
fn idontwant_saves_duplicates_of_large_transactions() {
    let dir = tempfile::tempdir().unwrap();
    // 60 KB pushed (not announced) over 25 Mbit/s uplinks: ~20 ms on the wire per copy, time
    // for an IDONTWANT to overtake the copies still queued (here it halves the duplicates).
    let large = Scenario {
        tx_size: Some(60_000),
        bandwidth_classes: vec![(25.0, 1.0)],
        gossip: GossipConfig { announce_above: 200_000, ..GossipConfig::default() },
        ..small(6)
    };
    let with = sim::run_des(&large, &dir.path().join("with"), |_| {}).unwrap();
    let never = GossipsubParams { idontwant_above: usize::MAX, ..large.gossipsub };
    let without = sim::run_des(&Scenario { gossipsub: never, ..large }, &dir.path().join("without"), |_| {}).unwrap();
    assert_eq!((with.coverage, without.coverage), (1.0, 1.0));
    assert!(
        with.duplicates_per_node_per_tx < without.duplicates_per_node_per_tx * 0.7,
        "{} duplicates per node and transaction with IDONTWANT, {} without",
        with.duplicates_per_node_per_tx,
        without.duplicates_per_node_per_tx
    );
}

#[test]
fn repeats_report_means_with_confidence_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let options = sim::DesOptions { repeat: 4, trace_rows: None };
    let summary = sim::run_des_with(&small(8), dir.path(), options, |_| {}).unwrap();
    let repeats = summary.repeats.unwrap();
    assert_eq!(repeats.seeds.len(), 4);
    assert_eq!(repeats.seeds[0], 8);
    let p50 = repeats.time_to_90_percent_p50_ms.unwrap();
    assert!(p50.ci95_low < p50.mean && p50.mean < p50.ci95_high, "{p50:?}");
    let rows = std::fs::read_to_string(dir.path().join("repeats.csv")).unwrap();
    assert_eq!(rows.lines().count(), 5);
    let mean = rows.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap()).sum::<f64>() / 4.0;
    assert!((mean - p50.mean).abs() < 1e-3, "the interval's mean is the runs' mean");
}

/// SCENARIO.md, the reference `tidepool sim --help` points to, names every scenario key.
#[test]
fn the_scenario_reference_names_every_setting() {
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SCENARIO.md")).unwrap();
    let scenario = Scenario { tx_size: Some(200), validation_micros: Some(50), ..Scenario::default() };
    let keys = toml::Value::try_from(&scenario).unwrap();
    let gossipsub = toml::Value::try_from(GossipsubParams::default()).unwrap();
    let names = keys.as_table().unwrap().keys().chain(gossipsub.as_table().unwrap().keys());
    for key in names.chain(["regions_csv", "churn"].iter().map(|k| k.to_string()).collect::<Vec<_>>().iter()) {
        assert!(reference.contains(&format!("`{key}`")), "SCENARIO.md does not name `{key}`");
    }
}

#[test]
fn eth68_on_the_same_layout_reaches_everyone_with_fewer_duplicates_and_more_delay() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Scenario { nodes: 100, txs: 60, topology: Topology::RandomRegular { degree: 16 }, ..small(4) };
    let gossipsub = sim::run_des(&layout, &dir.path().join("gossipsub"), |_| {}).unwrap();
    let eth68 = Scenario { propagation: Propagation::Eth68, ..layout };
    let eth68 = sim::run_des(&eth68, &dir.path().join("eth68"), |_| {}).unwrap();
    assert_eq!((gossipsub.coverage, eth68.coverage), (1.0, 1.0));
    assert!(eth68.duplicates_per_node_per_tx < gossipsub.duplicates_per_node_per_tx * 0.7);
    let reach = |s: &sim::report::Summary| s.time_to_90_percent_ms.clone().unwrap().p50;
    assert!(reach(&eth68) > reach(&gossipsub), "announced transactions wait 500 ms before a fetch");
    let payload = |s: &sim::report::Summary| s.mean_bytes_per_node["up_payload"];
    assert!(payload(&eth68) < payload(&gossipsub), "full copies go to √n peers, not the whole mesh");
}

/// A setting the swarm engine cannot honour is refused by name, never ignored.
#[test]
fn the_swarm_engine_refuses_what_it_only_models_in_the_des() {
    let dir = tempfile::tempdir().unwrap();
    for (scenario, named) in [
        (Scenario { propagation: Propagation::Eth68, ..small(1) }, "eth/68"),
        (Scenario { validation_micros: Some(80), ..small(1) }, "validation_micros"),
        (Scenario { loss: 0.1, ..small(1) }, "loss"),
        (Scenario { churn: Some(Churn { leaves_per_second: 1.0, downtime_seconds: 1.0 }), ..small(1) }, "churn"),
    ] {
        let error = sim::run_swarm(&scenario, dir.path(), 1, |_| {}).unwrap_err();
        assert!(error.contains(named), "{named}: {error}");
    }
}

/// `tx_size` transactions are real ones: the validator accepts them at every size allowed.
#[test]
fn fixed_size_transactions_are_valid_at_every_allowed_size() {
    let mut mix = TxMix::new(3, 4, 1);
    let validator = Validator::new(ValidationConfig { min_priority_fee: 0, ..ValidationConfig::default() });
    for size in [120, 121, 255, 256, 1_000, 4_097, 65_536, 131_072] {
        let tx = mix.next_tx_of_size(size);
        assert_eq!(tx.raw.len(), size);
        validator.validate(tx.raw).unwrap_or_else(|e| panic!("{size} bytes: {e}"));
    }
}

fn mesh(gossipsub: GossipsubParams) -> Scenario {
    Scenario { gossipsub, ..small(1) }
}

/// Runs the DES on a thread and waits at most `limit` for it.
fn finishes_within(scenario: Scenario, limit: Duration) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let _ = done.send(sim::run_des(&scenario, dir.path(), |_| {}).map(|_| ()));
    });
    matches!(finished.recv_timeout(limit), Ok(Ok(())))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever a scenario file holds, the simulator either refuses it by name or finishes:
    /// no input hangs or panics it. Each value is in range nine times in ten, so about a
    /// quarter of the scenarios are valid and run.
    #[test]
    fn no_scenario_hangs_or_panics_the_simulator(
        nodes in prop_oneof![1 => Just(1usize), 9 => 2usize..40],
        txs in prop_oneof![1 => Just(0usize), 9 => 1usize..15],
        tx_rate in prop_oneof![1 => prop_oneof![Just(0.0), Just(-1.0), Just(f64::NAN)], 9 => 0.5f64..200.0],
        jitter in prop_oneof![1 => -0.5f64..-0.01, 9 => 0.0f64..1.0],
        loss in prop_oneof![1 => prop_oneof![Just(1.0), Just(1.5)], 9 => 0.0f64..0.5],
        mbps in prop_oneof![1 => Just(0.0), 9 => 0.05f64..1_000.0],
        heartbeat_millis in prop_oneof![1 => Just(0u64), 9 => 1u64..2_000],
        d in prop_oneof![1 => Just(0usize), 9 => 1usize..12],
        degree in 0usize..40,
        fraction in prop_oneof![1 => prop_oneof![Just(1.0), Just(2.0), Just(-0.1)], 9 => 0.0f64..0.3],
        rate in prop_oneof![1 => Just(0.0), 9 => 0.5f64..50.0],
        drain_seconds in prop_oneof![1 => Just(f64::NAN), 9 => 0.0f64..5.0],
    ) {
        let adversaries = vec![Adversary { kind: AttackKind::InvalidSignature, fraction, rate }];
        let scenario = Scenario {
            nodes, txs, tx_rate, jitter, loss, adversaries, drain_seconds,
            gossipsub: GossipsubParams { d, d_low: d.saturating_sub(1), d_out: 0, heartbeat_millis, ..GossipsubParams::default() },
            bandwidth_classes: vec![(mbps, 1.0)],
            topology: Topology::RandomRegular { degree },
            ..Scenario::default()
        };
        let refused = scenario.check().is_err();
        prop_assert!(refused || finishes_within(scenario, Duration::from_secs(120)), "a valid scenario did not finish");
    }
}
