//! Tidepool's wire protocol on libp2p: topics, message encodings, the fetch protocol, and the
//! composed behaviour. Shared by the node's driver and by test clients that play a peer.

use std::{io, time::Duration};

use alloy_primitives::{B256, Bytes, keccak256};
use futures::{AsyncRead, AsyncWrite};
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify,
    identity::Keypair,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
};
use serde::{Deserialize, Serialize};

use crate::gossip::{Announced, GossipsubParams};

/// The fetch protocol for announced transactions.
pub const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/tidepool/fetch/1");
/// Bytes of one announcement entry: 32-byte hash, 4-byte big-endian size.
const ANNOUNCED_LEN: usize = 36;
/// Bytes of the salt that opens every announcement message.
const SALT_LEN: usize = 8;

/// Gossip topic for full transactions on `chain_id`.
pub fn tx_topic(chain_id: u64) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("/tidepool/{chain_id}/txs/1"))
}

/// Gossip topic for announcements of large transactions on `chain_id`.
pub fn announce_topic(chain_id: u64) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("/tidepool/{chain_id}/announce/1"))
}

/// Most bytes of a fetch request read: 32 hashes with their framing fit in 1.2 KiB.
pub const MAX_FETCH_REQUEST: u64 = 16 * 1024;
/// Concurrent fetch streams per connection, each way (libp2p's default is 100). The gossip core
/// asks a peer for at most `max_in_flight_per_peer` hashes at once, usually in one or two
/// requests; more than this from a peer is a flood, and every open inbound stream may hold a
/// response being written.
pub const MAX_FETCH_STREAMS: usize = 8;

/// A request for announced transactions, by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub hashes: Vec<B256>,
    /// The most response bytes the requester reads (see [`response_cap`]). Not on the wire:
    /// the codec instance that writes a request also reads its response, and stops there.
    #[serde(skip)]
    pub max_response: u64,
}

/// The most bytes a response to a request for `hashes` transactions announced at
/// `announced_bytes` in total can take: their bytes and CBOR framing (a map key, an array
/// header, a byte-string header per transaction). Anything longer broke the announcement.
pub const fn response_cap(announced_bytes: usize, hashes: usize) -> u64 {
    (announced_bytes + 16 + 9 * hashes) as u64
}

/// The fetch protocol's codec: CBOR (libp2p's), with requests capped at [`MAX_FETCH_REQUEST`]
/// and each response read only up to its request's `max_response`, so a peer that announced
/// small and serves large is cut off at the announced size, not at a codec-wide limit.
#[derive(Clone)]
pub struct FetchCodec {
    cbor: request_response::cbor::codec::Codec<FetchRequest, FetchResponse>,
    /// Set by `write_request`; an instance that wrote no request reads no response.
    response_cap: u64,
}

impl Default for FetchCodec {
    fn default() -> Self {
        Self {
            cbor: request_response::cbor::codec::Codec::default().set_request_size_maximum(MAX_FETCH_REQUEST),
            response_cap: 0,
        }
    }
}

impl request_response::Codec for FetchCodec {
    type Protocol = StreamProtocol;
    type Request = FetchRequest;
    type Response = FetchResponse;

    async fn read_request<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<FetchRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.cbor.read_request(protocol, io).await
    }

    async fn read_response<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<FetchResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut capped = self.cbor.clone().set_response_size_maximum(self.response_cap);
        capped.read_response(protocol, io).await
    }

    async fn write_request<T>(&mut self, protocol: &StreamProtocol, io: &mut T, request: FetchRequest) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.response_cap = request.max_response;
        self.cbor.write_request(protocol, io, request).await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        response: FetchResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.cbor.write_response(protocol, io, response).await
    }
}

/// The transactions of a [`FetchRequest`] that the peer holds, as canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    pub txs: Vec<Bytes>,
}

/// Encodes announcements as a salt followed by consecutive `hash ‖ size` entries.
///
/// Announcements are not relayed: every node announces what it holds, once it has validated it,
/// so an announcer can always serve what it announced. The salt (unique per message from one
/// node) keeps two nodes' announcements of the same transaction from sharing a gossipsub
/// message id, which is the hash of the data.
pub fn encode_announcements(salt: u64, txs: &[Announced]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SALT_LEN + txs.len() * ANNOUNCED_LEN);
    out.extend_from_slice(&salt.to_be_bytes());
    for tx in txs {
        out.extend_from_slice(tx.hash.as_slice());
        out.extend_from_slice(&tx.size.to_be_bytes());
    }
    out
}

/// Decodes announcements; `None` if the length is not a whole number of entries.
pub fn decode_announcements(data: &[u8]) -> Option<Vec<Announced>> {
    let entries = data.get(SALT_LEN..)?;
    if entries.is_empty() || entries.len() % ANNOUNCED_LEN != 0 {
        return None;
    }
    Some(
        entries
            .chunks_exact(ANNOUNCED_LEN)
            .map(|entry| Announced {
                hash: B256::from_slice(&entry[..32]),
                size: u32::from_be_bytes(entry[32..].try_into().expect("4 bytes")),
            })
            .collect(),
    )
}

/// Sizes and gossipsub settings of the network layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest gossip message (a transaction at the validation size limit, plus framing).
    pub max_message: usize,
    /// Connections in total and per peer.
    pub max_connections: u32,
    pub gossipsub: GossipsubParams,
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub gossipsub: gossipsub::Behaviour,
    pub fetch: request_response::Behaviour<FetchCodec>,
    pub identify: identify::Behaviour,
    pub liveness: super::liveness::Liveness,
    pub limits: connection_limits::Behaviour,
    pub inbound_per_ip: super::ip_limit::InboundPerIp,
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
}

/// Gossipsub's configuration for `limits`: anonymous mode (transactions carry their own
/// signatures), message id = the keccak hash of the data (a transaction's hash for full
/// transactions), application validation (nothing is relayed before the validation stage
/// accepts it), and the mesh of `limits.gossipsub`.
///
/// # Panics
/// If `limits.gossipsub` breaks [`GossipsubParams::check`].
pub fn gossipsub_config(limits: &Limits) -> gossipsub::Config {
    let mesh = &limits.gossipsub;
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| gossipsub::MessageId::from(keccak256(&message.data).to_vec()))
        .max_transmit_size(limits.max_message)
        // Gossipsub remembers every message id it saw for this long, whatever the rate: at
        // its default (60 s) a 30k msg/s flood held ~2M ids (~400 MB). Duplicates arrive
        // within a second or two of each other, and the gossip core's own count-bounded
        // seen-cache catches later ones, so 10 s loses nothing and bounds the memory.
        .duplicate_cache_time(Duration::from_secs(10))
        .mesh_n(mesh.d)
        .mesh_n_low(mesh.d_low)
        .mesh_n_high(mesh.d_high)
        .gossip_lazy(mesh.d_lazy)
        .mesh_outbound_min(mesh.d_out)
        .gossip_factor(mesh.gossip_factor)
        .history_length(mesh.history_length)
        .history_gossip(mesh.history_gossip)
        .heartbeat_interval(mesh.heartbeat())
        // The first heartbeat one interval after start (rust-libp2p waits 5 s by default): the
        // simulator's engines both start maintaining meshes at once.
        .heartbeat_initial_delay(mesh.heartbeat())
        .flood_publish(mesh.flood_publish)
        .idontwant_message_size_threshold(mesh.idontwant_above)
        .prune_backoff(Duration::from_secs(mesh.prune_backoff_seconds))
        .gossip_retransimission(mesh.iwant_retransmissions)
        .max_ihave_messages_heartbeat(mesh.max_ihave_messages)
        .build()
        .expect("gossipsub parameters checked by GossipsubParams::check")
}

impl Behaviour {
    /// The node's behaviour: gossipsub as [`gossipsub_config`] says, fetches, identify,
    /// liveness, connection limits.
    ///
    /// # Panics
    /// If `limits.gossipsub` breaks [`GossipsubParams::check`].
    pub fn new(key: &Keypair, limits: Limits) -> Self {
        let gossip_config = gossipsub_config(&limits);
        let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .expect("anonymous gossipsub");
        let fetch = request_response::Behaviour::with_codec(
            FetchCodec::default(),
            [(FETCH_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(10))
                .with_max_concurrent_streams(MAX_FETCH_STREAMS),
        );
        let identify = identify::Behaviour::new(identify::Config::new("/tidepool/1".into(), key.public()));
        // A quarter of the slots (at least one) is kept for connections we dial: inbound peers,
        // however many identities they mint, cannot take them all and eclipse the node.
        let outbound_reserve = (limits.max_connections / 4).max(1).min(limits.max_connections);
        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(limits.max_connections))
            .with_max_established_incoming(Some(limits.max_connections - outbound_reserve))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(limits.max_connections));
        Self {
            gossipsub,
            fetch,
            identify,
            liveness: super::liveness::Liveness::default(),
            limits: connection_limits::Behaviour::new(connection_limits),
            inbound_per_ip: super::ip_limit::InboundPerIp::new(super::ip_limit::MAX_INBOUND_PER_IP),
            blocked: allow_block_list::Behaviour::default(),
        }
    }
}

/// Builds a swarm over TCP (noise, yamux) and QUIC with Tidepool's behaviour.
///
/// # Errors
/// When the transports cannot be set up.
pub fn build_swarm(
    key: Keypair,
    limits: Limits,
) -> Result<libp2p::Swarm<Behaviour>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|key| Behaviour::new(key, limits))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_reject_bad_lengths() {
        let txs = vec![
            Announced { hash: B256::repeat_byte(1), size: 5_000 },
            Announced { hash: B256::repeat_byte(2), size: 9 },
        ];
        assert_eq!(decode_announcements(&encode_announcements(7, &txs)), Some(txs.clone()));
        assert_ne!(encode_announcements(1, &txs), encode_announcements(2, &txs), "salted");
        assert_eq!(decode_announcements(&[0u8; 8 + 35]), None);
        assert_eq!(decode_announcements(&[0u8; 8]), None);
        assert_eq!(decode_announcements(&[]), None);
    }
}
