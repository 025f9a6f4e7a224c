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
    /// Open connections (HTTP and WebSocket). Default 256.
    pub max_connections: u32,
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
        .build();
    let services = Server::builder().set_config(config).to_service_builder();
    let methods: jsonrpsee::Methods = module.into();
    let origins: std::sync::Arc<[String]> = limits.allowed_origins.into();
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
            tokio::spawn(serve_with_graceful_shutdown(socket, service, stop.clone().shutdown()));
        }
    });
    handle
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
