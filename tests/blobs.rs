//! Blob transactions in their network form (EIP-4844 sidecars, EIP-7594 cell proofs), with
//! real KZG commitments and proofs computed by c-kzg: valid ones pass under their fork, every
//! corruption is refused with its own kind, and the sidecar travels with the verdict.
//!
//! The standard vectors in `../shared/vectors` carry blob transactions only in their consensus
//! form (`tests/conformance.rs` checks those); the network forms here are built by the test.

use alloy_consensus::TxEip4844;
use alloy_primitives::{Address, Bytes, keccak256};
use tidepool::{
    tx::{
        TxError,
        blob::{self, BlobSidecar},
        generate::blob_sidecar,
        sign::Signer,
    },
    validate::{Fork, PipelineConfig, ValidationConfig, ValidationPipeline, Validator},
};

fn at(fork: Fork) -> Validator {
    Validator::new(ValidationConfig { fork, ..Default::default() })
}

fn blob_tx_body() -> TxEip4844 {
    TxEip4844 {
        chain_id: 1,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: Address::repeat_byte(0x22),
        max_fee_per_blob_gas: 1_000_000_000,
        ..Default::default()
    }
}

fn signer() -> Signer {
    Signer::dev(3)
}

fn network_form(sidecar: &BlobSidecar) -> Bytes {
    signer().sign_blob_tx(blob_tx_body(), sidecar)
}

fn cell_proofs(sidecar: &mut BlobSidecar) -> &mut Vec<alloy_eips::eip4844::Bytes48> {
    match sidecar {
        BlobSidecar::Eip7594(s) => &mut s.cell_proofs,
        BlobSidecar::Eip4844(s) => &mut s.proofs,
    }
}

#[test]
fn valid_network_forms_pass_under_their_fork_with_the_consensus_hash() {
    for (fork, version, blobs) in [(Fork::Bpo2, 1, 1), (Fork::Osaka, 1, 6), (Fork::Prague, 0, 2), (Fork::Cancun, 0, 1)]
    {
        let sidecar = blob_sidecar(blobs, version, u64::from(version) * 10 + blobs as u64);
        let raw = network_form(&sidecar);
        assert!(raw.len() > 128 * 1024 * blobs, "the network form carries the blobs");
        let tx = at(fork).validate(raw.clone()).unwrap_or_else(|e| panic!("{fork:?}: {e}"));
        let consensus = blob::split_network_form(&raw).unwrap().consensus;
        assert_eq!(tx.hash(), keccak256(&consensus), "the hash covers the consensus form");
        assert_eq!(tx.encoded(), &consensus, "the pooled form is the consensus form");
        assert_eq!(tx.sender(), signer().address());
        assert_eq!(usize::from(tx.blob_count()), blobs);
        assert_eq!(tx.sidecar().map(|s| s.as_ref()), Some(&sidecar), "the verdict carries the sidecar");
        assert_eq!(blob::network_form(&consensus, &sidecar), raw, "split and join are inverse");
    }
}

#[test]
fn the_wrong_wrapper_version_for_the_fork_is_refused_not_converted() {
    let v0 = network_form(&blob_sidecar(1, 0, 1));
    let v1 = network_form(&blob_sidecar(1, 1, 1));
    assert_eq!(at(Fork::Osaka).validate(v0), Err(TxError::BlobWrapperVersion { got: 0, expected: 1 }));
    assert_eq!(at(Fork::Prague).validate(v1.clone()), Err(TxError::BlobWrapperVersion { got: 1, expected: 0 }));
    // A version this node does not know: the byte after the transaction is the version.
    let consensus_len = blob::split_network_form(&v1).unwrap().consensus.len() - 1;
    let mut unknown = v1.to_vec();
    let version_at = unknown.len() - blob::split_network_form(&v1).unwrap().sidecar.rlp_encoded_fields_length();
    assert!(version_at > consensus_len);
    assert_eq!(unknown[version_at], 1);
    unknown[version_at] = 2;
    assert_eq!(at(Fork::Osaka).validate(unknown.into()), Err(TxError::BlobWrapperVersion { got: 2, expected: 1 }));
}

#[test]
fn every_sidecar_corruption_has_its_own_kind() {
    let validator = at(Fork::Osaka);
    let sidecar = blob_sidecar(2, 1, 7);

    // Commitments of other blobs than the transaction commits to.
    let signed = network_form(&sidecar);
    let consensus = blob::split_network_form(&signed).unwrap().consensus;
    let other = blob_sidecar(2, 1, 8);
    assert_eq!(
        validator.validate(blob::network_form(&consensus, &other)),
        Err(TxError::BlobCommitmentMismatch { index: 0 })
    );

    // Proofs that are valid points but belong to other cells.
    let mut swapped = sidecar.clone();
    cell_proofs(&mut swapped).swap(0, 1);
    assert_eq!(validator.validate(blob::network_form(&consensus, &swapped)), Err(TxError::BlobProofInvalid));

    // Blob data changed after the commitments were made.
    let mut tampered = sidecar.clone();
    if let BlobSidecar::Eip7594(s) = &mut tampered {
        s.blobs[1].0[100] ^= 1;
    }
    assert_eq!(validator.validate(blob::network_form(&consensus, &tampered)), Err(TxError::BlobProofInvalid));

    // Counts: a cell proof missing, a blob missing.
    let mut short_proofs = sidecar.clone();
    cell_proofs(&mut short_proofs).pop();
    assert_eq!(
        validator.validate(blob::network_form(&consensus, &short_proofs)),
        Err(TxError::BlobCountMismatch { hashes: 2, blobs: 2, commitments: 2, proofs: 255 })
    );
    let mut short_blobs = sidecar.clone();
    if let BlobSidecar::Eip7594(s) = &mut short_blobs {
        s.blobs.pop();
    }
    assert_eq!(
        validator.validate(blob::network_form(&consensus, &short_blobs)),
        Err(TxError::BlobCountMismatch { hashes: 2, blobs: 1, commitments: 2, proofs: 256 })
    );

    // The same corruptions of a version-0 sidecar, under Prague.
    let v0 = blob_sidecar(2, 0, 9);
    let v0_consensus = blob::split_network_form(&network_form(&v0)).unwrap().consensus;
    let mut v0_swapped = v0.clone();
    cell_proofs(&mut v0_swapped).swap(0, 1);
    assert_eq!(
        at(Fork::Prague).validate(blob::network_form(&v0_consensus, &v0_swapped)),
        Err(TxError::BlobProofInvalid)
    );

    // Without its sidecar at all.
    assert_eq!(validator.validate(consensus), Err(TxError::BlobSidecarMissing));
}

#[test]
fn blob_limits_come_from_the_forks_schedule() {
    let seven = blob_sidecar(7, 1, 11);
    assert_eq!(at(Fork::Bpo2).validate(network_form(&seven)), Err(TxError::TooManyBlobs { count: 7, max: 6 }));
    let seven_v0 = blob_sidecar(7, 0, 11);
    assert!(at(Fork::Prague).validate(network_form(&seven_v0)).is_ok(), "Prague takes 9 per transaction");
}

#[test]
fn the_size_limit_applies_to_the_transaction_without_its_sidecar() {
    let sidecar = blob_sidecar(1, 1, 12);
    let raw = network_form(&sidecar);
    let consensus_len = blob::split_network_form(&raw).unwrap().consensus.len();
    let exact = Validator::new(ValidationConfig { max_tx_size: consensus_len, ..Default::default() });
    assert!(
        exact.validate(raw.clone()).is_ok(),
        "a {}-byte network form passes a {consensus_len}-byte limit",
        raw.len()
    );
    let below = Validator::new(ValidationConfig { max_tx_size: consensus_len - 1, ..Default::default() });
    assert_eq!(below.validate(raw), Err(TxError::Oversized { size: consensus_len, limit: consensus_len - 1 }));
}

#[test]
fn the_consensus_rules_apply_inside_the_network_form() {
    let sidecar = blob_sidecar(1, 1, 13);
    let raw = signer().sign_blob_tx(TxEip4844 { chain_id: 5, ..blob_tx_body() }, &sidecar);
    assert_eq!(at(Fork::Osaka).validate(raw), Err(TxError::WrongChainId { got: Some(5), expected: 1 }));
}

#[test]
fn the_pipeline_verifies_network_forms_on_the_blob_workers_and_counts_proofs() {
    let pipeline = ValidationPipeline::new(at(Fork::Osaka), PipelineConfig { workers: 1, ..Default::default() });
    let sidecar = blob_sidecar(1, 1, 14);
    let good = network_form(&sidecar);
    let consensus = blob::split_network_form(&good).unwrap().consensus;
    let mut swapped = sidecar.clone();
    cell_proofs(&mut swapped).swap(3, 4);
    let bad = blob::network_form(&consensus, &swapped);
    let verdict = pipeline.submit(good).unwrap().wait().unwrap();
    assert!(verdict.sidecar().is_some());
    assert_eq!(pipeline.submit(bad).unwrap().wait().unwrap_err(), TxError::BlobProofInvalid);
    let stats = pipeline.stats();
    assert_eq!((stats.blob_proofs_verified, stats.blob_proofs_failed), (1, 1));
}

#[test]
fn the_blob_queue_fills_on_its_own() {
    let config = PipelineConfig { workers: 1, blob_workers: 1, blob_queue_capacity: 1, ..Default::default() };
    let pipeline = ValidationPipeline::new(at(Fork::Osaka), config);
    let forms: Vec<Bytes> = (0..6).map(|seed| network_form(&blob_sidecar(1, 1, 100 + seed))).collect();
    let mut pending = Vec::new();
    let mut busy = 0;
    for raw in forms {
        match pipeline.submit(raw) {
            Ok(verdict) => pending.push(verdict),
            Err(full) => {
                assert_eq!(full.capacity, 1, "the blob queue's own capacity");
                busy += 1;
            }
        }
    }
    assert!(busy > 0, "six proofs at once overflow a one-slot blob queue");
    // Meanwhile ordinary transactions still get a worker.
    let plain = signer().sign_tx(alloy_consensus::TxEip1559 {
        chain_id: 1,
        gas_limit: 21_000,
        max_fee_per_gas: 10,
        max_priority_fee_per_gas: 1,
        to: alloy_primitives::TxKind::Call(Address::ZERO),
        ..Default::default()
    });
    assert!(pipeline.submit(plain).unwrap().wait().is_ok());
    for verdict in pending {
        assert!(verdict.wait().is_ok());
    }
}
