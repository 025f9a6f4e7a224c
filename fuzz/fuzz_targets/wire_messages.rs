//! See `fuzz/targets.rs`, `wire_messages`. Run: `cargo fuzz run wire_messages` from the crate root (FUZZING.md).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::wire_messages(data));
