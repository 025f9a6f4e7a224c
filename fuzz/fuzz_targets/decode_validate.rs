//! Arbitrary bytes through decoding and stateless validation (`fuzz/targets.rs`).
//! Run: `cargo fuzz run decode_validate` from the crate root (see FUZZING.md).
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::decode_validate(data));
