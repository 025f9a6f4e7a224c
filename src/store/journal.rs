//! The journal of local transactions: appended durably before a submission is acknowledged.
//!
//! One writer thread owns the file. Submitters queue their record on a bounded channel and wait
//! for the writer's answer; the writer takes everything queued, writes it, calls `fdatasync`
//! once and answers them all (group commit: under load, many submissions share one sync).
//! Compaction rewrites the file with the transactions still pooled, through a temporary file
//! and an atomic rename, so a crash leaves either the old journal or the new one. The writer
//! computes the live set itself, after writing every append queued before the compaction: an
//! append is queued only after its transaction entered the pool, so the live set holds it (or
//! it has left the pool since); appends queued after are written to the new file. Appends and
//! the live set are ordered in this one place, so no acknowledged record is lost to a stale set.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
};

use tokio::sync::{mpsc, oneshot};

use super::codec::{self, StoredTx};

/// Submissions waiting for the writer. When full, submitters wait: durability is the bottleneck,
/// and an acknowledged submission must be on disk.
const QUEUE: usize = 4_096;
/// Most records written per sync, so one sync's latency stays bounded under a flood.
const MAX_BATCH: usize = 1_024;

/// Why the journal could not take a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(pub String);

impl From<io::Error> for JournalError {
    fn from(e: io::Error) -> Self {
        Self(e.to_string())
    }
}

/// Computes the records a compacted journal keeps (the local transactions pooled now).
pub type LiveSet = Box<dyn FnOnce() -> Vec<StoredTx> + Send>;

enum Command {
    Append(Vec<u8>, oneshot::Sender<Result<(), JournalError>>),
    Compact(LiveSet, oneshot::Sender<Result<(), JournalError>>),
}

/// Counters: records appended and syncs made (their ratio is the group-commit factor).
#[derive(Debug, Default)]
pub struct JournalStats {
    pub appended: AtomicU64,
    pub syncs: AtomicU64,
    pub compactions: AtomicU64,
}

/// A handle to the journal writer; cheap to clone. The writer stops when every handle is gone.
#[derive(Debug, Clone)]
pub struct Journal {
    commands: mpsc::Sender<Command>,
    stats: Arc<JournalStats>,
}

impl Journal {
    /// Opens (creating) the journal at `path` for appending and starts its writer thread.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = open_append(path)?;
        let (commands, receiver) = mpsc::channel(QUEUE);
        let stats = Arc::new(JournalStats::default());
        let writer = Writer { path: path.to_path_buf(), file, stats: Arc::clone(&stats) };
        thread::Builder::new().name("tidepool-journal".into()).spawn(move || writer.run(receiver))?;
        Ok(Self { commands, stats })
    }

    /// Appends `tx` and returns once it is on disk.
    ///
    /// # Errors
    /// When the write or the sync failed (the record may then be missing).
    pub async fn append(&self, tx: &StoredTx) -> Result<(), JournalError> {
        let mut record = Vec::with_capacity(tx.raw.len() + 16);
        codec::encode(tx, &mut record);
        self.request(|ack| Command::Append(record, ack)).await
    }

    /// Rewrites the journal to hold exactly what `live` returns when the writer runs it, after
    /// every append queued before this call is written (see the module doc).
    ///
    /// # Errors
    /// When the new file cannot be written; the old journal is then kept.
    pub async fn compact(&self, live: impl FnOnce() -> Vec<StoredTx> + Send + 'static) -> Result<(), JournalError> {
        self.request(|ack| Command::Compact(Box::new(live), ack)).await
    }

    pub fn stats(&self) -> &JournalStats {
        &self.stats
    }

    async fn request(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), JournalError>>) -> Command,
    ) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        let stopped = || JournalError("the writer stopped".into());
        self.commands.send(command(ack)).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

struct Writer {
    path: PathBuf,
    file: File,
    stats: Arc<JournalStats>,
}

impl Writer {
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut waiting = Vec::with_capacity(MAX_BATCH);
        while let Some(command) = commands.blocking_recv() {
            let mut next = Some(command);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(record, ack) => {
                        batch.extend_from_slice(&record);
                        waiting.push(ack);
                    }
                    Command::Compact(live, ack) => {
                        // Appends queued before the compaction are written first, so an
                        // acknowledged record is never only in the file being replaced.
                        self.flush(&mut batch, &mut waiting);
                        let _ = ack.send(self.compact(&live()).map_err(JournalError::from));
                    }
                }
                if waiting.len() < MAX_BATCH {
                    next = commands.try_recv().ok();
                }
            }
            self.flush(&mut batch, &mut waiting);
        }
    }

    /// Writes the batch, syncs once, and answers everyone in it.
    fn flush(&mut self, batch: &mut Vec<u8>, waiting: &mut Vec<oneshot::Sender<Result<(), JournalError>>>) {
        if waiting.is_empty() {
            return;
        }
        let result = self.file.write_all(batch).and_then(|()| self.file.sync_data()).map_err(JournalError::from);
        if let Err(e) = &result {
            tracing::error!(error = %e, records = waiting.len(), "journal write failed");
        }
        self.stats.appended.fetch_add(waiting.len() as u64, Ordering::Relaxed);
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        batch.clear();
        for ack in waiting.drain(..) {
            let _ = ack.send(result.clone()); // the submitter may have gone: nothing to tell
        }
    }

    fn compact(&mut self, live: &[StoredTx]) -> io::Result<()> {
        write_atomically(&self.path, live)?;
        self.file = open_append(&self.path)?;
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Writes `txs` to `path` atomically (temporary file, sync, rename, directory sync).
///
/// # Errors
/// Any I/O error; `path` is then untouched.
pub fn write_atomically(path: &Path, txs: &[StoredTx]) -> io::Result<()> {
    let mut data = Vec::new();
    for tx in txs {
        codec::encode(tx, &mut data);
    }
    let tmp = path.with_extension("writing");
    let mut file = File::create(&tmp)?;
    file.write_all(&data)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Bytes;

    use super::*;
    use crate::tx::Origin;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_appends_share_a_sync_and_compaction_keeps_exactly_the_live_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.log");
        let journal = Journal::open(&path).expect("opens");
        let record = |i: u8| StoredTx { origin: Origin::Local, raw: Bytes::from(vec![i; 100]) };
        let appends = (0..200u8).map(|i| {
            let journal = journal.clone();
            async move { journal.append(&record(i)).await }
        });
        for result in futures::future::join_all(appends).await {
            result.expect("durable");
        }
        let syncs = journal.stats().syncs.load(Ordering::Relaxed);
        assert_eq!(journal.stats().appended.load(Ordering::Relaxed), 200);
        assert!(syncs <= 20, "200 queued appends took {syncs} syncs");
        assert_eq!(codec::decode(&std::fs::read(&path).expect("readable")).records.len(), 200);

        journal.compact(move || vec![record(7), record(9)]).await.expect("compacts");
        journal.append(&record(11)).await.expect("appends after compaction");
        let kept: Vec<u8> =
            codec::decode(&std::fs::read(&path).expect("readable")).records.iter().map(|r| r.raw[0]).collect();
        assert_eq!(kept, [7, 9, 11]);
    }

    /// Issue: a compactor that computed the live set before queueing the compaction lost an
    /// append acknowledged in between. The writer now computes it after writing that append.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_raced_with_a_compaction_is_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.log");
        let journal = Journal::open(&path).expect("opens");
        let pool = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tx = StoredTx { origin: Origin::Local, raw: Bytes::from(vec![5; 100]) };
        let live = {
            let pool = Arc::clone(&pool);
            move || pool.lock().expect("pool").clone()
        };
        // The submitter pools its transaction, then appends; the compaction is queued after the
        // append but was asked for before the transaction was pooled.
        let submit = async {
            pool.lock().expect("pool").push(tx.clone());
            journal.append(&tx).await
        };
        let (appended, compacted) = tokio::join!(submit, journal.compact(live));
        appended.expect("acknowledged");
        compacted.expect("compacted");
        let kept = codec::decode(&std::fs::read(&path).expect("readable")).records;
        assert_eq!(kept, [tx], "the acknowledged append survives the compaction");
    }
}
