//! A block builder's process beside an execution node it does not control: Tidepool follows the
//! node over JSON-RPC (its state, heads and reorgs feed the pool), orders what arrives, and the
//! builder pulls best-first batches after every head. Here the order flow is one transaction
//! sent to both Tidepool and the node, so the node's next block settles it in Tidepool.
//!
//! ```text
//! anvil --port 8601 &
//! cargo run --example follow_builder -- --upstream http://127.0.0.1:8601 --chain-id 31337 \
//!     --key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 [--smoke]
//! ```
use std::time::Duration;

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, TxKind, U256};
use jsonrpsee::{core::client::ClientT, http_client::HttpClientBuilder, rpc_params};
use tidepool::{
    Origin, Tidepool, TidepoolConfig,
    follow::{Follow, FollowConfig},
    pool::{PoolEvent, RemovalReason},
    tx::sign::Signer,
    validate::ValidationConfig,
};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let upstream = arg("--upstream").unwrap_or_else(|| "http://127.0.0.1:8545".into());
    let chain_id: u64 = arg("--chain-id").map_or(Ok(31337), |id| id.parse())?;
    let signer =
        Signer::from_bytes(arg("--key").ok_or("--key: a funded private key on the upstream")?.parse::<B256>()?)?;

    // Follow first: the pool starts at the upstream's head, on its state.
    let follow = Follow::connect(FollowConfig::new(&upstream, chain_id)).await?;
    let tidepool = Tidepool::builder(follow.state(), follow.head())
        .config(TidepoolConfig {
            validation: ValidationConfig { chain_id, ..Default::default() },
            ..Default::default()
        })
        .start()
        .await?;
    tokio::spawn(follow.run(tidepool.chain()));
    println!("following {upstream} from block {}", tidepool.chain().head().block);

    // Order flow: one transfer, into Tidepool and to the node's own pool.
    let node = HttpClientBuilder::default().build(&upstream)?;
    let nonce: U256 = node.request("eth_getTransactionCount", rpc_params![signer.address(), "latest"]).await?;
    let raw = signer.sign_tx(TxEip1559 {
        chain_id,
        nonce: nonce.to(),
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::with_last_byte(0xaa)),
        value: U256::from(1),
        input: Default::default(),
        access_list: Default::default(),
    });
    let mut events = tidepool.reader().subscribe();
    let added = tidepool.submitter().submit(raw.clone(), Origin::External).await?;
    let batch = tidepool.builder_feed().next_block(30_000_000, 1 << 20);
    println!("pooled {}; the builder's next batch holds {} transaction(s)", added.hash, batch.txs.len());
    let _: B256 = node.request("eth_sendRawTransaction", rpc_params![raw]).await?;

    // The node mines it; the follower applies that block, and the pool lets it go as mined.
    let mined = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.recv().await {
            if let PoolEvent::Removed { hash, reason: RemovalReason::Mined { block }, .. } = event
                && hash == added.hash
            {
                return Some(block);
            }
        }
        None
    })
    .await?
    .ok_or("the pool is gone")?;
    println!("mined in block {mined}; pool now {:?}", tidepool.reader().sizes().pending);
    if smoke {
        println!("smoke: ok");
    }
    Ok(())
}
