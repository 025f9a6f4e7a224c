//! See `tidepool::fuzz_targets::wire_messages`. Run: `cargo fuzz run wire_messages` from the crate root (FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tidepool::fuzz_targets::wire_messages(data));
