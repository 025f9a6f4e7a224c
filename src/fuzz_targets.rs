//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the stable test that replays
//! their corpora (`tests/fuzz_corpus.rs`), so CI exercises exactly what the fuzzer does.

use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Bytes, keccak256};

use crate::{tx, validate::Validator};

/// Arbitrary bytes through decoding and full stateless validation. Panics if an invariant breaks:
/// whatever decodes re-encodes to the same bytes, and an accepted transaction's hash and size
/// describe exactly those bytes.
pub fn decode_validate(data: &[u8]) {
    if let Ok(decoded) = tx::decode(data) {
        assert_eq!(decoded.envelope.encoded_2718(), data, "decoding is exact");
        assert_eq!(decoded.hash, keccak256(data));
    }
    let validator = Validator::default();
    if let Ok(pooled) = validator.validate_stateless(Bytes::copy_from_slice(data)) {
        assert_eq!(pooled.hash(), keccak256(data));
        assert_eq!(pooled.size(), data.len());
        assert!(pooled.max_priority_fee_per_gas() <= pooled.max_fee_per_gas());
    }
}
