//! Transactions: exact EIP-2718 decoding, sender recovery, and the pooled form.
//!
//! Owns: the byte forms Tidepool accepts (legacy pre-/post-EIP-155, 2930, 1559, 4844 in its
//! consensus and network forms ([`blob`]), 7702), sender recovery with libsecp256k1,
//! [`PooledTx`], signing for dev tools, and the shared run-time [`MinTip`].
//! Does not: apply policy or chain rules (`validate`), know about accounts or the pool.
//!
//! # Invariants
//! 1. [`decode`] accepts only canonical bytes: re-encoding a decoded tx gives back the input.
//! 2. A [`PooledTx`] exists only for a transaction whose sender was recovered from a low-s
//!    signature; its fields are computed once, when it is built.

pub mod blob;
mod error;
pub mod generate;
mod min_tip;
mod pooled;
pub mod sign;

pub use error::TxError;
pub use min_tip::MinTip;
pub use pooled::{GAS_PER_BLOB, Origin, PooledTx, effective_tip, max_cost};

use alloy_consensus::{EthereumTxEnvelope, TxEip4844, TxLegacy, transaction::RlpEcdsaDecodableTx as _};
use alloy_eips::eip2718::{Decodable2718, Eip2718Error};
use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use alloy_rlp::Header;
use secp256k1::{
    Message, SECP256K1,
    ecdsa::{RecoverableSignature, RecoveryId},
};

/// The decoded consensus form of a transaction (blob transactions without sidecar).
pub type Envelope = EthereumTxEnvelope<TxEip4844>;

/// Half the secp256k1 group order: signatures with `s` above it are malleable twins (EIP-2).
const SECP256K1N_HALF: U256 = U256::from_be_slice(&[
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x5D, 0x57, 0x6E,
    0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
]);

/// The highest EIP-2718 type byte Tidepool decodes (EIP-7702 set-code transactions).
pub const MAX_TX_TYPE: u8 = 4;

/// The largest encoded transaction a pool takes by default, and so the largest a peer may send:
/// 128 KiB, as geth and reth (a blob transaction's sidecar does not count).
pub const MAX_TX_SIZE: usize = 128 * 1024;

/// A decoded, not yet verified transaction and its hash (keccak of the exact input bytes).
#[derive(Debug, Clone)]
pub struct DecodedTx {
    pub envelope: Envelope,
    pub hash: B256,
}

/// The type byte of raw transaction bytes: `0` for legacy (an RLP list), `1..=0x7f` for typed.
///
/// # Errors
/// [`TxError::Empty`] for no bytes, [`TxError::MalformedRlp`] for a leading RLP string header
/// (neither a type byte nor a legacy list).
pub fn type_byte(raw: &[u8]) -> Result<u8, TxError> {
    match raw.first() {
        None => Err(TxError::Empty),
        Some(&b) if b >= 0xc0 => Ok(0),
        Some(&b) if b <= 0x7f => Ok(b),
        Some(&b) => Err(TxError::MalformedRlp(format!("leading byte {b:#04x} is an RLP string header"))),
    }
}

/// Decodes exactly one transaction from its canonical EIP-2718 bytes.
///
/// # Errors
/// Unknown types, malformed or non-canonical RLP (leading zeros, wrong sizes), trailing bytes,
/// fees of 2^128 wei per gas or more, and blob transactions in the network form with a sidecar.
pub fn decode(raw: &[u8]) -> Result<DecodedTx, TxError> {
    let ty = type_byte(raw)?;
    if ty > MAX_TX_TYPE || ty == 0 && raw[0] < 0xc0 {
        return Err(TxError::TypeNotSupported(ty));
    }
    let mut rest = raw;
    // Legacy goes straight to its RLP decoder: alloy's envelope fallback would hide the reason.
    let envelope = if ty == 0 {
        TxLegacy::rlp_decode_signed(&mut rest).map(Envelope::Legacy).map_err(Eip2718Error::from)
    } else {
        Envelope::decode_2718(&mut rest)
    }
    .map_err(|e| decode_error(raw, ty, e))?;
    if !rest.is_empty() {
        return Err(TxError::TrailingBytes(rest.len()));
    }
    let hash = *envelope.tx_hash();
    Ok(DecodedTx { envelope, hash })
}

/// Turns alloy's decoding error into ours, looking closer where alloy's error is too coarse.
fn decode_error(raw: &[u8], ty: u8, error: Eip2718Error) -> TxError {
    let rlp = match error {
        Eip2718Error::UnexpectedType(t) => return TxError::TypeNotSupported(t),
        Eip2718Error::RlpError(rlp) => rlp,
        other => return TxError::MalformedRlp(other.to_string()),
    };
    let fields = payload_fields(raw, ty);
    if ty == 3 && fields.as_ref().is_some_and(|f| f.first().is_some_and(|item| item.is_list)) {
        // The network form is `3 || rlp([tx_payload_body, blobs, commitments, proofs])`.
        return TxError::BlobSidecarNotAccepted;
    }
    if rlp == alloy_rlp::Error::Overflow {
        let widest_fee = fields
            .iter()
            .flat_map(|f| fee_field_indices(ty).iter().filter_map(|&i| f.get(i)))
            .filter(|item| !item.is_list)
            .map(|item| item.len)
            .max()
            .unwrap_or(0);
        // Fees are u256 in the spec; alloy (and we) hold them as u128. A fee of 2^128 wei per gas
        // costs more than all ether in existence: refuse it with its own kind, not as bad RLP.
        if (17..=32).contains(&widest_fee) {
            return TxError::FeeAbove128Bits { bytes: widest_fee };
        }
        return TxError::FieldOverflow;
    }
    TxError::MalformedRlp(rlp.to_string())
}

/// Positions of the per-gas fee fields in each type's RLP field list.
const fn fee_field_indices(ty: u8) -> &'static [usize] {
    match ty {
        0 => &[1],        // [nonce, gasPrice, ...]
        1 => &[2],        // [chainId, nonce, gasPrice, ...]
        2 | 4 => &[2, 3], // [chainId, nonce, maxPriorityFee, maxFee, ...]
        3 => &[2, 3, 9],  // ... [9] = maxFeePerBlobGas
        _ => &[],
    }
}

/// One item of an RLP list: whether it is a list, and its payload length.
struct RlpItem {
    is_list: bool,
    len: usize,
}

/// The items of the outer field list, or `None` where the framing itself is broken.
fn payload_fields(raw: &[u8], ty: u8) -> Option<Vec<RlpItem>> {
    let mut buf = if ty == 0 { raw } else { &raw[1..] };
    let outer = Header::decode(&mut buf).ok()?;
    let mut body = buf.get(..outer.payload_length)?;
    let mut items = Vec::new();
    while !body.is_empty() {
        let header = Header::decode(&mut body).ok()?;
        body = body.get(header.payload_length..)?;
        items.push(RlpItem { is_list: header.list, len: header.payload_length });
    }
    Some(items)
}

/// Recovers the sender with libsecp256k1, refusing high-s signatures (EIP-2).
///
/// # Errors
/// [`TxError::HighS`] or [`TxError::InvalidSignature`] (r or s zero or out of range, no point).
pub fn recover_sender(envelope: &Envelope) -> Result<Address, TxError> {
    recover_address(envelope.signature(), envelope.signature_hash())
}

/// Recovers the authority (signer) of an EIP-7702 authorization, refusing high-s signatures.
///
/// # Errors
/// [`TxError::HighS`] or [`TxError::InvalidSignature`].
pub fn recover_authority(authorization: &alloy_eips::eip7702::SignedAuthorization) -> Result<Address, TxError> {
    let signature = authorization.signature().map_err(|_| TxError::InvalidSignature)?;
    recover_address(&signature, authorization.inner().signature_hash())
}

/// Recovers the signer of a 32-byte digest, refusing high-s signatures.
fn recover_address(signature: &Signature, digest: B256) -> Result<Address, TxError> {
    if signature.s() > SECP256K1N_HALF {
        return Err(TxError::HighS);
    }
    let recovery_id = RecoveryId::from_u8_masked(u8::from(signature.v()));
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let recoverable =
        RecoverableSignature::from_compact(&compact, recovery_id).map_err(|_| TxError::InvalidSignature)?;
    let public =
        SECP256K1.recover_ecdsa(Message::from_digest(digest.0), &recoverable).map_err(|_| TxError::InvalidSignature)?;
    Ok(public_key_address(&public))
}

/// The Ethereum address of a public key: the last 20 bytes of keccak of its 64-byte form.
pub fn public_key_address(public: &secp256k1::PublicKey) -> Address {
    let uncompressed = public.serialize_uncompressed();
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}
