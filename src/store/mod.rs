//! Durability: the journal of local transactions and the whole-pool snapshot.
//!
//! Owns: the files in the data directory (`journal.log`, `pool.snapshot`), their record format
//! (`codec`), the group-committing journal writer, and the report of what a restore found.
//! (The sidecars under `blobs/` are the pool's [`crate::pool::BlobStore`].)
//! Does not: decide validity, or restore by itself: it imports only transaction types. The
//! service replays what [`read_records`] returns through validation and the pool's rules again
//! (the chain moved on while the node was down) and logs what is refused with its reason.
//!
//! # Local transactions
//! Tidepool treats local transactions like geth's tracker does, not with reth's exemptions: in
//! the pool they follow the same limits and eviction as everyone's (a local flood cannot push
//! others out for free), and durability comes from the journal: every local submission is on
//! disk before it is acknowledged, and replayed after a crash. One that left the pool (evicted,
//! replaced, expired) says why in the dead-letter view.

pub mod codec;
mod journal;

use std::{collections::BTreeMap, io, path::Path};

pub use codec::StoredTx;
pub use journal::{Journal, JournalError, JournalStats, write_atomically};

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

/// Reads a record file: `None` when it does not exist. Damage is reported in the result, not
/// an error.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn read_records(path: &Path) -> io::Result<Option<codec::Decoded>> {
    match std::fs::read(path) {
        Ok(data) => Ok(Some(codec::decode(&data))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl FileReport {
    /// What a decoded file held.
    pub fn of(decoded: &codec::Decoded) -> Self {
        Self { records: decoded.records.len(), corrupt: decoded.corrupt.clone(), torn_tail: decoded.torn_tail }
    }
}
