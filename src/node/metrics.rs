//! Prometheus metrics at `/metrics`, on their own port. Counters owned elsewhere (pipeline,
//! gossip core, ingest, pool) are read as snapshots at scrape time, so nothing on the hot path
//! pays for metrics.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder as _, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::{gossip::DropReason, service::Stats};

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    pub received: IntCounterVec,
    pub outcomes: IntCounterVec,
    pub pool_txs: IntGaugeVec,
    pub pool_bytes: IntGaugeVec,
    pub blob_bytes: IntGauge,
    pub blob_proofs_verified: IntCounter,
    pub blob_proofs_failed: IntCounter,
    pub removed: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub dead_letters_held: IntGauge,
    pub journal_appends: IntCounter,
    pub journal_syncs: IntCounter,
    pub journal_compactions: IntCounter,
    pub queue_depth: IntGauge,
    pub validation_busy: IntCounter,
    pub peers: IntGauge,
    pub banned_peers: IntGauge,
    pub bans: IntCounter,
    pub disconnects: IntCounter,
    pub gossip_dropped: IntCounterVec,
    pub penalties: IntCounterVec,
    pub fetches: IntCounter,
    pub fetch_timeouts: IntCounter,
    pub builder_pulls: IntCounter,
    pub blocks: IntCounter,
    pub base_fee: IntGauge,
    /// Follow mode with forwarding: local transactions sent to the upstream's pool, and those
    /// dropped because the forwarding queue was full or the upstream refused them.
    pub forwarded: IntCounter,
    pub forward_dropped: IntCounter,
    /// Follow mode: the upstream's state (see [`crate::follow::FollowStats`]).
    upstream_up: IntGauge,
    upstream_head_lag: IntGauge,
    upstream_latency: prometheus::Gauge,
    upstream_blocks: IntCounter,
    upstream_reorgs: IntCounter,
    upstream_deep_reorgs: IntCounter,
    upstream_errors: IntCounter,
    /// Bumped by the RPC layer for each `eth_sendRawTransaction`.
    pub rpc_submissions: AtomicU64,
    /// Bumped by the RPC layer for each call refused by a client's budget.
    pub rpc_rate_limited: AtomicU64,
    rate_limited: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

/// Raises a counter to a snapshot value (counters only go up).
fn sync(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new_custom(Some("tidepool".into()), None).expect("valid prefix");
        Self {
            received: counter_vec(&r, "received_total", "Transactions received, by source", "source"),
            outcomes: counter_vec(
                &r,
                "ingest_outcomes_total",
                "Submissions by outcome: added or the refusal kind",
                "outcome",
            ),
            pool_txs: gauge_vec(&r, "pool_transactions", "Pooled transactions per subpool", "subpool"),
            pool_bytes: gauge_vec(&r, "pool_bytes", "Encoded bytes per subpool", "subpool"),
            blob_bytes: gauge(&r, "pool_blob_bytes", "Bytes of blob data the pooled blob transactions carry"),
            blob_proofs_verified: counter(
                &r,
                "blob_proofs_verified_total",
                "Blob transactions whose KZG proofs verified (network forms validated)",
            ),
            blob_proofs_failed: counter(
                &r,
                "blob_proofs_failed_total",
                "Blob transactions refused for a bad KZG proof",
            ),
            removed: counter_vec(&r, "pool_removed_total", "Transactions that left the pool, by reason", "reason"),
            dead_letters: counter_vec(
                &r,
                "dead_letters_total",
                "Transactions that left the pool without being mined, by reason",
                "reason",
            ),
            dead_letters_held: gauge(&r, "dead_letters_held", "Records held by the dead-letter view"),
            journal_appends: counter(&r, "journal_appends_total", "Local transactions written to the journal"),
            journal_syncs: counter(&r, "journal_syncs_total", "Journal syncs (one per group commit)"),
            journal_compactions: counter(&r, "journal_compactions_total", "Journal compactions"),
            queue_depth: gauge(&r, "validation_queue_depth", "Transactions waiting for a validation worker"),
            validation_busy: counter(
                &r,
                "validation_busy_total",
                "Submissions refused because the validation queue was full",
            ),
            peers: gauge(&r, "peers", "Connected peers"),
            banned_peers: gauge(&r, "banned_peers", "Peers currently refused (a cool-off or a ban)"),
            bans: counter(&r, "peer_bans_total", "Peers banned"),
            disconnects: counter(&r, "peer_disconnects_total", "Peers disconnected for misbehaviour"),
            gossip_dropped: counter_vec(&r, "gossip_dropped_total", "Gossip messages dropped, by reason", "reason"),
            penalties: counter_vec(&r, "gossip_penalties_total", "Peer penalties, by kind", "penalty"),
            fetches: counter(&r, "gossip_fetches_total", "Fetch requests for announced transactions"),
            fetch_timeouts: counter(&r, "gossip_fetch_timeouts_total", "Fetch requests that timed out"),
            builder_pulls: counter(&r, "builder_pulls_total", "Batches pulled from the builder feed"),
            blocks: counter(&r, "blocks_total", "Dev blocks produced"),
            base_fee: gauge(&r, "base_fee_wei", "Base fee of the next block"),
            forwarded: counter(&r, "upstream_forwarded_total", "Local transactions sent to the followed node's pool"),
            forward_dropped: counter(
                &r,
                "upstream_forward_dropped_total",
                "Local transactions not forwarded: queue full or refused by the followed node",
            ),
            upstream_up: gauge(&r, "upstream_up", "1 when the last poll of the followed node succeeded"),
            upstream_head_lag: gauge(&r, "upstream_head_lag_blocks", "The followed node's head minus the pool's"),
            upstream_latency: {
                let metric = prometheus::Gauge::new(
                    "upstream_latency_seconds",
                    "Duration of the last head request to the followed node",
                )
                .expect("valid metric");
                r.register(Box::new(metric.clone())).expect("unique metric");
                metric
            },
            upstream_blocks: counter(&r, "upstream_blocks_total", "Blocks of the followed node applied to the pool"),
            upstream_reorgs: counter(&r, "upstream_reorgs_total", "Reorgs of the followed node"),
            upstream_deep_reorgs: counter(
                &r,
                "upstream_deep_reorgs_total",
                "Changes of the followed chain deeper than the kept blocks (every pooled sender reloaded)",
            ),
            upstream_errors: counter(&r, "upstream_errors_total", "Failed polls of the followed node"),
            rpc_submissions: AtomicU64::new(0),
            rpc_rate_limited: AtomicU64::new(0),
            rate_limited: counter(
                &r,
                "rpc_rate_limited_total",
                "eth_sendRawTransaction calls refused because the client's budget was spent",
            ),
            registry: r,
        }
    }
}

impl Metrics {
    /// Reads every snapshot source into the registry.
    /// Follow mode: the follower's counters.
    pub fn refresh_follow(&self, follow: &crate::follow::FollowStats) {
        use std::sync::atomic::Ordering::Relaxed;
        self.upstream_up.set(i64::from(follow.up.load(Relaxed)));
        let lag = follow.upstream_head.load(Relaxed).saturating_sub(follow.followed_head.load(Relaxed));
        self.upstream_head_lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
        self.upstream_latency.set(follow.latency_micros.load(Relaxed) as f64 / 1e6);
        sync(&self.upstream_blocks, follow.blocks.load(Relaxed));
        sync(&self.upstream_reorgs, follow.reorgs.load(Relaxed));
        sync(&self.upstream_deep_reorgs, follow.deep_reorgs.load(Relaxed));
        sync(&self.upstream_errors, follow.errors.load(Relaxed));
    }

    pub fn refresh(&self, stats: &Stats, base_fee: u128) {
        for (name, size) in
            [("pending", stats.sizes.pending), ("basefee", stats.sizes.basefee), ("queued", stats.sizes.queued)]
        {
            self.pool_txs.with_label_values(&[name]).set(size.count as i64);
            self.pool_bytes.with_label_values(&[name]).set(size.bytes as i64);
        }
        self.blob_bytes.set(i64::try_from(stats.sizes.blob_bytes).unwrap_or(i64::MAX));
        sync(&self.blob_proofs_verified, stats.pipeline.blob_proofs_verified);
        sync(&self.blob_proofs_failed, stats.pipeline.blob_proofs_failed);
        for (reason, count) in &stats.removals {
            sync(&self.removed.with_label_values(&[reason]), *count);
        }
        for (reason, count) in &stats.dead_letters {
            sync(&self.dead_letters.with_label_values(&[reason]), *count);
        }
        self.dead_letters_held.set(stats.dead_letters_held as i64);
        if let Some(journal) = stats.journal {
            sync(&self.journal_appends, journal.appended);
            sync(&self.journal_syncs, journal.syncs);
            sync(&self.journal_compactions, journal.compactions);
        }
        self.queue_depth.set(stats.pipeline.queue_depth as i64);
        sync(&self.validation_busy, stats.pipeline.busy);
        for (outcome, count) in &stats.outcomes {
            sync(&self.outcomes.with_label_values(&[outcome]), *count);
        }
        sync(&self.received.with_label_values(&["rpc"]), self.rpc_submissions.load(Ordering::Relaxed));
        sync(&self.rate_limited, self.rpc_rate_limited.load(Ordering::Relaxed));
        self.base_fee.set(i64::try_from(base_fee).unwrap_or(i64::MAX));
        if let Some(stats) = &stats.network {
            sync(&self.received.with_label_values(&["gossip"]), stats.gossip.received_messages);
            self.peers.set(stats.connected_peers as i64);
            self.banned_peers.set(stats.banned_peers as i64);
            sync(&self.bans, stats.gossip.bans);
            sync(&self.disconnects, stats.gossip.disconnects);
            sync(&self.fetches, stats.gossip.fetches);
            sync(&self.fetch_timeouts, stats.gossip.fetch_timeouts);
            for reason in DropReason::ALL {
                let count = stats.gossip.dropped.get(&reason).copied().unwrap_or(0);
                sync(&self.gossip_dropped.with_label_values(&[reason.kind()]), count);
            }
            sync(&self.gossip_dropped.with_label_values(&["malformed_announcement"]), stats.malformed_announcements);
            sync(&self.gossip_dropped.with_label_values(&["local_queue_full"]), stats.local_dropped);
            for (penalty, count) in &stats.gossip.penalties {
                sync(&self.penalties.with_label_values(&[penalty.kind()]), *count);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("utf-8")
    }
}

/// Serves `render()` of the metrics `refresh` produces on every GET of `/metrics`.
pub async fn serve(listener: tokio::net::TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, typically: retrying at once would spin.
            tokio::time::sleep(super::rpc_server::ACCEPT_BACKOFF).await;
            continue;
        };
        let render = Arc::clone(&render);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let render = Arc::clone(&render);
                async move {
                    let response = if request.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(hyper::body::Bytes::from(render())))
                    } else {
                        Response::builder().status(404).body(Full::new(hyper::body::Bytes::from_static(b"not found\n")))
                    };
                    Ok::<_, Infallible>(response.expect("valid response"))
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The address a listener is bound to (for port 0 in tests).
pub fn local_addr(listener: &tokio::net::TcpListener) -> SocketAddr {
    listener.local_addr().expect("bound listener")
}
