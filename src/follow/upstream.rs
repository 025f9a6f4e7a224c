//! The upstream execution node, over standard `eth_` JSON-RPC only (geth, reth, Nethermind and
//! anvil answer alike): chain id, blocks with their transactions, and account state (nonce,
//! balance, code) in batches at a block hash.

use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U256};
use jsonrpsee::{
    core::{client::ClientT, params::BatchRequestBuilder},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};

use super::FollowError;
use crate::state::{AccountCode, AccountState};

/// A block as the upstream sends it, with full transactions.
pub type UpstreamBlock = alloy_rpc_types_eth::Block;

/// Accounts per batched call: 100 accounts (300 calls) cost about a millisecond on loopback.
pub const ACCOUNTS_PER_BATCH: usize = 100;

/// A JSON-RPC connection to the upstream node; every call bounded by the timeout.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: HttpClient,
    url: String,
}

impl Upstream {
    /// A client for `url` (`http://…`); nothing is sent yet.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`] for a URL the client cannot use.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, FollowError> {
        let client = HttpClientBuilder::default()
            .request_timeout(timeout)
            .max_response_size(64 << 20)
            .build(url)
            .map_err(|e| FollowError::Unreachable(format!("{url}: {e}")))?;
        Ok(Self { client, url: url.to_owned() })
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
        let id: U256 = self.client.request("eth_chainId", rpc_params![]).await.map_err(|e| self.unreachable(e))?;
        u64::try_from(id).map_err(|_| FollowError::Malformed(format!("chain id {id}")))
    }

    /// The latest block, with its transactions.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`], or [`FollowError::Malformed`] when there is no latest block.
    pub async fn latest(&self) -> Result<UpstreamBlock, FollowError> {
        let block: Option<UpstreamBlock> = self
            .client
            .request("eth_getBlockByNumber", rpc_params!["latest", true])
            .await
            .map_err(|e| self.unreachable(e))?;
        block.ok_or_else(|| FollowError::Malformed("no latest block".into()))
    }

    /// A block by hash, with its transactions; `None` when the node does not know it.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`].
    pub async fn block(&self, hash: B256) -> Result<Option<UpstreamBlock>, FollowError> {
        self.client.request("eth_getBlockByHash", rpc_params![hash, true]).await.map_err(|e| self.unreachable(e))
    }

    /// Any method, passed through as it is: for a node that answers what the pool cannot.
    ///
    /// # Errors
    /// The upstream's own error, or a transport error.
    pub async fn forward(
        &self,
        method: &str,
        params: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value, jsonrpsee::core::ClientError> {
        let mut array = jsonrpsee::core::params::ArrayParams::new();
        for param in params {
            array.insert(param).expect("JSON values serialize");
        }
        self.client.request(method, array).await
    }

    /// Nonce, balance and code of each account at block `at`, 100 accounts per batched call.
    ///
    /// # Errors
    /// [`FollowError::Unreachable`], or [`FollowError::Malformed`] for an answer that is not a
    /// quantity (or code) per call.
    pub async fn accounts_at(
        &self,
        at: B256,
        addresses: &[Address],
    ) -> Result<Vec<(Address, AccountState)>, FollowError> {
        let block = serde_json::json!({ "blockHash": at });
        let mut accounts = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunks(ACCOUNTS_PER_BATCH) {
            let mut batch = BatchRequestBuilder::new();
            for address in chunk {
                batch.insert("eth_getTransactionCount", rpc_params![address, &block]).expect("serializable");
                batch.insert("eth_getBalance", rpc_params![address, &block]).expect("serializable");
                batch.insert("eth_getCode", rpc_params![address, &block]).expect("serializable");
            }
            let answers = self.client.batch_request::<serde_json::Value>(batch).await.map_err(|e| self.unreachable(e))?;
            let values: Vec<serde_json::Value> = answers
                .into_ok()
                .map_err(|mut errors| FollowError::Malformed(format!("{:?}", errors.next())))?
                .collect();
            if values.len() != chunk.len() * 3 {
                return Err(FollowError::Malformed(format!("{} answers to {} calls", values.len(), chunk.len() * 3)));
            }
            for (address, answer) in chunk.iter().zip(values.chunks_exact(3)) {
                let malformed = |what: &str, value: &serde_json::Value| FollowError::Malformed(format!("{what} {value}"));
                let nonce: U256 = serde_json::from_value(answer[0].clone()).map_err(|_| malformed("nonce", &answer[0]))?;
                let nonce = u64::try_from(nonce).map_err(|_| malformed("nonce", &answer[0]))?;
                let balance: U256 = serde_json::from_value(answer[1].clone()).map_err(|_| malformed("balance", &answer[1]))?;
                let code: Bytes = serde_json::from_value(answer[2].clone()).map_err(|_| malformed("code", &answer[2]))?;
                accounts.push((*address, AccountState::new(nonce, balance).with_code(AccountCode::from_code(&code))));
            }
        }
        Ok(accounts)
    }
}
