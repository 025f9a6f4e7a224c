//! Entry points shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` and the stable tests
//! that replay their corpora (`tests/fuzz_corpus.rs`) and drive the pool model
//! (`tests/pool_properties.rs`), so CI exercises exactly what the fuzzer does. Each includes
//! this file as a module (`#[path]`): it is compiled only there, never into the library, and
//! uses only the library's public API.
#![allow(dead_code)] // each includer uses some of the entry points

use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Bytes, keccak256};

use tidepool::{tx, validate::Validator};

/// Arbitrary bytes through decoding, the blob network form's framing, and full stateless
/// validation. Panics if an invariant breaks: whatever decodes re-encodes to the same bytes; a
/// network form that splits joins back to the same bytes, its framing counts its blobs, and its
/// hash is its consensus bytes'; an accepted transaction's hash and size describe exactly its
/// consensus bytes.
pub fn decode_validate(data: &[u8]) {
    if let Ok(decoded) = tx::decode(data) {
        assert_eq!(decoded.envelope.encoded_2718(), data, "decoding is exact");
        assert_eq!(decoded.hash, keccak256(data));
    }
    let consensus = match tx::blob::split_network_form(data) {
        Ok(form) if tx::blob::is_network_form(data) => {
            assert_eq!(
                tx::blob::network_form(&form.consensus, &form.sidecar).as_ref(),
                data,
                "split and join are exact"
            );
            assert_eq!(tx::blob::count_blobs(data), Some(form.sidecar.blobs().len()));
            assert_eq!(tx::blob::tx_hash(data), keccak256(&form.consensus));
            form.consensus
        }
        _ => Bytes::copy_from_slice(data),
    };
    let validator = Validator::default();
    if let Ok(pooled) = validator.validate(Bytes::copy_from_slice(data)) {
        assert_eq!(pooled.hash(), keccak256(&consensus));
        assert_eq!(pooled.size(), consensus.len());
        assert_eq!(pooled.sidecar().is_some(), tx::blob::is_network_form(data));
        assert!(pooled.max_priority_fee_per_gas() <= pooled.max_fee_per_gas());
    }
}

/// Arbitrary bytes as a peer's wire messages: the first byte picks announcement, fetch request
/// or fetch response; the rest goes through the decoder the node runs (our announcement
/// decoding; the fetch codec, libp2p's CBOR with our size limits). Whatever decodes is handed to
/// a `GossipCore` with one connected peer, as the driver would. Panics on any panic inside, or
/// if a decoded announcement does not re-encode to its input.
#[cfg(feature = "net")]
pub fn wire_messages(data: &[u8]) {
    use std::time::Instant;

    use libp2p::request_response::Codec as _;

    use tidepool::{
        gossip::{GossipConfig, GossipCore, MessageRef, PeerChange, PeerSlot, WireMsg},
        net::protocol::{self, FETCH_PROTOCOL, FetchCodec, FetchRequest},
    };

    let Some((&selector, body)) = data.split_first() else { return };
    let now = Instant::now();
    let mut core = GossipCore::new(GossipConfig::default(), 1);
    let peer = PeerSlot(0);
    core.handle_peer(now, peer, PeerChange::Connected);
    let mut codec = FetchCodec::default();
    let message = match selector % 3 {
        0 => protocol::decode_announcements(body).map(|txs| {
            let salt = u64::from_be_bytes(body[..8].try_into().expect("decoded announcements have a salt"));
            assert_eq!(protocol::encode_announcements(salt, &txs), body, "announcement decoding is exact");
            WireMsg::Announce { msg: MessageRef(1), txs }
        }),
        1 => poll_ready(codec.read_request(&FETCH_PROTOCOL, &mut futures::io::Cursor::new(body)))
            .ok()
            .map(|request| WireMsg::Request { id: 1, hashes: request.hashes }),
        _ => {
            // A response is read only after its request, up to the request's cap: allow it all.
            let request = FetchRequest { hashes: Vec::new(), max_response: body.len() as u64 };
            poll_ready(codec.write_request(&FETCH_PROTOCOL, &mut futures::io::sink(), request))
                .expect("a sink takes all");
            poll_ready(codec.read_response(&FETCH_PROTOCOL, &mut futures::io::Cursor::new(body)))
                .ok()
                .map(|response| WireMsg::Response { id: 1, txs: response.txs })
        }
    };
    if let Some(message) = message {
        core.handle_message(now, peer, message);
        while core.poll_action().is_some() {}
        core.handle_timeout(now + std::time::Duration::from_secs(60));
        while core.poll_action().is_some() {}
    }
}

/// Polls a future that never waits (it reads from memory) to its end.
fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("in-memory reads never wait"),
    }
}

/// Arbitrary bytes as a sequence of pool operations, run on the real pool and on
/// [`pool_model`]'s reference model side by side (see [`pool_model::run`]).
pub fn pool_ops(data: &[u8]) {
    let ops: Vec<pool_model::Op> = data.chunks_exact(4).map(pool_model::Op::from_bytes).take(64).collect();
    pool_model::run(&ops);
}

pub mod pool_model {
    //! A small reference model of the pool's rules, to check the real pool against: accounts'
    //! transactions by nonce, subpools recomputed from scratch after every operation, the
    //! admission and replacement rules. Limits are set high enough that eviction never happens
    //! (eviction is checked by the invariant proptests instead), and time does not pass.
    //! Driven by the `pool_ops` fuzz target and by `tests/pool_properties.rs`.

    use std::{
        collections::{BTreeMap, HashMap},
        sync::{Mutex, OnceLock},
        time::Instant,
    };

    use alloy_consensus::TxEip1559;
    use alloy_primitives::{Address, B256, TxKind, U256};

    use tidepool::{
        pool::{Pool, PoolConfig, SubPool, SubPoolLimit, ValidTx},
        state::{AccountState, BlockUpdate, ChainHead},
        tx::{PooledTx, sign::Signer},
        validate::{ValidationConfig, Validator},
    };

    const ACCOUNTS: u8 = 4;
    const FEE_CAPS: [u128; 4] = [5, 10, 20, 60];
    const GAS: u64 = 21_000;

    /// One operation.
    #[derive(Debug, Clone, Copy)]
    pub enum Op {
        /// Account `account % 4` submits nonce `nonce % 6` with fee cap `FEE_CAPS[fee % 4]` and
        /// tip `tip % 12` (capped at the fee cap).
        Add { account: u8, nonce: u8, fee: u8, tip: u8 },
        /// A block at base fee `FEE_CAPS[base_fee % 4]` mining account `account % 4`'s lowest
        /// pending transaction, if it has one, and optionally cutting its balance to two
        /// transactions' worth.
        Block { base_fee: u8, account: u8, poor: bool },
    }

    impl Op {
        /// Four bytes to an operation.
        pub fn from_bytes(bytes: &[u8]) -> Self {
            if bytes[0] % 4 == 3 {
                Self::Block { base_fee: bytes[1], account: bytes[2], poor: bytes[3].is_multiple_of(3) }
            } else {
                Self::Add { account: bytes[0] >> 2, nonce: bytes[1], fee: bytes[2], tip: bytes[3] }
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    struct ModelTx {
        hash: B256,
        fee_cap: u128,
        tip: u128,
        cost: U256,
    }

    /// The rules, written plainly: no indexes, everything recomputed.
    #[derive(Debug, Default)]
    struct Model {
        state: HashMap<Address, AccountState>,
        txs: BTreeMap<Address, BTreeMap<u64, ModelTx>>,
        base_fee: u128,
    }

    impl Model {
        /// The error kind the pool must answer, or `None` when it must admit the tx.
        fn add(&mut self, sender: Address, nonce: u64, tx: ModelTx, slots: usize) -> Option<&'static str> {
            if self.txs.values().any(|txs| txs.values().any(|t| t.hash == tx.hash)) {
                return Some("already_known");
            }
            if nonce < self.state[&sender].nonce {
                return Some("nonce_too_low");
            }
            if tx.cost > self.state[&sender].balance {
                return Some("insufficient_funds");
            }
            let txs = self.txs.entry(sender).or_default();
            match txs.get(&nonce) {
                Some(old) if tx.fee_cap * 100 < old.fee_cap * 110 || tx.tip * 100 < old.tip * 110 => {
                    return Some("replacement_underpriced");
                }
                None if txs.len() >= slots && nonce != self.state[&sender].nonce => return Some("account_full"),
                _ => {}
            }
            txs.insert(nonce, tx);
            None
        }

        fn subpools(&self) -> HashMap<B256, SubPool> {
            let mut out = HashMap::new();
            for (sender, txs) in &self.txs {
                let state = self.state[sender];
                let (mut expected, mut spent, mut executable, mut priced) = (state.nonce, U256::ZERO, true, true);
                for (&nonce, tx) in txs {
                    spent = spent.saturating_add(tx.cost);
                    executable &= nonce == expected && spent <= state.balance;
                    priced &= tx.fee_cap >= self.base_fee;
                    expected = nonce + 1;
                    let subpool = match (executable, priced) {
                        (false, _) => SubPool::Queued,
                        (true, false) => SubPool::BaseFee,
                        (true, true) => SubPool::Pending,
                    };
                    out.insert(tx.hash, subpool);
                }
            }
            out
        }
    }

    /// Signed transactions, cached: signing and recovery dominate otherwise.
    fn signed(account: u8, nonce: u64, fee_cap: u128, tip: u128) -> PooledTx {
        type Key = (u8, u64, u128, u128);
        static CACHE: OnceLock<Mutex<HashMap<Key, PooledTx>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(tx) = cache.lock().expect("cache lock").get(&(account, nonce, fee_cap, tip)) {
            return tx.clone();
        }
        let raw = Signer::dev(u64::from(account)).sign_tx(TxEip1559 {
            chain_id: 1,
            nonce,
            gas_limit: GAS,
            max_fee_per_gas: fee_cap,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(0x33)),
            ..Default::default()
        });
        let validator = Validator::new(ValidationConfig { min_priority_fee: 0, ..Default::default() });
        let tx = validator.validate(raw).expect("model transactions are valid");
        cache.lock().expect("cache lock").insert((account, nonce, fee_cap, tip), tx.clone());
        tx
    }

    /// Runs `ops` on a real pool and on the model; panics at the first disagreement on an
    /// admission verdict, on which transactions are pooled, or on any transaction's subpool.
    /// The pool's own invariant check runs after every step too.
    pub fn run(ops: &[Op]) {
        let rich = U256::from(GAS) * U256::from(60) * U256::from(100);
        let mut model = Model { base_fee: FEE_CAPS[1], ..Default::default() };
        for account in 0..ACCOUNTS {
            let address = Signer::dev(u64::from(account)).address();
            let account_state = AccountState::new(0, rich);
            model.state.insert(address, account_state);
        }
        let big = SubPoolLimit { max_txs: 10_000, max_bytes: 100 << 20 };
        let config = PoolConfig { pending: big, basefee: big, queued: big, account_slots: 4, ..Default::default() };
        let slots = config.account_slots;
        let head = ChainHead { block: 0, base_fee: model.base_fee, blob_base_fee: 1 };
        let mut pool = Pool::new(config, head);
        let now = Instant::now();

        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Add { account, nonce, fee, tip } => {
                    let account = account % ACCOUNTS;
                    let fee_cap = FEE_CAPS[usize::from(fee % 4)];
                    let tx = signed(account, u64::from(nonce % 6), fee_cap, u128::from(tip % 12).min(fee_cap));
                    let model_tx =
                        ModelTx { hash: tx.hash(), fee_cap, tip: tx.max_priority_fee_per_gas(), cost: tx.cost() };
                    let expected = model.add(tx.sender(), tx.nonce(), model_tx, slots);
                    // The sender's state as the chain has it, read after the pool's epoch.
                    let valid = ValidTx { sender_state: model.state[&tx.sender()], epoch: pool.state_epoch(), tx };
                    let actual = pool.add(valid, now).err().map(|e| e.kind());
                    assert_eq!(actual, expected, "step {step}: verdict of {op:?}");
                }
                Op::Block { base_fee, account, poor } => {
                    let sender = Signer::dev(u64::from(account % ACCOUNTS)).address();
                    let subpools = model.subpools();
                    let mut account_state = model.state[&sender];
                    let mut mined = Vec::new();
                    let lowest = model.txs.get(&sender).and_then(|txs| txs.iter().next().map(|(&n, t)| (n, *t)));
                    if let Some((nonce, tx)) = lowest.filter(|(_, t)| subpools[&t.hash] == SubPool::Pending) {
                        model.txs.get_mut(&sender).expect("has txs").remove(&nonce);
                        account_state.nonce = nonce + 1;
                        account_state.balance -= tx.cost;
                        mined.push(tx.hash);
                    }
                    if poor {
                        account_state.balance = account_state.balance.min(U256::from(2 * GAS * 60));
                    }
                    model.state.insert(sender, account_state);
                    model.base_fee = FEE_CAPS[usize::from(base_fee % 4)];
                    // Transactions below the new nonce leave (invalidated), as in the pool.
                    if let Some(txs) = model.txs.get_mut(&sender) {
                        txs.retain(|&n, _| n >= account_state.nonce);
                    }
                    model.txs.retain(|_, txs| !txs.is_empty());
                    pool.on_block(
                        BlockUpdate {
                            number: step as u64 + 1,
                            base_fee: model.base_fee,
                            blob_base_fee: 1,
                            mined,
                            accounts: vec![(sender, account_state)],
                            gas_limit: None,
                            reinject: Vec::new(),
                        },
                        now,
                    );
                }
            }
            pool.take_events();
            pool.check_invariants();
            let expected = model.subpools();
            assert_eq!(pool.len(), expected.len(), "step {step}: pooled count after {op:?}");
            for (hash, subpool) in expected {
                let actual = pool.get(&hash).map(|info| info.subpool);
                assert_eq!(actual, Some(subpool), "step {step}: subpool of {hash} after {op:?}");
            }
        }
    }
}
