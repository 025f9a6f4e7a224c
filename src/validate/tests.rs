//! Every validation rule, each on both sides of its boundary.

use alloy_consensus::{SignableTransaction as _, TxEip1559, TxEip4844, TxEip7702, TxLegacy};
use alloy_eips::{
    eip2718::Encodable2718 as _,
    eip2930::{AccessList, AccessListItem},
    eip7702::Authorization,
};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, hex};

use super::*;
use crate::tx::{Envelope, sign::Signer};

const TO: Address = Address::repeat_byte(0x11);

fn signer() -> Signer {
    Signer::dev(42)
}

fn base_1559() -> TxEip1559 {
    TxEip1559 {
        chain_id: 1,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 100,
        max_priority_fee_per_gas: 2,
        to: TxKind::Call(TO),
        ..Default::default()
    }
}

fn eip1559(edit: impl FnOnce(&mut TxEip1559)) -> Bytes {
    let mut tx = base_1559();
    edit(&mut tx);
    signer().sign_tx(tx)
}

fn blob_tx(edit: impl FnOnce(&mut TxEip4844)) -> Bytes {
    let mut tx = TxEip4844 {
        chain_id: 1,
        gas_limit: 21_000,
        max_fee_per_gas: 100,
        max_priority_fee_per_gas: 2,
        to: TO,
        blob_versioned_hashes: vec![kzg_hash(1)],
        max_fee_per_blob_gas: 10,
        ..Default::default()
    };
    edit(&mut tx);
    signer().sign_tx(tx)
}

fn kzg_hash(n: u8) -> B256 {
    let mut hash = B256::repeat_byte(n);
    hash.0[0] = 0x01;
    hash
}

fn at(fork: Fork) -> Validator {
    Validator::new(ValidationConfig { fork, ..Default::default() })
}

/// The consensus rules (a blob transaction without its sidecar passes them; the network form's
/// rules are tested in `tests/blobs.rs`, with real KZG proofs).
fn check(validator: &Validator, raw: Bytes) -> Result<PooledTx, TxError> {
    validator.validate_consensus(raw)
}

fn ok(raw: Bytes) -> PooledTx {
    check(&Validator::default(), raw).expect("valid")
}

fn err(raw: Bytes) -> TxError {
    check(&Validator::default(), raw).expect_err("invalid")
}

#[test]
fn size_limit_is_inclusive() {
    let raw = eip1559(|t| {
        t.input = vec![1u8; 500].into();
        t.gas_limit = 50_000;
    });
    let exact = Validator::new(ValidationConfig { max_tx_size: raw.len(), ..Default::default() });
    assert!(check(&exact, raw.clone()).is_ok());
    let below = Validator::new(ValidationConfig { max_tx_size: raw.len() - 1, ..Default::default() });
    assert_eq!(check(&below, raw.clone()), Err(TxError::Oversized { size: raw.len(), limit: raw.len() - 1 }));
}

#[test]
fn types_by_fork_and_policy() {
    assert!(check(&at(Fork::Cancun), blob_tx(|_| {})).is_ok());
    assert_eq!(check(&at(Fork::Shanghai), blob_tx(|_| {})), Err(TxError::TypeNotEnabled { ty: 3, fork: "shanghai" }));
    let no_blobs = Validator::new(ValidationConfig { disabled_types: vec![3], ..Default::default() });
    assert_eq!(check(&no_blobs, blob_tx(|_| {})), Err(TxError::TypeNotEnabled { ty: 3, fork: "bpo2" }));
    assert!(check(&no_blobs, eip1559(|_| {})).is_ok());
    let mut unknown = eip1559(|_| {}).to_vec();
    unknown[0] = 0x05;
    assert_eq!(err(unknown.into()), TxError::TypeNotSupported(5));
    assert_eq!(err(Bytes::new()), TxError::Empty);
}

#[test]
fn decoding_is_exact() {
    let mut trailing = eip1559(|_| {}).to_vec();
    trailing.push(0);
    assert_eq!(err(trailing.into()), TxError::TrailingBytes(1));
    // A nonce of 5 written with a leading zero byte is not canonical RLP.
    let items: [&[u8]; 9] = [&[0x00, 0x05], &[0x0a], &[0x52, 0x08], &[0x11; 20], &[], &[], &[0x25], &[0x01], &[0x01]];
    assert!(matches!(err(rlp_list(&items)), TxError::MalformedRlp(m) if m.contains("leading zero")));
}

/// A hand-built RLP list of byte-string items, for encodings alloy would refuse to produce.
fn rlp_list(items: &[&[u8]]) -> Bytes {
    let mut fields = Vec::new();
    for item in items {
        alloy_rlp::Encodable::encode(item, &mut fields);
    }
    let mut raw = Vec::new();
    alloy_rlp::Header { list: true, payload_length: fields.len() }.encode(&mut raw);
    raw.extend_from_slice(&fields);
    raw.into()
}

#[test]
fn blob_network_form_gets_its_own_error() {
    // 3 || rlp([tx_payload_body, blobs, commitments, proofs]): the body is a list, not a field.
    let consensus = blob_tx(|_| {});
    let body = &consensus[1..];
    let mut payload = body.to_vec();
    payload.extend_from_slice(&[0xc0, 0xc0, 0xc0]);
    let mut raw = vec![0x03];
    alloy_rlp::Header { list: true, payload_length: payload.len() }.encode(&mut raw);
    raw.extend_from_slice(&payload);
    assert_eq!(err(raw.into()), TxError::BlobSidecarNotAccepted);
}

#[test]
fn fee_of_2_pow_128_has_its_own_kind() {
    // A legacy tx whose gas price is 17 bytes wide (2^128): hand-built, alloy cannot hold it.
    let items: [&[u8]; 9] = [&[], &[0x01; 17], &[0x52, 0x08], &[0x11; 20], &[], &[], &[0x25], &[0x01], &[0x01]];
    assert_eq!(err(rlp_list(&items)), TxError::FeeAbove128Bits { bytes: 17 });
    // Wider than 256 bits is no number at all.
    let items: [&[u8]; 9] = [&[], &[0x01; 33], &[0x52, 0x08], &[0x11; 20], &[], &[], &[0x25], &[0x01], &[0x01]];
    assert_eq!(err(rlp_list(&items)), TxError::FieldOverflow);
}

#[test]
fn chain_id_must_match() {
    assert!(check(&Validator::default(), eip1559(|t| t.chain_id = 1)).is_ok());
    assert_eq!(err(eip1559(|t| t.chain_id = 2)), TxError::WrongChainId { got: Some(2), expected: 1 });
}

#[test]
fn unprotected_legacy_follows_policy() {
    let raw = signer().sign_tx(TxLegacy {
        chain_id: None,
        gas_price: 10,
        gas_limit: 21_000,
        to: TxKind::Call(TO),
        ..Default::default()
    });
    assert!(check(&Validator::default(), raw.clone()).is_ok());
    let strict = Validator::new(ValidationConfig { allow_unprotected: false, ..Default::default() });
    assert_eq!(check(&strict, raw), Err(TxError::UnprotectedNotAllowed));
}

#[test]
fn gas_limit_within_block_and_cap() {
    let block = Validator::new(ValidationConfig { block_gas_limit: 30_000, ..Default::default() });
    assert!(check(&block, eip1559(|t| t.gas_limit = 30_000)).is_ok());
    assert_eq!(
        check(&block, eip1559(|t| t.gas_limit = 30_001)),
        Err(TxError::GasLimitAboveBlock { gas_limit: 30_001, block_gas_limit: 30_000 })
    );
    let cap = 1 << 24;
    assert!(check(&Validator::default(), eip1559(|t| t.gas_limit = cap)).is_ok());
    assert_eq!(err(eip1559(|t| t.gas_limit = cap + 1)), TxError::GasLimitAboveCap { gas_limit: cap + 1, cap });
    assert!(check(&at(Fork::Prague), eip1559(|t| t.gas_limit = cap + 1)).is_ok(), "no cap before Osaka");
}

#[test]
fn tip_may_equal_but_not_exceed_fee_cap() {
    assert!(check(&Validator::default(), eip1559(|t| t.max_priority_fee_per_gas = 100)).is_ok());
    assert_eq!(err(eip1559(|t| t.max_priority_fee_per_gas = 101)), TxError::TipAboveFeeCap { tip: 101, fee_cap: 100 });
}

#[test]
fn nonce_below_2_pow_64_minus_1() {
    assert!(check(&Validator::default(), eip1559(|t| t.nonce = u64::MAX - 1)).is_ok());
    assert_eq!(err(eip1559(|t| t.nonce = u64::MAX)), TxError::NonceMax(u64::MAX));
}

#[test]
fn intrinsic_gas_covers_calldata_and_access_list() {
    // 3 zero bytes (4 each) + 2 non-zero (16 each) + one address with one key.
    let access_list = AccessList(vec![AccessListItem { address: TO, storage_keys: vec![B256::ZERO] }]);
    let intrinsic = 21_000 + 3 * 4 + 2 * 16 + 2_400 + 1_900;
    let tx = |gas_limit| {
        let access_list = access_list.clone();
        eip1559(move |t| {
            t.input = hex!("0000000102").into();
            t.access_list = access_list;
            t.gas_limit = gas_limit;
        })
    };
    assert!(check(&at(Fork::Cancun), tx(intrinsic)).is_ok());
    assert_eq!(
        check(&at(Fork::Cancun), tx(intrinsic - 1)),
        Err(TxError::IntrinsicGasTooLow { gas_limit: intrinsic - 1, intrinsic })
    );
}

#[test]
fn creation_pays_and_initcode_is_limited() {
    let create = |len: usize, gas_limit| {
        eip1559(move |t| {
            t.to = TxKind::Create;
            t.input = vec![0xfe; len].into();
            t.gas_limit = gas_limit;
        })
    };
    // 64 non-zero bytes: 21000 + 32000 + 64*16 + 2 words * 2.
    let intrinsic = 21_000 + 32_000 + 64 * 16 + 2 * 2;
    assert!(check(&at(Fork::Cancun), create(64, intrinsic)).is_ok());
    assert!(matches!(check(&at(Fork::Cancun), create(64, intrinsic - 1)), Err(TxError::IntrinsicGasTooLow { .. })));
    assert!(check(&Validator::default(), create(MAX_INITCODE_SIZE, 3_000_000)).is_ok());
    assert_eq!(
        err(create(MAX_INITCODE_SIZE + 1, 3_000_000)),
        TxError::InitcodeTooLarge { size: MAX_INITCODE_SIZE + 1, limit: MAX_INITCODE_SIZE }
    );
}

#[test]
fn calldata_floor_from_prague() {
    // 100 non-zero bytes: standard 21000 + 1600, floor 21000 + 10 * 400.
    let floor = 21_000 + 4_000;
    let tx = |gas_limit| {
        eip1559(move |t| {
            t.input = vec![0xab; 100].into();
            t.gas_limit = gas_limit;
        })
    };
    assert!(check(&at(Fork::Prague), tx(floor)).is_ok());
    assert_eq!(check(&at(Fork::Prague), tx(floor - 1)), Err(TxError::FloorGasTooLow { gas_limit: floor - 1, floor }));
    assert!(check(&at(Fork::Cancun), tx(floor - 1)).is_ok(), "no floor before Prague");
}

#[test]
fn authorizations_cost_gas_and_must_be_present() {
    let authorization = signer().sign_authorization(Authorization { chain_id: U256::from(1), address: TO, nonce: 1 });
    let set_code = |authorization_list: Vec<_>, gas_limit| {
        signer().sign_tx(TxEip7702 {
            chain_id: 1,
            gas_limit,
            max_fee_per_gas: 100,
            max_priority_fee_per_gas: 2,
            to: TO,
            authorization_list,
            ..Default::default()
        })
    };
    assert!(check(&Validator::default(), set_code(vec![authorization.clone()], 46_000)).is_ok());
    assert_eq!(
        err(set_code(vec![authorization], 45_999)),
        TxError::IntrinsicGasTooLow { gas_limit: 45_999, intrinsic: 46_000 }
    );
    assert_eq!(err(set_code(Vec::new(), 46_000)), TxError::EmptyAuthorizationList);
}

#[test]
fn blob_count_and_version() {
    assert_eq!(err(blob_tx(|t| t.blob_versioned_hashes.clear())), TxError::NoBlobs);
    let n_blobs = |n: u8| blob_tx(move |t| t.blob_versioned_hashes = (0..n).map(kzg_hash).collect());
    assert!(check(&Validator::default(), n_blobs(6)).is_ok());
    assert_eq!(err(n_blobs(7)), TxError::TooManyBlobs { count: 7, max: 6 });
    assert!(check(&at(Fork::Prague), n_blobs(9)).is_ok());
    assert_eq!(check(&at(Fork::Prague), n_blobs(10)), Err(TxError::TooManyBlobs { count: 10, max: 9 }));
    let bad = blob_tx(|t| t.blob_versioned_hashes = vec![kzg_hash(1), B256::repeat_byte(2)]);
    assert_eq!(err(bad), TxError::BadBlobVersion { index: 1, version: 2 });
}

#[test]
fn a_blob_transaction_is_pooled_only_with_its_sidecar() {
    assert_eq!(Validator::default().validate(blob_tx(|_| {})), Err(TxError::BlobSidecarMissing));
    assert!(Validator::default().validate_consensus(blob_tx(|_| {})).is_ok());
}

#[test]
fn blob_limits_follow_the_forks_blob_schedule() {
    let per_tx: Vec<usize> = [Fork::Cancun, Fork::Prague, Fork::Osaka, Fork::Bpo1, Fork::Bpo2]
        .into_iter()
        .map(Fork::max_blobs_per_tx)
        .collect();
    assert_eq!(per_tx, [6, 9, 6, 6, 6]);
    let per_block: Vec<usize> = [Fork::Cancun, Fork::Prague, Fork::Osaka, Fork::Bpo1, Fork::Bpo2]
        .into_iter()
        .map(Fork::max_blobs_per_block)
        .collect();
    assert_eq!(per_block, [6, 9, 9, 15, 21]);
    assert_eq!((Fork::Prague.sidecar_version(), Fork::Osaka.sidecar_version()), (0, 1));
}

#[test]
fn minimum_tip_is_inclusive() {
    let strict = Validator::new(ValidationConfig { min_priority_fee: 2, ..Default::default() });
    assert!(check(&strict, eip1559(|t| t.max_priority_fee_per_gas = 2)).is_ok());
    assert_eq!(
        check(&strict, eip1559(|t| t.max_priority_fee_per_gas = 1)),
        Err(TxError::TipBelowMinimum { tip: 1, min: 2 })
    );
}

/// Half the curve order and the order itself.
const N: U256 = U256::from_be_slice(&hex!("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"));

fn with_signature(edit: impl FnOnce(Signature) -> Signature) -> Bytes {
    let tx = base_1559();
    let signature = edit(signer().sign_digest(tx.signature_hash()));
    Envelope::from(tx.into_signed(signature)).encoded_2718().into()
}

#[test]
fn signature_must_be_low_s_and_recoverable() {
    assert_eq!(ok(with_signature(|s| s)).sender(), signer().address());
    // The malleable twin (n - s, parity flipped) recovers the same key but is refused (EIP-2).
    let twin = with_signature(|s| Signature::new(s.r(), N - s.s(), !s.v()));
    assert_eq!(err(twin), TxError::HighS);
    assert_eq!(err(with_signature(|s| Signature::new(U256::ZERO, s.s(), s.v()))), TxError::InvalidSignature);
    assert_eq!(err(with_signature(|s| Signature::new(N, s.s(), s.v()))), TxError::InvalidSignature);
    // A different valid-looking signature recovers someone else: not an error, another sender.
    let other = with_signature(|s| Signature::new(s.r(), s.s(), !s.v()));
    assert!(check(&Validator::default(), other).map_or(true, |tx| tx.sender() != signer().address()));
}

#[test]
fn cost_counts_value_and_blob_gas() {
    let tx = ok(blob_tx(|t| {
        t.value = U256::from(7);
        t.blob_versioned_hashes = vec![kzg_hash(1), kzg_hash(2)];
    }));
    let expected = U256::from(21_000u64 * 100 + 2 * crate::tx::GAS_PER_BLOB * 10 + 7);
    assert_eq!(tx.cost(), expected);
    assert_eq!(tx.blob_count(), 2);
    // A value near 2^256 saturates instead of overflowing, and no balance can cover it.
    let huge = ok(eip1559(|t| t.value = U256::MAX));
    assert_eq!(huge.cost(), U256::MAX);
}

#[test]
fn cheap_checks_run_before_the_signature() {
    // A wrong chain id with a garbage signature reports the chain id: the signature was not needed.
    let raw = {
        let mut tx = base_1559();
        tx.chain_id = 5;
        Envelope::from(tx.into_signed(Signature::new(U256::ZERO, U256::ZERO, false))).encoded_2718()
    };
    assert_eq!(err(raw.into()), TxError::WrongChainId { got: Some(5), expected: 1 });
}
