//! The swarm engine: N real rust-libp2p swarms in one process, each with the node's behaviour
//! (gossipsub, fetch, identify, ping, limits) driven by the node's own network driver and gossip
//! core, over libp2p's in-memory transport with a shaping wrapper on every link.
//!
//! Owns: the shaped links (`ShapedStream`: one-way delay by region pair, jitter, each node's
//! upload bandwidth), starting the nodes on the scenario's layout (the same topology, regions and
//! bandwidths as the discrete-event engine for the same seed), injecting transactions and
//! recording when each node pooled each one.
//! Does not: decide anything about gossip (the real `net` driver and `GossipCore` do), or run
//! in virtual time: this engine runs on the wall clock, so its results vary a little between
//! runs (`run_swarm` repeats and reports the spread), and it measures how late its own timers
//! fire so that a run whose in-process overhead rivals the modelled latency is flagged.
//!
//! Every node validates through one shared `ValidationPipeline` (the verdict for the same bytes
//! is the same on every node; the pipeline's recent-verdict cache makes repeats cheap), with
//! its own pool.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use alloy_primitives::{B256, keccak256};
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::{
    Multiaddr, Transport as _,
    core::{ConnectedPoint, multiaddr::Protocol, transport::MemoryTransport, upgrade::Version},
    gossipsub,
    identity::Keypair,
    noise, yamux,
};
use prometheus_client::registry::Registry;
use rand::{Rng as _, rngs::StdRng};
use tokio::{
    sync::mpsc,
    time::{Instant, sleep_until},
};

use super::{
    model::Layout,
    record::{AttackerBan, NodeRecord, NodeStats, Run, TxRecord},
    scenario::{AttackKind, Propagation, Scenario},
};
use crate::{
    Tidepool,
    gossip::DropReason,
    net::{NetConfig, NetworkHandle, protocol},
    pool::PoolEvent,
    state::{AccountState, ChainHead, InMemoryState},
    tx::{Origin, generate::TxMix},
    validate::{PipelineConfig, ValidationConfig, ValidationPipeline, Validator},
};

/// Per transaction: (delay in ns, node) of each pooling.
type Deliveries = Vec<Vec<(u64, u32)>>;

/// In-memory ports are process-wide: every run takes a fresh range.
static NEXT_PORT: AtomicU64 = AtomicU64::new(1 << 40);

/// One node's upload link: serialises what it sends at its bandwidth, and counts bytes.
#[derive(Debug)]
struct Uplink {
    bytes_per_second: f64,
    next_free: Mutex<Instant>,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Uplink {
    fn new(mbps: f64) -> Self {
        Self {
            bytes_per_second: mbps * 1e6 / 8.0,
            next_free: Mutex::new(Instant::now()),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// When `len` bytes handed over now have left the node.
    fn send(&self, len: usize, now: Instant) -> Instant {
        self.sent.fetch_add(len as u64, Ordering::Relaxed);
        let mut next_free = self.next_free.lock().expect("uplink lock");
        let start = (*next_free).max(now);
        *next_free = start + Duration::from_secs_f64(len as f64 / self.bytes_per_second);
        *next_free
    }
}

/// One direction of a link: who sends, who receives, the one-way delay and its jitter.
struct Direction {
    from: Arc<Uplink>,
    to: Arc<Uplink>,
    delay: Duration,
    jitter: f64,
    rng: StdRng,
    /// Delivery times never go backwards: a stream is in order.
    last: Instant,
}

impl Direction {
    /// When `len` bytes handed over now arrive.
    fn arrival(&mut self, len: usize) -> Instant {
        let left = self.from.send(len, Instant::now());
        self.to.received.fetch_add(len as u64, Ordering::Relaxed);
        let at = (left + self.delay.mul_f64(super::model::jitter_factor(self.jitter, &mut self.rng))).max(self.last);
        self.last = at;
        at
    }
}

type Chunk = (Instant, Vec<u8>);

/// A connection's byte stream on the dialing side, shaped both ways; the listening side uses
/// the raw channel (the dialer knows both ends, so it models both directions).
enum ShapedStream {
    Direct(libp2p::core::transport::memory::Channel<Vec<u8>>),
    Shaped {
        /// The shaping of what we write and the queue to the writer task; `None` once closed.
        outbound: Option<(Box<Direction>, mpsc::UnboundedSender<Chunk>)>,
        from_wire: mpsc::UnboundedReceiver<Vec<u8>>,
        buffer: Vec<u8>,
        offset: usize,
    },
}

impl ShapedStream {
    /// Shapes `channel` with `out` for what we write and `inbound` for what we read. Three
    /// tasks move the bytes: a writer releasing chunks at their arrival time, a reader stamping
    /// what comes in, and a deliverer releasing it at its time (stamping and releasing are
    /// separate so that chunks in flight overlap, as on a real link). Their queues hold at most
    /// what yamux's flow-control windows let be in flight.
    fn shaped(
        channel: libp2p::core::transport::memory::Channel<Vec<u8>>,
        out: Direction,
        mut inbound: Direction,
    ) -> Self {
        let (mut reader, mut writer) = channel.split();
        let (to_wire, mut wire_rx) = mpsc::unbounded_channel::<Chunk>();
        tokio::spawn(async move {
            while let Some((at, bytes)) = wire_rx.recv().await {
                sleep_until(at).await;
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
            let _ = writer.close().await;
        });
        let (stamped_tx, mut stamped_rx) = mpsc::unbounded_channel::<Chunk>();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 || stamped_tx.send((inbound.arrival(n), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
        let (delivered_tx, from_wire) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some((at, bytes)) = stamped_rx.recv().await {
                sleep_until(at).await;
                if delivered_tx.send(bytes).is_err() {
                    break;
                }
            }
        });
        Self::Shaped { outbound: Some((Box::new(out), to_wire)), from_wire, buffer: Vec::new(), offset: 0 }
    }
}

impl AsyncRead for ShapedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Direct(channel) => Pin::new(channel).poll_read(cx, buf),
            Self::Shaped { from_wire, buffer, offset, .. } => {
                if *offset == buffer.len() {
                    match from_wire.poll_recv(cx) {
                        Poll::Ready(Some(chunk)) => {
                            *buffer = chunk;
                            *offset = 0;
                        }
                        Poll::Ready(None) => return Poll::Ready(Ok(0)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                let n = buf.len().min(buffer.len() - *offset);
                buf[..n].copy_from_slice(&buffer[*offset..*offset + n]);
                *offset += n;
                Poll::Ready(Ok(n))
            }
        }
    }
}

impl AsyncWrite for ShapedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Direct(channel) => Pin::new(channel).poll_write(cx, buf),
            Self::Shaped { outbound: Some((out, to_wire)), .. } => {
                let at = out.arrival(buf.len());
                match to_wire.send((at, buf.to_vec())) {
                    Ok(()) => Poll::Ready(Ok(buf.len())),
                    Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                }
            }
            Self::Shaped { outbound: None, .. } => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct(channel) => Pin::new(channel).poll_flush(cx),
            Self::Shaped { .. } => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct(channel) => Pin::new(channel).poll_close(cx),
            Self::Shaped { outbound, .. } => {
                // Dropping the queue's sender lets the writer task deliver what is queued, then close.
                outbound.take();
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// The network every node of a run shares: its layout, uplinks and port range.
struct Network {
    layout: Layout,
    uplinks: Vec<Arc<Uplink>>,
    base_port: u64,
    jitter: f64,
    seed: u64,
}

impl Network {
    fn address(&self, node: usize) -> Multiaddr {
        Multiaddr::empty().with(Protocol::Memory(self.base_port + node as u64))
    }

    fn direction(&self, from: usize, to: usize) -> Direction {
        Direction {
            from: Arc::clone(&self.uplinks[from]),
            to: Arc::clone(&self.uplinks[to]),
            delay: Duration::from_secs_f64(self.layout.latency_ms(from, to) / 1e3),
            jitter: self.jitter,
            rng: rand::SeedableRng::seed_from_u64(self.seed ^ ((from as u64) << 32 | to as u64)),
            last: Instant::now(),
        }
    }

    /// Node `node`'s swarm: in-memory transport shaped per link, noise, yamux, the node's
    /// behaviour with its gossipsub router reporting to `metrics` (where the run reads the
    /// router's duplicates).
    fn swarm(
        self: &Arc<Self>,
        node: usize,
        key: Keypair,
        limits: protocol::Limits,
        metrics: &mut Registry,
    ) -> Result<libp2p::Swarm<protocol::Behaviour>, String> {
        let network = Arc::clone(self);
        let shape = move |channel, endpoint: ConnectedPoint| match endpoint {
            ConnectedPoint::Dialer { address, .. } => {
                let Some(Protocol::Memory(port)) = address.iter().next() else { return ShapedStream::Direct(channel) };
                let peer = usize::try_from(port - network.base_port).expect("a node of this run");
                ShapedStream::shaped(channel, network.direction(node, peer), network.direction(peer, node))
            }
            ConnectedPoint::Listener { .. } => ShapedStream::Direct(channel),
        };
        Ok(libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                Ok(MemoryTransport::default()
                    .map(shape)
                    .upgrade(Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()))
            })
            .map_err(|e| e.to_string())?
            .with_behaviour(|key| {
                let mut behaviour = protocol::Behaviour::new(key, limits);
                behaviour.gossipsub = gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Anonymous,
                    protocol::gossipsub_config(&limits),
                )?
                .with_metrics(metrics, gossipsub::MetricsConfig::default());
                Ok(behaviour)
            })
            .map_err(|e| e.to_string())?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build())
    }
}

/// A running node of the swarm engine: a Tidepool assembled as the node's is, on shaped links,
/// and its gossipsub router's metrics.
struct SimNode(Tidepool, Registry);

impl SimNode {
    fn network(&self) -> &NetworkHandle {
        self.0.network().expect("swarm nodes start with a network")
    }
}

/// The mean modelled one-way latency over the layout's links (ms).
pub fn mean_link_latency_ms(layout: &Layout) -> f64 {
    let links: Vec<f64> = layout
        .neighbours
        .iter()
        .enumerate()
        .flat_map(|(i, peers)| peers.iter().map(move |&j| layout.latency_ms(i, j as usize)))
        .collect();
    links.iter().sum::<f64>() / links.len().max(1) as f64
}

/// Runs a scenario on real swarms and returns what happened, shaped like the discrete-event
/// engine's [`Run`] so the same reports and plots apply.
///
/// # Errors
/// Scenario features this engine does not model (churn; attacks other than the invalid-
/// signature flood), or a swarm that cannot start.
pub async fn run(scenario: &Scenario, mut progress: impl FnMut(f64)) -> Result<SwarmRun, String> {
    if scenario.churn.is_some() {
        return Err("the swarm engine does not model churn; use --engine des".into());
    }
    if scenario.loss > 0.0 {
        return Err(
            "the swarm engine's links are reliable streams (as libp2p's are); model loss with --engine des".into()
        );
    }
    if scenario.adversaries.iter().any(|a| a.kind != AttackKind::InvalidSignature) {
        return Err("the swarm engine runs only the invalid-signature attack; use --engine des".into());
    }
    if scenario.propagation != Propagation::Gossipsub {
        return Err("the swarm engine runs gossipsub: eth/68 propagation is a DES model".into());
    }
    if scenario.validation_micros.is_some() {
        return Err("the swarm engine validates for real: `validation_micros` is a DES setting".into());
    }
    let (layout, mut rng) = Layout::draw(scenario)?;
    let n = scenario.nodes;
    let uplinks = layout.uplink_mbps.iter().map(|&mbps| Arc::new(Uplink::new(mbps))).collect();
    let base_port = NEXT_PORT.fetch_add(n as u64 + 1, Ordering::Relaxed);
    let network = Arc::new(Network { layout, uplinks, base_port, jitter: scenario.jitter, seed: scenario.seed });

    // Everyone's state: the transaction generator's funded accounts.
    let mut mix = TxMix::new(scenario.seed, 256, 1);
    let state = Arc::new(InMemoryState::new());
    for signer in mix.signers() {
        state.set(signer.address(), AccountState::new(0, alloy_primitives::U256::from(10u128.pow(24))));
    }
    let validator = Validator::new(ValidationConfig { min_priority_fee: 0, ..ValidationConfig::default() });
    let pipeline_config = PipelineConfig { queue_capacity: 1 << 16, ..PipelineConfig::default() };
    let pipeline = Arc::new(ValidationPipeline::new(validator, pipeline_config));
    let head = ChainHead { block: 0, base_fee: 7, blob_base_fee: 1 };

    let keys: Vec<Keypair> = (0..n)
        .map(|i| {
            let mut secret =
                keccak256((scenario.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes()).0;
            Keypair::ed25519_from_bytes(&mut secret).expect("32 bytes")
        })
        .collect();
    let peer_ids: Vec<_> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let mut nodes: Vec<Option<SimNode>> = Vec::with_capacity(n);
    let mut attackers = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let bootnodes: Vec<Multiaddr> = network.layout.neighbours[i]
            .iter()
            .filter(|&&j| (j as usize) > i)
            .map(|&j| network.address(j as usize).with(Protocol::P2p(peer_ids[j as usize])))
            .collect();
        let config = NetConfig {
            chain_id: 1,
            listen: vec![network.address(i)],
            // Honest nodes dial once everyone listens (below); attackers dial when they start.
            bootnodes: if network.layout.attack[i].is_some() { bootnodes } else { Vec::new() },
            max_connections: 200,
            gossip: scenario.gossip.clone(),
            gossipsub: scenario.gossipsub,
            seed: scenario.seed ^ i as u64,
        };
        let mut metrics = Registry::default();
        let swarm = network.swarm(i, key, NetworkHandle::limits(&config), &mut metrics)?;
        if network.layout.attack[i].is_some() {
            attackers.push((i, swarm, config));
            nodes.push(None);
            continue;
        }
        let tidepool = Tidepool::builder(state.clone(), head)
            .shared_pipeline(Arc::clone(&pipeline))
            .network_on(swarm, config)
            .start()
            .await
            .map_err(|e| e.to_string())?;
        nodes.push(Some(SimNode(tidepool, metrics)));
    }
    let mut attacker_peers = HashMap::new();
    let (go, attack_start) = tokio::sync::watch::channel(false);
    for (i, swarm, config) in attackers {
        let rate = scenario.adversaries.iter().map(|a| a.rate).fold(0.0, f64::max);
        let peers = Arc::new(AtomicU64::new(0));
        attacker_peers.insert(i, Arc::clone(&peers));
        let rate = rate * network.layout.neighbours[i].len() as f64;
        let node = u32::try_from(i).expect("node index");
        tokio::spawn(flood_invalid_signatures(swarm, config, node, rate, peers, attack_start.clone()));
    }

    let honest: Vec<usize> = (0..n).filter(|&i| nodes[i].is_some()).collect();
    tokio::time::sleep(Duration::from_millis(200)).await; // every listener is up
    for &i in &honest {
        for &j in network.layout.neighbours[i].iter().filter(|&&j| (j as usize) > i) {
            let address = network.address(j as usize).with(Protocol::P2p(peer_ids[j as usize]));
            nodes[i].as_ref().expect("honest").network().dial(address);
        }
    }
    let index: Arc<Mutex<HashMap<B256, (usize, Instant)>>> = Arc::default();
    let deliveries: Arc<Mutex<Deliveries>> = Arc::new(Mutex::new(vec![Vec::new(); scenario.txs]));
    for (i, node) in nodes.iter().enumerate().filter_map(|(i, n)| Some((i, n.as_ref()?))) {
        let i = u32::try_from(i).expect("node index");
        let mut events = node.0.reader().subscribe();
        let (index, deliveries) = (Arc::clone(&index), Arc::clone(&deliveries));
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let PoolEvent::Added { hash, .. } = event
                    && let Some(&(tx, injected)) = index.lock().expect("index lock").get(&hash)
                {
                    let delay = u64::try_from(injected.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    deliveries.lock().expect("deliveries lock")[tx].push((delay, i));
                }
            }
        });
    }

    // Let every node connect, then give gossipsub a few heartbeats to build its meshes.
    let connecting = Instant::now();
    while honest.iter().any(|&i| nodes[i].as_ref().is_some_and(|node| node.network().stats().connected_peers == 0))
        && connecting.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let lag = Arc::new(Mutex::new(Vec::new()));
    let lag_probe = tokio::spawn(measure_timer_lag(Arc::clone(&lag)));
    let baseline: Vec<u64> = nodes.iter().map(|n| n.as_ref().map_or(0, bans_of)).collect();
    let mut ban_times: Vec<Option<Duration>> = vec![None; n];
    let start = Instant::now();
    let _ = go.send(true); // attackers begin with the honest traffic
    let interval = Duration::from_secs_f64(1.0 / scenario.tx_rate.max(1e-3));
    let mut sizes = Vec::with_capacity(scenario.txs);
    let mut origins = Vec::with_capacity(scenario.txs);
    for k in 0..scenario.txs {
        sleep_until(start + interval.mul_f64(k as f64)).await;
        let origin = honest[rng.random_range(0..honest.len())];
        let tx = match scenario.tx_size {
            Some(size) => mix.next_tx_of_size(size as usize),
            None => mix.next_tx(),
        };
        let hash = keccak256(&tx.raw);
        sizes.push(u32::try_from(tx.raw.len()).unwrap_or(u32::MAX));
        origins.push(u32::try_from(origin).expect("node index"));
        index.lock().expect("index lock").insert(hash, (k, Instant::now()));
        let node = nodes[origin].as_ref().expect("an honest node");
        // A local submission is published to the node's peers by the submitter itself.
        let _ = node.0.submitter().submit(tx.raw, Origin::Local).await;
        note_bans(&nodes, &baseline, &mut ban_times, start);
        progress(0.8 * (k + 1) as f64 / scenario.txs as f64);
    }
    let injected = Instant::now();
    let drain = Duration::from_secs_f64(scenario.drain_seconds);
    let everywhere = |deliveries: &Deliveries| deliveries.iter().all(|d| d.len() >= honest.len());
    while injected.elapsed() < drain && !everywhere(&deliveries.lock().expect("deliveries lock")) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        note_bans(&nodes, &baseline, &mut ban_times, start);
    }
    tokio::time::sleep(Duration::from_millis(600)).await; // the drivers refresh their stats twice a second
    note_bans(&nodes, &baseline, &mut ban_times, start);
    lag_probe.abort();
    progress(1.0);

    let deliveries = std::mem::take(&mut *deliveries.lock().expect("deliveries lock"));
    let txs = deliveries
        .into_iter()
        .enumerate()
        .map(|(k, deliveries)| TxRecord::new(sizes[k], origins[k], deliveries))
        .collect();
    let mut drops = BTreeMap::<DropReason, u64>::new();
    let mut node_rows = Vec::with_capacity(n);
    let (mut attacker_bans, mut honest_disconnects) = (Vec::new(), 0);
    for i in 0..n {
        let uplink = &network.uplinks[i];
        let mut stats = NodeStats {
            up_payload: uplink.sent.load(Ordering::Relaxed),
            down_payload: uplink.received.load(Ordering::Relaxed),
            ..NodeStats::default()
        };
        let mut peers = attacker_peers.get(&i).map_or(0, |p| p.load(Ordering::Relaxed) as usize);
        if let Some(node) = &nodes[i] {
            let net = node.network().stats();
            for (reason, count) in &net.gossip.dropped {
                *drops.entry(*reason).or_default() += count;
            }
            stats.duplicates = router_duplicates(&node.1, &protocol::tx_topic(1));
            stats.validations = net.gossip.validations;
            peers = net.connected_peers;
            let bans = bans_of(node);
            let attacking: Vec<u32> = network.layout.neighbours[i]
                .iter()
                .copied()
                .filter(|&j| network.layout.attack[j as usize].is_some())
                .collect();
            let against_attackers = (bans - baseline[i]).min(attacking.len() as u64);
            if let Some(at) = ban_times[i] {
                let at = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
                let bans = attacking.iter().take(against_attackers as usize);
                attacker_bans.extend(bans.map(|&a| AttackerBan { attacker: a, neighbour: i as u32, at_ns: at }));
            }
            // Every disconnect the core makes is a ban (a cool-off one or a long one).
            honest_disconnects += (bans - baseline[i]).saturating_sub(against_attackers);
        }
        node_rows.push(NodeRecord {
            region: network.layout.region[i],
            attack: network.layout.attack[i],
            honest_peers: peers,
            stats,
        });
    }
    let lag = std::mem::take(&mut *lag.lock().expect("lag lock"));
    let run = Run {
        txs,
        nodes: node_rows,
        drops,
        // In-memory links lose nothing; the attackers start with the honest traffic, at 0.
        lost_messages: None,
        attack_start_ns: Some(0),
        attacker_bans,
        honest_disconnects,
        virtual_ns: u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
        events: None,
        region_names: network.layout.regions.names.clone(),
        trace: None,
        engine: "swarm",
    };
    Ok(SwarmRun { run, timer_lag_ms: super::report::percentiles(lag) })
}

/// What one swarm run produced: the run, and how late this process's timers fired meanwhile
/// (the in-process overhead every modelled delay suffers on top).
pub struct SwarmRun {
    pub run: Run,
    pub timer_lag_ms: Option<super::report::Percentiles>,
}

/// Messages on `topic` the node's gossipsub router received again after the first copy: all
/// it received less those it passed on (its duplicate cache let through only first copies).
fn router_duplicates(metrics: &Registry, topic: &gossipsub::IdentTopic) -> u64 {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, metrics).is_err() {
        return 0;
    }
    let label = format!("{{hash=\"{}\"}}", topic.hash());
    let count = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(label.as_str())?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    count("topic_msg_recv_counts_unfiltered_total").saturating_sub(count("topic_msg_recv_counts_total"))
}

/// How many peers the node has disconnected (with a cool-off or a ban) so far.
fn bans_of(node: &SimNode) -> u64 {
    node.network().stats().gossip.disconnects
}

/// Records, per honest node, when it first banned a peer after the start.
fn note_bans(nodes: &[Option<SimNode>], baseline: &[u64], times: &mut [Option<Duration>], start: Instant) {
    for (i, node) in nodes.iter().enumerate() {
        if let Some(node) = node
            && times[i].is_none()
            && bans_of(node) > baseline[i]
        {
            times[i] = Some(start.elapsed());
        }
    }
}

/// Sleeps 5 ms over and over and records how late each wake-up came (ms).
async fn measure_timer_lag(lag: Arc<Mutex<Vec<f64>>>) {
    let step = Duration::from_millis(5);
    loop {
        let asked = Instant::now() + step;
        sleep_until(asked).await;
        let late = Instant::now().saturating_duration_since(asked);
        lag.lock().expect("lag lock").push(late.as_secs_f64() * 1e3);
    }
}

/// An attacker: the node's swarm without its driver, publishing transactions whose signature
/// recovers no sender, `rate` per second in total, to whoever subscribes, once `start` turns
/// true; `peers` tracks how many peers still talk to it.
async fn flood_invalid_signatures(
    mut swarm: libp2p::Swarm<protocol::Behaviour>,
    config: NetConfig,
    node: u32,
    rate: f64,
    peers: Arc<AtomicU64>,
    mut start: tokio::sync::watch::Receiver<bool>,
) {
    use futures::StreamExt as _;

    let topic = protocol::tx_topic(config.chain_id);
    if swarm.behaviour_mut().gossipsub.subscribe(&topic).is_err() {
        return;
    }
    for address in config.listen {
        let _ = swarm.listen_on(address);
    }
    for address in config.bootnodes {
        let _ = swarm.dial(address);
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1e-3)));
    let mut nonce = 0u64;
    loop {
        let attacking = *start.borrow();
        tokio::select! {
            _ = swarm.select_next_some() => {}
            _ = start.changed(), if !attacking => {}
            _ = tick.tick(), if attacking => {
                nonce += 1;
                let bytes = super::invalid_signature_junk(config.chain_id, nonce, node);
                let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), bytes.to_vec());
            }
        }
        peers.store(swarm.connected_peers().count() as u64, Ordering::Relaxed);
    }
}
