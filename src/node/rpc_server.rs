//! The JSON-RPC server: jsonrpsee's service on our own accept loop, so every request knows its
//! client's IP address, with the limits that keep a client from pushing the node over.
//!
//! Owns: body, batch and connection limits (`RpcLimits`), each connection's budget of calls in
//! progress and response bytes not yet taken (`ConnectionWatch`: over it, the connection's reads
//! pause), the per-client budget for `eth_sendRawTransaction` (`ClientBudgets`), and the `Origin`
//! check that keeps web pages out.
//! Does not: define methods (`rpc.rs`).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{
            AtomicBool, AtomicU64, AtomicUsize,
            Ordering::{AcqRel, Acquire, Relaxed, Release},
        },
    },
    task::Poll,
    time::{Duration, Instant},
};

use futures::task::AtomicWaker;

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
    /// Calls one connection may have in progress. At the limit the node stops reading that
    /// connection until one finishes: a WebSocket client cannot start calls faster than they
    /// complete (each message would otherwise be a task of its own). Default 64.
    pub max_calls_per_connection: u32,
    /// Response bytes one connection may leave unread. Over it, the node stops reading that
    /// connection's requests until the client has taken its answers, so a client that sends and
    /// never reads holds at most this plus the answers of the calls then in progress, and is
    /// closed after `idle_timeout` (nothing is read from it meanwhile). Default 4 MiB.
    pub max_unsent_bytes_per_connection: u32,
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
    /// Accept legacy transactions without EIP-155 replay protection over JSON-RPC. Default
    /// `false`, as geth and reth: such a transaction is valid on every chain, so a node refuses
    /// it from its own clients (kind `unprotected_not_allowed`); gossip follows
    /// `[validation] allow_unprotected` (default: accepted).
    pub allow_unprotected_txs: bool,
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
            max_calls_per_connection: 64,
            max_unsent_bytes_per_connection: 4 << 20,
            send_raw_per_client: Rate { per_second: 1_000.0, burst: 2_000.0 },
            max_clients: 10_000,
            allowed_origins: Vec::new(),
            allow_unprotected_txs: false,
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
    let services = Server::builder()
        .set_config(config)
        .set_rpc_middleware(jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer_fn(Metered::new))
        .to_service_builder();
    let budget = LoadBudget {
        calls: limits.max_calls_per_connection as usize,
        unsent_bytes: limits.max_unsent_bytes_per_connection as usize,
    };
    let methods: jsonrpsee::Methods = module.into();
    let origins: std::sync::Arc<[String]> = limits.allowed_origins.into();
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections as usize));
    let idle_timeout = limits.idle_timeout;
    let max_request_bytes = limits.max_request_bytes;
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
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                tracing::debug!(%remote, "RPC connection limit reached: closing a new connection");
                continue; // dropping the socket closes it
            };
            let (services, methods, stop_request) = (services.clone(), methods.clone(), stop.clone());
            let origins = Arc::clone(&origins);
            let client = ClientIp(remote.ip());
            let watch = Arc::new(ConnectionWatch::new(budget));
            let calls_watch = Arc::clone(&watch);
            let service = tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let refused =
                    request.headers().get(hyper::header::ORIGIN).is_some_and(|origin| !allowed(&origins, origin));
                request.extensions_mut().insert(client);
                request.extensions_mut().insert(Arc::clone(&calls_watch));
                let mut service = services.clone().build(methods.clone(), stop_request.clone());
                async move {
                    if refused {
                        return Ok(jsonrpsee::server::http::response::denied());
                    }
                    match sized(request, max_request_bytes).await {
                        Ok(request) => service.call(request).await,
                        Err(refusal) => Ok(refusal),
                    }
                }
            });
            // The socket holds the connection's slot and its watch until it is dropped, which
            // for a WebSocket is long after the HTTP exchange that upgraded it has ended.
            let (alive, dropped) = tokio::sync::oneshot::channel();
            let socket = Watched { inner: socket, watch: Arc::clone(&watch), _slot: permit, _alive: alive };
            tokio::spawn(serve_with_graceful_shutdown(socket, service, stop.clone().shutdown()));
            tokio::spawn(async move {
                tokio::select! {
                    _ = dropped => {}
                    () = watch.idle_for(idle_timeout) => {
                        tracing::debug!(%remote, "closing an idle RPC connection");
                        watch.expire();
                    }
                }
            });
        }
    });
    handle
}

/// A request body as it reaches jsonrpsee: as received, or already read (see [`sized`]).
type SizedBody = http_body_util::Either<hyper::body::Incoming, http_body_util::Full<hyper::body::Bytes>>;

/// A request whose body has no declared length (chunked) is read here, up to `limit`, so an
/// oversized one is answered 413 as one with a `Content-Length` over the limit is (jsonrpsee
/// answers those itself, but fails a chunked one mid-read with a 500).
async fn sized(
    request: hyper::Request<hyper::body::Incoming>,
    limit: u32,
) -> Result<hyper::Request<SizedBody>, jsonrpsee::server::HttpResponse> {
    use http_body_util::{BodyExt as _, Either, Full, LengthLimitError, Limited};
    let declared = request.headers().contains_key(hyper::header::CONTENT_LENGTH);
    if declared || request.method() != hyper::Method::POST {
        return Ok(request.map(Either::Left));
    }
    let (parts, body) = request.into_parts();
    match Limited::new(body, limit as usize).collect().await {
        Ok(collected) => Ok(hyper::Request::from_parts(parts, Either::Right(Full::new(collected.to_bytes())))),
        Err(e) if e.is::<LengthLimitError>() => Err(jsonrpsee::server::http::response::too_large(limit)),
        Err(_) => Err(jsonrpsee::server::http::response::malformed()),
    }
}

/// How often the server pings WebSocket clients (their pongs are activity).
const WS_PING: Duration = Duration::from_secs(20);

/// A socket that records when it last received bytes, stops reading while its connection is
/// over its [`LoadBudget`], and fails once its [`ConnectionWatch`] expired.
struct Watched {
    inner: tokio::net::TcpStream,
    watch: Arc<ConnectionWatch>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    /// Dropped with the socket: ends the idle watcher.
    _alive: tokio::sync::oneshot::Sender<()>,
}

fn expired() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "RPC connection idle")
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.watch.reader_waits(cx) {
            return Poll::Pending;
        }
        if self.watch.expired.load(Acquire) {
            return Poll::Ready(Err(expired()));
        }
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.watch.expired.load(Acquire) {
            return Poll::Ready(Err(expired()));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        self.watch.wrote(cx, &polled);
        polled
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.watch.expired.load(Acquire) {
            return Poll::Ready(Err(expired()));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        self.watch.wrote(cx, &polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How much one connection may have in progress and unread before its reads pause.
#[derive(Debug, Clone, Copy)]
struct LoadBudget {
    calls: usize,
    unsent_bytes: usize,
}

/// One connection's activity and load, shared by its socket ([`Watched`]), the call middleware
/// ([`Metered`]) and its idle watcher: calls in progress, response bytes made but not yet written,
/// when it last received bytes.
///
/// jsonrpsee reads WebSocket messages as fast as they come and spawns a task for each, whose
/// answer then waits for the client to read it; nothing there stops a client that sends and
/// never reads. Pausing the reads is the backpressure: the client's own sends block, and the
/// idle timeout closes it. The unsent count is an estimate that errs low (it is credited with
/// every byte written, frames and notifications included), so it never pauses a client that
/// reads.
#[derive(Debug)]
struct ConnectionWatch {
    budget: LoadBudget,
    calls: AtomicUsize,
    unsent: AtomicUsize,
    /// The last write found the socket full: the client is not reading.
    write_blocked: AtomicBool,
    /// Idle too long: reads and writes fail, which ends the connection wherever it is parked.
    expired: AtomicBool,
    started: Instant,
    last_read_ms: AtomicU64,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl ConnectionWatch {
    fn new(budget: LoadBudget) -> Self {
        Self {
            budget,
            calls: 0.into(),
            unsent: 0.into(),
            write_blocked: false.into(),
            expired: false.into(),
            started: Instant::now(),
            last_read_ms: 0.into(),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
        }
    }

    fn over_budget(&self) -> bool {
        !self.expired.load(Acquire)
            && (self.calls.load(Acquire) >= self.budget.calls
                || self.unsent.load(Acquire) > self.budget.unsent_bytes
                || self.write_blocked.load(Acquire))
    }

    /// Whether the reader must wait; if so, it is woken when that changes.
    fn reader_waits(&self, cx: &std::task::Context<'_>) -> bool {
        if !self.over_budget() {
            return false;
        }
        self.reader.register(cx.waker());
        self.over_budget() // checked again: a change between the check and the register is not lost
    }

    /// A call begins; it ends when the guard drops.
    fn begin_call(self: &Arc<Self>) -> CallInProgress {
        self.calls.fetch_add(1, AcqRel);
        CallInProgress(Arc::clone(self))
    }

    /// A response of `bytes` is on its way to the socket.
    fn owe(&self, bytes: usize) {
        self.unsent.fetch_add(bytes, AcqRel);
    }

    fn wrote(&self, cx: &std::task::Context<'_>, polled: &Poll<std::io::Result<usize>>) {
        match polled {
            Poll::Pending => {
                self.writer.register(cx.waker());
                self.write_blocked.store(true, Release);
            }
            Poll::Ready(Ok(written)) => {
                self.write_blocked.store(false, Release);
                let _ = self.unsent.fetch_update(AcqRel, Acquire, |unsent| Some(unsent.saturating_sub(*written)));
                self.reader.wake();
            }
            Poll::Ready(Err(_)) => self.reader.wake(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_read_ms.store(ms, Relaxed);
    }

    /// Returns once nothing has been read for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let idle = self.started.elapsed().saturating_sub(Duration::from_millis(self.last_read_ms.load(Relaxed)));
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }

    /// Fails the socket's reads and writes, waking both sides wherever they wait.
    fn expire(&self) {
        self.expired.store(true, Release);
        self.reader.wake();
        self.writer.wake();
    }
}

/// A call counted in its connection's watch until dropped (finished or cancelled).
struct CallInProgress(Arc<ConnectionWatch>);

impl Drop for CallInProgress {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, AcqRel);
        self.0.reader.wake();
    }
}

/// The RPC middleware that counts each call (or batch) in its connection's [`ConnectionWatch`].
#[derive(Debug, Clone)]
struct Metered<S>(S);

impl<S> Metered<S> {
    const fn new(service: S) -> Self {
        Self(service)
    }
}

impl<S> Metered<S> {
    /// Runs `call` counted in its connection's watch, and owes its answer.
    async fn counted(
        watch: Option<Arc<ConnectionWatch>>,
        call: impl Future<Output = jsonrpsee::MethodResponse>,
    ) -> jsonrpsee::MethodResponse {
        let Some(watch) = watch else { return call.await };
        let _in_progress = watch.begin_call();
        let response = call.await;
        if !response.is_notification() {
            watch.owe(response.as_json().get().len());
        }
        response
    }
}

impl<S> jsonrpsee::server::middleware::rpc::RpcServiceT for Metered<S>
where
    S: jsonrpsee::server::middleware::rpc::RpcServiceT<
            MethodResponse = jsonrpsee::MethodResponse,
            BatchResponse = jsonrpsee::MethodResponse,
            NotificationResponse = jsonrpsee::MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = jsonrpsee::MethodResponse;
    type NotificationResponse = jsonrpsee::MethodResponse;
    type BatchResponse = jsonrpsee::MethodResponse;

    fn call<'a>(
        &self,
        request: jsonrpsee::types::Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let watch = request.extensions().get::<Arc<ConnectionWatch>>().cloned();
        Self::counted(watch, self.0.call(request))
    }

    fn batch<'a>(
        &self,
        mut requests: jsonrpsee::core::middleware::Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        let watch = requests.extensions().get::<Arc<ConnectionWatch>>().cloned();
        Self::counted(watch, self.0.batch(requests))
    }

    fn notification<'a>(
        &self,
        notification: jsonrpsee::core::middleware::Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.0.notification(notification)
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

    #[test]
    fn a_connection_reads_only_within_its_budget() {
        let watch = Arc::new(ConnectionWatch::new(LoadBudget { calls: 2, unsent_bytes: 100 }));
        let cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        let (first, second) = (watch.begin_call(), watch.begin_call());
        assert!(watch.reader_waits(&cx), "two calls in progress: the budget");
        drop(first);
        assert!(!watch.reader_waits(&cx));
        drop(second);
        watch.owe(150);
        assert!(watch.reader_waits(&cx), "150 bytes unsent of 100 allowed");
        watch.wrote(&cx, &Poll::Ready(Ok(60)));
        assert!(!watch.reader_waits(&cx), "the client took 60");
        watch.wrote(&cx, &Poll::Pending);
        assert!(watch.reader_waits(&cx), "the socket is full: the client is not reading");
        watch.wrote(&cx, &Poll::Ready(Ok(500)));
        assert!(!watch.reader_waits(&cx));
        assert_eq!(watch.unsent.load(Acquire), 0, "credit never goes below zero");
        watch.wrote(&cx, &Poll::Pending);
        watch.expire();
        assert!(!watch.reader_waits(&cx), "an expired connection reads, to learn it failed");
    }
}
