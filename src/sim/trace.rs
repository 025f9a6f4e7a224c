//! `--trace`: one row per message delivery that carries a transaction or its id, written as
//! `trace.csv` in the run folder (pandas: `pd.read_csv`, polars: `pl.read_csv`).
//!
//! Columns: `time_ms` (virtual, since the run started), `tx` (the id `per_tx.csv` uses for
//! honest transactions; larger ids are attackers' messages), `from`, `to` (node indices),
//! `kind` (`push`, `iwant_reply`, `ihave`, `iwant`, `idontwant`, `announce`, `fetch_request`,
//! `fetch_response`), `copy` (`first` or `duplicate` for kinds that carry the transaction
//! itself, empty otherwise). A control message naming several ids gives one row per id.
//! The rows are bounded: past the limit they are counted, not kept, and the summary says so.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

/// What a delivery was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The transaction, pushed along the mesh or flood-published by its origin.
    Push,
    /// The transaction, sent in answer to an IWANT.
    IWantReply,
    IHave,
    IWant,
    IDontWant,
    Announce,
    FetchRequest,
    FetchResponse,
}

impl Kind {
    const fn name(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::IWantReply => "iwant_reply",
            Self::IHave => "ihave",
            Self::IWant => "iwant",
            Self::IDontWant => "idontwant",
            Self::Announce => "announce",
            Self::FetchRequest => "fetch_request",
            Self::FetchResponse => "fetch_response",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Row {
    at_ns: u64,
    tx: u32,
    from: u32,
    to: u32,
    kind: Kind,
    /// For deliveries of the transaction itself: whether it was the receiver's first copy.
    first: Option<bool>,
}

/// The rows of one run, at most `limit`.
#[derive(Debug)]
pub struct Trace {
    rows: Vec<Row>,
    limit: usize,
    cut: u64,
}

/// What the summary says about the trace.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TraceSummary {
    pub file: &'static str,
    pub rows: usize,
    pub limit: usize,
    /// Deliveries past the limit, not written.
    pub rows_cut: u64,
}

impl Trace {
    pub fn new(limit: usize) -> Self {
        Self { rows: Vec::new(), limit, cut: 0 }
    }

    pub fn record(&mut self, at_ns: u64, tx: u32, from: u32, to: u32, kind: Kind, first: Option<bool>) {
        if self.rows.len() < self.limit {
            self.rows.push(Row { at_ns, tx, from, to, kind, first });
        } else {
            self.cut += 1;
        }
    }

    /// Writes `trace.csv` into `dir`.
    ///
    /// # Errors
    /// File system errors.
    pub fn write(&self, dir: &Path) -> std::io::Result<TraceSummary> {
        let mut text = String::with_capacity(48 * self.rows.len() + 64);
        text.push_str("time_ms,tx,from,to,kind,copy\n");
        for row in &self.rows {
            let copy = match row.first {
                Some(true) => "first",
                Some(false) => "duplicate",
                None => "",
            };
            let _ = writeln!(
                text,
                "{:.6},{},{},{},{},{copy}",
                row.at_ns as f64 / 1e6,
                row.tx,
                row.from,
                row.to,
                row.kind.name()
            );
        }
        std::fs::write(dir.join("trace.csv"), text)?;
        Ok(TraceSummary { file: "trace.csv", rows: self.rows.len(), limit: self.limit, rows_cut: self.cut })
    }
}
