//! The network form of a blob transaction (EIP-4844, EIP-7594): the signed transaction with its
//! sidecar of blobs, KZG commitments and proofs.
//!
//! ```text
//! version 0 (Cancun, Prague): 0x03 || rlp([tx_payload_body, blobs, commitments, proofs])
//! version 1 (Osaka on):       0x03 || rlp([tx_payload_body, 1, blobs, commitments, cell_proofs])
//! ```
//! `tx_payload_body` is the consensus form's RLP list, so the consensus bytes (what blocks carry
//! and what the hash covers) are `0x03 || tx_payload_body`, cut out without re-encoding.
//! Proof checking is `validate`'s; this module only splits and joins the bytes.

use alloy_eips::eip7594::{BlobTransactionSidecarVariant, Decodable7594 as _, Encodable7594 as _};
use alloy_primitives::{B256, Bytes, Keccak256, keccak256};
use alloy_rlp::Header;

use super::TxError;

/// A blob transaction's sidecar, either wrapper version (alloy's type: blobs, commitments, and
/// one proof per blob or 128 cell proofs per blob).
pub type BlobSidecar = BlobTransactionSidecarVariant;

/// Bytes of data in one blob (4096 field elements of 32 bytes).
pub const BYTES_PER_BLOB: usize = alloy_eips::eip4844::BYTES_PER_BLOB;

/// The largest network form of a transaction with `max_blobs` blobs whose consensus form is at
/// most `max_tx_size`: each blob brings its data, a commitment, and up to 128 cell proofs, plus
/// RLP headers. The cheap length check before hashing uses it.
pub const fn max_network_size(max_tx_size: usize, max_blobs: usize) -> usize {
    const PER_BLOB: usize = BYTES_PER_BLOB + 5 + 49 + 128 * 49;
    max_tx_size + 32 + max_blobs * PER_BLOB
}

/// A blob transaction split into its consensus bytes and its sidecar.
#[derive(Debug, Clone)]
pub struct NetworkForm {
    /// `0x03 || tx_payload_body`: what the transaction hash covers.
    pub consensus: Bytes,
    pub sidecar: BlobSidecar,
}

/// Whether `raw` is a blob transaction in its network form: type 3 whose outer list starts
/// with a list (the consensus form starts with the chain id). Looks at headers only.
pub fn is_network_form(raw: &[u8]) -> bool {
    let [3, rest @ ..] = raw else { return false };
    let mut buf = rest;
    Header::decode(&mut buf).is_ok_and(|outer| outer.list) && buf.first().is_some_and(|&b| b >= 0xc0)
}

/// The transaction hash of raw bytes in either form: keccak256 of the consensus bytes, which a
/// network form carries inside (hashed in place, without a copy).
pub fn tx_hash(raw: &[u8]) -> B256 {
    if !is_network_form(raw) {
        return keccak256(raw);
    }
    let mut buf = &raw[1..];
    let tx_body = Header::decode(&mut buf).ok().and_then(|_| {
        let start = buf;
        let tx = Header::decode(&mut buf).ok()?;
        start.get(..start.len() - buf.len() + tx.payload_length)
    });
    match tx_body {
        Some(body) => {
            let mut hasher = Keccak256::new();
            hasher.update([3]);
            hasher.update(body);
            hasher.finalize()
        }
        // Broken framing: no transaction has this hash, so the bytes' own hash serves.
        None => keccak256(raw),
    }
}

/// The number of blobs a network form's framing announces, read from the RLP headers without
/// decoding the blobs (each is a 131,072-byte string behind a 4-byte header); `None` when the
/// framing is not that of a network form.
pub fn count_blobs(raw: &[u8]) -> Option<usize> {
    let mut buf = raw.get(1..)?;
    Header::decode(&mut buf).ok().filter(|outer| outer.list)?;
    let tx = Header::decode(&mut buf).ok().filter(|tx| tx.list)?;
    buf = buf.get(tx.payload_length..)?;
    if buf.first().is_some_and(|&b| b < 0xc0) {
        buf = &buf[1..]; // the wrapper version byte
    }
    let blobs = Header::decode(&mut buf).ok().filter(|blobs| blobs.list)?;
    Some(blobs.payload_length / (BYTES_PER_BLOB + 4))
}

/// Splits a network form. Decoding the transaction itself is left to [`super::decode`] on
/// [`NetworkForm::consensus`].
///
/// # Errors
/// [`TxError::MalformedRlp`] for broken framing or sidecar fields, [`TxError::TrailingBytes`]
/// after the outer list, [`TxError::BlobWrapperVersion`] for a wrapper version other than 1.
pub fn split_network_form(raw: &[u8]) -> Result<NetworkForm, TxError> {
    let malformed = |e: alloy_rlp::Error| TxError::MalformedRlp(format!("blob sidecar: {e}"));
    let rest = raw.get(1..).ok_or(TxError::Empty)?;
    let mut buf = rest;
    let outer = Header::decode(&mut buf).map_err(malformed)?;
    if !outer.list {
        return Err(malformed(alloy_rlp::Error::UnexpectedString));
    }
    let (mut body, trailing) =
        buf.split_at_checked(outer.payload_length).ok_or(malformed(alloy_rlp::Error::InputTooShort))?;
    if !trailing.is_empty() {
        return Err(TxError::TrailingBytes(trailing.len()));
    }
    let tx_start = body;
    let tx_header = Header::decode(&mut body).map_err(malformed)?;
    let tx_len = tx_start.len() - body.len() + tx_header.payload_length;
    let tx_body = tx_start.get(..tx_len).ok_or(malformed(alloy_rlp::Error::InputTooShort))?;
    body = &tx_start[tx_len..];
    // Version 1 puts a single byte (0x01) first; version 0 starts with the blobs' list. Any
    // other leading string is a version this node does not know.
    if let Some(&first) = body.first()
        && first < 0xc0
        && first != alloy_eips::eip7594::EIP_7594_WRAPPER_VERSION
    {
        return Err(TxError::BlobWrapperVersion { got: first, expected: 1 });
    }
    let sidecar = BlobSidecar::decode_7594(&mut body).map_err(malformed)?;
    if !body.is_empty() {
        return Err(malformed(alloy_rlp::Error::UnexpectedLength));
    }
    let mut consensus = Vec::with_capacity(1 + tx_len);
    consensus.push(3);
    consensus.extend_from_slice(tx_body);
    Ok(NetworkForm { consensus: consensus.into(), sidecar })
}

/// Joins consensus bytes and a sidecar into the network form (what peers fetch and what the
/// journal keeps).
pub fn network_form(consensus: &[u8], sidecar: &BlobSidecar) -> Bytes {
    let tx_body = &consensus[1..];
    let payload_length = tx_body.len() + sidecar.encode_7594_len();
    let header = Header { list: true, payload_length };
    let mut out = Vec::with_capacity(1 + header.length() + payload_length);
    out.push(3);
    header.encode(&mut out);
    out.extend_from_slice(tx_body);
    sidecar.encode_7594(&mut out);
    out.into()
}

/// Wrapper version of a sidecar: 0 (a proof per blob) or 1 (EIP-7594 cell proofs).
pub const fn wrapper_version(sidecar: &BlobSidecar) -> u8 {
    match sidecar {
        BlobSidecar::Eip4844(_) => 0,
        BlobSidecar::Eip7594(_) => 1,
    }
}
