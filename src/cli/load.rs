//! `tidepool load`: signs transfers (or blob transactions, `--blobs`) for N accounts and
//! submits them over JSON-RPC at a rate, priced as a wallet prices them: from the node's fee
//! suggestions, refreshed as blocks come.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy_consensus::{TxEip1559, TxEip4844};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use indicatif::{ProgressBar, ProgressStyle};
use jsonrpsee::{
    core::{ClientError, client::ClientT},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use tidepool::tx::{blob::BlobSidecar, generate::blob_sidecar, sign::Signer};

/// How often the fee suggestion is refreshed: a few times per block at the dev chain's default.
const FEE_REFRESH: Duration = Duration::from_millis(500);

/// Distinct sidecars a blob load cycles through: computing cell proofs takes tens of
/// milliseconds per blob, so they are made once, at start (transactions may share blobs).
const SIDECARS: u64 = 8;

/// Submissions in flight at once: enough to saturate a local node, bounded so a slow node
/// slows the generator instead of growing its memory.
const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// JSON-RPC endpoint of the node.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Sending accounts (dev keys 0..N unless --keys is given).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Target submissions per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// File with one hex private key per line, instead of dev keys.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Index of the first dev key (to run several generators side by side).
    #[arg(long, default_value_t = 0)]
    first_account: u64,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    quiet: bool,
    /// Send blob transactions carrying this many blobs each (1-6), in their network form, priced
    /// at twice the node's blob base fee, instead of transfers.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6))]
    blobs: Option<u8>,
    /// The sidecar form for --blobs: 1 (EIP-7594 cell proofs, from Osaka) or 0 (one proof per
    /// blob, before Osaka).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    blob_version: u8,
    /// Append the hash of every acknowledged submission to FILE, one per line, as each
    /// acknowledgement arrives (for crash tests: what the node promised to keep).
    #[arg(long, value_name = "FILE")]
    acked: Option<PathBuf>,
}

pub fn run(args: LoadArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(load(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidepool load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn signers(args: &LoadArgs) -> Result<Vec<Signer>, String> {
    let Some(path) = &args.keys else {
        return Ok((args.first_account..args.first_account + args.accounts as u64).map(Signer::dev).collect());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(args.accounts)
        .map(|line| {
            let secret: B256 = line.trim().parse().map_err(|e| format!("bad key: {e}"))?;
            Signer::from_bytes(secret).map_err(|e| format!("bad key: {e}"))
        })
        .collect()
}

async fn load(args: LoadArgs) -> Result<(), String> {
    if !(args.rate > 0.0 && args.duration > 0.0 && args.accounts > 0) {
        return Err("--rate, --duration and --accounts must be positive".into());
    }
    let client = HttpClientBuilder::default().build(&args.rpc).map_err(|e| e.to_string())?;
    let call_err = |e: ClientError| format!("{}: {e}", args.rpc);
    let chain_id: U256 = client.request("eth_chainId", rpc_params![]).await.map_err(call_err)?;
    let fees = tokio::sync::watch::channel(suggested_fees(&client).await.map_err(call_err)?);
    let signers = signers(&args)?;
    let mut nonces = Vec::with_capacity(signers.len());
    for signer in &signers {
        let nonce: U256 = client
            .request("eth_getTransactionCount", rpc_params![signer.address(), "pending"])
            .await
            .map_err(call_err)?;
        nonces.push(nonce.to::<u64>());
    }
    let sidecars: Vec<BlobSidecar> = match args.blobs {
        Some(blobs) => (0..SIDECARS).map(|seed| blob_sidecar(usize::from(blobs), args.blob_version, seed)).collect(),
        None => Vec::new(),
    };
    let refresher = tokio::spawn(refresh_fees(client.clone(), fees.0));
    let total = (args.rate * args.duration).ceil() as u64;
    let progress = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let acked = match &args.acked {
        Some(path) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ))),
        None => None,
    };
    let outcomes = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        ticker.tick().await;
        let account = (i as usize) % signers.len();
        let Fees { fee_cap, tip, blob_fee_cap } = *fees.1.borrow();
        let (chain_id, nonce, to) = (chain_id.to::<u64>(), nonces[account], Address::with_last_byte(0xee));
        nonces[account] += 1;
        let raw = if sidecars.is_empty() {
            signers[account].sign_tx(TxEip1559 {
                chain_id,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: fee_cap,
                max_priority_fee_per_gas: tip,
                to: TxKind::Call(to),
                value: U256::from(1),
                input: Bytes::new(),
                access_list: Default::default(),
            })
        } else {
            let tx = TxEip4844 {
                chain_id,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: fee_cap,
                max_priority_fee_per_gas: tip,
                to,
                value: U256::from(1),
                max_fee_per_blob_gas: blob_fee_cap,
                ..Default::default()
            };
            signers[account].sign_blob_tx(tx, &sidecars[i as usize % sidecars.len()])
        };
        let permit = Arc::clone(&in_flight).acquire_owned().await.expect("semaphore open");
        let (client, outcomes, progress, acked) = (client.clone(), outcomes.clone(), progress.clone(), acked.clone());
        tokio::spawn(async move {
            let (kind, hash) = submit(&client, raw).await;
            if let (Some(file), Some(hash)) = (acked, hash) {
                use std::io::Write as _;
                let mut file = file.lock().expect("acked file");
                if let Err(e) = writeln!(file, "{hash:#x}") {
                    eprintln!("tidepool load: cannot record an acknowledgement: {e}");
                }
            }
            *outcomes.lock().expect("outcomes").entry(kind).or_default() += 1;
            progress.inc(1);
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
    refresher.abort();
    progress.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    let outcomes = outcomes.lock().expect("outcomes").clone();
    let accepted = outcomes.get("accepted").copied().unwrap_or(0);
    println!(
        "sent {total} in {elapsed:.2}s: {:.1} tx/s submitted, {:.1} tx/s accepted (target {:.1})",
        total as f64 / elapsed,
        accepted as f64 / elapsed,
        args.rate
    );
    if let Some(limited) = outcomes.get("rate_limited") {
        println!(
            "the node's per-client budget limited this run: {limited} of {total} refused as rate_limited \
             (raise [rpc] send_raw_per_client on the node, or run generators from several addresses)"
        );
    }
    println!("{}", serde_json::json!({ "sent": total, "seconds": elapsed, "outcomes": outcomes }));
    Ok(())
}

/// What a transaction offers: EIP-1559 fee cap and tip, and a blob transaction's blob fee cap.
#[derive(Debug, Clone, Copy)]
struct Fees {
    fee_cap: u128,
    tip: u128,
    blob_fee_cap: u128,
}

/// A wallet's pricing: the tip is the median tip of the last blocks (at least the node's own
/// suggestion), the fee cap twice the next block's base fee plus the tip, so the offer survives
/// several full blocks of base-fee growth; the blob fee cap twice the blob base fee.
async fn suggested_fees(client: &HttpClient) -> Result<Fees, ClientError> {
    let suggested_tip: U256 = client.request("eth_maxPriorityFeePerGas", rpc_params![]).await?;
    let blob_base_fee: U256 = client.request("eth_blobBaseFee", rpc_params![]).await?;
    let history: serde_json::Value = client.request("eth_feeHistory", rpc_params!["0x5", "latest", [50.0]]).await?;
    let quantity = |value: &serde_json::Value| {
        value.as_str().and_then(|hex| u128::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
    };
    let next_base_fee =
        history["baseFeePerGas"].as_array().and_then(|fees| fees.last()).and_then(quantity).unwrap_or(0);
    let mut tips: Vec<u128> = history["reward"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block.get(0).and_then(quantity))
        .filter(|&tip| tip > 0)
        .collect();
    tips.sort_unstable();
    let tip = tips.get(tips.len() / 2).copied().unwrap_or(0).max(suggested_tip.to::<u128>());
    Ok(Fees { fee_cap: next_base_fee * 2 + tip, tip, blob_fee_cap: blob_base_fee.to::<u128>().max(1) * 2 })
}

/// Keeps `fees` current while the load runs; a failed refresh keeps the last suggestion.
async fn refresh_fees(client: HttpClient, fees: tokio::sync::watch::Sender<Fees>) {
    let mut ticker = tokio::time::interval(FEE_REFRESH);
    loop {
        ticker.tick().await;
        if let Ok(latest) = suggested_fees(&client).await {
            fees.send_replace(latest);
        }
    }
}

/// Submits one transaction; the outcome kind (`accepted`, the node's error kind, or a transport
/// error) and, when accepted, the hash the node acknowledged.
async fn submit(client: &HttpClient, raw: Bytes) -> (String, Option<B256>) {
    match client.request::<B256, _>("eth_sendRawTransaction", rpc_params![raw]).await {
        Ok(hash) => ("accepted".into(), Some(hash)),
        Err(ClientError::Call(error)) => {
            let kind = error
                .data()
                .and_then(|data| serde_json::from_str::<serde_json::Value>(data.get()).ok())
                .and_then(|data| data["kind"].as_str().map(str::to_owned))
                .unwrap_or_else(|| error.message().to_owned());
            (kind, None)
        }
        Err(e) => (format!("transport: {e}"), None),
    }
}
