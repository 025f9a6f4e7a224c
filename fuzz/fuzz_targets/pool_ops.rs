//! See `fuzz/targets.rs`, `pool_ops`. Run: `cargo fuzz run pool_ops` from the crate root (FUZZING.md).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::pool_ops(data));
