//! Signing with libsecp256k1, for the dev chain's funded accounts, load generation and tests.
//!
//! Keys here are for development: [`Signer::dev`] derives them from a public index, so anyone can
//! spend what they hold. Never fund them on a real network.

use alloy_consensus::{SignableTransaction, Signed};
use alloy_eips::{
    eip2718::Encodable2718 as _,
    eip7702::{Authorization, SignedAuthorization},
};
use alloy_primitives::{Address, B256, Bytes, Signature, U256, keccak256};
use secp256k1::{Message, PublicKey, SECP256K1, SecretKey};

use super::{Envelope, public_key_address};

/// A secp256k1 key and its address.
#[derive(Clone)]
pub struct Signer {
    secret: SecretKey,
    address: Address,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret by accident.
        f.debug_struct("Signer").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Signer {
    /// A key from 32 secret bytes.
    ///
    /// # Errors
    /// When the bytes are zero or not below the curve order.
    pub fn from_bytes(secret: B256) -> Result<Self, secp256k1::Error> {
        let secret = SecretKey::from_byte_array(secret.0)?;
        let address = public_key_address(&PublicKey::from_secret_key(SECP256K1, &secret));
        Ok(Self { secret, address })
    }

    /// The `index`-th development key: `keccak256("tidepool-dev-" ++ index as 8 big-endian bytes)`.
    pub fn dev(index: u64) -> Self {
        let mut seed = b"tidepool-dev-".to_vec();
        seed.extend_from_slice(&index.to_be_bytes());
        // keccak output is below the curve order with overwhelming probability; re-hash if not.
        let mut secret = keccak256(&seed);
        loop {
            match Self::from_bytes(secret) {
                Ok(signer) => return signer,
                Err(_) => secret = keccak256(secret),
            }
        }
    }

    pub const fn address(&self) -> Address {
        self.address
    }

    /// The secret key bytes (for printing dev keys at node start).
    pub fn secret_bytes(&self) -> B256 {
        B256::from(self.secret.secret_bytes())
    }

    /// Signs a 32-byte digest, returning a low-s signature with its y-parity.
    pub fn sign_digest(&self, digest: B256) -> Signature {
        let signature = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.secret);
        let (recovery_id, compact) = signature.serialize_compact();
        Signature::new(
            U256::from_be_slice(&compact[..32]),
            U256::from_be_slice(&compact[32..]),
            i32::from(recovery_id) == 1,
        )
    }

    /// Signs a transaction and returns its canonical EIP-2718 bytes.
    pub fn sign_tx<T>(&self, tx: T) -> Bytes
    where
        T: SignableTransaction<Signature>,
        Envelope: From<Signed<T>>,
    {
        let signature = self.sign_digest(tx.signature_hash());
        Envelope::from(tx.into_signed(signature)).encoded_2718().into()
    }

    /// Signs a blob transaction carrying `sidecar`'s versioned hashes and returns its network
    /// form (what `eth_sendRawTransaction` and peers take).
    pub fn sign_blob_tx(&self, mut tx: alloy_consensus::TxEip4844, sidecar: &super::blob::BlobSidecar) -> Bytes {
        tx.blob_versioned_hashes = sidecar.versioned_hashes().collect();
        super::blob::network_form(&self.sign_tx(tx), sidecar)
    }

    /// Signs an EIP-7702 authorization.
    pub fn sign_authorization(&self, authorization: Authorization) -> SignedAuthorization {
        let signature = self.sign_digest(authorization.signature_hash());
        authorization.into_signed(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::TxEip1559;
    use alloy_primitives::TxKind;

    #[test]
    fn signed_tx_recovers_to_signer() {
        let signer = Signer::dev(7);
        let tx = TxEip1559 {
            chain_id: 1,
            nonce: 3,
            gas_limit: 21_000,
            max_fee_per_gas: 10,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        let raw = signer.sign_tx(tx);
        let decoded = crate::tx::decode(&raw).unwrap();
        assert_eq!(crate::tx::recover_sender(&decoded.envelope).unwrap(), signer.address());
        assert_eq!(decoded.hash, keccak256(&raw));
    }

    #[test]
    fn dev_keys_are_stable_and_distinct() {
        assert_eq!(Signer::dev(1).address(), Signer::dev(1).address());
        assert_ne!(Signer::dev(1).address(), Signer::dev(2).address());
    }
}
