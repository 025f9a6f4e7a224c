//! Network models: regions and latency, bandwidth classes, topologies. All drawn from the seed.

use std::collections::BTreeSet;

use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};

use super::scenario::{AttackKind, Scenario, Topology};

/// A link's delay multiplier for `jitter` (a fraction of the latency): uniform in
/// `[1, 1 + jitter)`, so a message is never faster than its link. Both engines draw from it.
pub fn jitter_factor(jitter: f64, rng: &mut StdRng) -> f64 {
    1.0 + jitter * rng.random::<f64>()
}

/// Regions with a one-way latency matrix (milliseconds) and their share of nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Regions {
    pub names: Vec<String>,
    pub weights: Vec<f64>,
    pub latency_ms: Vec<Vec<f64>>,
}

impl Default for Regions {
    /// Eight regions with one-way latencies of the order public inter-region measurements
    /// report (roughly half the round-trip times between cloud regions), weighted like
    /// Ethereum's node distribution (North America and Europe heaviest).
    fn default() -> Self {
        let names =
            ["us-east", "us-west", "eu-west", "eu-central", "asia-east", "asia-south", "oceania", "south-america"];
        let latency_ms = vec![
            vec![5.0, 32.0, 38.0, 45.0, 95.0, 105.0, 100.0, 60.0],
            vec![32.0, 5.0, 70.0, 75.0, 70.0, 110.0, 75.0, 85.0],
            vec![38.0, 70.0, 5.0, 10.0, 110.0, 60.0, 140.0, 95.0],
            vec![45.0, 75.0, 10.0, 5.0, 100.0, 55.0, 145.0, 105.0],
            vec![95.0, 70.0, 110.0, 100.0, 5.0, 45.0, 60.0, 150.0],
            vec![105.0, 110.0, 60.0, 55.0, 45.0, 5.0, 80.0, 160.0],
            vec![100.0, 75.0, 140.0, 145.0, 60.0, 80.0, 5.0, 150.0],
            vec![60.0, 85.0, 95.0, 105.0, 150.0, 160.0, 150.0, 5.0],
        ];
        Self {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            weights: vec![0.30, 0.10, 0.20, 0.20, 0.08, 0.04, 0.03, 0.05],
            latency_ms,
        }
    }
}

impl Regions {
    /// Reads `name,weight,lat_1,...,lat_n` rows (a header row starting with `name` is skipped).
    ///
    /// # Errors
    /// A row that does not parse, or a matrix that is not square.
    pub fn from_csv(text: &str) -> Result<Self, String> {
        let mut regions = Self { names: Vec::new(), weights: Vec::new(), latency_ms: Vec::new() };
        for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields[0] == "name" {
                continue;
            }
            let number = |s: &str| s.parse::<f64>().map_err(|e| format!("line {}: {e}", line_no + 1));
            regions.names.push(fields[0].to_owned());
            regions.weights.push(number(fields.get(1).ok_or("missing weight")?)?);
            regions.latency_ms.push(fields[2..].iter().map(|f| number(f)).collect::<Result<_, _>>()?);
        }
        let n = regions.names.len();
        if n == 0 || regions.latency_ms.iter().any(|row| row.len() != n) {
            return Err(format!("latency matrix must be {n}x{n}"));
        }
        Ok(regions)
    }
}

/// Where each node sits in a scenario: its neighbours, region, upload bandwidth and role.
/// Both engines build their network from this, so the same seed gives the same topology and
/// latency matrix on each.
#[derive(Debug, Clone)]
pub struct Layout {
    pub regions: Regions,
    pub neighbours: Vec<Vec<u32>>,
    pub region: Vec<usize>,
    pub uplink_mbps: Vec<f64>,
    pub attack: Vec<Option<AttackKind>>,
}

impl Layout {
    /// Draws the layout from the scenario's seed; returns the generator for further draws.
    ///
    /// # Errors
    /// A setting out of range ([`Scenario::check`]), or an unreadable regions file.
    pub fn draw(scenario: &Scenario) -> Result<(Self, StdRng), String> {
        scenario.check().map_err(|e| e.to_string())?;
        let regions = match &scenario.regions_csv {
            Some(path) => {
                Regions::from_csv(&std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?)?
            }
            None => Regions::default(),
        };
        let mut rng = StdRng::seed_from_u64(scenario.seed);
        let neighbours = topology(&mut rng, scenario.nodes, &scenario.topology);
        let class_weights: Vec<f64> = scenario.bandwidth_classes.iter().map(|c| c.1).collect();
        let mut attack: Vec<Option<AttackKind>> = vec![None; scenario.nodes];
        for adversary in &scenario.adversaries {
            let count = (adversary.fraction * scenario.nodes as f64).round() as usize;
            let mut placed = 0;
            while placed < count {
                let node = rng.random_range(0..scenario.nodes);
                if attack[node].is_none() {
                    attack[node] = Some(adversary.kind);
                    placed += 1;
                }
            }
        }
        let (mut region, mut uplink_mbps) = (Vec::new(), Vec::new());
        for _ in 0..scenario.nodes {
            region.push(weighted(&mut rng, &regions.weights));
            let class = weighted(&mut rng, &class_weights);
            uplink_mbps.push(scenario.bandwidth_classes.get(class).map_or(100.0, |c| c.0));
        }
        Ok((Self { regions, neighbours, region, uplink_mbps, attack }, rng))
    }

    /// One-way latency from node `from` to node `to`, in milliseconds.
    pub fn latency_ms(&self, from: usize, to: usize) -> f64 {
        self.regions.latency_ms[self.region[from]][self.region[to]]
    }
}

/// Picks an index by weights.
pub fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut pick = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

/// Undirected adjacency lists, each sorted (so iteration order is deterministic).
pub fn topology(rng: &mut StdRng, nodes: usize, topology: &Topology) -> Vec<Vec<u32>> {
    let mut edges: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); nodes];
    match *topology {
        Topology::RandomRegular { degree } => {
            // Pair up stubs at random (configuration model), dropping self-loops and repeats.
            let mut stubs: Vec<u32> = (0..nodes as u32).flat_map(|n| std::iter::repeat_n(n, degree)).collect();
            stubs.shuffle(rng);
            for pair in stubs.chunks_exact(2) {
                if pair[0] != pair[1] {
                    edges[pair[0] as usize].insert(pair[1]);
                    edges[pair[1] as usize].insert(pair[0]);
                }
            }
        }
        Topology::Outbound { dial, max_peers } => {
            for node in 0..nodes as u32 {
                let mut attempts = 0;
                while edges[node as usize].len() < dial && attempts < dial * 20 {
                    attempts += 1;
                    let peer = rng.random_range(0..nodes as u32);
                    if peer != node && edges[peer as usize].len() < max_peers && edges[node as usize].len() < max_peers
                    {
                        edges[node as usize].insert(peer);
                        edges[peer as usize].insert(node);
                    }
                }
            }
        }
        Topology::BarabasiAlbert { m } => {
            let m = m.max(1);
            // Every edge end in `ends` once: picking a uniform end is picking by degree.
            let mut ends: Vec<u32> = Vec::new();
            let seed = (m + 1).min(nodes);
            for a in 0..seed as u32 {
                for b in 0..a {
                    edges[a as usize].insert(b);
                    edges[b as usize].insert(a);
                    ends.extend([a, b]);
                }
            }
            for node in seed as u32..nodes as u32 {
                let mut attempts = 0;
                while edges[node as usize].len() < m && attempts < m * 50 {
                    attempts += 1;
                    let peer = ends[rng.random_range(0..ends.len())];
                    if peer != node && edges[node as usize].insert(peer) {
                        edges[peer as usize].insert(node);
                        ends.extend([node, peer]);
                    }
                }
            }
        }
    }
    edges.into_iter().map(|set| set.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn random_regular_is_close_to_regular_and_symmetric() {
        let mut rng = StdRng::seed_from_u64(3);
        let graph = topology(&mut rng, 1_000, &Topology::RandomRegular { degree: 8 });
        let mean = graph.iter().map(Vec::len).sum::<usize>() as f64 / 1_000.0;
        assert!((7.8..=8.0).contains(&mean), "mean degree {mean}");
        for (a, peers) in graph.iter().enumerate() {
            for b in peers {
                assert!(graph[*b as usize].contains(&(a as u32)));
            }
        }
    }

    #[test]
    fn outbound_respects_the_peer_cap() {
        let mut rng = StdRng::seed_from_u64(4);
        let graph = topology(&mut rng, 500, &Topology::Outbound { dial: 6, max_peers: 10 });
        assert!(graph.iter().all(|p| p.len() <= 10));
        assert!(graph.iter().filter(|p| p.len() >= 6).count() > 450);
    }

    #[test]
    fn barabasi_albert_grows_hubs() {
        let mut rng = StdRng::seed_from_u64(5);
        let graph = topology(&mut rng, 2_000, &Topology::BarabasiAlbert { m: 3 });
        assert!(graph.iter().all(|p| p.len() >= 3), "every node has its m links");
        let max = graph.iter().map(Vec::len).max().unwrap();
        assert!(max > 40, "preferential attachment makes hubs (max degree {max})");
    }

    #[test]
    fn regions_parse_from_csv() {
        let regions = Regions::from_csv("name,weight,a,b\na,0.5,5,50\nb,0.5,50,5\n").unwrap();
        assert_eq!(regions.latency_ms[0][1], 50.0);
        assert!(Regions::from_csv("a,1,5,6\n").is_err());
    }
}
