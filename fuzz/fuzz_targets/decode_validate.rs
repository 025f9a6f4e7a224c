//! Arbitrary bytes through decoding and stateless validation (`tidepool::fuzz_targets`).
//! Run: `cargo fuzz run decode_validate` from the crate root (see FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tidepool::fuzz_targets::decode_validate(data));
