//! [`MinTip`]: the one minimum tip, changeable at run time, shared by validation and the pool.
//!
//! The rule has one owner, the pool: it refuses a transaction below the minimum at insertion
//! (a verdict cached before a raise must not slip in) and removes the pooled ones below it when
//! the minimum rises ([`crate::pool::Pool::set_min_tip`]). Validation reads the same value as a
//! cheap filter before the signature check, so a flood of zero-tip junk costs no ecrecover.
//! It lives here, in the layer both depend on, because neither may reach the other.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// The minimum tip cap (gas price for legacy) in wei per gas. Cheap to clone; clones share the
/// value. Held as 64 bits: a minimum of 18 ether per gas or more is stored as `u64::MAX`.
#[derive(Debug, Clone, Default)]
pub struct MinTip(Arc<AtomicU64>);

impl MinTip {
    pub fn new(wei: u128) -> Self {
        Self(Arc::new(AtomicU64::new(saturate(wei))))
    }

    /// The current minimum.
    pub fn get(&self) -> u128 {
        u128::from(self.0.load(Ordering::Relaxed))
    }

    /// Changes the minimum for every holder. Call it through the pool, which also removes what
    /// a raise leaves below it.
    pub(crate) fn set(&self, wei: u128) {
        self.0.store(saturate(wei), Ordering::Relaxed);
    }
}

fn saturate(wei: u128) -> u64 {
    u64::try_from(wei).unwrap_or(u64::MAX)
}
