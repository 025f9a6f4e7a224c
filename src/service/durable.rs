//! Durability's wiring: restoring the data directory through ingest at start, the periodic
//! journal compaction, and the shutdown snapshot. The files and their format are `store`'s.
//!
//! A journaled local transaction that restoring cannot pool for a reason that may pass (a full
//! pool, funds not there yet, state unavailable) is *parked*: kept in the journal and retried
//! before every compaction, until it is pooled, refused for good, or older than the pool's
//! lifetime (as a queued transaction would expire). Nothing acknowledged is dropped for a
//! temporary reason.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy_primitives::keccak256;
use tokio::task::JoinHandle;

use super::{Origin, StartError};
use crate::{
    ingest::{Ingest, IngestError},
    pool::PoolHandle,
    store::{self, FileReport, Journal, RestoreReport, StoredTx, codec},
};

/// The data directory in use: the journal, its compaction task, and what start restored.
#[derive(Debug)]
pub(super) struct Durable {
    dir: PathBuf,
    pub journal: Journal,
    pub restored: RestoreReport,
    compaction: JoinHandle<()>,
}

/// Local records waiting for a temporary refusal to pass, with when they were parked.
type Parked = Arc<Mutex<Vec<(StoredTx, Instant)>>>;

impl Durable {
    /// Restores `dir` through `ingest`, starts the journal and its compaction every
    /// `compact_every`. Parked records are given up after `lifetime`.
    pub async fn open(
        dir: &Path,
        ingest: &Ingest,
        lifetime: Duration,
        compact_every: Duration,
    ) -> Result<Self, StartError> {
        let store_error = |source| StartError::Store { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(store_error)?;
        let (restored, parked) = restore(ingest, dir).await.map_err(store_error)?;
        if restored.snapshot.is_some() || restored.journal.is_some() {
            tracing::info!(restored = restored.restored(), parked = parked.len(), outcomes = ?restored.outcomes, "restored the pool");
        }
        let parked: Parked = Arc::new(Mutex::new(parked));
        let journal = Journal::open(&dir.join(store::JOURNAL_FILE)).map_err(store_error)?;
        // The replayed journal may hold mined, replaced or refused records: start clean.
        let live = live_set(ingest.pool(), &parked);
        journal.compact(live).await.map_err(|e| store_error(std::io::Error::other(e)))?;
        let compaction =
            tokio::spawn(compact_periodically(journal.clone(), ingest.clone(), parked, lifetime, compact_every));
        Ok(Self { dir: dir.to_path_buf(), journal, restored, compaction })
    }

    /// Stops compacting and writes the whole pool to the snapshot.
    pub fn snapshot(self, pool: &PoolHandle) -> std::io::Result<()> {
        self.compaction.abort();
        let txs = records(pool, |_| true);
        store::write_atomically(&self.dir.join(store::SNAPSHOT_FILE), &txs)?;
        tracing::info!(txs = txs.len(), "pool snapshot written");
        Ok(())
    }
}

/// The pooled transactions worth keeping in `origin`'s terms, as records in the form they are
/// submitted in (blob transactions with their sidecars, so a restart validates them again).
fn records(pool: &PoolHandle, keep: fn(Origin) -> bool) -> Vec<StoredTx> {
    let txs = pool.read(|p| p.txs().filter(|tx| keep(tx.origin())).cloned().collect::<Vec<_>>());
    txs.iter().filter_map(|tx| Some(StoredTx { origin: tx.origin(), raw: pool.wire_form(tx)? })).collect()
}

/// The journal's live set, computed by its writer when it compacts: the local transactions
/// pooled at that moment, and the parked records.
fn live_set(pool: &PoolHandle, parked: &Parked) -> impl FnOnce() -> Vec<StoredTx> + Send + 'static {
    let (pool, parked) = (pool.clone(), Arc::clone(parked));
    move || {
        let mut live = records(&pool, |o| o == Origin::Local);
        live.extend(parked.lock().expect("parked lock").iter().map(|(record, _)| record.clone()));
        live
    }
}

async fn compact_periodically(journal: Journal, ingest: Ingest, parked: Parked, lifetime: Duration, every: Duration) {
    let mut every = tokio::time::interval(every);
    every.tick().await;
    loop {
        every.tick().await;
        retry_parked(&ingest, &parked, lifetime).await;
        if let Err(e) = journal.compact(live_set(ingest.pool(), &parked)).await {
            tracing::error!(error = %e, "journal compaction failed; the old journal is kept");
        }
    }
}

/// Submits every parked record again: pooled ones leave (the live set holds them as pooled),
/// still temporarily refused ones stay, finally refused or expired ones are logged and dropped.
async fn retry_parked(ingest: &Ingest, parked: &Parked, lifetime: Duration) {
    let waiting = std::mem::take(&mut *parked.lock().expect("parked lock"));
    let mut still = Vec::with_capacity(waiting.len());
    for (record, since) in waiting {
        let hash = keccak256(&record.raw);
        if since.elapsed() > lifetime {
            tracing::info!(%hash, "a parked local transaction expired unpooled");
            continue;
        }
        match ingest.submit(record.raw.clone(), record.origin).await {
            Err(e) if e.is_temporary() => still.push((record, since)),
            Err(e) if e.kind() != "already_known" => {
                tracing::info!(%hash, reason = e.kind(), "a parked local transaction is refused")
            }
            _ => {}
        }
    }
    parked.lock().expect("parked lock").extend(still);
}

/// Restores the snapshot (then deletes it: it describes one shutdown) and replays the journal,
/// each record through validation into the pool. Missing files are not an error. Returns the
/// report and the local records to park (see the module doc).
async fn restore(ingest: &Ingest, dir: &Path) -> std::io::Result<(RestoreReport, Vec<(StoredTx, Instant)>)> {
    let mut report = RestoreReport::default();
    let mut parked = Vec::new();
    let snapshot = dir.join(store::SNAPSHOT_FILE);
    if let Some(decoded) = store::read_records(&snapshot)? {
        report.snapshot = Some(resubmit(ingest, decoded, &mut report.outcomes, &mut parked, "snapshot").await);
        std::fs::remove_file(&snapshot)?;
    }
    if let Some(decoded) = store::read_records(&dir.join(store::JOURNAL_FILE))? {
        report.journal = Some(resubmit(ingest, decoded, &mut report.outcomes, &mut parked, "journal").await);
    }
    Ok((report, parked))
}

async fn resubmit(
    ingest: &Ingest,
    decoded: codec::Decoded,
    outcomes: &mut BTreeMap<&'static str, u64>,
    parked: &mut Vec<(StoredTx, Instant)>,
    file: &str,
) -> FileReport {
    for &(offset, bytes) in &decoded.corrupt {
        tracing::warn!(file, offset, bytes, "skipping a damaged stretch");
    }
    if let Some((offset, bytes)) = decoded.torn_tail {
        tracing::warn!(file, offset, bytes, "skipping an incomplete last record");
    }
    let report = FileReport::of(&decoded);
    for StoredTx { origin, raw } in decoded.records {
        let hash = keccak256(&raw);
        let outcome = loop {
            match ingest.submit(raw.clone(), origin).await {
                // Restoring must not drop what it read: wait for room instead.
                Err(e) if e.is_busy() => tokio::time::sleep(Duration::from_millis(1)).await,
                outcome => break outcome,
            }
        };
        let kind = outcome.as_ref().map_or_else(IngestError::kind, |_| "added");
        match &outcome {
            Err(e) if e.is_temporary() && origin == Origin::Local => {
                tracing::info!(file, %hash, reason = kind, "not restored yet: kept in the journal and retried");
                parked.push((StoredTx { origin, raw }, Instant::now()));
            }
            Err(_) if kind != "already_known" => tracing::info!(file, %hash, reason = kind, "not restored"),
            _ => {}
        }
        *outcomes.entry(kind).or_default() += 1;
    }
    report
}
