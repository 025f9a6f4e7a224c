//! See `tidepool::fuzz_targets::pool_ops`. Run: `cargo fuzz run pool_ops` from the crate root (FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tidepool::fuzz_targets::pool_ops(data));
