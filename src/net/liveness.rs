//! Liveness over libp2p's ping protocol (`/ipfs/ping/1.0.0`): every peer's pings are answered,
//! peers that serve ping are pinged, and a connection whose pings stop coming back is closed.
//!
//! Why not `libp2p::ping`: its handler (libp2p-ping 0.48) stops answering inbound pings on a
//! connection once the remote refused its own outbound ping. A peer that does not serve ping but
//! pings others (js-libp2p's connection monitor, on by default) then sees its pings time out and
//! drops the connection every few seconds. Here the two directions are independent: a peer that
//! does not serve ping is simply not pinged.
//!
//! Owns: the ping protocol on every connection. Does not: keep a connection alive (gossipsub and
//! the idle timeout decide that).

use std::{
    collections::VecDeque,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures::{
    AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _, StreamExt as _, future::BoxFuture, stream::FuturesUnordered,
};
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol,
    core::{Endpoint, transport::PortUse, upgrade::ReadyUpgrade},
    swarm::{
        CloseConnection, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, StreamUpgradeError, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
        handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound},
    },
};

/// libp2p's ping protocol id.
pub const PING_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");
/// Bytes of one ping, echoed back unchanged.
const PING_SIZE: usize = 32;
/// Inbound ping streams answered at once on one connection: a peer needs one.
const MAX_INBOUND_PINGS: usize = 2;

/// How often and how patiently peers are pinged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// Between pings on one connection. Default 15 s (libp2p's ping default).
    pub interval: Duration,
    /// For one ping to come back. Default 20 s.
    pub timeout: Duration,
    /// Consecutive failed pings that close the connection. Default 2.
    pub max_failures: u32,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(15), timeout: Duration::from_secs(20), max_failures: 2 }
    }
}

/// A connection closed because its peer stopped answering pings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unresponsive {
    pub peer: PeerId,
    pub connection: ConnectionId,
}

/// The liveness behaviour: one [`Handler`] per connection.
#[derive(Debug, Default)]
pub struct Liveness {
    config: LivenessConfig,
    to_close: VecDeque<Unresponsive>,
    to_report: VecDeque<Unresponsive>,
}

impl Liveness {
    pub fn new(config: LivenessConfig) -> Self {
        Self { config, to_close: VecDeque::new(), to_report: VecDeque::new() }
    }
}

impl NetworkBehaviour for Liveness {
    type ConnectionHandler = Handler;
    type ToSwarm = Unresponsive;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.config))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.config))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(&mut self, peer: PeerId, connection: ConnectionId, _: THandlerOutEvent<Self>) {
        self.to_close.push_back(Unresponsive { peer, connection });
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        // Each unresponsive connection is closed, then reported.
        if let Some(dead) = self.to_close.pop_front() {
            self.to_report.push_back(dead);
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id: dead.peer,
                connection: CloseConnection::One(dead.connection),
            });
        }
        self.to_report.pop_front().map_or(Poll::Pending, |dead| Poll::Ready(ToSwarm::GenerateEvent(dead)))
    }
}

/// Pings on one connection.
pub struct Handler {
    config: LivenessConfig,
    inbound: FuturesUnordered<BoxFuture<'static, ()>>,
    outbound: Outbound,
    failures: u32,
    next_ping: Pin<Box<tokio::time::Sleep>>,
}

enum Outbound {
    /// Waiting for `next_ping`.
    Idle,
    /// A stream was asked for.
    Opening,
    /// A ping is out.
    Pinging(BoxFuture<'static, io::Result<()>>),
    /// The peer does not serve ping: it is not pinged (its own pings are still answered).
    Unsupported,
    /// Unresponsive: to be reported once.
    Dead { reported: bool },
}

impl Handler {
    fn new(config: LivenessConfig) -> Self {
        Self {
            config,
            inbound: FuturesUnordered::new(),
            outbound: Outbound::Idle,
            failures: 0,
            // The first ping goes out at once: it also learns whether the peer serves ping.
            next_ping: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// One ping done: schedules the next, or gives the connection up after too many failures.
    fn settle(&mut self, answered: bool) {
        self.failures = if answered { 0 } else { self.failures + 1 };
        self.next_ping.as_mut().reset(tokio::time::Instant::now() + self.config.interval);
        self.outbound =
            if self.failures >= self.config.max_failures { Outbound::Dead { reported: false } } else { Outbound::Idle };
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = std::convert::Infallible;
    type ToBehaviour = ();
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PING_PROTOCOL), ())
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), ()>> {
        while let Poll::Ready(Some(())) = self.inbound.poll_next_unpin(cx) {}
        if let Outbound::Pinging(ping) = &mut self.outbound
            && let Poll::Ready(outcome) = ping.poll_unpin(cx)
        {
            if let Err(e) = &outcome {
                tracing::debug!(error = %e, "ping failed");
            }
            self.settle(outcome.is_ok());
        }
        match &mut self.outbound {
            Outbound::Idle if self.next_ping.as_mut().poll(cx).is_ready() => {
                self.outbound = Outbound::Opening;
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(ReadyUpgrade::new(PING_PROTOCOL), ())
                        .with_timeout(self.config.timeout),
                })
            }
            Outbound::Dead { reported } if !*reported => {
                *reported = true;
                Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(()))
            }
            _ => Poll::Pending,
        }
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), ()>) {
        match event {
            // Beyond the limit the stream is dropped: the peer's extra ping fails, ours go on.
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol: stream, .. })
                if self.inbound.len() < MAX_INBOUND_PINGS =>
            {
                self.inbound.push(answer(stream).boxed());
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound { protocol: stream, .. }) => {
                let timeout = self.config.timeout;
                self.outbound = Outbound::Pinging(
                    async move {
                        tokio::time::timeout(timeout, ping(stream))
                            .await
                            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
                    }
                    .boxed(),
                );
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => match error {
                StreamUpgradeError::NegotiationFailed => self.outbound = Outbound::Unsupported,
                // No stream within the timeout, or the connection failed: a missed ping.
                _ => self.settle(false),
            },
            _ => {}
        }
    }
}

/// Answers pings on `stream` until the peer closes it.
async fn answer(mut stream: Stream) {
    let mut payload = [0u8; PING_SIZE];
    while stream.read_exact(&mut payload).await.is_ok() {
        if stream.write_all(&payload).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// One ping: 32 random bytes out, the same 32 back.
async fn ping(mut stream: Stream) -> io::Result<()> {
    let payload: [u8; PING_SIZE] = rand::random();
    stream.write_all(&payload).await?;
    stream.flush().await?;
    let mut echoed = [0u8; PING_SIZE];
    stream.read_exact(&mut echoed).await?;
    let _ = stream.close().await;
    if echoed == payload { Ok(()) } else { Err(io::Error::new(io::ErrorKind::InvalidData, "ping echoed other bytes")) }
}
