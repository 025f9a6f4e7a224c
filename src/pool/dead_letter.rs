//! The dead-letter view: a bounded record of transactions that left the pool without being
//! mined, queryable by hash and by sender.
//!
//! Owns: the records and their bound. Fed by [`PoolHandle`](super::PoolHandle) from the pool's
//! `Removed` events (so it sees exactly what subscribers see), stamped with wall-clock time.
//! Does not: decide anything about transactions; it only remembers.

use std::{
    collections::{BTreeMap, VecDeque},
    time::{SystemTime, UNIX_EPOCH},
};

use alloy_primitives::{Address, B256, map::HashMap};
use serde::Serialize;

use super::{PoolEvent, RemovalReason};

/// Why one transaction left the pool without being mined, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub hash: B256,
    pub sender: Address,
    pub nonce: u64,
    /// The removal reason with its detail (replaced by which hash, evicted by which limit,
    /// invalidated or dropped from quarantine at which block).
    #[serde(flatten)]
    pub reason: RemovalReason,
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The last `capacity` dead letters. Memory is bounded by the capacity: the indexes hold one
/// sequence number per record.
#[derive(Debug)]
pub struct DeadLetters {
    capacity: usize,
    /// Records in arrival order; the front has sequence number `first_seq`.
    records: VecDeque<DeadLetter>,
    first_seq: u64,
    /// Latest record per hash (a hash can leave twice: re-submitted after it left).
    by_hash: HashMap<B256, u64>,
    /// Each sender's records, oldest first.
    by_sender: HashMap<Address, VecDeque<u64>>,
    /// Every record ever made, by reason kind (for metrics; not bounded by the capacity).
    recorded: BTreeMap<&'static str, u64>,
}

impl DeadLetters {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            records: VecDeque::new(),
            first_seq: 0,
            by_hash: HashMap::default(),
            by_sender: HashMap::default(),
            recorded: BTreeMap::new(),
        }
    }

    /// Records every non-mined removal among `events`.
    pub fn record_events(&mut self, events: &[PoolEvent]) {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for event in events {
            if let PoolEvent::Removed { hash, sender, nonce, reason } = *event
                && !matches!(reason, RemovalReason::Mined { .. })
            {
                self.push(DeadLetter { hash, sender, nonce, reason, at_unix_ms });
            }
        }
    }

    fn push(&mut self, record: DeadLetter) {
        *self.recorded.entry(record.reason.kind()).or_default() += 1;
        if self.capacity == 0 {
            return;
        }
        if self.records.len() == self.capacity {
            self.pop_oldest();
        }
        let seq = self.first_seq + self.records.len() as u64;
        self.by_hash.insert(record.hash, seq);
        self.by_sender.entry(record.sender).or_default().push_back(seq);
        self.records.push_back(record);
    }

    fn pop_oldest(&mut self) {
        let Some(oldest) = self.records.pop_front() else { return };
        let seq = self.first_seq;
        self.first_seq += 1;
        if self.by_hash.get(&oldest.hash) == Some(&seq) {
            self.by_hash.remove(&oldest.hash);
        }
        if let Some(seqs) = self.by_sender.get_mut(&oldest.sender) {
            seqs.pop_front(); // a sender's oldest record is the globally oldest of its records
            if seqs.is_empty() {
                self.by_sender.remove(&oldest.sender);
            }
        }
    }

    fn at(&self, seq: u64) -> &DeadLetter {
        &self.records[usize::try_from(seq - self.first_seq).expect("indexes hold live records")]
    }

    /// The latest record of this transaction, if it is still held.
    pub fn get(&self, hash: &B256) -> Option<DeadLetter> {
        self.by_hash.get(hash).map(|&seq| self.at(seq).clone())
    }

    /// The sender's held records, oldest first.
    pub fn from_sender(&self, sender: &Address) -> Vec<DeadLetter> {
        self.by_sender.get(sender).map_or_else(Vec::new, |seqs| seqs.iter().map(|&s| self.at(s).clone()).collect())
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records made since start by reason kind, including those since dropped by the bound.
    pub fn recorded(&self) -> BTreeMap<&'static str, u64> {
        self.recorded.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{Limit, SubPool};

    fn removed(i: u8, sender: u8, reason: RemovalReason) -> PoolEvent {
        PoolEvent::Removed { hash: B256::repeat_byte(i), sender: Address::repeat_byte(sender), nonce: i.into(), reason }
    }

    #[test]
    fn keeps_the_newest_within_capacity_and_indexes_stay_exact() {
        let mut letters = DeadLetters::new(3);
        let evicted = RemovalReason::Evicted { limit: Limit::SubPoolCount(SubPool::Queued) };
        let events: Vec<PoolEvent> = (1..=5).map(|i| removed(i, i % 2, evicted)).collect();
        letters.record_events(&events);
        assert_eq!(letters.len(), 3);
        assert!(letters.get(&B256::repeat_byte(2)).is_none(), "oldest dropped");
        assert_eq!(letters.get(&B256::repeat_byte(5)).expect("held").nonce, 5);
        let odd: Vec<u64> = letters.from_sender(&Address::repeat_byte(1)).iter().map(|r| r.nonce).collect();
        assert_eq!(odd, [3, 5]);
        assert_eq!(letters.from_sender(&Address::repeat_byte(0)).len(), 1);
        assert_eq!(letters.recorded()["evicted"], 5, "counts include dropped records");
        assert_eq!(letters.by_hash.len(), 3);
        assert_eq!(letters.by_sender.values().map(VecDeque::len).sum::<usize>(), 3);
    }

    #[test]
    fn mined_is_not_a_dead_letter_and_a_repeat_hash_points_at_its_latest_record() {
        let mut letters = DeadLetters::new(2);
        letters.record_events(&[
            removed(1, 1, RemovalReason::Mined { block: 1 }),
            removed(2, 1, RemovalReason::Expired),
            removed(2, 1, RemovalReason::Replaced { by: B256::ZERO }),
        ]);
        assert_eq!(letters.len(), 2);
        assert_eq!(letters.get(&B256::repeat_byte(2)).expect("held").reason.kind(), "replaced");
        letters.record_events(&[removed(3, 1, RemovalReason::Expired)]);
        // The first record of hash 2 left; the index still finds its newer one.
        assert_eq!(letters.get(&B256::repeat_byte(2)).expect("held").reason.kind(), "replaced");
    }
}
