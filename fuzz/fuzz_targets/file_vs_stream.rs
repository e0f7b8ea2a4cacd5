#![no_main]
//! Fuzz target: see `fuzz_checks::file_vs_stream`.

#[path = "../../crates/pcap-parallel/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::file_vs_stream(data));
