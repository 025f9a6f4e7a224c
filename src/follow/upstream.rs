//! The upstream execution node, over standard `eth_` JSON-RPC only (geth, reth, Nethermind and
//! anvil answer alike), on HTTP or WebSocket: chain id, blocks with their transactions, account
//! state (nonce, balance, code) in batches at a block hash, and (WebSocket) new-head
//! subscriptions.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy_primitives::{Address, B256, Bytes, U256};
use jsonrpsee::{
    core::{
        ClientError,
        client::{BatchResponse, ClientT, Subscription, SubscriptionClientT},
        params::{ArrayParams, BatchRequestBuilder},
    },
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
    ws_client::{WsClient, WsClientBuilder},
};
use serde::de::DeserializeOwned;

use super::FollowError;
use crate::state::{AccountCode, AccountState};

/// A block as the upstream sends it: with transaction hashes, or with full transactions.
pub type UpstreamBlock = alloy_rpc_types_eth::Block;

/// What to read of an account: its balance moves with every block that touches it, its nonce
/// only when it sends (or authorizes, or runs delegated code that creates), its code only
/// through an EIP-7702 authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Balance,
    NonceAndBalance,
    Everything,
}

impl Read {
    const fn calls(self) -> usize {
        match self {
            Self::Balance => 1,
            Self::NonceAndBalance => 2,
            Self::Everything => 3,
        }
    }
}

/// An account as read: the parts that were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRead {
    pub nonce: Option<u64>,
    pub balance: U256,
    pub code: Option<AccountCode>,
}

/// Accounts (or transactions) per batched call. A node answers the calls of one batch in turn
/// but serves separate requests in parallel, so small batches sent together answer sooner:
/// 200 balances from anvil took ~44 ms in 2 batches sent in turn, ~20 ms in 8 sent together
/// (BENCHMARKS.md).
pub const ACCOUNTS_PER_BATCH: usize = 25;

/// Batched calls in flight at once to the upstream.
const CONCURRENT_BATCHES: usize = 8;

/// Whether `url` names a transport the upstream client speaks: `http://`, `https://`
/// (heads polled), `ws://`, `wss://` (heads subscribed to).
pub fn is_supported_url(url: &str) -> bool {
    ["http://", "https://", "ws://", "wss://"].iter().any(|scheme| url.starts_with(scheme))
}

/// Most bytes of one answer (a block with full transactions can be large).
const MAX_RESPONSE_BYTES: u32 = 64 << 20;

/// A JSON-RPC connection to the upstream node; every call bounded by the timeout.
#[derive(Debug, Clone)]
pub struct Upstream {
    transport: Transport,
    url: String,
}

#[derive(Debug, Clone)]
enum Transport {
    Http(HttpClient),
    /// Connected on first use and again after the connection is lost.
    Ws(Arc<Reconnecting>),
}

#[derive(Debug)]
struct Reconnecting {
    url: String,
    timeout: Duration,
    client: Mutex<Option<Arc<WsClient>>>,
}

impl Reconnecting {
    /// The live connection, or a new one. The lock is never held across the connect.
    async fn client(&self) -> Result<Arc<WsClient>, ClientError> {
        let current = self.client.lock().expect("ws client lock").clone();
        if let Some(client) = current.filter(|client| client.is_connected()) {
            return Ok(client);
        }
        let client = WsClientBuilder::default()
            .request_timeout(self.timeout)
            .connection_timeout(self.timeout)
            .max_response_size(MAX_RESPONSE_BYTES)
            .build(&self.url)
            .await?;
        let client = Arc::new(client);
        *self.client.lock().expect("ws client lock") = Some(Arc::clone(&client));
        Ok(client)
    }
}

impl Upstream {
    /// A client for `url` (`http://`, `https://`, `ws://` or `wss://`); nothing is sent yet.
    ///
    /// # Errors
    /// [`FollowError::UnsupportedUrl`] for another scheme, [`FollowError::Unreachable`] for a
    /// URL the client cannot use.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, FollowError> {
        if !is_supported_url(url) {
            return Err(FollowError::UnsupportedUrl(url.to_owned()));
        }
        if url.starts_with("ws://") || url.starts_with("wss://") {
            let connection = Reconnecting { url: url.to_owned(), timeout, client: Mutex::new(None) };
            return Ok(Self { transport: Transport::Ws(Arc::new(connection)), url: url.to_owned() });
        }
        let client = HttpClientBuilder::default()
            .request_timeout(timeout)
            .max_response_size(MAX_RESPONSE_BYTES)
            .build(url)
            .map_err(|e| FollowError::Unreachable(format!("{url}: {e}")))?;
        Ok(Self { transport: Transport::Http(client), url: url.to_owned() })
    }

    async fn request<R: DeserializeOwned>(&self, method: &str, params: ArrayParams) -> Result<R, ClientError> {
        match &self.transport {
            Transport::Http(client) => client.request(method, params).await,
            Transport::Ws(connection) => connection.client().await?.request(method, params).await,
        }
    }

    async fn batch<'a, R: DeserializeOwned + std::fmt::Debug + 'a>(
        &self,
        batch: BatchRequestBuilder<'a>,
    ) -> Result<BatchResponse<'a, R>, ClientError> {
        match &self.transport {
            Transport::Http(client) => client.batch_request(batch).await,
            Transport::Ws(connection) => connection.client().await?.batch_request(batch).await,
        }
    }

    /// New heads as the upstream announces them (`eth_subscribe("newHeads")`), over WebSocket;
    /// `None` over HTTP (heads are polled).
    ///
    /// # Errors
    /// [`FollowError::Unreachable`] when the subscription cannot be made.
    pub async fn new_heads(&self) -> Result<Option<Subscription<serde_json::Value>>, FollowError> {
        let Transport::Ws(connection) = &self.transport else { return Ok(None) };
        let client = connection.client().await.map_err(|e| self.unreachable(e))?;
        let heads = client
            .subscribe("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe")
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(Some(heads))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> FollowError {
        FollowError::Unreachable(format!("{}: {e}", self.url))
    }

    /// `eth_chainId`.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`] when the node does not answer in time.
    pub async fn chain_id(&self) -> Result<u64, FollowError> {
        let id: U256 = self.request("eth_chainId", rpc_params![]).await.map_err(|e| self.unreachable(e))?;
        u64::try_from(id).map_err(|_| FollowError::Malformed(format!("chain id {id}")))
    }

    /// The latest block, with its transaction hashes (a node serves a block with full
    /// transactions many times slower: anvil takes ~50 ms for 200 of them).
    ///
    /// # Errors
    /// [`FollowError::Unreachable`], or [`FollowError::Malformed`] when there is no latest block.
    pub async fn latest(&self) -> Result<UpstreamBlock, FollowError> {
        let block: Option<UpstreamBlock> = self
            .request("eth_getBlockByNumber", rpc_params!["latest", false])
            .await
            .map_err(|e| self.unreachable(e))?;
        block.ok_or_else(|| FollowError::Malformed("no latest block".into()))
    }

    /// A block by hash, with full transactions or their hashes; `None` when the node does not
    /// know it.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`].
    pub async fn block(&self, hash: B256, full: bool) -> Result<Option<UpstreamBlock>, FollowError> {
        self.request("eth_getBlockByHash", rpc_params![hash, full]).await.map_err(|e| self.unreachable(e))
    }

    /// The EIP-2718 encodings of transactions by hash, in one batched call; `None` for one the
    /// node does not know.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`], or [`FollowError::Malformed`] for an answer that is not bytes.
    pub async fn raw_transactions(&self, hashes: &[B256]) -> Result<Vec<Option<Bytes>>, FollowError> {
        in_parallel(hashes.chunks(ACCOUNTS_PER_BATCH).map(|chunk| self.raw_batch(chunk)).collect()).await
    }

    async fn raw_batch(&self, hashes: &[B256]) -> Result<Vec<Option<Bytes>>, FollowError> {
        let mut batch = BatchRequestBuilder::new();
        for hash in hashes {
            batch.insert("eth_getRawTransactionByHash", rpc_params![hash]).expect("serializable");
        }
        let answers = self.batch::<Option<Bytes>>(batch).await.map_err(|e| self.unreachable(e))?;
        Ok(answers.into_ok().map_err(|mut errors| FollowError::Malformed(format!("{:?}", errors.next())))?.collect())
    }

    /// Any method, passed through as it is: for a node that answers what the pool cannot.
    ///
    /// # Errors
    /// The upstream's own error, or a transport error.
    pub async fn forward(
        &self,
        method: &str,
        params: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut array = ArrayParams::new();
        for param in params {
            array.insert(param).expect("JSON values serialize");
        }
        self.request(method, array).await
    }

    /// Nonce, balance and code of each account at block `at`.
    ///
    /// # Errors
    /// As [`read_accounts`](Self::read_accounts).
    pub async fn accounts_at(
        &self,
        at: B256,
        addresses: &[Address],
    ) -> Result<Vec<(Address, AccountState)>, FollowError> {
        let reads: Vec<(Address, Read)> = addresses.iter().map(|&address| (address, Read::Everything)).collect();
        let answers = self.read_accounts(at, &reads).await?;
        Ok(addresses
            .iter()
            .zip(answers)
            .map(|(&address, read)| {
                let state = AccountState::new(read.nonce.unwrap_or_default(), read.balance);
                (address, state.with_code(read.code.unwrap_or_default()))
            })
            .collect())
    }

    /// What `reads` ask of each account at block `at`, 100 accounts per batched call.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`], or [`FollowError::Malformed`] for an answer that is not a
    /// quantity (or code) per call.
    pub async fn read_accounts(&self, at: B256, reads: &[(Address, Read)]) -> Result<Vec<AccountRead>, FollowError> {
        in_parallel(reads.chunks(ACCOUNTS_PER_BATCH).map(|chunk| self.read_batch(at, chunk)).collect()).await
    }

    async fn read_batch(&self, at: B256, chunk: &[(Address, Read)]) -> Result<Vec<AccountRead>, FollowError> {
        let block = serde_json::json!({ "blockHash": at });
        let mut batch = BatchRequestBuilder::new();
        for &(address, read) in chunk {
            if read != Read::Balance {
                batch.insert("eth_getTransactionCount", rpc_params![address, &block]).expect("serializable");
            }
            batch.insert("eth_getBalance", rpc_params![address, &block]).expect("serializable");
            if read == Read::Everything {
                batch.insert("eth_getCode", rpc_params![address, &block]).expect("serializable");
            }
        }
        let calls: usize = chunk.iter().map(|(_, read)| read.calls()).sum();
        let answers = self.batch::<serde_json::Value>(batch).await.map_err(|e| self.unreachable(e))?;
        let values: Vec<serde_json::Value> =
            answers.into_ok().map_err(|mut errors| FollowError::Malformed(format!("{:?}", errors.next())))?.collect();
        if values.len() != calls {
            return Err(FollowError::Malformed(format!("{} answers to {calls} calls", values.len())));
        }
        let mut values = values.into_iter();
        let mut next = || values.next().expect("one answer per call, counted above");
        let mut accounts = Vec::with_capacity(chunk.len());
        for &(_, read) in chunk {
            let nonce = if read == Read::Balance { None } else { Some(quantity::<u64>(next(), "nonce")?) };
            let balance = quantity::<U256>(next(), "balance")?;
            let code = if read == Read::Everything {
                let code: Bytes = decode(next(), "code")?;
                Some(AccountCode::from_code(&code))
            } else {
                None
            };
            accounts.push(AccountRead { nonce, balance, code });
        }
        Ok(accounts)
    }
}

/// Runs `batches`, [`CONCURRENT_BATCHES`] at a time, and joins their answers in order.
async fn in_parallel<T>(
    batches: Vec<impl Future<Output = Result<Vec<T>, FollowError>>>,
) -> Result<Vec<T>, FollowError> {
    use futures::{StreamExt as _, TryStreamExt as _};
    let answers: Vec<Vec<T>> = futures::stream::iter(batches).buffered(CONCURRENT_BATCHES).try_collect().await?;
    Ok(answers.into_iter().flatten().collect())
}

fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T, FollowError> {
    serde_json::from_value(value.clone()).map_err(|_| FollowError::Malformed(format!("{what} {value}")))
}

fn quantity<T: TryFrom<U256>>(value: serde_json::Value, what: &str) -> Result<T, FollowError> {
    let wide: U256 = decode(value.clone(), what)?;
    T::try_from(wide).map_err(|_| FollowError::Malformed(format!("{what} {value}")))
}
