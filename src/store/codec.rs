//! The record format shared by the journal and the snapshot, and a reader that survives damage.
//!
//! A record is `MAGIC (4) | payload length (u32 LE) | CRC-32C of the payload (u32 LE) | payload`,
//! and a payload is `origin (1 byte) | the transaction's EIP-2718 bytes`. The magic lets the
//! reader find the next record after a damaged one; the checksum tells it a record is intact.

use alloy_primitives::Bytes;

use crate::tx::Origin;

const MAGIC: [u8; 4] = *b"TPR1";
const HEADER: usize = 12;
/// Largest payload accepted: far above any transaction the validator admits (128 KiB), so a
/// damaged length field cannot make the reader swallow the rest of a file.
const MAX_PAYLOAD: usize = 1 << 20;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// One stored transaction: its bytes and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTx {
    pub origin: Origin,
    pub raw: Bytes,
}

/// Appends the framed record of `tx` to `out`.
pub fn encode(tx: &StoredTx, out: &mut Vec<u8>) {
    let payload_len = 1 + tx.raw.len();
    let mut crc = CRC.digest();
    crc.update(&[origin_byte(tx.origin)]);
    crc.update(&tx.raw);
    out.reserve(HEADER + payload_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&u32::try_from(payload_len).expect("records are far below 4 GiB").to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(origin_byte(tx.origin));
    out.extend_from_slice(&tx.raw);
}

const fn origin_byte(origin: Origin) -> u8 {
    match origin {
        Origin::Local => 0,
        Origin::External => 1,
        Origin::Private => 2,
    }
}

const fn origin_from(byte: u8) -> Option<Origin> {
    match byte {
        0 => Some(Origin::Local),
        1 => Some(Origin::External),
        2 => Some(Origin::Private),
        _ => None,
    }
}

/// What a file held: the intact records, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub records: Vec<StoredTx>,
    /// Damaged stretches skipped in the middle: (offset, bytes).
    pub corrupt: Vec<(usize, usize)>,
    /// The file ended inside a record (a write cut short by a crash): its offset and length.
    pub torn_tail: Option<(usize, usize)>,
}

/// Reads every intact record. A damaged record is skipped up to the next magic; an incomplete
/// last record is reported as a torn tail. Never fails: damage is reported, not fatal.
pub fn decode(data: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    let mut pos = 0;
    while pos < data.len() {
        match record_at(data, pos) {
            Parsed::Record(tx, len) => {
                out.records.push(tx);
                pos += len;
            }
            Parsed::Incomplete if next_magic(data, pos + 1).is_none() => {
                out.torn_tail = Some((pos, data.len() - pos));
                break;
            }
            Parsed::Incomplete | Parsed::Damaged => {
                let next = next_magic(data, pos + 1).unwrap_or(data.len());
                out.corrupt.push((pos, next - pos));
                pos = next;
            }
        }
    }
    out
}

enum Parsed {
    Record(StoredTx, usize),
    /// The header or payload runs past the end of the data.
    Incomplete,
    Damaged,
}

fn record_at(data: &[u8], pos: usize) -> Parsed {
    let rest = &data[pos..];
    if rest.len() < HEADER {
        return if MAGIC.starts_with(&rest[..rest.len().min(4)]) { Parsed::Incomplete } else { Parsed::Damaged };
    }
    if rest[..4] != MAGIC {
        return Parsed::Damaged;
    }
    let len = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Parsed::Damaged;
    }
    let Some(payload) = rest.get(HEADER..HEADER + len) else { return Parsed::Incomplete };
    if CRC.checksum(payload) != crc {
        return Parsed::Damaged;
    }
    match origin_from(payload[0]) {
        Some(origin) => Parsed::Record(StoredTx { origin, raw: Bytes::copy_from_slice(&payload[1..]) }, HEADER + len),
        None => Parsed::Damaged,
    }
}

fn next_magic(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?.windows(MAGIC.len()).position(|w| w == MAGIC).map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(i: u8, len: usize) -> StoredTx {
        StoredTx { origin: Origin::Local, raw: Bytes::from(vec![i; len]) }
    }

    fn file(txs: &[StoredTx]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for tx in txs {
            offsets.push(out.len());
            encode(tx, &mut out);
        }
        (out, offsets)
    }

    #[test]
    fn round_trips_every_origin() {
        let txs: Vec<StoredTx> = [Origin::Local, Origin::External, Origin::Private]
            .into_iter()
            .enumerate()
            .map(|(i, origin)| StoredTx { origin, raw: Bytes::from(vec![i as u8; 10 + i]) })
            .collect();
        let decoded = decode(&file(&txs).0);
        assert_eq!(decoded, Decoded { records: txs, ..Default::default() });
    }

    #[test]
    fn a_flipped_byte_loses_only_its_record() {
        let txs: Vec<StoredTx> = (0..5).map(|i| tx(i, 50)).collect();
        let (mut data, offsets) = file(&txs);
        data[offsets[2] + HEADER + 10] ^= 0x40;
        let decoded = decode(&data);
        assert_eq!(decoded.records, [&txs[..2], &txs[3..]].concat());
        assert_eq!(decoded.corrupt, [(offsets[2], offsets[3] - offsets[2])]);
        assert_eq!(decoded.torn_tail, None);
    }

    #[test]
    fn a_damaged_length_resyncs_at_the_next_record() {
        let txs: Vec<StoredTx> = (0..4).map(|i| tx(i, 30)).collect();
        let (mut data, offsets) = file(&txs);
        data[offsets[1] + 4..offsets[1] + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let decoded = decode(&data);
        assert_eq!(decoded.records, [&txs[..1], &txs[2..]].concat());
        assert_eq!(decoded.corrupt.len(), 1);
    }

    #[test]
    fn a_torn_last_record_is_reported_not_read() {
        let txs: Vec<StoredTx> = (0..3).map(|i| tx(i, 40)).collect();
        let (data, offsets) = file(&txs);
        for cut in [offsets[2] + 2, offsets[2] + HEADER, data.len() - 1] {
            let decoded = decode(&data[..cut]);
            assert_eq!(decoded.records, txs[..2]);
            assert_eq!(decoded.torn_tail, Some((offsets[2], cut - offsets[2])), "cut at {cut}");
            assert!(decoded.corrupt.is_empty());
        }
    }

    #[test]
    fn garbage_yields_nothing_and_never_panics() {
        let decoded = decode(b"not a journal at all, TPR1 but nothing after");
        assert!(decoded.records.is_empty());
        assert!(!decoded.corrupt.is_empty() || decoded.torn_tail.is_some());
    }
}
