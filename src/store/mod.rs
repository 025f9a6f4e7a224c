//! Durability: the journal of local transactions and the whole-pool snapshot.
//!
//! Owns: the files in the data directory (`journal.log`, `pool.snapshot`), their record format
//! (`codec`), the group-committing journal writer, and restoring both at start.
//! Does not: decide validity. Everything restored goes through validation and the pool's rules
//! again (the chain moved on while the node was down); what is refused is logged with its reason.
//!
//! # Local transactions
//! Tidepool treats local transactions like geth's tracker does, not with reth's exemptions: in
//! the pool they follow the same limits and eviction as everyone's (a local flood cannot push
//! others out for free), and durability comes from the journal: every local submission is on
//! disk before it is acknowledged, and replayed after a crash. One that left the pool (evicted,
//! replaced, expired) says why in the dead-letter view.

pub mod codec;
mod journal;

use std::{collections::BTreeMap, io, path::Path, time::Duration};

use alloy_primitives::keccak256;
pub use codec::StoredTx;
pub use journal::{Journal, JournalError, JournalStats, write_atomically};

use crate::{
    ingest::{Ingest, IngestError},
    tx::Origin,
};

/// The journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "journal.log";
/// The snapshot's file name in the data directory.
pub const SNAPSHOT_FILE: &str = "pool.snapshot";

/// What one file held.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    /// Intact records read.
    pub records: usize,
    /// Damaged stretches skipped: (offset, bytes).
    pub corrupt: Vec<(usize, usize)>,
    /// An incomplete last record (a write cut short): (offset, bytes).
    pub torn_tail: Option<(usize, usize)>,
}

/// What restoring at start found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreReport {
    pub snapshot: Option<FileReport>,
    pub journal: Option<FileReport>,
    /// Outcomes of re-submitting the records: `"added"` or the refusal kind.
    pub outcomes: BTreeMap<&'static str, u64>,
}

impl RestoreReport {
    /// Transactions back in the pool.
    pub fn restored(&self) -> u64 {
        self.outcomes.get("added").copied().unwrap_or(0)
    }
}

/// Restores the snapshot (then deletes it: it describes one shutdown) and replays the journal,
/// each record through validation into the pool. Missing files are not an error.
///
/// # Errors
/// When a file exists but cannot be read or the snapshot cannot be removed.
pub(crate) async fn restore(ingest: &Ingest, dir: &Path) -> io::Result<RestoreReport> {
    let mut report = RestoreReport::default();
    let snapshot = dir.join(SNAPSHOT_FILE);
    if let Some(decoded) = read(&snapshot)? {
        report.snapshot = Some(resubmit(ingest, decoded, &mut report.outcomes, "snapshot").await);
        std::fs::remove_file(&snapshot)?;
    }
    if let Some(decoded) = read(&dir.join(JOURNAL_FILE))? {
        report.journal = Some(resubmit(ingest, decoded, &mut report.outcomes, "journal").await);
    }
    Ok(report)
}

fn read(path: &Path) -> io::Result<Option<codec::Decoded>> {
    match std::fs::read(path) {
        Ok(data) => Ok(Some(codec::decode(&data))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
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
    let report = FileReport { records: decoded.records.len(), corrupt: decoded.corrupt, torn_tail: decoded.torn_tail };
    for StoredTx { origin, raw } in decoded.records {
        let hash = keccak256(&raw);
        let outcome = loop {
            match ingest.submit(raw.clone(), origin).await {
                // Restoring must not drop what it read: wait for room instead.
                Err(IngestError::Busy(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
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

/// The pooled transactions worth keeping in `origin`'s terms, as records.
pub(crate) fn stored(txs: impl IntoIterator<Item = crate::tx::PooledTx>, keep: fn(Origin) -> bool) -> Vec<StoredTx> {
    txs.into_iter()
        .filter(|tx| keep(tx.origin()))
        .map(|tx| StoredTx { origin: tx.origin(), raw: tx.encoded().clone() })
        .collect()
}
