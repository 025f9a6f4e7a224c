//! The pool: validated transactions waiting for a block.
//!
//! Owns: per-account nonce queues, subpool membership (pending / basefee / queued), replacement,
//! limits and eviction, expiry, block updates, and the events describing every change.
//! Does not: decode or check signatures (`validate`), order blocks (`builder` reads it), talk to
//! peers, call a state provider, spawn tasks or await. It is plain synchronous code;
//! [`PoolHandle`] shares it, with the [`BlobStore`] that holds blob sidecars outside it.
//!
//! # Rules
//! - Account state: a transaction arrives with the sender's state it was validated against and
//!   the pool's state epoch read before it ([`ValidTx`]). The pool settles it against the
//!   freshest state it knows: its own copy of an account it holds, else the state a block
//!   applied after that epoch carried (kept for [`STATE_HISTORY`] blocks), else the snapshot.
//!   The nonce rule (`nonce_too_low`) and the balance rule (`insufficient_funds`: the
//!   transaction's own cost above the balance) are checked here and nowhere else.
//! - An account's transactions are ordered by nonce. Walking from the account's nonce, each
//!   transaction is *pending* while the nonces are contiguous, the running sum of costs fits the
//!   balance, and it (and every one before it) pays the base fee (and blob base fee); once one is
//!   priced below, it and the rest of the contiguous, affordable run are *basefee*; after a gap
//!   or the first unaffordable one, the rest are *queued*.
//! - Priority is the effective tip at the base fee, `min(tip, fee cap - base fee)`, ties broken
//!   by arrival. Legacy gas price is both fee cap and tip.
//! - Minimum tip: one below the current [`MinTip`] is refused (`tip_below_minimum`); when
//!   [`Pool::set_min_tip`] raises it, the pooled ones below leave (`Invalidated
//!   { TipBelowMinimum }`) and their successors wait in queued. Validation reads the same value
//!   as its pre-signature filter; the rule is the pool's.
//! - Gas: a transaction above the block gas limit of the last update is refused
//!   (`gas_limit_above_block`); when an update lowers the limit, the ones above it leave.
//! - Senders: an account with contract code is refused (`sender_not_eoa`, EIP-3607); an
//!   EIP-7702 delegated account, or one that signs an authorization of a pooled transaction,
//!   holds at most `delegated_account_slots` transactions, gapless from its nonce
//!   (`delegated_in_flight`; replacements are allowed); a transaction whose authorization is
//!   signed by an account holding more than that is refused (`authority_reserved`).
//! - Replacement (same sender and nonce) needs fee cap and tip both raised by the price bump,
//!   and for a blob transaction its blob fee cap too (`blob_replacement_underpriced`).
//! - Blob transactions (EIP-4844), as production blob pools hold them: a sender's pooled
//!   transactions are all blob or all non-blob (`blob_type_conflict`); a blob transaction is
//!   admitted only at the account's next contiguous nonce (`blob_nonce_gap`) and only if the
//!   sender can pay for it and every earlier pooled one together (`insufficient_funds`, no
//!   overdraft); an account holds at most `blob_account_slots` of them. The pool holds at most
//!   `blob_bytes` of blob data: beyond it, the account tail whose fees are furthest below the
//!   current base fee or blob base fee (log distance, the worse of the two, taken over the
//!   account's transactions up to it) leaves first (`Evicted { BlobBytes }`). Sidecars never
//!   enter the pool: [`PoolHandle`] keeps them in its blob store, keyed by hash, and drops them
//!   with the transaction's removal event.
//! - Limits: per-account slots, and per-subpool counts and bytes. Eviction takes account *tails*
//!   (an account's highest-nonce transaction in the subpool) in priority order, lowest first, with
//!   the newest arrival first among equals; an evicted transaction takes its descendants with it,
//!   so pending never has a gap. Eviction ranks pending tails by the effective tip as of the
//!   account's last re-evaluation (any change to the account, or its fee cap crossing the base
//!   fee); a base fee move alone does not re-rank every account, so block updates stay
//!   proportional to what changed.
//!
//! # Invariants (asserted by [`Pool::check_invariants`] after every step in tests and proptests)
//! 1. Every transaction is in exactly one subpool, and in every index exactly once.
//! 2. Each account's subpools follow the rules above from its current state (so pending is
//!    contiguous from the account nonce).
//! 3. Counts and byte totals equal the contents.
//! 4. After every public operation, each subpool is within its limits.
//! 5. Every transaction that leaves produces exactly one `Removed` event, with its reason.
//!
//! # Quarantine
//! A builder reports transactions it could not include ([`Pool::report_failed`]). One reported
//! `quarantine.after_reports` times within `quarantine.window` is *quarantined*: the rules above
//! treat it as not executable, so it and its sender's later transactions move to queued, out of
//! the builder's way. The next block that changes the sender's state releases it: if it is then
//! executable it returns to pending/basefee, otherwise it is removed as `Quarantined`. A second
//! quarantine of the same transaction removes it: nothing is retried forever.

mod account;
mod blob_store;
mod config;
mod dead_letter;
mod error;
mod events;
mod eviction;
mod handle;
mod quarantine;
mod query;
mod slab;

pub use blob_store::{BLOBS_DIR, BlobStore};
pub use config::{PoolConfig, QuarantineConfig, SubPoolLimit};
pub use dead_letter::{DeadLetter, DeadLetters};
pub use error::PoolError;
pub use events::{InclusionFailure, Invalidation, Limit, PoolEvent, RemovalReason, SubPool};
pub use handle::{EVENT_BUFFER, EventStream, PoolHandle};
pub use quarantine::Reported;
pub use query::{PoolContent, PoolSizes, PooledInfo, SubPoolSize};

use std::{
    cmp::Reverse,
    collections::{BTreeSet, VecDeque},
    hash::BuildHasher as _,
    time::Instant,
};

use alloy_primitives::{
    Address, B256, U256,
    map::{DefaultHashBuilder, HashMap},
};
use hashbrown::HashTable;

use crate::{
    state::{AccountCode, AccountState, BlockUpdate, ChainHead},
    tx::{MinTip, PooledTx},
};
pub(crate) use account::PendingHead;
use account::{Account, Heads};
use slab::Slab;

/// Index of a transaction's slot in the pool's slab. Reused after removal; every index drops
/// a slot's id when its transaction leaves, so a reused id never aliases.
type TxId = u32;

/// A pooled transaction and its bookkeeping. The transaction is stored inline (no `Arc`): one
/// allocation fewer and one pointer hop fewer on every lookup (see `BENCHMARKS.md`).
#[derive(Debug, Clone)]
struct Entry {
    tx: PooledTx,
    subpool: SubPool,
    /// Arrival order, for tie-breaks.
    seq: u64,
    /// When it entered the pool, for expiry.
    arrival: Instant,
}

/// Eviction order: lowest priority first, then lowest fee cap, then newest arrival. Priority
/// and fee cap saturate at `u64::MAX` wei (18 ether per gas) to keep the key small; ordering
/// among prices above that does not matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EvictKey {
    priority: u64,
    fee_cap: u64,
    newest_first: Reverse<u64>,
    id: TxId,
}

/// How many block updates the pool remembers the changed accounts of, to settle transactions
/// validated against a snapshot read before them. 64 blocks is 12.8 minutes of mainnet: far
/// longer than any validation or state load takes; an older snapshot is refused `stale_state`.
pub const STATE_HISTORY: u64 = 64;

/// A validated transaction with the sender's state it was validated against.
#[derive(Debug, Clone)]
pub struct ValidTx {
    pub tx: PooledTx,
    /// The sender's state as read for this transaction.
    pub sender_state: AccountState,
    /// [`Pool::state_epoch`] read *before* `sender_state`: every block update applied after it
    /// may be newer than the snapshot.
    pub epoch: u64,
}

/// What [`Pool::add`] did with an accepted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    pub hash: B256,
    /// The subpool it landed in (it may since have been evicted: see the events).
    pub subpool: SubPool,
    /// The transaction it replaced, if any.
    pub replaced: Option<B256>,
}

/// The transaction pool. Not thread-safe by itself: share it through [`PoolHandle`].
/// Cloning copies the bookkeeping and the transactions' fields; their encoded bytes are shared.
#[derive(Clone)]
pub struct Pool {
    config: PoolConfig,
    head: ChainHead,
    /// The block gas limit the last update carried (none yet: no limit known).
    block_gas_limit: Option<u64>,
    /// Block updates applied so far (reorgs included, so it never goes back as numbers may).
    epoch: u64,
    /// Accounts changed by the last [`STATE_HISTORY`] updates: the epoch that changed each last,
    /// and its state then. Pruned through `changed_order`.
    changed: HashMap<Address, (u64, AccountState)>,
    changed_order: VecDeque<(u64, Address)>,
    slots: Slab,
    /// Slot ids by transaction hash: the table stores only ids and hashes through the slot, so
    /// the index costs ~10 bytes per transaction instead of a second copy of the hash.
    by_hash: HashTable<TxId>,
    /// Seeded hasher for `by_hash` (hashes are attacker-influenced: no fixed hash function).
    hasher: DefaultHashBuilder,
    accounts: HashMap<Address, Account>,
    /// Signers of the EIP-7702 authorizations in pooled transactions, with how many: each may be
    /// delegated by the next block, so it is held to the delegated limit already.
    authorizing: HashMap<Address, u32>,
    sizes: [SubPoolSize; 3],
    /// Every transaction by fee cap: finds the ones a base fee move re-prices.
    by_fee_cap: BTreeSet<(u128, TxId)>,
    /// Blob transactions by blob fee cap: the same for the blob base fee.
    by_blob_fee: BTreeSet<(u128, TxId)>,
    /// Bytes of blob data of the pooled blob transactions.
    blob_bytes: usize,
    /// The minimum tip, shared with validation.
    min_tip: MinTip,
    /// Basefee and queued transactions in arrival order (`seq`): finds the expired. Arrival
    /// times grow with `seq` because `now` never goes backwards, so the expired are a prefix.
    waiting: BTreeSet<(u64, TxId)>,
    /// Account tails per subpool, in eviction order.
    tails: [eviction::EvictionIndex; 3],
    /// Each account's lowest-nonce pending transaction, densely: where the builder starts.
    heads: Heads,
    next_seq: u64,
    /// Removals since start by reason kind, for metrics (read at scrape time, so counting needs
    /// no event subscriber).
    removals: std::collections::BTreeMap<&'static str, u64>,
    /// Builder failure reports of pooled transactions (only reported ones: small).
    failures: HashMap<TxId, quarantine::Failures>,
    /// Events of the operation in progress; taken by the caller after it.
    events: Vec<PoolEvent>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("head", &self.head).field("sizes", &self.sizes).finish_non_exhaustive()
    }
}

impl Pool {
    /// An empty pool at `head`. Transactions bring their sender's state ([`ValidTx`]); block
    /// updates keep the pool's copy of the accounts it holds current.
    pub fn new(config: PoolConfig, head: ChainHead) -> Self {
        Self {
            config,
            head,
            block_gas_limit: None,
            epoch: 0,
            changed: HashMap::default(),
            changed_order: VecDeque::new(),
            slots: Slab::default(),
            by_hash: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            accounts: HashMap::default(),
            authorizing: HashMap::default(),
            sizes: Default::default(),
            by_fee_cap: BTreeSet::new(),
            by_blob_fee: BTreeSet::new(),
            blob_bytes: 0,
            min_tip: MinTip::default(),
            waiting: BTreeSet::new(),
            tails: Default::default(),
            heads: Heads::default(),
            next_seq: 0,
            removals: std::collections::BTreeMap::new(),
            failures: HashMap::default(),
            events: Vec::new(),
        }
    }

    /// The same pool enforcing `min_tip`, the value validation reads (the validator's
    /// [`crate::validate::Validator::min_tip`]). Without it the pool applies no minimum of its own.
    #[must_use]
    pub fn with_min_tip(mut self, min_tip: MinTip) -> Self {
        self.min_tip = min_tip;
        self
    }

    pub const fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The minimum tip in force.
    pub fn min_tip(&self) -> u128 {
        self.min_tip.get()
    }

    /// Changes the minimum tip for the pool and validation alike; when it rises, the pooled
    /// transactions below it leave (`Invalidated { TipBelowMinimum }`) and their successors wait
    /// in queued. A scan of the pool: an operator's action, not a per-block one. Returns how
    /// many left.
    pub fn set_min_tip(&mut self, min: u128) -> usize {
        let raised = min > self.min_tip.get();
        self.min_tip.set(min);
        if !raised {
            return 0;
        }
        let below: Vec<TxId> =
            self.slots.ids().filter(|&id| self.entry(id).tx.max_priority_fee_per_gas() < min).collect();
        let mut touched = Vec::with_capacity(below.len());
        for &id in &below {
            touched.push(self.sender_nonce(id).0);
            let why = Invalidation::TipBelowMinimum { min };
            self.remove(id, RemovalReason::Invalidated { why, block: self.head.block });
        }
        touched.sort_unstable();
        touched.dedup();
        for address in touched {
            self.reevaluate(address, None);
        }
        self.enforce_limits();
        below.len()
    }

    pub const fn head(&self) -> ChainHead {
        self.head
    }

    /// Block updates applied so far. Read it before reading a sender's state for a [`ValidTx`].
    pub const fn state_epoch(&self) -> u64 {
        self.epoch
    }

    /// Takes the events produced since the last call, in order.
    pub fn take_events(&mut self) -> Vec<PoolEvent> {
        std::mem::take(&mut self.events)
    }

    /// Adds one validated transaction, then enforces the limits.
    ///
    /// # Errors
    /// [`PoolError`] when refused; the pool is then unchanged.
    pub fn add(&mut self, tx: ValidTx, now: Instant) -> Result<Added, PoolError> {
        let added = self.admit(tx, now);
        self.enforce_limits();
        added
    }

    /// Adds validated transactions in order, then enforces the limits once.
    pub fn add_batch(&mut self, txs: impl IntoIterator<Item = ValidTx>, now: Instant) -> Vec<Result<Added, PoolError>> {
        let results = txs.into_iter().map(|tx| self.admit(tx, now)).collect();
        self.enforce_limits();
        results
    }

    /// The freshest state of a transaction's sender, then the insert.
    fn admit(&mut self, valid: ValidTx, now: Instant) -> Result<Added, PoolError> {
        let sender = valid.tx.sender();
        let state = match self.known_state(&sender, valid.epoch) {
            Some(state) => state,
            None if valid.epoch + STATE_HISTORY < self.epoch => {
                return Err(PoolError::StaleState { read_at: valid.epoch, epoch: self.epoch });
            }
            None => valid.sender_state,
        };
        self.insert(valid.tx, state, now)
    }

    /// What the pool knows of an account newer than `epoch`: its own copy if it holds the
    /// account (kept current by every block update), else the state an update after `epoch`
    /// carried.
    fn known_state(&self, address: &Address, epoch: u64) -> Option<AccountState> {
        if let Some(account) = self.accounts.get(address) {
            return Some(account.state);
        }
        self.changed.get(address).filter(|(changed_at, _)| *changed_at > epoch).map(|&(_, state)| state)
    }

    /// Remembers the accounts an update changed, and forgets those older than the history.
    fn record_changes(&mut self, accounts: &[(Address, AccountState)]) {
        for &(address, state) in accounts {
            self.changed.insert(address, (self.epoch, state));
            self.changed_order.push_back((self.epoch, address));
        }
        while let Some(&(epoch, address)) = self.changed_order.front() {
            if epoch + STATE_HISTORY >= self.epoch {
                break;
            }
            self.changed_order.pop_front();
            if self.changed.get(&address).is_some_and(|(last, _)| *last == epoch) {
                self.changed.remove(&address);
            }
        }
    }

    /// Applies a new block: re-prices at its base fees, removes mined and stale transactions,
    /// applies the accounts' new state, re-injects reorged transactions, promotes and demotes,
    /// enforces limits and expires the overdue. Work is proportional to what changed.
    ///
    /// Returns the reorged transactions that were not put back, each with its reason (already
    /// pooled, nonce already used, sender's state unknown, ...).
    pub fn on_block(&mut self, update: BlockUpdate, now: Instant) -> Vec<(B256, PoolError)> {
        let mut touched = Vec::new();
        let old = self.head;
        self.epoch += 1;
        self.record_changes(&update.accounts);
        self.head = ChainHead { block: update.number, base_fee: update.base_fee, blob_base_fee: update.blob_base_fee };
        self.touch_repriced(&self.by_fee_cap, old.base_fee, update.base_fee, &mut touched);
        self.touch_repriced(&self.by_blob_fee, old.blob_base_fee, update.blob_base_fee, &mut touched);
        if let Some(limit) = update.gas_limit {
            if self.block_gas_limit.is_none_or(|old| limit < old) {
                self.remove_above_gas_limit(limit, update.number, &mut touched);
            }
            self.block_gas_limit = Some(limit);
        }

        let mut released = Vec::new();
        for hash in &update.mined {
            let Some(id) = self.find(hash) else { continue };
            let (sender, nonce) = self.sender_nonce(id);
            self.remove(id, RemovalReason::Mined { block: update.number });
            if let Some(account) = self.accounts.get_mut(&sender) {
                // It executed, so the account nonce is past it even if the update forgot to say.
                account.state.nonce = account.state.nonce.max(nonce + 1);
                released.extend(account.quarantined.take().map(|nonce| (sender, nonce)));
            }
            touched.push(sender);
        }
        for (address, state) in update.accounts {
            let Some(account) = self.accounts.get_mut(&address) else { continue };
            account.state = state;
            released.extend(account.quarantined.take().map(|nonce| (address, nonce)));
            let stale: Vec<TxId> = account.below(state.nonce).map(|&(_, id)| id).collect();
            for id in stale {
                let why = Invalidation::NonceTooLow { account_nonce: state.nonce };
                self.remove(id, RemovalReason::Invalidated { why, block: update.number });
            }
            touched.push(address);
        }
        touched.sort_unstable();
        touched.dedup();
        for address in touched {
            self.reevaluate(address, None);
        }
        self.drop_unreleasable(&released, update.number);
        let mut refused = Vec::new();
        for tx in update.reinject {
            let hash = tx.hash();
            let inserted = match self.known_state(&tx.sender(), self.epoch - 1) {
                Some(state) => self.insert(tx, state, now),
                None => Err(PoolError::StateUnknown(tx.sender())),
            };
            refused.extend(inserted.err().map(|e| (hash, e)));
        }
        self.remove_expired(now);
        self.enforce_limits();
        refused
    }

    /// Removes every transaction whose gas limit is above `limit`. A scan of the pool: it runs
    /// only when the chain's gas limit falls, which is rare and moves in small steps.
    fn remove_above_gas_limit(&mut self, limit: u64, block: u64, touched: &mut Vec<Address>) {
        let above: Vec<TxId> = self.slots.ids().filter(|&id| self.entry(id).tx.gas_limit() > limit).collect();
        for id in above {
            touched.push(self.sender_nonce(id).0);
            let why = Invalidation::AboveBlockGasLimit { block_gas_limit: limit };
            self.remove(id, RemovalReason::Invalidated { why, block });
        }
    }

    /// Makes a pooled transaction that came from a peer local: this node's user submitted it
    /// too, so it is journaled from now on. Returns whether it changed (a private or already
    /// local transaction keeps its origin).
    pub fn make_local(&mut self, hash: &B256) -> bool {
        let Some(id) = self.find(hash) else { return false };
        let tx = &mut self.slots.get_mut(id).expect("live tx id").tx;
        let external = tx.origin() == crate::tx::Origin::External;
        if external {
            tx.set_origin(crate::tx::Origin::Local);
        }
        external
    }

    /// Removes basefee and queued transactions older than the configured lifetime, then
    /// enforces the limits (an expired tx's successors may fall back into queued).
    pub fn expire(&mut self, now: Instant) {
        self.remove_expired(now);
        self.enforce_limits();
    }

    fn remove_expired(&mut self, now: Instant) {
        let Some(cutoff) = now.checked_sub(self.config.lifetime) else { return };
        let expired: Vec<TxId> =
            self.waiting.iter().map(|&(_, id)| id).take_while(|&id| self.entry(id).arrival <= cutoff).collect();
        let mut touched = Vec::with_capacity(expired.len());
        for id in expired {
            touched.push(self.sender_nonce(id).0);
            self.remove(id, RemovalReason::Expired);
        }
        touched.sort_unstable();
        touched.dedup();
        for address in touched {
            self.reevaluate(address, None);
        }
    }

    fn insert(&mut self, tx: PooledTx, state: AccountState, now: Instant) -> Result<Added, PoolError> {
        let hash = tx.hash();
        if self.find(&hash).is_some() {
            return Err(PoolError::AlreadyKnown(hash));
        }
        let min_tip = self.min_tip.get();
        if tx.max_priority_fee_per_gas() < min_tip {
            return Err(PoolError::TipBelowMinimum { tip: tx.max_priority_fee_per_gas(), min: min_tip });
        }
        if let Some(block_gas_limit) = self.block_gas_limit
            && tx.gas_limit() > block_gas_limit
        {
            return Err(PoolError::AboveBlockGasLimit { gas_limit: tx.gas_limit(), block_gas_limit });
        }
        let sender = tx.sender();
        if state.code == AccountCode::Contract {
            return Err(PoolError::SenderNotEoa(sender));
        }
        let nonce = tx.nonce();
        if nonce < state.nonce {
            return Err(PoolError::NonceTooLow { tx: nonce, account: state.nonce });
        }
        if tx.cost() > state.balance {
            return Err(PoolError::InsufficientFunds { cost: tx.cost(), balance: state.balance });
        }
        let held = |address: &Address| self.accounts.get(address).map_or(0, Account::len);
        if let Some(&authority) =
            tx.authorities().iter().find(|authority| held(authority) > self.config.delegated_account_slots)
        {
            return Err(PoolError::AuthorityReserved(authority));
        }
        let account = self.accounts.get(&sender);
        let replaced = account.and_then(|a| a.get(nonce));
        if let Some(account) = account {
            let holds_blobs = self.entry(account.txs()[0].1).tx.is_blob();
            if holds_blobs != tx.is_blob() {
                return Err(PoolError::BlobTypeConflict { holds_blobs });
            }
        }
        if tx.is_blob() {
            self.check_blob_funds(&tx, account, state)?;
        }
        match replaced {
            Some(old) => self.check_replacement(&self.entry(old).tx, &tx)?,
            None => {
                let held = account.map_or(0, Account::len);
                let next_nonce = account.map_or(state.nonce, |a| a.next_contiguous_nonce(state.nonce));
                let delegated =
                    matches!(state.code, AccountCode::Delegated(_)) || self.authorizing.contains_key(&sender);
                let slots = if tx.is_blob() { self.config.blob_account_slots } else { self.config.account_slots };
                if delegated {
                    if held >= self.config.delegated_account_slots || nonce != next_nonce {
                        let slots = self.config.delegated_account_slots;
                        return Err(PoolError::DelegatedInFlight { slots, next_nonce });
                    }
                } else if tx.is_blob() && nonce != next_nonce {
                    return Err(PoolError::BlobNonceGap { nonce, next_nonce });
                } else if held >= slots && nonce != state.nonce {
                    return Err(PoolError::AccountFull { slots });
                }
                self.check_not_cheapest(&tx, account, state)?;
            }
        }

        let replaced_hash = replaced.map(|old| {
            let old_hash = self.entry(old).tx.hash();
            self.remove(old, RemovalReason::Replaced { by: hash });
            old_hash
        });
        let id = self.alloc(Entry { tx, subpool: SubPool::Queued, seq: self.next_seq, arrival: now });
        self.next_seq += 1;
        self.accounts.entry(sender).or_insert_with(|| Account::new(state)).insert(nonce, id);
        let subpool = self.reevaluate(sender, Some(id)).expect("the new tx is placed");
        Ok(Added { hash, subpool, replaced: replaced_hash })
    }

    /// Replacement needs fee cap and tip each raised by the price bump, and for a blob
    /// transaction the blob fee cap too.
    fn check_replacement(&self, old: &PooledTx, new: &PooledTx) -> Result<(), PoolError> {
        let bump_percent =
            if old.is_blob() { self.config.blob_price_bump_percent } else { self.config.price_bump_percent };
        let bumped = |old: u128, new: u128| {
            U256::from(new) * U256::from(100) >= U256::from(old) * U256::from(100 + bump_percent)
        };
        if !(bumped(old.max_fee_per_gas(), new.max_fee_per_gas())
            && bumped(old.max_priority_fee_per_gas(), new.max_priority_fee_per_gas()))
        {
            return Err(PoolError::ReplacementUnderpriced {
                old_fee_cap: old.max_fee_per_gas(),
                old_tip: old.max_priority_fee_per_gas(),
                new_fee_cap: new.max_fee_per_gas(),
                new_tip: new.max_priority_fee_per_gas(),
                bump_percent,
            });
        }
        if old.is_blob() && !bumped(old.max_fee_per_blob_gas(), new.max_fee_per_blob_gas()) {
            return Err(PoolError::BlobReplacementUnderpriced {
                old_blob_fee_cap: old.max_fee_per_blob_gas(),
                new_blob_fee_cap: new.max_fee_per_blob_gas(),
                bump_percent,
            });
        }
        Ok(())
    }

    /// No overdraft for blob transactions: the sender pays for this one and every other pooled
    /// one (but the one it replaces) together.
    fn check_blob_funds(&self, tx: &PooledTx, account: Option<&Account>, state: AccountState) -> Result<(), PoolError> {
        let others = account.into_iter().flat_map(Account::txs).filter(|&&(nonce, _)| nonce != tx.nonce());
        let cost = others.fold(tx.cost(), |sum, &(_, id)| sum.saturating_add(self.entry(id).tx.cost()));
        if cost > state.balance {
            return Err(PoolError::InsufficientFunds { cost, balance: state.balance });
        }
        Ok(())
    }

    /// Refuses a transaction that would land in a full subpool as its cheapest member: it would
    /// be evicted at once, after costing everyone an event. For a blob transaction, the same
    /// against the blob data limit and its fee distance.
    fn check_not_cheapest(
        &self,
        tx: &PooledTx,
        account: Option<&Account>,
        state: AccountState,
    ) -> Result<(), PoolError> {
        let next_nonce = account.map_or(state.nonce, |a| a.next_contiguous_nonce(state.nonce));
        let subpool = if tx.nonce() > next_nonce {
            SubPool::Queued
        } else if self.priced(tx) {
            SubPool::Pending
        } else {
            SubPool::BaseFee
        };
        if tx.is_blob() && self.blob_bytes + tx.blob_data_size() > self.config.blob_bytes {
            let newcomer = self.fee_distance(tx);
            if self.blob_victim().is_none_or(|(_, worst)| newcomer <= worst) {
                return Err(PoolError::Underpriced { subpool });
            }
        }
        let size = self.sizes[subpool.index()];
        if !self.limit(subpool).exceeded_by(size.count + 1, size.bytes + tx.size()) {
            return Ok(());
        }
        let key = self.evict_key(tx, 0, self.next_seq);
        match self.tails[subpool.index()].first() {
            Some(cheapest) if (key.priority, key.fee_cap) > (cheapest.priority, cheapest.fee_cap) => Ok(()),
            _ => Err(PoolError::Underpriced { subpool }),
        }
    }

    /// How far a transaction's fees are above the current base fees, in log terms: the lower of
    /// `ln(fee cap / base fee)` and `ln(blob fee cap / blob base fee)`. Negative once priced out.
    fn fee_distance(&self, tx: &PooledTx) -> f64 {
        #[allow(clippy::cast_precision_loss)] // a ranking: the ratio's leading digits suffice
        let ln_ratio = |cap: u128, base: u128| ((cap as f64) + 1.0).ln() - ((base as f64) + 1.0).ln();
        ln_ratio(tx.max_fee_per_gas(), self.head.base_fee)
            .min(ln_ratio(tx.max_fee_per_blob_gas(), self.head.blob_base_fee))
    }

    /// The blob transaction to evict first, with its account's distance: the tail of the blob
    /// account whose worst distance (over its transactions in nonce order) is lowest; among
    /// equals, the newest tail. A scan of every account (a non-blob one costs a look at its
    /// last transaction): it runs only when the blob data limit is reached, once per blob
    /// insert or eviction there.
    fn blob_victim(&self) -> Option<(TxId, f64)> {
        self.accounts
            .values()
            .filter_map(|account| {
                let &(_, tail) = account.txs().last()?;
                self.entry(tail).tx.is_blob().then_some(())?;
                let worst = account
                    .txs()
                    .iter()
                    .map(|&(_, id)| self.fee_distance(&self.entry(id).tx))
                    .fold(f64::INFINITY, f64::min);
                Some((tail, worst, self.entry(tail).seq))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)))
            .map(|(id, worst, _)| (id, worst))
    }

    /// Evicts account tails, cheapest first, until every subpool is within its limits; then
    /// blob tails, furthest from the base fees first, until the blob data fits.
    fn enforce_limits(&mut self) {
        while self.blob_bytes > self.config.blob_bytes {
            let (victim, _) = self.blob_victim().expect("blob bytes are held by blob transactions");
            let sender = self.sender_nonce(victim).0;
            self.remove(victim, RemovalReason::Evicted { limit: Limit::BlobBytes });
            self.reevaluate(sender, None);
        }
        for subpool in SubPool::ALL {
            loop {
                let size = self.sizes[subpool.index()];
                let limit = self.limit(subpool);
                let which = if size.count > limit.max_txs {
                    Limit::SubPoolCount(subpool)
                } else if size.bytes > limit.max_bytes {
                    Limit::SubPoolBytes(subpool)
                } else {
                    break;
                };
                let victim = self.tails[subpool.index()].first().expect("a non-empty subpool has tails").id;
                let (sender, nonce) = self.sender_nonce(victim);
                self.remove(victim, RemovalReason::Evicted { limit: which });
                let descendants: Vec<TxId> = self.accounts[&sender].from(nonce).iter().map(|&(_, id)| id).collect();
                for id in descendants {
                    self.remove(id, RemovalReason::Evicted { limit: Limit::EvictedAncestor });
                }
                self.reevaluate(sender, None);
            }
        }
    }

    /// Accounts whose transactions' price crosses between `old` and `new` base fee.
    fn touch_repriced(&self, index: &BTreeSet<(u128, TxId)>, old: u128, new: u128, touched: &mut Vec<Address>) {
        let (low, high) = if old <= new { (old, new) } else { (new, old) };
        touched.extend(index.range((low, 0)..(high, 0)).map(|&(_, id)| self.entry(id).tx.sender()));
    }

    /// Whether the transaction pays the current base fee and blob base fee.
    fn priced(&self, tx: &PooledTx) -> bool {
        tx.max_fee_per_gas() >= self.head.base_fee
            && (!tx.is_blob() || tx.max_fee_per_blob_gas() >= self.head.blob_base_fee)
    }

    fn evict_key(&self, tx: &PooledTx, id: TxId, seq: u64) -> EvictKey {
        let saturate = |wei: u128| u64::try_from(wei).unwrap_or(u64::MAX);
        EvictKey {
            priority: saturate(tx.effective_tip(self.head.base_fee).unwrap_or(0)),
            fee_cap: saturate(tx.max_fee_per_gas()),
            newest_first: Reverse(seq),
            id,
        }
    }

    const fn limit(&self, subpool: SubPool) -> SubPoolLimit {
        match subpool {
            SubPool::Pending => self.config.pending,
            SubPool::BaseFee => self.config.basefee,
            SubPool::Queued => self.config.queued,
        }
    }

    fn entry(&self, id: TxId) -> &Entry {
        self.slots.get(id).expect("live tx id")
    }

    fn sender_nonce(&self, id: TxId) -> (Address, u64) {
        let tx = &self.entry(id).tx;
        (tx.sender(), tx.nonce())
    }

    /// The slot of the transaction with this hash.
    fn find(&self, hash: &B256) -> Option<TxId> {
        let slots = &self.slots;
        self.by_hash
            .find(self.hasher.hash_one(hash), |&id| slots.get(id).is_some_and(|e| e.tx.hash() == *hash))
            .copied()
    }

    fn alloc(&mut self, entry: Entry) -> TxId {
        let hash = entry.tx.hash();
        let fee_key = entry.tx.max_fee_per_gas();
        let blob_key = entry.tx.is_blob().then(|| entry.tx.max_fee_per_blob_gas());
        for &authority in entry.tx.authorities() {
            *self.authorizing.entry(authority).or_default() += 1;
        }
        let id = self.slots.insert(entry);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_hash.insert_unique(hasher.hash_one(hash), id, |&other| {
            hasher.hash_one(slots.get(other).expect("indexed ids are live").tx.hash())
        });
        self.by_fee_cap.insert((fee_key, id));
        if let Some(blob_key) = blob_key {
            self.by_blob_fee.insert((blob_key, id));
            self.blob_bytes += self.entry(id).tx.blob_data_size();
        }
        // Entered as queued (not yet counted); `reevaluate` places it and counts it.
        id
    }

    /// Removes a transaction from every index and emits its `Removed` event. The caller
    /// re-evaluates the account afterwards (its remaining transactions may move).
    fn remove(&mut self, id: TxId, reason: RemovalReason) {
        let hash = self.entry(id).tx.hash();
        self.by_hash
            .find_entry(self.hasher.hash_one(hash), |&other| other == id)
            .expect("live ids are indexed")
            .remove();
        let entry = self.slots.remove(id).expect("live tx id");
        let tx = &entry.tx;
        self.by_fee_cap.remove(&(tx.max_fee_per_gas(), id));
        if tx.is_blob() {
            self.by_blob_fee.remove(&(tx.max_fee_per_blob_gas(), id));
            self.blob_bytes -= tx.blob_data_size();
        }
        if entry.subpool != SubPool::Pending {
            self.waiting.remove(&(entry.seq, id));
        }
        let size = &mut self.sizes[entry.subpool.index()];
        size.count -= 1;
        size.bytes -= tx.size();
        for authority in tx.authorities() {
            let count = self.authorizing.get_mut(authority).expect("a pooled authorization is counted");
            *count -= 1;
            if *count == 0 {
                self.authorizing.remove(authority);
            }
        }
        self.failures.remove(&id);
        let account = self.accounts.get_mut(&tx.sender()).expect("a pooled tx's account exists");
        account.remove(tx.nonce());
        if account.quarantined == Some(tx.nonce()) {
            // Replaced, expired or evicted: whatever takes its nonce next starts clean.
            account.quarantined = None;
        }
        for (subpool, tail) in account.tails.iter_mut().enumerate() {
            if tail.is_some_and(|t| t.id == id) {
                self.tails[subpool].remove(&tail.take().expect("checked"));
            }
        }
        *self.removals.entry(reason.kind()).or_default() += 1;
        self.events.push(PoolEvent::Removed { hash: tx.hash(), sender: tx.sender(), nonce: tx.nonce(), reason });
    }
}
