//! JSON-RPC in Ethereum's conventions (`eth_`, `txpool_` namespaces) over HTTP and WebSocket,
//! plus `tidepool_` methods for what Ethereum's namespaces cannot say (why a transaction left).
//!
//! Owns: the method table and the mapping of typed errors to JSON-RPC errors. Reads and writes
//! only through the embedding API's handles ([`Submitter`], [`PoolReader`]).

use std::sync::Arc;

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, Bytes, U256};
use jsonrpsee::{
    RpcModule,
    core::SubscriptionError,
    types::{ErrorObjectOwned, Params},
};
use serde_json::{Value, json};

use alloy_eips::BlockNumberOrTag;

use crate::{
    ingest::IngestError,
    pool::{PoolError, PoolEvent, SubPool},
    service::{Origin, PoolAdmin, PoolReader, SubmitError, Submitter},
    state::StateError,
    tx::{PooledTx, TxError},
};

use super::{
    devchain::{DevBlock, DevChain},
    render,
    rpc_server::ClientIp,
};

/// The tip `eth_maxPriorityFeePerGas` suggests: 1 gwei, enough to be mined on the dev chain.
const SUGGESTED_TIP: u128 = 1_000_000_000;
/// Error code for transaction errors (as geth).
const TX_ERROR: i32 = -32000;
/// Error code for "busy, try later" (EIP-1474's "limit exceeded").
const BUSY: i32 = -32005;

/// Where what the pool does not hold comes from: the embedded dev chain, or the followed node.
pub enum ChainSource {
    Dev(Arc<DevChain>),
    Upstream(crate::follow::Upstream),
}

/// The methods answered by the followed node in follow mode (by the dev chain otherwise).
const PASSED_TO_UPSTREAM: &[&str] = &[
    "eth_blockNumber",
    "eth_getBalance",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_estimateGas",
    "eth_createAccessList",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_blobBaseFee",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionReceipt",
    "eth_getLogs",
    "eth_syncing",
];

/// What the RPC methods read and write.
pub struct RpcContext {
    pub submitter: Submitter,
    pub reader: PoolReader,
    /// Operator actions, answered only to clients on this machine (loopback).
    pub admin: PoolAdmin,
    pub chain: ChainSource,
    /// In forward mode: accepted local transactions on their way to the upstream's pool
    /// (bounded; a full queue drops and counts).
    pub forward: Option<tokio::sync::mpsc::Sender<Bytes>>,
    pub chain_id: u64,
    pub metrics: Arc<super::metrics::Metrics>,
    /// Each client's `eth_sendRawTransaction` budget.
    pub budgets: super::rpc_server::ClientBudgets,
    /// Accept legacy transactions without EIP-155 replay protection (`rpc.allow_unprotected_txs`).
    pub allow_unprotected_txs: bool,
}

impl RpcContext {
    /// The dev chain, for the methods registered only when there is one.
    fn dev(&self) -> &DevChain {
        match &self.chain {
            ChainSource::Dev(chain) => chain,
            ChainSource::Upstream(_) => unreachable!("dev-chain methods are registered only on the dev chain"),
        }
    }

    /// `method` with the caller's `params`, answered by the followed node.
    async fn forward(&self, method: &str, params: &Params<'_>) -> Result<Value, ErrorObjectOwned> {
        let ChainSource::Upstream(upstream) = &self.chain else {
            unreachable!("forwarded methods are registered only in follow mode")
        };
        let params: Vec<Value> = match params.as_str() {
            Some(text) => serde_json::from_str(text).map_err(|e| invalid_params_text(&e.to_string()))?,
            None => Vec::new(),
        };
        upstream.forward(method, params).await.map_err(|e| match e {
            jsonrpsee::core::ClientError::Call(e) => ErrorObjectOwned::owned(e.code(), e.message(), e.data()),
            other => ErrorObjectOwned::owned(
                TX_ERROR,
                format!("upstream unreachable: {other}"),
                Some(json!({ "kind": "upstream_unreachable" })),
            ),
        })
    }
}

/// All methods, ready to serve: the pool's own, and the chain's from the dev chain or the
/// followed node.
///
/// # Panics
/// Never: method names are distinct constants.
pub fn module(context: RpcContext) -> RpcModule<RpcContext> {
    let dev = matches!(context.chain, ChainSource::Dev(_));
    let mut module = RpcModule::new(context);
    if dev {
        register_dev_chain(&mut module);
    } else {
        for &method in PASSED_TO_UPSTREAM {
            module
                .register_async_method(method, move |params, ctx, _| async move { ctx.forward(method, &params).await })
                .expect("unique");
        }
    }
    module
        .register_async_method("eth_sendRawTransaction", |params, ctx, extensions| async move {
            let raw: Bytes = params.one().map_err(invalid_params)?;
            ctx.metrics.rpc_submissions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(&ClientIp(client)) = extensions.get::<ClientIp>()
                && !ctx.budgets.try_take(client, std::time::Instant::now())
            {
                ctx.metrics.rpc_rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let data =
                    json!({ "kind": "rate_limited", "detail": "this client's eth_sendRawTransaction budget is spent" });
                return Err(ErrorObjectOwned::owned(BUSY, "rate limited", Some(data)));
            }
            if !ctx.allow_unprotected_txs && unprotected(&raw) {
                let data = json!({ "kind": TxError::UnprotectedNotAllowed.kind(), "detail": "a legacy transaction without a chain id (pre-EIP-155) is valid on every chain; set rpc.allow_unprotected_txs to accept it" });
                return Err(ErrorObjectOwned::owned(
                    TX_ERROR,
                    "only replay-protected (EIP-155) transactions allowed over RPC",
                    Some(data),
                ));
            }
            let added = ctx.submitter.submit(raw.clone(), Origin::Local).await.map_err(|e| rpc_error(&e))?;
            if let Some(forward) = &ctx.forward
                && forward.try_send(raw).is_err()
            {
                ctx.metrics.forward_dropped.inc();
            }
            Ok::<B256, ErrorObjectOwned>(added.hash)
        })
        .expect("unique");
    module.register_method("eth_chainId", |_, ctx, _| quantity(ctx.chain_id)).expect("unique");
    module
        .register_async_method("eth_getTransactionCount", |params, ctx, _| async move {
            let (address, tag) = address_and_tag(&params)?;
            let nonce = if tag == "pending" {
                ctx.reader
                    .pending_nonce(&address)
                    .await
                    .map_err(|e| rpc_error(&SubmitError::Ingest(IngestError::State(e))))?
            } else {
                match &ctx.chain {
                    ChainSource::Dev(chain) => chain.state().get(&address).nonce,
                    ChainSource::Upstream(_) => return ctx.forward("eth_getTransactionCount", &params).await,
                }
            };
            Ok::<_, ErrorObjectOwned>(Value::String(quantity(nonce)))
        })
        .expect("unique");
    module
        .register_async_method("eth_getTransactionByHash", |params, ctx, _| async move {
            let hash: B256 = params.one().map_err(invalid_params)?;
            if let Some(info) = ctx.reader.get(&hash) {
                return Ok(if public(&info.tx) { to_json(&render::pooled(&info.tx)) } else { Value::Null });
            }
            match &ctx.chain {
                ChainSource::Dev(chain) => Ok::<_, ErrorObjectOwned>(
                    chain.mined(&hash).map_or(Value::Null, |(block, index)| to_json(&render::mined(&block, index))),
                ),
                ChainSource::Upstream(_) => ctx.forward("eth_getTransactionByHash", &params).await,
            }
        })
        .expect("unique");
    module
        .register_async_method("eth_getRawTransactionByHash", |params, ctx, _| async move {
            let hash: B256 = params.one().map_err(invalid_params)?;
            if let Some(info) = ctx.reader.get(&hash) {
                return Ok(public(&info.tx)
                    .then(|| info.tx.encoded().clone())
                    .map_or(Value::Null, |raw| to_json(&raw)));
            }
            match &ctx.chain {
                ChainSource::Dev(chain) => Ok::<_, ErrorObjectOwned>(
                    chain.mined(&hash).map_or(Value::Null, |(block, index)| to_json(block.txs[index].tx.encoded())),
                ),
                ChainSource::Upstream(_) => ctx.forward("eth_getRawTransactionByHash", &params).await,
            }
        })
        .expect("unique");
    module.register_method("eth_accounts", |_, _, _| Vec::<Address>::new()).expect("unique");
    module.register_method("net_version", |_, ctx, _| ctx.chain_id.to_string()).expect("unique");
    module.register_method("net_listening", |_, _, _| true).expect("unique");
    module
        .register_method("web3_clientVersion", |_, _, _| format!("tidepool/v{}", env!("CARGO_PKG_VERSION")))
        .expect("unique");
    module
        .register_method("txpool_status", |_, ctx, _| {
            let sizes = ctx.reader.sizes();
            json!({
                "pending": quantity((sizes.pending.count + sizes.basefee.count) as u64),
                "queued": quantity(sizes.queued.count as u64),
            })
        })
        .expect("unique");
    module
        .register_async_method("txpool_content", |params, ctx, _| async move {
            let page = Page::of(&params)?;
            // Rendering a whole pool is CPU work: off the async threads.
            tokio::task::spawn_blocking(move || content(&ctx, page, pooled_json)).await.map_err(internal)
        })
        .expect("unique");
    module
        .register_method("txpool_contentFrom", |params, ctx, _| {
            let address: Address = params.one().map_err(invalid_params)?;
            let content = ctx.reader.content(Some(&address));
            let side = |txs: Option<&std::collections::BTreeMap<u64, PooledTx>>| {
                txs.map_or_else(
                    || json!({}),
                    |txs| {
                        txs.iter()
                            .filter(|(_, tx)| public(tx))
                            .map(|(n, tx)| (n.to_string(), pooled_json(tx)))
                            .collect()
                    },
                )
            };
            Ok::<_, ErrorObjectOwned>(json!({
                "pending": side(content.pending.get(&address)),
                "queued": side(content.queued.get(&address)),
            }))
        })
        .expect("unique");
    module
        .register_async_method("txpool_inspect", |params, ctx, _| async move {
            let page = Page::of(&params)?;
            tokio::task::spawn_blocking(move || content(&ctx, page, inspect)).await.map_err(internal)
        })
        .expect("unique");
    module
        .register_method("tidepool_setMinTip", |params, ctx, extensions| {
            let ClientIp(client) = *extensions.get::<ClientIp>().expect("the server tags every call with its client");
            if !client.is_loopback() {
                let data =
                    json!({ "kind": "admin_not_loopback", "detail": "admin methods are answered only on loopback" });
                return Err(ErrorObjectOwned::owned(-32601, "method not available from this address", Some(data)));
            }
            let min: U256 = params.one().map_err(invalid_params)?;
            let min = u128::try_from(min).map_err(|_| invalid_params_text("a minimum tip below 2^128 wei"))?;
            let previous = ctx.admin.min_tip();
            let removed = ctx.admin.set_min_tip(min);
            Ok::<_, ErrorObjectOwned>(
                json!({ "previous": quantity(previous), "min": quantity(min), "removed": removed }),
            )
        })
        .expect("unique");
    module
        .register_method("engine_getBlobsV1", |params, ctx, _| {
            let hashes = blob_request(&params)?;
            Ok::<_, ErrorObjectOwned>(hashes.iter().map(|hash| blob_v1(&ctx.reader, hash)).collect::<Vec<_>>())
        })
        .expect("unique");
    module
        .register_method("engine_getBlobsV2", |params, ctx, _| {
            let hashes = blob_request(&params)?;
            // All or nothing, as the Engine API's V2: a partial answer is no use to a proposer.
            let blobs: Option<Vec<Value>> = hashes.iter().map(|hash| blob_v2(&ctx.reader, hash)).collect();
            Ok::<_, ErrorObjectOwned>(blobs)
        })
        .expect("unique");
    module
        .register_method("tidepool_deadLetter", |params, ctx, _| {
            let hash: B256 = params.one().map_err(invalid_params)?;
            Ok::<_, ErrorObjectOwned>(ctx.reader.dead_letter(&hash))
        })
        .expect("unique");
    module
        .register_method("tidepool_deadLettersFrom", |params, ctx, _| {
            let sender: Address = params.one().map_err(invalid_params)?;
            Ok::<_, ErrorObjectOwned>(ctx.reader.dead_letters_from(&sender))
        })
        .expect("unique");
    module
        .register_subscription(
            "eth_subscribe",
            "eth_subscription",
            "eth_unsubscribe",
            |params, pending, ctx, _| async move {
                let mut seq = params.sequence();
                let (kind, full) = match (seq.next::<String>(), seq.optional_next::<bool>()) {
                    (Ok(kind), Ok(full)) => (kind, full.unwrap_or(false)),
                    (Err(e), _) | (_, Err(e)) => {
                        pending.reject(invalid_params(e)).await;
                        return Ok(());
                    }
                };
                if kind != "newPendingTransactions" {
                    pending
                        .reject(ErrorObjectOwned::owned(-32602, format!("unsupported subscription {kind}"), None::<()>))
                        .await;
                    return Ok(());
                }
                let mut events = ctx.reader.subscribe();
                let sink = pending.accept().await.map_err(|e| SubscriptionError::from(e.to_string()))?;
                while let Some(event) = events.recv().await {
                    if events.missed() > 0 {
                        // Told, not skipped: the subscription ends with what was missed.
                        return Err(SubscriptionError::from(format!(
                            "subscriber fell behind: {} pool events missed; subscribe again and read txpool_content",
                            events.missed()
                        )));
                    }
                    let hash = match event {
                        PoolEvent::Added { hash, subpool: SubPool::Pending, .. }
                        | PoolEvent::Promoted { hash, to: SubPool::Pending, .. } => hash,
                        _ => continue,
                    };
                    let message = if full {
                        // Gone or private meanwhile: nothing to show.
                        let Some(info) = ctx.reader.get(&hash).filter(|info| public(&info.tx)) else { continue };
                        serde_json::value::to_raw_value(&render::pooled(&info.tx))
                    } else {
                        serde_json::value::to_raw_value(&hash)
                    }
                    .map_err(|e| SubscriptionError::from(e.to_string()))?;
                    if sink.send(message).await.is_err() {
                        break;
                    }
                }
                Ok::<(), SubscriptionError>(())
            },
        )
        .expect("unique");
    module
}

/// Most versioned hashes one `engine_getBlobs` call may ask for (the Engine API's limit).
const MAX_BLOBS_PER_REQUEST: usize = 128;

/// The versioned hashes of an `engine_getBlobs` call, at most [`MAX_BLOBS_PER_REQUEST`].
fn blob_request(params: &Params<'_>) -> Result<Vec<B256>, ErrorObjectOwned> {
    let hashes: Vec<B256> = params.one().map_err(invalid_params)?;
    if hashes.len() > MAX_BLOBS_PER_REQUEST {
        // The Engine API's "Too large request".
        let message = format!("{} versioned hashes requested; at most {MAX_BLOBS_PER_REQUEST}", hashes.len());
        return Err(ErrorObjectOwned::owned(-38004, message, Some(json!({ "kind": "too_large_request" }))));
    }
    Ok(hashes)
}

/// `engine_getBlobsV1`'s entry: the blob and its proof, from a version-0 sidecar (one proof per
/// blob); null for an unknown hash or a blob held with cell proofs.
fn blob_v1(reader: &PoolReader, versioned_hash: &B256) -> Value {
    match reader.blob(versioned_hash) {
        Some((sidecar, index)) => match sidecar.as_eip4844() {
            Some(s) => json!({ "blob": s.blobs[index], "proof": s.proofs[index] }),
            None => Value::Null,
        },
        None => Value::Null,
    }
}

/// `engine_getBlobsV2`'s entry: the blob and its 128 cell proofs, from a version-1 sidecar.
fn blob_v2(reader: &PoolReader, versioned_hash: &B256) -> Option<Value> {
    let (sidecar, index) = reader.blob(versioned_hash)?;
    let s = sidecar.as_eip7594()?;
    let cells = alloy_eips::eip7594::CELLS_PER_EXT_BLOB;
    Some(json!({ "blob": s.blobs[index], "proofs": s.cell_proofs[index * cells..(index + 1) * cells] }))
}

/// The chain methods of the embedded dev chain (in follow mode the followed node answers them).
fn register_dev_chain(module: &mut RpcModule<RpcContext>) {
    module.register_method("eth_blockNumber", |_, ctx, _| quantity(ctx.dev().head().block)).expect("unique");
    module
        .register_method("eth_getBalance", |params, ctx, _| {
            let (address, _) = address_and_tag(&params)?;
            Ok::<_, ErrorObjectOwned>(format!("{:#x}", ctx.dev().state().get(&address).balance))
        })
        .expect("unique");
    module
        .register_method("eth_getTransactionReceipt", |params, ctx, _| {
            let hash: B256 = params.one().map_err(invalid_params)?;
            Ok::<_, ErrorObjectOwned>(
                ctx.dev().mined(&hash).map_or(Value::Null, |(block, index)| to_json(&render::receipt(&block, index))),
            )
        })
        .expect("unique");
    module
        .register_method("eth_getBlockByNumber", |params, ctx, _| {
            let mut seq = params.sequence();
            let tag: BlockNumberOrTag = seq.next().map_err(invalid_params)?;
            let full: Option<bool> = seq.optional_next().map_err(invalid_params)?;
            Ok::<_, ErrorObjectOwned>(
                block_at(ctx, tag).map_or(Value::Null, |block| to_json(&render::block(&block, full.unwrap_or(false)))),
            )
        })
        .expect("unique");
    module
        .register_method("eth_getBlockByHash", |params, ctx, _| {
            let mut seq = params.sequence();
            let hash: B256 = seq.next().map_err(invalid_params)?;
            let full: Option<bool> = seq.optional_next().map_err(invalid_params)?;
            let block = ctx.dev().block_by_hash(&hash);
            Ok::<_, ErrorObjectOwned>(
                block.map_or(Value::Null, |block| to_json(&render::block(&block, full.unwrap_or(false)))),
            )
        })
        .expect("unique");
    module
        .register_method("eth_getBlockTransactionCountByNumber", |params, ctx, _| {
            let tag: BlockNumberOrTag = params.one().map_err(invalid_params)?;
            Ok::<_, ErrorObjectOwned>(block_at(ctx, tag).map(|block| quantity(block.txs.len() as u64)))
        })
        .expect("unique");
    module
        .register_method("eth_getBlockTransactionCountByHash", |params, ctx, _| {
            let hash: B256 = params.one().map_err(invalid_params)?;
            Ok::<_, ErrorObjectOwned>(ctx.dev().block_by_hash(&hash).map(|block| quantity(block.txs.len() as u64)))
        })
        .expect("unique");
    module
        .register_method("eth_feeHistory", |params, ctx, _| super::fees::fee_history(ctx.dev(), &params))
        .expect("unique");
    module
        .register_method("eth_estimateGas", |params, ctx, _| super::fees::estimate_gas(ctx.dev(), &params))
        .expect("unique");
    module
        .register_method("eth_createAccessList", |params, ctx, _| super::fees::create_access_list(ctx.dev(), &params))
        .expect("unique");
    module.register_method("eth_call", |_, _, _| Err::<Value, _>(not_an_evm("eth_call"))).expect("unique");
    module
        .register_method("eth_getCode", |params, _, _| {
            let (_, _) = address_and_tag(&params)?;
            // The dev chain deploys nothing: every account is an externally owned one.
            Ok::<_, ErrorObjectOwned>(Bytes::new())
        })
        .expect("unique");
    module.register_method("eth_syncing", |_, _, _| false).expect("unique");
    module
        .register_method("eth_gasPrice", |_, ctx, _| quantity(ctx.dev().head().base_fee + SUGGESTED_TIP))
        .expect("unique");
    module.register_method("eth_blobBaseFee", |_, ctx, _| quantity(ctx.dev().head().blob_base_fee)).expect("unique");
    module.register_method("eth_maxPriorityFeePerGas", |_, _, _| quantity(SUGGESTED_TIP)).expect("unique");
}

/// A page of `txpool_content` / `txpool_inspect`: `[limit, after]`, both optional. Without a
/// limit the whole pool comes back in geth's shape (which a full pool can push past the response
/// size limit); with one, at most `limit` senders after `after`, in address order, and `next`:
/// the `after` of the following page, or `null` after the last.
#[derive(Debug, Clone, Copy)]
struct Page {
    limit: Option<usize>,
    after: Option<Address>,
}

impl Page {
    fn of(params: &Params<'_>) -> Result<Self, ErrorObjectOwned> {
        let mut seq = params.sequence();
        let limit: Option<u64> = seq.optional_next().map_err(invalid_params)?;
        let after: Option<Address> = seq.optional_next().map_err(invalid_params)?;
        let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX).max(1));
        Ok(Self { limit, after })
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32603, format!("internal error: {e}"), None::<()>)
}

fn content(ctx: &RpcContext, page: Page, render: fn(&PooledTx) -> Value) -> Value {
    let mut content = ctx.reader.content(None);
    let mut next = None;
    if let Some(limit) = page.limit {
        let mut senders: Vec<Address> = content.pending.keys().chain(content.queued.keys()).copied().collect();
        senders.sort_unstable();
        senders.dedup();
        let from = page.after.map_or(0, |after| senders.partition_point(|s| *s <= after));
        let shown = &senders[from..(from + limit).min(senders.len())];
        if from + limit < senders.len() {
            next = shown.last().copied();
        }
        let keep: std::collections::BTreeSet<Address> = shown.iter().copied().collect();
        content.pending.retain(|a, _| keep.contains(a));
        content.queued.retain(|a, _| keep.contains(a));
    }
    let side = |map: &std::collections::BTreeMap<Address, std::collections::BTreeMap<u64, PooledTx>>| -> Value {
        map.iter()
            .map(|(address, txs)| {
                let by_nonce: serde_json::Map<String, Value> =
                    txs.iter().filter(|(_, tx)| public(tx)).map(|(n, tx)| (n.to_string(), render(tx))).collect();
                (address.to_checksum(None), Value::Object(by_nonce))
            })
            .filter(|(_, by_nonce)| !by_nonce.as_object().is_some_and(serde_json::Map::is_empty))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    match page.limit {
        None => json!({ "pending": side(&content.pending), "queued": side(&content.queued) }),
        Some(_) => json!({ "pending": side(&content.pending), "queued": side(&content.queued), "next": next }),
    }
}

/// Whether JSON-RPC shows a pooled transaction: never a private one (private order flow is the
/// submitter's business; anyone who can reach the RPC must not read it). Counts include them.
fn public(tx: &PooledTx) -> bool {
    tx.origin() != Origin::Private
}

fn quantity(value: impl Into<u128>) -> String {
    format!("{:#x}", value.into())
}

fn address_and_tag(params: &Params<'_>) -> Result<(Address, String), ErrorObjectOwned> {
    let mut seq = params.sequence();
    let address: Address = seq.next().map_err(invalid_params)?;
    let tag: Option<String> = seq.optional_next().map_err(invalid_params)?;
    Ok((address, tag.unwrap_or_else(|| "latest".into())))
}

/// A parameter error in plain words: what the decoder said, not a dump of its error object.
pub(super) fn invalid_params(e: ErrorObjectOwned) -> ErrorObjectOwned {
    let detail = e
        .data()
        .and_then(|data| serde_json::from_str::<String>(data.get()).ok())
        .unwrap_or_else(|| e.message().to_owned());
    invalid_params_text(&detail)
}

pub(super) fn invalid_params_text(detail: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, format!("invalid params: {detail}"), None::<()>)
}

/// What a method that needs an EVM answers on the dev chain.
pub fn not_an_evm(what: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        TX_ERROR,
        format!(
            "{what} needs an EVM: the dev chain applies value transfers only; run beside a real node (follower mode) for contracts"
        ),
        Some(json!({ "kind": "not_an_evm" })),
    )
}

/// The kept block a tag names: `latest`, `pending`, `safe` and `finalized` are the head (the dev
/// chain is final at once and has no pending block), `earliest` is genesis.
fn block_at(ctx: &RpcContext, tag: BlockNumberOrTag) -> Option<std::sync::Arc<DevBlock>> {
    match tag {
        BlockNumberOrTag::Number(number) => ctx.dev().block(number),
        BlockNumberOrTag::Earliest => ctx.dev().block(0),
        _ => Some(ctx.dev().latest()),
    }
}

/// A legacy transaction without a chain id (undecodable bytes are left to validation).
fn unprotected(raw: &[u8]) -> bool {
    use alloy_eips::eip2718::Decodable2718 as _;
    matches!(
        crate::tx::Envelope::decode_2718(&mut &raw[..]),
        Ok(crate::tx::Envelope::Legacy(signed)) if signed.tx().chain_id.is_none()
    )
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("RPC types serialize")
}

fn pooled_json(tx: &PooledTx) -> Value {
    to_json(&render::pooled(tx))
}

/// geth's messages for the errors clients match on; the stable kind in `data.kind`.
pub fn rpc_error(error: &SubmitError) -> ErrorObjectOwned {
    let SubmitError::Ingest(ingest) = error else {
        return ErrorObjectOwned::owned(TX_ERROR, error.to_string(), Some(json!({ "kind": error.kind() })));
    };
    let message = match ingest {
        IngestError::Busy(_) => "busy: the validation queue is full, try again later".to_owned(),
        IngestError::State(StateError::Busy { .. }) => "busy: too many senders wait for their state".to_owned(),
        IngestError::State(e) => e.to_string(),
        IngestError::Invalid(e) => match e {
            TxError::IntrinsicGasTooLow { .. } => "intrinsic gas too low".into(),
            TxError::FloorGasTooLow { .. } => "insufficient gas for floor data gas cost".into(),
            TxError::GasLimitAboveBlock { .. } => "exceeds block gas limit".into(),
            TxError::GasLimitAboveCap { .. } => "transaction gas limit too high".into(),
            TxError::Oversized { .. } => "oversized data".into(),
            TxError::TipAboveFeeCap { .. } => "max priority fee per gas higher than max fee per gas".into(),
            TxError::InvalidSignature | TxError::HighS => "invalid sender".into(),
            TxError::WrongChainId { .. } => "invalid chain id".into(),
            TxError::TipBelowMinimum { .. } => "transaction underpriced".into(),
            TxError::TypeNotSupported(_) | TxError::TypeNotEnabled { .. } => "transaction type not supported".into(),
            TxError::InitcodeTooLarge { .. } => "max initcode size exceeded".into(),
            other => format!("invalid transaction: {other}"),
        },
        IngestError::Pool(e) => match e {
            PoolError::AlreadyKnown(_) => "already known".into(),
            PoolError::ReplacementUnderpriced { .. } | PoolError::BlobReplacementUnderpriced { .. } => {
                "replacement transaction underpriced".into()
            }
            PoolError::Underpriced { .. } | PoolError::TipBelowMinimum { .. } => "transaction underpriced".into(),
            PoolError::BlobTypeConflict { .. } => "address already reserved".into(),
            PoolError::BlobNonceGap { .. } => "nonce too high".into(),
            PoolError::AccountFull { .. } => "account limit exceeded".into(),
            PoolError::SenderNotEoa(_) => "sender not an eoa".into(),
            PoolError::DelegatedInFlight { .. } => "in-flight transaction limit reached for delegated accounts".into(),
            PoolError::AuthorityReserved(_) => "authority already reserved".into(),
            PoolError::NonceTooLow { .. } => "nonce too low".into(),
            PoolError::InsufficientFunds { .. } => "insufficient funds for gas * price + value".into(),
            other => other.to_string(),
        },
    };
    let code = if ingest.is_busy() { BUSY } else { TX_ERROR };
    ErrorObjectOwned::owned(code, message, Some(json!({ "kind": error.kind(), "detail": error.to_string() })))
}

/// geth's `txpool_inspect` one-line summary.
fn inspect(pooled: &PooledTx) -> Value {
    let tx = pooled.decode();
    let to = tx.to().map_or_else(|| "contract creation".to_owned(), |a| a.to_checksum(None));
    Value::String(format!(
        "{to}: {} wei + {} gas × {} wei",
        U256::from(tx.value()),
        pooled.gas_limit(),
        pooled.max_fee_per_gas()
    ))
}
