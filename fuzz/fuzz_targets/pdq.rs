#![no_main]
//! See `coverguard::fuzz_targets::pdq`; `tests/fuzz_corpus.rs` replays this target's corpus.

libfuzzer_sys::fuzz_target!(|data: &[u8]| coverguard::fuzz_targets::pdq(data));
