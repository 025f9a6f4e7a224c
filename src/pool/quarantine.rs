//! Poison quarantine: builder failure reports, and releasing on the sender's next state change.
//! The rules are in the pool's module docs.

use std::time::Instant;

use alloy_primitives::{Address, B256};

use super::{InclusionFailure, Pool, PoolError, PoolEvent, RemovalReason, SubPool};

/// Failure reports of one pooled transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failures {
    /// Reports in the current window.
    count: u32,
    /// When the current window started (its first report).
    since: Instant,
    last: InclusionFailure,
    /// Quarantined once already: the next quarantine removes it.
    released_once: bool,
}

/// What [`Pool::report_failed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Counted; this many reports in the current window.
    Counted { reports: u32 },
    /// Taken out of the best-first path until its sender's state changes.
    Quarantined,
    /// Quarantined a second time: removed (`RemovalReason::Quarantined`).
    Removed,
}

impl Pool {
    /// Records that a builder could not include the transaction, quarantining it once the
    /// reports reach `quarantine.after_reports` within `quarantine.window`.
    ///
    /// # Errors
    /// [`PoolError::NotPooled`] when the transaction is not (or no longer) in the pool.
    pub fn report_failed(
        &mut self,
        hash: &B256,
        failure: InclusionFailure,
        now: Instant,
    ) -> Result<Reported, PoolError> {
        let id = self.find(hash).ok_or(PoolError::NotPooled(*hash))?;
        let (sender, nonce) = self.sender_nonce(id);
        let config = self.config.quarantine;
        let failures =
            self.failures.entry(id).or_insert(Failures { count: 0, since: now, last: failure, released_once: false });
        if now.saturating_duration_since(failures.since) > config.window {
            failures.count = 0;
            failures.since = now;
        }
        failures.count += 1;
        failures.last = failure;
        if failures.count < config.after_reports {
            return Ok(Reported::Counted { reports: failures.count });
        }
        if failures.released_once {
            self.remove(id, RemovalReason::Quarantined { failure, block: self.head.block });
            self.reevaluate(sender, None);
            return Ok(Reported::Removed);
        }
        failures.count = 0;
        failures.released_once = true;
        let account = self.accounts.get_mut(&sender).expect("a pooled tx's account exists");
        // Only the lowest quarantined nonce matters: everything after it waits anyway.
        account.quarantined = Some(account.quarantined.map_or(nonce, |q| q.min(nonce)));
        self.events.push(PoolEvent::Quarantined { hash: *hash, sender, nonce, failure });
        self.reevaluate(sender, None);
        self.enforce_limits();
        Ok(Reported::Quarantined)
    }

    /// After a block released quarantines (`released`: sender and quarantined nonce), removes
    /// each released transaction the new state leaves not executable.
    pub(super) fn drop_unreleasable(&mut self, released: &[(Address, u64)], block: u64) {
        for &(sender, nonce) in released {
            let Some(id) = self.accounts.get(&sender).and_then(|a| a.get(nonce)) else {
                continue; // mined or invalidated by this block: its own event said so
            };
            if self.entry(id).subpool != SubPool::Queued {
                continue; // executable again: back in the builder's path
            }
            let failure = self.failures.get(&id).expect("a quarantined tx was reported").last;
            self.remove(id, RemovalReason::Quarantined { failure, block });
            self.reevaluate(sender, None);
        }
    }
}
