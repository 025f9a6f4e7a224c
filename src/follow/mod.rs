//! Following a real execution node: the chain context and account state come from an upstream
//! node over standard `eth_` JSON-RPC, and every new head becomes one [`BlockUpdate`].
//!
//! Owns: the upstream connection ([`Upstream`]), the remote [`StateProvider`](crate::state::StateProvider)
//! ([`RemoteState`]), and the head follower ([`Follow`]): new heads announced (WebSocket) or
//! polled (HTTP), gaps walked back by
//! parent hash, reorgs found (a head whose parent is not the known head), the transactions of
//! dropped blocks put back, and the state of every account the new blocks touched (senders,
//! EIP-7702 authorities) read at the new head, with a rolling refresh of the other pooled
//! senders (and all of them after a reorg deeper than the kept blocks).
//! Does not: decide anything about transactions (the pool applies the update) or serve
//! JSON-RPC (the node does).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tidepool::{follow::{Follow, FollowConfig}, service::Tidepool};
//! let follow = Follow::connect(FollowConfig::new("http://127.0.0.1:8545", 31337)).await?;
//! let tidepool = Tidepool::builder(follow.state(), follow.head()).start().await?;
//! tokio::spawn(follow.run(tidepool.chain()));
//! # Ok(()) }
//! ```

mod remote_state;
mod upstream;

pub use remote_state::{DEFAULT_MAX_CACHED, RemoteState};
pub use upstream::{ACCOUNTS_PER_BATCH, AccountRead, Read, Upstream, UpstreamBlock, is_supported_url};

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use alloy_eips::{eip1559::BaseFeeParams, eip2718::Encodable2718 as _};
use alloy_primitives::{Address, B256, Bytes};
use futures::FutureExt as _;
use jsonrpsee::core::client::Subscription;

use crate::{
    service::ChainUpdates,
    state::{AccountCode, AccountState, BlockUpdate, ChainHead},
    tx::PooledTx,
    validate::{Fork, ValidationConfig, Validator},
};

/// How to follow an upstream node.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowConfig {
    /// The upstream's JSON-RPC URL: `http://…` (heads polled) or `ws://…` (heads announced by
    /// subscription, and polled as a safety net).
    pub url: String,
    /// The chain the pool serves: an upstream on another chain stops the start.
    pub chain_id: u64,
    /// How often the head is polled (over WebSocket: how long a quiet subscription is trusted).
    /// Default 250 ms.
    pub poll_every: Duration,
    /// Longest wait for one upstream call. Default 2 s.
    pub timeout: Duration,
    /// Recent blocks kept with their transactions for reorgs. Default 64.
    pub recent_blocks: usize,
    /// Most blocks one poll walks back to reach a block it applied (a burst of heads between
    /// two polls). Further back than this, the change is treated as a reorg deeper than kept.
    /// Default 1,024.
    pub max_catch_up: usize,
    /// Accounts cached at most. Default [`DEFAULT_MAX_CACHED`].
    pub max_cached: usize,
    /// Pooled senders re-read per new head besides those its blocks touched, in turn, so a
    /// balance moved inside a contract call (which no header shows) is seen within
    /// `pooled senders / refresh_per_block` blocks. Default 200 (two batched calls).
    pub refresh_per_block: usize,
    /// The fork rules of the chain (blob fee parameters, validation of reinjected transactions).
    pub fork: Fork,
}

impl FollowConfig {
    pub fn new(url: &str, chain_id: u64) -> Self {
        Self {
            url: url.to_owned(),
            chain_id,
            poll_every: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
            recent_blocks: 64,
            max_catch_up: 1_024,
            max_cached: DEFAULT_MAX_CACHED,
            refresh_per_block: 200,
            fork: Fork::Prague,
        }
    }
}

/// Why following failed. `kind()` names are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("unsupported upstream URL {0:?}: give the node's JSON-RPC endpoint as http://… or ws://…")]
    UnsupportedUrl(String),
    #[error("upstream is on chain {found}, not chain {expected}")]
    WrongChain { expected: u64, found: u64 },
    #[error("upstream answered something unusable: {0}")]
    Malformed(String),
    /// Build mode needs an upstream that mines only when asked.
    #[error("upstream mines blocks by itself; build mode needs it started without (anvil --no-mining --order fifo)")]
    MinesByItself,
}

impl FollowError {
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "upstream_unreachable",
            Self::UnsupportedUrl(_) => "unsupported_url",
            Self::WrongChain { .. } => "wrong_chain",
            Self::Malformed(_) => "upstream_malformed",
            Self::MinesByItself => "upstream_mines_itself",
        }
    }
}

/// How following goes, for metrics: shared with the running [`Follow`].
#[derive(Debug, Default)]
pub struct FollowStats {
    /// The last poll reached the upstream.
    pub up: AtomicBool,
    /// The upstream's latest block number at the last poll.
    pub upstream_head: AtomicU64,
    /// The block the pool was last updated to.
    pub followed_head: AtomicU64,
    /// Blocks applied, reorgs seen (and of those, deeper than the kept blocks), and failed polls.
    pub blocks: AtomicU64,
    pub reorgs: AtomicU64,
    pub deep_reorgs: AtomicU64,
    pub errors: AtomicU64,
    /// How long the last poll's first call took, in microseconds.
    pub latency_micros: AtomicU64,
}

/// A block the follower applied, kept for reorgs.
#[derive(Debug, Clone)]
struct Kept {
    number: u64,
    hash: B256,
    txs: Vec<MinedTx>,
}

/// A transaction of an applied block: what a reorg puts back, and the accounts it moved.
#[derive(Debug, Clone)]
struct MinedTx {
    hash: B256,
    raw: Bytes,
    sender: Address,
    nonce: u64,
    /// Signers of its EIP-7702 authorizations (their nonces move without their sending).
    authorities: Vec<Address>,
}

impl MinedTx {
    fn new(tx: &impl alloy_consensus::Transaction, hash: B256, raw: Bytes, sender: Address) -> Self {
        let authorities = tx
            .authorization_list()
            .into_iter()
            .flatten()
            .filter_map(|authorization| crate::tx::recover_authority(authorization).ok())
            .collect();
        Self { hash, raw, sender, nonce: tx.nonce(), authorities }
    }

    fn pooled(tx: &PooledTx) -> Self {
        Self {
            hash: tx.hash(),
            raw: tx.encoded().clone(),
            sender: tx.sender(),
            nonce: tx.nonce(),
            authorities: tx.authorities().to_vec(),
        }
    }

    fn decoded(raw: Bytes) -> Option<Self> {
        let decoded = crate::tx::decode(&raw).ok()?;
        let sender = crate::tx::recover_sender(&decoded.envelope).ok()?;
        Some(Self::new(&decoded.envelope, decoded.hash, raw, sender))
    }
}

/// The head follower. [`connect`](Self::connect) it, build the pool on its
/// [`state`](Self::state) and [`head`](Self::head), then [`run`](Self::run) it.
#[derive(Debug)]
pub struct Follow {
    config: FollowConfig,
    upstream: Upstream,
    state: Arc<RemoteState>,
    head: ChainHead,
    /// Applied blocks, oldest first; the last is the head.
    recent: VecDeque<Kept>,
    /// Validates the transactions a reorg puts back (they come from the upstream's blocks).
    validator: Validator,
    /// Pooled senders still to re-read in the current round of the rolling refresh.
    refresh: VecDeque<Address>,
    stats: Arc<FollowStats>,
}

impl Follow {
    /// Connects: checks the chain id and reads the head.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`] when the upstream does not answer, [`FollowError::WrongChain`]
    /// when it serves another chain.
    pub async fn connect(config: FollowConfig) -> Result<Self, FollowError> {
        let upstream = Upstream::new(&config.url, config.timeout)?;
        let found = upstream.chain_id().await?;
        if found != config.chain_id {
            return Err(FollowError::WrongChain { expected: config.chain_id, found });
        }
        let latest = upstream.latest().await?;
        let latest_txs = mined_txs(&upstream, &latest, &[]).await?;
        let state = Arc::new(RemoteState::new(upstream.clone(), latest.header.hash, config.max_cached));
        let validator = Validator::new(ValidationConfig {
            chain_id: config.chain_id,
            fork: config.fork,
            // Mined transactions were valid on chain: only the encoding and signature matter.
            block_gas_limit: u64::MAX,
            min_priority_fee: 0,
            ..ValidationConfig::default()
        });
        let head = next_head(&latest, config.fork);
        let mut recent = VecDeque::new();
        recent.push_back(Kept { number: latest.header.number, hash: latest.header.hash, txs: latest_txs });
        let stats = Arc::new(FollowStats::default());
        stats.up.store(true, Relaxed);
        stats.upstream_head.store(head.block, Relaxed);
        stats.followed_head.store(head.block, Relaxed);
        Ok(Self { config, upstream, state, head, recent, validator, refresh: VecDeque::new(), stats })
    }

    /// The upstream connection (for passing through what the pool cannot answer).
    pub const fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Counters and gauges of the follower, live while it runs.
    pub fn stats(&self) -> Arc<FollowStats> {
        Arc::clone(&self.stats)
    }

    /// The state provider to build the pool on.
    pub fn state(&self) -> Arc<RemoteState> {
        Arc::clone(&self.state)
    }

    /// The chain context after the upstream's latest block.
    pub const fn head(&self) -> ChainHead {
        self.head
    }

    /// Follows until the pool is gone: waits for a new head (announced over WebSocket, or the
    /// poll interval), applies each change. An unreachable upstream is retried with backoff (up
    /// to 5 s between attempts); the pool keeps serving at the last head meanwhile. Over
    /// WebSocket the poll goes on beside the subscription, as a safety net for a subscription
    /// that went quiet.
    pub async fn run(mut self, chain: ChainUpdates) {
        let mut backoff = self.config.poll_every;
        let mut heads = self.subscribe().await;
        loop {
            if !wait_for_head(heads.as_mut(), backoff).await {
                heads = None; // closed or fell behind: subscribe again
            }
            let outcome = self.step(&chain).await;
            self.stats.up.store(outcome.is_ok(), Relaxed);
            match outcome {
                Ok(update) => {
                    backoff = self.config.poll_every;
                    if let Some(update) = update {
                        let number = update.number;
                        for (hash, error) in chain.on_block(update) {
                            tracing::debug!(%hash, kind = error.kind(), block = number, "reorg reinjection refused");
                        }
                    }
                    if heads.is_none() {
                        heads = self.subscribe().await;
                    }
                }
                Err(e) => {
                    heads = None;
                    self.stats.errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, kind = e.kind(), "following the upstream failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// New heads announced by the upstream (WebSocket); `None` over HTTP or when the
    /// subscription fails (then the poll goes on alone).
    async fn subscribe(&self) -> Option<Subscription<serde_json::Value>> {
        self.upstream.new_heads().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "subscribing to the upstream's new heads failed; polling");
            None
        })
    }

    /// The accounts the update carries, and what to read of each at the new head: the senders
    /// of the new blocks (balance; nonce and code too unless the pool holds them without code),
    /// the EIP-7702 authorities in them and the senders of dropped blocks (everything), and the
    /// next pooled senders of the rolling refresh (balance, or every pooled sender after a
    /// change deeper than the kept blocks). Code changes only through an authorization, so the
    /// pool's copy of it holds for everyone else.
    fn reads(
        &mut self,
        applied: &[Kept],
        dropped: &[Kept],
        deeper_than_kept: bool,
        pooled: &[(Address, AccountState)],
    ) -> BTreeMap<Address, Plan> {
        let pooled_state: HashMap<Address, AccountState> = pooled.iter().copied().collect();
        let mut plans = BTreeMap::new();
        for tx in applied.iter().flat_map(|block| &block.txs) {
            // In nonce order: the last one sets the nonce.
            let plan =
                pooled_state.get(&tx.sender).map_or(Plan::EVERYTHING, |state| Plan::known(tx.nonce + 1, state.code));
            plans.insert(tx.sender, plan);
        }
        let authorities = applied.iter().flat_map(|block| &block.txs).flat_map(|tx| tx.authorities.iter().copied());
        let reverted = dropped.iter().flat_map(|block| &block.txs).map(|tx| tx.sender);
        for address in authorities.chain(reverted) {
            plans.insert(address, Plan::EVERYTHING);
        }
        if deeper_than_kept {
            // Nothing kept says what changed: any pooled account may have.
            plans.extend(pooled.iter().map(|&(address, _)| (address, Plan::EVERYTHING)));
            self.refresh.clear();
            return plans;
        }
        if self.refresh.is_empty() {
            self.refresh = pooled.iter().map(|&(address, _)| address).collect();
        }
        let turn = self.config.refresh_per_block.min(self.refresh.len());
        for address in self.refresh.drain(..turn) {
            if let Some(state) = pooled_state.get(&address) {
                plans.entry(address).or_insert(Plan::known(state.nonce, state.code));
            }
        }
        plans
    }

    /// One poll: the update a new head makes for the pool behind `chain`, `None` when the head
    /// has not moved. The update carries the state, read at the new head, of every account the
    /// new blocks touched, of the senders of transactions a reorg puts back, and of the next
    /// [`refresh_per_block`](FollowConfig::refresh_per_block) pooled senders in turn; after a
    /// reorg deeper than the kept blocks, of every pooled sender.
    ///
    /// # Errors
    /// A [`FollowError`] when the upstream fails; nothing is applied then.
    pub async fn step(&mut self, chain: &ChainUpdates) -> Result<Option<BlockUpdate>, FollowError> {
        let asked = Instant::now();
        let latest = self.upstream.latest().await?;
        let micros = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.latency_micros.store(micros, Relaxed);
        self.stats.upstream_head.store(latest.header.number, Relaxed);
        if self.recent.back().is_some_and(|head| head.hash == latest.header.hash) {
            return Ok(None);
        }
        // Walk back from the new head to a block we applied (a gap, or a reorg's fork point),
        // no further than the oldest kept block: below it nothing can match.
        let known: HashSet<B256> = self.recent.iter().map(|kept| kept.hash).collect();
        let oldest_kept = self.recent.front().map_or(0, |kept| kept.number);
        let mut new_blocks = vec![latest];
        while let Some(oldest) = new_blocks.last()
            && !known.contains(&oldest.header.parent_hash)
            && new_blocks.len() < self.config.max_catch_up
            && oldest.header.number > oldest_kept
        {
            let parent = oldest.header.parent_hash;
            let block = self.upstream.block(parent, false).await?.ok_or_else(|| {
                FollowError::Malformed(format!(
                    "the upstream does not know block {parent}, parent of a block it served"
                ))
            })?;
            new_blocks.push(block);
        }
        let deeper_than_kept = new_blocks.last().is_some_and(|oldest| !known.contains(&oldest.header.parent_hash));
        new_blocks.reverse();
        let fork_point = new_blocks[0].header.parent_hash;
        // Blocks after the fork point were dropped by the upstream (all of them, for a reorg
        // deeper than we keep).
        let mut dropped = Vec::new();
        while let Some(last) = self.recent.back()
            && last.hash != fork_point
        {
            dropped.push(self.recent.pop_back().expect("checked"));
        }
        let mut applied = Vec::with_capacity(new_blocks.len());
        for block in &new_blocks {
            let pooled = chain.pooled(block.transactions.hashes());
            let txs = mined_txs(&self.upstream, block, &pooled).await?;
            applied.push(Kept { number: block.header.number, hash: block.header.hash, txs });
        }
        let mined: Vec<B256> = applied.iter().flat_map(|block| block.txs.iter().map(|tx| tx.hash)).collect();
        let mined_set: HashSet<B256> = mined.iter().copied().collect();
        let reinject: Vec<_> = dropped
            .iter()
            .flat_map(|block| block.txs.iter())
            .filter(|tx| !mined_set.contains(&tx.hash))
            // A dropped block's blob transaction is not put back: its sidecar left the pool when
            // it was mined, and a blob transaction without one is a dead end.
            .filter_map(|tx| match self.validator.validate(tx.raw.clone()) {
                Ok(valid) => Some(valid),
                Err(e) => {
                    tracing::debug!(hash = %tx.hash, kind = e.kind(), "a dropped block's transaction is not put back");
                    None
                }
            })
            .collect();
        if !dropped.is_empty() {
            self.stats.reorgs.fetch_add(1, Relaxed);
            tracing::info!(dropped = dropped.len(), reinjected = reinject.len(), "upstream reorg");
        }
        let head_block = new_blocks.last().expect("at least the latest");
        if deeper_than_kept {
            self.stats.deep_reorgs.fetch_add(1, Relaxed);
            tracing::warn!(
                kept = self.config.recent_blocks,
                "chain changed deeper than the kept blocks; reloading every pooled sender"
            );
        }
        let reads = self.reads(&applied, &dropped, deeper_than_kept, &chain.senders());
        let addresses: Vec<(Address, Read)> = reads.iter().map(|(&address, plan)| (address, plan.read)).collect();
        let answers = self.upstream.read_accounts(head_block.header.hash, &addresses).await?;
        let accounts: Vec<(Address, AccountState)> = reads
            .into_iter()
            .zip(answers)
            .map(|((address, plan), read)| {
                let nonce = read.nonce.or(plan.nonce).unwrap_or_default();
                let code = read.code.or(plan.code).unwrap_or_default();
                (address, AccountState::new(nonce, read.balance).with_code(code))
            })
            .collect();

        self.state.on_head(head_block.header.hash, &accounts);
        self.head = next_head(head_block, self.config.fork);
        self.stats.followed_head.store(self.head.block, Relaxed);
        self.stats.blocks.fetch_add(applied.len() as u64, Relaxed);
        for block in applied {
            self.recent.push_back(block);
        }
        while self.recent.len() > self.config.recent_blocks {
            self.recent.pop_front();
        }
        Ok(Some(BlockUpdate {
            number: self.head.block,
            base_fee: self.head.base_fee,
            blob_base_fee: self.head.blob_base_fee,
            gas_limit: Some(head_block.header.gas_limit),
            mined,
            accounts,
            reinject,
        }))
    }
}

/// Waits until `heads` announces a head (announcements queued meanwhile merge into one) or
/// `wait` passes. `false` when the subscription ended or fell behind.
async fn wait_for_head(heads: Option<&mut Subscription<serde_json::Value>>, wait: Duration) -> bool {
    let Some(heads) = heads else {
        tokio::time::sleep(wait).await;
        return true;
    };
    tokio::select! {
        announced = heads.next() => {
            if !matches!(announced, Some(Ok(_))) {
                return false;
            }
            while let Some(Some(Ok(_))) = heads.next().now_or_never() {}
            true
        }
        () = tokio::time::sleep(wait) => true,
    }
}

/// What a block update needs read of one account, and what is known of it without reading.
#[derive(Debug, Clone, Copy)]
struct Plan {
    read: Read,
    nonce: Option<u64>,
    code: Option<AccountCode>,
}

impl Plan {
    const EVERYTHING: Self = Self { read: Read::Everything, nonce: None, code: None };

    /// An account whose nonce is known (`nonce`) unless it has code: an account without code
    /// moves its nonce only by sending, which the blocks show; delegated code can create
    /// contracts, which moves it unseen.
    const fn known(nonce: u64, code: AccountCode) -> Self {
        match code {
            AccountCode::None => Self { read: Read::Balance, nonce: Some(nonce), code: Some(code) },
            _ => Self { read: Read::NonceAndBalance, nonce: None, code: Some(code) },
        }
    }
}

/// The transactions of `block` (which lists their hashes): the pool's copies where it holds
/// them (`pooled`, by position), the rest by hash in one batched call; if the upstream cannot
/// give one that way, the whole block with full transactions.
async fn mined_txs(
    upstream: &Upstream,
    block: &UpstreamBlock,
    pooled: &[Option<PooledTx>],
) -> Result<Vec<MinedTx>, FollowError> {
    let hashes: Vec<B256> = block.transactions.hashes().collect();
    let missing: Vec<B256> = hashes
        .iter()
        .enumerate()
        .filter(|&(i, _)| pooled.get(i).is_none_or(Option::is_none))
        .map(|(_, h)| *h)
        .collect();
    let mut fetched = upstream.raw_transactions(&missing).await?.into_iter();
    let mut txs = Vec::with_capacity(hashes.len());
    for (i, hash) in hashes.iter().enumerate() {
        let tx = match pooled.get(i).and_then(Option::as_ref) {
            Some(tx) => Some(MinedTx::pooled(tx)),
            None => fetched.next().flatten().and_then(MinedTx::decoded),
        };
        match tx {
            Some(tx) if tx.hash == *hash => txs.push(tx),
            _ => return full_block_txs(upstream, block).await,
        }
    }
    Ok(txs)
}

async fn full_block_txs(upstream: &Upstream, block: &UpstreamBlock) -> Result<Vec<MinedTx>, FollowError> {
    let hash = block.header.hash;
    let full = upstream
        .block(hash, true)
        .await?
        .ok_or_else(|| FollowError::Malformed(format!("the upstream no longer serves block {hash}")))?;
    Ok(full
        .transactions
        .txns()
        .map(|tx| {
            let envelope = tx.inner.inner();
            MinedTx::new(envelope, *envelope.tx_hash(), Bytes::from(envelope.encoded_2718()), tx.inner.signer())
        })
        .collect())
}

/// The chain context after `block`: the next block's base fee (EIP-1559) and blob base fee
/// (EIP-4844 with the fork's blob parameters).
fn next_head(block: &UpstreamBlock, fork: Fork) -> ChainHead {
    let header = &block.header;
    let base_fee = header.base_fee_per_gas.unwrap_or_default();
    let next_base_fee = BaseFeeParams::ethereum().next_block_base_fee(header.gas_used, header.gas_limit, base_fee);
    let (excess, used) = (header.excess_blob_gas.unwrap_or_default(), header.blob_gas_used.unwrap_or_default());
    let (_, blob_base_fee) = fork.next_blob_market(excess, used, base_fee);
    ChainHead { block: header.number, base_fee: u128::from(next_base_fee), blob_base_fee }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds are API: every kind string pinned; a new variant fails to compile in `index`.
    #[test]
    fn every_kind_is_pinned() {
        let index = |e: &FollowError| match e {
            FollowError::Unreachable(_) => 0,
            FollowError::UnsupportedUrl(_) => 1,
            FollowError::WrongChain { .. } => 2,
            FollowError::Malformed(_) => 3,
            FollowError::MinesByItself => 4,
        };
        let samples = [
            FollowError::Unreachable(String::new()),
            FollowError::UnsupportedUrl(String::new()),
            FollowError::WrongChain { expected: 1, found: 2 },
            FollowError::Malformed(String::new()),
            FollowError::MinesByItself,
        ];
        let order: Vec<usize> = samples.iter().map(index).collect();
        assert_eq!(order, (0..samples.len()).collect::<Vec<_>>(), "one sample per variant, in order");
        let kinds: Vec<&str> = samples.iter().map(FollowError::kind).collect();
        assert_eq!(
            kinds,
            ["upstream_unreachable", "unsupported_url", "wrong_chain", "upstream_malformed", "upstream_mines_itself"]
        );
    }

    #[test]
    fn a_url_without_a_known_scheme_is_refused_by_name() {
        let error = Upstream::new("127.0.0.1:8545", Duration::from_secs(1)).unwrap_err();
        assert_eq!(error.kind(), "unsupported_url");
        assert!(error.to_string().contains("ws://"), "{error}");
        assert!(Upstream::new("ws://127.0.0.1:8546", Duration::from_secs(1)).is_ok(), "connected on first use");
    }
}
