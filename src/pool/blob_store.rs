//! [`BlobStore`]: the sidecars of pooled blob transactions, outside the pool's memory.
//!
//! Owns: where sidecars live (files under `<data dir>/blobs/`, or memory when there is no data
//! directory), and the index from versioned hash to transaction that `engine_getBlobs`-style
//! lookups need. Does not: decide what is kept — the pool decides, and [`super::PoolHandle`]
//! puts a sidecar here before the transaction enters the pool and removes it when the pool's
//! removal event says so. Its size is bounded by the pool's `blob_bytes`, never here.
//!
//! A sidecar file holds the sidecar's fields as the network form carries them (wrapper
//! version 1 first, or the three lists of version 0). The files of a previous run are deleted
//! at open: the pool starts empty, and the journal and snapshot keep local blob transactions in
//! their network form, sidecar included.

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
};

use alloy_eips::eip7594::{Decodable7594 as _, Encodable7594 as _};
use alloy_primitives::B256;

use crate::tx::blob::BlobSidecar;

/// The directory under the data directory that holds sidecar files.
pub const BLOBS_DIR: &str = "blobs";

/// Sidecars by transaction hash. Cheap to share; every method takes its lock briefly (file
/// reads and writes happen outside it).
#[derive(Debug)]
pub struct BlobStore {
    dir: Option<PathBuf>,
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Held transactions: their versioned hashes, and the sidecar itself when kept in memory.
    held: HashMap<B256, Held>,
    /// Versioned hash to the transaction holding it and the blob's position there.
    by_versioned: HashMap<B256, (B256, usize)>,
}

#[derive(Debug)]
struct Held {
    versioned: Box<[B256]>,
    in_memory: Option<Arc<BlobSidecar>>,
}

impl BlobStore {
    /// Sidecars kept in memory (no data directory).
    pub fn in_memory() -> Self {
        Self { dir: None, index: Mutex::default() }
    }

    /// Sidecars kept in files under `data_dir/blobs`, which is created, and emptied of a
    /// previous run's files.
    ///
    /// # Errors
    /// When the directory cannot be created or emptied.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join(BLOBS_DIR);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir: Some(dir), index: Mutex::default() })
    }

    /// Keeps `sidecar` for transaction `hash`. Returns false (and does nothing) when it is held
    /// already.
    ///
    /// # Errors
    /// When the file cannot be written; nothing is held then.
    pub fn put(&self, hash: B256, sidecar: &Arc<BlobSidecar>) -> io::Result<bool> {
        if self.lock().held.contains_key(&hash) {
            return Ok(false);
        }
        let in_memory = match &self.dir {
            Some(dir) => {
                let mut bytes = Vec::with_capacity(sidecar.encode_7594_len());
                sidecar.encode_7594(&mut bytes);
                std::fs::write(file(dir, &hash), bytes)?;
                None
            }
            None => Some(Arc::clone(sidecar)),
        };
        let versioned: Box<[B256]> = sidecar.versioned_hashes().collect();
        let mut index = self.lock();
        for (position, &blob) in versioned.iter().enumerate() {
            index.by_versioned.insert(blob, (hash, position));
        }
        index.held.insert(hash, Held { versioned, in_memory });
        Ok(true)
    }

    /// The sidecar of transaction `hash`, if held (read from its file when on disk; a file that
    /// cannot be read counts as not held).
    pub fn get(&self, hash: &B256) -> Option<Arc<BlobSidecar>> {
        let held = self.lock().held.get(hash).map(|held| held.in_memory.clone())?;
        if let Some(sidecar) = held {
            return Some(sidecar);
        }
        let bytes = std::fs::read(file(self.dir.as_ref()?, hash)).ok()?;
        BlobSidecar::decode_7594(&mut bytes.as_slice()).ok().map(Arc::new)
    }

    /// The sidecar holding the blob with this versioned hash, and the blob's position in it.
    pub fn by_versioned_hash(&self, versioned: &B256) -> Option<(Arc<BlobSidecar>, usize)> {
        let (hash, position) = *self.lock().by_versioned.get(versioned)?;
        Some((self.get(&hash)?, position))
    }

    /// Forgets transaction `hash`'s sidecar (a no-op for one not held, so every removal event
    /// may call it).
    pub fn remove(&self, hash: &B256) {
        let Some(held) = self.lock().held.remove(hash) else { return };
        {
            let mut index = self.lock();
            for blob in &*held.versioned {
                if index.by_versioned.get(blob).is_some_and(|(tx, _)| tx == hash) {
                    index.by_versioned.remove(blob);
                }
            }
        }
        if let Some(dir) = &self.dir {
            // A file left behind is deleted at the next open; nothing reads it before.
            let _ = std::fs::remove_file(file(dir, hash));
        }
    }

    /// How many sidecars are held.
    pub fn len(&self) -> usize {
        self.lock().held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn file(dir: &Path, hash: &B256) -> PathBuf {
    dir.join(format!("{hash:x}.sidecar"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::generate::blob_sidecar;

    fn exercise(store: &BlobStore) {
        let (a, b) = (Arc::new(blob_sidecar(2, 1, 1)), Arc::new(blob_sidecar(1, 0, 2)));
        let (hash_a, hash_b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
        assert!(store.put(hash_a, &a).unwrap());
        assert!(!store.put(hash_a, &a).unwrap(), "held already");
        assert!(store.put(hash_b, &b).unwrap());
        assert_eq!(store.get(&hash_a).as_deref(), Some(a.as_ref()));
        assert_eq!(store.get(&hash_b).as_deref(), Some(b.as_ref()), "both wrapper versions");
        let second = a.versioned_hashes().nth(1).unwrap();
        let (found, position) = store.by_versioned_hash(&second).unwrap();
        assert_eq!((found.as_ref(), position), (a.as_ref(), 1));
        store.remove(&hash_a);
        store.remove(&hash_a); // removing what is not held is a no-op
        assert!(store.get(&hash_a).is_none() && store.by_versioned_hash(&second).is_none());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn in_memory_and_on_disk_hold_the_same_sidecars() {
        exercise(&BlobStore::in_memory());
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        exercise(&store);
        assert_eq!(std::fs::read_dir(dir.path().join(BLOBS_DIR)).unwrap().count(), 1, "one file per held sidecar");
        drop(store);
        let reopened = BlobStore::open(dir.path()).unwrap();
        assert!(reopened.is_empty());
        assert_eq!(std::fs::read_dir(dir.path().join(BLOBS_DIR)).unwrap().count(), 0, "a previous run's files go");
    }
}
