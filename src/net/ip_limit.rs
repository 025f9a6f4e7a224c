//! [`InboundPerIp`]: a bound on inbound connections from one IP address.
//!
//! Peer identities are free, so limits per peer id do not stop one host from taking every
//! inbound slot with many identities. This behaviour counts established inbound connections by
//! the remote's IP address and denies more than its limit, before the security handshake
//! (`handle_pending_inbound_connection`) and again once established (two may race).

use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    task::{Context, Poll},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, multiaddr::Protocol, transport::PortUse},
    swarm::{
        ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm, dummy,
    },
};

/// Inbound connections allowed from one IP address. 8: a NAT with a few nodes behind it fits,
/// while one host minting identities holds at most 8 of a node's 50 slots.
pub const MAX_INBOUND_PER_IP: u32 = 8;

/// Counts established inbound connections per remote IP and refuses those over the limit.
#[derive(Debug)]
pub struct InboundPerIp {
    max: u32,
    established: HashMap<IpAddr, u32>,
    by_connection: HashMap<ConnectionId, IpAddr>,
}

/// Why an inbound connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already holds {max} inbound connections")]
pub struct TooManyFromIp {
    pub ip: IpAddr,
    pub max: u32,
}

impl InboundPerIp {
    pub fn new(max: u32) -> Self {
        Self { max, established: HashMap::new(), by_connection: HashMap::new() }
    }

    fn check(&self, remote: &Multiaddr) -> Result<Option<IpAddr>, ConnectionDenied> {
        let Some(ip) = ip_of(remote) else { return Ok(None) }; // not an IP transport (memory)
        if self.established.get(&ip).copied().unwrap_or(0) >= self.max {
            return Err(ConnectionDenied::new(TooManyFromIp { ip, max: self.max }));
        }
        Ok(Some(ip))
    }
}

fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|part| match part {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for InboundPerIp {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check(remote).map(|_| ())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = self.check(remote)? {
            *self.established.entry(ip).or_default() += 1;
            self.by_connection.insert(connection, ip);
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) = event
            && let Some(ip) = self.by_connection.remove(&connection_id)
            && let Some(count) = self.established.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                self.established.remove(&ip);
            }
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
