//! Slot storage for pooled transactions: stable `u32` ids, reused after removal.

use super::{Entry, TxId};

/// Slots per chunk. Growing by fixed chunks, not by doubling one vector, means the pool never
/// copies all its transactions at once to grow (a multi-megabyte `memmove` in the middle of an
/// insert), and never holds more than one chunk of unused slots.
const CHUNK: usize = 1 << 10;

#[derive(Debug, Clone, Default)]
pub(super) struct Slab {
    chunks: Vec<Box<[Option<Entry>]>>,
    free: Vec<TxId>,
    /// Slots ever handed out (live or free).
    used: usize,
}

impl Slab {
    pub fn get(&self, id: TxId) -> Option<&Entry> {
        self.chunks.get(id as usize / CHUNK)?[id as usize % CHUNK].as_ref()
    }

    pub fn get_mut(&mut self, id: TxId) -> Option<&mut Entry> {
        self.chunks.get_mut(id as usize / CHUNK)?[id as usize % CHUNK].as_mut()
    }

    pub fn insert(&mut self, entry: Entry) -> TxId {
        let id = self.free.pop().unwrap_or_else(|| {
            if self.used == self.chunks.len() * CHUNK {
                self.chunks.push(std::iter::repeat_with(|| None).take(CHUNK).collect());
            }
            self.used += 1;
            TxId::try_from(self.used - 1).expect("fewer than 2^32 pooled txs")
        });
        self.chunks[id as usize / CHUNK][id as usize % CHUNK] = Some(entry);
        id
    }

    pub fn remove(&mut self, id: TxId) -> Option<Entry> {
        let entry = self.chunks.get_mut(id as usize / CHUNK)?[id as usize % CHUNK].take()?;
        self.free.push(id);
        Some(entry)
    }

    /// Ids of live entries, ascending.
    pub fn ids(&self) -> impl Iterator<Item = TxId> + '_ {
        (0..self.used as TxId).filter(|&id| self.get(id).is_some())
    }
}
