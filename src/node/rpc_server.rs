//! The JSON-RPC server: jsonrpsee's service on our own accept loop, so every request knows its
//! client's IP address, with the limits that keep a client from pushing the node over.
//!
//! Owns: body, batch and connection limits (`RpcLimits`), the per-client budget for
//! `eth_sendRawTransaction` (`ClientBudgets`), and the `Origin` check that keeps web pages out.
//! Does not: define methods (`rpc.rs`).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonrpsee::{
    RpcModule,
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle, serve_with_graceful_shutdown, stop_channel},
};
use serde::{Deserialize, Serialize};
use tower::Service as _;

use crate::gossip::{Bucket, Rate};

/// Limits of the JSON-RPC server. Defaults follow geth where it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcLimits {
    /// Largest request body. Default 5 MiB (geth's 5 MB): room for a batch of large transactions.
    pub max_request_bytes: u32,
    /// Largest response body. Default 32 MiB: a full `txpool_content` of a busy pool.
    pub max_response_bytes: u32,
    /// Calls in one batch. Default 100.
    pub max_batch: u32,
    /// Open connections (HTTP and WebSocket), counted from accept to close: over it, a new
    /// connection is closed at once. Default 256.
    pub max_connections: u32,
    /// A connection that sends nothing for this long is closed (an idle keep-alive holds a
    /// connection slot). WebSocket clients answer the server's pings every 20 s, so a live
    /// subscriber never goes idle. Default 60 s.
    #[serde(with = "crate::duration_secs")]
    pub idle_timeout: Duration,
    /// Subscriptions one connection may hold. Default 64 (jsonrpsee's 1,024 x 256 connections
    /// would be a quarter million receivers of every pool event).
    pub max_subscriptions_per_connection: u32,
    /// Each client IP's budget of `eth_sendRawTransaction` calls. Default 1,000/s with a burst
    /// of 2,000: about a twentieth of what validation takes on two cores, so no single client
    /// can fill the validation queue alone.
    pub send_raw_per_client: Rate,
    /// Client IPs remembered for their budget. Default 10,000; idle ones are forgotten first.
    pub max_clients: usize,
    /// Browser origins allowed to call (exact `scheme://host[:port]`, or `"*"` for any). A request
    /// that carries an `Origin` header (every browser sends one for cross-site requests and
    /// WebSocket upgrades) from anywhere else is refused with 403, so a web page cannot drive a
    /// node on the user's loopback. Wallets, `cast` and other tools send none. Default: none.
    pub allowed_origins: Vec<String>,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 5 << 20,
            max_response_bytes: 32 << 20,
            max_batch: 100,
            max_connections: 256,
            idle_timeout: Duration::from_secs(60),
            max_subscriptions_per_connection: 64,
            send_raw_per_client: Rate { per_second: 1_000.0, burst: 2_000.0 },
            max_clients: 10_000,
            allowed_origins: Vec::new(),
        }
    }
}

/// How long accepting pauses after a failed accept (e.g. no file descriptor left), instead of
/// spinning on the error. Shared with the metrics server.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The IP address of the client that sent a request (in every call's extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// A token bucket per client IP, bounded in the number of clients it remembers.
#[derive(Debug)]
pub struct ClientBudgets {
    rate: Rate,
    max_clients: usize,
    state: Mutex<Budgets>,
}

#[derive(Debug, Default)]
struct Budgets {
    buckets: HashMap<IpAddr, Bucket>,
    /// When the table was last swept for idle buckets: a full table of active clients is swept
    /// at most once per refill period, so new clients cannot make every call scan it.
    swept: Option<Instant>,
}

impl ClientBudgets {
    pub fn new(rate: Rate, max_clients: usize) -> Self {
        Self { rate, max_clients, state: Mutex::default() }
    }

    /// Takes one call from `client`'s budget; `false` when it is spent.
    pub fn try_take(&self, client: IpAddr, now: Instant) -> bool {
        let mut state = self.state.lock().expect("budgets lock");
        let Budgets { buckets, swept } = &mut *state;
        // A bucket idle long enough to have refilled holds no information: forget those.
        let refill = Duration::from_secs_f64(self.rate.burst / self.rate.per_second.max(f64::MIN_POSITIVE));
        if !buckets.contains_key(&client)
            && buckets.len() >= self.max_clients
            && swept.is_none_or(|at| now.saturating_duration_since(at) >= refill)
        {
            *swept = Some(now);
            buckets.retain(|_, bucket| now.saturating_duration_since(bucket.last_used()) < refill);
        }
        if buckets.len() < self.max_clients || buckets.contains_key(&client) {
            buckets.entry(client).or_insert_with(|| Bucket::new(self.rate, now)).try_take(now, 1.0)
        } else {
            false // every remembered client is active: new ones wait until some go idle
        }
    }
}

/// Serves `module` on `listener` with `limits`; every call carries the client's [`ClientIp`].
pub fn serve<Context: Send + Sync + 'static>(
    listener: tokio::net::TcpListener,
    module: RpcModule<Context>,
    limits: RpcLimits,
) -> ServerHandle {
    let (stop, handle) = stop_channel();
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .enable_ws_ping(jsonrpsee::server::PingConfig::new().ping_interval(WS_PING))
        .build();
    let services = Server::builder().set_config(config).to_service_builder();
    let methods: jsonrpsee::Methods = module.into();
    let origins: std::sync::Arc<[String]> = limits.allowed_origins.into();
    let connections = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections as usize));
    let idle_timeout = limits.idle_timeout;
    tokio::spawn(async move {
        loop {
            let (socket, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, typically: retrying at once would spin.
                        tracing::warn!(error = %e, "RPC accept failed; pausing accepts");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = stop.clone().shutdown() => break,
            };
            let Ok(permit) = std::sync::Arc::clone(&connections).try_acquire_owned() else {
                tracing::debug!(%remote, "RPC connection limit reached: closing a new connection");
                continue; // dropping the socket closes it
            };
            let (services, methods, stop_request) = (services.clone(), methods.clone(), stop.clone());
            let origins = std::sync::Arc::clone(&origins);
            let client = ClientIp(remote.ip());
            let service = tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let refused =
                    request.headers().get(hyper::header::ORIGIN).is_some_and(|origin| !allowed(&origins, origin));
                request.extensions_mut().insert(client);
                let mut service = services.clone().build(methods.clone(), stop_request.clone());
                async move {
                    if refused {
                        return Ok(jsonrpsee::server::http::response::denied());
                    }
                    service.call(request).await
                }
            });
            let activity = Activity::default();
            let socket = Watched { inner: socket, activity: activity.clone() };
            let serving = serve_with_graceful_shutdown(socket, service, stop.clone().shutdown());
            let idle = async move { activity.idle_for(idle_timeout).await };
            tokio::spawn(until_idle(serving, idle, permit));
        }
    });
    handle
}

/// Serves a connection until it ends or goes idle, holding its connection slot meanwhile.
async fn until_idle<T>(
    serving: impl Future<Output = T>,
    idle: impl Future<Output = ()>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    tokio::select! {
        _ = serving => {}
        () = idle => tracing::debug!("closing an idle RPC connection"),
    }
}

/// How often the server pings WebSocket clients (their pongs are activity).
const WS_PING: Duration = Duration::from_secs(20);

/// When a connection last received bytes.
#[derive(Debug, Clone)]
struct Activity {
    started: Instant,
    last_read_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Activity {
    fn default() -> Self {
        Self { started: Instant::now(), last_read_ms: std::sync::Arc::default() }
    }
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns once nothing has been read for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last_read_ms.load(std::sync::atomic::Ordering::Relaxed));
            let idle = self.started.elapsed().saturating_sub(last);
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }
}

/// A socket that records when it last received bytes.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Activity,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Whether a request from a browser page at `origin` may call.
fn allowed(origins: &[String], origin: &hyper::header::HeaderValue) -> bool {
    origins.iter().any(|allowed| allowed == "*" || allowed.as_bytes() == origin.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_budget_and_memory_stays_bounded() {
        let budgets = ClientBudgets::new(Rate { per_second: 10.0, burst: 2.0 }, 2);
        let now = Instant::now();
        let (a, b, c) = ([1, 1, 1, 1].into(), [2, 2, 2, 2].into(), [3, 3, 3, 3].into());
        assert!(budgets.try_take(a, now) && budgets.try_take(a, now));
        assert!(!budgets.try_take(a, now), "a's burst is spent");
        assert!(budgets.try_take(b, now), "b is unaffected");
        assert!(!budgets.try_take(c, now), "two active clients remembered: a third waits");
        let later = now + Duration::from_secs(1);
        assert!(budgets.try_take(c, later), "idle buckets are forgotten to make room");
        assert!(budgets.try_take(a, later), "a refilled");
        assert!(budgets.state.lock().unwrap().buckets.len() <= 2);
    }
}
