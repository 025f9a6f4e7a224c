//! Durability's wiring: restoring the data directory through ingest at start, the periodic
//! journal compaction, and the shutdown snapshot. The files and their format are `store`'s.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy_primitives::keccak256;
use tokio::task::JoinHandle;

use super::{Origin, StartError};
use crate::{
    ingest::{Ingest, IngestError},
    pool::PoolHandle,
    store::{self, FileReport, Journal, RestoreReport, StoredTx, codec},
};

/// How often the journal is rewritten to hold only the local transactions still pooled.
const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// The data directory in use: the journal, its compaction task, and what start restored.
#[derive(Debug)]
pub(super) struct Durable {
    dir: PathBuf,
    pub journal: Journal,
    pub restored: RestoreReport,
    compaction: JoinHandle<()>,
}

impl Durable {
    pub async fn open(dir: &Path, ingest: &Ingest) -> Result<Self, StartError> {
        let store_error = |source| StartError::Store { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(store_error)?;
        let restored = restore(ingest, dir).await.map_err(store_error)?;
        if restored.snapshot.is_some() || restored.journal.is_some() {
            tracing::info!(restored = restored.restored(), outcomes = ?restored.outcomes, "restored the pool");
        }
        let journal = Journal::open(&dir.join(store::JOURNAL_FILE)).map_err(store_error)?;
        // The replayed journal may hold mined, replaced or refused records: start clean.
        journal.compact(live_set(ingest.pool())).await.map_err(|e| store_error(std::io::Error::other(e)))?;
        let compaction = tokio::spawn(compact_periodically(journal.clone(), ingest.pool().clone()));
        Ok(Self { dir: dir.to_path_buf(), journal, restored, compaction })
    }

    /// Stops compacting and writes the whole pool to the snapshot.
    pub fn snapshot(self, pool: &PoolHandle) -> std::io::Result<()> {
        self.compaction.abort();
        let txs = store::stored(pool.read(|p| p.txs().cloned().collect::<Vec<_>>()), |_| true);
        store::write_atomically(&self.dir.join(store::SNAPSHOT_FILE), &txs)?;
        tracing::info!(txs = txs.len(), "pool snapshot written");
        Ok(())
    }
}

/// The journal's live set, computed by its writer when it compacts: the local transactions
/// pooled at that moment.
fn live_set(pool: &PoolHandle) -> impl FnOnce() -> Vec<StoredTx> + Send + 'static {
    let pool = pool.clone();
    move || store::stored(pool.read(|p| p.txs().cloned().collect::<Vec<_>>()), |origin| origin == Origin::Local)
}

async fn compact_periodically(journal: Journal, pool: PoolHandle) {
    let mut every = tokio::time::interval(COMPACT_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = journal.compact(live_set(&pool)).await {
            tracing::error!(error = %e, "journal compaction failed; the old journal is kept");
        }
    }
}

/// Restores the snapshot (then deletes it: it describes one shutdown) and replays the journal,
/// each record through validation into the pool. Missing files are not an error.
async fn restore(ingest: &Ingest, dir: &Path) -> std::io::Result<RestoreReport> {
    let mut report = RestoreReport::default();
    let snapshot = dir.join(store::SNAPSHOT_FILE);
    if let Some(decoded) = store::read_records(&snapshot)? {
        report.snapshot = Some(resubmit(ingest, decoded, &mut report.outcomes, "snapshot").await);
        std::fs::remove_file(&snapshot)?;
    }
    if let Some(decoded) = store::read_records(&dir.join(store::JOURNAL_FILE))? {
        report.journal = Some(resubmit(ingest, decoded, &mut report.outcomes, "journal").await);
    }
    Ok(report)
}

async fn resubmit(
    ingest: &Ingest,
    decoded: codec::Decoded,
    outcomes: &mut BTreeMap<&'static str, u64>,
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
        if outcome.is_err() && kind != "already_known" {
            tracing::info!(file, %hash, reason = kind, "not restored");
        }
        *outcomes.entry(kind).or_default() += 1;
    }
    report
}
